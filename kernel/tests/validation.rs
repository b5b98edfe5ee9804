//! One test per validation rule, each asserting its exact typed error, plus
//! forks, orphans and hook atomicity.

mod common;

use std::sync::Arc;

use common::*;
use lattice_kernel::*;
use prost::Message;

fn reject(k: &Kernel, wire: Vec<u8>) -> ValidationError {
    match k.ingest(&[wire]).unwrap().outcomes.remove(0) {
        Outcome::Rejected(e) => e,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn kernel() -> (tempfile::TempDir, Kernel, Arc<RecordingHook>) {
    let dir = tempfile::tempdir().unwrap();
    let hook = Arc::new(RecordingHook::default());
    let k = open(dir.path(), hook.clone());
    (dir, k, hook)
}

/// Re-signs an arbitrary body (so only the rule under test is broken).
fn signed_body(id: &Identity, body: pb::EntryBody) -> Vec<u8> {
    use ed25519_dalek::Signer;
    let body = body.encode_to_vec();
    let mut msg = SIGNING_DOMAIN.to_vec();
    msg.extend_from_slice(&body);
    let sig = id.signing_key().sign(&msg).to_bytes().to_vec();
    pb::Entry {
        body,
        signature: sig,
    }
    .encode_to_vec()
}

fn body(id: &Identity, store: StoreId) -> pb::EntryBody {
    pb::EntryBody {
        store_id: store.0.to_vec(),
        author: id.author().0.to_vec(),
        seq: 1,
        prev_hash: vec![0; 32],
        hlc: now_ms() << COUNTER_BITS,
        causal_deps: vec![],
        payload: b"x".to_vec(),
    }
}

#[test]
fn size_cap() {
    let (_d, k, _) = kernel();
    let mut a = Author::new();
    let e = a.next(StoreId::random(), vec![], 0, &vec![7u8; 1 << 20]);
    assert!(matches!(
        reject(&k, e.to_wire()),
        ValidationError::TooLarge { max: 1048576, .. }
    ));
}

#[test]
fn malformed_bytes() {
    let (_d, k, _) = kernel();
    assert!(matches!(
        reject(&k, vec![0xff, 0xff, 0xff]),
        ValidationError::Malformed(_)
    ));
}

#[test]
fn deps_cap() {
    let (_d, k, _) = kernel();
    let mut a = Author::new();
    let deps = (0..1025u32)
        .map(|i| EntryId(*blake3::hash(&i.to_le_bytes()).as_bytes()))
        .collect();
    let e = a.next(StoreId::random(), deps, 0, b"x");
    assert_eq!(
        reject(&k, e.to_wire()),
        ValidationError::TooManyDeps {
            count: 1025,
            max: 1024
        }
    );
}

#[test]
fn bad_field_lengths() {
    let (_d, k, _) = kernel();
    let id = Identity::generate();
    let mut b = body(&id, StoreId::random());
    b.store_id = vec![1, 2, 3];
    assert_eq!(
        reject(&k, signed_body(&id, b)),
        ValidationError::BadField("store_id")
    );
    let mut b = body(&id, StoreId::random());
    b.causal_deps = vec![vec![9; 31]];
    assert_eq!(
        reject(&k, signed_body(&id, b)),
        ValidationError::BadField("causal_deps")
    );
    let mut b = body(&id, StoreId::random());
    b.causal_deps = vec![vec![9; 32], vec![9; 32]];
    assert_eq!(
        reject(&k, signed_body(&id, b)),
        ValidationError::BadField("causal_deps (duplicate id)")
    );
}

#[test]
fn chain_start_rules() {
    let (_d, k, _) = kernel();
    let id = Identity::generate();
    let mut b = body(&id, StoreId::random());
    b.seq = 0;
    assert_eq!(reject(&k, signed_body(&id, b)), ValidationError::SeqZero);
    let mut b = body(&id, StoreId::random());
    b.prev_hash = vec![1; 32];
    assert_eq!(
        reject(&k, signed_body(&id, b)),
        ValidationError::ChainStart { seq: 1 }
    );
    let mut b = body(&id, StoreId::random());
    b.seq = 2;
    assert_eq!(
        reject(&k, signed_body(&id, b)),
        ValidationError::ChainStart { seq: 2 }
    );
}

#[test]
fn future_hlc_is_rejected() {
    let (_d, k, _) = kernel();
    let id = Identity::generate();
    let mut b = body(&id, StoreId::random());
    b.hlc = (now_ms() + 11 * 60 * 1000) << COUNTER_BITS;
    assert!(matches!(
        reject(&k, signed_body(&id, b)),
        ValidationError::FutureHlc(FutureDrift {
            bound_ms: 600_000,
            ..
        })
    ));
}

#[test]
fn forged_signature() {
    let (_d, k, _) = kernel();
    let mut a = Author::new();
    let e = a.next(StoreId::random(), vec![], 0, b"honest");
    let mut env = pb::Entry::decode(e.to_wire().as_slice()).unwrap();
    let last = env.body.len() - 1;
    env.body[last] ^= 1; // tamper with the payload
    assert_eq!(
        reject(&k, env.encode_to_vec()),
        ValidationError::BadSignature
    );
    // A signature by another key over the same body.
    let mut env = pb::Entry::decode(e.to_wire().as_slice()).unwrap();
    let other = Identity::generate();
    let mut msg = SIGNING_DOMAIN.to_vec();
    msg.extend_from_slice(&env.body);
    use ed25519_dalek::Signer;
    env.signature = other.signing_key().sign(&msg).to_bytes().to_vec();
    assert_eq!(
        reject(&k, env.encode_to_vec()),
        ValidationError::BadSignature
    );
}

#[test]
fn forged_signature_inside_a_large_batch_is_singled_out() {
    let (_d, k, _) = kernel();
    let store = StoreId::random();
    let mut a = Author::new();
    let mut wires: Vec<Vec<u8>> = (0..200)
        .map(|i| a.next(store, vec![], 0, &[i as u8]).to_wire())
        .collect();
    let mut env = pb::Entry::decode(wires[150].as_slice()).unwrap();
    env.signature[0] ^= 1;
    wires[150] = env.encode_to_vec();
    let r = k.ingest(&wires).unwrap();
    assert_eq!(
        r.outcomes[150],
        Outcome::Rejected(ValidationError::BadSignature)
    );
    assert_eq!(r.count(|o| *o == Outcome::Committed), 150);
    // Entries after the forged one wait for it: the chain is broken there.
    assert_eq!(r.count(|o| matches!(o, Outcome::Waiting { .. })), 49);
}

#[test]
fn weak_key() {
    let (_d, k, _) = kernel();
    let id = Identity::generate();
    let mut b = body(&id, StoreId::random());
    let mut identity_point = [0u8; 32];
    identity_point[0] = 1; // the identity element: a small-order point
    b.author = identity_point.to_vec();
    assert_eq!(reject(&k, signed_body(&id, b)), ValidationError::WeakKey);
}

#[test]
fn fork_is_kept_as_evidence_and_never_applied() {
    let (_d, k, hook) = kernel();
    let store = StoreId::random();
    let id = Identity::generate();
    let mut a = Author {
        id: id.clone(),
        seq: 0,
        prev: EntryId::ZERO,
        hlc: 0,
    };
    let mut b = Author {
        id,
        seq: 0,
        prev: EntryId::ZERO,
        hlc: 0,
    };
    let first = a.next(store, vec![], 0, b"first");
    let second = b.next(store, vec![], 0, b"second");
    assert_eq!(
        k.ingest(&[first.to_wire()]).unwrap().outcomes,
        vec![Outcome::Committed]
    );
    // The second branch is logged as a void placeholder (so entries built
    // on it commit here too), and the fork rule voids the author's entries
    // from seq 1 on: the store is rebuilt without the first one.
    assert_eq!(
        k.ingest(&[second.to_wire()]).unwrap().outcomes,
        vec![Outcome::Committed]
    );
    assert_eq!(k.fork_seq(&store, &first.author).unwrap(), Some(1));
    assert!(k.is_void(&store, &first.id).unwrap());
    assert!(k.is_void(&store, &second.id).unwrap());
    let forks = k.forks(&store).unwrap();
    assert_eq!(forks.len(), 1);
    let mut ids: Vec<_> = forks[0].entries.iter().map(|e| e.id).collect();
    ids.sort();
    let mut want = vec![first.id, second.id];
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(k.flagged_authors(&store).unwrap(), vec![first.author]);
    assert_eq!(hook.applied.lock().unwrap().len(), 0);
    assert_eq!(state_count(&k, &store), 0);
}

#[test]
fn chain_break_and_non_monotone_hlc() {
    let (_d, k, _) = kernel();
    let store = StoreId::random();
    let mut a = Author::new();
    let e1 = a.next(store, vec![], 0, b"1");
    k.ingest(&[e1.to_wire()]).unwrap();
    // seq 2 naming a prev that is not the author's seq-1 entry.
    let mut wrong = Author {
        id: a.id.clone(),
        seq: 1,
        prev: EntryId([5; 32]),
        hlc: a.hlc,
    };
    let bad = wrong.next(store, vec![], 0, b"2");
    // Signed by the author, it proves a fork at seq 1 (a seq-2 entry that
    // does not follow its seq-1 entry); it waits for the prev it names.
    assert_eq!(
        k.ingest(&[bad.to_wire()]).unwrap().outcomes,
        vec![Outcome::Waiting {
            missing: EntryId([5; 32])
        }]
    );
    assert_eq!(k.fork_seq(&store, &a.id.author()).unwrap(), Some(1));
    // seq 2 naming another author's entry as its prev.
    let mut other = Author::new();
    let o1 = other.next(store, vec![], 0, b"o1");
    k.ingest(&[o1.to_wire()]).unwrap();
    let mut wrong = Author {
        id: a.id.clone(),
        seq: 1,
        prev: o1.id,
        hlc: a.hlc.max(o1.hlc),
    };
    let bad = wrong.next(store, vec![], 0, b"2");
    assert_eq!(
        reject(&k, bad.to_wire()),
        ValidationError::PrevMismatch {
            seq_before: 1,
            expected: e1.id,
            got: o1.id
        }
    );
    // seq 2 whose HLC does not exceed seq 1's.
    let e2 = SignedEntry::sign(
        &a.id,
        Draft {
            store,
            seq: 2,
            prev: e1.id,
            hlc: e1.hlc,
            deps: vec![],
            payload: b"2".to_vec(),
        },
    );
    assert_eq!(
        reject(&k, e2.to_wire()),
        ValidationError::HlcNotAfter {
            hlc: e1.hlc,
            before: e1.hlc,
            of: e1.id
        }
    );
}

#[test]
fn deps_must_be_same_store_and_earlier() {
    let (_d, k, _) = kernel();
    let (s1, s2) = (StoreId::random(), StoreId::random());
    let mut a = Author::new();
    let mut b = Author::new();
    let other_store = a.next(s2, vec![], 0, b"elsewhere");
    k.ingest(&[other_store.to_wire()]).unwrap();
    let e = b.next(s1, vec![other_store.id], other_store.hlc, b"x");
    assert_eq!(
        reject(&k, e.to_wire()),
        ValidationError::ForeignDep(other_store.id)
    );

    let mut d = Author::new();
    let dep = d.next(s1, vec![], 0, b"dep");
    k.ingest(&[dep.to_wire()]).unwrap();
    let mut c = Author::new();
    let late = SignedEntry::sign(
        &c.id,
        Draft {
            store: s1,
            seq: 1,
            prev: EntryId::ZERO,
            hlc: dep.hlc,
            deps: vec![dep.id],
            payload: vec![],
        },
    );
    assert_eq!(
        reject(&k, late.to_wire()),
        ValidationError::HlcNotAfter {
            hlc: dep.hlc,
            before: dep.hlc,
            of: dep.id
        }
    );
    let fine = c.next(s1, vec![dep.id], dep.hlc, b"ok");
    assert_eq!(
        k.ingest(&[fine.to_wire()]).unwrap().outcomes,
        vec![Outcome::Committed]
    );
}

#[test]
fn unauthorized_author() {
    let (_d, k, hook) = kernel();
    let mut a = Author::new();
    hook.refuse.lock().unwrap().push(a.id.author());
    let e = a.next(StoreId::random(), vec![], 0, b"x");
    assert_eq!(
        reject(&k, e.to_wire()),
        ValidationError::Unauthorized(a.id.author())
    );
}

#[test]
fn duplicates_change_nothing() {
    let (_d, k, hook) = kernel();
    let store = StoreId::random();
    let mut a = Author::new();
    let e = a.next(store, vec![], 0, b"x");
    let r = k.ingest(&[e.to_wire(), e.to_wire()]).unwrap();
    assert_eq!(r.outcomes, vec![Outcome::Committed, Outcome::Duplicate]);
    assert_eq!(
        k.ingest(&[e.to_wire()]).unwrap().outcomes,
        vec![Outcome::Duplicate]
    );
    assert_eq!(hook.applied.lock().unwrap().len(), 1);
}

#[test]
fn orphans_wait_then_resolve_iteratively() {
    let (_d, k, hook) = kernel();
    let store = StoreId::random();
    let mut a = Author::new();
    // A long chain delivered in reverse: every entry but the first waits.
    let chain: Vec<SignedEntry> = (0..3000)
        .map(|i| a.next(store, vec![], 0, &(i as u32).to_le_bytes()))
        .collect();
    let reversed: Vec<Vec<u8>> = chain[1..].iter().rev().map(|e| e.to_wire()).collect();
    let r = k.ingest(&reversed).unwrap();
    assert!(
        r.outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Waiting { .. }))
    );
    assert_eq!(
        r.outcomes.last(),
        Some(&Outcome::Waiting {
            missing: chain[0].id
        })
    );
    assert_eq!(k.orphan_count().unwrap(), 2999);
    let r = k.ingest(&[chain[0].to_wire()]).unwrap();
    assert_eq!(r.outcomes, vec![Outcome::Committed]);
    assert_eq!(r.committed.len(), 3000);
    assert_eq!(k.orphan_count().unwrap(), 0);
    assert_eq!(k.status(&store).unwrap().entries, 3000);
    assert_eq!(k.heads(&store).unwrap(), vec![chain[2999].id]);
    let applied = hook.applied.lock().unwrap();
    assert!(
        applied.windows(2).all(|w| w[0].seq + 1 == w[1].seq),
        "applied in chain order"
    );
}

