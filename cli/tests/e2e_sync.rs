//! `lattice store sync` on two real daemons: one store or all of them, text
//! and JSON, progress lines, and the errors a user meets (no daemon, no
//! such store); `mesh join`'s progress too.

#[path = "support/mod.rs"]
mod common;
use common::*;

#[test]
fn store_sync_one_store_or_all_with_json_lines() {
    let (f, x) = (Node::new(), Node::new());
    f.setup();
    // Without a daemon there is no network to sync over.
    let r = f.run(&["--json", "store", "sync", "general"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("\"kind\":\"offline\""), "{}", r.stderr);
    let _df = f.daemon();
    let _dx = x.daemon();
    // `mesh join` shows the progress of its catch-up the same way.
    let token = f.run(&["mesh", "invite"]).ok().stdout.trim().to_string();
    let joined = x.run(&["mesh", "join", &token]).ok();
    assert!(
        joined.stderr.lines().any(|l| l.starts_with("synced ")),
        "{}",
        joined.stderr
    );
    let xid = node_id(&x);
    // One store: one line per member peer, for that store only.
    let one = f.run(&["--json", "store", "sync", "general"]).ok().stdout;
    let lines: Vec<serde_json::Value> = one
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{one}");
    assert_eq!(lines[0]["store"], "general");
    assert_eq!(lines[0]["peer"], xid.as_str());
    assert_eq!(lines[0]["ok"], true, "{one}");
    // All stores: general and settings (and the mesh's root store) with X;
    // progress on stderr, a plain line per session when it is not a
    // terminal ("synced STORE with PEER (n/total)").
    let r = f.run(&["store", "sync"]).ok();
    let all = r.stdout;
    assert!(all.contains("general") && all.contains("settings"), "{all}");
    assert!(all.lines().all(|l| l.contains(" ok ")), "{all}");
    let progress: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("synced "))
        .collect();
    assert_eq!(progress.len(), all.lines().count(), "{}", r.stderr);
    let n = progress.len();
    assert!(
        progress[n - 1].ends_with(&format!("({n}/{n})")),
        "{progress:?}"
    );
    assert!(
        progress.iter().any(|l| l.contains(&xid[..8])),
        "{progress:?}"
    );
    f.run(&["store", "sync", "nosuch"])
        .fails_with("unknown store `nosuch`");
}
