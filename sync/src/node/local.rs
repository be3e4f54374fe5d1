//! The data directory without the network: its lock, and a replica opened for offline edits.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use gossamer_crdt::{Dot, ReplicaId, VClock};

use super::NodeError;
use crate::net::{Identity, NodeId};
use crate::protocol::{Config, Crdt, Output, Replica, StoredSnapshot};
use crate::store::{SqliteStore, Store};

/// The store's file name inside a data directory.
pub const STORE_FILE: &str = "store.sqlite3";

/// The lock file's name inside a data directory.
const LOCK_FILE: &str = "node.lock";

/// Exclusive use of a data directory: one process at a time may write its store, because
/// two writers under one replica id would issue the same dots twice. Released on drop (and by
/// the operating system if the process dies).
///
/// ```
/// use gossamer_sync::node::NodeLock;
///
/// let dir = tempfile::tempdir().unwrap();
/// let lock = NodeLock::acquire(dir.path()).unwrap();
/// assert!(NodeLock::acquire(dir.path()).is_err());
/// drop(lock);
/// assert!(NodeLock::acquire(dir.path()).is_ok());
/// ```
#[derive(Debug)]
pub struct NodeLock {
    _file: File,
    path: PathBuf,
}

impl NodeLock {
    /// Takes the lock of `dir` (creating the directory if needed).
    ///
    /// # Errors
    /// [`NodeError::Locked`] when another process holds it, [`NodeError::Config`] when the
    /// directory cannot be created.
    pub fn acquire(dir: &Path) -> Result<Self, NodeError> {
        std::fs::create_dir_all(dir).map_err(|e| NodeError::Config(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| NodeError::Config(format!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(NodeLock { _file: file, path }),
            Err(_) => Err(NodeError::Locked { dir: dir.to_owned() }),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A data directory opened without networking: the replica restored from its store, for
/// reading and for offline edits that a node started later will replicate.
///
/// ```
/// use gossamer_crdt::CausalCounter;
/// use gossamer_sync::node::LocalReplica;
///
/// let dir = tempfile::tempdir().unwrap();
/// let mut local = LocalReplica::<CausalCounter>::open(dir.path()).unwrap();
/// let me = local.replica_id();
/// local.update(|c| c.inc(me, 2)).unwrap();
/// drop(local);
/// let again = LocalReplica::<CausalCounter>::open(dir.path()).unwrap();
/// assert_eq!(again.state().value(), 2);
/// ```
pub struct LocalReplica<T: Crdt> {
    replica: Replica<T>,
    store: SqliteStore,
    node: NodeId,
    _lock: NodeLock,
}

impl<T: Crdt> LocalReplica<T> {
    /// Opens (creating if needed) the data directory `dir`: its lock, identity and store.
    ///
    /// # Errors
    /// [`NodeError::Locked`] while a node runs on `dir`; identity or store errors.
    pub fn open(dir: &Path) -> Result<Self, NodeError> {
        let lock = NodeLock::acquire(dir)?;
        let identity = Identity::load_or_generate(dir)?;
        let node = identity.node_id();
        let store = SqliteStore::open(dir.join(STORE_FILE))?;
        let restored = store.load()?;
        let replica = Replica::restore(node.replica_id(), Config::default(), 0, restored)?;
        Ok(LocalReplica { replica, store, node, _lock: lock })
    }

    /// The directory's node id.
    pub fn node_id(&self) -> NodeId {
        self.node
    }

    /// The directory's replica id.
    pub fn replica_id(&self) -> ReplicaId {
        self.node.replica_id()
    }

    /// The state.
    pub fn state(&self) -> &T {
        self.replica.state()
    }

    /// The ops this directory holds.
    pub fn version(&self) -> &VClock {
        self.replica.version()
    }

    /// The store, for application metadata (peers, settings).
    pub fn store(&mut self) -> &mut SqliteStore {
        &mut self.store
    }

    /// Applies a local update and makes it durable before returning.
    ///
    /// # Errors
    /// [`NodeError::Protocol`] if the op cannot be encoded, [`NodeError::Store`] if it cannot
    /// be made durable.
    pub fn update<F>(&mut self, f: F) -> Result<Dot, NodeError>
    where
        F: FnOnce(&mut T) -> T::Op,
    {
        match self.try_update(|t| Ok::<_, std::convert::Infallible>(f(t)))? {
            Ok(dot) => Ok(dot),
            Err(never) => match never {},
        }
    }

    /// An update that may be refused: `f` returns the op, or an error after leaving the
    /// state unchanged (then nothing is written).
    ///
    /// # Errors
    /// As [`update`](Self::update); the inner `Err` is `f`'s.
    pub fn try_update<F, E>(&mut self, f: F) -> Result<Result<Dot, E>, NodeError>
    where
        F: FnOnce(&mut T) -> Result<T::Op, E>,
    {
        let now = super::clock::Clock::default().now_ms();
        match self.replica.try_local_update(now, f)? {
            Ok((dot, outputs)) => {
                persist(&mut self.store, outputs)?;
                Ok(Ok(dot))
            }
            Err(e) => Ok(Err(e)),
        }
    }
}

/// Carries out the persistence outputs (the only ones that matter offline).
pub(crate) fn persist(store: &mut dyn Store, outputs: Vec<Output>) -> Result<(), NodeError> {
    for out in outputs {
        match out {
            Output::Persist(ops) => store.append_ops(&ops)?,
            Output::PersistSnapshot { vv, floor, state } => {
                store.put_snapshot(&StoredSnapshot { vv, floor, state })?;
            }
            Output::Send { .. } | Output::Event(_) => {}
        }
    }
    Ok(())
}
