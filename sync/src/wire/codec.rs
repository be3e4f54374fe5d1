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
pub fn to_vec<T: Serialize>(value: &T) -> Result<Vec<u8>, WireError> {
    serde_cbor::ser::to_vec_packed(value).map_err(|e| WireError::Encode(e.to_string()))
}

/// Decodes a value encoded by [`to_vec`]. Never panics; nesting is limited by the decoder
/// and every length is checked against the input before anything is allocated for it.
///
/// # Errors
/// [`WireError::Malformed`] naming what the decoder rejected.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    serde_cbor::from_slice(bytes).map_err(|e| WireError::Malformed(e.to_string()))
}
