//! `DotMap`: a map from keys to dot stores.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::DotStore;
use crate::causal::{JoinCtx, LocalDot, ReplicaIdx};
use crate::error::CausalityError;

/// Keys mapped to dot stores; a key is present while its store holds a live dot.
///
/// With [`DotSet`](super::DotSet) values it is an OR-Set; with the store of any CRDT as
/// values, an OR-Map whose entries share one context.
///
/// **Layout.** The entries sit in one dense vector, in no particular order, and a hash table
/// of 4-byte positions indexes them by key (the layout of `indexmap`). A lookup, an insert
/// and a remove are O(1) expected; the join probes one side with the keys of the other,
/// O(n + m) expected, and never rebuilds the map. An OR-Set of `u64` costs about 24 bytes an
/// element for the entry plus 5–11 for the index (the vector grows by an eighth at a time
/// once past 64 entries, so it never carries much slack).
///
/// **Order.** Where order is part of the contract it is key order: [`iter`](Self::iter),
/// [`keys`](Self::keys), `Debug` and serialization (canonical: equal maps encode to equal
/// bytes). Those sort the entries first, O(n log n) and one allocation per call;
/// [`iter_unordered`](Self::iter_unordered) is the O(n) walk when order does not matter.
///
/// **Hashing.** Keys are hashed with `foldhash` under a random seed per map. Keys can come
/// from peers, so a fixed, public hash function would let a peer send keys that all collide
/// and make each lookup linear. A per-map random seed defeats such precomputed collisions;
/// foldhash does not claim to resist an attacker who can measure our timings at length, but
/// peers here are authenticated (the sync layer only talks to trusted nodes), the table's
/// order is never observable (iteration follows the dense vector or key order, not buckets),
/// and every add, update and merged key pays the hash: foldhash takes about 1 ns for a `u64`
/// and 6 ns for an 8-byte string where std's SipHash takes about 19 and 26 (bench machine).
///
/// ```
/// use gossamer_crdt::kernel::{DotMap, DotSet};
///
/// let m: DotMap<String, DotSet> = DotMap::default();
/// assert!(m.is_empty());
/// assert!(m.get("milk").is_none());
/// ```
#[derive(Clone)]
pub struct DotMap<K, S> {
    /// Distinct keys, in no particular order. Invariant: no value is bottom.
    entries: Vec<(K, S)>,
    /// The position in `entries` of every key, by the key's hash.
    index: HashTable<u32>,
    hasher: RandomState,
}

impl<K, S> Default for DotMap<K, S> {
    fn default() -> Self {
        Self { entries: Vec::new(), index: HashTable::new(), hasher: RandomState::default() }
    }
}

/// The hash of `key` under `hasher` (a free function, so that it can be called while the
/// entries or the index are borrowed).
#[inline]
fn hash_of<Q: Hash + ?Sized>(hasher: &RandomState, key: &Q) -> u64 {
    hasher.hash_one(key)
}

/// A position in `entries` as stored in the index.
fn position(i: usize) -> u32 {
    u32::try_from(i).expect("a dot map holds fewer than 2^32 keys")
}

