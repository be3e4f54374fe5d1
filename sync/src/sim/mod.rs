//! A deterministic network simulator: N replicas of the real protocol in one process, virtual
//! time, and seeded faults — per-link loss, duplication, delay and reordering, partitions that
//! heal, and crash-restarts that keep the durable log and lose everything else.
//!
//! Every message goes through the real wire encoding, so byte counts are exact. The whole run
//! is a function of the seed: a failing seed replays exactly (`Sim::new` with the same
//! config). While it runs, the simulator checks what no replica may ever do — apply an op
//! twice, or before its dependencies — and at the end whether every replica holds every
//! acknowledged op and the state that all of them make.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use gossamer_crdt::{Dot, ReplicaId, VClock};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::protocol::{Config, Crdt, Event, Output, PeerStatus, Replica, Restored, StoredSnapshot};
use crate::wire::{self, Envelope, Message, OpRecord, codec};

/// Whether `delivered` covers `past`: exactly for pasts of up to 64 replicas; beyond, on 64
/// entries picked by `salt` (each check costs O(1) instead of O(N), and over the many ops of a
/// large run every entry gets checked many times).
fn covers(delivered: &VClock, past: &VClock, salt: usize) -> bool {
    if past.len() <= 64 {
        return delivered.dominates(past);
    }
    let step = past.len() / 64;
    past.iter().skip(salt % step.max(1)).step_by(step.max(1)).all(|(r, c)| delivered.get(&r) >= c)
}

/// How the simulated network behaves.
///
/// Start from [`SimConfig::new`] and turn on the faults a run must survive:
///
/// ```
/// use gossamer_crdt::CausalCounter;
/// use gossamer_sync::sim::{Sim, SimConfig};
///
/// let mut config = SimConfig::new(3, 42);
/// config.loss = 0.2; // one message in five is lost,
/// config.duplicate = 0.1; // one in ten arrives twice,
/// config.jitter_ms = 20; // and messages on a link overtake each other
/// let mut sim = Sim::<CausalCounter>::new(config);
/// for i in 0..3 {
///     let r = sim.id(i);
///     sim.update(i, move |c| c.inc(r, 1));
/// }
/// assert!(sim.run_until_converged(10_000).is_some());
/// sim.check().unwrap();
/// assert!(sim.metrics.lost > 0 && sim.metrics.duplicated > 0);
/// ```
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Number of replicas.
    pub replicas: usize,
    /// The seed everything derives from.
    pub seed: u64,
    /// Protocol configuration of every replica.
    pub protocol: Config,
    /// One-way base latency of each link, drawn once per link, uniform in `[min, max]` ms.
    pub latency_ms: (u64, u64),
    /// Extra delay of each message, uniform in `[0, jitter]` ms: reorders messages on a link.
    pub jitter_ms: u64,
    /// Probability a message is lost.
    pub loss: f64,
    /// Probability a message is delivered twice.
    pub duplicate: f64,
}

impl SimConfig {
    /// `replicas` replicas on a perfect network with 1–5 ms latency and 100 ms anti-entropy.
    ///
    /// ```
    /// use gossamer_sync::sim::SimConfig;
    ///
    /// let config = SimConfig::new(4, 7);
    /// assert_eq!((config.replicas, config.seed), (4, 7));
    /// assert_eq!(config.latency_ms, (1, 5));
    /// assert_eq!(config.protocol.anti_entropy_interval_ms, 100);
    /// assert_eq!((config.loss, config.duplicate), (0.0, 0.0));
    /// ```
    pub fn new(replicas: usize, seed: u64) -> Self {
        SimConfig {
            replicas,
            seed,
            protocol: Config { anti_entropy_interval_ms: 100, push_grace_ms: 100, ..Config::default() },
            latency_ms: (1, 5),
            jitter_ms: 2,
            loss: 0.0,
            duplicate: 0.0,
        }
    }
}

