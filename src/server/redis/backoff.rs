//! Reconnect delays: from [`FIRST_MS`], doubling to at most [`MAX_MS`],
//! each jittered down to half (so nodes restarted together do not knock
//! on Redis in step). The jitter is a seeded xorshift: tests see the same
//! delays each run.

/// The first delay after a connection is lost.
pub const FIRST_MS: u64 = 100;
/// The longest delay between two attempts.
pub const MAX_MS: u64 = 2_000;

/// The next delay to wait before connecting again.
#[derive(Clone, Debug)]
pub(super) struct Backoff {
    ceiling: u64,
    rng: u64,
}

impl Backoff {
    /// A backoff whose jitter is seeded `seed`.
    pub fn new(seed: u64) -> Backoff {
        Backoff {
            ceiling: FIRST_MS,
            rng: seed | 1,
        }
    }

    /// The delay before the next attempt, in `[ceiling / 2, ceiling]`;
    /// the ceiling doubles up to [`MAX_MS`].
    pub fn next_delay(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let half = self.ceiling / 2;
        let delay = half + self.rng % (self.ceiling - half + 1);
        self.ceiling = (self.ceiling * 2).min(MAX_MS);
        delay
    }

    /// Back to [`FIRST_MS`] (a connection worked).
    pub fn reset(&mut self) {
        self.ceiling = FIRST_MS;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_start_over_after_a_reset() {
        let mut b = Backoff::new(7);
        let delays: Vec<u64> = (0..10).map(|_| b.next_delay()).collect();
        assert!((FIRST_MS / 2..=FIRST_MS).contains(&delays[0]), "{delays:?}");
        assert!(delays.iter().all(|d| *d <= MAX_MS), "{delays:?}");
        assert!(delays[6..].iter().all(|d| *d >= MAX_MS / 2), "{delays:?}");
        b.reset();
        assert!(b.next_delay() <= FIRST_MS);
    }
}
