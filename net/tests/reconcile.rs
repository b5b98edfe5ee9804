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
    let (a, b) = (
        Node::quiet(test_config()).await,
        Node::quiet(test_config()).await,
    );
    let s = StoreId::random();
    mesh(&[&a, &b], s);
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
    let (a, b) = (
        Node::quiet(test_config()).await,
        Node::quiet(test_config()).await,
    );
    let s = StoreId::random();
    mesh(&[&a, &b], s);
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
