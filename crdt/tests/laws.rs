//! The CRDT laws, checked by quickcheck for every type over arbitrary op histories on three
//! replicas: merge is a join, ops commute in every delivery order, duplicates are no-ops, op
//! exchange equals state merge, CBOR round-trips, and every value equals a simple model.
//!
//! `GOSSAMER_LAW_TESTS=10000 cargo test -p gossamer-crdt --test laws --release` runs a soak.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use gossamer_crdt::causal::{JoinCtx, LocalDot, ReplicaIdx};
use gossamer_crdt::{
    Causal, CausalContext, CausalCounter, CausalStore, CausalityError, CounterOp, CounterStore, Dot, DotStore,
    GCounter, Hlc, LwwOp, LwwRegister, LwwStore, MvRegister, OrMap, OrMapOp, OrSet, OrSetOp, PNCounter, PNCounterOp,
    ReplicaId,
};
use serde::{Deserialize, Serialize};
use support::{Event, Rng, Subject, replica};

/// The model of a set-like history: the events of `key` that no later event of `key` observed.
fn live<'a, I>(
    delivered: &[&'a Event<I>],
    relevant: impl Fn(&I) -> bool,
    covers: impl Fn(&I) -> bool,
) -> Vec<&'a Event<I>> {
    delivered
        .iter()
        .filter(|e| relevant(&e.intent))
        .filter(|e| !delivered.iter().any(|o| covers(&o.intent) && e.covered_by(o)))
        .copied()
        .collect()
}

// ---- counters -------------------------------------------------------------------------------

impl Subject for GCounter {
    type Intent = u64;
    type Model = u64;

    fn intent(rng: &mut Rng) -> u64 {
        rng.below(5)
    }
    fn perform(&mut self, r: ReplicaId, n: &u64) -> Self::Op {
        self.inc(r, *n)
    }
    fn observe(&self) -> u64 {
        self.value()
    }
    fn model(delivered: &[&Event<u64>]) -> u64 {
        delivered.iter().map(|e| e.intent).sum()
    }
    fn op_dot(op: &Self::Op) -> Option<Dot> {
        Some(op.dot)
    }
}

impl Subject for PNCounter {
    type Intent = (bool, u64);
    type Model = i64;

    fn intent(rng: &mut Rng) -> (bool, u64) {
        (rng.below(2) == 0, rng.below(5))
    }
    fn perform(&mut self, r: ReplicaId, &(up, n): &(bool, u64)) -> PNCounterOp {
        if up { self.inc(r, n) } else { self.dec(r, n) }
    }
    fn observe(&self) -> i64 {
        self.value()
    }
    fn model(delivered: &[&Event<(bool, u64)>]) -> i64 {
        delivered.iter().map(|e| if e.intent.0 { e.intent.1 as i64 } else { -(e.intent.1 as i64) }).sum()
    }
    fn op_dot(op: &PNCounterOp) -> Option<Dot> {
        match op {
            PNCounterOp::Inc(o) | PNCounterOp::Dec(o) => Some(o.dot),
        }
    }
}

impl Subject for CausalCounter {
    type Intent = i64;
    type Model = i64;

    fn intent(rng: &mut Rng) -> i64 {
        rng.below(7) as i64 - 3
    }
    fn perform(&mut self, r: ReplicaId, d: &i64) -> CounterOp {
        self.add(r, *d)
    }
    fn observe(&self) -> i64 {
        self.value()
    }
    fn model(delivered: &[&Event<i64>]) -> i64 {
        delivered.iter().map(|e| e.intent).sum()
    }
    fn op_dot(op: &CounterOp) -> Option<Dot> {
        Some(op.dot)
    }
}

// ---- registers ------------------------------------------------------------------------------

/// The winner among live writes: greatest (timestamp, writer), as the register documents.
fn lww_winner<V: Copy>(live: &[&Event<(V, u64)>]) -> Option<V> {
    live.iter().max_by_key(|e| (e.intent.1, replica(e.origin), e.seq)).map(|e| e.intent.0)
}

impl Subject for LwwRegister<u8> {
    /// (value, physical ms): few distinct timestamps, so ties are common.
    type Intent = (u8, u64);
    type Model = Option<u8>;

