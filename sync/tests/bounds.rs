//! Floods: a trusted peer sends a real node (loopback QUIC, SQLite) valid but useless traffic —
//! stale digests, version vectors up to and beyond the limit, the same ops pushed again and
//! again, ops that can never be delivered — and the node's memory stays bounded while it keeps
//! serving its honest peers. The bounds themselves are listed in `sync/BOUNDS.md`.
//!
//! The flooding peer is a bare [`Endpoint`] speaking the wire format, with ops made by a
//! sans-IO [`Replica`] of its own. Every wait is bounded; no test asserts a speed.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gossamer_crdt::{CausalCounter, Dot, OrMap, ReplicaId, VClock};
use gossamer_sync::net::{self, Endpoint, Identity, PeerConnection, TrustList};
use gossamer_sync::node::{Node, NodeHandle, NodeStatus};
use gossamer_sync::protocol::{Config, Replica};
use gossamer_sync::wire::{self, CompactVv, Envelope, Message, OpRecord};
use tokio::runtime::Runtime;

type Cart = OrMap<String, CausalCounter>;

const LIMIT: Duration = Duration::from_secs(60);

/// How far behind a stale digest claims to be, in ops of one origin: more than a batch of the
/// ops these tests write (so every answer is a full batch), fewer than the node answers with
/// a snapshot instead.
const STALE_BY: u64 = 1_000;

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f).await.unwrap_or_else(|_| panic!("timed out: {what}"))
}

fn config() -> Config {
    Config { anti_entropy_interval_ms: 200, push_grace_ms: 100, ..Config::default() }
}

/// A node in a runtime of its own (as in `tests/node.rs`).
fn start(dir: &Path) -> (Runtime, NodeHandle<Cart>) {
    start_with(dir, config())
}

/// [`start`] with a protocol configuration of the test's own.
fn start_with(dir: &Path, config: Config) -> (Runtime, NodeHandle<Cart>) {
    let dir = dir.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let node = rt.block_on(Node::builder(&dir).protocol(config).spawn::<Cart>()).unwrap();
        (rt, node)
    })
    .join()
    .expect("the starting thread does not panic")
}

