//! The scale harness: runs the real protocol in the simulator at 10, 100 and 1000 replicas
//! and reports how fast one update spreads, what it costs on the wire, how redundant the
//! push tree is, what an idle anti-entropy round costs, how fast a healed partition
//! converges, and how a replica that missed 100,000 ops catches up.
//!
//! ```sh
//! cargo run --release -p gossamer-sync --example scale            # everything
//! cargo run --release -p gossamer-sync --example scale -- --quick  # N = 10, 100 only
//! cargo run --release -p gossamer-sync --example scale -- --stress # the 1000 × 1000 stress run only
//! ```
//!
//! Writes `target/scale/summary.csv`, `target/scale/rounds.csv` and
//! `target/scale/spread.svg` (fraction of replicas updated per round, one line per N).
//! A *round* is one anti-entropy interval (100 ms), which is also the one-way latency
//! (50–100 ms), so an eager-push hop costs about one round.

use std::fmt::Write as _;
use std::time::Instant;

use gossamer_crdt::{CausalCounter, OrMap};
use gossamer_sync::protocol::{Config, Replica};
use gossamer_sync::sim::{Sim, SimConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type Cart = OrMap<u16, CausalCounter>;

const ROUND_MS: u64 = 100;

fn config(n: usize, seed: u64) -> SimConfig {
    let mut c = SimConfig::new(n, seed);
    c.latency_ms = (ROUND_MS / 2, ROUND_MS);
    c.protocol = Config { anti_entropy_interval_ms: ROUND_MS, push_grace_ms: ROUND_MS, ..Config::default() };
    c
}

fn update(sim: &mut Sim<Cart>, at: usize, item: u16) -> gossamer_crdt::Dot {
    let id = sim.id(at);
    sim.update(at, move |cart| cart.update(item, |q| q.inc(id, 1))).expect("node is up")
}

fn sum_stats(sim: &Sim<Cart>, f: impl Fn(&Replica<Cart>) -> u64) -> u64 {
    (0..sim.len()).filter_map(|i| sim.replica(i)).map(f).sum()
}

fn push_pull_bound(n: usize) -> f64 {
    let n = n as f64;
    n.ln() / 3f64.ln() + n.ln().ln()
}

struct Row {
    n: usize,
    metric: &'static str,
    value: f64,
    note: String,
}

/// One update spreading through a warmed-up network: the fraction of replicas that have it
/// at the end of each round, averaged over `samples` updates from random writers.
fn spread(n: usize, seed: u64, samples: usize, rows: &mut Vec<Row>) -> Vec<f64> {
    let mut sim = Sim::<Cart>::new(config(n, seed));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Warm up: a few updates from random writers let the push tree form (prunes settle).
    for k in 0..20 {
        let at = rng.random_range(0..n);
        update(&mut sim, at, k);
        sim.run_for(ROUND_MS);
    }
    sim.run_until_converged(600_000).expect("warm-up converges");
    let rounds_max = 40;
    let mut curve = vec![0.0; rounds_max + 1];
    let mut worst = 0usize;
    let mut total_rounds = 0usize;
    for s in 0..samples {
        let at = rng.random_range(0..n);
        let dot = update(&mut sim, at, 1_000 + s as u16);
        let mut done_at = None;
        for (r, slot) in curve.iter_mut().enumerate() {
            let reached = sim.reached(&dot);
            *slot += reached as f64 / n as f64 / samples as f64;
            if reached == n && done_at.is_none() {
                done_at = Some(r);
            }
            sim.run_for(ROUND_MS);
        }
        let rounds = done_at.unwrap_or(rounds_max + 1);
        worst = worst.max(rounds);
        total_rounds += rounds;
        sim.run_until_converged(600_000).expect("converges");
    }
    let bound = push_pull_bound(n);
    rows.push(Row {
        n,
        metric: "rounds_to_converge_mean",
        value: total_rounds as f64 / samples as f64,
        note: format!("{samples} single updates"),
    });
    rows.push(Row {
        n,
        metric: "rounds_to_converge_max",
        value: worst as f64,
        note: format!("2x push-pull bound = {:.1}", 2.0 * bound),
    });
    rows.push(Row { n, metric: "push_pull_bound", value: bound, note: "log3 N + ln ln N".into() });
    sim.check().expect("no violation");
    curve
}

/// Random writers: `updates` updates, one every 10 ms; bytes and redundancy.
fn random_writers(n: usize, seed: u64, updates: usize, rows: &mut Vec<Row>) {
    let mut sim = Sim::<Cart>::new(config(n, seed));
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 1);
    for k in 0..updates {
        let at = rng.random_range(0..n);
        update(&mut sim, at, (k % 200) as u16);
        sim.run_for(10);
    }
    sim.run_until_converged(3_600_000).expect("random writers converge");
    sim.check().expect("no violation");
    let received = (updates * (n - 1)) as f64;
    let dup_push = sum_stats(&sim, |r| r.stats().duplicates_pushed) as f64;
    let dup_pull = sum_stats(&sim, |r| r.stats().duplicates_pulled) as f64;
    let peak = (0..n).filter_map(|i| sim.replica(i)).map(|r| r.peak_buffered().0).max().unwrap_or(0);
    let m = &sim.metrics;
    rows.push(Row {
        n,
        metric: "redundant_copies_per_op_per_replica",
        value: (dup_push + dup_pull) / received,
        note: format!("push {dup_push}, pull {dup_pull}"),
    });
    rows.push(Row {
        n,
        metric: "bytes_per_update",
        value: m.bytes as f64 / updates as f64,
        note: "all traffic / updates".into(),
    });
    rows.push(Row {
        n,
        metric: "bytes_per_update_per_replica",
        value: m.bytes as f64 / received,
        note: format!("push {} ops {} digest {}", m.push_bytes, m.ops_bytes, m.digest_bytes),
    });
    rows.push(Row { n, metric: "peak_buffered_ops", value: peak as f64, note: "largest causal buffer".into() });

    // Idle: nothing changes; every replica runs its anti-entropy rounds. (The first idle
    // round still carries whole version vectors: each replica's last news.)
    sim.run_for(ROUND_MS * 2);
    let m = &sim.metrics;
    let before = (m.digest_bytes, m.bytes, m.digests);
    let idle_rounds = 10;
    sim.run_for(ROUND_MS * idle_rounds);
    let digests = sim.metrics.digests - before.2;
    let bytes = sim.metrics.bytes - before.1;
    rows.push(Row {
        n,
        metric: "idle_bytes_per_round_per_known_replica",
        value: bytes as f64 / (idle_rounds * n as u64) as f64 / (n - 1) as f64,
        note: format!("{digests} digests, {bytes} bytes in {idle_rounds} rounds"),
    });
    rows.push(Row {
        n,
        metric: "idle_digest_bytes",
        value: bytes as f64 / digests.max(1) as f64,
        note: "one idle digest, framed".into(),
    });
}

