//! The causal buffer: ops that arrived before their dependencies.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

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

/// How much the buffer may hold when an op is inserted.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    /// Ops.
    pub(crate) ops: usize,
    /// Bytes of op records.
    pub(crate) bytes: usize,
}

/// An op waiting in the buffer: who sent it, what it waits for, and since when.
#[derive(Debug)]
struct Held {
    rec: OpRecord,
    from: ReplicaId,
    need: (ReplicaId, u64),
    since: u64,
}

/// What one peer has in the buffer: its op count, and the dots it sent, newest last (entries
/// of ops that left are skipped when met; the list is rebuilt once they outnumber the rest).
#[derive(Debug, Default)]
struct Share {
    ops: usize,
    sent: Vec<Dot>,
}

/// Early ops, bounded in count, bytes and age. Each waits under one missing dependency; when
/// the version vector reaches it, the op is re-examined (and waits again under its next
/// missing dependency, if any, with its age restarted). O(log n) per op, however long the
/// chains. An op that waits longer than the age bound is dropped by [`expire`](Self::expire):
/// ops whose dependencies never come cannot hold the buffer for ever.
///
/// **Shared fairly.** When the buffer is full, an op from a peer that holds fewer ops than
/// another takes the place of that other peer's newest op: a peer that floods it with ops
/// that will never be delivered keeps the space it fills only while nobody else needs it.
#[derive(Debug, Default)]
pub(crate) struct CausalBuffer {
    ops: HashMap<Dot, Held>,
    /// Per sending peer; a peer with nothing here has no entry.
    shares: HashMap<ReplicaId, Share>,
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

    /// Buffers `rec`, sent by `from`, at time `now` until `need` is delivered. When full, it
    /// takes the place of the newest ops of the peer holding the most, as long as that peer
    /// holds more than `from` would; the dots of the ops it displaced are appended to
    /// `evicted`. Returns false (and keeps nothing) when no place can be made.
    pub(crate) fn insert(
        &mut self,
        rec: OpRecord,
        from: ReplicaId,
        need: (ReplicaId, u64),
        now: u64,
        bounds: Bounds,
        evicted: &mut Vec<Dot>,
    ) -> bool {
        if self.ops.contains_key(&rec.dot) {
            return true;
        }
        let size = record_size(&rec);
        if size > bounds.bytes {
            return false;
        }
        while self.ops.len() >= bounds.ops || self.bytes + size > bounds.bytes {
            let mine = self.shares.get(&from).map_or(0, |s| s.ops);
            // The largest share but ours, if taking one op from it leaves it above ours.
            let victim = self
                .shares
                .iter()
                .filter(|(p, s)| **p != from && s.ops > mine + 1)
                .max_by_key(|(p, s)| (s.ops, **p))
                .map(|(p, _)| *p);
            let Some(victim) = victim else { return false };
            match self.evict_newest(victim) {
                Some(dot) => evicted.push(dot),
                None => return false,
            }
        }
        self.waiting.entry(need).or_default().push(rec.dot);
        self.bytes += size;
        self.arrivals.push_back((now, rec.dot));
        let share = self.shares.entry(from).or_default();
        share.ops += 1;
        share.sent.push(rec.dot);
        if share.sent.len() > 2 * share.ops + 64 {
            // Keep each live op once (an op that waited again is listed twice).
            let ops = &self.ops;
            let mut seen = HashSet::new();
            share.sent.retain(|d| ops.get(d).is_some_and(|h| h.from == from) && seen.insert(*d));
        }
        self.ops.insert(rec.dot, Held { rec, from, need, since: now });
        self.peak_ops = self.peak_ops.max(self.ops.len());
        self.peak_bytes = self.peak_bytes.max(self.bytes);
        if self.arrivals.len() > 2 * self.ops.len() + 64 {
            self.rebuild_arrivals();
        }
        true
    }

    /// Puts back an op taken out by [`wake`](Self::wake) or [`drain`](Self::drain) that still
    /// waits, now for `need`: it was in the buffer, so it goes back whatever the bounds.
    pub(crate) fn requeue(&mut self, rec: OpRecord, from: ReplicaId, need: (ReplicaId, u64), now: u64) {
        let unbounded = Bounds { ops: usize::MAX, bytes: usize::MAX };
        let kept = self.insert(rec, from, need, now, unbounded, &mut Vec::new());
        debug_assert!(kept, "an unbounded insert always keeps the op");
    }

    /// Takes out every op that was waiting for an event of `replica` up to `upto`, with the
    /// peer that sent each.
    pub(crate) fn wake(&mut self, replica: ReplicaId, upto: u64) -> Vec<(OpRecord, ReplicaId)> {
        let mut out = Vec::new();
        while let Some((&key, _)) = self.waiting.range((replica, 0)..=(replica, upto)).next() {
            for dot in self.waiting.remove(&key).unwrap_or_default() {
                if let Some(held) = self.take(&dot) {
                    out.push((held.rec, held.from));
                }
            }
        }
        out
    }

    /// Drops the newest op `peer` sent that is still here; returns its dot.
    fn evict_newest(&mut self, peer: ReplicaId) -> Option<Dot> {
        loop {
            let dot = self.shares.get_mut(&peer)?.sent.pop()?;
            if self.ops.get(&dot).is_some_and(|h| h.from == peer) && self.discard(dot) {
                return Some(dot);
            }
        }
    }

    /// Drops `dot`'s op: out of `ops` (see [`take`](Self::take)) and out of the list of
    /// ops waiting for what it needs. False when it was not here.
    fn discard(&mut self, dot: Dot) -> bool {
        let Some(held) = self.take(&dot) else { return false };
        if let Some(dots) = self.waiting.get_mut(&held.need) {
            dots.retain(|d| *d != dot);
            if dots.is_empty() {
                self.waiting.remove(&held.need);
            }
        }
        true
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
            if self.discard(dot) {
                dropped.push(dot);
            }
        }
        dropped
    }

    /// Removes `dot`'s op from `ops`, its bytes from the count and the op from its sender's
    /// share (not from `waiting`).
    fn take(&mut self, dot: &Dot) -> Option<Held> {
        let held = self.ops.remove(dot)?;
        self.bytes -= record_size(&held.rec);
        if let Some(share) = self.shares.get_mut(&held.from) {
            share.ops -= 1;
            if share.ops == 0 {
                self.shares.remove(&held.from);
            }
        }
        Some(held)
    }

    /// The arrival queue without its stale entries.
    fn rebuild_arrivals(&mut self) {
        let mut live: Vec<(u64, Dot)> = self.ops.iter().map(|(d, h)| (h.since, *d)).collect();
        live.sort_unstable();
        self.arrivals = live.into();
    }

    /// Takes out everything (after a snapshot moved the version vector arbitrarily).
    pub(crate) fn drain(&mut self) -> Vec<(OpRecord, ReplicaId)> {
        self.waiting.clear();
        self.arrivals.clear();
        self.shares.clear();
        self.bytes = 0;
        self.ops.drain().map(|(_, h)| (h.rec, h.from)).collect()
    }
}
