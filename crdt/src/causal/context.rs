//! Causal contexts: what a replica has seen, as a version vector plus a dot cloud.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use serde::de::Error as _;
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Dot, ReplicaId, VClock};

/// The position of a replica in one [`CausalContext`]'s replica table.
///
/// Dot stores keep [`LocalDot`]s (a 4-byte index and the counter) instead of full [`Dot`]s
/// (a 16-byte id and the counter): a set of a million elements then costs 12 bytes a dot
/// instead of 24. An index means something only next to the context that issued it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReplicaIdx(pub(crate) u32);

impl ReplicaIdx {
    pub(crate) const NONE: ReplicaIdx = ReplicaIdx(u32::MAX);

    pub(crate) fn get(self) -> usize {
        self.0 as usize
    }
}

/// A dot whose replica is an index into a [`CausalContext`]'s replica table.
///
/// Only meaningful next to that context; [`CausalContext::resolve`] turns it into a [`Dot`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "(ReplicaIdx, u64)", into = "(ReplicaIdx, u64)")]
pub struct LocalDot {
    pub(crate) replica: ReplicaIdx,
    pub(crate) counter: u64,
}

impl LocalDot {
    pub(crate) const fn new(replica: ReplicaIdx, counter: u64) -> Self {
        Self { replica, counter }
    }
}

impl From<(ReplicaIdx, u64)> for LocalDot {
    fn from((replica, counter): (ReplicaIdx, u64)) -> Self {
        Self { replica, counter }
    }
}

impl From<LocalDot> for (ReplicaIdx, u64) {
    fn from(d: LocalDot) -> Self {
        (d.replica, d.counter)
    }
}

impl fmt::Debug for LocalDot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.replica.0, self.counter)
    }
}

#[derive(Clone, Debug, Default)]
struct Entry {
    id: ReplicaId,
    /// Every counter in `1..=max` has been seen.
    max: u64,
    /// Counters seen out of order. Invariant: every element is `> max + 1`.
    cloud: BTreeSet<u64>,
}

impl Entry {
    fn contains(&self, counter: u64) -> bool {
        counter != 0 && (counter <= self.max || self.cloud.contains(&counter))
    }

    fn insert(&mut self, counter: u64) {
        if counter == 0 || counter <= self.max {
            return;
        }
        if counter == self.max + 1 {
            self.max = counter;
            self.compact();
        } else {
            self.cloud.insert(counter);
        }
    }

    /// Folds the cloud's prefix back into `max` as gaps fill.
    fn compact(&mut self) {
        while let Some(&first) = self.cloud.first() {
            if first > self.max + 1 {
                break;
            }
            self.cloud.pop_first();
            self.max = self.max.max(first);
        }
    }

    fn highest(&self) -> u64 {
        self.cloud.last().copied().unwrap_or(0).max(self.max)
    }

    fn is_empty(&self) -> bool {
        self.max == 0 && self.cloud.is_empty()
    }
}

/// Everything a replica has seen: a compact version vector plus a *dot cloud* of events
/// received out of order, folded back into the vector as the gaps fill.
///
/// This is the context of the dot-store kernel (Almeida et al., *Delta state replicated data
/// types*): a dot that is in the context but in no store was removed, so removes need no
/// tombstones. Equality is semantic: two contexts that contain the same dots are equal
/// whatever the order their replicas were first seen in.
///
/// ```
/// use gossamer_crdt::{CausalContext, Dot, ReplicaId};
///
/// let r = ReplicaId::from_u128(1);
/// let mut cx = CausalContext::new();
/// cx.insert(Dot::new(r, 1));
/// cx.insert(Dot::new(r, 3)); // out of order: kept in the cloud
/// assert!(!cx.is_compact());
/// assert!(cx.contains(&Dot::new(r, 3)) && !cx.contains(&Dot::new(r, 2)));
/// cx.insert(Dot::new(r, 2)); // the gap fills and the cloud folds away
/// assert!(cx.is_compact());
/// assert_eq!(cx.vclock().get(&r), 3);
/// assert_eq!(cx.next_dot(r), Dot::new(r, 4));
/// ```
#[derive(Clone, Default)]
pub struct CausalContext {
    entries: Vec<Entry>,
    /// Replica id → position in `entries`; built only past [`SCAN_LIMIT`] replicas, so that
    /// an empty context (made on every `OrMap::update`) costs no allocation and no seeding.
    /// Boxed so that a context stays 32 bytes: it is moved in and out of every nested update.
    #[allow(clippy::box_collection)]
    index: Option<Box<HashMap<ReplicaId, u32>>>,
}

