//! `OrMap`: a map of nested CRDTs with observed-remove (reset) semantics.

use std::fmt;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

use crate::causal::{CausalContext, Dot};
use crate::error::CausalityError;
use crate::kernel::{self, Causal, CausalStore, DotMap, Embed, forward_dot_store};

/// A map from keys to nested CRDTs that all share the map's causal context.
///
/// `V` is any [`Causal`] CRDT: [`CausalCounter`](crate::CausalCounter),
/// [`LwwRegister`](crate::LwwRegister), [`MvRegister`](crate::MvRegister),
/// [`OrSet`](crate::OrSet), another `OrMap`, or a composite of their stores. A key is present
/// while its value holds a live dot. Removing a key drops exactly the dots the remover had
/// seen under it: concurrent updates survive and nothing the remover saw comes back
/// (*reset-remove*), so `remove(milk)` ∥ `+1 milk` converges to milk = 1.
///
/// ```
/// use gossamer_crdt::{CausalCounter, CmRDT, OrMap, ReplicaId};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut x: OrMap<&str, CausalCounter> = OrMap::new();
/// let mut y = x.clone();
/// y.apply(x.update("milk", |q| q.inc(a, 3)));
/// let remove = y.remove(&"milk"); // y saw the 3
/// let plus = x.update("milk", |q| q.inc(a, 1)); // concurrently
/// x.apply(remove);
/// y.apply(plus);
/// assert_eq!(x.get(&"milk").map(|q| q.value()), Some(1));
/// assert_eq!(x, y);
/// ```
pub type OrMap<K, V> = Causal<MapStore<K, V>>;

/// The store of an [`OrMap`]: key → the store of the value CRDT `V`.
///
/// ```
/// use gossamer_crdt::{CausalCounter, MapStore, OrMap, ReplicaId};
///
/// let r = ReplicaId::from_u128(1);
/// let mut cart: OrMap<&str, CausalCounter> = OrMap::new();
/// cart.update("milk", |q| q.inc(r, 2));
/// // An `OrMap` reads through to its store, whose values are the stores of `V`.
/// let store: &MapStore<&str, CausalCounter> = cart.store();
/// assert_eq!(store.get(&"milk").map(|q| q.value()), Some(2));
/// ```
#[derive(Serialize, Deserialize)]
#[serde(
    transparent,
    bound(
        serialize = "K: Ord + Serialize, V::Store: Serialize",
        deserialize = "K: Ord + Hash + Deserialize<'de>, V::Store: Deserialize<'de>"
    )
)]
pub struct MapStore<K, V: Embed>(DotMap<K, V::Store>);

impl<K, V: Embed> Default for MapStore<K, V> {
    fn default() -> Self {
        Self(DotMap::default())
    }
}

impl<K: Clone, V: Embed> Clone for MapStore<K, V> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<K: Hash + Eq, V: Embed> PartialEq for MapStore<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<K: fmt::Debug + Ord, V: Embed> fmt::Debug for MapStore<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

forward_dot_store!(MapStore<K, V>, [K: Ord + Hash + Clone + fmt::Debug, V: Embed]);

/// An op of an [`OrMap`].
///
/// ```
/// use gossamer_crdt::{CausalCounter, CounterOp, Dot, OrMap, OrMapOp, ReplicaId};
///
/// let r = ReplicaId::from_u128(1);
/// let mut cart: OrMap<&str, CausalCounter> = OrMap::new();
/// let op = cart.update("milk", |q| q.inc(r, 2));
/// assert_eq!(op, OrMapOp::Update { key: "milk", op: CounterOp { dot: Dot::new(r, 1), delta: 2 } });
/// assert_eq!(cart.remove(&"milk"), OrMapOp::Remove { key: "milk", seen: vec![Dot::new(r, 1)] });
/// // Nothing seen under the key any more: the op removes nothing.
/// assert_eq!(cart.remove(&"milk"), OrMapOp::Remove { key: "milk", seen: vec![] });
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrMapOp<K, O> {
    /// Applies the value op `op` under `key` (creating the key if needed).
    Update {
        /// The key.
        key: K,
        /// The nested value's op.
        op: O,
    },
    /// Removes what the origin had seen under `key`; concurrent updates survive.
    Remove {
        /// The key.
        key: K,
        /// Every dot live under `key` at the origin.
        seen: Vec<Dot>,
    },
}

