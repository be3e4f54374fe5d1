//! `DotSet`: a set of dots.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::DotStore;
use crate::causal::{JoinCtx, LocalDot, ReplicaIdx};
use crate::error::CausalityError;

/// A set of live dots: the presence of one OR-Set element (normally one dot; more after
/// concurrent adds of the same element).
///
/// Sixteen bytes, with no allocation for the common single-dot case, because an OR-Set holds
/// one of these per element.
///
/// ```
/// use gossamer_crdt::kernel::DotSet;
///
/// assert_eq!(std::mem::size_of::<DotSet>(), 16);
/// assert!(DotSet::default().is_empty());
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub enum DotSet {
    /// No dot: the bottom element.
    #[default]
    Empty,
    /// Exactly one dot (fields inline so the enum stays 16 bytes).
    One {
        /// The dot's replica index.
        replica: ReplicaIdx,
        /// The dot's counter.
        counter: u64,
    },
    /// Two or more dots, sorted and distinct. Boxed to keep this enum small: the vector is
    /// rare (concurrent adds of one element) and the single-dot case is what sets are made of.
    #[allow(clippy::box_collection)]
    Many(Box<Vec<LocalDot>>),
}

impl DotSet {
    /// A set holding one dot.
    pub(crate) fn one(d: LocalDot) -> Self {
        DotSet::One { replica: d.replica, counter: d.counter }
    }

    /// True when the set holds no dot.
    ///
    /// ```
    /// use gossamer_crdt::kernel::{DotMap, DotSet};
    /// use gossamer_crdt::{OrSet, ReplicaId};
    ///
    /// assert!(DotSet::default().is_empty());
    /// let mut set = OrSet::new();
    /// set.add(ReplicaId::from_u128(1), "milk");
    /// // An `OrSet`'s store is encoded as its `DotMap` of `DotSet`s: decoding it shows them.
    /// let bytes = serde_cbor::to_vec(set.store()).unwrap();
    /// let map: DotMap<&str, DotSet> = serde_cbor::from_slice(&bytes).unwrap();
    /// // A present element has a live add: a map keeps no empty dot set.
    /// assert!(map.iter().all(|(_, dots)| !dots.is_empty()));
    /// ```
    pub fn is_empty(&self) -> bool {
        matches!(self, DotSet::Empty)
    }

    /// The number of dots.
    ///
    /// ```
    /// use gossamer_crdt::kernel::{DotMap, DotSet};
    /// use gossamer_crdt::{CvRDT, OrSet, ReplicaId};
    ///
    /// fn dots_of_milk(set: &OrSet<&'static str>) -> usize {
    ///     // An `OrSet`'s store is encoded as its `DotMap` of `DotSet`s: decoding it shows them.
    ///     let bytes = serde_cbor::to_vec(set.store()).unwrap();
    ///     let map: DotMap<&str, DotSet> = serde_cbor::from_slice(&bytes).unwrap();
    ///     map.get("milk").map_or(0, DotSet::len)
    /// }
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut x = OrSet::new();
    /// let mut y = OrSet::new();
    /// x.add(a, "milk");
    /// y.add(b, "milk"); // concurrently
    /// x.merge(&y);
    /// assert_eq!(dots_of_milk(&x), 2);
    /// x.add(a, "milk"); // saw both adds: replaces them
    /// assert_eq!(dots_of_milk(&x), 1);
    /// ```
    pub fn len(&self) -> usize {
        match self {
            DotSet::Empty => 0,
            DotSet::One { .. } => 1,
            DotSet::Many(v) => v.len(),
        }
    }

