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

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iroh::endpoint::{Connection, RecvStream, SendStream};
use iroh::protocol::{AcceptError, ProtocolHandler};
use lattice_kernel::{AuthorId, ChainTip, Kernel, Outcome, SignedEntry, StoreId, now_ms};
use prost::Message;
use tokio::sync::mpsc;

use crate::JoinGrant;
use crate::endpoint::{author_of, local_addrs};
use crate::error::{NetError, Result};
use crate::forks;
use crate::frame::{self, with_timeout};
use crate::invite::Invite;
use crate::net::Inner;
use crate::pb;
use crate::pb::sync_frame::Kind as SF;

/// The protocol identifier negotiated in the TLS handshake.
pub const ALPN: &[u8] = b"lattice/sync/1";

/// Blob bytes per frame: small enough to keep frames far under the limit.
const BLOB_CHUNK: usize = 256 * 1024;
/// Entries read from one author's chain per kernel call while merging.
const CHAIN_READ: usize = 512;

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

fn digests_pb(d: Option<([u8; 32], [u8; 32])>) -> Option<pb::Digests> {
    d.map(|(log, state)| pb::Digests {
        log: log.to_vec(),
        state: state.to_vec(),
    })
}

/// Same log, different state: the verdict both sides of a sync reach
/// from the digests exchanged at its start.
fn diverged(ours: Option<([u8; 32], [u8; 32])>, theirs: Option<&pb::Digests>) -> bool {
    match (ours, theirs) {
        (Some((log, state)), Some(t)) => t.log == log && t.state.len() == 32 && t.state != state,
        _ => false,
    }
}

async fn our_digests(inner: &Arc<Inner>, store: StoreId) -> Result<Option<([u8; 32], [u8; 32])>> {
    let policy = Arc::clone(&inner.policy);
    blocking(move || policy.digests(&store)).await
}

// ---------------------------------------------------------------- vectors

/// Our side of a session: tips, the forks we can prove, and what the peer
/// said; from these, the ranges and proofs to send (see `forks`).
struct Plan {
    /// Entries the peer asked for by id, sent first.
    wanted: Vec<SignedEntry>,
    ranges: Vec<(AuthorId, u64, u64)>,
    proofs: Vec<pb::ForkProof>,
}

async fn plan(
    inner: &Arc<Inner>,
    store: StoreId,
    mine: Vec<ChainTip>,
    known: Arc<forks::Known>,
    peer: forks::PeerState,
) -> Result<Plan> {
    let k = Arc::clone(&inner.kernel);
    blocking(move || {
        let ranges = forks::ranges(&k, &store, &mine, &peer, &known)?;
        Ok(Plan {
            wanted: forks::wanted(&k, &store, &peer)?,
            ranges,
            proofs: known.proofs_for(&peer),
        })
    })
    .await?
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

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| NetError::Protocol(format!("blocking task failed: {e}")))
}

// ---------------------------------------------------------------- sending

/// One author's range, as chain positions (no entry bodies): the merge
/// holds at most [`index_read`] positions per author, a few dozen bytes
/// each, and loads entry bodies only for the batch being filled, so the
/// sender's memory is bounded by bytes (two batches in the channel, one
/// being filled), whatever the number of authors or the size of entries.
struct Cursor {
    author: AuthorId,
    next: u64,
    end: u64,
    buf: VecDeque<lattice_kernel::ChainPos>,
}

/// Positions read per author per kernel call: fewer when many authors
/// are merged, so the index held stays near [`INDEX_BUDGET`] positions.
fn index_read(authors: usize) -> usize {
    (INDEX_BUDGET / authors.max(1)).clamp(1, CHAIN_READ)
}

/// Chain positions held across all cursors, about (48 bytes each).
const INDEX_BUDGET: usize = 64 * 1024;

