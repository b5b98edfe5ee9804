//! The fork rule: a member who signs two branches of its chain and gives
//! one to each node. Every replica that has seen the same evidence voids the
//! same entries (the author's, from the lowest proved fork seq on) and ends
//! in the same state, whatever order entries and evidence arrive in.

mod common;

use std::sync::Arc;

use common::*;
use lattice_kernel::*;

fn node() -> (tempfile::TempDir, Kernel) {
    let dir = tempfile::tempdir().unwrap();
    let k = open(dir.path(), Arc::new(SetHook));
    (dir, k)
}

fn ingest(k: &Kernel, es: &[SignedEntry]) -> Vec<Outcome> {
    k.ingest_entries(es.to_vec()).unwrap().outcomes
}

/// Everything `from` logged in `store`, in its commit order.
fn log_of(from: &Kernel, store: &StoreId) -> Vec<SignedEntry> {
    from.log(store, 0, usize::MAX).unwrap()
}

/// Sends every evidence group `from` holds to `to`, as a network would.
fn send_evidence(from: &Kernel, to: &Kernel, store: &StoreId) -> Vec<ForkImport> {
    from.forks(store)
        .unwrap()
        .into_iter()
        .map(|f| to.add_fork_evidence(f.entries).unwrap())
        .collect()
}

/// X signs x1, x2, then branch 1 (x3a, x4a) for A and branch 2 (x3b, x4b)
/// for B; Y on A builds on x4a, Z on B builds on x4b.
struct Scene {
    store: StoreId,
    x: AuthorId,
    xid: Identity,
    common: Vec<SignedEntry>,
    side_a: Vec<SignedEntry>,
    side_b: Vec<SignedEntry>,
}

fn scene() -> Scene {
    let store = StoreId::random();
    let mut x = Author::new();
    let x1 = x.next(store, vec![], 0, b"x1");
    let x2 = x.next(store, vec![], 0, b"x2");
    let mut xb = x.branch();
    let x3a = x.next(store, vec![], 0, b"x3a");
    let x4a = x.next(store, vec![], 0, b"x4a");
    let x3b = xb.next(store, vec![], 0, b"x3b");
    let x4b = xb.next(store, vec![], 0, b"x4b");
    let mut y = Author::new();
    let y1 = y.next(store, vec![x4a.id], x4a.hlc, b"y1");
    let y2 = y.next(store, vec![], 0, b"y2");
    let mut z = Author::new();
    let z1 = z.next(store, vec![x4b.id, x2.id], x4b.hlc, b"z1");
    Scene {
        store,
        x: x.id.author(),
        xid: x.id.clone(),
        common: vec![x1, x2],
        side_a: vec![x3a, x4a, y1, y2],
        side_b: vec![x3b, x4b, z1],
    }
}

fn ids(es: &[&SignedEntry]) -> Vec<EntryId> {
    let mut v: Vec<_> = es.iter().map(|e| e.id).collect();
    v.sort();
    v
}

/// The state every replica must reach: X's entries below seq 3 and every
/// other author's entries applied; X's branches void.
fn expected(s: &Scene) -> Vec<EntryId> {
    ids(&[
        &s.common[0],
        &s.common[1],
        &s.side_a[2],
        &s.side_a[3],
        &s.side_b[2],
    ])
}

fn seed(s: &Scene) -> (tempfile::TempDir, Kernel, tempfile::TempDir, Kernel) {
    let (da, a) = node();
    let (db, b) = node();
    for (k, side) in [(&a, &s.side_a), (&b, &s.side_b)] {
        let all: Vec<_> = s.common.iter().chain(side.iter()).cloned().collect();
        assert!(ingest(k, &all).iter().all(|o| *o == Outcome::Committed));
        assert_eq!(k.fork_seq(&s.store, &s.x).unwrap(), None);
    }
    // Before any exchange each side applied its own branch: they differ.
    assert_ne!(applied_set(&a, &s.store), applied_set(&b, &s.store));
    (da, a, db, b)
}

fn assert_converged(s: &Scene, a: &Kernel, b: &Kernel) {
    assert_eq!(a.fork_seq(&s.store, &s.x).unwrap(), Some(3));
    assert_eq!(b.fork_seq(&s.store, &s.x).unwrap(), Some(3));
    assert_eq!(applied_set(a, &s.store), expected(s));
    assert_eq!(applied_set(b, &s.store), expected(s));
    // Both hold both branches (as void placeholders): the same log.
    let (mut sa, mut sb) = (a.status(&s.store).unwrap(), b.status(&s.store).unwrap());
    sa.heads.sort();
    sb.heads.sort();
    assert_eq!(sa, sb);
    assert_eq!(sa.voided, 4);
}

