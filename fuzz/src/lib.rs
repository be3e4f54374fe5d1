//! # gossamer-fuzz
//!
//! The logic of every cargo-fuzz target, as plain functions of the input bytes, so the same
//! code runs under libFuzzer (`fuzz_targets/<name>.rs` is one line that calls in here) and
//! on stable, where `sync/tests/fuzz_corpus.rs` replays the committed corpus through it.
//!
//! Every function MUST NOT panic on any input unless it found a bug: a panic is the finding.
//! Structured inputs are read with [`arbitrary::Unstructured`], so any byte string is a valid
//! input and the fuzzer's mutations stay meaningful.
//!
//! | target | module | what must hold |
//! |---|---|---|
//! | [`wire_decode`] | `wire.rs` | decoding never panics; what decodes re-encodes to the same value |
//! | [`protocol_messages`] | `protocol.rs` | a replica fed hostile messages delivers each op once, after its deps, within its bounds |
//! | [`crdt_merge`] | `crdt_merge.rs` | merge is idempotent, commutative, associative; decoded states merge |
//! | [`crdt_apply`] | `crdt_apply.rs` | any order of the same ops gives the same state; arbitrary ops never panic |
//! | [`store_recovery`] | `store.rs` | a damaged SQLite store opens and loads to `Ok` or a typed error |
//!
//! [`corpus`] makes the seed corpus from real encodings.
//!
//! This file is also compiled as a module of a `gossamer-sync` test, so it uses only crates
//! that `gossamer-sync` has as dependencies or dev-dependencies.

#![forbid(unsafe_code)]

pub mod corpus;
mod crdt_apply;
mod crdt_merge;
mod protocol;
mod store;
mod subjects;
mod wire;

pub use crdt_apply::crdt_apply;
pub use crdt_merge::crdt_merge;
pub use protocol::protocol_messages;
pub use store::store_recovery;
pub use wire::wire_decode;

/// A target's name, as in `fuzz_targets/` and `corpus/`, and its function.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: [Target; 5] = [
    ("wire_decode", wire_decode),
    ("protocol_messages", protocol_messages),
    ("crdt_merge", crdt_merge),
    ("crdt_apply", crdt_apply),
    ("store_recovery", store_recovery),
];