impl<K, S> DotMap<K, S> {
    /// True when no key is present.
    ///
    /// ```
    /// use gossamer_crdt::kernel::{DotMap, DotSet};
    /// use gossamer_crdt::{OrSet, ReplicaId};
    ///
    /// assert!(DotMap::<&str, DotSet>::default().is_empty());
    /// let mut set = OrSet::new();
    /// set.add(ReplicaId::from_u128(1), "milk");
    /// set.remove(&"milk");
    /// // An `OrSet`'s store is encoded as its `DotMap`: decoding it shows the kernel's view.
    /// let bytes = serde_cbor::to_vec(set.store()).unwrap();
    /// let map: DotMap<&str, DotSet> = serde_cbor::from_slice(&bytes).unwrap();
    /// assert!(map.is_empty()); // a removed key leaves nothing behind
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The number of keys present.
    ///
    /// ```
    /// use gossamer_crdt::kernel::{DotMap, DotSet};
    /// use gossamer_crdt::{CvRDT, OrSet, ReplicaId};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut x = OrSet::new();
    /// let mut y = OrSet::new();
    /// x.add(a, "milk");
    /// x.add(a, "eggs");
    /// y.add(b, "milk"); // concurrently
    /// x.merge(&y);
    /// // An `OrSet`'s store is encoded as its `DotMap`: decoding it shows the kernel's view.
    /// let bytes = serde_cbor::to_vec(x.store()).unwrap();
    /// let map: DotMap<&str, DotSet> = serde_cbor::from_slice(&bytes).unwrap();
    /// assert_eq!(map.len(), 2); // keys, not dots: "milk" holds two
    /// assert_eq!(map.get("milk").map(DotSet::len), Some(2));
    /// ```
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The present keys and their stores in no particular order: O(n), no allocation.
    ///
    /// ```
    /// use gossamer_crdt::kernel::{DotMap, DotSet};
    /// use gossamer_crdt::{CvRDT, OrSet, ReplicaId};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut x = OrSet::new();
    /// let mut y = OrSet::new();
    /// x.add(a, "milk");
    /// x.add(a, "eggs");
    /// y.add(b, "milk"); // concurrently
    /// x.merge(&y);
    /// let bytes = serde_cbor::to_vec(x.store()).unwrap();
    /// let map: DotMap<&str, DotSet> = serde_cbor::from_slice(&bytes).unwrap();
    /// // A count needs no order: the live adds, summed over the elements.
    /// assert_eq!(map.iter_unordered().len(), 2);
    /// assert_eq!(map.iter_unordered().map(|(_, dots)| dots.len()).sum::<usize>(), 3);
    /// ```
    pub fn iter_unordered(&self) -> impl ExactSizeIterator<Item = (&K, &S)> + '_ {
        self.entries.iter().map(|(k, s)| (k, s))
    }

    /// The entries sorted by key (what the ordered views are made from).
    fn sorted(&self) -> Vec<&(K, S)>
    where
        K: Ord,
    {
        let mut v: Vec<&(K, S)> = self.entries.iter().collect();
        v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The present keys and their stores, in key order. Sorts: O(n log n), one allocation.
    ///
    /// ```
    /// use gossamer_crdt::kernel::{DotMap, DotSet};
    /// use gossamer_crdt::{Dot, OrSet, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut set = OrSet::new();
    /// set.add(r, "milk");
    /// set.add(r, "eggs");
    /// set.add(r, "bread");
    /// let bytes = serde_cbor::to_vec(set.store()).unwrap();
    /// let map: DotMap<&str, DotSet> = serde_cbor::from_slice(&bytes).unwrap();
    /// // Each element with the dot of its add, in element order; the set's context names the replicas.
    /// let adds: Vec<(&str, Dot)> =
    ///     map.iter().flat_map(|(k, dots)| dots.iter().map(|d| (*k, set.context().resolve(d)))).collect();
    /// assert_eq!(adds, [("bread", Dot::new(r, 3)), ("eggs", Dot::new(r, 2)), ("milk", Dot::new(r, 1))]);
    /// ```
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&K, &S)> + '_
    where
        K: Ord,
    {
        self.sorted().into_iter().map(|(k, s)| (k, s))
    }

    /// The present keys, in order. Sorts: O(n log n), one allocation.
    ///
    /// ```
    /// use gossamer_crdt::kernel::DotMap;
    /// use gossamer_crdt::{CausalCounter, CounterStore, OrMap, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut cart: OrMap<&str, CausalCounter> = OrMap::new();
    /// cart.update("milk", |qty| qty.inc(r, 2));
    /// cart.update("eggs", |qty| qty.inc(r, 6));
    /// cart.update("bread", |qty| qty.inc(r, 1));
    /// cart.remove(&"eggs");
    /// // An `OrMap`'s store is encoded as a `DotMap` of its values' stores.
    /// let bytes = serde_cbor::to_vec(cart.store()).unwrap();
    /// let map: DotMap<&str, CounterStore> = serde_cbor::from_slice(&bytes).unwrap();
    /// assert_eq!(map.keys().copied().collect::<Vec<_>>(), ["bread", "milk"]);
    /// ```
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &K> + '_
    where
        K: Ord,
    {
        self.sorted().into_iter().map(|(k, _)| k)
    }
}

