//! `MvRegister`: the multi-value register.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::causal::{CausalContext, Dot, ReplicaId};
use crate::error::CausalityError;
use crate::kernel::{self, Causal, CausalStore, DotFun, forward_dot_store};

/// A register that keeps every concurrent write: a write replaces the writes its replica had
/// seen, so after concurrent writes a read returns all of them until a later write, which
/// saw them, replaces them with one value.
///
/// **Equal values**: two concurrent writes of the same value are two writes (two dots) in
/// the state; [`values`](MvStore::values) returns distinct values, so a read shows that value
/// once, on every replica. Duplicates are no-ops; ops commute in any order.
///
/// ```
/// use gossamer_crdt::{CmRDT, MvRegister, ReplicaId};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut x = MvRegister::new();
/// let mut y = MvRegister::new();
/// let op_x = x.write(a, "tea");
/// let op_y = y.write(b, "coffee");
/// x.apply(op_y);
/// y.apply(op_x);
/// assert_eq!(x.values(), vec![&"coffee", &"tea"]);
/// let op = x.write(a, "both"); // saw both: replaces both
/// y.apply(op);
/// assert_eq!(y.values(), vec![&"both"]);
/// ```
pub type MvRegister<T> = Causal<MvStore<T>>;

/// The store of an [`MvRegister`]: the live writes by dot.
///
/// ```
/// use gossamer_crdt::{MvRegister, MvStore, OrMap, ReplicaId};
///
/// let r = ReplicaId::from_u128(1);
/// let mut prefs: OrMap<&str, MvRegister<&str>> = OrMap::new();
/// prefs.update("drink", |reg| reg.write(r, "tea"));
/// // Inside a map, a register is read through its store.
/// let drink: &MvStore<&str> = prefs.get(&"drink").unwrap();
/// assert_eq!(drink.values(), vec![&"tea"]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MvStore<T>(DotFun<T>);

impl<T> Default for MvStore<T> {
    fn default() -> Self {
        Self(DotFun::default())
    }
}

forward_dot_store!(MvStore<T>, [T: Clone + PartialEq + fmt::Debug]);

/// A write: the new value under a new dot, replacing the writes the origin had seen.
///
/// ```
/// use gossamer_crdt::{CmRDT, Dot, MvRegister, ReplicaId};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut x = MvRegister::new();
/// let mut y = MvRegister::new();
/// let op_y = y.write(b, "coffee");
/// x.apply(op_y.clone());
/// let op_x = x.write(a, "tea");
/// assert_eq!(op_x.dot, Dot::new(a, 1));
/// assert_eq!(op_x.replaces, vec![op_y.dot]); // `x` had seen `y`'s write
/// y.apply(op_x);
/// assert_eq!(y.values(), vec![&"tea"]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MvOp<T> {
    /// The write's dot.
    pub dot: Dot,
    /// The value written.
    pub value: T,
    /// The writes it replaces.
    pub replaces: Vec<Dot>,
}

impl<T: Ord> MvStore<T> {
    /// The distinct values of the live writes, in order (empty before the first write).
    ///
    /// ```
    /// use gossamer_crdt::{CmRDT, MvRegister, ReplicaId};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut x = MvRegister::new();
    /// let mut y = MvRegister::new();
    /// assert!(x.values().is_empty());
    /// let op_x = x.write(a, "tea");
    /// let op_y = y.write(b, "tea"); // the same value, concurrently
    /// x.apply(op_y);
    /// y.apply(op_x);
    /// assert_eq!(x.values(), vec![&"tea"]); // two live writes, one value
    /// assert_eq!(y.values(), x.values());
    /// ```
    pub fn values(&self) -> Vec<&T> {
        let mut v: Vec<&T> = self.0.values().collect();
        v.sort();
        v.dedup();
        v
    }
}

impl<T> MvStore<T> {
    /// True before the first write (or after an enclosing map removed it).
    ///
    /// ```
    /// use gossamer_crdt::{MvRegister, ReplicaId};
    ///
    /// let mut reg = MvRegister::new();
    /// assert!(reg.is_empty());
    /// reg.write(ReplicaId::from_u128(1), "tea");
    /// assert!(!reg.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: Clone + PartialEq + fmt::Debug> Causal<MvStore<T>> {
    /// Writes `value` on behalf of `replica`, replacing every write seen here.
    ///
    /// ```
    /// use gossamer_crdt::{CmRDT, MvRegister, ReplicaId};
    ///
    /// let (a, b, c) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2), ReplicaId::from_u128(3));
    /// let mut x = MvRegister::new();
    /// let mut y = MvRegister::new();
    /// let op_x = x.write(a, "tea");
    /// let op_y = y.write(b, "coffee"); // concurrently: neither saw the other
    /// assert!(op_x.replaces.is_empty() && op_y.replaces.is_empty());
    /// let mut z = MvRegister::new();
    /// z.apply(op_y);
    /// z.apply(op_x);
    /// assert_eq!(z.values(), vec![&"coffee", &"tea"]); // both kept
    /// let op = z.write(c, "water"); // saw both: replaces both
    /// assert_eq!(op.replaces.len(), 2);
    /// assert_eq!(z.values(), vec![&"water"]);
    /// ```
    pub fn write(&mut self, replica: ReplicaId, value: T) -> MvOp<T> {
        let (dot, replaces) = self.store.0.overwrite(&mut self.ctx, replica, value.clone());
        MvOp { dot, value, replaces }
    }
}

impl<T: Clone + PartialEq + fmt::Debug> CausalStore for MvStore<T> {
    type Op = MvOp<T>;

    fn apply_op(&mut self, ctx: &mut CausalContext, op: MvOp<T>) {
        self.0.apply_write(ctx, op.dot, &op.replaces, op.value);
    }

    fn validate_op(&self, ctx: &CausalContext, op: &MvOp<T>) -> Result<(), CausalityError> {
        kernel::validate_write(ctx, &op.dot, &op.replaces)
    }
}
