//! `Causal<S>`: a dot store together with its causal context — a complete CRDT.

use std::borrow::Cow;
use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{CausalStore, DotStore};
use crate::causal::{CausalContext, JoinCtx, LocalDot};
use crate::error::CausalityError;
use crate::traits::{CmRDT, CvRDT};

/// A dot store paired with the context of everything its replica has seen.
///
/// This is the state users hold: [`OrSet`](crate::OrSet), [`OrMap`](crate::OrMap),
/// [`MvRegister`](crate::MvRegister), [`LwwRegister`](crate::LwwRegister) and
/// [`CausalCounter`](crate::CausalCounter) are `Causal<_>` of their stores. It is a
/// [`CvRDT`] (merge = causal join) and, when its store has ops, a [`CmRDT`].
///
/// Equality is semantic: two replicas that saw the same dots and hold the same live ones
/// are equal, whatever order they met their peers in. Serialization is canonical: equal
/// states encode to equal bytes.
///
/// ```
/// use gossamer_crdt::{CvRDT, OrSet, ReplicaId};
///
/// let (r1, r2) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut a = OrSet::new();
/// let mut b = OrSet::new();
/// a.add(r1, 1);
/// b.add(r2, 2);
/// let mut ab = a.clone();
/// ab.merge(&b);
/// b.merge(&a);
/// assert_eq!(ab, b);
/// assert_eq!(serde_cbor::to_vec(&ab).unwrap(), serde_cbor::to_vec(&b).unwrap());
/// ```
#[derive(Clone)]
pub struct Causal<S> {
    pub(crate) store: S,
    pub(crate) ctx: CausalContext,
}

/// A CRDT that can be the value type of an [`OrMap`](crate::OrMap): its store joins the
/// map's shared context. Implemented by every [`Causal<S>`].
pub trait Embed {
    /// The store kept under each key.
    type Store: CausalStore;
}

impl<S: CausalStore> Embed for Causal<S> {
    type Store = S;
}

/// Reads go straight to the store: `set.contains(&x)`, `map.get(&k)`, `counter.value()`.
/// Writes go through `Causal`'s mutators, which record their dots in the context.
impl<S> std::ops::Deref for Causal<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.store
    }
}

impl<S: Default> Default for Causal<S> {
    fn default() -> Self {
        Self { store: S::default(), ctx: CausalContext::new() }
    }
}

impl<S: DotStore> Causal<S> {
    /// The empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything this replica has seen.
    pub fn context(&self) -> &CausalContext {
        &self.ctx
    }

    /// The live dots and their values.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Runs `f` on the part of a composite store that `field` selects, as a CRDT of its own
    /// that shares this state's context; returns what `f` returns (usually that part's op).
    ///
    /// This is how the mutators of a field are reached inside a composite value, such as the
    /// quantity of a cart item. See the `OrMap` docs for a composite example.
    pub fn project<U: DotStore, R>(
        &mut self,
        field: impl FnOnce(&mut S) -> &mut U,
        f: impl FnOnce(&mut Causal<U>) -> R,
    ) -> R {
        let slot = field(&mut self.store);
        let mut part = Causal { store: std::mem::take(slot), ctx: std::mem::take(&mut self.ctx) };
        let out = f(&mut part);
        *slot = part.store;
        self.ctx = part.ctx;
        out
    }

    /// This state with its replica table in canonical order (borrowed when it already is).
    fn canonical(&self) -> Cow<'_, Self> {
        if self.ctx.is_canonical() {
            Cow::Borrowed(self)
        } else {
            let mut c = self.clone();
            let map = c.ctx.canonicalize();
            c.store.renumber(&map);
            Cow::Owned(c)
        }
    }

    /// Checks that a decoded state keeps the kernel's invariants: the store is well formed,
    /// every live dot is in the context and no dot is live twice.
    fn check(&self) -> Result<(), CausalityError> {
        self.store.check()?;
        let mut dots: Vec<LocalDot> = Vec::new();
        let mut outside = false;
        self.store.for_each_dot(&mut |d| {
            outside |= !self.ctx.contains_local(d);
            dots.push(d);
        });
        if outside {
            return Err(CausalityError::InvalidState("a live dot is missing from the context"));
        }
        dots.sort_unstable();
        if dots.windows(2).any(|w| w[0] == w[1]) {
            return Err(CausalityError::InvalidState("one dot is live in two places"));
        }
        Ok(())
    }
}

impl<S: DotStore> CvRDT for Causal<S> {
    fn merge(&mut self, other: &Self) {
        let remap = self.ctx.prepare_join(&other.ctx);
        let cx = JoinCtx { ours: &self.ctx, theirs: &other.ctx, remap: &remap };
        self.store.join(&other.store, cx);
        self.ctx.finish_join(&other.ctx, &remap);
    }
}

impl<S: CausalStore> CmRDT for Causal<S> {
    type Op = S::Op;

    fn apply(&mut self, op: S::Op) {
        self.store.apply_op(&mut self.ctx, op);
    }

    fn validate(&self, op: &S::Op) -> Result<(), CausalityError> {
        self.store.validate_op(&self.ctx, op)
    }
}

impl<S: DotStore> PartialEq for Causal<S> {
    fn eq(&self, other: &Self) -> bool {
        self.ctx == other.ctx && self.canonical().store == other.canonical().store
    }
}

impl<S: DotStore> fmt::Debug for Causal<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Causal").field("store", &self.store).field("ctx", &self.ctx).finish()
    }
}

/// Serialized as the pair `(context, store)`, canonical: the context's replicas in id order,
/// the store's dots naming replicas by their position there.
impl<S: DotStore + Serialize> Serialize for Causal<S> {
    fn serialize<Ser: Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        let c = self.canonical();
        (&c.ctx, &c.store).serialize(serializer)
    }
}

impl<'de, S: DotStore + Deserialize<'de>> Deserialize<'de> for Causal<S> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (ctx, store) = <(CausalContext, S)>::deserialize(deserializer)?;
        let state = Causal { store, ctx };
        state.check().map_err(D::Error::custom)?;
        Ok(state)
    }
}
