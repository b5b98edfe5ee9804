//! Forks in a sync session: how two peers notice that an author signed two
//! different entries at one position, and how the proof reaches every
//! member.
//!
//! Version vectors alone cannot see a fork: two chains of equal height look
//! equal. So each tip carries the id of the entry at its seq, and a side
//! that holds a different entry at the peer's height sends it: the peer's
//! kernel then holds both and records the fork. Each side also lists the
//! forks it can prove (author, lowest seq); for every fork the peer cannot
//! prove as low, the proof itself (the signed entries) is sent before the
//! entry batches, and the receiver's kernel checks the signatures and
//! applies its verdict. Proof sets only grow, and the verdict is the lowest
//! provable seq, so every member that has exchanged proofs agrees.

use std::collections::HashMap;

use lattice_kernel::{AuthorId, ChainTip, EntryId, Kernel, SignedEntry, StoreId};

use crate::error::{NetError, Result};
use crate::pb;

/// Proofs sent in one session at most (each is a handful of entries).
pub const MAX_PROOFS: usize = 256;
/// Wanted ids asked for (and answered) in one session at most.
pub const MAX_WANTS: usize = 1024;

/// A peer's view of a store, from its request or hello.
#[derive(Default)]
pub struct PeerState {
    /// Per author: chain height and the id of the entry there.
    pub tips: HashMap<AuthorId, (u64, Option<EntryId>)>,
    /// Per author: the lowest seq at which the peer can prove a fork.
    pub forks: HashMap<AuthorId, u64>,
    /// Entries the peer's orphans wait for.
    pub wants: Vec<EntryId>,
}

impl PeerState {
    pub fn from_pb(
        tips: &[pb::Tip],
        forks: &[pb::ForkSummary],
        wants: &[Vec<u8>],
    ) -> Result<PeerState> {
        let author = |b: &[u8]| {
            AuthorId::from_slice(b)
                .ok_or_else(|| NetError::Protocol(format!("author is {} bytes, not 32", b.len())))
        };
        let mut s = PeerState::default();
        for t in tips {
            let id = match t.id.len() {
                0 => None,
                32 => EntryId::from_slice(&t.id),
                n => {
                    return Err(NetError::Protocol(format!("tip id is {n} bytes, not 32")));
                }
            };
            s.tips.insert(author(&t.author)?, (t.seq, id));
        }
        for f in forks {
            let a = author(&f.author)?;
            let seq = s.forks.get(&a).map_or(f.seq, |&old| old.min(f.seq));
            s.forks.insert(a, seq);
        }
        for w in wants.iter().take(MAX_WANTS) {
            s.wants.push(EntryId::from_slice(w).ok_or_else(|| {
                NetError::Protocol(format!("wanted id is {} bytes, not 32", w.len()))
            })?);
        }
        Ok(s)
    }
}

pub fn tips_to_pb(tips: &[ChainTip]) -> Vec<pb::Tip> {
    tips.iter()
        .map(|t| pb::Tip {
            author: t.author.0.to_vec(),
            seq: t.seq,
            id: t.id.0.to_vec(),
        })
        .collect()
}

/// This node's provable forks in a store: per author, the lowest seq and
/// the entries that prove it.
pub struct Known(HashMap<AuthorId, (u64, Vec<SignedEntry>)>);

impl Known {
    pub fn read(kernel: &Kernel, store: &StoreId) -> Result<Known> {
        Ok(Known(
            kernel
                .fork_verdicts(store)?
                .into_iter()
                .map(|f| (f.author, (f.seq, f.entries)))
                .collect(),
        ))
    }

    pub fn summaries(&self) -> Vec<pb::ForkSummary> {
        let mut v: Vec<_> = self
            .0
            .iter()
            .map(|(a, (seq, _))| pb::ForkSummary {
                author: a.0.to_vec(),
                seq: *seq,
            })
            .collect();
        v.sort_by(|a, b| a.author.cmp(&b.author));
        v
    }

    pub fn seq(&self, author: &AuthorId) -> Option<u64> {
        self.0.get(author).map(|(s, _)| *s)
    }

