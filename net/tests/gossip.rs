//! Gossip announcements, gap repair and anti-entropy between real nodes.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use lattice_kernel::StoreId;
use lattice_net::NetConfig;

/// Every sync each node has recorded: (node, peer, store, finished at).
fn sync_log(nodes: &[&Node]) -> Vec<(usize, String, String, u64)> {
    let mut v = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        for p in n.net.peers() {
            for x in p.syncs {
                v.push((i, p.id.to_hex(), x.store.to_hex(), x.at_ms));
            }
        }
    }
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_delivers_new_entries_without_sync() {
    init_tracing();
    let a = Node::start(test_config()).await;
    let b = Node::start(test_config()).await;
    let c = Node::start(test_config()).await;
    let s = StoreId::random();
    mesh(&[&a, &b, &c], s);
    // Each link's neighbour-up runs one catch-up sync; once the overlay is
    // complete and those are done, nothing else may sync.
    for n in [&a, &b, &c] {
        let full = eventually(Duration::from_secs(10), || {
            n.net.gossip_neighbors(&s).len() == 2 && n.net.pending_syncs() == 0
        })
        .await;
        assert!(full.is_some(), "overlay of 3 did not complete");
    }
    let syncs = sync_log(&[&a, &b, &c]);

    let mut worst = Duration::ZERO;
    for i in 0..20 {
        let e = a.write(s, 1, 200).pop().unwrap();
        for n in [&b, &c] {
            let t = eventually(Duration::from_secs(5), || n.kernel.contains(&e.id).unwrap())
                .await
                .unwrap_or_else(|| panic!("entry {i} not delivered by gossip"));
            worst = worst.max(t);
        }
    }
    tracing::info!(?worst, "worst gossip delivery");
    // No sync ran: anti-entropy is off and nothing had a gap.
    assert_eq!(
        sync_log(&[&a, &b, &c]),
        syncs,
        "entries moved by sync, not gossip"
    );
    assert_eq!(b.kernel.status(&s).unwrap(), a.kernel.status(&s).unwrap());
    for n in [a, b, c] {
        n.net.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_gap_triggers_sync() {
    init_tracing();
    let a = Node::start(test_config()).await;
    let b = Node::start(test_config()).await;
    let s = StoreId::random();
    mesh(&[&a, &b], s);
    wait_neighbors(&[&a, &b], s, 1).await;

    a.hook.enabled.store(false, Ordering::SeqCst);
    a.write(s, 30, 100); // never announced
    a.hook.enabled.store(true, Ordering::SeqCst);
    let last = a.write(s, 1, 100).pop().unwrap();
    let t = eventually(Duration::from_secs(10), || b.count(&s) == 31).await;
    assert!(t.is_some(), "B has {} of 31", b.count(&s));
    assert!(b.kernel.contains(&last.id).unwrap());
    assert_eq!(a.kernel.status(&s).unwrap(), b.kernel.status(&s).unwrap());
    // The repair was a sync with A, recorded in B's peer table once the
    // session (its ack) completes.
    let recorded = eventually(Duration::from_secs(5), || {
        b.net.peers()[0]
            .syncs
            .iter()
            .any(|x| x.store == s && x.result.is_ok())
    })
    .await;
    assert!(recorded.is_some(), "{:?}", b.net.peers());
    a.net.shutdown().await;
    b.net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_entries_are_announced_without_body_and_fetched() {
    init_tracing();
    let cfg = || NetConfig {
        gossip_max_message: 4096,
        ..test_config()
    };
    let a = Node::start(cfg()).await;
    let b = Node::start(cfg()).await;
    let s = StoreId::random();
    mesh(&[&a, &b], s);
    wait_neighbors(&[&a, &b], s, 1).await;
    let e = a.write(s, 1, 20_000).pop().unwrap();
    let t = eventually(Duration::from_secs(10), || {
        b.kernel.contains(&e.id).unwrap()
    })
    .await;
    assert!(t.is_some(), "large entry not fetched after announcement");
    a.net.shutdown().await;
    b.net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_entropy_heals_without_gossip() {
    init_tracing();
    let cfg = || NetConfig {
        anti_entropy: Some(Duration::from_millis(700)),
        ..test_config()
    };
    // No gossip at all (no announcements, no neighbour-up catch-up): only
    // the periodic rounds can move these entries.
    let a = Node::quiet(cfg()).await;
    let b = Node::quiet(cfg()).await;
    let s = StoreId::random();
    mesh(&[&a, &b], s);
    a.write(s, 200, 50);
    b.write(s, 100, 50);
    let t = eventually(Duration::from_secs(10), || {
        a.count(&s) == 300 && b.count(&s) == 300
    })
    .await;
    assert!(t.is_some(), "a={} b={}", a.count(&s), b.count(&s));
    assert_eq!(a.kernel.status(&s).unwrap(), b.kernel.status(&s).unwrap());
    // Both background loops record their rounds in peers().
    let recorded = eventually(Duration::from_secs(5), || {
        [&a, &b].iter().all(|n| {
            n.net.peers()[0]
                .syncs
                .iter()
                .any(|x| x.store == s && x.result.is_ok())
        })
    })
    .await;
    assert!(
        recorded.is_some(),
        "{:?} {:?}",
        a.net.peers(),
        b.net.peers()
    );
    a.net.shutdown().await;
    b.net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_burst_reaches_peers_via_announce_and_repair() {
    init_tracing();
    let a = Node::start(test_config()).await;
    let b = Node::start(test_config()).await;
    let s = StoreId::random();
    mesh(&[&a, &b], s);
    wait_neighbors(&[&a, &b], s, 1).await;
    // One group commit of 500 entries: announced as its newest entry only;
    // B sees the gap and syncs the rest.
    a.write(s, 500, 100);
    let t = eventually(Duration::from_secs(10), || b.count(&s) == 500).await;
    assert!(t.is_some(), "B has {} of 500", b.count(&s));
    assert_eq!(a.kernel.status(&s).unwrap(), b.kernel.status(&s).unwrap());
    a.net.shutdown().await;
    b.net.shutdown().await;
}
