//! The wire format: a versioned CBOR envelope around one [`Message`], framed with a length
//! prefix and a hard maximum. Pure: no sockets, no clocks. The byte-level layout, with
//! examples, is in `sync/WIRE.md`; golden vectors in `sync/tests/wire_golden.rs` pin it.

pub mod codec;
mod error;
mod message;
mod vv;

pub use error::WireError;
pub use message::{Envelope, Message, OpRecord, SnapshotChunk};
pub use vv::CompactVv;

/// The wire version this node speaks.
///
/// ```
/// use gossamer_sync::wire::{decode, encode, Envelope, Message, WireError, DEFAULT_MAX_FRAME, WIRE_VERSION};
///
/// let from_the_future = Envelope { version: WIRE_VERSION + 1, body: Message::Ops { ops: vec![], more: false } };
/// let err = decode(&encode(&from_the_future)?, DEFAULT_MAX_FRAME).unwrap_err();
/// assert_eq!(err, WireError::UnsupportedVersion { found: WIRE_VERSION + 1, supported: WIRE_VERSION });
/// # Ok::<(), WireError>(())
/// ```
pub const WIRE_VERSION: u16 = 1;

/// The default maximum frame: 4 MiB. Checked before anything is allocated for a frame.
///
/// ```
/// use gossamer_sync::wire::{frame, unframe, WireError, DEFAULT_MAX_FRAME};
///
/// // A length prefix over the limit is refused before the payload is even looked at.
/// let prefix = (DEFAULT_MAX_FRAME as u32 + 1).to_be_bytes();
/// assert!(matches!(unframe(&prefix, DEFAULT_MAX_FRAME), Err(WireError::LimitExceeded { .. })));
/// // A sender may not produce one either; the limit itself is fine.
/// assert!(frame(&vec![0; DEFAULT_MAX_FRAME + 1], DEFAULT_MAX_FRAME).is_err());
/// assert_eq!(frame(&vec![0; DEFAULT_MAX_FRAME], DEFAULT_MAX_FRAME)?.len(), 4 + DEFAULT_MAX_FRAME);
/// # Ok::<(), WireError>(())
/// ```
pub const DEFAULT_MAX_FRAME: usize = 4 << 20;

/// The FNV-1a 64-bit hash: stable across platforms and releases, unlike `std`'s hashers,
/// so two nodes agree on the hash of equal version vectors.
///
/// ```
/// assert_eq!(gossamer_sync::wire::fnv1a(b""), 0xcbf2_9ce4_8422_2325);
/// ```
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Encodes an envelope (the frame's payload, without the length prefix).
///
/// # Errors
/// [`WireError::Encode`] if a value cannot be represented.
///
/// ```
/// use gossamer_sync::wire::{decode, encode, Envelope, Message, WireError, DEFAULT_MAX_FRAME};
///
/// let env = Envelope::new(Message::Digest { hash: 42, vv: None, reply: true });
/// let payload = encode(&env)?;
/// assert_eq!(decode(&payload, DEFAULT_MAX_FRAME)?, env);
/// // A payload cut short is refused with a typed error.
/// assert!(matches!(decode(&payload[..payload.len() - 1], DEFAULT_MAX_FRAME), Err(WireError::Malformed(_))));
/// # Ok::<(), WireError>(())
/// ```
pub fn encode(envelope: &Envelope) -> Result<Vec<u8>, WireError> {
    codec::to_vec(envelope)
}

/// Decodes a frame's payload, refusing frames over `max_frame` bytes and envelopes of
/// another version. Never panics.
///
/// # Errors
/// [`WireError::LimitExceeded`], [`WireError::UnsupportedVersion`] or
/// [`WireError::Malformed`].
///
/// ```
/// use gossamer_sync::wire::{decode, WireError};
///
/// assert!(matches!(decode(&[0xff, 0x00], 1024), Err(WireError::Malformed(_))));
/// assert!(matches!(decode(&[0u8; 64], 16), Err(WireError::LimitExceeded { .. })));
/// ```
pub fn decode(bytes: &[u8], max_frame: usize) -> Result<Envelope, WireError> {
    if bytes.len() > max_frame {
        return Err(WireError::LimitExceeded { what: "frame", value: bytes.len(), limit: max_frame });
    }
    match codec::from_slice::<Envelope>(bytes) {
        Ok(env) if env.version == WIRE_VERSION => Ok(env),
        Ok(env) => Err(WireError::UnsupportedVersion { found: env.version, supported: WIRE_VERSION }),
        Err(e) => {
            // A newer version may carry bodies we cannot parse: report the version, not the body.
            #[derive(serde::Deserialize)]
            struct VersionOnly {
                version: u16,
                #[allow(dead_code)]
                body: serde::de::IgnoredAny,
            }
            match codec::from_slice::<VersionOnly>(bytes) {
                Ok(v) if v.version != WIRE_VERSION => {
                    Err(WireError::UnsupportedVersion { found: v.version, supported: WIRE_VERSION })
                }
                _ => Err(e),
            }
        }
    }
}

/// Prepends the 4-byte big-endian length prefix to an encoded envelope.
///
/// # Errors
/// [`WireError::LimitExceeded`] when the payload is over `max_frame`: an oversized message
/// is an error for the sender, never a silent drop.
///
/// ```
/// use gossamer_sync::wire::{frame, WireError};
///
/// assert_eq!(frame(b"abc", 16)?, [0, 0, 0, 3, b'a', b'b', b'c']);
/// assert_eq!(frame(&[0; 17], 16), Err(WireError::LimitExceeded { what: "frame", value: 17, limit: 16 }));
/// # Ok::<(), WireError>(())
/// ```
pub fn frame(payload: &[u8], max_frame: usize) -> Result<Vec<u8>, WireError> {
    if payload.len() > max_frame || payload.len() > u32::MAX as usize {
        return Err(WireError::LimitExceeded { what: "frame", value: payload.len(), limit: max_frame });
    }
    let mut out = Vec::with_capacity(4 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Splits one length-prefixed frame off the front of `buf`: `Ok(None)` when more bytes are
/// needed. The length is checked against `max_frame` before anything is allocated.
///
/// # Errors
/// [`WireError::LimitExceeded`] for a length prefix over `max_frame`.
///
/// ```
/// use gossamer_sync::wire::{frame, unframe};
///
/// let f = frame(b"abc", 16).unwrap();
/// assert_eq!(unframe(&f, 16).unwrap(), Some((&b"abc"[..], 7)));
/// assert_eq!(unframe(&f[..5], 16).unwrap(), None);
/// assert!(unframe(&[0xff, 0xff, 0xff, 0xff], 16).is_err());
/// ```
pub fn unframe(buf: &[u8], max_frame: usize) -> Result<Option<(&[u8], usize)>, WireError> {
    let Some(prefix) = buf.first_chunk::<4>() else { return Ok(None) };
    let len = u32::from_be_bytes(*prefix) as usize;
    if len > max_frame {
        return Err(WireError::LimitExceeded { what: "frame", value: len, limit: max_frame });
    }
    Ok(buf.get(4..4 + len).map(|payload| (payload, 4 + len)))
}
