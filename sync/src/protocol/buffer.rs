//! The causal buffer: ops that arrived before their dependencies.

use std::collections::{BTreeMap, HashMap, VecDeque};

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

/// An op waiting in the buffer: what it waits for, and since when.
#[derive(Debug)]
struct Held {
    rec: OpRecord,
    need: (ReplicaId, u64),
    since: u64,
}

/// Early ops, bounded in count, bytes and age. Each waits under one missing dependency; when
/// the version vector reaches it, the op is re-examined (and waits again under its next
/// missing dependency, if any, with its age restarted). O(log n) per op, however long the
/// chains. An op that waits longer than the age bound is dropped by [`expire`](Self::expire):
/// ops whose dependencies never come cannot hold the buffer for ever.
#[derive(Debug, Default)]
pub(crate) struct CausalBuffer {
    ops: HashMap<Dot, Held>,
    waiting: BTreeMap<(ReplicaId, u64), Vec<Dot>>,
    /// `(since, dot)` in insertion order, so oldest first (`now` never goes back). Entries
    /// of ops that left or were inserted again are skipped when met, and the queue is rebuilt
    /// once they outnumber the live ones.
    arrivals: VecDeque<(u64, Dot)>,
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

    /// Buffers `rec` at time `now` until `need` is delivered; false (and nothing kept) when
    /// full.
    pub(crate) fn insert(
        &mut self,
        rec: OpRecord,
        need: (ReplicaId, u64),
        now: u64,
        max_ops: usize,
        max_bytes: usize,
    ) -> bool {
        let size = record_size(&rec);
        if self.ops.len() >= max_ops || self.bytes + size > max_bytes {
            return false;
        }
        if self.ops.contains_key(&rec.dot) {
            return true;
        }
        self.waiting.entry(need).or_default().push(rec.dot);
        self.bytes += size;
        self.arrivals.push_back((now, rec.dot));
        self.ops.insert(rec.dot, Held { rec, need, since: now });
        self.peak_ops = self.peak_ops.max(self.ops.len());
        self.peak_bytes = self.peak_bytes.max(self.bytes);
        if self.arrivals.len() > 2 * self.ops.len() + 64 {
            self.rebuild_arrivals();
        }
        true
    }

    /// Takes out every op that was waiting for an event of `replica` up to `upto`.
    pub(crate) fn wake(&mut self, replica: ReplicaId, upto: u64) -> Vec<OpRecord> {
        let mut out = Vec::new();
        while let Some((&key, _)) = self.waiting.range((replica, 0)..=(replica, upto)).next() {
            for dot in self.waiting.remove(&key).unwrap_or_default() {
                if let Some(held) = self.take(&dot) {
                    out.push(held.rec);
                }
            }
        }
        out
    }

    /// Drops every op that has waited `max_age` or longer at `now`; returns their dots.
    /// O(log n) per dropped op, amortized.
    pub(crate) fn expire(&mut self, now: u64, max_age: u64) -> Vec<Dot> {
        let mut dropped = Vec::new();
        while let Some(&(since, dot)) = self.arrivals.front() {
            if now.saturating_sub(since) < max_age {
                break;
            }
            self.arrivals.pop_front();
            // A stale entry: the op left (delivered, dropped) or waits again since later.
            if self.ops.get(&dot).is_none_or(|h| h.since != since) {
                continue;
            }
            if let Some(held) = self.take(&dot) {
                if let Some(dots) = self.waiting.get_mut(&held.need) {
                    dots.retain(|d| *d != dot);
                    if dots.is_empty() {
                        self.waiting.remove(&held.need);
                    }
                }
                dropped.push(dot);
            }
        }
        dropped
    }

    /// Removes `dot`'s op from `ops` and its bytes from the count (not from `waiting`).
    fn take(&mut self, dot: &Dot) -> Option<Held> {
        let held = self.ops.remove(dot)?;
        self.bytes -= record_size(&held.rec);
        Some(held)
    }

    /// The arrival queue without its stale entries.
    fn rebuild_arrivals(&mut self) {
        let mut live: Vec<(u64, Dot)> = self.ops.iter().map(|(d, h)| (h.since, *d)).collect();
        live.sort_unstable();
        self.arrivals = live.into();
    }

    /// Takes out everything (after a snapshot moved the version vector arbitrarily).
    pub(crate) fn drain(&mut self) -> Vec<OpRecord> {
        self.waiting.clear();
        self.arrivals.clear();
        self.bytes = 0;
        self.ops.drain().map(|(_, h)| h.rec).collect()
    }
}
