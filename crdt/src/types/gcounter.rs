//! `GCounter`: a grow-only counter.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::causal::{Dot, ReplicaId};
use crate::error::CausalityError;
use crate::traits::{CmRDT, CvRDT};

/// A grow-only counter: each replica counts its own increments; the value is their sum.
///
/// Each replica's entry is `(seq, count)`: how many increments it made and their total. An op
/// carries the origin's new entry, so applying it is a max: duplicates are no-ops and ops may
/// arrive in any order. [`validate`](CmRDT::validate) still reports an op whose predecessor
/// is missing (`MissingDependency`) or that was applied already (`AlreadySeen`).
///
/// **Overflow**: counts saturate at `u64::MAX` (never wrap); [`value`](Self::value)
/// saturates too, and [`value_u128`](Self::value_u128) gives the exact sum.
///
/// ```
/// use gossamer_crdt::{CmRDT, GCounter, ReplicaId};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut x = GCounter::new();
/// let mut y = GCounter::new();
/// let op = x.inc(a, 3);
/// y.inc(b, 4);
/// y.apply(op.clone());
/// y.apply(op); // a duplicate changes nothing
/// assert_eq!(y.value(), 7);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "Vec<(ReplicaId, u64, u64)>", into = "Vec<(ReplicaId, u64, u64)>")]
pub struct GCounter {
    /// replica → (seq, count); ordered lexicographically, which is the history order.
    entries: BTreeMap<ReplicaId, (u64, u64)>,
}

/// An increment: the origin's entry after it, `dot.counter` being its sequence number.
///
/// ```
/// use gossamer_crdt::{Dot, GCounter, ReplicaId};
///
/// let r = ReplicaId::from_u128(1);
/// let mut c = GCounter::new();
/// c.inc(r, 5);
/// let op = c.inc(r, 2);
/// assert_eq!(op.dot, Dot::new(r, 2)); // the second increment of `r`...
/// assert_eq!(op.count, 7); // ...and `r`'s total after it
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GCounterOp {
    /// The origin and the increment's sequence number there.
    pub dot: Dot,
    /// The origin's total after this increment.
    pub count: u64,
}

impl GCounter {
    /// A counter at zero.
    ///
    /// ```
    /// use gossamer_crdt::{GCounter, ReplicaId};
    ///
    /// let c = GCounter::new();
    /// assert_eq!(c.value(), 0);
    /// assert_eq!(c.get(&ReplicaId::from_u128(1)), 0);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `n` on behalf of `replica` (saturating) and returns the op to ship.
    ///
    /// ```
    /// use gossamer_crdt::{CmRDT, GCounter, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut local = GCounter::new();
    /// let mut remote = GCounter::new();
    /// remote.apply(local.inc(r, 3));
    /// assert_eq!((local.value(), remote.value()), (3, 3));
    /// local.inc(r, u64::MAX); // saturates, never wraps
    /// assert_eq!(local.get(&r), u64::MAX);
    /// ```
    pub fn inc(&mut self, replica: ReplicaId, n: u64) -> GCounterOp {
        let e = self.entries.entry(replica).or_insert((0, 0));
        e.0 = e.0.saturating_add(1);
        e.1 = e.1.saturating_add(n);
        GCounterOp { dot: Dot::new(replica, e.0), count: e.1 }
    }

    /// The sum over replicas, saturating at `u64::MAX`.
    ///
    /// ```
    /// use gossamer_crdt::{GCounter, ReplicaId};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut c = GCounter::new();
    /// c.inc(a, 2);
    /// c.inc(b, 3);
    /// assert_eq!(c.value(), 5);
    /// c.inc(b, u64::MAX); // the true sum no longer fits in a `u64`
    /// assert_eq!(c.value(), u64::MAX);
    /// ```
    pub fn value(&self) -> u64 {
        u64::try_from(self.value_u128()).unwrap_or(u64::MAX)
    }

    /// The exact sum over replicas.
    ///
    /// ```
    /// use gossamer_crdt::{GCounter, ReplicaId};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut c = GCounter::new();
    /// c.inc(a, u64::MAX);
    /// c.inc(b, 1);
    /// assert_eq!(c.value(), u64::MAX); // saturated
    /// assert_eq!(c.value_u128(), u128::from(u64::MAX) + 1); // exact
    /// ```
    pub fn value_u128(&self) -> u128 {
        self.entries.values().map(|&(_, c)| u128::from(c)).sum()
    }

    /// What `replica` has contributed.
    ///
    /// ```
    /// use gossamer_crdt::{GCounter, ReplicaId};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut c = GCounter::new();
    /// c.inc(a, 2);
    /// c.inc(a, 3);
    /// c.inc(b, 4);
    /// assert_eq!(c.get(&a), 5);
    /// assert_eq!(c.get(&b), 4);
    /// assert_eq!(c.get(&ReplicaId::from_u128(3)), 0); // never incremented
    /// ```
    pub fn get(&self, replica: &ReplicaId) -> u64 {
        self.entries.get(replica).map_or(0, |e| e.1)
    }

    /// How many increments of `replica` have been seen.
    ///
    /// ```
    /// use gossamer_crdt::{GCounter, ReplicaId};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut c = GCounter::new();
    /// c.inc(a, 10);
    /// let op = c.inc(a, 10);
    /// assert_eq!(c.seq(&a), 2); // two increments...
    /// assert_eq!(c.get(&a), 20); // ...worth 20
    /// assert_eq!(op.dot.counter, c.seq(&a)); // an op's dot is its origin's sequence number
    /// assert_eq!(c.seq(&b), 0);
    /// ```
    pub fn seq(&self, replica: &ReplicaId) -> u64 {
        self.entries.get(replica).map_or(0, |e| e.0)
    }

    fn observe(&mut self, replica: ReplicaId, entry: (u64, u64)) {
        let e = self.entries.entry(replica).or_insert((0, 0));
        *e = (*e).max(entry);
    }
}

impl CvRDT for GCounter {
    fn merge(&mut self, other: &Self) {
        for (r, e) in &other.entries {
            self.observe(*r, *e);
        }
    }
}

impl CmRDT for GCounter {
    type Op = GCounterOp;

    fn apply(&mut self, op: GCounterOp) {
        if op.dot.counter > 0 {
            self.observe(op.dot.replica, (op.dot.counter, op.count));
        }
    }

    fn validate(&self, op: &GCounterOp) -> Result<(), CausalityError> {
        let have = self.seq(&op.dot.replica);
        if op.dot.counter <= have {
            Err(CausalityError::AlreadySeen { dot: op.dot })
        } else if op.dot.counter > have + 1 {
            Err(CausalityError::MissingDependency { dot: op.dot, have })
        } else {
            Ok(())
        }
    }
}

impl fmt::Debug for GCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries.iter().map(|(r, e)| (r, e.1))).finish()
    }
}

impl From<Vec<(ReplicaId, u64, u64)>> for GCounter {
    fn from(v: Vec<(ReplicaId, u64, u64)>) -> Self {
        let mut c = GCounter::new();
        for (r, seq, count) in v {
            if seq > 0 {
                c.observe(r, (seq, count));
            }
        }
        c
    }
}

impl From<GCounter> for Vec<(ReplicaId, u64, u64)> {
    fn from(c: GCounter) -> Self {
        c.entries.into_iter().map(|(r, (s, n))| (r, s, n)).collect()
    }
}