fn kill(rt: Runtime) {
    std::thread::spawn(move || rt.shutdown_background()).join().unwrap();
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The tests measure this process's memory: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// This process's resident set, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn status(node: &NodeHandle<Cart>) -> NodeStatus {
    node.status().await.unwrap()
}

async fn wait_until(what: &str, node: &NodeHandle<Cart>, mut done: impl FnMut(&NodeStatus) -> bool) -> NodeStatus {
    within(what, async {
        loop {
            let s = status(node).await;
            if done(&s) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

async fn inc(node: &NodeHandle<Cart>, item: &str, n: u64) {
    let me = node.replica_id();
    let item = item.to_string();
    node.update(move |c| c.update(item, |q| q.inc(me, n))).await.unwrap();
}

async fn converge(nodes: &[&NodeHandle<Cart>]) {
    within("convergence", async {
        loop {
            let mut versions = Vec::new();
            for n in nodes {
                versions.push(status(n).await.version);
            }
            if versions.iter().all(|v| v == &versions[0]) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

fn framed(msg: Message) -> Vec<u8> {
    let payload = wire::encode(&Envelope::new(msg)).unwrap();
    wire::frame(&payload, wire::DEFAULT_MAX_FRAME).unwrap()
}

/// `vv` with `origin`'s counter taken back by `behind`: a stale digest that lacks ops, but
/// fewer than would make the node answer with a snapshot instead.
fn behind_by(vv: &VClock, origin: ReplicaId, behind: u64) -> VClock {
    let mut v = vv.clone();
    v.set(origin, vv.get(&origin).saturating_sub(behind).max(1));
    v
}

/// A version vector of `n` made-up replicas (plus `keep`), each at counter 1.
fn huge_vv(n: usize, keep: &VClock) -> VClock {
    let mut vv = keep.clone();
    for i in 0..n as u128 {
        vv.set(ReplicaId::from_u128(0xf00d_0000_0000_0000_0000_0000_0000_0000 | i), 1);
    }
    vv
}

/// A trusted peer that floods: its endpoint, its connection to the node, and ops of its own.
struct Flooder {
    _endpoint: Endpoint,
    conn: PeerConnection,
    ops: Vec<OpRecord>,
    replica: ReplicaId,
}

impl Flooder {
    /// Connects to `node` (which trusts it), and, with `drain`, reads and discards whatever
    /// the node sends (without it, nothing is read: a peer that asks and never listens).
    async fn connect(node: &NodeHandle<Cart>, drain: bool) -> Self {
        let identity = Identity::generate().unwrap();
        let trust = TrustList::new();
        trust.add(node.node_id());
        let endpoint = Endpoint::bind(identity, trust, "127.0.0.1:0".parse().unwrap()).unwrap();
        node.trust(net::Ticket::new(endpoint.node_id(), endpoint.local_addr().unwrap())).await.unwrap();
        let conn = within("flooder dial", endpoint.connect(node.addr(), node.node_id())).await.unwrap();
        if drain {
            let c = conn.clone();
            tokio::spawn(async move {
                while let Ok(mut s) = c.connection().accept_uni().await {
                    tokio::spawn(async move { while let Ok(Some(_)) = s.read_chunk(1 << 20, true).await {} });
                }
            });
        }
        // Ops of its own, made by a sans-IO replica under its id: valid and decodable.
        let replica = endpoint.node_id().replica_id();
        let mut r = Replica::<Cart>::new(replica, Config::default(), 7);
        for i in 0..200u64 {
            r.local_update(now_ms(), |c| c.update(format!("flood-{i}"), |q| q.inc(replica, 1))).unwrap();
        }
        let ops = r.log().cloned().collect();
        Flooder { _endpoint: endpoint, conn, ops, replica }
    }

    async fn send(&self, stream: &mut quinn::SendStream, frames: &[Vec<u8>]) {
        for f in frames {
            within("flood write", stream.write_all(f)).await.unwrap();
        }
    }
}

/// Ops that can never be delivered: each waits for an op of a made-up origin that nobody has.
fn undeliverable(round: u64, n: u64) -> Vec<OpRecord> {
    let origin = ReplicaId::from_u128(0xdead_0000_0000_0000_0000_0000_0000_0000 | u128::from(round));
    (0..n)
        .map(|i| OpRecord {
            dot: Dot::new(origin, 1_000 + i),
            deps: vec![],
            created_ms: now_ms(),
            payload: Bytes::from_static(b"\x00"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_useless_traffic_keeps_memory_bounded_and_the_node_serving() {
    let _serial = SERIAL.lock().await;
    let limits = Config::default();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (rt_a, a) = start(da.path());
    let (rt_b, b) = start(db.path());
    a.trust(b.ticket()).await.unwrap();
    b.trust(a.ticket()).await.unwrap();
    // Something for stale digests to ask for: more than one batch of ops.
    let pad = "x".repeat(200);
    for i in 0..1_500u64 {
        inc(&a, &format!("{pad}-{i}"), 1).await;
    }
    converge(&[&a, &b]).await;

    let flooder = Flooder::connect(&a, true).await;
    let mut stream = flooder.conn.connection().open_uni().await.unwrap();
    // The flooder's ops once, as new; from then on every push of them is a duplicate.
    flooder.send(&mut stream, &[framed(Message::Push { ops: flooder.ops.clone() })]).await;
    wait_until("the flooder's ops applied", &a, |s| s.version.get(&flooder.replica) == 200).await;

    let stale = framed(Message::Digest {
        hash: 0,
        vv: Some(CompactVv(behind_by(&status(&a).await.version, a.replica_id(), STALE_BY))),
        reply: true,
    });
    let duplicate_push = framed(Message::Push { ops: flooder.ops.clone() });
    // Exactly at the limit: the made-up replicas plus the ones that really exist.
    let real = status(&a).await.version;
    let at_limit = framed(Message::Digest {
        hash: 1,
        vv: Some(CompactVv(huge_vv(limits.max_vv_entries - real.len(), &real))),
        reply: true,
    });
    let early_per_round = limits.max_buffered_ops as u64 + 1_000;

    const ROUNDS: u64 = 10;
    const STALE: usize = 40;
    const DUPLICATES: usize = 40;
    const HUGE: usize = 3;
    let mut rss = Vec::new();
    let mut last = status(&a).await;
    for round in 1..=ROUNDS {
        let mut frames = vec![stale.clone(); STALE];
        frames.extend(std::iter::repeat_n(at_limit.clone(), HUGE));
        frames.extend(std::iter::repeat_n(duplicate_push.clone(), DUPLICATES));
        // Undeliverable ops, in frames under the batch bound.
        for chunk in undeliverable(round, early_per_round).chunks(10_000) {
            frames.push(framed(Message::Push { ops: chunk.to_vec() }));
        }
        flooder.send(&mut stream, &frames).await;
        let dup_target = last.stats.duplicates_pushed + (DUPLICATES * flooder.ops.len()) as u64;
        let new_target = last.stats.received_new + early_per_round;
        let s = wait_until("the round handled", &a, |s| {
            s.stats.duplicates_pushed >= dup_target && s.stats.received_new >= new_target
        })
        .await;
        assert!(s.pending_ops <= limits.max_buffered_ops, "causal buffer {} over its bound", s.pending_ops);
        assert_eq!(s.log_ops, last.log_ops, "duplicates and undeliverable ops are not logged");
        assert_eq!(s.version, last.version, "nothing new was delivered");
        rss.push(rss_kib());
        println!(
            "round {round}: rss {} KiB, buffered {} ops, dropped {}, duplicates {}, ops served to the flooder {}",
            rss.last().unwrap(),
            s.pending_ops,
            s.stats.dropped,
            s.stats.duplicates_pushed,
            s.stats.ops_pulled
        );
        last = s;
    }
    // The buffer filled up to its bound in the first round and stayed there.
    assert_eq!(last.pending_ops, limits.max_buffered_ops);
    assert!(last.stats.dropped >= ROUNDS * early_per_round - limits.max_buffered_ops as u64);
    // Memory: after the first round (allocator warm, buffer full), no growth worth the name —
    // a leak of even one round's traffic would be tens of MiB.
    let growth = rss.last().unwrap().saturating_sub(rss[0]);
    println!("rss after round 1: {} KiB, after round {ROUNDS}: {} KiB (+{growth} KiB)", rss[0], rss.last().unwrap());
    assert!(growth < 32 << 10, "resident memory grew by {growth} KiB over {} rounds", ROUNDS - 1);

    // Beyond the limit: the digest is refused and the connection closed; the node carries on.
    let beyond = framed(Message::Digest {
        hash: 2,
        vv: Some(CompactVv(huge_vv(limits.max_vv_entries + 1, &VClock::new()))),
        reply: true,
    });
    flooder.send(&mut stream, &[beyond]).await;
    let closed = within("a closes the flooder's connection", flooder.conn.closed()).await;
    println!("flooder's connection closed: {closed}");

    // The node still serves: an update on either side reaches the other.
    inc(&b, "after-the-flood", 1).await;
    inc(&a, "after-the-flood", 2).await;
    converge(&[&a, &b]).await;
    let total = a.read(|c| c.get(&"after-the-flood".to_string()).map(|q| q.value())).await.unwrap();
    assert_eq!(total, Some(3));
    a.shutdown().await;
    b.shutdown().await;
    kill(rt_a);
    kill(rt_b);
}

/// Ops whose dependencies never come leave the causal buffer of a running node once they
/// have waited `max_buffered_age_ms`: a peer cannot hold the buffer full with them after it
/// stops sending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeliverable_ops_leave_the_buffer_of_a_running_node() {
    let _serial = SERIAL.lock().await;
    const AGE_MS: u64 = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let (rt, a) = start_with(dir.path(), Config { max_buffered_age_ms: AGE_MS, ..config() });
    let flooder = Flooder::connect(&a, true).await;
    let mut stream = flooder.conn.connection().open_uni().await.unwrap();
    let before = status(&a).await.stats.dropped;
    flooder.send(&mut stream, &[framed(Message::Push { ops: undeliverable(1, 500) })]).await;
    let full = wait_until("the ops buffered", &a, |s| s.stats.received_new >= 500).await;
    let waited = std::time::Instant::now();
    println!("buffered {} ops", full.pending_ops);
    // All 500 fit the buffer (far below its bounds), so every one leaves it by age: counted
    // as dropped, none delivered. (A slow poll may see the buffer already empty.)
    let empty =
        wait_until("the buffer emptied by age", &a, |s| s.pending_ops == 0 && s.stats.dropped >= before + 500).await;
    println!("emptied after {:?}", waited.elapsed());
    assert_eq!(empty.version, full.version, "none of them was delivered");
    a.shutdown().await;
    kill(rt);
}

/// A peer that keeps asking for everything (a digest of an empty version vector) and never
/// reads the answers: what it makes the node queue for it must stay bounded in bytes, not
/// only in frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_asks_and_never_reads_cannot_make_the_node_queue_without_bound() {
    let _serial = SERIAL.lock().await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (rt_a, a) = start(da.path());
    let (rt_b, b) = start(db.path());
    a.trust(b.ticket()).await.unwrap();
    b.trust(a.ticket()).await.unwrap();
    // More than a batch to ask for, so every answer is a full batch.
    let pad = "y".repeat(400);
    for i in 0..1_500u64 {
        inc(&a, &format!("{pad}-{i}"), 1).await;
    }
    converge(&[&a, &b]).await;
    let flooder = Flooder::connect(&a, false).await;
    let mut stream = flooder.conn.connection().open_uni().await.unwrap();
    let stale = framed(Message::Digest {
        hash: 0,
        vv: Some(CompactVv(behind_by(&status(&a).await.version, a.replica_id(), STALE_BY))),
        reply: true,
    });
    // One digest first, to learn how many ops an answer carries.
    let mut served = status(&a).await.stats.ops_pulled;
    // (Ops younger than the push tree needs are held back: ask until they are old enough.)
    let per_answer = within("one answer", async {
        loop {
            flooder.send(&mut stream, std::slice::from_ref(&stale)).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = status(&a).await.stats.ops_pulled;
            if now > served {
                return now - served;
            }
        }
    })
    .await;
    served += per_answer;
    let before = rss_kib();
    const ROUNDS: u64 = 8;
    const DIGESTS: u64 = 200;
    for round in 1..=ROUNDS {
        flooder.send(&mut stream, &vec![stale.clone(); DIGESTS as usize]).await;
        // Every digest handled: its answer was made (then queued or dropped).
        let target = served + DIGESTS * per_answer;
        served = wait_until("the digests handled", &a, |s| s.stats.ops_pulled >= target).await.stats.ops_pulled;
        println!(
            "round {round}: rss {} KiB (+{} KiB), ops served {served}",
            rss_kib(),
            rss_kib().saturating_sub(before)
        );
    }
    println!(
        "{} answers of {per_answer} ops (about {} KiB each) asked for, none read; rss grew {} KiB",
        ROUNDS * DIGESTS,
        Config::default().max_batch_bytes >> 10,
        rss_kib().saturating_sub(before)
    );
    // Resident memory says little here (the allocator keeps freed batches); what the node
    // kept for us does: start reading now and count the answers still coming.
    let mut incoming = within("the node's stream", flooder.conn.connection().accept_uni()).await.unwrap();
    // The bound (BOUNDS.md): two maximum frames queued for a connection, plus what QUIC
    // holds in flight (the peer's stream window, 1.25 MB, and the send buffer).
    let bound = 2 * wire::DEFAULT_MAX_FRAME + (16 << 20);
    let (mut answers, mut answer_bytes) = (0u64, 0usize);
    let mut last_answer = tokio::time::Instant::now();
    // Until no answer came for 5 s (the node's own digests keep coming) or past the bound.
    while last_answer.elapsed() < Duration::from_secs(5) && answer_bytes <= bound {
        let frame =
            match tokio::time::timeout(Duration::from_secs(1), net::read_frame(&mut incoming, wire::DEFAULT_MAX_FRAME))
                .await
            {
                Ok(Ok(Some(f))) => f,
                Ok(_) => break,
                Err(_) => continue,
            };
        if let Ok(Envelope { body: Message::Ops { .. }, .. }) = wire::decode(&frame, wire::DEFAULT_MAX_FRAME) {
            answers += 1;
            answer_bytes += frame.len();
            last_answer = tokio::time::Instant::now();
        }
    }
    println!("answers delivered once the peer read: {answers} ({} KiB)", answer_bytes >> 10);
    assert!(answer_bytes <= bound, "the node queued {answer_bytes} bytes for a peer that did not read");
    assert!(answers < ROUNDS * DIGESTS / 10, "most answers to a peer that does not read are dropped");
    // The node still serves its honest peer.
    inc(&b, "still-serving", 1).await;
    converge(&[&a, &b]).await;
    a.shutdown().await;
    b.shutdown().await;
    kill(rt_a);
    kill(rt_b);
}
