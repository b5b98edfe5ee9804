//! Test helpers: build entries by hand (any author, any DAG) and open
//! kernels in temp dirs.
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use lattice_kernel::*;
use redb::{ReadableTable, TableDefinition, WriteTransaction};

/// A simulated author: signs entries into its own chain.
pub struct Author {
    pub id: Identity,
    pub seq: u64,
    pub prev: EntryId,
    pub hlc: u64,
}

impl Author {
    pub fn new() -> Self {
        Author {
            id: Identity::generate(),
            seq: 0,
            prev: EntryId::ZERO,
            hlc: 0,
        }
    }

    /// Next entry in this author's chain with the given deps; the HLC is
    /// now-ish and above `min_hlc`.
    pub fn next(
        &mut self,
        store: StoreId,
        deps: Vec<EntryId>,
        min_hlc: u64,
        payload: &[u8],
    ) -> SignedEntry {
        let hlc = (now_ms() << COUNTER_BITS)
            .max(self.hlc + 1)
            .max(min_hlc + 1);
        let e = SignedEntry::sign(
            &self.id,
            Draft {
                store,
                seq: self.seq + 1,
                prev: self.prev,
                hlc,
                deps,
                payload: payload.to_vec(),
            },
        );
        self.seq += 1;
        self.prev = e.id;
        self.hlc = hlc;
        e
    }
}

impl Author {
    /// An author with a fixed identity (a test's hostile member).
    pub fn with_identity(id: Identity) -> Self {
        Author {
            id,
            seq: 0,
            prev: EntryId::ZERO,
            hlc: 0,
        }
    }

    /// Next entry in the chain, depending on an id that will never exist:
    /// it (and everything after it in the chain) can only wait as an orphan.
    pub fn next_dangling(&mut self, store: StoreId, payload: &[u8]) -> SignedEntry {
        let mut missing = [0u8; 32];
        missing[..8].copy_from_slice(&self.seq.to_be_bytes());
        missing[8..16].copy_from_slice(&now_ms().to_be_bytes());
        missing[16..].copy_from_slice(&self.id.author().0[..16]);
        let missing = EntryId(*blake3::hash(&missing).as_bytes());
        self.next(store, vec![missing], 0, payload)
    }

    /// Another entry at seq 1 of this author's chain: once the author's
    /// real first entry is logged, each one is a fork. The chain state is
    /// left as it was.
    pub fn fork_first(&self, store: StoreId, payload: &[u8]) -> SignedEntry {
        SignedEntry::sign(
            &self.id,
            Draft {
                store,
                seq: 1,
                prev: EntryId::ZERO,
                hlc: now_ms() << COUNTER_BITS,
                deps: vec![],
                payload: payload.to_vec(),
            },
        )
    }
}

pub fn config(durable: bool) -> KernelConfig {
    KernelConfig {
        durable,
        ..KernelConfig::default()
    }
}

pub fn open(dir: &Path, hook: Arc<dyn CommitHook>) -> Kernel {
    Kernel::open(
        &dir.join("log.redb"),
        Identity::generate(),
        config(false),
        hook,
    )
    .unwrap()
}

/// Records the order of applied entries and writes one state row per entry,
/// so tests can check causal apply order and log/state agreement.
#[derive(Default)]
pub struct RecordingHook {
    pub applied: Mutex<Vec<SignedEntry>>,
    pub refuse: Mutex<Vec<AuthorId>>,
    pub fail_on_payload: Mutex<Option<Vec<u8>>>,
}

pub const TEST_STATE: TableDefinition<&[u8], u64> = TableDefinition::new("test_state");

impl CommitHook for RecordingHook {
    fn admit(&self, _: &WriteTransaction, e: &SignedEntry) -> Result<Admission, HookError> {
        Ok(if self.refuse.lock().unwrap().contains(&e.author) {
            Admission::Refuse(ValidationError::Unauthorized(e.author))
        } else {
            Admission::Apply
        })
    }

    fn apply(&self, txn: &WriteTransaction, e: &SignedEntry) -> Result<(), HookError> {
        if self.fail_on_payload.lock().unwrap().as_deref() == Some(e.payload.as_slice()) {
            return Err("hook asked to fail".into());
        }
        let mut t = txn.open_table(TEST_STATE)?;
        let n = t.get(e.store.0.as_slice())?.map(|v| v.value()).unwrap_or(0);
        t.insert(e.store.0.as_slice(), n + 1)?;
        self.applied.lock().unwrap().push(e.clone());
        Ok(())
    }

