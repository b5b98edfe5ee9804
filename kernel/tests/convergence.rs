//! Random DAGs from several authors with concurrent branches, delivered in
//! many random orders (duplicates, children before parents, random batch
//! sizes) must give identical entry sets, heads and log digests, and every
//! entry must be applied after everything it causally follows.

mod common;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use common::*;
use lattice_kernel::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng};
use rand::prelude::*;

/// Builds `n` entries by `authors` authors. Each author has a partial view
/// of the DAG and occasionally merges another author's view, so branches
/// run concurrently for a while and then join.
fn random_dag(seed: [u8; 32], authors: usize, n: usize) -> (StoreId, Vec<SignedEntry>) {
    let mut rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed);
    let store = StoreId(rng.random());
    let mut sims: Vec<Author> = (0..authors).map(|_| Author::new()).collect();
    let mut views: Vec<BTreeSet<EntryId>> = vec![BTreeSet::new(); authors];
    let mut all: HashMap<EntryId, SignedEntry> = HashMap::new();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let a = rng.random_range(0..authors);
        if rng.random_bool(0.3) {
            let b = rng.random_range(0..authors);
            let other = views[b].clone();
            views[a].extend(other);
        }
        // Heads of this author's view: entries nothing else in the view follows.
        let referenced: HashSet<EntryId> = views[a]
            .iter()
            .flat_map(|id| {
                let e = &all[id];
                e.deps.iter().copied().chain((e.seq > 1).then_some(e.prev))
            })
            .collect();
        let heads: Vec<EntryId> = views[a]
            .iter()
            .filter(|id| !referenced.contains(id))
            .copied()
            .collect();
        let min_hlc = heads.iter().map(|h| all[h].hlc).max().unwrap_or(0);
        let payload: [u8; 8] = rng.random();
        let e = sims[a].next(store, heads, min_hlc, &payload);
        views[a].insert(e.id);
        all.insert(e.id, e.clone());
        out.push(e);
    }
    (store, out)
}

fn deliver(entries: &[SignedEntry], seed: u64) -> (LogStatus, Vec<SignedEntry>, u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut wires: Vec<Vec<u8>> = entries.iter().map(|e| e.to_wire()).collect();
    // Duplicates: about a tenth of the entries arrive twice.
    for _ in 0..entries.len() / 10 {
        let i = rng.random_range(0..entries.len());
        wires.push(entries[i].to_wire());
    }
    wires.shuffle(&mut rng);
    let dir = tempfile::tempdir().unwrap();
    let hook = Arc::new(RecordingHook::default());
    let k = open(dir.path(), hook.clone());
    let mut rest = wires.as_slice();
    while !rest.is_empty() {
        let take = rng.random_range(1..=rest.len().min(97));
        let report = k.ingest(&rest[..take]).unwrap();
        assert!(
            report
                .outcomes
                .iter()
                .all(|o| !matches!(o, Outcome::Rejected(_))),
            "honest entries must never be rejected: {:?}",
            report
                .outcomes
                .iter()
                .find(|o| matches!(o, Outcome::Rejected(_)))
        );
        rest = &rest[take..];
    }
    let store = entries[0].store;
    let mut status = k.status(&store).unwrap();
    status.heads.sort();
    let applied = hook.applied.lock().unwrap().clone();
    (status, applied, k.orphan_count().unwrap())
}

fn check_causal(applied: &[SignedEntry]) {
    let mut seen = HashSet::new();
    for e in applied {
        if e.seq > 1 {
            assert!(
                seen.contains(&e.prev),
                "entry applied before its chain predecessor"
            );
        }
        for d in &e.deps {
            assert!(seen.contains(d), "entry applied before its causal dep");
        }
        assert!(seen.insert(e.id), "entry applied twice");
    }
}

proptest! {
    #![proptest_config(Config { cases: 8, ..Config::default() })]

    #[test]
    fn any_delivery_order_converges(seed in any::<[u8; 32]>(), orders in prop::collection::vec(any::<u64>(), 3)) {
        let (_store, entries) = random_dag(seed, 5, 500);
        let mut expected_ids: Vec<EntryId> = entries.iter().map(|e| e.id).collect();
        expected_ids.sort();
        let mut first: Option<LogStatus> = None;
        for o in orders {
            let (status, applied, orphans) = deliver(&entries, o);
            prop_assert_eq!(orphans, 0);
            prop_assert_eq!(status.entries, 500);
            let mut ids: Vec<EntryId> = applied.iter().map(|e| e.id).collect();
            ids.sort();
            prop_assert_eq!(&ids, &expected_ids);
            check_causal(&applied);
            match &first {
                None => first = Some(status),
                Some(f) => prop_assert_eq!(f, &status),
            }
        }
    }
}

#[test]
fn generator_makes_concurrent_branches() {
    // Guard against a generator that degenerates into one linear chain,
    // which would make the property above trivially true.
    let (_, entries) = random_dag([7; 32], 5, 500);
    let multi_dep = entries.iter().filter(|e| e.deps.len() > 1).count();
    let (status, _, _) = deliver(&entries, 1);
    assert!(multi_dep > 20, "only {multi_dep} merge entries");
    assert!(status.entries == 500);
}
