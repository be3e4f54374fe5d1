//! `DotFun`: a map from dots to the values they wrote.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::DotStore;
use crate::causal::{CausalContext, Dot, JoinCtx, LocalDot, ReplicaId, ReplicaIdx};
use crate::error::CausalityError;

/// Live dots and the value each one wrote: the store of registers (one entry per concurrent
/// write) and of the reset-remove counter (one entry per change).
///
/// A dot names one write, so two replicas that both hold a dot hold the same value for it;
/// the join never has to reconcile values.
///
/// **Layout.** One run per replica, runs in replica-index order, each run's counters
/// ascending. A local write carries its replica's highest counter, so it is a push onto the
/// end of that replica's run: O(1) amortized after a scan of the runs (one per replica that
/// wrote here), however long the history of the other replicas.
///
/// ```
/// use gossamer_crdt::kernel::DotFun;
///
/// let f: DotFun<&str> = DotFun::default();
/// assert!(f.is_empty());
/// assert_eq!(f.values().count(), 0);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DotFun<V> {
    /// Invariant (the canonical form): sorted by replica, distinct replicas, no empty run.
    runs: Runs<V>,
}

/// The runs of a [`DotFun`], the single-writer case inline (a counter or register that one
/// replica writes costs one allocation, not two). Canonical: `Many` holds two runs or more.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Runs<V> {
    Empty,
    One(Run<V>),
    Many(Vec<Run<V>>),
}

impl<V> Runs<V> {
    fn as_slice(&self) -> &[Run<V>] {
        match self {
            Runs::Empty => &[],
            Runs::One(r) => std::slice::from_ref(r),
            Runs::Many(v) => v,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [Run<V>] {
        match self {
            Runs::Empty => &mut [],
            Runs::One(r) => std::slice::from_mut(r),
            Runs::Many(v) => v,
        }
    }

    /// Inserts `run` at position `i` of the slice.
    fn insert(&mut self, i: usize, run: Run<V>) {
        *self = match std::mem::replace(self, Runs::Empty) {
            Runs::Empty => Runs::One(run),
            Runs::One(r) => Runs::Many(if i == 0 { vec![run, r] } else { vec![r, run] }),
            Runs::Many(mut v) => {
                v.insert(i, run);
                Runs::Many(v)
            }
        };
    }

    /// Drops empty runs and restores the canonical variant.
    fn normalize(&mut self) {
        match self {
            Runs::Empty => {}
            Runs::One(r) => {
                if r.entries.is_empty() {
                    *self = Runs::Empty;
                }
            }
            Runs::Many(v) => {
                v.retain(|r| !r.entries.is_empty());
                *self = Runs::from_vec(std::mem::take(v));
            }
        }
    }

    fn from_vec(mut v: Vec<Run<V>>) -> Self {
        match v.len() {
            0 => Runs::Empty,
            1 => Runs::One(v.pop().expect("one run")),
            _ => Runs::Many(v),
        }
    }
}

/// The live writes of one replica.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Run<V> {
    replica: ReplicaIdx,
    /// Invariant: counters ascending and distinct.
    entries: Vec<(u64, V)>,
}

impl<V> Run<V> {
    /// Adds `counter ↦ v` unless the counter is present (then returns false): a push when
    /// it sorts last and fits, inlined; everything else out of line.
    #[inline]
    fn insert(&mut self, counter: u64, v: V) -> bool {
        let sorts_last = self.entries.last().is_none_or(|&(last, _)| last < counter);
        if sorts_last && self.entries.len() < self.entries.capacity() {
            self.entries.push((counter, v));
            true
        } else {
            self.insert_slow(counter, v)
        }
    }

