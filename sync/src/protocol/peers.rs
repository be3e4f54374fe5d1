//! The membership view: who the peers are, whether they are up, what they have.

use std::collections::BTreeMap;

use gossamer_crdt::{ReplicaId, VClock};

/// What the failure detector (SWIM, in the node) says of a peer.
///
/// ```
/// use gossamer_crdt::{CausalCounter, ReplicaId};
/// use gossamer_sync::protocol::{Config, Output, PeerStatus, Replica};
///
/// let [a, b, c] = [1, 2, 3].map(ReplicaId::from_u128);
/// let mut ra = Replica::<CausalCounter>::new(a, Config::default(), 1);
/// ra.set_peer(b, PeerStatus::Suspect);
/// ra.set_peer(c, PeerStatus::Down);
///
/// // A suspect peer still gets pushed ops; a down one is skipped until it is alive again.
/// let (_, outputs) = ra.local_update(0, |n| n.inc(a, 1)).unwrap();
/// let to: Vec<ReplicaId> =
///     outputs.iter().filter_map(|o| if let Output::Send { to, .. } = o { Some(*to) } else { None }).collect();
/// assert_eq!(to, vec![b]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerStatus {
    /// Reachable.
    Alive,
    /// Missed probes; still gossiped with, but not preferred.
    Suspect,
    /// Unreachable: skipped until it is alive again.
    Down,
}

#[derive(Clone, Debug)]
pub(crate) struct PeerState {
    pub(crate) status: PeerStatus,
    /// The last version vector the peer told us (for causal stability).
    pub(crate) known_vv: Option<VClock>,
    /// When we last sent it a snapshot (to avoid resending while it is still assembling).
    pub(crate) snapshot_sent_at: Option<u64>,
}

/// A peer as the application sees it.
///
/// ```
/// use gossamer_crdt::{CausalCounter, ReplicaId};
/// use gossamer_sync::protocol::{Config, Output, PeerInfo, PeerStatus, Replica};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut ra = Replica::<CausalCounter>::new(a, Config::default(), 1);
/// let mut rb = Replica::<CausalCounter>::new(b, Config::default(), 2);
/// ra.set_peer(b, PeerStatus::Alive);
/// rb.set_peer(a, PeerStatus::Alive);
/// assert_eq!(ra.peers(), vec![PeerInfo { id: b, status: PeerStatus::Alive, known_vv: None }]);
///
/// // `rb` writes, then tells `ra` its version vector in a digest.
/// rb.local_update(0, |n| n.inc(b, 1)).unwrap();
/// for out in rb.sync_now(1) {
///     if let Output::Send { msg, .. } = out {
///         ra.handle_message(1, b, msg);
///     }
/// }
/// assert_eq!(ra.peers()[0].known_vv.as_ref(), Some(rb.version()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's replica id.
    pub id: ReplicaId,
    /// Its status.
    pub status: PeerStatus,
    /// The last version vector it reported.
    pub known_vv: Option<VClock>,
}

#[derive(Debug, Default)]
pub(crate) struct Peers {
    pub(crate) map: BTreeMap<ReplicaId, PeerState>,
}

impl Peers {
    pub(crate) fn upsert(&mut self, id: ReplicaId, status: PeerStatus) -> &mut PeerState {
        let p = self.map.entry(id).or_insert(PeerState { status, known_vv: None, snapshot_sent_at: None });
        p.status = status;
        p
    }

    pub(crate) fn reachable(&self) -> impl Iterator<Item = ReplicaId> + '_ {
        self.map.iter().filter(|(_, p)| p.status != PeerStatus::Down).map(|(id, _)| *id)
    }
}
