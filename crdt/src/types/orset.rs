//! `OrSet`: the add-wins observed-remove set.

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

use crate::causal::{CausalContext, Dot, ReplicaId};
use crate::error::CausalityError;
use crate::kernel::{self, Causal, CausalStore, DotMap, DotSet, DotStore, forward_dot_store};

/// An add-wins set without tombstones (ORSWOT; Bieniusa et al., 2012).
///
/// Each add is a dot; a remove drops exactly the dots it observed. So an add concurrent with
/// a remove survives it (add wins), removing an element never seen is a no-op that cannot
/// block a later add, and removed elements leave nothing behind but their dots in the
/// context. Nothing is deferred and replayed. Add, remove and `contains` are O(1) expected;
/// merge is O(n + m) expected, in place.
///
/// Duplicates are no-ops and ops commute in any order: a remove that arrives before the add
/// it observed records the add's dot as seen, so the add stays dead when it arrives.
///
/// ```
/// use gossamer_crdt::{CmRDT, OrSet, ReplicaId};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut x = OrSet::new();
/// let mut y = OrSet::new();
/// let add = x.add(a, "milk");
/// y.apply(add);
/// let remove = y.remove(&"milk"); // y saw x's add
/// let again = x.add(a, "milk"); // concurrent with the remove
/// x.apply(remove);
/// y.apply(again);
/// assert!(x.contains(&"milk") && y.contains(&"milk")); // add wins
/// assert_eq!(x, y);
/// ```
pub type OrSet<T> = Causal<SetStore<T>>;

/// The store of an [`OrSet`]: element → the dots of its live adds.
///
/// Elements are indexed by hash (see [`DotMap`]), so they are `Hash + Eq` as well as `Ord`
/// (the order of [`iter`](Self::iter) and of the encoding).
///
/// ```
/// use gossamer_crdt::{OrSet, ReplicaId, SetStore};
///
/// let r = ReplicaId::from_u128(1);
/// let mut set = OrSet::new();
/// set.add(r, "milk");
/// set.add(r, "eggs");
/// // An `OrSet` reads through to its store.
/// let store: &SetStore<&str> = set.store();
/// assert!(store.contains(&"milk"));
/// assert_eq!(store.iter().collect::<Vec<_>>(), [&"eggs", &"milk"]);
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent, bound(serialize = "T: Ord + Serialize", deserialize = "T: Ord + Hash + Deserialize<'de>"))]
pub struct SetStore<T>(DotMap<T, DotSet>);

impl<T> Default for SetStore<T> {
    fn default() -> Self {
        Self(DotMap::default())
    }
}

impl<T: Hash + Eq> PartialEq for SetStore<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<T: Hash + Eq> Eq for SetStore<T> {}

impl<T: Hash + Ord> Hash for SetStore<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl<T: fmt::Debug + Ord> fmt::Debug for SetStore<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SetStore").field(&self.0).finish()
    }
}

forward_dot_store!(SetStore<T>, [T: Ord + Hash + Clone + fmt::Debug]);

/// An op of an [`OrSet`].
///
/// ```
/// use gossamer_crdt::{Dot, OrSet, OrSetOp, ReplicaId};
///
/// let r = ReplicaId::from_u128(1);
/// let mut set = OrSet::new();
/// set.add(r, "milk");
/// let again = set.add(r, "milk");
/// // The re-add supersedes the first add: the element keeps one dot.
/// assert_eq!(again, OrSetOp::Add { dot: Dot::new(r, 2), elem: "milk", replaces: vec![Dot::new(r, 1)] });
/// assert_eq!(set.remove(&"milk"), OrSetOp::Remove { elem: "milk", seen: vec![Dot::new(r, 2)] });
/// // Nothing seen any more: the op removes nothing.
/// assert_eq!(set.remove(&"milk"), OrSetOp::Remove { elem: "milk", seen: vec![] });
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrSetOp<T> {
    /// Adds `elem` under a new dot, replacing the dots of `elem` its origin had seen (so
    /// re-adding an element does not grow its state).
    Add {
        /// The add's dot.
        dot: Dot,
        /// The element.
        elem: T,
        /// The adds of `elem` it supersedes.
        replaces: Vec<Dot>,
    },
    /// Removes the adds of `elem` its origin had seen; concurrent adds survive.
    Remove {
        /// The element.
        elem: T,
        /// The adds it removes (empty when the origin had not seen `elem`: a no-op).
        seen: Vec<Dot>,
    },
}

impl<T: Ord + Hash> SetStore<T> {
    /// True when `elem` is in the set. O(1) expected.
    ///
    /// ```
    /// use gossamer_crdt::{OrSet, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut set = OrSet::new();
    /// set.add(r, "milk");
    /// assert!(set.contains(&"milk") && !set.contains(&"eggs"));
    /// set.remove(&"milk");
    /// assert!(!set.contains(&"milk"));
    /// ```
    pub fn contains(&self, elem: &T) -> bool {
        self.0.contains_key(elem)
    }

