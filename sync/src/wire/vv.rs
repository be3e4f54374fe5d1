//! The compact encoding of version vectors on the wire.

use gossamer_crdt::{ReplicaId, VClock};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A version vector as one byte string: for each replica in id order, its 16-byte id then its
/// counter as an unsigned LEB128 varint. 17 to 26 bytes an entry (18 for counters below
/// 16384), against 19 to 27 for a CBOR array of pairs.
///
/// Decoding checks the shape (ids strictly increasing, counters non-zero, varints at most 10
/// bytes) and fails with an error, never a panic.
///
/// ```
/// use gossamer_crdt::{ReplicaId, VClock};
/// use gossamer_sync::wire::CompactVv;
///
/// let mut vv = VClock::new();
/// vv.set(ReplicaId::from_u128(1), 300);
/// let bytes = CompactVv::encode(&vv);
/// assert_eq!(bytes.len(), 18);
/// assert_eq!(CompactVv::decode(&bytes).unwrap(), vv);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CompactVv(pub VClock);

impl CompactVv {
    /// The byte string of `vv`.
    ///
    /// ```
    /// use gossamer_crdt::{ReplicaId, VClock};
    /// use gossamer_sync::wire::CompactVv;
    ///
    /// assert!(CompactVv::encode(&VClock::new()).is_empty());
    /// let r = ReplicaId::from_u128(7);
    /// let mut vv = VClock::new();
    /// vv.set(r, 300);
    /// let bytes = CompactVv::encode(&vv);
    /// assert_eq!(&bytes[..16], r.as_bytes());
    /// assert_eq!(&bytes[16..], [0xac, 0x02]); // 300 as a LEB128 varint
    /// ```
    pub fn encode(vv: &VClock) -> Vec<u8> {
        let mut out = Vec::with_capacity(vv.len() * 19);
        for (r, c) in vv.iter() {
            out.extend_from_slice(r.as_bytes());
            let mut c = c;
            loop {
                let byte = (c & 0x7f) as u8;
                c >>= 7;
                if c == 0 {
                    out.push(byte);
                    break;
                }
                out.push(byte | 0x80);
            }
        }
        out
    }

    /// Parses a byte string made by [`encode`](Self::encode).
    ///
    /// # Errors
    /// A description of the first thing that is wrong.
    ///
    /// ```
    /// use gossamer_crdt::{ReplicaId, VClock};
    /// use gossamer_sync::wire::CompactVv;
    ///
    /// let mut vv = VClock::new();
    /// vv.set(ReplicaId::from_u128(1), 5);
    /// vv.set(ReplicaId::from_u128(2), 1);
    /// let bytes = CompactVv::encode(&vv);
    /// assert_eq!(CompactVv::decode(&bytes), Ok(vv));
    /// // Malformed input is an error, never a panic.
    /// assert_eq!(CompactVv::decode(&bytes[..bytes.len() - 1]), Err("truncated varint in version vector"));
    /// assert_eq!(CompactVv::decode(&bytes[..20]), Err("version vector entry shorter than a replica id"));
    /// let twice = [&bytes[..17], &bytes[..17]].concat(); // replica 1 twice
    /// assert_eq!(CompactVv::decode(&twice), Err("version vector replicas not strictly increasing"));
    /// let mut zero = ReplicaId::from_u128(1).as_bytes().to_vec();
    /// zero.push(0);
    /// assert_eq!(CompactVv::decode(&zero), Err("zero counter in version vector"));
    /// ```
    pub fn decode(mut bytes: &[u8]) -> Result<VClock, &'static str> {
        let mut vv = Vec::with_capacity(bytes.len() / 17);
        let mut last: Option<ReplicaId> = None;
        while !bytes.is_empty() {
            let Some((id, rest)) = bytes.split_first_chunk::<16>() else {
                return Err("version vector entry shorter than a replica id");
            };
            let id = ReplicaId::from_bytes(*id);
            if last.is_some_and(|l| l >= id) {
                return Err("version vector replicas not strictly increasing");
            }
            let mut counter: u64 = 0;
            let mut used = 0;
            loop {
                let Some(&b) = rest.get(used) else { return Err("truncated varint in version vector") };
                if used == 9 && b > 1 {
                    return Err("varint overflows 64 bits");
                }
                counter |= u64::from(b & 0x7f) << (7 * used);
                used += 1;
                if b & 0x80 == 0 {
                    if used > 1 && b == 0 {
                        // One vector, one encoding: digests hash these bytes.
                        return Err("varint not in its shortest form");
                    }
                    break;
                }
            }
            if counter == 0 {
                return Err("zero counter in version vector");
            }
            vv.push((id, counter));
            last = Some(id);
            bytes = &rest[used..];
        }
        Ok(vv.into_iter().collect())
    }
}

impl Serialize for CompactVv {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&Self::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for CompactVv {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes: bytes::Bytes = Deserialize::deserialize(deserializer)?;
        Self::decode(&bytes).map(CompactVv).map_err(serde::de::Error::custom)
    }
}