    fn intent(rng: &mut Rng) -> (u8, u64) {
        (rng.below(4) as u8, rng.below(3))
    }
    fn perform(&mut self, r: ReplicaId, &(v, ts): &(u8, u64)) -> LwwOp<u8> {
        self.set(r, Hlc::new(ts, 0), v)
    }
    fn observe(&self) -> Option<u8> {
        self.get().copied()
    }
    fn model(delivered: &[&Event<(u8, u64)>]) -> Option<u8> {
        lww_winner(&live(delivered, |_| true, |_| true))
    }
    fn op_dot(op: &LwwOp<u8>) -> Option<Dot> {
        Some(op.dot)
    }
}

impl Subject for MvRegister<u8> {
    type Intent = u8;
    type Model = Vec<u8>;

    fn intent(rng: &mut Rng) -> u8 {
        rng.below(3) as u8
    }
    fn perform(&mut self, r: ReplicaId, v: &u8) -> Self::Op {
        self.write(r, *v)
    }
    fn observe(&self) -> Vec<u8> {
        self.values().into_iter().copied().collect()
    }
    fn model(delivered: &[&Event<u8>]) -> Vec<u8> {
        let set: BTreeSet<u8> = live(delivered, |_| true, |_| true).iter().map(|e| e.intent).collect();
        set.into_iter().collect()
    }
    fn op_dot(op: &Self::Op) -> Option<Dot> {
        Some(op.dot)
    }
}

// ---- sets and maps --------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
/// What a set replica does.
pub enum SetIntent {
    /// Add an element.
    Add(u8),
    /// Remove an element.
    Remove(u8),
}

impl Subject for OrSet<u8> {
    type Intent = SetIntent;
    type Model = Vec<u8>;

