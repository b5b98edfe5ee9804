//! Forks and divergence between real nodes on loopback: a hostile author
//! signs two entries at one seq and hands one to each of two nodes. Sync
//! must notice (version vectors alone see equal heights), carry the proof
//! to every member, and leave the same verdict everywhere. And two replicas
//! with the same log but different states are told apart.

mod common;

use common::*;
use lattice_kernel::{EntryId, Identity, SignedEntry, StoreId};

/// The hostile author's entry at `seq` after `prev`.
fn ingest(n: &Node, e: &SignedEntry) {
    let r = n.kernel.ingest(&[e.to_wire()]).unwrap();
    assert_eq!(r.committed.len(), 1, "{:?}", r.outcomes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_at_equal_heights_travels_to_every_member_with_one_verdict() {
    init_tracing();
    let (a, b, c) = (
        Node::quiet(test_config()).await,
        Node::quiet(test_config()).await,
        Node::quiet(test_config()).await,
    );
    let s = StoreId::random();
    mesh(&[&a, &b, &c], s);
    let x = Identity::generate();
    let x1 = forged(&x, s, 1, EntryId::ZERO, b"common");
    for n in [&a, &b, &c] {
        ingest(n, &x1);
    }
    // Two entries at seq 2: one to A, the other to B. Equal heights, so
    // the old version-vector hello saw nothing to exchange.
    let (x2a, x2b) = (
        forged(&x, s, 2, x1.id, b"to A"),
        forged(&x, s, 2, x1.id, b"to B"),
    );
    ingest(&a, &x2a);
    ingest(&b, &x2b);
    // Honest entries built on each branch: A's own post depends on x2a.
    let honest = a.write(s, 1, 16).remove(0);
    assert!(honest.deps.contains(&x2a.id), "{:?}", honest.deps);
    a.net.sync_store(b.id(), s).await.unwrap();
    for (name, n) in [("A", &a), ("B", &b)] {
        let forks = n.kernel.forks(&s).unwrap();
        assert!(
            forks.iter().any(|f| f.author == x.author() && f.seq == 2),
            "{name} holds the proof: {forks:?}"
        );
    }
    // C never saw the second branch: the proof comes with a sync.
    c.net.sync_store(a.id(), s).await.unwrap();
    let forks = c.kernel.forks(&s).unwrap();
    assert!(
        forks.iter().any(|f| f.author == x.author() && f.seq == 2),
        "C holds the proof: {forks:?}"
    );
    for n in [&a, &b, &c] {
        assert_eq!(n.kernel.fork_seq(&s, &x.author()).unwrap(), Some(2));
    }
    // B asks for what A's honest entry waits for (the other branch's x2a,
    // which no version vector names) by id, logs it void, and commits the
    // honest entry.
    b.net.sync_store(a.id(), s).await.unwrap();
    assert!(b.kernel.contains(&x2a.id).unwrap(), "B holds x2a (void)");
    assert!(
        b.kernel.contains(&honest.id).unwrap(),
        "B holds A's honest entry"
    );
    // A later session finds nothing more to say about it.
    let again = a.net.sync_store(b.id(), s).await.unwrap();
    assert_eq!((again.sent, again.received), (0, 0), "{again:?}");
    for n in [a, b, c] {
        n.net.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_one_seq_apart_is_found_too() {
    init_tracing();
    let (a, b, s) = quiet_pair().await;
    let x = Identity::generate();
    let x1 = forged(&x, s, 1, EntryId::ZERO, b"common");
    ingest(&a, &x1);
    ingest(&b, &x1);
    // A's branch is longer: B sees x3 (prev x2a) on top of its x2b.
    let x2a = forged(&x, s, 2, x1.id, b"to A");
    let x3a = forged(&x, s, 3, x2a.id, b"A again");
    let x2b = forged(&x, s, 2, x1.id, b"to B");
    ingest(&a, &x2a);
    ingest(&a, &x3a);
    ingest(&b, &x2b);
    // B, behind on X's chain, receives x3 and finds it does not follow
    // its x2: B holds the proof after this session...
    b.net.sync_store(a.id(), s).await.unwrap();
    assert_eq!(b.kernel.fork_seq(&s, &x.author()).unwrap(), Some(2));
    // ...and A gets it with the next one, whichever side starts it.
    a.net.sync_store(b.id(), s).await.unwrap();
    for n in [&a, &b] {
        assert_eq!(n.kernel.fork_seq(&s, &x.author()).unwrap(), Some(2));
    }
    a.net.shutdown().await;
    b.net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_logs_with_different_states_are_reported_as_diverged() {
    init_tracing();
    let (a, b, s) = quiet_pair().await;
    a.write(s, 5, 16);
    a.net.sync_store(b.id(), s).await.unwrap();
    a.members.set_state(s, [1; 32]);
    b.members.set_state(s, [1; 32]);
    let st = a.net.sync_store(b.id(), s).await.unwrap();
    assert!(!st.diverged, "same log, same state: {st:?}");
    b.members.set_state(s, [2; 32]);
    let st = a.net.sync_store(b.id(), s).await.unwrap();
    assert!(st.diverged, "same log, different state: {st:?}");
    // Different logs are not a divergence (one side is behind).
    a.write(s, 1, 16);
    b.members.set_state(s, [3; 32]);
    let st = b.net.sync_store(a.id(), s).await.unwrap();
    assert!(!st.diverged, "{st:?}");
    a.net.shutdown().await;
    b.net.shutdown().await;
}
