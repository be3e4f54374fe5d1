//! Replication between real nodes on loopback, against raw quinn in the same run.
//!
//! One binary, one run, five measurements (DESIGN.md §5, issue 4 item 6):
//!
//! 1. **raw quinn**: two [`net::Endpoint`]s with the node's configuration (mutual TLS), one
//!    unidirectional stream, 1 MiB writes as fast as they go: the baseline in MiB/s. Also the
//!    same bytes as 1 MiB length-prefixed frames (`write_frame` / `read_frame`), as the node
//!    sends them.
//! 2. **small ops**: node A makes many `OrMap<String, CausalCounter>` increments from many
//!    concurrent tasks (so group commit has batches to commit); the clock stops when node B
//!    has delivered all of them. Also A's own acknowledged rate.
//! 3. **large ops**: the same with `MvRegister<Bytes>` writes of 64 KiB and 1 MiB values:
//!    payload MiB/s, as a fraction of raw quinn. 2 and 3 run with the SQLite store (the
//!    default, `synchronous=FULL`) and with `MemoryStore`, to separate fsync from protocol.
//! 4. **initial sync**: a node holding an `OrSet<u64>` of 100,000 adds, and a fresh node
//!    joining it: bytes on the wire (UDP payload, counted by a relay both nodes talk
//!    through) against the encoded state. Twice: with the ops in A's log (the default
//!    `compaction_threshold` keeps 100,000 ops), and after A compacted them into a snapshot
//!    (a small threshold; A has no peer then, so every op is stable). The table's "path
//!    taken" says how B caught up: A serves a peer that lacks many ops a snapshot when the
//!    state encodes smaller than the ops (here 1.7 MB against 9 MB), so both go by snapshot
//!    now; the ops path was measured before that change (`sync/BENCHMARKS.md`).
//! 5. **catch-up memory**: the joining node of 4 runs in a child process (this binary again),
//!    which reports its resident memory before and its peak after (`/proc/self/status`
//!    VmRSS, VmHWM, with the peak reset through `/proc/self/clear_refs` just before it joins),
//!    the time and the number of commits that applied ops.
//!
//! Run: `cargo bench -p gossamer-sync --bench replication`. It prints Markdown tables
//! (`sync/BENCHMARKS.md` has the figures and what they mean). Under `cargo test
//! --all-targets` (no `--bench` argument) it runs every measurement at a tiny size as a smoke
//! test, in a few seconds.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gossamer_crdt::{CausalCounter, MvRegister, OrMap, OrSet, ReplicaId};
use gossamer_sync::net::{self, Endpoint, Identity, Ticket, TrustList};
use gossamer_sync::node::{Node, NodeHandle, NodeStatus};
use gossamer_sync::protocol::{Config, Crdt, Stats};
use gossamer_sync::store::MemoryStore;
use gossamer_sync::wire::codec;
use tokio::runtime::Runtime;
use tokio::sync::broadcast::error::RecvError;

type Cart = OrMap<String, CausalCounter>;
type Blob = MvRegister<Bytes>;
type Set = OrSet<u64>;

const MIB: f64 = (1 << 20) as f64;
/// The environment variable that makes this binary the joining node of measurement 4/5.
const CHILD_ENV: &str = "GOSSAMER_REPLICATION_BENCH_CHILD";

/// How much of everything: the full run, or the smoke test under `cargo test`.
struct Sizes {
    raw_mib: usize,
    raw_reps: usize,
    small_ops: u64,
    small_writers: u64,
    /// (value size, number of writes, concurrent writers)
    large: Vec<(usize, u64, u64)>,
    sync_entries: u64,
    setup_writers: u64,
    limit: Duration,
}

impl Sizes {
    fn full() -> Self {
        Sizes {
            raw_mib: 512,
            raw_reps: 3,
            small_ops: 200_000,
            small_writers: 1024,
            large: vec![(64 << 10, 2048, 64), (1 << 20, 256, 16)],
            sync_entries: 100_000,
            setup_writers: 1024,
            limit: Duration::from_secs(300),
        }
    }