    /// The dots in order.
    ///
    /// ```
    /// use gossamer_crdt::kernel::{DotMap, DotSet};
    /// use gossamer_crdt::{CvRDT, Dot, OrSet, ReplicaId};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut x = OrSet::new();
    /// let mut y = OrSet::new();
    /// x.add(a, "milk");
    /// y.add(b, "eggs");
    /// y.add(b, "milk"); // concurrently
    /// x.merge(&y);
    /// // An `OrSet`'s store is encoded as its `DotMap` of `DotSet`s: decoding it shows them.
    /// let bytes = serde_cbor::to_vec(x.store()).unwrap();
    /// let map: DotMap<&str, DotSet> = serde_cbor::from_slice(&bytes).unwrap();
    /// // Local dots name replicas by index in the set's context, which resolves them.
    /// let milk: Vec<Dot> = map.get("milk").unwrap().iter().map(|d| x.context().resolve(d)).collect();
    /// assert_eq!(milk, [Dot::new(a, 1), Dot::new(b, 2)]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = LocalDot> + '_ {
        let (one, many): (Option<LocalDot>, &[LocalDot]) = match self {
            DotSet::Empty => (None, &[]),
            DotSet::One { replica, counter } => (Some(LocalDot::new(*replica, *counter)), &[]),
            DotSet::Many(v) => (None, v.as_slice()),
        };
        one.into_iter().chain(many.iter().copied())
    }

    /// True when `d` is in the set.
    ///
    /// ```
    /// use gossamer_crdt::kernel::{DotMap, DotSet};
    /// use gossamer_crdt::{OrSet, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut set = OrSet::new();
    /// set.add(r, "milk");
    /// set.add(r, "eggs");
    /// // An `OrSet`'s store is encoded as its `DotMap` of `DotSet`s: decoding it shows them.
    /// let bytes = serde_cbor::to_vec(set.store()).unwrap();
    /// let map: DotMap<&str, DotSet> = serde_cbor::from_slice(&bytes).unwrap();
    /// let (milk, eggs) = (map.get("milk").unwrap(), map.get("eggs").unwrap());
    /// let add_of_eggs = eggs.iter().next().unwrap();
    /// assert!(eggs.contains(add_of_eggs));
    /// assert!(!milk.contains(add_of_eggs));
    /// ```
    pub fn contains(&self, d: LocalDot) -> bool {
        match self {
            DotSet::Empty => false,
            DotSet::One { replica, counter } => d == LocalDot::new(*replica, *counter),
            DotSet::Many(v) => v.binary_search(&d).is_ok(),
        }
    }

    /// Adds `d`.
    pub(crate) fn insert(&mut self, d: LocalDot) {
        match self {
            DotSet::Empty => *self = DotSet::one(d),
            DotSet::One { replica, counter } => {
                let e = LocalDot::new(*replica, *counter);
                if e != d {
                    let v = if e < d { vec![e, d] } else { vec![d, e] };
                    *self = DotSet::Many(Box::new(v));
                }
            }
            DotSet::Many(v) => {
                if let Err(i) = v.binary_search(&d) {
                    v.insert(i, d);
                }
            }
        }
    }

    fn from_sorted(mut v: Vec<LocalDot>) -> Self {
        match v.len() {
            0 => DotSet::Empty,
            1 => DotSet::one(v[0]),
            _ => {
                v.shrink_to_fit();
                DotSet::Many(Box::new(v))
            }
        }
    }
}

impl DotStore for DotSet {
    fn is_bottom(&self) -> bool {
        self.is_empty()
    }

    fn for_each_dot(&self, f: &mut dyn FnMut(LocalDot)) {
        self.iter().for_each(f);
    }

    fn retain_dots(&mut self, keep: &mut dyn FnMut(LocalDot) -> bool) {
        match self {
            DotSet::Empty => {}
            DotSet::One { replica, counter } => {
                if !keep(LocalDot::new(*replica, *counter)) {
                    *self = DotSet::Empty;
                }
            }
            DotSet::Many(v) => {
                v.retain(|d| keep(*d));
                if v.len() < 2 {
                    *self = DotSet::from_sorted(std::mem::take(v));
                }
            }
        }
    }

    fn join(&mut self, other: &Self, cx: JoinCtx<'_>) {
        // Allocation-free paths for the shapes sets are made of: one side empty, singletons.
        match (&*self, other) {
            // Ours survive unless they saw (and so removed) them.
            (_, DotSet::Empty) => {
                self.retain_dots(&mut |d| !cx.they_saw(d));
                return;
            }
            (DotSet::Empty, &DotSet::One { replica, counter }) => {
                let t = LocalDot::new(replica, counter);
                if !cx.we_saw(t) {
                    *self = DotSet::one(cx.to_ours(t));
                }
                return;
            }
            (&DotSet::One { replica, counter }, &DotSet::One { replica: tr, counter: tc }) => {
                let (mine, t) = (LocalDot::new(replica, counter), LocalDot::new(tr, tc));
                let theirs = cx.to_ours(t);
                if theirs == mine {
                    return;
                }
                // `mine` is not theirs: it survives unless they saw it. `theirs` is not ours,
                // and every dot we hold is one we saw: it joins unless we saw it.
                *self = match (!cx.they_saw(mine), !cx.we_saw(t)) {
                    (true, false) => return,
                    (false, false) => DotSet::Empty,
                    (false, true) => DotSet::one(theirs),
                    (true, true) => {
                        let v = if mine < theirs { vec![mine, theirs] } else { vec![theirs, mine] };
                        DotSet::Many(Box::new(v))
                    }
                };
                return;
            }
            _ => {}
        }
        let theirs: Vec<LocalDot> = other.iter().map(|d| cx.to_ours(d)).collect();
        let mut out: Vec<LocalDot> = self.iter().filter(|d| !cx.they_saw(*d) || theirs.contains(d)).collect();
        // Our dots are all in our context, so a dot we never saw is not among them yet.
        out.extend(theirs.iter().zip(other.iter()).filter(|(_, t)| !cx.we_saw(*t)).map(|(d, _)| *d));
        out.sort_unstable();
        *self = DotSet::from_sorted(out);
    }

