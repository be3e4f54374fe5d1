//! SWIM membership in a deterministic simulation: N `Membership`s exchange datagrams through
//! a queue in virtual time (latency 1–5 ms, seeded loss), with members paused (frozen: no
//! timers, no datagrams) or cut off (running, but every datagram in or out lost).
//!
//! A datagram is delivered only if it was sent to the address the recipient really listens
//! on, so "everyone learned everyone's address" is checked by delivery itself as well as by
//! the views.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::SocketAddr;

use bytes::Bytes;
use gossamer_sync::membership::{Config, Event, MemberId, Membership, MembershipError, Output, Timer};
use gossamer_sync::net::{MIN_DATAGRAM_SIZE, NodeId, Ticket};
use gossamer_sync::protocol::PeerStatus;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const PERIOD_MS: u64 = 1_000;

fn node_id(i: usize) -> NodeId {
    let mut bytes = [0u8; 20];
    bytes[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    bytes[8..16].copy_from_slice(&(i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    NodeId::from_bytes(bytes)
}

fn addr_v4(i: usize) -> SocketAddr {
    SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 4433))
}

/// IPv6 with a large generation: the longest identities, for the size bound.
fn addr_v6(i: usize) -> SocketAddr {
    format!("[2001:db8:ffff:ffff:ffff:ffff:{:x}:{:x}]:65535", (i >> 16) | 0x8000, (i & 0xffff) | 0x8000)
        .parse()
        .unwrap()
}

enum Item {
    Datagram { from: NodeId, to: usize, addr: SocketAddr, bytes: Bytes },
    Timer { node: usize, timer: Timer },
}

struct SimNode {
    membership: Membership,
    /// Frozen: timers are held back and datagrams to it are lost.
    paused: bool,
    /// Cut off: everything it sends or receives is lost, but it keeps running.
    cut: bool,
    held_timers: Vec<Timer>,
    /// What its events say: node → (status, address).
    view: BTreeMap<NodeId, (PeerStatus, SocketAddr)>,
    events: Vec<(u64, Event)>,
    /// Respond to datagrams, but never act on its own (for the large-cluster size test).
    passive: bool,
}

struct Sim {
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    items: HashMap<u64, Item>,
    nodes: Vec<SimNode>,
    index: HashMap<NodeId, usize>,
    rng: ChaCha8Rng,
    loss: f64,
    max_datagram: usize,
    datagrams: u64,
    misaddressed: u64,
    errors: Vec<(usize, MembershipError)>,
}

impl Sim {
    fn new(ids: Vec<MemberId>, config: Config, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let index = ids.iter().enumerate().map(|(i, id)| (id.node(), i)).collect();
        let nodes = ids
            .into_iter()
            .map(|id| SimNode {
                membership: Membership::new(id, config.clone(), rng.random()).unwrap(),
                paused: false,
                cut: false,
                held_timers: Vec::new(),
                view: BTreeMap::new(),
                events: Vec::new(),
                passive: false,
            })
            .collect();
        Self {
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            items: HashMap::new(),
            nodes,
            index,
            rng,
            loss: 0.0,
            max_datagram: 0,
            datagrams: 0,
            misaddressed: 0,
            errors: Vec::new(),
        }
    }

    fn cluster(n: usize, seed: u64) -> Self {
        let ids = (0..n).map(|i| MemberId::new(node_id(i), addr_v4(i), 1)).collect();
        Self::new(ids, Config::lan(n as u32), seed)
    }

    fn id(&self, i: usize) -> MemberId {
        *self.nodes[i].membership.id()
    }

    fn push(&mut self, at: u64, item: Item) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.items.insert(self.seq, item);
    }

    /// Carries out node `i`'s outputs.
    fn drain(&mut self, i: usize) {
        let outputs: Vec<Output> = self.nodes[i].membership.drain_outputs().collect();
        let from = self.nodes[i].membership.id().node();
        for output in outputs {
            match output {
                Output::Send { node, addr, bytes } => {
                    assert!(bytes.len() <= MIN_DATAGRAM_SIZE, "datagram of {} bytes", bytes.len());
                    self.max_datagram = self.max_datagram.max(bytes.len());
                    self.datagrams += 1;
                    let lost = self.rng.random_bool(self.loss);
                    let Some(&to) = self.index.get(&node) else { continue };
                    if lost || self.nodes[i].cut {
                        continue;
                    }
                    let latency = self.rng.random_range(1..=5);
                    self.push(self.now + latency, Item::Datagram { from, to, addr, bytes });
                }
                Output::ScheduleTimer { after, timer } => {
                    assert!(timer.deadline() >= self.now + after.as_millis() as u64);
                    self.push(timer.deadline(), Item::Timer { node: i, timer });
                }
                Output::Event(event) => {
                    let view = &mut self.nodes[i].view;
                    match event.clone() {
                        Event::Up { node, addr } => {
                            view.insert(node, (PeerStatus::Alive, addr));
                        }
                        Event::AddressChanged { node, addr } => {
                            view.get_mut(&node).expect("address change of an unknown member").1 = addr;
                        }
                        Event::Suspect { node } => {
                            view.get_mut(&node).expect("suspicion of an unknown member").0 = PeerStatus::Suspect;
                        }
                        Event::Down { node } => {
                            view.get_mut(&node).expect("down of an unknown member").0 = PeerStatus::Down;
                        }
                        _ => {}
                    }
                    self.nodes[i].events.push((self.now, event));
                }
            }
        }
    }

    fn step(&mut self) -> bool {
        let Some(Reverse((at, seq))) = self.queue.pop() else { return false };
        let item = self.items.remove(&seq).unwrap();
        self.now = at;
        match item {
            Item::Datagram { from, to, addr, bytes } => {
                let node = &mut self.nodes[to];
                if node.paused || node.cut {
                    return true;
                }
                if node.membership.id().addr() != addr {
                    self.misaddressed += 1;
                    return true;
                }
                if let Err(e) = node.membership.handle_datagram(from, &bytes, at) {
                    self.errors.push((to, e));
                }
                self.drain(to);
            }
            Item::Timer { node, timer } => {
                let n = &mut self.nodes[node];
                if n.passive {
                    return true;
                }
                if n.paused {
                    n.held_timers.push(timer);
                    return true;
                }
                // Late timers can disturb a probe cycle; foca reports it and recovers.
                if let Err(e) = n.membership.handle_timer(timer, at) {
                    assert!(matches!(e, MembershipError::Swim(_)), "{e}");
                }
                self.drain(node);
            }
        }
        true
    }

    fn run_until(&mut self, until: u64) {
        while let Some(Reverse((at, _))) = self.queue.peek() {
            if *at > until {
                break;
            }
            self.step();
        }
        self.now = self.now.max(until);
    }

    /// Runs until `done` holds (checked every 100 ms) or `limit` passes; returns the time.
    fn run_until_true(&mut self, limit: u64, mut done: impl FnMut(&Sim) -> bool) -> Option<u64> {
        loop {
            if done(self) {
                return Some(self.now);
            }
            if self.now >= limit {
                return None;
            }
            let next = self.now + 100;
            self.run_until(next);
        }
    }

    fn announce(&mut self, i: usize, seed: usize) {
        let ticket = Ticket::new(self.id(seed).node(), self.id(seed).addr());
        self.nodes[i].membership.announce(ticket, self.now).unwrap();
        self.drain(i);
    }

    fn pause(&mut self, i: usize) {
        self.nodes[i].paused = true;
    }

    fn resume(&mut self, i: usize) {
        self.nodes[i].paused = false;
        for timer in std::mem::take(&mut self.nodes[i].held_timers) {
            self.push(self.now, Item::Timer { node: i, timer });
        }
    }

    /// Whether every running member (but `except`) sees every member in `alive` alive at its
    /// real address — by its events and by `members()` — and every member in `down` down.
    fn views_agree(&self, alive: &[usize], down: &[usize]) -> bool {
        self.nodes.iter().enumerate().filter(|(i, _)| alive.contains(i)).all(|(i, n)| {
            let sees = |j: usize, want: PeerStatus| {
                let id = self.id(j);
                let by_events = n.view.get(&id.node()).is_some_and(|&(s, a)| s == want && a == id.addr());
                let by_members = n.membership.member(&id.node()).is_some_and(|m| m.status == want && m.id == id);
                by_events && by_members
            };
            alive.iter().filter(|&&j| j != i).all(|&j| sees(j, PeerStatus::Alive))
                && down.iter().all(|&j| n.view.get(&self.id(j).node()).is_some_and(|&(s, _)| s == PeerStatus::Down))
        })
    }

    /// Every member announces to member 0 (a few milliseconds apart).
    fn start(&mut self) {
        for i in 1..self.nodes.len() {
            self.run_until(self.now + 3);
            self.announce(i, 0);
        }
    }

    fn rejoins(&self, i: usize) -> usize {
        self.nodes[i].events.iter().filter(|(_, e)| matches!(e, Event::Rejoined { .. })).count()
    }

    fn down_reported_at(&self, observer: usize, node: NodeId) -> Option<u64> {
        self.nodes[observer].events.iter().find(|(_, e)| *e == Event::Down { node }).map(|&(t, _)| t)
    }
}

