//! The default store: one SQLite file.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use gossamer_crdt::{Dot, VClock};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};

use super::encoding::{MAX_INTEGER, decode_deps, encode_deps, replica_id, stored_created_ms, to_integer};
use super::schema::{self, MIGRATIONS};
use super::{PeerRecord, Restored, Store, StoreError, StoreStats, StoredSnapshot, check_op, check_peer};
use crate::net::NodeId;
use crate::wire::{CompactVv, OpRecord};

/// How long a write waits for another connection's lock before failing with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The WAL file is cut back to this size after a checkpoint that emptied it, so one large
/// snapshot does not leave a large file behind for good.
const JOURNAL_SIZE_LIMIT: i64 = 64 << 20;

/// A [`Store`] in one SQLite file: the default for nodes.
///
/// - **Durable writes**: WAL journal, `synchronous=FULL` (the WAL is synced at every commit,
///   `fullfsync` where the platform has it), each write one `BEGIN IMMEDIATE` transaction. A
///   call that returned `Ok` survives a SIGKILL of the process and a power cut.
/// - **Created whole**: a new store is built under a temporary name and linked into place
///   once its schema is committed, with mode `0600` on Unix; a crash while creating leaves no
///   half-made store at the path. So an empty file at the path is never a store, and is
///   refused.
/// - **Versioned schema**: migrations run at open (see [`SCHEMA_VERSION`](super::SCHEMA_VERSION));
///   a newer schema is refused untouched; so is another application's database.
/// - **Checked reads**: a damaged file or an undecodable value is an error, never a panic.
///
/// Other connections (a CLI reading the same file while the node runs) may read at any time;
/// only one process should write.
///
/// ```
/// use bytes::Bytes;
/// use gossamer_crdt::{Dot, ReplicaId};
/// use gossamer_sync::store::{SqliteStore, Store};
/// use gossamer_sync::wire::OpRecord;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("replica.db");
/// let mut store = SqliteStore::open(&path)?;
/// let op = OpRecord { dot: Dot::new(ReplicaId::from_u128(1), 1), deps: vec![], created_ms: 0, payload: Bytes::from_static(b"op") };
/// store.append_ops(&[op.clone()])?;
/// store.put_meta("listen", b"127.0.0.1:4433")?;
/// drop(store);
///
/// let store = SqliteStore::open(&path)?;
/// assert_eq!(store.load()?.log, vec![op]);
/// assert_eq!(store.get_meta("listen")?.as_deref(), Some(&b"127.0.0.1:4433"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// The stored snapshot's floor, read at the first append: ops at or below it are skipped.
    /// Only this handle writes snapshots, so it stays current once read.
    floor: Option<VClock>,
}

impl SqliteStore {
    /// Opens the store at `path`, creating it (and nothing else: the directory must exist)
    /// when there is no file there, and migrating an older schema.
    ///
    /// # Errors
    /// - [`StoreError::NotAStore`]: the file is empty, not SQLite, or another application's
    ///   database;
    /// - [`StoreError::Damaged`]: the file is damaged where opening looks;
    /// - [`StoreError::UnsupportedSchemaVersion`]: written by a newer version of Gossamer;
    /// - [`StoreError::Io`], [`StoreError::Sqlite`]: the file cannot be created or opened.
    ///
    /// ```
    /// use gossamer_sync::store::{SqliteStore, StoreError};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("store.db");
    /// SqliteStore::open(&path)?; // created
    /// SqliteStore::open(&path)?; // opened
    /// std::fs::write(&path, b"")?;
    /// assert!(matches!(SqliteStore::open(&path), Err(StoreError::NotAStore { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        match fs::metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => create(path)?,
            Err(e) => return Err(StoreError::io("read the metadata of", path)(e)),
            Ok(m) if !m.is_file() => {
                return Err(StoreError::NotAStore { path: path.to_owned(), reason: "not a regular file".into() });
            }
            Ok(m) if m.len() == 0 => {
                return Err(StoreError::NotAStore { path: path.to_owned(), reason: "the file is empty".into() });
            }
            Ok(_) => check_header(path)?,
        }
        let mut conn =
            Connection::open_with_flags(path, open_flags()).map_err(StoreError::sqlite("open the database"))?;
        configure(&conn)?;
        schema::migrate(&mut conn, MIGRATIONS, path)?;
        Ok(SqliteStore { conn, path: path.to_owned(), floor: None })
    }

    /// The file this store lives in.
    ///
    /// ```
    /// use gossamer_sync::store::SqliteStore;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = SqliteStore::open(dir.path().join("s.db"))?;
    /// assert_eq!(store.path(), dir.path().join("s.db"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The snapshot's floor, read once.
    fn floor(&mut self) -> Result<&VClock, StoreError> {
        if self.floor.is_none() {
            let stored: Option<Vec<u8>> = self
                .conn
                .query_row("SELECT floor FROM snapshot WHERE id = 1", [], |r| r.get(0))
                .optional()
                .map_err(StoreError::sqlite("read the snapshot floor"))?;
            let floor = match stored {
                Some(bytes) => CompactVv::decode(&bytes).map_err(|e| StoreError::corrupt("snapshot", "floor", e))?,
                None => VClock::new(),
            };
            self.floor = Some(floor);
        }
        Ok(self.floor.get_or_insert_with(VClock::new))
    }
}

