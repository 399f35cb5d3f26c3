//! Timers as data: [`Engine::poll_timeout`] says when the engine next has
//! something due, and [`Input::Timeout`](super::Input::Timeout) fires
//! everything due by its time.
//!
//! The timers are each connection's heartbeat (ping, then death after a
//! silent interval), each presence route's `stats:` line (only while
//! the route has connections) and, with auth on, each identified
//! connection's expiry (see [`super::AuthPolicy`]). Every deadline is rounded up to a multiple
//! of [`EngineConfig::timer_granularity_ms`], so 10,000 connections opened
//! within one granule share one wake-up instead of 10,000.

use super::heartbeat::Due;
use super::{Engine, EngineConfig, Output};

/// The deadline `delay_ms` after `now_ms`, rounded up to a multiple of the
/// timer granule (saturating at `u64::MAX`).
pub(crate) fn deadline(config: &EngineConfig, now_ms: u64, delay_ms: u64) -> u64 {
    let granule = config.timer_granularity_ms().max(1);
    now_ms
        .saturating_add(delay_ms)
        .div_ceil(granule)
        .saturating_mul(granule)
}

impl Engine {
    /// The earliest wall-clock time (epoch milliseconds, as given to
    /// [`Self::handle`]) at which the engine has something due, or `None`
    /// if nothing is scheduled (no connection is open). Call it after
    /// handling inputs; when that time comes, handle
    /// [`Input::Timeout`](super::Input::Timeout). Deadlines are multiples
    /// of [`EngineConfig::timer_granularity_ms`]: there is at most one
    /// distinct instant per granule. A time already past means "now".
    #[must_use = "the engine must be woken at this time"]
    pub fn poll_timeout(&self) -> Option<u64> {
        let stats = self
            .routes
            .iter()
            .filter_map(|r| r.next_timeout(&self.config));
        let cluster = self.cluster.as_deref().and_then(|c| c.next_timeout());
        self.heartbeats
            .next_deadline()
            .into_iter()
            .chain(self.expiries.next_deadline())
            .chain(stats)
            .chain(cluster)
            .min()
    }

    /// Fires every timer due at `now`: expiry closes (first, so that a
    /// connection closed for expiry is not pinged), pings, terminations of
    /// the silent, presence `stats:` lines.
    pub(super) fn timeout(&mut self, now: u64) {
        self.expire(now);
        while let Some((conn, serial)) = self.heartbeats.pop_due(now) {
            let Some(c) = self.conns.get_mut(&conn).filter(|c| c.serial == serial) else {
                continue;
            };
            match self
                .heartbeats
                .fire(&self.config, now, conn, serial, &mut c.live)
            {
                Due::Ping => self.out.outputs.push(Output::Ping { conn }),
                Due::Dead => {
                    log::debug!("{conn:?} silent since its last ping: terminated");
                    self.out.outputs.push(Output::Terminate { conn });
                    self.disconnect(now, conn);
                }
            }
        }
        for route in &mut self.routes {
            route.timeout(&self.config, now);
        }
        self.cluster_timeout(now);
    }

    /// Drops the heartbeat entries of connections that have gone from the
    /// front of the queue (after a disconnect), so that
    /// [`Self::poll_timeout`] names a live deadline.
    pub(super) fn drop_gone_heartbeats(&mut self) {
        let conns = &self.conns;
        self.heartbeats
            .drop_gone(|conn, serial| conns.get(&conn).is_some_and(|c| c.serial == serial));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_to_the_granule_and_saturate() {
        let config = EngineConfig::default();
        assert_eq!(config.timer_granularity_ms(), 1000);
        assert_eq!(deadline(&config, 5_000, 30_000), 35_000);
        assert_eq!(deadline(&config, 5_001, 30_000), 36_000);
        assert_eq!(deadline(&config, 5_999, 30_000), 36_000);
        assert_eq!(deadline(&config, u64::MAX - 3, 30_000), u64::MAX);
        let fast = EngineConfig {
            heartbeat_interval_ms: 100,
            ..EngineConfig::default()
        };
        assert_eq!(fast.timer_granularity_ms(), 25);
        assert_eq!(deadline(&fast, 1_001, 100), 1_125);
        let off = EngineConfig {
            heartbeat_interval_ms: 0,
            ..EngineConfig::default()
        };
        assert_eq!(off.timer_granularity_ms(), 10);
    }
}
