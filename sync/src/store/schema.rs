//! The SQLite schema, and how a database is brought up to it.
//!
//! `PRAGMA user_version` holds the schema version: the number of the last migration applied.
//! `PRAGMA application_id` marks the file as a Gossamer store, so the store never writes its
//! tables into some other program's database. Migrations run in order, all in one
//! transaction: a crash half-way leaves the database at its old version, untouched.
//!
//! To change the schema, append a migration; never edit one that has shipped.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// The schema version this build writes, and the newest it can open.
///
/// ```
/// assert!(gossamer_sync::store::SCHEMA_VERSION >= 1);
/// ```
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// `PRAGMA application_id` of a Gossamer store: "GSMR".
pub(crate) const APPLICATION_ID: i32 = 0x4753_4d52;

/// One step of the schema's history.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Migration {
    /// The version the database is at after this step (the first is 1).
    pub(crate) version: i64,
    /// The statements, run as one batch.
    pub(crate) sql: &'static str,
}

/// The schema's history, oldest first.
pub(crate) const MIGRATIONS: &[Migration] = &[Migration { version: 1, sql: V1 }, Migration { version: 2, sql: V2 }];

/// Version 1.
///
/// - `ops`: the op log. `pos` keeps the append order (AUTOINCREMENT: a position is never
///   reused, even after the newest ops are compacted away); `(origin, seq)` is the op's dot,
///   unique, so a re-append is a no-op and compaction deletes a range of one index.
///   `deps` is the encoded dependency list (see `encoding.rs`), `payload` the CRDT op.
/// - `snapshot`: at most one row, the latest snapshot; `vv` and `floor` are compact version
///   vectors (`wire::CompactVv`).
/// - `peers`, `meta`: small tables keyed by node id and by name.
///
/// STRICT tables: SQLite refuses a value of the wrong type instead of converting it.
const V1: &str = "
CREATE TABLE ops (
    pos     INTEGER PRIMARY KEY AUTOINCREMENT,
    origin  BLOB    NOT NULL CHECK (length(origin) = 16),
    seq     INTEGER NOT NULL CHECK (seq >= 1),
    deps    BLOB    NOT NULL,
    payload BLOB    NOT NULL,
    UNIQUE (origin, seq)
) STRICT;
CREATE TABLE snapshot (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    vv    BLOB NOT NULL,
    floor BLOB NOT NULL,
    state BLOB NOT NULL
) STRICT;
CREATE TABLE peers (
    node         BLOB    NOT NULL PRIMARY KEY CHECK (length(node) = 20),
    addr         TEXT,
    trusted      INTEGER NOT NULL CHECK (trusted IN (0, 1)),
    last_seen_ms INTEGER CHECK (last_seen_ms >= 0),
    label        TEXT
) STRICT, WITHOUT ROWID;
CREATE TABLE meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value BLOB NOT NULL
) STRICT, WITHOUT ROWID;
";

/// Version 2: ops remember when their origin made them (`OpRecord::created_ms`), which
/// anti-entropy uses to hold back ops the push tree is still delivering. Ops logged under
/// version 1 read as made at time 0: old, which is what they are.
const V2: &str = "
ALTER TABLE ops ADD COLUMN created INTEGER NOT NULL DEFAULT 0 CHECK (created >= 0);
";