/// Halves partitioned while both write, then healed: anti-entropy rounds to converge.
/// Measured on a LAN-like network (10–50 ms links, 1 s anti-entropy interval, the default):
/// the bound is in anti-entropy rounds, and on such a network a round is long compared
/// with a message.
fn partition_heal(n: usize, seed: u64, rows: &mut Vec<Row>) {
    const AE_MS: u64 = 1_000;
    let mut c = SimConfig::new(n, seed);
    c.latency_ms = (10, 50);
    c.jitter_ms = 5;
    c.protocol = Config { anti_entropy_interval_ms: AE_MS, push_grace_ms: 100, ..Config::default() };
    let mut sim = Sim::<Cart>::new(c);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 2);
    for k in 0..20 {
        let at = rng.random_range(0..n);
        update(&mut sim, at, k);
    }
    sim.run_until_converged(600_000).expect("converges");
    sim.partition(&[(0..n / 2).collect(), (n / 2..n).collect()]);
    for k in 0..200 {
        let at = rng.random_range(0..n);
        update(&mut sim, at, 100 + k);
        sim.run_for(25);
    }
    sim.run_for(AE_MS * 3);
    sim.heal();
    let t = sim.run_until_converged(600_000).expect("heals");
    sim.check().expect("no violation");
    rows.push(Row {
        n,
        metric: "ae_rounds_to_converge_after_heal",
        value: t as f64 / AE_MS as f64,
        note: "200 updates split across halves; 1 s rounds, 10-50 ms links".into(),
    });
}

