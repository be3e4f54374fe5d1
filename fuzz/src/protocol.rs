//! `protocol_messages`: two replicas under test, three impostor peers, and a script of
//! messages, ticks and local updates.

use std::collections::VecDeque;

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use gossamer_crdt::{CausalCounter, CmRDT, CounterOp, Dot, OrMap, OrMapOp, ReplicaId, VClock};
use gossamer_sync::protocol::{Config, Event, Output, PeerStatus, Replica};
use gossamer_sync::wire::{CompactVv, Envelope, Message, OpRecord, SnapshotChunk, codec, decode, encode, fnv1a};

use super::corpus::{Emit, Writer};

type State = OrMap<u8, CausalCounter>;
type Op = <State as CmRDT>::Op;

/// The frame bound: small, so that the fuzzer's inputs reach it.
const MAX_FRAME: usize = 4096;
const MAX_BUFFERED_OPS: usize = 8;
const MAX_BUFFERED_BYTES: usize = 1024;
/// Steps one input runs at most.
const MAX_STEPS: usize = 64;
/// Ops one injected message carries at most.
const MAX_OPS: usize = 16;
/// Messages the replicas sent that impostors may replay.
const REPLAYABLE: usize = 64;

/// Tight bounds, so that batching, buffering, compaction and chunking all happen in a few
/// steps; consistent ones (a version vector of every id in play fits in a frame), so that a
/// message over the frame is a bug and not a misconfiguration.
fn config() -> Config {
    Config {
        tree_fanout: 2,
        anti_entropy_interval_ms: 100,
        push_grace_ms: 50,
        max_batch_bytes: 1024,
        max_frame_bytes: MAX_FRAME,
        max_buffered_ops: MAX_BUFFERED_OPS,
        max_buffered_bytes: MAX_BUFFERED_BYTES,
        max_buffered_age_ms: 3_000,
        max_deps: 4,
        max_vv_entries: 16,
        compaction_threshold: 6,
        snapshot_chunk_bytes: 256,
        max_snapshot_bytes: 16 << 10,
        max_assembling_bytes: 24 << 10,
    }
}

/// Ids in play: 1 and 2 are the replicas under test, 3 to 5 the impostors, 6 to 8 origins
/// that only appear in ops.
fn id(b: u8) -> ReplicaId {
    ReplicaId::from_u128(u128::from(b % 8) + 1)
}

const IMPOSTORS: u8 = 3;

fn impostor_index(b: u8) -> usize {
    usize::from(b % IMPOSTORS)
}

/// A counter: small (plausible) or any (implausible).
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum Counter {
    Small(u8),
    Any(u64),
}

impl Counter {
    fn get(self) -> u64 {
        match self {
            Counter::Small(n) => u64::from(n % 16),
            Counter::Any(n) => n,
        }
    }
}

fn dots(entries: &[(u8, Counter)]) -> Vec<Dot> {
    entries.iter().take(MAX_OPS).map(|&(r, c)| Dot::new(id(r), c.get())).collect()
}

