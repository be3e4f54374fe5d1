//! Counter increment: the cost of one `inc` on a counter that already has a history of
//! `n` increments (1k, 10k, 100k) spread round-robin over 8 replicas. O(1) per increment
//! means the figure does not grow with `n`.
//!
//! - `GCounter`, `PNCounter`: their state is one entry per replica, whatever `n`.
//! - `CausalCounter`: its state is one entry per live change, so it holds `n` entries; the
//!   incrementing replica is the first of the 8 (the lowest replica index, the worst case
//!   for the store's dot order). `CausalCounter-solo`: the whole history is the
//!   incrementing replica's own (its new dots always sort last).
//! - `crdts-GCounter`, `crdts-PNCounter`: `crdts`' counters (`inc` then `apply`), same history.
//!
//! Each timed run clones the pre-built counter (untimed) every 100 increments, so the state
//! stays within 101 entries of its nominal size.
//!
//! Run: `cargo bench -p gossamer-crdt --bench counter`.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{replica, sizes_to_run};
use crdts::CmRDT as _;
use criterion::{Bencher, BenchmarkId, Criterion, Throughput};
use gossamer_crdt::{CausalCounter, GCounter, PNCounter};

/// Increments timed between two clones of the pre-built state.
const CHUNK: u64 = 100;

/// Times `step` on fresh clones of `base`, `CHUNK` steps per clone.
fn chunked<S: Clone>(b: &mut Bencher<'_>, base: &S, mut step: impl FnMut(&mut S)) {
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let k = left.min(CHUNK);
            let mut state = base.clone();
            // One untimed step first: a clone's vectors are full, so the first push of a
            // `CausalCounter` reallocates; that one-off copy is not the cost of an increment.
            step(&mut state);
            let start = Instant::now();
            for _ in 0..k {
                step(&mut state);
            }
            total += start.elapsed();
            drop(state);
            left -= k;
        }
        total
    })
}

fn increment(c: &mut Criterion) {
    let mut group = c.benchmark_group("counter_inc");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    let me = replica(1);
    // History replica of the i-th increment: 1..=8 round-robin; the crdts actor is the same.
    let who = |i: usize| (i % 8) as u8 + 1;
    for &n in sizes_to_run(&[1_000, 10_000, 100_000]) {
        let mut g = GCounter::new();
        let mut p = PNCounter::new();
        let mut cc = CausalCounter::new();
        let mut solo = CausalCounter::new();
        let mut cg = crdts::GCounter::<u64>::new();
        let mut cp = crdts::PNCounter::<u64>::new();
        for i in 0..n {
            let r = replica(who(i));
            g.inc(r, 1);
            p.inc(r, 1);
            cc.inc(r, 1);
            solo.inc(me, 1);
            let a = u64::from(who(i));
            cg.apply(cg.inc(a));
            cp.apply(cp.inc(a));
        }
        assert_eq!(cc.changes(), n);
        group.bench_function(BenchmarkId::new("GCounter", n), |b| {
            chunked(b, &g, |s| {
                black_box(s.inc(me, 1));
            })
        });
        group.bench_function(BenchmarkId::new("PNCounter", n), |b| {
            chunked(b, &p, |s| {
                black_box(s.inc(me, 1));
            })
        });
        group.bench_function(BenchmarkId::new("CausalCounter", n), |b| {
            chunked(b, &cc, |s| {
                black_box(s.inc(me, 1));
            })
        });
        group.bench_function(BenchmarkId::new("CausalCounter-solo", n), |b| {
            chunked(b, &solo, |s| {
                black_box(s.inc(me, 1));
            })
        });
        group.bench_function(BenchmarkId::new("crdts-GCounter", n), |b| chunked(b, &cg, |s| s.apply(s.inc(1))));
        group.bench_function(BenchmarkId::new("crdts-PNCounter", n), |b| chunked(b, &cp, |s| s.apply(s.inc(1))));
    }
    group.finish();
}

criterion::criterion_group!(benches, increment);
criterion::criterion_main!(benches);
