//! Errors of the protocol core.

use thiserror::Error;

use crate::wire::WireError;

/// Why a protocol call failed.
///
/// ```
/// use bytes::Bytes;
/// use gossamer_crdt::{CausalCounter, ReplicaId, VClock};
/// use gossamer_sync::protocol::{Config, Output, ProtocolError, Replica, Restored};
/// use gossamer_sync::wire::{CompactVv, Message, SnapshotChunk, codec};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut ra = Replica::<CausalCounter>::new(a, Config::default(), 1);
/// let mut log = Vec::new();
/// for t in 1..=3 {
///     for out in ra.local_update(t, |c| c.inc(a, 1))?.1 {
///         if let Output::Persist(ops) = out {
///             log.extend(ops);
///         }
///     }
/// }
/// // A store that lost the second op: the third cannot be replayed without it.
/// log.remove(1);
/// let err = Replica::<CausalCounter>::restore(a, Config::default(), 1, Restored { snapshot: None, log }).unwrap_err();
/// assert!(matches!(err, ProtocolError::Restore(ref why) if why.contains("before its dependency")), "{err}");
///
/// // A forged snapshot claims that `ra` already made its last possible op.
/// let claim = VClock::from(vec![(a, u64::MAX)]);
/// let data = Bytes::from(codec::to_vec(&CausalCounter::default())?);
/// let chunk = SnapshotChunk { id: 1, index: 0, last: true, vv: Some(CompactVv(claim)), data };
/// ra.handle_message(4, b, Message::Snapshot { chunk });
/// let err = ra.local_update(5, |c| c.inc(a, 1)).unwrap_err();
/// assert_eq!(err, ProtocolError::DotsExhausted { replica: a.to_string() });
/// assert_eq!(ra.state().value(), 3, "the refused update changed nothing");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
