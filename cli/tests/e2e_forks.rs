//! A member forks a room with a modified client, end to end: two real
//! daemons on loopback, the member's key used to sign a second entry at a
//! position it already filled, one branch in each node's log. Their
//! background syncs find the fork, and both show the same verdict through
//! the stock CLI: `store forks`, `store status`, `mesh status`.

#[path = "support/mod.rs"]
mod common;
use common::*;

use lattice_kernel::{COUNTER_BITS, Draft, SignedEntry, StoreId, now_ms};

const FAST: &[&str] = &["--sync-interval", "1"];

/// Signs, with `forker`'s own key, another entry at the seq of its last
/// entry in `store` (its modified client), and hands it to `victim`'s log
/// only. Both nodes must be stopped (the test opens their data dirs).
fn fork(forker: &Node, victim: &Node, store: StoreId) -> SignedEntry {
    let x = lattice_host::node::Node::open(forker.path()).unwrap();
    let me = x.author();
    let tips = x.kernel().tips(&store).unwrap();
    let tip = tips
        .iter()
        .find(|t| t.author == me)
        .expect("the forker posted");
    let last = x.kernel().get(&tip.id).unwrap().unwrap();
    let twin = SignedEntry::sign(
        x.kernel().identity(),
        Draft {
            store,
            seq: last.seq,
            prev: last.prev,
            hlc: (now_ms() << COUNTER_BITS).max(last.hlc + 1),
            deps: last.deps.clone(),
            payload: last.payload.clone(),
        },
    );
    assert_ne!(twin.id, last.id);
    drop(x);
    let v = lattice_host::node::Node::open(victim.path()).unwrap();
    // The victim holds neither yet; give it the twin only.
    assert!(!v.kernel().contains(&last.id).unwrap());
    let r = v.kernel().ingest(&[twin.to_wire()]).unwrap();
    assert_eq!(r.committed, vec![twin.id], "{:?}", r.outcomes);
    twin
}

#[test]
fn a_fork_by_a_member_is_found_by_sync_and_shown_the_same_on_both_nodes() {
    let (f, x) = (Node::new(), Node::new());
    f.setup();
    {
        let _df = f.daemon_with(FAST);
        let _dx = x.daemon_with(FAST);
        join(&f, &x);
        eventually(30, "x has the room", || {
            x.run(&["store", "list"]).stdout.contains("general")
        });
    }
    // Both offline: X posts (only X has it), then its twin goes to F.
    x.run(&["general", "post", "--text", "the real one"]).ok();
    let store: StoreId = {
        let out = x.run(&["--json", "store", "status", "general"]).ok().stdout;
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        StoreId::from_uuid(v["store"]["id"].as_str().unwrap()).unwrap()
    };
    fork(&x, &f, store);
    let xid = node_id(&x);
    let _df = f.daemon_with(FAST);
    let _dx = x.daemon_with(FAST);
    for n in [&f, &x] {
        eventually(30, "the fork is proved on this node", || {
            let r = n.run(&["--json", "store", "forks", "general"]);
            r.code == 0 && r.stdout.contains(&xid)
        });
        let forks = n.run(&["--json", "store", "forks", "general"]).ok().stdout;
        let v: serde_json::Value = serde_json::from_str(forks.lines().next().unwrap()).unwrap();
        assert_eq!(v["author"], xid.as_str());
        assert!(v["seq"].is_string(), "64-bit as a string: {v}");
        assert!(v["entries"].as_array().is_some_and(|e| e.len() >= 2), "{v}");
        let status = n.run(&["store", "status", "general"]).ok().stdout;
        assert!(status.contains("FORKED"), "{status}");
        let mesh = n.run(&["mesh", "status"]).ok().stdout;
        assert!(mesh.contains("active,forked"), "{mesh}");
    }
    // The same verdict on both: the forked post is void everywhere.
    for n in [&f, &x] {
        eventually(30, "the forked post is void", || {
            !texts(n).contains(&"the real one".to_string())
        });
    }
}
