//! Shared by the kernel bench and the `ingest_million` example: entries as
//! a peer would send them.
#![allow(dead_code)] // each includer uses a different part

use lattice_kernel::*;

/// Signs chained entries round-robin over a fixed set of authors.
pub struct ForeignAuthors {
    store: StoreId,
    authors: Vec<Identity>,
    tips: Vec<(u64, EntryId)>,
    hlc: u64,
    next: usize,
}

impl ForeignAuthors {
    pub fn new(n: usize) -> Self {
        ForeignAuthors {
            store: StoreId::random(),
            authors: (0..n).map(|_| Identity::generate()).collect(),
            tips: vec![(0, EntryId::ZERO); n],
            hlc: now_ms() << COUNTER_BITS,
            next: 0,
        }
    }

    pub fn store(&self) -> StoreId {
        self.store
    }

    /// The next `n` entries, encoded.
    pub fn batch(&mut self, n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|_| {
                let a = self.next % self.authors.len();
                let i = self.next as u64;
                self.next += 1;
                self.hlc += 1;
                let (seq, prev) = self.tips[a];
                let draft = Draft {
                    store: self.store,
                    seq: seq + 1,
                    prev,
                    hlc: self.hlc,
                    deps: vec![],
                    payload: i.to_le_bytes().to_vec(),
                };
                let e = SignedEntry::sign(&self.authors[a], draft);
                self.tips[a] = (seq + 1, e.id);
                e.to_wire()
            })
            .collect()
    }
}
