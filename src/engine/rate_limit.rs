//! Per-connection token bucket rate limiting.

use super::EngineConfig;

/// Thousandths of a token: one message costs [`COST`].
const COST: u64 = 1000;

/// What to do with one inbound message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Process it.
    Allow,
    /// Drop it and tell the sender `rate limit exceeded`.
    Refuse,
    /// The sender has been over the limit for too long: close with 1008.
    Close,
}

/// A token bucket of `rate_limit_burst` messages refilled at
/// `rate_limit_per_sec` (see [`EngineConfig`]).
#[derive(Clone, Debug)]
pub(crate) struct TokenBucket {
    /// Available thousandths of a token.
    tokens: u64,
    last_ms: u64,
    /// When the current run of refused messages began.
    over_since: Option<u64>,
}

impl TokenBucket {
    /// A full bucket at `now_ms`.
    pub fn new(config: &EngineConfig, now_ms: u64) -> Self {
        TokenBucket {
            tokens: u64::from(config.rate_limit_burst) * COST,
            last_ms: now_ms,
            over_since: None,
        }
    }

    /// Takes one message's token at `now_ms`.
    pub fn admit(&mut self, config: &EngineConfig, now_ms: u64) -> Verdict {
        if config.rate_limit_per_sec == 0 {
            return Verdict::Allow;
        }
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        let capacity = u64::from(config.rate_limit_burst) * COST;
        let refill = elapsed.saturating_mul(u64::from(config.rate_limit_per_sec));
        self.tokens = self.tokens.saturating_add(refill).min(capacity);
        if self.tokens >= COST {
            self.tokens -= COST;
            self.over_since = None;
            return Verdict::Allow;
        }
        let since = *self.over_since.get_or_insert(now_ms);
        if now_ms.saturating_sub(since) >= config.rate_limit_close_after_ms {
            Verdict::Close
        } else {
            Verdict::Refuse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate_then_close() {
        let config = EngineConfig {
            rate_limit_per_sec: 10,
            rate_limit_burst: 5,
            rate_limit_close_after_ms: 1000,
            ..EngineConfig::default()
        };
        let mut b = TokenBucket::new(&config, 0);
        for _ in 0..5 {
            assert_eq!(b.admit(&config, 0), Verdict::Allow);
        }
        assert_eq!(b.admit(&config, 0), Verdict::Refuse);
        assert_eq!(b.admit(&config, 99), Verdict::Refuse);
        assert_eq!(b.admit(&config, 100), Verdict::Allow);
        assert_eq!(b.admit(&config, 100), Verdict::Refuse);
        assert_eq!(b.admit(&config, 150), Verdict::Refuse);
        assert_eq!(b.admit(&config, 200), Verdict::Allow);
        for t in 201..=1200 {
            let v = b.admit(&config, t);
            if t % 100 == 0 {
                assert_eq!(v, Verdict::Allow, "{t}");
            } else {
                assert_eq!(v, Verdict::Refuse, "{t}");
            }
        }
        // Refusals interleaved with allowed messages never close.
        assert_eq!(b.admit(&config, 1201), Verdict::Refuse);
        assert_eq!(b.admit(&config, 1299), Verdict::Refuse);
        assert_eq!(b.admit(&config, 1300), Verdict::Allow);
        let unlimited = EngineConfig {
            rate_limit_per_sec: 0,
            ..config
        };
        assert_eq!(b.admit(&unlimited, 1300), Verdict::Allow);
    }

    #[test]
    fn sustained_excess_closes() {
        let config = EngineConfig {
            rate_limit_per_sec: 1,
            rate_limit_burst: 1,
            rate_limit_close_after_ms: 500,
            ..EngineConfig::default()
        };
        let mut b = TokenBucket::new(&config, 0);
        assert_eq!(b.admit(&config, 0), Verdict::Allow);
        assert_eq!(b.admit(&config, 10), Verdict::Refuse);
        assert_eq!(b.admit(&config, 509), Verdict::Refuse);
        assert_eq!(b.admit(&config, 510), Verdict::Close);
    }
}