/// Traffic and behaviour totals over a run.
///
/// ```
/// use gossamer_crdt::CausalCounter;
/// use gossamer_sync::sim::{Metrics, Sim, SimConfig};
///
/// let mut sim = Sim::<CausalCounter>::new(SimConfig::new(3, 7));
/// assert_eq!(sim.metrics, Metrics::default());
/// let r = sim.id(0);
/// sim.update(0, move |c| c.inc(r, 1));
/// sim.run_until_converged(10_000).unwrap();
/// let m = &sim.metrics;
/// assert_eq!((m.updates, m.lost), (1, 0)); // a perfect network loses nothing
/// assert!(m.push_bytes > 0);
/// // Every message is counted once, by kind, with its 4-byte length prefix.
/// assert_eq!(m.bytes, m.digest_bytes + m.push_bytes + m.ops_bytes + m.snapshot_bytes);
/// assert!(m.bytes >= 4 * m.messages);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Messages handed to the network.
    pub messages: u64,
    /// Bytes handed to the network (frames, including the 4-byte length prefix).
    pub bytes: u64,
    /// Bytes of `Digest` messages.
    pub digest_bytes: u64,
    /// Digest messages.
    pub digests: u64,
    /// Bytes of `Push` messages.
    pub push_bytes: u64,
    /// Bytes of `Ops` messages.
    pub ops_bytes: u64,
    /// Bytes of snapshot chunks.
    pub snapshot_bytes: u64,
    /// Messages lost by the network (faults, partitions, crashed receivers).
    pub lost: u64,
    /// Messages the network delivered twice.
    pub duplicated: u64,
    /// Local updates acknowledged.
    pub updates: u64,
    /// Ops dropped by receivers (full buffers and the like).
    pub dropped_ops: u64,
}

#[derive(PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Deliver { to: usize, from: usize, frame: Vec<u8> },
    Tick { node: usize },
    Restart { node: usize },
}

struct Node<T: Crdt> {
    replica: Option<Replica<T>>,
    durable: Restored,
    /// What the simulator saw this replica apply: per origin a prefix.
    delivered: VClock,
    tick_at: Option<u64>,
    incarnation: u64,
}

/// The simulator. See the [module docs](self).
///
/// ```
/// use gossamer_crdt::{CausalCounter, ReplicaId};
/// use gossamer_sync::sim::{Sim, SimConfig};
///
/// let mut sim = Sim::<CausalCounter>::new(SimConfig::new(3, 7));
/// for i in 0..3 {
///     let r = sim.id(i);
///     sim.update(i, move |c| c.inc(r, 1));
/// }
/// assert!(sim.run_until_converged(10_000).is_some());
/// sim.check().unwrap();
/// assert_eq!(sim.replica(0).unwrap().state().value(), 3);
/// ```
pub struct Sim<T: Crdt> {
    config: SimConfig,
    now: u64,
    nodes: Vec<Node<T>>,
    ids: Vec<ReplicaId>,
    index: HashMap<ReplicaId, usize>,
    queue: BinaryHeap<Reverse<(u64, u64, Kind)>>,
    seq: u64,
    rng: ChaCha8Rng,
    /// Group of each replica while partitioned.
    groups: Option<Vec<usize>>,
    /// Replicas that left: cut off from everyone.
    absent: Vec<bool>,
    /// Every acknowledged local op, in creation order, with its causal past.
    history: Vec<(OpRecord, VClock)>,
    past: HashMap<Dot, VClock>,
    violations: Vec<String>,
    /// Traffic totals.
    pub metrics: Metrics,
}

impl<T: Crdt> Sim<T> {
    /// A network of `config.replicas` replicas that all know each other.
    ///
    /// The run is a function of the config: the same config replays the same run.
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::sim::{Metrics, Sim, SimConfig};
    ///
    /// let sim = Sim::<CausalCounter>::new(SimConfig::new(3, 7));
    /// assert_eq!((sim.len(), sim.now()), (3, 0));
    /// for i in 0..3 {
    ///     assert_eq!(sim.replica(i).unwrap().peers().len(), 2);
    /// }
    ///
    /// let run = |seed| -> Metrics {
    ///     let mut config = SimConfig::new(3, seed);
    ///     config.loss = 0.3;
    ///     let mut sim = Sim::<CausalCounter>::new(config);
    ///     let r = sim.id(0);
    ///     sim.update(0, move |c| c.inc(r, 1));
    ///     sim.run_until_converged(10_000).unwrap();
    ///     sim.metrics
    /// };
    /// assert_eq!(run(5), run(5));
    /// ```
    pub fn new(config: SimConfig) -> Self {
        let n = config.replicas;
        let ids: Vec<ReplicaId> =
            (0..n).map(|i| ReplicaId::from_u128((0x5111_0000_0000_0000 << 64) | (i as u128 + 1))).collect();
        let index = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let mut sim = Sim {
            now: 0,
            nodes: Vec::with_capacity(n),
            ids,
            index,
            queue: BinaryHeap::new(),
            seq: 0,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            groups: None,
            absent: vec![false; n],
            history: Vec::new(),
            past: HashMap::new(),
            violations: Vec::new(),
            metrics: Metrics::default(),
            config,
        };
        for i in 0..n {
            let r = sim.boot(i, Restored::default());
            sim.nodes.push(Node {
                replica: Some(r),
                durable: Restored::default(),
                delivered: VClock::new(),
                tick_at: None,
                incarnation: 0,
            });
        }
        for i in 0..n {
            sim.reschedule(i);
        }
        sim
    }