    #[cold]
    fn insert_slow(&mut self, counter: u64, v: V) -> bool {
        match self.entries.last() {
            Some(&(last, _)) if last >= counter => match self.entries.binary_search_by_key(&counter, |(c, _)| *c) {
                Ok(_) => false,
                Err(i) => {
                    self.entries.insert(i, (counter, v));
                    true
                }
            },
            _ => {
                // Full (here `len == capacity`). The first entry gets exactly its room: most
                // counters and registers only ever hold one (a cart item added once), and a
                // first change used to reserve eight (a cart of 100 such items: 21.8 → 10.6 KB).
                // A counter changed again is likely to keep changing (one entry per change),
                // so from then on a run grows by at least 16. A clone (exact capacity) of a
                // one-change counter then grows once in its next 16 changes, where a minimum of
                // 8 grew twice in its first ten, the second time freeing a block too big for
                // glibc's fast bins: 1,000 updates of fresh clones of a 100-item cart, 5 %
                // faster (median of 12 paired runs).
                // A new block, a move and a free rather than `reserve`: `reserve` reallocates,
                // and glibc's `realloc` bypasses its per-thread cache, so a block that cannot
                // grow in place (its neighbours are the blocks allocated next to it, as after
                // a clone) cost a slow-path malloc and free; a loop updating cold cloned
                // carts 1,000 times each ran 13 % faster this way.
                let len = self.entries.len();
                let mut grown = Vec::with_capacity(if len == 0 { 1 } else { len + len.max(16) });
                grown.append(&mut self.entries);
                self.entries = grown;
                self.entries.push((counter, v));
                true
            }
        }
    }
}

impl<V> Default for DotFun<V> {
    fn default() -> Self {
        Self { runs: Runs::Empty }
    }
}

/// An iterator that knows its length (the runs' lengths summed when it was made).
struct Counted<I> {
    inner: I,
    left: usize,
}

impl<I: Iterator> Iterator for Counted<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let item = self.inner.next()?;
        self.left -= 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<I: Iterator> ExactSizeIterator for Counted<I> {}

impl<V> DotFun<V> {
    /// True when no dot is live.
    ///
    /// ```
    /// use gossamer_crdt::kernel::DotFun;
    /// use gossamer_crdt::{MvRegister, ReplicaId};
    ///
    /// assert!(DotFun::<&str>::default().is_empty());
    /// let mut reg = MvRegister::new();
    /// reg.write(ReplicaId::from_u128(1), "tea");
    /// // An `MvRegister`'s store is encoded as its `DotFun`: decoding it shows the kernel's view.
    /// let bytes = serde_cbor::to_vec(reg.store()).unwrap();
    /// let writes: DotFun<&str> = serde_cbor::from_slice(&bytes).unwrap();
    /// assert!(!writes.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        matches!(self.runs, Runs::Empty)
    }

    /// The number of live dots: O(replicas).
    ///
    /// ```
    /// use gossamer_crdt::kernel::DotFun;
    /// use gossamer_crdt::{CausalCounter, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut qty = CausalCounter::new();
    /// qty.inc(r, 2);
    /// qty.inc(r, 1);
    /// qty.dec(r, 3);
    /// // A counter's store is encoded as its changes, a `DotFun` of deltas.
    /// let bytes = serde_cbor::to_vec(qty.store()).unwrap();
    /// let changes: DotFun<i64> = serde_cbor::from_slice(&bytes).unwrap();
    /// assert_eq!(changes.len(), 3); // one live dot per change, though the value is 0
    /// assert_eq!(changes.len(), qty.changes());
    /// ```
    pub fn len(&self) -> usize {
        self.runs.as_slice().iter().map(|r| r.entries.len()).sum()
    }

