//! The membership view: what this node believes of each member, and the [`Event`]s that
//! changes to it produce.
//!
//! foca reports members going up and down, but not suspicion; so instead of translating its
//! notifications, the view compares foca's member list with its own after every call and
//! emits the net changes. One source of truth, and every status change (suspicion and
//! refutation included) becomes exactly one event.

use std::collections::BTreeMap;
use std::time::Duration;

use foca::State;

use super::{Event, MemberId};
use crate::net::NodeId;
use crate::protocol::PeerStatus;

/// A member as this node sees it.
///
/// ```
/// use gossamer_sync::membership::{Config, MemberId, Membership};
/// use gossamer_sync::net::NodeId;
///
/// let me = MemberId::new(NodeId::from_bytes([1; 20]), "192.0.2.1:4433".parse().unwrap(), 1);
/// let membership = Membership::new(me, Config::default(), 1).unwrap();
/// for member in membership.members() {
///     println!("{} at {} is {:?} since {} ms", member.id.node(), member.id.addr(), member.status, member.since);
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    /// Its identity: node id, address and generation.
    pub id: MemberId,
    /// Alive, suspected or down.
    pub status: PeerStatus,
    /// When (in the driver's milliseconds) this node last saw the status change.
    pub since: u64,
}

#[derive(Debug, Default)]
struct Entry {
    info: Option<MemberInfo>,
    /// The sync pass that last found this member in foca's list.
    seen: u64,
}

/// Every member this node knows of, except itself, by node id.
#[derive(Debug, Default)]
pub(crate) struct View {
    entries: BTreeMap<NodeId, Entry>,
    pass: u64,
}

fn status_of(state: State) -> PeerStatus {
    match state {
        State::Alive => PeerStatus::Alive,
        State::Suspect => PeerStatus::Suspect,
        State::Down => PeerStatus::Down,
    }
}

fn is_active(status: PeerStatus) -> bool {
    status != PeerStatus::Down
}

