//! The edge cases other CRDT libraries get wrong, one named test each.

use gossamer_crdt::{
    CausalCounter, CausalityError, CmRDT, CvRDT, Dot, GCounter, Hlc, HlcClock, LwwRegister, MvRegister, OrMap, OrSet,
    PNCounter, ReplicaId,
};

fn ids() -> (ReplicaId, ReplicaId, ReplicaId) {
    (ReplicaId::from_u128(1), ReplicaId::from_u128(2), ReplicaId::from_u128(3))
}

#[test]
fn lww_two_writes_with_equal_hlc_never_compare_equal() {
    let (a, b, _) = ids();
    let ts = Hlc::new(1_000, 0);
    let mut x = LwwRegister::new();
    let mut y = LwwRegister::new();
    let op_x = x.set(a, ts, "from a");
    let op_y = y.set(b, ts, "from b");
    x.apply(op_y);
    y.apply(op_x);
    // Same timestamp: the greater replica id wins, on both sides.
    assert_eq!(x.get(), Some(&"from b"));
    assert_eq!(y.get(), Some(&"from b"));
    assert_eq!(x.timestamp(), Some((ts, b)));
    assert_eq!(x, y);
}

#[test]
fn hlc_stays_monotonic_when_the_wall_clock_steps_backwards() {
    let mut clock = HlcClock::default();
    let t1 = clock.tick(10_000);
    let t2 = clock.tick(5_000); // NTP stepped the clock back five seconds
    let t3 = clock.tick(5_001);
    let t4 = clock.tick(10_000);
    assert!(t1 < t2 && t2 < t3 && t3 < t4);
    assert_eq!(t2, Hlc::new(10_000, 1));
}

#[test]
fn hlc_refuses_remote_timestamp_too_far_ahead() {
    let mut clock = HlcClock::new(1_000);
    let before = clock.tick(50);
    let err = clock.observe(Hlc::new(5_000, 0), 100).unwrap_err();
    assert_eq!(err, CausalityError::ClockAhead { remote_ms: 5_000, local_ms: 100, max_drift_ms: 1_000 });
    assert_eq!(clock.last(), before, "a refused timestamp must not move the clock");
}

#[test]
fn hlc_logical_overflow_borrows_the_next_millisecond() {
    assert_eq!(Hlc::new(7, u32::MAX).successor(), Hlc::new(8, 0));
}

#[test]
fn orset_remove_of_unseen_element_is_a_noop_that_never_blocks_a_later_add() {
    let (a, b, _) = ids();
    let mut x = OrSet::new();
    let mut y = OrSet::new();
    let remove = y.remove(&"milk"); // y never saw milk
    assert_eq!(y, OrSet::new(), "removing an absent element changes nothing");
    let add = x.add(a, "milk");
    x.apply(remove.clone());
    assert!(x.contains(&"milk"), "an earlier blind remove must not block the add");
    y.apply(add);
    y.apply(remove);
    assert!(y.contains(&"milk"));
    // And later adds by anyone still work.
    y.add(b, "milk");
    assert!(y.contains(&"milk"));
}

#[test]
fn orset_concurrent_adds_then_remove_that_saw_one_keeps_the_element() {
    let (a, b, c) = ids();
    let mut x = OrSet::new();
    let mut y = OrSet::new();
    let mut z = OrSet::new();
    let add_a = x.add(a, "eggs");
    let add_b = y.add(b, "eggs"); // concurrent add of the same element
    z.apply(add_a.clone());
    let remove = z.remove(&"eggs"); // z saw only a's add
    let _ = c;
    for s in [&mut x, &mut y, &mut z] {
        for op in [add_a.clone(), add_b.clone(), remove.clone()] {
            s.apply(op);
        }
    }
    assert!(x.contains(&"eggs") && y.contains(&"eggs") && z.contains(&"eggs"));
    assert_eq!(x, y);
    assert_eq!(y, z);
}

