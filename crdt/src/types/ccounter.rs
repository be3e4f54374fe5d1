//! `CausalCounter`: the reset-remove counter, for counts inside maps.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::causal::{CausalContext, Dot, JoinCtx, LocalDot, ReplicaId, ReplicaIdx};
use crate::error::CausalityError;
use crate::kernel::{self, Causal, CausalStore, DotFun, DotStore};

/// A counter whose every change is its own dot: `dot ↦ delta`, value = sum of live deltas.
///
/// Because each change carries a dot, a remove in an enclosing [`OrMap`](crate::OrMap) can
/// erase exactly the changes it observed: `remove(milk)` concurrent with `+1 milk` leaves
/// milk at 1 — not at the old quantity plus one (Akka's ORMap resurrects it) and not absent.
/// The price is one entry per change since the value was last removed.
///
/// Duplicates are no-ops; ops commute in any order. **Overflow**: a change is clamped to the
/// `i64` range when made; [`value`](CounterStore::value) sums in `i128` and saturates at the
/// `i64` bounds.
///
/// ```
/// use gossamer_crdt::{CausalCounter, CmRDT, ReplicaId};
///
/// let r = ReplicaId::from_u128(1);
/// let mut a = CausalCounter::new();
/// let mut b = CausalCounter::new();
/// b.apply(a.inc(r, 3));
/// b.apply(a.dec(r, 1));
/// assert_eq!((a.value(), b.value()), (2, 2));
/// ```
pub type CausalCounter = Causal<CounterStore>;

/// The store of a [`CausalCounter`]: live changes by dot, and their sum.
///
/// The sum is kept up to date by every change, so [`value`](Self::value) is O(1); joins and
/// removes, which are O(changes) anyway, recompute it.
///
/// ```
/// use gossamer_crdt::{CausalCounter, CounterStore, OrMap, ReplicaId};
///
/// let r = ReplicaId::from_u128(1);
/// let mut cart: OrMap<&str, CausalCounter> = OrMap::new();
/// cart.update("eggs", |qty| qty.inc(r, 6));
/// cart.update("eggs", |qty| qty.dec(r, 2));
/// // Inside a map, a counter is read through its store.
/// let eggs: &CounterStore = cart.get(&"eggs").unwrap();
/// assert_eq!((eggs.value(), eggs.changes()), (4, 2));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct CounterStore {
    changes: DotFun<i64>,
    /// Invariant: the sum of `changes` (an `i128` cannot overflow: fewer than 2^64 changes).
    sum: Sum,
}

/// An `i128` kept as two words: an `i128` field would align the store, and so every entry of
/// a map of counters, to 16 bytes.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
struct Sum {
    lo: u64,
    hi: i64,
}

impl Sum {
    fn get(self) -> i128 {
        (i128::from(self.hi) << 64) | i128::from(self.lo)
    }

    fn of(v: i128) -> Self {
        // Truncations intended: the low and the high 64 bits.
        Sum { lo: v as u64, hi: (v >> 64) as i64 }
    }
}

impl CounterStore {
    fn resum(&mut self) {
        self.sum = Sum::of(self.changes.values().map(|&d| i128::from(d)).sum());
    }

    fn insert(&mut self, d: LocalDot, delta: i64) {
        if self.changes.insert(d, delta) {
            self.sum = Sum::of(self.sum.get() + i128::from(delta));
        }
    }
}

impl DotStore for CounterStore {
    fn is_bottom(&self) -> bool {
        self.changes.is_bottom()
    }
    fn for_each_dot(&self, f: &mut dyn FnMut(LocalDot)) {
        self.changes.for_each_dot(f)
    }
    fn retain_dots(&mut self, keep: &mut dyn FnMut(LocalDot) -> bool) {
        let mut removed = 0i128;
        self.changes.retain(|d, &delta| {
            let k = keep(d);
            if !k {
                removed += i128::from(delta);
            }
            k
        });
        self.sum = Sum::of(self.sum.get() - removed);
    }
    fn join(&mut self, other: &Self, cx: JoinCtx<'_>) {
        self.changes.join(&other.changes, cx);
        self.resum();
    }
    fn renumber(&mut self, map: &[ReplicaIdx]) {
        self.changes.renumber(map)
    }
    fn check(&self) -> Result<(), CausalityError> {
        self.changes.check()
    }
}

impl fmt::Debug for CounterStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.changes.fmt(f)
    }
}

