//! Unit tests of `protocol::Replica`, one message path at a time: two to ten replicas driven
//! by hand, each `Output::Send` handed to its addressee by the test. The CRDT is the cart,
//! `OrMap<String, CausalCounter>`. Every test is deterministic (fixed seeds, fixed times).
//!
//! The simulator (`tests/sim.rs`) checks the protocol as a whole under faults; these tests
//! pin what each input does: which messages, events and persistence outputs it produces, and
//! in which order.

use std::collections::VecDeque;

use bytes::Bytes;
use gossamer_crdt::{CausalCounter, Dot, OrMap, ReplicaId, VClock};
use gossamer_sync::protocol::{Config, Event, Output, PeerStatus, ProtocolError, Replica, Restored, StoredSnapshot};
use gossamer_sync::wire::{self, CompactVv, Envelope, Message, OpRecord, SnapshotChunk, codec};

type Cart = OrMap<String, CausalCounter>;

// ---- harness ----------------------------------------------------------------------------------

/// Replica ids 1, 2, 3, … — `rs[i]` has id `i + 1`.
fn id(n: u128) -> ReplicaId {
    ReplicaId::from_u128(n)
}

const A: ReplicaId = ReplicaId::from_u128(1);
const B: ReplicaId = ReplicaId::from_u128(2);
const C: ReplicaId = ReplicaId::from_u128(3);
const D: ReplicaId = ReplicaId::from_u128(4);
const E: ReplicaId = ReplicaId::from_u128(5);
const F: ReplicaId = ReplicaId::from_u128(6);
const G: ReplicaId = ReplicaId::from_u128(7);

/// The default grace (`Config::push_grace_ms`): before any push delay is measured,
/// anti-entropy sends no op younger than this. Tests that pull ops do so at least this long
/// after the ops were made.
const GRACE: u64 = 1_000;

fn index(r: ReplicaId) -> usize {
    usize::from(r.as_bytes()[15]) - 1
}

/// `n` replicas that all know each other (a consistent membership view), each ticked once,
/// which only schedules its first anti-entropy round.
fn mesh(n: u128, config: &Config) -> Vec<Replica<Cart>> {
    let mut rs: Vec<Replica<Cart>> = (1..=n).map(|i| Replica::new(id(i), config.clone(), i as u64)).collect();
    for r in &mut rs {
        for j in 1..=n {
            r.set_peer(id(j), PeerStatus::Alive);
        }
        assert!(r.handle_tick(0).is_empty(), "a first tick only schedules");
    }
    rs
}

/// A message in flight: `(from, to, message)`.
type Msg = (ReplicaId, ReplicaId, Message);

/// The messages `outputs` sends, as sent by `from`.
fn sends(from: ReplicaId, outputs: &[Output]) -> Vec<Msg> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send { to, msg } => Some((from, *to, msg.clone())),
            _ => None,
        })
        .collect()
}

fn applied(outputs: &[Output]) -> Vec<Dot> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(Event::Applied { dot }) => Some(*dot),
            _ => None,
        })
        .collect()
}

fn events(outputs: &[Output]) -> Vec<Event> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn persisted(outputs: &[Output]) -> Vec<Dot> {
    outputs
        .iter()
        .flat_map(|o| match o {
            Output::Persist(recs) => recs.iter().map(|r| r.dot).collect(),
            _ => Vec::new(),
        })
        .collect()
}

fn snapshots_persisted(outputs: &[Output]) -> Vec<(VClock, VClock, Bytes)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::PersistSnapshot { vv, floor, state } => Some((vv.clone(), floor.clone(), state.clone())),
            _ => None,
        })
        .collect()
}

/// `replica` adds `n` of `item` to its cart.
fn add(replica: &mut Replica<Cart>, now: u64, item: &str, n: u64) -> (Dot, Vec<Output>) {
    let me = replica.id();
    replica.local_update(now, |cart| cart.update(item.to_string(), |q| q.inc(me, n))).unwrap()
}

/// The logged record of `dot` at `r`.
fn record(r: &Replica<Cart>, dot: Dot) -> OpRecord {
    r.log().find(|rec| rec.dot == dot).expect("a logged op").clone()
}

/// The deps of the op `outputs` persisted (a local update's outputs).
fn deps_of_local(outputs: &[Output]) -> Vec<Dot> {
    let Some(Output::Persist(recs)) = outputs.iter().find(|o| matches!(o, Output::Persist(_))) else {
        panic!("nothing persisted: {outputs:?}")
    };
    recs.last().expect("one op").deps.clone()
}

/// An op record made by hand: `origin` adds one `item`, with the given dot, deps and creation
/// time.
fn foreign_op(origin: ReplicaId, counter: u64, deps: &[Dot], created_ms: u64, item: &str) -> OpRecord {
    let op = Cart::new().update(item.to_string(), |q| q.inc(origin, 1));
    OpRecord {
        dot: Dot::new(origin, counter),
        deps: deps.to_vec(),
        created_ms,
        payload: Bytes::from(codec::to_vec(&op).unwrap()),
    }
}

/// Hands one message to its addressee; returns what that sends in turn.
fn deliver(rs: &mut [Replica<Cart>], now: u64, (from, to, msg): Msg) -> (Vec<Output>, Vec<Msg>) {
    let outputs = rs[index(to)].handle_message(now, from, msg);
    let next = sends(to, &outputs);
    (outputs, next)
}

/// Delivers `queue` and everything it causes, first in first out, until no message is left;
/// returns every message delivered, in order.
fn run(rs: &mut [Replica<Cart>], now: u64, queue: Vec<Msg>) -> Vec<Msg> {
    let mut queue = VecDeque::from(queue);
    let mut delivered = Vec::new();
    while let Some(m) = queue.pop_front() {
        delivered.push(m.clone());
        assert!(delivered.len() < 1_000, "messages keep flowing: {delivered:?}");
        let (_, next) = deliver(rs, now, m);
        queue.extend(next);
    }
    delivered
}

/// `who` starts an anti-entropy round with every peer; returns the digests.
fn sync_now(rs: &mut [Replica<Cart>], who: ReplicaId, now: u64) -> Vec<Msg> {
    let outputs = rs[index(who)].sync_now(now);
    sends(who, &outputs)
}

/// An anti-entropy round started by `who`, run until quiet; returns every message delivered.
fn round(rs: &mut [Replica<Cart>], who: ReplicaId, now: u64) -> Vec<Msg> {
    let digests = sync_now(rs, who, now);
    run(rs, now, digests)
}

fn pushed_ops(msg: &Message) -> Vec<Dot> {
    match msg {
        Message::Push { ops } | Message::Ops { ops, .. } => ops.iter().map(|r| r.dot).collect(),
        other => panic!("not a push or ops: {other:?}"),
    }
}

fn targets(msgs: &[Msg]) -> Vec<ReplicaId> {
    msgs.iter().map(|(_, to, _)| *to).collect()
}

fn links(msgs: &[Msg]) -> Vec<(ReplicaId, ReplicaId)> {
    msgs.iter().map(|(from, to, _)| (*from, *to)).collect()
}

/// A message in a line: `digest(full=…, reply=…)`, `ops([counters], more=…)`, `push([…])`.
fn kind(msg: &Message) -> String {
    match msg {
        Message::Digest { vv, reply, .. } => format!("digest(full={}, reply={reply})", vv.is_some()),
        Message::Ops { ops, more } => {
            format!("ops({:?}, more={more})", ops.iter().map(|r| r.dot.counter).collect::<Vec<_>>())
        }
        Message::Push { ops } => format!("push({:?})", ops.iter().map(|r| r.dot.counter).collect::<Vec<_>>()),
        Message::Snapshot { chunk } => format!("snapshot({}, last={})", chunk.index, chunk.last),
    }
}

fn milk(r: &Replica<Cart>) -> Option<i64> {
    r.state().get(&"milk".to_string()).map(|q| q.value())
}

fn vv(entries: &[(ReplicaId, u64)]) -> VClock {
    let mut v = VClock::new();
    for &(r, c) in entries {
        v.set(r, c);
    }
    v
}

/// The reference model of the push trees, written independently of the implementation:
/// `origin`'s tree is a k-ary heap over the sorted membership view (the reachable replicas,
/// and the origin even if it is not among them), rotated so that the origin is the root. The
/// children of the replica of rank `r` are those of ranks `r·k + 1 ..= r·k + k`.
fn model_children(view: &[ReplicaId], k: usize, origin: ReplicaId, me: ReplicaId) -> Vec<ReplicaId> {
    let mut members = view.to_vec();
    if !members.contains(&origin) {
        members.push(origin);
    }
    members.sort();
    let root = members.iter().position(|r| *r == origin).unwrap();
    members.rotate_left(root);
    let Some(rank) = members.iter().position(|r| *r == me) else { return Vec::new() };
    (rank * k + 1..=rank * k + k).filter_map(|c| members.get(c).copied()).collect()
}

// ---- local updates and the push trees ------------------------------------------------------------

#[test]
fn local_update_persists_before_it_pushes_to_its_children() {
    let mut rs = mesh(3, &Config::default());
    let (dot, outputs) = add(&mut rs[0], 1, "milk", 1);
    assert_eq!(dot, Dot::new(A, 1));
    assert_eq!(applied(&outputs), vec![dot]);
    assert_eq!(persisted(&outputs), vec![dot]);
    let persist_at = outputs.iter().position(|o| matches!(o, Output::Persist(_))).unwrap();
    let first_send = outputs.iter().position(|o| matches!(o, Output::Send { .. })).unwrap();
    assert!(persist_at < first_send, "the op is durable before anyone hears of it: {outputs:?}");

    // With the default fanout of 3, both other replicas are A's children.
    assert_eq!(Config::default().tree_fanout, 3);
    let msgs = sends(A, &outputs);
    assert_eq!(targets(&msgs), vec![B, C]);
    let Output::Persist(recs) = &outputs[persist_at] else { unreachable!() };
    for (_, _, msg) in &msgs {
        assert_eq!(msg, &Message::Push { ops: recs.clone() });
    }
    // A first op has no dependencies; it carries its creation time; its payload is the
    // encoded cart op.
    assert!(recs[0].deps.is_empty());
    assert_eq!(recs[0].created_ms, 1);
    assert_eq!(milk(&rs[0]), Some(1));
    assert_eq!(rs[0].log_size().0, 1);
    assert_eq!(rs[0].stats().ops_pushed, 2);
}

#[test]
fn local_op_is_pushed_to_min_k_n_minus_1_children_and_reaches_every_replica_exactly_once() {
    for n in 1..=10u128 {
        for k in 1..=4usize {
            let config = Config { tree_fanout: k, ..Config::default() };
            let mut rs = mesh(n, &config);
            let view: Vec<ReplicaId> = (1..=n).map(id).collect();
            // ⌈log_k n⌉ hops (n − 1 for a chain).
            let depth = if k == 1 { n as u32 - 1 } else { (0..).find(|&d| (k as u128).pow(d) >= n).unwrap() };
            for origin in view.clone() {
                let now = 100 * index(origin) as u64;
                let (dot, out) = add(&mut rs[index(origin)], now, "milk", 1);
                let mut wave = sends(origin, &out);
                assert_eq!(wave.len(), k.min(n as usize - 1), "n={n} k={k}: the origin pushes to its children");
                let mut received = vec![0; n as usize];
                let mut hops = 0;
                while !wave.is_empty() {
                    hops += 1;
                    let mut next = Vec::new();
                    for m in wave {
                        let (from, to, msg) = &m;
                        assert_eq!(pushed_ops(msg), vec![dot]);
                        assert!(
                            model_children(&view, k, origin, *from).contains(to),
                            "n={n} k={k} origin {origin:?}: {from:?} pushed to {to:?}, not its child"
                        );
                        received[index(*to)] += 1;
                        next.extend(deliver(&mut rs, now + hops, m).1);
                    }
                    wave = next;
                }
                let expected: Vec<usize> = view.iter().map(|r| usize::from(*r != origin)).collect();
                assert_eq!(received, expected, "n={n} k={k} origin {origin:?}: each replica gets it once");
                assert!(hops <= depth as u64, "n={n} k={k}: {hops} hops, more than {depth}");
                assert!(rs.iter().all(|r| r.version().contains(&dot)));
            }
            let n_ops = (n * (n - 1)) as u64;
            assert_eq!(rs.iter().map(|r| r.stats().duplicates_pushed).sum::<u64>(), 0, "n={n} k={k}");
            assert_eq!(rs.iter().map(|r| r.stats().received_new).sum::<u64>(), n_ops, "n={n} k={k}");
            assert_eq!(rs.iter().map(|r| r.stats().ops_pushed).sum::<u64>(), n_ops, "n={n} k={k}");
            assert!(rs.iter().all(|r| r.state() == rs[0].state()));
        }
    }
}

