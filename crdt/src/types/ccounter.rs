//! `CausalCounter`: the reset-remove counter, for counts inside maps.

use serde::{Deserialize, Serialize};

use crate::causal::{CausalContext, Dot, ReplicaId};
use crate::error::CausalityError;
use crate::kernel::{self, Causal, CausalStore, DotFun, forward_dot_store};

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

/// The store of a [`CausalCounter`]: live changes by dot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CounterStore(DotFun<i64>);

forward_dot_store!(CounterStore);

/// One change of a [`CausalCounter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CounterOp {
    /// The change's dot.
    pub dot: Dot,
    /// How much it adds (negative to subtract).
    pub delta: i64,
}

impl CounterStore {
    /// The sum of the live changes, saturating at the `i64` bounds.
    pub fn value(&self) -> i64 {
        let sum: i128 = self.0.values().map(|&d| i128::from(d)).sum();
        i64::try_from(sum).unwrap_or(if sum < 0 { i64::MIN } else { i64::MAX })
    }

    /// The number of live changes (the state's size).
    pub fn changes(&self) -> usize {
        self.0.len()
    }
}

impl Causal<CounterStore> {
    /// Adds `delta` on behalf of `replica` and returns the op to ship.
    pub fn add(&mut self, replica: ReplicaId, delta: i64) -> CounterOp {
        let (dot, local) = self.ctx.next_local_dot(replica);
        self.store.0.insert(local, delta);
        CounterOp { dot, delta }
    }

    /// Adds `n` (clamped to `i64::MAX`).
    pub fn inc(&mut self, replica: ReplicaId, n: u64) -> CounterOp {
        self.add(replica, i64::try_from(n).unwrap_or(i64::MAX))
    }

    /// Subtracts `n` (clamped to `i64::MAX`).
    pub fn dec(&mut self, replica: ReplicaId, n: u64) -> CounterOp {
        self.add(replica, -i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl CausalStore for CounterStore {
    type Op = CounterOp;

    fn apply_op(&mut self, ctx: &mut CausalContext, op: CounterOp) {
        if let Some(d) = kernel::admit(ctx, op.dot) {
            self.0.insert(d, op.delta);
        }
    }

    fn validate_op(&self, ctx: &CausalContext, op: &CounterOp) -> Result<(), CausalityError> {
        kernel::validate_write(ctx, &op.dot, &[])
    }
}