/// The stress run: 1000 replicas, 1000 updates, 5% loss, 5% duplication, reordering and a
/// healing partition; wall time, and a second run from the same seed must match exactly.
fn stress(n: usize, updates: usize, seed: u64, rows: &mut Vec<Row>) {
    let run = || {
        // Default anti-entropy interval (1 s): with a thousand replicas, a digest every 100 ms
        // from each would be most of the traffic.
        let mut c = config(n, seed);
        c.protocol.anti_entropy_interval_ms = 1_000;
        c.protocol.push_grace_ms = 200;
        c.loss = 0.05;
        c.duplicate = 0.05;
        c.latency_ms = (10, ROUND_MS);
        let mut sim = Sim::<Cart>::new(c);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 3);
        for k in 0..updates {
            if k == updates / 4 {
                sim.partition(&[(0..n / 3).collect(), (n / 3..n).collect()]);
            }
            if k == updates / 2 {
                sim.heal();
            }
            let at = rng.random_range(0..n);
            update(&mut sim, at, (k % 300) as u16);
            // 50 updates a second from random writers, for 20 s.
            sim.run_for(20);
        }
        sim.heal();
        let t = sim.run_until_converged(3_600_000).expect("stress run converges");
        sim.check().expect("no violation");
        (t, sim.metrics.clone(), sim.replica(0).map(|r| r.version().clone()))
    };
    let start = Instant::now();
    let cpu_start = cpu_seconds();
    let first = run();
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds().zip(cpu_start).map(|(b, a)| b - a);
    let second = run();
    rows.push(Row {
        n,
        metric: "stress_wall_seconds",
        value: wall,
        note: format!("{updates} updates, 5% loss, 5% dup, reordering, partition"),
    });
    if let Some(cpu) = cpu {
        rows.push(Row {
            n,
            metric: "stress_cpu_seconds",
            value: cpu,
            note: "user + system CPU time of the same run (one thread): wall time less the machine's other load".into(),
        });
    }
    rows.push(Row {
        n,
        metric: "stress_reproducible",
        value: f64::from(u8::from(first == second)),
        note: "second run from the same seed identical".into(),
    });
    rows.push(Row {
        n,
        metric: "stress_rounds_after_last_update",
        value: first.0 as f64 / ROUND_MS as f64,
        note: format!("{} messages, {} bytes", first.1.messages, first.1.bytes),
    });
}

/// A replica that missed 100,000 ops catches up: batches, memory, time.
fn catch_up(ops: usize, seed: u64, rows: &mut Vec<Row>) {
    let mut sim = Sim::<Cart>::new(config(2, seed));
    sim.partition(&[vec![0], vec![1]]);
    for k in 0..ops {
        update(&mut sim, 0, (k % 1000) as u16);
    }
    sim.run_for(ROUND_MS);
    let before = sim.metrics.clone();
    sim.heal();
    let start = Instant::now();
    let t = sim.run_until_converged(3_600_000).expect("catches up");
    let wall = start.elapsed().as_secs_f64();
    sim.check().expect("no violation");
    let r = sim.replica(1).expect("up");
    let batch_bytes = (sim.metrics.ops_bytes - before.ops_bytes) as f64;
    let batches = (sim.metrics.messages - before.messages) as f64 / 2.0;
    rows.push(Row { n: 2, metric: "catch_up_ops", value: ops as f64, note: "missed while partitioned".into() });
    rows.push(Row {
        n: 2,
        metric: "catch_up_rounds",
        value: t as f64 / ROUND_MS as f64,
        note: format!("{wall:.2} s wall"),
    });
    rows.push(Row {
        n: 2,
        metric: "catch_up_batch_bytes_mean",
        value: batch_bytes / batches.max(1.0),
        note: format!("{batches} round trips, max_batch_bytes {}", Config::default().max_batch_bytes),
    });
    rows.push(Row {
        n: 2,
        metric: "catch_up_peak_buffered_ops",
        value: r.peak_buffered().0 as f64,
        note: "causal buffer never fills: batches come in causal order".into(),
    });
    rows.push(Row {
        n: 2,
        metric: "catch_up_log_bytes",
        value: r.log_size().1 as f64,
        note: format!("{} ops kept to serve others", r.log_size().0),
    });
}

