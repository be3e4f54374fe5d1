//! The generic law suite: one implementation of every CRDT law, instantiated per type.
//!
//! A [`History`] is an arbitrary sequence of steps over [`REPLICAS`] replicas: local
//! mutations, single op deliveries (in any causal order, sometimes duplicated) and whole
//! syncs. Laws replay a history and check the property at every step or at the end.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fmt::Debug;

use gossamer_crdt::{CausalityError, CmRDT, CvRDT, Dot, ReplicaId};
use quickcheck::{Arbitrary, Gen};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// How many replicas every history runs on.
pub const REPLICAS: usize = 3;

/// Replica ids whose sort order differs from the order replicas first meet, so the kernel's
/// replica tables are exercised out of canonical order.
pub fn replica(i: usize) -> ReplicaId {
    const IDS: [u128; 4] = [0xC0 << 120 | 3, 0x10 << 120 | 1, 0x80 << 120 | 2, 0x40 << 120 | 4];
    ReplicaId::from_u128(IDS[i])
}

/// A small deterministic RNG (splitmix64): intents and permutations derive from history seeds.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One change a replica made, as the model sees it.
#[derive(Clone, Debug)]
pub struct Event<I> {
    pub id: usize,
    pub origin: usize,
    /// The origin's n-th op (from 1).
    pub seq: u64,
    pub intent: I,
    /// The ops delivered at the origin when this one was made (its causal past).
    pub deps: BTreeSet<usize>,
}

impl<I> Event<I> {
    /// True when `other` was made after this event had been delivered at its origin.
    pub fn covered_by(&self, other: &Event<I>) -> bool {
        other.deps.contains(&self.id)
    }
}

/// A type under test: how to make random changes and what its value should be.
pub trait Subject:
    CvRDT
    + CmRDT<Op: Clone + PartialEq + Debug + Serialize + DeserializeOwned>
    + Clone
    + PartialEq
    + Debug
    + Default
    + Serialize
    + DeserializeOwned
{
    /// What a replica means to do (`add 3`, `remove 1`, ...).
    type Intent: Clone + Debug;
    /// The observable value.
    type Model: PartialEq + Debug;

    fn intent(rng: &mut Rng) -> Self::Intent;
    fn perform(&mut self, replica: ReplicaId, intent: &Self::Intent) -> Self::Op;
    fn observe(&self) -> Self::Model;
    /// The value a replica must show after exactly the `delivered` events.
    fn model(delivered: &[&Event<Self::Intent>]) -> Self::Model;
    /// The op's own dot, if it has one (ops with a dot report duplicates in `validate`).
    fn op_dot(op: &Self::Op) -> Option<Dot>;
}

#[derive(Clone, Debug)]
pub enum Step {
    Mutate { at: u8, seed: u64 },
    Deliver { to: u8, pick: u16, dup: bool },
    Sync { from: u8, to: u8 },
}

impl Arbitrary for Step {
    fn arbitrary(g: &mut Gen) -> Self {
        let at = u8::arbitrary(g) % REPLICAS as u8;
        let other = u8::arbitrary(g) % REPLICAS as u8;
        match u8::arbitrary(g) % 10 {
            0..=3 => Step::Mutate { at, seed: u64::arbitrary(g) },
            4..=7 => Step::Deliver { to: at, pick: u16::arbitrary(g), dup: u8::arbitrary(g) % 4 == 0 },
            _ => Step::Sync { from: other, to: at },
        }
    }
}

#[derive(Clone, Debug)]
pub struct History {
    pub steps: Vec<Step>,
    pub seed: u64,
}

impl Arbitrary for History {
    fn arbitrary(g: &mut Gen) -> Self {
        let len = usize::arbitrary(g) % (g.size() + 1);
        History { steps: (0..len).map(|_| Step::arbitrary(g)).collect(), seed: u64::arbitrary(g) }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let seed = self.seed;
        Box::new(self.steps.shrink().map(move |steps| History { steps, seed }))
    }
}

pub struct Replica<T> {
    pub state: T,
    pub delivered: Vec<bool>,
    /// Delivery order: always causal.
    pub order: Vec<usize>,
    pub made: u64,
}

