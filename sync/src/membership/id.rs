//! [`MemberId`]: who a member is in the gossip, and where to reach it.

use std::cmp::Ordering;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};

use crate::net::NodeId;

/// A member's identity in SWIM: its [`NodeId`], the address it listens on, and a
/// *generation* that tells its successive lives apart.
///
/// This is the type foca gossips (it implements [`foca::Identity`]), so every member learns
/// the address of every other one. The node id is foca's *address* of the member (the part
/// that never changes: a node is its key); the socket address and generation may change.
///
/// - When the cluster declares a member down, it cannot come back under the same identity
///   (down is final in SWIM). It [renews](foca::Identity::renew) itself instead: same node
///   and address, generation + 1. Of two identities of one node the greater generation wins
///   ([`foca::Identity::win_addr_conflict`]); the socket address breaks ties, so every member
///   picks the same winner.
/// - A node that restarts must therefore start with a generation greater than any it used
///   before: the node driver passes, e.g., the wall-clock milliseconds at start, or a counter
///   it persists (see [`Event::Rejoined`](super::Event::Rejoined), which reports each renewal).
///
/// Encoded (non-human-readable formats such as CBOR) as a 3-tuple: the 20 id bytes, the
/// address as 6 (IPv4) or 18 (IPv6) bytes — IP then big-endian port; an IPv6 flow label and
/// scope id are not sent, since they mean nothing on another host — and the generation.
/// Human-readable formats get the address as text.
///
/// ```
/// use foca::Identity;
/// use gossamer_sync::membership::MemberId;
/// use gossamer_sync::net::NodeId;
///
/// let id = MemberId::new(NodeId::from_bytes([1; 20]), "192.0.2.1:4433".parse().unwrap(), 7);
/// let renewed = id.renew().unwrap();
/// assert_eq!((renewed.node(), renewed.addr(), renewed.generation()), (id.node(), id.addr(), 8));
/// assert!(renewed.win_addr_conflict(&id));
/// assert!(!id.win_addr_conflict(&renewed));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemberId {
    node: NodeId,
    addr: SocketAddr,
    generation: u64,
}

impl MemberId {
    /// The identity of `node`, listening at `addr`, in its life number `generation`.
    ///
    /// ```
    /// use gossamer_sync::membership::MemberId;
    /// use gossamer_sync::net::NodeId;
    ///
    /// let id = MemberId::new(NodeId::from_bytes([1; 20]), "[::1]:4433".parse().unwrap(), 0);
    /// assert_eq!(id.addr().port(), 4433);
    /// ```
    pub const fn new(node: NodeId, addr: SocketAddr, generation: u64) -> Self {
        Self { node, addr, generation }
    }

    /// The member's node id (also its replica id: [`NodeId::replica_id`]).
    ///
    /// ```
    /// # use gossamer_sync::{membership::MemberId, net::NodeId};
    /// let node = NodeId::from_bytes([1; 20]);
    /// assert_eq!(MemberId::new(node, "127.0.0.1:1".parse().unwrap(), 0).node(), node);
    /// ```
    pub const fn node(&self) -> NodeId {
        self.node
    }

    /// Where the member listens.
    ///
    /// ```
    /// # use gossamer_sync::{membership::MemberId, net::NodeId};
    /// let addr = "127.0.0.1:9".parse().unwrap();
    /// assert_eq!(MemberId::new(NodeId::from_bytes([1; 20]), addr, 0).addr(), addr);
    /// ```
    pub const fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The member's life number: greater after each renewal or restart.
    ///
    /// ```
    /// # use gossamer_sync::{membership::MemberId, net::NodeId};
    /// let id = MemberId::new(NodeId::from_bytes([1; 20]), "127.0.0.1:9".parse().unwrap(), 3);
    /// assert_eq!(id.generation(), 3);
    /// ```
    pub const fn generation(&self) -> u64 {
        self.generation
    }

    /// The identity that replaces this one when it moves to `addr`: one generation later.
    /// `None` if the generation cannot grow any more.
    pub(crate) fn moved_to(&self, addr: SocketAddr) -> Option<Self> {
        Some(Self { node: self.node, addr, generation: self.generation.checked_add(1)? })
    }

    /// The order in which identities of one node replace each other.
    fn precedence(&self) -> (u64, &SocketAddr) {
        (self.generation, &self.addr)
    }
}

impl foca::Identity for MemberId {
    type Addr = NodeId;

    /// Same node and address, next generation (`None` only at `u64::MAX`).
    fn renew(&self) -> Option<Self> {
        self.moved_to(self.addr)
    }

    fn addr(&self) -> NodeId {
        self.node
    }

    /// The greater generation wins; at equal generations the greater socket address does.
    /// A strict total order, so all members keep the same identity of a node.
    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.precedence().cmp(&adversary.precedence()) == Ordering::Greater
    }
}

impl fmt::Debug for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}@{}#{}", self.node, self.addr, self.generation)
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}#{}", self.node, self.addr, self.generation)
    }
}

/// Longest binary form of an address: 16 bytes of IPv6 and 2 of port.
const MAX_ADDR_LEN: usize = 18;

/// A socket address encoded as bytes (binary formats) or text (human-readable ones).
struct CompactAddr(SocketAddr);

