//! The replica state machine.

use std::collections::{BTreeMap, HashMap, VecDeque};

use bytes::Bytes;
use gossamer_crdt::{CmRDT, CvRDT, Dot, ReplicaId, VClock};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::buffer::{Bounds, CausalBuffer, missing};
use super::log::{OpLog, record_size};
use super::peers::{PeerInfo, PeerStatus, Peers};
use super::{Config, Event, Output, ProtocolError};
use crate::wire::{CompactVv, Message, OpRecord, SnapshotChunk, codec, fnv1a};

/// A CRDT the protocol can replicate: op-based for the normal path, state-based for
/// catch-up by snapshot, serializable both ways. Every `gossamer_crdt` type qualifies.
///
/// ```
/// use gossamer_crdt::{CausalCounter, GCounter, OrMap, ReplicaId};
/// use gossamer_sync::protocol::{Config, Crdt, Replica};
///
/// /// A driver generic over what it replicates needs only this bound.
/// fn fresh<T: Crdt>(n: u128) -> Replica<T> {
///     Replica::new(ReplicaId::from_u128(n), Config::default(), n as u64)
/// }
///
/// let mut counter = fresh::<GCounter>(1);
/// let me = counter.id();
/// counter.local_update(0, |c| c.inc(me, 3)).unwrap();
/// assert_eq!(counter.state().value(), 3);
///
/// let cart = fresh::<OrMap<String, CausalCounter>>(2);
/// assert!(cart.state().is_empty());
/// ```
pub trait Crdt:
    CvRDT + CmRDT<Op: Serialize + DeserializeOwned> + Default + Clone + Serialize + DeserializeOwned
{
}

impl<T> Crdt for T where
    T: CvRDT + CmRDT<Op: Serialize + DeserializeOwned> + Default + Clone + Serialize + DeserializeOwned
{
}

/// Extra anti-entropy exchanges a replica may chain per round after learning stale ops.
const CHAIN_BUDGET: u32 = 2;

/// Walks two version vectors in replica order at once (O(n + m)): the origins where `ours`
/// is ahead, with `theirs`' counter for each, and whether `theirs` is ahead anywhere.
fn compare(ours: &VClock, theirs: &VClock) -> (Vec<(ReplicaId, u64)>, bool) {
    let mut ahead = Vec::new();
    let mut behind = false;
    let mut a = ours.iter().peekable();
    let mut b = theirs.iter().peekable();
    loop {
        match (a.peek().copied(), b.peek().copied()) {
            (None, None) => break,
            (Some((r, _)), None) => {
                ahead.push((r, 0));
                a.next();
            }
            (None, Some(_)) => {
                behind = true;
                break;
            }
            (Some((ra, ca)), Some((rb, cb))) => match ra.cmp(&rb) {
                std::cmp::Ordering::Less => {
                    ahead.push((ra, 0));
                    a.next();
                }
                std::cmp::Ordering::Greater => {
                    behind = true;
                    b.next();
                }
                std::cmp::Ordering::Equal => {
                    if ca > cb {
                        ahead.push((ra, cb));
                    } else if cb > ca {
                        behind = true;
                    }
                    a.next();
                    b.next();
                }
            },
        }
    }
    (ahead, behind)
}

/// How many recent push delays the grace estimate looks at.
const PUSH_DELAY_SAMPLES: usize = 256;
/// A peer that lacks at least this many ops may be served a snapshot instead, when the
/// state encodes smaller than the ops would (a fresh replica joining a large state).
const SNAPSHOT_MIN_MISSING_OPS: u64 = 1_024;

/// A durable snapshot, as the store gives it back on restart.
///
/// ```
/// use gossamer_crdt::{CausalCounter, ReplicaId};
/// use gossamer_sync::protocol::{Config, Output, Replica, Restored, StoredSnapshot};
///
/// let a = ReplicaId::from_u128(1);
/// // With no peers to wait for and a threshold of 0, a tick compacts the whole log.
/// let config = Config { compaction_threshold: 0, ..Config::default() };
/// let mut ra = Replica::<CausalCounter>::new(a, config.clone(), 1);
/// ra.local_update(0, |c| c.inc(a, 4)).unwrap();
///
/// let mut stored = None;
/// for out in ra.handle_tick(1) {
///     if let Output::PersistSnapshot { vv, floor, state } = out {
///         stored = Some(StoredSnapshot { vv, floor, state });
///     }
/// }
/// let snapshot = stored.expect("the tick compacted");
/// assert_eq!(&snapshot.vv, ra.version());
/// // Everything is in the snapshot: the log it goes with is empty.
/// let back = Replica::<CausalCounter>::restore(a, config, 2, Restored { snapshot: Some(snapshot), log: vec![] })?;
/// assert_eq!(back.state().value(), 4);
/// # Ok::<(), gossamer_sync::protocol::ProtocolError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct StoredSnapshot {
    /// What the state includes.
    pub vv: VClock,
    /// The op log holds only ops above this.
    pub floor: VClock,
    /// The encoded state.
    pub state: Bytes,
}

/// What a restarting replica reads back from its store.
///
/// ```
/// use gossamer_crdt::{CausalCounter, Dot, ReplicaId};
/// use gossamer_sync::protocol::{Config, Output, Replica, Restored};
///
/// let a = ReplicaId::from_u128(1);
/// let mut ra = Replica::<CausalCounter>::new(a, Config::default(), 1);
/// // The driver's store: what the `Persist` outputs asked to keep.
/// let mut store = Restored::default();
/// for t in 1..=3 {
///     for out in ra.local_update(t, |c| c.inc(a, 1))?.1 {
///         if let Output::Persist(ops) = out {
///             store.log.extend(ops);
///         }
///     }
/// }
///
/// let mut back = Replica::<CausalCounter>::restore(a, Config::default(), 2, store)?;
/// assert_eq!(back.state().value(), 3);
/// assert_eq!(back.version(), ra.version());
/// // The restarted replica continues its own dots where it left off.
/// let (dot, _) = back.local_update(4, |c| c.inc(a, 1))?;
/// assert_eq!(dot, Dot::new(a, 4));
/// # Ok::<(), gossamer_sync::protocol::ProtocolError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Restored {
    /// The latest snapshot, if one was taken.
    pub snapshot: Option<StoredSnapshot>,
    /// The logged ops, in the order they were persisted (a causal order).
    pub log: Vec<OpRecord>,
}

/// Counters for tests, benchmarks and the status page.
///
/// ```
/// use gossamer_crdt::{CausalCounter, ReplicaId};
/// use gossamer_sync::protocol::{Config, Output, PeerStatus, Replica};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut ra = Replica::<CausalCounter>::new(a, Config::default(), 1);
/// let mut rb = Replica::<CausalCounter>::new(b, Config::default(), 2);
/// ra.set_peer(b, PeerStatus::Alive);
///
/// let (_, outputs) = ra.local_update(0, |c| c.inc(a, 1)).unwrap();
/// for out in outputs {
///     if let Output::Send { msg, .. } = out {
///         // The network duplicates the push.
///         rb.handle_message(1, a, msg.clone());
///         rb.handle_message(2, a, msg);
///     }
/// }
/// assert_eq!((ra.stats().applied, ra.stats().ops_pushed), (1, 1));
/// let s = rb.stats();
/// assert_eq!((s.applied, s.received_new, s.duplicates_pushed), (1, 1, 1));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Ops applied (local and remote).
    pub applied: u64,
    /// Ops received by push that were already known (redundant copies).
    pub duplicates_pushed: u64,
    /// Ops received by anti-entropy that were already known.
    pub duplicates_pulled: u64,
    /// Ops received that were new.
    pub received_new: u64,
    /// New ops that came by anti-entropy: what the push trees failed to deliver.
    pub pulled_new: u64,
    /// Ops sent in `Push` messages.
    pub ops_pushed: u64,
    /// Ops sent in `Ops` (anti-entropy) messages.
    pub ops_pulled: u64,
    /// Received ops not kept (full buffer, undecodable, oversized).
    pub dropped: u64,
    /// Snapshots sent.
    pub snapshots_sent: u64,
    /// Snapshots received and merged.
    pub snapshots_merged: u64,
    /// Snapshots dropped while being assembled because the snapshots of all peers together
    /// reached `max_assembling_bytes` (each peer sends its snapshot again later).
    pub snapshots_refused: u64,
    /// Anti-entropy rounds this replica started.
    pub anti_entropy_rounds: u64,
}

