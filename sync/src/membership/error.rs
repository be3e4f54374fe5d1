//! Errors of the membership layer.

use thiserror::Error;

use crate::net::NodeId;

/// What went wrong in a call to [`Membership`](super::Membership).
///
/// None of these leaves the membership unusable: an error about a datagram concerns that
/// datagram (and perhaps its sender) only, and the outputs produced before it still have to
/// be carried out ([`Membership::drain_outputs`](super::Membership::drain_outputs)).
///
/// ```
/// use std::time::Duration;
/// use gossamer_sync::membership::{Config, MemberId, Membership, MembershipError, Output};
/// use gossamer_sync::net::{NodeId, Ticket};
///
/// let (a, b, c) = (NodeId::from_bytes([1; 20]), NodeId::from_bytes([2; 20]), NodeId::from_bytes([3; 20]));
/// let a_id = MemberId::new(a, "192.0.2.1:4433".parse().unwrap(), 1);
/// let b_id = MemberId::new(b, "192.0.2.2:4433".parse().unwrap(), 1);
///
/// // A configuration that does not validate.
/// let bad = Config { probe_rtt: Duration::from_secs(2), ..Config::lan(5) };
/// assert!(matches!(Membership::new(a_id, bad, 1), Err(MembershipError::InvalidConfig(_))));
///
/// let mut alice = Membership::new(a_id, Config::default(), 1).unwrap();
/// let mut bob = Membership::new(b_id, Config::default(), 2).unwrap();
/// assert_eq!(alice.announce(Ticket::new(a, a_id.addr()), 0), Err(MembershipError::AnnounceToSelf));
///
/// // Bob's announce, handed to Alice as if it came over Carol's connection.
/// bob.announce(Ticket::new(a, a_id.addr()), 0).unwrap();
/// let datagram = bob.drain_outputs().find_map(|o| match o {
///     Output::Send { bytes, .. } => Some(bytes),
///     _ => None,
/// }).unwrap();
/// let forged = alice.handle_datagram(c, &datagram, 0);
/// assert_eq!(forged, Err(MembershipError::Impersonation { claimed: b, authenticated: c }));
///
/// let max = alice.config().max_datagram_size;
/// let huge = alice.handle_datagram(b, &vec![0; max + 1], 0);
/// assert_eq!(huge, Err(MembershipError::DatagramTooLarge { len: max + 1, max }));
///
/// alice.leave(0).unwrap();
/// assert_eq!(alice.announce(Ticket::new(b, b_id.addr()), 0), Err(MembershipError::Left));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MembershipError {
    /// A datagram's SWIM header names a sender other than the peer the transport
    /// authenticated. The datagram was dropped unread; the peer is misbehaving.
    #[error("datagram from {authenticated} claims to come from {claimed}")]
    Impersonation {
        /// The sender named in the SWIM header.
        claimed: NodeId,
        /// The peer the connection authenticated.
        authenticated: NodeId,
    },
    /// A datagram is larger than any member sends ([`Config::max_datagram_size`](super::Config)).
    #[error("datagram of {len} bytes exceeds the limit of {max}")]
    DatagramTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A datagram is not a well-formed SWIM packet.
    #[error("malformed SWIM datagram: {0}")]
    Malformed(String),
    /// foca refused the input or reported an inconsistency (a packet that addresses us in a
    /// way it should not, a probe cycle that a late timer disturbed, ...).
    #[error("SWIM: {0}")]
    Swim(String),
    /// A configuration value is out of range.
    #[error("invalid membership config: {0}")]
    InvalidConfig(&'static str),
    /// [`announce`](super::Membership::announce) was given this node's own ticket.
    #[error("cannot announce to ourselves")]
    AnnounceToSelf,
    /// The generation of this node's identity cannot grow any more (it is `u64::MAX`).
    #[error("the identity generation is exhausted")]
    GenerationExhausted,
    /// The node has [left](super::Membership::leave) the cluster; build a new
    /// [`Membership`](super::Membership) to join again.
    #[error("this node has left the cluster")]
    Left,
}

impl MembershipError {
    /// Classifies an error reported by foca.
    pub(crate) fn from_foca(error: foca::Error) -> Self {
        match error {
            foca::Error::Decode(e) => Self::Malformed(e.to_string()),
            foca::Error::MalformedPacket => Self::Malformed("trailing or missing bytes".to_owned()),
            other => Self::Swim(other.to_string()),
        }
    }
}