#[test]
fn replica_forwards_only_to_its_children_in_that_origins_tree() {
    // Seven replicas, binary trees. A's tree: A → B, C; B → D, E; C → F, G.
    // C's tree (rotated: C D E F G A B): C → D, E; D → F, G; E → A, B.
    let config = Config { tree_fanout: 2, ..Config::default() };
    let mut rs = mesh(7, &config);
    let view = [A, B, C, D, E, F, G];
    assert_eq!(model_children(&view, 2, A, B), vec![D, E]);
    assert_eq!(model_children(&view, 2, C, E), vec![A, B]);

    let (a1, out) = add(&mut rs[0], 1, "milk", 1);
    let from_a = sends(A, &out);
    assert_eq!(targets(&from_a), vec![B, C]);
    // B got it from its parent A: persists, then forwards to its children D and E.
    let (outputs, from_b) = deliver(&mut rs, 2, from_a[0].clone());
    assert_eq!(applied(&outputs), vec![a1]);
    assert_eq!(targets(&from_b), vec![D, E]);
    let persist_at = outputs.iter().position(|o| matches!(o, Output::Persist(_))).unwrap();
    let first_send = outputs.iter().position(|o| matches!(o, Output::Send { .. })).unwrap();
    assert!(persist_at < first_send);
    // D is a leaf of A's tree: it forwards nothing.
    let (outputs, from_d) = deliver(&mut rs, 3, from_b[0].clone());
    assert_eq!(applied(&outputs), vec![a1]);
    assert!(from_d.is_empty(), "{from_d:?}");

    // The same replicas in C's tree: D is interior, B a leaf.
    let (c1, out) = add(&mut rs[2], 4, "eggs", 1);
    let from_c = sends(C, &out);
    assert_eq!(targets(&from_c), vec![D, E]);
    let (_, from_d) = deliver(&mut rs, 5, from_c[0].clone());
    assert_eq!(targets(&from_d), vec![F, G]);
    let (_, from_e) = deliver(&mut rs, 5, from_c[1].clone());
    assert_eq!(targets(&from_e), vec![A, B]);
    assert_eq!(pushed_ops(&from_e[1].2), vec![c1]);
    let (outputs, from_b) = deliver(&mut rs, 6, from_e[1].clone());
    assert_eq!(applied(&outputs), vec![c1]);
    assert!(from_b.is_empty(), "B is a leaf of C's tree: {from_b:?}");
}

#[test]
fn op_from_a_peer_other_than_the_parent_is_not_sent_back_to_it() {
    // Views may disagree for a while (membership churn): B gets A's op first from E, one of
    // its own children in A's tree. It forwards to its other child only, never back to E.
    let config = Config { tree_fanout: 2, ..Config::default() };
    let mut rs = mesh(7, &config);
    let (a1, _) = add(&mut rs[0], 1, "milk", 1);
    let rec = record(&rs[0], a1);
    let out = rs[1].handle_message(2, E, Message::Push { ops: vec![rec.clone()] });
    assert_eq!(applied(&out), vec![a1]);
    assert_eq!(links(&sends(B, &out)), vec![(B, D)]);
    // Its copy from the parent, later, is a duplicate: counted, dropped, not forwarded.
    let out = rs[1].handle_message(3, A, Message::Push { ops: vec![rec] });
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(rs[1].stats().duplicates_pushed, 1);
}

#[test]
fn network_duplicate_push_is_dropped_silently() {
    let mut rs = mesh(2, &Config::default());
    let (dot, outputs) = add(&mut rs[0], 1, "milk", 1);
    let push = sends(A, &outputs).remove(0);
    let (first, _) = deliver(&mut rs, 2, push.clone());
    assert_eq!(applied(&first), vec![dot]);
    // The network delivers the same frame again: dropped silently, nothing sent.
    let (again, replies) = deliver(&mut rs, 3, push);
    assert!(again.is_empty(), "{again:?}");
    assert!(replies.is_empty());
    assert_eq!(rs[1].stats().duplicates_pushed, 1);
    assert_eq!(rs[1].stats().applied, 1);
    assert_eq!(milk(&rs[1]), Some(1));
}

#[test]
fn down_peer_is_left_out_of_the_trees_and_its_children_are_served_by_others() {
    let config = Config { tree_fanout: 2, ..Config::default() };
    let mut rs = mesh(7, &config);
    for r in rs.iter_mut().filter(|r| r.id() != B) {
        r.set_peer(B, PeerStatus::Down);
    }
    // Without B, A's tree over A C D E F G: A → C, D; C → E, F; D → G. D and E, B's children
    // in the full tree, are served by others.
    let (a1, out) = add(&mut rs[0], 1, "milk", 1);
    let delivered = run(&mut rs, 2, sends(A, &out));
    assert_eq!(links(&delivered), vec![(A, C), (A, D), (C, E), (C, F), (D, G)]);
    for r in &rs {
        assert_eq!(r.version().contains(&a1), r.id() != B, "{:?}", r.id());
    }
    assert_eq!(rs.iter().map(|r| r.stats().duplicates_pushed).sum::<u64>(), 0);

    // Suspect peers stay in the trees: only going down (or coming back) reshapes them.
    for r in rs.iter_mut().filter(|r| r.id() != B) {
        r.set_peer(B, PeerStatus::Suspect);
    }
    let (a2, out) = add(&mut rs[0], 3, "milk", 1);
    let delivered = run(&mut rs, 4, sends(A, &out));
    assert_eq!(links(&delivered), vec![(A, B), (A, C), (B, D), (B, E), (C, F), (C, G)]);
    // B forwarded a2 although it cannot apply it before a1 (anti-entropy brings that).
    assert_eq!(rs[1].buffered().0, 1);
    assert!(rs.iter().filter(|r| r.id() != B).all(|r| r.version().contains(&a2)));
}

#[test]
fn op_of_an_origin_others_think_down_follows_the_same_tree() {
    // Everyone but B believes B is down (a false suspicion); B, alive, makes an op. Each
    // receiver places the origin where it would sit in the sorted view, so all compute the tree
    // B computes: B → C, D; C → E, F; D → A, G (the rotated order is B C D E F G A).
    let config = Config { tree_fanout: 2, ..Config::default() };
    let mut rs = mesh(7, &config);
    for r in rs.iter_mut().filter(|r| r.id() != B) {
        r.set_peer(B, PeerStatus::Down);
    }
    let (b1, out) = add(&mut rs[1], 1, "milk", 1);
    let delivered = run(&mut rs, 2, sends(B, &out));
    assert_eq!(links(&delivered), vec![(B, C), (B, D), (C, E), (C, F), (D, A), (D, G)]);
    assert!(rs.iter().all(|r| r.version().contains(&b1)));
    assert_eq!(rs.iter().map(|r| r.stats().duplicates_pushed).sum::<u64>(), 0);
}

#[test]
fn forwarding_skips_children_known_to_have_the_op() {
    // Chains (fanout 1): A's tree is A → B → C.
    let config = Config { tree_fanout: 1, ..Config::default() };
    let mut rs = mesh(3, &config);
    let (a1, out) = add(&mut rs[0], 1, "milk", 1);
    let late_push = sends(A, &out).remove(0);
    assert_eq!(late_push.1, B);

    // Meanwhile C pulled a1 from A; its chained exchange tells B that it has a1.
    let now = GRACE + 10;
    let c_to_a = sync_now(&mut rs, C, now).into_iter().find(|m| m.1 == A).unwrap();
    let (_, answer) = deliver(&mut rs, now, c_to_a);
    let (outputs, chained) = deliver(&mut rs, now, answer[0].clone());
    assert_eq!(applied(&outputs), vec![a1]);
    assert_eq!(links(&chained), vec![(C, B)]);
    let _ = deliver(&mut rs, now, chained[0].clone());
    assert_eq!(rs[1].peers().into_iter().find(|p| p.id == C).unwrap().known_vv, Some(vv(&[(A, 1)])));

    // The late push reaches B: applied, but not forwarded to C, known to have it.
    let (outputs, from_b) = deliver(&mut rs, now + 1, late_push);
    assert_eq!(applied(&outputs), vec![a1]);
    assert!(from_b.is_empty(), "{from_b:?}");

    // A child whose last known vector lacks the op gets it.
    let (a2, out) = add(&mut rs[0], now + 2, "milk", 1);
    let (_, from_b) = deliver(&mut rs, now + 3, sends(A, &out).remove(0));
    assert_eq!(links(&from_b), vec![(B, C)]);
    assert_eq!(pushed_ops(&from_b[0].2), vec![a2]);
}

// ---- causal delivery and dependencies -------------------------------------------------------------

#[test]
fn early_ops_wait_for_their_dependencies_and_are_delivered_once_in_causal_order() {
    let mut rs = mesh(2, &Config::default());
    let pushes: Vec<Msg> = (1..=3).map(|t| sends(A, &add(&mut rs[0], t, "milk", 1).1).remove(0)).collect();
    let dots: Vec<Dot> = (1..=3).map(|c| Dot::new(A, c)).collect();

    let (out3, _) = deliver(&mut rs, 10, pushes[2].clone());
    assert!(applied(&out3).is_empty());
    assert!(persisted(&out3).is_empty(), "an early op is not persisted");
    assert_eq!(rs[1].buffered().0, 1);
    let (out2, _) = deliver(&mut rs, 11, pushes[1].clone());
    assert!(applied(&out2).is_empty());
    assert_eq!(rs[1].buffered().0, 2);
    assert_eq!(rs[1].version(), &VClock::new());

    // The missing first op releases the whole chain, in causal order, each op exactly once.
    let (out1, _) = deliver(&mut rs, 12, pushes[0].clone());
    assert_eq!(applied(&out1), dots);
    assert_eq!(persisted(&out1), dots);
    assert_eq!(rs[1].buffered(), (0, 0));
    assert_eq!(rs[1].version(), &vv(&[(A, 3)]));
    assert_eq!(milk(&rs[1]), Some(3));

    // Late copies change nothing.
    for p in pushes {
        assert!(applied(&deliver(&mut rs, 13, p).0).is_empty());
    }
    assert_eq!(rs[1].stats().applied, 3);
    assert_eq!(rs[1].state(), rs[0].state());
}

