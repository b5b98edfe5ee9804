//! Partition and heal across network namespaces: two daemons in their own
//! namespaces, linked through a bridge namespace (`support/netns.rs`).
//! Link down, writes on both sides, link up: both converge. Needs root (CI
//! runs as root); elsewhere it says why it skipped.

#[path = "support/mod.rs"]
mod common;
use std::time::Duration;

use common::*;

fn texts(n: &Node) -> String {
    n.run(&["general", "messages", "--limit", "1000"]).stdout
}

#[test]
fn partition_then_heal_converges() {
    if !netns::available() {
        eprintln!("skipping partition test: network namespaces need root and iproute2");
        return;
    }
    let net = netns::Net::new(2);
    let (a, b) = (Node::new(), Node::new());
    a.setup();
    let _da = net.daemon(0, &a);
    let _db = net.daemon(1, &b);
    let token = a.run(&["mesh", "invite"]).ok().stdout.trim().to_string();
    b.run(&["mesh", "join", &token]).ok();
    b.run(&["general", "post", "--text", "before the partition"])
        .ok();
    eventually(30, "a sees b's message", || {
        texts(&a).contains("before the partition")
    });

    net.link(0, false);
    a.run(&["general", "post", "--text", "a during the partition"])
        .ok();
    b.run(&["general", "post", "--text", "b during the partition"])
        .ok();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !texts(&b).contains("a during"),
        "the partition is real: nothing crosses it"
    );
    assert!(
        !texts(&a).contains("b during"),
        "the partition is real: nothing crosses it"
    );

    net.link(0, true);
    eventually(90, "both sides converge after the link heals", || {
        let (ta, tb) = (texts(&a), texts(&b));
        ta.contains("b during") && tb.contains("a during")
    });
    let da = a.run(&["store", "digest", "general"]).ok().stdout;
    let db = b.run(&["store", "digest", "general"]).ok().stdout;
    assert_eq!(da, db);
}
