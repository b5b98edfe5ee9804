//! The fork rule: a deterministic verdict on authors who signed two
//! branches of their chain in one store.
//!
//! **Rule.** For a (store, author), `fork_seq` is the lowest seq at which the
//! fork evidence held (table `kernel_forks`) proves a fork. Every entry of
//! that author in that store with `seq >= fork_seq` is void: logged as a
//! placeholder (so other authors' entries that depend on it still commit),
//! never applied. Entries below `fork_seq` stand. A proof at seq `k` is
//! either two signed entries at seq `k` with different ids, or an entry at
//! `k` and one at `k + 1` whose `prev` is not the first one's id.
//!
//! **Why replicas agree.** The verdict for every entry is a function of the
//! entry and of `fork_seq`, which is a minimum over the set of evidence
//! held. That set only grows (evidence is never deleted while it could
//! lower the minimum: only evidence at or above the current `fork_seq` is
//! ever dropped or not stored), and every element is a self-contained,
//! signature-checked proof that any replica verifies alike. Once the
//! evidence has spread (peers exchange it, see `Kernel::add_fork_evidence`),
//! every replica holds a set with the same minimum, so the same `fork_seq`.
//! When new evidence lowers `fork_seq` and the store already applied
//! entries that are now void, the store is rebuilt from its log inside the
//! same transaction (as after a revocation), and the replay applies the
//! rule too: state depends on the log and `fork_seq`, not on when the
//! evidence came.
//!
//! **Both branches are logged.** An entry of a forked author at or above
//! `fork_seq` that does not fit our chain (our chain holds the other
//! branch) is still logged as a void placeholder, off the chain (not in
//! `kernel_chain`/`kernel_tips`), once its `prev` is logged: honest members
//! on each side may have built on their side's branch, and their entries
//! must commit on every replica for the states to agree.

use redb::{ReadableTable, ReadableTableMetadata};

use super::{CommitHook, LogTxn, Outcome, chain_key, pair_key, u64_at};
use crate::entry::{SignedEntry, verify_all};
use crate::error::{ForkEvidenceError, KernelError, ValidationError};
use crate::ids::{AuthorId, EntryId, StoreId};
use crate::kernel::ForkImport;
use crate::kernel::reads::{STORED, decode_stored};

/// Where an entry that passed the chain rules goes.
pub(super) enum Place {
    /// Next on the author's chain.
    Chain,
    /// A void entry of a forked author on another branch than our chain's.
    Branch,
    /// Not logged (now).
    Stop(Outcome),
}

/// A checked proof: the seq it proves a fork at and the two entries.
pub(crate) struct Proof {
    pub seq: u64,
    pub first: SignedEntry,
    pub second: SignedEntry,
}

/// Checks that `entries` prove a fork (see the module docs) and returns the
/// lowest one. Each entry is decoded again from its signed bytes (the
/// struct's fields are not trusted) and its signature checked, as on ingest.
pub(crate) fn prove(entries: &[SignedEntry]) -> Result<Proof, ForkEvidenceError> {
    if entries.len() < 2 {
        return Err(ForkEvidenceError::TooFew(entries.len()));
    }
    let mut es = Vec::with_capacity(entries.len());
    for (index, e) in entries.iter().enumerate() {
        let d = SignedEntry::decode_shape(&e.to_wire(), &STORED)
            .map_err(|reason| ForkEvidenceError::Invalid { index, reason })?;
        if d.id != e.id {
            let reason = ValidationError::BadField("id (not the hash of the signed body)");
            return Err(ForkEvidenceError::Invalid { index, reason });
        }
        es.push(d);
    }
    for (index, v) in verify_all(&es).into_iter().enumerate() {
        v.map_err(|reason| ForkEvidenceError::Invalid { index, reason })?;
    }
    let mut ids: Vec<EntryId> = es.iter().map(|e| e.id).collect();
    ids.sort_unstable();
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(ForkEvidenceError::Duplicate(w[0]));
    }
    let (author, store) = (es[0].author, es[0].store);
    if let Some(e) = es.iter().find(|e| e.author != author) {
        return Err(ForkEvidenceError::MixedAuthors(author, e.author));
    }
    if es.iter().any(|e| e.store != store) {
        return Err(ForkEvidenceError::MixedStores);
    }
    let mut best: Option<(u64, usize, usize)> = None;
    for (i, a) in es.iter().enumerate() {
        for (j, b) in es.iter().enumerate() {
            // Two at one seq, or one at k + 1 not following the one at k:
            // either way a fork at `a.seq`.
            let same_seq = i < j && a.seq == b.seq;
            let broken = b.seq == a.seq + 1 && b.prev != a.id;
            if !same_seq && !broken {
                continue;
            }
            let seq = a.seq;
            if best.is_none_or(|(s, ..)| seq < s) {
                best = Some((seq, i, j));
            }
        }
    }
    let (seq, i, j) = best.ok_or(ForkEvidenceError::NoFork)?;
    Ok(Proof {
        seq,
        first: es[i].clone(),
        second: es[j].clone(),
    })
}

