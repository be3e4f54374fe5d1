//! [`Membership`]: foca driven sans-IO, its outputs queued for the node driver.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use foca::{Foca, Identity as _, NoCustomBroadcast, Notification, Runtime};
use rand_010::rngs::Xoshiro256PlusPlus;
use rand_010::seq::SliceRandom;
use rand_010::{RngExt, SeedableRng};
use tracing::{debug, trace, warn};

use super::codec::{SwimCodec, peek_header, retain_updates};
use super::output::TimerKind;
use super::view::View;
use super::{Backoff, Config, Event, MemberId, MemberInfo, MembershipError, Output, Timer};
use crate::net::{NodeId, Ticket};

type Swim = Foca<MemberId, SwimCodec, Xoshiro256PlusPlus, NoCustomBroadcast>;

/// Most seeds remembered for re-announcing; older ones are forgotten first.
const MAX_SEEDS: usize = 8;

/// SWIM membership and failure detection for one node, without I/O.
///
/// A wrapper around [`foca::Foca`] that speaks in the project's terms: members are
/// [`MemberId`]s (node id, address, generation), packets are CBOR, time is the driver's
/// milliseconds, and what foca would do through its `Runtime` is queued as [`Output`]s.
///
/// Every method that takes `now` may queue outputs. The driver MUST
/// [`drain_outputs`](Self::drain_outputs) after every call — also after one that returned an
/// error, since an error can come after outputs (say, a datagram whose last update is
/// malformed) — and carry them out in order. `now` is in milliseconds since any fixed origin
/// (the clock the replication protocol is given), and never goes backwards.
///
/// Beyond foca, it:
/// - checks that a datagram's SWIM header names the peer the transport authenticated
///   ([`MembershipError::Impersonation`]);
/// - reports suspicion, refutation and address changes, not only up and down ([`Event`]);
/// - keeps announcing, with [`Backoff`], while it knows no live member: at start until a seed
///   answers, and after being isolated — when it also starts afresh under a new generation,
///   so that members it wrongly declared down need not renew themselves to be heard again.
///
/// ```
/// use gossamer_sync::membership::{Config, Event, MemberId, Membership, Output};
/// use gossamer_sync::net::{NodeId, Ticket};
///
/// let id = |byte: u8| MemberId::new(NodeId::from_bytes([byte; 20]), ([192, 0, 2, byte], 4433).into(), 1);
/// let mut a = Membership::new(id(1), Config::default(), 1).unwrap();
/// let mut b = Membership::new(id(2), Config::default(), 2).unwrap();
///
/// // `a` joins through `b`'s ticket; datagrams go straight across (no network here).
/// a.announce(Ticket::new(id(2).node(), id(2).addr()), 0).unwrap();
/// let mut in_flight: Vec<(NodeId, NodeId, bytes::Bytes)> = Vec::new(); // (from, to, bytes)
/// let mut events = Vec::new();
/// loop {
///     for (me, m) in [(id(1).node(), &mut a), (id(2).node(), &mut b)] {
///         for output in m.drain_outputs() {
///             match output {
///                 Output::Send { node, bytes, .. } => in_flight.push((me, node, bytes)),
///                 Output::Event(event) => events.push((me, event)),
///                 Output::ScheduleTimer { .. } => {} // a real driver schedules these
///             }
///         }
///     }
///     let Some((from, to, bytes)) = in_flight.pop() else { break };
///     let target = if to == id(1).node() { &mut a } else { &mut b };
///     target.handle_datagram(from, &bytes, 1).unwrap();
/// }
/// assert!(events.contains(&(id(1).node(), Event::Up { node: id(2).node(), addr: id(2).addr() })));
/// assert!(events.contains(&(id(2).node(), Event::Up { node: id(1).node(), addr: id(1).addr() })));
/// assert!(a.is_joined() && b.is_joined());
/// ```
pub struct Membership {
    config: Config,
    swim: Swim,
    /// Seeds new foca instances and picks re-announce targets.
    rng: Xoshiro256PlusPlus,
    view: View,
    outputs: VecDeque<Output>,
    /// Incremented whenever `swim` is replaced, so that its old timers are recognised.
    epoch: u32,
    seeds: Vec<MemberId>,
    rejoin_backoff: Backoff,
    /// The current re-announce round; a pending timer of an older round is stale.
    reannounce_round: u32,
    reannounce_pending: bool,
    joined: bool,
    left: bool,
    now: u64,
}

/// What foca told us during one call, handled once it returns.
#[derive(Debug)]
enum Note {
    Active,
    Idle,
    Defunct,
    Rejoin(MemberId),
}

/// foca's [`Runtime`] for one call: turns its requests into [`Output`]s.
struct Collector<'a> {
    outputs: &'a mut VecDeque<Output>,
    notes: Vec<Note>,
    epoch: u32,
    now: u64,
    max_datagram_size: usize,
}

