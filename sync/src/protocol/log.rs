//! The op log: delivered ops above the compaction floor, in delivery order.

use std::collections::{HashMap, VecDeque};

use gossamer_crdt::{ReplicaId, VClock};

use crate::wire::OpRecord;

/// Bytes an op takes in a message beyond its payload (dot, deps header, framing): used to
/// keep batches under their byte bound without encoding them twice.
pub(crate) fn record_size(rec: &OpRecord) -> usize {
    24 + rec.payload.len() + rec.deps.len() * 28
}

/// Delivered ops in delivery order — a causal order, so a suffix of it can be sent to a peer
/// and applied there as it arrives. Per origin the log holds a contiguous run of sequence
/// numbers: everything above the floor that has been delivered.
#[derive(Debug, Default)]
pub(crate) struct OpLog {
    /// Each op with the time (ms) it was delivered here.
    entries: VecDeque<(OpRecord, u64)>,
    /// Position (in delivery order, since the last rebuild) of `entries[0]`.
    base: u64,
    /// Per origin: the sequence number of its first logged op and the positions of its ops.
    by_origin: HashMap<ReplicaId, (u64, VecDeque<u64>)>,
    bytes: usize,
}

impl OpLog {
    pub(crate) fn push(&mut self, rec: OpRecord, at: u64) {
        let pos = self.base + self.entries.len() as u64;
        let slot = self.by_origin.entry(rec.dot.replica).or_insert_with(|| (rec.dot.counter, VecDeque::new()));
        if slot.1.is_empty() {
            slot.0 = rec.dot.counter;
        }
        slot.1.push_back(pos);
        self.bytes += record_size(&rec);
        self.entries.push_back((rec, at));
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Where the op `(origin, seq)` sits, if logged.
    fn position(&self, origin: &ReplicaId, seq: u64) -> Option<u64> {
        let (first, positions) = self.by_origin.get(origin)?;
        let i = seq.checked_sub(*first)?;
        positions.get(usize::try_from(i).ok()?).copied()
    }

    /// The ops `peer` lacks, in delivery order, up to `max_bytes` (at least one op), leaving
    /// out those both created and delivered here after `recent_after` (ms) — they are most
    /// likely still on their way to the peer along the push tree — and, per origin, everything
    /// after such an op. (Creation time is the origin's clock; delivery time is ours, which
    /// caps the wait when the origin's clock runs ahead.)
    /// Returns them and whether more remain. `ahead` lists the origins where we have more
    /// than the peer, with the peer's counter; the caller has checked that nothing the peer
    /// lacks is below the floor.
    pub(crate) fn missing(
        &self,
        peer: &VClock,
        ahead: &[(ReplicaId, u64)],
        max_bytes: usize,
        recent_after: u64,
    ) -> (Vec<OpRecord>, bool) {
        let start = ahead.iter().filter_map(|(r, theirs)| self.position(r, theirs + 1)).min();
        let Some(start) = start else { return (Vec::new(), false) };
        let mut out = Vec::new();
        let mut size = 0;
        let mut held_back: Vec<ReplicaId> = Vec::new();
        let skip = usize::try_from(start - self.base).unwrap_or(usize::MAX);
        for (rec, at) in self.entries.iter().skip(skip) {
            if rec.dot.counter <= peer.get(&rec.dot.replica) {
                continue;
            }
            let recent = rec.created_ms > recent_after && *at > recent_after;
            if recent || held_back.contains(&rec.dot.replica) {
                // Keep each origin's ops a prefix: the peer can apply what it gets.
                if !held_back.contains(&rec.dot.replica) {
                    held_back.push(rec.dot.replica);
                }
                continue;
            }
            let s = record_size(rec);
            if !out.is_empty() && size + s > max_bytes {
                return (out, true);
            }
            size += s;
            out.push(rec.clone());
        }
        (out, false)
    }

    /// Drops every op at or below `floor` and renumbers.
    pub(crate) fn truncate(&mut self, floor: &VClock) {
        let old = std::mem::take(&mut self.entries);
        self.by_origin.clear();
        self.base = 0;
        self.bytes = 0;
        for (rec, at) in old {
            if rec.dot.counter > floor.get(&rec.dot.replica) {
                self.push(rec, at);
            }
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &OpRecord> + '_ {
        self.entries.iter().map(|(r, _)| r)
    }
}