    /// The elements in order. Sorts them first: O(n log n) and one allocation; see
    /// [`iter_unordered`](Self::iter_unordered) when order does not matter.
    ///
    /// ```
    /// use gossamer_crdt::{OrSet, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut set = OrSet::new();
    /// for x in [3, 1, 2] {
    ///     set.add(r, x);
    /// }
    /// assert_eq!(set.iter().copied().collect::<Vec<_>>(), [1, 2, 3]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.0.keys()
    }

    /// The elements in no particular order: O(n), no allocation.
    ///
    /// ```
    /// use gossamer_crdt::{OrSet, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut set = OrSet::new();
    /// for x in [3u32, 1, 2] {
    ///     set.add(r, x);
    /// }
    /// // Good for anything order does not change, like a sum.
    /// assert_eq!(set.iter_unordered().sum::<u32>(), 6);
    /// let mut all: Vec<u32> = set.iter_unordered().copied().collect();
    /// all.sort();
    /// assert_eq!(all, [1, 2, 3]);
    /// ```
    pub fn iter_unordered(&self) -> impl Iterator<Item = &T> + '_ {
        self.0.iter_unordered().map(|(k, _)| k)
    }

    /// The number of elements.
    ///
    /// ```
    /// use gossamer_crdt::{CvRDT, OrSet, ReplicaId};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut x = OrSet::new();
    /// let mut y = OrSet::new();
    /// x.add(a, "milk");
    /// y.add(b, "milk");
    /// y.add(b, "eggs");
    /// x.merge(&y);
    /// assert_eq!(x.len(), 2); // "milk", added twice concurrently, is one element
    /// ```
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the set has no element.
    ///
    /// ```
    /// use gossamer_crdt::{OrSet, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut set = OrSet::new();
    /// assert!(set.is_empty());
    /// set.add(r, "milk");
    /// assert!(!set.is_empty());
    /// set.remove(&"milk");
    /// assert!(set.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: Ord + Hash + Clone + fmt::Debug> Causal<SetStore<T>> {
    /// Adds `elem` on behalf of `replica` and returns the op to ship. O(1) expected.
    ///
    /// ```
    /// use gossamer_crdt::{CmRDT, OrSet, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut mine = OrSet::new();
    /// let mut theirs = OrSet::new();
    /// let op = mine.add(r, "milk");
    /// assert!(mine.contains(&"milk")); // applied here...
    /// theirs.apply(op); // ...and shipped
    /// assert_eq!(mine, theirs);
    /// ```
    pub fn add(&mut self, replica: ReplicaId, elem: T) -> OrSetOp<T> {
        let (dot, local) = self.ctx.next_local_dot(replica);
        let ctx = &self.ctx;
        let mut replaces = Vec::new();
        self.store.0.update_with_ref(&elem, |dots| {
            dots.for_each_dot(&mut |d| replaces.push(ctx.resolve(d)));
            *dots = DotSet::one(local);
        });
        OrSetOp::Add { dot, elem, replaces }
    }

    /// Removes `elem` (the adds of it seen here) and returns the op to ship. Removing an
    /// element that is not here is a no-op, and so is its op.
    ///
    /// ```
    /// use gossamer_crdt::{CmRDT, OrSet, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut x = OrSet::new();
    /// let mut y = OrSet::new();
    /// let add = x.add(r, "milk");
    /// let early = y.remove(&"milk"); // y has not seen "milk": a no-op...
    /// y.apply(add);
    /// x.apply(early); // ...that cannot block the add
    /// assert!(x.contains(&"milk") && y.contains(&"milk"));
    /// let seen = y.remove(&"milk"); // y saw the add: it goes everywhere
    /// x.apply(seen);
    /// assert!(!x.contains(&"milk") && !y.contains(&"milk"));
    /// ```
    pub fn remove(&mut self, elem: &T) -> OrSetOp<T> {
        let seen = match self.store.0.remove(elem) {
            Some(dots) => dots.iter().map(|d| self.ctx.resolve(d)).collect(),
            None => Vec::new(),
        };
        OrSetOp::Remove { elem: elem.clone(), seen }
    }
}

impl<T: Ord + Hash + Clone + fmt::Debug> CausalStore for SetStore<T> {
    type Op = OrSetOp<T>;

    fn apply_op(&mut self, ctx: &mut CausalContext, op: OrSetOp<T>) {
        match op {
            OrSetOp::Add { dot, elem, replaces } => self.0.update_with(elem, |dots| {
                kernel::remove_observed(dots, ctx, &replaces);
                if let Some(d) = kernel::admit(ctx, dot) {
                    dots.insert(d);
                }
            }),
            OrSetOp::Remove { elem, seen } => {
                if seen.is_empty() {
                    return;
                }
                self.0.update_with(elem, |dots| kernel::remove_observed(dots, ctx, &seen));
            }
        }
    }

    fn validate_op(&self, ctx: &CausalContext, op: &OrSetOp<T>) -> Result<(), CausalityError> {
        match op {
            OrSetOp::Add { dot, replaces, .. } => kernel::validate_write(ctx, dot, replaces),
            OrSetOp::Remove { seen, .. } => kernel::validate_seen(ctx, seen),
        }
    }
}
