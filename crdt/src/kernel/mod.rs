//! The dot-store kernel: one implementation of causal join that OR-Set, OR-Map, MV-Register,
//! LWW-Register and the reset-remove counter all stand on.
//!
//! A *dot store* holds live dots (and the values they wrote); a [`CausalContext`] holds every
//! dot ever seen. A dot that is in the context but in no store was removed, so a remove is
//! "drop the dots you observed" and nothing else: no tombstones, nothing deferred. Joining
//! two (store, context) pairs keeps a dot when both sides have it, or when one side has it
//! and the other has never seen it (Almeida, Shoker and Baquero, *Delta state replicated data
//! types*, 2018). Three store shapes compose into every type:
//!
//! - [`DotSet`]: a set of dots (the presence of an OR-Set element);
//! - [`DotFun`]: dot → value (register writes, counter changes);
//! - [`DotMap`]: key → dot store (OR-Set elements, OR-Map entries).
//!
//! [`Causal<S>`] pairs a store with its context and is the CRDT users hold; its ops are small
//! deltas that the kernel applies in any order and any number of times with the same result.

mod causal;
mod dot_fun;
mod dot_map;
mod dot_set;

pub use causal::{Causal, Embed};
pub use dot_fun::DotFun;
pub use dot_map::DotMap;
pub use dot_set::DotSet;

use std::fmt;

use crate::causal::{CausalContext, Dot, JoinCtx, LocalDot, ReplicaIdx};
use crate::error::CausalityError;

/// A store of live dots, joined under two causal contexts.
///
/// Implementations MUST keep a canonical form, so that `==` on stores in the same index space
/// means "the same dots and values": ordered collections sorted, no empty sub-stores kept.
/// Composite stores (a struct of stores that share one context, like a cart item of a
/// quantity and a note) implement every method by calling it on each field.
///
/// ```
/// use gossamer_crdt::causal::{JoinCtx, LocalDot, ReplicaIdx};
/// use gossamer_crdt::kernel::{Causal, DotStore};
/// use gossamer_crdt::{CausalityError, CounterStore, CvRDT, ReplicaId, SetStore};
///
/// // A cart item: a quantity and some tags, under one context.
/// #[derive(Default, Clone, PartialEq, Debug)]
/// struct Item {
///     qty: CounterStore,
///     tags: SetStore<&'static str>,
/// }
///
/// impl DotStore for Item {
///     fn is_bottom(&self) -> bool {
///         self.qty.is_bottom() && self.tags.is_bottom()
///     }
///     fn for_each_dot(&self, f: &mut dyn FnMut(LocalDot)) {
///         self.qty.for_each_dot(f);
///         self.tags.for_each_dot(f);
///     }
///     fn retain_dots(&mut self, keep: &mut dyn FnMut(LocalDot) -> bool) {
///         self.qty.retain_dots(keep);
///         self.tags.retain_dots(keep);
///     }
///     fn join(&mut self, other: &Self, cx: JoinCtx<'_>) {
///         self.qty.join(&other.qty, cx);
///         self.tags.join(&other.tags, cx);
///     }
///     fn renumber(&mut self, map: &[ReplicaIdx]) {
///         self.qty.renumber(map);
///         self.tags.renumber(map);
///     }
///     fn check(&self) -> Result<(), CausalityError> {
///         self.qty.check()?;
///         self.tags.check()
///     }
/// }
///
/// // Paired with a context, the composite is a state-based CRDT.
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut x: Causal<Item> = Causal::new();
/// let mut y = x.clone();
/// x.project(|item| &mut item.qty, |qty| qty.inc(a, 2));
/// y.project(|item| &mut item.tags, |tags| tags.add(b, "organic"));
/// x.merge(&y);
/// y.merge(&x);
/// assert_eq!(x, y);
/// assert_eq!(x.store().qty.value(), 2);
/// assert!(x.store().tags.contains(&"organic"));
/// ```
pub trait DotStore: Default + Clone + PartialEq + fmt::Debug {
    /// True when no dot is live: the store is the bottom element (e.g. an absent key).
    ///
    /// ```
    /// use gossamer_crdt::kernel::DotStore;
    /// use gossamer_crdt::{CausalCounter, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut qty = CausalCounter::new();
    /// assert!(qty.store().is_bottom());
    /// qty.inc(r, 1);
    /// qty.dec(r, 1);
    /// // Back at zero but not bottom: both changes are live dots, for a remove to see.
    /// assert_eq!(qty.value(), 0);
    /// assert!(!qty.store().is_bottom());
    /// ```
    fn is_bottom(&self) -> bool;