/// `now + after`, in whole milliseconds rounded up (a timer is never due early).
fn deadline(now: u64, after: Duration) -> u64 {
    let ms = after.as_nanos().div_ceil(1_000_000);
    now.saturating_add(u64::try_from(ms).unwrap_or(u64::MAX))
}

impl Runtime<MemberId> for Collector<'_> {
    fn notify(&mut self, notification: Notification<'_, MemberId>) {
        trace!(?notification, "foca notification");
        match notification {
            Notification::Active => self.notes.push(Note::Active),
            Notification::Idle => self.notes.push(Note::Idle),
            Notification::Defunct => self.notes.push(Note::Defunct),
            Notification::Rejoin(id) => self.notes.push(Note::Rejoin(*id)),
            // Membership changes are read from foca's member list afterwards (see `View`).
            _ => {}
        }
    }

    fn send_to(&mut self, to: MemberId, data: &[u8]) {
        if data.len() > self.max_datagram_size {
            // foca bounds its packets by the same limit: this is a bug, not an input.
            warn!(len = data.len(), max = self.max_datagram_size, to = %to, "oversized SWIM packet dropped");
            return;
        }
        trace!(to = %to, len = data.len(), "SWIM send");
        self.outputs.push_back(Output::Send { node: to.node(), addr: to.addr(), bytes: Bytes::copy_from_slice(data) });
    }

    fn submit_after(&mut self, event: foca::Timer<MemberId>, after: Duration) {
        let timer = Timer { kind: TimerKind::Swim(event), epoch: self.epoch, deadline: deadline(self.now, after) };
        self.outputs.push_back(Output::ScheduleTimer { after, timer });
    }
}

impl Membership {
    /// The membership of the node `id`, not yet part of any cluster: call
    /// [`announce`](Self::announce) with a seed's ticket next. All randomness (probe order,
    /// gossip targets, jitter) comes from `seed`: pass a random one in production and a fixed
    /// one in tests.
    ///
    /// `id.generation()` must exceed every generation this node used before (see
    /// [`MemberId`]): e.g. the wall-clock milliseconds at start, or a persisted counter.
    ///
    /// # Errors
    /// [`MembershipError::InvalidConfig`] if `config` does not [validate](Config::validate).
    ///
    /// ```
    /// use gossamer_sync::membership::{Config, MemberId, Membership};
    /// use gossamer_sync::net::NodeId;
    ///
    /// let id = MemberId::new(NodeId::from_bytes([1; 20]), "192.0.2.1:4433".parse().unwrap(), 1);
    /// let membership = Membership::new(id, Config::lan(10), 42).unwrap();
    /// assert_eq!(membership.id(), &id);
    /// assert!(!membership.is_joined());
    /// assert_eq!(membership.members().count(), 0);
    /// ```
    pub fn new(id: MemberId, config: Config, seed: u64) -> Result<Self, MembershipError> {
        config.validate()?;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let swim = Foca::new(id, config.to_foca()?, Xoshiro256PlusPlus::seed_from_u64(rng.random()), SwimCodec);
        let rejoin_backoff = config.backoff(rng.random());
        Ok(Self {
            config,
            swim,
            rng,
            view: View::default(),
            outputs: VecDeque::new(),
            epoch: 0,
            seeds: Vec::new(),
            rejoin_backoff,
            reannounce_round: 0,
            reannounce_pending: false,
            joined: false,
            left: false,
            now: 0,
        })
    }

    /// Asks the node behind `seed` to let us in (it answers with a feed of members), and
    /// remembers it: until this node has joined — and whenever it finds itself alone — it
    /// announces again to its seeds, with backoff. Announcing to several seeds is fine.
    ///
    /// # Errors
    /// [`MembershipError::AnnounceToSelf`] for this node's own ticket,
    /// [`MembershipError::Left`] after [`leave`](Self::leave).
    ///
    /// ```
    /// use gossamer_sync::membership::{Config, MemberId, Membership, Output};
    /// use gossamer_sync::net::{NodeId, Ticket};
    ///
    /// let id = MemberId::new(NodeId::from_bytes([1; 20]), "192.0.2.1:4433".parse().unwrap(), 1);
    /// let mut membership = Membership::new(id, Config::default(), 42).unwrap();
    /// let seed = Ticket::new(NodeId::from_bytes([2; 20]), "192.0.2.2:4433".parse().unwrap());
    /// membership.announce(seed, 0).unwrap();
    /// let outputs: Vec<Output> = membership.drain_outputs().collect();
    /// assert!(matches!(&outputs[0], Output::Send { node, .. } if *node == seed.node));
    /// assert!(matches!(&outputs[1], Output::ScheduleTimer { .. })); // the next announce
    /// assert!(membership.announce(Ticket::new(id.node(), id.addr()), 0).is_err());
    /// ```
    pub fn announce(&mut self, seed: Ticket, now: u64) -> Result<(), MembershipError> {
        if self.left {
            return Err(MembershipError::Left);
        }
        if seed.node == self.swim.identity().node() {
            return Err(MembershipError::AnnounceToSelf);
        }
        // foca takes an announce for any identity of the receiving node: generation 0 will do.
        let target = MemberId::new(seed.node, seed.addr, 0);
        self.seeds.retain(|s| s.node() != seed.node);
        if self.seeds.len() == MAX_SEEDS {
            self.seeds.remove(0);
        }
        self.seeds.push(target);
        debug!(seed = %seed, "announcing");
        let result = self.run(now, |swim, rt| swim.announce(target, rt));
        if !self.joined {
            self.schedule_reannounce(now);
        }
        result
    }

