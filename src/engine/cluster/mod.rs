//! Cluster mode, the engine's part (CLUSTER.md): many roomd processes on
//! one Redis behave as one server.
//!
//! **Replicated rooms.** Every node holds the whole cluster's room state
//! (every route's rooms, members, online users) as a replica. A node does
//! not change it directly: each client operation that touches it (an
//! open, a text message, a close, a refreshed identity) becomes an
//! [`Event`], published through one Redis script that numbers it
//! (`INCR`) and publishes it on one channel. Redis runs one script at a
//! time and delivers a channel's messages in publish order, so every node
//! receives the same events in the same order and applies them to the
//! same state with the same code: the replicas stay equal, each room has
//! one order (CLUSTER.md "One order per room"), and the messages clients
//! see are exactly those of one server. Applying an event yields the
//! outputs one engine would produce; each node keeps those for its own
//! connections and drops the rest, which the other nodes send.
//!
//! Connection ids in the replica are cluster-wide: a node's number in the
//! top bits ([`global`]), the reactor's id below. Heartbeats, rate limits,
//! token expiry and everything else about a connection's socket stay on
//! its node (the engine's own connection table); only their results
//! (a close) become events.
//!
//! **The bus.** The engine speaks to Redis through [`BusCommand`]s
//! ([`super::Output::Bus`]) and hears back [`BusInput`]s
//! ([`super::Input::Bus`]), which the journal records, so a node's run
//! replays without Redis. The server's Redis adapter turns each command
//! into one script call and each reply into a [`BusReply`]; what the
//! replies mean is decided here ([`node`]).
//!
//! **Joining and resynchronising.** A node registers (a new node number),
//! subscribes, then asks for the state with a `Sync` event. If no other
//! node holds a synchronised replica, the script marks it `alone` and the
//! node goes on from the replica it has (empty when new; its own after a
//! Redis restart). Otherwise the lowest synchronised node stores its
//! replica as of that event in Redis and publishes `Stored`; the node
//! fetches it, loads it and applies the events it buffered since. A Redis
//! restart starts a new `Sync`; a node that missed events (a gap in the
//! sequence, a lost subscription) first reads them back from the log Redis keeps of the newest messages
//! and applies them as if delivered, so its clients get them too
//! (`Catchup`), and asks for the whole state only if the log does not
//! reach back so far. A node loading a snapshot first tells its clients of
//! the members that came or went by events it never saw (the replica and
//! the snapshot differ in them only after Redis lost messages or its
//! data). A node that has just synchronised reconciles its own
//! connections with the replica: a connection the replica holds but the
//! node closed meanwhile gets its `Close` published; one the node holds
//! but the replica lost is closed with 1012 so its client reconnects.
//!
//! **Liveness.** Each node refreshes its entry in a sorted set scored with
//! Redis's own clock. A node whose entry is older than
//! [`ClusterPolicy::node_timeout_ms`], or whose connections the replica
//! holds but which is absent from the set that long, is reaped: one script
//! removes it and publishes `Gone`, which closes its connections in every
//! replica, sending the leaves they owe. A node that finds itself reaped
//! (a pause past the timeout) closes its connections with 1012, forgets
//! its replica and joins again under a new number; Redis refuses its
//! publishes meanwhile (fencing), so it cannot bring back a ghost.

use super::ConnId;
use crate::protocol::Protocol;
use crate::protocol::token::Identity;
use serde::{Deserialize, Serialize};

pub(crate) mod node;
pub(crate) mod snapshot;

pub use node::ClusterStats;

/// Cluster mode is on ([`super::EngineConfig::cluster`] is `Some`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterPolicy {
    /// A node silent this long is dead (`--node-timeout`), milliseconds.
    pub node_timeout_ms: u64,
}

impl ClusterPolicy {
    /// How often the node refreshes its entry in the registry: a quarter
    /// of the timeout, between 100 ms and 1 s.
    pub fn heartbeat_ms(&self) -> u64 {
        (self.node_timeout_ms / 4).clamp(100, 1000)
    }
}

/// Bits of a cluster-wide connection id below the node number.
pub const LOCAL_BITS: u32 = 40;

/// The cluster-wide id of `node`'s connection `conn` (`conn` itself for
/// node 0, the single-process engine).
pub fn global(node: u32, conn: ConnId) -> ConnId {
    ConnId((u64::from(node) << LOCAL_BITS) | (conn.0 & local_mask()))
}

/// The node a cluster-wide connection id belongs to.
pub fn node_of(conn: ConnId) -> u32 {
    (conn.0 >> LOCAL_BITS) as u32
}

/// The reactor's id of a cluster-wide connection id.
pub fn local_of(conn: ConnId) -> ConnId {
    ConnId(conn.0 & local_mask())
}

fn local_mask() -> u64 {
    (1 << LOCAL_BITS) - 1
}

