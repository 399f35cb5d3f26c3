//! The reference model of the engine, in the shape of
//! proptest-state-machine's `ReferenceStateMachine`: a reference state
//! (routes, their rooms, sessions, members and presence users, each
//! connection's heartbeat and rate limiter), the [`Transition`]s a client
//! or the clock can make, [`Model::choose`] to pick one among the valid
//! ones from a few numbers, and [`Model::apply`], which moves the state
//! and says in [`Expect`] what the engine may and must do for it.
//!
//! Two drivers run it against the engine (see [`super::driver`]):
//! `tests/engine/model.rs` with proptest, and the `engine` fuzz target with
//! fuzz bytes ([`super::ops`]).

mod choose;
mod route;
mod text;
mod timers;

pub use route::{RoomKey, RouteModel, Seats};

use super::templates::{Msg, RoomRef};
use crate::engine::{ConnId, EngineConfig};
use crate::protocol::{DEFAULT_ROUTES, Protocol};
use std::collections::{BTreeMap, BTreeSet};
use timers::{Admit, Beat, Bucket, Heart};

/// Routes beyond the default ones, so that every protocol has two.
const MORE_ROUTES: [(&str, Protocol); 4] = [
    ("/scratch-2", Protocol::Scratch),
    ("/signal-2", Protocol::Signal),
    ("/chat-2", Protocol::Chat),
    ("/stream-2", Protocol::Stream),
];

/// How many routes the drivers open connections on.
pub const ROUTE_COUNT: usize = DEFAULT_ROUTES.len() + MORE_ROUTES.len();

/// Every route the drivers open connections on, by index: the default
/// ones, then a second one for every protocol but presence (which has two
/// already).
pub fn routes() -> impl Iterator<Item = (&'static str, Protocol)> {
    DEFAULT_ROUTES.into_iter().chain(MORE_ROUTES)
}

/// Most connections open at once (further opens are not chosen).
pub const MAX_CONNS: usize = 48;

/// The time the model starts at (an epoch time in 2023).
pub const T0: u64 = 1_700_000_000_000;

/// One step of a client or the clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    /// A connection opens on route `route` (see [`routes`]); on presence `user` is its
    /// `userId` (`None`: the query has none, and the engine refuses it).
    Open {
        /// A fresh connection id.
        conn: ConnId,
        /// Index into [`routes`].
        route: usize,
        /// Its `userId`.
        user: Option<&'static str>,
    },
    /// A text message.
    Send {
        /// The sender.
        conn: ConnId,
        /// The message.
        msg: Msg,
    },
    /// A binary message.
    Binary {
        /// The sender.
        conn: ConnId,
        /// Its length.
        len: usize,
    },
    /// A pong.
    Pong {
        /// The sender.
        conn: ConnId,
    },
    /// The connection closes.
    Close {
        /// Which.
        conn: ConnId,
    },
    /// Time moves forward, and nothing happens.
    Wait {
        /// By how much.
        ms: u64,
    },
    /// Time moves forward and the engine runs its timers.
    Tick {
        /// By how much.
        ms: u64,
    },
}

/// What the engine may and must do for the last transition.
#[derive(Clone, Debug, Default)]
pub struct Expect {
    /// The only connections any output may be for: those live before the
    /// step, and the one it opens.
    pub targets: BTreeSet<ConnId>,
    /// The sender's route: every message stays on it.
    pub route: Option<usize>,
    /// The only connections a text message may go to.
    pub hear: BTreeSet<ConnId>,
    /// Exactly one output, a text message to this connection (a reply,
    /// an error or a relay).
    pub one_send_to: Option<ConnId>,
    /// Exactly these closes, with their codes.
    pub closes: BTreeMap<ConnId, u16>,
    /// Exactly these terminations.
    pub terminates: BTreeSet<ConnId>,
    /// Exactly these pings.
    pub pings: BTreeSet<ConnId>,
    /// The routes the step touched, as they were before it.
    pub before: Vec<RouteModel>,
}

/// A connection the model knows to be open.
#[derive(Clone, Debug)]
pub struct ConnModel {
    /// Index into [`routes`].
    pub route: usize,
    heart: Heart,
    bucket: Bucket,
}

/// The reference state.
#[derive(Clone, Debug)]
pub struct Model {
    /// The engine's configuration.
    pub config: EngineConfig,
    /// The engine's seed.
    pub seed: u64,
    /// The current time.
    pub now: u64,
    /// The next fresh connection id.
    pub next_conn: u64,
    /// Open connections.
    pub conns: BTreeMap<ConnId, ConnModel>,
    /// Every route of [`routes`], in that order.
    pub routes: Vec<RouteModel>,
    /// What the engine may and must do for the last transition.
    pub expect: Expect,
}

impl Model {
    /// No connection yet, at [`T0`].
    pub fn new(config: EngineConfig, seed: u64) -> Self {
        Model {
            config,
            seed,
            now: T0,
            next_conn: 1,
            conns: BTreeMap::new(),
            routes: routes()
                .map(|(path, protocol)| RouteModel::new(path, protocol))
                .collect(),
            expect: Expect::default(),
        }
    }

    /// The route of an open connection.
    pub fn route_of(&self, conn: ConnId) -> Option<&RouteModel> {
        self.conns.get(&conn).map(|c| &self.routes[c.route])
    }

