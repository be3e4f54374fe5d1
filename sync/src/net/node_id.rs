//! Node ids: who a peer is, derived from its public key.

use std::fmt;
use std::str::FromStr;

use gossamer_crdt::ReplicaId;
use rustls::pki_types::CertificateDer;
use rustls::server::ParsedCertificate;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::NetError;

/// The RFC 4648 base32 alphabet in lower case: no padding is ever needed because a node id is
/// exactly 160 bits, i.e. 32 characters of 5 bits.
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The identity of a node: the first [`NodeId::LEN`] bytes of the SHA-256 hash of its public key
/// (the DER `SubjectPublicKeyInfo` of its certificate).
///
/// The hash is of the *key*, not of the certificate, so a node keeps its id when its
/// self-signed certificate is regenerated. A `NodeId` is what a user pins in a
/// [`TrustList`](super::TrustList) and shares in a [`Ticket`](super::Ticket). It is also the
/// node's replica id in version vectors ([`NodeId::replica_id`]), so identity, trust and
/// causality name a node the same way.
///
/// A `NodeId` on its own is just a claim, like a host name. The id of a peer that proved it
/// holds the matching private key during a handshake is a [`VerifiedNodeId`].
///
/// Printed as 32 lower-case base32 characters; parsing also accepts upper case. Serialized as a
/// string in human-readable formats and as 20 raw bytes otherwise.
///
/// ```
/// use gossamer_sync::net::NodeId;
///
/// let id = NodeId::from_bytes([7; NodeId::LEN]);
/// let text = id.to_string();
/// assert_eq!(text, "a4dqobyha4dqobyha4dqobyha4dqobyh");
/// assert_eq!(text.parse::<NodeId>().unwrap(), id);
/// assert_eq!(id.replica_id().as_bytes(), &[7; 16]);
/// assert!("not a node id".parse::<NodeId>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId([u8; NodeId::LEN]);

impl NodeId {
    /// Length of a node id in bytes (a truncated SHA-256 hash).
    ///
    /// ```
    /// use gossamer_sync::net::NodeId;
    ///
    /// let id = NodeId::from_public_key_der(b"some key");
    /// assert_eq!(id.as_bytes().len(), NodeId::LEN);
    /// // 160 bits: 20 bytes of the 32-byte SHA-256 digest.
    /// assert_eq!(NodeId::LEN * 8, 160);
    /// ```
    pub const LEN: usize = 20;

    /// Length of a node id's text form in characters.
    ///
    /// ```
    /// use gossamer_sync::net::{NodeId, NodeIdError};
    ///
    /// let text = NodeId::from_bytes([0xff; NodeId::LEN]).to_string();
    /// assert_eq!(text, "7".repeat(NodeId::TEXT_LEN));
    /// // One character short is refused.
    /// let short = &text[..NodeId::TEXT_LEN - 1];
    /// assert_eq!(short.parse::<NodeId>(), Err(NodeIdError::Length { len: NodeId::TEXT_LEN - 1 }));
    /// ```
    pub const TEXT_LEN: usize = 32;

    /// The node id with exactly these bytes.
    ///
    /// ```
    /// use gossamer_sync::net::NodeId;
    /// assert_eq!(NodeId::from_bytes([1; 20]).as_bytes(), &[1; 20]);
    /// ```
    pub const fn from_bytes(bytes: [u8; Self::LEN]) -> Self {
        Self(bytes)
    }

