//! The reactor's deadlines as data: a few named ones (the engine's next
//! timeout, shutdown, releasing spare buffers, the journal's flush,
//! retrying a paused accept, the Redis client's next deadline, a live
//! upgrade's patience) and one per connection (request head, close
//! grace), so the poll sleeps exactly until the earliest and a server with
//! nothing to do never wakes up.

use crate::server::connection::Connection;
use slab::Slab;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A named deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Timer {
    /// The engine has something due ([`crate::engine::Engine`]'s timeout).
    Engine,
    /// Shutdown gives up on close handshakes.
    Shutdown,
    /// Spare buffers are released once the server is quiet.
    ReleaseBuffers,
    /// The journal's buffered lines are written out.
    FlushJournal,
    /// A listener whose accept failed for lack of descriptors is retried.
    RetryAccept,
    /// The Redis client has something due (a reconnection, a probe, an
    /// answer overdue).
    Redis,
    /// A live upgrade's new process has not taken the sockets yet.
    Upgrade,
}

impl Timer {
    const COUNT: usize = 7;

    fn index(self) -> usize {
        self as usize
    }
}

/// Every deadline the reactor keeps.
#[derive(Debug, Default)]
pub(super) struct Timers {
    named: [Option<u64>; Timer::COUNT],
    /// `(deadline, slab key, connection serial)`; an entry whose
    /// connection is gone or has another deadline now is stale and skipped.
    conns: BinaryHeap<Reverse<(u64, usize, u64)>>,
}

impl Timers {
    /// Sets `timer` to `at` (replacing any earlier setting).
    pub fn set(&mut self, timer: Timer, at: u64) {
        self.named[timer.index()] = Some(at);
    }

    /// Sets `timer` to `at` unless it is already set.
    pub fn set_if_unset(&mut self, timer: Timer, at: u64) {
        self.named[timer.index()].get_or_insert(at);
    }

    /// Unsets `timer`.
    pub fn clear(&mut self, timer: Timer) {
        self.named[timer.index()] = None;
    }

    /// Whether `timer` is due at `now`; a due timer is unset.
    pub fn fire(&mut self, timer: Timer, now: u64) -> bool {
        let slot = &mut self.named[timer.index()];
        if slot.is_some_and(|at| at <= now) {
            *slot = None;
            return true;
        }
        false
    }

    /// Watches connection `key` for its current deadline (call whenever
    /// it gets one).
    pub fn watch(&mut self, key: usize, conn: &Connection) {
        if let Some(at) = conn.deadline() {
            self.conns.push(Reverse((at, key, conn.serial())));
        }
    }

    /// The next connection whose deadline has passed at `now`, by key.
    pub fn pop_expired(&mut self, now: u64, conns: &Slab<Connection>) -> Option<usize> {
        self.drop_stale(conns);
        match self.conns.peek() {
            Some(&Reverse((at, key, _))) if at <= now => {
                self.conns.pop();
                Some(key)
            }
            _ => None,
        }
    }

    /// The earliest deadline of all, if any.
    pub fn next(&mut self, conns: &Slab<Connection>) -> Option<u64> {
        self.drop_stale(conns);
        let conn = self.conns.peek().map(|Reverse((at, _, _))| *at);
        self.named.iter().flatten().copied().chain(conn).min()
    }

    /// Pops entries at the front that no longer hold, so that no wake-up
    /// is spent on them.
    fn drop_stale(&mut self, conns: &Slab<Connection>) {
        while let Some(&Reverse((at, key, serial))) = self.conns.peek() {
            let live = conns
                .get(key)
                .is_some_and(|c| c.serial() == serial && c.deadline() == Some(at));
            if live {
                return;
            }
            self.conns.pop();
        }
    }
}
