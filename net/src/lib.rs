//! # lattice-net
//!
//! Networking for Lattice nodes, with the kernel as the only storage:
//!
//! - an offline-first Iroh endpoint keyed by the node's signing key
//!   ([`endpoint`]), relays and public lookup off unless asked for;
//! - a version-vector sync protocol on its own ALPN ([`sync`]): one round
//!   trip to exchange vectors, then both sides stream what the other lacks
//!   in causal order, in byte-bounded batches that are ingested (and made
//!   durable) one by one, so a dropped link leaves a consistent prefix;
//! - blob fetch and invite redemption as further request kinds on that ALPN;
//! - one gossip overlay per mesh, admitted per connection and re-checked on
//!   every membership change ([`admission`]), with one topic per store
//!   carrying small entry announcements ([`gossip`]) and sync as the repair
//!   path for anything gossip misses;
//! - periodic anti-entropy, because gossip never replays what a partitioned
//!   or sleeping node missed.
//!
//! The node supplies policy through three traits: [`Policy`] (who may sync
//! which store), [`BlobSource`] and [`InviteAuthority`].

pub mod admission;
mod anti_entropy;
mod endpoint;
mod error;
mod flood;
mod forks;
mod frame;
mod gauges;
pub mod gossip;
mod inbound;
mod invite;
mod net;
pub mod presence;
mod reconcile;
pub mod sync;

/// The decoders a peer's bytes meet first, public so the fuzz targets
/// (`fuzz/`) call the very functions the protocol paths call.
pub mod decode {
    pub use crate::forks::PeerState;
    pub use crate::frame::{read, read_raw};
    pub use crate::inbound::{GossipReject, Inbound, parse as gossip};
    pub use crate::reconcile::ids_of;
    pub use crate::sync::check_store;
}

pub mod pb {
    //! Generated protobuf types of the network protocol (`proto/net.proto`).
    include!(concat!(env!("OUT_DIR"), "/lattice.net.v1.rs"));
}

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use lattice_kernel::{AuthorId, StoreId};

pub use admission::{OVERLAY_ALPN_PREFIX, overlay_alpn};
pub use anti_entropy::DigestRound;
pub use error::{NetError, Result};
pub use flood::BUSY;
pub use frame::MAX_FRAME;
pub use gauges::NetStats;
pub use gossip::{Announcer, topic_id};
pub use invite::{INVITE_PREFIX, Invite, InviteParseError};
pub use net::{Net, PeerInfo, StoreSyncInfo};
pub use presence::PresenceInfo;
pub use sync::{ALPN, RECONCILE_AUTHORS, SyncStats};

/// Who may sync which store. The node implements it from the mesh root
/// store; the network layer only consults it to decide what to *serve*,
/// whom to dial and whom to keep connected (the kernel's commit hook
/// separately refuses entries from non-members on ingest). It is asked
/// often (every handshake, gossip event and request), so it must be cheap.
pub trait Policy: Send + Sync + 'static {
    /// Whether `peer` may read and write `store` over the network now.
    fn may_sync(&self, store: &StoreId, peer: &AuthorId) -> bool;
    /// Every store this node replicates (anti-entropy and gossip topics).
    fn stores(&self) -> Vec<StoreId>;
    /// The secret that keys `store`'s gossip topic and overlay, known to
    /// members only (the node gives every store of a mesh the mesh secret).
    /// Stores with equal keys share one overlay, whose admission is "may
    /// sync any of them", so they must share their membership too. `None`:
    /// the store is not gossiped (sync and anti-entropy still run).
    fn topic_key(&self, store: &StoreId) -> Option<[u8; 32]>;
    /// Whether to send presence beacons for `store` (see `presence`): the
    /// rooms people sit in, not every store, since each costs a gossip
    /// message per period.
    fn presence(&self, store: &StoreId) -> bool {
        let _ = store;
        false
    }
    /// The store's log digest and the digest of the state computed from
    /// that log, as one consistent pair (no commit between the two reads).
    /// Peers compare them in every sync: equal logs with unequal states
    /// mean one replica diverged. `None`: this node cannot tell.
    fn digests(&self, store: &StoreId) -> Option<([u8; 32], [u8; 32])> {
        let _ = store;
        None
    }
}

/// Content-addressed blobs this node can serve (plugin `.wasm` files).
pub trait BlobSource: Send + Sync + 'static {
    /// The bytes whose blake3 hash is `hash`, if we have them.
    fn blob(&self, hash: [u8; 32]) -> Option<Vec<u8>>;
}

