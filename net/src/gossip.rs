//! Gossip: one topic per store, inside its mesh's overlay (see
//! [`crate::admission`]), carrying small announcements of new entries.
//!
//! Gossip is the fast path, sync the correct one. An announcement carries
//! the entry itself only when it fits under the configured message size
//! (oversize broadcasts are dropped silently upstream); otherwise, or when
//! the entry cannot commit yet (its deps are missing), the receiver runs a
//! targeted, debounced sync with the neighbour that delivered it. Gossip
//! never replays missed messages, so a neighbour coming up on a topic
//! triggers a catch-up sync of that store with it (a broadcast made before
//! any neighbour was up is not lost), and anti-entropy covers the rest.
//!
//! Topics are subscribed when the network starts and on every membership
//! change (a root entry committed: stores appear, members come and go), not
//! lazily on the first broadcast.

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

use crate::admission::overlay_alpn;
use crate::endpoint::{author_of, endpoint_id};
use crate::error::{NetError, Result};
use crate::inbound::Inbound;
use crate::net::Inner;
use crate::pb;

/// The gossip topic of `store`, keyed by its mesh's topic key: a
/// non-member, who lacks the key, cannot derive it from the store id.
pub fn topic_id(key: &[u8; 32], store: &StoreId) -> TopicId {
    let k = blake3::derive_key("lattice 2025 gossip topic", key);
    TopicId::from_bytes(*blake3::keyed_hash(&k, &store.0).as_bytes())
}

enum Note {
    Entries(Vec<SignedEntry>),
    Membership,
}

/// A cheap, clonable, non-blocking handle for announcing committed entries
/// and membership changes.
///
/// It exists before the network does: the kernel's `CommitHook` is created
/// before `Kernel::open`, and `Net::spawn` needs the kernel. Give a clone
/// to the hook (call [`Announcer::announce`] from `committed`) and another
/// to [`crate::NetConfig::announcer`]; notes sent before the network is up
/// wait in the queue. One `Net` consumes one announcer. Notes are handled
/// in order, so entries committed after a revocation are never sent to the
/// revoked peer by this node.
#[derive(Clone)]
pub struct Announcer {
    tx: UnboundedSender<Note>,
    rx: Arc<Mutex<Option<UnboundedReceiver<Note>>>>,
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
            let _ = self.tx.send(Note::Entries(entries.to_vec()));
        }
    }

    /// Says membership or the set of stores may have changed (a root entry
    /// committed): the network re-checks every connection and neighbour,
    /// cuts peers that are no longer members and subscribes new stores'
    /// topics before it announces anything queued after this call.
    pub fn membership_changed(&self) {
        let _ = self.tx.send(Note::Membership);
    }
}

struct TopicState {
    sender: GossipSender,
    /// The overlay (ALPN) the topic lives in.
    alpn: Vec<u8>,
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

    /// (topics subscribed, neighbours summed over them).
    pub fn counts(&self) -> (usize, usize) {
        let map = lock(&self.map);
        let neighbors = map.values().map(|t| lock(&t.neighbors).len()).sum();
        (map.len(), neighbors)
    }

    /// Gossip-triggered syncs pending or running.
    pub fn pending_syncs(&self) -> usize {
        lock(&self.syncing).len()
    }