impl<K: Hash + Eq, S> DotMap<K, S> {
    /// The position of `key` in `entries`, given its hash.
    #[inline]
    fn find<Q>(&self, hash: u64, key: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let entries = &self.entries;
        self.index.find(hash, |&i| entries[i as usize].0.borrow() == key).map(|&i| i as usize)
    }

    /// The store of `key`, if present.
    ///
    /// ```
    /// use gossamer_crdt::kernel::DotMap;
    /// use gossamer_crdt::{CausalCounter, CounterStore, OrMap, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut cart: OrMap<&str, CausalCounter> = OrMap::new();
    /// cart.update("milk", |qty| qty.inc(r, 2));
    /// cart.update("milk", |qty| qty.inc(r, 1));
    /// // An `OrMap`'s store is encoded as a `DotMap` of its values' stores.
    /// let bytes = serde_cbor::to_vec(cart.store()).unwrap();
    /// let map: DotMap<&str, CounterStore> = serde_cbor::from_slice(&bytes).unwrap();
    /// let milk = map.get("milk").unwrap();
    /// assert_eq!((milk.value(), milk.changes()), (3, 2));
    /// assert!(map.get("eggs").is_none());
    /// ```
    pub fn get<Q>(&self, key: &Q) -> Option<&S>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find(hash_of(&self.hasher, key), key).map(|i| &self.entries[i].1)
    }

    /// True when `key` is present.
    ///
    /// ```
    /// use gossamer_crdt::kernel::DotMap;
    /// use gossamer_crdt::{CausalCounter, CounterStore, OrMap, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut cart: OrMap<&str, CausalCounter> = OrMap::new();
    /// cart.update("milk", |qty| qty.inc(r, 2));
    /// cart.update("eggs", |qty| qty.inc(r, 6));
    /// cart.remove(&"eggs");
    /// let bytes = serde_cbor::to_vec(cart.store()).unwrap();
    /// let map: DotMap<&str, CounterStore> = serde_cbor::from_slice(&bytes).unwrap();
    /// assert!(map.contains_key("milk"));
    /// assert!(!map.contains_key("eggs")); // removed: its changes' dots are gone
    /// ```
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(key).is_some()
    }

    /// Appends an entry whose key is absent. The vector grows by an eighth once past 64
    /// entries (doubling before): a set's memory then stays within about an eighth of its
    /// size, and a push still costs O(1) amortized.
    fn insert_new(&mut self, hash: u64, key: K, store: S) {
        let len = self.entries.len();
        if len == self.entries.capacity() {
            self.entries.reserve_exact(if len < 64 { len.max(4) } else { len / 8 });
        }
        self.entries.push((key, store));
        let Self { entries, index, hasher } = self;
        index.insert_unique(hash, position(len), |&i| hash_of(hasher, &entries[i as usize].0));
    }

    /// Removes the entry at `pos` (known to be present); the last entry takes its place.
    fn remove_at(&mut self, pos: usize) -> (K, S) {
        let hash = hash_of(&self.hasher, &self.entries[pos].0);
        let p = position(pos);
        match self.index.find_entry(hash, |&i| i == p) {
            Ok(e) => {
                e.remove();
            }
            Err(_) => unreachable!("every entry is indexed"),
        }
        let last = self.entries.len() - 1;
        let removed = self.entries.swap_remove(pos);
        if pos != last {
            let hash = hash_of(&self.hasher, &self.entries[pos].0);
            let l = position(last);
            *self.index.find_mut(hash, |&i| i == l).expect("every entry is indexed") = p;
        }
        removed
    }

    /// Removes `key`, returning its store.
    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<S>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let pos = self.find(hash_of(&self.hasher, key), key)?;
        Some(self.remove_at(pos).1)
    }

    /// Keeps the entries for which `keep` answers true (the order of the rest changes).
    fn retain(&mut self, mut keep: impl FnMut(&K, &mut S) -> bool) {
        let mut i = 0;
        while i < self.entries.len() {
            let (k, s) = &mut self.entries[i];
            if keep(k, s) {
                i += 1;
            } else {
                // The last entry moves to `i`: look at it next.
                self.remove_at(i);
            }
        }
    }
}

