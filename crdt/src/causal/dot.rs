//! Dots: single events of single replicas.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ReplicaId;

/// One event of one replica: the `counter`-th event `replica` produced (counters start at 1).
///
/// A dot names a write uniquely and forever, which is what lets a remove say exactly which
/// writes it observed. Serialized as the pair `(replica, counter)`.
///
/// ```
/// use gossamer_crdt::{Dot, ReplicaId};
///
/// let r = ReplicaId::from_u128(1);
/// let d = Dot::new(r, 1);
/// assert_eq!(d.next(), Dot::new(r, 2));
/// assert!(d < d.next());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "(ReplicaId, u64)", into = "(ReplicaId, u64)")]
pub struct Dot {
    /// The replica that produced the event.
    pub replica: ReplicaId,
    /// The event's sequence number at that replica, starting at 1.
    pub counter: u64,
}

impl Dot {
    /// The dot `(replica, counter)`.
    ///
    /// ```
    /// use gossamer_crdt::{Dot, ReplicaId};
    ///
    /// // `const`, so a well-known dot can be a constant.
    /// const FIRST: Dot = Dot::new(ReplicaId::from_u128(1), 1);
    /// assert_eq!(FIRST.replica, ReplicaId::from_u128(1));
    /// assert_eq!(FIRST.counter, 1);
    /// assert_eq!(FIRST, Dot::from((ReplicaId::from_u128(1), 1)));
    /// ```
    pub const fn new(replica: ReplicaId, counter: u64) -> Self {
        Self { replica, counter }
    }

    /// The following event of the same replica.
    ///
    /// ```
    /// use gossamer_crdt::{Dot, ReplicaId, VClock};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut seen = VClock::new();
    /// let first = seen.inc(r);
    /// assert_eq!(first.next(), Dot::new(r, 2));
    /// // The dot a replica mints next is the successor of its last one.
    /// assert_eq!(seen.inc(r), first.next());
    /// ```
    pub const fn next(self) -> Self {
        Self { replica: self.replica, counter: self.counter.saturating_add(1) }
    }
}

impl From<(ReplicaId, u64)> for Dot {
    fn from((replica, counter): (ReplicaId, u64)) -> Self {
        Self { replica, counter }
    }
}

impl From<Dot> for (ReplicaId, u64) {
    fn from(d: Dot) -> Self {
        (d.replica, d.counter)
    }
}

impl fmt::Debug for Dot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}.{}", self.replica, self.counter)
    }
}
