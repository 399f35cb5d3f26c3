//! Routes: each path is its own namespace holding one protocol's state.

use super::chat::{self, ChatRoute};
use super::outbox::Cx;
use super::presence::{self, PresenceRoute};
use super::scratch::ScratchRoute;
use super::signal::SignalRoute;
use super::stream::StreamRoute;
use super::{ConnId, EngineConfig, RouteStats};
use crate::protocol::Protocol;
use crate::protocol::close::CloseReason;
use serde::{Deserialize, Serialize};

/// One protocol's state on one route. Serialisable (with [`Route`]) for
/// cluster snapshots: a restored route produces the same outputs, in the
/// same order, for the same further inputs.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum State {
    Scratch(ScratchRoute),
    Signal(SignalRoute),
    Presence(PresenceRoute),
    Chat(ChatRoute),
    Stream(StreamRoute),
}

/// A route: a path and its protocol state. A snapshot (serde) holds all of
/// it but presence's `stats:` log timer; check a restored one with
/// [`Route::check_restored`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Route {
    /// The path, e.g. `/chat`.
    pub path: String,
    /// The protocol it speaks.
    pub protocol: Protocol,
    state: State,
}

impl Route {
    /// An empty route.
    pub fn new(path: String, protocol: Protocol) -> Self {
        let state = match protocol {
            Protocol::Scratch => State::Scratch(ScratchRoute::default()),
            Protocol::Signal => State::Signal(SignalRoute::default()),
            Protocol::Presence => State::Presence(PresenceRoute::default()),
            Protocol::Chat => State::Chat(ChatRoute::default()),
            Protocol::Stream => State::Stream(StreamRoute::default()),
        };
        Route {
            path,
            protocol,
            state,
        }
    }

    /// A connection opened with `query` (and `cx.identity`); `Err` refuses
    /// it with a close (presence without a valid `userId`, or with one that
    /// is not its identity's).
    pub fn open(&mut self, conn: ConnId, query: &str, cx: &mut Cx<'_>) -> Result<(), CloseReason> {
        match &mut self.state {
            State::Scratch(s) => s.open(conn, cx),
            State::Signal(s) => s.open(conn),
            State::Presence(s) => return s.open(conn, query, cx),
            State::Chat(s) => s.open(conn, cx),
            State::Stream(s) => s.open(conn),
        }
        Ok(())
    }

    /// One text message.
    pub fn text(&mut self, conn: ConnId, text: &str, cx: &mut Cx<'_>) {
        match &mut self.state {
            State::Scratch(s) => s.text(conn, text, cx),
            State::Signal(s) => s.text(conn, text, cx),
            State::Presence(s) => s.text(conn, text, cx),
            State::Chat(s) => s.text(conn, text, cx),
            State::Stream(s) => s.text(conn, text, cx),
        }
    }

    /// The connection is gone: it leaves everything, others are told.
    pub fn close(&mut self, conn: ConnId, cx: &mut Cx<'_>) {
        match &mut self.state {
            State::Scratch(s) => s.close(conn, cx),
            State::Signal(s) => s.close(conn, cx),
            State::Presence(s) => s.close(conn, cx),
            State::Chat(s) => s.close(conn),
            State::Stream(s) => s.close(conn, cx),
        }
    }

    /// Whether `text` only asks something of the node it arrives at: it
    /// answers its sender alone and changes no state (a presence `PING`,
    /// a chat `ping` or echo, any malformed message). Cluster mode
    /// answers such messages while Redis is away.
    pub fn is_local(&self, text: &str) -> bool {
        match self.protocol {
            Protocol::Presence => true,
            Protocol::Chat => !matches!(
                crate::protocol::chat::decode(text),
                Ok(crate::protocol::chat::Command::Chat { .. })
            ),
            Protocol::Scratch => crate::protocol::scratch::decode(text).is_err(),
            Protocol::Signal => crate::protocol::signal::decode(text).is_err(),
            Protocol::Stream => crate::protocol::stream::decode(text).is_err(),
        }
    }

    /// Who `conn` says it is without a token: its presence user (the
    /// subject a token must then name); `None` elsewhere.
    pub fn subject_of(&self, conn: ConnId) -> Option<&str> {
        match &self.state {
            State::Presence(s) => s.user_of(conn),
            _ => None,
        }
    }

