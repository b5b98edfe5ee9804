//! The [`Net`] handle: endpoint, accept loop, peer table, connection cache
//! and the background tasks (gossip announcer, topic maintenance,
//! anti-entropy).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use iroh::Endpoint;
use iroh::address_lookup::MemoryLookup;
use iroh::endpoint::{Connection, Incoming};
use iroh::protocol::ProtocolHandler;
use iroh_gossip::Gossip;
use lattice_kernel::{AuthorId, Kernel, SignedEntry, StoreId, now_ms};
use tokio::task::JoinHandle;

use crate::admission::{Gate, GateHook};
use crate::endpoint::{self, author_of, endpoint_addr, local_addrs};
use crate::error::{NetError, Result};
use crate::gossip::{self, Announcer, Topics};
use crate::invite::Invite;
use crate::sync::{self, ALPN, SyncHandler, SyncStats};
use crate::{BlobSource, InviteAuthority, JoinGrant, NetConfig, Policy};

/// Last sync of one store with one peer.
#[derive(Clone, Debug)]
pub struct StoreSyncInfo {
    pub store: StoreId,
    /// Unix ms when the sync finished.
    pub at_ms: u64,
    pub result: Result<SyncStats, String>,
}

/// What we know about one peer.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    pub id: AuthorId,
    pub addrs: Vec<SocketAddr>,
    /// A live QUIC connection to it exists right now (ours or gossip's).
    pub connected: bool,
    /// Unix ms of the last successful exchange with it.
    pub last_seen_ms: Option<u64>,
    pub syncs: Vec<StoreSyncInfo>,
}

#[derive(Default)]
pub(crate) struct PeerState {
    pub addrs: Vec<SocketAddr>,
    pub last_seen_ms: Option<u64>,
    pub syncs: HashMap<StoreId, StoreSyncInfo>,
}

/// State shared by the handle, the protocol handler and background tasks.
pub(crate) struct Inner {
    pub kernel: Arc<Kernel>,
    pub config: NetConfig,
    pub policy: Arc<dyn Policy>,
    pub blobs: Arc<dyn BlobSource>,
    pub invites: Arc<dyn InviteAuthority>,
    pub endpoint: Endpoint,
    pub lookup: MemoryLookup,
    /// Connection admission and the per-mesh gossip overlays.
    pub gate: Arc<Gate>,
    pub me: AuthorId,
    pub peers: Mutex<HashMap<AuthorId, PeerState>>,
    conns: Mutex<HashMap<AuthorId, Connection>>,
    pub topics: Topics,
    pub presence: crate::presence::Presence,
    pub announcer: Announcer,
    /// The runtime `Net::spawn` ran on, so sync methods (`add_peer`) can
    /// start tasks from any thread.
    pub runtime: tokio::runtime::Handle,
    /// Reconciliation sessions served at once: each holds its store's whole
    /// (HLC, id) index in memory (40 bytes an entry), so peers asking at
    /// once wait for a slot instead of multiplying that.
    pub reconcile_slots: tokio::sync::Semaphore,
    /// Requests served and waiting per peer (flood control).
    pub peer_slots: crate::flood::PeerSlots,
    /// In-flight counts for [`Net::stats`].
    pub(crate) gauges: crate::gauges::Gauges,
}

impl Inner {
    /// The gossip instance of the overlay on `alpn`, started (and its ALPN
    /// served) on first use, with `store` admitted through it.
    pub fn overlay(&self, alpn: &[u8], store: StoreId) -> Gossip {
        let (g, made) = self.gate.ensure_overlay(alpn, store, || {
            Gossip::builder()
                .max_message_size(self.config.gossip_max_message)
                .alpn(alpn)
                .spawn(self.endpoint.clone())
        });
        if made {
            self.endpoint.set_alpns(self.gate.alpns());
            tracing::debug!(alpn = %String::from_utf8_lossy(alpn), "gossip overlay started");
        }
        g
    }

    /// Records a peer's addresses both in our table and in the endpoint's
    /// address lookup (gossip dials by id only, so the lookup must know).
    pub fn add_peer(&self, id: AuthorId, addrs: &[SocketAddr]) {
        if id == self.me {
            return;
        }
        if let Ok(a) = endpoint_addr(&id, addrs) {
            self.lookup.add_endpoint_info(a);
        }
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        let st = peers.entry(id).or_default();
        for a in addrs {
            if !st.addrs.contains(a) {
                st.addrs.push(*a);
            }
        }
    }

