//! The pure, IO-free engine: rooms, presence, heartbeats, signaling.
//!
//! It takes `(now, Input)` and queues [`Output`]s; it never reads a clock,
//! touches a socket or file, or uses a global RNG.
//!
//! Layout: this file holds the API (inputs, outputs, config, counters) and
//! the dispatch of inputs; `route` gives each path its own protocol state
//! (`scratch`, `signal`, `presence`, `chat`, `stream`, one module each);
//! `outbox` queues outputs and counts them; `timers` says when the engine
//! next wants [`Input::Timeout`] and fires what is due; `heartbeat` and
//! `rate_limit` are the per-connection deadlines and token buckets;
//! `ordered` is the insertion-ordered member map; `inspect` the read-only
//! introspection.
//!
//! Engine-side closes ([`Output::Close`] with a [`CloseReason`]): a binary
//! message gets `Binary` (1003); a connection over the rate limit for
//! `rate_limit_close_after_ms` gets `RateLimited` (1008); a presence
//! connection opened without a valid `userId` (which the reactor should
//! have refused with `400`) gets `InvalidUserId` (1008), one whose
//! `userId` is not its token's `sub` (which it should have refused with
//! `403`) `UserIdNotSubject` (1008); an open on a path already serving
//! another protocol gets `RouteMismatch` (1011). With auth on
//! ([`EngineConfig::auth`]), a connection whose token expired and that sent
//! no fresh one within the grace period gets `TokenExpired` (4401), one
//! sending a token for another `sub` `SubjectChanged` (4403); see
//! [`AuthPolicy`] for the rest of signed identities. A
//! connection silent for a whole heartbeat interval after a ping gets
//! [`Output::Terminate`]. In every case the engine has already removed
//! it, and told its peers.

use crate::protocol::close::CloseReason;
use crate::protocol::token::{Identity, Refusal};
use crate::protocol::{Protocol, RATE_LIMIT_EXCEEDED};
use auth::ConnAuth;
use core::net::SocketAddr;
use expiry::Expiries;
use heartbeat::{Heartbeats, Liveness};
use outbox::{Cx, Outbox};
use rate_limit::{TokenBucket, Verdict};
use route::Route;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

mod auth;
mod chat;
pub mod cluster;
mod expiry;
mod heartbeat;
mod inspect;
mod ordered;
mod outbox;
mod presence;
mod rate_limit;
pub mod rng;
mod route;
mod saved;
mod scratch;
mod signal;
mod stats;
mod stream;
mod timers;

mod conn_map;
pub use auth::AuthPolicy;
pub use cluster::{BusCommand, BusInput, BusReply, ClusterPolicy, ClusterStats};
pub use conn_map::{ConnMap, IdHasher};
pub use saved::{STATE_VERSION, STATE_VERSIONS};
pub use stats::{ProtocolStats, RouteStats, Stats};

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
        /// The peer's address, for logs.
        peer: Option<SocketAddr>,
        /// The verified token's identity, `None` for an anonymous
        /// connection (no auth, or `--auth optional` without a token).
        /// Ignored unless [`EngineConfig::auth`] is set. Not written when
        /// `None`, so journals without auth are as before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity: Option<Identity>,
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
    /// An in-band `{"type":"auth","token":T}` (chat also
    /// `{"type":"auth","payload":{"token":T}}`), already verified by the
    /// server layer, which hands it over instead of the text while
    /// [`EngineConfig::auth`] is set. Ignored while it is not. See
    /// [`AuthPolicy`] for what the engine does with it.
    Auth {
        /// The sender.
        conn: ConnId,
        /// The token's identity, or why it was refused ([`Refusal::Missing`]
        /// for an `auth` message without a token).
        result: Result<Identity, Refusal>,
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
    /// The time given with it has come: fires every timer due by then
    /// (heartbeat pings and deaths, presence stats). Send it when
    /// [`Engine::poll_timeout`] says; an early one does nothing. Journals
    /// written before it was renamed say `tick`.
    #[serde(alias = "tick")]
    Timeout,
    /// Cluster mode: Redis came or went, answered a command, or delivered
    /// an event (see [`cluster`]). Ignored without cluster mode.
    Bus(BusInput),
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
        /// Why: gives the close code and reason text.
        reason: CloseReason,
    },
    /// Drop the socket at once, without a handshake (dead peer). The engine
    /// has already removed the connection from every room.
    Terminate {
        /// The connection.
        conn: ConnId,
    },
    /// Cluster mode: a command for Redis (see [`cluster`]); its reply
    /// comes back as [`Input::Bus`] with the same `id`.
    Bus {
        /// The command's id (0 for [`BusCommand::Subscribe`], which gets
        /// no reply).
        id: u64,
        /// The command.
        command: BusCommand,
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
    /// Signed identities: `None` (the default) is off, today's behaviour,
    /// whatever identities the inputs carry; `Some` when the server has a
    /// key configured (`--auth required` or `optional`). Not written when
    /// `None`, so journal headers without auth are as before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthPolicy>,
    /// Cluster mode: `None` (the default) is one process; `Some` when the
    /// server has `--redis`. Not written when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterPolicy>,
}