    /// Handles a datagram that arrived on the connection to `from`.
    ///
    /// `from` MUST be the node id the transport authenticated
    /// ([`PeerConnection::peer`](crate::net::PeerConnection::peer)), never one read from the
    /// datagram: a datagram whose SWIM header names another sender is rejected unread.
    ///
    /// # Errors
    /// [`MembershipError::Impersonation`], [`MembershipError::DatagramTooLarge`],
    /// [`MembershipError::Malformed`], or [`MembershipError::Swim`] for packets foca refuses.
    /// Each concerns this datagram only; a driver may count them per peer and close the
    /// connection of a peer that keeps sending them.
    ///
    /// ```
    /// use gossamer_sync::membership::{Config, MemberId, Membership, MembershipError};
    /// use gossamer_sync::net::NodeId;
    ///
    /// let id = MemberId::new(NodeId::from_bytes([1; 20]), "192.0.2.1:4433".parse().unwrap(), 1);
    /// let mut membership = Membership::new(id, Config::default(), 42).unwrap();
    /// let junk = membership.handle_datagram(NodeId::from_bytes([2; 20]), b"\x05junk!", 0);
    /// assert!(matches!(junk, Err(MembershipError::Malformed(_))));
    /// ```
    pub fn handle_datagram(&mut self, from: NodeId, datagram: &[u8], now: u64) -> Result<(), MembershipError> {
        if self.left {
            return Ok(());
        }
        let max = self.config.max_datagram_size;
        if datagram.len() > max {
            return Err(MembershipError::DatagramTooLarge { len: datagram.len(), max });
        }
        let header = peek_header(datagram).map_err(|e| MembershipError::Malformed(e.to_string()))?;
        if header.src.node() != from {
            warn!(authenticated = %from, claimed = %header.src.node(), "SWIM datagram with a forged sender dropped");
            return Err(MembershipError::Impersonation { claimed: header.src.node(), authenticated: from });
        }
        trace!(from = %from, len = datagram.len(), message = ?header.message, "SWIM datagram");
        let known = self.view.len().max(self.swim.iter_membership_state().len());
        if known >= self.config.max_members {
            // Full: only members we know (and ourselves) may be updated; the sender itself is
            // authenticated, and foca adds it from the header.
            let us = self.id().node();
            let view = &self.view;
            let kept = retain_updates(datagram, |m| {
                let node = m.id().node();
                node == us || node == from || view.knows(&node)
            })
            .map_err(|e| MembershipError::Malformed(e.to_string()))?;
            if let Some((packet, dropped)) = kept {
                debug!(from = %from, dropped, known, max = self.config.max_members, "membership full: updates about unknown members dropped");
                return self.run(now, |swim, rt| swim.handle_data(&packet, rt));
            }
        }
        self.run(now, |swim, rt| swim.handle_data(datagram, rt))
    }