    /// The sender of a live subscription of `store`'s topic.
    pub(crate) fn sender(&self, store: &StoreId) -> Option<GossipSender> {
        self.live_sender(store)
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

    /// Leaves every topic `keep` rejects (dropping its handles is what
    /// makes iroh-gossip quit the topic).
    pub(crate) fn retain(&self, mut keep: impl FnMut(&StoreId, &[u8]) -> bool) {
        lock(&self.map).retain(|s, t| {
            let k = keep(s, &t.alpn);
            if !k {
                t.task.abort();
                tracing::debug!(store = %s, "left store topic");
            }
            k
        });
    }

    /// Forgets `peer` as a neighbour of every topic `gone` says it lost.
    pub(crate) fn prune_neighbors(&self, mut gone: impl FnMut(&StoreId, &AuthorId) -> bool) {
        for (s, t) in lock(&self.map).iter() {
            lock(&t.neighbors).retain(|p| !gone(s, p));
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
/// loop, and the mesh's overlay if needed) on first use or after the
/// previous subscription died.
pub(crate) async fn ensure_topic(inner: &Arc<Inner>, store: StoreId) -> Result<GossipSender> {
    if let Some(s) = inner.topics.live_sender(&store) {
        return Ok(s);
    }
    if !inner.config.gossip {
        return Err(NetError::GossipOff);
    }
    let key = inner
        .policy
        .topic_key(&store)
        .ok_or(NetError::NoTopicKey { store })?;
    let alpn = overlay_alpn(&key);
    let gossip = inner.overlay(&alpn, store);
    let bootstrap = member_ids(inner, &store, &[]);
    let topic = gossip
        .subscribe(topic_id(&key, &store), bootstrap)
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
            alpn,
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
                // The gate admitted `from`; this catches a revocation that
                // committed since, before the cut closed its connection.
                if !inner.policy.may_sync(&store, &from) {
                    tracing::debug!(peer = %from, store = %store, "announcement from a non-member dropped");
                    continue;
                }
                match crate::inbound::parse(msg.content.as_ref(), &store) {
                    Ok(Inbound::Announce { id, entry }) => {
                        handle_announce(&inner, store, id, entry, from).await
                    }
                    Ok(Inbound::Presence(b)) => crate::presence::receive(&inner, &store, b),
                    Err(e) => tracing::debug!(peer = %from, error = %e, "gossip message dropped"),
                }
            }
            Ok(Event::NeighborUp(id)) => {
                let a = author_of(&id);
                if !inner.policy.may_sync(&store, &a) {
                    continue;
                }
                lock(&neighbors).insert(a);
                inner.touch(&a);
                tracing::debug!(store = %store, peer = %a, "gossip neighbour up; catching up");
                // Whatever was broadcast before this link existed (a new
                // member's first post, entries made while apart) is not
                // replayed by gossip: fetch it now.
                request_sync(&inner, a, store);
                // And say we are here, so presence shows without waiting a period.
                if inner.policy.presence(&store) {
                    let inner = Arc::clone(&inner);
                    tokio::spawn(async move { crate::presence::send(&inner, &store).await });
                }
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

async fn handle_announce(
    inner: &Arc<Inner>,
    store: StoreId,
    id: EntryId,
    entry: Option<Vec<u8>>,
    from: AuthorId,
) {
    if let Some(wire) = entry {
        let kernel = Arc::clone(&inner.kernel);
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

/// Broadcasts our own committed entries on their stores' topics, and
/// applies membership changes in commit order with them.
pub(crate) fn spawn_announcer(inner: Arc<Inner>, announcer: Announcer) -> JoinHandle<()> {
    let rx = lock(&announcer.rx).take();
    tokio::spawn(async move {
        let Some(mut rx) = rx else {
            tracing::error!("this announcer was already consumed by another Net; gossip is off");
            return;
        };
        while let Some(first) = rx.recv().await {
            // Take the whole queued burst, ours only, grouped by store; a
            // membership note ends a group so it applies in order.
            let mut by_store: HashMap<StoreId, Vec<SignedEntry>> = HashMap::new();
            // Stores whose topic was checked in this burst (once each).
            let mut probed = std::collections::HashSet::new();
            let mut next = Some(first);
            while let Some(note) = next.take() {
                match note {
                    Note::Entries(entries) => {
                        for e in entries {
                            if probed.insert(e.store)
                                && inner.topics.live_sender(&e.store).is_none()
                            {
                                // A store opened without a root entry (its
                                // plugin blob arrived later): join it now.
                                let _ = ensure_topic(&inner, e.store).await;
                            }
                            if e.author == inner.me {
                                by_store.entry(e.store).or_default().push(e);
                            }
                        }
                    }
                    Note::Membership => {
                        flush(&inner, std::mem::take(&mut by_store)).await;
                        if crate::admission::reconcile(&inner).await {
                            rejoin_all(&inner).await;
                        }
                    }
                }
                next = rx.try_recv().ok();
            }
            flush(&inner, by_store).await;
        }
    })
}

async fn flush(inner: &Arc<Inner>, by_store: HashMap<StoreId, Vec<SignedEntry>>) {
    for (_, mut entries) in by_store {
        if entries.len() > BURST_ANNOUNCE {
            entries.sort_by_key(|e| e.seq);
            entries.drain(..entries.len() - 1);
        }
        for e in entries {
            if let Err(err) = announce_one(inner, &e).await {
                tracing::debug!(entry = %e.id, error = %err, "announcement failed");
            }
        }
    }
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
    // Tag + length varint of the entry field, then of the Gossip wrapper
    // around the announcement: at most 6 bytes each.
    if a.encoded_len() + wire.len() + 12 <= inner.config.gossip_max_message {
        a.entry = wire;
    }
    let g = pb::Gossip {
        kind: Some(pb::gossip::Kind::Announce(a)),
    };
    sender
        .broadcast(Bytes::from(g.encode_to_vec()))
        .await
        .map_err(|e| NetError::Stream(format!("gossip broadcast: {e}")))
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
            // Re-joins on every tick anyway, new peers or not.
            crate::admission::reconcile(&inner).await;
            inner.gate.close_superseded(inner.config.gossip_rejoin);
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
