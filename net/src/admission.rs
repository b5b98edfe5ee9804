//! Who may hold a connection to us, on which protocol, right now.
//!
//! Every mesh has its own gossip overlay: its own iroh-gossip instance on
//! its own ALPN, `lattice/gossip/1/` ‖ a hash of the mesh's topic key
//! ([`overlay_alpn`]). A non-member cannot derive that ALPN or the topic ids
//! inside it, and even one who learned them (a revoked member knows the
//! key) is refused at the handshake: the [`Gate`] is an endpoint hook that
//! sees every connection, ours and theirs, and admits a connection on an
//! overlay ALPN only while the peer may sync that overlay's stores. One
//! instance per mesh is what makes admission per mesh: iroh-gossip has no
//! per-topic admission, so a single shared instance would let a member of
//! mesh M2 who was revoked from M1 (and still knows M1's key) join M1's
//! topics over its M2 connection.
//!
//! The gate also remembers a weak handle of every live connection, so a
//! membership change can cut the peers it no longer admits
//! ([`Gate::cut`]): their overlay connections close (the gossip actor sees
//! them go and drops them from every topic; its re-dials are refused by
//! `before_connect`), and so do their sync-ALPN connections once they were
//! members and no longer are (a joiner that is not a member yet keeps its
//! connection: it needs it to redeem its invite). [`reconcile`] runs the
//! cut and brings topics and overlays in line with the stores we run, on
//! every membership change and every `gossip_rejoin` period.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};

use iroh::endpoint::{
    AfterHandshakeOutcome, BeforeConnectOutcome, Connection, EndpointHooks, WeakConnectionHandle,
};
use iroh::{EndpointAddr, TransportAddr};
use iroh_gossip::Gossip;
use lattice_kernel::{AuthorId, StoreId};

use crate::Policy;
use crate::endpoint::author_of;
use crate::gossip;
use crate::net::Inner;
use crate::sync::ALPN;

/// Prefix of every overlay ALPN; the rest names the mesh's overlay.
pub const OVERLAY_ALPN_PREFIX: &[u8] = b"lattice/gossip/1/";

/// The ALPN of the gossip overlay whose stores share `key`: derived one
/// way, so it names the overlay without revealing the key.
pub fn overlay_alpn(key: &[u8; 32]) -> Vec<u8> {
    let id = blake3::derive_key("lattice 2025 gossip overlay alpn", key);
    let hex = blake3::Hash::from_bytes(id).to_hex();
    [OVERLAY_ALPN_PREFIX, &hex.as_bytes()[..32]].concat()
}

/// Brings gossip in line with the current membership: cuts peers that are
/// no longer admitted (their connections close, they stop being
/// neighbours), leaves topics of stores we no longer run, shuts overlays of
/// meshes we left, and subscribes every store's topic.
///
/// Returns whether peers became known that were not: the caller re-joins
/// the topics (once, however many reasons it has to).
pub(crate) async fn reconcile(inner: &Arc<Inner>) -> bool {
    let policy = &inner.policy;
    let mut want: HashMap<Vec<u8>, Vec<StoreId>> = HashMap::new();
    let stores = policy.stores();
    for s in &stores {
        if let Some(k) = policy.topic_key(s) {
            want.entry(overlay_alpn(&k)).or_default().push(*s);
        }
    }
    inner.gate.set_stores(&want);
    // First and synchronously: nothing more goes to a revoked peer. A peer
    // cut from one overlay may still be a member of another mesh: its sync
    // connection stays then (the gate closed it already if it is in none).
    for peer in inner.gate.cut() {
        if !inner.gate.member_of_any(&peer) {
            inner.drop_connection(&peer, "no longer a member");
        }
    }
    // New members we refused while they were not members yet: dial back.
    let mut new_peers = false;
    for (peer, addrs) in inner.gate.seen_members() {
        new_peers |= !inner.known_peers().contains(&peer);
        inner.add_peer(peer, &addrs);
    }
    inner.topics.prune_neighbors(|s, p| !policy.may_sync(s, p));
    inner
        .topics
        .retain(|s, alpn| want.get(alpn).is_some_and(|v| v.contains(s)));
    for (alpn, o) in inner.gate.overlays() {
        if !want.contains_key(&alpn) {
            inner.gate.remove_overlay(&alpn);
            inner.endpoint.set_alpns(inner.gate.alpns());
            if let Err(e) = o.gossip.shutdown().await {
                tracing::debug!(error = %e, "gossip overlay shutdown");
            }
        }
    }
    for s in stores {
        if let Err(e) = gossip::ensure_topic(inner, s).await {
            tracing::debug!(store = %s, error = %e, "cannot subscribe");
        }
    }
    new_peers
}

