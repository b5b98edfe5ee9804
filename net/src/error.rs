//! Errors. Each variant names the rule that was violated so a log line or a
//! test can tell a refused peer from a broken link from a lying one.

use lattice_kernel::{AuthorId, KernelError, StoreId};

use crate::invite::InviteParseError;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot bind the endpoint: {0}")]
    Bind(String),
    #[error("cannot connect to peer {peer}: {reason}")]
    Connect { peer: AuthorId, reason: String },
    #[error("peer {peer} has no known address (add_peer first)")]
    UnknownPeer { peer: AuthorId },
    #[error("timed out after {ms} ms waiting for {what}")]
    Timeout { what: &'static str, ms: u64 },
    #[error("frame of {size} bytes exceeds the {max}-byte frame limit")]
    FrameTooLarge { size: usize, max: usize },
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error("stream error: {0}")]
    Stream(String),
    #[error("peer {peer} is not a member of store {store}; nothing is synced with it")]
    NotMember { store: StoreId, peer: AuthorId },
    #[error("store {store} has no gossip topic key here (its mesh is unknown)")]
    NoTopicKey { store: StoreId },
    #[error("gossip is off in this node's configuration")]
    GossipOff,
    #[error("the peer refused the request: {0}")]
    Refused(String),
    #[error("blob {hash} not available from the peer: {reason}")]
    BlobUnavailable { hash: String, reason: String },
    #[error("blob is {size} bytes; the limit is {max}")]
    BlobTooLarge { size: u64, max: u64 },
    #[error("blob content hashes to {got}, not the requested {want}")]
    BlobHashMismatch { want: String, got: String },
    #[error("join refused by the inviter: {0}")]
    JoinRefused(String),
    #[error("invite expired at {expires_ms} ms (now {now_ms} ms)")]
    InviteExpired { expires_ms: u64, now_ms: u64 },
    #[error("invite token: {0}")]
    InviteParse(#[from] InviteParseError),
    #[error("kernel: {0}")]
    Kernel(#[from] KernelError),
    #[error("the network handle has shut down")]
    Shutdown,
}

pub type Result<T, E = NetError> = std::result::Result<T, E>;