#[derive(Debug)]
struct Assembly {
    id: u64,
    next: u32,
    vv: VClock,
    data: Vec<u8>,
}

/// One replica of a CRDT `T`: the whole replication protocol, with no I/O.
///
/// Inputs are local updates, messages from peers, ticks and membership changes; each call
/// returns the [`Output`]s the driver must carry out, in order. Time is passed in (ms since
/// any fixed origin); randomness comes from the seed given at construction, so a run is
/// reproducible from its seed.
///
/// - **Eager push** along a push tree per origin: a k-ary tree over the membership view,
///   rooted at the op's origin, so a fresh op reaches N replicas in ⌈log_k N⌉ hops and each
///   replica receives it once.
/// - **Push-pull anti-entropy** every `anti_entropy_interval_ms`: a digest (the version
///   vector, or only its hash when idle) to a random peer, which answers with exactly the ops
///   we lack, in causal order and in batches bounded in bytes; then the reverse.
/// - **Causal exactly-once delivery**: an op is applied once its dependencies are; early ops
///   wait in a bounded buffer; duplicates are dropped by dot.
/// - **Compaction** at causal stability, with **catch-up by snapshot** for a peer behind it.
/// - **Session guarantees**: [`wait_for`](Self::wait_for) a version-vector token.
///
/// ```
/// use gossamer_crdt::{CausalCounter, ReplicaId};
/// use gossamer_sync::protocol::{Config, Output, PeerStatus, Replica};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut ra = Replica::<CausalCounter>::new(a, Config::default(), 1);
/// let mut rb = Replica::<CausalCounter>::new(b, Config::default(), 2);
/// ra.set_peer(b, PeerStatus::Alive);
/// rb.set_peer(a, PeerStatus::Alive);
///
/// let (_dot, outputs) = ra.local_update(0, |c| c.inc(a, 5)).unwrap();
/// // The driver persists, then sends; here we hand the messages straight to `rb`.
/// for out in outputs {
///     if let Output::Send { to, msg } = out {
///         assert_eq!(to, b);
///         rb.handle_message(1, a, msg);
///     }
/// }
/// assert_eq!(rb.state().value(), 5);
/// ```
#[derive(Debug)]
pub struct Replica<T: Crdt> {
    id: ReplicaId,
    config: Config,
    state: T,
    /// Delivered ops: per origin a contiguous prefix.
    vv: VClock,
    /// The log holds no op at or below this.
    floor: VClock,
    log: OpLog,
    buffer: CausalBuffer,
    peers: Peers,
    rng: ChaCha8Rng,
    next_anti_entropy: Option<u64>,
    /// The version vector changed since we last sent it whole.
    vv_news: bool,
    /// The causal frontier of what we delivered: per origin, its latest op that no other
    /// delivered op depends on. The dependencies of our next op — usually one or two entries,
    /// however many replicas there are.
    frontier: BTreeMap<ReplicaId, u64>,
    /// Time of the call being handled (ms).
    now: u64,
    /// How long the last pushed ops took to arrive (ms), a ring of the most recent: the tree's
    /// delivery time, which anti-entropy waits out before it sends an op.
    push_delays: VecDeque<u64>,
    /// `(ops applied + snapshots merged, hash)` of the version vector when last hashed.
    vv_hash_cache: Option<(u64, u64)>,
    /// `(ops applied + snapshots merged, encoded size)` of the state when last encoded.
    state_size_cache: Option<(u64, usize)>,
    /// Chained anti-entropy exchanges left this round.
    chain_budget: u32,
    /// The members the push trees are laid over (reachable peers and us), sorted; rebuilt
    /// when the membership view changes.
    tree_view: Vec<ReplicaId>,
    view_dirty: bool,
    sessions: Vec<(u64, VClock)>,
    assemblies: HashMap<ReplicaId, Assembly>,
    next_snapshot_id: u64,
    stats: Stats,
    // Per-call output assembly.
    out: Vec<Output>,
    unpersisted: Vec<OpRecord>,
    push_queue: HashMap<ReplicaId, Vec<OpRecord>>,
}

