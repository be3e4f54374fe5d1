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
///
/// ```
/// use gossamer_crdt::kernel::Embed;
/// use gossamer_crdt::{CausalCounter, CounterStore, MvRegister, OrMap, ReplicaId};
///
/// // The keys of any map, whatever CRDT its values are.
/// fn keys<V: Embed>(map: &OrMap<&'static str, V>) -> Vec<&'static str> {
///     map.keys().copied().collect()
/// }
///
/// let r = ReplicaId::from_u128(1);
/// let mut cart: OrMap<&str, CausalCounter> = OrMap::new();
/// cart.update("milk", |qty| qty.inc(r, 2));
/// let mut prefs: OrMap<&str, MvRegister<&str>> = OrMap::new();
/// prefs.update("drink", |reg| reg.write(r, "tea"));
/// assert_eq!((keys(&cart), keys(&prefs)), (vec!["milk"], vec!["drink"]));
/// // Under each key the map keeps `V::Store`: for a `CausalCounter`, a `CounterStore`.
/// let milk: &<CausalCounter as Embed>::Store = cart.get(&"milk").unwrap();
/// let milk: &CounterStore = milk;
/// assert_eq!(milk.value(), 2);
/// ```
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
    ///
    /// ```
    /// use gossamer_crdt::kernel::Causal;
    /// use gossamer_crdt::{CvRDT, OrSet, ReplicaId};
    ///
    /// let empty: OrSet<&str> = Causal::new();
    /// assert!(empty.is_empty() && empty.context().is_empty());
    /// let mut set = OrSet::new();
    /// set.add(ReplicaId::from_u128(1), "milk");
    /// let before = set.clone();
    /// set.merge(&empty); // the empty state is the identity of merge
    /// assert_eq!(set, before);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything this replica has seen.
    ///
    /// ```
    /// use gossamer_crdt::{Dot, OrSet, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut set = OrSet::new();
    /// set.add(r, "milk");
    /// set.remove(&"milk");
    /// assert!(set.is_empty());
    /// // The add's dot is in no store but still in the context: it was seen, then removed.
    /// assert!(set.context().contains(&Dot::new(r, 1)));
    /// assert_eq!(set.context().get(&r), 1);
    /// ```
    pub fn context(&self) -> &CausalContext {
        &self.ctx
    }

    /// The live dots and their values.
    ///
    /// ```
    /// use gossamer_crdt::{CmRDT, OrSet, ReplicaId, SetStore};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut x = OrSet::new();
    /// let milk = x.add(r, "milk");
    /// x.add(r, "eggs");
    /// x.remove(&"eggs");
    /// let mut y = OrSet::new();
    /// y.apply(milk);
    /// // The same live dots, so equal stores; but only `x` has seen the eggs come and go.
    /// let store: &SetStore<&str> = x.store();
    /// assert_eq!(store, y.store());
    /// assert_ne!(x, y);
    /// ```
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Runs `f` on the part of a composite store that `field` selects, as a CRDT of its own
    /// that shares this state's context; returns what `f` returns (usually that part's op).
    ///
    /// This is how the mutators of a field are reached inside a composite value, such as the
    /// quantity of a cart item. See the [`DotStore`] and [`CausalStore`] docs for a complete
    /// composite example, as a state-based CRDT and as the value type of an
    /// [`OrMap`](crate::OrMap).
    ///
    /// ```
    /// use gossamer_crdt::causal::{JoinCtx, LocalDot, ReplicaIdx};
    /// use gossamer_crdt::kernel::{Causal, DotStore};
    /// use gossamer_crdt::{CausalityError, CounterStore, Dot, OrSetOp, ReplicaId, SetStore};
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
    /// let r = ReplicaId::from_u128(1);
    /// let mut item: Causal<Item> = Causal::new();
    /// let qty_op = item.project(|i| &mut i.qty, |qty| qty.inc(r, 2));
    /// let tag_op = item.project(|i| &mut i.tags, |tags| tags.add(r, "organic"));
    /// // One context for both fields: their changes take consecutive dots of `r`.
    /// assert_eq!(qty_op.dot, Dot::new(r, 1));
    /// assert!(matches!(tag_op, OrSetOp::Add { dot, .. } if dot == Dot::new(r, 2)));
    /// assert_eq!(item.context().get(&r), 2);
    /// assert_eq!(item.store().qty.value(), 2);
    /// assert!(item.store().tags.contains(&"organic"));
    /// ```
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
