//! `store_recovery`: a valid SQLite store, damaged by the input, opened and loaded.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use gossamer_crdt::{CausalCounter, Dot, OrMap, ReplicaId, VClock};
use gossamer_sync::protocol::{Config, Replica, StoredSnapshot};
use gossamer_sync::store::{SqliteStore, Store, StoreError};
use gossamer_sync::wire::{OpRecord, codec};

use super::corpus::{Emit, Writer};

type State = OrMap<u8, CausalCounter>;

/// One way to damage the file.
#[derive(Arbitrary, Debug, Clone, PartialEq)]
enum Damage {
    /// Cut the file at this offset (modulo its length).
    Truncate(u32),
    /// XOR one byte with a mask.
    Flip { offset: u32, mask: u8 },
    /// Write these bytes over the file from an offset (not past its end).
    Overwrite { offset: u32, bytes: Vec<u8> },
    /// Set a 4-byte big-endian field (page counts, sizes and pointers are 4 bytes) to a value.
    SetU32 { offset: u32, value: u32 },
    /// Copy a range of the file over another one (a misplaced page).
    Copy { from: u32, to: u32, len: u16 },
}

/// Which file of the store the damage hits.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum Target {
    /// The database file, its WAL checkpointed in.
    Main,
    /// A WAL file next to a database whose last commits are only in it.
    Wal,
}

#[derive(Arbitrary, Debug, Clone, PartialEq)]
struct Input {
    target: Target,
    damage: Vec<Damage>,
}

/// The two pristine files the damage starts from: a checkpointed store, and a store with its
/// last writes still in the WAL (the database file and the WAL file).
struct Pristine {
    main: Vec<u8>,
    wal_db: Vec<u8>,
    wal: Vec<u8>,
}

/// Input layout: an [`Arbitrary`] list of damages (truncate, flip, overwrite, set a 4-byte
/// field, copy a range) to the database file or to a WAL file beside it.
///
/// The store is small but real: ops of two origins with dependencies, a snapshot with a floor
/// (made by `SqliteStore` itself, once per process). After the damage, `SqliteStore::open`,
/// then `load`, `peers`, `get_meta` and `stats`, then `Replica::restore` from what `load`
/// returned: each must return `Ok` or its typed error, never panic.
pub fn store_recovery(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else { return };
    let pristine = pristine();
    let dir = scratch_dir();
    let path = dir.path().join("store.db");
    let (mut main, mut wal) = match input.target {
        Target::Main => (pristine.main.clone(), None),
        Target::Wal => (pristine.wal_db.clone(), Some(pristine.wal.clone())),
    };
    let victim = wal.as_mut().unwrap_or(&mut main);
    for d in input.damage.iter().take(16) {
        damage(victim, d);
    }
    std::fs::write(&path, &main).expect("write the damaged store");
    if let Some(wal) = &wal {
        std::fs::write(wal_path(&path), wal).expect("write the damaged WAL");
    }

    let store = match SqliteStore::open(&path) {
        Ok(store) => store,
        Err(e) => return typed(&e),
    };
    let restored = store.load();
    let _ = store.peers().map_err(|e| typed(&e));
    let _ = store.get_meta("listen").map_err(|e| typed(&e));
    let _ = store.stats().map_err(|e| typed(&e));
    match restored {
        Ok(restored) => {
            let _ = Replica::<State>::restore(ReplicaId::from_u128(1), Config::default(), 1, restored);
        }
        Err(e) => typed(&e),
    }
}

/// Every error is one of the store's own variants (the match is exhaustive over what this
/// build knows) and prints without panicking.
fn typed(e: &StoreError) {
    let _ = e.to_string();
    let _ = e.is_corruption();
}