fn all(n: usize) -> Vec<usize> {
    (0..n).collect()
}

fn join(n: usize, seed: u64, loss: f64) -> (Sim, u64) {
    let mut sim = Sim::cluster(n, seed);
    sim.loss = loss;
    sim.start();
    let everyone = all(n);
    let converged = sim.run_until_true(120_000, |s| s.views_agree(&everyone, &[]));
    let at = converged.unwrap_or_else(|| panic!("{n} members did not converge with loss {loss}"));
    assert_eq!(sim.misaddressed, 0);
    for i in 0..n {
        assert!(sim.nodes[i].membership.is_joined(), "member {i} has not joined");
    }
    (sim, at)
}

/// (a) Everyone learns everyone, with addresses, after announcing to one seed.
#[test]
fn all_members_learn_all_others_from_one_seed() {
    for (n, seed) in [(5, 1), (50, 2)] {
        let (sim, at) = join(n, seed, 0.0);
        println!(
            "{n} members: full views after {at} ms ({} datagrams, largest {} bytes)",
            sim.datagrams, sim.max_datagram
        );
        assert!(at <= 30 * PERIOD_MS, "{n} members took {at} ms");
        assert!(sim.errors.is_empty(), "{:?}", sim.errors);
        for i in 0..n {
            assert_eq!(sim.nodes[i].membership.members().count(), n - 1);
        }
    }
}

