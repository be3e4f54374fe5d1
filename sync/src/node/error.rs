//! Errors of the node.

use thiserror::Error;

use crate::membership::MembershipError;
use crate::net::NetError;
use crate::protocol::ProtocolError;
use crate::store::StoreError;

/// Why a node call failed.
///
/// ```
/// use gossamer_crdt::CausalCounter;
/// use gossamer_sync::node::{LocalReplica, NodeError, NodeLock};
///
/// let dir = tempfile::tempdir()?;
/// // While one process holds the data directory, nobody else may open it...
/// let lock = NodeLock::acquire(dir.path())?;
/// match LocalReplica::<CausalCounter>::open(dir.path()) {
///     Err(NodeError::Locked { dir: busy }) => assert_eq!(busy, dir.path()),
///     other => panic!("expected Locked, got {:?}", other.err()),
/// }
/// drop(lock);
/// // ... and a data directory must be a directory.
/// let file = dir.path().join("not-a-dir");
/// std::fs::write(&file, b"")?;
/// assert!(matches!(NodeLock::acquire(&file), Err(NodeError::Config(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Error)]
pub enum NodeError {
    /// The transport could not start or a peer could not be reached.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The store failed; a write that reports this was not acknowledged.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The replication protocol refused (e.g. an op that cannot be encoded).
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The membership layer refused.
    #[error(transparent)]
    Membership(#[from] MembershipError),
    /// The node has shut down (or its driver stopped after a fatal store error).
    #[error("the node has shut down")]
    Shutdown,
    /// Another process uses this data directory (a running node, or a CLI edit).
    #[error("data directory {} is in use by another process", dir.display())]
    Locked {
        /// The directory.
        dir: std::path::PathBuf,
    },
    /// The configuration is inconsistent.
    #[error("invalid node configuration: {0}")]
    Config(String),
}
