//! Cart update: a map of counters (item → quantity) over 100 items, `u` increments of one
//! pseudo-random item each (`u` = 1k, 10k, 100k), starting from every item at quantity 1.
//!
//! - `gossamer`: `OrMap<String, CausalCounter>`, `update(item, |q| q.inc(r, 1))`.
//! - `crdts`: `crdts::Map<String, crdts::PNCounter<u64>, u64>` — the idiomatic `crdts`
//!   equivalent (a reset-remove map whose values are counters), `update` with an add context
//!   derived from `read_ctx()`, then `apply`.
//! - `automerge`: counters (`ScalarValue::Counter`) in the root map, `increment`, one commit
//!   at the end; `automerge-commit-each` commits after every increment (one change per user
//!   action). Both run at 1k and 10k only (at 100k an iteration takes about 10 s).
//!
//! **Batching.** `cart_update` gives every iteration its own freshly cloned cart
//! (`BatchSize::PerIteration`): clone untimed, the `u` updates timed, drop untimed. An
//! iteration takes 40 µs or more, so criterion's per-iteration timer overhead is below 1 %.
//! Criterion's default `SmallInput` would clone a batch of a tenth of the iteration count
//! first, and the iteration count follows the library's speed: the faster library got batches
//! 2× larger, so colder inputs (in one run gossamer's time per update rose from 65 to 87 ns as
//! its batch grew from 36 to 362 carts, while crdts' batches held 17 to 170). `cart_update_cold`
//! measures the cold case fairly instead: the same batch of 64 carts for both libraries,
//! cloned before the timing, every output kept until the batch ends.
//!
//! Run: `cargo bench -p gossamer-crdt --bench cart`.

mod common;

use std::time::Duration;

use common::*;
use criterion::{BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput};

fn cart_update(c: &mut Criterion) {
    cart_group(c, "cart_update", BatchSize::PerIteration, true);
    cart_group(c, "cart_update_cold", BatchSize::NumIterations(64), false);
}

/// gossamer and crdts (and automerge, with `automerge`) at every size, each iteration on a
/// clone of the same cart, batched as `batch` says.
fn cart_group(c: &mut Criterion, name: &str, batch: BatchSize, automerge: bool) {
    let mut group = c.benchmark_group(name);
    let keys = cart_keys();
    let r = replica(1);
    let base = gossamer_cart(r, &keys);
    let crdts_base = crdts_cart(1, &keys);
    let automerge_base = automerge_cart(actor(1), &keys);
    for &u in sizes_to_run(&[1_000, 10_000, 100_000]) {
        group.throughput(Throughput::Elements(u as u64)).sample_size(10);
        group.warm_up_time(Duration::from_millis(500));
        if u >= 100_000 {
            group.sampling_mode(SamplingMode::Flat).measurement_time(Duration::from_secs(3));
        } else {
            group.sampling_mode(SamplingMode::Auto).measurement_time(Duration::from_secs(2));
        }
        let schedule = cart_schedule(u);
        group.bench_function(BenchmarkId::new("gossamer", u), |b| {
            b.iter_batched(
                || base.clone(),
                |mut cart| {
                    gossamer_cart_updates(&mut cart, r, &keys, &schedule);
                    cart
                },
                batch,
            )
        });
        group.bench_function(BenchmarkId::new("crdts", u), |b| {
            b.iter_batched(
                || crdts_base.clone(),
                |mut cart| {
                    crdts_cart_updates(&mut cart, 1, &keys, &schedule);
                    cart
                },
                batch,
            )
        });
        if !automerge || u >= 100_000 {
            // About 10 s an iteration at 100k: the 1k and 10k figures already show its cost.
            continue;
        }
        group.bench_function(BenchmarkId::new("automerge", u), |b| {
            b.iter_batched(
                || automerge_base.clone(),
                |mut doc| {
                    automerge_cart_updates(&mut doc, &keys, &schedule, false);
                    doc
                },
                batch,
            )
        });
        group.bench_function(BenchmarkId::new("automerge-commit-each", u), |b| {
            b.iter_batched(
                || automerge_base.clone(),
                |mut doc| {
                    automerge_cart_updates(&mut doc, &keys, &schedule, true);
                    doc
                },
                batch,
            )
        });
    }
    group.finish();
}

criterion::criterion_group!(benches, cart_update);
criterion::criterion_main!(benches);