/// Up to this many replicas, `lookup` scans the table: faster than hashing a 16-byte id.
const SCAN_LIMIT: usize = 8;

/// How the replica indices of two contexts correspond while joining them.
///
/// Made by [`CausalContext::prepare_join`], which first adds every replica of the other
/// context to ours, so every index of theirs has an index of ours.
#[derive(Debug, Clone)]
pub struct Remap {
    to_ours: Vec<ReplicaIdx>,
    to_theirs: Vec<ReplicaIdx>,
}

/// The two contexts of a join and the index translation between them: what
/// [`DotStore::join`](crate::kernel::DotStore::join) needs to decide which dots survive.
#[derive(Clone, Copy)]
pub struct JoinCtx<'a> {
    pub(crate) ours: &'a CausalContext,
    pub(crate) theirs: &'a CausalContext,
    pub(crate) remap: &'a Remap,
}

impl JoinCtx<'_> {
    /// Has the other side seen our dot `d`?
    #[inline]
    pub fn they_saw(&self, d: LocalDot) -> bool {
        match self.remap.to_theirs.get(d.replica.get()) {
            Some(&t) if t != ReplicaIdx::NONE => self.theirs.contains_local(LocalDot::new(t, d.counter)),
            _ => false,
        }
    }

    /// Have we seen their dot `d` (in their index space)?
    #[inline]
    pub fn we_saw(&self, d: LocalDot) -> bool {
        self.ours.contains_local(self.to_ours(d))
    }

    /// Their dot `d` in our index space.
    #[inline]
    pub fn to_ours(&self, d: LocalDot) -> LocalDot {
        LocalDot::new(self.remap.to_ours[d.replica.get()], d.counter)
    }

    /// Our index of their replica `r`.
    #[inline]
    pub(crate) fn our_replica(&self, r: ReplicaIdx) -> ReplicaIdx {
        self.remap.to_ours[r.get()]
    }

    /// Their index of our replica `r`, if their context knows it.
    #[inline]
    pub(crate) fn their_replica(&self, r: ReplicaIdx) -> Option<ReplicaIdx> {
        self.remap.to_theirs.get(r.get()).copied().filter(|&t| t != ReplicaIdx::NONE)
    }
}

impl CausalContext {
    /// The empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when `dot` has been seen.
    pub fn contains(&self, dot: &Dot) -> bool {
        match self.lookup(&dot.replica) {
            Some(i) => self.entries[i as usize].contains(dot.counter),
            None => false,
        }
    }

    /// Records `dot` as seen; the cloud compacts as gaps fill.
    pub fn insert(&mut self, dot: Dot) {
        let i = self.intern(dot.replica);
        self.entries[i.get()].insert(dot.counter);
    }

    /// Mints and records the next dot of `replica`: one past the highest counter seen from it.
    pub fn next_dot(&mut self, replica: ReplicaId) -> Dot {
        self.next_local_dot(replica).0
    }

    /// [`next_dot`](Self::next_dot), also returning the dot in local form.
    #[inline]
    pub(crate) fn next_local_dot(&mut self, replica: ReplicaId) -> (Dot, LocalDot) {
        let i = self.intern(replica);
        let e = &mut self.entries[i.get()];
        let c = if e.cloud.is_empty() {
            // The common case, a replica minting its own dots: the prefix just grows.
            e.max = e.max.saturating_add(1);
            e.max
        } else {
            let c = e.highest().saturating_add(1);
            e.insert(c);
            c
        };
        (Dot::new(replica, c), LocalDot::new(i, c))
    }

    /// True when `dot` is the next event of its replica: every earlier event of that replica
    /// has been seen and `dot` has not. This is the causal-readiness test of `validate`.
    pub fn is_next(&self, dot: &Dot) -> bool {
        let max = self.lookup(&dot.replica).map_or(0, |i| self.entries[i as usize].max);
        dot.counter == max.saturating_add(1) && !self.contains(dot)
    }