    /// Whether `t` can happen now (proptest-state-machine's
    /// `preconditions`: what shrinking may not break).
    pub fn allows(&self, t: &Transition) -> bool {
        match t {
            Transition::Open { conn, route, .. } => {
                conn.0 >= self.next_conn && *route < ROUTE_COUNT
            }
            Transition::Send { conn, msg } => self.route_of(*conn).is_some_and(|r| {
                let created = match msg {
                    Msg::JoinRoom(RoomRef::Created(n)) | Msg::Relay(RoomRef::Created(n), _) => {
                        Some(*n)
                    }
                    _ => None,
                };
                msg.protocol().is_none_or(|p| p == r.protocol)
                    && created.is_none_or(|n| n < r.signal.len())
            }),
            Transition::Binary { conn, .. }
            | Transition::Pong { conn }
            | Transition::Close { conn } => self.conns.contains_key(conn),
            Transition::Wait { .. } | Transition::Tick { .. } => true,
        }
    }

    /// Applies `t` to the reference state and sets [`Model::expect`].
    pub fn apply(&mut self, t: &Transition) {
        let mut e = Expect {
            targets: self.conns.keys().copied().collect(),
            ..Expect::default()
        };
        if let Some(conn) = t.conn() {
            let route = self.conns.get(&conn).map(|c| c.route);
            e.route = route.or(match t {
                Transition::Open { route, .. } => Some(*route),
                _ => None,
            });
            e.before.extend(e.route.map(|r| self.routes[r].clone()));
        }
        match t {
            Transition::Open { conn, route, user } => self.open(*conn, *route, *user, &mut e),
            Transition::Send { conn, msg } => {
                let config = &self.config;
                let Some(c) = self.conns.get_mut(conn) else {
                    return self.expect = e;
                };
                c.heart.heard();
                match c.bucket.admit(config, self.now) {
                    Admit::Yes => self.text(*conn, msg, &mut e),
                    Admit::No => e.one_send_to = Some(*conn),
                    Admit::Close => self.engine_close(*conn, 1008, &mut e),
                }
            }
            Transition::Binary { conn, .. } => self.engine_close(*conn, 1003, &mut e),
            Transition::Pong { conn } => {
                if let Some(c) = self.conns.get_mut(conn) {
                    c.heart.heard();
                }
            }
            Transition::Close { conn } => e.hear = self.remove(*conn),
            Transition::Wait { ms } => self.now = self.now.saturating_add(*ms),
            Transition::Tick { ms } => {
                self.now = self.now.saturating_add(*ms);
                self.tick(&mut e);
            }
        }
        if let Some(conn) = e.one_send_to {
            e.hear = BTreeSet::from([conn]);
        }
        self.expect = e;
    }

    fn open(&mut self, conn: ConnId, route: usize, user: Option<&str>, e: &mut Expect) {
        self.next_conn = self.next_conn.max(conn.0 + 1);
        e.targets.insert(conn);
        let r = &mut self.routes[route];
        r.used = true;
        if r.protocol == Protocol::Presence && user.is_none() {
            e.closes.insert(conn, 1008);
            return;
        }
        e.hear = r.open(conn, user);
        if r.protocol == Protocol::Chat {
            e.one_send_to = Some(conn);
        }
        let c = ConnModel {
            route,
            heart: Heart::new(&self.config, self.now),
            bucket: Bucket::new(&self.config, self.now),
        };
        self.conns.insert(conn, c);
    }

    /// The engine closes `conn` with `code`.
    fn engine_close(&mut self, conn: ConnId, code: u16, e: &mut Expect) {
        if self.conns.contains_key(&conn) {
            e.closes.insert(conn, code);
            e.hear = self.remove(conn);
        }
    }

    /// `conn` is gone; returns who may hear of it.
    fn remove(&mut self, conn: ConnId) -> BTreeSet<ConnId> {
        match self.conns.remove(&conn) {
            Some(c) => self.routes[c.route].close(conn),
            None => BTreeSet::new(),
        }
    }

    /// Fires every due heartbeat: pings, and terminations of connections
    /// silent since their last ping (whose peers may hear of it).
    fn tick(&mut self, e: &mut Expect) {
        let (config, now) = (&self.config, self.now);
        for (conn, c) in &mut self.conns {
            match c.heart.beat(config, now) {
                Beat::Idle => {}
                Beat::Ping => _ = e.pings.insert(*conn),
                Beat::Dead => _ = e.terminates.insert(*conn),
            }
        }
        if e.terminates.is_empty() {
            return;
        }
        e.before = self.routes.clone();
        for conn in &e.terminates {
            if let Some(r) = self.route_of(*conn) {
                e.hear.extend(r.peers(*conn));
                // Which of a user's connections dying together is its
                // last depends on the engine's order: any may announce it.
                if r.protocol == Protocol::Presence {
                    e.hear.extend(&r.conns);
                }
            }
        }
        for conn in e.terminates.clone() {
            self.remove(conn);
        }
    }
}

impl Transition {
    /// The connection this transition is about, if any.
    pub fn conn(&self) -> Option<ConnId> {
        match self {
            Transition::Open { conn, .. }
            | Transition::Send { conn, .. }
            | Transition::Binary { conn, .. }
            | Transition::Pong { conn }
            | Transition::Close { conn } => Some(*conn),
            Transition::Wait { .. } | Transition::Tick { .. } => None,
        }
    }
}
