//! Errors of the protocol core.

use thiserror::Error;

use crate::wire::WireError;

/// Why a protocol call failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// An op or state could not be encoded.
    #[error("cannot encode: {0}")]
    Encode(#[from] WireError),
    /// A restored op log or snapshot is inconsistent.
    #[error("cannot restore: {0}")]
    Restore(String),
}
