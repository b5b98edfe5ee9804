//! # lattice-kernel
//!
//! The replication kernel: node identity, hybrid logical clocks, signed
//! entries in per-author chains, the causal DAG of each store, and a durable
//! redb log with group commit. It knows nothing of wasm or the network:
//! callers hand it payload bytes (local writes) or entry bytes (from peers)
//! and a [`CommitHook`] that applies each committed entry inside the same
//! write transaction.
//!
//! See `kernel/design.md` for the storage layout and `docs/protocol.md` for
//! the exact bytes that are signed and the validation rules in order.

mod entry;
mod error;
mod hlc;
mod identity;
mod ids;
mod kernel;
mod log;

pub mod pb {
    //! Generated protobuf types of the wire format (`proto/entry.proto`).
    include!(concat!(env!("OUT_DIR"), "/lattice.kernel.v1.rs"));
}

pub use entry::{Draft, Limits, SIGNING_DOMAIN, SignedEntry, verify_all};
pub use error::{ForkEvidenceError, KernelError, ValidationError};
pub use hlc::{COUNTER_BITS, FutureDrift, Hlc, HlcTime, now_ms, wall_ms};
pub use identity::{Identity, IdentityError, KEY_FILE};
pub use ids::{AuthorId, EntryId, SetDigest, StoreId};
pub use kernel::{
    AuditProblem, ChainPos, ChainTip, Checked, ForkEvidence, ForkImport, IngestReport, Kernel,
    KernelConfig, LogAudit, LogPos, LogStatus, Pending,
};
pub use log::{Admission, CommitHook, HookError, NoHook, Outcome, VoidAbove};