/// Runs (b) and (c) on a cluster of `n`: member `victim` freezes until every other member
/// reports it down, then resumes and must be up again everywhere.
fn freeze_and_return(n: usize, seed: u64, loss: f64) {
    let (mut sim, _) = join(n, seed, loss);
    sim.run_until(sim.now + 10 * PERIOD_MS);
    let victim = n / 2;
    let node = sim.id(victim).node();
    let others: Vec<usize> = (0..n).filter(|&i| i != victim).collect();
    let paused_at = sim.now;
    sim.pause(victim);

    // (b) Detected by every other member within a bounded number of periods.
    let suspicion = Config::lan(n as u32).suspect_to_down_after.as_millis() as u64;
    let bound = paused_at + suspicion + 8 * PERIOD_MS;
    let detected = sim.run_until_true(bound, |s| s.views_agree(&others, &[victim]));
    assert!(detected.is_some(), "{n} members: not everyone reported the frozen member down within {bound} ms");
    let suspected = others
        .iter()
        .filter_map(|&i| sim.nodes[i].events.iter().find(|(t, e)| *t >= paused_at && *e == Event::Suspect { node }))
        .map(|&(t, _)| t)
        .min();
    if let Some(t) = suspected {
        println!(
            "{n} members, loss {loss}: first suspected after {:.1} periods",
            (t - paused_at) as f64 / PERIOD_MS as f64
        );
    }
    let last = others.iter().map(|&i| sim.down_reported_at(i, node).unwrap()).max().unwrap();
    let first = others.iter().map(|&i| sim.down_reported_at(i, node).unwrap()).min().unwrap();
    println!(
        "{n} members, loss {loss}: down reported by the first after {:.1} periods, by all after {:.1} periods \
         (suspicion timeout {:.1} periods)",
        (first - paused_at) as f64 / PERIOD_MS as f64,
        (last - paused_at) as f64 / PERIOD_MS as f64,
        suspicion as f64 / PERIOD_MS as f64,
    );

    // (c) It comes back in a new generation and is up everywhere again.
    sim.run_until(sim.now + 5 * PERIOD_MS);
    let resumed_at = sim.now;
    sim.resume(victim);
    let back = sim.run_until_true(resumed_at + 30 * PERIOD_MS, |s| s.views_agree(&all(n), &[]));
    let back = back.unwrap_or_else(|| panic!("{n} members: the member did not come back"));
    println!("{n} members, loss {loss}: up again everywhere {} ms after resuming", back - resumed_at);
    assert!(sim.id(victim).generation() > 1, "the returning member must renew its identity");
    assert!(sim.rejoins(victim) >= 1);
    // Waking up must not make the frozen member evict anyone with suspicions it could not
    // hear refuted while frozen, and refuted suspicions must not evict anyone either. (With
    // loss a false suspicion may, rarely, run out: allow one.)
    let renewed: Vec<usize> = others.iter().copied().filter(|&i| sim.rejoins(i) > 0).collect();
    println!("{n} members, loss {loss}: members that had to renew: {renewed:?}");
    let allowed = if loss == 0.0 { 0 } else { 1 };
    assert!(renewed.len() <= allowed, "members {renewed:?} had to renew themselves");
}

