//! Replays the fuzz corpus on stable: every file of `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/` goes through the same function the cargo-fuzz target calls,
//! so CI exercises every target without a nightly toolchain or libFuzzer.
//!
//! `fuzz/` is not a workspace member (cargo-fuzz builds it on its own), so its library is
//! compiled here as a module; it uses only crates this package already depends on.
//!
//! - A crash the fuzzer finds goes to `fuzz/regressions/<target>/<name>` (not to `corpus/`,
//!   where it would stop every fuzzing run at start-up) with a named test below.
//! - While the bug is open (in code outside `fuzz/`), its file is listed in [`KNOWN_BUGS`] and
//!   skipped; `known_bugs_still_reproduce` fails once it is fixed, to move it off the list.

#[path = "../../fuzz/src/lib.rs"]
mod fuzz_lib;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// Inputs that reproduce open bugs outside `fuzz/`: `(target/file, description)`.
const KNOWN_BUGS: &[(&str, &str)] = &[];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted, as `(target/file, path)`.
fn inputs(kind: &str, target: &str) -> Vec<(String, PathBuf)> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut files: Vec<(String, PathBuf)> = entries
        .map(|e| e.expect("read a corpus directory entry").path())
        .filter(|p| p.is_file())
        .map(|p| (format!("{target}/{}", p.file_name().expect("a file name").to_string_lossy()), p))
        .collect();
    files.sort();
    files
}

fn target(name: &str) -> fn(&[u8]) {
    fuzz_lib::TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f).expect("a target of that name")
}

/// Runs every input of `name` that is not a known bug; fails naming each input that panicked.
fn replay(name: &str) {
    let run = target(name);
    let corpus = inputs("corpus", name);
    assert!(!corpus.is_empty(), "no corpus for {name} in {}", fuzz_dir().join("corpus").display());
    let mut failed = Vec::new();
    let mut replayed = 0;
    for (file, path) in corpus.into_iter().chain(inputs("regressions", name)) {
        if KNOWN_BUGS.iter().any(|(known, _)| *known == file) {
            continue;
        }
        let data = std::fs::read(&path).expect("read a corpus file");
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(file);
        }
        replayed += 1;
    }
    assert!(failed.is_empty(), "{} of {replayed} inputs panicked (messages above): {failed:#?}", failed.len());
}

#[test]
fn wire_decode_corpus() {
    replay("wire_decode");
}

#[test]
fn protocol_messages_corpus() {
    replay("protocol_messages");
}

#[test]
fn crdt_merge_corpus() {
    replay("crdt_merge");
}

#[test]
fn crdt_apply_corpus() {
    replay("crdt_apply");
}

#[test]
fn store_recovery_corpus() {
    replay("store_recovery");
}

/// Runs one regression input of `target`; a panic fails the test with the target's message.
fn regression(target_name: &str, file: &str) {
    let path = fuzz_dir().join("regressions").join(target_name).join(file);
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    target(target_name)(&data);
}

/// Found by `protocol_messages` (ASan campaign, about 9,800 runs in): a script waits twice under
/// session id 255 with different tokens, one covered and one not; the replica rightly reported
/// the covered one ready, and the harness compared the report with the other token. A false
/// alarm of the harness, fixed there: a `SessionReady` must match one covered waiter of its id.
#[test]
fn regression_protocol_session_id_reused() {
    regression("protocol_messages", "session-id-reused");
}

/// Found by `protocol_messages` (second ASan campaign, after 58,484 runs): made-up input from an
/// impostor (a snapshot's vector can claim any counter) takes a replica's own entry of its
/// version vector to `u64::MAX`, and its next local update computed `vv[self] + 1` — an overflow panic (with overflow checks; a wrapped dot
/// 0 without). Fixed in `sync/src/protocol/replica.rs`: `try_local_update` refuses with an error
/// before changing the state when the counter is exhausted.
#[test]
fn regression_protocol_own_dot_counter_exhausted() {
    regression("protocol_messages", "own-dot-counter-exhausted");
}

/// Every known bug's input is present and still panics: once one does not, the bug is fixed
/// and its input should leave [`KNOWN_BUGS`] to be replayed as a regression.
#[test]
fn known_bugs_still_reproduce() {
    for (file, bug) in KNOWN_BUGS {
        let (name, _) = file.split_once('/').expect("target/file");
        let path = fuzz_dir().join("regressions").join(file);
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let run = target(name);
        assert!(
            catch_unwind(AssertUnwindSafe(|| run(&data))).is_err(),
            "{file} no longer panics — fixed? ({bug}); remove it from KNOWN_BUGS"
        );
    }
}

/// Writes the seed corpus: `cargo test -p gossamer-sync --test fuzz_corpus -- --ignored write_seed_corpus`.
#[test]
#[ignore = "writes fuzz/corpus; run by hand after changing a seed"]
fn write_seed_corpus() {
    for (target, name, bytes) in fuzz_lib::corpus::seeds() {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("create the corpus directory");
        std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write a seed");
    }
}
