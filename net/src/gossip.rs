//! Gossip: one iroh-gossip topic per store, carrying small announcements of
//! new entries.
//!
//! Gossip is the fast path, sync the correct one. An announcement carries
//! the entry itself only when it fits under the configured message size
//! (oversize broadcasts are dropped silently upstream); otherwise, or when
//! the entry cannot commit yet (its deps are missing), the receiver runs a
//! targeted, debounced sync with the neighbour that delivered it. Gossip
//! never replays missed messages, so anti-entropy covers everything else.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use iroh_gossip::TopicId;
use iroh_gossip::api::{Event, GossipReceiver, GossipSender};
use lattice_kernel::{AuthorId, EntryId, Outcome, SignedEntry, StoreId};
use n0_future::StreamExt;
use prost::Message;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;

use crate::endpoint::{author_of, endpoint_id};
use crate::error::{NetError, Result};
use crate::net::Inner;
use crate::pb;

/// The gossip topic of a store: blake3("lattice/store/" ‖ store id), so
/// topics of different stores never collide and carry no other meaning.
pub fn topic_id(store: &StoreId) -> TopicId {
    let mut h = blake3::Hasher::new();
    h.update(b"lattice/store/");
    h.update(&store.0);
    TopicId::from_bytes(*h.finalize().as_bytes())
}

/// A cheap, clonable, non-blocking handle for announcing committed entries.
///
/// It exists before the network does: the kernel's `CommitHook` is created
/// before `Kernel::open`, and `Net::spawn` needs the kernel. Give a clone
/// to the hook (call [`Announcer::announce`] from `committed`) and another
/// to [`crate::NetConfig::announcer`]; entries announced before the network
/// is up wait in the queue. One `Net` consumes one announcer.
#[derive(Clone)]
pub struct Announcer {
    tx: UnboundedSender<Vec<SignedEntry>>,
    rx: Arc<Mutex<Option<UnboundedReceiver<Vec<SignedEntry>>>>>,
}

impl Default for Announcer {
    fn default() -> Self {
        let (tx, rx) = unbounded_channel();
        Announcer {
            tx,
            rx: Arc::new(Mutex::new(Some(rx))),
        }
    }
}

impl std::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Announcer")
    }
}

impl Announcer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues entries for announcement; never blocks, safe on any thread.
    pub fn announce(&self, entries: &[SignedEntry]) {
        if !entries.is_empty() {
            let _ = self.tx.send(entries.to_vec());
        }
    }
}

struct TopicState {
    sender: GossipSender,
    neighbors: Arc<Mutex<HashSet<AuthorId>>>,
    task: JoinHandle<()>,
}

