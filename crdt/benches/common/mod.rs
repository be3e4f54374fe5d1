//! Workloads shared by the benches: the same elements, keys and steps for gossamer,
//! `crdts` 7.3 and `automerge` 0.12, so that their figures compare like with like.
//!
//! Each library is used the way its documentation shows:
//! - gossamer: `set.add(replica, elem)` applies locally and returns the op to ship;
//! - `crdts`: `read_ctx().derive_add_ctx(actor)`, build the op, `apply` it locally
//!   (actors are `u64`, the cheapest actor type `crdts` supports);
//! - automerge: an `AutoCommit` document whose root map has one key per element (the
//!   element in decimal, automerge map keys being strings); all the puts of a workload go
//!   into one transaction, committed once at the end — automerge's cheapest path.

// Each bench binary uses its own part of this module.
#![allow(dead_code)]

use std::hint::black_box;

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, Change, ROOT, ScalarValue};
use crdts::{CmRDT as _, CvRDT as _};
use gossamer_crdt::{CausalCounter, CmRDT as _, CvRDT as _, OrMap, OrSet, OrSetOp, ReplicaId};

/// The set sizes every OR-Set workload runs at.
pub const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

/// The sizes to run: all of `sizes` under `cargo bench` (which passes `--bench`), only the
/// smallest when `cargo test --all-targets` runs a bench binary as a smoke test.
pub fn sizes_to_run(sizes: &[usize]) -> &[usize] {
    if std::env::args().any(|a| a == "--bench") { sizes } else { &sizes[..1] }
}

/// `crdts`' OR-Set of `u64` with `u64` actors.
pub type CrdtsSet = crdts::Orswot<u64, u64>;
/// An op of [`CrdtsSet`].
pub type CrdtsSetOp = crdts::orswot::Op<u64, u64>;
/// gossamer's cart: item → reset-remove counter.
pub type Cart = OrMap<String, CausalCounter>;
/// `crdts`' closest cart: a reset-remove `Map` of `PNCounter`s (`PNCounter` implements
/// `ResetRemove` + `CmRDT`, so it is a valid `Map` value).
pub type CrdtsCart = crdts::Map<String, crdts::PNCounter<u64>, u64>;

/// The gossamer replica numbered `n`.
pub fn replica(n: u8) -> ReplicaId {
    ReplicaId::from_u128(u128::from(n))
}

/// The automerge actor numbered `n` (16 bytes, like a gossamer replica id).
pub fn actor(n: u8) -> ActorId {
    ActorId::from(vec![n; 16])
}

/// SplitMix64: a bijection on `u64`, so distinct inputs give distinct, well-spread outputs.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `n` distinct pseudo-random `u64` elements (random order: no library gets sorted input).
pub fn elements(n: usize) -> Vec<u64> {
    (0..n as u64).map(splitmix64).collect()
}

/// The automerge map keys for `elems` (made outside the timed code).
pub fn keys(elems: &[u64]) -> Vec<String> {
    elems.iter().map(u64::to_string).collect()
}

// ---- OR-Set: gossamer ------------------------------------------------------------------

/// A set built by `r` adding `elems` one by one (the ops are made and dropped).
pub fn gossamer_add(r: ReplicaId, elems: &[u64]) -> OrSet<u64> {
    let mut set = OrSet::new();
    for &e in elems {
        black_box(set.add(r, e));
    }
    set
}

/// The ops `r` ships when it adds `elems` one by one.
pub fn gossamer_ops(r: ReplicaId, elems: &[u64]) -> Vec<OrSetOp<u64>> {
    let mut set = OrSet::new();
    elems.iter().map(|&e| set.add(r, e)).collect()
}

/// A fresh replica that applies `ops`.
pub fn gossamer_apply(ops: Vec<OrSetOp<u64>>) -> OrSet<u64> {
    let mut set = OrSet::new();
    for op in ops {
        set.apply(op);
    }
    set
}

/// Two replicas holding disjoint halves of `elems`.
pub fn gossamer_halves(elems: &[u64]) -> (OrSet<u64>, OrSet<u64>) {
    let (a, b) = elems.split_at(elems.len() / 2);
    (gossamer_add(replica(1), a), gossamer_add(replica(2), b))
}

/// `a` merged with `b`.
pub fn gossamer_merge(mut a: OrSet<u64>, b: &OrSet<u64>) -> OrSet<u64> {
    a.merge(b);
    a
}

// ---- OR-Set: crdts ---------------------------------------------------------------------

/// One add as `crdts` documents it: derive an add context, build the op, apply it.
fn crdts_add_one(set: &CrdtsSet, actor: u64, e: u64) -> CrdtsSetOp {
    let ctx = set.read_ctx().derive_add_ctx(actor);
    set.add(e, ctx)
}

/// A set built by `actor` adding `elems` one by one.
pub fn crdts_add(actor: u64, elems: &[u64]) -> CrdtsSet {
    let mut set = CrdtsSet::new();
    for &e in elems {
        let op = crdts_add_one(&set, actor, e);
        set.apply(op);
    }
    set
}

