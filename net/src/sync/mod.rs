//! The request/response protocol on ALPN [`ALPN`]: store sync, blob fetch
//! and invite redemption, one request per QUIC bi-stream.
//!
//! Sync is one round trip of version vectors followed by both sides
//! streaming, at the same time, the entries the other lacks. Entries travel
//! in causal order (a k-way merge of the per-author chain ranges by HLC, so
//! few arrive before their deps) in frames bounded by bytes. Each frame is
//! ingested, i.e. made durable, before the next is, so a connection that
//! drops mid-stream leaves a consistent prefix and the next sync resumes
//! from the new vector. The wire format is in `docs/protocol.md`.

//!
//! Stores with many authors reconcile by ranges instead (see
//! [`crate::reconcile`]); [`sync_store`] picks the method per store.

mod recv;
mod requests;
mod send;

use std::sync::Arc;
use std::time::{Duration, Instant};

use iroh::endpoint::{Connection, RecvStream, SendStream};
use iroh::protocol::{AcceptError, ProtocolHandler};
use lattice_kernel::{AuthorId, ChainTip, StoreId};

use crate::endpoint::author_of;
use crate::error::{NetError, Result};
use crate::forks;
use crate::frame::{self, with_timeout};
use crate::net::Inner;
use crate::pb;
use crate::pb::sync_frame::Kind as SF;

pub use recv::check_store;
pub(crate) use recv::pull;
pub(crate) use requests::{fetch_blob, join};
pub(crate) use send::{Plan, plan, push};

/// The protocol identifier negotiated in the TLS handshake.
pub const ALPN: &[u8] = b"lattice/sync/1";

/// What one sync session moved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Entries we sent the peer.
    pub sent: u64,
    /// Entries of ours the peer refused (it said so in its ack).
    pub sent_rejected: u64,
    /// Entries committed here because of this session (including older
    /// orphans the received entries unblocked).
    pub received: u64,
    /// Received entries our kernel refused.
    pub rejected: u64,
    /// Frame bytes in both directions.
    pub bytes: u64,
    /// Request/response turns (vector exchange; streaming needs no others).
    pub round_trips: u32,
    pub duration: Duration,
    /// At the hello, the peer's log equalled ours but its state did not:
    /// one of the two replicas diverged.
    pub diverged: bool,
}

pub(crate) fn digests_pb(d: Option<([u8; 32], [u8; 32])>) -> Option<pb::Digests> {
    d.map(|(log, state)| pb::Digests {
        log: log.to_vec(),
        state: state.to_vec(),
    })
}

/// Same log, different state: the verdict both sides of a sync reach
/// from the digests exchanged at its start.
pub(crate) fn diverged(ours: Option<([u8; 32], [u8; 32])>, theirs: Option<&pb::Digests>) -> bool {
    match (ours, theirs) {
        (Some((log, state)), Some(t)) => t.log == log && t.state.len() == 32 && t.state != state,
        _ => false,
    }
}

pub(crate) async fn our_digests(
    inner: &Arc<Inner>,
    store: StoreId,
) -> Result<Option<([u8; 32], [u8; 32])>> {
    let policy = Arc::clone(&inner.policy);
    blocking(move || policy.digests(&store)).await
}

/// Our side of a store at the start of a session.
struct Ours {
    tips: Vec<ChainTip>,
    known: forks::Known,
    wants: Vec<Vec<u8>>,
}

/// Our tips, provable forks and wanted ids of `store`.
async fn our_state(inner: &Arc<Inner>, store: StoreId) -> Result<Ours> {
    let k = Arc::clone(&inner.kernel);
    blocking(move || {
        Ok(Ours {
            tips: k.tips(&store)?,
            known: forks::Known::read(&k, &store)?,
            wants: forks::wants(&k, &store)?,
        })
    })
    .await?
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| NetError::Protocol(format!("blocking task failed: {e}")))
}

// ----------------------------------------------------------------- client