#[test]
fn op_depending_on_another_replicas_op_waits_for_it() {
    let mut rs = mesh(3, &Config::default());
    let (a1, outputs) = add(&mut rs[0], 1, "milk", 1);
    let from_a = sends(A, &outputs);
    let a_to_b = from_a.iter().find(|(_, to, _)| *to == B).unwrap().clone();
    let a_to_c = from_a.iter().find(|(_, to, _)| *to == C).unwrap().clone();
    let (_, from_b) = deliver(&mut rs, 2, a_to_b);
    assert!(from_b.is_empty(), "B is a leaf of A's tree");

    // B saw A's op, then removed milk: its op depends on A.1, and says so compactly.
    let (b1, outputs) = rs[1].local_update(3, |cart| cart.remove(&"milk".to_string())).unwrap();
    assert_eq!(deps_of_local(&outputs), vec![a1]);
    let b_to_c = sends(B, &outputs).into_iter().find(|(_, to, _)| *to == C).unwrap();

    // C gets B's op before A's (A's copy is slow).
    let (early, _) = deliver(&mut rs, 4, b_to_c);
    assert!(applied(&early).is_empty());
    assert_eq!(rs[2].buffered().0, 1);
    let (ready, _) = deliver(&mut rs, 5, a_to_c);
    assert_eq!(applied(&ready), vec![a1, b1]);
    assert_eq!(milk(&rs[2]), None, "the remove applied after the add it saw");
    assert_eq!(rs[2].state(), rs[1].state());
}

#[test]
fn op_made_after_hearing_from_several_replicas_lists_only_the_frontier() {
    let mut rs = mesh(4, &Config::default());
    // B's b1 reaches A and C; C, having seen b1, makes c1; D, having seen nothing, makes d1.
    let (b1, out) = add(&mut rs[1], 1, "milk", 1);
    for m in sends(B, &out).into_iter().filter(|m| m.1 != D) {
        let _ = deliver(&mut rs, 2, m);
    }
    let (c1, out) = add(&mut rs[2], 3, "eggs", 1);
    assert_eq!(deps_of_local(&out), vec![b1]);
    let c1_to_a = sends(C, &out).into_iter().find(|m| m.1 == A).unwrap();
    let c1_to_d = sends(C, &out).into_iter().find(|m| m.1 == D).unwrap();
    let _ = deliver(&mut rs, 4, c1_to_a);
    let (d1, out) = add(&mut rs[3], 5, "bread", 1);
    assert!(deps_of_local(&out).is_empty());
    let d1_to_a = sends(D, &out).into_iter().find(|m| m.1 == A).unwrap();
    let _ = deliver(&mut rs, 6, d1_to_a);
    assert_eq!(rs[0].version(), &vv(&[(B, 1), (C, 1), (D, 1)]));

    // A delivered b1, c1, d1; c1 depends on b1. A's op lists the frontier: c1 and d1, not b1.
    let (a1, out) = add(&mut rs[0], 7, "milk", 1);
    assert_eq!(deps_of_local(&out), vec![c1, d1]);
    // That is enough for D, which lacks b1 and c1: a1 waits for c1, and c1 for b1.
    let a1_to_d = sends(A, &out).into_iter().find(|m| m.1 == D).unwrap();
    let (early, _) = deliver(&mut rs, 8, a1_to_d);
    assert!(applied(&early).is_empty());
    let (out, _) = deliver(&mut rs, 9, c1_to_d);
    assert!(applied(&out).is_empty(), "c1 still waits for b1");
    let b1_to_d = (B, D, Message::Push { ops: vec![record(&rs[1], b1)] });
    let (out, _) = deliver(&mut rs, 10, b1_to_d);
    assert_eq!(applied(&out), vec![b1, c1, a1]);

    // A's next op depends on a1 alone, implied by being A's next: no deps at all.
    let (_, out) = add(&mut rs[0], 11, "milk", 1);
    assert!(deps_of_local(&out).is_empty());

    // A causal chain through many replicas leaves one frontier entry, however long it is.
    let mut rs = mesh(10, &Config::default());
    let mut last = None;
    for i in 2..=10u128 {
        let (dot, out) = add(&mut rs[i as usize - 1], i as u64, "milk", 1);
        assert_eq!(deps_of_local(&out), last.into_iter().collect::<Vec<Dot>>());
        run(&mut rs, i as u64, sends(id(i), &out));
        last = Some(dot);
    }
    let (_, out) = add(&mut rs[0], 20, "milk", 1);
    assert_eq!(deps_of_local(&out), vec![Dot::new(id(10), 1)]);
}

/// A full causal buffer is shared fairly between the peers that send to it: an early op
/// from a peer with a smaller share takes the place of the newest op of the peer with the
/// largest, until the shares are even; then the buffer refuses as before. A peer flooding
/// it with ops that can never be delivered does not keep an honest peer's early ops out.
#[test]
fn a_peer_that_fills_the_causal_buffer_gives_way_to_a_peer_with_a_smaller_share() {
    let config = Config { max_buffered_ops: 4, ..Config::default() };
    let mut rs = mesh(3, &config);
    let payload = Bytes::from(codec::to_vec(&Cart::new().update("milk".to_string(), |q| q.inc(C, 1))).unwrap());
    // C fills B's buffer with ops of an origin whose earlier ops never come.
    let ghost = |c: u64| OpRecord { dot: Dot::new(id(9), c), deps: vec![], created_ms: 1, payload: payload.clone() };
    let out = rs[1].handle_message(1, C, Message::Push { ops: (10..14).map(ghost).collect() });
    assert!(events(&out).is_empty());
    assert_eq!(rs[1].buffered().0, 4);

    // A's ops 2, 3 and 4 arrive before its first.
    let dots: Vec<Dot> = (1..=4).map(|t| add(&mut rs[0], t, "milk", 1).0).collect();
    let recs: Vec<OpRecord> = dots.iter().map(|d| record(&rs[0], *d)).collect();
    let early = |i: usize| Message::Push { ops: vec![recs[i].clone()] };
    let made_room = "causal buffer full: made room for a peer with a smaller share";
    let out = rs[1].handle_message(5, A, early(1));
    assert_eq!(events(&out), vec![Event::Dropped { dot: Dot::new(id(9), 13), reason: made_room }]);
    let out = rs[1].handle_message(6, A, early(2));
    assert_eq!(events(&out), vec![Event::Dropped { dot: Dot::new(id(9), 12), reason: made_room }]);
    // Two each: neither takes the other's place.
    let out = rs[1].handle_message(7, A, early(3));
    assert_eq!(events(&out), vec![Event::Dropped { dot: dots[3], reason: "causal buffer full" }]);
    let out = rs[1].handle_message(8, C, Message::Push { ops: vec![ghost(14)] });
    assert_eq!(events(&out), vec![Event::Dropped { dot: Dot::new(id(9), 14), reason: "causal buffer full" }]);
    assert_eq!(rs[1].buffered().0, 4);

    // A's first op comes: it and the two that waited for it are delivered.
    let out = rs[1].handle_message(9, A, early(0));
    assert_eq!(applied(&out), dots[..3].to_vec());
    assert_eq!(rs[1].buffered().0, 2, "C's two");
    assert_eq!(rs[1].stats().dropped, 4);
}

#[test]
fn full_buffer_drops_the_op_and_anti_entropy_fetches_it_later() {
    let config = Config { max_buffered_ops: 1, ..Config::default() };
    let mut rs = mesh(2, &config);
    let pushes: Vec<Msg> = (1..=3).map(|t| sends(A, &add(&mut rs[0], t, "milk", 1).1).remove(0)).collect();

    let (out3, _) = deliver(&mut rs, 10, pushes[2].clone());
    assert!(events(&out3).is_empty());
    let (out2, _) = deliver(&mut rs, 11, pushes[1].clone());
    assert_eq!(events(&out2), vec![Event::Dropped { dot: Dot::new(A, 2), reason: "causal buffer full" }]);
    assert_eq!(rs[1].stats().dropped, 1);
    let (out1, _) = deliver(&mut rs, 12, pushes[0].clone());
    assert_eq!(applied(&out1), vec![Dot::new(A, 1)]);
    assert_eq!(rs[1].version(), &vv(&[(A, 1)]));
    assert_eq!(rs[1].buffered().0, 1, "A.3 still waits for A.2");

    // Anti-entropy, once the ops are older than the grace: B's digest brings the dropped op
    // (and the buffered one, in order).
    let now = GRACE + 20;
    let digest = sync_now(&mut rs, B, now);
    let (_, answer) = deliver(&mut rs, now + 1, digest[0].clone());
    assert_eq!(pushed_ops(&answer[0].2), vec![Dot::new(A, 2), Dot::new(A, 3)]);
    let (out, _) = deliver(&mut rs, now + 2, answer[0].clone());
    assert_eq!(applied(&out), vec![Dot::new(A, 2), Dot::new(A, 3)]);
    assert_eq!(rs[1].buffered(), (0, 0));
    assert_eq!(rs[1].state(), rs[0].state());
}

/// An op whose dependency never comes leaves the buffer once it has waited
/// `max_buffered_age_ms`, counted from its last progress: the buffer cannot be held full until
/// a restart. It is dropped like any other early op, and delivered when its dependencies are.
#[test]
fn an_op_whose_dependency_never_comes_leaves_the_buffer_after_the_age_bound() {
    const AGE: u64 = 5_000;
    let config = Config { max_buffered_age_ms: AGE, ..Config::default() };
    let mut rs = mesh(2, &config);
    let reason = "waited too long for its dependencies";
    // C.2 waits for C.1, which nobody has; x (by D) waits for C.1 and then for E.1.
    let c1 = foreign_op(C, 1, &[], 1, "eggs");
    let c2 = foreign_op(C, 2, &[], 2, "bread");
    let e1 = foreign_op(E, 1, &[], 3, "jam");
    let x = foreign_op(D, 1, &[Dot::new(C, 1), Dot::new(E, 1)], 4, "milk");
    let out = rs[1].handle_message(100, A, Message::Push { ops: vec![c2.clone(), x.clone()] });
    assert!(events(&out).is_empty());
    assert_eq!(rs[1].buffered().0, 2);

    // Just before the bound, both still wait.
    let out = rs[1].handle_tick(100 + AGE - 1);
    assert!(events(&out).is_empty(), "{:?}", events(&out));
    assert_eq!(rs[1].buffered().0, 2);
    // C.1 arrives at 3000: C.2 is delivered, x waits again, now for E.1, from 3000.
    let out = rs[1].handle_message(3_000, A, Message::Push { ops: vec![c1] });
    assert_eq!(applied(&out), vec![Dot::new(C, 1), Dot::new(C, 2)]);
    assert_eq!(rs[1].buffered().0, 1);
    let out = rs[1].handle_tick(100 + AGE);
    assert!(events(&out).iter().all(|e| !matches!(e, Event::Dropped { .. })), "{:?}", events(&out));
    assert_eq!(rs[1].buffered().0, 1, "x made progress at 3000");

    // At 3000 + AGE it has waited long enough.
    let out = rs[1].handle_tick(3_000 + AGE);
    assert_eq!(events(&out), vec![Event::Dropped { dot: x.dot, reason }]);
    assert_eq!(rs[1].buffered(), (0, 0));
    assert_eq!(rs[1].stats().dropped, 1);

    // When E.1 and x come again (anti-entropy would bring them in this order), both apply.
    let out = rs[1].handle_message(9_000, A, Message::Ops { ops: vec![e1, x.clone()], more: false });
    assert_eq!(applied(&out), vec![Dot::new(E, 1), x.dot]);
    assert_eq!(rs[1].buffered(), (0, 0));
}

// ---- anti-entropy ---------------------------------------------------------------------------------

