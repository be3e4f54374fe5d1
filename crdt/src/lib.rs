//! # gossamer-crdt
//!
//! Conflict-free replicated data types: replicas accept writes independently and always
//! converge to the same state, whether they exchange whole states ([`CvRDT::merge`]) or ops
//! ([`CmRDT::apply`]). No I/O, no async, no clocks read: this crate is pure data.
//!
//! ```
//! use gossamer_crdt::{CausalCounter, CmRDT, CvRDT, OrMap, ReplicaId};
//!
//! let (phone, laptop) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
//! let mut a: OrMap<String, CausalCounter> = OrMap::new();
//! let mut b = a.clone();
//!
//! // Mutators apply locally and return the op to ship.
//! let op = a.update("eggs".to_string(), |qty| qty.inc(phone, 6));
//! b.apply(op);
//! b.update("milk".to_string(), |qty| qty.inc(laptop, 1));
//!
//! // Or ship whole states: the result is the same.
//! a.merge(&b);
//! assert_eq!(a, b);
//! assert_eq!(a.get(&"eggs".to_string()).map(|q| q.value()), Some(6));
//! ```
//!
//! ## Map of the crate
//! - [`causal`]: [`ReplicaId`], [`Dot`], [`VClock`], [`CausalContext`], [`Hlc`] and
//!   [`HlcClock`] — the causality every type is built on.
//! - [`traits`]: [`CvRDT`] (state-based) and [`CmRDT`] (op-based).
//! - [`kernel`]: the dot-store kernel — one causal join shared by every type that removes.
//! - [`types`]: [`GCounter`], [`PNCounter`], [`CausalCounter`], [`LwwRegister`],
//!   [`MvRegister`], [`OrSet`], [`OrMap`].
//! - [`error`]: the one error type, [`CausalityError`].

#![forbid(unsafe_code)]

pub mod causal;
pub mod error;
pub mod kernel;
pub mod traits;
pub mod types;

pub use causal::{CausalContext, Dot, Hlc, HlcClock, ReplicaId, VClock};
pub use error::CausalityError;
pub use kernel::{Causal, CausalStore, DotStore, Embed};
pub use traits::{CmRDT, CvRDT};
pub use types::ccounter::{CausalCounter, CounterOp, CounterStore};
pub use types::gcounter::{GCounter, GCounterOp};
pub use types::lww::{LwwOp, LwwRegister, LwwStore, Stamped};
pub use types::mvreg::{MvOp, MvRegister, MvStore};
pub use types::ormap::{MapStore, OrMap, OrMapOp};
pub use types::orset::{OrSet, OrSetOp, SetStore};
pub use types::pncounter::{PNCounter, PNCounterOp};

/// The examples in the READMEs are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