/// (b) + (c) without loss.
#[test]
fn a_frozen_member_is_reported_down_then_up_again() {
    freeze_and_return(5, 3, 0.0);
    freeze_and_return(50, 4, 0.0);
}

/// A member cut off while running declares everyone else down, finds itself alone, and
/// after the partition heals it joins again without making the others renew.
#[test]
fn an_isolated_member_rejoins_after_the_partition_heals() {
    let n = 20;
    let (mut sim, _) = join(n, 5, 0.0);
    let victim = 7;
    let others: Vec<usize> = (0..n).filter(|&i| i != victim).collect();
    sim.nodes[victim].cut = true;
    let cut_at = sim.now;
    let detected = sim.run_until_true(cut_at + 30 * PERIOD_MS, |s| {
        s.views_agree(&others, &[victim]) && s.nodes[victim].events.iter().any(|(_, e)| *e == Event::Isolated)
    });
    assert!(detected.is_some(), "partition not detected on both sides");
    assert!(!sim.nodes[victim].membership.is_joined());
    sim.run_until(sim.now + 20 * PERIOD_MS);
    sim.nodes[victim].cut = false;
    let healed_at = sim.now;
    let back = sim.run_until_true(healed_at + 60 * PERIOD_MS, |s| s.views_agree(&all(n), &[]));
    let back = back.expect("the isolated member did not rejoin");
    println!("isolated member back everywhere {} ms after the partition healed", back - healed_at);
    for i in &others {
        assert_eq!(sim.rejoins(*i), 0, "member {i} had to renew itself");
    }
}

/// (d) 10% of datagrams lost: the cluster still converges, stays converged, and still
/// detects a frozen member and takes it back.
#[test]
fn ten_percent_loss_still_converges() {
    for (n, seed) in [(5, 6), (50, 7)] {
        let (mut sim, at) = join(n, seed, 0.1);
        println!("{n} members, 10% loss: full views after {at} ms");
        // Transient suspicions may come and go, but a minute later everyone is alive, and
        // suspicions were refuted rather than run out (at most one false positive).
        sim.run_until(sim.now + 60 * PERIOD_MS);
        let settled = sim.run_until_true(sim.now + 20 * PERIOD_MS, |s| s.views_agree(&all(n), &[]));
        assert!(settled.is_some(), "{n} members with loss did not stay converged");
        let renewals: usize = (0..n).map(|i| sim.rejoins(i)).sum();
        let suspicions: usize =
            sim.nodes.iter().map(|m| m.events.iter().filter(|(_, e)| matches!(e, Event::Suspect { .. })).count()).sum();
        println!("{n} members, 10% loss, 80 s: {suspicions} suspicions reported, {renewals} renewals");
        assert!(renewals <= 1, "{renewals} members were evicted by false suspicions");
    }
    freeze_and_return(5, 8, 0.1);
    freeze_and_return(50, 9, 0.1);
}

