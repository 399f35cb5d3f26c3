//! Heartbeat deadlines: which connections are due a ping, or dead.
//!
//! The interval is the same for every connection, `now` never goes
//! backwards and deadlines are rounded up to the timer granule, so
//! deadlines are pushed in order and a `VecDeque` is a priority queue: a
//! timeout costs O(connections due), not O(connections). Entries of
//! connections that have gone are dropped once they reach the front.

use super::timers::deadline;
use super::{ConnId, EngineConfig};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// A connection's heartbeat state.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Liveness {
    /// A ping was sent and the peer has sent nothing since.
    awaiting: bool,
}

impl Liveness {
    /// The peer sent something (a message or a pong).
    pub fn heard(&mut self) {
        self.awaiting = false;
    }
}

/// What a due deadline asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Due {
    /// Send a ping; the next deadline is scheduled.
    Ping,
    /// Silent since the previous ping: terminate.
    Dead,
}

/// The queue of heartbeat deadlines.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Heartbeats {
    /// `(deadline, connection, open serial)`, in deadline order.
    queue: VecDeque<(u64, ConnId, u64)>,
}

impl Heartbeats {
    /// Schedules the next heartbeat of a connection, one interval after
    /// `now_ms` (rounded up to the granule); nothing if heartbeats are off.
    pub fn schedule(&mut self, config: &EngineConfig, now_ms: u64, conn: ConnId, serial: u64) {
        let interval = config.heartbeat_interval_ms;
        if interval > 0 {
            let due = deadline(config, now_ms, interval);
            self.queue.push_back((due, conn, serial));
        }
    }

    /// The earliest deadline, if any.
    pub fn next_deadline(&self) -> Option<u64> {
        self.queue.front().map(|&(due, _, _)| due)
    }

    /// Pops the next connection due at `now_ms`, if any, as
    /// `(connection, open serial)`.
    pub fn pop_due(&mut self, now_ms: u64) -> Option<(ConnId, u64)> {
        match self.queue.front() {
            Some(&(due, conn, serial)) if due <= now_ms => {
                self.queue.pop_front();
                Some((conn, serial))
            }
            _ => None,
        }
    }

    /// Drops entries from the front while `live(connection, serial)` says
    /// their connection has gone, so that [`Self::next_deadline`] is a live
    /// connection's.
    pub fn drop_gone(&mut self, live: impl Fn(ConnId, u64) -> bool) {
        while let Some(&(_, conn, serial)) = self.queue.front() {
            if live(conn, serial) {
                break;
            }
            self.queue.pop_front();
        }
    }

    /// Decides for a due, live connection and reschedules it if it lives.
    pub fn fire(
        &mut self,
        config: &EngineConfig,
        now_ms: u64,
        conn: ConnId,
        serial: u64,
        live: &mut Liveness,
    ) -> Due {
        if live.awaiting {
            return Due::Dead;
        }
        live.awaiting = true;
        self.schedule(config, now_ms, conn, serial);
        Due::Ping
    }
}
