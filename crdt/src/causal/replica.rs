//! Replica identities.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The identity of one replica: 16 bytes, usually a random (v4) UUID.
///
/// Every event a replica produces is named by a [`Dot`](crate::Dot) that carries its
/// `ReplicaId`, so an id must never be reused by a replica that has lost its state: start
/// such a replica under a fresh id.
///
/// Serialized as 16 raw bytes in binary formats (not as a `u128`: `serde_cbor` cannot encode
/// integers above 2^64) and as the hyphenated UUID string in human-readable formats.
///
/// ```
/// use gossamer_crdt::ReplicaId;
///
/// let a = ReplicaId::random();
/// let b = ReplicaId::from_bytes([7; 16]);
/// assert_ne!(a, b);
/// assert_eq!(b, b.to_string().parse().unwrap());
/// assert_eq!(ReplicaId::from_u128(1).as_bytes()[15], 1);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ReplicaId([u8; 16]);

impl ReplicaId {
    /// A fresh random id (UUID v4).
    ///
    /// ```
    /// use gossamer_crdt::ReplicaId;
    ///
    /// let (a, b) = (ReplicaId::random(), ReplicaId::random());
    /// assert_ne!(a, b);
    /// assert_eq!(a.to_uuid().get_version_num(), 4);
    /// ```
    pub fn random() -> Self {
        Self(*uuid::Uuid::new_v4().as_bytes())
    }

    /// The id with exactly these bytes.
    ///
    /// ```
    /// use gossamer_crdt::ReplicaId;
    ///
    /// const ID: ReplicaId = ReplicaId::from_bytes([0xab; 16]);
    /// assert_eq!(ID.as_bytes(), &[0xab; 16]);
    /// assert_eq!(ID.to_string(), "abababab-abab-abab-abab-abababababab");
    /// ```
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The id whose big-endian bytes are `n`; handy for tests and simulations.
    ///
    /// ```
    /// use gossamer_crdt::ReplicaId;
    ///
    /// let r = ReplicaId::from_u128(0x0102);
    /// assert_eq!(r, ReplicaId::from_bytes(0x0102_u128.to_be_bytes()));
    /// assert_eq!(r.as_bytes()[14..], [1, 2]);
    /// // Big-endian, so ids order as their numbers do.
    /// assert!(ReplicaId::from_u128(2) < ReplicaId::from_u128(256));
    /// ```
    pub const fn from_u128(n: u128) -> Self {
        Self(n.to_be_bytes())
    }

    /// The 16 bytes of this id.
    ///
    /// ```
    /// use gossamer_crdt::ReplicaId;
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let bytes: &[u8; 16] = r.as_bytes();
    /// assert_eq!(bytes[15], 1);
    /// assert_eq!(ReplicaId::from_bytes(*bytes), r);
    /// ```
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// This id as a [`uuid::Uuid`].
    ///
    /// ```
    /// use gossamer_crdt::ReplicaId;
    ///
    /// let r = ReplicaId::random();
    /// let u = r.to_uuid();
    /// assert_eq!(u.as_bytes(), r.as_bytes());
    /// assert_eq!(ReplicaId::from(u), r);
    /// assert_eq!(u.hyphenated().to_string(), r.to_string());
    /// ```
    pub fn to_uuid(self) -> uuid::Uuid {
        uuid::Uuid::from_bytes(self.0)
    }
}

impl From<uuid::Uuid> for ReplicaId {
    fn from(u: uuid::Uuid) -> Self {
        Self(*u.as_bytes())
    }
}

impl fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_uuid().hyphenated(), f)
    }
}

impl fmt::Debug for ReplicaId {
    /// The first four bytes in hex: enough to tell replicas apart in logs and test output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "R{:02x}{:02x}{:02x}{:02x}", self.0[0], self.0[1], self.0[2], self.0[3])?;
        if self.0[4..12] == [0; 8] {
            // Small test ids (`from_u128`) differ only in the last bytes.
            write!(f, "..{:02x}{:02x}", self.0[14], self.0[15])?;
        }
        Ok(())
    }
}

impl FromStr for ReplicaId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(Self::from)
    }
}

impl Serialize for ReplicaId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() { serializer.collect_str(self) } else { serializer.serialize_bytes(&self.0) }
    }
}

impl<'de> Deserialize<'de> for ReplicaId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ReplicaId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("16 bytes or a UUID string")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<ReplicaId, E> {
                let bytes: [u8; 16] = v.try_into().map_err(|_| E::invalid_length(v.len(), &"16 bytes"))?;
                Ok(ReplicaId(bytes))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ReplicaId, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<ReplicaId, A::Error> {
                let mut bytes = [0u8; 16];
                for (i, b) in bytes.iter_mut().enumerate() {
                    *b = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(i, &"16 bytes"))?;
                }
                if seq.next_element::<u8>()?.is_some() {
                    return Err(de::Error::invalid_length(17, &"16 bytes"));
                }
                Ok(ReplicaId(bytes))
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(V)
        } else {
            deserializer.deserialize_bytes(V)
        }
    }
}
