//! Reads of the log, in read snapshots that never block the commit thread.
//!
//! Every stored entry that is decoded here is checked against the id it is
//! stored under (`blake3(body) == id`) and against its record header (store,
//! HLC, position), so a flipped bit on disk surfaces as
//! [`KernelError::CorruptEntry`] naming the entry instead of being served,
//! synced to peers or shown as data. The hash is computed by the decoder
//! anyway (it is how an entry gets its id); the check is one comparison.

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::{ChainPos, ChainTip, ForkEvidence, Kernel, LogPos, LogStatus};
use crate::entry::{Limits, SignedEntry};
use crate::error::KernelError;
use crate::ids::{AuthorId, EntryId, SetDigest, StoreId};
use crate::log;

/// Limits for decoding entries already in the log: they passed the limits
/// in force when they were accepted, and a later, smaller limit must not
/// make them unreadable.
pub(crate) const STORED: Limits = Limits {
    max_entry_bytes: usize::MAX,
    max_deps: usize::MAX,
};

/// An `kernel_entries` record decoded and checked against the id it is
/// stored under. Returns the entry and its stored position.
pub(crate) fn decode_stored(id: &EntryId, rec: &[u8]) -> Result<(SignedEntry, u64), KernelError> {
    let corrupt = |why| KernelError::CorruptEntry { id: *id, why };
    if rec.len() < 32 {
        return Err(corrupt("record is shorter than its header"));
    }
    let e = SignedEntry::decode_shape(&rec[32..], &STORED)
        .map_err(|_| corrupt("stored envelope does not decode"))?;
    if e.id != *id {
        return Err(corrupt("its body no longer hashes to its id"));
    }
    if rec[..16] != e.store.0 {
        return Err(corrupt(
            "record header names another store than the signed body",
        ));
    }
    if log::u64_at(rec, 16) != e.hlc {
        return Err(corrupt("record header HLC differs from the signed HLC"));
    }
    Ok((e, log::u64_at(rec, 24)))
}

/// A bare envelope (fork evidence) stored under `id`, checked likewise.
pub(crate) fn decode_envelope(id: &EntryId, wire: &[u8]) -> Result<SignedEntry, KernelError> {
    let corrupt = |why| KernelError::CorruptEntry { id: *id, why };
    let e = SignedEntry::decode_shape(wire, &STORED)
        .map_err(|_| corrupt("stored envelope does not decode"))?;
    if e.id != *id {
        return Err(corrupt("its body no longer hashes to its id"));
    }
    Ok(e)
}

impl Kernel {
    pub fn get(&self, id: &EntryId) -> Result<Option<SignedEntry>, KernelError> {
        let txn = self.shared.db.begin_read()?;
        let t = txn.open_table(log::ENTRIES)?;
        match t.get(id.0.as_slice())? {
            Some(v) => Ok(Some(decode_stored(id, v.value())?.0)),
            None => Ok(None),
        }
    }

