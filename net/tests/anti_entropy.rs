//! Anti-entropy that scales with stores and survives dead peers, between
//! real nodes on loopback: one digests exchange per peer covers every
//! shared store, only differing stores are synced, and an unreachable
//! member does not hold up the others.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use lattice_kernel::{Identity, StoreId};
use lattice_net::NetConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_digests_exchange_finds_exactly_the_stores_that_differ() {
    init_tracing();
    let a = Node::quiet(test_config()).await;
    let b = Node::quiet(test_config()).await;
    let stores: Vec<StoreId> = (0..40).map(|_| StoreId::random()).collect();
    for s in &stores {
        mesh(&[&a, &b], *s);
        a.write(*s, 2, 16);
        a.net.sync_store(b.id(), *s).await.unwrap();
    }
    let round = a.net.differing_stores(b.id()).await.unwrap();
    assert!(round.differ.is_empty(), "{round:?}");
    assert!(round.bytes < 200, "one hash for 40 stores: {round:?}");
    assert!(
        b.net
            .differing_stores(a.id())
            .await
            .unwrap()
            .differ
            .is_empty()
    );
    // New entries in three stores on one side: exactly those differ.
    let changed = [stores[3], stores[17], stores[39]];
    for s in changed {
        b.write(s, 1, 16);
    }
    let mut found = a.net.differing_stores(b.id()).await.unwrap().differ;
    found.sort();
    let mut want = changed.to_vec();
    want.sort();
    assert_eq!(found, want);
    a.net.shutdown().await;
    b.net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_heal_changed_stores_while_a_dead_member_is_backed_off() {
    init_tracing();
    let cfg = || NetConfig {
        anti_entropy: Some(Duration::from_millis(500)),
        ..test_config()
    };
    let a = Node::quiet(cfg()).await;
    let b = Node::quiet(cfg()).await;
    let stores: Vec<StoreId> = (0..10).map(|_| StoreId::random()).collect();
    // A member that never answers: a key nobody holds at an address where
    // nothing listens.
    let dead = Identity::generate().author();
    let nowhere: SocketAddr = "127.0.0.1:9".parse().unwrap();
    for s in &stores {
        mesh(&[&a, &b], *s);
        a.members.allow(*s, &[dead]);
    }
    a.net.add_peer(dead, vec![nowhere]);
    for s in &stores[..5] {
        a.write(*s, 20, 32);
    }
    for s in &stores[5..] {
        b.write(*s, 10, 32);
    }
    let t = eventually(Duration::from_secs(20), || {
        stores
            .iter()
            .all(|s| a.kernel.status(s).unwrap() == b.kernel.status(s).unwrap())
    })
    .await;
    assert!(
        t.is_some(),
        "the two live members converge despite the dead one"
    );
    // Equal stores are recorded as in sync by the digests exchange alone.
    let recorded = eventually(Duration::from_secs(5), || {
        let peers = a.net.peers();
        let pb = peers.iter().find(|p| p.id == b.id()).unwrap();
        stores
            .iter()
            .all(|s| pb.syncs.iter().any(|x| x.store == *s && x.result.is_ok()))
    })
    .await;
    assert!(recorded.is_some(), "{:?}", a.net.peers());
    a.net.shutdown().await;
    b.net.shutdown().await;
}
