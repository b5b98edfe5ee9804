//! Gossip admission between real nodes on loopback: per mesh, re-checked on
//! every membership change, and refusing peers that know the topic key but
//! are not (or no longer) members.

mod common;

use std::time::{Duration, Instant};

use common::*;
use lattice_kernel::StoreId;
use lattice_net::{ALPN, NetError, overlay_alpn};

/// Nodes A and C, members of two meshes (one store each) with the overlay
/// of the first formed.
async fn two_meshes() -> (Node, Node, StoreId, StoreId) {
    init_tracing();
    let a = Node::start(test_config()).await;
    let c = Node::start(test_config()).await;
    let (s1, s2) = (StoreId::random(), StoreId::random());
    mesh(&[&a, &c], s1);
    mesh(&[&a, &c], s2);
    wait_neighbors(&[&a, &c], s1, 1).await;
    (a, c, s1, s2)
}

/// A revokes C from the mesh of `s1` and waits until C's connection on
/// that mesh's overlay is closed.
async fn revoke_and_wait_cut(a: &Node, c: &Node, s1: StoreId) {
    a.members.revoke(s1, &c.id());
    a.net.membership_changed();
    let overlay1 = overlay_alpn(&test_key(&s1));
    let cut = eventually(Duration::from_secs(5), || {
        a.net
            .connections()
            .iter()
            .all(|(p, alpn)| !(*p == c.id() && *alpn == overlay1))
    })
    .await;
    assert!(cut.is_some(), "C's connection on mesh 1 stayed open");
}