    fn boot(&self, i: usize, restored: Restored) -> Replica<T> {
        let seed = self.config.seed
            ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ self.nodes.get(i).map_or(0, |n| n.incarnation << 48);
        let mut r = Replica::restore(self.ids[i], self.config.protocol.clone(), seed, restored)
            .expect("the simulator's durable log is always restorable");
        for (j, id) in self.ids.iter().enumerate() {
            if j != i {
                r.set_peer(*id, PeerStatus::Alive);
            }
        }
        r
    }

    // ---- reads ------------------------------------------------------------------------------

    /// Virtual time, ms.
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::sim::{Sim, SimConfig};
    ///
    /// let mut sim = Sim::<CausalCounter>::new(SimConfig::new(2, 7));
    /// assert_eq!(sim.now(), 0);
    /// sim.run_for(250);
    /// assert_eq!(sim.now(), 250);
    /// ```
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The replica id of node `i`.
    ///
    /// Node `i` writes under this id, as a real node writes under its own.
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::sim::{Sim, SimConfig};
    ///
    /// let mut sim = Sim::<CausalCounter>::new(SimConfig::new(2, 7));
    /// let r = sim.id(1);
    /// assert_ne!(sim.id(0), r);
    /// assert_eq!(sim.replica(1).unwrap().id(), r);
    /// assert_eq!(sim.update(1, move |c| c.inc(r, 1)).unwrap().replica, r);
    /// ```
    pub fn id(&self, i: usize) -> ReplicaId {
        self.ids[i]
    }

    /// Node `i`'s replica, unless it is crashed.
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::sim::{Sim, SimConfig};
    ///
    /// let mut sim = Sim::<CausalCounter>::new(SimConfig::new(2, 7));
    /// let r = sim.id(0);
    /// sim.update(0, move |c| c.inc(r, 5));
    /// assert_eq!(sim.replica(0).unwrap().state().value(), 5);
    /// sim.crash(0, 100);
    /// assert!(sim.replica(0).is_none());
    /// sim.run_for(100);
    /// assert_eq!(sim.replica(0).unwrap().state().value(), 5); // restarted from its durable log
    /// ```
    pub fn replica(&self, i: usize) -> Option<&Replica<T>> {
        self.nodes[i].replica.as_ref()
    }