pub(crate) async fn open(inner: &Arc<Inner>, peer: &AuthorId) -> Result<(SendStream, RecvStream)> {
    let conn = inner.connection(peer).await?;
    with_timeout(inner.config.io_timeout, "opening a stream", conn.open_bi())
        .await?
        .map_err(|e| NetError::Stream(format!("opening a stream: {e}")))
}

/// The default of [`crate::NetConfig::reconcile_authors`]: above this many
/// authors in a store, its version vector (~75 bytes per author, sent both
/// ways every session) costs more than reconciling by ranges, whose cost
/// grows with the differences instead.
pub const RECONCILE_AUTHORS: usize = 256;

impl SyncStats {
    /// Adds a later session's figures to this one's (a sync of one store
    /// that took two sessions).
    pub(crate) fn absorb(&mut self, more: SyncStats) {
        self.sent += more.sent;
        self.sent_rejected += more.sent_rejected;
        self.received += more.received;
        self.rejected += more.rejected;
        self.bytes += more.bytes;
        self.round_trips += more.round_trips;
        self.duration += more.duration;
        self.diverged = more.diverged;
    }
}

/// Client side of one store's sync, by the method that suits the store:
/// version vectors for few authors (one round trip, and big catch-ups
/// stream whole chain ranges without listing ids), range-based
/// reconciliation for many. A store with proven forks is reconciled after
/// its vector session too: a vector names one branch per author, so the
/// other branches' entries (logged, void) travel only by id.
pub(crate) async fn sync_store(
    inner: &Arc<Inner>,
    peer: AuthorId,
    store: StoreId,
) -> Result<SyncStats> {
    if peer == inner.me {
        return Err(NetError::Protocol(
            "a node does not sync with itself".into(),
        ));
    }
    if !inner.policy.may_sync(&store, &peer) {
        return Err(NetError::NotMember { store, peer });
    }
    let ours = our_state(inner, store).await?;
    if ours.tips.len() > inner.config.reconcile_authors {
        return crate::reconcile::sync(inner, peer, store).await;
    }
    let mut stats = sync_vectors(inner, peer, store, ours).await?;
    let k = Arc::clone(&inner.kernel);
    let forked = blocking(move || k.fork_verdicts(&store)).await??;
    if !forked.is_empty() {
        stats.absorb(crate::reconcile::sync(inner, peer, store).await?);
    }
    Ok(stats)
}

/// One version-vector session; see the module docs.
async fn sync_vectors(
    inner: &Arc<Inner>,
    peer: AuthorId,
    store: StoreId,
    ours: Ours,
) -> Result<SyncStats> {
    let started = Instant::now();
    let (max, io) = (inner.config.max_frame, inner.config.io_timeout);
    let (mut send, mut recv) = open(inner, &peer).await?;
    let digests = our_digests(inner, store).await?;
    let req = pb::Request {
        kind: Some(pb::request::Kind::Sync(pb::SyncRequest {
            store_id: store.0.to_vec(),
            tips: forks::tips_to_pb(&ours.tips),
            forks: ours.known.summaries(),
            digests: digests_pb(digests),
            wants: ours.wants.clone(),
        })),
    };
    let mut bytes = frame::write(&mut send, &req, io, "sync request").await? as u64;
    let (hello, n) = frame::read::<pb::SyncFrame>(&mut recv, max, io, "sync hello").await?;
    bytes += n as u64;
    let (theirs, split) = match hello.kind {
        Some(SF::Hello(h)) => (
            forks::PeerState::from_pb(&h.tips, &h.forks, &h.wants)?,
            diverged(digests, h.digests.as_ref()),
        ),
        Some(SF::Error(e)) => return Err(NetError::Refused(e)),
        other => {
            return Err(NetError::Protocol(format!("expected hello, got {other:?}")));
        }
    };
    let plan = plan(inner, store, ours.tips, Arc::new(ours.known), theirs).await?;
    let mut stats = exchange(inner, &mut send, &mut recv, store, plan).await?;
    inner.touch(&peer);
    if split {
        warn_diverged(store, peer);
    }
    stats.bytes += bytes;
    stats.round_trips = 1;
    stats.duration = started.elapsed();
    stats.diverged = split;
    Ok(stats)
}

