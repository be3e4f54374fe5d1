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