    /// Proofs of forks the peer cannot prove as low as we can.
    pub fn proofs_for(&self, peer: &PeerState) -> Vec<pb::ForkProof> {
        let mut out: Vec<(AuthorId, pb::ForkProof)> = self
            .0
            .iter()
            .filter(|(a, (seq, _))| peer.forks.get(a).is_none_or(|theirs| theirs > seq))
            .map(|(a, (_, entries))| {
                (
                    *a,
                    pb::ForkProof {
                        entries: entries.iter().map(|e| e.to_wire()).collect(),
                    },
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.into_iter().take(MAX_PROOFS).map(|(_, p)| p).collect()
    }
}

/// Per author, the seq range `(from, to]` to send the peer.
///
/// Above the peer's height as usual; and where the peer's entry at its
/// height is not ours (a fork it may not know of), our entry there too, so
/// its kernel holds both and records the proof. Entries of a forked author
/// at or past the fork (known to either side) are not sent: every replica
/// holds them void, and the peer's chain has the other branch.
pub fn ranges(
    kernel: &Kernel,
    store: &StoreId,
    mine: &[ChainTip],
    peer: &PeerState,
    known: &Known,
) -> Result<Vec<(AuthorId, u64, u64)>> {
    let mut out = Vec::new();
    for t in mine {
        let (have, their_id) = peer.tips.get(&t.author).copied().unwrap_or((0, None));
        let cut = [known.seq(&t.author), peer.forks.get(&t.author).copied()]
            .into_iter()
            .flatten()
            .min();
        let differs = match their_id {
            Some(id) if have > 0 && have <= t.seq => {
                let ours = if have == t.seq {
                    Some(t.id)
                } else {
                    kernel
                        .chain_index(store, &t.author, have, 1)?
                        .first()
                        .filter(|p| p.seq == have)
                        .map(|p| p.id)
                };
                ours.is_some_and(|ours| ours != id)
            }
            _ => false,
        };
        if differs && cut.is_none_or(|c| c > have) {
            // Our entry at their height: the proof, for their kernel.
            out.push((t.author, have, have));
            continue;
        }
        let to = match cut {
            Some(c) => t.seq.min(c.saturating_sub(1)),
            None => t.seq,
        };
        if to > have && !differs {
            out.push((t.author, have + 1, to));
        }
    }
    Ok(out)
}

/// The entries of `store` the peer wants that we hold.
pub fn wanted(kernel: &Kernel, store: &StoreId, peer: &PeerState) -> Result<Vec<SignedEntry>> {
    let mut out = Vec::new();
    for id in &peer.wants {
        if let Some(e) = kernel.get(id)?
            && e.store == *store
        {
            out.push(e);
        }
    }
    Ok(out)
}

/// Ids our orphans in `store` wait for, to ask the peer.
pub fn wants(kernel: &Kernel, store: &StoreId) -> Result<Vec<Vec<u8>>> {
    Ok(kernel
        .wanted(store, MAX_WANTS)?
        .into_iter()
        .map(|id| id.0.to_vec())
        .collect())
}

/// Checks and records proofs received from a peer; returns how many were
/// new here. A proof the kernel refuses is logged and skipped: a peer
/// cannot make us drop our own evidence, only fail to add its own.
pub fn import(kernel: &Kernel, store: &StoreId, proofs: Vec<pb::ForkProof>) -> Result<u64> {
    let limits = &kernel.config().limits;
    let mut new = 0;
    for p in proofs.into_iter().take(MAX_PROOFS) {
        let mut entries = Vec::with_capacity(p.entries.len());
        for w in &p.entries {
            crate::sync::check_store(w, store)?;
            let e = SignedEntry::decode_shape(w, limits)
                .map_err(|e| NetError::Protocol(format!("fork proof entry: {e}")))?;
            entries.push(e);
        }
        match kernel.add_fork_evidence(entries) {
            Ok(imported) if imported.is_new() => new += 1,
            Ok(_) => {}
            Err(e) => tracing::warn!(store = %store, error = %e, "fork proof refused"),
        }
    }
    Ok(new)
}