/// One mesh's gossip overlay as the gate sees it.
#[derive(Clone)]
pub(crate) struct Overlay {
    pub gossip: Gossip,
    /// The stores replicated through it; a peer is admitted while it may
    /// sync any of them (they share one mesh, so one means all).
    pub stores: Vec<StoreId>,
}

struct Tracked {
    peer: AuthorId,
    alpn: Vec<u8>,
    conn: WeakConnectionHandle,
    /// The peer was a member of one of our stores when last checked.
    was_member: bool,
    /// When the handshake completed (local, for [`Gate::close_superseded`]).
    at: std::time::Instant,
}

/// Connection admission shared by the endpoint hooks, the accept loop and
/// the reconcile step; exists before the endpoint does.
pub(crate) struct Gate {
    policy: Arc<dyn Policy>,
    overlays: RwLock<HashMap<Vec<u8>, Overlay>>,
    conns: Mutex<Vec<Tracked>>,
    /// Where peers that dialed us came from, admitted or not (bounded).
    /// A new member usually dials a member that has not yet committed its
    /// admission and is refused; once it has, this is how that member
    /// dials back instead of waiting for the joiner's next re-join.
    seen: Mutex<HashMap<AuthorId, Vec<SocketAddr>>>,
}

/// Most peers whose dial-in addresses are remembered.
const SEEN_MAX: usize = 256;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Gate {
    pub fn new(policy: Arc<dyn Policy>) -> Arc<Gate> {
        Arc::new(Gate {
            policy,
            overlays: RwLock::default(),
            conns: Mutex::default(),
            seen: Mutex::default(),
        })
    }

    pub(crate) fn member_of_any(&self, peer: &AuthorId) -> bool {
        self.policy
            .stores()
            .iter()
            .any(|s| self.policy.may_sync(s, peer))
    }

    /// Whether `peer` may hold a connection on `alpn` now.
    pub fn admits(&self, alpn: &[u8], peer: &AuthorId) -> bool {
        if alpn == ALPN {
            // Joiners redeem invites here before they are members; every
            // request on it is checked on its own.
            return true;
        }
        let overlays = self.overlays.read().unwrap_or_else(|p| p.into_inner());
        overlays
            .get(alpn)
            .is_some_and(|o| o.stores.iter().any(|s| self.policy.may_sync(s, peer)))
    }

    /// The gossip instance serving `alpn`, for the accept loop.
    pub fn gossip(&self, alpn: &[u8]) -> Option<Gossip> {
        self.overlays
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(alpn)
            .map(|o| o.gossip.clone())
    }

    pub fn overlays(&self) -> Vec<(Vec<u8>, Overlay)> {
        let o = self.overlays.read().unwrap_or_else(|p| p.into_inner());
        o.iter().map(|(a, o)| (a.clone(), o.clone())).collect()
    }

    /// The overlay on `alpn`, made by `make` if there is none yet, with
    /// `store` among its stores; `true` if it was made now.
    pub fn ensure_overlay(
        &self,
        alpn: &[u8],
        store: StoreId,
        make: impl FnOnce() -> Gossip,
    ) -> (Gossip, bool) {
        let mut o = self.overlays.write().unwrap_or_else(|p| p.into_inner());
        let mut made = false;
        let ov = o.entry(alpn.to_vec()).or_insert_with(|| {
            made = true;
            Overlay {
                gossip: make(),
                stores: Vec::new(),
            }
        });
        if !ov.stores.contains(&store) {
            ov.stores.push(store);
        }
        (ov.gossip.clone(), made)
    }

    /// Replaces the store lists of the overlays named in `want` (ALPN →
    /// stores), so admission follows stores being added or deleted.
    pub fn set_stores(&self, want: &HashMap<Vec<u8>, Vec<StoreId>>) {
        let mut o = self.overlays.write().unwrap_or_else(|p| p.into_inner());
        for (alpn, ov) in o.iter_mut() {
            if let Some(stores) = want.get(alpn) {
                ov.stores = stores.clone();
            }
        }
    }

    pub fn remove_overlay(&self, alpn: &[u8]) -> Option<Overlay> {
        self.overlays
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(alpn)
    }

    /// The ALPNs the endpoint should accept: sync first, then every overlay.
    pub fn alpns(&self) -> Vec<Vec<u8>> {
        let mut v = vec![ALPN.to_vec()];
        let o = self.overlays.read().unwrap_or_else(|p| p.into_inner());
        let mut overlay: Vec<_> = o.keys().cloned().collect();
        overlay.sort();
        v.extend(overlay);
        v
    }

    fn saw(&self, conn: &Connection) {
        if conn.side() != iroh::endpoint::Side::Server {
            return;
        }
        let addrs: Vec<SocketAddr> = conn
            .paths()
            .iter()
            .filter_map(|p| match p.remote_addr() {
                TransportAddr::Ip(a) => Some(*a),
                _ => None,
            })
            .collect();
        if addrs.is_empty() {
            return;
        }
        let mut seen = lock(&self.seen);
        if seen.len() >= SEEN_MAX && !seen.contains_key(&author_of(&conn.remote_id())) {
            // Keep the table bounded against a flood of fresh identities.
            if let Some(k) = seen.keys().next().copied() {
                seen.remove(&k);
            }
        }
        seen.insert(author_of(&conn.remote_id()), addrs);
    }

    /// Peers that dialed us and are members now, with where they dialed
    /// from (taken out of the table: the caller makes them known peers).
    pub fn seen_members(&self) -> Vec<(AuthorId, Vec<SocketAddr>)> {
        let mut seen = lock(&self.seen);
        let members: Vec<AuthorId> = seen
            .keys()
            .filter(|p| self.member_of_any(p))
            .copied()
            .collect();
        members
            .into_iter()
            .filter_map(|p| seen.remove(&p).map(|a| (p, a)))
            .collect()
    }

    /// Admits `conn` and tracks it, under the lock [`Gate::cut`] holds: a
    /// cut that runs while a handshake completes either sees the new
    /// connection or happens before the admission check refuses it.
    fn admit_and_track(&self, conn: &Connection) -> bool {
        let peer = author_of(&conn.remote_id());
        let mut conns = lock(&self.conns);
        if !self.admits(conn.alpn(), &peer) {
            return false;
        }
        let was_member = self.member_of_any(&peer);
        conns.retain(|t| t.conn.upgrade().is_some_and(|c| c.close_reason().is_none()));
        conns.push(Tracked {
            peer,
            alpn: conn.alpn().to_vec(),
            conn: conn.weak_handle(),
            was_member,
            at: std::time::Instant::now(),
        });
        true
    }

    /// Closes gossip connections a newer one to the same peer on the same
    /// overlay has superseded for at least `grace`; returns how many.
    ///
    /// iroh-gossip 0.101 moves to a peer's newest connection but never ends
    /// the old one's loop (its send loop ignores its closed channel and the
    /// receive loop waits for the connection to close; upstream
    /// n0-computer/iroh-gossip#145), and keep-alives hold it open: every
    /// HyParView disconnect-and-redial between two live nodes leaked one
    /// connection and its tasks (the soak run found it, docs/reliability.md).
    /// After `grace` both sides send on the newest only, so closing the
    /// older ones loses nothing; iroh-gossip treats the close of a
    /// non-active connection as routine.
    pub fn close_superseded(&self, grace: std::time::Duration) -> usize {
        let now = std::time::Instant::now();
        let conns = lock(&self.conns);
        let live: Vec<(&Tracked, Connection)> = conns
            .iter()
            .filter(|t| t.alpn != ALPN)
            .filter_map(|t| {
                let c = t.conn.upgrade()?;
                c.close_reason().is_none().then_some((t, c))
            })
            .collect();
        let mut closed = 0;
        for (t, c) in &live {
            let newer = live.iter().any(|(o, _)| {
                o.peer == t.peer
                    && o.alpn == t.alpn
                    && o.at > t.at
                    && now.duration_since(o.at) >= grace
            });
            if newer {
                tracing::debug!(peer = %t.peer, "closing a superseded gossip connection");
                c.close(0u32.into(), b"superseded");
                closed += 1;
            }
        }
        closed
    }

    /// Closes every live connection the current membership no longer
    /// admits; returns the peers cut. Synchronous, so the caller can do it
    /// before it sends anything else.
    pub fn cut(&self) -> Vec<AuthorId> {
        let mut member: HashMap<AuthorId, bool> = HashMap::new();
        let mut cut = Vec::new();
        let mut conns = lock(&self.conns);
        conns.retain_mut(|t| {
            let Some(c) = t.conn.upgrade().filter(|c| c.close_reason().is_none()) else {
                return false;
            };
            let keep = if t.alpn == ALPN {
                let now = *member
                    .entry(t.peer)
                    .or_insert_with(|| self.member_of_any(&t.peer));
                let keep = now || !t.was_member;
                t.was_member |= now;
                keep
            } else {
                self.admits(&t.alpn, &t.peer)
            };
            if !keep {
                tracing::info!(peer = %t.peer, alpn = %String::from_utf8_lossy(&t.alpn), "closing connection: no longer a member");
                c.close(4u32.into(), b"no longer a member");
                if !cut.contains(&t.peer) {
                    cut.push(t.peer);
                }
            }
            keep
        });
        cut
    }

    /// Entries in the connection table, closed ones not yet pruned included
    /// (pruning happens on the next admission): a soak sees it stay bounded.
    pub fn tracked(&self) -> usize {
        lock(&self.conns).len()
    }

    /// Live admitted connections, for diagnostics and tests.
    pub fn live(&self) -> Vec<(AuthorId, Vec<u8>)> {
        lock(&self.conns)
            .iter()
            .filter(|t| t.conn.upgrade().is_some_and(|c| c.close_reason().is_none()))
            .map(|t| (t.peer, t.alpn.clone()))
            .collect()
    }
}