impl EngineConfig {
    /// The granule every deadline is rounded up to, so that connections
    /// opened close together share one wake-up: a quarter of the heartbeat
    /// interval, between 10 ms and 1,000 ms (1,000 ms by default). A ping
    /// is at most one granule late.
    pub fn timer_granularity_ms(&self) -> u64 {
        (self.heartbeat_interval_ms / 4).clamp(10, 1000)
    }
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
            auth: None,
            cluster: None,
        }
    }
}

/// An open connection as the engine knows it.
#[derive(Debug, Serialize, Deserialize)]
struct Conn {
    /// Index into `Engine::routes`.
    route: usize,
    protocol: Protocol,
    /// Distinguishes this opening from any earlier one with the same id.
    serial: u64,
    live: Liveness,
    bucket: TokenBucket,
    /// The identity and its expiry; `None` for an anonymous connection.
    auth: Option<ConnAuth>,
}

impl Conn {
    /// Takes an inbound message of `len` bytes: the peer is heard, the
    /// message counted (in `out`'s stats) and rate limited.
    fn take_in(
        &mut self,
        config: &EngineConfig,
        out: &mut Outbox,
        now: u64,
        len: usize,
    ) -> Verdict {
        self.live.heard();
        let verdict = self.bucket.admit(config, now);
        let stats = &mut out.per_protocol[self.protocol.index()];
        stats.messages_in += 1;
        stats.bytes_in += len as u64;
        verdict
    }
}

/// The engine. See the crate docs for the run loop. Its whole state
/// serialises ([`Self::save`]), for a live upgrade.
#[derive(Debug, Serialize, Deserialize)]
pub struct Engine {
    config: EngineConfig,
    seed: u64,
    /// The replicated rooms' randomness (room and user ids).
    rng: rng::Rng,
    /// This node's own randomness (cluster epochs), never replicated.
    local_rng: rng::Rng,
    /// Cluster mode's state.
    cluster: Option<Box<cluster::node::Cluster>>,
    out: Outbox,
    conns: ConnMap<Conn>,
    /// Routes in the order they were first used, and their index by path.
    routes: Vec<Route>,
    route_index: HashMap<String, usize>,
    heartbeats: Heartbeats,
    /// When connections with an identity are closed for expiry.
    expiries: Expiries,
    next_serial: u64,
    /// The latest `now_ms` seen (time never goes backwards).
    now_ms: u64,
}

