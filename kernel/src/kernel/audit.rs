//! A full check of one store's log against the incremental summary the
//! commit path maintains (`lattice store verify`).
//!
//! The entry count and the log digest (sum of entry ids) are updated on
//! every commit and never recomputed, so storage corruption would otherwise
//! go unseen: the digest still matches the peers' while the entries behind
//! it are altered. The audit walks the store's commit order, checks each
//! entry's hash, record header and signature, recomputes count and digest,
//! and reports every mismatch instead of stopping at the first.

use redb::ReadTransaction;

use super::Kernel;
use super::reads::decode_stored;
use crate::entry::{SignedEntry, verify_all};
use crate::error::KernelError;
use crate::ids::{EntryId, SetDigest, StoreId};
use crate::log;

/// Entries whose signatures are checked together.
const SIGNATURE_BATCH: usize = 256;

/// One thing the audit found wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuditProblem {
    #[error("position {pos}: entry {id} is corrupt: {why}")]
    CorruptEntry {
        pos: u64,
        id: EntryId,
        why: &'static str,
    },
    #[error("position {pos}: entry {id} is named by the commit order but not stored")]
    MissingEntry { pos: u64, id: EntryId },
    #[error("position {pos}: the commit order names an unreadable id")]
    BadOrderRecord { pos: u64 },
    #[error("position {pos}: entry {id} records position {recorded}")]
    WrongPosition {
        pos: u64,
        id: EntryId,
        recorded: u64,
    },
    #[error("position {pos}: the commit order skips to {found}")]
    OrderGap { pos: u64, found: u64 },
    #[error("position {pos}: entry {id} has a signature that does not verify")]
    BadSignature { pos: u64, id: EntryId },
    #[error("the recorded entry count is {recorded}; the log holds {recomputed}")]
    CountMismatch { recorded: u64, recomputed: u64 },
    #[error(
        "the recorded log digest is {}; the stored entries give {}",
        .recorded.to_hex(),
        .recomputed.to_hex()
    )]
    DigestMismatch {
        recorded: SetDigest,
        recomputed: SetDigest,
    },
    /// Reconciliation compares this index with peers: if it is not the
    /// logged set, sync would fetch or offer the wrong entries.
    #[error("the (HLC, id) index holds {count} entries that are not the logged set")]
    TimeIndexMismatch { count: u64 },
}

/// What [`Kernel::verify_store`] checked and found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogAudit {
    /// Entries read, hashed and signature-checked.
    pub entries_checked: u64,
    /// The incremental summary (`kernel_stores`).
    pub recorded_count: u64,
    pub recorded_digest: SetDigest,
    /// The same, recomputed from the commit order.
    pub recomputed_count: u64,
    pub recomputed_digest: SetDigest,
    pub problems: Vec<AuditProblem>,
}

impl LogAudit {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Kernel {
    /// Audits `store`'s log in the snapshot `txn` (the caller's, so a state
    /// audit in the same snapshot sees the same commit). Storage errors are
    /// returned; everything wrong with the data is a problem in the report.
    pub fn verify_store(
        &self,
        txn: &ReadTransaction,
        store: &StoreId,
    ) -> Result<LogAudit, KernelError> {
        let stores = txn.open_table(log::STORES)?;
        let (recorded_count, recorded_digest) = match stores.get(store.0.as_slice())? {
            Some(v) => log::decode_store_meta(v.value())?,
            None => (0, SetDigest::default()),
        };
        let order = txn.open_table(log::ORDER)?;
        let entries = txn.open_table(log::ENTRIES)?;
        let lo = log::pair_key(&store.0, &0u64.to_be_bytes());
        let hi = log::pair_key(&store.0, &u64::MAX.to_be_bytes());
        let mut audit = LogAudit {
            entries_checked: 0,
            recorded_count,
            recorded_digest,
            recomputed_count: 0,
            recomputed_digest: SetDigest::default(),
            problems: Vec::new(),
        };
        let mut batch: Vec<(u64, SignedEntry)> = Vec::with_capacity(SIGNATURE_BATCH);
        let mut expected_pos = 0u64;
        for row in order.range(lo.as_slice()..=hi.as_slice())? {
            let (k, id) = row?;
            let pos = log::u64_at(k.value(), 16);
            if pos != expected_pos {
                audit.problems.push(AuditProblem::OrderGap {
                    pos: expected_pos,
                    found: pos,
                });
            }
            expected_pos = pos + 1;
            audit.recomputed_count += 1;
            let Some(id) = EntryId::from_slice(id.value()) else {
                audit.problems.push(AuditProblem::BadOrderRecord { pos });
                continue;
            };
            audit.recomputed_digest.add(&id.0);
            let Some(rec) = entries.get(id.0.as_slice())? else {
                audit.problems.push(AuditProblem::MissingEntry { pos, id });
                continue;
            };
            match decode_stored(&id, rec.value()) {
                Ok((e, recorded)) => {
                    audit.entries_checked += 1;
                    if recorded != pos || e.store != *store {
                        audit
                            .problems
                            .push(AuditProblem::WrongPosition { pos, id, recorded });
                    }
                    batch.push((pos, e));
                    if batch.len() == SIGNATURE_BATCH {
                        check_signatures(&mut batch, &mut audit.problems);
                    }
                }
                Err(KernelError::CorruptEntry { why, .. }) => {
                    audit
                        .problems
                        .push(AuditProblem::CorruptEntry { pos, id, why });
                }
                Err(e) => return Err(e),
            }
        }
        check_signatures(&mut batch, &mut audit.problems);
        if audit.recomputed_count != recorded_count {
            audit.problems.push(AuditProblem::CountMismatch {
                recorded: recorded_count,
                recomputed: audit.recomputed_count,
            });
        }
        if audit.recomputed_digest != recorded_digest {
            audit.problems.push(AuditProblem::DigestMismatch {
                recorded: recorded_digest,
                recomputed: audit.recomputed_digest,
            });
        }
        let (count, digest) = time_index_summary(txn, store)?;
        if count != audit.recomputed_count || digest != audit.recomputed_digest {
            audit
                .problems
                .push(AuditProblem::TimeIndexMismatch { count });
        }
        Ok(audit)
    }
}

/// Count and digest of the ids in `store`'s (HLC, id) index.
fn time_index_summary(
    txn: &ReadTransaction,
    store: &StoreId,
) -> Result<(u64, SetDigest), KernelError> {
    let t = txn.open_table(log::BY_TIME)?;
    let lo = log::time_key(store, 0, &EntryId([0; 32]));
    let hi = log::time_key(store, u64::MAX, &EntryId([0xff; 32]));
    let (mut count, mut digest) = (0, SetDigest::default());
    for row in t.range(lo.as_slice()..=hi.as_slice())? {
        let (k, _) = row?;
        count += 1;
        digest.add(k.value()[24..].try_into().expect("56-byte key"));
    }
    Ok((count, digest))
}

/// Signature check of a batch (ed25519 batch verification, split over the
/// cores); a failing entry is named with its position.
fn check_signatures(batch: &mut Vec<(u64, SignedEntry)>, problems: &mut Vec<AuditProblem>) {
    if batch.is_empty() {
        return;
    }
    let (positions, entries): (Vec<u64>, Vec<SignedEntry>) = batch.drain(..).unzip();
    for ((pos, e), verdict) in positions
        .into_iter()
        .zip(&entries)
        .zip(verify_all(&entries))
    {
        if verdict.is_err() {
            problems.push(AuditProblem::BadSignature { pos, id: e.id });
        }
    }
}