/// The endpoint hook: refuses overlay connections, in both directions, to
/// peers the gate does not admit, and tracks every connection it lets by.
#[derive(Clone)]
pub(crate) struct GateHook(pub Arc<Gate>);

impl std::fmt::Debug for GateHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GateHook")
    }
}

impl EndpointHooks for GateHook {
    async fn before_connect<'a>(
        &'a self,
        remote: &'a EndpointAddr,
        alpn: &'a [u8],
    ) -> BeforeConnectOutcome {
        let peer = author_of(&remote.id);
        if self.0.admits(alpn, &peer) {
            BeforeConnectOutcome::Accept
        } else {
            tracing::debug!(peer = %peer, "not dialing: not a member of that overlay");
            BeforeConnectOutcome::Reject
        }
    }

    async fn after_handshake<'a>(&'a self, conn: &'a Connection) -> AfterHandshakeOutcome {
        let peer = author_of(&conn.remote_id());
        self.0.saw(conn);
        if !self.0.admit_and_track(conn) {
            tracing::debug!(peer = %peer, alpn = %String::from_utf8_lossy(conn.alpn()), "connection refused: not a member of that overlay");
            return AfterHandshakeOutcome::Reject {
                error_code: 3u32.into(),
                reason: b"not a member".to_vec(),
            };
        }
        AfterHandshakeOutcome::accept()
    }
}
