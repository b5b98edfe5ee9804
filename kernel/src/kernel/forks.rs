//! Fork evidence from peers: the kernel's side of the fork rule (see
//! `log/forks.rs`).

use crossbeam_channel::bounded;

use super::{Job, Kernel};
use crate::entry::SignedEntry;
use crate::error::KernelError;
use crate::ids::{AuthorId, StoreId};
use crate::log;

/// What [`Kernel::add_fork_evidence`] did with a valid proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForkImport {
    pub store: StoreId,
    pub author: AuthorId,
    /// The seq the proof proves a fork at.
    pub seq: u64,
    /// The author's fork seq in this store before (None: not forked).
    pub previous: Option<u64>,
    /// The author's fork seq in this store now.
    pub fork_seq: u64,
    /// Whether the store was rebuilt (entries that had applied are void).
    pub rebuilt: bool,
}

impl ForkImport {
    /// Whether the proof created or lowered the author's fork seq (else it
    /// was redundant: the verdict did not change).
    pub fn is_new(&self) -> bool {
        self.previous.is_none_or(|p| self.fork_seq < p)
    }
}

impl Kernel {
    /// Records fork evidence received from a peer (the entries of a
    /// [`ForkEvidence`]). The set must prove a fork: at least two entries,
    /// each a validly signed envelope (decoded again from its signed bytes
    /// and checked as on ingest), no entry twice, one author, one store, and
    /// two entries at one seq with different ids or one at `k` and one at
    /// `k + 1` whose prev is not the first's id. Else
    /// [`KernelError::ForkEvidence`] names the rule.
    ///
    /// Evidence for a store this kernel holds no entry of is recorded too
    /// (the store may arrive later, and the rule then applies as it
    /// commits). The lowest proof in the set is kept; if it lowers the
    /// author's fork seq, entries of that store that applied and are now
    /// void are undone by a rebuild, in the same transaction.
    pub fn add_fork_evidence(&self, entries: Vec<SignedEntry>) -> Result<ForkImport, KernelError> {
        let proof = log::prove(&entries)?;
        let (reply, rx) = bounded(1);
        self.send(Job::Evidence {
            proof: Box::new(proof),
            reply,
        })?;
        self.pending(rx).wait()
    }
}
