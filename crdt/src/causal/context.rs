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
///
/// ```
/// use gossamer_crdt::causal::{LocalDot, ReplicaIdx};
/// use gossamer_crdt::kernel::DotStore;
/// use gossamer_crdt::{OrSet, ReplicaId};
///
/// assert_eq!(std::mem::size_of::<ReplicaIdx>(), 4);
/// let (r1, r2) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut set = OrSet::new();
/// set.add(r2, "milk");
/// set.add(r1, "eggs");
/// let mut dots: Vec<LocalDot> = Vec::new();
/// set.store().for_each_dot(&mut |d| dots.push(d));
/// dots.sort(); // by index, then counter
/// let (first, _): (ReplicaIdx, u64) = dots[0].into();
/// let (second, _): (ReplicaIdx, u64) = dots[1].into();
/// assert!(first < second);
/// // Indices follow the order the context met its replicas in, not their ids: r2 came first.
/// assert_eq!(set.context().resolve(dots[0]).replica, r2);
/// assert_eq!(set.context().resolve(dots[1]).replica, r1);
/// ```
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
///
/// ```
/// use gossamer_crdt::causal::LocalDot;
/// use gossamer_crdt::kernel::DotStore;
/// use gossamer_crdt::{Dot, OrSet, ReplicaId};
///
/// fn only_dot(set: &OrSet<&str>) -> LocalDot {
///     let mut dots = Vec::new();
///     set.store().for_each_dot(&mut |d| dots.push(d));
///     dots[0]
/// }
///
/// let (r1, r2) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut a = OrSet::new();
/// a.add(r1, "milk");
/// let mut b = OrSet::new();
/// b.add(r2, "milk");
/// // The same local dot: event 1 of the first replica each context met...
/// assert_eq!(only_dot(&a), only_dot(&b));
/// // ...names a different event in each: only its own context can say which.
/// assert_eq!(a.context().resolve(only_dot(&a)), Dot::new(r1, 1));
/// assert_eq!(b.context().resolve(only_dot(&b)), Dot::new(r2, 1));
/// ```
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
///
/// ```
/// use gossamer_crdt::{CausalContext, Dot, ReplicaId};
///
/// let (r1, r2) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut ours = CausalContext::new();
/// ours.insert(Dot::new(r1, 1));
/// let mut theirs = CausalContext::new();
/// theirs.insert(Dot::new(r2, 1));
/// let remap = ours.prepare_join(&theirs);
/// // Our table has a place for r2 now, but none of its events.
/// assert!(!ours.contains(&Dot::new(r2, 1)));
/// ours.finish_join(&theirs, &remap);
/// assert!(ours.contains(&Dot::new(r2, 1)));
/// ```
#[derive(Debug, Clone)]
pub struct Remap {
    to_ours: Vec<ReplicaIdx>,
    to_theirs: Vec<ReplicaIdx>,
}