    fn intent(rng: &mut Rng) -> SetIntent {
        let e = rng.below(4) as u8;
        if rng.below(3) == 0 { SetIntent::Remove(e) } else { SetIntent::Add(e) }
    }
    fn perform(&mut self, r: ReplicaId, i: &SetIntent) -> OrSetOp<u8> {
        match *i {
            SetIntent::Add(e) => self.add(r, e),
            SetIntent::Remove(e) => self.remove(&e),
        }
    }
    fn observe(&self) -> Vec<u8> {
        self.iter().copied().collect()
    }
    /// Add-wins: an element is present when some add of it was not observed by any later
    /// add or remove of the same element.
    fn model(delivered: &[&Event<SetIntent>]) -> Vec<u8> {
        let mut out = BTreeSet::new();
        for e in 0..4u8 {
            let adds = live(
                delivered,
                |i| *i == SetIntent::Add(e),
                |i| matches!(i, SetIntent::Add(x) | SetIntent::Remove(x) if *x == e),
            );
            if !adds.is_empty() {
                out.insert(e);
            }
        }
        out.into_iter().collect()
    }
    fn op_dot(op: &OrSetOp<u8>) -> Option<Dot> {
        match op {
            OrSetOp::Add { dot, .. } => Some(*dot),
            OrSetOp::Remove { .. } => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
/// What a map-of-counters replica does.
pub enum CountIntent {
    /// Change a key's count.
    Add(u8, i64),
    /// Remove a key.
    Remove(u8),
}

impl Subject for OrMap<u8, CausalCounter> {
    type Intent = CountIntent;
    type Model = BTreeMap<u8, i64>;

    fn intent(rng: &mut Rng) -> CountIntent {
        let k = rng.below(3) as u8;
        if rng.below(3) == 0 { CountIntent::Remove(k) } else { CountIntent::Add(k, rng.below(5) as i64 - 2) }
    }
    fn perform(&mut self, r: ReplicaId, i: &CountIntent) -> Self::Op {
        match *i {
            CountIntent::Add(k, d) => self.update(k, |c| c.add(r, d)),
            CountIntent::Remove(k) => self.remove(&k),
        }
    }
    fn observe(&self) -> BTreeMap<u8, i64> {
        self.iter().map(|(k, c)| (*k, c.value())).collect()
    }
    /// Reset-remove: a key shows the changes no remove of it observed.
    fn model(delivered: &[&Event<CountIntent>]) -> BTreeMap<u8, i64> {
        let mut out = BTreeMap::new();
        for k in 0..3u8 {
            let changes =
                live(delivered, |i| matches!(i, CountIntent::Add(x, _) if *x == k), |i| *i == CountIntent::Remove(k));
            if !changes.is_empty() {
                out.insert(k, changes.iter().map(|e| if let CountIntent::Add(_, d) = e.intent { d } else { 0 }).sum());
            }
        }
        out
    }
    fn op_dot(op: &Self::Op) -> Option<Dot> {
        match op {
            OrMapOp::Update { op, .. } => Some(op.dot),
            OrMapOp::Remove { .. } => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
/// What a map-of-sets replica does.
pub enum NestedIntent {
    /// Add an element under a key.
    Add(u8, u8),
    /// Remove an element under a key.
    RemoveElem(u8, u8),
    /// Remove a key.
    RemoveKey(u8),
}

impl Subject for OrMap<u8, OrSet<u8>> {
    type Intent = NestedIntent;
    type Model = BTreeMap<u8, Vec<u8>>;

    fn intent(rng: &mut Rng) -> NestedIntent {
        let (k, e) = (rng.below(2) as u8, rng.below(3) as u8);
        match rng.below(5) {
            0 => NestedIntent::RemoveKey(k),
            1 => NestedIntent::RemoveElem(k, e),
            _ => NestedIntent::Add(k, e),
        }
    }
    fn perform(&mut self, r: ReplicaId, i: &NestedIntent) -> Self::Op {
        match *i {
            NestedIntent::Add(k, e) => self.update(k, |s| s.add(r, e)),
            NestedIntent::RemoveElem(k, e) => self.update(k, |s| s.remove(&e)),
            NestedIntent::RemoveKey(k) => self.remove(&k),
        }
    }
    fn observe(&self) -> BTreeMap<u8, Vec<u8>> {
        self.iter().map(|(k, s)| (*k, s.iter().copied().collect())).collect()
    }
    fn model(delivered: &[&Event<NestedIntent>]) -> BTreeMap<u8, Vec<u8>> {
        let mut out = BTreeMap::new();
        for k in 0..2u8 {
            let mut elems = Vec::new();
            for e in 0..3u8 {
                let adds = live(
                    delivered,
                    |i| *i == NestedIntent::Add(k, e),
                    |i| {
                        *i == NestedIntent::Add(k, e)
                            || *i == NestedIntent::RemoveElem(k, e)
                            || *i == NestedIntent::RemoveKey(k)
                    },
                );
                if !adds.is_empty() {
                    elems.push(e);
                }
            }
            if !elems.is_empty() {
                out.insert(k, elems);
            }
        }
        out
    }
    fn op_dot(op: &Self::Op) -> Option<Dot> {
        match op {
            OrMapOp::Update { op: OrSetOp::Add { dot, .. }, .. } => Some(*dot),
            _ => None,
        }
    }
}

// ---- a composite value: what the cart's items are made of -----------------------------------

/// A cart-like item: a reset-remove quantity and a last-writer-wins note sharing one context.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemStore {
    qty: CounterStore,
    note: LwwStore<u8>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
/// An op on an item.
pub enum ItemOp {
    /// Changes the quantity.
    Qty(CounterOp),
    /// Writes the note.
    Note(LwwOp<u8>),
}

impl DotStore for ItemStore {
    fn is_bottom(&self) -> bool {
        self.qty.is_bottom() && self.note.is_bottom()
    }
    fn for_each_dot(&self, f: &mut dyn FnMut(LocalDot)) {
        self.qty.for_each_dot(f);
        self.note.for_each_dot(f);
    }
    fn retain_dots(&mut self, keep: &mut dyn FnMut(LocalDot) -> bool) {
        self.qty.retain_dots(keep);
        self.note.retain_dots(keep);
    }
    fn join(&mut self, other: &Self, cx: JoinCtx<'_>) {
        self.qty.join(&other.qty, cx);
        self.note.join(&other.note, cx);
    }
    fn renumber(&mut self, map: &[ReplicaIdx]) {
        self.qty.renumber(map);
        self.note.renumber(map);
    }
    fn check(&self) -> Result<(), CausalityError> {
        self.qty.check()?;
        self.note.check()
    }
}

impl CausalStore for ItemStore {
    type Op = ItemOp;

    fn apply_op(&mut self, ctx: &mut CausalContext, op: ItemOp) {
        match op {
            ItemOp::Qty(o) => self.qty.apply_op(ctx, o),
            ItemOp::Note(o) => self.note.apply_op(ctx, o),
        }
    }
    fn validate_op(&self, ctx: &CausalContext, op: &ItemOp) -> Result<(), CausalityError> {
        match op {
            ItemOp::Qty(o) => self.qty.validate_op(ctx, o),
            ItemOp::Note(o) => self.note.validate_op(ctx, o),
        }
    }
}

type Item = Causal<ItemStore>;

#[derive(Clone, Copy, Debug, PartialEq)]
/// What a map-of-items replica does.
pub enum ItemIntent {
    /// Change an item's quantity.
    Qty(u8, i64),
    /// Write an item's note (value, timestamp).
    Note(u8, u8, u64),
    /// Remove an item.
    Remove(u8),
}

impl Subject for OrMap<u8, Item> {
    type Intent = ItemIntent;
    type Model = BTreeMap<u8, (i64, Option<u8>)>;

    fn intent(rng: &mut Rng) -> ItemIntent {
        let k = rng.below(2) as u8;
        match rng.below(5) {
            0 => ItemIntent::Remove(k),
            1 | 2 => ItemIntent::Note(k, rng.below(3) as u8, rng.below(3)),
            _ => ItemIntent::Qty(k, rng.below(5) as i64 - 2),
        }
    }
    fn perform(&mut self, r: ReplicaId, i: &ItemIntent) -> Self::Op {
        match *i {
            ItemIntent::Qty(k, d) => self.update(k, |item| ItemOp::Qty(item.project(|s| &mut s.qty, |q| q.add(r, d)))),
            ItemIntent::Note(k, v, ts) => {
                self.update(k, |item| ItemOp::Note(item.project(|s| &mut s.note, |n| n.set(r, Hlc::new(ts, 0), v))))
            }
            ItemIntent::Remove(k) => self.remove(&k),
        }
    }
    fn observe(&self) -> BTreeMap<u8, (i64, Option<u8>)> {
        self.iter().map(|(k, s)| (*k, (s.qty.value(), s.note.get().copied()))).collect()
    }
    fn model(delivered: &[&Event<ItemIntent>]) -> BTreeMap<u8, (i64, Option<u8>)> {
        let mut out = BTreeMap::new();
        for k in 0..2u8 {
            let qty =
                live(delivered, |i| matches!(i, ItemIntent::Qty(x, _) if *x == k), |i| *i == ItemIntent::Remove(k));
            let notes: Vec<&Event<ItemIntent>> = live(
                delivered,
                |i| matches!(i, ItemIntent::Note(x, ..) if *x == k),
                |i| *i == ItemIntent::Remove(k) || matches!(i, ItemIntent::Note(x, ..) if *x == k),
            );
            if qty.is_empty() && notes.is_empty() {
                continue;
            }
            let sum = qty.iter().map(|e| if let ItemIntent::Qty(_, d) = e.intent { d } else { 0 }).sum();
            let note = notes
                .iter()
                .max_by_key(|e| match e.intent {
                    ItemIntent::Note(_, _, ts) => (ts, replica(e.origin), e.seq),
                    _ => unreachable!(),
                })
                .map(|e| if let ItemIntent::Note(_, v, _) = e.intent { v } else { 0 });
            out.insert(k, (sum, note));
        }
        out
    }
    fn op_dot(op: &Self::Op) -> Option<Dot> {
        match op {
            OrMapOp::Update { op: ItemOp::Qty(o), .. } => Some(o.dot),
            OrMapOp::Update { op: ItemOp::Note(o), .. } => Some(o.dot),
            OrMapOp::Remove { .. } => None,
        }
    }
}

laws!(g_counter, GCounter);
laws!(pn_counter, PNCounter);
laws!(causal_counter, CausalCounter);
laws!(lww_register, LwwRegister<u8>);
laws!(mv_register, MvRegister<u8>);
laws!(or_set, OrSet<u8>);
laws!(or_map_of_counters, OrMap<u8, CausalCounter>);
laws!(or_map_of_sets, OrMap<u8, OrSet<u8>>);
laws!(or_map_of_items, OrMap<u8, Item>);
