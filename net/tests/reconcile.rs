//! Range-based reconciliation between real nodes on loopback: a store with
//! more authors than version vectors suit is reconciled by ranges (exact
//! differences, both ways, few bytes), a forked author's other branch
//! travels by id so both replicas end with one log digest, and a
//! non-member is refused.

mod common;

use common::*;
use lattice_kernel::{EntryId, Identity, SignedEntry, StoreId};
use lattice_net::{NetError, RECONCILE_AUTHORS};

fn ingest_all(n: &Node, es: &[SignedEntry]) {
    let wires: Vec<_> = es.iter().map(|e| e.to_wire()).collect();
    let r = n.kernel.ingest(&wires).unwrap();
    assert_eq!(r.committed.len(), es.len(), "{:?}", r.outcomes);
}

/// `authors` chains of `len` entries each, forged by hand (a modified
/// client can sign anything; the test hook admits every author).
fn chains(store: StoreId, authors: usize, len: u64) -> Vec<(Identity, Vec<SignedEntry>)> {
    (0..authors)
        .map(|_| {
            let x = Identity::generate();
            let mut prev = EntryId::ZERO;
            let mut es = Vec::new();
            for seq in 1..=len {
                let e = forged(&x, store, seq, prev, &seq.to_le_bytes());
                prev = e.id;
                es.push(e);
            }
            (x, es)
        })
        .collect()
}

