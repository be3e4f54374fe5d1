//! The in-memory store, for tests and the simulator.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use gossamer_crdt::Dot;

use super::encoding::stored_created_ms;
use super::{PeerRecord, Restored, Store, StoreError, StoreStats, StoredSnapshot, check_op, check_peer};
use crate::net::NodeId;
use crate::wire::OpRecord;

/// A [`Store`] in memory, with the same behaviour as [`SqliteStore`](super::SqliteStore)
/// short of surviving the process.
///
/// Clones share one store: keep a clone, drop the replica and its store handle to "crash" a
/// node, then restart it from the clone. Every write is "durable" (visible to every clone)
/// when it returns, and all-or-nothing, as the trait requires.
///
/// ```
/// use bytes::Bytes;
/// use gossamer_crdt::{Dot, ReplicaId};
/// use gossamer_sync::store::{MemoryStore, Store};
/// use gossamer_sync::wire::OpRecord;
///
/// let disk = MemoryStore::new();
/// let mut node_store = disk.clone();
/// let op = OpRecord { dot: Dot::new(ReplicaId::from_u128(1), 1), deps: vec![], created_ms: 0, payload: Bytes::new() };
/// node_store.append_ops(&[op.clone()])?;
/// drop(node_store); // the node crashes
/// assert_eq!(disk.load()?.log, vec![op]); // and restarts from what was written
/// # Ok::<(), gossamer_sync::store::StoreError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    snapshot: Option<StoredSnapshot>,
    /// In append order.
    log: Vec<OpRecord>,
    /// The dots in `log`, for idempotent appends.
    logged: HashSet<Dot>,
    payload_bytes: u64,
    peers: BTreeMap<NodeId, PeerRecord>,
    meta: BTreeMap<String, Vec<u8>>,
}

impl Inner {
    /// True when `dot` is already stored, in the log or under the snapshot's floor.
    fn has(&self, dot: &Dot) -> bool {
        self.logged.contains(dot) || self.snapshot.as_ref().is_some_and(|s| dot.counter <= s.floor.get(&dot.replica))
    }
}

impl MemoryStore {
    /// An empty store.
    ///
    /// ```
    /// use gossamer_sync::store::{MemoryStore, Store};
    ///
    /// assert_eq!(MemoryStore::new().stats()?.ops, 0);
    /// # Ok::<(), gossamer_sync::store::StoreError>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared state. No code panics while holding the lock, so a poisoned lock still
    /// guards consistent data; take it rather than propagate a panic from another thread.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Store for MemoryStore {
    fn load(&self) -> Result<Restored, StoreError> {
        let inner = self.lock();
        Ok(Restored { snapshot: inner.snapshot.clone(), log: inner.log.clone() })
    }

    fn append_ops(&mut self, ops: &[OpRecord]) -> Result<(), StoreError> {
        // Check the whole batch before changing anything: all or nothing.
        ops.iter().try_for_each(check_op)?;
        let mut inner = self.lock();
        for op in ops {
            if !inner.has(&op.dot) {
                inner.logged.insert(op.dot);
                inner.payload_bytes += op.payload.len() as u64;
                inner.log.push(OpRecord { created_ms: stored_created_ms(op.created_ms), ..op.clone() });
            }
        }
        Ok(())
    }

    fn put_snapshot(&mut self, snapshot: &StoredSnapshot) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let Inner { log, logged, payload_bytes, .. } = &mut *inner;
        log.retain(|op| {
            let keep = op.dot.counter > snapshot.floor.get(&op.dot.replica);
            if !keep {
                logged.remove(&op.dot);
                *payload_bytes -= op.payload.len() as u64;
            }
            keep
        });
        inner.snapshot = Some(snapshot.clone());
        Ok(())
    }

    fn peers(&self) -> Result<Vec<PeerRecord>, StoreError> {
        Ok(self.lock().peers.values().cloned().collect())
    }

    fn put_peer(&mut self, peer: &PeerRecord) -> Result<(), StoreError> {
        check_peer(peer)?;
        self.lock().peers.insert(peer.node, peer.clone());
        Ok(())
    }

    fn remove_peer(&mut self, node: &NodeId) -> Result<bool, StoreError> {
        Ok(self.lock().peers.remove(node).is_some())
    }

    fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().meta.get(key).cloned())
    }

    fn put_meta(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.lock().meta.insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn remove_meta(&mut self, key: &str) -> Result<bool, StoreError> {
        Ok(self.lock().meta.remove(key).is_some())
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        let inner = self.lock();
        Ok(StoreStats {
            ops: inner.log.len() as u64,
            payload_bytes: inner.payload_bytes,
            snapshot_bytes: inner.snapshot.as_ref().map_or(0, |s| s.state.len() as u64),
            peers: inner.peers.len() as u64,
        })
    }
}
