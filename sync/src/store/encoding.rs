//! How values are laid out in the store's columns, and the checks both stores share.
//!
//! - A replica id is its 16 bytes.
//! - A dependency list is, for each dot in order, the 16-byte replica id then the counter as
//!   an unsigned LEB128 varint: 17 bytes a dependency for counters below 128, 18 below 16384.
//!   Order and repetitions are kept as given, so a record loads back exactly as it was stored.
//! - Version vectors (a snapshot's `vv` and `floor`) use [`CompactVv`](crate::wire::CompactVv).

use gossamer_crdt::{Dot, ReplicaId};

use super::StoreError;

/// The largest sequence number, timestamp or counter the store keeps in an integer column:
/// SQLite integers are signed 64-bit. Both stores refuse more, so they behave alike.
pub(crate) const MAX_INTEGER: u64 = i64::MAX as u64;

/// `value` as a SQLite integer, or [`StoreError::OutOfRange`].
pub(crate) fn to_integer(what: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { what, value, min: 0, max: MAX_INTEGER })
}

/// An op's creation time as both stores keep it: a time past `i64::MAX` ms (a broken clock,
/// some 292 million years out) is kept as that maximum, not refused, so such an op still
/// replicates; "very late" is all that matters of it.
pub(crate) fn stored_created_ms(ms: u64) -> u64 {
    ms.min(MAX_INTEGER)
}

/// The encoded length of `deps`, without encoding them.
pub(crate) fn deps_len(deps: &[Dot]) -> usize {
    deps.iter().map(|d| 16 + varint_len(d.counter)).sum()
}

/// Appends the encoding of `deps` to `out`.
pub(crate) fn encode_deps(deps: &[Dot], out: &mut Vec<u8>) {
    out.reserve(deps_len(deps));
    for dot in deps {
        out.extend_from_slice(dot.replica.as_bytes());
        let mut c = dot.counter;
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
}

/// Parses what [`encode_deps`] wrote.
///
/// # Errors
/// A description of the first thing that is wrong; never panics.
pub(crate) fn decode_deps(mut bytes: &[u8]) -> Result<Vec<Dot>, &'static str> {
    let mut deps = Vec::new();
    while !bytes.is_empty() {
        let Some((id, rest)) = bytes.split_first_chunk::<16>() else {
            return Err("dependency shorter than a replica id");
        };
        let mut counter: u64 = 0;
        let mut used = 0;
        loop {
            let Some(&b) = rest.get(used) else { return Err("truncated varint in a dependency") };
            if used == 9 && b > 1 {
                return Err("dependency counter overflows 64 bits");
            }
            counter |= u64::from(b & 0x7f) << (7 * used);
            used += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
        deps.push(Dot::new(ReplicaId::from_bytes(*id), counter));
        bytes = &rest[used..];
    }
    Ok(deps)
}

/// A replica id from a stored 16-byte value.
pub(crate) fn replica_id(bytes: &[u8]) -> Option<ReplicaId> {
    <[u8; 16]>::try_from(bytes).ok().map(ReplicaId::from_bytes)
}

fn varint_len(mut c: u64) -> usize {
    let mut n = 1;
    while c >= 0x80 {
        c >>= 7;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(r: u128, c: u64) -> Dot {
        Dot::new(ReplicaId::from_u128(r), c)
    }

    #[test]
    fn deps_round_trip_keeps_order_and_repetitions() {
        let cases = [
            vec![],
            vec![dot(1, 1)],
            vec![dot(3, 300), dot(1, 0), dot(3, 300), dot(2, u64::MAX), dot(9, 127), dot(9, 128)],
        ];
        for deps in cases {
            let mut bytes = Vec::new();
            encode_deps(&deps, &mut bytes);
            assert_eq!(bytes.len(), deps_len(&deps));
            assert_eq!(decode_deps(&bytes).unwrap(), deps);
        }
    }

    #[test]
    fn deps_encoding_is_compact() {
        let mut bytes = Vec::new();
        encode_deps(&[dot(1, 5), dot(2, 16383)], &mut bytes);
        assert_eq!(bytes.len(), 17 + 18);
    }

    #[test]
    fn malformed_deps_are_errors() {
        let mut good = Vec::new();
        encode_deps(&[dot(1, 1_000_000)], &mut good);
        // Every strict prefix is malformed (the encoding has one dependency).
        for cut in 1..good.len() {
            assert!(decode_deps(&good[..cut]).is_err(), "prefix of {cut} bytes accepted");
        }
        let mut overflow = vec![0u8; 16];
        overflow.extend_from_slice(&[0xff; 9]);
        overflow.push(0x02);
        assert_eq!(decode_deps(&overflow), Err("dependency counter overflows 64 bits"));
        let mut endless = vec![0u8; 16];
        endless.extend_from_slice(&[0x80; 12]);
        assert!(decode_deps(&endless).is_err());
    }

    #[test]
    fn integers_above_i64_are_out_of_range() {
        assert_eq!(to_integer("x", MAX_INTEGER).unwrap(), i64::MAX);
        assert!(
            matches!(to_integer("x", MAX_INTEGER + 1), Err(StoreError::OutOfRange { value, .. }) if value == MAX_INTEGER + 1)
        );
    }
}
