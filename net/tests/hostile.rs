//! Hostile peers over real endpoints on loopback, each case with a second,
//! honest peer that must still be served while the hostile one misbehaves,
//! and a check that nothing acknowledged was lost (see the "Hostile peers"
//! table in docs/reliability.md).
//!
//! The hostile peer is a bare Iroh endpoint speaking the sync ALPN by hand
//! (a member with a modified client), signing with its own endpoint key.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use iroh::endpoint::{ReadError, RecvStream};
use lattice_kernel::{COUNTER_BITS, Draft, EntryId, Identity, SignedEntry, StoreId, now_ms};
use lattice_net::{BUSY, NetConfig, pb};
use pb::sync_frame::Kind as SF;

/// The identity behind a raw endpoint's key: what its entries are signed by.
fn identity_of(ep: &iroh::Endpoint) -> Identity {
    Identity::from_secret_bytes(ep.secret_key().to_bytes())
}

fn entry(
    x: &Identity,
    store: StoreId,
    seq: u64,
    prev: EntryId,
    hlc_ms: u64,
    size: usize,
) -> SignedEntry {
    SignedEntry::sign(
        x,
        Draft {
            store,
            seq,
            prev,
            hlc: (hlc_ms << COUNTER_BITS) + seq,
            deps: vec![],
            payload: vec![seq as u8; size],
        },
    )
}

fn sync_request(store: StoreId) -> pb::Request {
    pb::Request {
        kind: Some(pb::request::Kind::Sync(pb::SyncRequest {
            store_id: store.0.to_vec(),
            ..Default::default()
        })),
    }
}

fn batch(entries: &[&SignedEntry]) -> pb::SyncFrame {
    pb::SyncFrame {
        kind: Some(SF::Batch(pb::EntryBatch {
            entries: entries.iter().map(|e| e.to_wire()).collect(),
        })),
    }
}