    /// The bytes of this id.
    ///
    /// ```
    /// use gossamer_sync::net::NodeId;
    ///
    /// let id: NodeId = "mzxw6ytbmzxw6ytbmzxw6ytbmzxw6ytb".parse().unwrap();
    /// assert_eq!(id.as_bytes(), b"foobafoobafoobafooba"); // base32 decoded
    /// assert_eq!(NodeId::from_bytes(*id.as_bytes()), id);
    /// ```
    pub const fn as_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }

    /// The id of the key whose DER-encoded `SubjectPublicKeyInfo` is `spki_der`.
    ///
    /// ```
    /// use gossamer_sync::net::NodeId;
    ///
    /// // Any bytes hash to an id; real callers pass a certificate's SPKI.
    /// let a = NodeId::from_public_key_der(b"key one");
    /// assert_ne!(a, NodeId::from_public_key_der(b"key two"));
    /// assert_eq!(a, NodeId::from_public_key_der(b"key one"));
    /// ```
    pub fn from_public_key_der(spki_der: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, spki_der);
        let mut bytes = [0; Self::LEN];
        bytes.copy_from_slice(&digest.as_ref()[..Self::LEN]);
        Self(bytes)
    }

    /// The id of the public key in an X.509 certificate (DER).
    ///
    /// This parses the certificate but checks nothing about it: it answers "whose key is this",
    /// not "may this peer connect". Fails with [`NetError::BadCertificate`] if the bytes are not
    /// a certificate.
    ///
    /// ```
    /// use gossamer_sync::net::{Identity, NodeId};
    ///
    /// let identity = Identity::generate()?;
    /// assert_eq!(NodeId::from_certificate(identity.certificate())?, identity.node_id());
    /// assert!(NodeId::from_certificate(&b"garbage"[..].into()).is_err());
    /// # Ok::<(), gossamer_sync::net::NetError>(())
    /// ```
    pub fn from_certificate(cert: &CertificateDer<'_>) -> Result<Self, NetError> {
        let parsed = ParsedCertificate::try_from(cert).map_err(NetError::BadCertificate)?;
        Ok(Self::from_public_key_der(parsed.subject_public_key_info().as_ref()))
    }

    /// This node's replica id in version vectors and dots: the first 16 bytes of the id.
    ///
    /// ```
    /// use gossamer_sync::net::NodeId;
    ///
    /// let mut bytes = [0; 20];
    /// bytes[0] = 0xab;
    /// assert_eq!(NodeId::from_bytes(bytes).replica_id().as_bytes()[0], 0xab);
    /// ```
    pub fn replica_id(&self) -> ReplicaId {
        let mut bytes = [0; 16];
        bytes.copy_from_slice(&self.0[..16]);
        ReplicaId::from_bytes(bytes)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = [0u8; Self::TEXT_LEN];
        // 5 bytes are 40 bits are 8 characters: encode each group independently.
        for (bytes, chars) in self.0.chunks_exact(5).zip(text.chunks_exact_mut(8)) {
            let group = bytes.iter().fold(0u64, |acc, &byte| (acc << 8) | u64::from(byte));
            for (i, c) in chars.iter_mut().enumerate() {
                let shift = 35 - 5 * i;
                *c = ALPHABET[((group >> shift) & 0x1f) as usize];
            }
        }
        // Every byte comes from ALPHABET, which is ASCII.
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for NodeId {
    /// The first 8 characters of the text form: enough to tell nodes apart in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.to_string();
        write!(f, "NodeId({})", &text[..8])
    }
}

/// Why a string is not a [`NodeId`].
///
/// ```
/// use gossamer_sync::net::{NodeId, NodeIdError};
///
/// assert_eq!("abc".parse::<NodeId>(), Err(NodeIdError::Length { len: 3 }));
/// // `1`, `0`, `8` and `9` are not base32 digits.
/// let typo = format!("{}1", "a".repeat(31));
/// match typo.parse::<NodeId>() {
///     Err(NodeIdError::InvalidChar { ch, index }) => assert_eq!((ch, index), ('1', 31)),
///     other => panic!("expected InvalidChar, got {other:?}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeIdError {
    /// The text has the wrong length.
    #[error("a node id has {expected} base32 characters, got {len}", expected = NodeId::TEXT_LEN)]
    Length {
        /// Number of characters in the input.
        len: usize,
    },
    /// The text contains a character outside the base32 alphabet (`a`–`z`, `2`–`7`).
    #[error("invalid character {ch:?} at position {index} of a node id (base32: a-z, 2-7)")]
    InvalidChar {
        /// The offending character.
        ch: char,
        /// Its position, counted in characters.
        index: usize,
    },
}

impl FromStr for NodeId {
    type Err = NodeIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let len = s.chars().count();
        if len != Self::TEXT_LEN {
            return Err(NodeIdError::Length { len });
        }
        // Exactly TEXT_LEN characters; any non-ASCII one is reported below, so the byte
        // indices used for the groups are character indices.
        let mut values = [0u8; Self::TEXT_LEN];
        for (index, (value, ch)) in values.iter_mut().zip(s.chars()).enumerate() {
            *value = match ch.to_ascii_lowercase() {
                c @ 'a'..='z' => c as u8 - b'a',
                c @ '2'..='7' => c as u8 - b'2' + 26,
                _ => return Err(NodeIdError::InvalidChar { ch, index }),
            };
        }
        let mut bytes = [0u8; Self::LEN];
        for (chars, out) in values.chunks_exact(8).zip(bytes.chunks_exact_mut(5)) {
            let group = chars.iter().fold(0u64, |acc, &v| (acc << 5) | u64::from(v));
            for (i, byte) in out.iter_mut().enumerate() {
                *byte = (group >> (32 - 8 * i)) as u8;
            }
        }
        Ok(Self(bytes))
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() { serializer.collect_str(self) } else { serializer.serialize_bytes(&self.0) }
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NodeIdVisitor;