    /// Sends the protocol's error message with `message`.
    pub fn send_error(&self, conn: ConnId, message: &str, cx: &mut Cx<'_>) {
        match self.protocol {
            Protocol::Presence => presence::send_error(conn, message, cx),
            Protocol::Chat => chat::send_error(conn, message, cx),
            Protocol::Scratch | Protocol::Signal | Protocol::Stream => cx.error(conn, message),
        }
    }

    /// When this route next has something due (the presence `stats:`
    /// line, while it has connections).
    pub fn next_timeout(&self, config: &EngineConfig) -> Option<u64> {
        match &self.state {
            State::Presence(s) => s.next_stats(config),
            _ => None,
        }
    }

    /// Fires what is due at `now_ms` (the presence `stats:` line).
    pub fn timeout(&mut self, config: &EngineConfig, now_ms: u64) {
        if let State::Presence(s) = &mut self.state {
            s.timeout(&self.path, config, now_ms);
        }
    }

    /// Live rooms (sessions for scratch; 0 for chat and presence).
    pub fn room_count(&self) -> usize {
        match &self.state {
            State::Scratch(s) => s.room_count(),
            State::Signal(s) => s.room_count(),
            State::Stream(s) => s.room_count(),
            State::Presence(_) | State::Chat(_) => 0,
        }
    }

    /// This route's gauges.
    pub fn stats(&self) -> RouteStats {
        let users = match &self.state {
            State::Presence(s) => s.user_count(),
            _ => 0,
        };
        RouteStats {
            path: self.path.clone(),
            protocol: self.protocol,
            connections: self.conn_count() as u64,
            users: users as u64,
        }
    }

    /// Online users (presence only).
    pub fn online_users(&self) -> Vec<String> {
        match &self.state {
            State::Presence(s) => s.online_users(),
            _ => Vec::new(),
        }
    }

    /// Open connections.
    pub fn conn_count(&self) -> usize {
        match &self.state {
            State::Scratch(s) => s.conn_count(),
            State::Signal(s) => s.conn_count(),
            State::Presence(s) => s.conn_count(),
            State::Chat(s) => s.conn_count(),
            State::Stream(s) => s.conn_count(),
        }
    }

    /// Whether `conn` is on this route.
    pub fn has_conn(&self, conn: ConnId) -> bool {
        match &self.state {
            State::Scratch(s) => s.has_conn(conn),
            State::Signal(s) => s.has_conn(conn),
            State::Presence(s) => s.has_conn(conn),
            State::Chat(s) => s.has_conn(conn),
            State::Stream(s) => s.has_conn(conn),
        }
    }

    /// See [`super::Engine::members`].
    pub fn members(&self, room: &str) -> Option<Vec<ConnId>> {
        match &self.state {
            State::Scratch(s) => s.members(room),
            State::Signal(s) => s.members(room),
            State::Presence(s) => s.members(room),
            State::Chat(s) => Some(s.members()),
            State::Stream(s) => s.members(room),
        }
    }

    /// Checks a route restored from a snapshot: its state is its
    /// protocol's, and its cross-indexes agree ([`Self::check`]).
    pub fn check_restored(&self, max_rooms: usize) -> Result<(), String> {
        let state_protocol = match &self.state {
            State::Scratch(_) => Protocol::Scratch,
            State::Signal(_) => Protocol::Signal,
            State::Presence(_) => Protocol::Presence,
            State::Chat(_) => Protocol::Chat,
            State::Stream(_) => Protocol::Stream,
        };
        if state_protocol != self.protocol {
            return Err(format!(
                "{}: {:?} route holding {state_protocol:?} state",
                self.path, self.protocol
            ));
        }
        self.check(max_rooms)
    }

    /// Checks this route's cross-indexes.
    pub fn check(&self, max_rooms: usize) -> Result<(), String> {
        match &self.state {
            State::Scratch(s) => s.check(),
            State::Signal(s) => s.check(max_rooms),
            State::Presence(s) => s.check(),
            State::Chat(s) => s.check(),
            State::Stream(s) => s.check(max_rooms),
        }
        .map_err(|e| format!("{}: {e}", self.path))
    }
}

#[cfg(test)]
mod snapshot_tests;