/// Keeps `a` writing for `window`, each entry awaited on `b`: positive
/// evidence that gossip flowed among members for the whole window.
async fn flow(a: &Node, b: &Node, s: StoreId, window: Duration) -> u64 {
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < window {
        let e = a.write(s, 1, 64).pop().unwrap();
        let t = eventually(Duration::from_secs(5), || b.kernel.contains(&e.id).unwrap()).await;
        assert!(t.is_some(), "member did not get entry {n}");
        n += 1;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_member_with_the_key_cannot_join_or_receive() {
    init_tracing();
    let a = Node::start(test_config()).await;
    let b = Node::start(test_config()).await;
    let x = Node::start(test_config()).await;
    let s = StoreId::random();
    mesh(&[&a, &b], s);
    // X believes it is a member and knows the topic key, but A and B do
    // not list it.
    x.members.allow(s, &[a.id(), b.id(), x.id()]);
    x.net.add_peer(a.id(), a.net.addrs());
    x.net.add_peer(b.id(), b.net.addrs());
    wait_neighbors(&[&a, &b], s, 1).await;

    // Over several of X's re-join periods, A's entries reach B, not X.
    let sent = flow(&a, &b, s, Duration::from_millis(1500)).await;
    assert!(sent > 0);
    assert_eq!(x.count(&s), 0, "a non-member received entries");
    assert!(x.net.gossip_neighbors(&s).is_empty());
    let overlay = overlay_alpn(&test_key(&s));
    for m in [&a, &b] {
        assert!(
            !m.net
                .connections()
                .iter()
                .any(|(p, alpn)| *p == x.id() && *alpn == overlay),
            "a member holds an overlay connection with a non-member"
        );
        assert!(m.net.gossip_neighbors(&s).iter().all(|p| *p != x.id()));
    }
    let err = x.net.sync_store(a.id(), s).await.unwrap_err();
    assert!(
        matches!(&err, NetError::Refused(t) if t.contains("not a member")),
        "{err}"
    );
    assert_eq!(x.count(&s), 0);
    for n in [a, b, x] {
        n.net.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_member_receives_nothing_new_on_any_path() {
    init_tracing();
    let a = Node::start(test_config()).await;
    let b = Node::start(test_config()).await;
    let c = Node::start(test_config()).await;
    let s = StoreId::random();
    mesh(&[&a, &b, &c], s);
    wait_neighbors(&[&a, &b, &c], s, 2).await;
    a.blobs
        .0
        .lock()
        .unwrap()
        .insert([9; 32], b"plugin".to_vec());
    // Before: C gets A's entries by gossip.
    let e = a.write(s, 1, 64).pop().unwrap();
    let t = eventually(Duration::from_secs(5), || c.kernel.contains(&e.id).unwrap()).await;
    assert!(t.is_some(), "C did not receive before the revocation");

    for m in [&a, &b] {
        m.members.revoke(s, &c.id());
        m.net.membership_changed();
    }
    // The cut is positive: A and B close every connection with C.
    let cut = eventually(Duration::from_secs(5), || {
        [&a, &b]
            .iter()
            .all(|m| m.net.connections().iter().all(|(p, _)| *p != c.id()))
    })
    .await;
    assert!(
        cut.is_some(),
        "{:?} {:?}",
        a.net.connections(),
        b.net.connections()
    );
    let before = c.count(&s);

    // A and B keep exchanging entries over several of C's re-join periods.
    flow(&a, &b, s, Duration::from_millis(1500)).await;
    flow(&b, &a, s, Duration::from_millis(500)).await;
    assert_eq!(
        c.count(&s),
        before,
        "the revoked member received new entries"
    );
    assert!(
        c.net.gossip_neighbors(&s).is_empty(),
        "{:?}",
        c.net.gossip_neighbors(&s)
    );

    // Sync and blobs refuse it too.
    let err = c.net.sync_store(a.id(), s).await.unwrap_err();
    assert!(
        matches!(&err, NetError::Refused(t) if t.contains("not a member")),
        "{err}"
    );
    let err = c.net.fetch_blob(a.id(), [9; 32]).await.unwrap_err();
    assert!(
        matches!(&err, NetError::BlobUnavailable { reason, .. } if reason == "not a member"),
        "{err}"
    );
    assert_eq!(c.count(&s), before);
    for n in [a, b, c] {
        n.net.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_in_one_mesh_leaves_another_mesh_alone() {
    let (a, c, s1, s2) = two_meshes().await;
    wait_neighbors(&[&a, &c], s2, 1).await;
    revoke_and_wait_cut(&a, &c, s1).await;

    // C still gets mesh 2 (positive evidence), and nothing of mesh 1 even
    // though it shares a connection-capable peer and knows mesh 1's key.
    let before = c.count(&s1);
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        a.write(s1, 1, 64);
        let e = a.write(s2, 1, 64).pop().unwrap();
        let t = eventually(Duration::from_secs(5), || c.kernel.contains(&e.id).unwrap()).await;
        assert!(t.is_some(), "mesh 2 stopped delivering to C");
    }
    assert_eq!(
        c.count(&s1),
        before,
        "C received mesh 1 entries after revocation"
    );
    assert!(a.net.gossip_neighbors(&s1).is_empty());
    for n in [a, c] {
        n.net.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_members_first_entry_arrives_at_once() {
    init_tracing();
    let a = Node::start(test_config()).await;
    let b = Node::start(test_config()).await;
    let s = StoreId::random();
    mesh(&[&a, &b], s);
    wait_neighbors(&[&a, &b], s, 1).await;
    // C is admitted and writes at once, before any overlay link is up: the
    // broadcast finds no neighbour, the catch-up on neighbour-up delivers.
    let c = Node::start(test_config()).await;
    mesh(&[&a, &b, &c], s);
    let started = Instant::now();
    let e = c.write(s, 1, 64).pop().unwrap();
    for m in [&a, &b] {
        let t = eventually(Duration::from_secs(2), || m.kernel.contains(&e.id).unwrap()).await;
        assert!(
            t.is_some(),
            "first entry of a new member not delivered within 2 s"
        );
    }
    tracing::info!(
        ms = started.elapsed().as_millis() as u64,
        "first entry delivered"
    );
    for n in [a, b, c] {
        n.net.shutdown().await;
    }
}

/// A peer revoked from one mesh keeps its sync connection while it is
/// still a member of another: the revocation must not cut syncs of mesh 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_in_one_mesh_keeps_the_sync_link_of_another() {
    let (a, c, s1, s2) = two_meshes().await;
    c.write(s2, 3, 64);
    a.net.sync_store(c.id(), s2).await.expect("sync of mesh 2");
    let sync_link = |n: &Node| {
        n.net
            .connections()
            .iter()
            .any(|(p, alpn)| *p == c.id() && alpn.as_slice() == ALPN)
    };
    assert!(sync_link(&a), "A holds a sync connection to C");

    revoke_and_wait_cut(&a, &c, s1).await;
    assert!(sync_link(&a), "the sync connection of mesh 2 was closed");
    c.write(s2, 2, 64);
    a.net
        .sync_store(c.id(), s2)
        .await
        .expect("mesh 2 still syncs");
    assert_eq!(a.count(&s2), c.count(&s2));
    for n in [a, c] {
        n.net.shutdown().await;
    }
}

/// A member that dials A's overlay twice (as iroh-gossip does when it
/// drops a peer and redials it): once the newer connection has stood for
/// the grace period, A closes the older one and keeps the newer. Before,
/// both stayed open for good (iroh-gossip 0.101 never ends a superseded
/// connection's loops, keep-alives hold it), one more per redial: the
/// leak the soak run found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superseded_gossip_connection_is_closed_and_the_newest_kept() {
    init_tracing();
    let a = Node::start(test_config()).await;
    let s = StoreId::random();
    let me = lattice_kernel::Identity::generate();
    a.members.allow(s, &[a.id(), me.author()]);
    a.net.membership_changed();
    let ep = raw_endpoint_as(&me).await;
    let mut addr = iroh::EndpointAddr::new(iroh::EndpointId::from_bytes(&a.id().0).unwrap());
    for sock in a.net.addrs() {
        addr = addr.with_ip_addr(sock);
    }
    let overlay = overlay_alpn(&test_key(&s));
    // The overlay serves once A has subscribed the store's topic.
    let mut old = None;
    for _ in 0..100 {
        if let Ok(c) = ep.connect(addr.clone(), &overlay).await {
            old = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let old = old.expect("A's overlay never accepted a member");
    let new = ep.connect(addr, &overlay).await.unwrap();
    let closed = eventually(Duration::from_secs(10), || old.close_reason().is_some()).await;
    assert!(closed.is_some(), "the superseded connection stayed open");
    // The newest stays (several maintenance ticks of 300 ms).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(new.close_reason().is_none(), "{:?}", new.close_reason());
    let mine = a.net.connections();
    assert_eq!(
        mine.iter().filter(|(p, _)| *p == me.author()).count(),
        1,
        "{mine:?}"
    );
    ep.close().await;
}