#[test]
fn digest_is_answered_with_exactly_the_missing_ops_in_causal_order() {
    let mut rs = mesh(3, &Config::default());
    // A: a1 (B gets it), a2 (B does not).
    let (a1, out) = add(&mut rs[0], 1, "milk", 1);
    let a1_to_b = sends(A, &out).into_iter().find(|(_, to, _)| *to == B).unwrap();
    let _ = deliver(&mut rs, 2, a1_to_b);
    let (a2, _) = add(&mut rs[0], 3, "milk", 1);
    // C: c1, which only A gets; then A's a3 depends on it.
    let (c1, out) = add(&mut rs[2], 4, "eggs", 6);
    let c1_to_a = sends(C, &out).into_iter().find(|(_, to, _)| *to == A).unwrap();
    let _ = deliver(&mut rs, 5, c1_to_a);
    let (a3, _) = add(&mut rs[0], 6, "bread", 1);
    assert_eq!(record(&rs[0], a3).deps, vec![c1]);

    let now = GRACE + 10;
    let digest = sync_now(&mut rs, B, now).into_iter().find(|(_, to, _)| *to == A).unwrap();
    let Message::Digest { vv: Some(theirs), reply: true, .. } = &digest.2 else { panic!("{digest:?}") };
    assert_eq!(theirs.0, vv(&[(A, 1)]));
    let (outputs, answer) = deliver(&mut rs, now + 1, digest);
    assert_eq!(outputs.len(), 1, "only the answer: A lacks nothing of B's");
    assert_eq!(answer.len(), 1);
    let Message::Ops { ops, more } = &answer[0].2 else { panic!("{answer:?}") };
    assert!(!more);
    assert_eq!(ops.iter().map(|r| r.dot).collect::<Vec<_>>(), vec![a2, c1, a3]);
    assert_eq!(rs[0].stats().ops_pulled, 3);

    let (outputs, replies) = deliver(&mut rs, now + 2, answer[0].clone());
    assert_eq!(applied(&outputs), vec![a2, c1, a3]);
    assert_eq!(rs[1].stats().pulled_new, 3);
    // The ops were stale news (older than the grace): B passes it on at once, by an exchange
    // with another peer (C, the only one left), instead of waiting for its next round.
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!((replies[0].1, kind(&replies[0].2).as_str()), (C, "digest(full=true, reply=true)"));
    assert_eq!(rs[1].version(), rs[0].version());
    assert_eq!(rs[1].state(), rs[0].state());
    assert_eq!(a1, Dot::new(A, 1));
}

#[test]
fn anti_entropy_holds_back_ops_younger_than_the_grace() {
    assert_eq!(Config::default().push_grace_ms, GRACE);
    const T: u64 = 10_000;
    let mut rs = mesh(2, &Config::default());
    // Two ops of A whose pushes are still on their way (or lost).
    let (a1, _) = add(&mut rs[0], T, "milk", 1);
    let (a2, _) = add(&mut rs[0], T + 500, "eggs", 1);
    // What A answers to B's digest at `now` (B stays empty: the answers are not delivered).
    let answer = |rs: &mut Vec<Replica<Cart>>, now: u64| -> Vec<Dot> {
        let digest = sync_now(rs, B, now).remove(0);
        let (_, answer) = deliver(rs, now, digest);
        answer.iter().flat_map(|(_, _, m)| pushed_ops(m)).collect()
    };
    assert_eq!(answer(&mut rs, T + 999), vec![], "a1 is younger than the grace: the tree may still bring it");
    assert_eq!(answer(&mut rs, T + 1_000), vec![a1]);
    assert_eq!(answer(&mut rs, T + 1_499), vec![a1]);
    assert_eq!(answer(&mut rs, T + 1_500), vec![a1, a2]);
    assert_eq!(rs[0].stats().ops_pulled, 4);

    // Per origin, everything after a held-back op is held back too, so that what is sent can
    // be applied: here C's clock stepped back, so c2 is older than c1 (created_ms is only
    // ever compared with the clock, never used to order ops).
    let mut rs = mesh(2, &Config::default());
    let (a1, _) = add(&mut rs[0], T, "milk", 1);
    let c1 = foreign_op(C, 1, &[], T + 1_400, "eggs");
    let c2 = foreign_op(C, 2, &[], T, "bread");
    let out = rs[0].handle_message(T + 1_400, C, Message::Ops { ops: vec![c1.clone(), c2.clone()], more: false });
    assert_eq!(applied(&out), vec![c1.dot, c2.dot]);
    assert_eq!(answer(&mut rs, T + 1_500), vec![a1], "c2 is old enough but waits behind c1");
    assert_eq!(answer(&mut rs, T + 2_400), vec![a1, c1.dot, c2.dot]);
}

/// Probes `r`'s grace: it makes an op at `now`, and a replica with nothing asks for it just
/// before and just after `expected` ms.
fn assert_grace(r: &mut Replica<Cart>, now: u64, expected: u64) {
    let me = r.id();
    let (dot, _) = r.local_update(now, |cart| cart.update("probe".to_string(), |q| q.inc(me, 1))).unwrap();
    let mut served = |at: u64| {
        let digest = Message::Digest { hash: 0, vv: Some(CompactVv(VClock::new())), reply: false };
        sends(me, &r.handle_message(at, id(99), digest)).iter().any(|(_, _, m)| pushed_ops(m).contains(&dot))
    };
    assert!(!served(now + expected - 1), "{me:?} served an op younger than {expected} ms");
    assert!(served(now + expected), "{me:?} held back an op of {expected} ms");
}

#[test]
fn grace_is_twice_the_recent_push_delays_within_bounds() {
    let config = Config { push_grace_ms: 100, anti_entropy_interval_ms: 1_000, ..Config::default() };
    let mut rs = mesh(2, &config);
    // B has measured nothing: the floor, push_grace_ms.
    assert_grace(&mut rs[1], 1_000, 100);
    // Pushes that took 30 ms: 2 × 30 is under the floor.
    let mut now = 2_000;
    let mut push_with_delay = |rs: &mut Vec<Replica<Cart>>, delay: u64| {
        now += 10_000;
        let (_, out) = add(&mut rs[0], now, "milk", 1);
        let _ = deliver(rs, now + delay, sends(A, &out).remove(0));
        now + delay
    };
    for _ in 0..20 {
        push_with_delay(&mut rs, 30);
    }
    let t = push_with_delay(&mut rs, 30);
    assert_grace(&mut rs[1], t, 100);
    // Pushes that took 300 ms: twice that.
    for _ in 0..30 {
        push_with_delay(&mut rs, 300);
    }
    let t = push_with_delay(&mut rs, 300);
    assert_grace(&mut rs[1], t, 600);
    // One slow push among the last fifty does not move the 90th percentile.
    let t = push_with_delay(&mut rs, 5_000);
    assert_grace(&mut rs[1], t, 600);
    // Many slow ones do; the grace is capped at ten anti-entropy intervals.
    for _ in 0..10 {
        push_with_delay(&mut rs, 8_000);
    }
    let t = push_with_delay(&mut rs, 8_000);
    assert_grace(&mut rs[1], t, 10_000);
}

#[test]
fn pulled_stale_ops_are_forwarded_down_their_origins_tree() {
    // Chains (fanout 1): A's tree is A → B → C.
    let config = Config { tree_fanout: 1, ..Config::default() };
    let mut rs = mesh(3, &config);
    let (a1, _lost) = add(&mut rs[0], 1, "milk", 1);
    // C has told B what it has (nothing).
    let c_to_b = sync_now(&mut rs, C, 2).into_iter().find(|m| m.1 == B).unwrap();
    let _ = deliver(&mut rs, 2, c_to_b);

    // B pulls from A once a1 is older than the grace: the tree failed to bring it, so B
    // passes it on down A's tree, to C — and chains an exchange with another peer (C again).
    let now = GRACE + 10;
    let b_to_a = sync_now(&mut rs, B, now).into_iter().find(|m| m.1 == A).unwrap();
    let (_, answer) = deliver(&mut rs, now, b_to_a);
    let (outputs, from_b) = deliver(&mut rs, now + 1, answer[0].clone());
    assert_eq!(applied(&outputs), vec![a1]);
    let shape: Vec<(ReplicaId, String)> = from_b.iter().map(|(_, to, m)| (*to, kind(m))).collect();
    assert_eq!(shape, vec![(C, "digest(full=true, reply=true)".into()), (C, "push([1])".into())]);
    let (outputs, _) = deliver(&mut rs, now + 2, from_b[1].clone());
    assert_eq!(applied(&outputs), vec![a1]);
    assert_eq!((rs[2].stats().received_new, rs[2].stats().pulled_new), (1, 0), "C got it by push");
}

#[test]
fn pulled_ops_are_forwarded_only_when_stale_and_only_to_children_known_to_lack_them() {
    let config = Config { tree_fanout: 1, ..Config::default() };
    let now = GRACE + 10;
    // What B pushes after pulling `rec` from A at `now`, having heard from C what `c_has`.
    let forwards = |c_has: Option<VClock>, rec: &dyn Fn(&Replica<Cart>) -> OpRecord| -> Vec<Msg> {
        let mut rs = mesh(3, &config);
        let _ = add(&mut rs[0], 1, "milk", 1);
        if let Some(v) = c_has {
            let digest = Message::Digest { hash: 0, vv: Some(CompactVv(v)), reply: false };
            let _ = rs[1].handle_message(2, C, digest);
        }
        let rec = rec(&rs[0]);
        let out = rs[1].handle_message(now, A, Message::Ops { ops: vec![rec], more: false });
        assert_eq!(applied(&out), vec![Dot::new(A, 1)]);
        sends(B, &out).into_iter().filter(|m| matches!(m.2, Message::Push { .. })).collect()
    };
    let a1 = |r: &Replica<Cart>| record(r, Dot::new(A, 1));
    // Stale, C known to lack it: forwarded.
    assert_eq!(links(&forwards(Some(VClock::new()), &a1)), vec![(B, C)]);
    // Stale, but B does not know what C has: a replica catching up alone floods nobody.
    assert!(forwards(None, &a1).is_empty());
    // Stale, C known to have it.
    assert!(forwards(Some(vv(&[(A, 1)])), &a1).is_empty());
    // Fresh (younger than the grace): the tree is still delivering it.
    let fresh = |r: &Replica<Cart>| OpRecord { created_ms: now - 10, ..a1(r) };
    assert!(forwards(Some(VClock::new()), &fresh).is_empty());
}

#[test]
fn stale_batch_chains_an_exchange_with_another_peer_twice_per_round() {
    let mut rs = mesh(4, &Config::default());
    // Five ops of A whose pushes were all lost.
    let recs: Vec<OpRecord> = (1..=5)
        .map(|t| {
            let (dot, _) = add(&mut rs[0], t, "milk", 1);
            record(&rs[0], dot)
        })
        .collect();
    let now = GRACE + 100;
    let batch = |rec: &OpRecord| Message::Ops { ops: vec![rec.clone()], more: false };
    let chained = |out: &[Output]| -> Vec<(ReplicaId, String)> {
        sends(B, out).iter().map(|(_, to, m)| (*to, kind(m))).collect()
    };

    // A stale batch: B starts a whole exchange with a random other peer (not A).
    let out = rs[1].handle_message(now, A, batch(&recs[0]));
    let first = chained(&out);
    assert_eq!(first.len(), 1);
    assert!([C, D].contains(&first[0].0) && first[0].1 == "digest(full=true, reply=true)", "{first:?}");
    // A batch that brings nothing new, or only fresh ops, chains nothing (and costs nothing).
    assert!(chained(&rs[1].handle_message(now, A, batch(&recs[0]))).is_empty());
    let fresh = OpRecord { created_ms: now, ..recs[1].clone() };
    assert!(chained(&rs[1].handle_message(now, A, batch(&fresh))).is_empty());
    // A batch cut short continues with A, not with another peer.
    let out = rs[1].handle_message(now, A, Message::Ops { ops: vec![recs[2].clone()], more: true });
    assert_eq!(chained(&out), vec![(A, "digest(full=true, reply=false)".into())]);
    // The second stale batch chains; the third does not: two per round.
    assert_eq!(chained(&rs[1].handle_message(now, A, batch(&recs[3]))).len(), 1);
    let out = rs[1].handle_message(now, A, batch(&recs[4]));
    assert_eq!(applied(&out), vec![recs[4].dot]);
    assert!(chained(&out).is_empty(), "budget spent: {out:?}");
    assert_eq!(rs[1].version(), rs[0].version());

    // The next round restores the budget.
    let (msgs, t) = tick_until_send(&mut rs[1], now);
    assert_eq!(msgs.len(), 1);
    let (c1, _lost) = add(&mut rs[2], t, "eggs", 1);
    let later = t + GRACE + 1;
    let c1 = record(&rs[2], c1);
    let out = rs[1].handle_message(later, C, batch(&c1));
    assert_eq!(chained(&out).len(), 1);
    assert_ne!(chained(&out)[0].0, C);
}

