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
    ///
    /// ```
    /// use gossamer_crdt::{Dot, ReplicaId, VClock};
    ///
    /// let v = VClock::new();
    /// assert!(v.is_empty());
    /// assert!(!v.contains(&Dot::new(ReplicaId::from_u128(1), 1)));
    /// assert_eq!(v, VClock::default());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// How many events of `replica` this vector has seen.
    ///
    /// ```
    /// use gossamer_crdt::{ReplicaId, VClock};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut v = VClock::new();
    /// v.inc(a);
    /// v.inc(a);
    /// assert_eq!(v.get(&a), 2);
    /// assert_eq!(v.get(&b), 0); // no entry: nothing seen
    /// ```
    pub fn get(&self, replica: &ReplicaId) -> u64 {
        self.entries.get(replica).copied().unwrap_or(0)
    }

    /// Records the next event of `replica` and returns its dot.
    ///
    /// ```
    /// use gossamer_crdt::{Dot, ReplicaId, VClock};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut v = VClock::new();
    /// assert_eq!(v.inc(r), Dot::new(r, 1));
    /// assert_eq!(v.inc(r), Dot::new(r, 2));
    /// assert!(v.contains(&Dot::new(r, 2)));
    /// ```
    pub fn inc(&mut self, replica: ReplicaId) -> Dot {
        let c = self.entries.entry(replica).or_insert(0);
        *c = c.saturating_add(1);
        Dot::new(replica, *c)
    }

    /// Raises the entry of `dot.replica` to at least `dot.counter` (and every earlier event).
    ///
    /// ```
    /// use gossamer_crdt::{Dot, ReplicaId, VClock};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut v = VClock::new();
    /// v.observe(Dot::new(r, 3));
    /// // Event 3 of a replica implies its events 1 and 2.
    /// assert!(v.contains(&Dot::new(r, 1)));
    /// assert_eq!(v.get(&r), 3);
    /// v.observe(Dot::new(r, 2)); // never lowers an entry
    /// assert_eq!(v.get(&r), 3);
    /// ```
    pub fn observe(&mut self, dot: Dot) {
        if dot.counter == 0 {
            return;
        }
        let c = self.entries.entry(dot.replica).or_insert(0);
        *c = (*c).max(dot.counter);
    }

    /// Sets the entry of `replica` to exactly `counter` (removing it when 0).
    ///
    /// ```
    /// use gossamer_crdt::{ReplicaId, VClock};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut v = VClock::new();
    /// v.set(r, 5);
    /// v.set(r, 2); // unlike `observe`, `set` may lower an entry
    /// assert_eq!(v.get(&r), 2);
    /// v.set(r, 0);
    /// assert!(v.is_empty()); // a zero entry is not stored...
    /// assert_eq!(v, VClock::new()); // ...so the vector equals the empty one
    /// ```
    pub fn set(&mut self, replica: ReplicaId, counter: u64) {
        if counter == 0 {
            self.entries.remove(&replica);
        } else {
            self.entries.insert(replica, counter);
        }
    }

    /// True when the event `dot` is covered by this vector.
    ///
    /// ```
    /// use gossamer_crdt::{Dot, ReplicaId, VClock};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut v = VClock::new();
    /// v.set(r, 2);
    /// assert!(v.contains(&Dot::new(r, 1)) && v.contains(&Dot::new(r, 2)));
    /// assert!(!v.contains(&Dot::new(r, 3)));
    /// assert!(!v.contains(&Dot::new(ReplicaId::from_u128(2), 1)));
    /// ```
    pub fn contains(&self, dot: &Dot) -> bool {
        dot.counter <= self.get(&dot.replica)
    }

    /// Pointwise maximum: afterwards `self` has seen everything either side had seen.
    ///
    /// ```
    /// use gossamer_crdt::{ReplicaId, VClock};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut x = VClock::from(vec![(a, 3), (b, 1)]);
    /// let y = VClock::from(vec![(a, 1), (b, 4)]);
    /// x.merge(&y);
    /// assert_eq!(x, VClock::from(vec![(a, 3), (b, 4)]));
    /// assert!(x.dominates(&y));
    /// ```
    pub fn merge(&mut self, other: &VClock) {
        for (r, &c) in &other.entries {
            let e = self.entries.entry(*r).or_insert(0);
            *e = (*e).max(c);
        }
    }

    /// Pointwise minimum: what both sides have seen.
    ///
    /// ```
    /// use gossamer_crdt::{ReplicaId, VClock};
    ///
    /// let (a, b, c) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2), ReplicaId::from_u128(3));
    /// let mut x = VClock::from(vec![(a, 3), (b, 1)]);
    /// let y = VClock::from(vec![(a, 1), (c, 4)]);
    /// x.meet(&y);
    /// // Only one side had seen events of `b` or `c`: those entries go.
    /// assert_eq!(x, VClock::from(vec![(a, 1)]));
    /// assert!(y.dominates(&x));
    /// ```
    pub fn meet(&mut self, other: &VClock) {
        self.entries.retain(|r, c| {
            *c = (*c).min(other.get(r));
            *c > 0
        });
    }

    /// True when `self` has seen everything `other` has (`self >= other`).
    ///
    /// ```
    /// use gossamer_crdt::{ReplicaId, VClock};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let x = VClock::from(vec![(a, 2), (b, 1)]);
    /// let y = VClock::from(vec![(a, 1)]);
    /// assert!(x.dominates(&y) && !y.dominates(&x));
    /// assert!(x.dominates(&x)); // `>=`, not `>`
    /// ```
    pub fn dominates(&self, other: &VClock) -> bool {
        other.entries.iter().all(|(r, &c)| self.get(r) >= c)
    }

    /// True when neither vector dominates the other.
    ///
    /// ```
    /// use gossamer_crdt::{ReplicaId, VClock};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut x = VClock::new();
    /// let mut y = VClock::new();
    /// x.inc(a); // seen by x only
    /// y.inc(b); // seen by y only
    /// assert!(x.concurrent(&y) && y.concurrent(&x));
    /// assert_eq!(x.partial_cmp(&y), None);
    /// y.merge(&x); // now y has seen everything x has
    /// assert!(!x.concurrent(&y) && x < y);
    /// ```
    pub fn concurrent(&self, other: &VClock) -> bool {
        self.partial_cmp(other).is_none()
    }

    /// True when nothing has been seen.
    ///
    /// ```
    /// use gossamer_crdt::{ReplicaId, VClock};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut v = VClock::new();
    /// assert!(v.is_empty());
    /// v.inc(r);
    /// assert!(!v.is_empty());
    /// v.set(r, 0);
    /// assert!(v.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The number of replicas with a non-zero entry.
    ///
    /// ```
    /// use gossamer_crdt::{ReplicaId, VClock};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut v = VClock::new();
    /// v.inc(a);
    /// v.inc(a);
    /// v.inc(b);
    /// assert_eq!(v.len(), 2); // replicas, not events (see `total`)
    /// ```
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The sum of all entries: the number of events seen.
    ///
    /// ```
    /// use gossamer_crdt::{ReplicaId, VClock};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut v = VClock::new();
    /// v.inc(a);
    /// v.inc(a);
    /// v.inc(b);
    /// assert_eq!(v.total(), 3);
    /// // A `u128`, so the sum of `u64` entries cannot overflow.
    /// let full = VClock::from(vec![(a, u64::MAX), (b, u64::MAX)]);
    /// assert_eq!(full.total(), 2 * u128::from(u64::MAX));
    /// ```
    pub fn total(&self) -> u128 {
        self.entries.values().map(|&c| u128::from(c)).sum()
    }

    /// The non-zero entries in replica order.
    ///
    /// ```
    /// use gossamer_crdt::{ReplicaId, VClock};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let v = VClock::from(vec![(b, 4), (a, 1)]);
    /// assert_eq!(v.iter().collect::<Vec<_>>(), [(a, 1), (b, 4)]);
    /// assert_eq!(v.iter().collect::<VClock>(), v);
    /// ```
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (ReplicaId, u64)> + '_ {
        self.entries.iter().map(|(r, c)| (*r, *c))
    }

    /// The replicas with a non-zero entry, in order.
    ///
    /// ```
    /// use gossamer_crdt::{ReplicaId, VClock};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut v = VClock::from(vec![(b, 4), (a, 1)]);
    /// assert_eq!(v.replicas().collect::<Vec<_>>(), [a, b]);
    /// v.set(a, 0);
    /// assert_eq!(v.replicas().collect::<Vec<_>>(), [b]);
    /// ```
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