impl<K: Hash + Eq + Clone, S: DotStore> DotMap<K, S> {
    /// Runs `f` on the store of the key whose hash is `hash`: in place when present (the key
    /// leaves when its store becomes bottom); when absent, on an empty store that is returned
    /// if it is no longer bottom, for the caller to insert under its key.
    #[inline]
    fn update_in(&mut self, hash: u64, key: &K, f: impl FnOnce(&mut S)) -> Option<S> {
        match self.find(hash, key) {
            Some(pos) => {
                let s = &mut self.entries[pos].1;
                f(s);
                if s.is_bottom() {
                    self.remove_at(pos);
                }
                None
            }
            None => {
                let mut s = S::default();
                f(&mut s);
                (!s.is_bottom()).then_some(s)
            }
        }
    }

    /// Runs `f` on the store under `key` (empty if absent), then keeps the key only if its
    /// store is not bottom. One lookup.
    pub(crate) fn update_with(&mut self, key: K, f: impl FnOnce(&mut S)) {
        let hash = hash_of(&self.hasher, &key);
        if let Some(s) = self.update_in(hash, &key, f) {
            self.insert_new(hash, key, s);
        }
    }

    /// [`update_with`](Self::update_with) by reference: clones `key` only when it is inserted.
    pub(crate) fn update_with_ref(&mut self, key: &K, f: impl FnOnce(&mut S)) {
        let hash = hash_of(&self.hasher, key);
        if let Some(s) = self.update_in(hash, key, f) {
            self.insert_new(hash, key.clone(), s);
        }
    }
}

impl<K: Ord + Hash + Clone + fmt::Debug, S: DotStore> DotStore for DotMap<K, S> {
    fn is_bottom(&self) -> bool {
        self.entries.is_empty()
    }

    fn for_each_dot(&self, f: &mut dyn FnMut(LocalDot)) {
        for (_, s) in &self.entries {
            s.for_each_dot(f);
        }
    }

    fn retain_dots(&mut self, keep: &mut dyn FnMut(LocalDot) -> bool) {
        self.retain(|_, s| {
            s.retain_dots(keep);
            !s.is_bottom()
        });
    }

    /// Keys only we hold lose the dots the other side has seen; keys they hold are joined
    /// into ours, or inserted. O(n + m) expected, in place.
    fn join(&mut self, other: &Self, cx: JoinCtx<'_>) {
        if other.entries.is_empty() && self.entries.is_empty() {
            return;
        }
        // Our keys first, before theirs are added. Their map is probed only for a key with a
        // dot they saw, so merging replicas that saw nothing of each other probes nothing.
        let hasher = &other.hasher;
        self.retain(|k, s| {
            let mut seen = false;
            s.for_each_dot(&mut |d| seen |= cx.they_saw(d));
            if seen && other.find(hash_of(hasher, k), k).is_none() {
                s.retain_dots(&mut |d| !cx.they_saw(d));
            }
            !s.is_bottom()
        });
        for (k, t) in &other.entries {
            let hash = hash_of(&self.hasher, k);
            if let Some(s) = self.update_in(hash, k, |s| s.join(t, cx)) {
                self.insert_new(hash, k.clone(), s);
            }
        }
    }

    fn renumber(&mut self, map: &[ReplicaIdx]) {
        for (_, s) in &mut self.entries {
            s.renumber(map);
        }
    }

    fn check(&self) -> Result<(), CausalityError> {
        for (_, s) in &self.entries {
            if s.is_bottom() {
                return Err(CausalityError::InvalidState("dot map holds a key with no live dot"));
            }
            s.check()?;
        }
        Ok(())
    }
}

/// Equal when the same keys map to equal stores, whatever the order they were inserted in.
impl<K: Hash + Eq, S: PartialEq> PartialEq for DotMap<K, S> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.entries.iter().all(|(k, s)| other.get(k) == Some(s))
    }
}

impl<K: Hash + Eq, S: Eq> Eq for DotMap<K, S> {}

/// Hashes the entries in key order, so that equal maps hash equally.
impl<K: Hash + Ord, S: Hash> Hash for DotMap<K, S> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.len());
        for (k, s) in self.sorted() {
            k.hash(state);
            s.hash(state);
        }
    }
}

