//! Durable storage for a replica: the op log, the latest snapshot, peer bookkeeping and a few
//! metadata values, behind the [`Store`] trait.
//!
//! The node driver uses it so: on start [`Store::load`] and
//! [`Replica::restore`](crate::protocol::Replica::restore) from what it returns; for each
//! [`Output::Persist`](crate::protocol::Output::Persist) [`Store::append_ops`], and only when
//! that returned send the messages that follow and acknowledge the local write; for each
//! [`Output::PersistSnapshot`](crate::protocol::Output::PersistSnapshot)
//! [`Store::put_snapshot`].
//!
//! | file | concept |
//! |---|---|
//! | `mod.rs` | the [`Store`] contract, [`PeerRecord`], [`StoreStats`] |
//! | `sqlite.rs` | [`SqliteStore`]: the default, one SQLite file (WAL, `synchronous=FULL`) |
//! | `schema.rs` | the SQLite schema and its migrations, keyed by `PRAGMA user_version` |
//! | `memory.rs` | [`MemoryStore`]: in memory, shared between clones, for tests and the simulator |
//! | `encoding.rs` | how ids and dependency lists are laid out in columns |
//! | `error.rs` | [`StoreError`] |

mod encoding;
mod error;
mod memory;
mod schema;
mod sqlite;

use std::net::SocketAddr;

pub use error::StoreError;
pub use memory::MemoryStore;
pub use schema::SCHEMA_VERSION;
pub use sqlite::SqliteStore;

use crate::net::NodeId;
pub use crate::protocol::{Restored, StoredSnapshot};
use crate::wire::OpRecord;

/// Where a replica keeps what it must not lose.
///
/// Implementations MUST make every write durable before returning `Ok`: once
/// [`append_ops`](Self::append_ops) has returned, a crash of the process (or, for a store on
/// disk, of the machine) at any later moment leaves the ops in what [`load`](Self::load)
/// returns. A write that returns an error MUST have changed nothing. Each write is one
/// transaction: after a crash it is there whole or not at all.
///
/// The trait is object safe, so a node can hold a `Box<dyn Store>`:
///
/// ```
/// use bytes::Bytes;
/// use gossamer_crdt::{Dot, ReplicaId};
/// use gossamer_sync::store::{MemoryStore, Store};
/// use gossamer_sync::wire::OpRecord;
///
/// let mut store: Box<dyn Store> = Box::new(MemoryStore::new());
/// let r = ReplicaId::from_u128(1);
/// let op = OpRecord { dot: Dot::new(r, 1), deps: vec![], created_ms: 0, payload: Bytes::from_static(b"+1") };
/// store.append_ops(&[op.clone()])?;
/// store.append_ops(&[op.clone()])?; // idempotent
/// assert_eq!(store.load()?.log, vec![op]);
/// # Ok::<(), gossamer_sync::store::StoreError>(())
/// ```
pub trait Store: Send {
    /// What a restarting replica needs: the latest snapshot, if any, and the logged ops in
    /// the order they were appended (a causal order, since the protocol persists in delivery
    /// order). Hand it to [`Replica::restore`](crate::protocol::Replica::restore).
    ///
    /// # Errors
    /// [`StoreError::CorruptRow`] when a stored value does not decode,
    /// [`StoreError::Damaged`] when the file is damaged, or a read failure.
    ///
    /// ```
    /// use gossamer_sync::store::{MemoryStore, Store};
    ///
    /// let restored = MemoryStore::new().load()?;
    /// assert!(restored.snapshot.is_none() && restored.log.is_empty());
    /// # Ok::<(), gossamer_sync::store::StoreError>(())
    /// ```
    fn load(&self) -> Result<Restored, StoreError>;

