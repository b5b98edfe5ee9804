//! Shell completion, the man page and `--version`, through the real binary.
//!
//! Completion is exercised the way a shell does it: bash sources the script
//! `lattice completions bash` prints, and the test calls the function it
//! registered with `COMP_WORDS` set, as a TAB would.

#[path = "support/mod.rs"]
mod common;
use common::*;

use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `body` in bash after sourcing the completion script; `$BIN` is the
/// binary under test.
fn bash(body: &str, env: &[(&str, &Path)]) -> Run {
    let script = format!("set -u\nsource <(\"$BIN\" completions bash) || exit 3\n{body}");
    let mut c = Command::new("bash");
    c.arg("-c")
        .arg(script)
        .env("BIN", BIN)
        .env_remove("RUST_LOG")
        .env_remove("LATTICE_HOME")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("bash runs");
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Bash code that completes the last of `words` (the word under the cursor)
/// and prints one candidate a line.
fn tab(words: &[&str]) -> String {
    let quoted: Vec<String> = words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
        .collect();
    let cword = words.len() - 1;
    let prev = if cword > 0 {
        quoted[cword - 1].clone()
    } else {
        "''".into()
    };
    format!(
        "COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_TYPE=9\n\
         _clap_complete_lattice lattice {cur} {prev}\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        words = quoted.join(" "),
        cur = quoted[cword],
    )
}

fn lines(r: &Run) -> Vec<String> {
    r.stdout.lines().map(|l| l.trim().to_string()).collect()
}

#[track_caller]
fn has(cands: &[String], want: &str) {
    assert!(
        cands.iter().any(|c| c == want),
        "no candidate `{want}` in {cands:?}"
    );
}

#[test]
fn completion_scripts_are_produced_and_bash_parses_its_own() {
    let bash_script = Command::new(BIN)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(bash_script.status.success());
    let text = String::from_utf8(bash_script.stdout).unwrap();
    assert!(
        text.contains("complete ") && text.contains("_clap_complete_lattice"),
        "{text}"
    );
    // The script calls this very binary back at TAB time.
    assert!(text.contains(BIN), "script does not call {BIN}: {text}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lattice.bash");
    std::fs::write(&file, &text).unwrap();
    let check = Command::new("bash").arg("-n").arg(&file).output().unwrap();
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    for (shell, marker) in [("zsh", "compdef"), ("fish", "complete ")] {
        let r = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&r.stdout);
        assert!(
            r.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        assert!(
            out.contains(marker) && out.contains("COMPLETE="),
            "{shell}: {out}"
        );
    }

    let bad = Command::new(BIN)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert!(!bad.status.success(), "an unknown shell is refused");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("tcsh"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn completion_offers_stores_created_after_the_script_and_plugin_methods() {
    let n = Node::new();
    n.setup(); // a mesh, chat store `general`, kv store `settings`
    let home = [("LATTICE_HOME", n.path())];

    // Top level: static commands and the node's plugin commands.
    let top = bash(&tab(&["lattice", ""]), &home).ok();
    let cands = lines(&top);
    for want in [
        "store",
        "mesh",
        "completions",
        "man",
        "general",
        "chat",
        "settings",
    ] {
        has(&cands, want);
    }

    // A store created after the script was sourced completes where a
    // command takes a store.
    let body = format!(
        "\"$BIN\" store create --type log --name later-store >/dev/null 2>&1 || exit 4\n{}",
        tab(&["lattice", "store", "status", ""])
    );
    let r = bash(&body, &home).ok();
    let cands = lines(&r);
    for want in ["general", "settings", "later-store"] {
        has(&cands, want);
    }
    let prefix = bash(&tab(&["lattice", "watch", "gen"]), &home).ok();
    assert_eq!(lines(&prefix), ["general"], "{}", prefix.stdout);

    // Plugin methods and their flags, with the data dir named on the line
    // instead of in the environment.
    let dir = n.path().to_str().unwrap();
    let methods = bash(&tab(&["lattice", "--data-dir", dir, "general", ""]), &[]).ok();
    let cands = lines(&methods);
    for want in ["post", "messages", "reply"] {
        has(&cands, want);
    }
    let flags = bash(
        &tab(&["lattice", "--data-dir", dir, "general", "post", "--"]),
        &[],
    )
    .ok();
    let cands = lines(&flags);
    has(&cands, "--text");
    has(&cands, "--store");
    has(&cands, "--json");
    // `--store` of a chat command offers the chat stores only.
    let stores = bash(&tab(&["lattice", "chat", "post", "--store", ""]), &home).ok();
    assert_eq!(lines(&stores), ["general"], "{}", stores.stdout);
}

#[test]
fn completion_without_a_node_is_static_and_creates_no_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-node-here");
    let env = [("LATTICE_HOME", missing.as_path())];

    let top = bash(&tab(&["lattice", ""]), &env).ok();
    let cands = lines(&top);
    has(&cands, "store");
    has(&cands, "daemon");
    assert!(!cands.iter().any(|c| c == "general"), "{cands:?}");
    let r = bash(&tab(&["lattice", "store", "st"]), &env).ok();
    assert_eq!(lines(&r), ["status"], "{}", r.stdout);
    let r = bash(&tab(&["lattice", "store", "create", "--type", ""]), &env).ok();
    let cands = lines(&r);
    for want in ["kv", "log", "chat"] {
        has(&cands, want);
    }
    let r = bash(&tab(&["lattice", "store", "status", ""]), &env).ok();
    assert!(
        r.stderr.trim().is_empty(),
        "completion is quiet: {}",
        r.stderr
    );
    let named = missing.join("elsewhere");
    let r = bash(
        &tab(&["lattice", "--data-dir", named.to_str().unwrap(), "chat", ""]),
        &env,
    )
    .ok();
    assert!(
        r.stderr.trim().is_empty(),
        "completion is quiet: {}",
        r.stderr
    );
    assert!(
        !missing.exists(),
        "completion created {}",
        missing.display()
    );
}

#[test]
fn man_page_lists_the_commands() {
    let r = Command::new(BIN).arg("man").output().unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let roff = String::from_utf8(r.stdout).unwrap();
    assert!(roff.contains(".TH lattice 1"), "{roff}");
    for sub in [
        "daemon",
        "mesh",
        "store",
        "plugin",
        "watch",
        "completions",
        "man",
    ] {
        assert!(
            roff.contains(&format!("lattice\\-{sub}(1)")),
            "no `{sub}` in the SUBCOMMANDS section: {roff}"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let r = Command::new(BIN)
        .args(["man", "--dir"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    for page in [
        "lattice.1",
        "lattice-store.1",
        "lattice-store-status.1",
        "lattice-mesh-join.1",
    ] {
        let text =
            std::fs::read_to_string(out.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page}: {text}");
    }
}

#[test]
fn version_names_the_plugin_api() {
    let r = Command::new(BIN).arg("--version").output().unwrap();
    assert!(r.status.success());
    let out = String::from_utf8(r.stdout).unwrap();
    let apis: Vec<String> = lattice_host::runtime::SUPPORTED_API_VERSIONS
        .iter()
        .map(|v| format!("lattice:plugin@{v}"))
        .collect();
    assert!(!apis.is_empty());
    assert_eq!(
        out.trim(),
        format!(
            "lattice {} (plugin API {})",
            env!("CARGO_PKG_VERSION"),
            apis.join(", ")
        )
    );
    assert!(out.contains("lattice:plugin@0.1.0"), "{out}");
}
