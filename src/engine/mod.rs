//! The pure, IO-free engine: rooms, presence, heartbeats, signaling.
//!
//! It takes `(now, Input)` and queues [`Output`]s; it never reads a clock,
//! touches a socket or file, or uses a global RNG.

use crate::protocol::Protocol;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub mod rng;

/// A connection's engine id, assigned by the caller and never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnId(pub u64);

/// Something that happened, as the reactor tells it to the engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Input {
    /// A WebSocket connection completed its handshake on a route.
    Open {
        /// The new connection.
        conn: ConnId,
        /// The protocol the route speaks.
        protocol: Protocol,
        /// The route's path; each path is its own namespace.
        path: String,
        /// The raw query string (without `?`), possibly empty.
        query: String,
        /// The `Origin` header, if any.
        origin: Option<String>,
        /// The peer's address, for logs.
        peer: Option<String>,
    },
    /// A complete text message.
    Text {
        /// The sender.
        conn: ConnId,
        /// The message, valid UTF-8.
        text: String,
    },
    /// A complete binary message (only its length is kept).
    Binary {
        /// The sender.
        conn: ConnId,
        /// Payload length in bytes.
        len: usize,
    },
    /// A pong frame.
    Pong {
        /// The sender.
        conn: ConnId,
    },
    /// The connection is gone (close frame, reset, drop by the reactor).
    Closed {
        /// The connection.
        conn: ConnId,
    },
    /// Periodic wake-up, at least once a second: heartbeats, stats.
    Tick,
}

/// What the engine asks the reactor to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send a text frame. Broadcasts share one `Arc` among all recipients.
    Send {
        /// The recipient.
        conn: ConnId,
        /// The serialised JSON message.
        text: Arc<str>,
    },
    /// Send a WebSocket ping.
    Ping {
        /// The recipient.
        conn: ConnId,
    },
    /// Close with a close handshake. The engine has already removed the
    /// connection from every room; a later [`Input::Closed`] is a no-op.
    Close {
        /// The connection.
        conn: ConnId,
        /// The WebSocket close code (see PROTOCOLS.md).
        code: u16,
        /// A short human-readable reason.
        reason: &'static str,
    },
    /// Drop the socket at once, without a handshake (dead peer). The engine
    /// has already removed the connection from every room.
    Terminate {
        /// The connection.
        conn: ConnId,
    },
}

/// The engine's settings. Every field has a documented default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineConfig {
    /// Ping interval; a connection silent for a whole interval after a ping
    /// is terminated. Default 30,000 ms.
    pub heartbeat_interval_ms: u64,
    /// How often the presence protocol logs `stats: N users, M connections`.
    /// Default 30,000 ms.
    pub presence_stats_interval_ms: u64,
    /// Sustained messages per second allowed per connection; 0 disables
    /// rate limiting. Default 200.
    pub rate_limit_per_sec: u32,
    /// Burst size of the rate limiter (token bucket capacity). Default 400.
    pub rate_limit_burst: u32,
    /// A connection still exceeding the rate limit after this long is closed
    /// with 1008. Default 10,000 ms.
    pub rate_limit_close_after_ms: u64,
    /// Rooms one connection may be in at once (signal, stream). Default 32.
    pub max_rooms_per_conn: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            heartbeat_interval_ms: 30_000,
            presence_stats_interval_ms: 30_000,
            rate_limit_per_sec: 200,
            rate_limit_burst: 400,
            rate_limit_close_after_ms: 10_000,
            max_rooms_per_conn: 32,
        }
    }
}

/// Counters for one protocol (summed over all its routes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
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

/// Counters for every protocol, indexed by [`Protocol::index`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Per-protocol counters.
    pub per_protocol: [ProtocolStats; 5],
}

impl Stats {
    /// The counters of one protocol.
    pub fn of(&self, protocol: Protocol) -> &ProtocolStats {
        &self.per_protocol[protocol.index()]
    }
}

/// The engine. See the crate docs for the run loop.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    seed: u64,
    rng: rng::Rng,
    outputs: Vec<Output>,
    stats: Stats,
}

impl Engine {
    /// A fresh engine; all randomness derives from `seed`.
    pub fn new(config: EngineConfig, seed: u64) -> Self {
        Engine {
            config,
            seed,
            rng: rng::Rng::new(seed),
            outputs: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// The configuration this engine was built with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The seed this engine was built with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Feeds one input at wall-clock time `now_ms` (epoch milliseconds,
    /// never decreasing). Its outputs are queued for [`Self::drain_outputs`].
    pub fn handle(&mut self, now_ms: u64, input: Input) {
        // Placeholder until the protocol state machines land.
        let _ = (now_ms, input, &mut self.rng);
    }

    /// Takes the queued outputs, in order. Call after every [`Self::handle`].
    #[must_use = "outputs are the engine's only effect"]
    pub fn drain_outputs(&mut self) -> std::vec::Drain<'_, Output> {
        self.outputs.drain(..)
    }

    /// The current counters.
    pub fn stats(&self) -> Stats {
        self.stats.clone()
    }
}