/// Replicas that exchange ops, delivered exactly as a causal broadcast would (and sometimes
/// twice).
pub struct OpWorld<T: Subject> {
    pub replicas: Vec<Replica<T>>,
    pub ops: Vec<(T::Op, Event<T::Intent>)>,
}

impl<T: Subject> OpWorld<T> {
    pub fn new() -> Self {
        OpWorld {
            replicas: (0..REPLICAS)
                .map(|_| Replica { state: T::default(), delivered: Vec::new(), order: Vec::new(), made: 0 })
                .collect(),
            ops: Vec::new(),
        }
    }

    fn is_delivered(&self, at: usize, id: usize) -> bool {
        self.replicas[at].delivered.get(id).copied().unwrap_or(false)
    }

    fn mark(&mut self, at: usize, id: usize) {
        let r = &mut self.replicas[at];
        if r.delivered.len() <= id {
            r.delivered.resize(id + 1, false);
        }
        r.delivered[id] = true;
        r.order.push(id);
    }

    pub fn mutate(&mut self, at: usize, intent: T::Intent) -> T::Op {
        let op = self.replicas[at].state.perform(replica(at), &intent);
        let deps: BTreeSet<usize> = self.replicas[at].order.iter().copied().collect();
        let id = self.ops.len();
        self.replicas[at].made += 1;
        let seq = self.replicas[at].made;
        self.ops.push((op.clone(), Event { id, origin: at, seq, intent, deps }));
        self.mark(at, id);
        op
    }

    /// Ops not yet at `to` whose causal past is.
    pub fn ready(&self, to: usize) -> Vec<usize> {
        (0..self.ops.len())
            .filter(|&id| !self.is_delivered(to, id))
            .filter(|&id| self.ops[id].1.deps.iter().all(|&d| self.is_delivered(to, d)))
            .collect()
    }

    /// Delivers one causally ready op; checks `validate` agrees it is ready and, when
    /// `dup`, that a second delivery changes nothing.
    pub fn deliver_one(&mut self, to: usize, pick: u16, dup: bool) -> Result<(), String> {
        let ready = self.ready(to);
        if ready.is_empty() {
            return Ok(());
        }
        let id = ready[pick as usize % ready.len()];
        self.deliver(to, id, dup)
    }

    fn deliver(&mut self, to: usize, id: usize, dup: bool) -> Result<(), String> {
        let op = self.ops[id].0.clone();
        let state = &mut self.replicas[to].state;
        if let Err(e) = state.validate(&op) {
            return Err(format!("validate refused causally ready op {op:?} at replica {to}: {e}"));
        }
        state.apply(op.clone());
        if dup {
            let once = state.clone();
            if let Some(dot) = T::op_dot(&op) {
                match state.validate(&op) {
                    Err(CausalityError::AlreadySeen { dot: d }) if d == dot => {}
                    other => return Err(format!("validate of a duplicate {op:?} gave {other:?}")),
                }
            }
            state.apply(op);
            if *state != once {
                return Err(format!("duplicate delivery changed the state: {once:?} -> {state:?}"));
            }
        }
        self.mark(to, id);
        Ok(())
    }

    /// Delivers everything `from` has that `to` lacks, in `from`'s (causal) order.
    pub fn sync(&mut self, from: usize, to: usize) -> Result<(), String> {
        let order = self.replicas[from].order.clone();
        for id in order {
            if !self.is_delivered(to, id) {
                self.deliver(to, id, false)?;
            }
        }
        Ok(())
    }

    pub fn delivered_events(&self, at: usize) -> Vec<&Event<T::Intent>> {
        self.replicas[at].order.iter().map(|&id| &self.ops[id].1).collect()
    }

    pub fn step(&mut self, step: &Step) -> Result<(), String> {
        match *step {
            Step::Mutate { at, seed } => {
                let intent = T::intent(&mut Rng::new(seed));
                self.mutate(at as usize, intent);
                Ok(())
            }
            Step::Deliver { to, pick, dup } => self.deliver_one(to as usize, pick, dup),
            Step::Sync { from, to } => self.sync(from as usize, to as usize),
        }
    }

