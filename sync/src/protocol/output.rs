//! What the protocol asks its driver to do.

use bytes::Bytes;
use gossamer_crdt::{Dot, ReplicaId, VClock};

use crate::wire::{Message, OpRecord};

/// One thing the driver must do, in order.
///
/// The driver MUST carry out outputs in the order given, and MUST make every
/// [`Persist`](Output::Persist) and [`PersistSnapshot`](Output::PersistSnapshot) durable
/// before it sends any message that follows it: a replica advertises an op (in a digest, or
/// by pushing its own) only once it cannot lose it, and a local update is acknowledged only
/// once its op is durable.
///
/// A driver is one `match`, carried out output by output:
///
/// ```
/// use gossamer_crdt::{CausalCounter, ReplicaId};
/// use gossamer_sync::protocol::{Config, Event, Output, PeerStatus, Replica};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut ra = Replica::<CausalCounter>::new(a, Config::default(), 1);
/// let mut rb = Replica::<CausalCounter>::new(b, Config::default(), 2);
/// ra.set_peer(b, PeerStatus::Alive);
///
/// let (dot, outputs) = ra.local_update(0, |c| c.inc(a, 2)).unwrap();
/// let (mut durable_log, mut events) = (Vec::new(), Vec::new());
/// for out in outputs {
///     match out {
///         // A real driver appends to its store and syncs before going on.
///         Output::Persist(ops) => durable_log.extend(ops),
///         Output::PersistSnapshot { .. } => unreachable!("nothing is compacted yet"),
///         Output::Send { to, msg } => {
///             // The op is durable before any message advertises it.
///             assert!(durable_log.iter().any(|rec| rec.dot == dot));
///             assert_eq!(to, b);
///             rb.handle_message(1, a, msg);
///         }
///         Output::Event(e) => events.push(e),
///     }
/// }
/// assert_eq!(events, vec![Event::Applied { dot }]);
/// assert_eq!(rb.state().value(), 2);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Append these delivered ops, in this order, to the durable op log.
    Persist(Vec<OpRecord>),
    /// Durably replace the snapshot with `state` (which includes everything in `vv`), then
    /// delete logged ops at or below `floor`.
    PersistSnapshot {
        /// What the state includes.
        vv: VClock,
        /// The op log keeps only ops above this.
        floor: VClock,
        /// The encoded state.
        state: Bytes,
    },
    /// Send `msg` to peer `to`. Delivery may fail silently; the protocol recovers.
    Send {
        /// The peer.
        to: ReplicaId,
        /// The message.
        msg: Message,
    },
    /// Something the application may want to know.
    Event(Event),
}

/// Notifications for the application (and the simulator's checks).
///
/// ```
/// use bytes::Bytes;
/// use gossamer_crdt::{CausalCounter, Dot, ReplicaId};
/// use gossamer_sync::protocol::{Config, Event, Output, PeerStatus, Replica};
/// use gossamer_sync::wire::{Message, OpRecord};
///
/// # /// The events among `outputs`.
/// # fn events(outputs: Vec<Output>) -> Vec<Event> {
/// #     outputs.into_iter().filter_map(|o| if let Output::Event(e) = o { Some(e) } else { None }).collect()
/// # }
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut ra = Replica::<CausalCounter>::new(a, Config::default(), 1);
/// let mut rb = Replica::<CausalCounter>::new(b, Config::default(), 2);
/// ra.set_peer(b, PeerStatus::Alive);
///
/// let (dot, outputs) = ra.local_update(0, |c| c.inc(a, 1)).unwrap();
/// // A client read on `rb` waits for its own write, made on `ra`.
/// assert!(!rb.wait_for(7, ra.token()));
/// let mut seen = Vec::new();
/// for out in outputs {
///     if let Output::Send { msg, .. } = out {
///         seen.extend(events(rb.handle_message(1, a, msg)));
///     }
/// }
/// assert_eq!(seen, vec![Event::Applied { dot }, Event::SessionReady { id: 7 }]);
///
/// // An op with counter 0 cannot exist: the peer that sent it is reported, not obeyed.
/// let forged = OpRecord { dot: Dot::new(a, 0), deps: vec![], created_ms: 2, payload: Bytes::new() };
/// let seen = events(rb.handle_message(2, a, Message::Push { ops: vec![forged] }));
/// assert!(matches!(&seen[..], [Event::PeerMisbehaved { peer, .. }] if *peer == a));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// An op was applied to the state (exactly once, after its dependencies).
    Applied {
        /// The op's dot.
        dot: Dot,
    },
    /// A peer's snapshot was merged into the state.
    SnapshotMerged {
        /// The peer.
        from: ReplicaId,
        /// What the snapshot included.
        vv: VClock,
    },
    /// A read waiting on a session token can proceed.
    SessionReady {
        /// The id given to [`Replica::wait_for`](super::Replica::wait_for).
        id: u64,
    },
    /// A received op was not kept (buffer full, undecodable, too many dependencies); anti-
    /// entropy fetches it again if it is valid.
    Dropped {
        /// The op's dot.
        dot: Dot,
        /// Why.
        reason: &'static str,
    },
    /// A peer sent something the protocol refused (the driver may close that connection).
    PeerMisbehaved {
        /// The peer.
        peer: ReplicaId,
        /// What was wrong.
        reason: String,
    },
}
