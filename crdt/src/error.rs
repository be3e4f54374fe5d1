//! The errors of this crate.

use thiserror::Error;

use crate::Dot;

/// Everything that can go wrong in `gossamer-crdt`: an op that is not causally ready, a
/// remote clock too far ahead, a decoded state that breaks an invariant.
///
/// ```
/// use gossamer_crdt::{CmRDT, CausalityError, GCounter, ReplicaId};
///
/// let r = ReplicaId::from_u128(1);
/// let mut origin = GCounter::new();
/// let first = origin.inc(r, 1);
/// let second = origin.inc(r, 1);
/// let replica = GCounter::new();
/// // `second` depends on `first`, which `replica` has not seen.
/// assert!(matches!(replica.validate(&second), Err(CausalityError::MissingDependency { .. })));
/// assert!(replica.validate(&first).is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CausalityError {
    /// The op's own dot has been seen already: it is a duplicate.
    #[error("op {dot:?} was already applied")]
    AlreadySeen {
        /// The op's dot.
        dot: Dot,
    },
    /// The op's dot skips events of its replica that have not been seen.
    #[error("op {dot:?} is not causally ready: only {have} events of its replica were seen")]
    MissingDependency {
        /// The op's dot.
        dot: Dot,
        /// How many events of `dot.replica` have been seen.
        have: u64,
    },
    /// The op refers to (removes or replaces) an event that has not been seen yet.
    #[error("op depends on {dot:?}, which has not been seen")]
    UnseenDependency {
        /// The event the op observed at its origin.
        dot: Dot,
    },
    /// A remote timestamp is further ahead of local time than the clock tolerates.
    #[error("remote clock {remote_ms} ms is more than {max_drift_ms} ms ahead of local {local_ms} ms")]
    ClockAhead {
        /// The remote timestamp's physical part.
        remote_ms: u64,
        /// Our physical time.
        local_ms: u64,
        /// The tolerated drift.
        max_drift_ms: u64,
    },
    /// A decoded state breaks an invariant of its type.
    #[error("invalid state: {0}")]
    InvalidState(&'static str),
}
