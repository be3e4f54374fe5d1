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
    /// This replica's own dot counter is at `u64::MAX`, so a local update has no dot left to
    /// take. Only input claiming that we made 2^64 − 1 ops (a forged digest, op or snapshot
    /// from a peer) can put it there; the update is refused and the state is unchanged.
    #[error("replica {replica}: its dot counter is exhausted")]
    DotsExhausted {
        /// The replica, in its display form.
        replica: String,
    },
}
