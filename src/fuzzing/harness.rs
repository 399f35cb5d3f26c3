//! Drives an engine like the reactor does and checks every step's outputs.

use crate::engine::{ConnId, Engine, EngineConfig, Input, Output};
use crate::journal::{Digest, JournalWriter};
use crate::protocol::Protocol;
use crate::protocol::close::CloseReason;
use std::collections::BTreeMap;

/// A connection the harness opened and the engine has not closed.
#[derive(Clone, Debug)]
pub struct Conn {
    /// Its protocol.
    pub protocol: Protocol,
    /// Its route.
    pub path: &'static str,
}

/// An engine, the live connections and a running digest of all outputs.
///
/// Every step panics (the fuzzer's crash signal) if an output breaks an
/// invariant: it targets a connection that is not live, leaves the sender's
/// route, follows a close of the same connection, is not a JSON object with
/// a string `type`, carries a `roomId`/`sessionId` its recipient is not a
/// member of (except the leaver's own `left`/`peer-left` and errors), or
/// is a close the engine does not make; or if the engine's own
/// [`Engine::check_invariants`] fails, or its connection count differs from
/// the harness's; or if its timers are off: an [`Input::Timeout`] before
/// [`Engine::poll_timeout`] produces something, leaves a deadline at or
/// before its time, or a deadline exists without connections (or none
/// with them: heartbeats are on).
#[derive(Debug)]
pub struct Harness {
    engine: Engine,
    now_ms: u64,
    next_conn: u64,
    conns: BTreeMap<ConnId, Conn>,
    digest: u64,
    /// Signal room ids seen in `room-created`, for later joins.
    pub signal_rooms: Vec<String>,
    journal: Option<JournalWriter<Vec<u8>>>,
    /// Each room's members after the last step that mentioned it.
    rooms: BTreeMap<(&'static str, String), Vec<ConnId>>,
}

/// A sent message that names a room (`roomId` or `sessionId`).
#[derive(Debug)]
struct RoomSend {
    conn: ConnId,
    path: &'static str,
    room: String,
    text: String,
}

impl Harness {
    /// A fresh engine at a realistic epoch time, with heartbeats every 5 s.
    pub fn new(seed: u64) -> Self {
        let config = EngineConfig {
            heartbeat_interval_ms: 5_000,
            presence_stats_interval_ms: 7_000,
            rate_limit_per_sec: 20,
            rate_limit_burst: 40,
            rate_limit_close_after_ms: 3_000,
            max_rooms_per_conn: 4,
        };
        Harness {
            engine: Engine::new(config, seed),
            now_ms: 1_700_000_000_000,
            next_conn: 1,
            conns: BTreeMap::new(),
            digest: 0,
            signal_rooms: Vec::new(),
            journal: None,
            rooms: BTreeMap::new(),
        }
    }

    /// Journal every input from now on (see [`Self::take_journal`]).
    pub fn record_journal(&mut self) {
        let config = self.engine.config().clone();
        let seed = self.engine.seed();
        self.journal = Some(JournalWriter::new(Vec::new(), seed, &config, self.now_ms));
    }

    /// The journal recorded so far (empty if not recording).
    pub fn take_journal(&mut self) -> Vec<u8> {
        let Some(mut journal) = self.journal.take() else {
            return Vec::new();
        };
        journal.flush();
        journal.into_inner().unwrap_or_default()
    }

    /// A digest of every output so far, in order.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// The live connections, in id order.
    pub fn live(&self) -> impl Iterator<Item = (&ConnId, &Conn)> {
        self.conns.iter()
    }

    /// The live connection at `index` modulo their number, if any.
    pub fn pick(&self, index: u8) -> Option<ConnId> {
        let n = self.conns.len();
        if n == 0 {
            return None;
        }
        self.conns.keys().nth(usize::from(index) % n).copied()
    }

    /// Moves time forward.
    pub fn advance(&mut self, ms: u64) {
        self.now_ms = self.now_ms.saturating_add(ms);
    }

    /// Opens a connection on `path` (a route of `protocol`).
    pub fn open(&mut self, protocol: Protocol, path: &'static str, query: String) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.conns.insert(conn, Conn { protocol, path });
        self.step(Input::Open {
            conn,
            protocol,
            path: path.to_string(),
            query,
            peer: Some(core::net::SocketAddr::from(([127, 0, 0, 1], 40_000))),
        });
        conn
    }