    /// Calls `f` with every live dot.
    ///
    /// ```
    /// use gossamer_crdt::kernel::DotStore;
    /// use gossamer_crdt::{Dot, OrSet, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut set = OrSet::new();
    /// set.add(r, "milk");
    /// set.add(r, "eggs");
    /// set.remove(&"milk");
    /// let mut live = Vec::new();
    /// // The store names replicas by index; its context resolves them.
    /// set.store().for_each_dot(&mut |d| live.push(set.context().resolve(d)));
    /// assert_eq!(live, [Dot::new(r, 2)]); // only the add of "eggs"
    /// ```
    fn for_each_dot(&self, f: &mut dyn FnMut(LocalDot));

    /// Keeps only the dots for which `keep` answers true.
    ///
    /// ```
    /// use gossamer_crdt::kernel::DotStore;
    /// use gossamer_crdt::{Dot, OrSet, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut set = OrSet::new();
    /// set.add(r, "milk");
    /// set.add(r, "eggs");
    /// let mut store = set.store().clone();
    /// store.retain_dots(&mut |d| set.context().resolve(d) != Dot::new(r, 1));
    /// // "milk" lost its only dot, so it is gone: no empty sub-store is kept.
    /// assert!(!store.contains(&"milk") && store.contains(&"eggs"));
    /// assert_eq!(store.len(), 1);
    /// ```
    fn retain_dots(&mut self, keep: &mut dyn FnMut(LocalDot) -> bool);

