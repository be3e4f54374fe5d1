//! `DotMap`: a map from keys to dot stores.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::DotStore;
use crate::causal::{JoinCtx, LocalDot, ReplicaIdx};
use crate::error::CausalityError;

/// Keys mapped to dot stores; a key is present while its store holds a live dot.
///
/// With [`DotSet`](super::DotSet) values it is an OR-Set; with the store of any CRDT as
/// values, an OR-Map whose entries share one context. The join walks both maps once in key
/// order: O(n + m).
///
/// ```
/// use gossamer_crdt::kernel::{DotMap, DotSet};
///
/// let m: DotMap<String, DotSet> = DotMap::default();
/// assert!(m.is_empty());
/// assert!(m.get("milk").is_none());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DotMap<K, S> {
    /// Invariant: no value is bottom.
    entries: BTreeMap<K, S>,
}

impl<K, S> Default for DotMap<K, S> {
    fn default() -> Self {
        Self { entries: BTreeMap::new() }
    }
}

impl<K: Ord, S> DotMap<K, S> {
    /// True when no key is present.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The number of keys present.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The store of `key`, if present.
    pub fn get<Q>(&self, key: &Q) -> Option<&S>
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.entries.get(key)
    }

    /// True when `key` is present.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.entries.contains_key(key)
    }

    /// The present keys and their stores, in key order.
    pub fn iter(&self) -> std::collections::btree_map::Iter<'_, K, S> {
        self.entries.iter()
    }

    /// The present keys, in order.
    pub fn keys(&self) -> std::collections::btree_map::Keys<'_, K, S> {
        self.entries.keys()
    }

    pub(crate) fn entries_mut(&mut self) -> &mut BTreeMap<K, S> {
        &mut self.entries
    }
}

impl<K: Ord + Clone + fmt::Debug, S: DotStore> DotMap<K, S> {
    /// Runs `f` on the store under `key` (empty if absent), then keeps the key only if its
    /// store is not bottom. One lookup.
    pub(crate) fn update_with(&mut self, key: K, f: impl FnOnce(&mut S)) {
        use std::collections::btree_map::Entry;
        match self.entries.entry(key) {
            Entry::Occupied(mut o) => {
                f(o.get_mut());
                if o.get().is_bottom() {
                    o.remove();
                }
            }
            Entry::Vacant(v) => {
                let mut s = S::default();
                f(&mut s);
                if !s.is_bottom() {
                    v.insert(s);
                }
            }
        }
    }

    /// Joins a small `other` key by key, in place: O(m log n + n log m) with no rebuild.
    fn join_in_place(&mut self, other: &Self, cx: JoinCtx<'_>) {
        for (k, b) in &other.entries {
            match self.entries.get_mut(k) {
                Some(a) => {
                    a.join(b, cx);
                    if a.is_bottom() {
                        self.entries.remove(k);
                    }
                }
                None => {
                    let mut a = S::default();
                    a.join(b, cx);
                    if !a.is_bottom() {
                        self.entries.insert(k.clone(), a);
                    }
                }
            }
        }
        // Keys only we hold lose the dots the other side has seen (and so removed).
        self.entries.retain(|k, a| {
            if !other.entries.contains_key(k) {
                a.retain_dots(&mut |d| !cx.they_saw(d));
            }
            !a.is_bottom()
        });
    }

    /// Joins by one ordered pass over both maps and a bulk rebuild: O(n + m).
    fn join_merge(&mut self, other: &Self, cx: JoinCtx<'_>) {
        let mine = std::mem::take(&mut self.entries);
        let mut out: Vec<(K, S)> = Vec::with_capacity(mine.len() + other.entries.len());
        let mut a = mine.into_iter().peekable();
        let mut b = other.entries.iter().peekable();
        loop {
            let order = match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some((ka, _)), Some((kb, _))) => ka.cmp(kb),
            };
            let (k, s) = match order {
                std::cmp::Ordering::Less => {
                    let (k, mut s) = a.next().expect("peeked");
                    s.retain_dots(&mut |d| !cx.they_saw(d));
                    (k, s)
                }
                std::cmp::Ordering::Greater => {
                    let (k, t) = b.next().expect("peeked");
                    let mut s = S::default();
                    s.join(t, cx);
                    (k.clone(), s)
                }
                std::cmp::Ordering::Equal => {
                    let (k, mut s) = a.next().expect("peeked");
                    let (_, t) = b.next().expect("peeked");
                    s.join(t, cx);
                    (k, s)
                }
            };
            if !s.is_bottom() {
                out.push((k, s));
            }
        }
        // Sorted input: `from_iter` builds the tree in bulk, in linear time.
        self.entries = out.into_iter().collect();
    }
}

impl<K: Ord + Clone + fmt::Debug, S: DotStore> DotStore for DotMap<K, S> {
    fn is_bottom(&self) -> bool {
        self.entries.is_empty()
    }

    fn for_each_dot(&self, f: &mut dyn FnMut(LocalDot)) {
        for s in self.entries.values() {
            s.for_each_dot(f);
        }
    }

    fn retain_dots(&mut self, keep: &mut dyn FnMut(LocalDot) -> bool) {
        self.entries.retain(|_, s| {
            s.retain_dots(keep);
            !s.is_bottom()
        });
    }

    fn join(&mut self, other: &Self, cx: JoinCtx<'_>) {
        if other.entries.is_empty() && self.entries.is_empty() {
            return;
        }
        // A small delta (an op-sized state) is cheaper to fold in than to rebuild around.
        if other.entries.len().saturating_mul(16) < self.entries.len() {
            self.join_in_place(other, cx);
        } else {
            self.join_merge(other, cx);
        }
    }

    fn renumber(&mut self, map: &[ReplicaIdx]) {
        for s in self.entries.values_mut() {
            s.renumber(map);
        }
    }

    fn check(&self) -> Result<(), CausalityError> {
        for s in self.entries.values() {
            if s.is_bottom() {
                return Err(CausalityError::InvalidState("dot map holds a key with no live dot"));
            }
            s.check()?;
        }
        Ok(())
    }
}

impl<K: fmt::Debug, S: fmt::Debug> fmt::Debug for DotMap<K, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries.iter()).finish()
    }
}

/// Serialized as a sequence of `(key, store)` pairs in key order (not a map: keys need not
/// be strings in every format).
impl<K: Serialize, S: Serialize> Serialize for DotMap<K, S> {
    fn serialize<Ser: Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        serializer.collect_seq(self.entries.iter())
    }
}

impl<'de, K: Deserialize<'de> + Ord, S: Deserialize<'de>> Deserialize<'de> for DotMap<K, S> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v: Vec<(K, S)> = Vec::deserialize(deserializer)?;
        if !v.windows(2).all(|w| w[0].0 < w[1].0) {
            return Err(serde::de::Error::custom("dot map keys not sorted or duplicated"));
        }
        Ok(Self { entries: v.into_iter().collect() })
    }
}