#[test]
fn stale_news_reaches_a_third_replica_by_the_chained_exchange() {
    let mut rs = mesh(3, &Config::default());
    let (a1, _lost) = add(&mut rs[0], 1, "milk", 1);
    // B's round with A, long after: B learns a1 and passes the news to C at once.
    let now = GRACE + 10;
    let b_to_a = sync_now(&mut rs, B, now).into_iter().filter(|m| m.1 == A).collect();
    let delivered = run(&mut rs, now, b_to_a);
    let shape: Vec<(ReplicaId, ReplicaId, String)> = delivered.iter().map(|(f, t, m)| (*f, *t, kind(m))).collect();
    let expected = [
        (B, A, "digest(full=true, reply=true)"),
        (A, B, "ops([1], more=false)"),
        // Stale news: B chains an exchange with C.
        (B, C, "digest(full=true, reply=true)"),
        // C lacks a1: it shows its vector; B serves it.
        (C, B, "digest(full=true, reply=false)"),
        (B, C, "ops([1], more=false)"),
        // Stale news for C too: it chains with A, which has everything, and it ends there.
        (C, A, "digest(full=true, reply=true)"),
    ];
    assert_eq!(shape, expected.map(|(f, t, k)| (f, t, k.to_string())));
    assert!(rs.iter().all(|r| r.version().contains(&a1)));
}

#[test]
fn answer_is_cut_at_max_batch_bytes_and_continued_by_digest() {
    let config = Config { max_batch_bytes: 100, ..Config::default() };
    let mut a = Replica::<Cart>::new(A, config.clone(), 1);
    for t in 1..=5 {
        let _ = add(&mut a, t, "milk", 1); // no peers yet: nothing pushed
    }
    let mut rs = vec![a, Replica::new(B, config, 2)];
    rs[0].set_peer(B, PeerStatus::Alive);
    rs[1].set_peer(A, PeerStatus::Alive);

    let now = GRACE + 10;
    let digest = sync_now(&mut rs, B, now);
    let delivered = run(&mut rs, now + 1, digest);
    // B's digest, A's batch, B's digest, A's batch, …
    let mut got = Vec::new();
    let batches = delivered.len() / 2;
    assert!(batches >= 2, "{delivered:?}");
    for (i, pair) in delivered.chunks(2).enumerate() {
        let [(b, a, digest), (a2, b2, answer)] = pair else { panic!("not a digest and its answer: {pair:?}") };
        assert_eq!((*b, *a, *a2, *b2), (B, A, A, B));
        assert!(matches!(digest, Message::Digest { vv: Some(_), .. }), "{digest:?}");
        let Message::Ops { ops, more } = answer else { panic!("{answer:?}") };
        let payload: usize = ops.iter().map(|r| r.payload.len()).sum();
        assert!(payload <= 100);
        assert_eq!(*more, i + 1 < batches, "more on every batch but the last");
        got.extend(ops.iter().map(|r| r.dot));
    }
    assert_eq!(got, (1..=5).map(|c| Dot::new(A, c)).collect::<Vec<_>>());
    assert_eq!(rs[1].version(), &vv(&[(A, 5)]));
    assert_eq!(milk(&rs[1]), Some(5));
}

/// The flow drawn in `sync/WIRE.md` §9, "Anti-entropy, push-pull, in batches".
#[test]
fn push_pull_in_batches_follows_the_documented_flow() {
    // Room for three small cart ops per batch.
    let config = Config { max_batch_bytes: 200, ..Config::default() };
    let mut rs = vec![Replica::<Cart>::new(A, config.clone(), 1), Replica::new(B, config, 2)];
    for t in 1..=4 {
        let _ = add(&mut rs[0], t, "milk", 1); // no peers yet: nothing pushed
    }
    let (b1, _) = add(&mut rs[1], 5, "eggs", 6);
    rs[0].set_peer(B, PeerStatus::Alive);
    rs[1].set_peer(A, PeerStatus::Alive);

    let delivered = round(&mut rs, B, GRACE + 10);
    let shape: Vec<(ReplicaId, String)> = delivered.iter().map(|(from, _, m)| (*from, kind(m))).collect();
    let expected = [
        (B, "digest(full=true, reply=true)"),
        (A, "ops([1, 2, 3], more=true)"),
        (A, "digest(full=true, reply=false)"),
        (B, "digest(full=true, reply=false)"),
        (B, "ops([1], more=false)"),
        (A, "ops([4], more=false)"),
    ];
    assert_eq!(shape, expected.map(|(r, k)| (r, k.to_string())));
    assert!(rs[0].version().contains(&b1));
    assert_eq!(rs[0].state(), rs[1].state());
}

#[test]
fn continuation_digest_comes_after_the_batch_is_persisted() {
    let config = Config { max_batch_bytes: 1, ..Config::default() };
    let mut a = Replica::<Cart>::new(A, config.clone(), 1);
    let _ = add(&mut a, 1, "milk", 1);
    let _ = add(&mut a, 2, "milk", 1);
    let mut b = Replica::<Cart>::new(B, config, 2);
    a.set_peer(B, PeerStatus::Alive);
    b.set_peer(A, PeerStatus::Alive);
    let now = GRACE + 3;
    let digest = sends(B, &b.sync_now(now)).remove(0).2;
    let answer = sends(A, &a.handle_message(now + 1, B, digest)).remove(0).2;
    assert!(matches!(&answer, Message::Ops { ops, more: true } if ops.len() == 1));
    let outputs = b.handle_message(now + 2, A, answer);
    let persist_at = outputs.iter().position(|o| matches!(o, Output::Persist(_))).unwrap();
    let digest_at = outputs
        .iter()
        .position(|o| matches!(o, Output::Send { msg: Message::Digest { vv: Some(_), reply: false, .. }, .. }))
        .unwrap();
    assert!(persist_at < digest_at, "advertise only what is durable: {outputs:?}");
}

/// Two replicas that have exchanged an op and sent each other a whole digest, so their next
/// rounds are idle.
fn in_sync_pair(config: &Config) -> (Vec<Replica<Cart>>, u64) {
    let mut rs = mesh(2, config);
    let (_, out) = add(&mut rs[0], 1, "milk", 1);
    run(&mut rs, 2, sends(A, &out));
    let mut now = 2;
    for i in 0..2 {
        let digests = sends(id(i + 1), &rs[i as usize].sync_now(now));
        assert!(run(&mut rs, now, digests).len() == 1, "in sync: a digest and no answer");
        now += 1;
    }
    (rs, now)
}

/// Ticks `r` at its deadlines until it sends something; returns that and the time.
fn tick_until_send(r: &mut Replica<Cart>, mut now: u64) -> (Vec<Msg>, u64) {
    for _ in 0..10 {
        now = r.next_deadline().expect("scheduled").max(now + 1);
        let msgs = sends(r.id(), &r.handle_tick(now));
        if !msgs.is_empty() {
            return (msgs, now);
        }
    }
    panic!("no anti-entropy round in 10 deadlines");
}

#[test]
fn idle_digest_is_hash_only_and_in_sync_gets_no_reply() {
    let config = Config { anti_entropy_interval_ms: 100, ..Config::default() };
    let (mut rs, now) = in_sync_pair(&config);
    let mut now = now;
    for _ in 0..3 {
        let (msgs, t) = tick_until_send(&mut rs[0], now);
        now = t;
        assert_eq!(msgs.len(), 1);
        let (_, to, msg) = msgs[0].clone();
        assert_eq!(to, B);
        let Message::Digest { vv: None, reply: true, .. } = msg else { panic!("not hash-only: {msg:?}") };
        let (outputs, replies) = deliver(&mut rs, now, msgs[0].clone());
        assert!(outputs.is_empty() && replies.is_empty(), "{outputs:?}");
    }
    assert_eq!(rs[0].stats().anti_entropy_rounds, 3);
    // A matching hash tells B what A has: B records it for causal stability.
    let known = rs[1].peers().into_iter().find(|p| p.id == A).unwrap().known_vv;
    assert_eq!(known.as_ref(), Some(rs[0].version()));
}

#[test]
fn hash_only_digest_out_of_sync_gets_a_full_digest_back() {
    let config = Config { anti_entropy_interval_ms: 100, ..Config::default() };
    let (mut rs, now) = in_sync_pair(&config);
    let (b1, _lost) = add(&mut rs[1], now, "eggs", 6); // its push never arrives

    // A's next round after b1 is older than the grace.
    let (msgs, now) = tick_until_send(&mut rs[0], now + GRACE);
    assert!(matches!(msgs[0].2, Message::Digest { vv: None, .. }));
    let delivered = run(&mut rs, now, msgs);
    let shape: Vec<(ReplicaId, String)> = delivered.iter().map(|(from, _, m)| (*from, kind(m))).collect();
    assert_eq!(
        shape,
        vec![
            (A, "digest(full=false, reply=true)".to_string()),
            // B's hash differs and A sent no vector: B shows its own, asking for A's.
            (B, "digest(full=true, reply=true)".to_string()),
            // A lacks b1 and B lacks nothing: A answers with its vector only, not asking back.
            (A, "digest(full=true, reply=false)".to_string()),
            (B, "ops([1], more=false)".to_string()),
        ]
    );
    assert!(rs[0].version().contains(&b1));
    assert_eq!(rs[0].state(), rs[1].state());
}

