//! `crdt_apply`: ops applied in arbitrary orders, genuine ones and arbitrary ones.

use arbitrary::Unstructured;
use gossamer_sync::wire::codec;

use super::subjects::{History, Subject, join, round_trip, same, with_subject};

/// Most ops one input applies.
const MAX_OPS: usize = 128;

/// Input layout: the first byte picks the type (low three bits) and the mode (bits 3–4); the
/// rest is read by the mode.
///
/// - **0, genuine ops**: a history of three replicas; its ops, applied to an empty state in
///   the order made (each must [`validate`](gossamer_crdt::CmRDT::validate)), in an arbitrary permutation,
///   and in another with duplicates, give one state — the join of the replicas' states.
/// - **1, arbitrary ops** (from [`Subject::arbitrary_op`]) and **2–3, decoded ops** (the rest
///   as a CBOR list of ops): nothing panics; applying each op twice gives the state applying it
///   once does; every op and every state reached survives its encoding.
pub fn crdt_apply(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    match (selector >> 3) & 3 {
        0 => with_subject!(selector, genuine_orders(rest)),
        1 => with_subject!(selector, arbitrary_ops(rest)),
        _ => with_subject!(selector, decoded_ops(rest)),
    }
}

fn genuine_orders<T: Subject>(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let h = History::<T>::read(&mut u);
    let mut made = T::default();
    for (i, op) in h.ops.iter().enumerate() {
        if let Err(e) = made.validate(op) {
            panic!("{}: op {i} is not causally ready in the order made: {e}\nop: {op:?}\nstate: {made:?}", T::NAME);
        }
        made.apply(op.clone());
    }
    let all = h.states.iter().fold(T::default(), |acc, s| join(&acc, s));
    same("ops applied in the order made = join of the replicas' states", &made, &all);
    round_trip("the state of all ops", &made);

    let order = permutation(&mut u, h.ops.len());
    let mut shuffled = T::default();
    for &i in &order {
        shuffled.apply(h.ops[i].clone());
    }
    same("ops in an arbitrary order = ops in the order made", &shuffled, &made);

    let order = permutation(&mut u, h.ops.len());
    let mut duplicated = T::default();
    for &i in &order {
        duplicated.apply(h.ops[i].clone());
        if u.arbitrary().unwrap_or(false) {
            let again = order[u.choose_index(order.len()).unwrap_or(0)];
            duplicated.apply(h.ops[again].clone());
        }
    }
    same("ops in an arbitrary order with duplicates = ops in the order made", &duplicated, &made);
}

/// A permutation of `0..n` read from `u` (the identity once the input runs out).
fn permutation(u: &mut Unstructured<'_>, n: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = u.int_in_range(0..=i).unwrap_or(i);
        p.swap(i, j);
    }
    p
}

fn arbitrary_ops<T: Subject>(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < MAX_OPS {
        match T::arbitrary_op(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    check_arbitrary::<T>(&ops);
}

fn decoded_ops<T: Subject>(data: &[u8]) {
    let Ok(mut ops) = codec::from_slice::<Vec<T::Op>>(data) else { return };
    ops.truncate(MAX_OPS);
    check_arbitrary::<T>(&ops);
}

/// What holds for any ops, even conflicting or impossible ones.
fn check_arbitrary<T: Subject>(ops: &[T::Op]) {
    for op in ops {
        let back: T::Op = codec::from_slice(&super::subjects::bytes(op))
            .unwrap_or_else(|e| panic!("{}: op does not decode from its own encoding: {e}\nop: {op:?}", T::NAME));
        assert_eq!(&back, op, "{}: decode(encode(op)) != op", T::NAME);
    }
    let mut once = T::default();
    let mut twice = T::default();
    for op in ops {
        let _ = once.validate(op);
        once.apply(op.clone());
        twice.apply(op.clone());
        twice.apply(op.clone());
    }
    same("each op applied twice = each op applied once", &twice, &once);
    round_trip("a state of arbitrary ops", &once);

    // Another order may legitimately differ (arbitrary ops can reuse a dot); it must not panic,
    // and its state must still be a state.
    let mut reversed = T::default();
    for op in ops.iter().rev() {
        reversed.apply(op.clone());
    }
    round_trip("a state of arbitrary ops, reversed", &reversed);
    same("x ⊔ x = x on a state of arbitrary ops", &join(&once, &once), &once);
    let _ = join(&once, &reversed);
    let _ = join(&reversed, &once);
}

/// Per type: two histories, arbitrary ops, and op lists encoded (genuine and arbitrary).
pub(crate) fn seeds() -> super::corpus::Seeds {
    let mut seeds = Vec::new();
    for t in 0..super::subjects::SUBJECTS {
        with_subject!(t, seeds_of(t, &mut seeds));
    }
    seeds
}

fn seeds_of<T: Subject>(t: u8, seeds: &mut super::corpus::Seeds) {
    let filler = |i: u64, len| super::corpus::filler(0x0A00 + u64::from(t) * 16 + i, len);
    let with = |selector: u8, rest: Vec<u8>| {
        let mut input = vec![selector];
        input.extend(rest);
        input
    };
    seeds.push((format!("genuine-{}-48", T::NAME), with(t, filler(0, 48))));
    seeds.push((format!("genuine-{}-160", T::NAME), with(t, filler(1, 160))));
    seeds.push((format!("arbitrary-{}", T::NAME), with(t | 0x08, filler(2, 96))));
    let h = History::<T>::read(&mut Unstructured::new(&filler(3, 160)));
    seeds.push((format!("decoded-genuine-{}", T::NAME), with(t | 0x10, super::subjects::bytes(&h.ops))));
    let bytes = filler(4, 96);
    let mut u = Unstructured::new(&bytes);
    let ops: Vec<T::Op> = (0..8).filter_map(|_| T::arbitrary_op(&mut u).ok()).collect();
    seeds.push((format!("decoded-arbitrary-{}", T::NAME), with(t | 0x10, super::subjects::bytes(&ops))));
}