#[test]
fn orset_readding_an_element_does_not_grow_its_state() {
    let (a, _, _) = ids();
    let mut s = OrSet::new();
    for _ in 0..100 {
        s.add(a, 42u64);
    }
    let bytes = serde_cbor::to_vec(&s).unwrap();
    assert!(bytes.len() < 48, "{} bytes for one element re-added 100 times", bytes.len());
}

#[test]
fn mvregister_concurrent_writes_of_equal_values_converge_to_that_value_once() {
    let (a, b, c) = ids();
    let mut x = MvRegister::new();
    let mut y = MvRegister::new();
    let op_x = x.write(a, 7);
    let op_y = y.write(b, 7);
    x.apply(op_y);
    y.apply(op_x);
    // Two writes are kept (two dots), but the value shows once, the same on both.
    assert_eq!(x.values(), vec![&7]);
    assert_eq!(x, y);
    let op = x.write(c, 8); // a write that saw both replaces both
    y.apply(op);
    assert_eq!(y.values(), vec![&8]);
}

#[test]
fn ormap_remove_concurrent_with_increment_keeps_only_the_increment() {
    let (a, b, _) = ids();
    let mut phone: OrMap<&str, CausalCounter> = OrMap::new();
    let mut laptop = phone.clone();
    laptop.apply(phone.update("milk", |q| q.inc(a, 3)));
    let remove = laptop.remove(&"milk");
    let plus = phone.update("milk", |q| q.inc(a, 1));
    phone.apply(remove);
    laptop.apply(plus);
    assert_eq!(phone.get(&"milk").map(|q| q.value()), Some(1), "not 4 (resurrected) and not absent");
    assert_eq!(phone, laptop);
    let _ = b;
}

#[test]
fn ormap_removed_key_never_comes_back_without_a_concurrent_update() {
    let (a, b, _) = ids();
    let mut x: OrMap<&str, CausalCounter> = OrMap::new();
    let mut y = x.clone();
    y.apply(x.update("milk", |q| q.inc(a, 2)));
    x.apply(y.update("milk", |q| q.inc(b, 1)));
    let remove = x.remove(&"milk");
    y.apply(remove);
    // Re-deliver everything old in every order: nothing resurrects.
    let mut z = y.clone();
    z.merge(&x);
    assert!(z.get(&"milk").is_none() && x.get(&"milk").is_none() && y.get(&"milk").is_none());
}

#[test]
fn validate_rejects_an_op_that_skips_a_dot() {
    let (a, _, _) = ids();
    // OR-Set
    let mut origin = OrSet::new();
    let _first = origin.add(a, 1);
    let second = origin.add(a, 2);
    let err = OrSet::new().validate(&second).unwrap_err();
    assert_eq!(err, CausalityError::MissingDependency { dot: Dot::new(a, 2), have: 0 });
    // G-Counter and PN-Counter
    let mut g = GCounter::new();
    g.inc(a, 1);
    assert!(matches!(GCounter::new().validate(&g.inc(a, 1)), Err(CausalityError::MissingDependency { .. })));
    let mut p = PNCounter::new();
    p.dec(a, 1);
    assert!(matches!(PNCounter::new().validate(&p.dec(a, 1)), Err(CausalityError::MissingDependency { .. })));
    // Reset-remove counter, registers, map
    let mut c = CausalCounter::new();
    c.inc(a, 1);
    assert!(matches!(CausalCounter::new().validate(&c.inc(a, 1)), Err(CausalityError::MissingDependency { .. })));
    let mut m = MvRegister::new();
    let w1 = m.write(a, 1);
    let w2 = m.write(a, 2);
    assert!(matches!(MvRegister::new().validate(&w2), Err(CausalityError::MissingDependency { .. })));
    assert!(MvRegister::new().validate(&w1).is_ok());
    let mut l = LwwRegister::new();
    l.set(a, Hlc::new(1, 0), 1);
    assert!(matches!(
        LwwRegister::new().validate(&l.set(a, Hlc::new(2, 0), 2)),
        Err(CausalityError::MissingDependency { .. })
    ));
    let mut map: OrMap<u8, CausalCounter> = OrMap::new();
    map.update(1, |q| q.inc(a, 1));
    let op = map.update(2, |q| q.inc(a, 1));
    assert!(matches!(OrMap::<u8, CausalCounter>::new().validate(&op), Err(CausalityError::MissingDependency { .. })));
}

