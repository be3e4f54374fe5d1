//! Heap bytes per element: builds each OR-Set (and each cart) under a counting global
//! allocator (`stats_alloc`) and prints, as Markdown tables, the live heap bytes it holds
//! (bytes requested from the allocator and not freed; the allocator's own overhead is not
//! counted) and the encoded size, per element.
//!
//! A separate binary with `harness = false` so that the counting allocator never sits under
//! the criterion timings. Run: `cargo bench -p gossamer-crdt --bench heap`. Under
//! `cargo test` (no `--bench` argument) it runs the smallest size only, as a smoke test.

mod common;

use std::alloc::System;

use common::*;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Runs `build` and returns its result with the heap bytes it left allocated.
fn live_bytes<T>(build: impl FnOnce() -> T) -> (T, i64) {
    let region = Region::new(GLOBAL);
    let value = build();
    let s = region.change();
    // `stats_alloc` already adds a realloc's growth to `bytes_allocated` (and its shrinkage to
    // `bytes_deallocated`); `bytes_reallocated` is the same growth again, so it is not added.
    (value, s.bytes_allocated as i64 - s.bytes_deallocated as i64)
}

fn per(bytes: i64, n: usize) -> String {
    format!("{:.1}", bytes as f64 / n as f64)
}

fn main() {
    let sizes = sizes_to_run(&SIZES);

    println!("OR-Set of u64, built by one replica adding n elements: heap B/element (CBOR or save() B/element)\n");
    println!("| n | gossamer OrSet | crdts Orswot | automerge map |");
    println!("|---:|---:|---:|---:|");
    for &n in sizes {
        let elems = elements(n);
        let keys = keys(&elems);
        let (g, g_heap) = live_bytes(|| gossamer_add(replica(1), &elems));
        let g_enc = serde_cbor::to_vec(&g).expect("encode").len() as i64;
        drop(g);
        let (c, c_heap) = live_bytes(|| crdts_add(1, &elems));
        let c_enc = serde_cbor::to_vec(&c).expect("encode").len() as i64;
        drop(c);
        let (mut a, a_heap) = live_bytes(|| automerge_add(actor(1), &keys));
        let a_enc = a.save().len() as i64;
        drop(a);
        println!(
            "| {n} | {} ({}) | {} ({}) | {} ({}) |",
            per(g_heap, n),
            per(g_enc, n),
            per(c_heap, n),
            per(c_enc, n),
            per(a_heap, n),
            per(a_enc, n)
        );
    }

    println!("\nOR-Set of u64 after merging two replicas with disjoint halves: heap B/element\n");
    println!("| n | gossamer OrSet | crdts Orswot | automerge map |");
    println!("|---:|---:|---:|---:|");
    for &n in sizes {
        let elems = elements(n);
        let keys = keys(&elems);
        let (a, b) = gossamer_halves(&elems);
        let (g, g_heap) = live_bytes(|| gossamer_merge(a.clone(), &b));
        drop((g, a, b));
        let (a, b) = crdts_halves(&elems);
        let (c, c_heap) = live_bytes(|| crdts_merge(a.clone(), b));
        drop((c, a));
        let (a, b) = automerge_halves(&keys);
        // The merged document only: `b` is dropped inside the measured region.
        let (m, a_heap) = live_bytes(|| automerge_merge(a, b).0);
        drop(m);
        println!("| {n} | {} | {} | {} |", per(g_heap, n), per(c_heap, n), per(a_heap, n));
    }

    println!(
        "\nCart of {CART_ITEMS} items after u increments: heap bytes in total (per increment; u = 0: \
         every item added once, per item)\n"
    );
    println!("| u | gossamer OrMap<String, CausalCounter> | crdts Map<String, PNCounter> | automerge counters |");
    println!("|---:|---:|---:|---:|");
    let ckeys = cart_keys();
    for u in std::iter::once(0).chain(sizes.iter().copied()) {
        let schedule = cart_schedule(u);
        let r = replica(1);
        let (g, g_heap) = live_bytes(|| {
            let mut cart = gossamer_cart(r, &ckeys);
            gossamer_cart_updates(&mut cart, r, &ckeys, &schedule);
            cart
        });
        drop(g);
        let (c, c_heap) = live_bytes(|| {
            let mut cart = crdts_cart(1, &ckeys);
            crdts_cart_updates(&mut cart, 1, &ckeys, &schedule);
            cart
        });
        drop(c);
        let (a, a_heap) = live_bytes(|| {
            let mut doc = automerge_cart(actor(1), &ckeys);
            automerge_cart_updates(&mut doc, &ckeys, &schedule, false);
            doc
        });
        drop(a);
        println!(
            "| {u} | {g_heap} ({}) | {c_heap} ({}) | {a_heap} ({}) |",
            per(g_heap, u.max(CART_ITEMS)),
            per(c_heap, u.max(CART_ITEMS)),
            per(a_heap, u.max(CART_ITEMS))
        );
    }
}