impl View {
    /// Brings the view in line with foca's `current` member list and reports each net change
    /// through `emit`. Members foca no longer lists are treated as down, and forgotten once
    /// they have been down for `forget_after`. `us` is this node: foca may hold a stale
    /// identity of ours as down, which is not a member.
    pub(crate) fn sync<'a>(
        &mut self,
        us: NodeId,
        current: impl Iterator<Item = &'a foca::Member<MemberId>>,
        now: u64,
        forget_after: Duration,
        mut emit: impl FnMut(Event),
    ) {
        self.pass = self.pass.wrapping_add(1);
        for member in current {
            let id = *member.id();
            if id.node() == us {
                continue;
            }
            let status = status_of(member.state());
            let entry = self.entries.entry(id.node()).or_default();
            entry.seen = self.pass;
            let node = id.node();
            let addr = id.addr();
            match entry.info {
                None => {
                    if is_active(status) {
                        emit(Event::Up { node, addr });
                    }
                    if status == PeerStatus::Suspect {
                        emit(Event::Suspect { node });
                    }
                    entry.info = Some(MemberInfo { id, status, since: now });
                }
                Some(ref mut info) => {
                    let moved = info.id.addr() != addr;
                    match (info.status, status) {
                        (before, after) if before == after => {
                            if moved && is_active(after) {
                                emit(Event::AddressChanged { node, addr });
                            }
                        }
                        (_, PeerStatus::Down) => emit(Event::Down { node }),
                        (PeerStatus::Down, after) => {
                            emit(Event::Up { node, addr });
                            if after == PeerStatus::Suspect {
                                emit(Event::Suspect { node });
                            }
                        }
                        (_, PeerStatus::Alive) => emit(Event::Up { node, addr }),
                        (_, PeerStatus::Suspect) => {
                            if moved {
                                emit(Event::AddressChanged { node, addr });
                            }
                            emit(Event::Suspect { node });
                        }
                    }
                    if info.status != status {
                        info.since = now;
                    }
                    info.id = id;
                    info.status = status;
                }
            }
        }
        let forget_after = u64::try_from(forget_after.as_millis()).unwrap_or(u64::MAX);
        let pass = self.pass;
        self.entries.retain(|&node, entry| {
            if entry.seen == pass {
                return true;
            }
            let Some(info) = entry.info.as_mut() else { return false };
            if is_active(info.status) {
                // foca forgot a live member: only possible when it was replaced after this
                // node was isolated, and then every member was already down. Be safe anyway.
                emit(Event::Down { node });
                info.status = PeerStatus::Down;
                info.since = now;
            }
            now.saturating_sub(info.since) < forget_after
        });
    }

    pub(crate) fn get(&self, node: &NodeId) -> Option<&MemberInfo> {
        self.entries.get(node).and_then(|e| e.info.as_ref())
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &MemberInfo> {
        self.entries.values().filter_map(|e| e.info.as_ref())
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when `node` is in the view, whatever its status.
    pub(crate) fn knows(&self, node: &NodeId) -> bool {
        self.entries.contains_key(node)
    }
}

#[cfg(test)]
mod tests {
    use foca::Member;

    use super::*;

    fn id(byte: u8, port: u16, generation: u64) -> MemberId {
        MemberId::new(NodeId::from_bytes([byte; 20]), ([192, 0, 2, byte], port).into(), generation)
    }

    fn sync(view: &mut View, members: &[Member<MemberId>], now: u64) -> Vec<Event> {
        let mut events = Vec::new();
        view.sync(NodeId::from_bytes([0; 20]), members.iter(), now, Duration::from_secs(60), |e| events.push(e));
        events
    }

    #[test]
    fn each_status_change_is_one_event() {
        let mut view = View::default();
        let a = id(1, 1, 0);
        let node = a.node();
        let addr = a.addr();
        assert_eq!(sync(&mut view, &[Member::alive(a)], 0), vec![Event::Up { node, addr }]);
        assert_eq!(sync(&mut view, &[Member::alive(a)], 1), vec![]);
        assert_eq!(sync(&mut view, &[Member::new(a, 0, State::Suspect)], 2), vec![Event::Suspect { node }]);
        assert_eq!(sync(&mut view, &[Member::new(a, 1, State::Alive)], 3), vec![Event::Up { node, addr }]);
        assert_eq!(sync(&mut view, &[Member::down(a)], 4), vec![Event::Down { node }]);
        assert_eq!(view.get(&node).unwrap().since, 4);
        // Back in a new generation at a new address.
        let a2 = id(1, 2, 1);
        assert_eq!(sync(&mut view, &[Member::alive(a2)], 5), vec![Event::Up { node, addr: a2.addr() }]);
        let a3 = id(1, 3, 2);
        assert_eq!(sync(&mut view, &[Member::alive(a3)], 6), vec![Event::AddressChanged { node, addr: a3.addr() }]);
    }

    #[test]
    fn members_first_seen_down_make_no_event_and_we_are_not_a_member() {
        let mut view = View::default();
        let us = MemberId::new(NodeId::from_bytes([0; 20]), ([192, 0, 2, 0], 1).into(), 0);
        assert_eq!(sync(&mut view, &[Member::down(id(1, 1, 0)), Member::alive(us)], 0), vec![]);
        assert_eq!(view.len(), 1);
        let b = id(2, 1, 0);
        assert_eq!(
            sync(&mut view, &[Member::new(b, 0, State::Suspect)], 0),
            vec![Event::Up { node: b.node(), addr: b.addr() }, Event::Suspect { node: b.node() }]
        );
    }

    #[test]
    fn forgotten_members_go_down_then_away() {
        let mut view = View::default();
        let a = id(1, 1, 0);
        sync(&mut view, &[Member::alive(a)], 0);
        assert_eq!(sync(&mut view, &[], 10), vec![Event::Down { node: a.node() }]);
        assert_eq!(sync(&mut view, &[], 59_999), vec![]);
        assert_eq!(view.len(), 1);
        sync(&mut view, &[], 60_010);
        assert_eq!(view.len(), 0);
    }
}
