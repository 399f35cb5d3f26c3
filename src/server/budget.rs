//! Memory budgets over all connections together: bytes queued for
//! clients (`--max-total-outbound-bytes`) and bytes of incomplete incoming
//! messages (`--max-total-inbound-bytes`). Past a budget, the connections
//! holding the most are shed first: a client that keeps up, or sends
//! ordinary messages, holds almost nothing between turns and is never the
//! one shed.

/// What one connection holds of each budget, as last counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Held {
    /// Outbound bytes queued, as of its last flush.
    pub outbound: usize,
    /// Bytes of its incoming message in progress.
    pub inbound: usize,
}

/// One budget: a running total against a limit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    total: usize,
    limit: usize,
}

impl Budget {
    /// An empty budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Budget { total: 0, limit }
    }

    /// A holder that held `*held` now holds `now`.
    pub fn update(&mut self, held: &mut usize, now: usize) {
        self.total = self.total.saturating_sub(*held) + now;
        *held = now;
    }

    /// A holder that held `held` is gone.
    pub fn release(&mut self, held: usize) {
        self.total = self.total.saturating_sub(held);
    }

    /// Whether the total is past the limit.
    pub fn over(&self) -> bool {
        self.total > self.limit
    }

    /// Which holders to shed, largest first, so that the total comes back
    /// within the limit: `holders` are `(key, bytes held)`.
    pub fn largest_holders(
        &self,
        holders: impl Iterator<Item = (usize, usize)>,
    ) -> Vec<(usize, usize)> {
        if !self.over() {
            return Vec::new();
        }
        let mut held: Vec<(usize, usize)> = holders.filter(|&(_, n)| n > 0).collect();
        held.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut total = self.total;
        let keep = held
            .iter()
            .take_while(|&&(_, n)| {
                let shed = total > self.limit;
                total = total.saturating_sub(n);
                shed
            })
            .count();
        held.truncate(keep);
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheds_the_largest_until_within_the_limit() {
        let mut budget = Budget::new(100);
        let mut held = [0usize; 4];
        for (h, n) in held.iter_mut().zip([10, 70, 5, 40]) {
            budget.update(h, n);
        }
        assert!(budget.over());
        let holders = held.iter().copied().enumerate();
        assert_eq!(budget.largest_holders(holders), vec![(1, 70)]);
        budget.update(&mut held[3], 90);
        budget.update(&mut held[0], 60);
        let holders = held.iter().copied().enumerate();
        assert_eq!(budget.largest_holders(holders), vec![(3, 90), (1, 70)]);
    }

    #[test]
    fn within_the_limit_sheds_nothing_and_totals_follow_updates() {
        let mut budget = Budget::new(100);
        let mut held = 0;
        budget.update(&mut held, 100);
        assert!(!budget.over());
        assert!(budget.largest_holders([(0, 100)].into_iter()).is_empty());
        budget.update(&mut held, 101);
        assert!(budget.over());
        budget.release(held);
        assert!(!budget.over());
    }
}
