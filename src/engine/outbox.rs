//! The engine's queued outputs and counters, and the context a protocol
//! handler works in.

use super::cluster::{local_of, node_of};
use super::rng::Rng;
use super::{ConnId, EngineConfig, Output, ProtocolStats};
use crate::protocol::auth::{ANY_NEW_ROOM, not_allowed_in_room};
use crate::protocol::timestamp::format_ts;
use crate::protocol::token::Identity;
use crate::protocol::{Encode, ErrorMessage, Protocol};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Queued outputs, counters and the formatted-timestamp cache. Saved
/// without the outputs (drained after every input) and the cache.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Outbox {
    /// Outputs not yet drained.
    #[serde(skip)]
    pub outputs: Vec<Output>,
    /// The counters, indexed by [`Protocol::index`].
    pub per_protocol: [ProtocolStats; 5],
    /// This node's number: the node whose connections the outputs go to
    /// (cluster mode, see [`super::cluster`]; 0 until registered); 0 for
    /// the single-process engine, whose ids all belong to node 0. Sends to
    /// other nodes' connections are dropped, those nodes send them. Held
    /// here, once, because every handler's context needs it.
    pub node: u32,
    /// `ts` is the `TS` of `ts_ms` (empty before the first use).
    #[serde(skip)]
    ts_ms: u64,
    #[serde(skip)]
    ts: String,
}

impl Outbox {
    pub fn new() -> Self {
        Outbox {
            outputs: Vec::new(),
            per_protocol: Default::default(),
            node: 0,
            ts_ms: 0,
            ts: String::new(),
        }
    }
}

/// What a protocol handler may touch while handling one input.
pub(crate) struct Cx<'a> {
    out: &'a mut Outbox,
    /// The engine's seeded PRNG.
    pub rng: &'a mut Rng,
    /// The engine's configuration.
    pub config: &'a EngineConfig,
    /// The input's time, epoch milliseconds.
    pub now: u64,
    /// The identity of the connection the input is from, if it has one
    /// (only ever with auth on).
    pub identity: Option<&'a Identity>,
    protocol: Protocol,
}

impl<'a> Cx<'a> {
    /// A context for handling one input on a route of `protocol`.
    pub fn new(
        out: &'a mut Outbox,
        rng: &'a mut Rng,
        config: &'a EngineConfig,
        now: u64,
        protocol: Protocol,
    ) -> Self {
        Cx {
            out,
            rng,
            config,
            now,
            identity: None,
            protocol,
        }
    }

    /// Whether the connection's `rooms` claim lets it create or join
    /// `room` (always without an identity); if not, sends it
    /// `{"type":"error","message":"Not allowed in room R"}` (`scratch`,
    /// `signal`, `stream`).
    pub fn may_enter(&mut self, conn: ConnId, room: &str) -> bool {
        let allowed = self.identity.is_none_or(|i| i.may_enter(room));
        if !allowed {
            self.error(conn, &not_allowed_in_room(room));
        }
        allowed
    }

    /// Whether the connection may create a room whose id it does not
    /// choose (a `signal` room): only if its `rooms` claim allows every
    /// id, that is holds `*`. If not, sends it the error
    /// `Not allowed in room *`.
    pub fn may_create_any(&mut self, conn: ConnId) -> bool {
        let allowed = self.identity.is_none_or(|i| {
            i.rooms
                .as_ref()
                .is_none_or(|rooms| rooms.iter().any(|r| r == ANY_NEW_ROOM))
        });
        if !allowed {
            self.error(conn, &not_allowed_in_room(ANY_NEW_ROOM));
        }
        allowed
    }

    /// `TS` for now, formatted at most once per millisecond.
    pub fn ts(&mut self) -> &str {
        if self.out.ts.is_empty() || self.out.ts_ms != self.now {
            self.out.ts = format_ts(self.now);
            self.out.ts_ms = self.now;
        }
        &self.out.ts
    }

    /// This protocol's counters.
    pub fn stats(&mut self) -> &mut ProtocolStats {
        &mut self.out.per_protocol[self.protocol.index()]
    }

    /// Sends `text` to one connection.
    pub fn send(&mut self, conn: ConnId, text: String) {
        self.broadcast(std::iter::once(conn), text);
    }

    /// Sends an error message to one connection (counted in `errors_sent`).
    pub fn send_error(&mut self, conn: ConnId, text: String) {
        self.stats().errors_sent += 1;
        self.send(conn, text);
    }

    /// Sends `{"type":"error","message":M}`, the error message of
    /// `scratch`, `signal` and `stream`.
    pub fn error(&mut self, conn: ConnId, message: &str) {
        self.send_error(conn, ErrorMessage { message }.encode());
    }

    /// Sends `text` to every connection of `to` (cluster-wide ids) that is
    /// this node's, sharing one allocation.
    pub fn broadcast(&mut self, to: impl IntoIterator<Item = ConnId>, text: String) {
        let text: Arc<str> = Arc::from(text);
        let to = to.into_iter();
        let node = self.out.node;
        let outputs = &mut self.out.outputs;
        // Reserve once: member iterators know their upper bound.
        let (low, high) = to.size_hint();
        outputs.reserve(high.unwrap_or(low));
        let before = outputs.len();
        for conn in to {
            if node_of(conn) == node {
                outputs.push(Output::Send {
                    conn: local_of(conn),
                    text: Arc::clone(&text),
                });
            }
        }
        let sent = (outputs.len() - before) as u64;
        let stats = self.stats();
        stats.messages_out += sent;
        stats.bytes_out += sent * text.len() as u64;
    }
}