    /// The number of replicas.
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::sim::{Sim, SimConfig};
    ///
    /// let mut sim = Sim::<CausalCounter>::new(SimConfig::new(4, 7));
    /// sim.crash(3, 100);
    /// assert_eq!(sim.len(), 4); // crashed replicas still count
    /// ```
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when there are no replicas.
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::sim::{Sim, SimConfig};
    ///
    /// assert!(Sim::<CausalCounter>::new(SimConfig::new(0, 7)).is_empty());
    /// assert!(!Sim::<CausalCounter>::new(SimConfig::new(1, 7)).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every acknowledged op, in creation order.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, Dot};
    /// use gossamer_sync::sim::{Sim, SimConfig};
    ///
    /// let mut sim = Sim::<CausalCounter>::new(SimConfig::new(2, 7));
    /// let (a, b) = (sim.id(0), sim.id(1));
    /// sim.update(1, move |c| c.inc(b, 1));
    /// sim.update(0, move |c| c.inc(a, 1));
    /// sim.crash(0, 100);
    /// sim.update(0, move |c| c.inc(a, 1)); // not acknowledged: node 0 is down
    /// let dots: Vec<Dot> = sim.history().map(|op| op.dot).collect();
    /// assert_eq!(dots, [Dot::new(b, 1), Dot::new(a, 1)]);
    /// ```
    pub fn history(&self) -> impl Iterator<Item = &OpRecord> + '_ {
        self.history.iter().map(|(r, _)| r)
    }

    /// The version vector every replica must reach: one entry per writer.
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::sim::{Sim, SimConfig};
    ///
    /// let mut sim = Sim::<CausalCounter>::new(SimConfig::new(3, 7));
    /// let (a, b) = (sim.id(0), sim.id(1));
    /// sim.update(0, move |c| c.inc(a, 1));
    /// sim.update(0, move |c| c.inc(a, 1));
    /// sim.update(1, move |c| c.inc(b, 1));
    /// let target = sim.target();
    /// assert_eq!((target.get(&a), target.get(&b), target.len()), (2, 1, 2));
    /// sim.run_until_converged(10_000).unwrap();
    /// assert_eq!(*sim.replica(2).unwrap().version(), target);
    /// ```
    pub fn target(&self) -> VClock {
        self.history.iter().map(|(r, _)| r.dot).collect()
    }

    /// How many replicas have delivered `dot` (crashed ones count by their durable log).
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::sim::{Sim, SimConfig};
    ///
    /// let mut sim = Sim::<CausalCounter>::new(SimConfig::new(3, 7));
    /// let r = sim.id(0);
    /// let dot = sim.update(0, move |c| c.inc(r, 1)).unwrap();
    /// assert_eq!(sim.reached(&dot), 1); // only its origin so far
    /// sim.crash(0, 1_000);
    /// assert_eq!(sim.reached(&dot), 1); // the crashed origin logged it durably
    /// sim.run_for(100);
    /// assert_eq!(sim.reached(&dot), 3);
    /// ```
    pub fn reached(&self, dot: &Dot) -> usize {
        self.nodes.iter().filter(|n| n.delivered.contains(dot)).count()
    }

    // ---- faults -----------------------------------------------------------------------------

    /// Splits the network: replicas in different groups cannot reach each other until
    /// [`heal`](Self::heal). Replicas in no group form a group of their own.
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::sim::{Sim, SimConfig};
    ///
    /// let mut sim = Sim::<CausalCounter>::new(SimConfig::new(3, 7));
    /// sim.partition(&[vec![0, 1]]); // node 2, in no group, is on its own
    /// let r = sim.id(0);
    /// let dot = sim.update(0, move |c| c.inc(r, 1)).unwrap();
    /// sim.run_for(1_000);
    /// assert_eq!(sim.reached(&dot), 2);
    /// sim.heal();
    /// assert!(sim.run_until_converged(10_000).is_some());
    /// sim.check().unwrap();
    /// ```
    pub fn partition(&mut self, groups: &[Vec<usize>]) {
        let mut g = vec![usize::MAX; self.nodes.len()];
        for (k, members) in groups.iter().enumerate() {
            for &m in members {
                g[m] = k;
            }
        }
        self.groups = Some(g);
    }

    /// Ends the partition.
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::sim::{Sim, SimConfig};
    ///
    /// let mut sim = Sim::<CausalCounter>::new(SimConfig::new(2, 7));
    /// sim.partition(&[vec![0], vec![1]]);
    /// let r = sim.id(0);
    /// sim.update(0, move |c| c.inc(r, 1));
    /// assert_eq!(sim.run_until_converged(1_000), None);
    /// sim.heal();
    /// assert!(sim.run_until_converged(10_000).is_some());
    /// ```
    pub fn heal(&mut self) {
        self.groups = None;
    }

    /// Takes node `i` out of everyone's membership view (so compaction no longer waits for
    /// it) and cuts it off, as if it had left.
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::sim::{Sim, SimConfig};
    ///
    /// let mut sim = Sim::<CausalCounter>::new(SimConfig::new(3, 7));
    /// sim.leave(2);
    /// assert_eq!(sim.replica(0).unwrap().peers().len(), 1);
    /// let r = sim.id(0);
    /// let dot = sim.update(0, move |c| c.inc(r, 1)).unwrap();
    /// sim.run_for(1_000);
    /// assert_eq!(sim.reached(&dot), 2); // node 2 is cut off
    /// assert!(!sim.converged());
    /// ```
    pub fn leave(&mut self, i: usize) {
        let id = self.ids[i];
        for n in &mut self.nodes {
            if let Some(r) = n.replica.as_mut() {
                r.remove_peer(&id);
            }
        }
        self.absent[i] = true;
    }

    /// Brings a node that [left](Self::leave) back: everyone knows it again. If the others
    /// compacted past what it has, it catches up by snapshot.
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::sim::{Sim, SimConfig};
    ///
    /// let mut config = SimConfig::new(3, 7);
    /// config.protocol.compaction_threshold = 4;
    /// let mut sim = Sim::<CausalCounter>::new(config);
    /// sim.leave(2);
    /// let r = sim.id(0);
    /// for _ in 0..10 {
    ///     sim.update(0, move |c| c.inc(r, 1));
    /// }
    /// sim.run_for(2_000);
    /// assert!(sim.replica(0).unwrap().floor().get(&r) > 0); // compacted without node 2
    /// sim.join(2);
    /// sim.run_until_converged(10_000).unwrap();
    /// let late = sim.replica(2).unwrap();
    /// assert_eq!((late.state().value(), late.stats().snapshots_merged), (10, 1));
    /// ```
    pub fn join(&mut self, i: usize) {
        let id = self.ids[i];
        self.absent[i] = false;
        for (j, n) in self.nodes.iter_mut().enumerate() {
            if j != i
                && let Some(r) = n.replica.as_mut()
            {
                r.set_peer(id, PeerStatus::Alive);
            }
        }
    }

    /// Crashes node `i` now and restarts it `down_ms` later from its durable log.
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::sim::{Sim, SimConfig};
    ///
    /// let mut sim = Sim::<CausalCounter>::new(SimConfig::new(3, 7));
    /// let r = sim.id(1);
    /// sim.update(1, move |c| c.inc(r, 1));
    /// sim.crash(1, 200);
    /// assert!(sim.replica(1).is_none());
    /// sim.run_until_converged(10_000).unwrap(); // which waits for the restart
    /// assert!(sim.now() >= 200);
    /// sim.check().unwrap(); // the acknowledged write survived the crash
    /// assert_eq!(sim.replica(2).unwrap().state().value(), 1);
    /// ```
    pub fn crash(&mut self, i: usize, down_ms: u64) {
        if self.nodes[i].replica.take().is_some() {
            self.nodes[i].tick_at = None;
            let at = self.now + down_ms;
            self.schedule(at, Kind::Restart { node: i });
        }
    }

    // ---- inputs -----------------------------------------------------------------------------

    /// A local update on node `i` (skipped, returning `None`, while it is crashed).
    ///
    /// Returns the new op's dot.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, Dot};
    /// use gossamer_sync::sim::{Sim, SimConfig};
    ///
    /// let mut sim = Sim::<CausalCounter>::new(SimConfig::new(2, 7));
    /// let r = sim.id(0);
    /// assert_eq!(sim.update(0, move |c| c.inc(r, 1)), Some(Dot::new(r, 1)));
    /// assert_eq!(sim.update(0, move |c| c.inc(r, 1)), Some(Dot::new(r, 2)));
    /// sim.crash(0, 100);
    /// assert_eq!(sim.update(0, move |c| c.inc(r, 1)), None);
    /// ```
    pub fn update<F>(&mut self, i: usize, f: F) -> Option<Dot>
    where
        F: FnOnce(&mut T) -> T::Op,
    {
        let now = self.now;
        let past = self.nodes[i].delivered.clone();
        let replica = self.nodes[i].replica.as_mut()?;
        let (dot, outputs) = replica.local_update(now, f).expect("simulated ops encode");
        self.past.insert(dot, past.clone());
        for out in &outputs {
            if let Output::Persist(recs) = out
                && let Some(rec) = recs.iter().find(|r| r.dot == dot)
            {
                self.history.push((rec.clone(), past.clone()));
            }
        }
        self.metrics.updates += 1;
        self.process(i, outputs);
        Some(dot)
    }

    /// Makes node `i` start an anti-entropy exchange with every peer.
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::sim::{Sim, SimConfig};
    ///
    /// let mut config = SimConfig::new(3, 7);
    /// config.protocol.anti_entropy_interval_ms = 60_000; // no periodic round in this example
    /// let mut sim = Sim::<CausalCounter>::new(config);
    /// sim.partition(&[vec![0], vec![1, 2]]);
    /// let r = sim.id(0);
    /// sim.update(0, move |c| c.inc(r, 1)); // its push is lost
    /// sim.run_for(1_000);
    /// sim.heal();
    /// sim.run_for(1_000);
    /// assert!(!sim.converged());
    /// sim.sync_now(0);
    /// sim.run_for(100);
    /// assert!(sim.converged());
    /// ```
    pub fn sync_now(&mut self, i: usize) {
        let now = self.now;
        if let Some(r) = self.nodes[i].replica.as_mut() {
            let out = r.sync_now(now);
            self.process(i, out);
        }
    }

    // ---- running ----------------------------------------------------------------------------

    fn schedule(&mut self, at: u64, kind: Kind) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, kind)));
    }

    fn reschedule(&mut self, i: usize) {
        let Some(r) = self.nodes[i].replica.as_ref() else { return };
        if let Some(t) = r.next_deadline() {
            let t = t.max(self.now);
            if self.nodes[i].tick_at.is_none_or(|s| t < s) {
                self.nodes[i].tick_at = Some(t);
                self.schedule(t, Kind::Tick { node: i });
            }
        }
    }

    /// Runs every event up to virtual time `until`.
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::sim::{Sim, SimConfig};
    ///
    /// let mut sim = Sim::<CausalCounter>::new(SimConfig::new(3, 7));
    /// let r = sim.id(0);
    /// sim.update(0, move |c| c.inc(r, 1));
    /// sim.run_until(500);
    /// assert_eq!(sim.now(), 500);
    /// assert!(sim.converged()); // on 1–5 ms links, half a second is plenty
    /// sim.run_until(100); // the past: nothing happens
    /// assert_eq!(sim.now(), 500);
    /// ```
    pub fn run_until(&mut self, until: u64) {
        while let Some(Reverse((at, _, _))) = self.queue.peek() {
            if *at > until {
                break;
            }
            let Some(Reverse((at, _, kind))) = self.queue.pop() else { break };
            self.now = at;
            match kind {
                Kind::Deliver { to, from, frame } => self.deliver(to, from, &frame),
                Kind::Tick { node } => {
                    if self.nodes[node].tick_at != Some(at) {
                        continue;
                    }
                    self.nodes[node].tick_at = None;
                    if let Some(r) = self.nodes[node].replica.as_mut() {
                        let out = r.handle_tick(at);
                        self.process(node, out);
                    }
                }
                Kind::Restart { node } => self.restart(node),
            }
        }
        self.now = self.now.max(until);
    }

    /// Runs for `ms` more milliseconds.
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::sim::{Sim, SimConfig};
    ///
    /// let mut sim = Sim::<CausalCounter>::new(SimConfig::new(3, 7));
    /// let r = sim.id(0);
    /// let dot = sim.update(0, move |c| c.inc(r, 1)).unwrap();
    /// sim.run_for(0);
    /// assert_eq!(sim.reached(&dot), 1); // a link takes at least 1 ms
    /// sim.run_for(50);
    /// assert_eq!(sim.reached(&dot), 3);
    /// assert_eq!(sim.now(), 50);
    /// ```
    pub fn run_for(&mut self, ms: u64) {
        let until = self.now + ms;
        self.run_until(until);
    }

    /// Runs until every replica is up and has delivered every acknowledged op (checked every
    /// 10 ms of virtual time), or `limit_ms` passes. Returns the time it took.
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::sim::{Sim, SimConfig};
    ///
    /// let mut config = SimConfig::new(4, 11);
    /// config.loss = 0.3;
    /// let mut sim = Sim::<CausalCounter>::new(config);
    /// for i in 0..4 {
    ///     let r = sim.id(i);
    ///     sim.update(i, move |c| c.inc(r, 1));
    /// }
    /// let took = sim.run_until_converged(10_000).expect("converges despite the loss");
    /// assert_eq!(sim.now(), took); // the run started at 0
    /// // A partition that never heals: the call gives up at the limit.
    /// sim.partition(&[vec![0], vec![1, 2, 3]]);
    /// let r = sim.id(0);
    /// sim.update(0, move |c| c.inc(r, 1));
    /// assert_eq!(sim.run_until_converged(1_000), None);
    /// assert_eq!(sim.now(), took + 1_000);
    /// ```
    pub fn run_until_converged(&mut self, limit_ms: u64) -> Option<u64> {
        let start = self.now;
        loop {
            if self.converged() {
                return Some(self.now - start);
            }
            if self.now - start >= limit_ms {
                return None;
            }
            self.run_for(10);
        }
    }

    /// True when every replica is up and has delivered every acknowledged op.
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::sim::{Sim, SimConfig};
    ///
    /// let mut sim = Sim::<CausalCounter>::new(SimConfig::new(2, 7));
    /// assert!(sim.converged()); // nothing written yet
    /// let r = sim.id(0);
    /// sim.update(0, move |c| c.inc(r, 1));
    /// assert!(!sim.converged());
    /// sim.run_for(100);
    /// assert!(sim.converged());
    /// sim.crash(1, 50);
    /// assert!(!sim.converged()); // a crashed replica is not up
    /// ```
    pub fn converged(&self) -> bool {
        let target = self.target();
        self.nodes.iter().all(|n| n.replica.as_ref().is_some_and(|r| *r.version() == target))
    }

    fn restart(&mut self, i: usize) {
        let durable = self.nodes[i].durable.clone();
        self.nodes[i].incarnation += 1;
        let r = self.boot(i, durable);
        // Whatever was not durable is gone: the replica now has what its store kept.
        let mine = self.history.iter().filter(|(rec, _)| rec.dot.replica == self.ids[i]).count() as u64;
        if r.version().get(&self.ids[i]) < mine {
            self.violations.push(format!("node {i} lost acknowledged writes in a crash"));
        }
        self.nodes[i].delivered = r.version().clone();
        self.nodes[i].replica = Some(r);
        self.reschedule(i);
    }

    fn deliver(&mut self, to: usize, from: usize, frame: &[u8]) {
        if self.blocked(from, to) || self.nodes[to].replica.is_none() {
            self.metrics.lost += 1;
            return;
        }
        let max = self.config.protocol.max_frame_bytes;
        let env = match wire::unframe(frame, max).and_then(|f| match f {
            Some((payload, _)) => wire::decode(payload, max),
            None => Err(wire::WireError::Malformed("short frame".into())),
        }) {
            Ok(env) => env,
            Err(e) => {
                self.violations.push(format!("node {to} could not decode a frame from {from}: {e}"));
                return;
            }
        };
        let now = self.now;
        let from_id = self.ids[from];
        if let Some(r) = self.nodes[to].replica.as_mut() {
            let out = r.handle_message(now, from_id, env.body);
            self.process(to, out);
        }
    }

    /// The base latency of the link between `a` and `b` (the same both ways), a function of
    /// the seed.
    fn link_latency(&self, a: usize, b: usize) -> u64 {
        let (lo, hi) = self.config.latency_ms;
        if hi <= lo {
            return lo;
        }
        let (x, y) = (a.min(b) as u64, a.max(b) as u64);
        let mut h = self.config.seed ^ x.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ y.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        h ^= h >> 33;
        h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        h ^= h >> 33;
        lo + h % (hi - lo + 1)
    }

    fn blocked(&self, a: usize, b: usize) -> bool {
        self.absent[a]
            || self.absent[b]
            || self.groups.as_ref().is_some_and(|g| g[a] != g[b] || g[a] == usize::MAX && a != b)
    }

    /// Carries out a replica's outputs as a real driver would, checking them as it goes.
    fn process(&mut self, i: usize, outputs: Vec<Output>) {
        for out in outputs {
            match out {
                Output::Persist(recs) => self.nodes[i].durable.log.extend(recs),
                Output::PersistSnapshot { vv, floor, state } => {
                    let d = &mut self.nodes[i].durable;
                    d.log.retain(|r| r.dot.counter > floor.get(&r.dot.replica));
                    d.snapshot = Some(StoredSnapshot { vv, floor, state });
                }
                Output::Send { to, msg } => self.send(i, to, msg),
                Output::Event(Event::Applied { dot }) => self.check_applied(i, dot),
                Output::Event(Event::SnapshotMerged { vv, .. }) => self.nodes[i].delivered.merge(&vv),
                Output::Event(Event::Dropped { .. }) => self.metrics.dropped_ops += 1,
                Output::Event(Event::PeerMisbehaved { peer, reason }) => {
                    self.violations.push(format!("node {i} says {peer:?} misbehaved: {reason}"));
                }
                Output::Event(Event::SessionReady { .. }) => {}
            }
        }
        self.reschedule(i);
    }

    fn check_applied(&mut self, i: usize, dot: Dot) {
        let delivered = &self.nodes[i].delivered;
        if delivered.contains(&dot) {
            self.violations.push(format!("node {i} applied {dot:?} twice"));
        } else if delivered.get(&dot.replica) + 1 != dot.counter {
            self.violations.push(format!("node {i} applied {dot:?} out of its origin's order"));
        } else if let Some(past) = self.past.get(&dot)
            && !covers(delivered, past, dot.counter as usize + i)
        {
            self.violations.push(format!("node {i} applied {dot:?} before its dependencies"));
        }
        self.nodes[i].delivered.observe(dot);
    }

    fn send(&mut self, from: usize, to: ReplicaId, msg: Message) {
        let Some(&to) = self.index.get(&to) else { return };
        let kind_bytes = |m: &Message| match m {
            Message::Digest { .. } => 0,
            Message::Push { .. } => 1,
            Message::Ops { .. } => 2,
            Message::Snapshot { .. } => 3,
        };
        let kind = kind_bytes(&msg);
        let payload = wire::encode(&Envelope::new(msg)).expect("messages encode");
        let frame = match wire::frame(&payload, self.config.protocol.max_frame_bytes) {
            Ok(f) => f,
            Err(e) => {
                self.violations.push(format!("node {from} built an oversized frame: {e}"));
                return;
            }
        };
        let len = frame.len() as u64;
        self.metrics.messages += 1;
        self.metrics.bytes += len;
        match kind {
            0 => {
                self.metrics.digest_bytes += len;
                self.metrics.digests += 1;
            }
            1 => self.metrics.push_bytes += len,
            2 => self.metrics.ops_bytes += len,
            _ => self.metrics.snapshot_bytes += len,
        }
        if self.blocked(from, to) || self.rng.random_bool(self.config.loss.clamp(0.0, 1.0)) {
            self.metrics.lost += 1;
            return;
        }
        let copies = if self.rng.random_bool(self.config.duplicate.clamp(0.0, 1.0)) {
            self.metrics.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = self.link_latency(from, to) + self.rng.random_range(0..=self.config.jitter_ms);
            let at = self.now + delay;
            self.schedule(at, Kind::Deliver { to, from, frame: frame.clone() });
        }
    }

    // ---- checks -----------------------------------------------------------------------------

    /// Checks everything: no violation so far (no op applied twice or before its
    /// dependencies, no acknowledged write lost in a crash, every frame decodable) and, if the
    /// run has converged, every replica's state equals the state of all acknowledged ops.
    ///
    /// # Errors
    /// Every violation found, one per line.
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::sim::{Sim, SimConfig};
    ///
    /// let mut config = SimConfig::new(3, 3);
    /// config.loss = 0.2;
    /// config.duplicate = 0.2;
    /// let mut sim = Sim::<CausalCounter>::new(config);
    /// for i in 0..3 {
    ///     let r = sim.id(i);
    ///     sim.update(i, move |c| c.inc(r, 1));
    /// }
    /// sim.crash(2, 100);
    /// sim.run_until_converged(10_000).unwrap();
    /// // No op applied twice or early, no write lost, and every state is the model's.
    /// assert_eq!(sim.check(), Ok(()));
    /// assert_eq!(sim.replica(2).unwrap().state().value(), 3);
    /// ```
    pub fn check(&self) -> Result<(), String> {
        let mut problems = self.violations.clone();
        if self.converged() {
            let mut model = T::default();
            for (rec, _) in &self.history {
                match codec::from_slice::<T::Op>(&rec.payload) {
                    Ok(op) => model.apply(op),
                    Err(e) => problems.push(format!("history op {:?} undecodable: {e}", rec.dot)),
                }
            }
            let model = codec::to_vec(&model).map_err(|e| e.to_string())?;
            for (i, n) in self.nodes.iter().enumerate() {
                if let Some(r) = &n.replica {
                    let state = codec::to_vec(r.state()).map_err(|e| e.to_string())?;
                    if state != model {
                        problems.push(format!("node {i} converged to a state other than the model's"));
                    }
                    if r.buffered().0 != 0 {
                        problems.push(format!("node {i} still buffers {} ops after convergence", r.buffered().0));
                    }
                }
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(format!("seed {}: {}", self.config.seed, problems.join("\n"))) }
    }
}
