//! Live counts of the network layer's resources, for `node status`'s
//! runtime section and the soak run (`scripts/soak.sh`): a leak of
//! connections, streams, sessions or tasks shows as a number that keeps
//! growing under steady traffic. Counting happens where a resource is
//! accepted or opened, with an RAII guard, so every exit path (error,
//! timeout, a task aborted mid-await) gives the count back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::net::Inner;

/// In-flight counters, incremented by [`Held`] guards.
#[derive(Default)]
pub(crate) struct Gauges {
    /// Incoming connections being served (ours and gossip's ALPNs).
    pub incoming: Counter,
    /// Incoming request streams being served (sync, reconcile, digests,
    /// blob, join).
    pub streams_in: Counter,
    /// Sync or reconcile sessions we started that have not finished.
    pub sessions_out: Counter,
}

/// One in-flight count, shareable with spawned tasks.
#[derive(Default, Clone)]
pub(crate) struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Counts one more until the returned guard drops.
    pub fn hold(&self) -> Held {
        self.0.fetch_add(1, Ordering::Relaxed);
        Held(Arc::clone(&self.0))
    }

    pub fn get(&self) -> u32 {
        u32::try_from(self.0.load(Ordering::Relaxed)).unwrap_or(u32::MAX)
    }
}

/// Gives its count back when dropped.
pub(crate) struct Held(Arc<AtomicU64>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A snapshot of the network layer's live resources (see [`crate::Net::stats`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct NetStats {
    /// Admitted QUIC connections open now, both directions, all ALPNs.
    pub connections: u32,
    /// Connections tracked by the admission gate, open or not yet pruned.
    pub tracked_connections: u32,
    /// Our cached outgoing sync connections.
    pub cached_connections: u32,
    /// Incoming connections being served.
    pub incoming: u32,
    /// Incoming request streams being served.
    pub streams_in: u32,
    /// Sync/reconcile sessions we started, in flight.
    pub sessions_out: u32,
    /// Gossip-triggered syncs pending or running.
    pub pending_syncs: u32,
    /// Gossip topics subscribed (one per gossiped store).
    pub gossip_topics: u32,
    /// Gossip overlays running (one per mesh).
    pub gossip_overlays: u32,
    /// Gossip neighbours summed over topics.
    pub gossip_neighbors: u32,
    /// Peers in the peer table.
    pub known_peers: u32,
    /// Tasks alive on the network's tokio runtime.
    pub tasks: u32,
}

/// A count as the status reports it: saturating, since a gauge of live
/// things never nears 2^32 unless something is badly wrong anyway.
fn c(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl NetStats {
    pub(crate) fn of(inner: &Inner) -> NetStats {
        let g = &inner.gauges;
        let (topics, neighbors) = inner.topics.counts();
        NetStats {
            connections: c(inner.gate.live().len()),
            tracked_connections: c(inner.gate.tracked()),
            cached_connections: c(inner.cached_connections()),
            incoming: g.incoming.get(),
            streams_in: g.streams_in.get(),
            sessions_out: g.sessions_out.get(),
            pending_syncs: c(inner.topics.pending_syncs()),
            gossip_topics: c(topics),
            gossip_overlays: c(inner.gate.overlays().len()),
            gossip_neighbors: c(neighbors),
            known_peers: c(inner.known_peers().len()),
            tasks: c(inner.runtime.metrics().num_alive_tasks()),
        }
    }
}