impl Cursor {
    fn refill(&mut self, kernel: &Kernel, store: &StoreId, read: usize) -> Result<()> {
        if self.next > self.end {
            return Ok(());
        }
        let got = kernel.chain_index(store, &self.author, self.next, read)?;
        let before = self.buf.len();
        for p in got {
            if p.seq > self.end {
                break;
            }
            self.next = p.seq + 1;
            self.buf.push_back(p);
        }
        if self.buf.len() == before {
            // Nothing (more) in range: the chain ends early; stop here.
            self.next = self.end + 1;
        }
        Ok(())
    }
}

/// Reads the ranges from the kernel and packs them into byte-bounded
/// batches, merged across authors by HLC so deps tend to precede their
/// dependents; entries the peer asked for by id go first. Runs on a
/// blocking thread.
fn produce(
    kernel: &Kernel,
    store: &StoreId,
    wanted: Vec<SignedEntry>,
    ranges: Vec<(AuthorId, u64, u64)>,
    batch_bytes: usize,
    tx: &mpsc::Sender<Result<Vec<Vec<u8>>>>,
) -> Result<()> {
    let read = index_read(ranges.len());
    let mut cursors = Vec::with_capacity(ranges.len());
    let mut heap = BinaryHeap::new();
    for (i, (author, from, to)) in ranges.into_iter().enumerate() {
        let mut c = Cursor {
            author,
            next: from,
            end: to,
            buf: VecDeque::new(),
        };
        c.refill(kernel, store, read)?;
        if let Some(f) = c.buf.front() {
            heap.push(Reverse((f.hlc, i)));
        }
        cursors.push(c);
    }
    let send = |batch: Vec<Vec<u8>>| tx.blocking_send(Ok(batch)).is_ok();
    // The wanted entries are few (bounded by MAX_WANTS) and already loaded.
    let mut batch = Vec::new();
    let mut size = 0usize;
    for e in wanted {
        let w = e.to_wire();
        if !batch.is_empty() && size + w.len() > batch_bytes {
            if !send(std::mem::take(&mut batch)) {
                return Ok(());
            }
            size = 0;
        }
        size += w.len();
        batch.push(w);
    }
    // Then the ranges: pick positions in HLC order until a batch's worth
    // of bytes, load those entries in one read, send.
    let mut ids = Vec::new();
    loop {
        let done = match heap.pop() {
            None => true,
            Some(Reverse((_, i))) => {
                let c = &mut cursors[i];
                let Some(p) = c.buf.pop_front() else { continue };
                if c.buf.is_empty() {
                    c.refill(kernel, store, read)?;
                }
                if let Some(f) = c.buf.front() {
                    heap.push(Reverse((f.hlc, i)));
                }
                if !ids.is_empty() && size + p.bytes > batch_bytes {
                    for e in kernel.get_many(&ids)? {
                        batch.push(e.to_wire());
                    }
                    ids.clear();
                    if !send(std::mem::take(&mut batch)) {
                        return Ok(());
                    }
                    size = 0;
                }
                size += p.bytes;
                ids.push(p.id);
                false
            }
        };
        if done {
            break;
        }
    }
    for e in kernel.get_many(&ids)? {
        batch.push(e.to_wire());
    }
    if !batch.is_empty() {
        let _ = send(batch);
    }
    Ok(())
}

/// Streams the ranges to the peer, then `Done`. Returns (entries, bytes).
async fn push(
    inner: &Arc<Inner>,
    send: &mut SendStream,
    store: StoreId,
    plan: Plan,
) -> Result<(u64, u64)> {
    let Plan {
        wanted,
        ranges,
        proofs,
    } = plan;
    let io = inner.config.io_timeout;
    let mut bytes = 0u64;
    if !proofs.is_empty() {
        let f = pb::SyncFrame {
            kind: Some(SF::Forks(pb::ForkProofs { proofs })),
        };
        bytes += frame::write(send, &f, io, "fork proofs").await? as u64;
    }
    let (tx, mut rx) = mpsc::channel(2);
    let kernel = Arc::clone(&inner.kernel);
    let batch_bytes = inner.config.batch_bytes;
    let producer = tokio::task::spawn_blocking(move || {
        if let Err(e) = produce(&kernel, &store, wanted, ranges, batch_bytes, &tx) {
            let _ = tx.blocking_send(Err(e));
        }
    });
    let mut sent = 0u64;
    while let Some(batch) = rx.recv().await {
        let entries = batch?;
        sent += entries.len() as u64;
        let f = pb::SyncFrame {
            kind: Some(SF::Batch(pb::EntryBatch { entries })),
        };
        bytes += frame::write(send, &f, io, "entry batch").await? as u64;
    }
    drop(producer);
    let f = pb::SyncFrame {
        kind: Some(SF::Done(pb::Done { count: sent })),
    };
    bytes += frame::write(send, &f, io, "done frame").await? as u64;
    Ok((sent, bytes))
}