    /// The highest counter seen from `replica` in the compact part (every earlier one seen).
    pub fn get(&self, replica: &ReplicaId) -> u64 {
        self.lookup(replica).map_or(0, |i| self.entries[i as usize].max)
    }

    /// Adds everything `other` has seen.
    pub fn merge(&mut self, other: &CausalContext) {
        let remap = self.prepare_join(other);
        self.finish_join(other, &remap);
    }

    /// The compact part as a version vector (dots in the cloud are not included).
    pub fn vclock(&self) -> VClock {
        self.entries.iter().map(|e| (e.id, e.max)).collect()
    }

    /// True when no dot waits in the cloud.
    pub fn is_compact(&self) -> bool {
        self.entries.iter().all(|e| e.cloud.is_empty())
    }

    /// The dots seen out of order, by replica then counter.
    pub fn cloud(&self) -> impl Iterator<Item = Dot> + '_ {
        let mut order: Vec<&Entry> = self.entries.iter().collect();
        order.sort_by_key(|e| e.id);
        order.into_iter().flat_map(|e| e.cloud.iter().map(move |&c| Dot::new(e.id, c)))
    }

    /// The number of dots seen out of order.
    pub fn cloud_len(&self) -> usize {
        self.entries.iter().map(|e| e.cloud.len()).sum()
    }

    /// The replicas with at least one dot seen, in id order.
    pub fn replicas(&self) -> Vec<ReplicaId> {
        let mut v: Vec<ReplicaId> = self.entries.iter().filter(|e| !e.is_empty()).map(|e| e.id).collect();
        v.sort();
        v
    }

    /// True when nothing has been seen.
    pub fn is_empty(&self) -> bool {
        self.entries.iter().all(Entry::is_empty)
    }

    /// True when `self` has seen every dot `other` has.
    pub fn dominates(&self, other: &CausalContext) -> bool {
        other.entries.iter().all(|e| {
            let Some(i) = self.lookup(&e.id) else {
                return e.is_empty();
            };
            let mine = &self.entries[i as usize];
            // `mine.max + 1` is never in our cloud, so a longer prefix on their side is unseen.
            mine.max >= e.max && e.cloud.iter().all(|&c| mine.contains(c))
        })
    }

    // ---- kernel interface: replica interning -------------------------------------------

    /// The index of `replica`, if known. Small tables (the common case: a handful of
    /// devices) are scanned, which beats hashing a 16-byte id.
    #[inline]
    fn lookup(&self, replica: &ReplicaId) -> Option<u32> {
        match &self.index {
            Some(index) => index.get(replica).copied(),
            None => self.entries.iter().position(|e| e.id == *replica).map(|i| i as u32),
        }
    }

    /// Builds or drops the index to match the table's size.
    fn reindex(&mut self) {
        self.index = (self.entries.len() > SCAN_LIMIT)
            .then(|| Box::new(self.entries.iter().enumerate().map(|(i, e)| (e.id, i as u32)).collect()));
    }

    /// The index of `replica`, adding it to the table when new.
    #[inline]
    pub(crate) fn intern(&mut self, replica: ReplicaId) -> ReplicaIdx {
        match self.lookup(&replica) {
            Some(i) => ReplicaIdx(i),
            None => self.intern_new(replica),
        }
    }

    /// [`intern`](Self::intern)'s slow path, kept out of line so the lookup inlines.
    #[cold]
    fn intern_new(&mut self, replica: ReplicaId) -> ReplicaIdx {
        let i = u32::try_from(self.entries.len()).expect("fewer than 2^32 replicas");
        self.entries.push(Entry { id: replica, ..Entry::default() });
        match &mut self.index {
            Some(index) => {
                index.insert(replica, i);
            }
            None if self.entries.len() > SCAN_LIMIT => self.reindex(),
            None => {}
        }
        ReplicaIdx(i)
    }

    /// `dot` in this context's index space, adding its replica when new.
    pub(crate) fn localize(&mut self, dot: Dot) -> LocalDot {
        LocalDot::new(self.intern(dot.replica), dot.counter)
    }

    /// The full dot behind a local one.
    pub fn resolve(&self, d: LocalDot) -> Dot {
        Dot::new(self.entries[d.replica.get()].id, d.counter)
    }

    #[inline]
    pub(crate) fn contains_local(&self, d: LocalDot) -> bool {
        self.entries.get(d.replica.get()).is_some_and(|e| e.contains(d.counter))
    }

    pub(crate) fn insert_local(&mut self, d: LocalDot) {
        self.entries[d.replica.get()].insert(d.counter);
    }

    /// First half of a join: adds `other`'s replicas to our table (no counters yet) and
    /// returns the index translation. Stores are joined between the two halves, while both
    /// contexts still say what each side had seen before the join.
    pub fn prepare_join(&mut self, other: &CausalContext) -> Remap {
        let to_ours: Vec<ReplicaIdx> = other.entries.iter().map(|e| self.intern(e.id)).collect();
        let mut to_theirs = vec![ReplicaIdx::NONE; self.entries.len()];
        for (t, o) in to_ours.iter().enumerate() {
            to_theirs[o.get()] = ReplicaIdx(t as u32);
        }
        Remap { to_ours, to_theirs }
    }

    /// Second half of a join: adds `other`'s counters.
    pub fn finish_join(&mut self, other: &CausalContext, remap: &Remap) {
        for (t, theirs) in other.entries.iter().enumerate() {
            let mine = &mut self.entries[remap.to_ours[t].get()];
            if theirs.max > mine.max {
                mine.max = theirs.max;
                let max = mine.max;
                // Drop what the new prefix covers; `max + 1` stays, for `compact` to fold in.
                mine.cloud.retain(|&c| c > max);
            }
            for &c in &theirs.cloud {
                mine.insert(c);
            }
            mine.compact();
        }
    }

    /// True when the replica table is in id order with no empty entry: then local indices
    /// are canonical, the same on every replica with the same state.
    pub(crate) fn is_canonical(&self) -> bool {
        self.entries.windows(2).all(|w| w[0].id < w[1].id) && !self.entries.iter().any(Entry::is_empty)
    }

    /// Reorders the table by replica id and drops replicas with no dot seen; returns the
    /// old-index → new-index map to renumber the stores that use this context (entries that
    /// were dropped map to nothing, and no live dot can name them).
    pub(crate) fn canonicalize(&mut self) -> Vec<ReplicaIdx> {
        let mut order: Vec<u32> =
            (0..self.entries.len() as u32).filter(|&i| !self.entries[i as usize].is_empty()).collect();
        order.sort_by_key(|&i| self.entries[i as usize].id);
        let mut map = vec![ReplicaIdx::NONE; self.entries.len()];
        for (new, &old) in order.iter().enumerate() {
            map[old as usize] = ReplicaIdx(new as u32);
        }
        let mut old = std::mem::take(&mut self.entries);
        self.entries = order.iter().map(|&i| std::mem::take(&mut old[i as usize])).collect();
        self.reindex();
        map
    }
}

