//! The node's runtime figures: live resources of every layer in one
//! struct, for `node status` (and `--json`) and the soak run, which watches
//! them stay flat under hours of traffic. Each layer counts its own
//! (kernel: orphans; net: connections, streams, sessions, topics, tasks;
//! runtime: plugin instance slots); the node only gathers them.

use serde::{Deserialize, Serialize};

use super::{Node, NodeError};

/// Live resource counts of a node. All gauges, not totals: under steady
/// traffic each should hover, and one that only grows is a leak.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(default)]
pub struct RuntimeStats {
    /// The network is running in this process (a daemon).
    pub online: bool,
    /// Orphan records held by the kernel (entries waiting on a missing id).
    pub orphans: u32,
    /// Admitted QUIC connections open, both directions, all ALPNs.
    pub connections: u32,
    /// Connection-table entries (open, or closed and not yet pruned).
    pub tracked_connections: u32,
    /// Our cached outgoing sync connections.
    pub cached_connections: u32,
    /// Incoming connections being served.
    pub incoming: u32,
    /// Incoming request streams (sync, reconcile, digests, blob, join) in flight.
    pub streams_in: u32,
    /// Sync or reconcile sessions this node started, in flight.
    pub sessions_out: u32,
    /// Gossip-triggered syncs pending or running.
    pub pending_syncs: u32,
    pub gossip_topics: u32,
    pub gossip_overlays: u32,
    /// Gossip neighbours summed over topics.
    pub gossip_neighbors: u32,
    pub known_peers: u32,
    /// Tasks alive on the network's async runtime.
    pub tasks: u32,
    /// Plugin instance slots taken now, of `plugin_slots`.
    pub plugin_slots_used: u32,
    pub plugin_slots: u32,
    /// Compiled plugins alive (one per blob hash in use).
    pub plugins_loaded: u32,
}

impl Node {
    /// Gathers every layer's live counts. Without a running network the
    /// network figures are zero and `online` is false.
    pub fn runtime_stats(&self) -> Result<RuntimeStats, NodeError> {
        let orphans = self.kernel.orphan_count()?;
        let runtime = self.registry.runtime();
        let (plugin_slots_used, plugin_slots) = runtime.slot_usage();
        let mut s = RuntimeStats {
            orphans: u32::try_from(orphans).unwrap_or(u32::MAX),
            plugin_slots_used,
            plugin_slots,
            plugins_loaded: u32::try_from(runtime.plugins_alive()).unwrap_or(u32::MAX),
            ..RuntimeStats::default()
        };
        if let Ok(n) = self.network() {
            let ns = n.net.stats();
            s.online = true;
            s.connections = ns.connections;
            s.tracked_connections = ns.tracked_connections;
            s.cached_connections = ns.cached_connections;
            s.incoming = ns.incoming;
            s.streams_in = ns.streams_in;
            s.sessions_out = ns.sessions_out;
            s.pending_syncs = ns.pending_syncs;
            s.gossip_topics = ns.gossip_topics;
            s.gossip_overlays = ns.gossip_overlays;
            s.gossip_neighbors = ns.gossip_neighbors;
            s.known_peers = ns.known_peers;
            s.tasks = ns.tasks;
        }
        Ok(s)
    }
}