        impl<'de> Visitor<'de> for NodeIdVisitor {
            type Value = NodeId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a node id: {} base32 characters or {} bytes", NodeId::TEXT_LEN, NodeId::LEN)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<NodeId, E> {
                v.parse().map_err(E::custom)
            }

            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<NodeId, E> {
                <[u8; NodeId::LEN]>::try_from(v).map(NodeId).map_err(|_| E::invalid_length(v.len(), &self))
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<NodeId, A::Error> {
                let mut bytes = [0u8; NodeId::LEN];
                for (i, byte) in bytes.iter_mut().enumerate() {
                    *byte = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(i, &self))?;
                }
                if seq.next_element::<u8>()?.is_some() {
                    return Err(de::Error::invalid_length(NodeId::LEN + 1, &self));
                }
                Ok(NodeId(bytes))
            }
        }

        if deserializer.is_human_readable() {
            deserializer.deserialize_str(NodeIdVisitor)
        } else {
            deserializer.deserialize_bytes(NodeIdVisitor)
        }
    }
}

/// The [`NodeId`] of a peer that proved, in a completed TLS handshake, that it holds the private
/// key behind it, and that our [`TrustList`](super::TrustList) admitted at that moment.
///
/// Only this module can make one, from a connection that passed the pinned-identity verifiers;
/// so a function that takes a `VerifiedNodeId` cannot be handed an id that a peer merely
/// claimed in a message. Use [`node_id`](Self::node_id) to compare it with, or store it as,
/// a plain [`NodeId`].
///
/// ```no_run
/// use gossamer_sync::net::{Endpoint, NodeId};
///
/// # async fn example(endpoint: Endpoint, server: NodeId) -> Result<(), gossamer_sync::net::NetError> {
/// let connection = endpoint.connect("127.0.0.1:4433".parse().unwrap(), server).await?;
/// let peer = connection.peer();
/// assert_eq!(peer, server);
/// println!("connected to {peer}, replica {}", peer.replica_id());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VerifiedNodeId(NodeId);

impl VerifiedNodeId {
    /// Marks `id` as verified. Callers must have taken it from the certificate of a connection
    /// whose handshake went through this module's verifiers.
    pub(super) fn new(id: NodeId) -> Self {
        Self(id)
    }

    /// The plain node id.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use gossamer_sync::net::{Endpoint, Identity, NodeId, TrustList};
    ///
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// # rt.block_on(async {
    /// # let loopback = "127.0.0.1:0".parse()?;
    /// # let server = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// # let client = Endpoint::bind(Identity::generate()?, [server.node_id()].into_iter().collect(), loopback)?;
    /// # server.trust().add(client.node_id());
    /// # let accepting = server.clone();
    /// # let accepted = tokio::spawn(async move { accepting.accept().await.unwrap().handshake().await });
    /// # let limit = Duration::from_secs(10);
    /// // `server` and `client` are endpoints on loopback that trust each other.
    /// let connection = tokio::time::timeout(limit, client.connect(server.local_addr()?, server.node_id())).await??;
    /// let peer: NodeId = connection.peer().node_id(); // e.g. to store it in the trust list
    /// assert_eq!(peer, server.node_id());
    /// # let accepted = tokio::time::timeout(limit, accepted).await???;
    /// assert_eq!(accepted.peer().node_id(), client.node_id());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn node_id(&self) -> NodeId {
        self.0
    }

    /// The peer's replica id (see [`NodeId::replica_id`]).
    ///
    /// ```
    /// # use std::time::Duration;
    /// use gossamer_sync::net::{Endpoint, Identity, TrustList};
    ///
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// # rt.block_on(async {
    /// # let loopback = "127.0.0.1:0".parse()?;
    /// # let server = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// # let client = Endpoint::bind(Identity::generate()?, [server.node_id()].into_iter().collect(), loopback)?;
    /// # server.trust().add(client.node_id());
    /// # let accepting = server.clone();
    /// # let accepted = tokio::spawn(async move { accepting.accept().await.unwrap().handshake().await });
    /// # let limit = Duration::from_secs(10);
    /// // `server` and `client` are endpoints on loopback that trust each other.
    /// let connection = tokio::time::timeout(limit, client.connect(server.local_addr()?, server.node_id())).await??;
    /// // The peer as version vectors and dots name it.
    /// assert_eq!(connection.peer().replica_id(), server.node_id().replica_id());
    /// # let accepted = tokio::time::timeout(limit, accepted).await???;
    /// # assert_eq!(accepted.peer().replica_id(), client.node_id().replica_id());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn replica_id(&self) -> ReplicaId {
        self.0.replica_id()
    }
}