/// (e) A datagram whose SWIM header names another sender than the authenticated peer is
/// rejected, and changes nothing.
#[test]
fn impersonation_is_rejected() {
    let mut sim = Sim::cluster(3, 10);
    let (a, b, mallory) = (sim.id(0), sim.id(1), sim.id(2));
    sim.nodes[0].membership.announce(Ticket::new(b.node(), b.addr()), 0).unwrap();
    let announce = sim.nodes[0]
        .membership
        .drain_outputs()
        .find_map(|o| match o {
            Output::Send { bytes, .. } => Some(bytes),
            _ => None,
        })
        .unwrap();

    // Mallory replays a's announce on her own connection.
    let err = sim.nodes[1].membership.handle_datagram(mallory.node(), &announce, 1).unwrap_err();
    assert_eq!(err, MembershipError::Impersonation { claimed: a.node(), authenticated: mallory.node() });
    assert_eq!(sim.nodes[1].membership.drain_outputs().count(), 0);
    assert_eq!(sim.nodes[1].membership.members().count(), 0);

    // The genuine one is accepted: b answers a and knows it.
    sim.nodes[1].membership.handle_datagram(a.node(), &announce, 2).unwrap();
    let outputs: Vec<Output> = sim.nodes[1].membership.drain_outputs().collect();
    assert!(outputs.iter().any(|o| matches!(o, Output::Send { node, .. } if *node == a.node())));
    assert!(outputs.contains(&Output::Event(Event::Up { node: a.node(), addr: a.addr() })));
}

/// (f) With 1000 members known, every datagram still fits the minimum QUIC datagram size:
/// piggybacked updates and feeds are cut to fit. Worst-case identities (IPv6, 64-bit
/// generations) everywhere.
#[test]
fn datagrams_stay_within_the_limit_with_1000_members() {
    let n = 1001;
    let ids = (0..n).map(|i| MemberId::new(node_id(i), addr_v6(i), u64::MAX - 1_000 + i as u64)).collect();
    let mut sim = Sim::new(ids, Config::lan(1000), 11);
    // Member 0 runs SWIM; the other 1000 only answer it (a full 1000-member run is slow).
    for node in &mut sim.nodes[1..] {
        node.passive = true;
    }
    sim.start();
    sim.run_until_true(60_000, |s| s.nodes[0].membership.members().count() == n - 1)
        .expect("member 0 did not learn 1000 members");
    assert!(sim.nodes[0].membership.members().all(|m| m.status == PeerStatus::Alive));
    // Let it probe and gossip its 1000-update backlog for a while.
    sim.run_until(sim.now + 30 * PERIOD_MS);
    println!("{} datagrams, largest {} bytes", sim.datagrams, sim.max_datagram);
    assert!(sim.max_datagram <= MIN_DATAGRAM_SIZE);
    // The bound was exercised: packets were filled up to it, not small by luck.
    assert!(sim.max_datagram > MIN_DATAGRAM_SIZE - 100, "largest datagram only {} bytes", sim.max_datagram);
    assert!(sim.errors.is_empty(), "{:?}", &sim.errors[..sim.errors.len().min(5)]);
}

/// Random bytes and mutated genuine datagrams never make `handle_datagram` panic.
#[test]
fn garbage_datagrams_never_panic() {
    let (mut sim, _) = join(5, 12, 0.0);
    // Genuine datagrams to mutate: capture some traffic.
    let mut genuine: Vec<(NodeId, Bytes)> = Vec::new();
    for _ in 0..2_000 {
        if let Some(Reverse((_, seq))) = sim.queue.peek().copied()
            && let Some(Item::Datagram { from, bytes, .. }) = sim.items.get(&seq)
        {
            genuine.push((*from, bytes.clone()));
        }
        sim.step();
    }
    assert!(genuine.len() > 50);
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let target = &mut sim.nodes[0].membership;
    let mut rejected = 0;
    for round in 0..20_000 {
        let (from, bytes) = if round % 2 == 0 {
            let len = rng.random_range(0..1_300);
            let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            (node_id(rng.random_range(0..6)), bytes)
        } else {
            let (from, original) = &genuine[rng.random_range(0..genuine.len())];
            let mut bytes = original.to_vec();
            for _ in 0..rng.random_range(1..4) {
                match rng.random_range(0..3) {
                    0 if !bytes.is_empty() => {
                        let i = rng.random_range(0..bytes.len());
                        bytes[i] ^= 1 << rng.random_range(0..8);
                    }
                    1 if !bytes.is_empty() => bytes.truncate(rng.random_range(0..bytes.len())),
                    _ => bytes.push(rng.random()),
                }
            }
            (*from, bytes)
        };
        if target.handle_datagram(from, &bytes, sim.now).is_err() {
            rejected += 1;
        }
        for output in target.drain_outputs() {
            if let Output::Send { bytes, .. } = output {
                assert!(bytes.len() <= MIN_DATAGRAM_SIZE);
            }
        }
    }
    assert!(rejected > 10_000, "only {rejected} of 20000 rejected");
}