impl Store for SqliteStore {
    fn load(&self) -> Result<Restored, StoreError> {
        // One read transaction: the snapshot and the log are from the same moment.
        let tx = self.conn.unchecked_transaction().map_err(StoreError::sqlite("begin reading the store"))?;
        let snapshot = tx
            .query_row("SELECT vv, floor, state FROM snapshot WHERE id = 1", [], |r| {
                Ok((owned(r, 0)?, owned(r, 1)?, owned(r, 2)?))
            })
            .optional()
            .map_err(StoreError::sqlite("read the snapshot"))?
            .map(|(vv, floor, state)| {
                Ok::<_, StoreError>(StoredSnapshot {
                    vv: decode_vv("vv", &blob("snapshot", "vv", &vv)?)?,
                    floor: decode_vv("floor", &blob("snapshot", "floor", &floor)?)?,
                    state: Bytes::from(blob("snapshot", "state", &state)?),
                })
            })
            .transpose()?;

        let mut log = Vec::new();
        let mut stmt = tx
            .prepare_cached("SELECT pos, origin, seq, deps, payload, created FROM ops ORDER BY pos")
            .map_err(StoreError::sqlite("read the op log"))?;
        let mut rows = stmt.query([]).map_err(StoreError::sqlite("read the op log"))?;
        while let Some(row) = rows.next().map_err(StoreError::sqlite("read the op log"))? {
            log.push(op_from_row(row)?);
        }
        Ok(Restored { snapshot, log })
    }