/// Serialized as its changes (the sum is recomputed on decoding).
impl Serialize for CounterStore {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.changes.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CounterStore {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut s = CounterStore { changes: DotFun::deserialize(deserializer)?, sum: Sum::default() };
        s.resum();
        Ok(s)
    }
}

/// One change of a [`CausalCounter`].
///
/// ```
/// use gossamer_crdt::{CausalCounter, CmRDT, CounterOp, Dot, ReplicaId};
///
/// let r = ReplicaId::from_u128(1);
/// let mut a = CausalCounter::new();
/// let op = a.dec(r, 2);
/// assert_eq!(op, CounterOp { dot: Dot::new(r, 1), delta: -2 });
/// let mut b = CausalCounter::new();
/// b.apply(op);
/// b.apply(op); // a duplicate changes nothing
/// assert_eq!(b.value(), -2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CounterOp {
    /// The change's dot.
    pub dot: Dot,
    /// How much it adds (negative to subtract).
    pub delta: i64,
}

impl CounterStore {
    /// The sum of the live changes, saturating at the `i64` bounds. O(1).
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut c = CausalCounter::new();
    /// c.inc(r, 5);
    /// c.dec(r, 8);
    /// assert_eq!(c.value(), -3);
    /// c.inc(r, u64::MAX); // each change is clamped to `i64::MAX`...
    /// c.inc(r, u64::MAX);
    /// assert_eq!(c.value(), i64::MAX); // ...and the sum saturates
    /// ```
    pub fn value(&self) -> i64 {
        let sum = self.sum.get();
        i64::try_from(sum).unwrap_or(if sum < 0 { i64::MIN } else { i64::MAX })
    }

    /// The number of live changes (the state's size).
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut c = CausalCounter::new();
    /// c.inc(r, 1);
    /// c.inc(r, 1);
    /// c.dec(r, 2);
    /// assert_eq!(c.value(), 0);
    /// assert_eq!(c.changes(), 3); // every change stays live until an enclosing map removes it
    /// ```
    pub fn changes(&self) -> usize {
        self.changes.len()
    }
}

impl Causal<CounterStore> {
    /// Adds `delta` on behalf of `replica` and returns the op to ship.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, CmRDT, ReplicaId};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut x = CausalCounter::new();
    /// let mut y = CausalCounter::new();
    /// let op_x = x.add(a, -5);
    /// let op_y = y.add(b, 7); // concurrently
    /// assert_eq!((op_x.delta, op_y.delta), (-5, 7));
    /// x.apply(op_y);
    /// y.apply(op_x);
    /// assert_eq!((x.value(), y.value()), (2, 2));
    /// ```
    pub fn add(&mut self, replica: ReplicaId, delta: i64) -> CounterOp {
        let (dot, local) = self.ctx.next_local_dot(replica);
        self.store.insert(local, delta);
        CounterOp { dot, delta }
    }

    /// Adds `n` (clamped to `i64::MAX`).
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, CmRDT, CounterOp, Dot, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut a = CausalCounter::new();
    /// let mut b = CausalCounter::new();
    /// let op = a.inc(r, 3);
    /// assert_eq!(op, CounterOp { dot: Dot::new(r, 1), delta: 3 });
    /// b.apply(op);
    /// assert_eq!(b.value(), 3);
    /// assert_eq!(a.inc(r, u64::MAX).delta, i64::MAX); // clamped
    /// ```
    pub fn inc(&mut self, replica: ReplicaId, n: u64) -> CounterOp {
        self.add(replica, i64::try_from(n).unwrap_or(i64::MAX))
    }

    /// Subtracts `n` (clamped to `i64::MAX`).
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, CmRDT, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut a = CausalCounter::new();
    /// let mut b = CausalCounter::new();
    /// b.apply(a.inc(r, 1));
    /// let op = a.dec(r, 3);
    /// assert_eq!(op.delta, -3);
    /// b.apply(op);
    /// assert_eq!((a.value(), b.value()), (-2, -2)); // no floor at zero
    /// ```
    pub fn dec(&mut self, replica: ReplicaId, n: u64) -> CounterOp {
        self.add(replica, -i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl CausalStore for CounterStore {
    type Op = CounterOp;

    fn apply_op(&mut self, ctx: &mut CausalContext, op: CounterOp) {
        if let Some(d) = kernel::admit(ctx, op.dot) {
            self.insert(d, op.delta);
        }
    }

    fn validate_op(&self, ctx: &CausalContext, op: &CounterOp) -> Result<(), CausalityError> {
        kernel::validate_write(ctx, &op.dot, &[])
    }
}