fn vclock(entries: &[(u8, Counter)]) -> VClock {
    entries.iter().take(MAX_OPS).map(|&(r, c)| (id(r), c.get())).collect()
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum Created {
    Now,
    Ago(u16),
    Any(u64),
}

#[derive(Arbitrary, Debug, Clone, PartialEq)]
enum FakePayload {
    /// A well-formed `Update` op with the given dot.
    Update { key: u8, dot: (u8, Counter), delta: i8 },
    /// A well-formed `Remove` op.
    Remove { key: u8, seen: Vec<(u8, Counter)> },
    /// Bytes that are most likely no op at all.
    Garbage(Vec<u8>),
}

#[derive(Arbitrary, Debug, Clone, PartialEq)]
enum FakeOp {
    /// A fresh op by an impostor, made through its own state: a valid record.
    Fresh { peer: u8, key: u8, delta: i8, remove: bool, deps: Vec<(u8, Counter)> },
    /// One of an impostor's earlier ops again (a duplicate, or out of order).
    Resend { peer: u8, index: u8 },
    /// A record with arbitrary fields.
    Raw { origin: u8, counter: Counter, deps: Vec<(u8, Counter)>, created: Created, payload: FakePayload },
}

#[derive(Arbitrary, Debug, Clone, PartialEq)]
enum FakeVv {
    /// The impostor's own ops.
    Sender(u8),
    /// The receiver's current version vector.
    Receiver,
    Entries(Vec<(u8, Counter)>),
}

#[derive(Arbitrary, Debug, Clone, PartialEq)]
enum FakeHash {
    /// The hash of the digest's vector (or of the receiver's when there is none).
    Consistent,
    Any(u64),
}

#[derive(Arbitrary, Debug, Clone, PartialEq)]
enum FakeData {
    /// Part `part` of `parts` of an impostor's encoded state.
    State {
        peer: u8,
        part: u8,
        parts: u8,
    },
    Garbage(Vec<u8>),
}

#[derive(Arbitrary, Debug, Clone, PartialEq)]
enum FakeMessage {
    Push { ops: Vec<FakeOp> },
    Ops { ops: Vec<FakeOp>, more: bool },
    Digest { hash: FakeHash, vv: Option<FakeVv>, reply: bool },
    Snapshot { id: u8, index: u8, last: bool, vv: Option<FakeVv>, data: FakeData },
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum Fate {
    Deliver,
    Duplicate,
    Drop,
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum Status {
    Alive,
    Suspect,
    Down,
}

#[derive(Arbitrary, Debug, Clone, PartialEq)]
enum Step {
    /// A message made up by the script, from any id, to a replica under test.
    Inject {
        to: bool,
        from: u8,
        msg: FakeMessage,
    },
    /// One of the messages between the two replicas under test: delivered, twice, or lost.
    Relay {
        pick: u8,
        fate: Fate,
    },
    /// An impostor sends again a message one of the replicas sent (to anyone).
    Replay {
        pick: u8,
        to: bool,
        from: u8,
    },
    Tick {
        to: bool,
        advance_ms: u16,
    },
    Local {
        to: bool,
        key: u8,
        delta: i8,
        remove: bool,
    },
    SetPeer {
        to: bool,
        peer: u8,
        status: Status,
    },
    RemovePeer {
        to: bool,
        peer: u8,
    },
    SyncNow {
        to: bool,
    },
    WaitFor {
        to: bool,
        id: u8,
        token: Vec<(u8, Counter)>,
    },
}

/// A peer that is not a replica under test: its ops are made by a real state, so they are
/// valid, but what it sends, and to whom, is up to the script.
struct Impostor {
    id: ReplicaId,
    state: State,
    log: Vec<OpRecord>,
}

impl Impostor {
    fn vv(&self) -> VClock {
        let mut vv = VClock::new();
        vv.set(self.id, self.log.len() as u64);
        vv
    }
}

/// What the outputs of a replica have told so far.
#[derive(Default)]
struct Model {
    /// Dots of `Event::Applied` (and version vectors of merged snapshots).
    applied: VClock,
    /// Dots of `Output::Persist` records (and version vectors of snapshots).
    persisted: VClock,
    /// Sessions waiting, with their tokens.
    sessions: Vec<(u64, VClock)>,
}

struct Harness {
    now: u64,
    replicas: [Replica<State>; 2],
    models: [Model; 2],
    impostors: Vec<Impostor>,
    /// Messages between the replicas under test, in flight.
    pending: VecDeque<(usize, Message)>,
    /// Messages the replicas sent, for impostors to replay.
    sent: VecDeque<Message>,
    /// Whether the script made anything up (then the replicas may legitimately diverge).
    forged: bool,
}

/// Input layout: an [`Arbitrary`] script of up to 64 steps.
///
/// Two replicas under test (`Replica<OrMap<u8, CausalCounter>>`, tight bounds) exchange
/// messages through the script, which may deliver, duplicate or lose them; three impostors
/// send made-up `Push`/`Ops` (valid ops, duplicates, ops out of order, implausible dots and
/// dependencies, garbage payloads), `Digest` and `Snapshot` messages (valid states and
/// garbage, consistent and inconsistent vectors), or replay what the replicas sent; ticks,
/// local updates, membership changes and session waits are interleaved.
///
/// After every call: `Event::Applied` dots are, per origin, exactly the next one (no op applied
/// twice or out of order); every `Output::Persist` record's dependencies were delivered before
/// it; applied and persisted dots match the version vector; buffers stay within
/// `max_buffered_ops`/`max_buffered_bytes`; every `Output::Send` encodes to a frame within
/// `max_frame_bytes` and decodes to itself; a `SessionReady` session is covered. When the
/// script made up no op and no state, the two replicas converge once messages flow again.
pub fn protocol_messages(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut h = Harness::new();
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        let Ok(step) = Step::arbitrary(&mut u) else { break };
        h.step(step);
    }
    if !h.forged {
        h.settle();
    }
}

impl Harness {
    fn new() -> Self {
        let mut replicas = [Replica::new(id(0), config(), 1), Replica::new(id(1), config(), 2)];
        replicas[0].set_peer(id(1), PeerStatus::Alive);
        replicas[1].set_peer(id(0), PeerStatus::Alive);
        Harness {
            now: 1_000_000,
            replicas,
            models: [Model::default(), Model::default()],
            impostors: (0..IMPOSTORS)
                .map(|i| Impostor { id: id(2 + i), state: State::new(), log: Vec::new() })
                .collect(),
            pending: VecDeque::new(),
            sent: VecDeque::new(),
            forged: false,
        }
    }

    fn step(&mut self, step: Step) {
        match step {
            Step::Inject { to, from, msg } => {
                // A made-up digest can only make a replica send more, or compact sooner (and
                // then send a snapshot): the replicas still converge. Made-up ops and states
                // may conflict with the real ones.
                self.forged |= !matches!(msg, FakeMessage::Digest { .. });
                let to = usize::from(to);
                if let Some(msg) = self.make_message(to, msg) {
                    self.deliver(to, id(from), msg);
                }
            }
            Step::Relay { pick, fate } => {
                if self.pending.is_empty() {
                    return;
                }
                let i = usize::from(pick) % self.pending.len();
                let Some((to, msg)) = self.pending.remove(i) else { return };
                let from = self.replicas[1 - to].id();
                match fate {
                    Fate::Deliver => self.deliver(to, from, msg),
                    Fate::Duplicate => {
                        self.deliver(to, from, msg.clone());
                        self.deliver(to, from, msg);
                    }
                    Fate::Drop => {}
                }
            }
            Step::Replay { pick, to, from } => {
                if self.sent.is_empty() {
                    return;
                }
                let msg = self.sent[usize::from(pick) % self.sent.len()].clone();
                let from = self.impostors[impostor_index(from)].id;
                self.deliver(usize::from(to), from, msg);
            }
            Step::Tick { to, advance_ms } => {
                self.now += u64::from(advance_ms);
                let to = usize::from(to);
                let out = self.replicas[to].handle_tick(self.now);
                self.check(to, out);
            }
            Step::Local { to, key, delta, remove } => {
                let to = usize::from(to);
                let me = self.replicas[to].id();
                let result = self.replicas[to].local_update(self.now, |s| {
                    if remove { s.remove(&(key % 4)) } else { s.update(key % 4, |c| c.add(me, i64::from(delta))) }
                });
                match result {
                    Ok((_, out)) => self.check(to, out),
                    // Forged input may have claimed this replica's dots up to u64::MAX.
                    Err(_) if self.forged => {}
                    Err(e) => panic!("replica {to}: a local update failed: {e}"),
                }
            }
            Step::SetPeer { to, peer, status } => {
                let status = match status {
                    Status::Alive => PeerStatus::Alive,
                    Status::Suspect => PeerStatus::Suspect,
                    Status::Down => PeerStatus::Down,
                };
                self.replicas[usize::from(to)].set_peer(id(peer), status);
            }
            Step::RemovePeer { to, peer } => self.replicas[usize::from(to)].remove_peer(&id(peer)),
            Step::SyncNow { to } => {
                let to = usize::from(to);
                let out = self.replicas[to].sync_now(self.now);
                self.check(to, out);
            }
            Step::WaitFor { to, id: session, token } => {
                let to = usize::from(to);
                let token = vclock(&token);
                if !self.replicas[to].wait_for(u64::from(session), token.clone()) {
                    self.models[to].sessions.push((u64::from(session), token));
                }
            }
        }
    }

    // ---- making messages up -------------------------------------------------------------

    fn make_message(&mut self, to: usize, msg: FakeMessage) -> Option<Message> {
        Some(match msg {
            FakeMessage::Push { ops } => Message::Push { ops: self.make_ops(ops) },
            FakeMessage::Ops { ops, more } => Message::Ops { ops: self.make_ops(ops), more },
            FakeMessage::Digest { hash, vv, reply } => {
                let vv = vv.map(|v| self.make_vv(to, v));
                let hash = match hash {
                    FakeHash::Consistent => {
                        fnv1a(&CompactVv::encode(vv.as_ref().unwrap_or(self.replicas[to].version())))
                    }
                    FakeHash::Any(h) => h,
                };
                Message::Digest { hash, vv: vv.map(CompactVv), reply }
            }
            FakeMessage::Snapshot { id, index, last, vv, data } => {
                let data = match data {
                    FakeData::State { peer, part, parts } => {
                        let state = codec::to_vec(&self.impostors[impostor_index(peer)].state).ok()?;
                        let parts = usize::from(parts % 4) + 1;
                        let size = state.len().div_ceil(parts).max(1);
                        let start = (usize::from(part) % parts * size).min(state.len());
                        Bytes::copy_from_slice(&state[start..(start + size).min(state.len())])
                    }
                    FakeData::Garbage(bytes) => Bytes::from(bytes),
                };
                let vv = vv.map(|v| CompactVv(self.make_vv(to, v)));
                Message::Snapshot {
                    chunk: SnapshotChunk { id: u64::from(id % 4), index: u32::from(index % 4), last, vv, data },
                }
            }
        })
    }

    fn make_vv(&self, to: usize, vv: FakeVv) -> VClock {
        match vv {
            FakeVv::Sender(peer) => self.impostors[impostor_index(peer)].vv(),
            FakeVv::Receiver => self.replicas[to].version().clone(),
            FakeVv::Entries(entries) => vclock(&entries),
        }
    }

    fn make_ops(&mut self, ops: Vec<FakeOp>) -> Vec<OpRecord> {
        ops.into_iter().take(MAX_OPS).filter_map(|op| self.make_op(op)).collect()
    }

    fn make_op(&mut self, op: FakeOp) -> Option<OpRecord> {
        match op {
            FakeOp::Fresh { peer, key, delta, remove, deps } => {
                let imp = &mut self.impostors[impostor_index(peer)];
                let me = imp.id;
                let op = if remove {
                    imp.state.remove(&(key % 4))
                } else {
                    imp.state.update(key % 4, |c| c.add(me, i64::from(delta)))
                };
                let rec = OpRecord {
                    dot: Dot::new(me, imp.log.len() as u64 + 1),
                    deps: dots(&deps),
                    created_ms: self.now,
                    payload: Bytes::from(codec::to_vec(&op).ok()?),
                };
                imp.log.push(rec.clone());
                Some(rec)
            }
            FakeOp::Resend { peer, index } => {
                let imp = &self.impostors[impostor_index(peer)];
                if imp.log.is_empty() {
                    return None;
                }
                Some(imp.log[usize::from(index) % imp.log.len()].clone())
            }
            FakeOp::Raw { origin, counter, deps, created, payload } => {
                let payload = match payload {
                    FakePayload::Update { key, dot, delta } => {
                        let op: Op = OrMapOp::Update {
                            key: key % 4,
                            op: CounterOp { dot: Dot::new(id(dot.0), dot.1.get()), delta: i64::from(delta) },
                        };
                        Bytes::from(codec::to_vec(&op).ok()?)
                    }
                    FakePayload::Remove { key, seen } => {
                        let op: Op = OrMapOp::Remove { key: key % 4, seen: dots(&seen) };
                        Bytes::from(codec::to_vec(&op).ok()?)
                    }
                    FakePayload::Garbage(bytes) => Bytes::from(bytes),
                };
                let created_ms = match created {
                    Created::Now => self.now,
                    Created::Ago(ms) => self.now.saturating_sub(u64::from(ms)),
                    Created::Any(ms) => ms,
                };
                Some(OpRecord { dot: Dot::new(id(origin), counter.get()), deps: dots(&deps), created_ms, payload })
            }
        }
    }

    // ---- driving ----------------------------------------------------------------------------

    /// Hands `msg` to replica `to` as a driver would: through the wire encoding, refusing a
    /// frame over the bound.
    fn deliver(&mut self, to: usize, from: ReplicaId, msg: Message) {
        let Ok(bytes) = encode(&Envelope::new(msg)) else { return };
        let Ok(envelope) = decode(&bytes, MAX_FRAME) else { return };
        let out = self.replicas[to].handle_message(self.now, from, envelope.body);
        self.check(to, out);
    }

    /// Checks the outputs of one call to replica `who`, and routes the messages it sent.
    fn check(&mut self, who: usize, outputs: Vec<Output>) {
        let me = self.replicas[who].id();
        let other = self.replicas[1 - who].id();
        let model = &mut self.models[who];
        let mut applied = Vec::new();
        let mut persisted = Vec::new();
        let mut snapshots: Vec<VClock> = Vec::new();
        let mut ready = Vec::new();
        for out in outputs {
            match out {
                Output::Event(Event::Applied { dot }) => {
                    let have = model.applied.get(&dot.replica);
                    assert!(
                        have.checked_add(1) == Some(dot.counter),
                        "replica {who}: applied {dot:?} after {have} ops of its origin (twice, or out of order)"
                    );
                    model.applied.observe(dot);
                    applied.push(dot);
                }
                Output::Event(Event::SnapshotMerged { vv, .. }) => {
                    model.applied.merge(&vv);
                    model.persisted.merge(&vv);
                }
                Output::Event(Event::SessionReady { id }) => ready.push(id),
                Output::Event(Event::Dropped { .. } | Event::PeerMisbehaved { .. }) => {}
                Output::Persist(records) => {
                    for rec in records {
                        let have = model.persisted.get(&rec.dot.replica);
                        assert!(
                            have.checked_add(1) == Some(rec.dot.counter),
                            "replica {who}: persisted {:?} after {have} ops of its origin",
                            rec.dot
                        );
                        for d in &rec.deps {
                            assert!(
                                model.persisted.get(&d.replica) >= d.counter,
                                "replica {who}: delivered {:?} before its dependency {d:?}",
                                rec.dot
                            );
                        }
                        assert!(
                            codec::from_slice::<Op>(&rec.payload).is_ok(),
                            "replica {who}: delivered {:?}, whose payload is no op",
                            rec.dot
                        );
                        model.persisted.observe(rec.dot);
                        persisted.push(rec.dot);
                    }
                }
                Output::PersistSnapshot { vv, floor, state } => {
                    assert!(vv.dominates(&floor), "replica {who}: snapshot floor {floor:?} above its vv {vv:?}");
                    if let Err(e) = codec::from_slice::<State>(&state) {
                        panic!("replica {who}: persisted a snapshot that does not decode: {e}");
                    }
                    model.persisted.merge(&vv);
                    snapshots.push(vv);
                }
                Output::Send { to, msg } => {
                    assert_ne!(to, me, "replica {who} sent a message to itself");
                    let bytes = encode(&Envelope::new(msg.clone()))
                        .unwrap_or_else(|e| panic!("replica {who}: a message it sent does not encode: {e}\n{msg:?}"));
                    assert!(
                        bytes.len() <= MAX_FRAME,
                        "replica {who}: sent a {}-byte frame, over the {MAX_FRAME}-byte bound: {}",
                        bytes.len(),
                        describe(&msg)
                    );
                    assert_eq!(
                        decode(&bytes, MAX_FRAME).map(|e| e.body).as_ref(),
                        Ok(&msg),
                        "replica {who}: round trip"
                    );
                    if self.sent.len() == REPLAYABLE {
                        self.sent.pop_front();
                    }
                    self.sent.push_back(msg.clone());
                    if to == other {
                        self.pending.push_back((1 - who, msg));
                    }
                }
            }
        }

        let r = &self.replicas[who];
        assert_eq!(&model.applied, r.version(), "replica {who}: applied events disagree with the version vector");
        assert_eq!(&model.persisted, r.version(), "replica {who}: persisted ops disagree with the version vector");
        for d in &applied {
            assert!(
                persisted.contains(d) || snapshots.iter().any(|v| v.contains(d)),
                "replica {who}: applied {d:?} but did not persist it"
            );
        }
        for d in &persisted {
            assert!(applied.contains(d), "replica {who}: persisted {d:?} without applying it");
        }
        // A script may wait twice under one session id with different tokens: a `SessionReady`
        // answers one of them, whichever is covered (the first harness compared it with the
        // first waiter of that id, a false alarm: regressions/protocol_messages/session-id-reused).
        for id in ready {
            let waiting: Vec<&VClock> = model.sessions.iter().filter(|(s, _)| *s == id).map(|(_, t)| t).collect();
            if waiting.is_empty() {
                continue;
            }
            let Some(i) = model.sessions.iter().position(|(s, t)| *s == id && r.version().dominates(t)) else {
                panic!("replica {who}: session {id} ready before any of its tokens {waiting:?}");
            };
            model.sessions.swap_remove(i);
        }
        for (what, (ops, bytes)) in [("buffered", r.buffered()), ("peak buffered", r.peak_buffered())] {
            assert!(
                ops <= MAX_BUFFERED_OPS && bytes <= MAX_BUFFERED_BYTES,
                "replica {who}: {what} {ops} ops, {bytes} bytes: over the bounds"
            );
        }
    }

    /// Lets messages flow between the two replicas until they agree.
    fn settle(&mut self) {
        // Long enough for every grace period and snapshot throttle to pass.
        self.now += 3_600_000;
        self.replicas[0].set_peer(id(1), PeerStatus::Alive);
        self.replicas[1].set_peer(id(0), PeerStatus::Alive);
        for _ in 0..32 {
            for who in 0..2 {
                let out = self.replicas[who].sync_now(self.now);
                self.check(who, out);
            }
            let mut budget = 4096;
            while let Some((to, msg)) = self.pending.pop_front() {
                let from = self.replicas[1 - to].id();
                self.deliver(to, from, msg);
                budget -= 1;
                assert!(budget > 0, "the replicas keep sending messages to each other");
            }
            let [a, b] = &self.replicas;
            if a.version() == b.version() && a.state() == b.state() {
                return;
            }
            self.now += 10_000;
        }
        let [a, b] = &self.replicas;
        panic!(
            "the replicas did not converge\nversions: {:?} / {:?}\nstates: {:?} / {:?}",
            a.version(),
            b.version(),
            a.state(),
            b.state()
        );
    }
}

/// A message in a line, without its payloads.
fn describe(msg: &Message) -> String {
    match msg {
        Message::Push { ops } | Message::Ops { ops, .. } => {
            let sizes: Vec<(Dot, usize, usize)> = ops.iter().map(|r| (r.dot, r.deps.len(), r.payload.len())).collect();
            format!("{} ops (dot, deps, payload bytes): {sizes:?}", ops.len())
        }
        Message::Digest { vv, .. } => format!("digest of {} entries", vv.as_ref().map_or(0, |v| v.0.len())),
        Message::Snapshot { chunk } => format!("snapshot chunk {} of {} bytes", chunk.index, chunk.data.len()),
    }
}

// ---- seeds ----------------------------------------------------------------------------------

impl Emit for Counter {
    fn emit(&self, w: &mut Writer) {
        match self {
            Counter::Small(n) => w.variant(0, 2).put(n),
            Counter::Any(n) => w.variant(1, 2).put(n),
        };
    }
}

impl Emit for Created {
    fn emit(&self, w: &mut Writer) {
        match self {
            Created::Now => w.variant(0, 3),
            Created::Ago(ms) => w.variant(1, 3).put(ms),
            Created::Any(ms) => w.variant(2, 3).put(ms),
        };
    }
}

impl Emit for FakePayload {
    fn emit(&self, w: &mut Writer) {
        match self {
            FakePayload::Update { key, dot, delta } => w.variant(0, 3).put(key).put(dot).put(delta),
            FakePayload::Remove { key, seen } => w.variant(1, 3).put(key).put(seen),
            FakePayload::Garbage(bytes) => w.variant(2, 3).put(bytes),
        };
    }
}

impl Emit for FakeOp {
    fn emit(&self, w: &mut Writer) {
        match self {
            FakeOp::Fresh { peer, key, delta, remove, deps } => {
                w.variant(0, 3).put(peer).put(key).put(delta).put(remove).put(deps)
            }
            FakeOp::Resend { peer, index } => w.variant(1, 3).put(peer).put(index),
            FakeOp::Raw { origin, counter, deps, created, payload } => {
                w.variant(2, 3).put(origin).put(counter).put(deps).put(created).put(payload)
            }
        };
    }
}

impl Emit for FakeVv {
    fn emit(&self, w: &mut Writer) {
        match self {
            FakeVv::Sender(peer) => w.variant(0, 3).put(peer),
            FakeVv::Receiver => w.variant(1, 3),
            FakeVv::Entries(entries) => w.variant(2, 3).put(entries),
        };
    }
}

impl Emit for FakeHash {
    fn emit(&self, w: &mut Writer) {
        match self {
            FakeHash::Consistent => w.variant(0, 2),
            FakeHash::Any(h) => w.variant(1, 2).put(h),
        };
    }
}

impl Emit for FakeData {
    fn emit(&self, w: &mut Writer) {
        match self {
            FakeData::State { peer, part, parts } => w.variant(0, 2).put(peer).put(part).put(parts),
            FakeData::Garbage(bytes) => w.variant(1, 2).put(bytes),
        };
    }
}

impl Emit for FakeMessage {
    fn emit(&self, w: &mut Writer) {
        match self {
            FakeMessage::Push { ops } => w.variant(0, 4).put(ops),
            FakeMessage::Ops { ops, more } => w.variant(1, 4).put(ops).put(more),
            FakeMessage::Digest { hash, vv, reply } => w.variant(2, 4).put(hash).put(vv).put(reply),
            FakeMessage::Snapshot { id, index, last, vv, data } => {
                w.variant(3, 4).put(id).put(index).put(last).put(vv).put(data)
            }
        };
    }
}

impl Emit for Fate {
    fn emit(&self, w: &mut Writer) {
        w.variant(*self as u32, 3);
    }
}

impl Emit for Status {
    fn emit(&self, w: &mut Writer) {
        w.variant(*self as u32, 3);
    }
}

impl Emit for Step {
    fn emit(&self, w: &mut Writer) {
        match self {
            Step::Inject { to, from, msg } => w.variant(0, 9).put(to).put(from).put(msg),
            Step::Relay { pick, fate } => w.variant(1, 9).put(pick).put(fate),
            Step::Replay { pick, to, from } => w.variant(2, 9).put(pick).put(to).put(from),
            Step::Tick { to, advance_ms } => w.variant(3, 9).put(to).put(advance_ms),
            Step::Local { to, key, delta, remove } => w.variant(4, 9).put(to).put(key).put(delta).put(remove),
            Step::SetPeer { to, peer, status } => w.variant(5, 9).put(to).put(peer).put(status),
            Step::RemovePeer { to, peer } => w.variant(6, 9).put(to).put(peer),
            Step::SyncNow { to } => w.variant(7, 9).put(to),
            Step::WaitFor { to, id, token } => w.variant(8, 9).put(to).put(id).put(token),
        };
    }
}

/// Scripts for the protocol's paths, written as steps.
pub(crate) fn seeds() -> super::corpus::Seeds {
    use Step::*;
    // Replica 0 is `false`, replica 1 is `true`; impostors are ids 2 to 4 (`id(2)`...).
    let (r0, r1) = (false, true);
    let local = |to, key, delta| Local { to, key, delta, remove: false };
    let relay = |n: usize| (0..n).map(|_| Relay { pick: 0, fate: Fate::Deliver }).collect::<Vec<_>>();
    let tick = |to, advance_ms| Tick { to, advance_ms };
    let fresh = |peer, key, delta| FakeOp::Fresh { peer, key, delta, remove: false, deps: vec![] };
    let push = |to, from, ops| Inject { to, from, msg: FakeMessage::Push { ops } };
    let raw = |origin, counter, deps, payload| FakeOp::Raw { origin, counter, deps, created: Created::Now, payload };
    let update = |key, dot, delta| FakePayload::Update { key, dot, delta };
    let small = Counter::Small;
    let digest =
        |to, from, vv, reply| Inject { to, from, msg: FakeMessage::Digest { hash: FakeHash::Consistent, vv, reply } };
    let snapshot = |to, from, index, last, vv, data| Inject {
        to,
        from,
        msg: FakeMessage::Snapshot { id: 1, index, last, vv, data },
    };

    let scripts: Vec<(&str, Vec<Step>)> = vec![
        ("push-and-relay", [vec![local(r0, 1, 3)], relay(1)].concat()),
        ("concurrent-updates", [vec![local(r0, 1, 1), local(r1, 1, 2), local(r1, 2, -1)], relay(3)].concat()),
        (
            "remove-and-update",
            [
                vec![local(r0, 1, 1)],
                relay(1),
                vec![local(r0, 1, 0), Local { to: r1, key: 1, delta: 0, remove: true }],
                relay(2),
            ]
            .concat(),
        ),
        (
            "lost-push-repaired-by-anti-entropy",
            vec![
                local(r0, 0, 5),
                Relay { pick: 0, fate: Fate::Drop },
                tick(r0, 2000),
                tick(r0, 2000),
                tick(r1, 2000),
                tick(r1, 2000),
            ]
            .into_iter()
            .chain(relay(6))
            .collect(),
        ),
        ("duplicated-push", vec![local(r1, 3, 1), Relay { pick: 0, fate: Fate::Duplicate }]),
        (
            "sync-now-both-ways",
            [vec![local(r0, 0, 1), local(r1, 1, 1), SyncNow { to: r0 }, SyncNow { to: r1 }], relay(8)].concat(),
        ),
        ("impostor-pushes-in-order", vec![push(r0, 2, vec![fresh(0, 1, 1), fresh(0, 2, 2), fresh(0, 1, -1)])]),
        (
            "impostor-pushes-out-of-order",
            vec![
                push(r1, 2, vec![fresh(0, 1, 1), fresh(0, 2, 2), fresh(0, 3, 3)]),
                push(r0, 2, vec![FakeOp::Resend { peer: 0, index: 2 }, FakeOp::Resend { peer: 0, index: 1 }]),
                push(r0, 3, vec![FakeOp::Resend { peer: 0, index: 0 }]),
            ],
        ),
        (
            "op-waits-for-dependency",
            vec![
                push(
                    r0,
                    2,
                    vec![FakeOp::Fresh { peer: 0, key: 1, delta: 1, remove: false, deps: vec![(1, small(1))] }],
                ),
                local(r1, 2, 2),
                relay(1)[0].clone(),
            ],
        ),
        (
            "causal-buffer-overflows",
            vec![push(r0, 3, (2..14).map(|c| raw(5, small(c), vec![], update(1, (5, small(c)), 1))).collect())],
        ),
        (
            "garbage-and-implausible-ops",
            vec![push(
                r1,
                2,
                vec![
                    raw(6, small(1), vec![], FakePayload::Garbage(vec![0xff, 0x00, 0x13])),
                    raw(6, small(0), vec![], update(0, (6, small(0)), 1)),
                    raw(7, Counter::Any(u64::MAX), vec![], update(0, (7, Counter::Any(u64::MAX)), 1)),
                    raw(7, small(1), (0..20).map(|i| (i, small(1))).collect(), update(0, (7, small(1)), 1)),
                    raw(5, small(1), vec![(5, small(1))], FakePayload::Remove { key: 2, seen: vec![(1, small(9))] }),
                ],
            )],
        ),
        (
            "impostor-ops-answer",
            vec![Inject {
                to: r0,
                from: 4,
                msg: FakeMessage::Ops { ops: vec![fresh(2, 0, 4), fresh(2, 0, 4)], more: true },
            }],
        ),
        ("digest-in-sync", vec![local(r0, 1, 1), digest(r0, 2, Some(FakeVv::Receiver), true)]),
        (
            "digest-behind-asks-for-ops",
            vec![local(r0, 1, 1), tick(r0, 5000), digest(r0, 3, Some(FakeVv::Entries(vec![])), true)],
        ),
        (
            "digest-ahead-gets-reply",
            vec![digest(r1, 2, Some(FakeVv::Entries(vec![(2, small(3)), (6, small(1))])), true)],
        ),
        (
            "digest-hash-mismatch",
            vec![
                local(r1, 0, 1),
                Inject {
                    to: r1,
                    from: 3,
                    msg: FakeMessage::Digest { hash: FakeHash::Any(42), vv: None, reply: false },
                },
            ],
        ),
        (
            "snapshot-from-impostor",
            vec![
                push(r1, 2, vec![fresh(1, 1, 2), fresh(1, 2, 3)]),
                snapshot(r0, 3, 0, true, Some(FakeVv::Sender(1)), FakeData::State { peer: 1, part: 0, parts: 0 }),
            ],
        ),
        (
            "snapshot-in-two-chunks",
            vec![
                push(r1, 2, vec![fresh(0, 1, 2), fresh(0, 2, 3), fresh(0, 3, 4)]),
                snapshot(r0, 2, 0, false, Some(FakeVv::Sender(0)), FakeData::State { peer: 0, part: 0, parts: 1 }),
                snapshot(r0, 2, 1, true, None, FakeData::State { peer: 0, part: 1, parts: 1 }),
                local(r0, 1, 1),
                relay(1)[0].clone(),
            ],
        ),
        (
            "snapshot-malformed",
            vec![
                snapshot(r0, 2, 0, true, None, FakeData::Garbage(vec![1, 2, 3])),
                snapshot(r0, 2, 1, true, Some(FakeVv::Receiver), FakeData::Garbage(vec![])),
                snapshot(
                    r0,
                    2,
                    0,
                    true,
                    Some(FakeVv::Entries(vec![(2, small(1))])),
                    FakeData::Garbage(vec![0x82, 0x80]),
                ),
            ],
        ),
        (
            "snapshot-claims-top-counter",
            vec![
                snapshot(
                    r0,
                    3,
                    0,
                    true,
                    Some(FakeVv::Entries(vec![(5, Counter::Any(u64::MAX))])),
                    FakeData::State { peer: 0, part: 0, parts: 0 },
                ),
                push(r0, 3, vec![raw(5, small(1), vec![], update(1, (5, small(1)), 1))]),
                local(r0, 1, 1),
            ],
        ),
        (
            "compaction-then-snapshot-to-returning-peer",
            [
                vec![RemovePeer { to: r0, peer: 1 }],
                (0..8).map(|i| local(r0, i % 4, 1)).collect(),
                vec![digest(r0, 2, Some(FakeVv::Receiver), false), tick(r0, 5000), tick(r0, 5000)],
                vec![SetPeer { to: r0, peer: 1, status: Status::Alive }, SyncNow { to: r1 }],
                relay(12),
            ]
            .concat(),
        ),
        (
            "replayed-messages",
            [
                vec![local(r0, 1, 1), local(r0, 2, 1)],
                vec![Replay { pick: 0, to: r1, from: 0 }, Replay { pick: 0, to: r0, from: 1 }],
                relay(2),
            ]
            .concat(),
        ),
        (
            "membership-churn",
            [
                vec![SetPeer { to: r0, peer: 1, status: Status::Down }, local(r0, 1, 1), tick(r0, 3000)],
                vec![
                    SetPeer { to: r0, peer: 1, status: Status::Suspect },
                    SetPeer { to: r0, peer: 2, status: Status::Alive },
                ],
                vec![local(r0, 2, 2), tick(r0, 3000), RemovePeer { to: r1, peer: 0 }, SyncNow { to: r0 }],
                relay(4),
            ]
            .concat(),
        ),
        (
            "session-waits-for-write",
            [vec![local(r0, 1, 1), WaitFor { to: r1, id: 7, token: vec![(0, small(1))] }], relay(1)].concat(),
        ),
    ];
    scripts
        .into_iter()
        .map(|(name, steps)| {
            let mut w = Writer::default();
            for step in &steps {
                w.put(step);
            }
            let bytes = w.finish();
            let mut u = Unstructured::new(&bytes);
            let parsed: Vec<Step> =
                std::iter::from_fn(|| (!u.is_empty()).then(|| Step::arbitrary(&mut u).ok()).flatten()).collect();
            assert_eq!(parsed, steps, "seed {name} does not parse back");
            (name.to_string(), bytes)
        })
        .collect()
}