    fn append_ops(&mut self, ops: &[OpRecord]) -> Result<(), StoreError> {
        ops.iter().try_for_each(check_op)?;
        if ops.is_empty() {
            return Ok(());
        }
        self.floor()?;
        let Self { conn, floor, .. } = self;
        let floor = floor.get_or_insert_with(VClock::new);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::sqlite("begin appending ops"))?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO ops (origin, seq, deps, payload, created) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (origin, seq) DO NOTHING",
                )
                .map_err(StoreError::sqlite("prepare the op insert"))?;
            let mut deps = Vec::new();
            for op in ops {
                if op.dot.counter <= floor.get(&op.dot.replica) {
                    continue;
                }
                deps.clear();
                encode_deps(&op.deps, &mut deps);
                let seq = to_integer("op sequence number", op.dot.counter)?;
                let created = to_integer("op creation time", stored_created_ms(op.created_ms))?;
                insert
                    .execute(params![&op.dot.replica.as_bytes()[..], seq, &deps[..], &op.payload[..], created])
                    .map_err(StoreError::sqlite("append an op"))?;
            }
        }
        tx.commit().map_err(StoreError::sqlite("commit appended ops"))
    }

    fn put_snapshot(&mut self, snapshot: &StoredSnapshot) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::sqlite("begin storing a snapshot"))?;
        tx.execute(
            "INSERT OR REPLACE INTO snapshot (id, vv, floor, state) VALUES (1, ?1, ?2, ?3)",
            params![CompactVv::encode(&snapshot.vv), CompactVv::encode(&snapshot.floor), &snapshot.state[..]],
        )
        .map_err(StoreError::sqlite("store the snapshot"))?;
        {
            let mut delete = tx
                .prepare_cached("DELETE FROM ops WHERE origin = ?1 AND seq <= ?2")
                .map_err(StoreError::sqlite("prepare the log truncation"))?;
            for (origin, counter) in snapshot.floor.iter() {
                // Every stored seq is at most MAX_INTEGER: a larger floor covers them all.
                let counter = to_integer("floor", counter.min(MAX_INTEGER))?;
                delete
                    .execute(params![&origin.as_bytes()[..], counter])
                    .map_err(StoreError::sqlite("truncate the op log"))?;
            }
        }
        tx.commit().map_err(StoreError::sqlite("commit the snapshot"))?;
        self.floor = Some(snapshot.floor.clone());
        Ok(())
    }

    fn peers(&self) -> Result<Vec<PeerRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT node, addr, trusted, last_seen_ms, label FROM peers ORDER BY node")
            .map_err(StoreError::sqlite("read the peers"))?;
        let mut rows = stmt.query([]).map_err(StoreError::sqlite("read the peers"))?;
        let mut peers = Vec::new();
        while let Some(row) = rows.next().map_err(StoreError::sqlite("read the peers"))? {
            peers.push(peer_from_row(row)?);
        }
        Ok(peers)
    }

    fn put_peer(&mut self, peer: &PeerRecord) -> Result<(), StoreError> {
        check_peer(peer)?;
        let last_seen = peer.last_seen_ms.map(|ms| to_integer("peer last_seen_ms", ms)).transpose()?;
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO peers (node, addr, trusted, last_seen_ms, label) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    &peer.node.as_bytes()[..],
                    peer.addr.map(|a| a.to_string()),
                    peer.trusted,
                    last_seen,
                    peer.label
                ])
            })
            .map(drop)
            .map_err(StoreError::sqlite("store a peer"))
    }

    fn remove_peer(&mut self, node: &NodeId) -> Result<bool, StoreError> {
        self.conn
            .execute("DELETE FROM peers WHERE node = ?1", [&node.as_bytes()[..]])
            .map(|n| n > 0)
            .map_err(StoreError::sqlite("remove a peer"))
    }

    fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| owned(r, 0))
            .optional()
            .map_err(StoreError::sqlite("read a metadata value"))?;
        value.map(|v| blob("meta", "value", &v)).transpose()
    }

    fn put_meta(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.conn
            .execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", params![key, value])
            .map(drop)
            .map_err(StoreError::sqlite("store a metadata value"))
    }

    fn remove_meta(&mut self, key: &str) -> Result<bool, StoreError> {
        self.conn
            .execute("DELETE FROM meta WHERE key = ?1", [key])
            .map(|n| n > 0)
            .map_err(StoreError::sqlite("remove a metadata value"))
    }

    /// Counts and sums over the op log: a scan of the log, a few ms per 100,000 ops.
    fn stats(&self) -> Result<StoreStats, StoreError> {
        let (ops, payload_bytes, snapshot_bytes, peers): (i64, i64, i64, i64) = self
            .conn
            .query_row(
                "SELECT (SELECT count(*) FROM ops),
                        (SELECT coalesce(sum(length(payload)), 0) FROM ops),
                        (SELECT coalesce(sum(length(state)), 0) FROM snapshot),
                        (SELECT count(*) FROM peers)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .map_err(StoreError::sqlite("compute the store's sizes"))?;
        // Counts and lengths are never negative.
        let n = |v: i64| v.max(0) as u64;
        Ok(StoreStats {
            ops: n(ops),
            payload_bytes: n(payload_bytes),
            snapshot_bytes: n(snapshot_bytes),
            peers: n(peers),
        })
    }
}

/// Open an existing file for reading and writing: never create (a missing file is an error,
/// not a silently empty store), never interpret the path as a URI.
fn open_flags() -> OpenFlags {
    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_EXRESCODE
}

