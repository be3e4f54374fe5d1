//! # gossamer-sync
//!
//! Replication for [`gossamer_crdt`] types. Work in progress: see the repository issues.
//!
//! ## Map of the crate
//! - [`net`]: the transport — QUIC with mutual TLS by pinned node id, identities, trust list,
//!   tickets, length-prefixed frames.

pub mod net;