    /// Appends `ops`, in order, to the op log, in one transaction that is durable when this
    /// returns.
    ///
    /// Idempotent: an op whose dot (origin, sequence number) is already logged, or is at or
    /// below the current snapshot's floor (so already in the snapshot), is skipped, not an
    /// error, and the stored copy is kept. A `created_ms` above `i64::MAX` is stored as
    /// `i64::MAX`.
    ///
    /// # Errors
    /// [`StoreError::OutOfRange`] for a sequence number of 0 or above `i64::MAX`; a write
    /// failure. On error nothing of the batch is stored.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use gossamer_crdt::{Dot, ReplicaId};
    /// use gossamer_sync::store::{SqliteStore, Store};
    /// use gossamer_sync::wire::OpRecord;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let mut store = SqliteStore::open(dir.path().join("store.db"))?;
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let first = OpRecord { dot: Dot::new(a, 1), deps: vec![], created_ms: 0, payload: Bytes::from_static(b"x") };
    /// let second = OpRecord { dot: Dot::new(b, 1), deps: vec![Dot::new(a, 1)], created_ms: 0, payload: Bytes::new() };
    /// store.append_ops(&[first.clone(), second.clone()])?;
    /// // Durable now: the driver may send these ops on and acknowledge the write.
    /// drop(store);
    /// assert_eq!(SqliteStore::open(dir.path().join("store.db"))?.load()?.log, vec![first, second]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn append_ops(&mut self, ops: &[OpRecord]) -> Result<(), StoreError>;

    /// Replaces the snapshot with `snapshot` and deletes every logged op at or below its
    /// floor (op `o` goes when `o.dot.counter <= snapshot.floor.get(&o.dot.replica)`), in one
    /// transaction that is durable when this returns.
    ///
    /// # Errors
    /// A write failure; then the previous snapshot and the whole log are still there.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use gossamer_crdt::{Dot, ReplicaId, VClock};
    /// use gossamer_sync::store::{MemoryStore, Store, StoredSnapshot};
    /// use gossamer_sync::wire::OpRecord;
    ///
    /// let mut store = MemoryStore::new();
    /// let r = ReplicaId::from_u128(1);
    /// let ops: Vec<OpRecord> = (1..=3)
    ///     .map(|c| OpRecord { dot: Dot::new(r, c), deps: vec![], created_ms: 0, payload: Bytes::new() })
    ///     .collect();
    /// store.append_ops(&ops)?;
    /// let floor = VClock::from(vec![(r, 2)]);
    /// let snapshot = StoredSnapshot { vv: floor.clone(), floor, state: Bytes::from_static(b"state") };
    /// store.put_snapshot(&snapshot)?;
    /// let restored = store.load()?;
    /// assert_eq!(restored.snapshot, Some(snapshot));
    /// assert_eq!(restored.log, ops[2..]);
    /// # Ok::<(), gossamer_sync::store::StoreError>(())
    /// ```
    fn put_snapshot(&mut self, snapshot: &StoredSnapshot) -> Result<(), StoreError>;

    /// Every known peer, ordered by node id.
    ///
    /// # Errors
    /// [`StoreError::CorruptRow`] for an undecodable record, or a read failure.
    ///
    /// ```
    /// use gossamer_sync::net::NodeId;
    /// use gossamer_sync::store::{MemoryStore, PeerRecord, Store};
    ///
    /// let mut store = MemoryStore::new();
    /// store.put_peer(&PeerRecord::new(NodeId::from_bytes([2; 20])))?;
    /// store.put_peer(&PeerRecord::new(NodeId::from_bytes([1; 20])))?;
    /// let nodes: Vec<NodeId> = store.peers()?.iter().map(|p| p.node).collect();
    /// assert_eq!(nodes, [NodeId::from_bytes([1; 20]), NodeId::from_bytes([2; 20])]);
    /// # Ok::<(), gossamer_sync::store::StoreError>(())
    /// ```
    fn peers(&self) -> Result<Vec<PeerRecord>, StoreError>;