#[test]
fn branches_given_to_two_nodes_converge_entries_first() {
    let s = scene();
    let (_da, a, _db, b) = seed(&s);
    let from_a = log_of(&a, &s.store);
    let from_b = log_of(&b, &s.store);
    // A hears B's log (X's other branch and Z's entry built on it).
    let out = ingest(&a, &from_b);
    assert!(
        out.iter()
            .all(|o| matches!(o, Outcome::Committed | Outcome::Duplicate)),
        "{out:?}"
    );
    ingest(&b, &from_a);
    // The evidence each side holds is redundant to the other by now.
    assert!(send_evidence(&a, &b, &s.store).iter().all(|i| !i.is_new()));
    assert!(send_evidence(&b, &a, &s.store).iter().all(|i| !i.is_new()));
    assert_converged(&s, &a, &b);
}

#[test]
fn branches_given_to_two_nodes_converge_evidence_first() {
    let s = scene();
    let (_da, a, _db, b) = seed(&s);
    // A third node learns the fork from the two branches' tips only.
    let (_dc, c) = node();
    ingest(&c, &s.common);
    ingest(&c, &s.side_a[..1]);
    ingest(&c, &s.side_b[..1]);
    assert_eq!(c.fork_seq(&s.store, &s.x).unwrap(), Some(3));
    // Its evidence reaches A and B before any entry: both rebuild.
    let imported = send_evidence(&c, &a, &s.store);
    assert!(
        imported
            .iter()
            .any(|i| i.is_new() && i.rebuilt && i.fork_seq == 3)
    );
    send_evidence(&c, &b, &s.store);
    assert_eq!(
        applied_set(&a, &s.store),
        ids(&[&s.common[0], &s.common[1], &s.side_a[2], &s.side_a[3]])
    );
    // Then the entries, B's to A and A's to B, in reverse causal order.
    let mut from_b = log_of(&b, &s.store);
    from_b.reverse();
    let mut from_a = log_of(&a, &s.store);
    from_a.reverse();
    ingest(&a, &from_b);
    ingest(&b, &from_a);
    assert_converged(&s, &a, &b);
}

#[test]
fn branches_converge_in_interleaved_orders() {
    let s = scene();
    let mut all: Vec<SignedEntry> = s
        .common
        .iter()
        .chain(&s.side_a)
        .chain(&s.side_b)
        .cloned()
        .collect();
    let (_dr, reference) = node();
    ingest(&reference, &all);
    assert_eq!(applied_set(&reference, &s.store), expected(&s));
    for round in 0..6 {
        // Deterministic shuffles: rotate and reverse.
        let n = all.len();
        all.rotate_left(round * 3 % n);
        if round % 2 == 1 {
            all.reverse();
        }
        let (_d, k) = node();
        for e in &all {
            ingest(&k, std::slice::from_ref(e));
        }
        assert_eq!(
            k.fork_seq(&s.store, &s.x).unwrap(),
            Some(3),
            "round {round}"
        );
        assert_eq!(applied_set(&k, &s.store), expected(&s), "round {round}");
    }
}

#[test]
fn a_prev_mismatch_past_the_fork_is_detected() {
    let s = scene();
    // B holds x3b only; X continues branch 1 past the fork: x4a names x3a.
    let (_db, b) = node();
    ingest(&b, &s.common);
    ingest(&b, &s.side_b[..1]);
    let x4a = &s.side_a[1];
    assert_eq!(
        ingest(&b, std::slice::from_ref(x4a)),
        vec![Outcome::Waiting {
            missing: s.side_a[0].id
        }]
    );
    assert_eq!(b.fork_seq(&s.store, &s.x).unwrap(), Some(3));
    let ev = b.forks(&s.store).unwrap();
    assert_eq!(ev[0].seq, 3);
    assert_eq!(
        ids(&ev[0].entries.iter().collect::<Vec<_>>()),
        ids(&[&s.side_b[0], x4a])
    );
    assert!(b.is_void(&s.store, &s.side_b[0].id).unwrap());
    // The pair proves the fork to a node that saw neither.
    let (_dc, c) = node();
    let i = c.add_fork_evidence(ev[0].entries.clone()).unwrap();
    assert!(i.is_new() && !i.rebuilt);
    assert_eq!(c.fork_seq(&s.store, &s.x).unwrap(), Some(3));
}

/// Another entry by X at seq 2 (after x1): a fork at seq 2.
fn other_x2(s: &Scene) -> SignedEntry {
    SignedEntry::sign(
        &s.xid,
        Draft {
            store: s.store,
            seq: 2,
            prev: s.common[0].id,
            hlc: s.common[1].hlc,
            deps: vec![],
            payload: b"x2 elsewhere".to_vec(),
        },
    )
}