// -------------------------------------------------------------- receiving

#[derive(Default)]
struct Pulled {
    entries: u64,
    committed: u64,
    rejected: u64,
    bytes: u64,
}

/// Rejects an entry of another store before it reaches the kernel: a sync
/// of store S may only carry S's entries (the peer was authorized for S).
pub(crate) fn check_store(wire: &[u8], store: &StoreId) -> Result<()> {
    let env = lattice_kernel::pb::Entry::decode(wire)
        .map_err(|e| NetError::Protocol(format!("entry envelope does not decode: {e}")))?;
    let body = lattice_kernel::pb::EntryBody::decode(env.body.as_slice())
        .map_err(|e| NetError::Protocol(format!("entry body does not decode: {e}")))?;
    if body.store_id != store.0 {
        return Err(NetError::Protocol(format!(
            "entry of another store in a sync of store {store}"
        )));
    }
    Ok(())
}

async fn ingest_batch(kernel: Arc<Kernel>, wires: Vec<Vec<u8>>) -> Result<(u64, u64)> {
    let report = blocking(move || kernel.ingest(&wires)).await??;
    let mut rejected = 0;
    for o in &report.outcomes {
        if let Outcome::Rejected(e) = o {
            if rejected == 0 {
                tracing::debug!(error = %e, "received entry rejected");
            }
            rejected += 1;
        }
    }
    Ok((report.committed.len() as u64, rejected))
}

/// Reads batches until `Done`, ingesting each; the next frame is read while
/// the previous batch commits, and batches commit in arrival order.
async fn pull(inner: &Arc<Inner>, recv: &mut RecvStream, store: StoreId) -> Result<Pulled> {
    let (max, io) = (inner.config.max_frame, inner.config.io_timeout);
    let mut p = Pulled::default();
    let mut pending: Option<tokio::task::JoinHandle<Result<(u64, u64)>>> = None;
    let finish = |p: &mut Pulled,
                  r: std::result::Result<Result<(u64, u64)>, tokio::task::JoinError>|
     -> Result<()> {
        let (c, rj) = r.map_err(|e| NetError::Protocol(format!("ingest task failed: {e}")))??;
        p.committed += c;
        p.rejected += rj;
        Ok(())
    };
    loop {
        let (f, n) = frame::read::<pb::SyncFrame>(recv, max, io, "sync frame").await?;
        p.bytes += n as u64;
        match f.kind {
            Some(SF::Batch(b)) => {
                for w in &b.entries {
                    check_store(w, &store)?;
                }
                p.entries += b.entries.len() as u64;
                if let Some(h) = pending.take() {
                    finish(&mut p, h.await)?;
                }
                pending = Some(tokio::spawn(ingest_batch(
                    Arc::clone(&inner.kernel),
                    b.entries,
                )));
            }
            Some(SF::Done(d)) => {
                if let Some(h) = pending.take() {
                    finish(&mut p, h.await)?;
                }
                if d.count != p.entries {
                    return Err(NetError::Protocol(format!(
                        "peer said it sent {} entries but {} arrived",
                        d.count, p.entries
                    )));
                }
                return Ok(p);
            }
            Some(SF::Forks(f)) => {
                let k = Arc::clone(&inner.kernel);
                let new = blocking(move || forks::import(&k, &store, f.proofs)).await??;
                if new > 0 {
                    tracing::warn!(store = %store, proofs = new, "fork proofs received from a peer");
                }
            }
            Some(SF::Error(e)) => return Err(NetError::Refused(e)),
            other => {
                return Err(NetError::Protocol(format!(
                    "expected an entry batch or done, got {other:?}"
                )));
            }
        }
    }
}