    /// The live dots and their values, in dot order.
    ///
    /// ```
    /// use gossamer_crdt::kernel::DotFun;
    /// use gossamer_crdt::{CvRDT, Dot, MvRegister, ReplicaId};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut x = MvRegister::new();
    /// let mut y = MvRegister::new();
    /// x.write(a, "tea");
    /// y.write(b, "coffee"); // concurrently
    /// x.merge(&y);
    /// // An `MvRegister`'s store is encoded as its `DotFun`: decoding it shows the kernel's view.
    /// let bytes = serde_cbor::to_vec(x.store()).unwrap();
    /// let writes: DotFun<&str> = serde_cbor::from_slice(&bytes).unwrap();
    /// // Local dots name replicas by index in the register's context, which resolves them.
    /// let live: Vec<(Dot, &str)> = writes.iter().map(|(d, v)| (x.context().resolve(d), *v)).collect();
    /// assert_eq!(live, [(Dot::new(a, 1), "tea"), (Dot::new(b, 1), "coffee")]);
    /// ```
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (LocalDot, &V)> + '_ {
        let inner =
            self.runs.as_slice().iter().flat_map(|r| r.entries.iter().map(|(c, v)| (LocalDot::new(r.replica, *c), v)));
        Counted { inner, left: self.len() }
    }

    /// The live values, in dot order.
    ///
    /// ```
    /// use gossamer_crdt::kernel::DotFun;
    /// use gossamer_crdt::{CausalCounter, ReplicaId};
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let mut qty = CausalCounter::new();
    /// qty.inc(r, 5);
    /// qty.dec(r, 2);
    /// // A counter's store is encoded as its changes, a `DotFun` of deltas.
    /// let bytes = serde_cbor::to_vec(qty.store()).unwrap();
    /// let changes: DotFun<i64> = serde_cbor::from_slice(&bytes).unwrap();
    /// assert_eq!(changes.values().copied().collect::<Vec<_>>(), [5, -2]);
    /// assert_eq!(changes.values().sum::<i64>(), qty.value()); // the value is their sum
    /// ```
    pub fn values(&self) -> impl ExactSizeIterator<Item = &V> + '_ {
        let inner = self.runs.as_slice().iter().flat_map(|r| r.entries.iter().map(|(_, v)| v));
        Counted { inner, left: self.len() }
    }

    /// The run of `replica`, created (in order) when absent. The single-writer case inlines.
    #[inline]
    fn run_mut(&mut self, replica: ReplicaIdx) -> &mut Run<V> {
        if !matches!(&self.runs, Runs::One(r) if r.replica == replica) {
            return self.run_mut_slow(replica);
        }
        &mut self.runs.as_mut_slice()[0]
    }

    fn run_mut_slow(&mut self, replica: ReplicaIdx) -> &mut Run<V> {
        // Runs are few (one per replica that wrote here): a scan from the end, where the
        // runs of replicas that joined later sit, finds the writer quickly.
        let runs = self.runs.as_slice();
        let i = match runs.iter().rposition(|r| r.replica <= replica) {
            Some(i) if runs[i].replica == replica => i,
            found => {
                let i = found.map_or(0, |i| i + 1);
                self.runs.insert(i, Run { replica, entries: Vec::new() });
                i
            }
        };
        &mut self.runs.as_mut_slice()[i]
    }

    /// Adds the write `d ↦ v`; a dot already present keeps its value (then returns false).
    /// O(1) amortized when `d` is its replica's highest live dot, as every local write is.
    #[inline]
    pub(crate) fn insert(&mut self, d: LocalDot, v: V) -> bool {
        self.run_mut(d.replica).insert(d.counter, v)
    }

    /// Keeps the entries for which `keep` answers true.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(LocalDot, &V) -> bool) {
        for r in self.runs.as_mut_slice() {
            let replica = r.replica;
            r.entries.retain(|(c, v)| keep(LocalDot::new(replica, *c), v));
        }
        self.runs.normalize();
    }
}

impl<V: Clone + PartialEq + fmt::Debug> DotFun<V> {
    /// A local write: replaces every live entry by `value` under a new dot of `replica`.
    /// Returns the new dot and the dots it replaced (what the op must carry).
    pub(crate) fn overwrite(&mut self, ctx: &mut CausalContext, replica: ReplicaId, value: V) -> (Dot, Vec<Dot>) {
        let replaces = super::observed(self, ctx);
        let (dot, local) = ctx.next_local_dot(replica);
        self.runs = Runs::One(Run { replica: local.replica, entries: vec![(local.counter, value)] });
        (dot, replaces)
    }

    /// A remote write: drops the entries it replaced, then adds it unless already seen.
    pub(crate) fn apply_write(&mut self, ctx: &mut CausalContext, dot: Dot, replaces: &[Dot], value: V) {
        super::remove_observed(self, ctx, replaces);
        if let Some(d) = super::admit(ctx, dot) {
            self.insert(d, value);
        }
    }
}

impl<V: Clone + PartialEq + fmt::Debug> DotStore for DotFun<V> {
    fn is_bottom(&self) -> bool {
        self.is_empty()
    }

    fn for_each_dot(&self, f: &mut dyn FnMut(LocalDot)) {
        for r in self.runs.as_slice() {
            r.entries.iter().for_each(|(c, _)| f(LocalDot::new(r.replica, *c)));
        }
    }

