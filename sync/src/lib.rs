//! # gossamer-sync
//!
//! Replication for [`gossamer_crdt`] types: replicas gossip over QUIC, learn from version
//! vectors what a peer lacks, deliver every op exactly once and in causal order, persist to an
//! embedded store, and keep strangers out with mutually authenticated TLS and pinned
//! identities. Layers, lowest first: the wire format and the protocol state machine are pure
//! (no sockets, clocks or disks); the node drives them.
//!
//! ## Map of the crate
//! - [`wire`]: the versioned CBOR envelope, messages, frames and their limits — pure.
//! - [`protocol`]: the sans-IO replica state machine — push tree, anti-entropy, causal
//!   exactly-once delivery, compaction and snapshots, session guarantees.
//! - [`sim`]: the deterministic network simulator — N protocol replicas, virtual time,
//!   seeded loss, duplication, reordering, partitions and crashes.
//! - [`store`]: durable storage — the `Store` trait, SQLite (WAL, synchronous=FULL), memory.
//! - [`membership`]: SWIM membership and failure detection (foca), sans-IO: who is up, and where.
//! - [`node`]: the driver — [`Node::builder`](node::Node::builder) → [`NodeHandle`](node::NodeHandle):
//!   update, read, subscribe, peers, sync, shutdown.
//! - [`net`]: the transport — QUIC with mutual TLS by pinned node id, identities, trust list,
//!   tickets, length-prefixed frames.

pub mod membership;
pub mod net;
pub mod node;
pub mod protocol;
pub mod sim;
pub mod store;
pub mod wire;

/// The examples in the top-level README are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