// ----------------------------------------------------------------- client

pub(crate) async fn open(inner: &Arc<Inner>, peer: &AuthorId) -> Result<(SendStream, RecvStream)> {
    let conn = inner.connection(peer).await?;
    with_timeout(inner.config.io_timeout, "opening a stream", conn.open_bi())
        .await?
        .map_err(|e| NetError::Stream(format!("opening a stream: {e}")))
}

/// Client side of one sync session; see the module docs.
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
    let started = Instant::now();
    let (max, io) = (inner.config.max_frame, inner.config.io_timeout);
    let (mut send, mut recv) = open(inner, &peer).await?;
    let ours = our_state(inner, store).await?;
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
    let recv_side = async {
        let p = pull(inner, &mut recv, store).await?;
        let (ack, n) = frame::read::<pb::SyncFrame>(&mut recv, max, io, "sync ack").await?;
        match ack.kind {
            Some(SF::Ack(a)) => Ok((p, a, n)),
            Some(SF::Error(e)) => Err(NetError::Refused(e)),
            other => Err(NetError::Protocol(format!("expected ack, got {other:?}"))),
        }
    };
    let ((sent, sent_bytes), (pulled, ack, ack_bytes)) =
        tokio::try_join!(push(inner, &mut send, store, plan), recv_side)?;
    let _ = send.finish();
    inner.touch(&peer);
    if split {
        tracing::error!(store = %store, peer = %peer, "DIVERGED: the peer holds the same log as this node but computed a different state");
    }
    Ok(SyncStats {
        sent,
        sent_rejected: ack.rejected,
        received: pulled.committed,
        rejected: pulled.rejected,
        bytes: bytes + sent_bytes + pulled.bytes + ack_bytes as u64,
        round_trips: 1,
        duration: started.elapsed(),
        diverged: split,
    })
}

/// Fetches a blob and checks its blake3 hash before returning it.
pub(crate) async fn fetch_blob(
    inner: &Arc<Inner>,
    peer: AuthorId,
    hash: [u8; 32],
) -> Result<Vec<u8>> {
    use pb::blob_frame::Kind as BF;
    let (max, io) = (inner.config.max_frame, inner.config.io_timeout);
    let (mut send, mut recv) = open(inner, &peer).await?;
    let req = pb::Request {
        kind: Some(pb::request::Kind::Blob(pb::BlobRequest {
            hash: hash.to_vec(),
        })),
    };
    frame::write(&mut send, &req, io, "blob request").await?;
    let _ = send.finish();
    let hex = |h: &[u8; 32]| lattice_kernel::EntryId(*h).to_hex();
    let (first, _) = frame::read::<pb::BlobFrame>(&mut recv, max, io, "blob header").await?;
    let size = match first.kind {
        Some(BF::Size(s)) => s,
        Some(BF::Error(e)) => {
            return Err(NetError::BlobUnavailable {
                hash: hex(&hash),
                reason: e,
            });
        }
        other => {
            return Err(NetError::Protocol(format!(
                "expected blob size, got {other:?}"
            )));
        }
    };
    if size > inner.config.max_blob {
        return Err(NetError::BlobTooLarge {
            size,
            max: inner.config.max_blob,
        });
    }
    let mut data = Vec::with_capacity(size as usize);
    while (data.len() as u64) < size {
        let (f, _) = frame::read::<pb::BlobFrame>(&mut recv, max, io, "blob chunk").await?;
        match f.kind {
            Some(BF::Chunk(c)) if data.len() as u64 + c.len() as u64 <= size => {
                data.extend_from_slice(&c)
            }
            Some(BF::Chunk(_)) => {
                return Err(NetError::Protocol(
                    "blob chunks exceed the announced size".into(),
                ));
            }
            other => {
                return Err(NetError::Protocol(format!(
                    "expected blob chunk, got {other:?}"
                )));
            }
        }
    }
    let got = *blake3::hash(&data).as_bytes();
    if got != hash {
        return Err(NetError::BlobHashMismatch {
            want: hex(&hash),
            got: hex(&got),
        });
    }
    inner.touch(&peer);
    Ok(data)
}

