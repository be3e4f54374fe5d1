//! Real nodes on loopback: QUIC with mutual TLS, SWIM, SQLite. Every wait is bounded; no test
//! asserts a speed.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use gossamer_crdt::{CausalCounter, OrMap, VClock};
use gossamer_sync::membership;
use gossamer_sync::net::{self, Endpoint, Identity, NetError, TrustList};
use gossamer_sync::node::{Node, NodeError, NodeHandle};
use gossamer_sync::protocol::Config;
use tokio::runtime::Runtime;

type Cart = OrMap<String, CausalCounter>;

const LIMIT: Duration = Duration::from_secs(60);

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f).await.unwrap_or_else(|_| panic!("timed out: {what}"))
}

fn config() -> Config {
    Config { anti_entropy_interval_ms: 200, push_grace_ms: 100, ..Config::default() }
}

/// A node in a runtime of its own, so a test can kill it (drop the runtime) without shutdown.
/// `listen` is the address to bind (port 0: any).
fn start_at(dir: &Path, listen: std::net::SocketAddr) -> Result<(Runtime, NodeHandle<Cart>), NodeError> {
    let dir = dir.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let node = rt.block_on(Node::builder(&dir).listen(listen).protocol(config()).spawn::<Cart>())?;
        Ok((rt, node))
    })
    .join()
    .expect("the starting thread does not panic")
}

fn start(dir: &Path) -> (Runtime, NodeHandle<Cart>) {
    start_at(dir, "127.0.0.1:0".parse().unwrap()).unwrap()
}

/// One node per directory, each in a runtime of its own, with the protocol configuration
/// `config` and the membership configuration `swim`.
fn start_with(
    dirs: &[tempfile::TempDir],
    config: &Config,
    swim: &membership::Config,
) -> Vec<(Runtime, NodeHandle<Cart>)> {
    dirs.iter()
        .map(|d| {
            let (dir, config, swim) = (d.path().to_owned(), config.clone(), swim.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
                let node = rt.block_on(Node::builder(&dir).protocol(config).membership(swim).spawn::<Cart>()).unwrap();
                (rt, node)
            })
            .join()
            .unwrap()
        })
        .collect()
}

/// Shuts every node down, then drops its runtime.
async fn stop_all(started: Vec<(Runtime, NodeHandle<Cart>)>) {
    for (_, n) in &started {
        n.shutdown().await;
    }
    for (rt, _) in started {
        kill(rt);
    }
}

/// Drops a runtime from a plain thread (tokio refuses to drop one inside another).
fn kill(rt: Runtime) {
    std::thread::spawn(move || rt.shutdown_background()).join().unwrap();
}

async fn trust_all(nodes: &[&NodeHandle<Cart>]) {
    for a in nodes {
        for b in nodes {
            if a.node_id() != b.node_id() {
                a.trust(b.ticket()).await.unwrap();
            }
        }
    }
}

async fn qty(node: &NodeHandle<Cart>, item: &str) -> Option<i64> {
    let item = item.to_string();
    node.read(move |c| c.get(&item).map(|q| q.value())).await.unwrap()
}

async fn version(node: &NodeHandle<Cart>) -> VClock {
    node.status().await.unwrap().version
}