/// A change to the replicated state, as published on the bus. Every node
/// applies every event, in sequence order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "e", rename_all = "lowercase")]
pub enum Event {
    /// A connection opened (its node accepted it and knows its socket).
    Open {
        /// Its cluster-wide id.
        conn: ConnId,
        /// The route's protocol.
        protocol: Protocol,
        /// The route.
        path: String,
        /// The query string.
        query: String,
        /// Its identity, with auth on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity: Option<Identity>,
        /// The time on its node.
        now: u64,
    },
    /// A text message.
    Text {
        /// The sender.
        conn: ConnId,
        /// The message.
        text: String,
        /// The time on the sender's node.
        now: u64,
    },
    /// A fresh identity from an in-band `auth`.
    Identity {
        /// The connection.
        conn: ConnId,
        /// Its new identity.
        identity: Identity,
    },
    /// A connection is gone.
    Close {
        /// The connection.
        conn: ConnId,
        /// The time on its node.
        now: u64,
    },
    /// A node is dead or fenced: every connection of it is gone.
    Gone {
        /// The node.
        node: u32,
        /// The time on the reaping node.
        now: u64,
    },
    /// A node asks for the state. `alone` is set by Redis when no other
    /// node held a synchronised replica.
    Sync {
        /// The node asking.
        node: u32,
        /// Whether it goes on from its own replica.
        alone: bool,
    },
    /// The state for `node` as of the event `at` is stored in Redis.
    Stored {
        /// The node it is for.
        node: u32,
        /// The sequence number of its `Sync` event.
        at: u64,
    },
}

impl Event {
    /// The event as published: JSON.
    pub fn encode(&self) -> String {
        // Serialising these plain types cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What the engine asks of Redis ([`super::Output::Bus`]). Each command
/// but [`Self::Subscribe`] gets one [`BusInput::Reply`] with its id; the
/// shape of each reply is given here and is what the server's scripts
/// return.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum BusCommand {
    /// Subscribe to the event channel (once: the client subscribes again
    /// after each reconnection); confirmed by [`BusInput::Subscribed`].
    Subscribe,
    /// Join the registry under a new node number. Reply: `[node, epoch]`,
    /// the epoch being the registry's (set to `epoch` if it had none).
    Register {
        /// A fresh random epoch, used if Redis has none.
        epoch: String,
    },
    /// Refresh this node's entry. Reply: `["ok", epoch, live, stale]`, or
    /// `["restarted", epoch, live, stale]` when Redis lost its data (a
    /// different or no epoch: the node was re-added under its number), or
    /// `["fenced"]` when the node was reaped. `live` is every node with a
    /// fresh entry, `stale` every node whose entry is older than the
    /// timeout.
    Heartbeat {
        /// This node.
        node: u32,
        /// The epoch it registered in.
        epoch: String,
        /// Used as the epoch if Redis has none.
        fresh_epoch: String,
    },
    /// Publish an event. Reply: its sequence number, or the error
    /// `FENCED` when `node` is not registered. (The server may publish
    /// several at once, in order: each still gets its own reply.)
    Publish {
        /// The publishing node.
        node: u32,
        /// [`Event::encode`].
        event: String,
    },
    /// Publish this node's [`Event::Sync`]: `alone` (when no other node
    /// is synchronised) or `not_alone`. Reply: the sequence number, or
    /// `FENCED`.
    Sync {
        /// This node.
        node: u32,
        /// The event with `alone: true`.
        alone: String,
        /// The event with `alone: false`.
        not_alone: String,
    },
    /// Store a snapshot for node `to` (for a minute) and publish the
    /// [`Event::Stored`] `event`, marking `to` synchronised. Reply: the
    /// sequence number, or `FENCED`.
    Store {
        /// The storing node.
        node: u32,
        /// The node it is for.
        to: u32,
        /// The snapshot.
        snapshot: String,
        /// [`Event::encode`] of the `Stored` event.
        event: String,
    },
    /// Read the snapshot stored for node `to`. Reply: it, or nil.
    Fetch {
        /// This node.
        to: u32,
    },
    /// Read the newest messages published, from the one holding event
    /// `from` on. Reply: `[epoch, [message, ...]]` (every message kept if
    /// the log does not reach back to `from`).
    Catchup {
        /// The first event wanted.
        from: u64,
    },
    /// Remove `dead` if its entry is older than `timeout_ms` or absent,
    /// and publish `event` (its [`Event::Gone`]). Reply: the sequence
    /// number, or 0 if `dead` is alive.
    Reap {
        /// The node to remove.
        dead: u32,
        /// The node timeout.
        timeout_ms: u64,
        /// [`Event::encode`] of the `Gone` event.
        event: String,
    },
}

/// A Redis reply as the engine sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusReply {
    /// An integer.
    Int(i64),
    /// A string (bulk or simple).
    Text(String),
    /// Nil.
    Nil,
    /// An array.
    Array(Vec<BusReply>),
    /// An error reply.
    Error(String),
    /// No reply: the command was refused (queue full) or its connection
    /// lost (it may or may not have run).
    Failed,
}

impl BusReply {
    /// The integer, also from a numeric string.
    pub fn int(&self) -> Option<i64> {
        match self {
            BusReply::Int(n) => Some(*n),
            BusReply::Text(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// The string, also from an integer.
    pub fn text(&self) -> Option<String> {
        match self {
            BusReply::Text(s) => Some(s.clone()),
            BusReply::Int(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// What the bus tells the engine ([`super::Input::Bus`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "bus", rename_all = "lowercase")]
pub enum BusInput {
    /// Redis is reachable (both connections ready).
    Up,
    /// Redis was lost; commands in flight get [`BusReply::Failed`].
    Down,
    /// The event channel's subscription is confirmed (after each
    /// reconnection too).
    Subscribed,
    /// The reply to command `id`.
    Reply {
        /// The id of [`super::Output::Bus`].
        id: u64,
        /// The reply.
        reply: BusReply,
    },
    /// A message on the event channel: `SEQ JSON`, or several events
    /// published at once, `SEQ JSON` then one `JSON` per line, numbered on
    /// from `SEQ` (the server batches the publishes of one turn).
    Message {
        /// The message as published.
        payload: String,
    },
}
