//! The only place that reads the time.
//!
//! `now_ms` is the wall-clock time at start plus the monotonic time elapsed
//! since, so it never goes backwards even if the system clock is changed.
#![allow(clippy::disallowed_methods)]

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Wall-clock milliseconds that never decrease.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start_wall_ms: u64,
    start: Instant,
}

impl Clock {
    /// A clock started now.
    pub fn start() -> Self {
        Clock {
            start_wall_ms: Self::wall_ms(),
            start: Instant::now(),
        }
    }

    /// A clock that goes on from another's `now_ms` (a live upgrade's):
    /// from the wall-clock time if that is later, never earlier.
    pub fn resume(now_ms: u64) -> Self {
        Clock {
            start_wall_ms: now_ms.max(Self::wall_ms()),
            start: Instant::now(),
        }
    }

    /// The system's wall-clock epoch milliseconds (may jump; for log lines).
    pub fn wall_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    /// Epoch milliseconds now.
    pub fn now_ms(&self) -> u64 {
        self.start_wall_ms + self.start.elapsed().as_millis() as u64
    }

    /// Milliseconds since the clock started.
    pub fn uptime_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// A seed for the engine's PRNG, taken from the wall clock's nanoseconds.
    pub fn seed() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    }
}
