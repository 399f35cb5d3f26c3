//! The model's per-connection clocks: the heartbeat and the rate limiter,
//! as PROTOCOLS.md and [`EngineConfig`] describe them.

use crate::engine::EngineConfig;

/// When a connection's next heartbeat is due and whether it owes a pong.
#[derive(Clone, Debug)]
pub struct Heart {
    /// When the next heartbeat fires (`None`: heartbeats are off).
    due: Option<u64>,
    /// Pinged and not heard from since.
    awaiting: bool,
}

/// What a due heartbeat does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Beat {
    /// Nothing is due.
    Idle,
    /// A ping, and the next heartbeat one interval later.
    Ping,
    /// Silent since the last ping: terminated.
    Dead,
}

/// One heartbeat interval after `now`, rounded up to the engine's timer
/// granule (its deadlines are multiples of it).
fn next_beat(config: &EngineConfig, now: u64) -> u64 {
    let granule = config.timer_granularity_ms().max(1);
    now.saturating_add(config.heartbeat_interval_ms)
        .div_ceil(granule)
        .saturating_mul(granule)
}

impl Heart {
    /// A connection opened at `now`: first heartbeat one interval later.
    pub fn new(config: &EngineConfig, now: u64) -> Self {
        Heart {
            due: (config.heartbeat_interval_ms > 0).then(|| next_beat(config, now)),
            awaiting: false,
        }
    }

    /// The connection sent something (text or pong).
    pub fn heard(&mut self) {
        self.awaiting = false;
    }

    /// Fires the heartbeat if it is due at `now`.
    pub fn beat(&mut self, config: &EngineConfig, now: u64) -> Beat {
        match self.due {
            Some(due) if due <= now && self.awaiting => Beat::Dead,
            Some(due) if due <= now => {
                self.awaiting = true;
                self.due = Some(next_beat(config, now));
                Beat::Ping
            }
            _ => Beat::Idle,
        }
    }
}

/// What the rate limiter does with a text message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Handled.
    Yes,
    /// Refused with the protocol's error.
    No,
    /// Refused for too long: closed with 1008.
    Close,
}

/// A token bucket: `rate_limit_burst` messages at once, refilled at
/// `rate_limit_per_sec`; refusals less than a second apart form a run, and
/// a run as long as `rate_limit_close_after_ms` closes the connection.
#[derive(Clone, Debug)]
pub struct Bucket {
    /// Thousandths of a message.
    milli: u64,
    at: u64,
    /// First and latest refusal of the current run.
    run: Option<(u64, u64)>,
}

impl Bucket {
    /// A full bucket at `now`.
    pub fn new(config: &EngineConfig, now: u64) -> Self {
        Bucket {
            milli: 1000 * u64::from(config.rate_limit_burst),
            at: now,
            run: None,
        }
    }

    /// One text message at `now`.
    pub fn admit(&mut self, config: &EngineConfig, now: u64) -> Admit {
        if config.rate_limit_per_sec == 0 {
            return Admit::Yes;
        }
        let gained = now
            .saturating_sub(self.at)
            .saturating_mul(u64::from(config.rate_limit_per_sec));
        self.at = self.at.max(now);
        let full = 1000 * u64::from(config.rate_limit_burst);
        self.milli = full.min(self.milli.saturating_add(gained));
        if let Some(left) = self.milli.checked_sub(1000) {
            self.milli = left;
            return Admit::Yes;
        }
        let first = match self.run {
            Some((first, latest)) if now.saturating_sub(latest) <= 1000 => first,
            _ => now,
        };
        self.run = Some((first, now));
        match now.saturating_sub(first) >= config.rate_limit_close_after_ms {
            true => Admit::Close,
            false => Admit::No,
        }
    }
}