    fn smoke() -> Self {
        Sizes {
            raw_mib: 8,
            raw_reps: 1,
            small_ops: 2_000,
            small_writers: 64,
            large: vec![(64 << 10, 16, 4), (1 << 20, 4, 2)],
            sync_entries: 2_000,
            setup_writers: 64,
            limit: Duration::from_secs(60),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StoreKind {
    Sqlite,
    Memory,
}

impl StoreKind {
    fn name(self) -> &'static str {
        match self {
            StoreKind::Sqlite => "SQLite",
            StoreKind::Memory => "memory",
        }
    }

    fn parse(s: &str) -> Self {
        if s == "memory" { StoreKind::Memory } else { StoreKind::Sqlite }
    }
}

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        joining_node(Path::new(&args[0]), StoreKind::parse(&args[1]));
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full { Sizes::full() } else { Sizes::smoke() };
    // The orchestrating runtime only waits; every node (and the relay) has a runtime of its
    // own, as a node in its own process would.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(run(&sizes, full));
}

async fn run(sizes: &Sizes, full: bool) {
    let mut report = Report::default();

    eprintln!("raw quinn: {} MiB x {}", sizes.raw_mib, sizes.raw_reps);
    // On a plain thread: it builds and blocks on runtimes of its own.
    let (mib, reps) = (sizes.raw_mib, sizes.raw_reps);
    let (raw, framed) = std::thread::spawn(move || {
        let raw = median((0..reps).map(|_| raw_quinn(mib, false)).collect());
        let framed = median((0..reps).map(|_| raw_quinn(mib, true)).collect());
        (raw, framed)
    })
    .join()
    .expect("raw quinn");
    report.raw = raw;
    report.framed = framed;

    for store in [StoreKind::Sqlite, StoreKind::Memory] {
        eprintln!("small ops, {}: {} ops from {} writers", store.name(), sizes.small_ops, sizes.small_writers);
        report.small.push(small_ops(store, sizes).await);
        for &(size, count, writers) in &sizes.large {
            eprintln!("large ops, {}: {count} x {} KiB from {writers} writers", store.name(), size >> 10);
            report.large.push(large_ops(store, size, count, writers, sizes.limit).await);
        }
    }

    for compacted in [false, true] {
        eprintln!("initial sync of {} entries, compacted: {compacted}", sizes.sync_entries);
        report.sync.push(initial_sync(compacted, sizes).await);
    }

    report.print(sizes, full);
}

// ---- nodes --------------------------------------------------------------------------------

/// A node in a runtime of its own (two workers, as in `tests/node.rs`).
fn start<T: Crdt + Send + Sync + 'static>(dir: &Path, store: StoreKind, config: Config) -> (Runtime, NodeHandle<T>)
where
    T::Op: Send,
{
    let dir = dir.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let mut builder = Node::builder(&dir).protocol(config);
        if store == StoreKind::Memory {
            builder = builder.store(Box::new(MemoryStore::new()));
        }
        let node = rt.block_on(builder.spawn::<T>()).expect("the node starts");
        (rt, node)
    })
    .join()
    .expect("the starting thread does not panic")
}

/// Shuts a node down and drops its runtime from a plain thread (tokio refuses to drop a
/// runtime inside another).
async fn stop<T: Crdt + Send + Sync + 'static>(rt: Runtime, node: NodeHandle<T>)
where
    T::Op: Send,
{
    let _ = tokio::time::timeout(Duration::from_secs(10), node.shutdown()).await;
    drop(node);
    std::thread::spawn(move || rt.shutdown_background()).join().expect("runtime shutdown");
}

async fn status<T: Crdt + Send + Sync + 'static>(node: &NodeHandle<T>) -> NodeStatus
where
    T::Op: Send,
{
    node.status().await.expect("node running")
}

/// Waits until `node` has delivered `origin`'s ops up to `counter`; returns when it saw it.
async fn delivered<T: Crdt + Send + Sync + 'static>(
    node: &NodeHandle<T>,
    origin: ReplicaId,
    counter: u64,
    limit: Duration,
) -> Instant
where
    T::Op: Send,
{
    let mut changes = node.subscribe();
    let deadline = Instant::now() + limit;
    loop {
        if status(node).await.version.get(&origin) >= counter {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "timed out waiting for {counter} ops of {origin:?}");
        // Between status checks, the change stream says when the version moves.
        loop {
            match tokio::time::timeout(Duration::from_millis(50), changes.recv()).await {
                Ok(Ok(c)) if c.version.get(&origin) >= counter => return Instant::now(),
                Ok(Ok(_)) => continue,
                Ok(Err(RecvError::Lagged(_))) | Err(_) => break,
                Ok(Err(RecvError::Closed)) => panic!("node stopped"),
            }
        }
    }
}