/// The per-connection settings. The first statement reads the file's header, so a file that
/// is not SQLite fails here, with [`StoreError::Damaged`].
fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(StoreError::sqlite("set the busy timeout"))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(StoreError::sqlite("set the WAL journal mode"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Still durable (synchronous=FULL with a rollback journal), only slower.
        tracing::warn!(%mode, "SQLite refused WAL mode for the store; using its journal mode instead");
    }
    let settings: [(&str, i64, &str); 5] = [
        // 2 = FULL: sync the WAL at every commit, so a committed write survives power loss.
        ("synchronous", 2, "set synchronous=FULL"),
        ("fullfsync", 1, "set fullfsync"),
        ("foreign_keys", 1, "enable foreign keys"),
        // A crafted database cannot run functions from its schema (triggers, views).
        ("trusted_schema", 0, "distrust the schema"),
        // Check b-tree cells as they are read: a damaged page is reported, not followed.
        ("cell_size_check", 1, "enable cell size checks"),
    ];
    for (pragma, value, op) in settings {
        conn.pragma_update(None, pragma, value).map_err(StoreError::sqlite(op))?;
    }
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)
        .map_err(StoreError::sqlite("set the journal size limit"))
}

/// SQLite takes a file shorter than its header for an empty database and would write a new
/// one over it; every store this code made starts with the header, so check it first.
fn check_header(path: &Path) -> Result<(), StoreError> {
    const MAGIC: &[u8; 16] = b"SQLite format 3\0";
    let mut header = [0u8; 16];
    let read = File::open(path).and_then(|mut f| f.read_exact(&mut header));
    let reason = match read {
        Ok(()) if &header == MAGIC => return Ok(()),
        Ok(()) => "it does not begin with the SQLite header",
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => "it is shorter than a SQLite header",
        Err(e) => return Err(StoreError::io("read the header of", path)(e)),
    };
    Err(StoreError::NotAStore { path: path.to_owned(), reason: reason.into() })
}

/// Creates a store at `path`, which does not exist: built and migrated under a temporary
/// name in the same directory, then linked into place, so `path` never names a half-made
/// store.
fn create(path: &Path) -> Result<(), StoreError> {
    let Some(name) = path.file_name() else {
        let e = io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name");
        return Err(StoreError::io("create", path)(e));
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut temp_name = OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".init-{}", std::process::id()));
    let temp = dir.join(temp_name);
    // A leftover of this process id's earlier, interrupted attempt.
    remove_if_exists(&temp)?;
    let result = build(&temp).and_then(|()| place(&temp, path));
    if result.is_err() {
        // Best effort: the error being returned is the one that matters.
        let _ = fs::remove_file(&temp);
    }
    result?;
    sync_dir(dir)
}

/// Builds an empty, fully migrated store in the new file `temp`.
fn build(temp: &Path) -> Result<(), StoreError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(temp).map_err(StoreError::io("create", temp))?;

    let mut conn =
        Connection::open_with_flags(temp, open_flags()).map_err(StoreError::sqlite("open the new database"))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(StoreError::sqlite("set the busy timeout"))?;
    // The default rollback journal is deleted at commit, so the closed file is the whole
    // store; WAL mode is switched on when the store is opened under its real name.
    conn.pragma_update(None, "synchronous", 2).map_err(StoreError::sqlite("set synchronous=FULL"))?;
    schema::migrate(&mut conn, MIGRATIONS, temp)?;
    conn.close().map_err(|(_, e)| StoreError::sqlite("close the new database")(e))?;
    File::open(temp).and_then(|f| f.sync_all()).map_err(StoreError::io("sync", temp))
}

/// Gives `temp` the name `path` without replacing a file another process put there first.
fn place(temp: &Path, path: &Path) -> Result<(), StoreError> {
    match fs::hard_link(temp, path) {
        Ok(()) => {}
        // Another process created the store meanwhile: use theirs.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        // A file system without hard links: rename (which would replace a racing creator's
        // file; acceptable, as it is as empty as ours).
        Err(_) => return fs::rename(temp, path).map_err(StoreError::io("rename into place", path)),
    }
    fs::remove_file(temp).map_err(StoreError::io("remove", temp))
}

fn remove_if_exists(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StoreError::io("remove", path)(e)),
        _ => Ok(()),
    }
}

