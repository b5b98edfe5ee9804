//! An outside author's first plugin: `lattice plugin new` writes a crate
//! into a directory outside this repository, one `cargo build --release`
//! builds it, and the real binary runs it as a store.
//!
//! The inner cargo shares the plugins workspace's target dir (the host's
//! build script built the SDK's dependencies there), so only the new crate
//! compiles.

#[path = "support/mod.rs"]
mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;

/// `<target>/plugins`, where `host/build.rs` built the shipped plugins.
fn plugins_target_dir() -> PathBuf {
    Path::new(lattice_host::artifacts::COUNTER)
        .ancestors()
        .nth(3)
        .expect("<target>/plugins/wasm32-wasip2/release/counter.wasm")
        .to_path_buf()
}

/// cargo, in `dir`, with nothing of this test's own cargo invocation
/// leaking in (its RUSTFLAGS and package variables are for the host build).
fn cargo(dir: &Path, args: &[&str]) -> Run {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(dir)
        .args(args)
        .env("CARGO_TARGET_DIR", plugins_target_dir())
        .env("CARGO_TERM_COLOR", "never");
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("CARGO_") && !k.starts_with("CARGO_HOME") && k != "CARGO_TARGET_DIR"
            || k.contains("RUSTFLAGS")
            || k == "RUSTC_WORKSPACE_WRAPPER"
            || k == "RUSTC_WRAPPER"
        {
            c.env_remove(k.as_ref());
        }
    }
    let o = c.output().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn host_triple() -> String {
    let o = Command::new("rustc").arg("-vV").output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_string()
}

/// A temp dir that is not inside this repository (so nothing of the
/// repository's cargo config or workspace can help the build).
fn outside() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    assert!(
        !t.path().starts_with(repo.canonicalize().unwrap()),
        "temp dir {} is inside the repository",
        t.path().display()
    );
    t
}

#[test]
fn a_new_plugin_builds_outside_the_repo_and_runs_as_a_store() {
    let work = outside();
    let dir = work.path().join("groceries");
    let n = Node::new();
    let created = n
        .run(&["plugin", "new", "groceries", "--dir", dir.to_str().unwrap()])
        .ok();
    for f in [
        "Cargo.toml",
        "build.rs",
        "proto/groceries.proto",
        "src/lib.rs",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing: {}", created.stdout);
    }

    // Its CRDT's unit tests pass natively ...
    let tests = cargo(&dir, &["test", "--target", &host_triple()]);
    assert_eq!(tests.code, 0, "template tests failed:\n{}", tests.stderr);
    assert!(
        tests.stdout.contains("test result: ok. 3 passed"),
        "{}",
        tests.stdout
    );
    // ... and one cargo command builds the component.
    let build = cargo(&dir, &["build", "--release"]);
    assert_eq!(build.code, 0, "template build failed:\n{}", build.stderr);
    let wasm = plugins_target_dir().join("wasm32-wasip2/release/groceries.wasm");
    let wasm = wasm.to_str().unwrap();

    n.run(&["mesh", "create"]).ok();
    n.run(&["store", "create", "--type", wasm]).ok();
    let added = n.run(&["groceries", "add", "--text", "oat milk"]).ok();
    let id = added
        .stdout
        .trim()
        .strip_prefix("hex:")
        .unwrap()
        .to_string();
    // A command the plugin refuses: one line, exit 1.
    n.run(&["groceries", "add", "--text", "  "])
        .fails_with("needs some text");
    n.run(&["groceries", "done", "--id", "00ff00"])
        .fails_with("no entry");
    n.run(&["groceries", "done", "--id", &id[..8]]).ok();
    n.run(&["groceries", "done", "--id", &id[..8]])
        .fails_with("already done");

    let list = n.run(&["groceries", "list"]).ok();
    assert!(
        list.stdout.contains("text: oat milk") && list.stdout.contains("done: true"),
        "{}",
        list.stdout
    );
    let json = n.run(&["groceries", "list", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(v["items"][0]["text"], "oat milk");
    assert_eq!(v["items"][0]["done"], true);
}

#[test]
fn a_plugin_that_forgot_no_std_is_told_why_and_what_to_write() {
    let work = outside();
    let dir = work.path().join("stdplugin");
    let n = Node::new();
    n.run(&["plugin", "new", "stdplugin", "--dir", dir.to_str().unwrap()])
        .ok();
    let lib = dir.join("src/lib.rs");
    let src = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, src.replace("#![no_std]\n", "")).unwrap();
    let build = cargo(&dir, &["build", "--release"]);
    assert_ne!(build.code, 0, "a std plugin built:\n{}", build.stderr);
    assert!(
        build.stderr.contains("duplicate lang item")
            && build.stderr.contains("start src/lib.rs with `#![no_std]`"),
        "{}",
        build.stderr
    );
}

#[test]
fn plugin_new_refuses_what_it_cannot_make() {
    let work = outside();
    let n = Node::new();
    let dir = work.path().join("x");
    let d = dir.to_str().unwrap();
    n.run(&["plugin", "new", "Bad_Name", "--dir", d])
        .usage_error("not usable");
    n.run(&["plugin", "new", "store", "--dir", d])
        .usage_error("taken by `lattice store`");
    n.run(&[
        "plugin",
        "new",
        "ok",
        "--dir",
        d,
        "--sdk-path",
        "/nonexistent",
    ])
    .fails_with("no lattice-plugin-sdk there");
    n.run(&["plugin", "new", "ok", "--sdk-rev", "abc"])
        .usage_error("--sdk-git");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("keep.txt"), "mine").unwrap();
    n.run(&["plugin", "new", "ok", "--dir", d])
        .fails_with("not empty");
    assert_eq!(
        std::fs::read_to_string(dir.join("keep.txt")).unwrap(),
        "mine"
    );
    // --json: one line naming what was written.
    let fresh = work.path().join("fresh");
    let out = n
        .run(&[
            "--json",
            "plugin",
            "new",
            "fresh",
            "--dir",
            fresh.to_str().unwrap(),
        ])
        .ok();
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["name"], "fresh");
    assert!(v["sdk"].as_str().unwrap().contains("path ="), "{v}");
}
