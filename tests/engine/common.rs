//! A small harness driving the engine without sockets: `connect`, `send`,
//! `advance`, `received(conn)`. Every step checks the engine's invariants.
#![allow(dead_code)]

use roomd::engine::{ConnId, Engine, EngineConfig, Input, Output};
use roomd::protocol::Protocol;
use roomd::protocol::token::Identity;
use std::collections::HashMap;

/// Each protocol on one route, as the cluster and saved-state tests open
/// them (by index).
pub const ROUTES: [(&str, Protocol); 5] = [
    ("/scratch", Protocol::Scratch),
    ("/signal", Protocol::Signal),
    ("/presence", Protocol::Presence),
    ("/chat", Protocol::Chat),
    ("/stream", Protocol::Stream),
];

/// 2024-01-01T12:00:00.000Z, the harness's start time.
pub const T0: u64 = 1_704_110_400_000;
/// `TS` of [`T0`].
pub const TS0: &str = "2024-01-01T12:00:00.000Z";

/// The engine plus a per-connection inbox of everything it was sent.
pub struct Harness {
    pub engine: Engine,
    pub now: u64,
    next_id: u64,
    inbox: HashMap<ConnId, Vec<Output>>,
}

impl Harness {
    /// An engine with the default configuration, at [`T0`].
    pub fn new() -> Self {
        Self::with_config(EngineConfig::default())
    }

    /// An engine with `config`, at [`T0`].
    pub fn with_config(config: EngineConfig) -> Self {
        Harness {
            engine: Engine::new(config, 7),
            now: T0,
            next_id: 1,
            inbox: HashMap::new(),
        }
    }

    /// Feeds one input and sorts its outputs into the inboxes.
    pub fn input(&mut self, input: Input) {
        self.engine.handle(self.now, input);
        for out in self.engine.drain_outputs() {
            let conn = match &out {
                Output::Send { conn, .. }
                | Output::Ping { conn }
                | Output::Close { conn, .. }
                | Output::Terminate { conn } => *conn,
                Output::Bus { .. } => unreachable!("no cluster mode here"),
            };
            self.inbox.entry(conn).or_default().push(out);
        }
        if let Err(e) = self.engine.check_invariants() {
            panic!("invariant broken: {e}");
        }
    }

    /// Opens a connection on `path` with `query`.
    pub fn connect_with(&mut self, protocol: Protocol, path: &str, query: &str) -> ConnId {
        self.connect_as(protocol, path, query, None)
    }

    /// Opens a connection on `path` with `query` and `identity` (`None`:
    /// anonymous).
    pub fn connect_as(
        &mut self,
        protocol: Protocol,
        path: &str,
        query: &str,
        identity: Option<Identity>,
    ) -> ConnId {
        let conn = ConnId(self.next_id);
        self.next_id += 1;
        self.input(Input::Open {
            conn,
            protocol,
            path: path.into(),
            query: query.into(),
            peer: Some(([127, 0, 0, 1], 1).into()),
            identity,
        });
        conn
    }

    /// Opens a connection on the protocol's default path.
    pub fn connect(&mut self, protocol: Protocol) -> ConnId {
        self.connect_with(protocol, &format!("/{}", protocol.name()), "")
    }

    /// Sends a text message.
    pub fn send(&mut self, conn: ConnId, text: &str) {
        self.input(Input::Text {
            conn,
            text: text.into(),
        });
    }

    /// Closes a connection from the peer's side.
    pub fn close(&mut self, conn: ConnId) {
        self.input(Input::Closed { conn });
    }

    /// Moves time forward by `ms` and delivers a timeout, as a late wake-up
    /// would (whatever is due by then fires once).
    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
        self.input(Input::Timeout);
    }

    /// Wakes the engine at each instant [`Engine::poll_timeout`] names, up
    /// to `until`, as a reactor would; time then stands at `until`. Returns
    /// the instants woken at.
    pub fn run_until(&mut self, until: u64) -> Vec<u64> {
        let mut woken = Vec::new();
        while let Some(due) = self.engine.poll_timeout().filter(|&t| t <= until) {
            assert!(due >= self.now, "deadline {due} before now {}", self.now);
            assert!(woken.last() != Some(&due), "woken twice at {due}");
            self.now = due;
            self.input(Input::Timeout);
            woken.push(due);
        }
        self.now = until;
        woken
    }

    /// Everything `conn` was sent since the last call (all output kinds).
    pub fn take(&mut self, conn: ConnId) -> Vec<Output> {
        self.inbox.remove(&conn).unwrap_or_default()
    }

    /// The text messages `conn` was sent since the last call; panics on any
    /// other output.
    pub fn received(&mut self, conn: ConnId) -> Vec<String> {
        self.take(conn)
            .into_iter()
            .map(|out| match out {
                Output::Send { text, .. } => text.to_string(),
                other => panic!("{conn:?} expected text, got {other:?}"),
            })
            .collect()
    }

    /// The text messages `conn` was sent, parsed.
    pub fn received_json(&mut self, conn: ConnId) -> Vec<serde_json::Value> {
        self.received(conn)
            .iter()
            .map(|t| serde_json::from_str(t).unwrap_or_else(|e| panic!("{t}: {e}")))
            .collect()
    }

    /// Asserts `conn` was sent exactly `expected`, in order.
    #[track_caller]
    pub fn expect(&mut self, conn: ConnId, expected: &[&str]) {
        assert_eq!(self.received(conn), expected, "messages to {conn:?}");
    }

    /// Asserts `conn` was sent nothing.
    #[track_caller]
    pub fn expect_nothing(&mut self, conn: ConnId) {
        assert_eq!(self.take(conn), vec![], "messages to {conn:?}");
    }
}