#[test]
fn validate_rejects_a_remove_of_unseen_adds() {
    let (a, b, _) = ids();
    let mut x = OrSet::new();
    let mut y = OrSet::new();
    y.apply(x.add(a, "tea"));
    let remove = y.remove(&"tea");
    assert_eq!(OrSet::<&str>::new().validate(&remove), Err(CausalityError::UnseenDependency { dot: Dot::new(a, 1) }));
    let _ = b;
}

/// Duplicates: every type's `apply` is idempotent (a duplicate is a no-op), and `validate`
/// reports an op that carries a dot as `AlreadySeen`. Removes carry no dot of their own, so a
/// duplicate remove validates and applies as the no-op it is.
#[test]
fn duplicate_ops_are_noops_and_validate_says_already_seen() {
    let (a, _, _) = ids();
    let mut s = OrSet::new();
    let add = s.add(a, 1);
    let mut r = OrSet::new();
    r.apply(add.clone());
    let once = r.clone();
    assert_eq!(r.validate(&add), Err(CausalityError::AlreadySeen { dot: Dot::new(a, 1) }));
    r.apply(add);
    assert_eq!(r, once);
    let remove = r.remove(&1);
    let after = r.clone();
    assert!(r.validate(&remove).is_ok());
    r.apply(remove);
    assert_eq!(r, after);

    let mut g = GCounter::new();
    let op = g.inc(a, 5);
    let mut h = GCounter::new();
    h.apply(op);
    h.apply(op);
    assert_eq!(h.value(), 5);
    assert_eq!(h.validate(&op), Err(CausalityError::AlreadySeen { dot: op.dot }));

    let mut c = CausalCounter::new();
    let op = c.inc(a, 5);
    let mut d = CausalCounter::new();
    d.apply(op);
    d.apply(op);
    assert_eq!(d.value(), 5);
}

#[test]
fn counters_saturate_instead_of_wrapping() {
    let (a, b, _) = ids();
    let mut g = GCounter::new();
    g.inc(a, u64::MAX);
    g.inc(a, 1);
    assert_eq!(g.get(&a), u64::MAX);
    g.inc(b, 10);
    assert_eq!(g.value(), u64::MAX);
    assert_eq!(g.value_u128(), u128::from(u64::MAX) + 10);

    let mut p = PNCounter::new();
    p.dec(a, u64::MAX);
    assert_eq!(p.value(), i64::MIN);
    assert_eq!(p.value_i128(), -i128::from(u64::MAX));

    let mut c = CausalCounter::new();
    c.add(a, i64::MAX);
    c.add(b, i64::MAX);
    assert_eq!(c.value(), i64::MAX);
    for _ in 0..4 {
        c.dec(a, u64::MAX); // each change is clamped to -i64::MAX
    }
    assert_eq!(c.value(), i64::MIN);
}

#[test]
fn decoding_a_state_with_a_live_dot_outside_its_context_fails() {
    let (a, _, _) = ids();
    let mut s = OrSet::new();
    s.add(a, 5u8);
    // (context, store): claim the context saw nothing.
    let (_, store): (serde_cbor::Value, serde_cbor::Value) =
        serde_cbor::from_slice(&serde_cbor::to_vec(&s).unwrap()).unwrap();
    let forged = serde_cbor::to_vec(&(Vec::<(ReplicaId, u64, Vec<u64>)>::new(), store)).unwrap();
    let err = serde_cbor::from_slice::<OrSet<u8>>(&forged).unwrap_err();
    assert!(err.to_string().contains("missing from the context"), "{err}");
}

#[test]
fn decoding_garbage_is_an_error_not_a_panic() {
    for bytes in [
        &b""[..],
        b"\xff",
        b"\x82\x80",
        b"\x82\x81\x83\x50",
        b"\x9f\x9f\x9f",
        &[0x82, 0x81, 0x83, 0x41, 0, 1, 0x80, 0x80],
    ] {
        assert!(serde_cbor::from_slice::<OrSet<u8>>(bytes).is_err());
        assert!(serde_cbor::from_slice::<OrMap<u8, CausalCounter>>(bytes).is_err());
        assert!(serde_cbor::from_slice::<GCounter>(bytes).is_err() || bytes.is_empty());
    }
}