fn parse_addrs(addrs: &[String]) -> Vec<SocketAddr> {
    addrs.iter().filter_map(|a| a.parse().ok()).collect()
}

/// Redeems an invite with its inviter; members of the grant become peers.
pub(crate) async fn join(inner: &Arc<Inner>, invite: &Invite) -> Result<JoinGrant> {
    use pb::join_response::Kind as JR;
    let now = now_ms();
    if invite.expires_ms != 0 && now > invite.expires_ms {
        return Err(NetError::InviteExpired {
            expires_ms: invite.expires_ms,
            now_ms: now,
        });
    }
    if invite.addrs.is_empty() {
        return Err(NetError::UnknownPeer {
            peer: invite.inviter,
        });
    }
    let (max, io) = (inner.config.max_frame, inner.config.io_timeout);
    inner.add_peer(invite.inviter, &invite.addrs);
    let (mut send, mut recv) = open(inner, &invite.inviter).await?;
    let req = pb::Request {
        kind: Some(pb::request::Kind::Join(pb::JoinRequest {
            secret: invite.secret.to_vec(),
            addrs: local_addrs(&inner.endpoint)
                .iter()
                .map(|a| a.to_string())
                .collect(),
        })),
    };
    frame::write(&mut send, &req, io, "join request").await?;
    let _ = send.finish();
    let (resp, _) = frame::read::<pb::JoinResponse>(&mut recv, max, io, "join response").await?;
    let g = match resp.kind {
        Some(JR::Grant(g)) => g,
        Some(JR::Error(e)) => return Err(NetError::JoinRefused(e)),
        None => return Err(NetError::Protocol("empty join response".into())),
    };
    let mesh_id = StoreId::from_slice(&g.mesh_id)
        .ok_or_else(|| NetError::Protocol("grant mesh id is not 16 bytes".into()))?;
    let mut members = Vec::with_capacity(g.members.len());
    for m in &g.members {
        let id = AuthorId::from_slice(&m.author)
            .ok_or_else(|| NetError::Protocol("grant member id is not 32 bytes".into()))?;
        let addrs = parse_addrs(&m.addrs);
        inner.add_peer(id, &addrs);
        members.push((id, addrs));
    }
    let founder = AuthorId::from_slice(&g.founder)
        .ok_or_else(|| NetError::Protocol("grant founder is not 32 bytes".into()))?;
    let mesh_secret: [u8; 32] = g
        .mesh_secret
        .as_slice()
        .try_into()
        .map_err(|_| NetError::Protocol("grant mesh secret is not 32 bytes".into()))?;
    inner.touch(&invite.inviter);
    Ok(JoinGrant {
        mesh_id,
        founder,
        mesh_secret,
        members,
    })
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
            tokio::spawn(async move {
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
        Some(pb::request::Kind::Blob(b)) => serve_blob(inner, peer, &mut send, b).await,
        Some(pb::request::Kind::Join(j)) => serve_join(inner, peer, &mut send, j).await,
        Some(pb::request::Kind::Digests(d)) => {
            crate::anti_entropy::serve(inner, peer, send, recv, d).await
        }
        None => Err(NetError::Protocol("request of unknown kind".into())),
    }
}

async fn serve_sync(
    inner: &Arc<Inner>,
    peer: AuthorId,
    mut send: SendStream,
    mut recv: RecvStream,
    req: pb::SyncRequest,
) -> Result<()> {
    let io = inner.config.io_timeout;
    let store = StoreId::from_slice(&req.store_id)
        .ok_or_else(|| NetError::Protocol("sync store id is not 16 bytes".into()))?;
    if !inner.policy.may_sync(&store, &peer) {
        tracing::warn!(peer = %peer, store = %store, "sync refused: not a member");
        let f = pb::SyncFrame {
            kind: Some(SF::Error(format!(
                "author {peer} is not a member of store {store}"
            ))),
        };
        frame::write(&mut send, &f, io, "refusal").await?;
        let _ = send.finish();
        return Ok(());
    }
    let theirs = forks::PeerState::from_pb(&req.tips, &req.forks, &req.wants)?;
    let ours = our_state(inner, store).await?;
    let digests = our_digests(inner, store).await?;
    if diverged(digests, req.digests.as_ref()) {
        tracing::error!(store = %store, peer = %peer, "DIVERGED: the peer holds the same log as this node but computed a different state");
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
    let (_, pulled) = tokio::try_join!(
        push(inner, &mut send, store, plan),
        pull(inner, &mut recv, store)
    )?;
    let ack = pb::SyncFrame {
        kind: Some(SF::Ack(pb::Ack {
            committed: pulled.committed,
            rejected: pulled.rejected,
        })),
    };
    frame::write(&mut send, &ack, io, "sync ack").await?;
    let _ = send.finish();
    inner.touch(&peer);
    Ok(())
}

async fn serve_blob(
    inner: &Arc<Inner>,
    peer: AuthorId,
    send: &mut SendStream,
    req: pb::BlobRequest,
) -> Result<()> {
    use pb::blob_frame::Kind as BF;
    let io = inner.config.io_timeout;
    let hash: [u8; 32] = req
        .hash
        .as_slice()
        .try_into()
        .map_err(|_| NetError::Protocol("blob hash is not 32 bytes".into()))?;
    // Blobs are served to members of any of our stores only.
    let member = inner.gate.member_of_any(&peer);
    let data = if member {
        let blobs = Arc::clone(&inner.blobs);
        blocking(move || blobs.blob(hash)).await?
    } else {
        tracing::warn!(peer = %peer, "blob refused: not a member of any store");
        None
    };
    match data {
        None => {
            let reason = if member {
                "blob not found"
            } else {
                "not a member"
            };
            let f = pb::BlobFrame {
                kind: Some(BF::Error(reason.into())),
            };
            frame::write(send, &f, io, "blob refusal").await?;
        }
        Some(d) => {
            let f = pb::BlobFrame {
                kind: Some(BF::Size(d.len() as u64)),
            };
            frame::write(send, &f, io, "blob header").await?;
            for c in d.chunks(BLOB_CHUNK) {
                let f = pb::BlobFrame {
                    kind: Some(BF::Chunk(c.to_vec())),
                };
                frame::write(send, &f, io, "blob chunk").await?;
            }
        }
    }
    let _ = send.finish();
    Ok(())
}

async fn serve_join(
    inner: &Arc<Inner>,
    peer: AuthorId,
    send: &mut SendStream,
    req: pb::JoinRequest,
) -> Result<()> {
    use pb::join_response::Kind as JR;
    let io = inner.config.io_timeout;
    let secret: [u8; 32] = req
        .secret
        .as_slice()
        .try_into()
        .map_err(|_| NetError::Protocol("invite secret is not 32 bytes".into()))?;
    let invites = Arc::clone(&inner.invites);
    let verdict = blocking(move || invites.redeem(secret, peer)).await?;
    let kind = match verdict {
        Ok(g) => {
            inner.add_peer(peer, &parse_addrs(&req.addrs));
            tracing::info!(joiner = %peer, mesh = %g.mesh_id, "invite redeemed");
            JR::Grant(pb::JoinGrant {
                mesh_id: g.mesh_id.0.to_vec(),
                founder: g.founder.0.to_vec(),
                mesh_secret: g.mesh_secret.to_vec(),
                members: g
                    .members
                    .iter()
                    .map(|(a, addrs)| pb::Member {
                        author: a.0.to_vec(),
                        addrs: addrs.iter().map(|s| s.to_string()).collect(),
                    })
                    .collect(),
            })
        }
        Err(why) => {
            tracing::warn!(joiner = %peer, reason = %why, "invite refused");
            JR::Error(why)
        }
    };
    frame::write(
        send,
        &pb::JoinResponse { kind: Some(kind) },
        io,
        "join response",
    )
    .await?;
    let _ = send.finish();
    Ok(())
}
