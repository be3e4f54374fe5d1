//! SIGKILL soak: three real `cart serve` processes on loopback, edits sent through the CLI to
//! random nodes, and a killer that SIGKILLs and restarts random nodes at random moments. At the
//! end every acknowledged edit must be on every node, nothing that was never written may be
//! there, and the nodes must agree.
//!
//! Ignored by default (it takes a minute and spawns processes). Run it with
//!
//! ```text
//! cargo test --release -p gossamer-cart --test soak -- --ignored --nocapture
//! ```
//!
//! - `GOSSAMER_SOAK_SECS`: length of the chaos phase (default 60, at most 3600).
//! - `GOSSAMER_SOAK_SEED`: the seed of every random choice (default: from the clock). It is
//!   printed first; the schedule of kills and edits races real processes, so a seed names a
//!   workload, not an exact interleaving.
//!
//! # The model (Jepsen-style)
//!
//! Each writer owns its items, so the final state is checkable from its own history alone:
//!
//! - `add w<W>-<K> 1`: a fresh item, added once. Acknowledged (the command exited 0) → present
//!   with quantity 1 everywhere, unless a later remove of it was acknowledged.
//! - `inc w<W>-counter 1` on random nodes: the counter ends between the acknowledged
//!   increments and the acknowledged plus indeterminate ones.
//! - `note w<W>-<K> n<K>` (once per item, after its add was acknowledged): acknowledged → the
//!   note is there (while the item is).
//! - `remove w<W>-<K>` (once per item, after its add was acknowledged): acknowledged → absent.
//!
//! An edit whose command failed in any other way (its node was killed mid-request, the server
//! was starting, a timeout) is **indeterminate**: it may or may not have been applied, and both
//! outcomes are accepted — never counted as lost. An edit the node refused because it had not
//! seen the item yet ("… is not in the cart") changed nothing and is counted as refused.
//!
//! **lost**: an acknowledged edit whose effect is missing at the end. **unexpected**: anything
//! no edit (acknowledged or indeterminate) can explain — an unknown item, a wrong quantity, a
//! note never written, a counter above what was attempted.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use gossamer_cart::app::{CONTROL_FILE, Control};
use gossamer_cart::model::CartView;

const CART: &str = env!("CARGO_BIN_EXE_cart");
const NODES: usize = 3;
const WRITERS: usize = 2;
/// Longest a CLI command may run before it is killed (its edit then counts as indeterminate).
const COMMAND_LIMIT: Duration = Duration::from_secs(30);
/// Longest the nodes may take to agree once the chaos stops.
const CONVERGENCE_LIMIT: Duration = Duration::from_secs(180);

/// splitmix64: small, seedable, good enough to pick nodes and moments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }
}

/// How a CLI command ended.
#[derive(Debug)]
enum Outcome {
    /// Exit 0: the edit is acknowledged.
    Ok(String),
    /// The node refused it; nothing changed.
    Refused,
    /// Anything else: the edit may or may not have happened.
    Failed(String),
}

fn run_cli(dir: &Path, args: &[&str]) -> Outcome {
    let child = Command::new(CART)
        .arg("--data")
        .arg(dir)
        .args(args)
        .env("CART_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(format!("cannot spawn: {e}")),
    };
    // Drain both pipes on threads so a chatty command never blocks on a full pipe.
    let mut out_pipe = child.stdout.take().expect("piped stdout");
    let mut err_pipe = child.stderr.take().expect("piped stderr");
    let out = thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if started.elapsed() > COMMAND_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(_) => break None,
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    match status {
        Some(s) if s.success() => Outcome::Ok(stdout),
        Some(_) if stderr.contains("is not in the cart") => Outcome::Refused,
        Some(s) => Outcome::Failed(format!("{s}: {}", stderr.trim())),
        None => Outcome::Failed("timed out".into()),
    }
}

fn cli_ok(dir: &Path, args: &[&str]) -> String {
    match run_cli(dir, args) {
        Outcome::Ok(out) => out,
        other => panic!("cart {args:?} on {}: {other:?}", dir.display()),
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).expect("a free port")
}

/// One device: its data directory and, while it runs, its `cart serve` process.
struct Device {
    dir: tempfile::TempDir,
    log: PathBuf,
    child: Option<Child>,
}

