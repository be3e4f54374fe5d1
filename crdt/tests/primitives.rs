//! Laws of the causality primitives: the version vector is a partial order with merge as its
//! least upper bound, the causal context's compaction is lossless, and the hybrid logical
//! clock is monotonic and respects happened-before.

use std::collections::BTreeSet;

use gossamer_crdt::{CausalContext, Dot, Hlc, HlcClock, ReplicaId, VClock};
use quickcheck::quickcheck;

fn rid(i: u8) -> ReplicaId {
    ReplicaId::from_u128(u128::from(i % 4) << 64 | 7)
}

fn vclock(v: &[(u8, u8)]) -> VClock {
    v.iter().map(|&(r, c)| (rid(r), u64::from(c % 6))).collect()
}

quickcheck! {
    fn vclock_order_is_a_partial_order(a: Vec<(u8, u8)>, b: Vec<(u8, u8)>, c: Vec<(u8, u8)>) -> bool {
        let (a, b, c) = (vclock(&a), vclock(&b), vclock(&c));
        let reflexive = a <= a && a.dominates(&a);
        let antisymmetric = !(a <= b && b <= a) || a == b;
        let transitive = !(a <= b && b <= c) || a <= c;
        let concurrent = a.concurrent(&b) == a.partial_cmp(&b).is_none();
        reflexive && antisymmetric && transitive && concurrent
    }

    fn vclock_merge_is_least_upper_bound(a: Vec<(u8, u8)>, b: Vec<(u8, u8)>, c: Vec<(u8, u8)>) -> bool {
        let (a, b, c) = (vclock(&a), vclock(&b), vclock(&c));
        let mut m = a.clone();
        m.merge(&b);
        let upper = m >= a && m >= b;
        let least = !(c >= a && c >= b) || c >= m;
        let mut n = b.clone();
        n.merge(&a);
        upper && least && m == n
    }

    fn vclock_meet_is_greatest_lower_bound(a: Vec<(u8, u8)>, b: Vec<(u8, u8)>) -> bool {
        let (a, b) = (vclock(&a), vclock(&b));
        let mut m = a.clone();
        m.meet(&b);
        m <= a && m <= b
    }

    fn vclock_inc_dots_are_contained_and_new(a: Vec<(u8, u8)>, r: u8) -> bool {
        let mut a = vclock(&a);
        let before = a.clone();
        let dot = a.inc(rid(r));
        !before.contains(&dot) && a.contains(&dot) && a > before
    }

    fn vclock_cbor_round_trip(a: Vec<(u8, u8)>) -> bool {
        let a = vclock(&a);
        serde_cbor::from_slice::<VClock>(&serde_cbor::to_vec(&a).unwrap()).unwrap() == a
    }

    fn context_compaction_is_lossless(dots: Vec<(u8, u8)>) -> bool {
        let dots: Vec<Dot> = dots.iter().map(|&(r, c)| Dot::new(rid(r), u64::from(c % 20) + 1)).collect();
        let mut cx = CausalContext::new();
        for d in &dots {
            cx.insert(*d);
        }
        let set: BTreeSet<Dot> = dots.iter().copied().collect();
        let every = (0..4).flat_map(|r| (1..=21).map(move |c| Dot::new(rid(r), c)));
        let exact = every.clone().all(|d| cx.contains(&d) == set.contains(&d));
        // Compact iff every replica's dots form a prefix; the vector is that prefix.
        let prefix_ok = (0..4u8).all(|r| {
            let v = cx.vclock().get(&rid(r));
            (1..=v).all(|c| set.contains(&Dot::new(rid(r), c))) && !set.contains(&Dot::new(rid(r), v + 1))
        });
        let cloud_ok = cx.cloud().all(|d| set.contains(&d) && d.counter > cx.vclock().get(&d.replica) + 1);
        let round_trip = serde_cbor::from_slice::<CausalContext>(&serde_cbor::to_vec(&cx).unwrap()).unwrap() == cx;
        exact && prefix_ok && cloud_ok && round_trip
    }

    fn context_merge_is_union(a: Vec<(u8, u8)>, b: Vec<(u8, u8)>) -> bool {
        let mk = |v: &[(u8, u8)]| {
            let mut cx = CausalContext::new();
            for &(r, c) in v {
                cx.insert(Dot::new(rid(r), u64::from(c % 12) + 1));
            }
            cx
        };
        let (x, y) = (mk(&a), mk(&b));
        let mut m = x.clone();
        m.merge(&y);
        let mut n = y.clone();
        n.merge(&x);
        let every = (0..4).flat_map(|r| (1..=13).map(move |c| Dot::new(rid(r), c)));
        let union = every.clone().all(|d| m.contains(&d) == (x.contains(&d) || y.contains(&d)));
        union && m == n && m.dominates(&x) && m.dominates(&y)
    }

    fn context_next_dot_is_fresh(a: Vec<(u8, u8)>, r: u8) -> bool {
        let mut cx = CausalContext::new();
        for &(r, c) in &a {
            cx.insert(Dot::new(rid(r), u64::from(c % 12) + 1));
        }
        let before = cx.clone();
        let d = cx.next_dot(rid(r));
        !before.contains(&d) && cx.contains(&d)
    }

    fn hlc_is_monotonic(steps: Vec<(bool, u16, u16)>) -> bool {
        let mut clock = HlcClock::new(1_000);
        let mut last = Hlc::default();
        for (local, now, remote) in steps {
            let now = u64::from(now);
            let ts = if local {
                clock.tick(now)
            } else {
                match clock.observe(Hlc::new(u64::from(remote), 0), now) {
                    Ok(ts) => {
                        if ts <= Hlc::new(u64::from(remote), 0) {
                            return false;
                        }
                        ts
                    }
                    // Refused: too far ahead, and the clock did not move.
                    Err(_) => {
                        if clock.last() != last || u64::from(remote) <= now + 1_000 {
                            return false;
                        }
                        continue;
                    }
                }
            };
            if ts <= last {
                return false;
            }
            last = ts;
        }
        true
    }

    fn hlc_respects_happened_before(a_now: Vec<u16>, b_now: u16) -> bool {
        // Whatever A did, once B observes A's last timestamp, B's next event is later.
        let mut a = HlcClock::new(u64::MAX / 4);
        let mut b = HlcClock::new(u64::MAX / 4);
        let mut sent = Hlc::default();
        for n in a_now {
            sent = a.tick(u64::from(n));
        }
        b.observe(sent, u64::from(b_now)).is_ok() && b.tick(u64::from(b_now)) > sent
    }
}