/// Makes a new name in `dir` durable (Unix; elsewhere the file system does not allow or need
/// a directory to be synced).
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    File::open(dir).and_then(|d| d.sync_all()).map_err(StoreError::io("sync the directory", dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

// ---- reading rows -------------------------------------------------------------------------

/// A column's value, whatever its type, for checking outside the row closure.
fn owned(row: &Row<'_>, idx: usize) -> rusqlite::Result<rusqlite::types::Value> {
    row.get(idx)
}

fn blob(table: &'static str, column: &'static str, value: &rusqlite::types::Value) -> Result<Vec<u8>, StoreError> {
    match value {
        rusqlite::types::Value::Blob(b) => Ok(b.clone()),
        other => Err(StoreError::corrupt(table, column, format!("expected a blob, found {:?}", other.data_type()))),
    }
}

fn decode_vv(column: &'static str, bytes: &[u8]) -> Result<VClock, StoreError> {
    CompactVv::decode(bytes).map_err(|e| StoreError::corrupt("snapshot", column, e))
}

/// Column `idx` of `row` as a blob borrowed from the row.
fn row_blob<'r>(
    row: &'r Row<'_>,
    idx: usize,
    table: &'static str,
    column: &'static str,
) -> Result<&'r [u8], StoreError> {
    match row.get_ref(idx).map_err(StoreError::sqlite("read a row"))? {
        ValueRef::Blob(b) => Ok(b),
        other => Err(StoreError::corrupt(table, column, format!("expected a blob, found {:?}", other.data_type()))),
    }
}

fn row_integer(
    row: &Row<'_>,
    idx: usize,
    table: &'static str,
    column: &'static str,
) -> Result<Option<i64>, StoreError> {
    match row.get_ref(idx).map_err(StoreError::sqlite("read a row"))? {
        ValueRef::Integer(i) => Ok(Some(i)),
        ValueRef::Null => Ok(None),
        other => Err(StoreError::corrupt(table, column, format!("expected an integer, found {:?}", other.data_type()))),
    }
}

fn row_text(
    row: &Row<'_>,
    idx: usize,
    table: &'static str,
    column: &'static str,
) -> Result<Option<String>, StoreError> {
    match row.get_ref(idx).map_err(StoreError::sqlite("read a row"))? {
        ValueRef::Text(t) => std::str::from_utf8(t)
            .map(|s| Some(s.to_owned()))
            .map_err(|_| StoreError::corrupt(table, column, "text that is not UTF-8")),
        ValueRef::Null => Ok(None),
        other => Err(StoreError::corrupt(table, column, format!("expected text, found {:?}", other.data_type()))),
    }
}

fn op_from_row(row: &Row<'_>) -> Result<OpRecord, StoreError> {
    let pos = row_integer(row, 0, "ops", "pos")?.unwrap_or_default();
    let at = |detail: String| format!("position {pos}: {detail}");
    let origin = row_blob(row, 1, "ops", "origin")?;
    let origin = replica_id(origin)
        .ok_or_else(|| StoreError::corrupt("ops", "origin", at(format!("{} bytes, expected 16", origin.len()))))?;
    let seq = row_integer(row, 2, "ops", "seq")?
        .and_then(|s| u64::try_from(s).ok())
        .filter(|s| *s >= 1)
        .ok_or_else(|| StoreError::corrupt("ops", "seq", at("not a positive integer".into())))?;
    let deps = decode_deps(row_blob(row, 3, "ops", "deps")?)
        .map_err(|e| StoreError::corrupt("ops", "deps", at(e.to_owned())))?;
    let payload = Bytes::copy_from_slice(row_blob(row, 4, "ops", "payload")?);
    let created_ms = row_integer(row, 5, "ops", "created")?
        .and_then(|c| u64::try_from(c).ok())
        .ok_or_else(|| StoreError::corrupt("ops", "created", at("not a non-negative integer".into())))?;
    Ok(OpRecord { dot: Dot::new(origin, seq), deps, created_ms, payload })
}