#[test]
fn children_before_parents_in_one_batch_all_commit() {
    let (_d, k, _) = kernel();
    let store = StoreId::random();
    let mut a = Author::new();
    let mut b = Author::new();
    let a1 = a.next(store, vec![], 0, b"a1");
    let b1 = b.next(store, vec![a1.id], a1.hlc, b"b1");
    let r = k.ingest(&[b1.to_wire(), a1.to_wire()]).unwrap();
    assert_eq!(r.outcomes, vec![Outcome::Committed, Outcome::Committed]);
    assert_eq!(r.committed, vec![a1.id, b1.id]);
}

#[test]
fn orphan_ttl_drops_stale_orphans() {
    let (_d, k, _) = kernel();
    let store = StoreId::random();
    let mut a = Author::new();
    let _lost = a.next(store, vec![], 0, b"never delivered");
    let child = a.next(store, vec![], 0, b"child");
    let r = k.ingest(&[child.to_wire()]).unwrap();
    assert!(matches!(r.outcomes[0], Outcome::Waiting { .. }));
    assert_eq!(k.sweep_orphans().unwrap(), 0, "young orphans stay");
    assert_eq!(k.orphan_count().unwrap(), 1);
    assert_eq!(k.sweep_orphans_before(now_ms() + 1).unwrap(), 1);
    assert_eq!(k.orphan_count().unwrap(), 0);
}

