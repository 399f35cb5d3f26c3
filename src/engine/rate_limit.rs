//! Per-connection token bucket rate limiting.

use super::EngineConfig;
use serde::{Deserialize, Serialize};

/// Thousandths of a token: one message costs [`COST`].
const COST: u64 = 1000;

/// Refusals at most this far apart belong to one run of excess.
const RUN_GAP_MS: u64 = 1000;

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
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TokenBucket {
    /// Available thousandths of a token.
    tokens: u64,
    last_ms: u64,
    /// The current run of excess: `(first refusal, latest refusal)`.
    run: Option<(u64, u64)>,
}

impl TokenBucket {
    /// A full bucket at `now_ms`.
    pub fn new(config: &EngineConfig, now_ms: u64) -> Self {
        TokenBucket {
            tokens: u64::from(config.rate_limit_burst) * COST,
            last_ms: now_ms,
            run: None,
        }
    }

    /// Takes one message's token at `now_ms`. A refusal continues the
    /// current run of excess if the previous refusal was at most
    /// [`RUN_GAP_MS`] earlier (messages allowed in between do not end it,
    /// so a flood far above the rate is closed); a run lasting
    /// `rate_limit_close_after_ms` closes the connection.
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
            return Verdict::Allow;
        }
        let since = match self.run {
            Some((first, last)) if now_ms.saturating_sub(last) <= RUN_GAP_MS => first,
            _ => now_ms,
        };
        self.run = Some((since, now_ms));
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

    fn config(rate: u32, burst: u32, close_after_ms: u64) -> EngineConfig {
        EngineConfig {
            rate_limit_per_sec: rate,
            rate_limit_burst: burst,
            rate_limit_close_after_ms: close_after_ms,
            ..EngineConfig::default()
        }
    }

    #[test]
    fn burst_then_rate() {
        let config = config(10, 5, 10_000);
        let mut b = TokenBucket::new(&config, 0);
        for _ in 0..5 {
            assert_eq!(b.admit(&config, 0), Verdict::Allow);
        }
        assert_eq!(b.admit(&config, 0), Verdict::Refuse);
        assert_eq!(b.admit(&config, 99), Verdict::Refuse);
        assert_eq!(b.admit(&config, 100), Verdict::Allow);
        assert_eq!(b.admit(&config, 100), Verdict::Refuse);
        assert_eq!(b.admit(&config, 200), Verdict::Allow);
        // Idle long enough: a full burst again, never more.
        for _ in 0..5 {
            assert_eq!(b.admit(&config, 60_000), Verdict::Allow);
        }
        assert_eq!(b.admit(&config, 60_000), Verdict::Refuse);
        let unlimited = EngineConfig {
            rate_limit_per_sec: 0,
            ..config
        };
        assert_eq!(b.admit(&unlimited, 60_000), Verdict::Allow);
    }

    #[test]
    fn a_flood_is_closed_even_with_some_messages_allowed() {
        let config = config(10, 1, 1000);
        let mut b = TokenBucket::new(&config, 0);
        let mut verdicts = (0..=1001).map(|t| b.admit(&config, t));
        assert_eq!(verdicts.next(), Some(Verdict::Allow));
        let rest: Vec<Verdict> = verdicts.collect();
        assert_eq!(rest.iter().filter(|v| **v == Verdict::Allow).count(), 10);
        assert_eq!(rest.last(), Some(&Verdict::Close));
        assert!(!rest[..rest.len() - 1].contains(&Verdict::Close));
    }

    #[test]
    fn a_gap_between_refusals_ends_the_run() {
        let config = config(1, 1, 1500);
        let mut b = TokenBucket::new(&config, 0);
        assert_eq!(b.admit(&config, 0), Verdict::Allow);
        assert_eq!(b.admit(&config, 1), Verdict::Refuse);
        assert_eq!(b.admit(&config, 1000), Verdict::Allow);
        assert_eq!(b.admit(&config, 1001), Verdict::Refuse);
        assert_eq!(b.admit(&config, 2000), Verdict::Allow);
        // 1,001 ms since the last refusal: a new run starts.
        assert_eq!(b.admit(&config, 2002), Verdict::Refuse);
        assert_eq!(b.admit(&config, 3001), Verdict::Allow);
        assert_eq!(b.admit(&config, 3002), Verdict::Refuse);
        assert_eq!(b.admit(&config, 3501), Verdict::Refuse);
        assert_eq!(b.admit(&config, 3502), Verdict::Close);
    }
}
