//! Orphans and fork evidence are bounded: a member with a modified client
//! cannot make a node hold unbounded data it will never log, and honest
//! entries still get through while it tries.

mod common;

use std::sync::Arc;

use common::*;
use lattice_kernel::*;

fn capped(per_author: u64, total: u64, forks_per_author: u64, forks: u64) -> KernelConfig {
    KernelConfig {
        max_orphans_per_author: per_author,
        max_orphans: total,
        max_forks_per_author: forks_per_author,
        max_forks: forks,
        ..config(false)
    }
}

fn open_with(dir: &std::path::Path, cfg: KernelConfig) -> Kernel {
    Kernel::open(
        &dir.join("log.redb"),
        Identity::generate(),
        cfg,
        Arc::new(RecordingHook::default()),
    )
    .unwrap()
}

/// A forged author's chain whose first entry depends on an id that will
/// never exist: every entry of it can only wait.
fn flood(author: &mut Author, store: StoreId, n: usize) -> Vec<SignedEntry> {
    let mut out = vec![author.next_dangling(store, b"flood-0")];
    for i in 1..n {
        let min = author.hlc;
        out.push(author.next(store, vec![], min, format!("flood-{i}").as_bytes()));
    }
    out
}

#[test]
fn one_forged_author_stays_within_its_orphan_cap_and_honest_orphans_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let k = open_with(dir.path(), capped(50, 200, 64, 10_000));
    let store = StoreId::random();
    let mut evil = Author::new();
    let batch = flood(&mut evil, store, 500);
    // In chunks, like sync delivers them: no batch fails.
    for chunk in batch.chunks(64) {
        let report = k.ingest_entries(chunk.to_vec()).unwrap();
        assert!(
            report
                .outcomes
                .iter()
                .all(|o| matches!(o, Outcome::Waiting { .. })),
            "{:?}",
            report.outcomes
        );
    }
    assert_eq!(k.orphan_count_of(&evil.id.author()).unwrap(), 50);
    assert_eq!(k.orphan_count().unwrap(), 50);

    // An honest author's entries arrive children first, then the parent.
    let mut honest = Author::new();
    let a = honest.next(store, vec![], 0, b"a");
    let b = honest.next(store, vec![], 0, b"b");
    let c = honest.next(store, vec![], 0, b"c");
    let r = k.ingest_entries(vec![c.clone(), b.clone()]).unwrap();
    assert!(
        r.outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Waiting { .. }))
    );
    assert_eq!(k.orphan_count_of(&honest.id.author()).unwrap(), 2);
    let r = k.ingest_entries(vec![a.clone()]).unwrap();
    assert_eq!(r.outcomes, vec![Outcome::Committed]);
    assert_eq!(r.committed, vec![a.id, b.id, c.id]);
    assert_eq!(k.orphan_count_of(&honest.id.author()).unwrap(), 0);
    assert_eq!(k.status(&store).unwrap().entries, 3);

    // The sweep releases the forged author's records (and its count).
    assert_eq!(k.sweep_orphans_before(u64::MAX).unwrap(), 50);
    assert_eq!(k.orphan_count().unwrap(), 0);
    assert_eq!(k.orphan_count_of(&evil.id.author()).unwrap(), 0);
}

#[test]
fn the_total_cap_holds_against_many_authors_and_dropped_orphans_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let k = open_with(dir.path(), capped(40, 100, 64, 10_000));
    let store = StoreId::random();
    for _ in 0..4 {
        let mut evil = Author::new();
        let report = k.ingest_entries(flood(&mut evil, store, 60)).unwrap();
        assert_eq!(report.outcomes.len(), 60);
        assert!(k.orphan_count_of(&evil.id.author()).unwrap() <= 40);
    }
    assert_eq!(k.orphan_count().unwrap(), 100);

    // The store is full of orphans: an honest child arriving now is dropped,
    // not an error, and is accepted when sync brings it again after its
    // parent.
    let mut honest = Author::new();
    let a = honest.next(store, vec![], 0, b"a");
    let b = honest.next(store, vec![], 0, b"b");
    let r = k.ingest_entries(vec![b.clone()]).unwrap();
    assert!(matches!(r.outcomes[0], Outcome::Waiting { .. }));
    assert_eq!(k.orphan_count_of(&honest.id.author()).unwrap(), 0);
    let r = k.ingest_entries(vec![a.clone()]).unwrap();
    assert_eq!(r.committed, vec![a.id]);
    let r = k.ingest_entries(vec![b.clone()]).unwrap();
    assert_eq!(r.outcomes, vec![Outcome::Committed]);
    assert_eq!(k.status(&store).unwrap().entries, 2);
}

#[test]
fn fork_evidence_is_capped_per_author_and_in_total() {
    let dir = tempfile::tempdir().unwrap();
    let k = open_with(dir.path(), capped(50, 200, 6, 10));
    let store = StoreId::random();
    let mut evil = Author::new();
    let first = evil.next(store, vec![], 0, b"first");
    k.ingest_entries(vec![first.clone()]).unwrap();
    let forks: Vec<SignedEntry> = (0..40)
        .map(|i| evil.fork_first(store, format!("fork-{i}").as_bytes()))
        .collect();
    let report = k.ingest_entries(forks.clone()).unwrap();
    // Each is logged as a void placeholder (the fork rule); none applies.
    assert!(
        report.outcomes.iter().all(|o| *o == Outcome::Committed),
        "{:?}",
        report.outcomes
    );
    assert!(forks.iter().all(|f| k.is_void(&store, &f.id).unwrap()));
    // The first fork is kept as evidence (the author is flagged); the rest
    // stop at the cap.
    let evidence = k.forks(&store).unwrap();
    assert_eq!(evidence.len(), 1);
    assert!(evidence[0].entries.len() <= 6 && evidence[0].entries.len() >= 2);
    assert!(evidence[0].entries.iter().any(|e| e.id == first.id));
    assert_eq!(k.flagged_authors(&store).unwrap(), vec![evil.id.author()]);

    // Other forging authors fill the total cap with redundant evidence and
    // no further; an author's first proof is kept even over the total cap
    // (dropping it would make this replica's verdict differ from others').
    let mut others = Vec::new();
    for _ in 0..5 {
        let mut other = Author::new();
        let first = other.next(store, vec![], 0, b"first");
        k.ingest_entries(vec![first]).unwrap();
        let forks = (0..5)
            .map(|i| other.fork_first(store, format!("f{i}").as_bytes()))
            .collect();
        k.ingest_entries(forks).unwrap();
        others.push(other.id.author());
    }
    assert!(k.fork_record_count().unwrap() <= 10 + 2 * 5);
    for a in &others {
        assert_eq!(k.fork_seq(&store, a).unwrap(), Some(1));
    }
}