impl<T: Crdt> Replica<T> {
    /// A fresh replica with an empty state. Batches and snapshot chunks are kept to at most
    /// half a frame, so every message fits in one.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, ReplicaId};
    /// use gossamer_sync::protocol::{Config, Replica};
    ///
    /// let a = ReplicaId::from_u128(1);
    /// let ra = Replica::<CausalCounter>::new(a, Config::default(), 1);
    /// assert_eq!(ra.id(), a);
    /// assert_eq!(ra.state().value(), 0);
    /// assert!(ra.version().is_empty() && ra.peers().is_empty());
    /// // Nothing is scheduled yet: the driver ticks it at once.
    /// assert_eq!(ra.next_deadline(), Some(0));
    /// ```
    pub fn new(id: ReplicaId, mut config: Config, seed: u64) -> Self {
        let half_frame = (config.max_frame_bytes / 2).max(1);
        config.max_batch_bytes = config.max_batch_bytes.min(half_frame);
        config.snapshot_chunk_bytes = config.snapshot_chunk_bytes.min(half_frame).max(1);
        // An op depends on at most one event per replica; refusing ops with as many deps as
        // a version vector may have entries would cut a writer off for good.
        config.max_deps = config.max_deps.max(config.max_vv_entries);
        Replica {
            id,
            config,
            state: T::default(),
            vv: VClock::new(),
            floor: VClock::new(),
            log: OpLog::default(),
            buffer: CausalBuffer::default(),
            peers: Peers::default(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            next_anti_entropy: None,
            vv_news: true,
            frontier: BTreeMap::new(),
            now: 0,
            push_delays: VecDeque::new(),
            vv_hash_cache: None,
            state_size_cache: None,
            chain_budget: CHAIN_BUDGET,
            tree_view: Vec::new(),
            view_dirty: true,
            sessions: Vec::new(),
            assemblies: HashMap::new(),
            next_snapshot_id: seed.rotate_left(32),
            stats: Stats::default(),
            out: Vec::new(),
            unpersisted: Vec::new(),
            push_queue: HashMap::new(),
        }
    }

    /// Rebuilds a replica from what its store kept: the snapshot, then the logged ops above
    /// it replayed in order. Buffers, peers and the push tree start empty.
    ///
    /// # Errors
    /// [`ProtocolError::Restore`] when the snapshot cannot be decoded or the log is not a
    /// causal sequence.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, Dot, ReplicaId};
    /// use gossamer_sync::protocol::{Config, Output, Replica, Restored, StoredSnapshot};
    ///
    /// let a = ReplicaId::from_u128(1);
    /// let config = Config { compaction_threshold: 0, ..Config::default() };
    /// let mut ra = Replica::<CausalCounter>::new(a, config.clone(), 1);
    /// // The driver's store follows the outputs: ops appended, a snapshot replacing the ops it holds.
    /// let mut store = Restored::default();
    /// let keep = |store: &mut Restored, outputs: Vec<Output>| {
    ///     for out in outputs {
    ///         match out {
    ///             Output::Persist(ops) => store.log.extend(ops),
    ///             Output::PersistSnapshot { vv, floor, state } => {
    ///                 store.log.retain(|rec| rec.dot.counter > floor.get(&rec.dot.replica));
    ///                 store.snapshot = Some(StoredSnapshot { vv, floor, state });
    ///             }
    ///             _ => {}
    ///         }
    ///     }
    /// };
    /// keep(&mut store, ra.local_update(1, |c| c.inc(a, 1))?.1);
    /// keep(&mut store, ra.local_update(2, |c| c.inc(a, 1))?.1);
    /// keep(&mut store, ra.handle_tick(3)); // compacts both ops into a snapshot
    /// keep(&mut store, ra.local_update(4, |c| c.inc(a, 1))?.1);
    /// assert_eq!(store.log.len(), 1);
    ///
    /// // The snapshot, then the one op above it.
    /// let mut back = Replica::<CausalCounter>::restore(a, config, 2, store)?;
    /// assert_eq!((back.state().value(), back.version()), (3, ra.version()));
    /// assert_eq!(back.floor(), ra.floor());
    /// assert_eq!(back.local_update(5, |c| c.inc(a, 1))?.0, Dot::new(a, 4));
    /// # Ok::<(), gossamer_sync::protocol::ProtocolError>(())
    /// ```
    pub fn restore(id: ReplicaId, config: Config, seed: u64, restored: Restored) -> Result<Self, ProtocolError> {
        let mut r = Self::new(id, config, seed);
        if let Some(snap) = restored.snapshot {
            r.state = codec::from_slice(&snap.state).map_err(|e| ProtocolError::Restore(e.to_string()))?;
            r.vv = snap.vv;
            r.floor = snap.floor;
        }
        for rec in restored.log {
            if rec.dot.counter <= r.floor.get(&rec.dot.replica) {
                continue;
            }
            if !r.vv.contains(&rec.dot) {
                if let Some(need) = missing(&rec, &r.vv) {
                    return Err(ProtocolError::Restore(format!(
                        "logged op {:?} before its dependency {need:?}",
                        rec.dot
                    )));
                }
                let op: T::Op = codec::from_slice(&rec.payload).map_err(|e| ProtocolError::Restore(e.to_string()))?;
                r.state.apply(op);
                r.vv.observe(rec.dot);
            }
            r.log.push(rec, 0);
        }
        // What depended on what before the restart is gone: depend on every origin's latest
        // op (a superset of the frontier, so still correct).
        r.frontier = r.vv.iter().collect();
        Ok(r)
    }

    // ---- reads ------------------------------------------------------------------------------

    /// This replica's id.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, ReplicaId};
    /// use gossamer_sync::protocol::{Config, Replica};
    ///
    /// let mut ra = Replica::<CausalCounter>::new(ReplicaId::from_u128(7), Config::default(), 1);
    /// assert_eq!(ra.id(), ReplicaId::from_u128(7));
    /// // Ops are made in the replica's own name.
    /// let me = ra.id();
    /// let (dot, _) = ra.local_update(0, |c| c.inc(me, 1)).unwrap();
    /// assert_eq!(dot.replica, me);
    /// ```
    pub fn id(&self) -> ReplicaId {
        self.id
    }

    /// The replicated state.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, ReplicaId};
    /// use gossamer_sync::protocol::{Config, Replica};
    ///
    /// let a = ReplicaId::from_u128(1);
    /// let mut ra = Replica::<CausalCounter>::new(a, Config::default(), 1);
    /// ra.local_update(0, |c| c.inc(a, 5)).unwrap();
    /// ra.local_update(1, |c| c.dec(a, 2)).unwrap();
    /// assert_eq!(ra.state().value(), 3);
    /// ```
    pub fn state(&self) -> &T {
        &self.state
    }

    /// The ops delivered here, per origin.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, ReplicaId};
    /// use gossamer_sync::protocol::{Config, Output, PeerStatus, Replica};
    ///
    /// # /// Hands the messages in `outputs`, sent by `from`, to `to`.
    /// # fn push(to: &mut Replica<CausalCounter>, now: u64, from: ReplicaId, outputs: Vec<Output>) -> Vec<Output> {
    /// #     let mut next = Vec::new();
    /// #     for out in outputs {
    /// #         if let Output::Send { msg, .. } = out {
    /// #             next.extend(to.handle_message(now, from, msg));
    /// #         }
    /// #     }
    /// #     next
    /// # }
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut ra = Replica::<CausalCounter>::new(a, Config::default(), 1);
    /// let mut rb = Replica::<CausalCounter>::new(b, Config::default(), 2);
    /// ra.set_peer(b, PeerStatus::Alive);
    ///
    /// ra.local_update(0, |c| c.inc(a, 1)).unwrap();
    /// let (_, outputs) = ra.local_update(1, |c| c.inc(a, 1)).unwrap();
    /// rb.local_update(1, |c| c.inc(b, 1)).unwrap();
    /// assert_eq!((ra.version().get(&a), ra.version().get(&b)), (2, 0));
    /// // `rb` receives `ra`'s second op, which depends on its first: it delivers neither yet.
    /// push(&mut rb, 2, a, outputs);
    /// assert_eq!((rb.version().get(&a), rb.version().get(&b)), (0, 1));
    /// ```
    pub fn version(&self) -> &VClock {
        &self.vv
    }

    /// The compaction floor: the log holds no op at or below it.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, ReplicaId};
    /// use gossamer_sync::protocol::{Config, Replica};
    ///
    /// let a = ReplicaId::from_u128(1);
    /// let config = Config { compaction_threshold: 1, ..Config::default() };
    /// let mut ra = Replica::<CausalCounter>::new(a, config, 1);
    /// ra.local_update(0, |c| c.inc(a, 1)).unwrap();
    /// ra.local_update(1, |c| c.inc(a, 1)).unwrap();
    /// assert!(ra.floor().is_empty());
    /// // Past the threshold, and with no peer still lacking them, a tick compacts the ops away.
    /// ra.handle_tick(2);
    /// assert_eq!(ra.floor(), ra.version());
    /// assert_eq!(ra.log().count(), 0);
    /// ```
    pub fn floor(&self) -> &VClock {
        &self.floor
    }

    /// Counters since start.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, ReplicaId};
    /// use gossamer_sync::protocol::{Config, Replica};
    ///
    /// let a = ReplicaId::from_u128(1);
    /// let mut ra = Replica::<CausalCounter>::new(a, Config::default(), 1);
    /// for t in 0..3 {
    ///     ra.local_update(t, |c| c.inc(a, 1)).unwrap();
    /// }
    /// assert_eq!(ra.stats().applied, 3);
    /// assert_eq!(ra.stats().dropped, 0);
    /// ```
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Ops and payload bytes waiting for their dependencies.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, ReplicaId};
    /// use gossamer_sync::protocol::{Config, Output, Replica};
    /// use gossamer_sync::wire::{Message, OpRecord};
    ///
    /// # /// The ops `outputs` asks to persist.
    /// # fn persisted(outputs: Vec<Output>) -> Vec<OpRecord> {
    /// #     outputs.into_iter().flat_map(|o| if let Output::Persist(ops) = o { ops } else { vec![] }).collect()
    /// # }
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut ra = Replica::<CausalCounter>::new(a, Config::default(), 1);
    /// let mut rb = Replica::<CausalCounter>::new(b, Config::default(), 2);
    /// let first = persisted(ra.local_update(0, |c| c.inc(a, 1)).unwrap().1);
    /// let second = persisted(ra.local_update(1, |c| c.inc(a, 1)).unwrap().1);
    ///
    /// // The second op arrives first: it waits for the first.
    /// rb.handle_message(2, a, Message::Push { ops: second });
    /// let (ops, bytes) = rb.buffered();
    /// assert!(ops == 1 && bytes > 0);
    /// rb.handle_message(3, a, Message::Push { ops: first });
    /// assert_eq!(rb.buffered(), (0, 0));
    /// assert_eq!(rb.state().value(), 2);
    /// ```
    pub fn buffered(&self) -> (usize, usize) {
        (self.buffer.len(), self.buffer.bytes())
    }

