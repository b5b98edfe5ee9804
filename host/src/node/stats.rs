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
    /// The network layer's figures (all zero when it is not running).
    #[serde(flatten)]
    pub net: lattice_net::NetStats,
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
            s.online = true;
            s.net = n.net.stats();
        }
        Ok(s)
    }
}