#[test]
fn a_lower_fork_arriving_later_lowers_the_cut_and_rebuilds() {
    let s = scene();
    let (_da, a, _db, b) = seed(&s);
    ingest(&a, &log_of(&b, &s.store));
    ingest(&b, &log_of(&a, &s.store));
    assert_converged(&s, &a, &b);
    // Evidence of a lower fork reaches A as a proof, B as an entry.
    let proof = vec![s.common[1].clone(), other_x2(&s)];
    let i = a.add_fork_evidence(proof).unwrap();
    assert_eq!(
        (i.seq, i.previous, i.fork_seq, i.rebuilt),
        (2, Some(3), 2, true)
    );
    assert!(i.is_new());
    assert_eq!(ingest(&b, &[other_x2(&s)]), vec![Outcome::Committed]);
    let want = ids(&[&s.common[0], &s.side_a[2], &s.side_a[3], &s.side_b[2]]);
    for k in [&a, &b] {
        assert_eq!(k.fork_seq(&s.store, &s.x).unwrap(), Some(2));
        assert_eq!(applied_set(k, &s.store), want);
        // The evidence at seq 3 is redundant now and was dropped; the proof
        // at the fork seq comes first.
        let ev = k.forks(&s.store).unwrap();
        assert_eq!(ev[0].seq, 2);
        assert!(ev.iter().all(|f| f.seq == 2));
    }
    // The same proof again, or the higher one, changes nothing.
    let again = a
        .add_fork_evidence(vec![s.side_a[0].clone(), s.side_b[0].clone()])
        .unwrap();
    assert!(!again.is_new() && !again.rebuilt);
    assert_eq!(again.fork_seq, 2);
}

fn refused(k: &Kernel, entries: Vec<SignedEntry>) -> ForkEvidenceError {
    match k.add_fork_evidence(entries) {
        Err(KernelError::ForkEvidence(e)) => e,
        other => panic!("expected refused evidence, got {other:?}"),
    }
}

#[test]
fn evidence_that_proves_nothing_is_refused() {
    let s = scene();
    let (_d, k) = node();
    let [x1, x2] = [s.common[0].clone(), s.common[1].clone()];
    let (x3a, x3b) = (s.side_a[0].clone(), s.side_b[0].clone());
    assert_eq!(refused(&k, vec![x3a.clone()]), ForkEvidenceError::TooFew(1));
    assert_eq!(
        refused(&k, vec![x3a.clone(), x3a.clone()]),
        ForkEvidenceError::Duplicate(x3a.id)
    );
    let y1 = s.side_a[2].clone();
    assert_eq!(
        refused(&k, vec![x1.clone(), y1.clone()]),
        ForkEvidenceError::MixedAuthors(s.x, y1.author)
    );
    let mut elsewhere = Author::with_identity(s.xid.clone());
    let x1_other_store = elsewhere.next(StoreId::random(), vec![], 0, b"x1");
    assert_eq!(
        refused(&k, vec![x1.clone(), x1_other_store]),
        ForkEvidenceError::MixedStores
    );
    // Unrelated seqs, and a seq-2 entry that does follow the seq-1 one.
    assert_eq!(
        refused(&k, vec![x1.clone(), x3a.clone()]),
        ForkEvidenceError::NoFork
    );
    assert_eq!(
        refused(&k, vec![x1.clone(), x2.clone()]),
        ForkEvidenceError::NoFork
    );
    // A bad signature, and a struct whose id is not its body's hash.
    let mut forged = x3b.clone();
    forged.signature[0] ^= 1;
    assert_eq!(
        refused(&k, vec![x3a.clone(), forged]),
        ForkEvidenceError::Invalid {
            index: 1,
            reason: ValidationError::BadSignature
        }
    );
    let mut relabelled = x3b.clone();
    relabelled.id = EntryId([9; 32]);
    assert!(matches!(
        refused(&k, vec![relabelled, x3a.clone()]),
        ForkEvidenceError::Invalid { index: 0, .. }
    ));
    assert!(k.forks(&s.store).unwrap().is_empty());
    assert_eq!(k.fork_seq(&s.store, &s.x).unwrap(), None);
    // The valid pair is accepted for a store this node holds nothing of.
    let i = k.add_fork_evidence(vec![x3b, x3a, x1]).unwrap();
    assert_eq!(
        (i.seq, i.previous, i.fork_seq, i.rebuilt),
        (3, None, 3, false)
    );
}
