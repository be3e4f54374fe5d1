//! # gossamer-sync
//!
//! Replication for [`gossamer_crdt`] types. Work in progress: see the repository issues.