fn damage(file: &mut Vec<u8>, d: &Damage) {
    let len = file.len();
    if len == 0 {
        return;
    }
    let at = |offset: u32| offset as usize % len;
    match d {
        Damage::Truncate(offset) => file.truncate(at(*offset)),
        Damage::Flip { offset, mask } => file[at(*offset)] ^= mask,
        Damage::Overwrite { offset, bytes } => {
            let start = at(*offset);
            let n = bytes.len().min(len - start);
            file[start..start + n].copy_from_slice(&bytes[..n]);
        }
        Damage::SetU32 { offset, value } => {
            let start = at(*offset).min(len.saturating_sub(4));
            let n = 4.min(len - start);
            file[start..start + n].copy_from_slice(&value.to_be_bytes()[..n]);
        }
        Damage::Copy { from, to, len: n } => {
            let (from, to) = (at(*from), at(*to));
            let n = usize::from(*n).min(len - from).min(len - to);
            file.copy_within(from..from + n, to);
        }
    }
}

fn wal_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

/// A fresh directory for one run, in memory when the machine has `/dev/shm` (SQLite syncs
/// at every commit; on tmpfs that costs nothing).
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let builder = tempfile::Builder::new().prefix("gossamer-fuzz-store").tempdir_in(shm);
    builder.or_else(|_| tempfile::tempdir()).expect("create a scratch directory")
}

fn pristine() -> &'static Pristine {
    static PRISTINE: OnceLock<Pristine> = OnceLock::new();
    PRISTINE.get_or_init(build_pristine)
}

/// Writes a small store through `SqliteStore` and reads its files back.
fn build_pristine() -> Pristine {
    let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    let mut state = State::new();
    let mut ops = Vec::new();
    let mut vv = VClock::new();
    for i in 0..6u8 {
        let origin = if i % 3 == 2 { b } else { a };
        let op = if i == 4 { state.remove(&1) } else { state.update(i % 3, |c| c.add(origin, i64::from(i) - 2)) };
        let dot = vv.inc(origin);
        let deps = if origin == b { vec![Dot::new(a, vv.get(&a))] } else { Vec::new() };
        let payload = Bytes::from(codec::to_vec(&op).expect("an op encodes"));
        ops.push(OpRecord { dot, deps, created_ms: 1_700_000_000_000 + u64::from(i), payload });
    }
    let snapshot = |ops: &[OpRecord]| {
        let vv: VClock = ops.iter().map(|r| r.dot).collect();
        StoredSnapshot { vv: vv.clone(), floor: vv, state: Bytes::from(codec::to_vec(&state).expect("encodes")) }
    };

    let dir = scratch_dir();
    // Checkpointed: everything is in the database file once the last connection closes.
    let main_path = dir.path().join("main.db");
    {
        let mut store = SqliteStore::open(&main_path).expect("create the store");
        store.append_ops(&ops[..4]).expect("append ops");
        store.put_snapshot(&snapshot(&ops[..2])).expect("put a snapshot");
        store.append_ops(&ops[4..]).expect("append ops");
        store.put_meta("listen", b"127.0.0.1:4433").expect("put meta");
    }
    let main = std::fs::read(&main_path).expect("read the store");

    // Not checkpointed: copy the files while the connection is still open.
    let wal_db_path = dir.path().join("wal.db");
    let (wal_db, wal) = {
        let mut store = SqliteStore::open(&wal_db_path).expect("create the store");
        store.append_ops(&ops[..3]).expect("append ops");
        store.put_snapshot(&snapshot(&ops[..1])).expect("put a snapshot");
        store.append_ops(&ops[3..]).expect("append ops");
        let files = (
            std::fs::read(&wal_db_path).expect("read the store"),
            std::fs::read(wal_path(&wal_db_path)).expect("read the WAL"),
        );
        drop(store);
        files
    };
    Pristine { main, wal_db, wal }
}

impl Emit for Damage {
    fn emit(&self, w: &mut Writer) {
        match self {
            Damage::Truncate(at) => w.variant(0, 5).put(at),
            Damage::Flip { offset, mask } => w.variant(1, 5).put(offset).put(mask),
            Damage::Overwrite { offset, bytes } => w.variant(2, 5).put(offset).put(bytes),
            Damage::SetU32 { offset, value } => w.variant(3, 5).put(offset).put(value),
            Damage::Copy { from, to, len } => w.variant(4, 5).put(from).put(to).put(len),
        };
    }
}

