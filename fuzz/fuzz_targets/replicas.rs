//! The validator on entries a hostile member can sign: the input drives up
//! to three authors writing into two stores with chosen seqs, prevs, deps
//! and HLCs (forks, gaps, missing deps, duplicates, other stores' deps).
//! The signed entries go to two replicas, one in order and one in reverse,
//! in batches the input also picks. Nothing panics, each store's log
//! passes a full audit, and both replicas end with the same log digest per
//! store: what a replica accepts is a function of the entries, not of the
//! order they came in.
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use lattice_kernel::{
    COUNTER_BITS, Draft, EntryId, Identity, Kernel, KernelConfig, NoHook, SignedEntry, StoreId,
};
use libfuzzer_sys::fuzz_target;
use redb::ReadableDatabase;

/// Two replicas opened once; every run writes into two fresh stores, so
/// runs do not see each other's chains.
struct Replicas {
    _dir: tempfile::TempDir,
    x: Kernel,
    y: Kernel,
    runs: AtomicU64,
}

fn replicas() -> &'static Replicas {
    static R: OnceLock<Replicas> = OnceLock::new();
    R.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (x, y) = (kernel(dir.path(), "x.redb"), kernel(dir.path(), "y.redb"));
        Replicas {
            _dir: dir,
            x,
            y,
            runs: AtomicU64::new(0),
        }
    })
}

fn kernel(dir: &std::path::Path, name: &str) -> Kernel {
    Kernel::open(
        &dir.join(name),
        Identity::generate(),
        // The caps on held orphans and fork records are local resource
        // bounds, not replicated rules: past one, a replica drops the
        // record and sync brings it again later. Runs share these kernels,
        // so the totals are lifted here and each run has its own authors.
        KernelConfig {
            durable: false,
            max_orphans: u64::MAX,
            max_forks: u64::MAX,
            ..KernelConfig::default()
        },
        Arc::new(NoHook),
    )
    .unwrap()
}

/// Reads the input a byte at a time; zeros once it runs out.
struct Bytes<'a>(&'a [u8]);
impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn empty(&self) -> bool {
        self.0.is_empty()
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes(data);
    let r = replicas();
    let run = r.runs.fetch_add(1, Ordering::Relaxed);
    let store = |i: u64| {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&(2 * run + i).to_be_bytes());
        StoreId(id)
    };
    let stores = [store(0), store(1)];
    let authors: Vec<Identity> = (0..3u64)
        .map(|i| {
            Identity::from_secret_bytes(*blake3::hash(&(3 * run + i).to_le_bytes()).as_bytes())
        })
        .collect();
    // A fixed past time: a run replays exactly (the drift rule only
    // refuses the future).
    let base = 1_700_000_000_000u64 << COUNTER_BITS;
    let mut made: Vec<SignedEntry> = Vec::new();
    while !input.empty() && made.len() < 64 {
        let a = (input.byte() % 3) as usize;
        let store = stores[(input.byte() % 2) as usize];
        let seq = u64::from(input.byte() % 8);
        let pick = |input: &mut Bytes, made: &[SignedEntry]| -> EntryId {
            let i = input.byte() as usize;
            if made.is_empty() || i % 5 == 0 {
                EntryId([i as u8; 32])
            } else {
                made[i % made.len()].id
            }
        };
        let prev = if seq <= 1 {
            EntryId::ZERO
        } else {
            pick(&mut input, &made)
        };
        let deps = (0..input.byte() % 3)
            .map(|_| pick(&mut input, &made))
            .collect();
        let hlc = base + u64::from(input.byte()) * 1000;
        let payload = vec![input.byte(); (input.byte() % 16) as usize];
        made.push(SignedEntry::sign(
            &authors[a],
            Draft {
                store,
                seq,
                prev,
                hlc,
                deps,
                payload,
            },
        ));
    }
    let cut = (data.first().copied().unwrap_or(1) as usize % 7) + 1;
    let (x, y) = (&r.x, &r.y);
    for chunk in made.chunks(cut) {
        x.ingest_entries(chunk.to_vec()).unwrap();
    }
    let reversed: Vec<_> = made.iter().rev().cloned().collect();
    for chunk in reversed.chunks(cut) {
        y.ingest_entries(chunk.to_vec()).unwrap();
    }
    for s in &stores {
        for k in [x, y] {
            let txn = k.db().begin_read().unwrap();
            let audit = k.verify_store(&txn, s).unwrap();
            assert!(audit.is_clean(), "{:?}", audit.problems);
        }
        assert_eq!(
            x.status(s).unwrap().digest,
            y.status(s).unwrap().digest,
            "replicas disagree on store {s}"
        );
    }
});