impl<K: Ord + Hash, V: Embed> MapStore<K, V> {
    /// The value under `key`, if present. O(1) expected.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, OrMap, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut cart: OrMap<&str, CausalCounter> = OrMap::new();
    /// cart.update("milk", |q| q.inc(r, 2));
    /// assert_eq!(cart.get(&"milk").map(|q| q.value()), Some(2));
    /// assert!(cart.get(&"eggs").is_none());
    /// cart.remove(&"milk");
    /// assert!(cart.get(&"milk").is_none());
    /// ```
    pub fn get(&self, key: &K) -> Option<&V::Store> {
        self.0.get(key)
    }

    /// True when `key` is present. O(1) expected.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, OrMap, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut cart: OrMap<&str, CausalCounter> = OrMap::new();
    /// cart.update("milk", |q| q.inc(r, 1));
    /// cart.update("milk", |q| q.dec(r, 1));
    /// // At zero but still present: its changes are live dots.
    /// assert!(cart.contains_key(&"milk"));
    /// cart.remove(&"milk");
    /// assert!(!cart.contains_key(&"milk"));
    /// ```
    pub fn contains_key(&self, key: &K) -> bool {
        self.0.contains_key(key)
    }

    /// The keys and values, in key order. Sorts them first: O(n log n) and one allocation;
    /// see [`iter_unordered`](Self::iter_unordered) when order does not matter.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, OrMap, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut cart: OrMap<&str, CausalCounter> = OrMap::new();
    /// for (item, n) in [("milk", 2), ("eggs", 6), ("bread", 1)] {
    ///     cart.update(item, |q| q.inc(r, n));
    /// }
    /// let items: Vec<(&str, i64)> = cart.iter().map(|(k, q)| (*k, q.value())).collect();
    /// assert_eq!(items, [("bread", 1), ("eggs", 6), ("milk", 2)]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V::Store)> + '_ {
        self.0.iter()
    }

    /// The keys and values in no particular order: O(n), no allocation.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, OrMap, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut cart: OrMap<&str, CausalCounter> = OrMap::new();
    /// for (item, n) in [("milk", 2), ("eggs", 6), ("bread", 1)] {
    ///     cart.update(item, |q| q.inc(r, n));
    /// }
    /// // Good for anything order does not change, like a total.
    /// assert_eq!(cart.iter_unordered().map(|(_, q)| q.value()).sum::<i64>(), 9);
    /// ```
    pub fn iter_unordered(&self) -> impl Iterator<Item = (&K, &V::Store)> + '_ {
        self.0.iter_unordered()
    }

    /// The keys, in order (sorted first, as [`iter`](Self::iter)).
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, OrMap, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut cart: OrMap<&str, CausalCounter> = OrMap::new();
    /// for item in ["milk", "eggs", "bread"] {
    ///     cart.update(item, |q| q.inc(r, 1));
    /// }
    /// assert_eq!(cart.keys().copied().collect::<Vec<_>>(), ["bread", "eggs", "milk"]);
    /// ```
    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.0.keys()
    }

    /// The number of keys present.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, OrMap, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut cart: OrMap<&str, CausalCounter> = OrMap::new();
    /// cart.update("milk", |q| q.inc(r, 1));
    /// cart.update("milk", |q| q.inc(r, 1)); // the same key
    /// cart.update("eggs", |q| q.inc(r, 6));
    /// assert_eq!(cart.len(), 2);
    /// cart.remove(&"eggs");
    /// assert_eq!(cart.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no key is present.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, OrMap, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut cart: OrMap<&str, CausalCounter> = OrMap::new();
    /// assert!(cart.is_empty());
    /// cart.update("milk", |q| q.inc(r, 1));
    /// assert!(!cart.is_empty());
    /// cart.remove(&"milk");
    /// assert!(cart.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Ord + Hash + Clone + fmt::Debug, V: Embed> Causal<MapStore<K, V>> {
    /// Runs `f` on the value under `key` (empty if absent) and returns the map op that ships
    /// the value op `f` returns. The value shares this map's context, so its mutators work
    /// exactly as on a standalone CRDT.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, CmRDT, OrMap, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut cart: OrMap<&str, CausalCounter> = OrMap::new();
    /// let mut other = cart.clone();
    /// other.apply(cart.update("milk", |q| q.inc(r, 2))); // creates the key
    /// other.apply(cart.update("milk", |q| q.dec(r, 1)));
    /// assert_eq!(cart.get(&"milk").map(|q| q.value()), Some(1));
    /// assert_eq!(other, cart);
    /// ```
    pub fn update<F>(&mut self, key: K, f: F) -> OrMapOp<K, <V::Store as CausalStore>::Op>
    where
        F: FnOnce(&mut Causal<V::Store>) -> <V::Store as CausalStore>::Op,
    {
        let ctx = &mut self.ctx;
        let mut op = None;
        self.store.0.update_with_ref(&key, |store| {
            let mut value = Causal { store: std::mem::take(store), ctx: std::mem::take(ctx) };
            op = Some(f(&mut value));
            // The placeholders `take` left behind own no memory: forgetting them instead of
            // dropping them saves two out-of-line drops on every update (~7 % of its cost).
            std::mem::forget(std::mem::replace(store, value.store));
            std::mem::forget(std::mem::replace(ctx, value.ctx));
        });
        OrMapOp::Update { key, op: op.expect("update_with runs its closure") }
    }

    /// Removes `key` (every dot seen under it) and returns the op to ship. Removing an absent
    /// key is a no-op, and so is its op.
    ///
    /// ```
    /// use gossamer_crdt::{CmRDT, OrMap, OrSet, ReplicaId};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut x: OrMap<&str, OrSet<&str>> = OrMap::new();
    /// let mut y = x.clone();
    /// y.apply(x.update("list", |s| s.add(a, "milk")));
    /// let remove = y.remove(&"list"); // y saw "milk"
    /// let eggs = x.update("list", |s| s.add(a, "eggs")); // concurrently
    /// x.apply(remove);
    /// y.apply(eggs);
    /// // The concurrent add survives; what the remover saw does not come back.
    /// let list: Vec<&str> = x.get(&"list").map(|s| s.iter().copied().collect()).unwrap_or_default();
    /// assert_eq!(list, ["eggs"]);
    /// assert_eq!(x, y);
    /// ```
    pub fn remove(&mut self, key: &K) -> OrMapOp<K, <V::Store as CausalStore>::Op> {
        let seen = match self.store.0.remove(key) {
            Some(store) => kernel::observed(&store, &self.ctx),
            None => Vec::new(),
        };
        OrMapOp::Remove { key: key.clone(), seen }
    }
}

impl<K: Ord + Hash + Clone + fmt::Debug, V: Embed> CausalStore for MapStore<K, V> {
    type Op = OrMapOp<K, <V::Store as CausalStore>::Op>;

    fn apply_op(&mut self, ctx: &mut CausalContext, op: Self::Op) {
        match op {
            OrMapOp::Update { key, op } => self.0.update_with(key, |store| store.apply_op(ctx, op)),
            OrMapOp::Remove { key, seen } => {
                if !seen.is_empty() {
                    self.0.update_with(key, |store| kernel::remove_observed(store, ctx, &seen));
                }
            }
        }
    }

    fn validate_op(&self, ctx: &CausalContext, op: &Self::Op) -> Result<(), CausalityError> {
        match op {
            OrMapOp::Update { key, op } => match self.0.get(key) {
                Some(store) => store.validate_op(ctx, op),
                None => V::Store::default().validate_op(ctx, op),
            },
            OrMapOp::Remove { seen, .. } => kernel::validate_seen(ctx, seen),
        }
    }
}
