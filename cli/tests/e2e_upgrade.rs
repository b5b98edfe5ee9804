//! `lattice store upgrade` across three daemons on loopback (real Iroh
//! endpoints, real gossip and sync): two members keep writing to a counter
//! store while its creator upgrades it to the counter at state version 2;
//! after sync all three hold the same log and state, and the new plugin's
//! commands work everywhere.

#[path = "support/mod.rs"]
mod common;
use common::*;

use std::process::Stdio;

use lattice_host::artifacts::{COUNTER, COUNTER2};

const FAST: &[&str] = &["--sync-interval", "1"];

fn value(n: &Node) -> Option<i64> {
    let r = n.run(&["--json", "counter", "value", "--store", "votes"]);
    if r.code != 0 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).ok()?;
    // proto3 JSON: sint64 as a string, absent when 0.
    match &v["value"] {
        serde_json::Value::Null => Some(0),
        serde_json::Value::String(s) => s.parse().ok(),
        x => x.as_i64(),
    }
}

fn status(n: &Node) -> String {
    n.run(&["store", "status", "votes"]).stdout
}

#[test]
fn three_nodes_write_while_one_upgrades_and_all_converge() {
    let (f, a, b) = (Node::new(), Node::new(), Node::new());
    f.run(&["mesh", "create"]).ok();
    f.run(&["store", "create", "--type", COUNTER, "--name", "votes"])
        .ok();
    let _df = f.daemon_with(FAST);
    let _da = a.daemon_with(FAST);
    let _db = b.daemon_with(FAST);
    join(&f, &a);
    join(&f, &b);
    eventually(60, "members run the counter store", || {
        value(&a).is_some() && value(&b).is_some()
    });

    // The members write while the creator upgrades (a member's command
    // may land before or after it sees the upgrade; both are fine).
    let writers: Vec<_> = [&a, &b]
        .into_iter()
        .flat_map(|n| {
            (0..5).map(|_| {
                n.cmd()
                    .args(["counter", "increment", "--store", "votes", "--by", "10"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
        })
        .collect();
    let up = f
        .run(&["store", "upgrade", "votes", "--type", COUNTER2])
        .ok();
    assert!(
        up.stdout.contains("state version 1 -> 2") && up.stdout.contains("profile v2"),
        "{}",
        up.stdout
    );
    for w in writers {
        let out = w.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    f.run(&["counter", "increment", "--store", "votes", "--by", "1"])
        .ok();

    // Converge: same log and state digests, the new plugin everywhere.
    eventually(90, "all three agree on votes", || {
        let d = f.run(&["store", "digest", "votes"]).stdout;
        [&a, &b]
            .iter()
            .all(|n| n.run(&["store", "digest", "votes"]).stdout == d)
            && [&f, &a, &b].iter().all(|n| value(n) == Some(101))
    });
    for n in [&f, &a, &b] {
        let s = status(n);
        assert!(
            s.contains("v0.2.0") && s.contains("version 2, profile v2"),
            "{s}"
        );
    }
    // The new plugin's commands work on every node.
    a.run(&["counter", "increment", "--store", "votes", "--by", "2"])
        .ok();
    b.run(&["counter", "decrement", "--store", "votes", "--by", "3"])
        .ok();
    eventually(60, "the new plugin's ops reach everyone", || {
        [&f, &a, &b].iter().all(|n| value(n) == Some(100))
    });

    // Clear refusals, one line each.
    f.run(&["store", "upgrade", "votes", "--type", COUNTER2])
        .fails_with("already runs plugin");
    a.run(&["store", "upgrade", "votes", "--type", COUNTER])
        .fails_with("only the creator of store `votes`");
    f.run(&["store", "upgrade", "nosuch", "--type", COUNTER2])
        .fails_with("unknown store `nosuch`");
    // Back to version 1: counter v1 cannot read state version 2.
    f.run(&["store", "upgrade", "votes", "--type", COUNTER])
        .fails_with("cannot migrate store `votes` from state version 2");
}