    /// A replica that has received every op, in creation order (always causal).
    pub fn everything(&self) -> T {
        let mut s = T::default();
        for (op, _) in &self.ops {
            s.apply(op.clone());
        }
        s
    }
}

fn check_model<T: Subject>(w: &OpWorld<T>, when: &str) -> Result<(), String> {
    for at in 0..REPLICAS {
        let events = w.delivered_events(at);
        let want = T::model(&events);
        let got = w.replicas[at].state.observe();
        if got != want {
            return Err(format!(
                "{when}: replica {at} shows {got:?}, the model says {want:?}\nstate: {:?}",
                w.replicas[at].state
            ));
        }
    }
    Ok(())
}

fn run<T: Subject>(h: &History) -> Result<OpWorld<T>, String> {
    let mut w = OpWorld::<T>::new();
    for (i, s) in h.steps.iter().enumerate() {
        w.step(s).map_err(|e| format!("step {i} {s:?}: {e}"))?;
    }
    Ok(w)
}

// ---- the laws -----------------------------------------------------------------------------

/// The value equals the model after every step, on every replica, and validate accepts every
/// causally ready op; duplicates are no-ops.
pub fn law_model<T: Subject>(h: History) -> Result<(), String> {
    let mut w = OpWorld::<T>::new();
    for (i, s) in h.steps.iter().enumerate() {
        w.step(s).map_err(|e| format!("step {i} {s:?}: {e}"))?;
        check_model(&w, &format!("after step {i} {s:?}"))?;
    }
    Ok(())
}