/// Subscribed topics and the debounce table of gossip-triggered syncs.
#[derive(Default)]
pub(crate) struct Topics {
    map: Mutex<HashMap<StoreId, TopicState>>,
    /// (peer, store) → "another sync was requested while one ran".
    syncing: Mutex<HashMap<(AuthorId, StoreId), bool>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Topics {
    pub fn is_neighbor(&self, peer: &AuthorId) -> bool {
        lock(&self.map)
            .values()
            .any(|t| lock(&t.neighbors).contains(peer))
    }

    pub fn neighbors(&self, store: &StoreId) -> Vec<AuthorId> {
        let mut v: Vec<_> = lock(&self.map)
            .get(store)
            .map(|t| lock(&t.neighbors).iter().copied().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    pub fn clear(&self) {
        for (_, t) in lock(&self.map).drain() {
            t.task.abort();
        }
    }

    fn live_sender(&self, store: &StoreId) -> Option<GossipSender> {
        let mut map = lock(&self.map);
        match map.get(store) {
            Some(t) if !t.task.is_finished() => Some(t.sender.clone()),
            Some(_) => {
                map.remove(store);
                None
            }
            None => None,
        }
    }
}

/// Members of `store` we know how to reach, as gossip bootstrap ids.
fn member_ids(inner: &Inner, store: &StoreId, skip: &[AuthorId]) -> Vec<iroh::EndpointId> {
    inner
        .known_peers()
        .into_iter()
        .filter(|p| inner.policy.may_sync(store, p) && !skip.contains(p))
        .filter_map(|p| endpoint_id(&p).ok())
        .collect()
}

/// The sender of `store`'s topic, subscribing (and starting its receive
/// loop) on first use or after the previous subscription died.
pub(crate) async fn ensure_topic(inner: &Arc<Inner>, store: StoreId) -> Result<GossipSender> {
    if let Some(s) = inner.topics.live_sender(&store) {
        return Ok(s);
    }
    let bootstrap = member_ids(inner, &store, &[]);
    let topic = inner
        .gossip
        .subscribe(topic_id(&store), bootstrap)
        .await
        .map_err(|e| NetError::Stream(format!("gossip subscribe: {e}")))?;
    let (sender, receiver) = topic.split();
    let neighbors = Arc::new(Mutex::new(HashSet::new()));
    let mut map = lock(&inner.topics.map);
    if let Some(t) = map.get(&store)
        && !t.task.is_finished()
    {
        // Another task subscribed meanwhile; keep theirs.
        return Ok(t.sender.clone());
    }
    let task = tokio::spawn(receive_loop(
        Arc::clone(inner),
        store,
        receiver,
        Arc::clone(&neighbors),
    ));
    map.insert(
        store,
        TopicState {
            sender: sender.clone(),
            neighbors,
            task,
        },
    );
    tracing::debug!(store = %store, "subscribed to store topic");
    Ok(sender)
}

async fn receive_loop(
    inner: Arc<Inner>,
    store: StoreId,
    mut receiver: GossipReceiver,
    neighbors: Arc<Mutex<HashSet<AuthorId>>>,
) {
    while let Some(ev) = receiver.next().await {
        match ev {
            Ok(Event::Received(msg)) => {
                let from = author_of(&msg.delivered_from);
                handle_announce(&inner, store, &msg.content, from).await;
            }
            Ok(Event::NeighborUp(id)) => {
                let a = author_of(&id);
                lock(&neighbors).insert(a);
                inner.touch(&a);
                tracing::debug!(store = %store, peer = %a, "gossip neighbour up");
            }
            Ok(Event::NeighborDown(id)) => {
                lock(&neighbors).remove(&author_of(&id));
            }
            Ok(Event::Lagged) => {
                // We dropped announcements: repair from every neighbour.
                tracing::info!(store = %store, "gossip receiver lagged; syncing with neighbours");
                let peers: Vec<_> = lock(&neighbors).iter().copied().collect();
                for p in peers {
                    request_sync(&inner, p, store);
                }
            }
            Err(e) => {
                tracing::warn!(store = %store, error = %e, "gossip topic closed");
                break;
            }
        }
    }
}

async fn handle_announce(inner: &Arc<Inner>, store: StoreId, content: &[u8], from: AuthorId) {
    let a = match pb::Announce::decode(content) {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!(peer = %from, error = %e, "undecodable announcement");
            return;
        }
    };
    if a.store_id != store.0 {
        tracing::debug!(peer = %from, "announcement for another store on this topic");
        return;
    }
    let Some(id) = EntryId::from_slice(&a.entry_id) else {
        return;
    };
    if !a.entry.is_empty() {
        if crate::sync::check_store(&a.entry, &store).is_err() {
            tracing::debug!(peer = %from, "announced entry is malformed or of another store");
            return;
        }
        let kernel = Arc::clone(&inner.kernel);
        let wire = a.entry;
        let r = tokio::task::spawn_blocking(move || kernel.ingest(&[wire])).await;
        match r {
            Ok(Ok(report)) => match report.outcomes.first() {
                Some(Outcome::Committed | Outcome::Duplicate) => {}
                Some(Outcome::Waiting { missing }) => {
                    tracing::debug!(entry = %id, missing = %missing, "gossiped entry has a gap; syncing");
                    request_sync(inner, from, store);
                }
                Some(Outcome::Rejected(e)) => {
                    tracing::debug!(entry = %id, error = %e, "gossiped entry rejected");
                }
                None => {}
            },
            Ok(Err(e)) => tracing::warn!(error = %e, "ingest of gossiped entry failed"),
            Err(e) => tracing::warn!(error = %e, "ingest task failed"),
        }
        return;
    }
    let kernel = Arc::clone(&inner.kernel);
    let known = tokio::task::spawn_blocking(move || kernel.contains(&id)).await;
    if !matches!(known, Ok(Ok(true))) {
        request_sync(inner, from, store);
    }
}

/// Runs a sync of `store` with `peer` after the debounce delay, unless one
/// is already pending or running, in which case that one runs once more.
pub(crate) fn request_sync(inner: &Arc<Inner>, peer: AuthorId, store: StoreId) {
    if peer == inner.me || !inner.policy.may_sync(&store, &peer) {
        return;
    }
    let key = (peer, store);
    {
        let mut m = lock(&inner.topics.syncing);
        if let Some(again) = m.get_mut(&key) {
            *again = true;
            return;
        }
        m.insert(key, false);
    }
    let inner = Arc::clone(inner);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(inner.config.sync_debounce).await;
            if let Some(again) = lock(&inner.topics.syncing).get_mut(&key) {
                *again = false;
            }
            let _ = inner.sync_store(peer, store).await;
            let mut m = lock(&inner.topics.syncing);
            match m.get_mut(&key) {
                Some(again) if *again => continue,
                _ => {
                    m.remove(&key);
                    break;
                }
            }
        }
    });
}

