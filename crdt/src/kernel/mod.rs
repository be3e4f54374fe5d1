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
pub trait DotStore: Default + Clone + PartialEq + fmt::Debug {
    /// True when no dot is live: the store is the bottom element (e.g. an absent key).
    fn is_bottom(&self) -> bool;

    /// Calls `f` with every live dot.
    fn for_each_dot(&self, f: &mut dyn FnMut(LocalDot));

    /// Keeps only the dots for which `keep` answers true.
    fn retain_dots(&mut self, keep: &mut dyn FnMut(LocalDot) -> bool);

    /// The causal join: afterwards `self` holds every dot both sides hold, plus the dots only
    /// one side holds that the other side has never seen. `other` lives in the index space
    /// of `cx.theirs`; `self` in that of `cx.ours`.
    fn join(&mut self, other: &Self, cx: JoinCtx<'_>);

    /// Renumbers replica indices: `map[old] == new`.
    fn renumber(&mut self, map: &[ReplicaIdx]);

    /// Checks the structural invariants of a decoded store (sorted, no duplicates, no empty
    /// sub-stores).
    ///
    /// # Errors
    /// [`CausalityError::InvalidState`] naming the broken invariant.
    fn check(&self) -> Result<(), CausalityError>;
}

/// A dot store with an op type: the store of an op-based CRDT that can also live inside an
/// [`OrMap`](crate::OrMap), sharing the map's context.
pub trait CausalStore: DotStore {
    /// The op shipped between replicas.
    type Op: Clone + PartialEq + fmt::Debug;

    /// Applies `op`, recording its dots in `ctx`. Duplicates are no-ops, and ops commute
    /// whatever the delivery order.
    fn apply_op(&mut self, ctx: &mut CausalContext, op: Self::Op);

    /// Whether `op` is causally ready against `ctx` (see [`CmRDT::validate`](crate::CmRDT)).
    ///
    /// # Errors
    /// As [`CmRDT::validate`](crate::CmRDT::validate).
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