    /// The causal join: afterwards `self` holds every dot both sides hold, plus the dots only
    /// one side holds that the other side has never seen. `other` lives in the index space
    /// of `cx.theirs`; `self` in that of `cx.ours`.
    ///
    /// [`Causal`]'s [`merge`](crate::CvRDT::merge) builds the [`JoinCtx`] and calls it:
    ///
    /// ```
    /// use gossamer_crdt::{CvRDT, OrSet, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut a = OrSet::new();
    /// a.add(r, "bread");
    /// a.add(r, "milk");
    /// let mut b = a.clone();
    /// b.remove(&"milk"); // b saw the add of "milk" and dropped its dot
    /// a.add(r, "eggs"); // a dot b has never seen
    /// a.merge(&b);
    /// assert!(a.contains(&"bread")); // both hold it: kept
    /// assert!(!a.contains(&"milk")); // only a holds it, and b saw it: removed
    /// assert!(a.contains(&"eggs")); // only a holds it, and b never saw it: kept
    /// ```
    fn join(&mut self, other: &Self, cx: JoinCtx<'_>);

    /// Renumbers replica indices: `map[old] == new`.
    ///
    /// ```
    /// use gossamer_crdt::causal::{LocalDot, ReplicaIdx};
    /// use gossamer_crdt::kernel::DotStore;
    /// use gossamer_crdt::{OrSet, ReplicaId, SetStore};
    ///
    /// fn dots(store: &SetStore<&str>) -> Vec<(ReplicaIdx, u64)> {
    ///     let mut v = Vec::new();
    ///     store.for_each_dot(&mut |d: LocalDot| v.push(d.into()));
    ///     v.sort();
    ///     v
    /// }
    ///
    /// let (r1, r2) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut set = OrSet::new();
    /// set.add(r1, "milk"); // r1 takes index 0 of the set's context
    /// set.add(r2, "eggs"); // r2 takes index 1
    /// set.add(r2, "bread");
    /// let before = dots(set.store());
    /// let (i0, i1) = (before[0].0, before[1].0);
    /// assert_eq!(before, [(i0, 1), (i1, 1), (i1, 2)]);
    /// let mut swapped = set.store().clone();
    /// swapped.renumber(&[i1, i0]); // index 0 becomes 1 and 1 becomes 0
    /// assert_eq!(dots(&swapped), [(i0, 1), (i0, 2), (i1, 1)]);
    /// ```
    fn renumber(&mut self, map: &[ReplicaIdx]);

    /// Checks the structural invariants of a decoded store (sorted, no duplicates, no empty
    /// sub-stores).
    ///
    /// # Errors
    /// [`CausalityError::InvalidState`] naming the broken invariant.
    ///
    /// ```
    /// use gossamer_crdt::kernel::DotStore;
    /// use gossamer_crdt::{CausalityError, OrSet, ReplicaId, SetStore};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut set = OrSet::new();
    /// set.add(r, 7u32);
    /// let bytes = serde_cbor::to_vec(set.store()).unwrap();
    /// let decoded: SetStore<u32> = serde_cbor::from_slice(&bytes).unwrap();
    /// assert_eq!(decoded.check(), Ok(()));
    /// // A set store is encoded as `[elem, dots, …]`: this one keeps 7 with no live dot.
    /// let bytes = serde_cbor::to_vec(&(7u32, Vec::<u64>::new())).unwrap();
    /// let broken: SetStore<u32> = serde_cbor::from_slice(&bytes).unwrap();
    /// assert!(matches!(broken.check(), Err(CausalityError::InvalidState(_))));
    /// ```
    fn check(&self) -> Result<(), CausalityError>;
}

/// A dot store with an op type: the store of an op-based CRDT that can also live inside an
/// [`OrMap`](crate::OrMap), sharing the map's context.
///
/// ```
/// use gossamer_crdt::causal::{JoinCtx, LocalDot, ReplicaIdx};
/// use gossamer_crdt::kernel::{Causal, CausalStore, DotStore};
/// use gossamer_crdt::{
///     CausalContext, CausalityError, CmRDT, CounterOp, CounterStore, OrMap, OrSetOp, ReplicaId, SetStore,
/// };
///
/// // A cart item: a quantity and some tags, under one context.
/// #[derive(Default, Clone, PartialEq, Debug)]
/// struct Item {
///     qty: CounterStore,
///     tags: SetStore<&'static str>,
/// }
///
/// // `DotStore` field by field, as in the `DotStore` example (hidden here).
/// # impl DotStore for Item {
/// #     fn is_bottom(&self) -> bool {
/// #         self.qty.is_bottom() && self.tags.is_bottom()
/// #     }
/// #     fn for_each_dot(&self, f: &mut dyn FnMut(LocalDot)) {
/// #         self.qty.for_each_dot(f);
/// #         self.tags.for_each_dot(f);
/// #     }
/// #     fn retain_dots(&mut self, keep: &mut dyn FnMut(LocalDot) -> bool) {
/// #         self.qty.retain_dots(keep);
/// #         self.tags.retain_dots(keep);
/// #     }
/// #     fn join(&mut self, other: &Self, cx: JoinCtx<'_>) {
/// #         self.qty.join(&other.qty, cx);
/// #         self.tags.join(&other.tags, cx);
/// #     }
/// #     fn renumber(&mut self, map: &[ReplicaIdx]) {
/// #         self.qty.renumber(map);
/// #         self.tags.renumber(map);
/// #     }
/// #     fn check(&self) -> Result<(), CausalityError> {
/// #         self.qty.check()?;
/// #         self.tags.check()
/// #     }
/// # }
///
/// #[derive(Clone, PartialEq, Debug)]
/// enum ItemOp {
///     Qty(CounterOp),
///     Tags(OrSetOp<&'static str>),
/// }
///
/// impl CausalStore for Item {
///     type Op = ItemOp;
///
///     fn apply_op(&mut self, ctx: &mut CausalContext, op: ItemOp) {
///         match op {
///             ItemOp::Qty(o) => self.qty.apply_op(ctx, o),
///             ItemOp::Tags(o) => self.tags.apply_op(ctx, o),
///         }
///     }
///     fn validate_op(&self, ctx: &CausalContext, op: &ItemOp) -> Result<(), CausalityError> {
///         match op {
///             ItemOp::Qty(o) => self.qty.validate_op(ctx, o),
///             ItemOp::Tags(o) => self.tags.validate_op(ctx, o),
///         }
///     }
/// }
///
/// // Now `Causal<Item>` is an op-based CRDT, and a value type of `OrMap`.
/// let r = ReplicaId::from_u128(1);
/// let mut cart: OrMap<&str, Causal<Item>> = OrMap::new();
/// let mut other = cart.clone();
/// let op = cart.update("milk", |item| ItemOp::Qty(item.project(|i| &mut i.qty, |q| q.inc(r, 2))));
/// other.apply(op);
/// let op = cart.update("milk", |item| ItemOp::Tags(item.project(|i| &mut i.tags, |t| t.add(r, "organic"))));
/// other.apply(op);
/// assert_eq!(other.get(&"milk").map(|item| item.qty.value()), Some(2));
/// assert!(other.get(&"milk").is_some_and(|item| item.tags.contains(&"organic")));
/// assert_eq!(other, cart);
/// ```
pub trait CausalStore: DotStore {
    /// The op shipped between replicas.
    type Op: Clone + PartialEq + fmt::Debug;