fn plot(curves: &[(usize, Vec<f64>)], path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let rounds = curves.iter().map(|(_, c)| c.len()).max().unwrap_or(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption("Fraction of replicas updated per round", ("sans-serif", 22))
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..rounds.min(20.0), 0f64..1.05)?;
    chart.configure_mesh().x_desc("round (anti-entropy interval)").y_desc("fraction updated").draw()?;
    let colors = [RED, BLUE, GREEN, MAGENTA];
    for (k, (n, curve)) in curves.iter().enumerate() {
        let color = colors[k % colors.len()];
        chart
            .draw_series(LineSeries::new(curve.iter().enumerate().map(|(r, f)| (r as f64, *f)), color.stroke_width(2)))?
            .label(format!("N = {n}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let quick = std::env::args().any(|a| a == "--quick");
    let stress_only = std::env::args().any(|a| a == "--stress");
    let sizes: &[usize] = match (quick, stress_only) {
        (_, true) => &[],
        (true, false) => &[10, 100],
        (false, false) => &[10, 100, 1000],
    };
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/scale");
    std::fs::create_dir_all(&out)?;
    let mut rows = Vec::new();
    let mut curves = Vec::new();
    for &n in sizes {
        let t = Instant::now();
        curves.push((n, spread(n, 42 + n as u64, if n >= 1000 { 10 } else { 20 }, &mut rows)));
        random_writers(n, 7 + n as u64, 1000, &mut rows);
        partition_heal(n, 9 + n as u64, &mut rows);
        eprintln!("N = {n}: {:.1} s", t.elapsed().as_secs_f64());
    }
    let (sn, su) = if quick { (100, 100) } else { (1000, 1000) };
    stress(sn, su, 1234, &mut rows);
    if stress_only {
        for r in &rows {
            println!("{:>5}  {:<42} {:>12.3}  {}", r.n, r.metric, r.value, r.note);
        }
        return Ok(());
    }
    catch_up(if quick { 10_000 } else { 100_000 }, 99, &mut rows);

    let mut summary = String::from("n,metric,value,note\n");
    for r in &rows {
        writeln!(summary, "{},{},{:.3},\"{}\"", r.n, r.metric, r.value, r.note)?;
        println!("{:>5}  {:<42} {:>12.3}  {}", r.n, r.metric, r.value, r.note);
    }
    std::fs::write(out.join("summary.csv"), summary)?;
    let mut csv = String::from("n,round,fraction\n");
    for (n, curve) in &curves {
        for (r, f) in curve.iter().enumerate() {
            writeln!(csv, "{n},{r},{f:.4}")?;
        }
    }
    std::fs::write(out.join("rounds.csv"), csv)?;
    plot(&curves, &out.join("spread.svg"))?;
    println!("wrote {}", out.display());
    Ok(())
}

/// User plus system CPU time of this process so far, from `/proc/self/stat` (Linux; clock
/// ticks of 1/100 s, the value of `getconf CLK_TCK` on Linux x86-64 and arm64). `None`
/// elsewhere.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may contain spaces):
    // state is field 3, utime field 14, stime field 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}
