//! `LwwRegister`: the last-writer-wins register.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::causal::{CausalContext, Dot, Hlc, ReplicaId};
use crate::error::CausalityError;
use crate::kernel::{self, Causal, CausalStore, DotFun, forward_dot_store};

/// A register where the write with the greatest timestamp wins.
///
/// Timestamps are [`Hlc`]s; two writes with equal `Hlc`s are ordered by the writer's replica
/// id, so two writes never compare equal and every replica picks the same winner. A write
/// also replaces every write its replica had seen, whatever their timestamps: a write made
/// after reading a value always supersedes it, even from a replica whose clock is behind.
/// Concurrent writes are kept side by side until a later write replaces them (that is what
/// lets an enclosing [`OrMap`](crate::OrMap) remove exactly what it saw); reads pick the
/// greatest. Duplicates are no-ops; ops commute in any order.
///
/// ```
/// use gossamer_crdt::{CmRDT, HlcClock, LwwRegister, ReplicaId};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let (mut ca, mut cb) = (HlcClock::default(), HlcClock::default());
/// let mut x = LwwRegister::new();
/// let mut y = LwwRegister::new();
/// let op_x = x.set(a, ca.tick(1_000), "tea");
/// let op_y = y.set(b, cb.tick(2_000), "coffee"); // later
/// x.apply(op_y);
/// y.apply(op_x);
/// assert_eq!(x.get(), Some(&"coffee"));
/// assert_eq!(y.get(), Some(&"coffee"));
/// ```
pub type LwwRegister<T> = Causal<LwwStore<T>>;

/// One write: its timestamp, its writer (the tie-break) and its value.
///
/// ```
/// use gossamer_crdt::{Hlc, LwwRegister, ReplicaId, Stamped};
///
/// let r = ReplicaId::from_u128(1);
/// let mut reg = LwwRegister::new();
/// reg.set(r, Hlc::new(1_000, 0), "tea");
/// let expected = Stamped { ts: Hlc::new(1_000, 0), replica: r, value: "tea" };
/// assert_eq!(reg.winner(), Some(&expected));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stamped<T> {
    /// When it was written.
    pub ts: Hlc,
    /// Who wrote it.
    pub replica: ReplicaId,
    /// What was written.
    pub value: T,
}

/// The store of an [`LwwRegister`]: the live writes by dot.
///
/// ```
/// use gossamer_crdt::{Hlc, LwwRegister, LwwStore, OrMap, ReplicaId};
///
/// let r = ReplicaId::from_u128(1);
/// let mut prefs: OrMap<&str, LwwRegister<&str>> = OrMap::new();
/// prefs.update("drink", |reg| reg.set(r, Hlc::new(1_000, 0), "tea"));
/// // Inside a map, a register is read through its store.
/// let drink: &LwwStore<&str> = prefs.get(&"drink").unwrap();
/// assert_eq!(drink.get(), Some(&"tea"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LwwStore<T>(DotFun<Stamped<T>>);

impl<T> Default for LwwStore<T> {
    fn default() -> Self {
        Self(DotFun::default())
    }
}

forward_dot_store!(LwwStore<T>, [T: Clone + PartialEq + fmt::Debug]);

/// A write: value and timestamp under a new dot, replacing the writes the origin had seen.
///
/// ```
/// use gossamer_crdt::{CmRDT, Dot, Hlc, LwwRegister, ReplicaId};
///
/// let r = ReplicaId::from_u128(1);
/// let mut x = LwwRegister::new();
/// let first = x.set(r, Hlc::new(1_000, 0), "tea");
/// let second = x.set(r, Hlc::new(2_000, 0), "coffee");
/// assert_eq!(second.dot, Dot::new(r, 2));
/// assert_eq!(second.replaces, vec![first.dot]); // `r` had seen the first write
/// let mut y = LwwRegister::new();
/// y.apply(second); // out of order: the first write, once it arrives, stays replaced
/// y.apply(first);
/// assert_eq!(y.get(), Some(&"coffee"));
/// assert_eq!(y, x);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LwwOp<T> {
    /// The write's dot (its replica is the tie-break).
    pub dot: Dot,
    /// The write's timestamp.
    pub ts: Hlc,
    /// The value written.
    pub value: T,
    /// The writes it replaces.
    pub replaces: Vec<Dot>,
}

