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
/// ```
/// use gossamer_crdt::kernel::DotFun;
///
/// let f: DotFun<&str> = DotFun::default();
/// assert!(f.is_empty());
/// assert_eq!(f.values().count(), 0);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DotFun<V> {
    /// Sorted by dot, distinct dots.
    entries: Vec<(LocalDot, V)>,
}

impl<V> Default for DotFun<V> {
    fn default() -> Self {
        Self { entries: Vec::new() }
    }
}

impl<V> DotFun<V> {
    /// True when no dot is live.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The number of live dots.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The live dots and their values, in dot order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (LocalDot, &V)> + '_ {
        self.entries.iter().map(|(d, v)| (*d, v))
    }

    /// The live values, in dot order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &V> + '_ {
        self.entries.iter().map(|(_, v)| v)
    }

    /// Adds the write `d ↦ v` (a dot already present keeps its value).
    pub(crate) fn insert(&mut self, d: LocalDot, v: V) {
        if let Err(i) = self.entries.binary_search_by_key(&d, |(e, _)| *e) {
            self.entries.insert(i, (d, v));
        }
    }
}

impl<V: Clone + PartialEq + fmt::Debug> DotFun<V> {
    /// A local write: replaces every live entry by `value` under a new dot of `replica`.
    /// Returns the new dot and the dots it replaced (what the op must carry).
    pub(crate) fn overwrite(&mut self, ctx: &mut CausalContext, replica: ReplicaId, value: V) -> (Dot, Vec<Dot>) {
        let replaces = super::observed(self, ctx);
        let (dot, local) = ctx.next_local_dot(replica);
        self.entries.clear();
        self.entries.push((local, value));
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
        self.entries.is_empty()
    }

    fn for_each_dot(&self, f: &mut dyn FnMut(LocalDot)) {
        self.entries.iter().for_each(|(d, _)| f(*d));
    }

    fn retain_dots(&mut self, keep: &mut dyn FnMut(LocalDot) -> bool) {
        self.entries.retain(|(d, _)| keep(*d));
    }

    fn join(&mut self, other: &Self, cx: JoinCtx<'_>) {
        if other.entries.is_empty() && self.entries.is_empty() {
            return;
        }
        let mut theirs: Vec<LocalDot> = other.entries.iter().map(|(d, _)| cx.to_ours(*d)).collect();
        let mut added = Vec::new();
        for ((t, v), d) in other.entries.iter().zip(&theirs) {
            // Our entries are all in our context, so a dot we never saw is not among them.
            if !cx.we_saw(*t) {
                added.push((*d, v.clone()));
            }
        }
        theirs.sort_unstable();
        self.entries.retain(|(d, _)| !cx.they_saw(*d) || theirs.binary_search(d).is_ok());
        if !added.is_empty() {
            self.entries.extend(added);
            self.entries.sort_unstable_by_key(|(d, _)| *d);
        }
    }

    fn renumber(&mut self, map: &[ReplicaIdx]) {
        for (d, _) in &mut self.entries {
            d.replica = map[d.replica.get()];
        }
        self.entries.sort_unstable_by_key(|(d, _)| *d);
    }

    fn check(&self) -> Result<(), CausalityError> {
        if self.entries.windows(2).all(|w| w[0].0 < w[1].0) {
            Ok(())
        } else {
            Err(CausalityError::InvalidState("dot function not sorted or has duplicate dots"))
        }
    }
}

impl<V: fmt::Debug> fmt::Debug for DotFun<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries.iter().map(|(d, v)| (d, v))).finish()
    }
}

/// Serialized as a sequence of `(dot, value)` pairs in dot order.
impl<V: Serialize> Serialize for DotFun<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.entries.iter())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for DotFun<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries: Vec<(LocalDot, V)> = Vec::deserialize(deserializer)?;
        if !entries.windows(2).all(|w| w[0].0 < w[1].0) {
            return Err(serde::de::Error::custom("dot function not sorted or has duplicate dots"));
        }
        Ok(Self { entries })
    }
}