#[test]
fn reply_flag_ends_the_exchange_without_ping_pong() {
    let mut rs = mesh(2, &Config::default());
    let (a1, _lost) = add(&mut rs[0], 1, "milk", 1);
    let (b1, _lost) = add(&mut rs[1], 1, "eggs", 6);

    let now = GRACE + 2;
    let delivered = round(&mut rs, A, now);
    let kinds: Vec<(ReplicaId, ReplicaId, &'static str, Option<bool>)> = delivered
        .iter()
        .map(|(f, t, m)| match m {
            Message::Digest { reply, .. } => (*f, *t, "digest", Some(*reply)),
            Message::Ops { .. } => (*f, *t, "ops", None),
            _ => (*f, *t, "other", None),
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            (A, B, "digest", Some(true)),
            (B, A, "ops", None),           // b1
            (B, A, "digest", Some(false)), // B lacks a1: its digest does not ask back
            (A, B, "ops", None),           // a1
        ]
    );
    assert!(rs[0].version().contains(&b1) && rs[1].version().contains(&a1));
    assert_eq!(rs[0].state(), rs[1].state());

    // In sync: a round is one message, from either side.
    assert_eq!(round(&mut rs, A, now + 1).len(), 1);
    assert_eq!(round(&mut rs, B, now + 2).len(), 1);
}

// ---- compaction and snapshots -------------------------------------------------------------------

#[test]
fn compaction_waits_until_every_peer_has_the_ops() {
    let config = Config { compaction_threshold: 2, ..Config::default() };
    let mut rs = mesh(3, &config);
    let mut held_for_c = Vec::new();
    for t in 1..=4 {
        let (_, out) = add(&mut rs[0], t, "milk", 1);
        for m in sends(A, &out) {
            if m.1 == B {
                let _ = deliver(&mut rs, t, m);
            } else {
                held_for_c.push(m); // C's copies are slow
            }
        }
    }
    assert_eq!(rs[0].log_size().0, 4);
    assert!(snapshots_persisted(&rs[0].handle_tick(10)).is_empty(), "no peer has reported yet");

    // B has everything and says so; C has not reported: still nothing compacted.
    let b_digest = sync_now(&mut rs, B, 11).into_iter().find(|m| m.1 == A).unwrap();
    assert!(deliver(&mut rs, 11, b_digest).1.is_empty());
    assert!(snapshots_persisted(&rs[0].handle_tick(12)).is_empty());
    assert_eq!(rs[0].log_size().0, 4);

    // C has the first three and says so: the log is cut there, and only there.
    for m in held_for_c.drain(..3) {
        let _ = deliver(&mut rs, 13, m);
    }
    let c_digest = sync_now(&mut rs, C, 14).into_iter().find(|m| m.1 == A).unwrap();
    let (_, answer) = deliver(&mut rs, 14, c_digest);
    assert!(answer.is_empty(), "op 4 is younger than the grace: A leaves it to the tree");
    let outputs = rs[0].handle_tick(15);
    let snaps = snapshots_persisted(&outputs);
    assert_eq!(snaps.len(), 1, "{outputs:?}");
    let (snap_vv, floor, state) = &snaps[0];
    assert_eq!(snap_vv, &vv(&[(A, 4)]));
    assert_eq!(floor, &vv(&[(A, 3)]));
    assert_eq!(&codec::from_slice::<Cart>(state).unwrap(), rs[0].state());
    assert_eq!(rs[0].floor(), &vv(&[(A, 3)]));
    assert_eq!(rs[0].log().map(|r| r.dot).collect::<Vec<_>>(), vec![Dot::new(A, 4)]);
    // Nothing more is stable: the next tick compacts nothing.
    assert!(snapshots_persisted(&rs[0].handle_tick(16)).is_empty());
}

/// A (with B) compacts everything it has, then D, a stranger with nothing, asks.
fn compacted_pair(config: &Config) -> Vec<Replica<Cart>> {
    let mut rs = mesh(2, config);
    for (t, item) in ["milk", "eggs", "bread"].iter().enumerate() {
        let (_, out) = add(&mut rs[0], t as u64, item, 2);
        run(&mut rs, t as u64, sends(A, &out));
    }
    round(&mut rs, B, 5);
    assert_eq!(snapshots_persisted(&rs[0].handle_tick(6)).len(), 1);
    assert_eq!(rs[0].log_size().0, 0);
    assert_eq!(rs[0].floor(), &vv(&[(A, 3)]));
    rs.push(Replica::new(C, config.clone(), 3)); // unused slot: keeps ids = index + 1
    let mut d = Replica::new(D, config.clone(), 4);
    d.set_peer(A, PeerStatus::Alive);
    rs.push(d);
    rs
}

fn snapshot_chunks(msgs: &[Msg]) -> Vec<SnapshotChunk> {
    msgs.iter()
        .map(|(_, _, m)| match m {
            Message::Snapshot { chunk } => chunk.clone(),
            other => panic!("not a snapshot chunk: {other:?}"),
        })
        .collect()
}

#[test]
fn peer_behind_the_floor_catches_up_by_snapshot() {
    let config = Config { compaction_threshold: 0, snapshot_chunk_bytes: 16, ..Config::default() };
    let mut rs = compacted_pair(&config);
    let digest = sync_now(&mut rs, D, 10);
    let (_, chunks_msgs) = deliver(&mut rs, 10, digest[0].clone());
    let chunks = snapshot_chunks(&chunks_msgs);
    let state = codec::to_vec(rs[0].state()).unwrap();
    assert_eq!(chunks.len(), state.len().div_ceil(16));
    assert!(chunks.len() > 1);
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c.index as usize, i);
        assert_eq!(c.id, chunks[0].id);
        assert_eq!(c.last, i == chunks.len() - 1);
        assert_eq!(c.vv.as_ref().map(|v| &v.0), (i == 0).then(|| rs[0].version()));
    }
    assert_eq!(chunks.iter().flat_map(|c| c.data.to_vec()).collect::<Vec<u8>>(), state);
    assert_eq!(rs[0].stats().snapshots_sent, 1);

    let mut outputs = Vec::new();
    for m in chunks_msgs {
        outputs.extend(deliver(&mut rs, 11, m).0);
    }
    let a_vv = rs[0].version().clone();
    assert_eq!(events(&outputs), vec![Event::SnapshotMerged { from: A, vv: a_vv.clone() }]);
    let snaps = snapshots_persisted(&outputs);
    assert_eq!(snaps.len(), 1);
    assert_eq!((&snaps[0].0, &snaps[0].1), (&a_vv, &a_vv));
    assert_eq!(rs[3].state(), rs[0].state());
    assert_eq!(rs[3].version(), rs[0].version());
    assert_eq!(rs[3].stats().snapshots_merged, 1);

    // From there on, ops: A's next op reaches D through the log, not another snapshot.
    let (a4, _) = add(&mut rs[0], 12, "milk", 1);
    let delivered = round(&mut rs, D, 12 + GRACE);
    assert!(delivered.iter().all(|(_, _, m)| !matches!(m, Message::Snapshot { .. })));
    assert!(rs[3].version().contains(&a4));
    assert_eq!(rs[3].state(), rs[0].state());
}

#[test]
fn op_after_a_snapshot_merge_depends_on_what_the_snapshot_brought() {
    let config = Config { compaction_threshold: 0, ..Config::default() };
    let mut rs = compacted_pair(&config);
    let digest = sync_now(&mut rs, D, 10);
    run(&mut rs, 10, digest);
    assert_eq!(rs[3].stats().snapshots_merged, 1);
    // D does not know which of A's ops depend on which: it depends on A's latest.
    let (d1, out) = add(&mut rs[3], 11, "milk", 1);
    assert_eq!(deps_of_local(&out), vec![Dot::new(A, 3)]);
    let (outputs, _) = deliver(&mut rs, 12, sends(D, &out).remove(0));
    assert_eq!(applied(&outputs), vec![d1]);
    assert_eq!(rs[0].state(), rs[3].state());
}

#[test]
fn snapshots_to_one_peer_are_rate_limited() {
    let config = Config {
        compaction_threshold: 0,
        anti_entropy_interval_ms: 100,
        snapshot_chunk_bytes: 1 << 20,
        ..Config::default()
    };
    let mut rs = compacted_pair(&config);
    let digest = sync_now(&mut rs, D, 10).remove(0);
    let (_, first) = deliver(&mut rs, 1_000, digest.clone());
    assert_eq!(snapshot_chunks(&first).len(), 1);
    // D asks again (it has not merged it yet): within 4 intervals A sends nothing.
    for now in [1_001, 1_200, 1_399] {
        let (outputs, again) = deliver(&mut rs, now, digest.clone());
        assert!(outputs.is_empty() && again.is_empty(), "at {now}: {outputs:?}");
    }
    assert_eq!(rs[0].stats().snapshots_sent, 1);
    // After 4 intervals the snapshot is sent again (the first may have been lost).
    let (_, later) = deliver(&mut rs, 1_400, digest);
    assert_eq!(snapshot_chunks(&later).len(), 1);
    assert_eq!(rs[0].stats().snapshots_sent, 2);
}

fn chunk(index: u32, last: bool, vv: Option<VClock>, data: &[u8]) -> Message {
    Message::Snapshot {
        chunk: SnapshotChunk { id: 1, index, last, vv: vv.map(CompactVv), data: Bytes::copy_from_slice(data) },
    }
}

fn misbehaved(outputs: &[Output]) -> Vec<String> {
    events(outputs)
        .into_iter()
        .filter_map(|e| match e {
            Event::PeerMisbehaved { peer, reason } => {
                assert_eq!(peer, A);
                Some(reason)
            }
            _ => None,
        })
        .collect()
}

/// A snapshot from a peer may claim any counter, ours included: once it claims our last
/// dot, a local update is refused with its own error and changes nothing (found by fuzzing:
/// it used to overflow).
#[test]
fn local_update_after_a_forged_claim_of_our_last_dot_is_refused() {
    let mut rs = mesh(2, &Config::default());
    let state = codec::to_vec(&Cart::new()).unwrap();
    rs[1].handle_message(1, A, chunk(0, true, Some(vv(&[(B, u64::MAX)])), &state));
    assert_eq!(rs[1].version().get(&B), u64::MAX);
    let err = rs[1].local_update(2, |c| c.update("milk".to_string(), |q| q.inc(B, 1))).unwrap_err();
    assert_eq!(err, ProtocolError::DotsExhausted { replica: B.to_string() });
    assert_eq!(rs[1].state(), &Cart::new(), "the state is unchanged");
    assert_eq!(rs[1].version().get(&B), u64::MAX);
}

#[test]
fn malformed_snapshot_is_reported_and_the_replica_keeps_working() {
    let config = Config { max_snapshot_bytes: 64, ..Config::default() };
    let mut rs = mesh(2, &config);
    let claimed = vv(&[(A, 5)]);

    // Bytes that are not a cart state.
    let out = rs[1].handle_message(1, A, chunk(0, true, Some(claimed.clone()), b"not a cart"));
    let reasons = misbehaved(&out);
    assert!(reasons.len() == 1 && reasons[0].starts_with("undecodable snapshot"), "{reasons:?}");
    // A first chunk without the version vector.
    let out = rs[1].handle_message(2, A, chunk(0, true, None, b""));
    assert_eq!(misbehaved(&out), vec!["snapshot without a version vector".to_string()]);
    // More than max_snapshot_bytes, over two chunks.
    assert!(rs[1].handle_message(3, A, chunk(0, false, Some(claimed.clone()), &[0; 40])).is_empty());
    let out = rs[1].handle_message(4, A, chunk(1, true, None, &[0; 40]));
    assert_eq!(misbehaved(&out), vec!["snapshot larger than the configured maximum".to_string()]);
    // A chunk out of order or of no snapshot in progress is ignored.
    assert!(rs[1].handle_message(5, A, chunk(3, true, None, b"x")).is_empty());

    assert_eq!(rs[1].version(), &VClock::new(), "nothing was merged");
    assert_eq!(rs[1].state(), &Cart::new());
    assert_eq!(rs[1].stats().snapshots_merged, 0);

    // The replica still works, with the same peer.
    let (dot, out) = add(&mut rs[0], 6, "milk", 1);
    run(&mut rs, 7, sends(A, &out));
    assert!(rs[1].version().contains(&dot));
    assert_eq!(rs[1].state(), rs[0].state());
}

/// Snapshots from several peers at once share one budget (`max_assembling_bytes`): the
/// chunk that would pass it drops its own snapshot, without blaming the peer; the snapshot
/// already under way completes, and the dropped one arrives when sent again.
#[test]
fn snapshots_from_many_peers_share_one_assembly_budget() {
    let mut donor = Cart::new();
    donor.update("milk".to_string(), |q| q.inc(A, 2));
    let state = codec::to_vec(&donor).unwrap();
    let (head, tail) = state.split_at(state.len() / 2);
    let config = Config { max_snapshot_bytes: state.len(), max_assembling_bytes: state.len() + 4, ..Config::default() };
    let mut rs = mesh(3, &config);
    let claimed = vv(&[(A, 1)]);

    // A's snapshot is under way when C's begins: C's first chunk, the whole state, would
    // take both past the budget.
    assert!(rs[1].handle_message(1, A, chunk(0, false, Some(claimed.clone()), head)).is_empty());
    let out = rs[1].handle_message(2, C, chunk(0, true, Some(claimed.clone()), &state));
    assert!(events(&out).is_empty(), "C is not blamed: {out:?}");
    assert_eq!(rs[1].stats().snapshots_refused, 1);
    assert_eq!(rs[1].stats().snapshots_merged, 0);

    // A's completes.
    let out = rs[1].handle_message(3, A, chunk(1, true, None, tail));
    assert_eq!(events(&out), vec![Event::SnapshotMerged { from: A, vv: claimed.clone() }]);
    assert_eq!(rs[1].state(), &donor);

    // Sent again with nothing else under way, C's fits.
    let out = rs[1].handle_message(4, C, chunk(0, true, Some(claimed.clone()), &state));
    assert_eq!(events(&out), vec![Event::SnapshotMerged { from: C, vv: claimed }]);
    assert_eq!(rs[1].stats().snapshots_merged, 2);
    assert_eq!(rs[1].stats().snapshots_refused, 1);
}

