//! The data directory without the network: its lock, and a replica opened for offline edits.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use gossamer_crdt::{Dot, ReplicaId, VClock};

use super::NodeError;
use crate::net::{Identity, NodeId};
use crate::protocol::{Config, Crdt, Output, Replica, StoredSnapshot};
use crate::store::{SqliteStore, Store};

/// The store's file name inside a data directory.
///
/// ```
/// use gossamer_crdt::CausalCounter;
/// use gossamer_sync::node::{LocalReplica, STORE_FILE};
///
/// let dir = tempfile::tempdir()?;
/// let mut local = LocalReplica::<CausalCounter>::open(dir.path())?;
/// assert!(dir.path().join(STORE_FILE).is_file());
/// assert_eq!(local.store().path(), dir.path().join(STORE_FILE));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    ///
    /// ```
    /// use gossamer_sync::node::{NodeError, NodeLock};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let data = dir.path().join("cart"); // does not exist yet
    /// let _lock = NodeLock::acquire(&data)?;
    /// assert!(data.is_dir());
    /// // A second holder (here: the same process again) is refused while the lock lives.
    /// let err = NodeLock::acquire(&data).unwrap_err();
    /// assert!(matches!(err, NodeError::Locked { dir } if dir == data));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// ```
    /// use gossamer_sync::node::NodeLock;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let lock = NodeLock::acquire(dir.path())?;
    /// assert!(lock.path().is_file());
    /// assert_eq!(lock.path().parent(), Some(dir.path()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::net::{CERT_FILE, KEY_FILE};
    /// use gossamer_sync::node::{LocalReplica, NodeError};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let local = LocalReplica::<CausalCounter>::open(dir.path())?;
    /// assert!(dir.path().join(KEY_FILE).is_file() && dir.path().join(CERT_FILE).is_file());
    /// assert_eq!(local.state().value(), 0);
    /// // One process at a time: a second opening (or a node) is refused until `local` is dropped.
    /// let busy = LocalReplica::<CausalCounter>::open(dir.path());
    /// assert!(matches!(busy, Err(NodeError::Locked { .. })));
    /// drop(local);
    /// assert!(LocalReplica::<CausalCounter>::open(dir.path()).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::net::Identity;
    /// use gossamer_sync::node::LocalReplica;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let local = LocalReplica::<CausalCounter>::open(dir.path())?;
    /// // The id of the identity kept in the directory: a node started there later has it too.
    /// assert_eq!(local.node_id(), Identity::load(dir.path())?.node_id());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn node_id(&self) -> NodeId {
        self.node
    }

    /// The directory's replica id.
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::node::LocalReplica;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let mut local = LocalReplica::<CausalCounter>::open(dir.path())?;
    /// let me = local.replica_id();
    /// assert_eq!(me, local.node_id().replica_id());
    /// // Local updates are stamped with it.
    /// assert_eq!(local.update(|c| c.inc(me, 1))?.replica, me);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn replica_id(&self) -> ReplicaId {
        self.node.replica_id()
    }

    /// The state.
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::node::LocalReplica;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let mut local = LocalReplica::<CausalCounter>::open(dir.path())?;
    /// let me = local.replica_id();
    /// local.update(|c| c.inc(me, 5))?;
    /// local.update(|c| c.dec(me, 2))?;
    /// assert_eq!(local.state().value(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn state(&self) -> &T {
        self.replica.state()
    }

    /// The ops this directory holds.
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::node::LocalReplica;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let mut local = LocalReplica::<CausalCounter>::open(dir.path())?;
    /// let me = local.replica_id();
    /// assert!(local.version().is_empty());
    /// local.update(|c| c.inc(me, 1))?;
    /// local.update(|c| c.inc(me, 1))?;
    /// assert_eq!(local.version().get(&me), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn version(&self) -> &VClock {
        self.replica.version()
    }

    /// The store, for application metadata (peers, settings).
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::node::LocalReplica;
    /// use gossamer_sync::store::Store;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let mut local = LocalReplica::<CausalCounter>::open(dir.path())?;
    /// local.store().put_meta("cart.currency", b"EUR")?;
    /// drop(local);
    /// let mut again = LocalReplica::<CausalCounter>::open(dir.path())?;
    /// assert_eq!(again.store().get_meta("cart.currency")?, Some(b"EUR".to_vec()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn store(&mut self) -> &mut SqliteStore {
        &mut self.store
    }

    /// Applies a local update and makes it durable before returning.
    ///
    /// # Errors
    /// [`NodeError::Protocol`] if the op cannot be encoded, [`NodeError::Store`] if it cannot
    /// be made durable.
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::node::LocalReplica;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let mut local = LocalReplica::<CausalCounter>::open(dir.path())?;
    /// let me = local.replica_id();
    /// let dot = local.update(|c| c.inc(me, 3))?;
    /// assert_eq!((dot.replica, dot.counter), (me, 1));
    /// // Durable once `update` returns: the edit survives closing the directory.
    /// drop(local);
    /// assert_eq!(LocalReplica::<CausalCounter>::open(dir.path())?.state().value(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// ```
    /// use gossamer_crdt::CausalCounter;
    /// use gossamer_sync::node::LocalReplica;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let mut local = LocalReplica::<CausalCounter>::open(dir.path())?;
    /// let me = local.replica_id();
    /// let add = |local: &mut LocalReplica<CausalCounter>, n: u64| {
    ///     local.try_update(|c| if n == 0 { Err("nothing to add") } else { Ok(c.inc(me, n)) })
    /// };
    /// assert!(add(&mut local, 2)?.is_ok());
    /// assert_eq!(add(&mut local, 0)?, Err("nothing to add"));
    /// // The refused update wrote nothing and used no dot.
    /// assert_eq!((local.state().value(), local.version().get(&me)), (2, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
