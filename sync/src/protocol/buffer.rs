//! The causal buffer: ops that arrived before their dependencies.

use std::collections::{BTreeMap, HashMap};

use gossamer_crdt::{Dot, ReplicaId, VClock};

use crate::wire::OpRecord;

use super::log::record_size;

/// The first dependency of `rec` that `vv` has not delivered, as `(replica, counter needed)`.
pub(crate) fn missing(rec: &OpRecord, vv: &VClock) -> Option<(ReplicaId, u64)> {
    let origin = rec.dot.replica;
    if vv.get(&origin) + 1 < rec.dot.counter {
        return Some((origin, rec.dot.counter - 1));
    }
    rec.deps.iter().find(|d| vv.get(&d.replica) < d.counter).map(|d| (d.replica, d.counter))
}

/// Early ops, bounded in count and bytes. Each waits under one missing dependency; when the
/// version vector reaches it, the op is re-examined (and waits again under its next missing
/// dependency, if any). O(log n) per op, however long the chains.
#[derive(Debug, Default)]
pub(crate) struct CausalBuffer {
    ops: HashMap<Dot, OpRecord>,
    waiting: BTreeMap<(ReplicaId, u64), Vec<Dot>>,
    bytes: usize,
    pub(crate) peak_ops: usize,
    pub(crate) peak_bytes: usize,
}

impl CausalBuffer {
    pub(crate) fn contains(&self, dot: &Dot) -> bool {
        self.ops.contains_key(dot)
    }

    pub(crate) fn len(&self) -> usize {
        self.ops.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Buffers `rec` until `need` is delivered; false (and nothing kept) when full.
    pub(crate) fn insert(&mut self, rec: OpRecord, need: (ReplicaId, u64), max_ops: usize, max_bytes: usize) -> bool {
        let size = record_size(&rec);
        if self.ops.len() >= max_ops || self.bytes + size > max_bytes {
            return false;
        }
        if self.ops.contains_key(&rec.dot) {
            return true;
        }
        self.waiting.entry(need).or_default().push(rec.dot);
        self.bytes += size;
        self.ops.insert(rec.dot, rec);
        self.peak_ops = self.peak_ops.max(self.ops.len());
        self.peak_bytes = self.peak_bytes.max(self.bytes);
        true
    }

    /// Takes out every op that was waiting for an event of `replica` up to `upto`.
    pub(crate) fn wake(&mut self, replica: ReplicaId, upto: u64) -> Vec<OpRecord> {
        let mut out = Vec::new();
        while let Some((&key, _)) = self.waiting.range((replica, 0)..=(replica, upto)).next() {
            for dot in self.waiting.remove(&key).unwrap_or_default() {
                if let Some(rec) = self.ops.remove(&dot) {
                    self.bytes -= record_size(&rec);
                    out.push(rec);
                }
            }
        }
        out
    }

    /// Takes out everything (after a snapshot moved the version vector arbitrarily).
    pub(crate) fn drain(&mut self) -> Vec<OpRecord> {
        self.waiting.clear();
        self.bytes = 0;
        self.ops.drain().map(|(_, r)| r).collect()
    }
}
