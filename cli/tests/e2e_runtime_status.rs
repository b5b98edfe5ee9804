//! `node status`'s runtime section on real daemons over loopback: the
//! figures a soak watches for leaks are there, and they move, i.e. a sync
//! session in flight is counted while it waits on a stalled peer and given
//! back when it fails, and served streams return to 0 after a catch-up.

#[path = "support/mod.rs"]
mod common;
use common::*;
use serde_json::Value;

fn runtime(n: &Node) -> Value {
    let out = n.run(&["--json", "node", "status"]).ok().stdout;
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    v["runtime"].clone()
}

fn count(rt: &Value, field: &str) -> u64 {
    rt[field]
        .as_u64()
        .unwrap_or_else(|| panic!("runtime.{field} missing: {rt}"))
}

#[test]
fn runtime_figures_are_present_and_move() {
    let (a, b) = (Node::new(), Node::new());
    a.setup();
    // Without a daemon: no network figures, the rest still honest.
    let off = runtime(&a);
    assert_eq!(off["online"], false, "{off}");
    assert_eq!(count(&off, "orphans"), 0);
    assert_eq!(count(&off, "plugin_slots_used"), 0, "{off}");
    assert!(count(&off, "plugin_slots") >= 1, "{off}");
    let human = a.run(&["node", "status"]).ok().stdout;
    assert!(human.contains("orphans    0"), "{human}");
    assert!(!human.contains("network "), "{human}");

    let _da = a.daemon();
    let db = b.daemon();
    join(&a, &b);
    for i in 0..50 {
        a.run(&["general", "post", "--text", &format!("m{i}")]).ok();
    }
    b.run(&["store", "sync", "general"]).ok();
    // After the catch-up: one known peer, connections and topics up, every
    // session and served stream given back.
    eventually(20, "a's served streams and b's sessions back to 0", || {
        let (ra, rb) = (runtime(&a), runtime(&b));
        count(&ra, "streams_in") == 0
            && count(&rb, "sessions_out") == 0
            && count(&ra, "incoming") <= count(&ra, "connections")
    });
    let ra = runtime(&a);
    assert_eq!(ra["online"], true, "{ra}");
    assert_eq!(count(&ra, "known_peers"), 1, "{ra}");
    assert!(count(&ra, "connections") >= 1, "{ra}");
    assert!(count(&ra, "gossip_topics") >= 2, "{ra}");
    assert!(count(&ra, "gossip_overlays") >= 1, "{ra}");
    assert!(count(&ra, "tasks") >= 1, "{ra}");
    assert!(count(&ra, "plugins_loaded") >= 2, "{ra}");
    assert_eq!(count(&ra, "orphans"), 0, "{ra}");
    let human = a.run(&["node", "status"]).ok().stdout;
    for line in ["network    ", "sessions   ", "gossip     ", "tasks      "] {
        assert!(human.contains(line), "no `{line}` line: {human}");
    }

    // A stalled peer (SIGSTOP: its socket stays, nothing answers): a's
    // sync with it is counted while it waits, and given back when it fails.
    unsafe_kill(db.child.id(), 19);
    let mut sync = a
        .cmd()
        .args(["store", "sync", "general"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    eventually(20, "a counts its sync with the stalled peer", || {
        count(&runtime(&a), "sessions_out") >= 1
    });
    sync.wait().unwrap();
    unsafe_kill(db.child.id(), 18);
    eventually(30, "a's sessions back to 0 after the failed sync", || {
        count(&runtime(&a), "sessions_out") == 0
    });
}
