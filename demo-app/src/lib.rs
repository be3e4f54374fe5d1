//! # gossamer-cart
//!
//! An offline-first collaborative shopping cart on Gossamer: every device keeps working with
//! no network, and carts converge when devices meet.
//!
//! - [`model`]: the cart CRDT and its rules (remove ∥ +1 keeps the +1; removed items never
//!   come back by themselves; quantities never show below one).
//! - [`app`]: the data directory, the edits the CLI and the web page share, and how a CLI
//!   command reaches a running `cart serve`.
//! - [`server`]: `cart serve` — the node plus the web page and its JSON/SSE API.
//! - [`demo`]: `cart demo` — three replicas on loopback telling the converged story.

pub mod app;
pub mod demo;
pub mod model;
pub mod server;
