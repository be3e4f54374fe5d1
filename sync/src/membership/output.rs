//! What [`Membership`](super::Membership) asks of the node driver: [`Output`]s, among them
//! [`Event`]s about members and [`Timer`]s to hand back later.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use gossamer_crdt::ReplicaId;

use super::MemberId;
use crate::net::NodeId;
use crate::protocol::PeerStatus;

/// One thing the driver must do, in the order given.
///
/// ```
/// use gossamer_sync::membership::{Event, Output};
///
/// fn carry_out(output: Output) {
///     match output {
///         Output::Send { node, addr, bytes } => { /* one QUIC datagram to `node` at `addr` */ }
///         Output::ScheduleTimer { after, timer } => { /* hand `timer` back after `after` */ }
///         Output::Event(event) => { /* update the replica's peers, the UI, ... */ }
///     }
/// }
/// # carry_out(Output::Event(Event::Joined));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send `bytes` as one datagram to `node`, which listens at `addr`.
    ///
    /// Use the connection to `node` if there is one; otherwise dial `addr` expecting `node`
    /// (its certificate proves it — a gossiped address is only a hint), unless the peer's
    /// [`Backoff`](super::Backoff) says to wait. A datagram that cannot be sent now may be
    /// dropped: SWIM treats it as loss. `bytes` is never longer than
    /// [`Config::max_datagram_size`](super::Config).
    Send {
        /// The recipient.
        node: NodeId,
        /// Where it listens.
        addr: SocketAddr,
        /// The datagram.
        bytes: Bytes,
    },
    /// Call [`Membership::handle_timer`](super::Membership::handle_timer) with `timer` once
    /// `after` has elapsed (at [`Timer::deadline`]). The driver MUST deliver every timer,
    /// late rather than never: a lost timer stalls probing. Delivering one early is a bug.
    ScheduleTimer {
        /// How long from the call that produced it.
        after: Duration,
        /// What to hand back.
        timer: Timer,
    },
    /// Something changed in the membership; see [`Event`].
    Event(Event),
}

/// A change in the membership, as this node sees it.
///
/// Events about one member come in the order its status changed. The replication protocol
/// takes them through [`peer_status`](Self::peer_status):
/// `replica.set_peer(replica_id, status)` — `Up` → `Alive`, `Suspect` → `Suspect`,
/// `Down` → `Down`.
///
/// ```
/// use gossamer_sync::membership::{Config, Event, MemberId, Membership, Output};
/// use gossamer_sync::net::{NodeId, Ticket};
///
/// /// Carries `from`'s datagrams to `to` (its only peer) and keeps `from`'s events.
/// fn deliver(from: &mut Membership, to: &mut Membership, events: &mut Vec<Event>) {
///     let sender = from.id().node();
///     for output in from.drain_outputs().collect::<Vec<_>>() {
///         match output {
///             Output::Send { bytes, .. } => to.handle_datagram(sender, &bytes, 0).unwrap(),
///             Output::Event(event) => events.push(event),
///             Output::ScheduleTimer { .. } => {} // a join needs no timer
///         }
///     }
/// }
///
/// let a_id = MemberId::new(NodeId::from_bytes([1; 20]), "192.0.2.1:4433".parse().unwrap(), 1);
/// let b_id = MemberId::new(NodeId::from_bytes([2; 20]), "192.0.2.2:4433".parse().unwrap(), 1);
/// let mut a = Membership::new(a_id, Config::default(), 1).unwrap();
/// let mut b = Membership::new(b_id, Config::default(), 2).unwrap();
/// let (mut a_events, mut b_events) = (Vec::new(), Vec::new());
///
/// b.announce(Ticket::new(a_id.node(), a_id.addr()), 0).unwrap();
/// for _ in 0..3 {
///     deliver(&mut b, &mut a, &mut b_events);
///     deliver(&mut a, &mut b, &mut a_events);
/// }
/// assert!(b_events.contains(&Event::Up { node: a_id.node(), addr: a_id.addr() }));
/// assert!(b_events.contains(&Event::Joined));
/// assert!(a_events.contains(&Event::Up { node: b_id.node(), addr: b_id.addr() }));
///
/// // `b` leaves: it says so itself, and `a` learns it at once.
/// b.leave(0).unwrap();
/// deliver(&mut b, &mut a, &mut b_events);
/// deliver(&mut a, &mut b, &mut a_events);
/// assert_eq!(b_events.last(), Some(&Event::Left));
/// assert!(a_events.contains(&Event::Down { node: b_id.node() }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `node` is reachable at `addr`: first heard of, back after being down (in a new
    /// generation), or it refuted a suspicion.
    Up {
        /// The member.
        node: NodeId,
        /// Where it listens.
        addr: SocketAddr,
    },
    /// `node` missed probes (ours or another member's); it is still a member and may refute.
    Suspect {
        /// The member.
        node: NodeId,
    },
    /// `node` is down: it failed to refute a suspicion, or left. Retry it with a
    /// [`Backoff`](super::Backoff); it will come back as [`Event::Up`] when it rejoins.
    Down {
        /// The member.
        node: NodeId,
    },
    /// A live member now listens at another address (it restarted or rebound without going
    /// down). Dial the new address from now on.
    AddressChanged {
        /// The member.
        node: NodeId,
        /// Its new address.
        addr: SocketAddr,
    },
    /// This node's identity is known to at least one live member: it has joined (or joined
    /// again).
    Joined,
    /// This node knows no live member any more. It re-announces by itself, with backoff, to
    /// its seeds and to the members it knew; nothing to do but wait for [`Event::Joined`].
    Isolated,
    /// This node took a new identity (a later generation): the cluster had declared it down,
    /// it was isolated, or its address changed. A driver that persists the generation to
    /// start the next run above it saves `id.generation()`.
    Rejoined {
        /// The new identity.
        id: MemberId,
    },
    /// This node left the cluster ([`Membership::leave`](super::Membership::leave)); it
    /// sends nothing more.
    Left,
}