impl Engine {
    /// A fresh engine; all randomness derives from `seed`.
    pub fn new(config: EngineConfig, seed: u64) -> Self {
        let cluster = config
            .cluster
            .map(|p| Box::new(cluster::node::Cluster::new(p)));
        Engine {
            config,
            seed,
            rng: rng::Rng::new(seed),
            local_rng: rng::Rng::new(!seed),
            cluster,
            out: Outbox::new(),
            conns: ConnMap::default(),
            routes: Vec::new(),
            route_index: HashMap::new(),
            heartbeats: Heartbeats::default(),
            expiries: Expiries::default(),
            next_serial: 0,
            now_ms: 0,
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
    /// never decreasing; an earlier time is taken as the latest seen).
    /// Its outputs are queued for [`Self::drain_outputs`]. Inputs for an
    /// unknown connection are ignored.
    pub fn handle(&mut self, now_ms: u64, input: Input) {
        let now = now_ms.max(self.now_ms);
        self.now_ms = now;
        match input {
            Input::Open {
                conn,
                protocol,
                path,
                query,
                peer,
                identity,
            } => {
                let opening = Opening {
                    conn,
                    protocol,
                    path,
                    peer,
                };
                self.open(now, opening, &query, identity);
            }
            Input::Text { conn, text } => self.text(now, conn, &text),
            Input::Auth { conn, result } => self.auth(now, conn, result),
            Input::Binary { conn, len } => self.binary(now, conn, len),
            Input::Pong { conn } => match self.conns.get_mut(&conn) {
                Some(c) => c.live.heard(),
                None => log::debug!("pong from unknown connection {conn:?}"),
            },
            Input::Closed { conn } => {
                if !self.disconnect(now, conn) {
                    log::debug!("close of unknown connection {conn:?}");
                }
            }
            Input::Timeout => self.timeout(now),
            Input::Bus(input) => self.bus(now, input),
        }
    }

    /// Takes the queued outputs, in order. Call after every [`Self::handle`].
    #[must_use = "outputs are the engine's only effect"]
    pub fn drain_outputs(&mut self) -> std::vec::Drain<'_, Output> {
        self.out.outputs.drain(..)
    }

    /// Moves the queued outputs, in order, to the end of `into`: the same
    /// as extending `into` with [`Self::drain_outputs`], but when `into` is
    /// empty the two buffers are swapped rather than copied.
    pub fn take_outputs(&mut self, into: &mut Vec<Output>) {
        if into.is_empty() {
            std::mem::swap(into, &mut self.out.outputs);
        } else {
            into.append(&mut self.out.outputs);
        }
    }

    /// The current counters and gauges, per protocol and per route.
    pub fn stats(&self) -> Stats {
        Stats {
            per_protocol: self.out.per_protocol,
            routes: self.routes.iter().map(Route::stats).collect(),
            cluster: self.cluster_stats(),
        }
    }

    fn open(&mut self, now: u64, opening: Opening, query: &str, identity: Option<Identity>) {
        let Opening {
            conn,
            protocol,
            path,
            peer,
        } = opening;
        if self.conns.contains_key(&conn) {
            log::debug!("open of already open connection {conn:?} ignored");
            return;
        }
        let route = self.route_index_for(path, protocol);
        if self.routes[route].protocol != protocol {
            log::warn!(
                "{conn:?}: {} is not a {protocol} route",
                self.routes[route].path
            );
            let reason = CloseReason::RouteMismatch;
            self.out.outputs.push(Output::Close { conn, reason });
            return;
        }
        let auth = self.identity_of_open(conn, identity);
        if self.cluster.is_some() {
            let event = cluster::Event::Open {
                conn: cluster::global(self.out.node, conn),
                protocol,
                path: self.routes[route].path.clone(),
                query: query.to_owned(),
                identity: auth.as_ref().map(|a| a.identity.clone()),
                now,
            };
            if !self.publish(Some(conn), event) {
                self.out.outputs.push(Output::Close {
                    conn,
                    reason: CloseReason::TryAgainLater,
                });
                return;
            }
            self.out.per_protocol[protocol.index()].connections += 1;
            return self.insert_conn(now, conn, route, protocol, auth);
        }
        let mut cx = Cx::new(&mut self.out, &mut self.rng, &self.config, now, protocol);
        cx.identity = auth.as_ref().map(|a| &a.identity);
        if let Err(reason) = self.routes[route].open(conn, query, &mut cx) {
            log::debug!("{conn:?} refused: {}", reason.reason());
            self.out.outputs.push(Output::Close { conn, reason });
            return;
        }
        cx.stats().connections += 1;
        log::debug!(
            "{conn:?} opened on {} from {peer:?}",
            self.routes[route].path
        );
        self.insert_conn(now, conn, route, protocol, auth);
    }

    /// The index of the route at `path`, created for `protocol` if new.
    fn route_index_for(&mut self, path: String, protocol: Protocol) -> usize {
        match self.route_index.get(&path) {
            Some(&i) => i,
            None => {
                self.routes.push(Route::new(path.clone(), protocol));
                self.route_index.insert(path, self.routes.len() - 1);
                self.routes.len() - 1
            }
        }
    }

    /// Enters an opened connection in the engine's table, its heartbeat
    /// and its expiry.
    fn insert_conn(
        &mut self,
        now: u64,
        conn: ConnId,
        route: usize,
        protocol: Protocol,
        auth: Option<ConnAuth>,
    ) {
        let serial = self.next_serial;
        self.next_serial += 1;
        let (live, bucket) = (Liveness::default(), TokenBucket::new(&self.config, now));
        self.conns.insert(
            conn,
            Conn {
                route,
                protocol,
                serial,
                live,
                bucket,
                auth,
            },
        );
        self.heartbeats.schedule(&self.config, now, conn, serial);
        self.schedule_expiry(conn);
    }

    fn text(&mut self, now: u64, conn: ConnId, text: &str) {
        // One lookup for both the admission and the handling: this is
        // every relayed message's path.
        let Some(c) = self.conns.get_mut(&conn) else {
            log::debug!("text from unknown connection {conn:?}");
            return;
        };
        let verdict = c.take_in(&self.config, &mut self.out, now, text.len());
        if verdict != Verdict::Allow {
            return self.refuse(now, conn, verdict);
        }
        if self.cluster.is_some() {
            return self.cluster_text(now, conn, text);
        }
        let route = &mut self.routes[c.route];
        let mut cx = Cx::new(&mut self.out, &mut self.rng, &self.config, now, c.protocol);
        cx.identity = c.auth.as_ref().map(|a| &a.identity);
        route.text(conn, text, &mut cx);
    }

    /// Takes an inbound message of `len` bytes from `conn` (a `what`, for
    /// logs): the peer is heard, the message counted and rate limited.
    /// `true` if it may be handled; `false` if the connection is unknown,
    /// or the message was refused with the rate-limit error, or the
    /// connection closed for it.
    fn admit(&mut self, now: u64, conn: ConnId, len: usize, what: &str) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else {
            log::debug!("{what} from unknown connection {conn:?}");
            return false;
        };
        let verdict = c.take_in(&self.config, &mut self.out, now, len);
        if verdict == Verdict::Allow {
            return true;
        }
        self.refuse(now, conn, verdict);
        false
    }