/// Same seed, same run: the whole simulation is deterministic.
#[test]
fn runs_are_reproducible() {
    let trace = |seed| {
        let (sim, at) = join(8, seed, 0.05);
        let events: Vec<_> = sim.nodes.iter().map(|n| n.events.clone()).collect();
        (at, sim.datagrams, events)
    };
    assert_eq!(trace(14), trace(14));
}

/// Leaving is announced: the others learn at once, without waiting for a suspicion timeout.
#[test]
fn a_member_that_leaves_is_down_quickly() {
    let n = 10;
    let (mut sim, _) = join(n, 15, 0.0);
    let leaver = 3;
    let node = sim.id(leaver).node();
    let left_at = sim.now;
    sim.nodes[leaver].membership.leave(left_at).unwrap();
    sim.drain(leaver);
    assert!(sim.nodes[leaver].events.iter().any(|(_, e)| *e == Event::Left));
    let others: Vec<usize> = (0..n).filter(|&i| i != leaver).collect();
    let done = sim.run_until_true(left_at + 5 * PERIOD_MS, |s| s.views_agree(&others, &[leaver]));
    let done = done.expect("departure not disseminated");
    let suspicion = Config::lan(n as u32).suspect_to_down_after.as_millis() as u64;
    assert!(done - left_at < suspicion, "took {} ms", done - left_at);
    for &i in &others {
        assert!(sim.down_reported_at(i, node).is_some());
    }
}

/// A member that rebinds to a new address is reported at the new address everywhere.
#[test]
fn address_changes_spread() {
    let n = 10;
    let (mut sim, _) = join(n, 16, 0.0);
    let mover = 4;
    let new_addr: SocketAddr = "10.99.0.4:5000".parse().unwrap();
    sim.nodes[mover].membership.set_addr(new_addr, sim.now).unwrap();
    sim.drain(mover);
    let moved = sim.run_until_true(sim.now + 30 * PERIOD_MS, |s| s.views_agree(&all(n), &[]));
    assert!(moved.is_some(), "new address not learned");
    for i in (0..n).filter(|&i| i != mover) {
        assert_eq!(sim.nodes[i].view[&sim.id(mover).node()].1, new_addr);
    }
}

/// A seed that is unreachable when a member starts: the member keeps announcing, with
/// backoff, and joins once the seed answers.
#[test]
fn joining_retries_until_the_seed_answers() {
    let mut sim = Sim::cluster(3, 17);
    sim.pause(0);
    sim.announce(1, 0);
    sim.announce(2, 0);
    sim.run_until(20 * PERIOD_MS);
    assert!(!sim.nodes[1].membership.is_joined() && !sim.nodes[2].membership.is_joined());
    // Backoff: a handful of announces in 20 s, not one per period.
    let announces = sim.datagrams;
    assert!((4..=14).contains(&announces), "{announces} announces in 20 s");
    sim.resume(0);
    let joined = sim.run_until_true(60 * PERIOD_MS, |s| s.views_agree(&all(3), &[]));
    let joined = joined.expect("never joined");
    println!("joined {} ms after the seed came up ({announces} datagrams while it was down)", joined - 20_000);
    assert!(joined - 20_000 <= Config::default().retry_max.as_millis() as u64 + 2 * PERIOD_MS);
}