impl Device {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// SIGKILL (`Child::kill` is SIGKILL on Unix), then reap.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts `cart serve` and waits (bounded) until it has written its address. A start can
    /// fail while a CLI command holds the directory offline; then it is retried.
    fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
            let mut child = Command::new(CART)
                .arg("--data")
                .arg(self.path())
                .args(["serve", "--http", "127.0.0.1:0"])
                .env("CART_LOG", std::env::var("CART_LOG").unwrap_or_else(|_| "warn".into()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn cart serve");
            let pid = child.id();
            let ready = loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break false;
                }
                if control(self.path()).is_some_and(|c| c.pid == pid) {
                    break true;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("cart serve on {} did not start; see {}", self.path().display(), self.log.display());
                }
                thread::sleep(Duration::from_millis(20));
            };
            if ready {
                self.child = Some(child);
                return;
            }
            let _ = child.wait();
            thread::sleep(Duration::from_millis(50));
        }
    }
}

fn control(dir: &Path) -> Option<Control> {
    let mut s = String::new();
    File::open(dir.join(CONTROL_FILE)).ok()?.read_to_string(&mut s).ok()?;
    serde_json::from_str(&s).ok()
}

/// The devices; every `cart serve` is killed when this is dropped, even on a panic.
struct Cluster {
    devices: Vec<Mutex<Device>>,
    paths: Vec<PathBuf>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for d in &self.devices {
            d.lock().unwrap_or_else(std::sync::PoisonError::into_inner).kill();
        }
    }
}

impl Cluster {
    /// `cart init` on fresh directories, then every device trusts every other (offline).
    fn new() -> Self {
        let mut devices = Vec::new();
        let mut tickets = Vec::new();
        for i in 0..NODES {
            let dir = tempfile::tempdir().expect("tempdir");
            let listen = SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
            cli_ok(dir.path(), &["init", "--listen", &listen.to_string()]);
            tickets.push(cli_ok(dir.path(), &["ticket"]).trim().to_string());
            let log = std::env::temp_dir().join(format!("gossamer-soak-{}-node{i}.log", std::process::id()));
            devices.push(Device { dir, log, child: None });
        }
        for (i, d) in devices.iter().enumerate() {
            for (j, t) in tickets.iter().enumerate() {
                if i != j {
                    cli_ok(d.path(), &["trust", t]);
                }
            }
        }
        let paths = devices.iter().map(|d| d.path().to_owned()).collect();
        Cluster { devices: devices.into_iter().map(Mutex::new).collect(), paths }
    }

    fn device(&self, i: usize) -> std::sync::MutexGuard<'_, Device> {
        self.devices[i].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What a writer knows of an edit it sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    Acked,
    Indeterminate,
}

#[derive(Debug, Default)]
struct ItemHistory {
    add: Option<Known>,
    note: Option<(String, Known)>,
    remove: Option<Known>,
}

#[derive(Debug, Default)]
struct History {
    items: BTreeMap<String, ItemHistory>,
    counter_name: String,
    counter_acked: u64,
    counter_indeterminate: u64,
    acked: u64,
    indeterminate: u64,
    refused: u64,
    /// Why some indeterminate commands failed (the first few), for the report.
    failures: Vec<String>,
}

impl History {
    fn record(&mut self, outcome: &Outcome) -> Option<Known> {
        match outcome {
            Outcome::Ok(_) => {
                self.acked += 1;
                Some(Known::Acked)
            }
            Outcome::Refused => {
                self.refused += 1;
                None
            }
            Outcome::Failed(why) => {
                if self.failures.len() < 3 {
                    self.failures.push(why.clone());
                }
                self.indeterminate += 1;
                Some(Known::Indeterminate)
            }
        }
    }
}

fn writer(w: usize, seed: u64, paths: Vec<PathBuf>, stop: Arc<AtomicBool>) -> History {
    let mut rng = Rng(seed);
    let mut h = History { counter_name: format!("w{w}-counter"), ..History::default() };
    let mut next = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let dir = &paths[rng.below(paths.len() as u64) as usize];
        let roll = rng.below(100);
        // Items an edit may still target: added (acknowledged), not yet removed.
        let live: Vec<String> = h
            .items
            .iter()
            .filter(|(_, i)| i.add == Some(Known::Acked) && i.remove.is_none())
            .map(|(n, _)| n.clone())
            .collect();
        let pick = |rng: &mut Rng, cond: &dyn Fn(&ItemHistory) -> bool| -> Option<String> {
            let c: Vec<&String> = live.iter().filter(|n| cond(&h.items[*n])).collect();
            (!c.is_empty()).then(|| c[rng.below(c.len() as u64) as usize].clone())
        };
        if roll < 45 || live.is_empty() {
            next += 1;
            let name = format!("w{w}-{next}");
            let out = run_cli(dir, &["add", &name, "1"]);
            let known = h.record(&out).unwrap_or(Known::Indeterminate);
            h.items.insert(name, ItemHistory { add: Some(known), ..ItemHistory::default() });
        } else if roll < 70 {
            let name = h.counter_name.clone();
            match h.record(&run_cli(dir, &["inc", &name, "1"])) {
                Some(Known::Acked) => h.counter_acked += 1,
                Some(Known::Indeterminate) => h.counter_indeterminate += 1,
                None => {}
            }
        } else if roll < 85 {
            if let Some(name) = pick(&mut rng, &|i| i.note.is_none()) {
                let text = format!("n{}", name.rsplit('-').next().unwrap_or(""));
                if let Some(k) = h.record(&run_cli(dir, &["note", &name, &text])) {
                    h.items.get_mut(&name).expect("known item").note = Some((text, k));
                }
            }
        } else if let Some(name) = pick(&mut rng, &|_| true)
            && let Some(k) = h.record(&run_cli(dir, &["remove", &name]))
        {
            h.items.get_mut(&name).expect("known item").remove = Some(k);
        }
    }
    h
}

