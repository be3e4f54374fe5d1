//! OR-Set benches: **add**, **apply**, **merge** and **encode** at 1k, 10k and 100k `u64`
//! elements, each on gossamer's `OrSet`, `crdts::Orswot` (7.3) and an automerge (0.12)
//! map, as sibling benchmarks of one group so that one run prints comparable numbers.
//!
//! - `orset_add`: one replica adds `n` distinct elements to an empty set (mutator + op).
//! - `orset_apply`: a fresh replica applies the `n` ops another replica produced
//!   (automerge: the changes of the other document).
//! - `orset_merge`: state merge of two replicas holding disjoint halves (2 × n/2).
//! - `orset_encode`: CBOR (`serde_cbor`) of the merged state; automerge: `save()`. The
//!   encoded sizes are printed once per benchmark.
//!
//! Run: `cargo bench -p gossamer-crdt --bench orset`.

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::*;
use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};

/// Group settings for `n` elements: few samples everywhere, flat sampling for the slow
/// 100k cases (criterion's linear sampling would run each at least 55 times).
fn configure(group: &mut BenchmarkGroup<'_, WallTime>, n: usize) {
    group.throughput(Throughput::Elements(n as u64)).sample_size(10);
    if n >= 100_000 {
        group
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
    } else {
        group
            .sampling_mode(SamplingMode::Auto)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
    }
}

fn add(c: &mut Criterion) {
    let mut group = c.benchmark_group("orset_add");
    for &n in sizes_to_run(&SIZES) {
        configure(&mut group, n);
        let elems = elements(n);
        let keys = keys(&elems);
        group.bench_function(BenchmarkId::new("gossamer", n), |b| {
            b.iter_with_large_drop(|| gossamer_add(replica(1), &elems))
        });
        group.bench_function(BenchmarkId::new("crdts", n), |b| b.iter_with_large_drop(|| crdts_add(1, &elems)));
        group.bench_function(BenchmarkId::new("automerge", n), |b| {
            b.iter_with_large_drop(|| automerge_add(actor(1), &keys))
        });
    }
    group.finish();
}

fn apply(c: &mut Criterion) {
    let mut group = c.benchmark_group("orset_apply");
    for &n in sizes_to_run(&SIZES) {
        configure(&mut group, n);
        let elems = elements(n);
        let ops = gossamer_ops(replica(1), &elems);
        group.bench_function(BenchmarkId::new("gossamer", n), |b| {
            b.iter_batched(|| ops.clone(), gossamer_apply, BatchSize::LargeInput)
        });
        let ops = crdts_ops(1, &elems);
        group.bench_function(BenchmarkId::new("crdts", n), |b| {
            b.iter_batched(|| ops.clone(), crdts_apply, BatchSize::LargeInput)
        });
        let changes = automerge_changes(&mut automerge_add(actor(1), &keys(&elems)));
        group.bench_function(BenchmarkId::new("automerge", n), |b| {
            b.iter_batched(|| changes.clone(), automerge_apply, BatchSize::LargeInput)
        });
    }
    group.finish();
}

fn merge(c: &mut Criterion) {
    let mut group = c.benchmark_group("orset_merge");
    for &n in sizes_to_run(&SIZES) {
        configure(&mut group, n);
        let elems = elements(n);
        let (a, b_) = gossamer_halves(&elems);
        group.bench_function(BenchmarkId::new("gossamer", n), |b| {
            b.iter_batched(|| a.clone(), |a| gossamer_merge(a, &b_), BatchSize::LargeInput)
        });
        let (a, b_) = crdts_halves(&elems);
        group.bench_function(BenchmarkId::new("crdts", n), |b| {
            b.iter_batched(|| (a.clone(), b_.clone()), |(a, b_)| crdts_merge(a, b_), BatchSize::LargeInput)
        });
        let (a, b_) = automerge_halves(&keys(&elems));
        group.bench_function(BenchmarkId::new("automerge", n), |b| {
            b.iter_batched(|| (a.clone(), b_.clone()), |(a, b_)| automerge_merge(a, b_), BatchSize::LargeInput)
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("orset_encode");
    let report = |lib: &str, n: usize, bytes: usize| {
        eprintln!("orset_encode/{lib}/{n}: {bytes} bytes, {:.1} B/element", bytes as f64 / n as f64);
    };
    for &n in sizes_to_run(&SIZES) {
        configure(&mut group, n);
        let elems = elements(n);
        let (a, b_) = gossamer_halves(&elems);
        let set = gossamer_merge(a, &b_);
        report("gossamer", n, serde_cbor::to_vec(&set).expect("encode").len());
        group.bench_function(BenchmarkId::new("gossamer", n), |b| {
            b.iter(|| serde_cbor::to_vec(black_box(&set)).expect("encode"))
        });
        let (a, b_) = crdts_halves(&elems);
        let set = crdts_merge(a, b_);
        report("crdts", n, serde_cbor::to_vec(&set).expect("encode").len());
        group.bench_function(BenchmarkId::new("crdts", n), |b| {
            b.iter(|| serde_cbor::to_vec(black_box(&set)).expect("encode"))
        });
        let (a, b_) = automerge_halves(&keys(&elems));
        let (mut doc, _) = automerge_merge(a, b_);
        report("automerge", n, doc.save().len());
        group.bench_function(BenchmarkId::new("automerge", n), |b| b.iter(|| doc.save()));
    }
    group.finish();
}

criterion::criterion_group!(benches, add, apply, merge, encode);
criterion::criterion_main!(benches);