/// What an accepted invite yields: the mesh (its root store), its founder
/// and secret (the joiner checks `mesh_id` is derived from both, so a token
/// cannot lie about who founded the mesh), and where to find its members.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinGrant {
    pub mesh_id: StoreId,
    pub founder: AuthorId,
    /// Known only to members: keys the mesh's gossip topic ids.
    pub mesh_secret: [u8; 32],
    pub members: Vec<(AuthorId, Vec<SocketAddr>)>,
}

impl std::fmt::Debug for JoinGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("JoinGrant")
            .field("mesh_id", &self.mesh_id)
            .field("founder", &self.founder)
            .field("members", &self.members)
            .finish_non_exhaustive()
    }
}

/// Redeems invite secrets on the inviter's side. The node implements the
/// rules (one-time use, expiry) and records the joiner as a member; the
/// error text goes back to the joiner verbatim ("invite already used",
/// "invite expired", "unknown invite").
pub trait InviteAuthority: Send + Sync + 'static {
    fn redeem(&self, secret: [u8; 32], joiner: AuthorId) -> Result<JoinGrant, String>;
}

/// A blob source with nothing in it.
pub struct NoBlobs;
impl BlobSource for NoBlobs {
    fn blob(&self, _hash: [u8; 32]) -> Option<Vec<u8>> {
        None
    }
}

/// An invite authority that refuses every invite.
pub struct NoInvites;
impl InviteAuthority for NoInvites {
    fn redeem(&self, _secret: [u8; 32], _joiner: AuthorId) -> Result<JoinGrant, String> {
        Err("this node does not accept invites".into())
    }
}

/// Tuning of one node's network layer. `Default` is the offline-first
/// production setting.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Where the QUIC socket binds. Loopback by default (tests, single
    /// machine); use `0.0.0.0:PORT` to be reachable on the LAN.
    pub bind_addr: SocketAddr,
    /// Use n0's public relays (off: a local-first node makes no outside
    /// connection unless asked).
    pub relays: bool,
    /// Publish to and resolve from n0's public DNS/pkarr lookup (off).
    pub public_lookup: bool,
    /// Deadline for every frame read and write; a stalled peer costs at most
    /// this long before its stream is dropped.
    pub io_timeout: Duration,
    /// Deadline for dialing a peer.
    pub connect_timeout: Duration,
    /// Entries are packed into frames of at most this many bytes (a single
    /// larger entry travels alone). Bytes, not counts: see lessons-from-peers.
    pub batch_bytes: usize,
    /// Hard limit on one received frame, checked before allocation.
    pub max_frame: usize,
    /// Requests of one peer served at once (as many more may wait, up to
    /// `io_timeout`); past that its streams are reset with code 2, busy
    /// (see `flood`).
    pub peer_streams: usize,
    /// Join gossip overlays. Off: entries move only by sync (explicit
    /// calls and anti-entropy), e.g. to measure sync alone.
    pub gossip: bool,
    /// Gossip's message size limit (iroh-gossip defaults to 4 KiB and drops
    /// larger broadcasts silently, so this is set explicitly).
    pub gossip_max_message: usize,
    /// Period of the background sync of every store with every known peer;
    /// `None` disables it.
    pub anti_entropy: Option<Duration>,
    /// Period of re-joining gossip topics with members missing from the
    /// neighbour set (the overlay does not heal by itself after a partition).
    pub gossip_rejoin: Duration,
    /// Period of presence beacons for the stores `Policy::presence` marks;
    /// `None`: none are sent (received ones are still recorded).
    pub presence_interval: Option<Duration>,
    /// Delay before a gossip-triggered sync, so a burst of announcements
    /// with gaps becomes one sync.
    pub sync_debounce: Duration,
    /// Largest blob `fetch_blob` accepts.
    pub max_blob: u64,
    /// A store with more authors than this syncs by range-based
    /// reconciliation instead of version vectors (see [`RECONCILE_AUTHORS`]).
    pub reconcile_authors: usize,
    /// The announcer the kernel's commit hook was given, if it was created
    /// before the network (the usual order: kernel first, then `Net`).
    pub announcer: Option<Announcer>,
    /// Peers known at start (saved by the node), added before topics are
    /// subscribed and before the first anti-entropy round, which runs at
    /// once.
    pub peers: Vec<(AuthorId, Vec<SocketAddr>)>,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            bind_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            relays: false,
            public_lookup: false,
            io_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            batch_bytes: 1 << 20,
            max_frame: MAX_FRAME,
            peer_streams: 8,
            gossip: true,
            gossip_max_message: 64 * 1024,
            anti_entropy: Some(Duration::from_secs(30)),
            gossip_rejoin: Duration::from_secs(5),
            sync_debounce: Duration::from_millis(50),
            presence_interval: Some(Duration::from_secs(10)),
            max_blob: 16 << 20,
            reconcile_authors: RECONCILE_AUTHORS,
            announcer: None,
            peers: Vec::new(),
        }
    }
}