#[derive(Debug, Default)]
struct Verdict {
    lost: Vec<String>,
    unexpected: Vec<String>,
}

/// Checks the final cart against every writer's history.
fn check(cart: &CartView, histories: &[History]) -> Verdict {
    let mut v = Verdict::default();
    let shown: BTreeMap<&str, (i64, &str)> =
        cart.items.iter().map(|i| (i.name.as_str(), (i.qty, i.note.as_str()))).collect();
    let mut explained = 0;
    for h in histories {
        for (name, i) in &h.items {
            let got = shown.get(name.as_str()).copied();
            if got.is_some() {
                explained += 1;
            }
            let may_be_absent = i.add != Some(Known::Acked) || i.remove.is_some();
            let must_be_absent = i.remove == Some(Known::Acked);
            match got {
                None if !may_be_absent => v.lost.push(format!("{name}: acknowledged add missing")),
                None => {}
                Some(_) if must_be_absent => v.lost.push(format!("{name}: acknowledged remove undone")),
                Some((qty, note)) => {
                    if qty != 1 {
                        v.unexpected.push(format!("{name}: quantity {qty}, only ever added once"));
                    }
                    match &i.note {
                        Some((text, Known::Acked)) if note != text => {
                            v.lost.push(format!("{name}: acknowledged note {text:?} shows as {note:?}"))
                        }
                        Some((text, Known::Indeterminate)) if note != text && !note.is_empty() => {
                            v.unexpected.push(format!("{name}: note {note:?}, written {text:?}"))
                        }
                        None if !note.is_empty() => v.unexpected.push(format!("{name}: note {note:?} never written")),
                        _ => {}
                    }
                }
            }
        }
        let counter = shown.get(h.counter_name.as_str()).map_or(0, |(q, _)| *q);
        if shown.contains_key(h.counter_name.as_str()) {
            explained += 1;
        }
        let counter = u64::try_from(counter).unwrap_or(0);
        if counter < h.counter_acked {
            v.lost.push(format!("{}: {counter} < {} acknowledged increments", h.counter_name, h.counter_acked));
        }
        if counter > h.counter_acked + h.counter_indeterminate {
            v.unexpected.push(format!(
                "{}: {counter} > {} acknowledged + {} indeterminate increments",
                h.counter_name, h.counter_acked, h.counter_indeterminate
            ));
        }
    }
    if explained != cart.items.len() {
        for i in &cart.items {
            let known = histories.iter().any(|h| h.items.contains_key(&i.name) || h.counter_name == i.name);
            if !known {
                v.unexpected.push(format!("{}: never written", i.name));
            }
        }
    }
    v
}

fn list(dir: &Path) -> Option<CartView> {
    match run_cli(dir, &["list", "--json"]) {
        Outcome::Ok(out) => serde_json::from_str(out.trim()).ok(),
        _ => None,
    }
}