/// Most entries of one store announced one by one from a single burst;
/// beyond this only the newest is announced and receivers fetch the rest by
/// sync (they see a gap), instead of flooding the topic entry by entry.
const BURST_ANNOUNCE: usize = 16;

/// Broadcasts our own committed entries on their stores' topics.
pub(crate) fn spawn_announcer(inner: Arc<Inner>, announcer: Announcer) -> JoinHandle<()> {
    let rx = lock(&announcer.rx).take();
    tokio::spawn(async move {
        let Some(mut rx) = rx else {
            tracing::error!("this announcer was already consumed by another Net; gossip is off");
            return;
        };
        while let Some(first) = rx.recv().await {
            // Take the whole queued burst, ours only, grouped by store.
            let mut by_store: HashMap<StoreId, Vec<SignedEntry>> = HashMap::new();
            let mut add = |entries: Vec<SignedEntry>| {
                for e in entries {
                    if e.author == inner.me {
                        by_store.entry(e.store).or_default().push(e);
                    }
                }
            };
            add(first);
            while let Ok(more) = rx.try_recv() {
                add(more);
            }
            for (_, mut entries) in by_store {
                if entries.len() > BURST_ANNOUNCE {
                    entries.sort_by_key(|e| e.seq);
                    entries.drain(..entries.len() - 1);
                }
                for e in entries {
                    if let Err(err) = announce_one(&inner, &e).await {
                        tracing::debug!(entry = %e.id, error = %err, "announcement failed");
                    }
                }
            }
        }
    })
}

async fn announce_one(inner: &Arc<Inner>, e: &SignedEntry) -> Result<()> {
    let sender = ensure_topic(inner, e.store).await?;
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| NetError::Protocol(format!("random: {e}")))?;
    let mut a = pb::Announce {
        store_id: e.store.0.to_vec(),
        entry_id: e.id.0.to_vec(),
        author: e.author.0.to_vec(),
        seq: e.seq,
        nonce: u64::from_le_bytes(nonce),
        entry: Vec::new(),
    };
    let wire = e.to_wire();
    // Field tag + length varint overhead is at most 6 bytes.
    if a.encoded_len() + wire.len() + 6 <= inner.config.gossip_max_message {
        a.entry = wire;
    }
    sender
        .broadcast(Bytes::from(a.encode_to_vec()))
        .await
        .map_err(|e| NetError::Stream(format!("gossip broadcast: {e}")))
}

/// Admits gossip connections from members of at least one of our stores.
///
/// iroh-gossip has no per-topic admission and topic ids are derivable from
/// store ids, so without this gate any endpoint could join a topic and
/// receive the announced entries. Residual risk: a member of one store who
/// learns another store's id can still join that store's topic.
#[derive(Clone)]
pub(crate) struct GatedGossip {
    pub gossip: iroh_gossip::Gossip,
    pub inner: std::sync::Weak<Inner>,
}

impl std::fmt::Debug for GatedGossip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatedGossip")
    }
}

impl iroh::protocol::ProtocolHandler for GatedGossip {
    async fn accept(
        &self,
        conn: iroh::endpoint::Connection,
    ) -> std::result::Result<(), iroh::protocol::AcceptError> {
        let peer = author_of(&conn.remote_id());
        let member = self.inner.upgrade().is_some_and(|inner| {
            inner
                .policy
                .stores()
                .iter()
                .any(|s| inner.policy.may_sync(s, &peer))
        });
        if !member {
            tracing::warn!(peer = %peer, "gossip connection refused: not a member of any store");
            conn.close(3u32.into(), b"not a member");
            return Ok(());
        }
        iroh::protocol::ProtocolHandler::accept(&self.gossip, conn).await
    }

    async fn shutdown(&self) {
        iroh::protocol::ProtocolHandler::shutdown(&self.gossip).await
    }
}

/// Keeps a topic per replicated store and re-dials members missing from its
/// neighbour set: after a partition longer than the QUIC idle timeout the
/// overlay does not re-form by itself.
pub(crate) fn spawn_maintenance(inner: Arc<Inner>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(inner.config.gossip_rejoin);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            rejoin_all(&inner).await;
        }
    })
}

pub(crate) async fn rejoin_all(inner: &Arc<Inner>) {
    for store in inner.policy.stores() {
        let sender = match ensure_topic(inner, store).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(store = %store, error = %e, "cannot subscribe");
                continue;
            }
        };
        let present = inner.topics.neighbors(&store);
        let missing = member_ids(inner, &store, &present);
        if !missing.is_empty()
            && let Err(e) = sender.join_peers(missing).await
        {
            tracing::debug!(store = %store, error = %e, "join_peers failed");
        }
    }
}