#[test]
fn peer_breaking_the_rules_is_reported_not_obeyed() {
    let config = Config { max_deps: 2, max_vv_entries: 2, ..Config::default() };
    let mut rs = mesh(2, &config);
    let payload = Bytes::from(codec::to_vec(&Cart::new().update("milk".to_string(), |q| q.inc(A, 1))).unwrap());

    // An op with counter 0.
    let zero = OpRecord { dot: Dot::new(A, 0), deps: vec![], created_ms: 1, payload: payload.clone() };
    let out = rs[1].handle_message(1, A, Message::Push { ops: vec![zero] });
    assert_eq!(misbehaved(&out), vec!["op with counter 0".to_string()]);
    // An op with more dependencies than allowed: dropped.
    let deps = (10..13).map(|i| Dot::new(id(i), 1)).collect();
    let many = OpRecord { dot: Dot::new(A, 1), deps, created_ms: 1, payload: payload.clone() };
    let out = rs[1].handle_message(2, A, Message::Push { ops: vec![many] });
    assert_eq!(events(&out), vec![Event::Dropped { dot: Dot::new(A, 1), reason: "too many dependencies" }]);
    // An op whose payload is not a cart op: dropped.
    let junk = OpRecord { dot: Dot::new(A, 1), deps: vec![], created_ms: 1, payload: Bytes::from_static(b"\xff") };
    let out = rs[1].handle_message(3, A, Message::Push { ops: vec![junk] });
    assert_eq!(events(&out), vec![Event::Dropped { dot: Dot::new(A, 1), reason: "undecodable op" }]);
    // A version vector with more entries than allowed, in a digest or a snapshot: refused.
    let big = vv(&[(id(10), 1), (id(11), 1), (id(12), 1)]);
    let out = rs[1].handle_message(4, A, Message::Digest { hash: 0, vv: Some(CompactVv(big.clone())), reply: true });
    assert_eq!(misbehaved(&out), vec!["version vector of 3 entries".to_string()]);
    assert!(sends(B, &out).is_empty());
    let state = codec::to_vec(&Cart::new()).unwrap();
    let out = rs[1].handle_message(4, A, chunk(0, true, Some(big), &state));
    assert_eq!(misbehaved(&out), vec!["snapshot version vector of 3 entries".to_string()]);
    assert_eq!(rs[1].stats().snapshots_merged, 0);

    assert_eq!(rs[1].version(), &VClock::new());
    // The real op still gets through.
    let (dot, out) = add(&mut rs[0], 5, "milk", 1);
    run(&mut rs, 6, sends(A, &out));
    assert!(rs[1].version().contains(&dot));
}

// ---- sessions -----------------------------------------------------------------------------------

#[test]
fn wait_for_is_immediate_when_caught_up_and_signals_later_otherwise() {
    let mut rs = mesh(2, &Config::default());
    assert!(rs[1].wait_for(1, VClock::new()), "the empty token is always satisfied");
    let (_, out) = add(&mut rs[0], 1, "milk", 1);
    let token = rs[0].token();
    assert_eq!(token, vv(&[(A, 1)]));
    assert!(!rs[1].wait_for(7, token.clone()));
    assert!(!rs[1].wait_for(8, vv(&[(A, 2)])));

    let (outputs, _) = deliver(&mut rs, 2, sends(A, &out).remove(0));
    assert!(events(&outputs).contains(&Event::SessionReady { id: 7 }));
    assert!(!events(&outputs).contains(&Event::SessionReady { id: 8 }));
    let ready_at = outputs.iter().position(|o| matches!(o, Output::Event(Event::SessionReady { .. }))).unwrap();
    let applied_at = outputs.iter().position(|o| matches!(o, Output::Event(Event::Applied { .. }))).unwrap();
    assert!(applied_at < ready_at);
    assert!(rs[1].wait_for(9, token), "now immediate");

    let (_, out) = add(&mut rs[0], 3, "milk", 1);
    let (outputs, _) = deliver(&mut rs, 4, sends(A, &out).remove(0));
    assert_eq!(
        events(&outputs).into_iter().filter(|e| matches!(e, Event::SessionReady { .. })).collect::<Vec<_>>(),
        vec![Event::SessionReady { id: 8 }],
        "each waiting read is signalled once"
    );
}

// ---- restart -------------------------------------------------------------------------------------

/// What a driver keeps durable, following the outputs.
#[derive(Default)]
struct Store {
    snapshot: Option<StoredSnapshot>,
    log: Vec<OpRecord>,
}

impl Store {
    fn apply(&mut self, outputs: &[Output]) {
        for o in outputs {
            match o {
                Output::Persist(recs) => self.log.extend(recs.iter().cloned()),
                Output::PersistSnapshot { vv, floor, state } => {
                    self.snapshot = Some(StoredSnapshot { vv: vv.clone(), floor: floor.clone(), state: state.clone() });
                    self.log.retain(|r| r.dot.counter > floor.get(&r.dot.replica));
                }
                _ => {}
            }
        }
    }

    fn restored(&self) -> Restored {
        Restored { snapshot: self.snapshot.clone(), log: self.log.clone() }
    }
}

/// Delivers like [`run`], and keeps A's store.
fn run_stored(rs: &mut [Replica<Cart>], store: &mut Store, now: u64, queue: Vec<Msg>) {
    let mut queue = VecDeque::from(queue);
    while let Some(m) = queue.pop_front() {
        let to = m.1;
        let (outputs, next) = deliver(rs, now, m);
        if to == A {
            store.apply(&outputs);
        }
        queue.extend(next);
    }
}

#[test]
fn restore_from_persisted_outputs_reproduces_state_and_continues_the_dots() {
    let config = Config { compaction_threshold: 2, ..Config::default() };
    let mut rs = mesh(2, &config);
    let mut store = Store::default();
    let mut now = 1;
    let mut step = |rs: &mut Vec<Replica<Cart>>, store: &mut Store, who: usize, item: &str| {
        now += 1;
        let (_, out) = add(&mut rs[who], now, item, 1);
        if who == 0 {
            store.apply(&out);
        }
        run_stored(rs, store, now, sends(id(who as u128 + 1), &out));
    };
    step(&mut rs, &mut store, 0, "milk");
    step(&mut rs, &mut store, 0, "eggs");
    step(&mut rs, &mut store, 1, "bread");
    step(&mut rs, &mut store, 0, "milk");
    // B reports, A compacts what both have; then more ops on both sides.
    let digests = sync_now(&mut rs, B, 20);
    run_stored(&mut rs, &mut store, 20, digests);
    let out = rs[0].handle_tick(21);
    assert_eq!(snapshots_persisted(&out).len(), 1);
    store.apply(&out);
    step(&mut rs, &mut store, 0, "eggs");
    step(&mut rs, &mut store, 1, "milk");
    assert!(store.snapshot.is_some());
    assert_eq!(rs[0].version(), &vv(&[(A, 4), (B, 2)]));

    let mut restored = Replica::<Cart>::restore(A, config.clone(), 99, store.restored()).unwrap();
    assert_eq!(restored.state(), rs[0].state());
    assert_eq!(restored.version(), rs[0].version());
    assert_eq!(restored.floor(), rs[0].floor());
    assert_eq!(restored.log().collect::<Vec<_>>(), rs[0].log().collect::<Vec<_>>());

    // The next op continues A's sequence and depends on everything the restarted A has.
    restored.set_peer(B, PeerStatus::Alive);
    let (dot, out) = add(&mut restored, 30, "bread", 1);
    assert_eq!(dot, Dot::new(A, 5));
    assert_eq!(deps_of_local(&out), vec![Dot::new(B, 2)]);
    // B takes it like any other op of A.
    let push = sends(A, &out).remove(0);
    let (outputs, _) = deliver(&mut rs, 31, push);
    assert_eq!(applied(&outputs), vec![dot]);
    assert_eq!(rs[1].state(), restored.state());
}

#[test]
fn op_after_restart_depends_on_every_version_vector_entry() {
    let mut rs = mesh(3, &Config::default());
    let mut store = Store::default();
    // B's b1, then C's c1 made after it: A's frontier is c1 alone.
    let (b1, out) = add(&mut rs[1], 1, "milk", 1);
    run_stored(&mut rs, &mut store, 2, sends(B, &out));
    let (c1, out) = add(&mut rs[2], 3, "eggs", 1);
    assert_eq!(deps_of_local(&out), vec![b1]);
    run_stored(&mut rs, &mut store, 4, sends(C, &out));
    assert_eq!(store.log.iter().map(|r| r.dot).collect::<Vec<_>>(), vec![b1, c1]);

    // Restarted, A no longer knows that c1 implies b1: it depends on every origin's latest.
    let mut restored = Replica::<Cart>::restore(A, Config::default(), 7, store.restored()).unwrap();
    let (a1, out) = add(&mut restored, 5, "bread", 1);
    assert_eq!(deps_of_local(&out), vec![b1, c1]);
    // Without the restart it would have listed the frontier only.
    let (same_dot, out) = add(&mut rs[0], 5, "bread", 1);
    assert_eq!((same_dot, deps_of_local(&out)), (a1, vec![c1]));
    // After its first op, the restarted replica is back to the frontier: nothing but a1.
    let (_, out) = add(&mut restored, 6, "milk", 1);
    assert!(deps_of_local(&out).is_empty());
}

#[test]
fn restore_without_snapshot_and_of_a_broken_log() {
    let mut a = Replica::<Cart>::new(A, Config::default(), 1);
    let mut store = Store::default();
    for t in 1..=3 {
        store.apply(&add(&mut a, t, "milk", 1).1);
    }
    let r = Replica::<Cart>::restore(A, Config::default(), 1, store.restored()).unwrap();
    assert_eq!((r.state(), r.version()), (a.state(), a.version()));

    let empty = Replica::<Cart>::restore(A, Config::default(), 1, Restored::default()).unwrap();
    assert_eq!(empty.version(), &VClock::new());

    // A log with a hole is not a causal sequence.
    store.log.remove(1);
    let err = Replica::<Cart>::restore(A, Config::default(), 1, store.restored()).unwrap_err();
    assert!(matches!(err, ProtocolError::Restore(_)), "{err:?}");
}

// ---- membership -------------------------------------------------------------------------------------

#[test]
fn remove_peer_unblocks_compaction() {
    let config = Config { compaction_threshold: 0, ..Config::default() };
    let mut rs = mesh(3, &config);
    let (_, out) = add(&mut rs[0], 1, "milk", 1);
    let to_b = sends(A, &out).into_iter().filter(|m| m.1 == B).collect();
    run(&mut rs, 2, to_b);
    let b_digest = sync_now(&mut rs, B, 3).into_iter().filter(|m| m.1 == A).collect();
    run(&mut rs, 3, b_digest);
    assert!(snapshots_persisted(&rs[0].handle_tick(4)).is_empty(), "C never reported");

    rs[0].remove_peer(&C);
    assert_eq!(rs[0].peers().iter().map(|p| p.id).collect::<Vec<_>>(), vec![B]);
    let snaps = snapshots_persisted(&rs[0].handle_tick(5));
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0].1, vv(&[(A, 1)]));
    assert_eq!(rs[0].log_size().0, 0);
}

#[test]
fn removed_peer_leaves_the_trees() {
    let config = Config { tree_fanout: 1, ..Config::default() };
    let mut rs = mesh(3, &config);
    // A's tree is the chain A → B → C; without B it is A → C.
    let (_, out) = add(&mut rs[0], 1, "milk", 1);
    assert_eq!(targets(&sends(A, &out)), vec![B]);
    rs[0].remove_peer(&B);
    let (_, out) = add(&mut rs[0], 2, "milk", 1);
    assert_eq!(targets(&sends(A, &out)), vec![C]);
}

