//! `crdt_merge`: the lattice laws of `merge`, on states that histories reach and on states
//! decoded from arbitrary bytes.

use arbitrary::Unstructured;
use gossamer_sync::wire::codec;

use super::subjects::{History, Subject, join, replica, round_trip, same, with_subject};

/// Input layout: the first byte picks the type (low three bits) and the mode (bit 3); the
/// rest is a history (mode 0) or a CBOR state (mode 1).
///
/// - **history**: three replicas change, merge and apply ops; on their final states `a, b, c`
///   merge must be idempotent, commutative and associative, an inflation (`(a ⊔ b) ⊔ a = a ⊔ b`),
///   and equal states must encode to equal bytes; every state must decode from its encoding.
/// - **decoded state**: the bytes, if they decode as a state, give a state that merges with
///   itself, the empty state and a changed copy of itself without panicking and by the laws.
pub fn crdt_merge(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    if selector & 0x08 == 0 {
        with_subject!(selector, merge_laws(rest));
    } else {
        with_subject!(selector, decoded_state(rest));
    }
}

fn merge_laws<T: Subject>(data: &[u8]) {
    let h = History::<T>::read(&mut Unstructured::new(data));
    let [a, b, c] = &h.states[..] else { unreachable!("a history has three replicas") };
    for (name, x) in [("a", a), ("b", b), ("c", c)] {
        same(&format!("{name} ⊔ {name} = {name}"), &join(x, x), x);
        round_trip(name, x);
    }
    for (name, x, y) in [("a, b", a, b), ("b, c", b, c), ("a, c", a, c)] {
        let xy = join(x, y);
        same(&format!("commutativity ({name})"), &xy, &join(y, x));
        same(&format!("inflation ({name}): (x ⊔ y) ⊔ x = x ⊔ y"), &join(&xy, x), &xy);
        same(&format!("inflation ({name}): (x ⊔ y) ⊔ y = x ⊔ y"), &join(&xy, y), &xy);
        let equal_bytes = super::subjects::bytes(x) == super::subjects::bytes(y);
        assert_eq!(x == y, equal_bytes, "{}: ({name}) == disagrees with the encodings", T::NAME);
    }
    same("associativity", &join(&join(a, b), c), &join(a, &join(b, c)));
}

fn decoded_state<T: Subject>(data: &[u8]) {
    let Ok(s) = codec::from_slice::<T>(data) else { return };
    same("decoded ⊔ decoded = decoded", &join(&s, &s), &s);
    same("decoded ⊔ ⊥ = decoded", &join(&s, &T::default()), &s);
    same("⊥ ⊔ decoded = decoded", &join(&T::default(), &s), &s);
    round_trip("a decoded state", &s);

    // A change on top of the decoded state: by mutator, and by shipping its op.
    let mut changed = s.clone();
    let Ok(op) = changed.mutate(replica(0), &mut Unstructured::new(&[1, 2, 3, 4, 5, 6])) else { return };
    let mut applied = s.clone();
    let _ = applied.validate(&op);
    applied.apply(op);
    same("decoded + op = decoded changed by the mutator", &applied, &changed);
    same("decoded ⊔ changed = changed", &join(&s, &changed), &changed);
    same("changed ⊔ decoded = changed", &join(&changed, &s), &changed);
    round_trip("a changed decoded state", &changed);
}

/// Per type: histories of three lengths, and states a history reached, encoded.
pub(crate) fn seeds() -> super::corpus::Seeds {
    let mut seeds = Vec::new();
    for t in 0..super::subjects::SUBJECTS {
        with_subject!(t, seeds_of(t, &mut seeds));
    }
    seeds
}

fn seeds_of<T: Subject>(t: u8, seeds: &mut super::corpus::Seeds) {
    for (i, len) in [16usize, 64, 192].into_iter().enumerate() {
        let mut input = vec![t];
        input.extend(super::corpus::filler(u64::from(t) * 16 + i as u64, len));
        seeds.push((format!("history-{}-{len}", T::NAME), input));
    }
    let h = History::<T>::read(&mut Unstructured::new(&super::corpus::filler(u64::from(t) * 16 + 8, 160)));
    for (i, state) in h.states.iter().enumerate().take(2) {
        let mut input = vec![t | 0x08];
        input.extend(super::subjects::bytes(state));
        seeds.push((format!("state-{}-{i}", T::NAME), input));
    }
}