    pub fn touch(&self, id: &AuthorId) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(st) = peers.get_mut(id) {
            st.last_seen_ms = Some(now_ms());
        }
    }

    pub fn known_peers(&self) -> Vec<AuthorId> {
        let peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = peers.keys().copied().collect();
        v.sort();
        v
    }

    pub(crate) fn record_sync(&self, peer: &AuthorId, store: StoreId, result: &Result<SyncStats>) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        let st = peers.entry(*peer).or_default();
        let now = now_ms();
        if result.is_ok() {
            st.last_seen_ms = Some(now);
        }
        st.syncs.insert(
            store,
            StoreSyncInfo {
                store,
                at_ms: now,
                result: match result {
                    Ok(s) => Ok(s.clone()),
                    Err(e) => Err(e.to_string()),
                },
            },
        );
    }

    /// A connection to `peer` for our own ALPN, reused while it lives: one
    /// QUIC handshake per peer, not per request.
    pub async fn connection(&self, peer: &AuthorId) -> Result<Connection> {
        if let Some(c) = self
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(peer)
            && c.close_reason().is_none()
        {
            return Ok(c.clone());
        }
        let addrs = {
            let peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
            peers.get(peer).map(|p| p.addrs.clone()).unwrap_or_default()
        };
        // With no address of our own we still try by id: the lookup or an
        // existing path (the peer dialed us) may know how to reach it.
        let addr = endpoint_addr(peer, &addrs)?;
        let t = self.config.connect_timeout;
        let conn = tokio::time::timeout(t, self.endpoint.connect(addr, ALPN))
            .await
            .map_err(|_| NetError::Timeout {
                what: "connection handshake",
                ms: t.as_millis() as u64,
            })?
            .map_err(|e| NetError::Connect {
                peer: *peer,
                reason: e.to_string(),
            })?;
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(*peer, conn.clone());
        Ok(conn)
    }

    /// Forgets a cached connection after a failure, so the next request
    /// dials afresh instead of reusing a broken link.
    pub fn drop_connection(&self, peer: &AuthorId, reason: &str) {
        if let Some(c) = self
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(peer)
        {
            c.close(2u32.into(), reason.as_bytes());
        }
    }

    /// Our cached outgoing connections (open or not yet found closed).
    pub(crate) fn cached_connections(&self) -> usize {
        self.conns.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn is_connected(&self, peer: &AuthorId) -> bool {
        let ours = self
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(peer)
            .is_some_and(|c| c.close_reason().is_none());
        ours || self.topics.is_neighbor(peer)
    }

    /// Syncs one store with one peer and records the outcome for `peers()`.
    pub async fn sync_store(self: &Arc<Self>, peer: AuthorId, store: StoreId) -> Result<SyncStats> {
        let _session = self.gauges.sessions_out.hold();
        let res = sync::sync_store(self, peer, store).await;
        match &res {
            Ok(s) => {
                tracing::debug!(peer = %peer, store = %store, sent = s.sent, received = s.received, "synced")
            }
            Err(e) => {
                tracing::info!(peer = %peer, store = %store, error = %e, "sync failed");
                if !matches!(e, NetError::NotMember { .. } | NetError::Refused(_)) {
                    self.drop_connection(&peer, "sync failed");
                }
            }
        }
        self.record_sync(&peer, store, &res);
        res
    }

    /// Syncs every store with every known member peer, one at a time.
    pub async fn sync_all(self: &Arc<Self>) -> Vec<(AuthorId, StoreId, Result<SyncStats>)> {
        let mut out = Vec::new();
        for store in self.policy.stores() {
            for peer in self.known_peers() {
                if self.policy.may_sync(&store, &peer) {
                    let r = self.sync_store(peer, store).await;
                    out.push((peer, store, r));
                }
            }
        }
        out
    }
}

/// A running network layer. Dropping it without [`Net::shutdown`] aborts
/// the background tasks and the accept loop but closes nothing gracefully.
pub struct Net {
    inner: Arc<Inner>,
    tasks: Vec<JoinHandle<()>>,
}