    fn retain_dots(&mut self, keep: &mut dyn FnMut(LocalDot) -> bool) {
        self.retain(|d, _| keep(d));
    }

    /// Run by run: our entries stay unless they saw them and dropped them; theirs join
    /// unless we saw them. Both runs of a replica are ascending, so each is one merge walk.
    fn join(&mut self, other: &Self, cx: JoinCtx<'_>) {
        if other.is_empty() && self.is_empty() {
            return;
        }
        for r in self.runs.as_mut_slice() {
            let replica = r.replica;
            let theirs: &[(u64, V)] = match cx.their_replica(replica) {
                Some(t) => other.runs.as_slice().iter().find(|o| o.replica == t).map_or(&[], |o| &o.entries),
                None => &[],
            };
            let mut at = 0;
            r.entries.retain(|(c, _)| {
                // `theirs` ascends as our counters do: advance to the first counter ≥ ours.
                while at < theirs.len() && theirs[at].0 < *c {
                    at += 1;
                }
                let they_hold = at < theirs.len() && theirs[at].0 == *c;
                they_hold || !cx.they_saw(LocalDot::new(replica, *c))
            });
        }
        for o in other.runs.as_slice() {
            // Every dot we hold is one we saw, so the unseen ones are new here.
            let mut new = o.entries.iter().filter(|(c, _)| !cx.we_saw(LocalDot::new(o.replica, *c))).peekable();
            if new.peek().is_none() {
                continue;
            }
            let run = self.run_mut(cx.our_replica(o.replica));
            for (c, v) in new {
                run.insert(*c, v.clone());
            }
        }
        self.runs.normalize();
    }

    fn renumber(&mut self, map: &[ReplicaIdx]) {
        let runs = self.runs.as_mut_slice();
        for r in runs.iter_mut() {
            r.replica = map[r.replica.get()];
        }
        runs.sort_unstable_by_key(|r| r.replica);
    }

    fn check(&self) -> Result<(), CausalityError> {
        let runs = self.runs.as_slice();
        let runs_ok = runs.windows(2).all(|w| w[0].replica < w[1].replica)
            && !matches!(self.runs, Runs::Many(ref v) if v.len() < 2);
        let entries_ok = runs.iter().all(|r| !r.entries.is_empty() && r.entries.windows(2).all(|w| w[0].0 < w[1].0));
        if runs_ok && entries_ok {
            Ok(())
        } else {
            Err(CausalityError::InvalidState("dot function not sorted or has duplicate dots"))
        }
    }
}

