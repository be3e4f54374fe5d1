//! The two ways a CRDT replicates: by merging states or by applying ops.

use crate::error::CausalityError;

/// A state-based CRDT (CvRDT): replicas converge by merging whole states.
///
/// `merge` is a lattice join. Implementations MUST make it commutative, associative and
/// idempotent, and an inflation: after `a.merge(&b)`, `a` has seen every update `b` had seen
/// and lost none of its own. The law suite in `crdt/tests` checks all four for every type.
///
/// ```
/// use gossamer_crdt::{CvRDT, GCounter, ReplicaId};
///
/// let (r1, r2) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut a = GCounter::new();
/// let mut b = GCounter::new();
/// a.inc(r1, 2);
/// b.inc(r2, 3);
/// a.merge(&b);
/// b.merge(&a);
/// assert_eq!(a, b);
/// assert_eq!(a.value(), 5);
/// ```
pub trait CvRDT {
    /// Joins `other` into `self`.
    ///
    /// ```
    /// use gossamer_crdt::{CvRDT, PNCounter, ReplicaId};
    ///
    /// let (r1, r2) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut a = PNCounter::new();
    /// let mut b = PNCounter::new();
    /// a.inc(r1, 5);
    /// b.dec(r2, 2);
    /// let mut ab = a.clone();
    /// ab.merge(&b);
    /// b.merge(&a);
    /// assert_eq!(ab, b); // either order, the same state
    /// assert_eq!(ab.value(), 3);
    /// let before = ab.clone();
    /// ab.merge(&b); // merging what was already merged changes nothing
    /// assert_eq!(ab, before);
    /// ```
    fn merge(&mut self, other: &Self);
}

/// An op-based CRDT (CmRDT): replicas converge by applying each other's ops.
///
/// Mutators apply their change locally and return the [`Op`](Self::Op) to ship to other
/// replicas. Concurrent ops commute. Every type in this crate also tolerates duplicates
/// (re-applying an op is a no-op) and, for the dot-store types, any delivery order; still,
/// callers SHOULD deliver each op once and in causal order (the sync layer does), and MAY use
/// [`validate`](Self::validate) to check that an op's dependencies have been applied.
///
/// ```
/// use gossamer_crdt::{CmRDT, OrSet, ReplicaId};
///
/// let (r1, r2) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut a = OrSet::new();
/// let mut b = OrSet::new();
/// let op = a.add(r1, "milk");
/// assert!(b.validate(&op).is_ok());
/// b.apply(op);
/// assert!(b.contains(&"milk"));
/// let _ = r2;
/// ```
pub trait CmRDT {
    /// A change that can be shipped to and applied by another replica.
    type Op;

    /// Applies an op produced by this or another replica.
    ///
    /// ```
    /// use gossamer_crdt::{CmRDT, GCounter, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut origin = GCounter::new();
    /// let op = origin.inc(r, 5);
    /// origin.apply(op); // its own op: `inc` already applied it, so a no-op
    /// let mut replica = GCounter::new();
    /// replica.apply(op);
    /// replica.apply(op); // a duplicate is a no-op too
    /// assert_eq!(replica.value(), 5);
    /// assert_eq!(replica, origin);
    /// ```
    fn apply(&mut self, op: Self::Op);

    /// Tells whether `op` is causally ready here: `Ok` when its dependencies have been applied
    /// and it has not been; otherwise the error says which dependency is missing or that it
    /// is a duplicate.
    ///
    /// # Errors
    /// [`CausalityError::AlreadySeen`], [`CausalityError::MissingDependency`] or
    /// [`CausalityError::UnseenDependency`].
    ///
    /// ```
    /// use gossamer_crdt::{CausalityError, CmRDT, Dot, OrSet, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut origin = OrSet::new();
    /// let first = origin.add(r, "milk");
    /// let second = origin.add(r, "eggs");
    /// let mut replica = OrSet::new();
    /// // `second` is r's second event, and `replica` has seen none of r's events.
    /// let skips = CausalityError::MissingDependency { dot: Dot::new(r, 2), have: 0 };
    /// assert_eq!(replica.validate(&second), Err(skips));
    /// assert_eq!(replica.validate(&first), Ok(()));
    /// replica.apply(first.clone());
    /// assert_eq!(replica.validate(&second), Ok(()));
    /// assert_eq!(replica.validate(&first), Err(CausalityError::AlreadySeen { dot: Dot::new(r, 1) }));
    /// ```
    fn validate(&self, op: &Self::Op) -> Result<(), CausalityError>;
}