/// The two contexts of a join and the index translation between them: what
/// [`DotStore::join`](crate::kernel::DotStore::join) needs to decide which dots survive.
///
/// ```
/// use gossamer_crdt::causal::{JoinCtx, LocalDot, ReplicaIdx};
/// use gossamer_crdt::kernel::{Causal, DotStore};
/// use gossamer_crdt::{CausalityError, CvRDT, Dot, ReplicaId, SetStore};
///
/// /// A set store that logs, at each join, the two cases a causal join turns on: our dots
/// /// that the other side has seen and dropped, and their dots that we have never seen.
/// #[derive(Default, Clone, PartialEq, Debug)]
/// struct Logged {
///     set: SetStore<&'static str>,
///     removed_there: Vec<LocalDot>,
///     new_here: Vec<LocalDot>,
/// }
///
/// impl DotStore for Logged {
///     fn join(&mut self, other: &Self, cx: JoinCtx<'_>) {
///         let mut theirs = Vec::new();
///         other.set.for_each_dot(&mut |d| theirs.push(cx.to_ours(d)));
///         self.set.for_each_dot(&mut |d| {
///             if cx.they_saw(d) && !theirs.contains(&d) {
///                 self.removed_there.push(d);
///             }
///         });
///         other.set.for_each_dot(&mut |d| {
///             if !cx.we_saw(d) {
///                 self.new_here.push(cx.to_ours(d));
///             }
///         });
///         self.set.join(&other.set, cx);
///     }
///     // The rest delegates to the set.
/// #     fn is_bottom(&self) -> bool {
/// #         self.set.is_bottom()
/// #     }
/// #     fn for_each_dot(&self, f: &mut dyn FnMut(LocalDot)) {
/// #         self.set.for_each_dot(f);
/// #     }
/// #     fn retain_dots(&mut self, keep: &mut dyn FnMut(LocalDot) -> bool) {
/// #         self.set.retain_dots(keep);
/// #     }
/// #     fn renumber(&mut self, map: &[ReplicaIdx]) {
/// #         self.set.renumber(map);
/// #     }
/// #     fn check(&self) -> Result<(), CausalityError> {
/// #         self.set.check()
/// #     }
/// }
///
/// let (r1, r2) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut a: Causal<Logged> = Causal::new();
/// a.project(|s| &mut s.set, |set| set.add(r1, "milk"));
/// let mut b = a.clone();
/// b.project(|s| &mut s.set, |set| set.remove(&"milk"));
/// b.project(|s| &mut s.set, |set| set.add(r2, "eggs"));
/// a.merge(&b);
/// let resolve = |dots: &[LocalDot]| dots.iter().map(|&d| a.context().resolve(d)).collect::<Vec<_>>();
/// assert_eq!(resolve(&a.store().removed_there), [Dot::new(r1, 1)]);
/// assert_eq!(resolve(&a.store().new_here), [Dot::new(r2, 1)]);
/// assert!(!a.store().set.contains(&"milk") && a.store().set.contains(&"eggs"));
/// ```
#[derive(Clone, Copy)]
pub struct JoinCtx<'a> {
    pub(crate) ours: &'a CausalContext,
    pub(crate) theirs: &'a CausalContext,
    pub(crate) remap: &'a Remap,
}