fn digest(n: &Node, s: &StoreId) -> [u8; 32] {
    n.kernel.status(s).unwrap().digest.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_authors_reconcile_by_ranges_exactly_both_ways() {
    init_tracing();
    let (a, b, s) = quiet_pair().await;
    let authors = RECONCILE_AUTHORS + 44;
    let base = chains(s, authors, 3);
    let common: Vec<_> = base.iter().flat_map(|(_, es)| es.clone()).collect();
    ingest_all(&a, &common);
    ingest_all(&b, &common);
    // 10 chains grow on A only, 12 others on B only, and 5 new authors
    // write on B only.
    let next = |i: usize| {
        let (x, es) = &base[i];
        forged(x, s, 4, es[2].id, b"later")
    };
    let only_a: Vec<_> = (0..10).map(next).collect();
    let only_b: Vec<_> = (10..22).map(next).collect();
    let newcomers: Vec<_> = chains(s, 5, 1)
        .into_iter()
        .map(|(_, es)| es[0].clone())
        .collect();
    ingest_all(&a, &only_a);
    ingest_all(&b, &only_b);
    ingest_all(&b, &newcomers);

    let st = a.net.sync_store(b.id(), s).await.unwrap();
    assert_eq!((st.sent, st.received), (10, 17), "{st:?}");
    assert_eq!((st.sent_rejected, st.rejected), (0, 0), "{st:?}");
    assert_eq!(digest(&a, &s), digest(&b, &s), "one log after one sync");
    assert_eq!(a.count(&s), (authors * 3 + 10 + 12 + 5) as u64);
    // Version vectors would carry ~75 bytes per author each way, whatever
    // changed; ranges cost what the differences cost.
    let vectors = 2 * 75 * (authors + 5) as u64;
    let entries: u64 = only_a
        .iter()
        .chain(&only_b)
        .chain(&newcomers)
        .map(|e| e.to_wire().len() as u64)
        .sum();
    assert!(
        st.bytes < entries + vectors / 2,
        "{} bytes moved; entries alone are {entries}, vectors {vectors}",
        st.bytes
    );
    // Nothing left: one round of fingerprints says so.
    let again = a.net.sync_store(b.id(), s).await.unwrap();
    assert_eq!(
        (again.sent, again.received, again.round_trips),
        (0, 0, 1),
        "{again:?}"
    );
    for n in [a, b] {
        n.net.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forked_authors_other_branch_travels_so_log_digests_meet() {
    init_tracing();
    let (a, b, s) = quiet_pair().await;
    let x = Identity::generate();
    let x1 = forged(&x, s, 1, EntryId::ZERO, b"common");
    ingest_all(&a, std::slice::from_ref(&x1));
    ingest_all(&b, std::slice::from_ref(&x1));
    // Two branches from seq 2, three entries each, one branch to each
    // node, and nothing honest depends on either: no vector and no wanted
    // dep names the other branch past the fork's proof.
    let branch = |tag: &[u8]| {
        let mut prev = x1.id;
        (2..=4)
            .map(|seq| {
                let e = forged(&x, s, seq, prev, &[tag, &[seq as u8]].concat());
                prev = e.id;
                e
            })
            .collect::<Vec<_>>()
    };
    let (to_a, to_b) = (branch(b"A"), branch(b"B"));
    ingest_all(&a, &to_a);
    ingest_all(&b, &to_b);
    a.net.sync_store(b.id(), s).await.unwrap();
    for (name, n) in [("A", &a), ("B", &b)] {
        assert_eq!(
            n.kernel.fork_seq(&s, &x.author()).unwrap(),
            Some(2),
            "{name}"
        );
        for e in to_a.iter().chain(&to_b) {
            assert!(
                n.kernel.contains(&e.id).unwrap(),
                "{name} logs seq {}",
                e.seq
            );
        }
    }
    assert_eq!(digest(&a, &s), digest(&b, &s), "one log digest");
    let again = a.net.sync_store(b.id(), s).await.unwrap();
    assert_eq!((again.sent, again.received), (0, 0), "{again:?}");
    for n in [a, b] {
        n.net.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_member_is_refused_a_reconciliation() {
    init_tracing();
    let (a, c) = (
        Node::quiet(test_config()).await,
        Node::quiet(test_config()).await,
    );
    let s = StoreId::random();
    // C holds a big copy of the store (so it reconciles) and thinks A may
    // sync with it; A's table does not list C.
    let all: Vec<_> = chains(s, RECONCILE_AUTHORS + 1, 1)
        .into_iter()
        .flat_map(|(_, es)| es)
        .collect();
    ingest_all(&a, &all[..10]);
    ingest_all(&c, &all);
    a.members.allow(s, &[a.id()]);
    c.members.allow(s, &[c.id(), a.id()]);
    c.net.add_peer(a.id(), a.net.addrs());
    let before = digest(&a, &s);
    match c.net.sync_store(a.id(), s).await {
        Err(NetError::Refused(why)) => assert!(why.contains("not a member"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(digest(&a, &s), before, "nothing of C's reached A");
    assert_eq!(a.count(&s), 10);
    for n in [a, c] {
        n.net.shutdown().await;
    }
}

// ------------------------------------------------- a hostile member by hand

use iroh::endpoint::{RecvStream, SendStream};
use lattice_net::pb;
use pb::reconcile_frame::Kind as RF;
use pb::sync_frame::Kind as SF;
use prost::Message;

/// The opening message of an empty set (what a fresh client sends).
fn opening() -> Vec<u8> {
    let mut set = negentropy::NegentropyStorageVector::new();
    set.seal().unwrap();
    negentropy::Negentropy::owned(set, 0)
        .unwrap()
        .initiate()
        .unwrap()
}

fn request(store: StoreId, message: Vec<u8>) -> pb::Request {
    pb::Request {
        kind: Some(pb::request::Kind::Reconcile(pb::ReconcileRequest {
            store_id: store.0.to_vec(),
            message,
            digests: None,
        })),
    }
}

/// A reconciliation stream to `to` opened by hand with `message`.
async fn session(
    ep: &iroh::Endpoint,
    to: &Node,
    store: StoreId,
    message: Vec<u8>,
) -> (iroh::endpoint::Connection, SendStream, RecvStream) {
    let conn = dial(ep, to).await;
    let (mut send, recv) = conn.open_bi().await.unwrap();
    put(&mut send, &request(store, message)).await;
    (conn, send, recv)
}

/// Writes `frame` `times` times, until the server stops reading.
async fn flood(send: &mut SendStream, frame: &pb::ReconcileFrame, times: usize) {
    let b = frame.encode_to_vec();
    let header = (b.len() as u32).to_be_bytes();
    for _ in 0..times {
        if send.write_all(&header).await.is_err() || send.write_all(&b).await.is_err() {
            break;
        }
    }
}

async fn closed_for_violation(conn: &iroh::endpoint::Connection, case: &str) {
    let why = tokio::time::timeout(std::time::Duration::from_secs(5), conn.closed())
        .await
        .unwrap_or_else(|_| panic!("{case}: the server did not close the connection"));
    assert!(format!("{why:?}").contains("protocol violation"), "{why:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_with_a_modified_client_gets_typed_refusals_and_nothing_else() {
    init_tracing();
    let (a, b, s) = quiet_pair().await;
    let secret = StoreId::random();
    a.members.allow(secret, &[a.id()]);
    let ours = a.write(s, 3, 16);
    let hidden = a.write(secret, 1, 16).remove(0);
    let ep = raw_endpoint().await;
    let me = lattice_kernel::AuthorId(*ep.id().as_bytes());
    a.members.allow(s, &[me]);

    // 1. Asking for ids of a store it may not read, beside one of its own:
    // only the store's own entry comes back.
    let (_conn, mut send, mut recv) = session(&ep, &a, s, opening()).await;
    let hello: pb::ReconcileFrame = get(&mut recv).await;
    assert!(matches!(hello.kind, Some(RF::Hello(_))), "{hello:?}");
    let ids = vec![hidden.id.0.to_vec(), ours[0].id.0.to_vec()];
    for kind in [RF::Fetch(pb::StoreIds { ids }), RF::FetchEnd(true)] {
        put(&mut send, &pb::ReconcileFrame { kind: Some(kind) }).await;
    }
    let done = pb::SyncFrame {
        kind: Some(SF::Done(pb::Done { count: 0 })),
    };
    put(&mut send, &done).await;
    let mut got = Vec::new();
    loop {
        let f: pb::SyncFrame = get(&mut recv).await;
        match f.kind {
            Some(SF::Batch(b)) => got.extend(b.entries),
            Some(SF::Done(d)) => {
                assert_eq!(d.count, got.len() as u64);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, vec![ours[0].to_wire()], "only the store's own entry");

    // 2. A message that is not negentropy (a version it does not speak):
    // the connection is closed.
    let (conn, _send, _recv) = session(&ep, &a, s, vec![0x50, 0xff, 0xff, 0xff]).await;
    closed_for_violation(&conn, "garbage message").await;

    // 3. Rounds without end: closed at the limit, not served forever.
    let (conn, mut send, mut recv) = session(&ep, &a, s, opening()).await;
    let _hello: pb::ReconcileFrame = get(&mut recv).await;
    let again = pb::ReconcileFrame {
        kind: Some(RF::Message(opening())),
    };
    flood(&mut send, &again, 20).await;
    closed_for_violation(&conn, "endless rounds").await;

    // 4. A fetch over the per-session limit.
    let (conn, mut send, mut recv) = session(&ep, &a, s, opening()).await;
    let _hello: pb::ReconcileFrame = get(&mut recv).await;
    let ids = pb::ReconcileFrame {
        kind: Some(RF::Fetch(pb::StoreIds {
            ids: vec![vec![7u8; 32]; 8_192],
        })),
    };
    flood(&mut send, &ids, 9).await;
    closed_for_violation(&conn, "oversized fetch").await;

    // The node still serves an honest member, and took nothing from these.
    let st = b.net.sync_store(a.id(), s).await.unwrap();
    assert_eq!(st.received, 3);
    assert_eq!(a.count(&s), 3);
    ep.close().await;
    for n in [a, b] {
        n.net.shutdown().await;
    }
}
