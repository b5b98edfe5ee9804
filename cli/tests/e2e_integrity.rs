//! Storage corruption is reported, not served; an empty or foreign log file
//! and a data dir others can write are refused. Real binary, raw bytes
//! flipped in `lattice.redb` (found by searching the file for a text posted).

#[path = "support/mod.rs"]
mod common;
use common::*;

use std::path::Path;

/// The envelope's signature field (tag 2, 64 bytes) follows the body, and a
/// chat post's text ends the body: a copy of the text followed by these
/// bytes is inside a stored entry, any other copy is plugin state.
const SIGNATURE_FIELD: [u8; 2] = [0x12, 0x40];

/// Flips one byte in every copy of `text` in the file for which `pick`
/// (given the bytes after the copy) is true; returns how many.
fn flip(db: &Path, text: &str, pick: impl Fn(&[u8]) -> bool) -> usize {
    let mut bytes = std::fs::read(db).unwrap();
    let t = text.as_bytes();
    let mut hits = 0;
    let mut i = 0;
    while i + t.len() <= bytes.len() {
        if &bytes[i..i + t.len()] == t && pick(&bytes[i + t.len()..]) {
            bytes[i + t.len() - 1] ^= 0x01;
            hits += 1;
        }
        i += 1;
    }
    std::fs::write(db, &bytes).unwrap();
    hits
}

fn db(n: &Node) -> std::path::PathBuf {
    n.path().join("lattice.redb")
}

#[test]
fn a_flipped_entry_body_is_reported_and_never_shown() {
    let n = Node::new();
    n.setup();
    let d = n.daemon();
    n.run(&["general", "post", "--text", "canary-entry-4f1d2b"])
        .ok();
    n.run(&["general", "post", "--text", "an intact message"])
        .ok();
    let clean = n.run(&["store", "verify", "general"]).ok();
    assert!(
        clean.stdout.contains("2 checked") && !clean.stdout.contains("problem"),
        "{}",
        clean.stdout
    );
    assert_eq!(d.stop(), 0);

    assert!(
        flip(&db(&n), "canary-entry-4f1d2b", |after| after
            .starts_with(&SIGNATURE_FIELD))
            >= 1
    );

    // The log read refuses the altered entry instead of printing it.
    let log = n
        .run(&["store", "log", "general"])
        .fails_with("corrupt entry");
    assert!(
        !log.stdout.contains("canary-entry-4f1d2c"),
        "{}",
        log.stdout
    );
    let v = n
        .run(&["store", "verify", "general"])
        .fails_with("failed verification");
    assert!(
        v.stdout
            .contains("is corrupt: its body no longer hashes to its id"),
        "{}",
        v.stdout
    );
    assert!(v.stdout.contains("1 checked"), "{}", v.stdout);
    // After a failed verify the store is not served at all.
    n.run(&["general", "messages"])
        .fails_with("failed its last integrity check");
    // Through a daemon too.
    let _d = n.daemon();
    n.run(&["general", "messages"])
        .fails_with("failed its last integrity check");
    n.run(&["store", "log", "general"])
        .fails_with("corrupt entry");
}

#[test]
fn a_flipped_state_value_is_reported_and_the_store_refused() {
    let n = Node::new();
    n.setup();
    n.run(&["general", "post", "--text", "canary-state-8e90c1"])
        .ok();
    n.run(&["store", "verify", "general"]).ok();

    assert!(
        flip(&db(&n), "canary-state-8e90c1", |after| !after
            .starts_with(&SIGNATURE_FIELD))
            >= 1
    );

    // The log is intact and still shows the original text.
    let log = n.run(&["store", "log", "general"]).ok();
    assert!(log.stdout.contains("canary-state-8e90c1"), "{}", log.stdout);
    let v = n
        .run(&["store", "verify", "general"])
        .fails_with("failed verification");
    assert!(
        v.stdout.contains("MISMATCH") && v.stdout.contains("a plugin state value was altered"),
        "{}",
        v.stdout
    );
    let m = n
        .run(&["general", "messages"])
        .fails_with("failed its last integrity check");
    assert!(!m.stdout.contains("canary-state-8e90c0"), "{}", m.stdout);
    // Other stores are unaffected.
    n.run(&["settings", "put", "--key", "k", "--value", "v"])
        .ok();
    n.run(&["store", "verify", "settings"]).ok();
    let json = n.run(&["store", "verify", "general", "--json"]);
    assert_eq!(json.code, 1);
    let line = json.stdout.lines().next().unwrap_or_default();
    let parsed: serde_json::Value = serde_json::from_str(line).expect("JSON report");
    assert_eq!(parsed["problems"].as_array().map(|a| a.len()), Some(1));
    let err: serde_json::Value =
        serde_json::from_str(json.stderr.trim()).expect("the failure as a JSON error");
    assert_eq!(err["kind"], "integrity");
}

#[test]
fn an_empty_or_garbage_log_file_is_an_error_and_left_alone() {
    let n = Node::new();
    n.run(&["mesh", "create"]).ok();
    std::fs::write(db(&n), b"").unwrap();
    n.run(&["node", "status"]).fails_with("is empty (0 bytes)");
    assert_eq!(std::fs::metadata(db(&n)).unwrap().len(), 0);

    let garbage: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(db(&n), &garbage).unwrap();
    n.run(&["mesh", "list"])
        .fails_with("not a lattice log database");
    assert_eq!(std::fs::read(db(&n)).unwrap(), garbage);
}

#[test]
fn a_data_dir_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let n = Node::new();
    n.run(&["mesh", "create"]).ok();
    let set =
        |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    set(n.path(), 0o777);
    n.run(&["node", "status"])
        .fails_with("group or others can write it");
    set(n.path(), 0o700);
    set(&n.path().join("node.key"), 0o644);
    n.run(&["node", "status"])
        .fails_with("must be private to its owner");
    set(&n.path().join("node.key"), 0o600);
    n.run(&["node", "status"]).ok();
}