/// The lowest seq with evidence for (`store`, `author`) in a `kernel_forks`
/// table (keys sort by seq, so it is the first key of the author's range).
pub(crate) fn fork_seq_in(
    forks: &impl ReadableTable<&'static [u8], &'static [u8]>,
    store: &StoreId,
    author: &AuthorId,
) -> Result<Option<u64>, KernelError> {
    let lo = pair_key(&store.0, &author.0);
    let mut hi = lo.clone();
    hi.extend_from_slice(&[0xff; 40]);
    match forks.range(lo.as_slice()..=hi.as_slice())?.next() {
        Some(row) => Ok(Some(u64_at(row?.0.value(), 48))),
        None => Ok(None),
    }
}

impl LogTxn<'_> {
    pub(super) fn fork_seq(
        &self,
        store: &StoreId,
        author: &AuthorId,
    ) -> Result<Option<u64>, KernelError> {
        fork_seq_in(&self.forks, store, author)
    }

    /// Whether the fork rule makes `e` void.
    pub(super) fn forked(&self, e: &SignedEntry) -> Result<bool, KernelError> {
        Ok(self
            .fork_seq(&e.store, &e.author)?
            .is_some_and(|f| e.seq >= f))
    }

    fn chain_id(
        &self,
        store: &StoreId,
        author: &AuthorId,
        seq: u64,
    ) -> Result<Option<EntryId>, KernelError> {
        match self.chain.get(chain_key(store, author, seq).as_slice())? {
            Some(v) => Ok(Some(
                EntryId::from_slice(v.value()).ok_or(KernelError::Corrupt("chain record"))?,
            )),
            None => Ok(None),
        }
    }

    /// A logged entry, decoded and checked against its id.
    fn logged(&self, id: &EntryId) -> Result<Option<SignedEntry>, KernelError> {
        match self.entries.get(id.0.as_slice())? {
            Some(v) => Ok(Some(decode_stored(id, v.value())?.0)),
            None => Ok(None),
        }
    }

    /// Records the fork `e` proves against our chain, if any: `e.prev` is
    /// not our entry one seq below (a fork there), or our chain has another
    /// entry at `e.seq`. Returns whether that lowered the fork seq (the
    /// store may have been rebuilt).
    pub(super) fn detect_fork(
        &mut self,
        hook: &dyn CommitHook,
        e: &SignedEntry,
    ) -> Result<bool, KernelError> {
        let below = match e.seq > 1 {
            true => self.chain_id(&e.store, &e.author, e.seq - 1)?,
            false => None,
        };
        let (ours, seq) = match below {
            Some(p) if p != e.prev => (p, e.seq - 1),
            _ => match self.chain_id(&e.store, &e.author, e.seq)? {
                Some(c) => (c, e.seq),
                None => return Ok(false),
            },
        };
        let ours = match self.logged(&ours) {
            Ok(Some(o)) => Some(o),
            Ok(None) => return Err(KernelError::Corrupt("chain names a missing entry")),
            Err(KernelError::CorruptEntry { id, why }) => {
                tracing::error!(%id, why, "corrupt entry; not copied as fork evidence");
                None
            }
            Err(other) => return Err(other),
        };
        Ok(self.record_evidence(hook, ours.as_ref(), e, seq)?.is_new())
    }

    /// Keeps `first` and `second` as evidence of a fork at `seq`.
    ///
    /// Evidence that creates or lowers the author's fork seq is always kept
    /// (dropping it would make this replica's verdict differ), and the
    /// author's evidence above it is deleted as redundant, so an author
    /// holds at most `max(2, forks_per_author)` records per store. If the
    /// store has chain entries in `seq..old fork seq` (entries that may have
    /// applied and are void now), the store is rebuilt. Redundant evidence
    /// (at or above the fork seq) is kept only within the caps.
    pub(crate) fn record_evidence(
        &mut self,
        hook: &dyn CommitHook,
        first: Option<&SignedEntry>,
        second: &SignedEntry,
        seq: u64,
    ) -> Result<ForkImport, KernelError> {
        let (store, author) = (second.store, second.author);
        let previous = self.fork_seq(&store, &author)?;
        let base = chain_key(&store, &author, seq);
        let pair = first.into_iter().chain(Some(second));
        let mut import = ForkImport {
            store,
            author,
            seq,
            previous,
            fork_seq: previous.map_or(seq, |p| p.min(seq)),
            rebuilt: false,
        };
        if !import.is_new() {
            let lo = pair_key(&store.0, &author.0);
            let mut hi = lo.clone();
            hi.extend_from_slice(&[0xff; 40]);
            let held = self
                .forks
                .range(lo.as_slice()..=hi.as_slice())?
                .take(self.caps.forks_per_author as usize)
                .count() as u64;
            let (per_author, total) = (self.caps.forks_per_author.max(2), self.caps.forks.max(2));
            if held + 2 > per_author || self.forks.len()? + 2 > total {
                tracing::debug!(%author, held, seq, "redundant fork evidence over the cap; not stored");
                return Ok(import);
            }
            for e in pair {
                self.forks
                    .insert(pair_key(&base, &e.id.0).as_slice(), e.to_wire().as_slice())?;
            }
            return Ok(import);
        }
        tracing::warn!(%author, store = %store.to_uuid(), seq, ?previous, "fork proved: author's entries from this seq on are void");
        let lo = chain_key(&store, &author, seq.saturating_add(1));
        let hi = pair_key(&chain_key(&store, &author, u64::MAX), &[0xff; 32]);
        self.forks
            .retain_in::<&[u8], _>(lo.as_slice()..=hi.as_slice(), |_, _| false)?;
        for e in pair {
            self.forks
                .insert(pair_key(&base, &e.id.0).as_slice(), e.to_wire().as_slice())?;
        }
        // Chain entries in seq..previous were live; above previous they
        // are void already.
        let lo = chain_key(&store, &author, seq);
        let hi = chain_key(&store, &author, previous.unwrap_or(u64::MAX));
        if self
            .chain
            .range(lo.as_slice()..hi.as_slice())?
            .next()
            .is_some()
        {
            self.rebuild(hook, &store)?;
            import.rebuilt = true;
        }
        Ok(import)
    }

    /// The chain rules for an entry that passed admission: next on our
    /// chain, or (for an entry the fork rule voids) on another branch, or
    /// refused / waiting.
    pub(super) fn place(
        &mut self,
        e: &SignedEntry,
        forked: bool,
        received_ms: u64,
    ) -> Result<Place, KernelError> {
        if let Some(existing) = self.chain_id(&e.store, &e.author, e.seq)? {
            if !forked {
                return Ok(Place::Stop(Outcome::Rejected(ValidationError::Fork {
                    author: e.author,
                    seq: e.seq,
                    existing,
                })));
            }
        } else if e.seq == 1 {
            return Ok(Place::Chain);
        } else {
            let tip = self.tip(&e.store, &e.author)?;
            let tip_seq = tip.as_ref().map_or(0, |t| t.seq);
            if tip_seq + 1 < e.seq && !forked {
                self.add_orphan(e, e.prev, received_ms)?;
                return Ok(Place::Stop(Outcome::Waiting { missing: e.prev }));
            }
            if let Some(tip) = tip.filter(|t| t.seq + 1 == e.seq) {
                if tip.id == e.prev {
                    if e.hlc <= tip.hlc {
                        return Ok(Place::Stop(Outcome::Rejected(
                            ValidationError::HlcNotAfter {
                                hlc: e.hlc,
                                before: tip.hlc,
                                of: tip.id,
                            },
                        )));
                    }
                    return Ok(Place::Chain);
                }
                if !forked {
                    return Ok(Place::Stop(Outcome::Rejected(
                        ValidationError::PrevMismatch {
                            seq_before: tip.seq,
                            expected: tip.id,
                            got: e.prev,
                        },
                    )));
                }
            }
        }
        self.branch(e, received_ms)
    }

    /// A void entry off our chain: its `prev` must be logged, be the same
    /// author's entry one seq below, and have an earlier HLC.
    fn branch(&mut self, e: &SignedEntry, received_ms: u64) -> Result<Place, KernelError> {
        if e.seq == 1 {
            return Ok(Place::Branch);
        }
        let Some(prev) = self.logged(&e.prev)? else {
            self.add_orphan(e, e.prev, received_ms)?;
            return Ok(Place::Stop(Outcome::Waiting { missing: e.prev }));
        };
        if prev.store != e.store || prev.author != e.author || prev.seq + 1 != e.seq {
            let expected = self.chain_id(&e.store, &e.author, e.seq - 1)?;
            return Ok(Place::Stop(Outcome::Rejected(
                ValidationError::PrevMismatch {
                    seq_before: e.seq - 1,
                    expected: expected.unwrap_or(EntryId::ZERO),
                    got: e.prev,
                },
            )));
        }
        if e.hlc <= prev.hlc {
            return Ok(Place::Stop(Outcome::Rejected(
                ValidationError::HlcNotAfter {
                    hlc: e.hlc,
                    before: prev.hlc,
                    of: prev.id,
                },
            )));
        }
        Ok(Place::Branch)
    }
}