    /// Feeds one input and checks its outputs. The engine's own closes are
    /// answered with [`Input::Closed`], as the reactor does, and that must
    /// produce nothing.
    pub fn step(&mut self, input: Input) {
        let sender = match &input {
            Input::Open { conn, .. }
            | Input::Text { conn, .. }
            | Input::Binary { conn, .. }
            | Input::Pong { conn }
            | Input::Closed { conn } => Some(*conn),
            Input::Timeout => None,
        };
        let sender_path = sender.and_then(|c| self.conns.get(&c)).map(|c| c.path);
        if let Input::Closed { conn } = &input {
            self.conns.remove(conn);
        }
        let journaled = self.journal.is_some().then(|| input.clone());
        let timeout = input == Input::Timeout;
        let early = self
            .engine
            .poll_timeout()
            .is_none_or(|due| due > self.now_ms);
        self.engine.handle(self.now_ms, input);
        let outputs: Vec<Output> = self.engine.drain_outputs().collect();
        if timeout {
            self.check_timeout(early, &outputs);
        }
        if let (Some(journal), Some(input)) = (&mut self.journal, journaled) {
            journal.record(self.now_ms, &input, &outputs);
        }
        self.digest = (self.digest.rotate_left(5)) ^ Digest::of(&outputs).0;
        let mut closed = Vec::new();
        let mut room_sends = Vec::new();
        for output in &outputs {
            self.check(output, sender_path, &closed, &mut room_sends);
            if let Output::Close { conn, .. } | Output::Terminate { conn } = output {
                closed.push(*conn);
            }
        }
        self.check_rooms(&room_sends);
        // The engine forgets a connection when it closes it; the reactor
        // still reports the socket's end, which must change nothing.
        for conn in &closed {
            self.conns.remove(conn);
        }
        for conn in closed {
            self.engine.handle(self.now_ms, Input::Closed { conn });
            let late: Vec<Output> = self.engine.drain_outputs().collect();
            if let Some(journal) = &mut self.journal {
                journal.record(self.now_ms, &Input::Closed { conn }, &late);
            }
            assert!(late.is_empty(), "Closed after the engine's close: {late:?}");
        }
        if let Err(e) = self.engine.check_invariants() {
            panic!("engine invariants broken: {e}");
        }
        assert_eq!(
            self.engine.connection_count(),
            self.conns.len(),
            "engine and harness disagree on the open connections"
        );
        assert_eq!(
            self.engine.poll_timeout().is_some(),
            !self.conns.is_empty(),
            "a deadline exactly while connections are open"
        );
    }

    /// A timeout before the engine's deadline does nothing; one at or after
    /// it fires everything due, leaving only later deadlines.
    fn check_timeout(&self, early: bool, outputs: &[Output]) {
        assert!(
            !early || outputs.is_empty(),
            "a timeout before the deadline produced {outputs:?}"
        );
        let next = self.engine.poll_timeout();
        assert!(
            next.is_none_or(|due| due > self.now_ms),
            "a deadline at {next:?} is still due after a timeout at {}",
            self.now_ms
        );
    }

    /// Room-scoped messages reach only the room's members: members after
    /// the step, or at the last snapshot of that room (a step can deliver a
    /// room's news and then detach a member, e.g. a stream takeover).
    fn check_rooms(&mut self, sent: &[RoomSend]) {
        for s in sent {
            let key = (s.path, s.room.clone());
            let now = self.engine.members(s.path, &s.room).unwrap_or_default();
            let before = self.rooms.get(&key).map(Vec::as_slice).unwrap_or(&[]);
            assert!(
                now.contains(&s.conn) || before.contains(&s.conn),
                "{:?} got a message for room {:?} it is not in: {}",
                s.conn,
                s.room,
                s.text
            );
        }
        for s in sent {
            let members = self.engine.members(s.path, &s.room).unwrap_or_default();
            self.rooms.insert((s.path, s.room.clone()), members);
        }
    }

    fn check(
        &mut self,
        output: &Output,
        sender_path: Option<&str>,
        closed: &[ConnId],
        room_sends: &mut Vec<RoomSend>,
    ) {
        let conn = match output {
            Output::Send { conn, .. }
            | Output::Ping { conn }
            | Output::Close { conn, .. }
            | Output::Terminate { conn } => *conn,
        };
        let Some(target) = self.conns.get(&conn) else {
            panic!("output for a connection that is not live: {output:?}");
        };
        assert!(!closed.contains(&conn), "output after close: {output:?}");
        if let Some(path) = sender_path {
            assert_eq!(target.path, path, "output crossed routes: {output:?}");
        }
        match output {
            Output::Send { text, .. } => {
                let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
                    // Valid JSON that serde_json cannot hold as a Value (a
                    // number beyond f64 such as 3e30330, forwarded verbatim
                    // as the protocol says) is fine; anything else is not.
                    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
                        panic!("sent text is not JSON ({e}): {text}");
                    }
                    return;
                };
                let Some(kind) = value.get("type").and_then(|t| t.as_str()) else {
                    panic!("sent message without a string type: {text}");
                };
                let room = ["roomId", "sessionId"]
                    .into_iter()
                    .find_map(|k| value.get(k).and_then(|r| r.as_str()));
                if let Some(room) = room
                    && !matches!(kind, "left" | "peer-left" | "error")
                {
                    room_sends.push(RoomSend {
                        conn,
                        path: target.path,
                        room: room.to_string(),
                        text: text.to_string(),
                    });
                }
                if kind == "room-created"
                    && let Some(room) = value.get("roomId").and_then(|r| r.as_str())
                {
                    self.signal_rooms.push(room.to_string());
                }
            }
            Output::Close { reason, .. } => {
                // The engine's own closes; the others are the reactor's.
                assert!(
                    matches!(
                        reason,
                        CloseReason::Binary
                            | CloseReason::RateLimited
                            | CloseReason::InvalidUserId(_)
                            | CloseReason::RouteMismatch
                    ),
                    "a close the engine does not make: {output:?}"
                );
            }
            Output::Ping { .. } | Output::Terminate { .. } => {}
        }
    }
}