impl PartialEq<NodeId> for VerifiedNodeId {
    fn eq(&self, other: &NodeId) -> bool {
        self.0 == *other
    }
}

impl From<VerifiedNodeId> for NodeId {
    fn from(id: VerifiedNodeId) -> Self {
        id.0
    }
}

impl fmt::Display for VerifiedNodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for VerifiedNodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Verified{:?}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seed: u8) -> NodeId {
        let mut bytes = [0u8; NodeId::LEN];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = seed.wrapping_mul(31).wrapping_add((i as u8).wrapping_mul(17));
        }
        NodeId(bytes)
    }

    #[test]
    fn text_round_trip() {
        for seed in 0..=255 {
            let id = sample(seed);
            let text = id.to_string();
            assert_eq!(text.len(), NodeId::TEXT_LEN);
            assert!(text.bytes().all(|c| ALPHABET.contains(&c)));
            assert_eq!(text.parse::<NodeId>(), Ok(id));
            assert_eq!(text.to_uppercase().parse::<NodeId>(), Ok(id));
        }
        let zero = NodeId([0; NodeId::LEN]);
        assert_eq!(zero.to_string(), "a".repeat(32));
        let ones = NodeId([0xff; NodeId::LEN]);
        assert_eq!(ones.to_string(), "7".repeat(32));
    }

    /// Known answer from RFC 4648 section 10: BASE32("fooba") = "MZXW6YTB".
    #[test]
    fn matches_rfc4648_base32() {
        let id = NodeId(*b"foobafoobafoobafooba");
        assert_eq!(id.to_string(), "mzxw6ytb".repeat(4));
    }

    #[test]
    fn rejects_malformed_text() {
        assert_eq!("abc".parse::<NodeId>(), Err(NodeIdError::Length { len: 3 }));
        assert_eq!("a".repeat(33).parse::<NodeId>(), Err(NodeIdError::Length { len: 33 }));
        let mut bad = "a".repeat(31);
        bad.push('1');
        assert_eq!(bad.parse::<NodeId>(), Err(NodeIdError::InvalidChar { ch: '1', index: 31 }));
        // Multi-byte characters are counted as characters, never sliced.
        let mut wide = "a".repeat(31);
        wide.push('é');
        assert_eq!(wide.parse::<NodeId>(), Err(NodeIdError::InvalidChar { ch: 'é', index: 31 }));
        assert!("=".repeat(32).parse::<NodeId>().is_err());
    }

    #[test]
    fn serde_round_trip_text_and_binary() {
        let id = sample(9);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<NodeId>(&json).unwrap(), id);

        let cbor = serde_cbor::to_vec(&id).unwrap();
        // A CBOR byte string: one header byte (major type 2, length 20 inline), then the id.
        assert_eq!(cbor[0], 0x40 | NodeId::LEN as u8);
        assert_eq!(cbor.len(), 1 + NodeId::LEN);
        assert_eq!(serde_cbor::from_slice::<NodeId>(&cbor).unwrap(), id);

        assert!(serde_cbor::from_slice::<NodeId>(&serde_cbor::to_vec(&[1u8; 3]).unwrap()).is_err());
        assert!(serde_json::from_str::<NodeId>("\"short\"").is_err());
    }

    #[test]
    fn replica_id_is_the_id_prefix() {
        let id = sample(3);
        assert_eq!(id.replica_id().as_bytes()[..], id.as_bytes()[..16]);
    }

    #[test]
    fn debug_is_short() {
        let id = sample(1);
        let debug = format!("{id:?}");
        assert_eq!(debug, format!("NodeId({})", &id.to_string()[..8]));
        assert_eq!(format!("{:?}", VerifiedNodeId::new(id)), format!("Verified{debug}"));
    }
}
