//! Membership and failure detection: SWIM (the `foca` crate), sans-IO.
//!
//! Each node runs a [`Membership`]. Members probe each other over QUIC datagrams, suspect a
//! member that misses probes, declare it down if it does not refute in time, and piggyback
//! what they learn — who joined, who is suspected or down, and at which address each member
//! listens — on the probes. Nothing here touches sockets, timers or clocks: inputs are
//! datagrams, timers and the time, and outputs are datagrams to send, timers to schedule and
//! [`Event`]s, like the replication [`protocol`](crate::protocol).
//!
//! | file | concept |
//! |---|---|
//! | `swim.rs` | [`Membership`]: foca driven as a state machine, outputs queued |
//! | `id.rs` | [`MemberId`]: node id + address + generation, what foca gossips |
//! | `codec.rs` | SWIM packets: foca's framing, CBOR parts through [`wire::codec`](crate::wire::codec) |
//! | `view.rs` | [`MemberInfo`] and the view that turns foca's member list into events |
//! | `output.rs` | [`Output`], [`Event`] and [`Timer`]: what the driver must do |
//! | `config.rs` | [`Config`]: timings tuned for LANs of up to ~1000 members |
//! | `backoff.rs` | [`Backoff`]: exponential delays with seeded jitter, for retries |
//! | `error.rs` | [`MembershipError`] |
//!
//! # How the node driver wires it
//!
//! 1. At start: `Membership::new(MemberId::new(node_id, listen_addr, generation), config,
//!    seed)`, with a generation above any this node used before (e.g. wall-clock
//!    milliseconds at start) and a random `seed`. Then
//!    [`announce`](Membership::announce) to the ticket of one or more known nodes (the
//!    trust list's peers). It keeps announcing with backoff until one answers.
//! 2. After **every** call, [`drain_outputs`](Membership::drain_outputs) and carry each
//!    [`Output`] out, in order (also when the call returned an error):
//!    - [`Output::Send`]: one QUIC datagram on the connection to `node`, dialling `addr`
//!      (expecting `node`) if there is none. A datagram that cannot go now may be dropped.
//!    - [`Output::ScheduleTimer`]: call [`handle_timer`](Membership::handle_timer) with the
//!      timer once it is due. Every timer must be delivered, late rather than never.
//!    - [`Output::Event`]: see below.
//! 3. Each datagram received on a connection: [`handle_datagram`](Membership::handle_datagram)
//!    with the connection's **authenticated** peer id (`connection.peer()`). A datagram whose
//!    SWIM header claims another sender is rejected ([`MembershipError::Impersonation`]); the
//!    driver may close that connection. Errors concern one datagram: log them, carry on.
//! 4. Events feed the replication protocol through [`Event::peer_status`]:
//!    `replica.set_peer(node.replica_id(), status)` — [`Event::Up`] → `PeerStatus::Alive`,
//!    [`Event::Suspect`] → `PeerStatus::Suspect`, [`Event::Down`] → `PeerStatus::Down`. The
//!    addresses in `Up` and [`Event::AddressChanged`] are where to dial that peer.
//!    `Replica::remove_peer` is not a failure detector's decision (a down peer may come
//!    back); call it when the user removes a peer from the trust list.
//! 5. Down peers are retried by dialling them with a [`Backoff`] per peer
//!    ([`Config::backoff`]), reset when a connection succeeds; SWIM itself also announces to
//!    a couple of down members every `announce_down_interval`, which heals partitions. A
//!    peer that comes back is reported [`Event::Up`] again.
//! 6. [`Event::Rejoined`] carries this node's new identity (a later generation), if the
//!    driver persists generations; [`Event::Joined`] / [`Event::Isolated`] are for status
//!    displays. On shutdown, [`leave`](Membership::leave) and send the resulting datagrams.
//!
//! ```no_run
//! use std::time::Instant;
//! use gossamer_sync::membership::{Config, MemberId, Membership, Output};
//! use gossamer_sync::net::{NodeId, Ticket};
//! # fn send_datagram(_: NodeId, _: std::net::SocketAddr, _: bytes::Bytes) {}
//! # fn schedule(_: u64, _: gossamer_sync::membership::Timer) {}
//! # fn set_peer(_: gossamer_crdt::ReplicaId, _: gossamer_sync::protocol::PeerStatus) {}
//! # fn example(me: NodeId, seed: Ticket, generation: u64) -> Result<(), Box<dyn std::error::Error>> {
//! let start = Instant::now();
//! let now = || start.elapsed().as_millis() as u64;
//! let id = MemberId::new(me, "0.0.0.0:4433".parse()?, generation);
//! let mut membership = Membership::new(id, Config::default(), rand::random())?;
//! membership.announce(seed, now())?;
//! // ... and in the event loop, after this and every other call:
//! for output in membership.drain_outputs() {
//!     match output {
//!         Output::Send { node, addr, bytes } => send_datagram(node, addr, bytes),
//!         Output::ScheduleTimer { timer, .. } => schedule(timer.deadline(), timer),
//!         Output::Event(event) => {
//!             if let Some((replica, status)) = event.peer_status() {
//!                 set_peer(replica, status);
//!             }
//!         }
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Trust
//!
//! The transport authenticates who sent a datagram; this module checks that the SWIM header
//! agrees. What a member says about *others* (their status, their address) is gossip and is
//! believed, as SWIM requires; a false address only costs a failed dial, because the driver
//! dials a node expecting its id, and a peer that is not in the trust list cannot connect.

mod backoff;
mod codec;
mod config;
mod error;
mod id;
mod output;
mod swim;
mod view;

pub use backoff::Backoff;
pub use config::Config;
pub use error::MembershipError;
pub use id::MemberId;
pub use output::{Event, Output, Timer};
pub use swim::Membership;
pub use view::MemberInfo;