/// Brings the database at `path` (open as `conn`) up to the last of `migrations`, in one
/// transaction, and returns the version it is at.
///
/// # Errors
/// [`StoreError::NotAStore`] for another application's database,
/// [`StoreError::UnsupportedSchemaVersion`] for a version newer than the last migration
/// (nothing is changed), [`StoreError::Damaged`] or [`StoreError::Sqlite`] from SQLite.
pub(crate) fn migrate(conn: &mut Connection, migrations: &[Migration], path: &Path) -> Result<i64, StoreError> {
    let latest = migrations.last().map_or(0, |m| m.version);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::sqlite("begin the schema migration"))?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(StoreError::sqlite("read the schema version"))?;
    let app: i32 = tx
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(StoreError::sqlite("read the application id"))?;
    if app != APPLICATION_ID {
        let objects: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(StoreError::sqlite("list the schema"))?;
        // An empty database with no marks is ours to set up; anything else belongs to
        // someone else, whatever its tables are called.
        if app != 0 || version != 0 || objects != 0 {
            return Err(StoreError::NotAStore {
                path: path.to_owned(),
                reason: format!(
                    "a SQLite database with application id {app:#x}, user version {version} and {objects} schema objects"
                ),
            });
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID).map_err(StoreError::sqlite("mark the database"))?;
    }
    if version > latest {
        return Err(StoreError::UnsupportedSchemaVersion { found: version, supported: latest });
    }
    for m in migrations.iter().filter(|m| m.version > version) {
        tracing::info!(path = %path.display(), from = version, to = m.version, "migrating the store schema");
        tx.execute_batch(m.sql).map_err(StoreError::sqlite("apply a schema migration"))?;
        tx.pragma_update(None, "user_version", m.version).map_err(StoreError::sqlite("set the schema version"))?;
    }
    tx.commit().map_err(StoreError::sqlite("commit the schema migration"))?;
    Ok(latest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &Path) -> Connection {
        Connection::open(path).unwrap()
    }

    fn version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap()
    }

    fn has_table(conn: &Connection, name: &str) -> bool {
        conn.query_row("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1", [name], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap()
            == 1
    }

    #[test]
    fn migrations_are_numbered_from_one_without_gaps() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
        }
        assert_eq!(SCHEMA_VERSION, MIGRATIONS.len() as i64);
    }

    #[test]
    fn empty_database_gets_the_latest_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut conn = open(&path);
        assert_eq!(migrate(&mut conn, MIGRATIONS, &path).unwrap(), SCHEMA_VERSION);
        assert_eq!(version(&conn), SCHEMA_VERSION);
        for table in ["ops", "snapshot", "peers", "meta"] {
            assert!(has_table(&conn, table), "{table}");
        }
        // Again: nothing left to do.
        assert_eq!(migrate(&mut conn, MIGRATIONS, &path).unwrap(), SCHEMA_VERSION);
    }

    /// The mechanism on a made-up second version: an older database moves up, its data stay.
    #[test]
    fn an_older_database_is_migrated_in_order_and_keeps_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut conn = open(&path);
        migrate(&mut conn, &MIGRATIONS[..1], &path).unwrap();
        conn.execute("INSERT INTO meta (key, value) VALUES ('k', x'01')", []).unwrap();
        let later = [
            MIGRATIONS[0],
            Migration { version: 2, sql: "ALTER TABLE peers ADD COLUMN note TEXT;" },
            Migration { version: 3, sql: "CREATE TABLE extra (x INTEGER) STRICT; INSERT INTO extra VALUES (3);" },
        ];
        assert_eq!(migrate(&mut conn, &later, &path).unwrap(), 3);
        assert_eq!(version(&conn), 3);
        assert!(has_table(&conn, "extra"));
        conn.execute("INSERT INTO peers (node, trusted, note) VALUES (zeroblob(20), 0, 'n')", []).unwrap();
        let kept: Vec<u8> = conn.query_row("SELECT value FROM meta WHERE key = 'k'", [], |r| r.get(0)).unwrap();
        assert_eq!(kept, [1]);
    }

    #[test]
    fn a_failing_migration_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut conn = open(&path);
        migrate(&mut conn, MIGRATIONS, &path).unwrap();
        let mut broken = MIGRATIONS.to_vec();
        broken.push(Migration { version: SCHEMA_VERSION + 1, sql: "CREATE TABLE half (x); THIS IS NOT SQL;" });
        assert!(matches!(migrate(&mut conn, &broken, &path), Err(StoreError::Sqlite { .. })));
        assert_eq!(version(&conn), SCHEMA_VERSION);
        assert!(!has_table(&conn, "half"));
    }

    #[test]
    fn a_newer_version_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut conn = open(&path);
        migrate(&mut conn, MIGRATIONS, &path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 7).unwrap();
        match migrate(&mut conn, MIGRATIONS, &path) {
            Err(StoreError::UnsupportedSchemaVersion { found, supported }) => {
                assert_eq!((found, supported), (SCHEMA_VERSION + 7, SCHEMA_VERSION));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(version(&conn), SCHEMA_VERSION + 7);
    }

    #[test]
    fn another_applications_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut conn = open(&path);
        conn.execute_batch("CREATE TABLE ops (something_else TEXT);").unwrap();
        assert!(matches!(migrate(&mut conn, MIGRATIONS, &path), Err(StoreError::NotAStore { .. })));
        conn.pragma_update(None, "application_id", 42).unwrap();
        assert!(matches!(migrate(&mut conn, MIGRATIONS, &path), Err(StoreError::NotAStore { .. })));
        let app: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0)).unwrap();
        assert_eq!(app, 42);
    }
}