/// The ops `actor` ships when it adds `elems` one by one.
pub fn crdts_ops(actor: u64, elems: &[u64]) -> Vec<CrdtsSetOp> {
    let mut set = CrdtsSet::new();
    elems
        .iter()
        .map(|&e| {
            let op = crdts_add_one(&set, actor, e);
            set.apply(op.clone());
            op
        })
        .collect()
}

/// A fresh replica that applies `ops`.
pub fn crdts_apply(ops: Vec<CrdtsSetOp>) -> CrdtsSet {
    let mut set = CrdtsSet::new();
    for op in ops {
        set.apply(op);
    }
    set
}

/// Two replicas holding disjoint halves of `elems`.
pub fn crdts_halves(elems: &[u64]) -> (CrdtsSet, CrdtsSet) {
    let (a, b) = elems.split_at(elems.len() / 2);
    (crdts_add(1, a), crdts_add(2, b))
}

/// `a` merged with `b` (`crdts` merges by value).
pub fn crdts_merge(mut a: CrdtsSet, b: CrdtsSet) -> CrdtsSet {
    a.merge(b);
    a
}

// ---- OR-Set: automerge -----------------------------------------------------------------

/// A document in which `actor` puts every key of `keys` into the root map, one commit.
pub fn automerge_add(actor: ActorId, keys: &[String]) -> AutoCommit {
    let mut doc = AutoCommit::new().with_actor(actor);
    for k in keys {
        doc.put(ROOT, k.as_str(), true).expect("put into the root map");
    }
    doc.commit();
    doc
}

/// The changes a fresh replica needs to catch up with `doc`.
pub fn automerge_changes(doc: &mut AutoCommit) -> Vec<Change> {
    doc.get_changes(&[])
}

/// A fresh replica that applies `changes`.
pub fn automerge_apply(changes: Vec<Change>) -> AutoCommit {
    let mut doc = AutoCommit::new().with_actor(actor(9));
    doc.apply_changes(changes).expect("apply changes");
    doc
}

/// Two replicas holding disjoint halves of `keys`.
pub fn automerge_halves(keys: &[String]) -> (AutoCommit, AutoCommit) {
    let (a, b) = keys.split_at(keys.len() / 2);
    (automerge_add(actor(1), a), automerge_add(actor(2), b))
}

/// `a` merged with `b` (automerge needs `b` mutably; it is returned to be dropped untimed).
pub fn automerge_merge(mut a: AutoCommit, mut b: AutoCommit) -> (AutoCommit, AutoCommit) {
    a.merge(&mut b).expect("merge");
    (a, b)
}

// ---- Cart: a map of counters -----------------------------------------------------------

/// How many distinct items the cart holds.
pub const CART_ITEMS: usize = 100;

/// The item names.
pub fn cart_keys() -> Vec<String> {
    (0..CART_ITEMS).map(|i| format!("item-{i:03}")).collect()
}

/// Which item each of `updates` updates touches (pseudo-random, the same for every library).
pub fn cart_schedule(updates: usize) -> Vec<usize> {
    (0..updates as u64).map(|i| (splitmix64(i ^ 0xca27) % CART_ITEMS as u64) as usize).collect()
}

/// A cart in which replica `r` has every item at quantity 1.
pub fn gossamer_cart(r: ReplicaId, keys: &[String]) -> Cart {
    let mut cart = Cart::new();
    for k in keys {
        cart.update(k.clone(), |q| q.inc(r, 1));
    }
    cart
}

/// `r` increments the items of `schedule` by one, one update each.
pub fn gossamer_cart_updates(cart: &mut Cart, r: ReplicaId, keys: &[String], schedule: &[usize]) {
    for &i in schedule {
        black_box(cart.update(keys[i].clone(), |q| q.inc(r, 1)));
    }
}

/// A `crdts` cart in which `actor` has every item at quantity 1.
pub fn crdts_cart(actor: u64, keys: &[String]) -> CrdtsCart {
    let mut cart = CrdtsCart::new();
    crdts_cart_updates(&mut cart, actor, keys, &(0..keys.len()).collect::<Vec<_>>());
    cart
}

/// `actor` increments the items of `schedule` by one, as `crdts` documents it.
pub fn crdts_cart_updates(cart: &mut CrdtsCart, actor: u64, keys: &[String], schedule: &[usize]) {
    for &i in schedule {
        let ctx = cart.read_ctx().derive_add_ctx(actor);
        let op = cart.update(keys[i].clone(), ctx, |q, _| q.inc(actor));
        cart.apply(op);
    }
}

/// An automerge cart: the root map holds a counter at 1 per item, one commit.
pub fn automerge_cart(actor: ActorId, keys: &[String]) -> AutoCommit {
    let mut doc = AutoCommit::new().with_actor(actor);
    for k in keys {
        doc.put(ROOT, k.as_str(), ScalarValue::counter(1)).expect("put a counter");
    }
    doc.commit();
    doc
}

/// Increments the items of `schedule` by one; commits once at the end, or after every
/// increment when `commit_each` (one change per user action, as an interactive app would).
pub fn automerge_cart_updates(doc: &mut AutoCommit, keys: &[String], schedule: &[usize], commit_each: bool) {
    for &i in schedule {
        doc.increment(ROOT, keys[i].as_str(), 1).expect("increment a counter");
        if commit_each {
            doc.commit();
        }
    }
    doc.commit();
}