    /// Applies `op`, recording its dots in `ctx`. Duplicates are no-ops, and ops commute
    /// whatever the delivery order.
    ///
    /// ```
    /// use gossamer_crdt::kernel::CausalStore;
    /// use gossamer_crdt::{CausalContext, Dot, OrSet, ReplicaId, SetStore};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut origin = OrSet::new();
    /// let add = origin.add(r, "milk");
    /// let remove = origin.remove(&"milk");
    /// let (mut s1, mut c1) = (SetStore::default(), CausalContext::new());
    /// s1.apply_op(&mut c1, add.clone());
    /// s1.apply_op(&mut c1, remove.clone());
    /// // The other order, with a duplicate: the remove records the add's dot as seen, so the
    /// // add stays dead when it arrives.
    /// let (mut s2, mut c2) = (SetStore::default(), CausalContext::new());
    /// s2.apply_op(&mut c2, remove);
    /// s2.apply_op(&mut c2, add.clone());
    /// s2.apply_op(&mut c2, add);
    /// assert!(!s2.contains(&"milk") && c2.contains(&Dot::new(r, 1)));
    /// assert_eq!((s1, c1), (s2, c2));
    /// ```
    fn apply_op(&mut self, ctx: &mut CausalContext, op: Self::Op);

    /// Whether `op` is causally ready against `ctx` (see [`CmRDT::validate`](crate::CmRDT)).
    ///
    /// # Errors
    /// As [`CmRDT::validate`](crate::CmRDT::validate).
    ///
    /// ```
    /// use gossamer_crdt::kernel::CausalStore;
    /// use gossamer_crdt::{CausalContext, CausalityError, Dot, OrSet, ReplicaId, SetStore};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut origin = OrSet::new();
    /// let add = origin.add(r, "milk");
    /// let remove = origin.remove(&"milk");
    /// let (mut store, mut ctx) = (SetStore::default(), CausalContext::new());
    /// // The remove observed an add that has not arrived here yet.
    /// let unseen = CausalityError::UnseenDependency { dot: Dot::new(r, 1) };
    /// assert_eq!(store.validate_op(&ctx, &remove), Err(unseen));
    /// assert_eq!(store.validate_op(&ctx, &add), Ok(()));
    /// store.apply_op(&mut ctx, add);
    /// assert_eq!(store.validate_op(&ctx, &remove), Ok(()));
    /// ```
    fn validate_op(&self, ctx: &CausalContext, op: &Self::Op) -> Result<(), CausalityError>;
}

/// The live dots of `store` as full dots: what a write or remove at this replica observed.
pub(crate) fn observed<S: DotStore>(store: &S, ctx: &CausalContext) -> Vec<Dot> {
    let mut out = Vec::new();
    store.for_each_dot(&mut |d| out.push(ctx.resolve(d)));
    out.sort_unstable();
    out
}

/// Drops the `seen` dots from `store` and records them in `ctx`: the effect of an observed
/// remove, and of the dots a new write replaces. Applying it before the writes it removes
/// arrive is safe: those writes then find their dot already seen and stay dead.
pub(crate) fn remove_observed<S: DotStore>(store: &mut S, ctx: &mut CausalContext, seen: &[Dot]) {
    if seen.is_empty() {
        return;
    }
    let mut gone: Vec<LocalDot> = seen.iter().map(|d| ctx.localize(*d)).collect();
    for d in &gone {
        ctx.insert_local(*d);
    }
    gone.sort_unstable();
    store.retain_dots(&mut |d| gone.binary_search(&d).is_err());
}

/// Records the new dot of a write in `ctx`; returns it in local form when it was not seen
/// before (the caller then stores it), `None` for a duplicate or an already-removed write.
pub(crate) fn admit(ctx: &mut CausalContext, dot: Dot) -> Option<LocalDot> {
    if dot.counter == 0 {
        return None;
    }
    let d = ctx.localize(dot);
    if ctx.contains_local(d) {
        return None;
    }
    ctx.insert_local(d);
    Some(d)
}

/// `validate` for an op that writes `dot` after observing `replaces`.
pub(crate) fn validate_write(ctx: &CausalContext, dot: &Dot, replaces: &[Dot]) -> Result<(), CausalityError> {
    if ctx.contains(dot) {
        return Err(CausalityError::AlreadySeen { dot: *dot });
    }
    if !ctx.is_next(dot) {
        return Err(CausalityError::MissingDependency { dot: *dot, have: ctx.get(&dot.replica) });
    }
    validate_seen(ctx, replaces)
}

/// `validate` for an op that removes the `seen` dots.
pub(crate) fn validate_seen(ctx: &CausalContext, seen: &[Dot]) -> Result<(), CausalityError> {
    match seen.iter().find(|d| !ctx.contains(d)) {
        Some(d) => Err(CausalityError::UnseenDependency { dot: *d }),
        None => Ok(()),
    }
}

/// Implements [`DotStore`] for a newtype over a store by forwarding to field `0`.
macro_rules! forward_dot_store {
    ($ty:ty $(, [$($g:tt)*])?) => {
        impl$(<$($g)*>)? $crate::kernel::DotStore for $ty {
            fn is_bottom(&self) -> bool {
                self.0.is_bottom()
            }
            fn for_each_dot(&self, f: &mut dyn FnMut($crate::causal::LocalDot)) {
                self.0.for_each_dot(f)
            }
            fn retain_dots(&mut self, keep: &mut dyn FnMut($crate::causal::LocalDot) -> bool) {
                self.0.retain_dots(keep)
            }
            fn join(&mut self, other: &Self, cx: $crate::causal::JoinCtx<'_>) {
                self.0.join(&other.0, cx)
            }
            fn renumber(&mut self, map: &[$crate::causal::ReplicaIdx]) {
                self.0.renumber(map)
            }
            fn check(&self) -> Result<(), $crate::CausalityError> {
                self.0.check()
            }
        }
    };
}
pub(crate) use forward_dot_store;
