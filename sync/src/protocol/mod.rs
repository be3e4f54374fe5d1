//! The replication protocol as a sans-IO state machine: inputs are local updates, messages,
//! ticks and membership changes; outputs are messages to send, ops to persist and events.
//! No sockets, no clocks, no disks — the [`sim`](crate::sim) drives it in virtual time and
//! the node drives it over QUIC, with the same code.
//!
//! | file | concept |
//! |---|---|
//! | `replica.rs` | [`Replica`]: the state machine (push tree, anti-entropy, delivery, snapshots, sessions) |
//! | `buffer.rs` | the causal buffer: early ops, bounded, woken as dependencies arrive |
//! | `log.rs` | the op log in delivery order, and what a peer lacks |
//! | `peers.rs` | the membership view: status and last known version vectors |
//! | `config.rs` | [`Config`]: intervals and bounds |
//! | `output.rs` | [`Output`] and [`Event`]: what the driver must do |

mod buffer;
mod config;
mod error;
mod log;
mod output;
mod peers;
mod replica;

pub use config::Config;
pub use error::ProtocolError;
pub use output::{Event, Output};
pub use peers::{PeerInfo, PeerStatus};
pub use replica::{Crdt, Replica, Restored, Stats, StoredSnapshot};