/// Merge is commutative, associative, idempotent, has the empty state as identity and is an
/// inflation (the result is an upper bound of both sides); equal states encode equally.
pub fn law_merge<T: Subject>(h: History) -> Result<(), String> {
    let w = run::<T>(&h)?;
    let join = |a: &T, b: &T| {
        let mut x = a.clone();
        x.merge(b);
        x
    };
    // The replicas' states, and states made of random subsets of the ops applied in random
    // (non-causal) order: those carry dot clouds, which causal delivery never makes.
    let mut states: Vec<T> = w.replicas.iter().map(|r| r.state.clone()).collect();
    let mut rng = Rng::new(h.seed);
    let mut subsets: Vec<Vec<usize>> = Vec::new();
    for _ in 0..3 {
        let mut ids: Vec<usize> = (0..w.ops.len()).filter(|_| rng.below(2) == 0).collect();
        for i in (1..ids.len()).rev() {
            ids.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let mut s = T::default();
        for &i in &ids {
            s.apply(w.ops[i].0.clone());
        }
        states.push(s);
        subsets.push(ids);
    }
    // Applying ops is joining deltas: the join of two op sets' states is their union's state.
    for a in 0..subsets.len() {
        for b in 0..subsets.len() {
            let mut s = T::default();
            for &i in subsets[a].iter().chain(&subsets[b]) {
                s.apply(w.ops[i].0.clone());
            }
            let j = join(&states[REPLICAS + a], &states[REPLICAS + b]);
            if j != s {
                return Err(format!("state of ops {:?} ⊔ ops {:?} = {j:?}, union gives {s:?}", subsets[a], subsets[b]));
            }
        }
    }
    for a in &states {
        if join(a, a) != *a {
            return Err(format!("not idempotent: {a:?}"));
        }
        if join(a, &T::default()) != *a || join(&T::default(), a) != *a {
            return Err(format!("empty state is not the identity for {a:?}"));
        }
        for b in &states {
            let ab = join(a, b);
            let ba = join(b, a);
            if ab != ba {
                return Err(format!("not commutative:\n a={a:?}\n b={b:?}\n ab={ab:?}\n ba={ba:?}"));
            }
            let enc_ab = serde_cbor::to_vec(&ab).map_err(|e| e.to_string())?;
            let enc_ba = serde_cbor::to_vec(&ba).map_err(|e| e.to_string())?;
            if enc_ab != enc_ba {
                return Err(format!("equal states encode differently: {ab:?}"));
            }
            if join(&ab, a) != ab || join(&ab, b) != ab {
                return Err(format!("not an inflation (upper bound): a={a:?} b={b:?} ab={ab:?}"));
            }
            for c in states.iter().step_by(2) {
                let l = join(&join(a, b), c);
                let r = join(a, &join(b, c));
                if l != r {
                    return Err(format!("not associative:\n a={a:?}\n b={b:?}\n c={c:?}"));
                }
            }
        }
    }
    // Every op is at its origin, so merging every replica gives the replica that received
    // every op.
    let all = states[..REPLICAS].iter().fold(T::default(), |acc, x| join(&acc, x));
    let everything = w.everything();
    if all != everything {
        return Err(format!("merging every replica gave {all:?}, receiving every op {everything:?}"));
    }
    Ok(())
}

/// Op exchange ≡ state merge: replicas that ship ops and replicas that ship whole states,
/// under the same mutations and the same communication, hold equal states at every step.
pub fn law_ops_equal_states<T: Subject>(h: History) -> Result<(), String> {
    let mut ops = OpWorld::<T>::new();
    let mut states: Vec<T> = (0..REPLICAS).map(|_| T::default()).collect();
    for (i, s) in h.steps.iter().enumerate() {
        match *s {
            Step::Mutate { at, seed } => {
                let intent = T::intent(&mut Rng::new(seed));
                let a = ops.mutate(at as usize, intent.clone());
                let b = states[at as usize].perform(replica(at as usize), &intent);
                if a != b {
                    return Err(format!("step {i}: equal states made different ops {a:?} / {b:?}"));
                }
            }
            Step::Deliver { to, pick, .. } => {
                let from = pick as usize % REPLICAS;
                ops.sync(from, to as usize)?;
                let src = states[from].clone();
                states[to as usize].merge(&src);
            }
            Step::Sync { from, to } => {
                ops.sync(from as usize, to as usize)?;
                let src = states[from as usize].clone();
                states[to as usize].merge(&src);
            }
        }
        for (r, (by_ops, by_states)) in ops.replicas.iter().zip(&states).enumerate() {
            if by_ops.state != *by_states {
                return Err(format!(
                    "step {i} {s:?}: replica {r} differs\n by ops:    {:?}\n by states: {by_states:?}",
                    by_ops.state
                ));
            }
        }
    }
    Ok(())
}

/// Every causal permutation of a history's ops — and, for these types, every permutation at
/// all — yields the same state; re-applying everything changes nothing.
pub fn law_permutations<T: Subject>(h: History) -> Result<(), String> {
    let w = run::<T>(&h)?;
    let reference = w.everything();
    let n = w.ops.len();
    let mut rng = Rng::new(h.seed);
    for round in 0..6 {
        // A random topological order of the causal DAG.
        let mut done = vec![false; n];
        let mut order = Vec::with_capacity(n);
        while order.len() < n {
            let ready: Vec<usize> = (0..n).filter(|&i| !done[i] && w.ops[i].1.deps.iter().all(|&d| done[d])).collect();
            let pick = ready[rng.below(ready.len() as u64) as usize];
            done[pick] = true;
            order.push(pick);
        }
        let mut s = T::default();
        for &i in &order {
            if let Err(e) = s.validate(&w.ops[i].0) {
                return Err(format!("round {round}: validate refused a causally ready op: {e}"));
            }
            s.apply(w.ops[i].0.clone());
        }
        if s != reference {
            return Err(format!("causal order {order:?} gave\n {s:?}\nnot\n {reference:?}"));
        }
        // Any order at all, with duplicates.
        let mut any: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            any.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let mut s = T::default();
        for &i in any.iter().chain(any.iter().take(n / 3)) {
            s.apply(w.ops[i].0.clone());
        }
        if s != reference {
            return Err(format!("arbitrary order {any:?} gave\n {s:?}\nnot\n {reference:?}"));
        }
    }
    let mut again = reference.clone();
    for (op, _) in &w.ops {
        again.apply(op.clone());
    }
    if again != reference {
        return Err("re-applying every op changed the state".into());
    }
    let events: Vec<&Event<T::Intent>> = w.ops.iter().map(|(_, e)| e).collect();
    if reference.observe() != T::model(&events) {
        return Err(format!("full delivery shows {:?}, model {:?}", reference.observe(), T::model(&events)));
    }
    Ok(())
}

/// Concurrent ops commute: ops made concurrently at two replicas, applied to a state that
/// has seen both origins' pasts, give the same state in either order.
pub fn law_concurrent_commute<T: Subject>(h: History) -> Result<(), String> {
    let w = run::<T>(&h)?;
    let mut rng = Rng::new(h.seed);
    for i in 0..REPLICAS {
        for j in 0..REPLICAS {
            if i == j {
                continue;
            }
            let mut si = w.replicas[i].state.clone();
            let mut sj = w.replicas[j].state.clone();
            let oi = si.perform(replica(i), &T::intent(&mut rng));
            let oj = sj.perform(replica(j), &T::intent(&mut rng));
            let mut base = w.replicas[i].state.clone();
            base.merge(&w.replicas[j].state);
            let mut x = base.clone();
            x.apply(oi.clone());
            x.apply(oj.clone());
            let mut y = base;
            y.apply(oj.clone());
            y.apply(oi.clone());
            if x != y {
                return Err(format!("{oi:?} and {oj:?} do not commute:\n {x:?}\n {y:?}"));
            }
        }
    }
    Ok(())
}

/// CBOR round trip is the identity on every state and op, and a decoded state keeps
/// behaving the same (merges to the same result).
pub fn law_serde<T: Subject>(h: History) -> Result<(), String> {
    let w = run::<T>(&h)?;
    for r in &w.replicas {
        let bytes = serde_cbor::to_vec(&r.state).map_err(|e| e.to_string())?;
        let back: T = serde_cbor::from_slice(&bytes).map_err(|e| format!("decode {:?}: {e}", r.state))?;
        if back != r.state {
            return Err(format!("state round trip: {:?} -> {back:?}", r.state));
        }
        for other in &w.replicas {
            let mut a = back.clone();
            a.merge(&other.state);
            let mut b = r.state.clone();
            b.merge(&other.state);
            if a != b {
                return Err("a decoded state merges differently".into());
            }
        }
    }
    for (op, _) in &w.ops {
        let bytes = serde_cbor::to_vec(op).map_err(|e| e.to_string())?;
        let back: T::Op = serde_cbor::from_slice(&bytes).map_err(|e| format!("decode {op:?}: {e}"))?;
        if &back != op {
            return Err(format!("op round trip: {op:?} -> {back:?}"));
        }
    }
    Ok(())
}

/// Runs one law through quickcheck with `tests` cases of up to `size` steps
/// (`GOSSAMER_LAW_TESTS` overrides the count, e.g. for a long soak).
pub fn check(law: fn(History) -> Result<(), String>, tests: u64, size: usize) {
    let tests = std::env::var("GOSSAMER_LAW_TESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(tests);
    quickcheck::QuickCheck::new().tests(tests).max_tests(tests * 10).rng(Gen::new(size)).quickcheck(law);
}

/// Instantiates every law for one type.
#[macro_export]
macro_rules! laws {
    ($name:ident, $ty:ty) => {
        mod $name {
            use super::*;
            use $crate::support::*;

            #[test]
            fn value_matches_model() {
                check(law_model::<$ty>, 300, 60);
            }
            #[test]
            fn merge_is_a_join() {
                check(law_merge::<$ty>, 200, 60);
            }
            #[test]
            fn op_exchange_equals_state_merge() {
                check(law_ops_equal_states::<$ty>, 300, 60);
            }
            #[test]
            fn every_delivery_order_converges() {
                check(law_permutations::<$ty>, 200, 60);
            }
            #[test]
            fn concurrent_ops_commute() {
                check(law_concurrent_commute::<$ty>, 200, 60);
            }
            #[test]
            fn cbor_round_trip_is_identity() {
                check(law_serde::<$ty>, 200, 60);
            }
        }
    };
}