#[test]
fn message_from_an_unknown_peer_adds_it_to_the_membership_view() {
    let mut a = Replica::<Cart>::new(A, Config::default(), 1);
    assert!(a.peers().is_empty());

    // A digest from a stranger: it joins the view (alive) and is served.
    let _ = add(&mut a, 1, "milk", 1);
    let mut stranger = Replica::<Cart>::new(id(9), Config::default(), 9);
    stranger.set_peer(A, PeerStatus::Alive);
    let now = GRACE + 2;
    let digest = sends(id(9), &stranger.sync_now(now)).remove(0).2;
    let out = a.handle_message(now + 1, id(9), digest);
    let peers = a.peers();
    assert_eq!(peers.len(), 1);
    assert_eq!((peers[0].id, peers[0].status), (id(9), PeerStatus::Alive));
    assert_eq!(peers[0].known_vv, Some(VClock::new()));
    assert_eq!(targets(&sends(A, &out)), vec![id(9)]);

    // A push relayed by another stranger: it joins too; the op is applied. A forwards
    // nothing: in the view A, 9, 10, A is a leaf of id(9)'s tree.
    let (dot, _) = add(&mut stranger, now + 4, "eggs", 1);
    let rec = record(&stranger, dot);
    let out = a.handle_message(now + 5, id(10), Message::Push { ops: vec![rec] });
    assert_eq!(applied(&out), vec![dot]);
    assert!(sends(A, &out).is_empty());
    assert_eq!(a.peers().iter().map(|p| p.id).collect::<Vec<_>>(), vec![id(9), id(10)]);

    // The newcomers are in A's trees: A's next op goes to both.
    let (_, out) = add(&mut a, now + 6, "milk", 1);
    assert_eq!(targets(&sends(A, &out)), vec![id(9), id(10)]);
    // A replica never lists itself, nor answers itself.
    let out = a.handle_message(now + 7, A, Message::Digest { hash: 0, vv: None, reply: true });
    assert!(out.is_empty());
    assert!(a.peers().iter().all(|p| p.id != A));
}

// ---- limits the protocol must keep itself -------------------------------------------------------------

#[test]
fn op_made_after_hearing_from_many_replicas_is_accepted_by_peers() {
    // As many concurrent writers as a version vector may hold: A and max_vv_entries − 1
    // others, whose ops (none depending on another) both A and B delivered. A's next op
    // depends on every one of them — its frontier — which max_deps (= max_vv_entries by
    // default) allows.
    let config = Config::default();
    assert_eq!(config.max_deps, config.max_vv_entries);
    let others = config.max_vv_entries - 1;
    let mut rs = mesh(2, &config);
    let ops: Vec<OpRecord> =
        (0..others as u128).map(|i| foreign_op(id(1_000 + i), 1, &[], 1, &format!("item{i}"))).collect();
    for (r, from) in rs.iter_mut().zip([B, A]) {
        let out = r.handle_message(1, from, Message::Push { ops: ops.clone() });
        assert_eq!(applied(&out).len(), ops.len());
    }
    assert_eq!(rs[0].version(), rs[1].version(), "A and B are in sync");

    // A's next op: B has every op it can depend on, so B must be able to apply it.
    let (dot, out) = add(&mut rs[0], 2, "milk", 1);
    assert_eq!(deps_of_local(&out).len(), others);
    let push = sends(A, &out);
    assert_fit(&push, config.max_frame_bytes);
    let (pushed, _) = deliver(&mut rs, 3, push[0].clone());
    assert_eq!(applied(&pushed), vec![dot], "B never delivers A's op: {:?}", events(&pushed));
    // Their version vectors, max_vv_entries long, are accepted in digests both ways.
    for who in [A, B] {
        let digests = sync_now(&mut rs, who, 4);
        let (outputs, answer) = deliver(&mut rs, 4, digests[0].clone());
        assert!(outputs.is_empty() && answer.is_empty(), "in sync: {:?}", events(&outputs));
    }
}

#[test]
fn op_made_after_hearing_from_more_replicas_than_max_deps_is_accepted_by_peers() {
    let config = Config { max_deps: 16, ..Config::default() };
    let mut rs = mesh(2, &config);
    let ops: Vec<OpRecord> = (0..17u128).map(|i| foreign_op(id(100 + i), 1, &[], 1, &format!("item{i}"))).collect();
    for (r, from) in rs.iter_mut().zip([B, A]) {
        let out = r.handle_message(1, from, Message::Push { ops: ops.clone() });
        assert_eq!(applied(&out).len(), ops.len());
    }
    let (dot, out) = add(&mut rs[0], 2, "milk", 1);
    let (pushed, _) = deliver(&mut rs, 3, sends(A, &out).remove(0));
    round(&mut rs, B, 2 + GRACE);
    assert!(rs[1].version().contains(&dot), "B never delivers A's op: {:?}", events(&pushed));
}

#[test]
fn op_of_an_origin_whose_clock_runs_ahead_is_repaired_by_anti_entropy() {
    const SKEW: u64 = 3_600_000;
    let mut rs = mesh(3, &Config::default());
    // C's clock reads an hour more than A's and B's.
    let (c1, out) = add(&mut rs[2], 1_000 + SKEW, "milk", 1);
    let c_to_a = sends(C, &out).into_iter().find(|m| m.1 == A).unwrap();
    let _ = deliver(&mut rs, 1_001, c_to_a); // C's push to B is lost
    let now = 1_001 + 10 * GRACE;
    let b_to_a = sync_now(&mut rs, B, now).into_iter().find(|m| m.1 == A).unwrap();
    let (_, answer) = deliver(&mut rs, now, b_to_a);
    let sent: Vec<Dot> = answer.iter().flat_map(|(_, _, m)| pushed_ops(m)).collect();
    assert_eq!(sent, vec![c1], "A withholds c1 from B");
}

#[test]
fn tree_fanout_larger_than_the_view_pushes_to_every_peer() {
    let config = Config { tree_fanout: usize::MAX, ..Config::default() };
    let mut rs = mesh(3, &config);
    let (_, out) = add(&mut rs[0], 1, "milk", 1);
    assert_eq!(targets(&sends(A, &out)), vec![B, C]);
}

/// Every message in `msgs` fits in a frame of `max` bytes.
fn assert_fit(msgs: &[Msg], max: usize) {
    for (from, to, m) in msgs {
        let bytes = wire::encode(&Envelope::new(m.clone())).unwrap();
        assert!(wire::frame(&bytes, max).is_ok(), "{from:?} → {to:?}: {} of {} bytes", kind(m), bytes.len());
    }
}

/// Delivers like [`run`], checking that every message fits in a frame of `max` bytes.
fn run_fitting(rs: &mut [Replica<Cart>], now: u64, queue: Vec<Msg>, max: usize) -> Vec<Msg> {
    let delivered = run(rs, now, queue);
    assert_fit(&delivered, max);
    delivered
}

#[test]
fn op_larger_than_half_a_frame_is_not_pushed_but_snapshotted() {
    let config = Config { max_frame_bytes: 1_024, ..Config::default() };
    let mut rs = mesh(2, &config);
    let (small, out) = add(&mut rs[0], 1, "milk", 1);
    assert_eq!(sends(A, &out).len(), 1);
    // A 600-byte item name: the record is more than half a frame.
    let (big, out) = add(&mut rs[0], 2, &"x".repeat(600), 1);
    assert_eq!(big, Dot::new(A, 2));
    assert_eq!(applied(&out), vec![big]);
    assert!(persisted(&out).is_empty(), "not logged: {out:?}");
    assert!(sends(A, &out).is_empty(), "not pushed: {out:?}");
    let snaps = snapshots_persisted(&out);
    assert_eq!(snaps.len(), 1);
    assert_eq!((&snaps[0].0, &snaps[0].1), (&vv(&[(A, 2)]), &vv(&[(A, 2)])));
    assert_eq!(rs[0].floor(), &vv(&[(A, 2)]));
    assert_eq!(rs[0].log_size(), (0, 0), "the floor passed {small:?} too");
    // Just under half a frame still goes as an op.
    let me = A;
    let name = "y".repeat(400);
    let (_, out) = rs[0].local_update(3, |cart| cart.update(name, |q| q.inc(me, 1))).unwrap();
    assert_eq!(sends(A, &out).len(), 1);
    assert_fit(&sends(A, &out), 1_024);
}

#[test]
fn every_message_fits_in_a_frame() {
    // Batches and snapshot chunks as large as the defaults allow (256 KiB, 1 MiB), frames of
    // 1 KiB: the replica keeps both to half a frame. Wall-clock times, as a node has them, so
    // every created_ms takes its full eight bytes.
    const FRAME: usize = 1_024;
    const T0: u64 = 1_700_000_000_000;
    let config = Config { max_frame_bytes: FRAME, ..Config::default() };
    let mut rs = mesh(2, &config);

    // A 2000-byte item name: A's own op is larger than any frame may be. It is not pushed;
    // the op after it is, and waits at B for it.
    let me = A;
    let (big, out) = rs[0].local_update(T0 + 1, |cart| cart.update("x".repeat(2_000), |q| q.inc(me, 1))).unwrap();
    assert!(sends(A, &out).is_empty());
    let (a2, out) = add(&mut rs[0], T0 + 2, "milk", 1);
    run_fitting(&mut rs, T0 + 3, sends(A, &out), FRAME);
    assert_eq!(rs[1].buffered().0, 1);

    // B's next round: A sends its state, in chunks that each fit a frame.
    let digests = sync_now(&mut rs, B, T0 + 4);
    let delivered = run_fitting(&mut rs, T0 + 4, digests, FRAME);
    let chunks = delivered.iter().filter(|(_, _, m)| matches!(m, Message::Snapshot { .. })).count();
    assert!(chunks >= 4, "{chunks} chunks for over 2000 bytes of state in 512-byte slices");
    assert!(rs[1].version().contains(&big) && rs[1].version().contains(&a2));
    assert_eq!(rs[1].buffered().0, 0);
    assert_eq!(rs[1].state(), rs[0].state());

    // Thirty more ops whose pushes are lost: the anti-entropy answer comes in batches that fit.
    for t in 10..40 {
        let _ = add(&mut rs[0], T0 + t, &format!("item{t}"), 1);
    }
    let now = T0 + 40 + GRACE;
    let digests = sync_now(&mut rs, B, now);
    let delivered = run_fitting(&mut rs, now, digests, FRAME);
    let batches = delivered.iter().filter(|(_, _, m)| matches!(m, Message::Ops { .. })).count();
    assert!(batches >= 2, "{batches} batches");
    assert_eq!(rs[1].state(), rs[0].state());
    assert_eq!(rs[1].version(), rs[0].version());
}

/// Soak seed 1004506: a restored replica that neither receives a message nor makes an update
/// must still start anti-entropy on its own, or a cluster whose members all restarted idle
/// never pulls what each missed.
#[test]
fn restored_idle_replica_is_due_at_once_and_starts_anti_entropy() {
    let mut rs = mesh(2, &Config::default());
    let mut store = Store::default();
    let (_, out) = add(&mut rs[0], 1, "milk", 1);
    store.apply(&out);

    let mut restored = Replica::<Cart>::restore(A, Config::default(), 5, store.restored()).unwrap();
    restored.set_peer(B, PeerStatus::Alive);
    assert_eq!(restored.next_deadline(), Some(0), "idle and unscheduled: due now");
    // The first tick schedules the first round within one interval; ticking at the deadlines
    // then sends a digest to the peer without any other input.
    let mut now = 100;
    let mut digests = 0;
    for _ in 0..4 {
        let out = restored.handle_tick(now);
        digests += sends(A, &out).iter().filter(|m| matches!(m.2, Message::Digest { .. })).count();
        now = restored.next_deadline().expect("scheduled").max(now + 1);
    }
    assert!(digests >= 1, "a restored idle replica never started anti-entropy");
}
