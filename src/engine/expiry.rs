//! Expiry deadlines of connections with an identity: when each is closed
//! with 4401 unless a fresh token comes first.
//!
//! Unlike heartbeats, deadlines come from tokens and arrive in any order,
//! so they live in an ordered set of `(deadline, connection)`: the next is
//! the first, a refresh or a close removes exactly its entry, and ties
//! fire in connection order (deterministic).

use super::auth::AuthPolicy;
use super::timers::deadline;
use super::{ConnId, EngineConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// When a connection whose token says `exp` (seconds since the epoch) is
/// closed: `exp` plus the grace period, rounded up to the timer granule
/// like every deadline.
pub(crate) fn close_at(config: &EngineConfig, policy: AuthPolicy, exp_secs: u64) -> u64 {
    deadline(config, exp_secs.saturating_mul(1000), policy.grace_ms)
}

/// The pending expiry closes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Expiries {
    due: BTreeSet<(u64, ConnId)>,
}

impl Expiries {
    /// Closes `conn` at `at_ms`.
    pub fn insert(&mut self, at_ms: u64, conn: ConnId) {
        self.due.insert((at_ms, conn));
    }

    /// Forgets the close of `conn` at `at_ms`.
    pub fn remove(&mut self, at_ms: u64, conn: ConnId) {
        self.due.remove(&(at_ms, conn));
    }

    /// Whether `conn` is to be closed at `at_ms`.
    pub fn contains(&self, at_ms: u64, conn: ConnId) -> bool {
        self.due.contains(&(at_ms, conn))
    }

    /// Number of pending closes.
    pub fn len(&self) -> usize {
        self.due.len()
    }

    /// The earliest deadline, if any.
    pub fn next_deadline(&self) -> Option<u64> {
        self.due.first().map(|&(at, _)| at)
    }

    /// Takes the next connection due by `now_ms`, if any.
    pub fn pop_due(&mut self, now_ms: u64) -> Option<ConnId> {
        match self.due.first() {
            Some(&(at, _)) if at <= now_ms => self.due.pop_first().map(|(_, conn)| conn),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_add_the_grace_and_round_up() {
        let config = EngineConfig::default();
        let policy = AuthPolicy { grace_ms: 30_000 };
        assert_eq!(close_at(&config, policy, 1_000), 1_030_000);
        let odd = AuthPolicy { grace_ms: 1_500 };
        assert_eq!(close_at(&config, odd, 1_000), 1_002_000);
        assert_eq!(close_at(&config, policy, u64::MAX), u64::MAX);
    }

    #[test]
    fn pops_in_deadline_then_connection_order() {
        let mut e = Expiries::default();
        e.insert(20, ConnId(1));
        e.insert(10, ConnId(3));
        e.insert(10, ConnId(2));
        e.insert(30, ConnId(4));
        e.remove(30, ConnId(4));
        assert_eq!(e.next_deadline(), Some(10));
        assert_eq!(e.pop_due(9), None);
        assert_eq!(e.pop_due(20), Some(ConnId(2)));
        assert_eq!(e.pop_due(20), Some(ConnId(3)));
        assert_eq!(e.pop_due(20), Some(ConnId(1)));
        assert_eq!(e.pop_due(u64::MAX), None);
        assert_eq!(e.len(), 0);
    }
}
