//! The order each fetch takes a worker's queues in: strict priority, or a weighted random order
//! drawn afresh for every fetch (Sidekiq's weighted queues).
//!
//! Every backend leases from the queues of a fetch in the order given, filling the batch from
//! the first queue before it looks at the next. Drawing that order at random, each queue first
//! with a probability proportional to its weight, gives each queue a share of the fetches that
//! follows its weight while all have work; a queue with nothing ready passes its turn on to the
//! next, so no worker idles while any of its queues has work, and a queue of weight 1 is still
//! first in one fetch of `total weight`: it never starves. The backends need nothing for it.

use rand::Rng;
use std::borrow::Cow;
use std::sync::Arc;

/// How a worker orders its queues for a fetch.
#[derive(Debug, Clone)]
pub(crate) enum QueueOrder {
    /// Always in the order configured (highest priority first).
    Priority,
    /// A fresh weighted random order per fetch: one weight (at least 1) per queue, in order.
    Weighted(Vec<u32>),
}

impl QueueOrder {
    /// The queues in the order the next fetch takes them.
    pub(crate) fn draw<'a>(&self, queues: &'a [Arc<str>]) -> Cow<'a, [Arc<str>]> {
        match self {
            QueueOrder::Priority => Cow::Borrowed(queues),
            QueueOrder::Weighted(weights) => {
                Cow::Owned(weighted_order(queues, weights, &mut rand::thread_rng()))
            }
        }
    }
}

/// `queues` in a random order where each pick, among the queues not picked yet, is queue `i`
/// with probability `weights[i] / (sum of their weights)`.
fn weighted_order(queues: &[Arc<str>], weights: &[u32], rng: &mut impl Rng) -> Vec<Arc<str>> {
    let mut left: Vec<(&Arc<str>, u64)> = queues
        .iter()
        .zip(weights)
        .map(|(q, &w)| (q, u64::from(w.max(1))))
        .collect();
    let mut order = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let total: u64 = left.iter().map(|(_, w)| w).sum();
        let mut ticket = rng.gen_range(0..total);
        let mut pick = left.len() - 1;
        for (i, (_, w)) in left.iter().enumerate() {
            if ticket < *w {
                pick = i;
                break;
            }
            ticket -= w;
        }
        order.push(left.remove(pick).0.clone());
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn names(v: &[&str]) -> Vec<Arc<str>> {
        v.iter().map(|&s| Arc::from(s)).collect()
    }

    #[test]
    fn every_queue_appears_once_per_draw() {
        let queues = names(&["critical", "default", "low"]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..1_000 {
            let mut order = weighted_order(&queues, &[6, 3, 1], &mut rng);
            order.sort();
            assert_eq!(order, names(&["critical", "default", "low"]));
        }
    }

    #[test]
    fn the_first_queue_follows_the_weights() {
        let queues = names(&["critical", "default", "low"]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let mut first = [0u32; 3];
        let draws = 100_000;
        for _ in 0..draws {
            let order = weighted_order(&queues, &[6, 3, 1], &mut rng);
            let i = queues.iter().position(|q| *q == order[0]).unwrap();
            first[i] += 1;
        }
        // 60 %, 30 %, 10 %, within half a percentage point (about 3 standard deviations).
        for (count, expected) in first.iter().zip([0.6, 0.3, 0.1]) {
            let share = f64::from(*count) / f64::from(draws);
            assert!((share - expected).abs() < 0.005, "{first:?}");
        }
    }

    #[test]
    fn priority_keeps_the_configured_order() {
        let queues = names(&["a", "b", "c"]);
        assert_eq!(*QueueOrder::Priority.draw(&queues), *queues);
    }
}