fn peer_from_row(row: &Row<'_>) -> Result<PeerRecord, StoreError> {
    let node = row_blob(row, 0, "peers", "node")?;
    let node = <[u8; NodeId::LEN]>::try_from(node)
        .map(NodeId::from_bytes)
        .map_err(|_| StoreError::corrupt("peers", "node", format!("{} bytes, expected {}", node.len(), NodeId::LEN)))?;
    let addr = row_text(row, 1, "peers", "addr")?
        .map(|a| {
            a.parse()
                .map_err(|_| StoreError::corrupt("peers", "addr", format!("{node}: {a:?} is not a socket address")))
        })
        .transpose()?;
    let trusted = match row_integer(row, 2, "peers", "trusted")? {
        Some(0) => false,
        Some(1) => true,
        other => return Err(StoreError::corrupt("peers", "trusted", format!("{node}: {other:?} is not 0 or 1"))),
    };
    let last_seen_ms = row_integer(row, 3, "peers", "last_seen_ms")?
        .map(|ms| u64::try_from(ms).map_err(|_| StoreError::corrupt("peers", "last_seen_ms", format!("{node}: {ms}"))))
        .transpose()?;
    let label = row_text(row, 4, "peers", "label")?;
    Ok(PeerRecord { node, addr, trusted, last_seen_ms, label })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pragma(store: &SqliteStore, name: &str) -> i64 {
        store.conn.pragma_query_value(None, name, |r| r.get(0)).unwrap()
    }

    #[test]
    fn connection_is_set_up_for_durability() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("s.db")).unwrap();
        assert_eq!(pragma(&store, "synchronous"), 2, "synchronous=FULL");
        assert_eq!(pragma(&store, "foreign_keys"), 1);
        assert_eq!(pragma(&store, "busy_timeout"), BUSY_TIMEOUT.as_millis() as i64);
        assert_eq!(pragma(&store, "trusted_schema"), 0);
        assert_eq!(pragma(&store, "journal_size_limit"), JOURNAL_SIZE_LIMIT);
        let mode: String = store.conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
    }

    /// Two processes creating the same store at once: the second to link keeps the first's.
    #[test]
    fn placing_a_new_store_never_replaces_an_existing_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut first = SqliteStore::open(&path).unwrap();
        first.put_meta("who", b"first").unwrap();
        drop(first);
        let temp = dir.path().join(".s.db.init-test");
        build(&temp).unwrap();
        place(&temp, &path).unwrap();
        assert!(!temp.exists());
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.get_meta("who").unwrap().as_deref(), Some(&b"first"[..]));
    }

    #[test]
    fn a_leftover_temporary_file_does_not_stop_creation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let leftover = dir.path().join(format!(".s.db.init-{}", std::process::id()));
        fs::write(&leftover, b"half-made").unwrap();
        SqliteStore::open(&path).unwrap();
        assert!(!leftover.exists());
    }

    /// A database written by the first release (schema version 1, before ops had a creation
    /// time) opens, migrates to the latest version and loads its ops as made at time 0.
    #[test]
    fn a_version_1_database_is_migrated_and_keeps_its_ops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        let mut conn = Connection::open(&path).unwrap();
        assert_eq!(schema::migrate(&mut conn, &MIGRATIONS[..1], &path).unwrap(), 1);
        conn.execute_batch(
            "INSERT INTO ops (origin, seq, deps, payload) VALUES (zeroblob(16), 1, x'', x'aa');
             INSERT INTO ops (origin, seq, deps, payload) VALUES (zeroblob(16), 2, x'0000000000000000000000000000000001', x'bb');
             INSERT INTO meta (key, value) VALUES ('listen', x'31');",
        )
        .unwrap();
        drop(conn);

        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(pragma(&store, "user_version"), schema::SCHEMA_VERSION);
        let zero = gossamer_crdt::ReplicaId::from_bytes([0; 16]);
        let log = store.load().unwrap().log;
        assert_eq!(
            log,
            vec![
                OpRecord { dot: Dot::new(zero, 1), deps: vec![], created_ms: 0, payload: Bytes::from_static(&[0xaa]) },
                OpRecord {
                    dot: Dot::new(zero, 2),
                    deps: vec![Dot::new(zero, 1)],
                    created_ms: 0,
                    payload: Bytes::from_static(&[0xbb])
                },
            ]
        );
        assert_eq!(store.get_meta("listen").unwrap().as_deref(), Some(&b"1"[..]));
    }

    #[test]
    fn the_floor_is_read_lazily_and_kept_current() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(dir.path().join("s.db")).unwrap();
        assert!(store.floor.is_none());
        let r = gossamer_crdt::ReplicaId::from_u128(1);
        let floor: VClock = vec![(r, 3)].into();
        store.put_snapshot(&StoredSnapshot { vv: floor.clone(), floor: floor.clone(), state: Bytes::new() }).unwrap();
        assert_eq!(store.floor.as_ref(), Some(&floor));
    }
}
