//! Sync between real nodes on loopback.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler, Router};
use lattice_kernel::StoreId;
use lattice_net::{ALPN, NetConfig, NetError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_sync_thousands_both_ways() {
    init_tracing();
    let a = Node::quiet(test_config()).await;
    let b = Node::quiet(test_config()).await;
    let s = StoreId::random();
    mesh(&[&a, &b], s);
    a.write(s, 3000, 100);
    b.write(s, 2000, 100);

    let st = a.net.sync_store(b.id(), s).await.unwrap();
    assert_eq!((st.sent, st.received), (3000, 2000), "{st:?}");
    assert_eq!(st.rejected + st.sent_rejected, 0);
    assert_eq!(st.round_trips, 1);
    assert_eq!(a.kernel.status(&s).unwrap(), b.kernel.status(&s).unwrap());
    assert_eq!(a.count(&s), 5000);

    // A second session finds nothing to do and moves only the vectors.
    let again = b.net.sync_store(a.id(), s).await.unwrap();
    assert_eq!((again.sent, again.received), (0, 0));
    assert!(again.bytes < 1000, "{again:?}");
    a.net.shutdown().await;
    b.net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_converge_with_cross_author_deps() {
    init_tracing();
    let a = Node::quiet(test_config()).await;
    let b = Node::quiet(test_config()).await;
    let c = Node::quiet(test_config()).await;
    let s = StoreId::random();
    mesh(&[&a, &b, &c], s);
    // Rounds of writes with syncs in between give entries deps on other
    // authors' entries, so order across authors matters on ingest.
    for _ in 0..3 {
        a.write(s, 400, 64);
        a.net.sync_store(b.id(), s).await.unwrap();
        b.write(s, 400, 64);
        b.net.sync_store(c.id(), s).await.unwrap();
        c.write(s, 400, 64);
    }
    // C only ever talked to B; its entries reach A through B.
    c.net.sync_store(b.id(), s).await.unwrap();
    b.net.sync_store(a.id(), s).await.unwrap();
    a.net.sync_store(c.id(), s).await.unwrap();
    let sa = a.kernel.status(&s).unwrap();
    assert_eq!(sa.entries, 3600);
    assert_eq!(sa, b.kernel.status(&s).unwrap());
    assert_eq!(sa, c.kernel.status(&s).unwrap());
    assert_eq!(a.kernel.orphan_count().unwrap(), 0);
    // peers() reports the last result per store.
    let p = a.net.peers();
    assert_eq!(p.len(), 2);
    let to_c = p.iter().find(|p| p.id == c.id()).unwrap();
    assert!(to_c.syncs[0].result.is_ok());
    assert!(to_c.last_seen_ms.is_some());
    for n in [a, b, c] {
        n.net.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_after_connection_dropped_mid_stream() {
    init_tracing();
    let cfg = || NetConfig {
        batch_bytes: 32 * 1024,
        ..test_config()
    };
    let a = Node::quiet(cfg()).await;
    let b = Node::quiet(cfg()).await;
    let s = StoreId::random();
    mesh(&[&a, &b], s);
    let total = 4000u64;
    a.write(s, total as usize, 1000);

    let b_net = Arc::new(b.net);
    let task = {
        let net = Arc::clone(&b_net);
        let aid = a.id();
        tokio::spawn(async move { net.sync_store(aid, s).await })
    };
    // Cut the link once part of the log has arrived.
    let got_some = eventually(Duration::from_secs(20), || {
        b.kernel.status(&s).unwrap().entries >= 300
    })
    .await;
    assert!(got_some.is_some(), "nothing arrived");
    a.net.shutdown().await;
    let err = task.await.unwrap().expect_err("the sync was cut");
    tracing::info!(%err, "sync cut");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let prefix = b.kernel.status(&s).unwrap().entries;
    assert!(prefix > 0 && prefix < total, "prefix {prefix}");
    // What arrived is a consistent prefix: every chain is gapless.
    let tips = b.kernel.tips(&s).unwrap();
    assert_eq!(tips.iter().map(|t| t.seq).sum::<u64>(), prefix);

    // The inviter comes back on a new port; the next sync resumes.
    let a2 = lattice_net::Net::spawn(
        Arc::clone(&a.kernel),
        cfg(),
        a.members.clone(),
        a.blobs.clone(),
        Arc::new(lattice_net::NoInvites),
    )
    .await
    .unwrap();
    b_net.add_peer(a.kernel.author(), a2.addrs());
    let st = b_net.sync_store(a.kernel.author(), s).await.unwrap();
    assert_eq!(st.received, total - prefix, "{st:?}");
    assert_eq!(a.kernel.status(&s).unwrap(), b.kernel.status(&s).unwrap());
    a2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_member_is_served_nothing() {
    init_tracing();
    let a = Node::start(test_config()).await;
    let b = Node::start(test_config()).await;
    let s = StoreId::random();
    a.members.allow(s, &[a.id()]); // B is not a member on A's side
    b.members.allow(s, &[a.id(), b.id()]);
    a.net.add_peer(b.id(), b.net.addrs());
    b.net.add_peer(a.id(), a.net.addrs());
    a.write(s, 50, 32);
    b.write(s, 10, 32);
    // Gossip is on in this test: give B's topic re-joins time to try.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        b.net.gossip_neighbors(&s).is_empty(),
        "A's gossip refused B"
    );
    assert_eq!(b.count(&s), 10, "nothing arrived by gossip");

    let err = b.net.sync_store(a.id(), s).await.unwrap_err();
    assert!(
        matches!(&err, NetError::Refused(t) if t.contains("not a member")),
        "{err}"
    );
    assert_eq!(b.count(&s), 10, "B received nothing");
    assert_eq!(a.count(&s), 50, "A took nothing from a non-member");
    // And A does not dial a non-member either.
    let err = a.net.sync_store(b.id(), s).await.unwrap_err();
    assert!(matches!(err, NetError::NotMember { .. }), "{err}");
    a.net.shutdown().await;
    b.net.shutdown().await;
}

async fn send_raw(ep: &iroh::Endpoint, to: &Node, bytes: &[u8]) -> Connection {
    let conn = dial(ep, to).await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    send.write_all(bytes).await.unwrap();
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_frames_close_the_connection_only() {
    init_tracing();
    let a = Node::quiet(test_config()).await;
    let b = Node::quiet(test_config()).await;
    let s = StoreId::random();
    mesh(&[&a, &b], s);
    a.write(s, 100, 32);
    let ep = raw_endpoint().await;

    // A frame whose body is not a request.
    let mut garbage = 12u32.to_be_bytes().to_vec();
    garbage.extend_from_slice(&[0xff; 12]);
    let conn = send_raw(&ep, &a, &garbage).await;
    let why = tokio::time::timeout(Duration::from_secs(5), conn.closed())
        .await
        .expect("server closes the connection");
    assert!(format!("{why:?}").contains("protocol violation"), "{why:?}");

    // A header announcing 4 GiB: refused on the header, nothing allocated.
    let conn = send_raw(&ep, &a, &u32::MAX.to_be_bytes()).await;
    let why = tokio::time::timeout(Duration::from_secs(5), conn.closed())
        .await
        .expect("server closes the connection");
    assert!(format!("{why:?}").contains("protocol violation"), "{why:?}");

    // The server still serves an honest client.
    let st = b.net.sync_store(a.id(), s).await.unwrap();
    assert_eq!(st.received, 100);
    ep.close().await;
    a.net.shutdown().await;
    b.net.shutdown().await;
}

/// A peer that accepts streams and never answers.
#[derive(Debug, Clone)]
struct Silent;
impl ProtocolHandler for Silent {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        while let Ok((_s, _r)) = conn.accept_bi().await {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_peer_times_out_both_ways() {
    init_tracing();
    let cfg = NetConfig {
        io_timeout: Duration::from_millis(500),
        ..test_config()
    };
    let a = Node::quiet(cfg).await;
    let b = Node::quiet(test_config()).await;
    let s = StoreId::random();
    mesh(&[&a, &b], s);
    a.write(s, 10, 32);

    // As a client: the silent server never says hello.
    let ep = raw_endpoint().await;
    let silent = Router::builder(ep.clone()).accept(ALPN, Silent).spawn();
    let sid = lattice_kernel::AuthorId(*ep.id().as_bytes());
    a.members.allow(s, &[sid]);
    a.net.add_peer(sid, ep.bound_sockets());
    let t = Instant::now();
    let err = a.net.sync_store(sid, s).await.unwrap_err();
    assert!(matches!(err, NetError::Timeout { .. }), "{err}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let p = a.net.peers();
    let rec = p.iter().find(|p| p.id == sid).unwrap();
    assert!(
        rec.syncs[0]
            .result
            .as_ref()
            .unwrap_err()
            .contains("timed out")
    );

    // As a server: a client that opens a stream and says nothing is
    // dropped after the timeout while an honest client is served meanwhile.
    let client = raw_endpoint().await;
    let _stalled = send_raw(&client, &a, &[0, 0]).await; // half a header
    let st = b.net.sync_store(a.id(), s).await.unwrap();
    assert_eq!(st.received, 10);
    silent.shutdown().await.unwrap();
    client.close().await;
    a.net.shutdown().await;
    b.net.shutdown().await;
}

/// Batches are bounded by bytes: twenty ~900 KB entries (which a
/// count-bounded batch of 50 would pack into one 18 MB frame) all sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_entries_sync_in_byte_bounded_frames() {
    init_tracing();
    let a = Node::quiet(test_config()).await;
    let b = Node::quiet(test_config()).await;
    let s = StoreId::random();
    mesh(&[&a, &b], s);
    a.write(s, 20, 900_000);
    let st = b.net.sync_store(a.id(), s).await.unwrap();
    assert_eq!(st.received, 20, "{st:?}");
    assert!(st.bytes > 18_000_000);
    assert_eq!(a.kernel.status(&s).unwrap(), b.kernel.status(&s).unwrap());
    a.net.shutdown().await;
    b.net.shutdown().await;
}