impl Serialize for CompactAddr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            return serializer.collect_str(&self.0);
        }
        let mut bytes = [0u8; MAX_ADDR_LEN];
        let len = match self.0.ip() {
            IpAddr::V4(ip) => {
                bytes[..4].copy_from_slice(&ip.octets());
                4
            }
            IpAddr::V6(ip) => {
                bytes[..16].copy_from_slice(&ip.octets());
                16
            }
        };
        bytes[len..len + 2].copy_from_slice(&self.0.port().to_be_bytes());
        serializer.serialize_bytes(&bytes[..len + 2])
    }
}

impl<'de> Deserialize<'de> for CompactAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AddrVisitor;

        impl Visitor<'_> for AddrVisitor {
            type Value = CompactAddr;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a socket address: text, or 6 (IPv4) or 18 (IPv6) bytes")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<CompactAddr, E> {
                v.parse().map(CompactAddr).map_err(E::custom)
            }

            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<CompactAddr, E> {
                let (ip, port) = match v.len() {
                    6 => {
                        let octets: [u8; 4] = v[..4].try_into().map_err(E::custom)?;
                        (IpAddr::V4(Ipv4Addr::from(octets)), &v[4..])
                    }
                    18 => {
                        let octets: [u8; 16] = v[..16].try_into().map_err(E::custom)?;
                        (IpAddr::V6(Ipv6Addr::from(octets)), &v[16..])
                    }
                    len => return Err(E::invalid_length(len, &self)),
                };
                let port: [u8; 2] = port.try_into().map_err(E::custom)?;
                Ok(CompactAddr(SocketAddr::new(ip, u16::from_be_bytes(port))))
            }
        }

        if deserializer.is_human_readable() {
            deserializer.deserialize_str(AddrVisitor)
        } else {
            deserializer.deserialize_bytes(AddrVisitor)
        }
    }
}

impl Serialize for MemberId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(3)?;
        tuple.serialize_element(&self.node)?;
        tuple.serialize_element(&CompactAddr(self.addr))?;
        tuple.serialize_element(&self.generation)?;
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for MemberId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;

        impl<'de> Visitor<'de> for IdVisitor {
            type Value = MemberId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member id: (node id, socket address, generation)")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MemberId, A::Error> {
                let node = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let CompactAddr(addr) = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(1, &self))?;
                let generation = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(2, &self))?;
                Ok(MemberId { node, addr, generation })
            }
        }

        deserializer.deserialize_tuple(3, IdVisitor)
    }
}

#[cfg(test)]
mod tests {
    use foca::Identity;

    use super::*;
    use crate::wire::codec;

    fn id(addr: &str, generation: u64) -> MemberId {
        MemberId::new(NodeId::from_bytes([9; 20]), addr.parse().unwrap(), generation)
    }

    #[test]
    fn cbor_round_trip_v4_and_v6() {
        for member in [id("192.0.2.1:4433", 0), id("[2001:db8::1]:65535", u64::MAX), id("0.0.0.0:0", 1 << 40)] {
            let bytes = codec::to_vec(&member).unwrap();
            assert_eq!(codec::from_slice::<MemberId>(&bytes).unwrap(), member);
        }
    }

    #[test]
    fn cbor_is_compact() {
        // array(3) + bytes(20) + bytes(6) + u64 of a millisecond timestamp.
        let member = id("192.0.2.1:4433", 1_750_000_000_000);
        assert_eq!(codec::to_vec(&member).unwrap().len(), 1 + 21 + 7 + 9);
        let member = id("[2001:db8::1]:4433", 1_750_000_000_000);
        assert_eq!(codec::to_vec(&member).unwrap().len(), 1 + 21 + 19 + 9);
    }

    #[test]
    fn json_is_readable_and_round_trips() {
        let member = id("192.0.2.1:4433", 5);
        let json = serde_json::to_string(&member).unwrap();
        assert!(json.contains("\"192.0.2.1:4433\""), "{json}");
        assert_eq!(serde_json::from_str::<MemberId>(&json).unwrap(), member);
    }

    #[test]
    fn bad_address_lengths_are_rejected() {
        // A tuple whose address has 5 bytes.
        let bad = (NodeId::from_bytes([1; 20]), serde_bytes_like(&[1, 2, 3, 4, 5]), 0u64);
        let bytes = codec::to_vec(&bad).unwrap();
        assert!(codec::from_slice::<MemberId>(&bytes).is_err());
    }

    /// A byte string for serde (serde serializes `&[u8]` as a sequence).
    fn serde_bytes_like(bytes: &[u8]) -> bytes::Bytes {
        bytes::Bytes::copy_from_slice(bytes)
    }

    #[test]
    fn conflicts_have_one_winner() {
        let a = id("192.0.2.1:1", 3);
        let b = id("192.0.2.2:1", 3);
        let c = id("192.0.2.1:1", 4);
        assert!(b.win_addr_conflict(&a) && !a.win_addr_conflict(&b));
        assert!(c.win_addr_conflict(&b) && !b.win_addr_conflict(&c));
        assert!(!a.win_addr_conflict(&a));
        assert_eq!(id("192.0.2.1:1", u64::MAX).renew(), None);
        assert_eq!(a.renew().unwrap().generation(), 4);
    }
}
