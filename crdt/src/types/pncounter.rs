//! `PNCounter`: a counter that goes up and down.

use serde::{Deserialize, Serialize};

use super::gcounter::{GCounter, GCounterOp};
use crate::causal::ReplicaId;
use crate::error::CausalityError;
use crate::traits::{CmRDT, CvRDT};

/// A counter with increments and decrements: two [`GCounter`]s, value = P − N.
///
/// **Overflow**: each side saturates at `u64::MAX` per replica; [`value`](Self::value)
/// saturates at the `i64` bounds instead of wrapping ([`value_i128`](Self::value_i128) is
/// exact). Duplicates and reordering are handled as in [`GCounter`].
///
/// ```
/// use gossamer_crdt::{CvRDT, PNCounter, ReplicaId};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut x = PNCounter::new();
/// let mut y = PNCounter::new();
/// x.inc(a, 5);
/// y.dec(b, 7);
/// x.merge(&y);
/// assert_eq!(x.value(), -2);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PNCounter {
    p: GCounter,
    n: GCounter,
}

/// An increment or a decrement.
///
/// ```
/// use gossamer_crdt::{CmRDT, PNCounter, PNCounterOp, ReplicaId};
///
/// let r = ReplicaId::from_u128(1);
/// let mut x = PNCounter::new();
/// let up = x.inc(r, 5);
/// let down = x.dec(r, 2);
/// assert!(matches!(up, PNCounterOp::Inc(_)));
/// assert!(matches!(down, PNCounterOp::Dec(_)));
/// let mut y = PNCounter::new();
/// y.apply(down); // the two sides are independent: any order converges
/// y.apply(up);
/// assert_eq!(y, x);
/// assert_eq!(y.value(), 3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PNCounterOp {
    /// Applies to the positive side.
    Inc(GCounterOp),
    /// Applies to the negative side.
    Dec(GCounterOp),
}

impl PNCounter {
    /// A counter at zero.
    ///
    /// ```
    /// use gossamer_crdt::PNCounter;
    ///
    /// let c = PNCounter::new();
    /// assert_eq!(c.value(), 0);
    /// assert_eq!(c, PNCounter::default());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `n` on behalf of `replica`.
    ///
    /// ```
    /// use gossamer_crdt::{CmRDT, PNCounter, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut local = PNCounter::new();
    /// let mut remote = PNCounter::new();
    /// remote.apply(local.inc(r, 4));
    /// assert_eq!((local.value(), remote.value()), (4, 4));
    /// ```
    pub fn inc(&mut self, replica: ReplicaId, n: u64) -> PNCounterOp {
        PNCounterOp::Inc(self.p.inc(replica, n))
    }

    /// Subtracts `n` on behalf of `replica`.
    ///
    /// ```
    /// use gossamer_crdt::{CmRDT, PNCounter, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut local = PNCounter::new();
    /// let mut remote = PNCounter::new();
    /// remote.apply(local.inc(r, 1));
    /// remote.apply(local.dec(r, 3)); // may go below zero
    /// assert_eq!((local.value(), remote.value()), (-2, -2));
    /// ```
    pub fn dec(&mut self, replica: ReplicaId, n: u64) -> PNCounterOp {
        PNCounterOp::Dec(self.n.inc(replica, n))
    }

    /// P − N, saturating at the `i64` bounds.
    ///
    /// ```
    /// use gossamer_crdt::{PNCounter, ReplicaId};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut c = PNCounter::new();
    /// c.inc(a, 10);
    /// c.dec(b, 4);
    /// assert_eq!(c.value(), 6);
    /// c.inc(a, u64::MAX); // beyond `i64::MAX`
    /// assert_eq!(c.value(), i64::MAX);
    /// ```
    pub fn value(&self) -> i64 {
        let v = self.value_i128();
        i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
    }

    /// P − N exactly.
    ///
    /// ```
    /// use gossamer_crdt::{PNCounter, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut c = PNCounter::new();
    /// c.dec(r, u64::MAX);
    /// assert_eq!(c.value(), i64::MIN); // saturated
    /// assert_eq!(c.value_i128(), -i128::from(u64::MAX)); // exact
    /// ```
    pub fn value_i128(&self) -> i128 {
        // Each side is at most 2^64 · replicas, far inside i128 for any real deployment.
        self.p.value_u128() as i128 - self.n.value_u128() as i128
    }
}

impl CvRDT for PNCounter {
    fn merge(&mut self, other: &Self) {
        self.p.merge(&other.p);
        self.n.merge(&other.n);
    }
}

impl CmRDT for PNCounter {
    type Op = PNCounterOp;

    fn apply(&mut self, op: PNCounterOp) {
        match op {
            PNCounterOp::Inc(o) => self.p.apply(o),
            PNCounterOp::Dec(o) => self.n.apply(o),
        }
    }

    fn validate(&self, op: &PNCounterOp) -> Result<(), CausalityError> {
        match op {
            PNCounterOp::Inc(o) => self.p.validate(o),
            PNCounterOp::Dec(o) => self.n.validate(o),
        }
    }
}