/// Two nodes that trust each other and have exchanged one op each way (connected, caught up).
async fn pair<T: Crdt + Send + Sync + 'static>(
    store: StoreKind,
    first: impl Fn(&mut T, ReplicaId) -> T::Op + Send + Sync + Clone + 'static,
) -> ((Runtime, NodeHandle<T>), (Runtime, NodeHandle<T>), Vec<tempfile::TempDir>)
where
    T::Op: Send,
{
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let a = start::<T>(dirs[0].path(), store, Config::default());
    let b = start::<T>(dirs[1].path(), store, Config::default());
    a.1.trust(b.1.ticket()).await.expect("trust");
    b.1.trust(a.1.ticket()).await.expect("trust");
    for (from, to) in [(&a.1, &b.1), (&b.1, &a.1)] {
        let me = from.replica_id();
        let f = first.clone();
        let dot = from.update(move |t| f(t, me)).await.expect("update");
        delivered(to, me, dot.counter, Duration::from_secs(30)).await;
    }
    (a, b, dirs)
}

/// A's writers: `writers` tasks on A's runtime, `count` updates in all, each awaited (a
/// writer has one update in flight, as an application task would). Returns when all are
/// acknowledged (durable on A).
async fn write_all<T: Crdt + Send + Sync + 'static>(
    rt: &Runtime,
    node: &NodeHandle<T>,
    count: u64,
    writers: u64,
    update: impl Fn(&mut T, ReplicaId, u64) -> T::Op + Send + Sync + Clone + 'static,
) where
    T::Op: Send,
{
    let mut tasks = Vec::new();
    for w in 0..writers {
        let node = node.clone();
        let update = update.clone();
        tasks.push(rt.spawn(async move {
            let me = node.replica_id();
            let mut i = w;
            while i < count {
                let u = update.clone();
                node.update(move |t| u(t, me, i)).await.expect("update");
                i += writers;
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
}

// ---- 1. raw quinn ---------------------------------------------------------------------------

/// MiB/s of one unidirectional stream between two endpoints in runtimes of their own.
fn raw_quinn(mib: usize, framed: bool) -> f64 {
    let server_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let client_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let loopback: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let server = {
        let _g = server_rt.enter();
        Endpoint::bind(Identity::generate().expect("identity"), TrustList::new(), loopback).expect("bind")
    };
    let client = {
        let _g = client_rt.enter();
        Endpoint::bind(Identity::generate().expect("identity"), TrustList::new(), loopback).expect("bind")
    };
    server.trust().add(client.node_id());
    client.trust().add(server.node_id());
    let total = (mib as u64) << 20;

    let accepting = server.clone();
    let receiver = server_rt.spawn(async move {
        let conn = accepting.accept().await.expect("incoming").handshake().await.expect("handshake");
        let mut stream = conn.connection().accept_uni().await.expect("stream");
        let mut got = 0u64;
        if framed {
            while let Some(frame) = net::read_frame(&mut stream, net::DEFAULT_MAX_FRAME_LEN).await.expect("frame") {
                got += frame.len() as u64;
            }
        } else {
            while let Some(chunk) = stream.read_chunk(usize::MAX, true).await.expect("read") {
                got += chunk.bytes.len() as u64;
            }
        }
        let end = Instant::now();
        assert_eq!(got, total);
        conn.close(net::CloseCode::Done, "done");
        end
    });
    let (addr, id) = (server.local_addr().expect("addr"), server.node_id());
    let start = client_rt.block_on(async move {
        let conn = client.connect(addr, id).await.expect("connect");
        let mut stream = conn.connection().open_uni().await.expect("stream");
        let chunk = vec![0x5au8; 1 << 20];
        let start = Instant::now();
        for _ in 0..mib {
            if framed {
                net::write_frame(&mut stream, &chunk).await.expect("write");
            } else {
                stream.write_all(&chunk).await.expect("write");
            }
        }
        stream.finish().expect("finish");
        let _ = conn.closed().await;
        start
    });
    let end = client_rt.block_on(receiver).expect("receiver");
    let secs = end.duration_since(start).as_secs_f64();
    server.close();
    std::thread::spawn(move || {
        server_rt.shutdown_background();
        client_rt.shutdown_background();
    })
    .join()
    .expect("shutdown");
    mib as f64 / secs
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

// ---- 2, 3. replication throughput -------------------------------------------------------------

struct Throughput {
    store: StoreKind,
    what: String,
    ops: u64,
    payload: u64,
    /// Until A acknowledged every update.
    acked: Duration,
    /// Until B delivered every update.
    replicated: Duration,
    a: Stats,
    b: Stats,
}

impl Throughput {
    fn ops_per_s(&self) -> f64 {
        self.ops as f64 / self.replicated.as_secs_f64()
    }

    fn acked_per_s(&self) -> f64 {
        self.ops as f64 / self.acked.as_secs_f64()
    }

    fn mib_per_s(&self) -> f64 {
        self.payload as f64 / MIB / self.replicated.as_secs_f64()
    }
}

async fn small_ops(store: StoreKind, sizes: &Sizes) -> Throughput {
    const ITEMS: u64 = 100;
    let keys: Arc<Vec<String>> = Arc::new((0..ITEMS).map(|i| format!("item-{i}")).collect());
    let ((rt_a, a), (rt_b, b), _dirs) =
        pair::<Cart>(store, |c: &mut Cart, me| c.update("warm-up".to_string(), |q| q.inc(me, 1))).await;
    let base = status(&a).await.version.get(&a.replica_id());
    let count = sizes.small_ops;
    let start = Instant::now();
    let update = move |c: &mut Cart, me, i: u64| c.update(keys[(i % ITEMS) as usize].clone(), |q| q.inc(me, 1));
    let watch = {
        let b = b.clone();
        let origin = a.replica_id();
        let limit = sizes.limit;
        tokio::spawn(async move { delivered(&b, origin, base + count, limit).await })
    };
    write_all(&rt_a, &a, count, sizes.small_writers, update).await;
    let acked = start.elapsed();
    let done = watch.await.expect("watch");
    let result = Throughput {
        store,
        what: format!("{count} counter increments ({} writers)", sizes.small_writers),
        ops: count,
        payload: 0,
        acked,
        replicated: done.duration_since(start),
        a: status(&a).await.stats,
        b: status(&b).await.stats,
    };
    stop(rt_a, a).await;
    stop(rt_b, b).await;
    result
}

async fn large_ops(store: StoreKind, size: usize, count: u64, writers: u64, limit: Duration) -> Throughput {
    // Distinct values (a window sliding over a random-looking buffer), so nothing could be
    // deduplicated or compressed along the way.
    let pool: Bytes =
        (0..size + 4096).map(|i| (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes()[7]).collect();
    let ((rt_a, a), (rt_b, b), _dirs) =
        pair::<Blob>(store, |r: &mut Blob, me| r.write(me, Bytes::from_static(b"warm-up"))).await;
    let base = status(&a).await.version.get(&a.replica_id());
    let start = Instant::now();
    let update = move |r: &mut Blob, me, i: u64| {
        let at = (i as usize * 64) % 4096;
        r.write(me, pool.slice(at..at + size))
    };
    let watch = {
        let b = b.clone();
        let origin = a.replica_id();
        tokio::spawn(async move { delivered(&b, origin, base + count, limit).await })
    };
    write_all(&rt_a, &a, count, writers, update).await;
    let acked = start.elapsed();
    let done = watch.await.expect("watch");
    let result = Throughput {
        store,
        what: format!("{count} writes of {} KiB ({writers} writers)", size >> 10),
        ops: count,
        payload: count * size as u64,
        acked,
        replicated: done.duration_since(start),
        a: status(&a).await.stats,
        b: status(&b).await.stats,
    };
    stop(rt_a, a).await;
    stop(rt_b, b).await;
    result
}

// ---- 4, 5. initial sync and catch-up ----------------------------------------------------------

/// A UDP relay in front of `target` that counts the payload bytes it passes each way. QUIC
/// does not care which address its peer's packets come from, so a node dialled through the
/// relay talks through it for the whole connection.
struct Relay {
    addr: SocketAddr,
    to_target: Arc<AtomicU64>,
    from_target: Arc<AtomicU64>,
}

impl Relay {
    fn start(rt: &Runtime, target: SocketAddr) -> Relay {
        let front = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind relay");
        front.set_nonblocking(true).expect("nonblocking");
        let addr = front.local_addr().expect("relay addr");
        let to_target = Arc::new(AtomicU64::new(0));
        let from_target = Arc::new(AtomicU64::new(0));
        let (up, down) = (to_target.clone(), from_target.clone());
        rt.spawn(async move {
            let front = Arc::new(tokio::net::UdpSocket::from_std(front).expect("relay socket"));
            let mut backs: HashMap<SocketAddr, Arc<tokio::net::UdpSocket>> = HashMap::new();
            let mut buf = vec![0u8; 65_536];
            loop {
                let Ok((n, client)) = front.recv_from(&mut buf).await else { return };
                let back = match backs.get(&client) {
                    Some(b) => b.clone(),
                    None => {
                        let b = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
                        b.connect(target).await.expect("connect");
                        let (b2, front2, down) = (b.clone(), front.clone(), down.clone());
                        tokio::spawn(async move {
                            let mut buf = vec![0u8; 65_536];
                            while let Ok(n) = b2.recv(&mut buf).await {
                                down.fetch_add(n as u64, Ordering::Relaxed);
                                let _ = front2.send_to(&buf[..n], client).await;
                            }
                        });
                        backs.insert(client, b.clone());
                        b
                    }
                };
                up.fetch_add(n as u64, Ordering::Relaxed);
                let _ = back.send(&buf[..n]).await;
            }
        });
        Relay { addr, to_target, from_target }
    }

    fn counts(&self) -> (u64, u64) {
        (self.to_target.load(Ordering::Relaxed), self.from_target.load(Ordering::Relaxed))
    }
}

struct JoinResult {
    compacted: bool,
    entries: u64,
    state_bytes: usize,
    log_ops: usize,
    /// UDP payload bytes A → B and B → A during the join.
    a_to_b: u64,
    b_to_a: u64,
    child: ChildReport,
}

/// What the joining node (a child process) reports.
#[derive(Default)]
struct ChildReport {
    elapsed: Duration,
    rss_before_kib: u64,
    hwm_kib: u64,
    rss_after_kib: u64,
    /// Commits that applied ops (change notifications).
    commits: u64,
    received_ops: u64,
    snapshots: u64,
    state_bytes: usize,
}

async fn initial_sync(compacted: bool, sizes: &Sizes) -> JoinResult {
    let dir_a = tempfile::tempdir().expect("tempdir");
    let dir_b = tempfile::tempdir().expect("tempdir");
    // The default threshold keeps 100,000 ops in the log (it compacts above it); a small
    // one lets A, which has no peer yet, compact everything at its next tick.
    let threshold = if compacted { 1_000 } else { Config::default().compaction_threshold };
    let config = Config { compaction_threshold: threshold, ..Config::default() };
    let (rt_a, a) = start::<Set>(dir_a.path(), StoreKind::Sqlite, config);
    let n = sizes.sync_entries;
    write_all(&rt_a, &a, n, sizes.setup_writers, |s: &mut Set, me, i| s.add(me, i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
        .await;
    // Wait out the push grace (so every op is old enough to be served by anti-entropy) and,
    // on the compacted path, A's compaction.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let deadline = Instant::now() + sizes.limit;
    while compacted && status(&a).await.log_ops > 0 {
        assert!(Instant::now() < deadline, "A never compacted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log_ops = status(&a).await.log_ops;
    let state_bytes = a.read(|s| codec::to_vec(s).expect("encode").len()).await.expect("read");
    let counter = status(&a).await.version.get(&a.replica_id());

    // The joining node, in a process of its own so that its memory is its own.
    let mut child = Command::new(std::env::current_exe().expect("current exe"))
        .env(CHILD_ENV, "1")
        .arg(dir_b.path())
        .arg("sqlite")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the joining node");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = lines.next().expect("READY line").expect("read");
    let b_ticket: Ticket = ready.strip_prefix("READY ").expect("READY").parse().expect("ticket");

    let relay_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
    let to_a = Relay::start(&relay_rt, a.addr());
    let to_b = Relay::start(&relay_rt, b_ticket.addr);
    a.trust(Ticket::new(b_ticket.node, to_b.addr)).await.expect("trust");
    // A's first dial fails (B does not trust A yet); let it, then count from zero.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (a_in0, a_out0) = to_a.counts();
    let (b_in0, b_out0) = to_b.counts();
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{} {counter}", Ticket::new(a.node_id(), to_a.addr)).expect("write to child");
    let done = lines.next().expect("DONE line").expect("read");
    let (a_in, a_out) = to_a.counts();
    let (b_in, b_out) = to_b.counts();
    drop(stdin);
    let _ = child.wait();
    let report = ChildReport::parse(&done);
    stop(rt_a, a).await;
    std::thread::spawn(move || relay_rt.shutdown_background()).join().expect("relay shutdown");
    JoinResult {
        compacted,
        entries: n,
        state_bytes,
        log_ops,
        // Into B's relay plus out of A's: what A sent; the reverse for B.
        a_to_b: (a_out - a_out0) + (b_in - b_in0),
        b_to_a: (a_in - a_in0) + (b_out - b_out0),
        child: report,
    }
}

impl ChildReport {
    fn parse(line: &str) -> Self {
        let f: Vec<u64> = line
            .strip_prefix("DONE ")
            .unwrap_or_else(|| panic!("unexpected line from the child: {line}"))
            .split(' ')
            .map(|x| x.parse().expect("number"))
            .collect();
        ChildReport {
            elapsed: Duration::from_micros(f[0]),
            rss_before_kib: f[1],
            hwm_kib: f[2],
            rss_after_kib: f[3],
            commits: f[4],
            received_ops: f[5],
            snapshots: f[6],
            state_bytes: f[7] as usize,
        }
    }
}

/// A `kB` field of `/proc/self/status`.
fn proc_status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines().find_map(|l| l.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse().ok()).unwrap_or(0)
}

/// The child: a fresh node that prints its ticket, reads the ticket of the node to join and
/// the counter to reach, joins, and reports time, memory and commits.
fn joining_node(dir: &Path, store: StoreKind) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let mut builder = Node::builder(dir);
        if store == StoreKind::Memory {
            builder = builder.store(Box::new(MemoryStore::new()));
        }
        let node = builder.spawn::<Set>().await.expect("the joining node starts");
        println!("READY {}", node.ticket());
        std::io::stdout().flush().expect("flush");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).expect("stdin");
        let mut parts = line.split_whitespace();
        let ticket: Ticket = parts.next().expect("ticket").parse().expect("ticket");
        let counter: u64 = parts.next().expect("counter").parse().expect("counter");

        // Every change notification is one driver commit that applied ops.
        let mut changes = node.subscribe();
        let mut commits = 0u64;
        // Reset the peak resident size to the current one (Linux ≥ 4.0), then measure from here.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let rss_before = proc_status_kib("VmRSS:");
        let start = Instant::now();
        node.trust(ticket).await.expect("trust");
        // As an application would right after adding a device: start an exchange now rather
        // than at the next anti-entropy round (up to one interval away).
        node.sync_now().await.expect("sync");
        let origin = ticket.node.replica_id();
        let deadline = start + Duration::from_secs(600);
        let done = loop {
            match tokio::time::timeout(Duration::from_millis(50), changes.recv()).await {
                Ok(Ok(c)) => {
                    commits += 1;
                    if c.version.get(&origin) >= counter {
                        break Instant::now();
                    }
                }
                Ok(Err(RecvError::Lagged(n))) => commits += n,
                Ok(Err(RecvError::Closed)) => panic!("node stopped"),
                Err(_) => {
                    if status(&node).await.version.get(&origin) >= counter {
                        break Instant::now();
                    }
                    assert!(Instant::now() < deadline, "timed out catching up");
                }
            }
        };
        let elapsed = done.duration_since(start);
        let hwm = proc_status_kib("VmHWM:");
        let rss_after = proc_status_kib("VmRSS:");
        let st = status(&node).await;
        let state_bytes = node.read(|s| codec::to_vec(s).expect("encode").len()).await.expect("read");
        println!(
            "DONE {} {rss_before} {hwm} {rss_after} {} {} {} {state_bytes}",
            elapsed.as_micros(),
            commits,
            st.stats.received_new,
            st.stats.snapshots_merged,
        );
        std::io::stdout().flush().expect("flush");
        node.shutdown().await;
    });
    rt.shutdown_background();
}

// ---- report -------------------------------------------------------------------------------------

#[derive(Default)]
struct Report {
    raw: f64,
    framed: f64,
    small: Vec<Throughput>,
    large: Vec<Throughput>,
    sync: Vec<JoinResult>,
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

impl Report {
    fn print(&self, sizes: &Sizes, full: bool) {
        let mode = if full { "full run" } else { "smoke run (no --bench: tiny sizes, figures meaningless)" };
        println!("\n# replication bench: {mode}\n");
        println!("## Raw quinn (baseline)\n");
        println!("| stream | MiB/s |");
        println!("|---|---:|");
        println!(
            "| 1 uni stream, 1 MiB writes, {} MiB, median of {} | {:.0} |",
            sizes.raw_mib, sizes.raw_reps, self.raw
        );
        println!("| same, as 1 MiB frames (`write_frame`/`read_frame`) | {:.0} |", self.framed);

        println!("\n## Small ops: A's increments delivered at B (target ≥ 100,000 ops/s)\n");
        println!(
            "| store | workload | acked at A, ops/s | delivered at B, ops/s | target | A pushed | B pulled (anti-entropy) | B dup |"
        );
        println!("|---|---|---:|---:|---|---:|---:|---:|");
        for t in &self.small {
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                t.store.name(),
                t.what,
                thousands(t.acked_per_s() as u64),
                thousands(t.ops_per_s() as u64),
                met(t.ops_per_s() >= 100_000.0),
                thousands(t.a.ops_pushed),
                thousands(t.b.pulled_new),
                thousands(t.b.duplicates_pushed + t.b.duplicates_pulled),
            );
        }

        println!("\n## Large ops: payload delivered at B, against raw quinn {:.0} MiB/s (target ≥ 50 %)\n", self.raw);
        println!(
            "| store | workload | acked at A, MiB/s | delivered at B, MiB/s | / raw quinn | target | B pulled (anti-entropy) |"
        );
        println!("|---|---|---:|---:|---:|---|---:|");
        for t in &self.large {
            let ratio = t.mib_per_s() / self.raw;
            println!(
                "| {} | {} | {:.0} | {:.0} | {:.0} % | {} | {} |",
                t.store.name(),
                t.what,
                t.payload as f64 / MIB / t.acked.as_secs_f64(),
                t.mib_per_s(),
                ratio * 100.0,
                met(ratio >= 0.5),
                thousands(t.b.pulled_new),
            );
        }

        println!(
            "\n## Initial sync: a fresh node joins one holding an OR-Set of {} adds\n",
            thousands(sizes.sync_entries)
        );
        println!(
            "| A's log | path taken | encoded state | A → B on the wire | / state (target ≤ 1.2×) | B → A | time | B commits | B extra RSS peak (target ≤ 64 MiB) | B RSS after − before |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for s in &self.sync {
            let c = &s.child;
            let ratio = s.a_to_b as f64 / s.state_bytes as f64;
            let path = if c.snapshots > 0 {
                format!("snapshot ({} merged)", c.snapshots)
            } else {
                format!("{} ops", thousands(c.received_ops))
            };
            let extra = c.hwm_kib.saturating_sub(c.rss_before_kib) as f64 / 1024.0;
            println!(
                "| {} | {} | {} B | {} B | {:.2}× {} | {} B | {:.2} s | {} | {:.1} MiB {} | {:.1} MiB |",
                if s.compacted {
                    format!("compacted ({} ops left)", s.log_ops)
                } else {
                    format!("{} ops", thousands(s.log_ops as u64))
                },
                path,
                thousands(s.state_bytes as u64),
                thousands(s.a_to_b),
                ratio,
                met(ratio <= 1.2),
                thousands(s.b_to_a),
                c.elapsed.as_secs_f64(),
                c.commits,
                extra,
                met(extra <= 64.0),
                (c.rss_after_kib as f64 - c.rss_before_kib as f64) / 1024.0,
            );
            assert_eq!(
                c.state_bytes, s.state_bytes,
                "B's state differs from A's after the sync ({} entries)",
                s.entries
            );
        }
    }
}
