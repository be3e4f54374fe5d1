//! [`Backoff`]: exponential delays with jitter, for retrying what failed.

use std::time::Duration;

use rand_010::rngs::Xoshiro256PlusPlus;
use rand_010::{RngExt, SeedableRng};

/// Delays between retries that double after each failure, up to a cap, with jitter so that
/// many nodes retrying the same peer do not all retry together.
///
/// The `n`-th delay (from 0) is drawn uniformly from `[c/2, c]` where
/// `c = min(max, base · 2ⁿ)` ("equal jitter"): never more than `max`, and never so short
/// that retries hammer a peer. The randomness comes from the seed, so a run is reproducible.
///
/// The node driver keeps one per peer it could not reach: after a failed dial it waits
/// [`next_delay`](Self::next_delay) before the next one, and on success it calls
/// [`reset`](Self::reset). [`Membership`](super::Membership) uses one itself to re-announce
/// while it knows no live member.
///
/// ```
/// use std::time::Duration;
/// use gossamer_sync::membership::Backoff;
///
/// let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30), 42);
/// let first = backoff.next_delay();
/// assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
/// let second = backoff.next_delay();
/// assert!(second >= Duration::from_secs(1) && second <= Duration::from_secs(2));
/// for _ in 0..100 {
///     assert!(backoff.next_delay() <= Duration::from_secs(30));
/// }
/// backoff.reset();
/// assert!(backoff.next_delay() <= Duration::from_secs(1));
/// ```
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
    rng: Xoshiro256PlusPlus,
}

impl Backoff {
    /// A backoff starting at `base` and capped at `max` (`max` is raised to `base` if it is
    /// smaller), with jitter drawn from `seed`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gossamer_sync::membership::Backoff;
    ///
    /// let a = Backoff::new(Duration::from_secs(1), Duration::from_secs(8), 1);
    /// let b = a.clone();
    /// let delays = |mut backoff: Backoff| (0..5).map(|_| backoff.next_delay()).collect::<Vec<_>>();
    /// assert_eq!(delays(a), delays(b)); // same seed, same delays
    /// ```
    pub fn new(base: Duration, max: Duration, seed: u64) -> Self {
        Self { base, max: max.max(base), failures: 0, rng: Xoshiro256PlusPlus::seed_from_u64(seed) }
    }

    /// The delay before the next attempt; each call counts one more failure.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gossamer_sync::membership::Backoff;
    ///
    /// let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 3);
    /// assert!(backoff.next_delay() <= Duration::from_millis(100));
    /// assert_eq!(backoff.failures(), 1);
    /// ```
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let half = ceiling / 2;
        // Nanosecond resolution; every duration here is far below u64::MAX nanoseconds
        // (584 years), and one that is not is clamped.
        let span = u64::try_from((ceiling - half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(self.rng.random_range(0..=span))
    }

    /// Forgets the failures: the next delay is about `base` again.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gossamer_sync::membership::Backoff;
    ///
    /// let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60), 3);
    /// for _ in 0..10 { backoff.next_delay(); }
    /// backoff.reset();
    /// assert_eq!(backoff.failures(), 0);
    /// ```
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// How many delays were handed out since creation or the last [`reset`](Self::reset).
    ///
    /// ```
    /// use std::time::Duration;
    /// use gossamer_sync::membership::Backoff;
    ///
    /// assert_eq!(Backoff::new(Duration::from_secs(1), Duration::from_secs(2), 0).failures(), 0);
    /// ```
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// `min(max, base · 2^failures)`, without overflow.
    fn ceiling(&self) -> Duration {
        // 2^31 · base exceeds any sensible cap; stop doubling well before overflow.
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        self.base.checked_mul(factor).map_or(self.max, |d| d.min(self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn delays_double_within_equal_jitter_bounds_until_the_cap() {
        for seed in 0..200 {
            let mut backoff = Backoff::new(secs(1), secs(30), seed);
            for n in 0..40u32 {
                let ceiling = secs(1u64 << n.min(5)).min(secs(30));
                let delay = backoff.next_delay();
                assert!(delay >= ceiling / 2 && delay <= ceiling, "seed {seed}, attempt {n}: {delay:?}");
            }
        }
    }

    #[test]
    fn jitter_spreads_retries() {
        // Ten nodes retrying the same peer do not retry at the same moment.
        let mut delays: Vec<Duration> = (0..10).map(|seed| Backoff::new(secs(8), secs(8), seed).next_delay()).collect();
        delays.sort();
        delays.dedup();
        assert_eq!(delays.len(), 10);
    }

    #[test]
    fn deterministic_per_seed() {
        let run = |seed| {
            let mut b = Backoff::new(Duration::from_millis(250), secs(10), seed);
            (0..20).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }

    #[test]
    fn reset_starts_over() {
        let mut backoff = Backoff::new(secs(1), secs(60), 5);
        for _ in 0..10 {
            backoff.next_delay();
        }
        assert!(backoff.next_delay() >= secs(30));
        backoff.reset();
        assert!(backoff.next_delay() <= secs(1));
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let mut backoff = Backoff::new(Duration::MAX, Duration::MAX, 1);
        for _ in 0..100 {
            backoff.next_delay();
        }
        let mut backoff = Backoff::new(Duration::from_nanos(1), Duration::from_nanos(1), 1);
        for _ in 0..100 {
            assert!(backoff.next_delay() <= Duration::from_nanos(1));
        }
        let mut backoff = Backoff::new(Duration::ZERO, secs(1), 1);
        assert_eq!(backoff.next_delay(), Duration::ZERO);
        // A cap below the base is raised to the base.
        let mut backoff = Backoff::new(secs(4), secs(1), 1);
        assert!(backoff.next_delay() <= secs(4));
        backoff.failures = u32::MAX;
        assert!(backoff.next_delay() <= secs(4));
    }
}
