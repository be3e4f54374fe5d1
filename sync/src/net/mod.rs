//! The transport: QUIC (quinn) with mutual TLS, where peers are pinned by [`NodeId`].
//!
//! | file | concept |
//! |---|---|
//! | `identity.rs` | [`Identity`]: this node's key pair and self-signed certificate, persisted in the data directory |
//! | `node_id.rs` | [`NodeId`]: hash of a public key, printed in base32; [`VerifiedNodeId`]: one a peer proved |
//! | `trust.rs` | [`TrustList`]: the node ids allowed to connect, changeable at run time |
//! | `verify.rs` | the rustls verifiers that check a peer's id against the trust list |
//! | `tls.rs` | rustls/quinn crypto configuration (TLS 1.3, ring provider, no resumption) |
//! | `endpoint.rs` | [`Endpoint`]: dial ([`Endpoint::connect`]) and accept ([`Accepting::handshake`]) |
//! | `connection.rs` | [`PeerConnection`]: an authenticated connection and its peer's id |
//! | `ticket.rs` | [`Ticket`]: `gossamer://<node-id>@<ip:port>`, how users introduce nodes |
//! | `frame.rs` | [`read_frame`] / [`write_frame`]: length-prefixed messages on streams |
//! | `error.rs` | [`NetError`] |
//!
//! # Security model
//!
//! A node is its key: its [`NodeId`] is the SHA-256 of its public key (truncated to 20 bytes),
//! and the first 16 bytes are its [`ReplicaId`](gossamer_crdt::ReplicaId). Certificates are
//! self-signed; nobody vouches for anybody. Instead each node keeps a [`TrustList`] of the ids
//! it accepts, as SSH `known_hosts` or Syncthing device ids do. In every handshake both sides
//! present certificates; each checks that the other's id is trusted (and, when dialling, that
//! it is the id it dialled), and rustls checks the handshake signature that proves the peer
//! holds the key. An unknown peer fails the handshake; there is no mode that accepts any
//! certificate. Only the ring crypto provider is used, and session resumption is off, so
//! removing a peer from the trust list takes effect on its next connection.
//!
//! # How the node driver uses it
//!
//! 1. At start: `Identity::load_or_generate(data_dir)`, a `TrustList` filled from the store,
//!    and `Endpoint::builder(identity, trust.clone()).bind(addr)`.
//! 2. Accept loop: `while let Some(incoming) = endpoint.accept().await`, spawn a task running
//!    `incoming.handshake()`; an error there concerns that peer only (log it, carry on).
//! 3. Dial: `endpoint.connect(addr, node_id)` (or `connect_ticket`). It returns once *both*
//!    sides accepted the handshake, so a peer that does not trust us is reported as
//!    [`NetError::RefusedByPeer`] right away. (The accepting side confirms with an empty
//!    unidirectional stream, the first it opens; `connect` consumes it, so callers never see it.)
//! 4. Per connection: [`PeerConnection::peer`] is the verified id to feed the protocol. Messages
//!    travel as frames on bidirectional streams ([`write_frame`], then `finish()`;
//!    [`read_frame`] with [`DEFAULT_MAX_FRAME_LEN`] or the configured maximum). A
//!    [`FrameError`] other than I/O means the peer broke the framing: close *that* connection
//!    with [`CloseCode::ProtocolViolation`] and keep serving the rest.
//! 5. SWIM: QUIC datagrams on the same connections ([`PeerConnection::connection`]), each at
//!    most [`PeerConnection::max_datagram_size`], which is never below [`MIN_DATAGRAM_SIZE`].
//! 6. Trust changes ([`TrustList::add`]/[`TrustList::remove`]) apply to new handshakes; on a
//!    removal, the driver closes the existing connections to that peer.
//!
//! ```no_run
//! use gossamer_sync::net::{read_frame, write_frame, Endpoint, Identity, Ticket, TrustList,
//!     DEFAULT_MAX_FRAME_LEN};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let trust = TrustList::new();
//! let endpoint = Endpoint::builder(Identity::load_or_generate("data")?, trust.clone())
//!     .bind("0.0.0.0:4433".parse()?)?;
//!
//! // The user pasted another device's ticket: trust it, then dial it.
//! let ticket: Ticket = "gossamer://mzxw6ytbmzxw6ytbmzxw6ytbmzxw6ytb@192.0.2.7:4433".parse()?;
//! trust.add(ticket.node);
//! let connection = endpoint.connect_ticket(&ticket).await?;
//! // Frames go out on a unidirectional stream (the peer accepts a few at a time, and no
//! // bidirectional ones unless its endpoint allows them), and come back on the peer's.
//! let mut send = connection.connection().open_uni().await?;
//! write_frame(&mut send, b"hello").await?;
//! send.finish()?;
//! let mut recv = connection.connection().accept_uni().await?;
//! while let Some(frame) = read_frame(&mut recv, DEFAULT_MAX_FRAME_LEN).await? {
//!     println!("{} bytes from {}", frame.len(), connection.peer());
//! }
//! # Ok(())
//! # }
//! ```

mod connection;
mod endpoint;
mod error;
mod frame;
mod identity;
mod node_id;
mod ticket;
mod tls;
mod trust;
mod verify;

pub use connection::{CloseCode, PeerConnection};
pub use endpoint::{
    ALPN, Accepting, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_KEEP_ALIVE,
    DEFAULT_MAX_INCOMING_BIDI_STREAMS, DEFAULT_MAX_INCOMING_UNI_STREAMS, Endpoint, EndpointBuilder, MIN_DATAGRAM_SIZE,
};
pub use error::NetError;
pub use frame::{DEFAULT_MAX_FRAME_LEN, FRAME_HEADER_LEN, FrameError, read_frame, write_frame};
pub(crate) use frame::{read_frame_len, read_frame_payload};
pub use identity::{CERT_FILE, Identity, KEY_FILE};
pub use node_id::{NodeId, NodeIdError, VerifiedNodeId};
pub use ticket::{TICKET_SCHEME, Ticket, TicketError};
pub use trust::TrustList;

/// The quinn stream types that frames travel on, re-exported so callers need no direct quinn
/// dependency for the common path.
pub use quinn::{RecvStream, SendStream};
