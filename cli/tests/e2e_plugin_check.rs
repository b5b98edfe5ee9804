//! `lattice plugin check` and `plugin inspect` through the real binary:
//! a good plugin passes with a dry run of every method; each way a plugin
//! can be wrong fails with exit 1, the report on stdout, and one line on
//! stderr naming the cause and the fix.

#[path = "support/mod.rs"]
mod common;
use common::*;

use lattice_host::artifacts;

fn check(n: &Node, path: &str) -> Run {
    n.run(&["plugin", "check", path])
}

#[test]
fn a_good_plugin_passes_with_every_method_dry_run() {
    let n = Node::new();
    let r = check(&n, artifacts::COUNTER).ok();
    for want in [
        "world     lattice:plugin/state-machine@0.2.0",
        "lattice:plugin/state@0.2.0 provided",
        "exports   describe, prepare, apply, query, migrate",
        "fuel per apply",
        "describe  counter",
        "increment      command  ok: op of",
        "applied with 1 write(s)",
        "value          query    ok: reply of",
        "migrate        export   ok: migrate(1) ok, nothing to rewrite",
        "verdict   ok",
    ] {
        assert!(r.stdout.contains(want), "lacks {want:?}:\n{}", r.stdout);
    }
    let j = n
        .run(&["--json", "plugin", "check", artifacts::COUNTER])
        .ok();
    let v: serde_json::Value = serde_json::from_str(j.stdout.trim()).unwrap();
    assert_eq!(v["api_version"], "0.2.0");
    assert_eq!(v["dry_runs"].as_array().unwrap().len(), 4);
    assert!(v["problems"].as_array().unwrap().is_empty());
}

/// The counter as built against lattice:plugin@0.1.0, checked in.
const V0_1_0: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../host/tests/fixtures/counter-v0.1.0.wasm"
);

#[test]
fn a_0_1_0_plugin_checks_and_runs_unchanged_and_a_0_2_0_command_answers() {
    let n = Node::new();
    let r = check(&n, V0_1_0).ok();
    assert!(r.stdout.contains("state-machine@0.1.0"), "{}", r.stdout);
    assert!(!r.stdout.contains("migrate"), "{}", r.stdout);
    n.run(&["mesh", "create"]).ok();
    n.run(&["store", "create", "--type", V0_1_0, "--name", "old"])
        .ok();
    n.run(&[
        "store",
        "create",
        "--type",
        artifacts::COUNTER,
        "--name",
        "new",
    ])
    .ok();
    // 0.1.0: a command prints its entry id only (no reply in that world).
    let old = n.run(&["old", "increment", "--by", "4"]).ok();
    assert_eq!(old.stdout.lines().count(), 1, "{}", old.stdout);
    assert!(old.stdout.starts_with("hex:"), "{}", old.stdout);
    let v = n.run(&["old", "value"]).ok();
    assert!(v.stdout.contains("value: 4"), "{}", v.stdout);
    // 0.2.0: the reply reaches the user, in text and in JSON.
    let new = n.run(&["new", "increment", "--by", "4"]).ok();
    assert!(
        new.stdout.starts_with("hex:") && new.stdout.contains("value: 4"),
        "{}",
        new.stdout
    );
    let j = n.run(&["--json", "new", "decrement", "--by", "1"]).ok();
    let v: serde_json::Value = serde_json::from_str(j.stdout.trim()).unwrap();
    assert_eq!(v["reply"]["value"], "3", "{v}");
    assert_eq!(v["seq"], "2");
}

#[test]
fn a_std_plugin_is_told_it_imports_wasi_and_how_to_fix_it() {
    let n = Node::new();
    let r = check(&n, artifacts::WASI_IMPORT).fails_with("built with std");
    assert!(r.stderr.contains("#![no_std]"), "{}", r.stderr);
    assert!(r.stdout.contains("wasi:cli/environment"), "{}", r.stdout);
    assert!(r.stdout.contains("NOT PROVIDED"), "{}", r.stdout);
}

#[test]
fn a_missing_export_is_named_with_the_macro_that_adds_it() {
    let n = Node::new();
    let r = check(&n, artifacts::PARTIAL).fails_with("does not export `apply`");
    assert!(r.stderr.contains("export_plugin!"), "{}", r.stderr);
    // load refuses it too, in its own words.
    n.run(&["plugin", "inspect", artifacts::PARTIAL])
        .fails_with("does not match the lattice:plugin@0.1.0 world");
}

#[test]
fn not_a_component_is_explained() {
    let n = Node::new();
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    check(&n, core.to_str().unwrap()).fails_with("core wasm module, not a component");
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm at all").unwrap();
    check(&n, junk.to_str().unwrap()).fails_with("wasm32-wasip2");
    check(&n, dir.path().join("absent.wasm").to_str().unwrap())
        .fails_with("cannot read plugin file");
}

#[test]
fn a_plugin_that_loops_or_writes_in_a_query_fails_its_dry_run() {
    let n = Node::new();
    let r = check(&n, artifacts::EVIL).fails_with("problem(s)");
    for want in [
        "loop-in-prepare",
        "out of fuel",
        "unbounded loop",
        "write-in-query",
        "write only in apply",
        "reject         query    ok: rejected: evil says no",
    ] {
        assert!(r.stdout.contains(want), "lacks {want:?}:\n{}", r.stdout);
    }
}

#[test]
fn inspect_shows_methods_flags_and_the_op_type_with_their_comments() {
    let n = Node::new();
    let r = n.run(&["plugin", "inspect", artifacts::COUNTER]).ok();
    for want in [
        "service   lattice.counter.Counter  Count things together.",
        "increment      command  IncrementRequest -> IncrementReply  Add to the counter.",
        "--by",
        "How much to add",
        "value          query",
        "op type   lattice.counter.CounterOp",
        "oneof change",
        "increment        uint64",
    ] {
        assert!(r.stdout.contains(want), "lacks {want:?}:\n{}", r.stdout);
    }
}