pub(crate) fn warn_diverged(store: StoreId, peer: AuthorId) {
    tracing::error!(store = %store, peer = %peer, "DIVERGED: the peer holds the same log as this node but computed a different state");
}

/// The client's transfer: streams `plan` to the server while ingesting
/// what the server streams, then reads the server's ack. Returns what
/// moved (round trips, time and divergence are the caller's).
pub(crate) async fn exchange(
    inner: &Arc<Inner>,
    send: &mut SendStream,
    recv: &mut RecvStream,
    store: StoreId,
    plan: Plan,
) -> Result<SyncStats> {
    let (max, io) = (inner.config.max_frame, inner.config.io_timeout);
    let recv_side = async {
        let p = pull(inner, recv, store).await?;
        let (ack, n) = frame::read::<pb::SyncFrame>(recv, max, io, "sync ack").await?;
        match ack.kind {
            Some(SF::Ack(a)) => Ok((p, a, n)),
            Some(SF::Error(e)) => Err(NetError::Refused(e)),
            other => Err(NetError::Protocol(format!("expected ack, got {other:?}"))),
        }
    };
    let ((sent, sent_bytes), (pulled, ack, ack_bytes)) =
        tokio::try_join!(push(inner, send, store, plan), recv_side)?;
    let _ = send.finish();
    Ok(SyncStats {
        sent,
        sent_rejected: ack.rejected,
        received: pulled.committed,
        rejected: pulled.rejected,
        bytes: sent_bytes + pulled.bytes + ack_bytes as u64,
        ..SyncStats::default()
    })
}

/// The server's transfer: streams `plan` while ingesting the client's
/// entries, then acks what it did with them.
pub(crate) async fn answer(
    inner: &Arc<Inner>,
    send: &mut SendStream,
    recv: &mut RecvStream,
    store: StoreId,
    plan: Plan,
) -> Result<()> {
    let (_, pulled) = tokio::try_join!(push(inner, send, store, plan), pull(inner, recv, store))?;
    let ack = pb::SyncFrame {
        kind: Some(SF::Ack(pb::Ack {
            committed: pulled.committed,
            rejected: pulled.rejected,
        })),
    };
    frame::write(send, &ack, inner.config.io_timeout, "sync ack").await?;
    let _ = send.finish();
    Ok(())
}

// ----------------------------------------------------------------- server

/// Serves our ALPN: one task per bi-stream. A protocol violation closes
/// the whole connection (the peer is broken or hostile); other failures
/// only end their stream.
pub(crate) struct SyncHandler {
    inner: Arc<Inner>,
}

impl SyncHandler {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        SyncHandler { inner }
    }
}

impl std::fmt::Debug for SyncHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SyncHandler({})", self.inner.me)
    }
}

impl ProtocolHandler for SyncHandler {
    async fn accept(&self, conn: Connection) -> std::result::Result<(), AcceptError> {
        let peer = author_of(&conn.remote_id());
        self.inner.touch(&peer);
        loop {
            let (send, recv) = match conn.accept_bi().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(peer = %peer, reason = %e, "connection ended");
                    return Ok(());
                }
            };
            let inner = Arc::clone(&self.inner);
            let conn = conn.clone();
            let held = inner.gauges.streams_in.hold();
            tokio::spawn(async move {
                let _held = held;
                let wait = inner.config.io_timeout;
                let Some(_slot) = inner.peer_slots.enter(peer, wait).await else {
                    tracing::info!(peer = %peer, "request refused: too many in flight from this peer");
                    let (mut send, mut recv) = (send, recv);
                    let busy = iroh::endpoint::VarInt::from_u32(crate::flood::BUSY);
                    let _ = send.reset(busy);
                    let _ = recv.stop(busy);
                    return;
                };
                if let Err(e) = serve_stream(&inner, peer, send, recv).await {
                    match e {
                        NetError::Protocol(_) | NetError::FrameTooLarge { .. } => {
                            tracing::warn!(peer = %peer, error = %e, "closing connection: protocol violation");
                            conn.close(1u32.into(), b"protocol violation");
                        }
                        _ => tracing::info!(peer = %peer, error = %e, "request failed"),
                    }
                }
            });
        }
    }
}

