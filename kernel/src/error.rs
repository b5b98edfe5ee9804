//! Errors. Every rejection of an entry names the rule it broke, so a peer's
//! log line or a test can say exactly why an entry was refused.

use crate::hlc::FutureDrift;
use crate::ids::{AuthorId, EntryId};

/// Why an entry was refused. Rules are listed in the order they are checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("entry is {size} bytes; the limit is {max}")]
    TooLarge { size: usize, max: usize },
    #[error("entry does not decode: {0}")]
    Malformed(String),
    #[error("entry has {count} causal deps; the limit is {max}")]
    TooManyDeps { count: usize, max: usize },
    #[error("entry field {0} has the wrong length or shape")]
    BadField(&'static str),
    #[error("entry seq must start at 1")]
    SeqZero,
    #[error("entry seq {seq}: prev_hash must be zero exactly when seq is 1")]
    ChainStart { seq: u64 },
    #[error("entry clock: {0}")]
    FutureHlc(#[from] FutureDrift),
    #[error("entry author key is a weak (small-order) key")]
    WeakKey,
    #[error("entry signature does not verify")]
    BadSignature,
    #[error("fork: author {author} already has entry {existing} at seq {seq}")]
    Fork {
        author: AuthorId,
        seq: u64,
        existing: EntryId,
    },
    #[error(
        "chain break: prev_hash names {got}, but the author's entry at seq {seq_before} is {expected}"
    )]
    PrevMismatch {
        seq_before: u64,
        expected: EntryId,
        got: EntryId,
    },
    #[error("hlc {hlc} does not exceed hlc {before} of entry {of} that it follows")]
    HlcNotAfter { hlc: u64, before: u64, of: EntryId },
    #[error("causal dep {0} belongs to another store")]
    ForeignDep(EntryId),
    #[error("author {0} is not an active member of this store's mesh")]
    Unauthorized(AuthorId),
    /// A rule of the layer above (the node's root-store rules); the text
    /// names the rule. Typed at that layer, carried here as text.
    #[error("refused: {0}")]
    Refused(String),
}

/// Why a set of entries offered as fork evidence
/// ([`Kernel::add_fork_evidence`](crate::Kernel::add_fork_evidence)) proves
/// nothing. One variant per rule, in the order they are checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForkEvidenceError {
    #[error("fork evidence needs at least 2 entries, got {0}")]
    TooFew(usize),
    #[error("fork evidence entry {index} is not a valid signed entry: {reason}")]
    Invalid {
        index: usize,
        reason: ValidationError,
    },
    #[error("fork evidence holds entry {0} twice")]
    Duplicate(EntryId),
    #[error("fork evidence mixes authors {0} and {1}")]
    MixedAuthors(AuthorId, AuthorId),
    #[error("fork evidence mixes entries of different stores")]
    MixedStores,
    #[error(
        "fork evidence proves no fork: no two entries share a seq, and no entry's prev differs from the entry one seq below it"
    )]
    NoFork,
    #[error("this store does not take the accused author's entries: {0}")]
    Refused(ValidationError),
}

/// Failures of the kernel itself (storage, hook), as opposed to bad entries.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("storage: {0}")]
    Storage(#[from] redb::Error),
    #[error("the log database at {path} is in use by another process")]
    Locked { path: std::path::PathBuf },
    #[error("apply hook failed: {0}")]
    Hook(String),
    #[error("entry rejected: {0}")]
    Rejected(#[from] ValidationError),
    /// Entries offered as fork evidence that prove no fork.
    #[error("fork evidence refused: {0}")]
    ForkEvidence(#[from] ForkEvidenceError),
    #[error("corrupt log record: {0}")]
    Corrupt(&'static str),
    /// A stored entry is not the entry its id names (its body no longer
    /// hashes to the id, or its record header disagrees with the signed
    /// body). Reads fail with this rather than serve altered data.
    #[error("corrupt entry {id} in the log: {why}")]
    CorruptEntry { id: EntryId, why: &'static str },
    /// An existing but empty database file. Opening it would silently start
    /// a fresh log under an identity that already has history.
    #[error(
        "the log database {path} is empty (0 bytes); refusing to start a fresh log over it (if this node never held data, delete the file)"
    )]
    EmptyDatabase { path: std::path::PathBuf },
    /// An existing file that does not start with a redb header: never
    /// initialized over, never modified.
    #[error("{path} is not a lattice log database (no redb header); refusing to touch it")]
    NotADatabase { path: std::path::PathBuf },
    /// A redb file that redb cannot open (corrupt header or pages).
    #[error("the log database {path} cannot be opened: {reason}")]
    Unreadable {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("the kernel's commit thread has stopped")]
    Stopped,
    /// The commit thread panicked (a bug, e.g. in a commit hook). The batch
    /// in flight was rolled back; the kernel takes no more writes and every
    /// later call fails with this error, so the process should exit.
    #[error("the kernel's commit thread died: {0}; restart the process")]
    CommitThreadDied(String),
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for KernelError {
            fn from(e: $t) -> Self { KernelError::Storage(e.into()) }
        }
    )*};
}
storage_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);
