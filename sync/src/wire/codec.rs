//! The one place that knows the encoding. Swapping CBOR for another serde format touches
//! this file only: messages, op payloads and snapshots all go through [`to_vec`] and
//! [`from_slice`].

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::WireError;

/// Encodes `value` as CBOR in serde_cbor's *packed* form: struct fields, unit variants and
/// struct variants by index, not by name. (Newtype variants would still go by name, which is
/// why every message variant with data is a struct variant.)
///
/// # Errors
/// [`WireError::Encode`] if the value cannot be represented.
///
/// ```
/// use gossamer_sync::wire::codec::{from_slice, to_vec};
/// use gossamer_sync::wire::{Envelope, Message};
///
/// let env = Envelope::new(Message::Ops { ops: vec![], more: true });
/// let bytes = to_vec(&env)?;
/// // Packed: fields go by index, so no field name is on the wire.
/// assert!(!bytes.windows(4).any(|w| w == b"more"));
/// assert_eq!(from_slice::<Envelope>(&bytes)?, env);
/// # Ok::<(), gossamer_sync::wire::WireError>(())
/// ```
pub fn to_vec<T: Serialize>(value: &T) -> Result<Vec<u8>, WireError> {
    serde_cbor::ser::to_vec_packed(value).map_err(|e| WireError::Encode(e.to_string()))
}

/// Decodes a value encoded by [`to_vec`]. Never panics; nesting is limited by the decoder
/// and every length is checked against the input before anything is allocated for it.
///
/// # Errors
/// [`WireError::Malformed`] naming what the decoder rejected.
///
/// ```
/// use gossamer_sync::wire::codec::{from_slice, to_vec};
/// use gossamer_sync::wire::WireError;
///
/// let bytes = to_vec(&(7u64, String::from("seven")))?;
/// assert_eq!(from_slice::<(u64, String)>(&bytes)?, (7, "seven".to_string()));
/// // A truncated value is refused with a typed error, not a panic.
/// let truncated = from_slice::<(u64, String)>(&bytes[..bytes.len() - 1]);
/// assert!(matches!(truncated, Err(WireError::Malformed(_))));
/// // So is an array that claims 2^64 - 1 elements in 9 bytes: nothing is allocated for them.
/// let huge = [0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
/// assert!(matches!(from_slice::<Vec<u8>>(&huge), Err(WireError::Malformed(_))));
/// # Ok::<(), WireError>(())
/// ```
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    serde_cbor::from_slice(bytes).map_err(|e| WireError::Malformed(e.to_string()))
}