impl<K: fmt::Debug + Ord, S: fmt::Debug> fmt::Debug for DotMap<K, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Serialized as one flat sequence in key order, each key followed by its store:
/// `[k₁, s₁, k₂, s₂, …]` (not a map: keys need not be strings in every format; not a sequence
/// of pairs: that would cost every entry a header, a byte in CBOR, and the encoder a call).
impl<K: Serialize + Ord, S: Serialize> Serialize for DotMap<K, S> {
    fn serialize<Ser: Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(2 * self.entries.len()))?;
        for (k, s) in self.sorted() {
            seq.serialize_element(k)?;
            seq.serialize_element(s)?;
        }
        seq.end()
    }
}

impl<'de, K: Deserialize<'de> + Ord + Hash, S: Deserialize<'de>> Deserialize<'de> for DotMap<K, S> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Flat<K, S>(std::marker::PhantomData<(K, S)>);
        impl<'de, K: Deserialize<'de> + Ord + Hash, S: Deserialize<'de>> serde::de::Visitor<'de> for Flat<K, S> {
            type Value = DotMap<K, S>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a flat sequence of keys, each followed by its store")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                // The length comes from the input: trust it only so far.
                let mut entries: Vec<(K, S)> = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096) / 2);
                while let Some(k) = seq.next_element::<K>()? {
                    let Some(s) = seq.next_element::<S>()? else {
                        return Err(serde::de::Error::custom("dot map key without a store"));
                    };
                    if entries.last().is_some_and(|(last, _)| *last >= k) {
                        return Err(serde::de::Error::custom("dot map keys not sorted or duplicated"));
                    }
                    entries.push((k, s));
                }
                let hasher = RandomState::default();
                let mut index = HashTable::with_capacity(entries.len());
                for (i, (k, _)) in entries.iter().enumerate() {
                    index
                        .insert_unique(hash_of(&hasher, k), position(i), |&i| hash_of(&hasher, &entries[i as usize].0));
                }
                Ok(DotMap { entries, index, hasher })
            }
        }
        deserializer.deserialize_seq(Flat(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::DotSet;

    fn set(c: u64) -> DotSet {
        DotSet::one(LocalDot::new(ReplicaIdx(0), c))
    }

    /// Inserts and removes keep every entry reachable through the index.
    #[test]
    fn index_follows_swap_removes() {
        let mut m: DotMap<u64, DotSet> = DotMap::default();
        for k in 1..=200 {
            m.update_with(k, |s| *s = set(k));
        }
        for k in (1..=200).filter(|k| k % 3 == 0) {
            assert_eq!(m.remove(&k), Some(set(k)));
        }
        m.retain(|k, _| k % 5 != 0);
        for k in 1..=200 {
            let present = k % 3 != 0 && k % 5 != 0;
            assert_eq!(m.get(&k), present.then(|| set(k)).as_ref(), "key {k}");
        }
        assert_eq!(m.len(), (1..=200).filter(|k| k % 3 != 0 && k % 5 != 0).count());
        let keys: Vec<u64> = m.keys().copied().collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        // A key whose store becomes bottom leaves.
        m.update_with(1, |s| *s = DotSet::Empty);
        assert!(!m.contains_key(&1));
    }

    /// `[k₁, s₁, k₂, s₂, …]` in key order whatever the insertion order, and back; decoding
    /// refuses a key without its store and keys out of order or repeated.
    #[test]
    fn encodes_as_one_flat_sequence_in_key_order() {
        let mut m: DotMap<u64, DotSet> = DotMap::default();
        for k in [30, 10, 20] {
            m.update_with(k, |s| *s = set(k));
        }
        let bytes = serde_cbor::to_vec(&m).unwrap();
        let flat = (10u64, set(10), 20u64, set(20), 30u64, set(30));
        // A tuple encodes as an array in CBOR, as the map's sequence does.
        assert_eq!(bytes, serde_cbor::to_vec(&flat).unwrap());
        let back: DotMap<u64, DotSet> = serde_cbor::from_slice(&bytes).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.get(&20), Some(&set(20)));
        for bad in [
            serde_cbor::to_vec(&(10u64, set(10), 20u64)).unwrap(),
            serde_cbor::to_vec(&(20u64, set(20), 10u64, set(10))).unwrap(),
            serde_cbor::to_vec(&(10u64, set(10), 10u64, set(11))).unwrap(),
        ] {
            assert!(serde_cbor::from_slice::<DotMap<u64, DotSet>>(&bad).is_err());
        }
    }
}