#[test]
fn dot_set_is_sixteen_bytes() {
    assert_eq!(std::mem::size_of::<gossamer_crdt::kernel::DotSet>(), 16);
}

/// The law suite's sets hold a handful of elements; this one holds hundreds, so that the
/// hash-indexed map grows, shrinks and moves entries (swap removes) under every path: local
/// adds and removes, applied ops and merges. Ops and states must agree at every step, the
/// ordered views must be sorted, and equal states must encode equally.
#[test]
fn orset_of_many_elements_agrees_by_ops_and_by_states() {
    let ids = [ReplicaId::from_u128(3), ReplicaId::from_u128(1), ReplicaId::from_u128(2)];
    let mut by_ops: Vec<OrSet<u16>> = vec![OrSet::new(); 3];
    let mut by_states: Vec<OrSet<u16>> = vec![OrSet::new(); 3];
    let mut outbox: Vec<Vec<gossamer_crdt::OrSetOp<u16>>> = vec![Vec::new(); 3];
    let mut seed = 7u64;
    let mut next = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        seed >> 33
    };
    for step in 0..3_000 {
        let at = (next() % 3) as usize;
        match next() % 10 {
            0..=5 => {
                let e = (next() % 400) as u16;
                let op = by_ops[at].add(ids[at], e);
                by_states[at].add(ids[at], e);
                outbox[at].push(op);
            }
            6..=7 => {
                let e = (next() % 400) as u16;
                let op = by_ops[at].remove(&e);
                by_states[at].remove(&e);
                outbox[at].push(op);
            }
            _ => {
                // `at` receives everything `from` did since `from`'s last broadcast.
                let from = (at + 1 + (next() % 2) as usize) % 3;
                for op in std::mem::take(&mut outbox[from]) {
                    for (r, s) in by_ops.iter_mut().enumerate() {
                        if r != from {
                            s.apply(op.clone());
                        }
                    }
                }
                let src = by_states[from].clone();
                for (r, s) in by_states.iter_mut().enumerate() {
                    if r != from {
                        s.merge(&src);
                    }
                }
            }
        }
        // A broadcast hands every other replica `from`'s new ops, or `from`'s whole state:
        // either way each replica has then seen the same, so the two worlds agree throughout.
        for r in 0..3 {
            assert_eq!(by_ops[r], by_states[r], "step {step}: replica {r}");
            let v: Vec<u16> = by_ops[r].iter().copied().collect();
            assert!(v.windows(2).all(|w| w[0] < w[1]), "step {step}: iter not sorted");
            assert_eq!(v.len(), by_ops[r].len());
            assert!(v.iter().all(|e| by_ops[r].contains(e)));
        }
    }
    // Bring everyone up to date both ways.
    for (from, ops) in outbox.iter_mut().enumerate() {
        for op in std::mem::take(ops) {
            for (r, s) in by_ops.iter_mut().enumerate() {
                if r != from {
                    s.apply(op.clone());
                }
            }
        }
    }
    let all = by_states.iter().fold(OrSet::new(), |mut acc, s| {
        acc.merge(s);
        acc
    });
    for r in 0..3 {
        assert_eq!(by_ops[r], by_ops[0]);
        let mut s = by_states[r].clone();
        s.merge(&all);
        assert_eq!(s, all);
        assert_eq!(serde_cbor::to_vec(&s).unwrap(), serde_cbor::to_vec(&all).unwrap());
    }
    assert_eq!(by_ops[0], all, "op exchange and state merge disagree");
    assert!(all.len() > 100, "the set should hold many elements, holds {}", all.len());
    let back: OrSet<u16> = serde_cbor::from_slice(&serde_cbor::to_vec(&all).unwrap()).unwrap();
    assert_eq!(back, all);
}
