//! # gossamer-sync
//!
//! Replication for [`gossamer_crdt`] types. Work in progress: see the repository issues.
//!
//! ## Map of the crate
//! - [`wire`]: the versioned CBOR envelope, messages, frames and their limits — pure.
//! - [`protocol`]: the sans-IO replica state machine — push tree, anti-entropy, causal
//!   exactly-once delivery, compaction and snapshots, session guarantees.
//! - [`sim`]: the deterministic network simulator — N protocol replicas, virtual time,
//!   seeded loss, duplication, reordering, partitions and crashes.
//! - [`store`]: durable storage — the `Store` trait, SQLite (WAL, synchronous=FULL), memory.
//! - [`membership`]: SWIM membership and failure detection (foca), sans-IO: who is up, and where.
//! - [`net`]: the transport — QUIC with mutual TLS by pinned node id, identities, trust list,
//!   tickets, length-prefixed frames.

pub mod membership;
pub mod net;
pub mod protocol;
pub mod sim;
pub mod store;
pub mod wire;