impl JoinCtx<'_> {
    /// Has the other side seen our dot `d`?
    ///
    /// ```
    /// # use gossamer_crdt::causal::{JoinCtx, LocalDot, ReplicaIdx};
    /// # use gossamer_crdt::kernel::{Causal, DotStore};
    /// # use gossamer_crdt::{CausalityError, CvRDT, Dot, ReplicaId, SetStore};
    /// #
    /// # /// A set store that logs what each join sees.
    /// # #[derive(Default, Clone, PartialEq, Debug)]
    /// # struct Logged {
    /// #     set: SetStore<&'static str>,
    /// #     removed_there: Vec<LocalDot>,
    /// # }
    /// #
    /// # impl DotStore for Logged {
    /// #     fn is_bottom(&self) -> bool {
    /// #         self.set.is_bottom()
    /// #     }
    /// #     fn for_each_dot(&self, f: &mut dyn FnMut(LocalDot)) {
    /// #         self.set.for_each_dot(f);
    /// #     }
    /// #     fn retain_dots(&mut self, keep: &mut dyn FnMut(LocalDot) -> bool) {
    /// #         self.set.retain_dots(keep);
    /// #     }
    /// #     fn renumber(&mut self, map: &[ReplicaIdx]) {
    /// #         self.set.renumber(map);
    /// #     }
    /// #     fn check(&self) -> Result<(), CausalityError> {
    /// #         self.set.check()
    /// #     }
    /// // In `DotStore::join`, with `Logged` a set store plus a log of dots (see `JoinCtx`):
    /// fn join(&mut self, other: &Self, cx: JoinCtx<'_>) {
    ///     // Our dots the other side has seen but no longer holds were removed there.
    ///     let mut theirs = Vec::new();
    ///     other.set.for_each_dot(&mut |d| theirs.push(cx.to_ours(d)));
    ///     self.set.for_each_dot(&mut |d| {
    ///         if cx.they_saw(d) && !theirs.contains(&d) {
    ///             self.removed_there.push(d);
    ///         }
    ///     });
    ///     self.set.join(&other.set, cx);
    /// }
    /// # }
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut a: Causal<Logged> = Causal::new();
    /// a.project(|s| &mut s.set, |set| set.add(r, "milk"));
    /// a.project(|s| &mut s.set, |set| set.add(r, "eggs"));
    /// let mut b = a.clone();
    /// b.project(|s| &mut s.set, |set| set.remove(&"milk"));
    /// a.merge(&b);
    /// // b saw both adds and dropped the one of "milk".
    /// let removed: Vec<Dot> = a.store().removed_there.iter().map(|&d| a.context().resolve(d)).collect();
    /// assert_eq!(removed, [Dot::new(r, 1)]);
    /// assert!(!a.store().set.contains(&"milk") && a.store().set.contains(&"eggs"));
    /// ```
    #[inline]
    pub fn they_saw(&self, d: LocalDot) -> bool {
        match self.remap.to_theirs.get(d.replica.get()) {
            Some(&t) if t != ReplicaIdx::NONE => self.theirs.contains_local(LocalDot::new(t, d.counter)),
            _ => false,
        }
    }

    /// Have we seen their dot `d` (in their index space)?
    ///
    /// ```
    /// # use gossamer_crdt::causal::{JoinCtx, LocalDot, ReplicaIdx};
    /// # use gossamer_crdt::kernel::{Causal, DotStore};
    /// # use gossamer_crdt::{CausalityError, CvRDT, Dot, ReplicaId, SetStore};
    /// #
    /// # /// A set store that logs what each join sees.
    /// # #[derive(Default, Clone, PartialEq, Debug)]
    /// # struct Logged {
    /// #     set: SetStore<&'static str>,
    /// #     new_here: Vec<LocalDot>,
    /// # }
    /// #
    /// # impl DotStore for Logged {
    /// #     fn is_bottom(&self) -> bool {
    /// #         self.set.is_bottom()
    /// #     }
    /// #     fn for_each_dot(&self, f: &mut dyn FnMut(LocalDot)) {
    /// #         self.set.for_each_dot(f);
    /// #     }
    /// #     fn retain_dots(&mut self, keep: &mut dyn FnMut(LocalDot) -> bool) {
    /// #         self.set.retain_dots(keep);
    /// #     }
    /// #     fn renumber(&mut self, map: &[ReplicaIdx]) {
    /// #         self.set.renumber(map);
    /// #     }
    /// #     fn check(&self) -> Result<(), CausalityError> {
    /// #         self.set.check()
    /// #     }
    /// // In `DotStore::join`, with `Logged` a set store plus a log of dots (see `JoinCtx`):
    /// fn join(&mut self, other: &Self, cx: JoinCtx<'_>) {
    ///     // Their dots we have never seen are new to us: the join keeps them.
    ///     other.set.for_each_dot(&mut |d| {
    ///         if !cx.we_saw(d) {
    ///             self.new_here.push(cx.to_ours(d));
    ///         }
    ///     });
    ///     self.set.join(&other.set, cx);
    /// }
    /// # }
    ///
    /// let (r1, r2) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut a: Causal<Logged> = Causal::new();
    /// a.project(|s| &mut s.set, |set| set.add(r1, "milk"));
    /// let mut b = a.clone();
    /// b.project(|s| &mut s.set, |set| set.add(r2, "eggs"));
    /// a.merge(&b);
    /// // We had seen the add of "milk"; only the add of "eggs" is new.
    /// let new: Vec<Dot> = a.store().new_here.iter().map(|&d| a.context().resolve(d)).collect();
    /// assert_eq!(new, [Dot::new(r2, 1)]);
    /// assert!(a.store().set.contains(&"eggs"));
    /// ```
    #[inline]
    pub fn we_saw(&self, d: LocalDot) -> bool {
        self.ours.contains_local(self.to_ours(d))
    }

    /// Their dot `d` in our index space.
    ///
    /// ```
    /// # use gossamer_crdt::causal::{JoinCtx, LocalDot, ReplicaIdx};
    /// # use gossamer_crdt::kernel::{Causal, DotStore};
    /// # use gossamer_crdt::{CausalityError, CvRDT, Dot, ReplicaId, SetStore};
    /// #
    /// # /// A set store that logs what each join sees.
    /// # #[derive(Default, Clone, PartialEq, Debug)]
    /// # struct Logged {
    /// #     set: SetStore<&'static str>,
    /// #     translated: Vec<(LocalDot, LocalDot)>,
    /// # }
    /// #
    /// # impl DotStore for Logged {
    /// #     fn is_bottom(&self) -> bool {
    /// #         self.set.is_bottom()
    /// #     }
    /// #     fn for_each_dot(&self, f: &mut dyn FnMut(LocalDot)) {
    /// #         self.set.for_each_dot(f);
    /// #     }
    /// #     fn retain_dots(&mut self, keep: &mut dyn FnMut(LocalDot) -> bool) {
    /// #         self.set.retain_dots(keep);
    /// #     }
    /// #     fn renumber(&mut self, map: &[ReplicaIdx]) {
    /// #         self.set.renumber(map);
    /// #     }
    /// #     fn check(&self) -> Result<(), CausalityError> {
    /// #         self.set.check()
    /// #     }
    /// // In `DotStore::join`, with `Logged` a set store plus a log of dot pairs (see `JoinCtx`):
    /// fn join(&mut self, other: &Self, cx: JoinCtx<'_>) {
    ///     // Each of their dots, in their index space and in ours.
    ///     other.set.for_each_dot(&mut |d| self.translated.push((d, cx.to_ours(d))));
    ///     self.set.join(&other.set, cx);
    /// }
    /// # }
    ///
    /// let (r1, r2) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut a: Causal<Logged> = Causal::new();
    /// a.project(|s| &mut s.set, |set| set.add(r1, "milk")); // a met r1 first
    /// let mut b: Causal<Logged> = Causal::new();
    /// b.project(|s| &mut s.set, |set| set.add(r2, "eggs")); // b met r2 first
    /// a.merge(&b);
    /// let (theirs, ours) = a.store().translated[0];
    /// // r2 has a different index in each context, so the local dots differ...
    /// assert_ne!(theirs, ours);
    /// // ...but name the same event, each next to its own context.
    /// assert_eq!(b.context().resolve(theirs), Dot::new(r2, 1));
    /// assert_eq!(a.context().resolve(ours), Dot::new(r2, 1));
    /// ```
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
    ///
    /// ```
    /// use gossamer_crdt::{CausalContext, Dot, ReplicaId};
    ///
    /// let cx = CausalContext::new();
    /// assert!(cx.is_empty() && cx.is_compact());
    /// assert!(!cx.contains(&Dot::new(ReplicaId::from_u128(1), 1)));
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// True when `dot` has been seen.
    ///
    /// ```
    /// use gossamer_crdt::{CausalContext, Dot, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut cx = CausalContext::new();
    /// cx.insert(Dot::new(r, 1));
    /// cx.insert(Dot::new(r, 3));
    /// // Seen in order or out of order, both count...
    /// assert!(cx.contains(&Dot::new(r, 1)) && cx.contains(&Dot::new(r, 3)));
    /// // ...but the gap between them does not.
    /// assert!(!cx.contains(&Dot::new(r, 2)));
    /// assert!(!cx.contains(&Dot::new(ReplicaId::from_u128(2), 1)));
    /// ```
    pub fn contains(&self, dot: &Dot) -> bool {
        match self.lookup(&dot.replica) {
            Some(i) => self.entries[i as usize].contains(dot.counter),
            None => false,
        }
    }

    /// Records `dot` as seen; the cloud compacts as gaps fill.
    ///
    /// ```
    /// use gossamer_crdt::{CausalContext, Dot, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut cx = CausalContext::new();
    /// cx.insert(Dot::new(r, 1));
    /// cx.insert(Dot::new(r, 3)); // event 2 is missing: 3 waits in the cloud
    /// assert_eq!(cx.get(&r), 1);
    /// assert_eq!(cx.cloud().collect::<Vec<_>>(), [Dot::new(r, 3)]);
    /// cx.insert(Dot::new(r, 2)); // the gap fills and the cloud folds into the vector
    /// assert!(cx.is_compact());
    /// assert_eq!(cx.get(&r), 3);
    /// ```
    pub fn insert(&mut self, dot: Dot) {
        let i = self.intern(dot.replica);
        self.entries[i.get()].insert(dot.counter);
    }

    /// Mints and records the next dot of `replica`: one past the highest counter seen from it.
    ///
    /// ```
    /// use gossamer_crdt::{CausalContext, Dot, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut cx = CausalContext::new();
    /// let first = cx.next_dot(r);
    /// assert_eq!(first, Dot::new(r, 1));
    /// assert!(cx.contains(&first)); // minted dots are recorded
    /// cx.insert(Dot::new(r, 5)); // seen out of order
    /// // One past the highest counter seen, even across a gap.
    /// assert_eq!(cx.next_dot(r), Dot::new(r, 6));
    /// ```
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
    ///
    /// ```
    /// use gossamer_crdt::{CausalContext, Dot, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut cx = CausalContext::new();
    /// assert!(cx.is_next(&Dot::new(r, 1)));
    /// assert!(!cx.is_next(&Dot::new(r, 2))); // event 1 has not been seen
    /// cx.insert(Dot::new(r, 1));
    /// assert!(!cx.is_next(&Dot::new(r, 1))); // already seen
    /// assert!(cx.is_next(&Dot::new(r, 2)));
    /// ```
    pub fn is_next(&self, dot: &Dot) -> bool {
        let max = self.lookup(&dot.replica).map_or(0, |i| self.entries[i as usize].max);
        dot.counter == max.saturating_add(1) && !self.contains(dot)
    }

    /// The highest counter seen from `replica` in the compact part (every earlier one seen).
    ///
    /// ```
    /// use gossamer_crdt::{CausalContext, Dot, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut cx = CausalContext::new();
    /// cx.insert(Dot::new(r, 1));
    /// cx.insert(Dot::new(r, 2));
    /// cx.insert(Dot::new(r, 4));
    /// assert_eq!(cx.get(&r), 2); // event 4 waits in the cloud: it does not count
    /// assert_eq!(cx.get(&ReplicaId::from_u128(2)), 0);
    /// ```
    pub fn get(&self, replica: &ReplicaId) -> u64 {
        self.lookup(replica).map_or(0, |i| self.entries[i as usize].max)
    }

    /// Adds everything `other` has seen.
    ///
    /// ```
    /// use gossamer_crdt::{CausalContext, Dot, ReplicaId};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut x = CausalContext::new();
    /// x.insert(Dot::new(a, 1));
    /// x.insert(Dot::new(b, 2)); // out of order: in the cloud
    /// let mut y = CausalContext::new();
    /// y.insert(Dot::new(b, 1));
    /// x.merge(&y);
    /// assert!(x.dominates(&y));
    /// // y's event 1 of b filled x's gap.
    /// assert!(x.is_compact());
    /// assert_eq!(x.get(&b), 2);
    /// ```
    pub fn merge(&mut self, other: &CausalContext) {
        let remap = self.prepare_join(other);
        self.finish_join(other, &remap);
    }

    /// The compact part as a version vector (dots in the cloud are not included).
    ///
    /// ```
    /// use gossamer_crdt::{CausalContext, Dot, ReplicaId, VClock};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut cx = CausalContext::new();
    /// cx.insert(Dot::new(a, 1));
    /// cx.insert(Dot::new(a, 2));
    /// cx.insert(Dot::new(b, 2)); // out of order: in the cloud
    /// assert_eq!(cx.vclock(), VClock::from(vec![(a, 2)]));
    /// ```
    pub fn vclock(&self) -> VClock {
        self.entries.iter().map(|e| (e.id, e.max)).collect()
    }

    /// True when no dot waits in the cloud.
    ///
    /// ```
    /// use gossamer_crdt::{CausalContext, Dot, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut cx = CausalContext::new();
    /// cx.insert(Dot::new(r, 2));
    /// assert!(!cx.is_compact());
    /// cx.insert(Dot::new(r, 1));
    /// assert!(cx.is_compact());
    /// // Compact, the version vector says everything the context has seen.
    /// assert_eq!(cx.vclock().get(&r), 2);
    /// ```
    pub fn is_compact(&self) -> bool {
        self.entries.iter().all(|e| e.cloud.is_empty())
    }

    /// The dots seen out of order, by replica then counter.
    ///
    /// ```
    /// use gossamer_crdt::{CausalContext, Dot, ReplicaId};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut cx = CausalContext::new();
    /// cx.insert(Dot::new(b, 3));
    /// cx.insert(Dot::new(a, 5));
    /// cx.insert(Dot::new(a, 1)); // in order: not in the cloud
    /// cx.insert(Dot::new(a, 3));
    /// assert_eq!(cx.cloud().collect::<Vec<_>>(), [Dot::new(a, 3), Dot::new(a, 5), Dot::new(b, 3)]);
    /// ```
    pub fn cloud(&self) -> impl Iterator<Item = Dot> + '_ {
        let mut order: Vec<&Entry> = self.entries.iter().collect();
        order.sort_by_key(|e| e.id);
        order.into_iter().flat_map(|e| e.cloud.iter().map(move |&c| Dot::new(e.id, c)))
    }

    /// The number of dots seen out of order.
    ///
    /// ```
    /// use gossamer_crdt::{CausalContext, Dot, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut cx = CausalContext::new();
    /// for counter in [1, 3, 4] {
    ///     cx.insert(Dot::new(r, counter));
    /// }
    /// assert_eq!(cx.cloud_len(), 2); // 3 and 4 wait for 2
    /// cx.insert(Dot::new(r, 2));
    /// assert_eq!(cx.cloud_len(), 0);
    /// ```
    pub fn cloud_len(&self) -> usize {
        self.entries.iter().map(|e| e.cloud.len()).sum()
    }

    /// The replicas with at least one dot seen, in id order.
    ///
    /// ```
    /// use gossamer_crdt::{CausalContext, Dot, ReplicaId};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut cx = CausalContext::new();
    /// cx.insert(Dot::new(b, 1));
    /// cx.insert(Dot::new(a, 7)); // a dot in the cloud counts too
    /// assert_eq!(cx.replicas(), [a, b]); // id order, not the order they were met in
    /// ```
    pub fn replicas(&self) -> Vec<ReplicaId> {
        let mut v: Vec<ReplicaId> = self.entries.iter().filter(|e| !e.is_empty()).map(|e| e.id).collect();
        v.sort();
        v
    }

    /// True when nothing has been seen.
    ///
    /// ```
    /// use gossamer_crdt::{CausalContext, Dot, ReplicaId};
    ///
    /// let mut cx = CausalContext::new();
    /// assert!(cx.is_empty());
    /// cx.insert(Dot::new(ReplicaId::from_u128(1), 3)); // even one seen out of order
    /// assert!(!cx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.iter().all(Entry::is_empty)
    }

    /// True when `self` has seen every dot `other` has.
    ///
    /// ```
    /// use gossamer_crdt::{CausalContext, Dot, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut x = CausalContext::new();
    /// x.insert(Dot::new(r, 1));
    /// x.insert(Dot::new(r, 3));
    /// let mut y = CausalContext::new();
    /// y.insert(Dot::new(r, 3));
    /// assert!(x.dominates(&y) && !y.dominates(&x));
    /// y.insert(Dot::new(r, 2)); // y has seen 2, x has not; x has seen 1, y has not
    /// assert!(!x.dominates(&y) && !y.dominates(&x));
    /// ```
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
    ///
    /// ```
    /// use gossamer_crdt::kernel::DotStore;
    /// use gossamer_crdt::{Dot, OrSet, ReplicaId};
    ///
    /// let (r1, r2) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut set = OrSet::new();
    /// set.add(r2, "milk");
    /// set.add(r1, "eggs");
    /// // Stores hold local dots; their context turns them back into dots.
    /// let mut live = Vec::new();
    /// set.store().for_each_dot(&mut |d| live.push(set.context().resolve(d)));
    /// live.sort();
    /// assert_eq!(live, [Dot::new(r1, 1), Dot::new(r2, 1)]);
    /// ```
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
    ///
    /// ```
    /// use gossamer_crdt::{CausalContext, Dot, ReplicaId};
    ///
    /// let (r1, r2) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut ours = CausalContext::new();
    /// ours.insert(Dot::new(r1, 1));
    /// let mut theirs = CausalContext::new();
    /// theirs.insert(Dot::new(r2, 1));
    /// let mut merged = ours.clone();
    /// merged.merge(&theirs);
    ///
    /// let remap = ours.prepare_join(&theirs);
    /// // Between the halves, where stores are joined, each side has still seen only its own dots.
    /// assert_eq!(ours.replicas(), [r1]);
    /// assert!(!ours.contains(&Dot::new(r2, 1)));
    /// ours.finish_join(&theirs, &remap);
    /// assert_eq!(ours, merged); // the two halves make a `merge`
    /// ```
    pub fn prepare_join(&mut self, other: &CausalContext) -> Remap {
        let to_ours: Vec<ReplicaIdx> = other.entries.iter().map(|e| self.intern(e.id)).collect();
        let mut to_theirs = vec![ReplicaIdx::NONE; self.entries.len()];
        for (t, o) in to_ours.iter().enumerate() {
            to_theirs[o.get()] = ReplicaIdx(t as u32);
        }
        Remap { to_ours, to_theirs }
    }

    /// Second half of a join: adds `other`'s counters.
    ///
    /// ```
    /// use gossamer_crdt::{CausalContext, Dot, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut ours = CausalContext::new();
    /// ours.insert(Dot::new(r, 3)); // out of order: in our cloud
    /// let mut theirs = CausalContext::new();
    /// theirs.insert(Dot::new(r, 1));
    /// theirs.insert(Dot::new(r, 2));
    /// let remap = ours.prepare_join(&theirs);
    /// ours.finish_join(&theirs, &remap);
    /// // Their events 1 and 2 fill our gap, and our cloud folds into the vector.
    /// assert!(ours.is_compact());
    /// assert_eq!(ours.get(&r), 3);
    /// ```
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