    /// The largest the causal buffer has been (ops, bytes).
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, ReplicaId};
    /// use gossamer_sync::protocol::{Config, Output, Replica};
    /// use gossamer_sync::wire::{Message, OpRecord};
    ///
    /// # /// The ops `outputs` asks to persist.
    /// # fn persisted(outputs: Vec<Output>) -> Vec<OpRecord> {
    /// #     outputs.into_iter().flat_map(|o| if let Output::Persist(ops) = o { ops } else { vec![] }).collect()
    /// # }
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut ra = Replica::<CausalCounter>::new(a, Config::default(), 1);
    /// let mut rb = Replica::<CausalCounter>::new(b, Config::default(), 2);
    /// let first = persisted(ra.local_update(0, |c| c.inc(a, 1)).unwrap().1);
    /// let second = persisted(ra.local_update(1, |c| c.inc(a, 1)).unwrap().1);
    ///
    /// rb.handle_message(2, a, Message::Push { ops: second });
    /// let waiting = rb.buffered();
    /// rb.handle_message(3, a, Message::Push { ops: first });
    /// // Both delivered, the buffer is empty again; its high-water mark stays.
    /// assert_eq!(rb.buffered(), (0, 0));
    /// assert_eq!(rb.peak_buffered(), waiting);
    /// assert_eq!(rb.peak_buffered().0, 1);
    /// ```
    pub fn peak_buffered(&self) -> (usize, usize) {
        (self.buffer.peak_ops, self.buffer.peak_bytes)
    }

    /// Ops and bytes in the op log.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, ReplicaId};
    /// use gossamer_sync::protocol::{Config, Replica};
    ///
    /// let a = ReplicaId::from_u128(1);
    /// let mut ra = Replica::<CausalCounter>::new(a, Config::default(), 1);
    /// assert_eq!(ra.log_size(), (0, 0));
    /// ra.local_update(0, |c| c.inc(a, 1)).unwrap();
    /// let (ops, one) = ra.log_size();
    /// assert!(ops == 1 && one > 0);
    /// ra.local_update(1, |c| c.inc(a, 1)).unwrap();
    /// assert_eq!(ra.log_size().0, 2);
    /// assert!(ra.log_size().1 > one);
    /// ```
    pub fn log_size(&self) -> (usize, usize) {
        (self.log.len(), self.log.bytes())
    }

    /// The logged ops, in delivery order.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, ReplicaId};
    /// use gossamer_sync::protocol::{Config, Replica};
    ///
    /// let a = ReplicaId::from_u128(1);
    /// let mut ra = Replica::<CausalCounter>::new(a, Config::default(), 1);
    /// let (d1, _) = ra.local_update(0, |c| c.inc(a, 1)).unwrap();
    /// let (d2, _) = ra.local_update(5, |c| c.inc(a, 1)).unwrap();
    /// let dots: Vec<_> = ra.log().map(|rec| rec.dot).collect();
    /// assert_eq!(dots, vec![d1, d2]);
    /// assert_eq!(ra.log().last().unwrap().created_ms, 5);
    /// ```
    pub fn log(&self) -> impl Iterator<Item = &OpRecord> + '_ {
        self.log.iter()
    }

    /// The membership view.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, ReplicaId};
    /// use gossamer_sync::protocol::{Config, PeerStatus, Replica};
    ///
    /// let [a, b, c] = [1, 2, 3].map(ReplicaId::from_u128);
    /// let mut ra = Replica::<CausalCounter>::new(a, Config::default(), 1);
    /// ra.set_peer(c, PeerStatus::Suspect);
    /// ra.set_peer(b, PeerStatus::Alive);
    /// ra.set_peer(a, PeerStatus::Alive); // itself: ignored
    /// let view: Vec<_> = ra.peers().into_iter().map(|p| (p.id, p.status)).collect();
    /// assert_eq!(view, vec![(b, PeerStatus::Alive), (c, PeerStatus::Suspect)]);
    /// ```
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.peers
            .map
            .iter()
            .map(|(id, p)| PeerInfo { id: *id, status: p.status, known_vv: p.known_vv.clone() })
            .collect()
    }

    /// A session token: hand it to a client, which may later [`wait_for`](Self::wait_for)
    /// it on any replica to read its own writes.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, ReplicaId};
    /// use gossamer_sync::protocol::{Config, Output, PeerStatus, Replica};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut ra = Replica::<CausalCounter>::new(a, Config::default(), 1);
    /// let mut rb = Replica::<CausalCounter>::new(b, Config::default(), 2);
    /// ra.set_peer(b, PeerStatus::Alive);
    ///
    /// let (dot, outputs) = ra.local_update(0, |c| c.inc(a, 1)).unwrap();
    /// // The client wrote on `ra`; its token covers the write.
    /// let token = ra.token();
    /// assert!(token.contains(&dot));
    /// // On `rb`, a read with the token must wait until the write has arrived.
    /// assert!(!rb.wait_for(1, token.clone()));
    /// for out in outputs {
    ///     if let Output::Send { msg, .. } = out {
    ///         rb.handle_message(1, a, msg);
    ///     }
    /// }
    /// assert!(rb.wait_for(2, token));
    /// ```
    pub fn token(&self) -> VClock {
        self.vv.clone()
    }

    /// When the driver should next call [`handle_tick`](Self::handle_tick). A replica that has
    /// not scheduled its first anti-entropy round yet (just created or restored, and idle) is
    /// due at once (`Some(0)`): that first tick schedules the round, so an idle restarted
    /// replica still pulls what it missed without waiting for a message or a local update.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, ReplicaId};
    /// use gossamer_sync::protocol::{Config, Output, PeerStatus, Replica};
    /// use gossamer_sync::wire::Message;
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let config = Config { anti_entropy_interval_ms: 1_000, ..Config::default() };
    /// let mut ra = Replica::<CausalCounter>::new(a, config, 1);
    /// ra.set_peer(b, PeerStatus::Alive);
    /// assert_eq!(ra.next_deadline(), Some(0));
    /// // The first tick schedules the first round, within one interval.
    /// ra.handle_tick(0);
    /// let due = ra.next_deadline().unwrap();
    /// assert!(due <= 1_000);
    /// // Ticked at its deadline, the replica starts an anti-entropy round with a peer.
    /// let outputs = ra.handle_tick(due);
    /// assert!(matches!(&outputs[..], [Output::Send { to, msg: Message::Digest { .. } }] if *to == b));
    /// assert!(ra.next_deadline().unwrap() > due);
    /// ```
    pub fn next_deadline(&self) -> Option<u64> {
        Some(self.next_anti_entropy.unwrap_or(0))
    }

    // ---- membership -------------------------------------------------------------------------

    /// Adds a peer or updates its status (the failure detector feeds this).
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, ReplicaId};
    /// use gossamer_sync::protocol::{Config, Output, PeerStatus, Replica};
    ///
    /// # /// Who `outputs` sends to.
    /// # fn targets(outputs: &[Output]) -> Vec<ReplicaId> {
    /// #     outputs.iter().filter_map(|o| if let Output::Send { to, .. } = o { Some(*to) } else { None }).collect()
    /// # }
    /// let a = ReplicaId::from_u128(1);
    /// let mut ra = Replica::<CausalCounter>::new(a, Config::default(), 1);
    /// let b = ReplicaId::from_u128(2);
    /// ra.set_peer(b, PeerStatus::Alive);
    /// let (_, outputs) = ra.local_update(0, |c| c.inc(a, 1)).unwrap();
    /// assert_eq!(targets(&outputs), vec![b]);
    ///
    /// // The failure detector finds `b` unreachable: it is left out until it is alive again.
    /// ra.set_peer(b, PeerStatus::Down);
    /// assert_eq!(ra.peers()[0].status, PeerStatus::Down);
    /// let (_, outputs) = ra.local_update(1, |c| c.inc(a, 1)).unwrap();
    /// assert!(targets(&outputs).is_empty());
    /// ```
    pub fn set_peer(&mut self, id: ReplicaId, status: PeerStatus) {
        if id != self.id {
            let before = self.peers.map.get(&id).map(|p| p.status);
            self.peers.upsert(id, status);
            // Suspect and alive peers are both in the trees; only going down (or coming back)
            // reshapes them.
            if before.is_none_or(|b| (b == PeerStatus::Down) != (status == PeerStatus::Down)) {
                self.view_dirty = true;
            }
        }
    }

    /// Forgets a peer for good: it no longer holds back compaction.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, ReplicaId};
    /// use gossamer_sync::protocol::{Config, PeerStatus, Replica};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let config = Config { compaction_threshold: 0, ..Config::default() };
    /// let mut ra = Replica::<CausalCounter>::new(a, config, 1);
    /// ra.set_peer(b, PeerStatus::Alive);
    /// ra.local_update(0, |c| c.inc(a, 1)).unwrap();
    /// // `b` never said what it has, so nothing is known to be stable: no compaction.
    /// ra.handle_tick(1);
    /// assert!(ra.floor().is_empty());
    ///
    /// ra.remove_peer(&b);
    /// assert!(ra.peers().is_empty());
    /// ra.handle_tick(2);
    /// assert_eq!(ra.floor(), ra.version());
    /// ```
    pub fn remove_peer(&mut self, id: &ReplicaId) {
        self.peers.map.remove(id);
        self.assemblies.remove(id);
        self.view_dirty = true;
    }

    // ---- sessions ---------------------------------------------------------------------------

    /// Session guarantee: true when this replica has delivered everything in `token`.
    /// Otherwise the read waits, and an [`Event::SessionReady`] with `id` is output once it
    /// can proceed.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, ReplicaId, VClock};
    /// use gossamer_sync::protocol::{Config, Event, Output, PeerStatus, Replica};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut ra = Replica::<CausalCounter>::new(a, Config::default(), 1);
    /// let mut rb = Replica::<CausalCounter>::new(b, Config::default(), 2);
    /// ra.set_peer(b, PeerStatus::Alive);
    /// assert!(rb.wait_for(1, VClock::new()), "the empty token is always satisfied");
    ///
    /// let (_, outputs) = ra.local_update(0, |c| c.inc(a, 1)).unwrap();
    /// assert!(!rb.wait_for(2, ra.token()), "the read waits");
    /// let mut received = Vec::new();
    /// for out in outputs {
    ///     if let Output::Send { msg, .. } = out {
    ///         received.extend(rb.handle_message(1, a, msg));
    ///     }
    /// }
    /// assert!(received.contains(&Output::Event(Event::SessionReady { id: 2 })));
    /// ```
    pub fn wait_for(&mut self, id: u64, token: VClock) -> bool {
        if self.vv.dominates(&token) {
            true
        } else {
            self.sessions.push((id, token));
            false
        }
    }

    // ---- inputs -----------------------------------------------------------------------------

    /// Applies a local update: `f` mutates the state and returns the CRDT op it made, which
    /// becomes a logged op with a fresh dot, pushed down our push tree.
    ///
    /// The driver acknowledges the write once the returned [`Output::Persist`] is durable.
    ///
    /// # Errors
    /// [`ProtocolError::Encode`] when the op cannot be encoded. The op's type must always
    /// encode: a failure here means the local state has changed but the op is not replicated.
    /// [`ProtocolError::DotsExhausted`] (state unchanged) when a peer's forged input claimed
    /// our last dot.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, Dot, ReplicaId};
    /// use gossamer_sync::protocol::{Config, Event, Output, PeerStatus, Replica};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut ra = Replica::<CausalCounter>::new(a, Config::default(), 1);
    /// ra.set_peer(b, PeerStatus::Alive);
    ///
    /// let (dot, outputs) = ra.local_update(0, |c| c.inc(a, 3))?;
    /// assert_eq!(dot, Dot::new(a, 1));
    /// assert_eq!(ra.state().value(), 3);
    /// // Applied, then persisted, then pushed: the op is durable before anyone hears of it.
    /// assert!(matches!(
    ///     &outputs[..],
    ///     [Output::Event(Event::Applied { .. }), Output::Persist(ops), Output::Send { to, .. }]
    ///         if ops[0].dot == dot && *to == b
    /// ));
    /// # Ok::<(), gossamer_sync::protocol::ProtocolError>(())
    /// ```
    pub fn local_update<F>(&mut self, now: u64, f: F) -> Result<(Dot, Vec<Output>), ProtocolError>
    where
        F: FnOnce(&mut T) -> T::Op,
    {
        match self.try_local_update(now, |t| Ok::<_, std::convert::Infallible>(f(t)))? {
            Ok(done) => Ok(done),
            Err(never) => match never {},
        }
    }

    /// A local update that may be refused: `f` returns the op it made, or an error — and then
    /// it MUST have left the state unchanged; no op is made and the error is handed back.
    ///
    /// # Errors
    /// As [`local_update`](Self::local_update), and [`ProtocolError::DotsExhausted`] when
    /// our dot counter is at `u64::MAX`; the inner `Err` is `f`'s.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, ReplicaId};
    /// use gossamer_sync::protocol::{Config, Replica};
    ///
    /// let a = ReplicaId::from_u128(1);
    /// let mut stock = Replica::<CausalCounter>::new(a, Config::default(), 1);
    /// // Take one item out of stock, unless there is none.
    /// let take = |c: &mut CausalCounter| if c.value() > 0 { Ok(c.dec(a, 1)) } else { Err("out of stock") };
    ///
    /// let refused = stock.try_local_update(0, take)?;
    /// assert!(matches!(refused, Err("out of stock")));
    /// assert!(stock.version().is_empty(), "no op was made");
    ///
    /// stock.local_update(1, |c| c.inc(a, 1))?;
    /// let (dot, _) = stock.try_local_update(2, take)?.expect("in stock");
    /// assert_eq!((dot.counter, stock.state().value()), (2, 0));
    /// # Ok::<(), gossamer_sync::protocol::ProtocolError>(())
    /// ```
    pub fn try_local_update<F, E>(&mut self, now: u64, f: F) -> Result<Result<(Dot, Vec<Output>), E>, ProtocolError>
    where
        F: FnOnce(&mut T) -> Result<T::Op, E>,
    {
        self.now = now;
        // A peer may have claimed our dot counter up to u64::MAX (a forged op or snapshot):
        // there is no next dot, so refuse before the state changes instead of overflowing.
        let Some(next) = self.vv.get(&self.id).checked_add(1) else {
            return Err(ProtocolError::DotsExhausted { replica: self.id.to_string() });
        };
        let op = match f(&mut self.state) {
            Ok(op) => op,
            Err(e) => return Ok(Err(e)),
        };
        let payload = Bytes::from(codec::to_vec(&op)?);
        let dot = Dot::new(self.id, next);
        let deps: Vec<Dot> =
            self.frontier.iter().filter(|(r, _)| **r != self.id).map(|(r, c)| Dot::new(*r, *c)).collect();
        // Our new op depends on everything we delivered: it alone is the frontier now.
        self.frontier.clear();
        self.frontier.insert(self.id, dot.counter);
        let rec = OpRecord { dot, deps, created_ms: now, payload };
        self.vv.observe(dot);
        self.vv_news = true;
        self.stats.applied += 1;
        self.out.push(Output::Event(Event::Applied { dot }));
        if record_size(&rec) > self.config.max_frame_bytes / 2 {
            // Too large for any message: it travels inside a snapshot instead. Raising our
            // floor past it makes every peer that lacks it get one (in frame-sized chunks).
            tracing::warn!(size = rec.payload.len(), "op larger than half a frame: replicated by snapshot");
            self.floor.observe(dot);
            self.log.truncate(&self.floor);
            self.persist_snapshot();
        } else {
            self.log.push(rec.clone(), now);
            self.unpersisted.push(rec.clone());
            self.forward(&rec, None, false);
        }
        self.schedule(now);
        Ok(Ok((dot, self.finish())))
    }

    /// Handles a message from peer `from`.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, ReplicaId};
    /// use gossamer_sync::protocol::{Config, Output, PeerStatus, Replica};
    /// use gossamer_sync::wire::Message;
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut ra = Replica::<CausalCounter>::new(a, Config::default(), 1);
    /// let mut rb = Replica::<CausalCounter>::new(b, Config::default(), 2);
    /// // `ra` writes before it knows of `rb`: nothing is pushed.
    /// ra.local_update(0, |c| c.inc(a, 4)).unwrap();
    ///
    /// // Later, `rb` asks `ra` for what it lacks (anti-entropy sends only ops older than the grace).
    /// rb.set_peer(a, PeerStatus::Alive);
    /// let now = 2 * Config::default().push_grace_ms;
    /// for out in rb.sync_now(now) {
    ///     let Output::Send { msg, .. } = out else { continue };
    ///     assert!(matches!(msg, Message::Digest { .. }));
    ///     for answer in ra.handle_message(now, b, msg) {
    ///         if let Output::Send { msg: Message::Ops { ops, more }, .. } = answer {
    ///             assert!(ops.len() == 1 && !more);
    ///             rb.handle_message(now, a, Message::Ops { ops, more });
    ///         }
    ///     }
    /// }
    /// assert_eq!(rb.state().value(), 4);
    /// // A message from an unknown peer adds it to the membership view.
    /// assert_eq!(ra.peers()[0].id, b);
    /// ```
    pub fn handle_message(&mut self, now: u64, from: ReplicaId, msg: Message) -> Vec<Output> {
        if from == self.id {
            return Vec::new();
        }
        self.now = now;
        if !self.peers.map.contains_key(&from) {
            self.peers.upsert(from, PeerStatus::Alive);
            self.view_dirty = true;
        }
        self.schedule(now);
        match msg {
            Message::Push { ops } => {
                for rec in ops {
                    self.receive(rec, from, true);
                }
            }
            Message::Digest { hash, vv, reply } => self.on_digest(now, from, hash, vv.map(|v| v.0), reply),
            Message::Ops { ops, more } => {
                let before = self.stats.applied;
                let grace = self.grace();
                let stale = ops.iter().any(|r| now.saturating_sub(r.created_ms) > grace);
                for rec in ops {
                    self.receive(rec, from, false);
                }
                let progressed = self.stats.applied > before;
                if more && progressed {
                    self.send_digest(from, true, false);
                } else if progressed && stale && self.chain_budget > 0 {
                    // We just learned ops the trees failed to spread (a partition healed, a
                    // replica came back): others likely miss them too. Pass the news on now,
                    // by an exchange with another random peer, instead of at our next round.
                    self.chain_budget -= 1;
                    let peers: Vec<ReplicaId> = self.peers.reachable().filter(|p| *p != from).collect();
                    if let Some(&peer) = peers.choose(&mut self.rng) {
                        self.send_digest(peer, true, true);
                    }
                }
            }
            Message::Snapshot { chunk } => self.on_snapshot_chunk(from, chunk),
        }
        self.finish()
    }

    /// Periodic work: anti-entropy when due, tree upkeep, compaction.
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, ReplicaId};
    /// use gossamer_sync::protocol::{Config, Output, PeerStatus, Replica};
    ///
    /// # use std::collections::VecDeque;
    /// # /// Hands every message in `outputs`, sent by `from`, to its addressee in `rs`, then what
    /// # /// that sends in turn, until no message is left.
    /// # fn run(rs: &mut [&mut Replica<CausalCounter>], now: u64, from: ReplicaId, outputs: Vec<Output>) {
    /// #     let mut queue: VecDeque<(ReplicaId, Output)> = outputs.into_iter().map(|o| (from, o)).collect();
    /// #     while let Some((from, out)) = queue.pop_front() {
    /// #         if let Output::Send { to, msg } = out {
    /// #             let r = rs.iter_mut().find(|r| r.id() == to).expect("a known replica");
    /// #             queue.extend(r.handle_message(now, from, msg).into_iter().map(|o| (to, o)));
    /// #         }
    /// #     }
    /// # }
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut ra = Replica::<CausalCounter>::new(a, Config::default(), 1);
    /// let mut rb = Replica::<CausalCounter>::new(b, Config::default(), 2);
    /// // `ra` writes before it knows of `rb`, so the push tree does not bring the op.
    /// ra.local_update(0, |c| c.inc(a, 2)).unwrap();
    /// ra.set_peer(b, PeerStatus::Alive);
    /// rb.set_peer(a, PeerStatus::Alive);
    ///
    /// // The driver ticks each replica at its deadline; the exchange repairs the gap.
    /// let now = 2 * Config::default().anti_entropy_interval_ms;
    /// assert!(ra.next_deadline().unwrap() <= now);
    /// let outputs = ra.handle_tick(now);
    /// run(&mut [&mut ra, &mut rb], now, a, outputs);
    /// assert_eq!(ra.stats().anti_entropy_rounds, 1);
    /// assert_eq!(rb.state().value(), 2);
    /// ```
    pub fn handle_tick(&mut self, now: u64) -> Vec<Output> {
        self.now = now;
        match self.next_anti_entropy {
            Some(t) if now >= t => {
                self.next_anti_entropy = Some(now + self.jittered_interval());
                self.chain_budget = CHAIN_BUDGET;
                let peers: Vec<ReplicaId> = self.peers.reachable().collect();
                if let Some(&peer) = peers.choose(&mut self.rng) {
                    self.stats.anti_entropy_rounds += 1;
                    self.send_digest(peer, false, true);
                }
            }
            None => self.schedule(now),
            _ => {}
        }
        for dot in self.buffer.expire(now, self.config.max_buffered_age_ms) {
            self.drop_op(dot, "waited too long for its dependencies");
        }
        self.maybe_compact();
        self.finish()
    }

    /// Starts an anti-entropy exchange with every reachable peer now (the node's `sync_now`).
    ///
    /// ```
    /// use gossamer_crdt::{CausalCounter, ReplicaId};
    /// use gossamer_sync::protocol::{Config, Output, PeerStatus, Replica};
    /// use gossamer_sync::wire::Message;
    ///
    /// # use std::collections::VecDeque;
    /// # /// Hands every message in `outputs`, sent by `from`, to its addressee in `rs`, then what
    /// # /// that sends in turn, until no message is left.
    /// # fn run(rs: &mut [&mut Replica<CausalCounter>], now: u64, from: ReplicaId, outputs: Vec<Output>) {
    /// #     let mut queue: VecDeque<(ReplicaId, Output)> = outputs.into_iter().map(|o| (from, o)).collect();
    /// #     while let Some((from, out)) = queue.pop_front() {
    /// #         if let Output::Send { to, msg } = out {
    /// #             let r = rs.iter_mut().find(|r| r.id() == to).expect("a known replica");
    /// #             queue.extend(r.handle_message(now, from, msg).into_iter().map(|o| (to, o)));
    /// #         }
    /// #     }
    /// # }
    /// let [a, b, c] = [1, 2, 3].map(ReplicaId::from_u128);
    /// let [mut ra, mut rb, mut rc] = [a, b, c].map(|id| Replica::<CausalCounter>::new(id, Config::default(), 1));
    /// // `rb` and `rc` write while they know no one.
    /// rb.local_update(0, |n| n.inc(b, 1)).unwrap();
    /// rc.local_update(0, |n| n.inc(c, 2)).unwrap();
    /// ra.set_peer(b, PeerStatus::Alive);
    /// ra.set_peer(c, PeerStatus::Alive);
    ///
    /// let now = 2 * Config::default().push_grace_ms;
    /// let outputs = ra.sync_now(now);
    /// let digests_to: Vec<ReplicaId> = outputs
    ///     .iter()
    ///     .filter_map(|o| match o {
    ///         Output::Send { to, msg: Message::Digest { .. } } => Some(*to),
    ///         _ => None,
    ///     })
    ///     .collect();
    /// assert_eq!(digests_to, vec![b, c]);
    /// run(&mut [&mut ra, &mut rb, &mut rc], now, a, outputs);
    /// assert_eq!(ra.state().value(), 3);
    /// ```
    pub fn sync_now(&mut self, now: u64) -> Vec<Output> {
        self.now = now;
        let peers: Vec<ReplicaId> = self.peers.reachable().collect();
        for peer in peers {
            self.send_digest(peer, true, true);
        }
        self.finish()
    }

    // ---- delivery ---------------------------------------------------------------------------

    /// Takes in one op from a peer: drops duplicates, passes it on down its tree, then
    /// delivers it or buffers it until its dependencies are delivered.
    fn receive(&mut self, rec: OpRecord, from: ReplicaId, pushed: bool) {
        if rec.dot.counter == 0 {
            self.misbehaved(from, "op with counter 0".into());
            return;
        }
        if self.vv.contains(&rec.dot) || self.buffer.contains(&rec.dot) {
            if pushed {
                self.stats.duplicates_pushed += 1;
            } else {
                self.stats.duplicates_pulled += 1;
            }
            return;
        }
        if rec.deps.len() > self.config.max_deps {
            self.drop_op(rec.dot, "too many dependencies");
            return;
        }
        self.stats.received_new += 1;
        if !pushed {
            self.stats.pulled_new += 1;
        }
        if pushed {
            if self.push_delays.len() == PUSH_DELAY_SAMPLES {
                self.push_delays.pop_front();
            }
            self.push_delays.push_back(self.now.saturating_sub(rec.created_ms));
            self.forward(&rec, Some(from), false);
        } else if self.now.saturating_sub(rec.created_ms) > self.grace() {
            // Pulled, and older than the tree needs: the tree failed to bring it (a lost
            // message, a replica that was down, a healed partition). Pass it on down the
            // origin's tree to children that, as far as we know, miss it too — after a
            // partition heals, they all do; a replica catching up alone floods nobody.
            self.forward(&rec, Some(from), true);
        }
        match missing(&rec, &self.vv) {
            None => self.deliver(rec),
            Some(need) => {
                let dot = rec.dot;
                let bounds = Bounds { ops: self.config.max_buffered_ops, bytes: self.config.max_buffered_bytes };
                let mut evicted = Vec::new();
                let kept = self.buffer.insert(rec, from, need, self.now, bounds, &mut evicted);
                for d in evicted {
                    self.drop_op(d, "causal buffer full: made room for a peer with a smaller share");
                }
                if !kept {
                    self.drop_op(dot, "causal buffer full");
                }
            }
        }
    }

    /// Applies a causally ready op, then every buffered op that it makes ready.
    fn deliver(&mut self, first: OpRecord) {
        let mut ready = VecDeque::from([first]);
        while let Some(rec) = ready.pop_front() {
            if self.vv.contains(&rec.dot) {
                continue;
            }
            let op: T::Op = match codec::from_slice(&rec.payload) {
                Ok(op) => op,
                Err(_) => {
                    self.drop_op(rec.dot, "undecodable op");
                    continue;
                }
            };
            self.state.apply(op);
            let dot = rec.dot;
            self.vv.observe(dot);
            self.vv_news = true;
            // The op is now maximal; what it depends on no longer is.
            // (Everything of `d.replica` up to `d.counter` is in its past, so any frontier
            // entry of that replica at or below it is dominated too.)
            for d in &rec.deps {
                if self.frontier.get(&d.replica).is_some_and(|&c| c <= d.counter) {
                    self.frontier.remove(&d.replica);
                }
            }
            self.frontier.insert(dot.replica, dot.counter);
            self.stats.applied += 1;
            self.out.push(Output::Event(Event::Applied { dot }));
            self.log.push(rec.clone(), self.now);
            self.unpersisted.push(rec);
            for (woken, from) in self.buffer.wake(dot.replica, dot.counter) {
                match missing(&woken, &self.vv) {
                    None => ready.push_back(woken),
                    Some(need) => self.buffer.requeue(woken, from, need, self.now),
                }
            }
        }
    }

    fn drop_op(&mut self, dot: Dot, reason: &'static str) {
        self.stats.dropped += 1;
        tracing::debug!(?dot, reason, "dropped op");
        self.out.push(Output::Event(Event::Dropped { dot, reason }));
    }

    fn misbehaved(&mut self, peer: ReplicaId, reason: String) {
        tracing::warn!(?peer, %reason, "peer misbehaved");
        self.out.push(Output::Event(Event::PeerMisbehaved { peer, reason }));
    }

    // ---- push trees -------------------------------------------------------------------------

    /// Our children in `origin`'s push tree: the tree is a k-ary heap laid over the sorted
    /// membership view, rotated so that the origin is its root. Every replica computes it
    /// from its own view; while views agree, each op reaches every replica exactly once in
    /// ⌈log_k N⌉ hops. Where views disagree (membership churn), an op may arrive twice or
    /// not at all — anti-entropy repairs the gaps.
    fn children(&mut self, origin: ReplicaId) -> Vec<ReplicaId> {
        if self.view_dirty {
            self.tree_view = self.peers.reachable().chain(std::iter::once(self.id)).collect();
            self.tree_view.sort_unstable();
            self.view_dirty = false;
        }
        let k = self.config.tree_fanout.max(1);
        let view = &self.tree_view;
        // An origin outside our view (down, or not yet known) takes the place it would have.
        let (root, virtual_root) = match view.binary_search(&origin) {
            Ok(i) => (i, false),
            Err(i) => (i, true),
        };
        let n = view.len() + usize::from(virtual_root);
        let position = |i: usize| if virtual_root && i >= root { i + 1 } else { i };
        let Ok(me) = view.binary_search(&self.id) else { return Vec::new() };
        let rank = (position(me) + n - root) % n;
        let mut out = Vec::with_capacity(k.min(n));
        for j in 1..=k {
            let Some(child_rank) = rank.checked_mul(k).and_then(|r| r.checked_add(j)) else { break };
            if child_rank >= n {
                break;
            }
            let p = (root + child_rank) % n;
            // Map the position back to the view, past the virtual root.
            let i = if virtual_root && p > root { p - 1 } else { p };
            out.push(view[i]);
        }
        out
    }

    /// Queues `rec` for our children in its origin's tree, except the peer it came from and
    /// peers known to have it. With `only_known`, only to children whose version vector we
    /// know and which lack it.
    fn forward(&mut self, rec: &OpRecord, except: Option<ReplicaId>, only_known: bool) {
        for child in self.children(rec.dot.replica) {
            if Some(child) == except || child == rec.dot.replica {
                continue;
            }
            let wanted = match self.peers.map.get(&child).and_then(|p| p.known_vv.as_ref()) {
                Some(v) => !v.contains(&rec.dot),
                None => !only_known,
            };
            if wanted {
                self.push_queue.entry(child).or_default().push(rec.clone());
            }
        }
    }

    // ---- anti-entropy -----------------------------------------------------------------------

    /// How old an op must be before anti-entropy sends it: twice the time the push tree has
    /// lately needed (the 90th percentile of recent push delays — repairs pushed down a tree
    /// after a pull carry old ops and would skew a maximum), at least `push_grace_ms`, at most
    /// ten anti-entropy intervals.
    fn grace(&self) -> u64 {
        let mut d: Vec<u64> = self.push_delays.iter().copied().collect();
        let tree = if d.is_empty() {
            0
        } else {
            let i = (d.len() * 9 / 10).min(d.len() - 1);
            2 * *d.select_nth_unstable(i).1
        };
        let cap = self.config.anti_entropy_interval_ms.saturating_mul(10).max(self.config.push_grace_ms);
        tree.clamp(self.config.push_grace_ms, cap)
    }

    fn jittered_interval(&mut self) -> u64 {
        let base = self.config.anti_entropy_interval_ms.max(1);
        // ±10% so replicas do not fall into lockstep.
        base - base / 10 + self.rng.random_range(0..=base / 5)
    }

    fn schedule(&mut self, now: u64) {
        if self.next_anti_entropy.is_none() {
            let first = self.rng.random_range(0..=self.config.anti_entropy_interval_ms);
            self.next_anti_entropy = Some(now + first);
        }
    }

    /// Sends our digest: the whole version vector when it has news (or `full`), else its
    /// hash only.
    /// The hash of our version vector's wire form, cached until the vector changes (with a
    /// thousand replicas, encoding and hashing it for every digest would dominate).
    fn vv_hash(&mut self) -> u64 {
        let total = self.stats.applied + self.stats.snapshots_merged;
        match self.vv_hash_cache {
            Some((at, h)) if at == total => h,
            _ => {
                let h = fnv1a(&CompactVv::encode(&self.vv));
                self.vv_hash_cache = Some((total, h));
                h
            }
        }
    }

    fn send_digest(&mut self, to: ReplicaId, full: bool, reply: bool) {
        let hash = self.vv_hash();
        let whole = full || self.vv_news;
        if whole {
            self.vv_news = false;
        }
        let vv = whole.then(|| CompactVv(self.vv.clone()));
        self.send(to, Message::Digest { hash, vv, reply });
    }

    fn on_digest(&mut self, now: u64, from: ReplicaId, hash: u64, vv: Option<VClock>, reply: bool) {
        if let Some(v) = &vv
            && v.len() > self.config.max_vv_entries
        {
            self.misbehaved(from, format!("version vector of {} entries", v.len()));
            return;
        }
        let ours = self.vv_hash();
        if hash == ours {
            if let Some(p) = self.peers.map.get_mut(&from) {
                p.known_vv = Some(self.vv.clone());
            }
            return;
        }
        let Some(theirs) = vv else {
            // They only sent a hash, and it differs: show them ours so they can serve us.
            self.send_digest(from, true, true);
            return;
        };
        let (ahead, we_lack) = compare(&self.vv, &theirs);
        self.serve(now, from, &theirs, &ahead);
        if let Some(p) = self.peers.map.get_mut(&from) {
            p.known_vv = Some(theirs);
        }
        if reply && we_lack {
            self.send_digest(from, true, false);
        }
    }

    /// Sends `to` the ops it lacks (`ahead`: the origins where we have more, with its
    /// counters), or a snapshot when some are below our floor.
    fn serve(&mut self, now: u64, to: ReplicaId, theirs: &VClock, ahead: &[(ReplicaId, u64)]) {
        if ahead.iter().any(|(r, c)| *c < self.floor.get(r)) {
            self.send_snapshot(now, to);
            return;
        }
        if self.snapshot_is_smaller(ahead) {
            self.send_snapshot(now, to);
            return;
        }
        let recent_after = now.saturating_sub(self.grace());
        let (ops, more) = self.log.missing(theirs, ahead, self.config.max_batch_bytes, recent_after);
        if !ops.is_empty() {
            self.stats.ops_pulled += ops.len() as u64;
            self.send(to, Message::Ops { ops, more });
        }
    }

    /// Whether a peer that lacks `ahead` is better served by a snapshot: it lacks many ops
    /// and, at the log's average op size, they would take more bytes than the state. (A
    /// fresh replica joining an OR-Set of 100,000 adds: 9 MB of ops against a 1.7 MB state.)
    /// The state's size is re-measured only after it grew by an eighth in ops.
    fn snapshot_is_smaller(&mut self, ahead: &[(ReplicaId, u64)]) -> bool {
        let missing: u64 = ahead.iter().map(|(r, c)| self.vv.get(r).saturating_sub(*c)).sum();
        let (log_ops, log_bytes) = (self.log.len() as u64, self.log.bytes() as u64);
        if missing < SNAPSHOT_MIN_MISSING_OPS || log_ops == 0 {
            return false;
        }
        let ops_bytes = missing.saturating_mul(log_bytes / log_ops);
        let total = self.stats.applied + self.stats.snapshots_merged;
        let state_bytes = match self.state_size_cache {
            Some((at, size)) if total.saturating_sub(at) <= (at / 8).max(SNAPSHOT_MIN_MISSING_OPS) => size,
            _ => match codec::to_vec(&self.state) {
                Ok(s) => {
                    self.state_size_cache = Some((total, s.len()));
                    s.len()
                }
                Err(_) => return false,
            },
        };
        (state_bytes as u64) < ops_bytes
    }

    // ---- snapshots --------------------------------------------------------------------------

    fn send_snapshot(&mut self, now: u64, to: ReplicaId) {
        let recent = self.config.anti_entropy_interval_ms.saturating_mul(4);
        if let Some(p) = self.peers.map.get(&to)
            && p.snapshot_sent_at.is_some_and(|t| now < t.saturating_add(recent))
        {
            return;
        }
        let state = match codec::to_vec(&self.state) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(%e, "cannot encode state for a snapshot");
                return;
            }
        };
        if let Some(p) = self.peers.map.get_mut(&to) {
            p.snapshot_sent_at = Some(now);
        }
        self.stats.snapshots_sent += 1;
        self.next_snapshot_id = self.next_snapshot_id.wrapping_add(1);
        let id = self.next_snapshot_id;
        let chunk = self.config.snapshot_chunk_bytes.max(1);
        let state = Bytes::from(state);
        let n = state.len().div_ceil(chunk).max(1);
        for i in 0..n {
            let data = state.slice(i * chunk..((i + 1) * chunk).min(state.len()));
            let vv = (i == 0).then(|| CompactVv(self.vv.clone()));
            let last = i + 1 == n;
            self.send(to, Message::Snapshot { chunk: SnapshotChunk { id, index: i as u32, last, vv, data } });
        }
    }

    fn on_snapshot_chunk(&mut self, from: ReplicaId, chunk: SnapshotChunk) {
        if chunk.index == 0 {
            let Some(vv) = chunk.vv else {
                self.misbehaved(from, "snapshot without a version vector".into());
                return;
            };
            if vv.0.len() > self.config.max_vv_entries {
                self.misbehaved(from, format!("snapshot version vector of {} entries", vv.0.len()));
                return;
            }
            self.assemblies.insert(from, Assembly { id: chunk.id, next: 0, vv: vv.0, data: Vec::new() });
        }
        // What the other peers' snapshots hold: O(assemblies), at most one per peer.
        let others: usize = self.assemblies.iter().filter(|(p, _)| **p != from).map(|(_, a)| a.data.len()).sum();
        let Some(a) = self.assemblies.get_mut(&from) else { return };
        if a.id != chunk.id || a.next != chunk.index {
            self.assemblies.remove(&from);
            return;
        }
        let size = a.data.len() + chunk.data.len();
        if size > self.config.max_snapshot_bytes {
            self.assemblies.remove(&from);
            self.misbehaved(from, "snapshot larger than the configured maximum".into());
            return;
        }
        if others.saturating_add(size) > self.config.max_assembling_bytes {
            self.assemblies.remove(&from);
            self.stats.snapshots_refused += 1;
            tracing::debug!(?from, others, size, "snapshot dropped: the assembly budget of all peers is spent");
            return;
        }
        if a.data.capacity() < size {
            // Double as `Vec` would, but never past the largest snapshot accepted.
            let want = size.max(a.data.capacity().saturating_mul(2)).min(self.config.max_snapshot_bytes);
            a.data.reserve_exact(want - a.data.len());
        }
        a.data.extend_from_slice(&chunk.data);
        a.next += 1;
        if !chunk.last {
            return;
        }
        let Some(a) = self.assemblies.remove(&from) else { return };
        match codec::from_slice::<T>(&a.data) {
            Ok(state) => self.merge_snapshot(from, state, a.vv),
            Err(e) => self.misbehaved(from, format!("undecodable snapshot: {e}")),
        }
    }

    fn merge_snapshot(&mut self, from: ReplicaId, state: T, snap_vv: VClock) {
        self.state.merge(&state);
        let old = self.vv.clone();
        self.vv.merge(&snap_vv);
        for (r, c) in snap_vv.iter() {
            if c > old.get(&r) {
                // Our log cannot serve (old, c] of r: it never saw those ops one by one.
                self.floor.observe(Dot::new(r, c));
                self.frontier.insert(r, self.vv.get(&r));
            }
        }
        self.log.truncate(&self.floor);
        self.vv_news = true;
        self.stats.snapshots_merged += 1;
        self.out.push(Output::Event(Event::SnapshotMerged { from, vv: snap_vv }));
        for (rec, sender) in self.buffer.drain() {
            if self.vv.contains(&rec.dot) {
                continue;
            }
            match missing(&rec, &self.vv) {
                None => self.deliver(rec),
                Some(need) => self.buffer.requeue(rec, sender, need, self.now),
            }
        }
        self.persist_snapshot();
    }

    fn persist_snapshot(&mut self) {
        match codec::to_vec(&self.state) {
            Ok(state) => {
                self.flush_persist();
                self.out.push(Output::PersistSnapshot {
                    vv: self.vv.clone(),
                    floor: self.floor.clone(),
                    state: Bytes::from(state),
                });
            }
            Err(e) => tracing::error!(%e, "cannot encode state for a snapshot"),
        }
    }

    /// Compacts the log at causal stability: ops every known replica has delivered.
    fn maybe_compact(&mut self) {
        if self.log.len() <= self.config.compaction_threshold {
            return;
        }
        let mut stable = self.vv.clone();
        for p in self.peers.map.values() {
            match &p.known_vv {
                Some(v) => stable.meet(v),
                None => return,
            }
        }
        if self.floor.dominates(&stable) {
            return;
        }
        self.floor.merge(&stable);
        self.log.truncate(&self.floor);
        self.persist_snapshot();
    }

    // ---- output assembly --------------------------------------------------------------------

    fn flush_persist(&mut self) {
        if !self.unpersisted.is_empty() {
            self.out.push(Output::Persist(std::mem::take(&mut self.unpersisted)));
        }
    }

    /// Queues a message; anything delivered before it is persisted first.
    fn send(&mut self, to: ReplicaId, msg: Message) {
        self.flush_persist();
        self.out.push(Output::Send { to, msg });
    }

    fn finish(&mut self) -> Vec<Output> {
        self.flush_persist();
        let mut queued: Vec<(ReplicaId, Vec<OpRecord>)> = self.push_queue.drain().collect();
        queued.sort_by_key(|(id, _)| *id);
        for (to, ops) in queued {
            let mut batch = Vec::new();
            let mut size = 0;
            for rec in ops {
                let s = record_size(&rec);
                if !batch.is_empty() && size + s > self.config.max_batch_bytes {
                    self.stats.ops_pushed += batch.len() as u64;
                    self.send(to, Message::Push { ops: std::mem::take(&mut batch) });
                    size = 0;
                }
                size += s;
                batch.push(rec);
            }
            if !batch.is_empty() {
                self.stats.ops_pushed += batch.len() as u64;
                self.send(to, Message::Push { ops: batch });
            }
        }
        if !self.sessions.is_empty() {
            let vv = &self.vv;
            let mut ready = Vec::new();
            self.sessions.retain(|(id, token)| {
                let done = vv.dominates(token);
                if done {
                    ready.push(*id);
                }
                !done
            });
            for id in ready {
                self.out.push(Output::Event(Event::SessionReady { id }));
            }
        }
        std::mem::take(&mut self.out)
    }
}