    /// Inserts `peer`, or replaces the record with the same node id.
    ///
    /// # Errors
    /// [`StoreError::OutOfRange`] for a `last_seen_ms` above `i64::MAX`; a write failure.
    ///
    /// ```
    /// use gossamer_sync::net::NodeId;
    /// use gossamer_sync::store::{MemoryStore, PeerRecord, Store};
    ///
    /// let mut store = MemoryStore::new();
    /// let mut peer = PeerRecord::new(NodeId::from_bytes([7; 20]));
    /// peer.addr = Some("192.0.2.1:4433".parse().unwrap());
    /// store.put_peer(&peer)?;
    /// peer.trusted = true;
    /// store.put_peer(&peer)?;
    /// assert_eq!(store.peers()?, vec![peer]);
    /// # Ok::<(), gossamer_sync::store::StoreError>(())
    /// ```
    fn put_peer(&mut self, peer: &PeerRecord) -> Result<(), StoreError>;

    /// Forgets the peer `node`; returns whether there was a record.
    ///
    /// # Errors
    /// A write failure.
    ///
    /// ```
    /// use gossamer_sync::net::NodeId;
    /// use gossamer_sync::store::{MemoryStore, PeerRecord, Store};
    ///
    /// let mut store = MemoryStore::new();
    /// let node = NodeId::from_bytes([7; 20]);
    /// store.put_peer(&PeerRecord::new(node))?;
    /// assert!(store.remove_peer(&node)?);
    /// assert!(!store.remove_peer(&node)?);
    /// # Ok::<(), gossamer_sync::store::StoreError>(())
    /// ```
    fn remove_peer(&mut self, node: &NodeId) -> Result<bool, StoreError>;

    /// The metadata value under `key`, if any.
    ///
    /// # Errors
    /// A read failure.
    ///
    /// ```
    /// use gossamer_sync::store::{MemoryStore, Store};
    ///
    /// let mut store = MemoryStore::new();
    /// assert_eq!(store.get_meta("listen")?, None);
    /// store.put_meta("listen", b"0.0.0.0:4433")?;
    /// assert_eq!(store.get_meta("listen")?.as_deref(), Some(&b"0.0.0.0:4433"[..]));
    /// # Ok::<(), gossamer_sync::store::StoreError>(())
    /// ```
    fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Sets the metadata value under `key`, replacing any previous one. Meant for small
    /// values the application keeps beside its data (its listen address, a format marker).
    ///
    /// # Errors
    /// A write failure.
    ///
    /// ```
    /// use gossamer_sync::store::{MemoryStore, Store};
    ///
    /// let mut store = MemoryStore::new();
    /// store.put_meta("listen", b"0.0.0.0:4433")?;
    /// store.put_meta("listen", b"[::]:4433")?;
    /// assert_eq!(store.get_meta("listen")?.as_deref(), Some(&b"[::]:4433"[..]));
    /// # Ok::<(), gossamer_sync::store::StoreError>(())
    /// ```
    fn put_meta(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError>;

    /// Deletes the metadata value under `key`; returns whether there was one.
    ///
    /// # Errors
    /// A write failure.
    ///
    /// ```
    /// use gossamer_sync::store::{MemoryStore, Store};
    ///
    /// let mut store = MemoryStore::new();
    /// store.put_meta("k", b"v")?;
    /// assert!(store.remove_meta("k")?);
    /// assert_eq!(store.get_meta("k")?, None);
    /// # Ok::<(), gossamer_sync::store::StoreError>(())
    /// ```
    fn remove_meta(&mut self, key: &str) -> Result<bool, StoreError>;

    /// Sizes, for the status page and tests.
    ///
    /// # Errors
    /// A read failure.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use gossamer_crdt::{Dot, ReplicaId};
    /// use gossamer_sync::store::{MemoryStore, Store};
    /// use gossamer_sync::wire::OpRecord;
    ///
    /// let mut store = MemoryStore::new();
    /// let op = OpRecord { dot: Dot::new(ReplicaId::from_u128(1), 1), deps: vec![], created_ms: 0, payload: Bytes::from_static(b"abc") };
    /// store.append_ops(&[op])?;
    /// let stats = store.stats()?;
    /// assert_eq!((stats.ops, stats.payload_bytes), (1, 3));
    /// # Ok::<(), gossamer_sync::store::StoreError>(())
    /// ```
    fn stats(&self) -> Result<StoreStats, StoreError>;
}

impl<S: Store + ?Sized> Store for Box<S> {
    fn load(&self) -> Result<Restored, StoreError> {
        (**self).load()
    }
    fn append_ops(&mut self, ops: &[OpRecord]) -> Result<(), StoreError> {
        (**self).append_ops(ops)
    }
    fn put_snapshot(&mut self, snapshot: &StoredSnapshot) -> Result<(), StoreError> {
        (**self).put_snapshot(snapshot)
    }
    fn peers(&self) -> Result<Vec<PeerRecord>, StoreError> {
        (**self).peers()
    }
    fn put_peer(&mut self, peer: &PeerRecord) -> Result<(), StoreError> {
        (**self).put_peer(peer)
    }
    fn remove_peer(&mut self, node: &NodeId) -> Result<bool, StoreError> {
        (**self).remove_peer(node)
    }
    fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).get_meta(key)
    }
    fn put_meta(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        (**self).put_meta(key, value)
    }
    fn remove_meta(&mut self, key: &str) -> Result<bool, StoreError> {
        (**self).remove_meta(key)
    }
    fn stats(&self) -> Result<StoreStats, StoreError> {
        (**self).stats()
    }
}