impl<T> LwwStore<T> {
    /// The winning write, if any.
    ///
    /// ```
    /// use gossamer_crdt::{CmRDT, Hlc, LwwRegister, ReplicaId};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let ts = Hlc::new(1_000, 0);
    /// let mut x = LwwRegister::new();
    /// let mut y = LwwRegister::new();
    /// let op_x = x.set(a, ts, "tea");
    /// let op_y = y.set(b, ts, "coffee"); // concurrent, with the same timestamp
    /// x.apply(op_y);
    /// y.apply(op_x);
    /// let w = x.winner().unwrap();
    /// assert_eq!((w.replica, w.value), (b, "coffee")); // the greater replica id breaks the tie
    /// assert_eq!(y.winner(), x.winner());
    /// ```
    pub fn winner(&self) -> Option<&Stamped<T>> {
        // The dot counter breaks the last tie: one replica reusing a timestamp (a misused
        // clock) still yields one winner everywhere.
        self.0.iter().max_by_key(|(d, s)| (s.ts, s.replica, d.counter)).map(|(_, s)| s)
    }

    /// The winning value, if any.
    ///
    /// ```
    /// use gossamer_crdt::{CmRDT, Hlc, LwwRegister, ReplicaId};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut x = LwwRegister::new();
    /// assert_eq!(x.get(), None);
    /// x.set(a, Hlc::new(2_000, 0), "tea");
    /// let mut y = LwwRegister::new();
    /// x.apply(y.set(b, Hlc::new(1_000, 0), "coffee")); // concurrent but older: loses
    /// assert_eq!(x.get(), Some(&"tea"));
    /// ```
    pub fn get(&self) -> Option<&T> {
        self.winner().map(|s| &s.value)
    }

    /// The winning write's timestamp and writer.
    ///
    /// ```
    /// use gossamer_crdt::{HlcClock, LwwRegister, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut clock = HlcClock::default();
    /// let mut reg = LwwRegister::new();
    /// assert_eq!(reg.timestamp(), None);
    /// let ts = clock.tick(1_000);
    /// reg.set(r, ts, "tea");
    /// assert_eq!(reg.timestamp(), Some((ts, r)));
    /// ```
    pub fn timestamp(&self) -> Option<(Hlc, ReplicaId)> {
        self.winner().map(|s| (s.ts, s.replica))
    }

    /// True before the first write (or after an enclosing map removed it).
    ///
    /// ```
    /// use gossamer_crdt::{Hlc, LwwRegister, ReplicaId};
    ///
    /// let mut reg = LwwRegister::new();
    /// assert!(reg.is_empty());
    /// reg.set(ReplicaId::from_u128(1), Hlc::new(1_000, 0), "tea");
    /// assert!(!reg.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: Clone + PartialEq + fmt::Debug> Causal<LwwStore<T>> {
    /// Writes `value` at time `ts` on behalf of `replica`, replacing every write seen here.
    /// Take `ts` from the replica's [`HlcClock`](crate::HlcClock).
    ///
    /// ```
    /// use gossamer_crdt::{CmRDT, HlcClock, LwwRegister, ReplicaId};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let (mut ca, mut cb) = (HlcClock::default(), HlcClock::default());
    /// let mut x = LwwRegister::new();
    /// let mut y = LwwRegister::new();
    /// let late = y.set(b, cb.tick(2_000), "coffee");
    /// let early = x.set(a, ca.tick(1_000), "tea"); // concurrent, with an earlier timestamp
    /// x.apply(late);
    /// y.apply(early);
    /// assert_eq!(x.get(), Some(&"coffee")); // the later timestamp wins on both replicas
    /// assert_eq!(y.get(), Some(&"coffee"));
    /// assert_eq!(x, y);
    /// ```
    pub fn set(&mut self, replica: ReplicaId, ts: Hlc, value: T) -> LwwOp<T> {
        let stamped = Stamped { ts, replica, value: value.clone() };
        let (dot, replaces) = self.store.0.overwrite(&mut self.ctx, replica, stamped);
        LwwOp { dot, ts, value, replaces }
    }
}

impl<T: Clone + PartialEq + fmt::Debug> CausalStore for LwwStore<T> {
    type Op = LwwOp<T>;

    fn apply_op(&mut self, ctx: &mut CausalContext, op: LwwOp<T>) {
        let stamped = Stamped { ts: op.ts, replica: op.dot.replica, value: op.value };
        self.0.apply_write(ctx, op.dot, &op.replaces, stamped);
    }

    fn validate_op(&self, ctx: &CausalContext, op: &LwwOp<T>) -> Result<(), CausalityError> {
        kernel::validate_write(ctx, &op.dot, &op.replaces)
    }
}