    /// Handles a timer from an [`Output::ScheduleTimer`], once it is due.
    ///
    /// # Errors
    /// [`MembershipError::Swim`] when foca finds its probe cycle disturbed (e.g. by a timer
    /// delivered very late); it recovers by itself. Log it.
    ///
    /// ```
    /// use gossamer_sync::membership::{Config, MemberId, Membership, Output};
    /// use gossamer_sync::net::{NodeId, Ticket};
    ///
    /// let id = MemberId::new(NodeId::from_bytes([1; 20]), "192.0.2.1:4433".parse().unwrap(), 1);
    /// let mut membership = Membership::new(id, Config::default(), 42).unwrap();
    /// let seed = Ticket::new(NodeId::from_bytes([2; 20]), "192.0.2.2:4433".parse().unwrap());
    /// membership.announce(seed, 0).unwrap();
    /// let timer = membership.drain_outputs().find_map(|o| match o {
    ///     Output::ScheduleTimer { timer, .. } => Some(timer),
    ///     _ => None,
    /// }).unwrap();
    /// // Nobody answered: when the timer fires, the seed gets another announce.
    /// membership.handle_timer(timer.clone(), timer.deadline()).unwrap();
    /// assert!(membership.drain_outputs().any(|o| matches!(o, Output::Send { node, .. } if node == seed.node)));
    /// ```
    pub fn handle_timer(&mut self, timer: Timer, now: u64) -> Result<(), MembershipError> {
        if self.left {
            return Ok(());
        }
        if now < timer.deadline {
            debug!(now, deadline = timer.deadline, "timer delivered early");
        }
        let late = self.is_late(&timer, now);
        match timer.kind {
            TimerKind::Swim(event) => {
                if timer.epoch != self.epoch {
                    trace!(?event, "timer of a replaced SWIM instance ignored");
                    return Ok(());
                }
                if let foca::Timer::ChangeSuspectToDown { member_id, incarnation, .. } = &event {
                    if !self.still_suspected(member_id, *incarnation) {
                        // foca 2.0.0 would declare nothing here, but still send the member the
                        // "you are down" courtesy message, making a member that refuted the
                        // suspicion renew itself for nothing. So the timer stops here.
                        trace!(member = %member_id, "suspicion refuted before its timeout");
                        return Ok(());
                    }
                    if late {
                        // We were not running (asleep, frozen) for part of the suspicion
                        // timeout, so we could not hear a refutation: declaring the member
                        // down now could evict a healthy one. Give it a full timeout again.
                        debug!(?event, late_ms = now - timer.deadline, "late suspicion timeout deferred");
                        self.now = self.now.max(now);
                        let after = self.config.suspect_to_down_after;
                        let deadline = deadline(self.now, after);
                        let timer = Timer { kind: TimerKind::Swim(event), epoch: self.epoch, deadline };
                        self.outputs.push_back(Output::ScheduleTimer { after, timer });
                        return Ok(());
                    }
                }
                self.run(now, |swim, rt| swim.handle_timer(event, rt))
            }
            TimerKind::Reannounce { round } => {
                if round != self.reannounce_round {
                    return Ok(());
                }
                self.reannounce_pending = false;
                if self.joined {
                    return Ok(());
                }
                let targets = self.reannounce_targets();
                debug!(targets = targets.len(), "not joined: announcing again");
                let mut result = Ok(());
                for target in targets {
                    let sent = self.run(now, |swim, rt| swim.announce(target, rt));
                    result = result.and(sent);
                }
                if !self.joined {
                    self.schedule_reannounce(now);
                }
                result
            }
        }
    }

    /// Leaves the cluster: tells a few members that this node is down, so that the others
    /// learn it at once instead of after a suspicion timeout. Afterwards the membership sends
    /// nothing more and ignores its inputs.
    ///
    /// # Errors
    /// [`MembershipError::Swim`] if the departure could not be encoded (not expected).
    ///
    /// ```
    /// use gossamer_sync::membership::{Config, Event, MemberId, Membership, Output};
    /// use gossamer_sync::net::NodeId;
    ///
    /// let id = MemberId::new(NodeId::from_bytes([1; 20]), "192.0.2.1:4433".parse().unwrap(), 1);
    /// let mut membership = Membership::new(id, Config::default(), 42).unwrap();
    /// membership.leave(0).unwrap();
    /// assert!(membership.drain_outputs().any(|o| o == Output::Event(Event::Left)));
    /// ```
    pub fn leave(&mut self, now: u64) -> Result<(), MembershipError> {
        if self.left {
            return Ok(());
        }
        self.left = true;
        self.joined = false;
        self.reannounce_round = self.reannounce_round.wrapping_add(1);
        self.run(now, |swim, rt| swim.leave_cluster(rt))
    }

    /// Moves this node to a new address (it rebound its socket): it takes the next
    /// generation, tells the cluster, and reports [`Event::Rejoined`].
    ///
    /// # Errors
    /// [`MembershipError::GenerationExhausted`] at generation `u64::MAX`;
    /// [`MembershipError::Left`] after [`leave`](Self::leave).
    ///
    /// ```
    /// use gossamer_sync::membership::{Config, MemberId, Membership};
    /// use gossamer_sync::net::NodeId;
    ///
    /// let id = MemberId::new(NodeId::from_bytes([1; 20]), "192.0.2.1:4433".parse().unwrap(), 1);
    /// let mut membership = Membership::new(id, Config::default(), 42).unwrap();
    /// membership.set_addr("192.0.2.9:4433".parse().unwrap(), 0).unwrap();
    /// assert_eq!(membership.id().generation(), 2);
    /// assert_eq!(membership.id().addr().to_string(), "192.0.2.9:4433");
    /// ```
    pub fn set_addr(&mut self, addr: SocketAddr, now: u64) -> Result<(), MembershipError> {
        if self.left {
            return Err(MembershipError::Left);
        }
        let next = self.swim.identity().moved_to(addr).ok_or(MembershipError::GenerationExhausted)?;
        let result = self.run(now, |swim, rt| swim.change_identity(next, rt));
        self.after_renewal(next, now);
        result
    }