    /// A message the rate limit did not allow: refused with the
    /// rate-limit error, or the connection closed for it.
    fn refuse(&mut self, now: u64, conn: ConnId, verdict: Verdict) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        self.out.per_protocol[c.protocol.index()].rate_limited += 1;
        match verdict {
            Verdict::Allow => {}
            Verdict::Refuse => {
                let route = &mut self.routes[c.route];
                let g = cluster::global(self.out.node, conn);
                let mut cx = Cx::new(&mut self.out, &mut self.rng, &self.config, now, c.protocol);
                route.send_error(g, RATE_LIMIT_EXCEEDED, &mut cx);
            }
            Verdict::Close => self.close(now, conn, CloseReason::RateLimited),
        }
    }

    fn binary(&mut self, now: u64, conn: ConnId, len: usize) {
        let Some(c) = self.conns.get(&conn) else {
            log::debug!("binary from unknown connection {conn:?}");
            return;
        };
        let stats = &mut self.out.per_protocol[c.protocol.index()];
        stats.messages_in += 1;
        stats.bytes_in += len as u64;
        self.close(now, conn, CloseReason::Binary);
    }

    /// Asks the reactor to close `conn` and removes it from everything.
    fn close(&mut self, now: u64, conn: ConnId, reason: CloseReason) {
        self.out.outputs.push(Output::Close { conn, reason });
        self.disconnect(now, conn);
    }

    /// Removes `conn` from everything (others are told as on leaving);
    /// `false` if it was unknown.
    fn disconnect(&mut self, now: u64, conn: ConnId) -> bool {
        let Some(c) = self.forget(conn) else {
            return false;
        };
        if self.cluster.is_some() {
            // Published when it can be; else the replica's holding it is
            // found when the node synchronises again.
            let conn = cluster::global(self.out.node, conn);
            self.publish(None, cluster::Event::Close { conn, now });
            return true;
        }
        let mut cx = Cx::new(&mut self.out, &mut self.rng, &self.config, now, c.protocol);
        self.routes[c.route].close(conn, &mut cx);
        true
    }

    /// Takes `conn` out of the engine's own tables (its heartbeat, its
    /// expiry, the connection count), not out of its route.
    fn forget(&mut self, conn: ConnId) -> Option<Conn> {
        let c = self.conns.remove(&conn)?;
        if let Some(auth) = &c.auth {
            self.expiries.remove(auth.close_at, conn);
        }
        self.out.per_protocol[c.protocol.index()].connections -= 1;
        self.drop_gone_heartbeats();
        Some(c)
    }
}

/// What [`Input::Open`] says about the connection besides its query and
/// identity.
struct Opening {
    conn: ConnId,
    protocol: Protocol,
    path: String,
    peer: Option<SocketAddr>,
}
