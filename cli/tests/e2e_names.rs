//! `lattice node name` across two daemons on loopback: a joiner arrives
//! named, a rename reaches every mesh, and bad names are refused clearly.

#[path = "support/mod.rs"]
mod common;
use common::*;

const FAST: &[&str] = &["--sync-interval", "1"];

/// The name `mesh status` on `on` lists for node `id` (in `mesh`, else
/// the current mesh).
fn listed_name(on: &Node, mesh: Option<&str>, id: &str) -> Option<String> {
    let mut args = vec!["mesh", "status"];
    args.extend(mesh);
    let out = on.run(&args).ok().stdout;
    out.lines()
        .map(str::split_whitespace)
        .find_map(|mut w| match (w.next(), w.next(), w.next()) {
            (Some(pk), Some("active" | "revoked"), name) if pk == id => {
                Some(name.unwrap_or("").to_string())
            }
            _ => None,
        })
}

#[test]
fn joiner_arrives_named_and_renames_reach_every_mesh() {
    let (a, b) = (Node::new(), Node::new());
    // Named before any mesh exists: the name waits for the meshes to come.
    let r = a.run(&["node", "name", "alice"]).ok();
    assert_eq!(r.stdout.trim(), "alice");
    assert!(
        r.stderr.contains("named this node `alice` in 0 meshes"),
        "{}",
        r.stderr
    );
    a.run(&["mesh", "create"]).ok();
    let (a_id, b_id) = (node_id(&a), node_id(&b));
    assert_eq!(listed_name(&a, None, &a_id).as_deref(), Some("alice"));

    let _da = a.daemon_with(FAST);
    let _db = b.daemon_with(FAST);
    b.run(&["node", "name", "bob"]).ok();
    join(&a, &b);
    eventually(30, "the joiner's name reaches the founder", || {
        listed_name(&a, None, &b_id).as_deref() == Some("bob")
    });
    assert_eq!(listed_name(&b, None, &a_id).as_deref(), Some("alice"));

    // Two meshes on b now; a rename writes both.
    b.run(&["mesh", "create", "--name", "own"]).ok();
    assert_eq!(listed_name(&b, Some("own"), &b_id).as_deref(), Some("bob"));
    let r = b.run(&["node", "name", "robert"]).ok();
    assert_eq!(r.stdout.trim(), "robert");
    assert!(
        r.stderr.contains("named this node `robert` in 2 meshes"),
        "{}",
        r.stderr
    );
    assert_eq!(
        listed_name(&b, Some("own"), &b_id).as_deref(),
        Some("robert")
    );
    eventually(30, "the rename replicates to the founder", || {
        listed_name(&a, None, &b_id).as_deref() == Some("robert")
    });

    // Reading it back, as text and JSON, and in `node status`.
    assert_eq!(b.run(&["node", "name"]).ok().stdout.trim(), "robert");
    let status = b.run(&["node", "status"]).ok().stdout;
    assert!(
        status
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["name", "robert"]),
        "{status}"
    );
    let json: serde_json::Value =
        serde_json::from_str(b.run(&["--json", "node", "name"]).ok().stdout.trim()).unwrap();
    assert_eq!(json["name"], "robert");
    assert_eq!(json["meshes"], serde_json::json!([]));

    // Hostile and broken names: one clear line, nothing changed.
    let long = "x".repeat(65);
    for bad in ["evil\u{1b}[2Jname", "two\nlines", "", long.as_str()] {
        let r = b
            .run(&["node", "name", bad])
            .fails_with("invalid node name");
        assert!(
            r.stderr
                .contains("use 1 to 64 characters, no control characters"),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains('\u{1b}'), "raw escape: {:?}", r.stderr);
    }
    assert_eq!(b.run(&["node", "name"]).ok().stdout.trim(), "robert");
    assert_eq!(listed_name(&a, None, &b_id).as_deref(), Some("robert"));
}