impl Net {
    /// Binds the endpoint with the kernel identity's key, starts serving the
    /// sync ALPN and gossip, and starts the background tasks.
    pub async fn spawn(
        kernel: Arc<Kernel>,
        config: NetConfig,
        policy: Arc<dyn Policy>,
        blobs: Arc<dyn BlobSource>,
        invites: Arc<dyn InviteAuthority>,
    ) -> Result<Net> {
        let lookup = MemoryLookup::new();
        let gate = Gate::new(Arc::clone(&policy));
        let ep = endpoint::bind(
            kernel.identity().secret_bytes(),
            &config,
            lookup.clone(),
            GateHook(Arc::clone(&gate)),
        )
        .await?;
        let announcer = config.announcer.clone().unwrap_or_default();
        let inner = Arc::new(Inner {
            me: kernel.author(),
            kernel,
            policy,
            blobs,
            invites,
            endpoint: ep.clone(),
            lookup,
            gate,
            peers: Mutex::new(HashMap::new()),
            conns: Mutex::new(HashMap::new()),
            topics: Topics::default(),
            presence: Default::default(),
            announcer: announcer.clone(),
            runtime: tokio::runtime::Handle::current(),
            reconcile_slots: tokio::sync::Semaphore::new(crate::reconcile::SERVED_AT_ONCE),
            peer_slots: crate::flood::PeerSlots::new(config.peer_streams),
            gauges: Default::default(),
            config,
        });
        for (id, addrs) in inner.config.peers.clone() {
            inner.add_peer(id, &addrs);
        }
        // Every store's topic from the start, so the first broadcast of
        // each has an overlay to go to.
        if crate::admission::reconcile(&inner).await {
            gossip::rejoin_all(&inner).await;
        }
        let mut tasks = vec![tokio::spawn(accept_loop(Arc::clone(&inner)))];
        tasks.push(gossip::spawn_announcer(Arc::clone(&inner), announcer));
        tasks.push(gossip::spawn_maintenance(Arc::clone(&inner)));
        if let Some(period) = inner.config.anti_entropy {
            tasks.push(crate::anti_entropy::spawn(Arc::clone(&inner), period));
        }
        if let Some(period) = inner.config.presence_interval {
            tasks.push(crate::presence::spawn_beacons(Arc::clone(&inner), period));
        }
        tracing::info!(id = %inner.me, addrs = ?local_addrs(&inner.endpoint), "network up");
        Ok(Net { inner, tasks })
    }

    /// Our id (the node's author id, also its Iroh endpoint id).
    pub fn id(&self) -> AuthorId {
        self.inner.me
    }

    /// The socket addresses peers can dial us at.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        local_addrs(&self.inner.endpoint)
    }

    /// `(id, addrs)`: what another node needs for `add_peer`.
    pub fn addr(&self) -> (AuthorId, Vec<SocketAddr>) {
        (self.id(), self.addrs())
    }

    /// Makes a peer dialable by id (sync, gossip) and a candidate for
    /// anti-entropy. Adding again merges addresses.
    pub fn add_peer(&self, id: AuthorId, addrs: Vec<SocketAddr>) {
        self.inner.add_peer(id, &addrs);
        // Join the new member on existing topics now rather than at the
        // next maintenance tick.
        let inner = Arc::clone(&self.inner);
        self.inner
            .runtime
            .spawn(async move { gossip::rejoin_all(&inner).await });
    }

    pub async fn sync_store(&self, peer: AuthorId, store: StoreId) -> Result<SyncStats> {
        self.inner.sync_store(peer, store).await
    }

    /// What current members last told us by presence beacon about `store`
    /// (a revoked member's last word no longer counts).
    pub fn presence(&self, store: &StoreId) -> Vec<crate::PresenceInfo> {
        let period = self
            .inner
            .config
            .presence_interval
            .unwrap_or(std::time::Duration::from_secs(10));
        self.inner
            .presence
            .of(store, period)
            .into_iter()
            .filter(|p| self.inner.policy.may_sync(store, &p.author))
            .collect()
    }

    /// The stores whose logs differ between us and `peer`, found with one
    /// digests exchange for all shared stores (what anti-entropy asks
    /// first; see `anti_entropy`).
    pub async fn differing_stores(&self, peer: AuthorId) -> Result<crate::DigestRound> {
        crate::anti_entropy::differing(&self.inner, peer).await
    }

    /// Syncs every store in `Policy::stores()` with every known member.
    pub async fn sync_all(&self) -> Vec<(AuthorId, StoreId, Result<SyncStats>)> {
        self.inner.sync_all().await
    }

    /// Announces freshly committed entries on their stores' gossip topics.
    /// Non-blocking (safe from the kernel's commit thread). Only entries we
    /// authored are announced: others' entries were announced by their
    /// authors, and re-announcing would multiply gossip traffic per hop.
    pub fn announce(&self, entries: &[SignedEntry]) {
        self.inner.announcer.announce(entries);
    }

    /// Fetches a blob by blake3 hash from `peer`, verified before returning.
    pub async fn fetch_blob(&self, peer: AuthorId, hash: [u8; 32]) -> Result<Vec<u8>> {
        let r = sync::fetch_blob(&self.inner, peer, hash).await;
        if let Err(e) = &r
            && !matches!(e, NetError::BlobUnavailable { .. } | NetError::Refused(_))
        {
            self.inner.drop_connection(&peer, "blob fetch failed");
        }
        r
    }

    /// Builds an invite to `mesh_id` naming us and our dialable addresses.
    /// The caller registers `secret` with its [`InviteAuthority`].
    pub fn invite(&self, mesh_id: StoreId, secret: [u8; 32], expires_ms: u64) -> Invite {
        Invite {
            mesh_id,
            inviter: self.id(),
            addrs: self.addrs(),
            secret,
            expires_ms,
        }
    }

    /// Redeems an invite with its inviter; on success every member in the
    /// grant becomes a known peer.
    pub async fn join(&self, invite: &Invite) -> Result<JoinGrant> {
        sync::join(&self.inner, invite).await
    }

    /// Every known peer with its connection state and last sync per store.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let ids = self.inner.known_peers();
        ids.into_iter()
            .filter_map(|id| {
                let connected = self.inner.is_connected(&id);
                let peers = self.inner.peers.lock().unwrap_or_else(|p| p.into_inner());
                let st = peers.get(&id)?;
                let mut syncs: Vec<_> = st.syncs.values().cloned().collect();
                syncs.sort_by_key(|s| s.store);
                Some(PeerInfo {
                    id,
                    addrs: st.addrs.clone(),
                    connected,
                    last_seen_ms: st.last_seen_ms,
                    syncs,
                })
            })
            .collect()
    }

    /// The gossip neighbours currently up on `store`'s topic.
    pub fn gossip_neighbors(&self, store: &StoreId) -> Vec<AuthorId> {
        self.inner.topics.neighbors(store)
    }

    /// Gossip-triggered syncs (catch-ups, gap repairs) pending or running.
    pub fn pending_syncs(&self) -> usize {
        self.inner.topics.pending_syncs()
    }

    /// Live resource counts (connections, streams, sessions, topics,
    /// tasks): what `node status` shows and a soak watches for leaks.
    pub fn stats(&self) -> crate::NetStats {
        crate::NetStats::of(&self.inner)
    }

    /// Peers we hold an admitted, open connection with, and on which ALPN.
    pub fn connections(&self) -> Vec<(AuthorId, Vec<u8>)> {
        self.inner.gate.live()
    }

    /// Re-checks membership now (as a root entry committing does through
    /// [`Announcer::membership_changed`]), in order with queued
    /// announcements.
    pub fn membership_changed(&self) {
        self.inner.announcer.membership_changed();
    }

    /// Stops background tasks, closes connections and the endpoint. Takes
    /// `&self` so an owner that shares the node (the daemon) can close it
    /// gracefully; an endpoint dropped unclosed makes iroh log an error.
    pub async fn shutdown(&self) {
        for t in &self.tasks {
            t.abort();
        }
        self.inner.topics.clear();
        let conns: Vec<_> = self
            .inner
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .collect();
        for (_, c) in conns {
            c.close(0u32.into(), b"shutdown");
        }
        for (_, o) in self.inner.gate.overlays() {
            if let Err(e) = o.gossip.shutdown().await {
                tracing::debug!(error = %e, "gossip shutdown");
            }
        }
        self.inner.endpoint.close().await;
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.inner.topics.clear();
    }
}