    /// Forgets the store's count and its entries in `applied`; the replay
    /// that follows applies them again.
    fn reset(&self, txn: &WriteTransaction, store: &StoreId) -> Result<(), HookError> {
        txn.open_table(TEST_STATE)?.remove(store.0.as_slice())?;
        self.applied.lock().unwrap().retain(|e| e.store != *store);
        Ok(())
    }
}

pub fn state_count(k: &Kernel, store: &StoreId) -> u64 {
    use redb::ReadableDatabase;
    let txn = k.db().begin_read().unwrap();
    match txn.open_table(TEST_STATE) {
        Ok(t) => t
            .get(store.0.as_slice())
            .unwrap()
            .map(|v| v.value())
            .unwrap_or(0),
        Err(_) => 0,
    }
}

impl Author {
    /// A second copy of this author's chain state, same key: what a hostile
    /// member uses to sign another branch from here on.
    pub fn branch(&self) -> Author {
        Author {
            id: self.id.clone(),
            seq: self.seq,
            prev: self.prev,
            hlc: self.hlc,
        }
    }
}

/// Applied entry ids per store, as a table, so two kernels' states compare
/// as sets (independent of apply order); rebuildable.
#[derive(Default)]
pub struct SetHook;

pub const APPLIED: TableDefinition<&[u8], ()> = TableDefinition::new("test_applied");

impl CommitHook for SetHook {
    fn apply(&self, txn: &WriteTransaction, e: &SignedEntry) -> Result<(), HookError> {
        let mut k = e.store.0.to_vec();
        k.extend_from_slice(&e.id.0);
        txn.open_table(APPLIED)?.insert(k.as_slice(), ())?;
        Ok(())
    }

    fn reset(&self, txn: &WriteTransaction, store: &StoreId) -> Result<(), HookError> {
        let mut t = txn.open_table(APPLIED)?;
        let lo = store.0.to_vec();
        let mut hi = lo.clone();
        hi.extend_from_slice(&[0xff; 32]);
        t.retain_in::<&[u8], _>(lo.as_slice()..=hi.as_slice(), |_, _| false)?;
        Ok(())
    }
}

/// The ids `SetHook` applied in `store`, sorted.
pub fn applied_set(k: &Kernel, store: &StoreId) -> Vec<EntryId> {
    use redb::ReadableDatabase;
    let txn = k.db().begin_read().unwrap();
    let Ok(t) = txn.open_table(APPLIED) else {
        return Vec::new();
    };
    let lo = store.0.to_vec();
    let mut hi = lo.clone();
    hi.extend_from_slice(&[0xff; 32]);
    t.range(lo.as_slice()..=hi.as_slice())
        .unwrap()
        .map(|r| EntryId::from_slice(&r.unwrap().0.value()[16..]).unwrap())
        .collect()
}

/// What must hold of `store` after any crash: every acknowledged entry is
/// present; log, commit order, hook state, digest, heads and chain tips
/// agree. Returns the entry count.
pub fn check_invariants(k: &Kernel, store: &StoreId, acknowledged: &HashSet<EntryId>) -> u64 {
    let status = k.status(store).unwrap();
    let log = k.log(store, 0, usize::MAX).unwrap();
    assert_eq!(
        log.len() as u64,
        status.entries,
        "entry count matches the commit order table"
    );
    assert_eq!(
        state_count(k, store),
        status.entries,
        "plugin state and log agree"
    );
    let ids: HashSet<EntryId> = log.iter().map(|e| e.id).collect();
    for id in acknowledged {
        assert!(ids.contains(id), "acknowledged entry {id} lost after crash");
    }
    let mut digest = SetDigest::default();
    let mut referenced = HashSet::new();
    let mut seen = HashSet::new();
    for e in &log {
        digest.add(&e.id.0);
        if e.seq > 1 {
            assert!(
                seen.contains(&e.prev),
                "chain is contiguous and in causal order"
            );
            referenced.insert(e.prev);
        }
        referenced.extend(e.deps.iter().copied());
        seen.insert(e.id);
    }
    assert_eq!(digest, status.digest, "digest matches the entries present");
    let mut heads: Vec<EntryId> = ids.difference(&referenced).copied().collect();
    heads.sort();
    let mut got = status.heads.clone();
    got.sort();
    assert_eq!(got, heads, "heads are exactly the unreferenced entries");
    let tips: u64 = k.tips(store).unwrap().iter().map(|t| t.seq).sum();
    assert_eq!(tips, status.entries, "chain tips account for every entry");
    status.entries
}
