//! Version vectors.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Dot, ReplicaId};

/// A version vector: for each replica, how many of its events have been seen.
///
/// Entries that would be zero are not stored, so two vectors that mean the same thing are
/// equal. [`PartialOrd`] is the happened-before order: `a < b` when everything `a` has seen,
/// `b` has seen too, and more; `partial_cmp` is `None` when the two are concurrent.
///
/// Serialized as a sequence of `(replica, counter)` pairs in replica order.
///
/// ```
/// use gossamer_crdt::{ReplicaId, VClock};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut x = VClock::new();
/// let mut y = VClock::new();
/// let dot = x.inc(a);
/// assert!(x.contains(&dot) && !y.contains(&dot));
/// assert!(y < x);
/// y.inc(b);
/// assert!(x.concurrent(&y));
/// y.merge(&x);
/// assert!(y.dominates(&x) && y > x);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "Vec<(ReplicaId, u64)>", into = "Vec<(ReplicaId, u64)>")]
pub struct VClock {
    entries: BTreeMap<ReplicaId, u64>,
}

impl VClock {
    /// The empty vector (nothing seen).
    pub fn new() -> Self {
        Self::default()
    }

    /// How many events of `replica` this vector has seen.
    pub fn get(&self, replica: &ReplicaId) -> u64 {
        self.entries.get(replica).copied().unwrap_or(0)
    }

    /// Records the next event of `replica` and returns its dot.
    pub fn inc(&mut self, replica: ReplicaId) -> Dot {
        let c = self.entries.entry(replica).or_insert(0);
        *c = c.saturating_add(1);
        Dot::new(replica, *c)
    }

    /// Raises the entry of `dot.replica` to at least `dot.counter` (and every earlier event).
    pub fn observe(&mut self, dot: Dot) {
        if dot.counter == 0 {
            return;
        }
        let c = self.entries.entry(dot.replica).or_insert(0);
        *c = (*c).max(dot.counter);
    }

    /// Sets the entry of `replica` to exactly `counter` (removing it when 0).
    pub fn set(&mut self, replica: ReplicaId, counter: u64) {
        if counter == 0 {
            self.entries.remove(&replica);
        } else {
            self.entries.insert(replica, counter);
        }
    }

    /// True when the event `dot` is covered by this vector.
    pub fn contains(&self, dot: &Dot) -> bool {
        dot.counter <= self.get(&dot.replica)
    }

    /// Pointwise maximum: afterwards `self` has seen everything either side had seen.
    pub fn merge(&mut self, other: &VClock) {
        for (r, &c) in &other.entries {
            let e = self.entries.entry(*r).or_insert(0);
            *e = (*e).max(c);
        }
    }

    /// Pointwise minimum: what both sides have seen.
    pub fn meet(&mut self, other: &VClock) {
        self.entries.retain(|r, c| {
            *c = (*c).min(other.get(r));
            *c > 0
        });
    }

    /// True when `self` has seen everything `other` has (`self >= other`).
    pub fn dominates(&self, other: &VClock) -> bool {
        other.entries.iter().all(|(r, &c)| self.get(r) >= c)
    }

    /// True when neither vector dominates the other.
    pub fn concurrent(&self, other: &VClock) -> bool {
        self.partial_cmp(other).is_none()
    }

    /// True when nothing has been seen.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The number of replicas with a non-zero entry.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The sum of all entries: the number of events seen.
    pub fn total(&self) -> u128 {
        self.entries.values().map(|&c| u128::from(c)).sum()
    }

    /// The non-zero entries in replica order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (ReplicaId, u64)> + '_ {
        self.entries.iter().map(|(r, c)| (*r, *c))
    }

    /// The replicas with a non-zero entry, in order.
    pub fn replicas(&self) -> impl ExactSizeIterator<Item = ReplicaId> + '_ {
        self.entries.keys().copied()
    }
}

impl PartialOrd for VClock {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        let ge = self.dominates(other);
        let le = other.dominates(self);
        match (ge, le) {
            (true, true) => Some(Ordering::Equal),
            (true, false) => Some(Ordering::Greater),
            (false, true) => Some(Ordering::Less),
            (false, false) => None,
        }
    }
}

impl fmt::Debug for VClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries.iter()).finish()
    }
}

impl From<Vec<(ReplicaId, u64)>> for VClock {
    fn from(v: Vec<(ReplicaId, u64)>) -> Self {
        v.into_iter().collect()
    }
}

impl From<VClock> for Vec<(ReplicaId, u64)> {
    fn from(v: VClock) -> Self {
        v.entries.into_iter().collect()
    }
}

impl FromIterator<(ReplicaId, u64)> for VClock {
    /// Collects pairs; a replica named twice keeps its larger counter, zero entries vanish.
    /// Sorts once and builds the map in bulk: a thousand-entry vector off the wire costs
    /// O(n log n) comparisons and no per-entry tree rebalancing.
    fn from_iter<I: IntoIterator<Item = (ReplicaId, u64)>>(iter: I) -> Self {
        let mut v: Vec<(ReplicaId, u64)> = iter.into_iter().filter(|&(_, c)| c > 0).collect();
        // Larger counter first within a replica, so `dedup` keeps it.
        v.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        v.dedup_by_key(|e| e.0);
        VClock { entries: v.into_iter().collect() }
    }
}

impl FromIterator<Dot> for VClock {
    /// The smallest vector that contains every dot.
    fn from_iter<I: IntoIterator<Item = Dot>>(iter: I) -> Self {
        let mut v = VClock::new();
        for d in iter {
            v.observe(d);
        }
        v
    }
}
