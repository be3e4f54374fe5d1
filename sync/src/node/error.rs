//! Errors of the node.

use thiserror::Error;

use crate::membership::MembershipError;
use crate::net::NetError;
use crate::protocol::ProtocolError;
use crate::store::StoreError;

/// Why a node call failed.
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