impl<V: fmt::Debug> fmt::Debug for DotFun<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Serialized as one flat sequence in dot order, replica index, counter and value for each
/// entry: `[r₁, c₁, v₁, r₂, c₂, v₂, …]` (nested pairs would cost every entry two headers,
/// two bytes in CBOR, and the encoder two calls).
impl<V: Serialize> Serialize for DotFun<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(3 * self.len()))?;
        for r in self.runs.as_slice() {
            for (c, v) in &r.entries {
                seq.serialize_element(&r.replica)?;
                seq.serialize_element(c)?;
                seq.serialize_element(v)?;
            }
        }
        seq.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for DotFun<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Flat<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Flat<V> {
            type Value = DotFun<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a flat sequence of replica indices, counters and values")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<DotFun<V>, A::Error> {
                use serde::de::Error;
                let mut runs: Vec<Run<V>> = Vec::new();
                while let Some(replica) = seq.next_element::<ReplicaIdx>()? {
                    let Some(counter) = seq.next_element::<u64>()? else {
                        return Err(A::Error::custom("dot function entry without a counter"));
                    };
                    let Some(v) = seq.next_element::<V>()? else {
                        return Err(A::Error::custom("dot function entry without a value"));
                    };
                    match runs.last_mut() {
                        Some(r) if r.replica == replica => {
                            if r.entries.last().is_some_and(|&(last, _)| last >= counter) {
                                return Err(A::Error::custom("dot function not sorted or has duplicate dots"));
                            }
                            r.entries.push((counter, v));
                        }
                        Some(r) if r.replica > replica => {
                            return Err(A::Error::custom("dot function not sorted or has duplicate dots"));
                        }
                        _ => runs.push(Run { replica, entries: vec![(counter, v)] }),
                    }
                }
                Ok(DotFun { runs: Runs::from_vec(runs) })
            }
        }
        deserializer.deserialize_seq(Flat(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(r: u32, c: u64) -> LocalDot {
        LocalDot::new(ReplicaIdx(r), c)
    }

    /// Writes in any order end in the canonical form: runs by replica, counters ascending.
    #[test]
    fn inserts_in_any_order_are_canonical() {
        let dots = [d(2, 1), d(0, 3), d(2, 5), d(0, 1), d(1, 2), d(2, 3), d(0, 3)];
        let mut a = DotFun::default();
        let mut b = DotFun::default();
        for (i, x) in dots.iter().enumerate() {
            a.insert(*x, x.counter * 10);
            let y = dots[dots.len() - 1 - i];
            b.insert(y, y.counter * 10);
        }
        assert_eq!(a, b);
        assert!(a.check().is_ok());
        let order: Vec<LocalDot> = a.iter().map(|(x, _)| x).collect();
        assert_eq!(order, vec![d(0, 1), d(0, 3), d(1, 2), d(2, 1), d(2, 3), d(2, 5)]);
        assert_eq!(a.len(), 6);
        assert_eq!(a.values().len(), 6);
        a.retain(|x, _| x.replica != ReplicaIdx(1));
        assert_eq!(a.len(), 5);
        assert!(a.check().is_ok());
    }

    /// A run's first write reserves room for itself only (most counters and registers hold
    /// one entry); its second makes room for 16 more, so a counter that keeps changing grows
    /// once in its next 16 changes, and then by doubling. A clone keeps its exact length and
    /// grows the same way.
    #[test]
    fn a_run_reserves_exactly_for_its_first_write_then_for_sixteen_more() {
        fn capacity(f: &DotFun<i64>) -> usize {
            f.runs.as_slice()[0].entries.capacity()
        }
        let mut f = DotFun::default();
        f.insert(d(0, 1), 1);
        assert_eq!(capacity(&f), 1);
        f.insert(d(0, 2), 1);
        assert_eq!(capacity(&f), 17);
        for c in 3..=17 {
            f.insert(d(0, c), 1);
        }
        assert_eq!(capacity(&f), 17);
        f.insert(d(0, 18), 1);
        assert_eq!(capacity(&f), 34);
        let mut g = DotFun::default();
        g.insert(d(0, 1), 1);
        let mut g = g.clone();
        g.insert(d(0, 2), 1);
        assert_eq!(capacity(&g), 17);
        assert_eq!(f.len(), 18);
        assert!(f.check().is_ok() && g.check().is_ok());
    }

    /// `[r₁, c₁, v₁, r₂, c₂, v₂, …]` in dot order, and back; decoding refuses an entry cut
    /// short and dots out of order or repeated.
    #[test]
    fn encodes_as_one_flat_sequence_in_dot_order() {
        let mut f = DotFun::default();
        for (x, v) in [(d(2, 1), 5i64), (d(0, 3), -1), (d(0, 1), 7)] {
            f.insert(x, v);
        }
        let bytes = serde_cbor::to_vec(&f).unwrap();
        assert_eq!(bytes, serde_cbor::to_vec(&(0u32, 1u64, 7i64, 0u32, 3u64, -1i64, 2u32, 1u64, 5i64)).unwrap());
        assert_eq!(serde_cbor::from_slice::<DotFun<i64>>(&bytes).unwrap(), f);
        for bad in [
            serde_cbor::to_vec(&(0u32,)).unwrap(),
            serde_cbor::to_vec(&(0u32, 1u64)).unwrap(),
            serde_cbor::to_vec(&(0u32, 3u64, 1i64, 0u32, 1u64, 1i64)).unwrap(),
            serde_cbor::to_vec(&(0u32, 1u64, 1i64, 0u32, 1u64, 2i64)).unwrap(),
            serde_cbor::to_vec(&(2u32, 1u64, 1i64, 0u32, 1u64, 1i64)).unwrap(),
        ] {
            assert!(serde_cbor::from_slice::<DotFun<i64>>(&bad).is_err(), "{bad:?}");
        }
    }
}
