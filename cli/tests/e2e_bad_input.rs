//! Bad input at the command line: one clear line, exit 1 (2 for a wrong
//! command line), nothing lost.

#[path = "support/mod.rs"]
mod common;
use common::*;

fn messages(n: &Node) -> String {
    n.run(&["general", "messages"]).ok().stdout
}

#[test]
fn bad_commands_flags_and_values() {
    let n = Node::new();
    n.setup();
    n.run(&["general", "post", "--text", "keep me"]).ok();
    n.run(&["nosuch", "post"])
        .usage_error("unknown command `nosuch`");
    n.run(&["general", "frobnicate"])
        .usage_error("valid methods: post");
    n.run(&["general", "post", "--txt", "x"])
        .usage_error("valid flags: --text");
    n.run(&["general", "messages", "--limit", "many"])
        .usage_error("--limit");
    n.run(&["settings", "get", "--key", "a", "--mode", "sideways"])
        .usage_error("sideways");
    n.run(&["store", "status", "nosuch"])
        .fails_with("unknown store `nosuch`");
    n.run(&["store", "create", "--type", "nosuchtype"])
        .fails_with("unknown store type");
    n.run(&["store", "create", "--type", "chat", "--name", "general"])
        .fails_with("already exists");
    n.run(&["store", "create", "--type", "chat", "--name", "mesh"])
        .fails_with("lattice command");
    n.run(&["mesh", "use", "nosuch"]).fails_with("unknown mesh");
    n.run(&["store", "--bogus"]).usage_error("--bogus");
    assert!(messages(&n).contains("keep me"));
}

#[test]
fn bad_plugins_are_refused() {
    let n = Node::new();
    n.setup();
    n.run(&["general", "post", "--text", "keep me"]).ok();
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.wasm");
    std::fs::write(&corrupt, b"\0asm this is not a component").unwrap();
    n.run(&["store", "create", "--type", corrupt.to_str().unwrap()])
        .fails_with("plugin refused");
    let huge = dir.path().join("huge.wasm");
    std::fs::write(&huge, vec![0u8; 17 << 20]).unwrap();
    n.run(&["store", "create", "--type", huge.to_str().unwrap()])
        .fails_with("the limit is");
    let wasi = lattice_host::artifacts::WASI_IMPORT;
    n.run(&["store", "create", "--type", wasi])
        .fails_with("wasi:");
    n.run(&["plugin", "inspect", wasi]).fails_with("wasi:");
    n.run(&["store", "create", "--type", "/nonexistent/x.wasm"])
        .fails_with("cannot read plugin file");
    assert!(messages(&n).contains("keep me"));
    let list = n.run(&["store", "list"]).ok();
    assert_eq!(
        list.stdout.lines().count(),
        2,
        "no store was half-created: {}",
        list.stdout
    );
}

#[test]
fn unusable_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let r = std::process::Command::new(BIN)
        .args(["--data-dir", file.to_str().unwrap(), "node", "status"])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("not-a-dir") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn commands_before_a_mesh_exists_explain_what_to_do() {
    let n = Node::new();
    n.run(&["store", "create", "--type", "chat"])
        .fails_with("lattice mesh create");
    n.run(&["store", "list"]).fails_with("lattice mesh create");
}