impl Event {
    /// What this event means for the replication protocol's peer list, if anything: the
    /// `(replica, status)` to pass to
    /// [`Replica::set_peer`](crate::protocol::Replica::set_peer).
    ///
    /// ```
    /// use gossamer_sync::membership::Event;
    /// use gossamer_sync::net::NodeId;
    /// use gossamer_sync::protocol::PeerStatus;
    ///
    /// let node = NodeId::from_bytes([5; 20]);
    /// let up = Event::Up { node, addr: "192.0.2.5:4433".parse().unwrap() };
    /// assert_eq!(up.peer_status(), Some((node.replica_id(), PeerStatus::Alive)));
    /// assert_eq!(Event::Suspect { node }.peer_status(), Some((node.replica_id(), PeerStatus::Suspect)));
    /// assert_eq!(Event::Down { node }.peer_status(), Some((node.replica_id(), PeerStatus::Down)));
    /// assert_eq!(Event::Joined.peer_status(), None);
    /// ```
    pub fn peer_status(&self) -> Option<(ReplicaId, PeerStatus)> {
        match self {
            Event::Up { node, .. } => Some((node.replica_id(), PeerStatus::Alive)),
            Event::Suspect { node } => Some((node.replica_id(), PeerStatus::Suspect)),
            Event::Down { node } => Some((node.replica_id(), PeerStatus::Down)),
            Event::AddressChanged { .. } | Event::Joined | Event::Isolated | Event::Rejoined { .. } | Event::Left => {
                None
            }
        }
    }
}

/// A timer to hand back to [`Membership::handle_timer`](super::Membership::handle_timer).
/// Opaque: the driver only schedules it (by [`deadline`](Self::deadline), or by the `after`
/// it came with).
///
/// ```
/// use gossamer_sync::membership::{Membership, MemberId, Config, Output};
/// use gossamer_sync::net::{NodeId, Ticket};
///
/// let me = MemberId::new(NodeId::from_bytes([1; 20]), "192.0.2.1:4433".parse().unwrap(), 1);
/// let mut membership = Membership::new(me, Config::default(), 7).unwrap();
/// let seed = Ticket::new(NodeId::from_bytes([2; 20]), "192.0.2.2:4433".parse().unwrap());
/// membership.announce(seed, 1_000).unwrap();
/// for output in membership.drain_outputs() {
///     if let Output::ScheduleTimer { after, timer } = output {
///         // `now + after`, rounded up to the millisecond.
///         assert_eq!(timer.deadline(), 1_000 + after.as_nanos().div_ceil(1_000_000) as u64);
///     }
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timer {
    pub(crate) kind: TimerKind,
    /// Which foca instance scheduled it: timers of an instance that was replaced are stale.
    pub(crate) epoch: u32,
    pub(crate) deadline: u64,
}

impl Timer {
    /// When it is due, in the milliseconds of the `now` the driver passes: the `now` of the
    /// call that scheduled it plus `after`, rounded up.
    ///
    /// ```
    /// use gossamer_sync::membership::{Config, MemberId, Membership, Output, Timer};
    /// use gossamer_sync::net::{NodeId, Ticket};
    ///
    /// let id = MemberId::new(NodeId::from_bytes([1; 20]), "192.0.2.1:4433".parse().unwrap(), 1);
    /// let seed = Ticket::new(NodeId::from_bytes([2; 20]), "192.0.2.2:4433".parse().unwrap());
    /// let first_timer = |now: u64| -> Timer {
    ///     let mut membership = Membership::new(id, Config::default(), 7).unwrap();
    ///     membership.announce(seed, now).unwrap();
    ///     let mut timers = membership.drain_outputs().filter_map(|o| match o {
    ///         Output::ScheduleTimer { timer, .. } => Some(timer),
    ///         _ => None,
    ///     });
    ///     timers.next().unwrap()
    /// };
    /// // Deadlines are on the driver's own clock: a minute later, a minute later.
    /// let (early, late) = (first_timer(0), first_timer(60_000));
    /// assert!(early.deadline() > 0);
    /// assert_eq!(late.deadline(), early.deadline() + 60_000);
    /// ```
    pub fn deadline(&self) -> u64 {
        self.deadline
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TimerKind {
    /// One of foca's timers.
    Swim(foca::Timer<MemberId>),
    /// Announce again while no member is known to be alive; `round` tells current rounds
    /// from ones a join made stale.
    Reannounce { round: u32 },
}