async fn serve_stream(
    inner: &Arc<Inner>,
    peer: AuthorId,
    mut send: SendStream,
    mut recv: RecvStream,
) -> Result<()> {
    let (max, io) = (inner.config.max_frame, inner.config.io_timeout);
    let (req, _) = frame::read::<pb::Request>(&mut recv, max, io, "request").await?;
    match req.kind {
        Some(pb::request::Kind::Sync(s)) => serve_sync(inner, peer, send, recv, s).await,
        Some(pb::request::Kind::Blob(b)) => requests::serve_blob(inner, peer, &mut send, b).await,
        Some(pb::request::Kind::Join(j)) => requests::serve_join(inner, peer, &mut send, j).await,
        Some(pb::request::Kind::Digests(d)) => {
            crate::anti_entropy::serve(inner, peer, send, recv, d).await
        }
        Some(pb::request::Kind::Reconcile(r)) => {
            crate::reconcile::serve(inner, peer, send, recv, r).await
        }
        None => Err(NetError::Protocol("request of unknown kind".into())),
    }
}

/// The admission of a store-scoped request (`what`): a store id that is
/// not 16 bytes is a protocol violation; a peer that may not sync the store
/// gets `Err(reason)` to send back, and nothing else.
pub(crate) fn admit(
    inner: &Inner,
    raw: &[u8],
    peer: AuthorId,
    what: &str,
) -> Result<std::result::Result<StoreId, String>> {
    let store = StoreId::from_slice(raw)
        .ok_or_else(|| NetError::Protocol(format!("{what} store id is not 16 bytes")))?;
    if inner.policy.may_sync(&store, &peer) {
        return Ok(Ok(store));
    }
    tracing::warn!(peer = %peer, store = %store, "{what} refused: not a member");
    Ok(Err(format!(
        "author {peer} is not a member of store {store}"
    )))
}

async fn serve_sync(
    inner: &Arc<Inner>,
    peer: AuthorId,
    mut send: SendStream,
    mut recv: RecvStream,
    req: pb::SyncRequest,
) -> Result<()> {
    let io = inner.config.io_timeout;
    let store = match admit(inner, &req.store_id, peer, "sync")? {
        Ok(store) => store,
        Err(why) => {
            let f = pb::SyncFrame {
                kind: Some(SF::Error(why)),
            };
            frame::write(&mut send, &f, io, "refusal").await?;
            let _ = send.finish();
            return Ok(());
        }
    };
    let theirs = forks::PeerState::from_pb(&req.tips, &req.forks, &req.wants)?;
    let ours = our_state(inner, store).await?;
    let digests = our_digests(inner, store).await?;
    if diverged(digests, req.digests.as_ref()) {
        warn_diverged(store, peer);
    }
    let hello = pb::SyncFrame {
        kind: Some(SF::Hello(pb::SyncHello {
            tips: forks::tips_to_pb(&ours.tips),
            forks: ours.known.summaries(),
            digests: digests_pb(digests),
            wants: ours.wants,
        })),
    };
    frame::write(&mut send, &hello, io, "sync hello").await?;
    let plan = plan(inner, store, ours.tips, Arc::new(ours.known), theirs).await?;
    answer(inner, &mut send, &mut recv, store, plan).await?;
    inner.touch(&peer);
    Ok(())
}