/// Serves incoming connections: the sync ALPN, and each mesh's gossip
/// overlay (a set that changes as meshes are joined and left, which is why
/// this is not iroh's fixed-ALPN `Router`). Admission already happened in
/// the endpoint hook ([`GateHook`]).
async fn accept_loop(inner: Arc<Inner>) {
    let sync = Arc::new(SyncHandler::new(Arc::clone(&inner)));
    while let Some(incoming) = inner.endpoint.accept().await {
        let inner = Arc::clone(&inner);
        let sync = Arc::clone(&sync);
        let held = inner.gauges.incoming.hold();
        tokio::spawn(async move {
            let _held = held;
            if let Err(e) = serve_connection(&inner, &sync, incoming).await {
                tracing::debug!(error = %e, "incoming connection failed");
            }
        });
    }
}

async fn serve_connection(inner: &Inner, sync: &SyncHandler, incoming: Incoming) -> Result<()> {
    let stream = |e: &dyn std::fmt::Display| NetError::Stream(format!("accepting: {e}"));
    let mut accepting = incoming.accept().map_err(|e| stream(&e))?;
    let alpn = accepting.alpn().await.map_err(|e| stream(&e))?;
    let conn = accepting.await.map_err(|e| stream(&e))?;
    if alpn == ALPN {
        sync.accept(conn).await.map_err(|e| stream(&e))
    } else if let Some(g) = inner.gate.gossip(&alpn) {
        g.handle_connection(conn).await.map_err(|e| stream(&e))
    } else {
        // An overlay left between handshake and dispatch.
        tracing::debug!(peer = %author_of(&conn.remote_id()), "connection for an overlay we left");
        conn.close(3u32.into(), b"unknown overlay");
        Ok(())
    }
}