    /// Several entries in one read transaction, in the order asked; an id
    /// not logged here is an error (callers ask for what an index named).
    pub fn get_many(&self, ids: &[EntryId]) -> Result<Vec<SignedEntry>, KernelError> {
        let txn = self.shared.db.begin_read()?;
        let t = txn.open_table(log::ENTRIES)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let v = t
                .get(id.0.as_slice())?
                .ok_or(KernelError::Corrupt("an index names a missing entry"))?;
            out.push(decode_stored(id, v.value())?.0);
        }
        Ok(out)
    }

    /// `author`'s chain in `store` from `from_seq`, at most `limit`
    /// positions, without the entries: (seq, hlc, id, stored bytes). What a
    /// sender merges by HLC across many authors while holding only the
    /// entries of the batch it is filling.
    pub fn chain_index(
        &self,
        store: &StoreId,
        author: &AuthorId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<ChainPos>, KernelError> {
        self.walk_chain(store, author, from_seq, limit, |seq, id, rec| {
            if rec.len() < 32 {
                return Err(KernelError::Corrupt("entry record"));
            }
            Ok(ChainPos {
                seq,
                hlc: log::u64_at(rec, 16),
                id,
                bytes: rec.len() - 32,
            })
        })
    }

    /// Walks `author`'s chain in `store` from `from_seq`, at most `limit`
    /// positions, handing each (seq, id, stored record) to `f` in one read
    /// transaction: the one chain walk [`Self::chain_range`] and
    /// [`Self::chain_index`] share.
    fn walk_chain<T>(
        &self,
        store: &StoreId,
        author: &AuthorId,
        from_seq: u64,
        limit: usize,
        mut f: impl FnMut(u64, EntryId, &[u8]) -> Result<T, KernelError>,
    ) -> Result<Vec<T>, KernelError> {
        let txn = self.shared.db.begin_read()?;
        let chain = txn.open_table(log::CHAIN)?;
        let entries = txn.open_table(log::ENTRIES)?;
        let lo = log::chain_key(store, author, from_seq);
        let hi = log::chain_key(store, author, u64::MAX);
        let mut out = Vec::new();
        for row in chain.range(lo.as_slice()..=hi.as_slice())?.take(limit) {
            let (k, id) = row?;
            let id = EntryId::from_slice(id.value()).ok_or(KernelError::Corrupt("chain record"))?;
            let v = entries
                .get(id.0.as_slice())?
                .ok_or(KernelError::Corrupt("chain names a missing entry"))?;
            out.push(f(log::u64_at(k.value(), 48), id, v.value())?);
        }
        Ok(out)
    }

    /// Every logged entry of `store` as (HLC, id), in that order, handed to
    /// `f` in one read snapshot: the set range-based reconciliation works
    /// on, and exactly the set the store's log digest sums.
    pub fn time_index(
        &self,
        store: &StoreId,
        mut f: impl FnMut(u64, &EntryId),
    ) -> Result<(), KernelError> {
        let txn = self.shared.db.begin_read()?;
        let t = txn.open_table(log::BY_TIME)?;
        let lo = log::time_key(store, 0, &EntryId([0; 32]));
        let hi = log::time_key(store, u64::MAX, &EntryId([0xff; 32]));
        for row in t.range(lo.as_slice()..=hi.as_slice())? {
            let (k, _) = row?;
            let k = k.value();
            let id = EntryId::from_slice(&k[24..]).ok_or(KernelError::Corrupt("time index"))?;
            f(log::u64_at(k, 16), &id);
        }
        Ok(())
    }

    /// Where each of `ids` is, if it is logged in `store`: (HLC, id, wire
    /// size), without decoding entries. Ids that are not logged, or belong
    /// to another store, are left out: a peer asking for them learns
    /// nothing of stores it may not read.
    pub fn locate(&self, store: &StoreId, ids: &[EntryId]) -> Result<Vec<LogPos>, KernelError> {
        let txn = self.shared.db.begin_read()?;
        let t = txn.open_table(log::ENTRIES)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(v) = t.get(id.0.as_slice())? {
                let rec = v.value();
                if rec.len() >= 32 && rec[..16] == store.0 {
                    out.push(LogPos {
                        hlc: log::u64_at(rec, 16),
                        id: *id,
                        bytes: rec.len() - 32,
                    });
                }
            }
        }
        Ok(out)
    }

    pub fn contains(&self, id: &EntryId) -> Result<bool, KernelError> {
        let txn = self.shared.db.begin_read()?;
        Ok(txn
            .open_table(log::ENTRIES)?
            .get(id.0.as_slice())?
            .is_some())
    }

    pub fn status(&self, store: &StoreId) -> Result<LogStatus, KernelError> {
        let txn = self.shared.db.begin_read()?;
        let stores = txn.open_table(log::STORES)?;
        let (entries, digest) = match stores.get(store.0.as_slice())? {
            Some(v) => log::decode_store_meta(v.value())?,
            None => (0, SetDigest::default()),
        };
        let voids = txn.open_table(log::VOIDS)?;
        let lo = log::pair_key(&store.0, &[0u8; 32]);
        let hi = log::pair_key(&store.0, &[0xffu8; 32]);
        let voided = voids.range(lo.as_slice()..=hi.as_slice())?.count() as u64;
        Ok(LogStatus {
            entries,
            voided,
            digest,
            heads: self.heads(store)?,
        })
    }

    /// Whether a logged entry is a void placeholder (never applied).
    pub fn is_void(&self, store: &StoreId, id: &EntryId) -> Result<bool, KernelError> {
        let txn = self.shared.db.begin_read()?;
        let t = txn.open_table(log::VOIDS)?;
        Ok(t.get(log::pair_key(&store.0, &id.0).as_slice())?.is_some())
    }

    pub fn heads(&self, store: &StoreId) -> Result<Vec<EntryId>, KernelError> {
        let txn = self.shared.db.begin_read()?;
        let t = txn.open_table(log::HEADS)?;
        let lo = log::pair_key(&store.0, &[0u8; 32]);
        let hi = log::pair_key(&store.0, &[0xffu8; 32]);
        let mut out = Vec::new();
        for row in t.range(lo.as_slice()..=hi.as_slice())? {
            let (k, _) = row?;
            out.push(
                EntryId::from_slice(&k.value()[16..]).ok_or(KernelError::Corrupt("head record"))?,
            );
        }
        Ok(out)
    }

    /// Every author's chain tip in `store`: the store's version vector.
    pub fn tips(&self, store: &StoreId) -> Result<Vec<ChainTip>, KernelError> {
        let txn = self.shared.db.begin_read()?;
        let t = txn.open_table(log::TIPS)?;
        let lo = log::pair_key(&store.0, &[0u8; 32]);
        let hi = log::pair_key(&store.0, &[0xffu8; 32]);
        let mut out = Vec::new();
        for row in t.range(lo.as_slice()..=hi.as_slice())? {
            let (k, v) = row?;
            let tip = log::decode_tip(v.value())?;
            let author =
                AuthorId::from_slice(&k.value()[16..]).ok_or(KernelError::Corrupt("tip key"))?;
            out.push(ChainTip {
                author,
                seq: tip.seq,
                id: tip.id,
            });
        }
        Ok(out)
    }

    /// `author`'s entries in `store` with seq in `from_seq..`, at most `limit`.
    /// This is what sync serves: a corrupt entry fails the read rather than
    /// travel to a peer (which would refuse it anyway, as a bad signature or
    /// a chain break).
    pub fn chain_range(
        &self,
        store: &StoreId,
        author: &AuthorId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, KernelError> {
        self.walk_chain(store, author, from_seq, limit, |seq, id, rec| {
            let (e, _) = decode_stored(&id, rec)?;
            if e.author != *author || e.seq != seq {
                return Err(KernelError::CorruptEntry {
                    id,
                    why: "it is not the entry its chain position names",
                });
            }
            Ok(e)
        })
    }

    /// The store's entries in commit order (a causal order), from position
    /// `from` (0-based), at most `limit`.
    pub fn log(
        &self,
        store: &StoreId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, KernelError> {
        let txn = self.shared.db.begin_read()?;
        let order = txn.open_table(log::ORDER)?;
        let entries = txn.open_table(log::ENTRIES)?;
        let lo = log::pair_key(&store.0, &from.to_be_bytes());
        let hi = log::pair_key(&store.0, &u64::MAX.to_be_bytes());
        let mut out = Vec::new();
        for row in order.range(lo.as_slice()..=hi.as_slice())?.take(limit) {
            let (k, id) = row?;
            let id = EntryId::from_slice(id.value()).ok_or(KernelError::Corrupt("order record"))?;
            let v = entries
                .get(id.0.as_slice())?
                .ok_or(KernelError::Corrupt("order names a missing entry"))?;
            let (e, pos) = decode_stored(&id, v.value())?;
            if e.store != *store || pos != log::u64_at(k.value(), 16) {
                return Err(KernelError::CorruptEntry {
                    id,
                    why: "it is not the entry its log position names",
                });
            }
            out.push(e);
        }
        Ok(out)
    }

    /// The lowest seq at which `author` is proved to have forked its chain
    /// in `store`: its entries there from this seq on are void. `None`: no
    /// fork known.
    pub fn fork_seq(&self, store: &StoreId, author: &AuthorId) -> Result<Option<u64>, KernelError> {
        let txn = self.shared.db.begin_read()?;
        log::fork_seq_in(&txn.open_table(log::FORKS)?, store, author)
    }

    /// The fork evidence held for `store`, by author then seq: for each
    /// forked author, the first group is the proof at its fork seq (the
    /// groups above it, if any, are redundant). Each group proves its fork
    /// to [`Kernel::add_fork_evidence`] on any replica.
    pub fn forks(&self, store: &StoreId) -> Result<Vec<ForkEvidence>, KernelError> {
        let txn = self.shared.db.begin_read()?;
        let t = txn.open_table(log::FORKS)?;
        let lo = log::pair_key(&store.0, &[0u8; 32]);
        let mut hi = store.0.to_vec();
        hi.extend_from_slice(&[0xff; 80]);
        let mut out: Vec<ForkEvidence> = Vec::new();
        for row in t.range(lo.as_slice()..=hi.as_slice())? {
            let (k, v) = row?;
            let k = k.value();
            let author =
                AuthorId::from_slice(&k[16..48]).ok_or(KernelError::Corrupt("fork key"))?;
            let seq = log::u64_at(k, 48);
            let id = EntryId::from_slice(&k[56..]).ok_or(KernelError::Corrupt("fork key"))?;
            let entry = decode_envelope(&id, v.value())?;
            match out.last_mut() {
                Some(f) if f.author == author && f.seq == seq => f.entries.push(entry),
                _ => out.push(ForkEvidence {
                    author,
                    seq,
                    entries: vec![entry],
                }),
            }
        }
        Ok(out)
    }

    /// Per forked author in `store`, the proof at its lowest fork seq (the
    /// verdict: its entries from that seq on are void). [`Self::forks`]
    /// lists each author's groups lowest first, so this keeps the first.
    pub fn fork_verdicts(&self, store: &StoreId) -> Result<Vec<ForkEvidence>, KernelError> {
        let mut out: Vec<ForkEvidence> = Vec::new();
        for f in self.forks(store)? {
            if out.last().is_none_or(|l| l.author != f.author) {
                out.push(f);
            }
        }
        Ok(out)
    }

    /// Authors with at least one fork in `store`.
    pub fn flagged_authors(&self, store: &StoreId) -> Result<Vec<AuthorId>, KernelError> {
        let mut a: Vec<_> = self.forks(store)?.into_iter().map(|f| f.author).collect();
        a.dedup();
        Ok(a)
    }

    /// Ids that orphans of `store` wait for (a dep or a prev not logged
    /// here), at most `max`, for sync to ask a peer for by id: the entries
    /// no version vector names, such as the other branch of a forked author
    /// that an honest entry built on. A scan of the orphan table, which
    /// the orphan caps bound; orphans are rare outside a catch-up.
    pub fn wanted(&self, store: &StoreId, max: usize) -> Result<Vec<EntryId>, KernelError> {
        use prost::Message as _;
        let txn = self.shared.db.begin_read()?;
        let t = txn.open_table(log::ORPHANS)?;
        let mut out: Vec<EntryId> = Vec::new();
        for row in t.iter()? {
            if out.len() >= max {
                break;
            }
            let (k, v) = row?;
            let Some(missing) = k.value().get(..32).and_then(EntryId::from_slice) else {
                return Err(KernelError::Corrupt("orphan key"));
            };
            if out.last() == Some(&missing) {
                continue;
            }
            let wire = v.value().get(8..).unwrap_or_default();
            let of_store = crate::pb::Entry::decode(wire)
                .ok()
                .and_then(|env| crate::pb::EntryBody::decode(env.body.as_slice()).ok())
                .is_some_and(|b| b.store_id == store.0);
            if of_store && !out.contains(&missing) {
                out.push(missing);
            }
        }
        Ok(out)
    }

    /// Orphan records held (an entry waiting on one missing id is one record).
    pub fn orphan_count(&self) -> Result<u64, KernelError> {
        let txn = self.shared.db.begin_read()?;
        Ok(txn.open_table(log::ORPHANS)?.len()?)
    }

    /// Orphan records held for `author` (bounded by
    /// [`KernelConfig::max_orphans_per_author`](super::KernelConfig)).
    pub fn orphan_count_of(&self, author: &AuthorId) -> Result<u64, KernelError> {
        let txn = self.shared.db.begin_read()?;
        let t = txn.open_table(log::ORPHAN_AUTHORS)?;
        Ok(t.get(author.0.as_slice())?
            .map(|v| log::u64_at(v.value(), 0))
            .unwrap_or(0))
    }

    /// Fork evidence records held, over all stores.
    pub fn fork_record_count(&self) -> Result<u64, KernelError> {
        let txn = self.shared.db.begin_read()?;
        Ok(txn.open_table(log::FORKS)?.len()?)
    }
}
