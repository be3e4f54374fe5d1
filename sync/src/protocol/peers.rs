//! The membership view: who the peers are, whether they are up, what they have.

use std::collections::BTreeMap;

use gossamer_crdt::{ReplicaId, VClock};

/// What the failure detector (SWIM, in the node) says of a peer.
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