    /// Takes the queued outputs, in order. Call after every other method.
    ///
    /// ```
    /// use gossamer_sync::membership::{Config, MemberId, Membership};
    /// use gossamer_sync::net::NodeId;
    ///
    /// let id = MemberId::new(NodeId::from_bytes([1; 20]), "192.0.2.1:4433".parse().unwrap(), 1);
    /// let mut membership = Membership::new(id, Config::default(), 42).unwrap();
    /// assert_eq!(membership.drain_outputs().count(), 0);
    /// ```
    pub fn drain_outputs(&mut self) -> impl Iterator<Item = Output> + '_ {
        self.outputs.drain(..)
    }

    /// Every member this node knows of (alive, suspected, or down and not yet forgotten),
    /// by node id; never this node itself.
    ///
    /// ```
    /// use gossamer_sync::membership::{Config, MemberId, Membership};
    /// use gossamer_sync::net::NodeId;
    /// use gossamer_sync::protocol::PeerStatus;
    ///
    /// let id = MemberId::new(NodeId::from_bytes([1; 20]), "192.0.2.1:4433".parse().unwrap(), 1);
    /// let membership = Membership::new(id, Config::default(), 42).unwrap();
    /// let alive = membership.members().filter(|m| m.status == PeerStatus::Alive).count();
    /// assert_eq!(alive, 0);
    /// ```
    pub fn members(&self) -> impl Iterator<Item = &MemberInfo> {
        self.view.iter()
    }

    /// What this node knows of `node`.
    ///
    /// ```
    /// use gossamer_sync::membership::{Config, MemberId, Membership};
    /// use gossamer_sync::net::NodeId;
    ///
    /// let id = MemberId::new(NodeId::from_bytes([1; 20]), "192.0.2.1:4433".parse().unwrap(), 1);
    /// let membership = Membership::new(id, Config::default(), 42).unwrap();
    /// assert!(membership.member(&NodeId::from_bytes([2; 20])).is_none());
    /// ```
    pub fn member(&self, node: &NodeId) -> Option<&MemberInfo> {
        self.view.get(node)
    }

    /// This node's current identity (its generation grows on each renewal).
    ///
    /// ```
    /// use gossamer_sync::membership::{Config, MemberId, Membership};
    /// use gossamer_sync::net::NodeId;
    ///
    /// let id = MemberId::new(NodeId::from_bytes([1; 20]), "192.0.2.1:4433".parse().unwrap(), 1);
    /// assert_eq!(Membership::new(id, Config::default(), 0).unwrap().id(), &id);
    /// ```
    pub fn id(&self) -> &MemberId {
        self.swim.identity()
    }

    /// Whether some live member knows this node ([`Event::Joined`] and no
    /// [`Event::Isolated`] or renewal since).
    ///
    /// ```
    /// use gossamer_sync::membership::{Config, MemberId, Membership};
    /// use gossamer_sync::net::NodeId;
    ///
    /// let id = MemberId::new(NodeId::from_bytes([1; 20]), "192.0.2.1:4433".parse().unwrap(), 1);
    /// assert!(!Membership::new(id, Config::default(), 0).unwrap().is_joined());
    /// ```
    pub fn is_joined(&self) -> bool {
        self.joined
    }

    /// The configuration in force.
    ///
    /// ```
    /// use gossamer_sync::membership::{Config, MemberId, Membership};
    /// use gossamer_sync::net::NodeId;
    ///
    /// let id = MemberId::new(NodeId::from_bytes([1; 20]), "192.0.2.1:4433".parse().unwrap(), 1);
    /// assert_eq!(Membership::new(id, Config::lan(5), 0).unwrap().config(), &Config::lan(5));
    /// ```
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs one foca call with a collecting runtime, then updates the view and reacts to
    /// what foca reported. Outputs queued before an error are kept.
    fn run<F>(&mut self, now: u64, call: F) -> Result<(), MembershipError>
    where
        F: FnOnce(&mut Swim, &mut Collector<'_>) -> Result<(), foca::Error>,
    {
        self.now = self.now.max(now);
        let now = self.now;
        let mut collector = Collector {
            outputs: &mut self.outputs,
            notes: Vec::new(),
            epoch: self.epoch,
            now,
            max_datagram_size: self.config.max_datagram_size,
        };
        let result = call(&mut self.swim, &mut collector);
        let notes = collector.notes;

        let us = self.swim.identity().node();
        let outputs = &mut self.outputs;
        self.view.sync(us, self.swim.iter_membership_state(), now, self.config.remove_down_after, |event| {
            debug!(?event, "membership event");
            outputs.push_back(Output::Event(event));
        });

        for note in notes {
            self.on_note(note, now);
        }
        result.map_err(MembershipError::from_foca)
    }

    /// Whether foca still holds `member` (this very identity) at the incarnation it was
    /// suspected in: the condition under which a suspicion timeout declares it down.
    fn still_suspected(&self, member: &MemberId, incarnation: foca::Incarnation) -> bool {
        self.swim.iter_membership_state().any(|m| m.id() == member && m.incarnation() == incarnation)
    }

    /// Whether `timer` comes more than a probe period after its deadline.
    fn is_late(&self, timer: &Timer, now: u64) -> bool {
        let grace = deadline(timer.deadline, self.config.probe_period);
        now > grace
    }

    fn on_note(&mut self, note: Note, now: u64) {
        match note {
            Note::Active => {
                debug!(id = %self.swim.identity(), "joined");
                self.joined = true;
                self.rejoin_backoff.reset();
                // A pending re-announce is no longer wanted.
                self.reannounce_round = self.reannounce_round.wrapping_add(1);
                self.reannounce_pending = false;
                self.outputs.push_back(Output::Event(Event::Joined));
                self.join_burst(now);
            }
            Note::Idle => {
                debug!(id = %self.swim.identity(), "isolated: no live member left");
                self.joined = false;
                self.outputs.push_back(Output::Event(Event::Isolated));
                self.start_afresh(now);
            }
            Note::Rejoin(id) => {
                debug!(id = %id, "the cluster declared us down: renewed");
                self.after_renewal(id, now);
            }
            Note::Defunct => {
                if !self.left {
                    // foca could not renew our identity (generation u64::MAX).
                    warn!(id = %self.swim.identity(), "declared down and cannot renew: left the cluster");
                    self.left = true;
                }
                self.joined = false;
                self.outputs.push_back(Output::Event(Event::Left));
            }
        }
    }

    /// Just joined: the seed's feed lists only the members that fit one datagram, and
    /// members that joined before us are no longer gossiped about. Ask a few more live
    /// members for feeds now, rather than learning the rest one probe at a time.
    fn join_burst(&mut self, now: u64) {
        let wanted = self.config.num_indirect_probes;
        let mut live: Vec<MemberId> = self.swim.iter_members().map(|m| *m.id()).collect();
        let (picked, _) = live.partial_shuffle(&mut self.rng, wanted);
        for &target in picked.iter() {
            if let Err(error) = self.run(now, |swim, rt| swim.announce(target, rt)) {
                debug!(%error, "announce after joining failed");
            }
        }
    }

    /// After this node took identity `id`: foca waits to hear from someone before it probes
    /// again, so announce (with backoff) to get a feed promptly.
    fn after_renewal(&mut self, id: MemberId, now: u64) {
        self.joined = false;
        self.outputs.push_back(Output::Event(Event::Rejoined { id }));
        self.rejoin_backoff.reset();
        self.schedule_reannounce(now);
    }

    /// This node knows no live member. Most likely *it* was cut off, and it now holds every
    /// other member as down — which SWIM never revises for the same identity, so each would
    /// have to renew itself before this node listened to it again. Instead, start a new foca
    /// instance with no opinions, in the next generation, and announce to seeds and the
    /// members we knew.
    fn start_afresh(&mut self, now: u64) {
        let Some(next) = self.swim.identity().renew() else {
            warn!(id = %self.swim.identity(), "isolated and cannot renew (generation exhausted)");
            return;
        };
        let config = match self.config.to_foca() {
            Ok(config) => config,
            // Unreachable: validated at construction.
            Err(error) => {
                warn!(%error, "cannot restart SWIM");
                return;
            }
        };
        self.epoch = self.epoch.wrapping_add(1);
        self.swim = Foca::new(next, config, Xoshiro256PlusPlus::seed_from_u64(self.rng.random()), SwimCodec);
        self.after_renewal(next, now);
    }

    fn schedule_reannounce(&mut self, now: u64) {
        if self.reannounce_pending || self.left {
            return;
        }
        self.reannounce_pending = true;
        let after = self.rejoin_backoff.next_delay();
        let timer = Timer {
            kind: TimerKind::Reannounce { round: self.reannounce_round },
            epoch: self.epoch,
            deadline: deadline(now, after),
        };
        self.outputs.push_back(Output::ScheduleTimer { after, timer });
    }

    /// The seeds, and a few members we knew (live ones first), at random.
    fn reannounce_targets(&mut self) -> Vec<MemberId> {
        let mut targets = self.seeds.clone();
        let wanted = self.config.num_indirect_probes;
        let known: Vec<MemberId> = {
            let live: Vec<MemberId> =
                self.view.iter().filter(|m| m.status != crate::protocol::PeerStatus::Down).map(|m| m.id).collect();
            if live.is_empty() { self.view.iter().map(|m| m.id).collect() } else { live }
        };
        let mut candidates: Vec<MemberId> =
            known.into_iter().filter(|m| !targets.iter().any(|t| t.node() == m.node())).collect();
        let (picked, _) = candidates.partial_shuffle(&mut self.rng, wanted);
        targets.extend_from_slice(picked);
        targets
    }
}