impl Emit for Input {
    fn emit(&self, w: &mut Writer) {
        let target = match self.target {
            Target::Main => 0,
            Target::Wal => 1,
        };
        w.variant(target, 2).put(&self.damage);
    }
}

/// Damages that mean something to SQLite: the header's page size, counts and pointers (the
/// header is the first 100 bytes, big-endian), whole pages zeroed or swapped, a file cut at
/// a page boundary or inside one, WAL frames with broken checksums.
pub(crate) fn seeds() -> super::corpus::Seeds {
    const PAGE: u32 = 4096;
    let main = |damage: Vec<Damage>| Input { target: Target::Main, damage };
    let wal = |damage: Vec<Damage>| Input { target: Target::Wal, damage };
    let zeros = |n: usize| vec![0u8; n];
    let cases = [
        ("intact", main(vec![])),
        ("intact-wal", wal(vec![])),
        ("cut-inside-header", main(vec![Damage::Truncate(50)])),
        ("cut-after-first-page", main(vec![Damage::Truncate(PAGE)])),
        ("cut-inside-second-page", main(vec![Damage::Truncate(PAGE + 1000)])),
        ("cut-before-last-page", main(vec![Damage::Truncate(u32::MAX)])),
        ("page-size-odd", main(vec![Damage::SetU32 { offset: 16, value: 0x0300_0101 }])),
        ("page-size-max", main(vec![Damage::SetU32 { offset: 16, value: 0x0001_0101 }])),
        ("page-count-huge", main(vec![Damage::SetU32 { offset: 28, value: 0x00ff_ffff }])),
        ("page-count-zero", main(vec![Damage::SetU32 { offset: 28, value: 0 }])),
        ("freelist-trunk-bogus", main(vec![Damage::SetU32 { offset: 32, value: 9999 }])),
        ("schema-cookie-changed", main(vec![Damage::SetU32 { offset: 40, value: 77 }])),
        ("user-version-newer", main(vec![Damage::SetU32 { offset: 60, value: 99 }])),
        ("application-id-other", main(vec![Damage::SetU32 { offset: 68, value: 0x1234_5678 }])),
        ("text-encoding-utf16", main(vec![Damage::SetU32 { offset: 56, value: 2 }])),
        ("schema-page-zeroed", main(vec![Damage::Overwrite { offset: 100, bytes: zeros(600) }])),
        ("second-page-zeroed", main(vec![Damage::Overwrite { offset: PAGE, bytes: zeros(512) }])),
        ("page-two-over-three", main(vec![Damage::Copy { from: PAGE, to: 2 * PAGE, len: PAGE as u16 }])),
        ("cell-pointer-flipped", main(vec![Damage::Flip { offset: PAGE + 8, mask: 0x40 }])),
        (
            "bytes-flipped-in-ops",
            main((0..8).map(|i| Damage::Flip { offset: 2 * PAGE + 200 + 97 * i, mask: 0x5a }).collect()),
        ),
        ("wal-cut-inside-header", wal(vec![Damage::Truncate(20)])),
        ("wal-cut-inside-frame", wal(vec![Damage::Truncate(32 + 24 + 1000)])),
        ("wal-salt-changed", wal(vec![Damage::SetU32 { offset: 16, value: 1 }])),
        ("wal-frame-checksum-flipped", wal(vec![Damage::Flip { offset: 32 + 20, mask: 1 }])),
        ("wal-frame-page-number-zero", wal(vec![Damage::SetU32 { offset: 32, value: 0 }])),
        ("wal-last-frame-zeroed", wal(vec![Damage::Overwrite { offset: u32::MAX - 3000, bytes: zeros(200) }])),
    ];
    cases
        .into_iter()
        .map(|(name, input)| {
            let bytes = Writer::default().put(&input).finish();
            assert_eq!(Input::arbitrary_take_rest(Unstructured::new(&bytes)).ok(), Some(input), "seed {name}");
            (name.to_string(), bytes)
        })
        .collect()
}