/// Waits until every node has the same version and it covers `target`. On a timeout, the
/// panic shows what every node had and how it saw its peers.
async fn converge(nodes: &[&NodeHandle<Cart>], target: &VClock) {
    let converged = tokio::time::timeout(LIMIT, async {
        loop {
            let mut versions = Vec::new();
            for n in nodes {
                versions.push(version(n).await);
            }
            if versions.iter().all(|v| v == &versions[0] && v.dominates(target)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    if converged.is_err() {
        let mut report = String::new();
        for n in nodes {
            let status = n.status().await;
            let peers = n.peers().await;
            report.push_str(&format!("\n{status:?}\n  peers: {peers:?}"));
        }
        panic!("timed out: convergence to {target:?}{report}");
    }
}

/// Waits until every node has started an anti-entropy round, which it does only with a
/// reachable peer: from then on its pushes have somewhere to go.
async fn linked(nodes: &[&NodeHandle<Cart>]) {
    within("a peer for every node", async {
        for n in nodes {
            while n.status().await.unwrap().stats.anti_entropy_rounds == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    })
    .await;
}

async fn inc(node: &NodeHandle<Cart>, item: &str, n: u64) {
    let me = node.replica_id();
    let item = item.to_string();
    node.update(move |c| c.update(item, |q| q.inc(me, n))).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_converge_after_concurrent_updates() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let started: Vec<_> = dirs.iter().map(|d| start(d.path())).collect();
    let nodes: Vec<&NodeHandle<Cart>> = started.iter().map(|(_, n)| n).collect();
    trust_all(&nodes).await;
    // Concurrent updates on every node, some on the same item.
    let mut tasks = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let n = (*n).clone();
        tasks.push(tokio::spawn(async move {
            for k in 0..20u64 {
                inc(&n, if k % 2 == 0 { "milk" } else { "eggs" }, 1).await;
                inc(&n, &format!("item-{i}"), k).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut target = VClock::new();
    for n in &nodes {
        target.merge(&version(n).await);
    }
    converge(&nodes, &target).await;
    for n in &nodes {
        assert_eq!(qty(n, "milk").await, Some(30));
        assert_eq!(qty(n, "eggs").await, Some(30));
        assert_eq!(qty(n, "item-2").await, Some((0..20).sum()));
    }
    for n in &nodes {
        n.shutdown().await;
    }
    for (rt, _) in started {
        kill(rt);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_restarts_with_every_acknowledged_update_and_catches_up() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (rt_a, a) = start(da.path());
    let (rt_b, b) = start(db.path());
    trust_all(&[&a, &b]).await;
    for _ in 0..25 {
        inc(&b, "bread", 1).await;
    }
    converge(&[&a, &b], &version(&b).await).await;
    // Kill b: no shutdown, its runtime and tasks just vanish.
    let b_ticket = b.ticket();
    drop(b);
    kill(rt_b);
    // a goes on writing while b is dead.
    for _ in 0..10 {
        inc(&a, "bread", 2).await;
    }
    // b comes back from its directory, on the same address.
    let mut tries = 0;
    let (rt_b, b) = loop {
        // The killed process's lock and port are released by the OS; retry briefly.
        match start_at(db.path(), b_ticket.addr) {
            Ok(started) => break started,
            Err(e) if tries < 50 => {
                tries += 1;
                eprintln!("restart: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("restart failed: {e}"),
        }
    };
    assert!(version(&b).await.get(&b.replica_id()) >= 25, "an acknowledged write was lost");
    converge(&[&a, &b], &version(&a).await).await;
    assert_eq!(qty(&b, "bread").await, Some(45));
    a.shutdown().await;
    b.shutdown().await;
    kill(rt_a);
    kill(rt_b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_node_is_refused_while_the_cluster_keeps_working() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (rt_a, a) = start(da.path());
    let (rt_b, b) = start(db.path());
    trust_all(&[&a, &b]).await;
    // A stranger trusts a, but a does not trust it: the handshake fails.
    let stranger_trust = TrustList::new();
    stranger_trust.add(a.node_id());
    let stranger =
        Endpoint::bind(Identity::generate().unwrap(), stranger_trust, "127.0.0.1:0".parse().unwrap()).unwrap();
    let err = within("stranger dial", stranger.connect(a.addr(), a.node_id())).await.unwrap_err();
    assert!(matches!(err, NetError::RefusedByPeer { .. }), "{err:?}");
    inc(&a, "tea", 3).await;
    converge(&[&a, &b], &version(&a).await).await;
    assert_eq!(qty(&b, "tea").await, Some(3));
    a.shutdown().await;
    b.shutdown().await;
    kill(rt_a);
    kill(rt_b);
}

/// A trusted peer that misbehaves: garbage, an oversized length prefix, an unknown wire
/// version. Each time it loses its connection; the node keeps serving the honest peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_peer_loses_its_connection_and_others_are_served() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (rt_a, a) = start(da.path());
    let (rt_b, b) = start(db.path());
    trust_all(&[&a, &b]).await;
    let evil_identity = Identity::generate().unwrap();
    let evil_trust = TrustList::new();
    evil_trust.add(a.node_id());
    let evil = Endpoint::bind(evil_identity.clone(), evil_trust, "127.0.0.1:0".parse().unwrap()).unwrap();
    a.trust(net::Ticket::new(evil.node_id(), evil.local_addr().unwrap())).await.unwrap();

    let mut unknown_version =
        gossamer_sync::wire::encode(&gossamer_sync::wire::Envelope::new(gossamer_sync::wire::Message::Ops {
            ops: vec![],
            more: false,
        }))
        .unwrap();
    unknown_version[3] = 0x63; // version 99
    let attacks: Vec<Vec<u8>> = vec![
        // Garbage inside a well-formed frame.
        [&12u32.to_be_bytes()[..], b"not cbor at all"].concat()[..16].to_vec(),
        // A length prefix far beyond the maximum.
        u32::MAX.to_be_bytes().to_vec(),
        // A frame of an unknown version.
        [&(unknown_version.len() as u32).to_be_bytes()[..], &unknown_version].concat(),
    ];
    for (i, attack) in attacks.into_iter().enumerate() {
        let conn = within("evil dial", evil.connect(a.addr(), a.node_id())).await.unwrap();
        let mut stream = conn.connection().open_uni().await.unwrap();
        stream.write_all(&attack).await.unwrap();
        let _ = stream.finish();
        let closed = within("a closes the evil connection", conn.closed()).await;
        tracing::info!(attack = i, %closed, "evil connection closed");
        // The node still serves its honest peer.
        inc(&b, "apples", 1).await;
        converge(&[&a, &b], &version(&b).await).await;
    }
    assert_eq!(qty(&a, "apples").await, Some(3));
    a.shutdown().await;
    b.shutdown().await;
    kill(rt_a);
    kill(rt_b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_node_heals_and_converges() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let started: Vec<_> = dirs.iter().map(|d| start(d.path())).collect();
    let nodes: Vec<&NodeHandle<Cart>> = started.iter().map(|(_, n)| n).collect();
    trust_all(&nodes).await;
    inc(nodes[0], "rice", 1).await;
    converge(&nodes, &version(nodes[0]).await).await;
    // Cut node 2 off (its endpoint stops talking); both sides write.
    nodes[2].set_offline(true).await.unwrap();
    inc(nodes[0], "rice", 1).await;
    inc(nodes[1], "beans", 4).await;
    inc(nodes[2], "rice", 5).await;
    inc(nodes[2], "salt", 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(qty(nodes[2], "beans").await, None, "the partition leaked");
    nodes[2].set_offline(false).await.unwrap();
    let mut target = VClock::new();
    for n in &nodes {
        target.merge(&version(n).await);
    }
    converge(&nodes, &target).await;
    for n in &nodes {
        assert_eq!(qty(n, "rice").await, Some(7));
        assert_eq!(qty(n, "beans").await, Some(4));
        assert_eq!(qty(n, "salt").await, Some(1));
    }
    for n in &nodes {
        n.shutdown().await;
    }
    for (rt, _) in started {
        kill(rt);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_serves_one_process_at_a_time() {
    let d = tempfile::tempdir().unwrap();
    let (rt, a) = start(d.path());
    let second = Node::builder(d.path()).spawn::<Cart>().await;
    assert!(matches!(second, Err(NodeError::Locked { .. })));
    a.shutdown().await;
    kill(rt);
    // Released after shutdown.
    let again = Node::builder(d.path()).spawn::<Cart>().await.unwrap();
    again.shutdown().await;
}

/// An op larger than a frame (frames of 64 KiB here, an item name of 100 KB) is acknowledged
/// and reaches the other node inside a snapshot, in frame-sized chunks: it is never dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn op_larger_than_a_frame_reaches_the_peer_by_snapshot() {
    let small = Config { max_frame_bytes: 64 << 10, ..config() };
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let started = start_with(&dirs, &small, &membership::Config::default());
    let (a, b) = (&started[0].1, &started[1].1);
    trust_all(&[a, b]).await;
    let big = "x".repeat(100_000);
    inc(a, &big, 3).await;
    inc(a, "milk", 1).await;
    converge(&[a, b], &version(a).await).await;
    assert_eq!(qty(b, &big).await, Some(3));
    assert_eq!(qty(b, "milk").await, Some(1));
    assert!(b.status().await.unwrap().stats.snapshots_merged >= 1);
    stop_all(started).await;
}

/// A writer faster than the link: a burst of updates whose pushes are many times the
/// connection's outgoing queue (frames of 64 KiB: a 128 KiB queue; 400 ops of ~8 KB). The
/// pushes that do not fit wait for the queue to drain instead of being dropped, so the other
/// node gets every op by push: with a 60 s push grace, anti-entropy could not have brought
/// a dropped one within the test's bound, and nothing is pulled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_larger_than_the_send_queue_arrives_by_push() {
    let cfg = Config { max_frame_bytes: 64 << 10, push_grace_ms: 60_000, ..config() };
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    // A peer declared down gets no pushes. The failure detector is not under test here: on a
    // loaded machine a burst can delay probes past their deadline, so give suspicion time.
    let swim = membership::Config { suspect_to_down_after: Duration::from_secs(120), ..membership::Config::default() };
    let started = start_with(&dirs, &cfg, &swim);
    let (a, b) = (&started[0].1, &started[1].1);
    trust_all(&[a, b]).await;
    // With a 60 s grace, anti-entropy would not bring an op pushed before the nodes see each
    // other until the test times out: first wait until each has the other as a peer.
    linked(&[a, b]).await;
    inc(a, "milk", 1).await;
    converge(&[a, b], &version(a).await).await;

    let burst: Vec<_> = (0..400)
        .map(|i| {
            let a = a.clone();
            tokio::spawn(async move { inc(&a, &format!("{i:04}{}", "x".repeat(8_000)), 1).await })
        })
        .collect();
    for t in burst {
        t.await.unwrap();
    }
    converge(&[a, b], &version(a).await).await;
    assert_eq!(b.read(|c| c.len()).await.unwrap(), 401);
    let stats = b.status().await.unwrap().stats;
    assert_eq!(stats.pulled_new, 0, "{stats:?}");
    assert!(stats.received_new >= 400, "{stats:?}");
    stop_all(started).await;
}