impl fmt::Debug for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Membership")
            .field("id", self.swim.identity())
            .field("joined", &self.joined)
            .field("left", &self.left)
            .field("members", &self.view.len())
            .field("queued_outputs", &self.outputs.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::PeerStatus;

    fn member(byte: u8) -> Membership {
        let id = MemberId::new(NodeId::from_bytes([byte; 20]), ([192, 0, 2, byte], 4433).into(), 1);
        Membership::new(id, Config::lan(2), u64::from(byte)).unwrap()
    }

    /// Splits `m`'s outputs into datagrams (to, bytes) and foca timers.
    fn outputs(m: &mut Membership) -> (Vec<(NodeId, Bytes)>, Vec<Timer>) {
        let mut sends = Vec::new();
        let mut timers = Vec::new();
        for output in m.drain_outputs() {
            match output {
                Output::Send { node, bytes, .. } => sends.push((node, bytes)),
                Output::ScheduleTimer { timer, .. } => timers.push(timer),
                Output::Event(_) => {}
            }
        }
        (sends, timers)
    }

    fn take_timer(timers: &mut Vec<Timer>, want: impl Fn(&foca::Timer<MemberId>) -> bool) -> Timer {
        let i = timers.iter().position(|t| matches!(&t.kind, TimerKind::Swim(e) if want(e))).expect("timer");
        timers.remove(i)
    }

    fn message(bytes: &[u8]) -> foca::Message<MemberId> {
        peek_header(bytes).unwrap().message
    }

    /// The node driver moves it into a task.
    #[test]
    fn membership_is_send() {
        fn send<T: Send + 'static>() {}
        send::<Membership>();
        send::<Output>();
    }

    /// Joins `a` to `b` (both then know each other); returns `a`'s pending timers.
    fn join(a: &mut Membership, b: &mut Membership) -> Vec<Timer> {
        let (a_id, b_id) = (*a.id(), *b.id());
        a.announce(Ticket::new(b_id.node(), b_id.addr()), 0).unwrap();
        let (sends, mut a_timers) = outputs(a);
        b.handle_datagram(a_id.node(), &sends[0].1, 1).unwrap();
        let (sends, _) = outputs(b);
        for (_, bytes) in &sends {
            a.handle_datagram(b_id.node(), bytes, 2).unwrap();
        }
        a_timers.extend(outputs(a).1);
        assert!(a.is_joined());
        assert!(a.member(&b_id.node()).is_some());
        a_timers
    }

    /// Joins `a` to `b`, then loses `a`'s probe of `b`, so that `a` suspects `b`. Returns
    /// `a`'s pending timers and the datagrams of its latest probe.
    fn suspect(a: &mut Membership, b: &mut Membership) -> (Vec<Timer>, Vec<(NodeId, Bytes)>) {
        let b_id = *b.id();
        let mut a_timers = join(a, b);

        let probe = take_timer(&mut a_timers, |e| matches!(e, foca::Timer::ProbeRandomMember(_)));
        a.handle_timer(probe, 1_000).unwrap();
        a_timers.extend(outputs(a).1);
        let indirect = take_timer(&mut a_timers, |e| matches!(e, foca::Timer::SendIndirectProbe { .. }));
        a.handle_timer(indirect, 1_500).unwrap();
        let probe = take_timer(&mut a_timers, |e| matches!(e, foca::Timer::ProbeRandomMember(_)));
        a.handle_timer(probe, 2_000).unwrap();
        assert_eq!(a.member(&b_id.node()).unwrap().status, PeerStatus::Suspect);
        let (sends, timers) = outputs(a);
        a_timers.extend(timers);
        (a_timers, sends)
    }

    /// Regression: foca 2.0.0 sends `TurnUndead` when a suspicion times out even if the member
    /// refuted it, which made healthy members renew themselves under packet loss.
    #[test]
    fn a_refuted_suspicion_does_not_tell_the_member_it_is_down() {
        let (mut a, mut b) = (member(1), member(2));
        let (a_id, b_id) = (*a.id(), *b.id());
        let (mut a_timers, sends) = suspect(&mut a, &mut b);

        // The next ping carries the suspicion; b refutes it in its ack.
        let ping = sends.iter().find(|(_, bytes)| matches!(message(bytes), foca::Message::Ping(_))).unwrap();
        b.handle_datagram(a_id.node(), &ping.1, 2_001).unwrap();
        let (sends, _) = outputs(&mut b);
        for (_, bytes) in &sends {
            a.handle_datagram(b_id.node(), bytes, 2_002).unwrap();
        }
        assert_eq!(a.member(&b_id.node()).unwrap().status, PeerStatus::Alive);
        drop(outputs(&mut a));

        // The suspicion times out: nothing happens, and b is not told it is down.
        let timeout = take_timer(&mut a_timers, |e| matches!(e, foca::Timer::ChangeSuspectToDown { .. }));
        let due = timeout.deadline();
        a.handle_timer(timeout, due).unwrap();
        let (sends, _) = outputs(&mut a);
        assert!(sends.iter().all(|(_, bytes)| message(bytes) != foca::Message::TurnUndead), "{sends:?}");
        assert_eq!(a.member(&b_id.node()).unwrap().status, PeerStatus::Alive);
    }

    /// `b` gossips `members` to `a` (a `Gossip` packet from `b`, as foca frames it).
    fn gossip(b: &MemberId, a: &MemberId, members: &[foca::Member<MemberId>]) -> Vec<u8> {
        use foca::Codec as _;
        let mut codec = SwimCodec;
        let mut packet = Vec::new();
        let header = foca::Header { src: *b, src_incarnation: 0, dst: *a, message: foca::Message::Gossip };
        codec.encode_header(&header, &mut packet).unwrap();
        packet.extend_from_slice(&u16::try_from(members.len()).unwrap().to_be_bytes());
        for m in members {
            codec.encode_member(m, &mut packet).unwrap();
        }
        packet
    }

    /// A membership that knows `max_members` members drops updates about members it does
    /// not know (a trusted peer gossiping made-up members cannot grow it), and still takes
    /// updates about the ones it knows. Below the bound, the same packet adds them.
    #[test]
    fn a_full_membership_ignores_gossip_about_strangers() {
        let stranger = |byte: u8| {
            let id = MemberId::new(NodeId::from_bytes([byte; 20]), ([198, 51, 100, byte], 4433).into(), 1);
            foca::Member::new(id, 0, foca::State::Alive)
        };
        for (max_members, strangers_kept) in [(1, false), (1024, true)] {
            let id = MemberId::new(NodeId::from_bytes([1; 20]), ([192, 0, 2, 1], 4433).into(), 1);
            let mut a = Membership::new(id, Config { max_members, ..Config::lan(2) }, 1).unwrap();
            let mut b = member(2);
            drop(join(&mut a, &mut b));
            let (a_id, b_id) = (*a.id(), *b.id());

            // b says: two strangers are alive, and b itself is suspected at incarnation 0.
            let members = [stranger(10), stranger(11), foca::Member::new(b_id, 0, foca::State::Suspect)];
            a.handle_datagram(b_id.node(), &gossip(&b_id, &a_id, &members), 3).unwrap();
            drop(outputs(&mut a));
            for m in &members[..2] {
                assert_eq!(a.member(&m.id().node()).is_some(), strangers_kept, "max_members {max_members}");
            }
            assert_eq!(a.members().count(), if strangers_kept { 3 } else { 1 });
            // The update about b, which a knows, was applied either way.
            assert_eq!(a.member(&b_id.node()).unwrap().status, PeerStatus::Suspect, "max_members {max_members}");
        }
    }

    /// A suspicion timeout that fires long after its deadline (the node was asleep) is
    /// postponed by a full timeout instead of declaring the member down at once.
    #[test]
    fn a_late_suspicion_timeout_is_postponed() {
        let (mut a, mut b) = (member(1), member(2));
        let b_id = *b.id();
        let (mut a_timers, _) = suspect(&mut a, &mut b);
        let timeout = take_timer(&mut a_timers, |e| matches!(e, foca::Timer::ChangeSuspectToDown { .. }));
        let late = timeout.deadline() + 60_000;
        a.handle_timer(timeout.clone(), late).unwrap();
        let (_, timers) = outputs(&mut a);
        assert_eq!(a.member(&b_id.node()).unwrap().status, PeerStatus::Suspect);
        let again = timers.into_iter().find(|t| t.kind == timeout.kind).expect("postponed");
        assert_eq!(again.deadline(), late + a.config().suspect_to_down_after.as_millis() as u64);
        // On time, it declares the (silent) member down.
        a.handle_timer(again.clone(), again.deadline()).unwrap();
        assert_eq!(a.member(&b_id.node()).unwrap().status, PeerStatus::Down);
    }
}
