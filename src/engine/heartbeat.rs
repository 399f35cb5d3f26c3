//! Heartbeat deadlines: which connections are due a ping, or dead.
//!
//! The interval is the same for every connection and `now` never goes
//! backwards, so deadlines are pushed in order and a `VecDeque` is a
//! priority queue: a tick costs O(connections due), not O(connections).
//! Entries of connections that have gone are skipped when they come due.

use super::ConnId;
use std::collections::VecDeque;

/// A connection's heartbeat state.
#[derive(Clone, Copy, Debug, Default)]
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
#[derive(Clone, Debug, Default)]
pub(crate) struct Heartbeats {
    /// `(deadline, connection, open serial)`, in deadline order.
    queue: VecDeque<(u64, ConnId, u64)>,
}

impl Heartbeats {
    /// Schedules the first ping of a connection opened at `now_ms`.
    pub fn schedule(&mut self, now_ms: u64, interval_ms: u64, conn: ConnId, serial: u64) {
        if interval_ms > 0 {
            self.queue
                .push_back((now_ms.saturating_add(interval_ms), conn, serial));
        }
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

    /// Decides for a due, live connection and reschedules it if it lives.
    pub fn fire(
        &mut self,
        now_ms: u64,
        interval_ms: u64,
        conn: ConnId,
        serial: u64,
        live: &mut Liveness,
    ) -> Due {
        if live.awaiting {
            return Due::Dead;
        }
        live.awaiting = true;
        self.schedule(now_ms, interval_ms, conn, serial);
        Due::Ping
    }
}