impl PartialEq for CausalContext {
    fn eq(&self, other: &Self) -> bool {
        let same = |a: &CausalContext, b: &CausalContext| {
            a.entries.iter().all(|e| match b.lookup(&e.id) {
                Some(i) => {
                    let f = &b.entries[i as usize];
                    e.max == f.max && e.cloud == f.cloud
                }
                None => e.is_empty(),
            })
        };
        same(self, other) && same(other, self)
    }
}

impl Eq for CausalContext {}

impl fmt::Debug for CausalContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for e in &self.entries {
            if e.cloud.is_empty() {
                m.entry(&e.id, &e.max);
            } else {
                m.entry(&e.id, &(e.max, &e.cloud));
            }
        }
        m.finish()
    }
}

/// Serialized as a sequence of `(replica, max, cloud)` triples in table order; a context
/// embedded in a CRDT state is canonicalized (table in id order) before it is written.
impl Serialize for CausalContext {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.entries.len()))?;
        for e in &self.entries {
            seq.serialize_element(&(e.id, e.max, &e.cloud))?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for CausalContext {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw: Vec<(ReplicaId, u64, Vec<u64>)> = Vec::deserialize(deserializer)?;
        let mut cx = CausalContext::new();
        for (id, max, cloud) in raw {
            if cx.lookup(&id).is_some() {
                return Err(D::Error::custom(format_args!("replica {id} appears twice in a causal context")));
            }
            let i = cx.intern(id);
            let e = &mut cx.entries[i.get()];
            e.max = max;
            for c in cloud {
                e.insert(c);
            }
        }
        Ok(cx)
    }
}
