//! The engine's counters and gauges, as [`super::Engine::stats`] reports
//! them: per protocol (summed over its routes) and per route.

use crate::protocol::Protocol;
use serde::{Deserialize, Serialize};

/// Counters for one protocol (summed over all its routes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolStats {
    /// Open connections now.
    pub connections: u64,
    /// Live rooms/sessions now (0 for chat and presence).
    pub rooms: u64,
    /// Online users now (presence only, 0 elsewhere).
    pub users: u64,
    /// Messages received since start.
    pub messages_in: u64,
    /// Messages sent since start (one per recipient).
    pub messages_out: u64,
    /// Bytes received since start.
    pub bytes_in: u64,
    /// Bytes sent since start (per recipient).
    pub bytes_out: u64,
    /// Error messages sent since start.
    pub errors_sent: u64,
    /// Messages refused by the rate limiter since start.
    pub rate_limited: u64,
}

/// One route's gauges now: for a presence route, what its periodic
/// `stats: N users, M connections` log line reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteStats {
    /// The route's path.
    pub path: String,
    /// The protocol it speaks.
    pub protocol: Protocol,
    /// Open connections.
    pub connections: u64,
    /// Online users (presence only, 0 elsewhere).
    pub users: u64,
}

/// Counters for every protocol, indexed by [`Protocol::index`], and
/// gauges for every route.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Per-protocol counters.
    pub per_protocol: [ProtocolStats; 5],
    /// Every route used so far, in the order of its first connection.
    pub routes: Vec<RouteStats>,
    /// Cluster mode's state, in cluster mode.
    pub cluster: Option<super::ClusterStats>,
}

impl Stats {
    /// The counters of one protocol.
    pub fn of(&self, protocol: Protocol) -> &ProtocolStats {
        &self.per_protocol[protocol.index()]
    }
}