/// What a node remembers about a peer across restarts.
///
/// ```
/// use gossamer_sync::net::NodeId;
/// use gossamer_sync::store::PeerRecord;
///
/// let peer = PeerRecord {
///     addr: Some("192.0.2.7:4433".parse().unwrap()),
///     trusted: true,
///     label: Some("kitchen tablet".into()),
///     ..PeerRecord::new(NodeId::from_bytes([7; 20]))
/// };
/// assert_eq!(peer.last_seen_ms, None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerRecord {
    /// Who the peer is.
    pub node: NodeId,
    /// Where it was last reachable, if known.
    pub addr: Option<SocketAddr>,
    /// Whether the user pinned it in the trust list.
    pub trusted: bool,
    /// When it was last heard from, in ms since the Unix epoch (at most `i64::MAX`).
    pub last_seen_ms: Option<u64>,
    /// A name the user gave it, for display.
    pub label: Option<String>,
}

impl PeerRecord {
    /// A record of `node` with nothing else known: no address, not trusted, never seen.
    ///
    /// ```
    /// use gossamer_sync::net::NodeId;
    /// use gossamer_sync::store::PeerRecord;
    ///
    /// let peer = PeerRecord::new(NodeId::from_bytes([1; 20]));
    /// assert!(!peer.trusted && peer.addr.is_none());
    /// ```
    pub fn new(node: NodeId) -> Self {
        PeerRecord { node, addr: None, trusted: false, last_seen_ms: None, label: None }
    }
}

/// Sizes of what a store holds.
///
/// ```
/// use gossamer_sync::store::StoreStats;
///
/// assert_eq!(StoreStats::default().ops, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Ops in the log.
    pub ops: u64,
    /// Bytes of op payloads in the log (the encoded CRDT ops, without dots or dependencies).
    pub payload_bytes: u64,
    /// Bytes of the snapshot's encoded state (0 without a snapshot).
    pub snapshot_bytes: u64,
    /// Peer records.
    pub peers: u64,
}

/// Checks the parts of an op record the stores cannot represent, before anything is written.
fn check_op(op: &OpRecord) -> Result<(), StoreError> {
    let seq = op.dot.counter;
    if (1..=encoding::MAX_INTEGER).contains(&seq) {
        Ok(())
    } else {
        Err(StoreError::OutOfRange { what: "op sequence number", value: seq, min: 1, max: encoding::MAX_INTEGER })
    }
}

/// Checks a peer record's timestamp fits an integer column.
fn check_peer(peer: &PeerRecord) -> Result<(), StoreError> {
    match peer.last_seen_ms {
        Some(ms) => encoding::to_integer("peer last_seen_ms", ms).map(drop),
        None => Ok(()),
    }
}
