//! Errors of the store layer.

use std::io;
use std::path::PathBuf;

use rusqlite::ErrorCode;
use thiserror::Error;

/// Why the store could not do what was asked.
///
/// Every variant names the operation or the place that failed. A store that returned an error
/// from a write has not made that write durable: the driver must not acknowledge it.
///
/// ```
/// use gossamer_sync::store::{SqliteStore, StoreError};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("not-a-store.db");
/// std::fs::write(&path, b"this is not a database, just a text file of a few words")?;
/// match SqliteStore::open(&path) {
///     Err(StoreError::NotAStore { reason, .. }) => assert!(reason.contains("SQLite header")),
///     other => panic!("expected a not-a-store error, got {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file-system operation on the store's file or directory failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done ("create", "link", "sync directory of", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// SQLite reported an error (busy past the timeout, disk full, I/O error, ...).
    #[error("SQLite failed to {op}: {source}")]
    Sqlite {
        /// What the store was doing.
        op: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// SQLite found the file damaged: `SQLITE_CORRUPT`, `SQLITE_NOTADB`, or a short read (a
    /// truncated file). Move the file aside and restore from a peer or a backup.
    #[error("the store file is damaged or not a SQLite database (while trying to {op}): {source}")]
    Damaged {
        /// What the store was doing when SQLite noticed.
        op: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file exists but is not a Gossamer store: it is empty, it is not SQLite, or it is a
    /// SQLite database of another application. The store refuses to write into it.
    #[error("{} is not a Gossamer store: {reason}", path.display())]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// What gave it away.
        reason: String,
    },
    /// A stored value does not decode: the database is well-formed SQLite, but one of its
    /// values is not what this store writes.
    #[error("corrupt value in {table}.{column}: {detail}")]
    CorruptRow {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// Which row and what is wrong with it.
        detail: String,
    },
    /// The database was written by a newer version of Gossamer, with a schema this build does
    /// not know. Nothing was changed; upgrade the program.
    #[error("store schema version {found} is newer than this build supports (up to {supported})")]
    UnsupportedSchemaVersion {
        /// The version in the file.
        found: i64,
        /// The latest version this build knows.
        supported: i64,
    },
    /// A value is outside what the store can represent (SQLite integers are signed 64-bit).
    #[error("{what} {value} is out of range ({min} to {max})")]
    OutOfRange {
        /// What the value is.
        what: &'static str,
        /// The value.
        value: u64,
        /// The smallest value the store accepts.
        min: u64,
        /// The largest value the store accepts.
        max: u64,
    },
}

impl StoreError {
    /// The mapping from a SQLite error raised while doing `op`: corruption has its own
    /// variant, because the remedy (set the file aside) differs from a transient failure.
    pub(crate) fn sqlite(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |source| {
            // A short read is a file shorter than its own header says: truncated.
            let short_read = source.sqlite_extended_error_code() == Some(rusqlite::ffi::SQLITE_IOERR_SHORT_READ);
            match source.sqlite_error_code() {
                Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Damaged { op, source },
                _ if short_read => StoreError::Damaged { op, source },
                _ => StoreError::Sqlite { op, source },
            }
        }
    }

    /// The mapping from an I/O error raised while doing `op` on `path`.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { op, path, source }
    }

    /// A corrupt value in `table.column`.
    pub(crate) fn corrupt(table: &'static str, column: &'static str, detail: impl Into<String>) -> StoreError {
        StoreError::CorruptRow { table, column, detail: detail.into() }
    }

    /// True when the error means the stored data cannot be trusted (a damaged file or a
    /// corrupt value), as opposed to a failure that may pass (busy, I/O, disk full).
    ///
    /// ```
    /// use gossamer_sync::store::StoreError;
    ///
    /// let e = StoreError::UnsupportedSchemaVersion { found: 9, supported: 1 };
    /// assert!(!e.is_corruption());
    /// ```
    pub fn is_corruption(&self) -> bool {
        matches!(self, StoreError::Damaged { .. } | StoreError::CorruptRow { .. })
    }
}