/// Reads the server's side of a session (its batches and done) up to its ack.
async fn ack(recv: &mut RecvStream) -> pb::Ack {
    loop {
        let f: pb::SyncFrame = get(recv).await;
        match f.kind {
            Some(SF::Ack(a)) => return a,
            Some(SF::Batch(_) | SF::Done(_) | SF::Forks(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Replayed, oversized, future-dated and unauthorized entries in one
/// session of a member's modified client, beside three good ones: the
/// server's ack counts exactly the three bad-by-rule entries as rejected
/// (a replay is a duplicate, not an error), only the good ones are logged,
/// an honest peer syncs in the middle of the hostile session, and the
/// union is on both honest nodes afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_against_the_rules_are_refused_one_by_one_and_others_are_served() {
    init_tracing();
    let (a, b, s) = quiet_pair().await;
    *a.hook.gate.lock().unwrap() = Some(Arc::clone(&a.members));
    let held = a.write(s, 3, 16);
    let ep = raw_endpoint().await;
    let m = identity_of(&ep);
    a.members.allow(s, &[m.author()]);
    let stranger = Identity::generate();

    let now = now_ms();
    let g1 = entry(&m, s, 1, EntryId::ZERO, now, 16);
    let g2 = entry(&m, s, 2, g1.id, now, 16);
    let g3 = entry(&m, s, 3, g2.id, now, 16);
    let future = entry(&m, s, 4, g3.id, now + 3_600_000, 16);
    let oversized = entry(&m, s, 4, g3.id, now, (1 << 20) + 1);
    let unauthorized = entry(&stranger, s, 1, EntryId::ZERO, now, 16);

    let conn = dial(&ep, &a).await;
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    put(&mut send, &sync_request(s)).await;
    let hello: pb::SyncFrame = get(&mut recv).await;
    assert!(matches!(hello.kind, Some(SF::Hello(_))), "{hello:?}");
    put(&mut send, &batch(&[&held[0], &held[1], &g1, &future])).await;
    put(
        &mut send,
        &batch(&[&oversized, &unauthorized, &g2, &g3, &held[2]]),
    )
    .await;

    // Mid-session, the honest peer is served in full.
    let st = b.net.sync_store(a.id(), s).await.unwrap();
    assert!(st.received >= 3, "{st:?}");

    put(
        &mut send,
        &pb::SyncFrame {
            kind: Some(SF::Done(pb::Done { count: 9 })),
        },
    )
    .await;
    let ack = ack(&mut recv).await;
    assert_eq!((ack.committed, ack.rejected), (3, 3), "{ack:?}");
    for bad in [&future, &oversized, &unauthorized] {
        assert!(
            !a.kernel.contains(&bad.id).unwrap(),
            "a refused entry was logged"
        );
    }
    assert_eq!(a.count(&s), 6);

    // Nothing acknowledged is lost: both honest nodes end with the union.
    b.net.sync_store(a.id(), s).await.unwrap();
    assert_eq!(b.count(&s), 6);
    for e in held.iter().chain([&g1, &g2, &g3]) {
        assert!(b.kernel.contains(&e.id).unwrap());
    }
    ep.close().await;
    for n in [a, b] {
        n.net.shutdown().await;
    }
}

/// Node `a` serving `peer_streams` per peer with `io_timeout`, holding `n`
/// entries of `size` bytes in a store it shares with an honest quiet node
/// `b` and with a raw member endpoint.
async fn limited(
    peer_streams: usize,
    io_timeout: Duration,
    n: usize,
    size: usize,
) -> (Node, Node, StoreId, iroh::Endpoint) {
    let cfg = NetConfig {
        peer_streams,
        io_timeout,
        ..test_config()
    };
    let a = Node::quiet(cfg).await;
    let b = Node::quiet(test_config()).await;
    let s = StoreId::random();
    mesh(&[&a, &b], s);
    a.write(s, n, size);
    let ep = raw_endpoint().await;
    a.members.allow(s, &[identity_of(&ep).author()]);
    (a, b, s, ep)
}

/// Whether `recv` is reset with the busy code within `limit`.
async fn reset_busy(recv: &mut RecvStream, limit: Duration) -> bool {
    let mut buf = [0u8; 16];
    matches!(
        tokio::time::timeout(limit, recv.read(&mut buf)).await,
        Ok(Err(ReadError::Reset(code))) if code.into_inner() == u64::from(BUSY)
    )
}

/// Asks `conn`'s peer for a sync of `store` until it says hello (a stream
/// reset as busy is asked again), for at most `limit`.
async fn answered(conn: &iroh::endpoint::Connection, store: StoreId, limit: Duration) -> bool {
    let ask = async {
        loop {
            let (mut send, mut recv) = conn.open_bi().await.unwrap();
            put(&mut send, &sync_request(store)).await;
            let mut h = [0u8; 4];
            match recv.read_exact(&mut h).await {
                Ok(()) => {
                    let mut b = vec![0u8; u32::from_be_bytes(h) as usize];
                    recv.read_exact(&mut b).await.unwrap();
                    let f = <pb::SyncFrame as prost::Message>::decode(b.as_slice()).unwrap();
                    return matches!(f.kind, Some(SF::Hello(_)));
                }
                Err(iroh::endpoint::ReadExactError::ReadError(ReadError::Reset(c)))
                    if c.into_inner() == u64::from(BUSY) => {}
                Err(e) => panic!("{e}"),
            }
        }
    };
    tokio::time::timeout(limit, ask).await.unwrap_or(false)
}

/// A member opening stream after stream (over two connections) and stalling
/// each: past `peer_streams` served and as many waiting, its streams are
/// reset at once with the busy code instead of each holding a task until
/// the I/O deadline. The honest peer is served meanwhile, and once the
/// flood ends the flooder is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_streams_from_one_peer_is_bounded_and_others_are_served() {
    init_tracing();
    let (a, b, s, ep) = limited(4, Duration::from_secs(5), 20, 16).await;

    let mut held = Vec::new();
    let conns = [dial(&ep, &a).await, dial(&ep, &a).await];
    for i in 0..24 {
        let (mut send, recv) = conns[i % 2].open_bi().await.unwrap();
        send.write_all(&[0, 0]).await.unwrap(); // half a header, then nothing
        held.push((send, recv));
    }
    let mut reads = tokio::task::JoinSet::new();
    let mut sends = Vec::new();
    for (send, mut recv) in held {
        sends.push(send);
        reads.spawn(async move { reset_busy(&mut recv, Duration::from_millis(1500)).await });
    }
    let busy = reads.join_all().await.into_iter().filter(|b| *b).count();
    // 4 served + 4 waiting are held; the other 16 are refused at once.
    assert!(busy >= 16, "only {busy} of 24 streams were refused as busy");

    let st = b.net.sync_store(a.id(), s).await.unwrap();
    assert_eq!(st.received, 20);

    // The flood ends: the same peer is served again.
    drop(sends);
    for c in &conns {
        c.close(0u32.into(), b"done");
    }
    let conn = dial(&ep, &a).await;
    assert!(answered(&conn, s, Duration::from_secs(15)).await);
    ep.close().await;
    for n in [a, b] {
        n.net.shutdown().await;
    }
}

/// A half-open stream: the client asks for a big store, then neither reads
/// nor finishes. The server's writes stop on flow control (or, once all is
/// sent, its wait for the client's entries) and the I/O deadline ends the
/// stream, freeing the peer's only slot, so the same peer's next request is
/// answered; an honest peer is served throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_stream_is_cut_at_the_io_deadline_and_frees_its_slot() {
    init_tracing();
    let (a, b, s, ep) = limited(1, Duration::from_secs(1), 400, 16 << 10).await; // 6.4 MB, far past a stream's window

    let conn = dial(&ep, &a).await;
    let (mut deaf_send, _deaf_recv) = conn.open_bi().await.unwrap();
    put(&mut deaf_send, &sync_request(s)).await;

    let st = b.net.sync_store(a.id(), s).await.unwrap();
    assert_eq!(st.received, 400);

    // The same peer's next request is answered once the deadline has cut
    // the half-open stream and freed its only slot.
    assert!(answered(&conn, s, Duration::from_secs(15)).await);
    ep.close().await;
    for n in [a, b] {
        n.net.shutdown().await;
    }
}
