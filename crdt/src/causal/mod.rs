//! Causality primitives: replica ids, dots, version vectors, causal contexts and hybrid
//! logical clocks. Everything else in the crate is built from these.

mod context;
mod dot;
mod hlc;
mod replica;
mod vclock;

pub use context::{CausalContext, JoinCtx, LocalDot, Remap, ReplicaIdx};
pub use dot::Dot;
pub use hlc::{Hlc, HlcClock};
pub use replica::ReplicaId;
pub use vclock::VClock;