#[test]
fn hook_failure_aborts_the_whole_transaction() {
    let (_d, k, hook) = kernel();
    let store = StoreId::random();
    let mut a = Author::new();
    let ok = a.next(store, vec![], 0, b"ok");
    let boom = a.next(store, vec![], 0, b"boom");
    *hook.fail_on_payload.lock().unwrap() = Some(b"boom".to_vec());
    let err = k.ingest(&[ok.to_wire(), boom.to_wire()]).unwrap_err();
    assert!(err.to_string().contains("hook asked to fail"), "{err}");
    assert_eq!(
        k.status(&store).unwrap().entries,
        0,
        "log and state commit together or not at all"
    );
    assert_eq!(state_count(&k, &store), 0);
    *hook.fail_on_payload.lock().unwrap() = None;
    let r = k.ingest(&[ok.to_wire(), boom.to_wire()]).unwrap();
    assert_eq!(r.outcomes, vec![Outcome::Committed, Outcome::Committed]);
    assert_eq!(state_count(&k, &store), 2);
}

#[test]
fn local_appends_chain_and_follow_heads() {
    let (_d, k, _) = kernel();
    let store = StoreId::random();
    let mut peer = Author::new();
    let p1 = peer.next(store, vec![], 0, b"peer");
    k.ingest(&[p1.to_wire()]).unwrap();
    let e1 = k.append(store, b"one".to_vec()).unwrap();
    assert_eq!(
        (e1.seq, e1.prev, e1.deps.clone()),
        (1, EntryId::ZERO, vec![p1.id])
    );
    assert!(e1.hlc > p1.hlc);
    let pend: Vec<_> = (0..100)
        .map(|i| k.append_async(store, vec![i]).unwrap())
        .collect();
    let got: Vec<SignedEntry> = pend.into_iter().map(|p| p.wait().unwrap()).collect();
    assert_eq!(got.last().unwrap().seq, 101);
    assert!(
        got.windows(2)
            .all(|w| w[1].prev == w[0].id && w[1].hlc > w[0].hlc)
    );
    assert_eq!(k.heads(&store).unwrap(), vec![got[99].id]);
    let tips = k.tips(&store).unwrap();
    assert_eq!(tips.len(), 2);
    assert_eq!(
        k.chain_range(&store, &k.author(), 50, 10).unwrap().len(),
        10
    );
    assert_eq!(k.log(&store, 0, 1000).unwrap().len(), 102);
    assert_eq!(k.get(&e1.id).unwrap().unwrap(), e1);
}

