//! An established, mutually authenticated connection to one peer.

use std::fmt;
use std::net::SocketAddr;

use quinn::{RecvStream, SendStream, VarInt};
use rustls::pki_types::CertificateDer;

use super::{NetError, NodeId, VerifiedNodeId};

/// Application close codes this layer sends.
///
/// The code travels in the QUIC `CONNECTION_CLOSE` frame; the peer sees it as
/// `quinn::ConnectionError::ApplicationClosed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// Orderly shutdown: nothing went wrong.
    Done,
    /// The peer broke the protocol (an oversize or truncated frame, an undecodable message):
    /// close this connection, keep the node running.
    ProtocolViolation,
}

impl CloseCode {
    /// The code on the wire.
    pub fn code(self) -> u32 {
        match self {
            Self::Done => 0,
            Self::ProtocolViolation => 1,
        }
    }
}

/// A QUIC connection whose peer proved its [`NodeId`] and was trusted at handshake time.
///
/// Made by [`Endpoint::connect`](super::Endpoint::connect) and
/// [`Accepting::handshake`](super::Accepting::handshake); there is no other way to get one, so
/// holding a `PeerConnection` means the handshake checks passed. Cloning is cheap and shares the
/// connection; it is closed when [`close`](Self::close) is called or the last clone is dropped.
///
/// Streams carry [frames](super::read_frame); unreliable messages (SWIM) use QUIC datagrams via
/// [`connection`](Self::connection), each at most [`max_datagram_size`](Self::max_datagram_size).
///
/// ```no_run
/// use gossamer_sync::net::{read_frame, write_frame, Endpoint, NodeId, DEFAULT_MAX_FRAME_LEN};
///
/// # async fn example(endpoint: Endpoint, peer: NodeId) -> Result<(), gossamer_sync::net::NetError> {
/// let connection = endpoint.connect("127.0.0.1:4433".parse().unwrap(), peer).await?;
/// let (mut send, mut recv) = connection.open_bi().await?;
/// write_frame(&mut send, b"digest").await?;
/// send.finish()?;
/// let reply = read_frame(&mut recv, DEFAULT_MAX_FRAME_LEN).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PeerConnection {
    connection: quinn::Connection,
    peer: VerifiedNodeId,
}

impl PeerConnection {
    /// Wraps a connection whose handshake went through this module's verifiers, reading the
    /// peer's id from the certificate it presented.
    pub(super) fn from_verified(connection: quinn::Connection) -> Result<Self, NetError> {
        let certificates = connection
            .peer_identity()
            .and_then(|identity| identity.downcast::<Vec<CertificateDer<'static>>>().ok())
            .ok_or(NetError::MissingPeerIdentity)?;
        let end_entity = certificates.first().ok_or(NetError::MissingPeerIdentity)?;
        let peer = VerifiedNodeId::new(NodeId::from_certificate(end_entity)?);
        Ok(Self { connection, peer })
    }

    /// The peer's verified node id.
    pub fn peer(&self) -> VerifiedNodeId {
        self.peer
    }

    /// The peer's current address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.connection.remote_address()
    }

    /// Opens a bidirectional stream. The peer learns of it when the first bytes arrive. Waits
    /// while the peer allows no more: an endpoint takes none unless it was built with
    /// [`max_incoming_bidi_streams`](crate::net::EndpointBuilder::max_incoming_bidi_streams).
    pub async fn open_bi(&self) -> Result<(SendStream, RecvStream), NetError> {
        self.connection.open_bi().await.map_err(NetError::from_connection)
    }

    /// Waits for the peer to open a bidirectional stream.
    pub async fn accept_bi(&self) -> Result<(SendStream, RecvStream), NetError> {
        self.connection.accept_bi().await.map_err(NetError::from_connection)
    }

    /// The largest datagram that can be sent on this connection now, or `None` if the peer does
    /// not accept datagrams. It depends on the path MTU; it is at least
    /// [`MIN_DATAGRAM_SIZE`](super::MIN_DATAGRAM_SIZE) on any path QUIC works on.
    pub fn max_datagram_size(&self) -> Option<usize> {
        self.connection.max_datagram_size()
    }

    /// The underlying quinn connection, for datagrams, statistics and uni streams.
    pub fn connection(&self) -> &quinn::Connection {
        &self.connection
    }

    /// Closes the connection at once; streams in flight are abandoned. `reason` is for the
    /// peer's logs.
    pub fn close(&self, code: CloseCode, reason: &str) {
        tracing::debug!(peer = %self.peer, ?code, reason, "closing connection");
        self.connection.close(VarInt::from_u32(code.code()), reason.as_bytes());
    }

    /// Waits until the connection is closed, by either side or by a timeout, and says why.
    pub async fn closed(&self) -> NetError {
        NetError::from_connection(self.connection.closed().await)
    }
}

impl fmt::Debug for PeerConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerConnection").field("peer", &self.peer).field("remote_addr", &self.remote_addr()).finish()
    }
}