#[test]
#[ignore = "a soak of real processes: run with --ignored --nocapture (see the file's docs)"]
fn sigkill_soak_loses_no_acknowledged_edit() {
    let secs: u64 = std::env::var("GOSSAMER_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60).clamp(1, 3600);
    let seed: u64 = std::env::var("GOSSAMER_SOAK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    println!("soak: seed {seed} (GOSSAMER_SOAK_SEED), {secs} s of chaos (GOSSAMER_SOAK_SECS), {NODES} nodes");

    let cluster = Arc::new(Cluster::new());
    for i in 0..NODES {
        cluster.device(i).start();
    }
    println!("soak: {NODES} nodes serving; logs in {}", std::env::temp_dir().display());

    let stop = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let paths = cluster.paths.clone();
            let stop = stop.clone();
            let seed = seed ^ (0x1000 + w as u64).wrapping_mul(0x9e37_79b9);
            thread::spawn(move || writer(w, seed, paths, stop))
        })
        .collect();
    let killer = {
        let cluster = cluster.clone();
        let stop = stop.clone();
        let kills = kills.clone();
        thread::spawn(move || {
            let mut rng = Rng(seed ^ 0xdead_beef);
            while !stop.load(Ordering::SeqCst) {
                thread::sleep(rng.millis(200, 3_000));
                // Mostly one node; sometimes two at once.
                let victims: Vec<usize> = if rng.below(5) == 0 {
                    let a = rng.below(NODES as u64) as usize;
                    vec![a, (a + 1 + rng.below(NODES as u64 - 1) as usize) % NODES]
                } else {
                    vec![rng.below(NODES as u64) as usize]
                };
                for &v in &victims {
                    cluster.device(v).kill();
                    kills.fetch_add(1, Ordering::SeqCst);
                }
                thread::sleep(rng.millis(0, 2_000));
                for &v in &victims {
                    cluster.device(v).start();
                }
            }
        })
    };

    let chaos_start = Instant::now();
    while chaos_start.elapsed() < Duration::from_secs(secs) {
        thread::sleep(Duration::from_millis(200));
        assert!(!killer.is_finished(), "the killer stopped early");
    }
    stop.store(true, Ordering::SeqCst);
    let histories: Vec<History> = writers.into_iter().map(|w| w.join().expect("writer panicked")).collect();
    killer.join().expect("killer panicked");

    // A last crash of everyone, then all up for the convergence phase.
    for i in 0..NODES {
        cluster.device(i).kill();
        kills.fetch_add(1, Ordering::SeqCst);
    }
    for i in 0..NODES {
        cluster.device(i).start();
    }
    let converging = Instant::now();
    let mut previous: Option<CartView> = None;
    let carts = loop {
        let carts: Vec<Option<CartView>> = cluster.paths.iter().map(|p| list(p)).collect();
        let agreed = carts.iter().all(|c| c.is_some() && c == &carts[0]);
        if agreed && previous.as_ref() == carts[0].as_ref() {
            break carts.into_iter().map(|c| c.expect("listed")).collect::<Vec<_>>();
        }
        previous = if agreed { carts[0].clone() } else { None };
        if converging.elapsed() > CONVERGENCE_LIMIT {
            for (i, c) in carts.iter().enumerate() {
                println!("node {i}: {:?}", c.as_ref().map(|c| c.items.len()));
            }
            panic!("the nodes did not converge within {CONVERGENCE_LIMIT:?}");
        }
        thread::sleep(Duration::from_secs(1));
    };
    let converged_after = converging.elapsed();

    let verdicts: Vec<Verdict> = carts.iter().map(|c| check(c, &histories)).collect();
    let acked: u64 = histories.iter().map(|h| h.acked).sum();
    let indeterminate: u64 = histories.iter().map(|h| h.indeterminate).sum();
    let refused: u64 = histories.iter().map(|h| h.refused).sum();
    let lost: usize = verdicts.iter().map(|v| v.lost.len()).max().unwrap_or(0);
    let unexpected: usize = verdicts.iter().map(|v| v.unexpected.len()).max().unwrap_or(0);
    for (i, v) in verdicts.iter().enumerate() {
        for l in v.lost.iter().take(20) {
            println!("node {i} LOST {l}");
        }
        for u in v.unexpected.iter().take(20) {
            println!("node {i} UNEXPECTED {u}");
        }
    }
    let counters: Vec<String> = histories
        .iter()
        .map(|h| format!("{}: {} acked + {} indeterminate", h.counter_name, h.counter_acked, h.counter_indeterminate))
        .collect();
    println!(
        "soak: seed {seed}, {secs} s: acknowledged {acked}, indeterminate {indeterminate}, refused {refused}, \
         lost {lost}, unexpected {unexpected}, kills {}, items in the final cart {}, converged {:.1} s after the \
         last restart",
        kills.load(Ordering::SeqCst),
        carts[0].items.len(),
        converged_after.as_secs_f64()
    );
    println!("soak: counters {}", counters.join("; "));
    for why in histories.iter().flat_map(|h| &h.failures) {
        println!("soak: an indeterminate edit: {why}");
    }
    assert!(carts.iter().all(|c| c == &carts[0]), "the nodes disagree");
    assert_eq!(lost, 0, "acknowledged edits were lost");
    assert_eq!(unexpected, 0, "the final cart holds what no edit explains");
}