#[test]
fn second_open_of_the_same_log_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let _k = open(dir.path(), Arc::new(NoHook));
    let err = Kernel::open(
        &dir.path().join("log.redb"),
        Identity::generate(),
        config(false),
        Arc::new(NoHook),
    )
    .err()
    .expect("second open must fail");
    assert!(matches!(err, KernelError::Locked { .. }), "{err}");
}

/// Found by the `replicas` fuzz target: an entry signed in process over a
/// draft the wire rules refuse (seq 0) was logged by `ingest_entries`, which
/// skipped the decoder, and then could not be read back. Entries in hand now
/// pass the same rules as bytes from a peer.
#[test]
fn entries_in_hand_pass_the_wire_rules_too() {
    let (_d, k, _) = kernel();
    let s = StoreId::random();
    let x = Identity::generate();
    let bad = SignedEntry::sign(
        &x,
        Draft {
            store: s,
            seq: 0,
            prev: EntryId::ZERO,
            hlc: now_ms() << COUNTER_BITS,
            deps: vec![],
            payload: b"seq zero".to_vec(),
        },
    );
    let wire_verdict = reject(&k, bad.to_wire());
    match k.ingest_entries(vec![bad]).unwrap().outcomes.remove(0) {
        Outcome::Rejected(e) => assert_eq!(e, wire_verdict),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(k.status(&s).unwrap().entries, 0);
    let txn = redb::ReadableDatabase::begin_read(k.db()).unwrap();
    assert!(k.verify_store(&txn, &s).unwrap().is_clean());
}
