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
    pub const fn new(replica: ReplicaId, counter: u64) -> Self {
        Self { replica, counter }
    }

    /// The following event of the same replica.
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