    fn renumber(&mut self, map: &[ReplicaIdx]) {
        match self {
            DotSet::Empty => {}
            DotSet::One { replica, .. } => *replica = map[replica.get()],
            DotSet::Many(v) => {
                for d in v.iter_mut() {
                    d.replica = map[d.replica.get()];
                }
                v.sort_unstable();
            }
        }
    }

    fn check(&self) -> Result<(), CausalityError> {
        match self {
            DotSet::Many(v) if v.len() < 2 || !v.windows(2).all(|w| w[0] < w[1]) => {
                Err(CausalityError::InvalidState("dot set not sorted, duplicated or too short"))
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for DotSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Serialized as one flat sequence, replica index then counter for each dot in order:
/// `[r₁, c₁, r₂, c₂, …]`. An OR-Set holds one of these per element, so a per-dot pair
/// would cost every element a header (a byte in CBOR) and the encoder a call.
impl Serialize for DotSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(2 * self.len()))?;
        for d in self.iter() {
            seq.serialize_element(&d.replica)?;
            seq.serialize_element(&d.counter)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for DotSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Flat;
        impl<'de> serde::de::Visitor<'de> for Flat {
            type Value = DotSet;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a flat sequence of replica indices and counters")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<DotSet, A::Error> {
                use serde::de::Error;
                let mut next = || -> Result<Option<LocalDot>, A::Error> {
                    let Some(replica) = seq.next_element::<ReplicaIdx>()? else { return Ok(None) };
                    match seq.next_element::<u64>()? {
                        Some(counter) => Ok(Some(LocalDot::new(replica, counter))),
                        None => Err(A::Error::custom("dot set with a replica index but no counter")),
                    }
                };
                // One dot, the common case, allocates nothing.
                let Some(first) = next()? else { return Ok(DotSet::Empty) };
                let Some(second) = next()? else { return Ok(DotSet::one(first)) };
                let mut dots = vec![first, second];
                while let Some(d) = next()? {
                    dots.push(d);
                }
                if !dots.windows(2).all(|w| w[0] < w[1]) {
                    return Err(A::Error::custom("dot set not sorted or has duplicates"));
                }
                Ok(DotSet::from_sorted(dots))
            }
        }
        deserializer.deserialize_seq(Flat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(r: u32, c: u64) -> LocalDot {
        LocalDot::new(ReplicaIdx(r), c)
    }

    fn cbor(values: &[u64]) -> Vec<u8> {
        serde_cbor::to_vec(&values).unwrap()
    }

    /// One flat sequence `[r₁, c₁, r₂, c₂, …]`, and back to the same set in each variant.
    #[test]
    fn encodes_as_one_flat_sequence() {
        for (set, flat) in [
            (DotSet::Empty, vec![]),
            (DotSet::one(d(0, 7)), vec![0, 7]),
            (DotSet::from_sorted(vec![d(0, 7), d(0, 9), d(2, 1)]), vec![0, 7, 0, 9, 2, 1]),
        ] {
            let bytes = serde_cbor::to_vec(&set).unwrap();
            assert_eq!(bytes, cbor(&flat), "{set:?}");
            assert_eq!(serde_cbor::from_slice::<DotSet>(&bytes).unwrap(), set);
        }
    }

    /// Decoding refuses what no set encodes to: an odd length, dots out of order, a
    /// duplicate.
    #[test]
    fn decoding_refuses_non_canonical_input() {
        for flat in [vec![0], vec![0, 7, 1], vec![0, 9, 0, 7], vec![1, 1, 0, 5], vec![0, 7, 0, 7]] {
            assert!(serde_cbor::from_slice::<DotSet>(&cbor(&flat)).is_err(), "{flat:?}");
        }
    }
}
