//! Errors of the wire layer.

use thiserror::Error;

/// Why a frame could not be encoded or decoded. A decode error concerns one connection: the
/// node closes it and keeps serving its other peers.
///
/// ```
/// use gossamer_sync::wire::{decode, encode, frame, Envelope, Message, WireError, WIRE_VERSION};
///
/// let newer = Envelope { version: WIRE_VERSION + 1, body: Message::Ops { ops: vec![], more: false } };
/// match decode(&encode(&newer)?, 1024) {
///     Err(WireError::UnsupportedVersion { found, supported }) => {
///         assert_eq!((found, supported), (WIRE_VERSION + 1, WIRE_VERSION));
///     }
///     other => panic!("expected UnsupportedVersion, got {other:?}"),
/// }
/// assert!(matches!(decode(b"not cbor", 1024), Err(WireError::Malformed(_))));
/// assert_eq!(
///     frame(&[0; 100], 64),
///     Err(WireError::LimitExceeded { what: "frame", value: 100, limit: 64 })
/// );
/// # Ok::<(), WireError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    /// The envelope names a protocol version this node does not speak.
    #[error("unsupported wire version {found} (this node speaks {supported})")]
    UnsupportedVersion {
        /// The version in the frame.
        found: u16,
        /// The version this node speaks.
        supported: u16,
    },
    /// The bytes are not a well-formed envelope.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A frame or one of its parts is larger than the configured bound.
    #[error("{what} is {value}, more than the limit of {limit}")]
    LimitExceeded {
        /// What was too large.
        what: &'static str,
        /// Its size.
        value: usize,
        /// The bound.
        limit: usize,
    },
    /// A value could not be encoded.
    #[error("cannot encode: {0}")]
    Encode(String),
}
