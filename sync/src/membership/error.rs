//! Errors of the membership layer.

use thiserror::Error;

use crate::net::NodeId;

/// What went wrong in a call to [`Membership`](super::Membership).
///
/// None of these leaves the membership unusable: an error about a datagram concerns that
/// datagram (and perhaps its sender) only, and the outputs produced before it still have to
/// be carried out ([`Membership::drain_outputs`](super::Membership::drain_outputs)).
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
