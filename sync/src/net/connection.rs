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
///
/// A node that reads a malformed frame closes that one connection with
/// [`ProtocolViolation`](Self::ProtocolViolation), and the peer learns why:
///
/// ```
/// use std::time::Duration;
/// use gossamer_sync::net::{CloseCode, NetError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # use gossamer_sync::net::{Endpoint, Identity, TrustList};
/// # let loopback = "127.0.0.1:0".parse()?;
/// # let server = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
/// # let client = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
/// # server.trust().add(client.node_id());
/// # client.trust().add(server.node_id());
/// # let accepting = server.clone();
/// # let accepted = tokio::spawn(async move { accepting.accept().await.expect("open").handshake().await });
/// # let to_server = client.connect(server.local_addr()?, server.node_id()).await?;
/// # let to_client = tokio::time::timeout(std::time::Duration::from_secs(5), accepted).await???;
/// to_client.close(CloseCode::ProtocolViolation, "frame too large");
///
/// let why = tokio::time::timeout(Duration::from_secs(5), to_server.closed()).await?;
/// assert!(
///     matches!(&why, NetError::Connection(quinn::ConnectionError::ApplicationClosed(close))
///         if close.error_code == quinn::VarInt::from_u32(CloseCode::ProtocolViolation.code())
///             && &close.reason[..] == b"frame too large"),
///     "{why}"
/// );
/// # client.close();
/// # server.close();
/// # Ok(())
/// # }
/// ```
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
    ///
    /// A peer turns the error code of a close it received back into a `CloseCode`:
    ///
    /// ```
    /// use gossamer_sync::net::CloseCode;
    ///
    /// fn received(close: &quinn::ApplicationClose) -> Option<CloseCode> {
    ///     [CloseCode::Done, CloseCode::ProtocolViolation]
    ///         .into_iter()
    ///         .find(|code| quinn::VarInt::from_u32(code.code()) == close.error_code)
    /// }
    ///
    /// let close =
    ///     quinn::ApplicationClose { error_code: quinn::VarInt::from_u32(1), reason: "frame too large".into() };
    /// assert_eq!(received(&close), Some(CloseCode::ProtocolViolation));
    /// // `Done` is 0, QUIC's customary "no error".
    /// assert_eq!(CloseCode::Done.code(), 0);
    /// ```
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
    ///
    /// Each side of a connection learns the other's id from the certificate it presented:
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use gossamer_sync::net::{Endpoint, Identity, TrustList};
    /// # let loopback = "127.0.0.1:0".parse()?;
    /// # let server = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// # let client = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// # server.trust().add(client.node_id());
    /// # client.trust().add(server.node_id());
    /// let accepting = server.clone();
    /// let accepted = tokio::spawn(async move { accepting.accept().await.expect("open").handshake().await });
    /// let to_server = client.connect(server.local_addr()?, server.node_id()).await?;
    /// assert_eq!(to_server.peer(), server.node_id());
    ///
    /// let to_client = tokio::time::timeout(Duration::from_secs(5), accepted).await???;
    /// assert_eq!(to_client.peer(), client.node_id());
    /// // The id doubles as the peer's CRDT replica id.
    /// assert_eq!(to_client.peer().replica_id(), client.node_id().replica_id());
    /// # client.close();
    /// # server.close();
    /// # Ok(())
    /// # }
    /// ```
    pub fn peer(&self) -> VerifiedNodeId {
        self.peer
    }

    /// The peer's current address.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use gossamer_sync::net::{Endpoint, Identity, TrustList};
    /// # let loopback = "127.0.0.1:0".parse()?;
    /// # let server = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// # let client = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// # server.trust().add(client.node_id());
    /// # client.trust().add(server.node_id());
    /// # let accepting = server.clone();
    /// # let accepted = tokio::spawn(async move { accepting.accept().await.expect("open").handshake().await });
    /// # let to_server = client.connect(server.local_addr()?, server.node_id()).await?;
    /// # let to_client = tokio::time::timeout(std::time::Duration::from_secs(5), accepted).await???;
    /// assert_eq!(to_server.remote_addr(), server.local_addr()?);
    /// assert_eq!(to_client.remote_addr(), client.local_addr()?);
    /// # client.close();
    /// # server.close();
    /// # Ok(())
    /// # }
    /// ```
    pub fn remote_addr(&self) -> SocketAddr {
        self.connection.remote_address()
    }

    /// Opens a bidirectional stream. The peer learns of it when the first bytes arrive. Waits
    /// while the peer allows no more: an endpoint takes none unless it was built with
    /// [`max_incoming_bidi_streams`](crate::net::EndpointBuilder::max_incoming_bidi_streams).
    ///
    /// A request and its reply on one stream; the server allows one bidi stream at a time:
    ///
    /// ```
    /// use std::time::Duration;
    /// use gossamer_sync::net::{read_frame, write_frame, Endpoint, Identity, TrustList, DEFAULT_MAX_FRAME_LEN};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let loopback = "127.0.0.1:0".parse()?;
    /// let server =
    ///     Endpoint::builder(Identity::generate()?, TrustList::new()).max_incoming_bidi_streams(1).bind(loopback)?;
    /// let client = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// # server.trust().add(client.node_id());
    /// # client.trust().add(server.node_id());
    /// # let accepting = server.clone();
    /// # let accepted = tokio::spawn(async move { accepting.accept().await.expect("open").handshake().await });
    /// # let to_server = client.connect(server.local_addr()?, server.node_id()).await?;
    /// # let to_client = tokio::time::timeout(Duration::from_secs(5), accepted).await???;
    /// let limit = Duration::from_secs(5);
    /// let (mut send, mut recv) = tokio::time::timeout(limit, to_server.open_bi()).await??;
    /// write_frame(&mut send, b"digest?").await?;
    /// send.finish()?;
    ///
    /// // The server answers on the same stream.
    /// let (mut reply, mut request) = tokio::time::timeout(limit, to_client.accept_bi()).await??;
    /// let asked = tokio::time::timeout(limit, read_frame(&mut request, DEFAULT_MAX_FRAME_LEN)).await??;
    /// assert_eq!(asked, Some(b"digest?".to_vec()));
    /// write_frame(&mut reply, b"digest").await?;
    /// reply.finish()?;
    ///
    /// let answer = tokio::time::timeout(limit, read_frame(&mut recv, DEFAULT_MAX_FRAME_LEN)).await??;
    /// assert_eq!(answer, Some(b"digest".to_vec()));
    /// # client.close();
    /// # server.close();
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open_bi(&self) -> Result<(SendStream, RecvStream), NetError> {
        self.connection.open_bi().await.map_err(NetError::from_connection)
    }

    /// Waits for the peer to open a bidirectional stream.
    ///
    /// The stream arrives with the peer's first frame; once the peer has closed the connection, waiting
    /// for another fails with the peer's close:
    ///
    /// ```
    /// use std::time::Duration;
    /// use gossamer_sync::net::{read_frame, write_frame, CloseCode, Endpoint, Identity, NetError, TrustList};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let loopback = "127.0.0.1:0".parse()?;
    /// let server =
    ///     Endpoint::builder(Identity::generate()?, TrustList::new()).max_incoming_bidi_streams(1).bind(loopback)?;
    /// let client = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// # server.trust().add(client.node_id());
    /// # client.trust().add(server.node_id());
    /// # let accepting = server.clone();
    /// # let accepted = tokio::spawn(async move { accepting.accept().await.expect("open").handshake().await });
    /// # let to_server = client.connect(server.local_addr()?, server.node_id()).await?;
    /// # let to_client = tokio::time::timeout(Duration::from_secs(5), accepted).await???;
    /// let limit = Duration::from_secs(5);
    /// let (mut send, _recv) = tokio::time::timeout(limit, to_server.open_bi()).await??;
    /// write_frame(&mut send, b"ping").await?;
    /// send.finish()?;
    ///
    /// let (_send, mut recv) = tokio::time::timeout(limit, to_client.accept_bi()).await??;
    /// assert_eq!(tokio::time::timeout(limit, read_frame(&mut recv, 1024)).await??, Some(b"ping".to_vec()));
    ///
    /// to_server.close(CloseCode::Done, "bye");
    /// let why = tokio::time::timeout(limit, to_client.accept_bi()).await?.unwrap_err();
    /// assert!(matches!(&why, NetError::Connection(quinn::ConnectionError::ApplicationClosed(_))), "{why}");
    /// # client.close();
    /// # server.close();
    /// # Ok(())
    /// # }
    /// ```
    pub async fn accept_bi(&self) -> Result<(SendStream, RecvStream), NetError> {
        self.connection.accept_bi().await.map_err(NetError::from_connection)
    }

    /// The largest datagram that can be sent on this connection now, or `None` if the peer does
    /// not accept datagrams. It depends on the path MTU; it is at least
    /// [`MIN_DATAGRAM_SIZE`](super::MIN_DATAGRAM_SIZE) on any path QUIC works on.
    ///
    /// A datagram of exactly the maximum size is queued; one byte more is refused:
    ///
    /// ```
    /// use gossamer_sync::net::MIN_DATAGRAM_SIZE;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use gossamer_sync::net::{Endpoint, Identity, TrustList};
    /// # let loopback = "127.0.0.1:0".parse()?;
    /// # let server = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// # let client = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// # server.trust().add(client.node_id());
    /// # client.trust().add(server.node_id());
    /// # let accepting = server.clone();
    /// # let accepted = tokio::spawn(async move { accepting.accept().await.expect("open").handshake().await });
    /// # let to_server = client.connect(server.local_addr()?, server.node_id()).await?;
    /// # let to_client = tokio::time::timeout(std::time::Duration::from_secs(5), accepted).await???;
    /// let max = to_server.max_datagram_size().expect("the peer accepts datagrams");
    /// assert!(max >= MIN_DATAGRAM_SIZE);
    /// // No `.await` in between, so the size cannot change under us (MTU discovery runs in a task).
    /// assert!(to_server.connection().send_datagram(vec![0; max].into()).is_ok());
    /// let too_large = to_server.connection().send_datagram(vec![0; max + 1].into());
    /// assert!(matches!(too_large, Err(quinn::SendDatagramError::TooLarge)));
    /// # client.close();
    /// # server.close();
    /// # Ok(())
    /// # }
    /// ```
    pub fn max_datagram_size(&self) -> Option<usize> {
        self.connection.max_datagram_size()
    }

    /// The underlying quinn connection, for datagrams, statistics and uni streams.
    ///
    /// A frame on a unidirectional stream, the way a node sends its messages:
    ///
    /// ```
    /// use std::time::Duration;
    /// use gossamer_sync::net::{read_frame, write_frame, DEFAULT_MAX_FRAME_LEN};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use gossamer_sync::net::{Endpoint, Identity, TrustList};
    /// # let loopback = "127.0.0.1:0".parse()?;
    /// # let server = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// # let client = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// # server.trust().add(client.node_id());
    /// # client.trust().add(server.node_id());
    /// # let accepting = server.clone();
    /// # let accepted = tokio::spawn(async move { accepting.accept().await.expect("open").handshake().await });
    /// # let to_server = client.connect(server.local_addr()?, server.node_id()).await?;
    /// # let to_client = tokio::time::timeout(std::time::Duration::from_secs(5), accepted).await???;
    /// let limit = Duration::from_secs(5);
    /// let mut send = to_server.connection().open_uni().await?;
    /// write_frame(&mut send, b"digest").await?;
    /// send.finish()?;
    ///
    /// let mut recv = tokio::time::timeout(limit, to_client.connection().accept_uni()).await??;
    /// let frame = tokio::time::timeout(limit, read_frame(&mut recv, DEFAULT_MAX_FRAME_LEN)).await??;
    /// assert_eq!(frame, Some(b"digest".to_vec()));
    /// assert!(to_server.connection().stats().path.rtt < limit);
    /// # client.close();
    /// # server.close();
    /// # Ok(())
    /// # }
    /// ```
    pub fn connection(&self) -> &quinn::Connection {
        &self.connection
    }

    /// Closes the connection at once; streams in flight are abandoned. `reason` is for the
    /// peer's logs.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gossamer_sync::net::{CloseCode, NetError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use gossamer_sync::net::{Endpoint, Identity, TrustList};
    /// # let loopback = "127.0.0.1:0".parse()?;
    /// # let server = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// # let client = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// # server.trust().add(client.node_id());
    /// # client.trust().add(server.node_id());
    /// # let accepting = server.clone();
    /// # let accepted = tokio::spawn(async move { accepting.accept().await.expect("open").handshake().await });
    /// # let to_server = client.connect(server.local_addr()?, server.node_id()).await?;
    /// # let to_client = tokio::time::timeout(std::time::Duration::from_secs(5), accepted).await???;
    /// to_server.close(CloseCode::Done, "bye");
    /// // This side knows at once ...
    /// assert!(matches!(to_server.closed().await, NetError::Connection(quinn::ConnectionError::LocallyClosed)));
    /// // ... and the peer receives the code and the reason.
    /// let why = tokio::time::timeout(Duration::from_secs(5), to_client.closed()).await?;
    /// assert!(
    ///     matches!(&why, NetError::Connection(quinn::ConnectionError::ApplicationClosed(close))
    ///         if close.error_code == quinn::VarInt::from_u32(CloseCode::Done.code()) && &close.reason[..] == b"bye"),
    ///     "{why}"
    /// );
    /// # client.close();
    /// # server.close();
    /// # Ok(())
    /// # }
    /// ```
    pub fn close(&self, code: CloseCode, reason: &str) {
        tracing::debug!(peer = %self.peer, ?code, reason, "closing connection");
        self.connection.close(VarInt::from_u32(code.code()), reason.as_bytes());
    }

    /// Waits until the connection is closed, by either side or by a timeout, and says why.
    ///
    /// A task watching a connection learns the peer's close code and reason:
    ///
    /// ```
    /// use std::time::Duration;
    /// use gossamer_sync::net::{CloseCode, NetError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use gossamer_sync::net::{Endpoint, Identity, TrustList};
    /// # let loopback = "127.0.0.1:0".parse()?;
    /// # let server = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// # let client = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// # server.trust().add(client.node_id());
    /// # client.trust().add(server.node_id());
    /// # let accepting = server.clone();
    /// # let accepted = tokio::spawn(async move { accepting.accept().await.expect("open").handshake().await });
    /// # let to_server = client.connect(server.local_addr()?, server.node_id()).await?;
    /// # let to_client = tokio::time::timeout(std::time::Duration::from_secs(5), accepted).await???;
    /// let limit = Duration::from_secs(5);
    /// let watched = to_server.clone();
    /// let watcher = tokio::spawn(async move { watched.closed().await });
    /// to_client.close(CloseCode::ProtocolViolation, "undecodable message");
    ///
    /// let why = tokio::time::timeout(limit, watcher).await??;
    /// assert!(
    ///     matches!(&why, NetError::Connection(quinn::ConnectionError::ApplicationClosed(close))
    ///         if close.error_code == quinn::VarInt::from_u32(CloseCode::ProtocolViolation.code())
    ///             && &close.reason[..] == b"undecodable message"),
    ///     "{why}"
    /// );
    /// // Once closed, every clone answers at once, with the same reason.
    /// let again = tokio::time::timeout(limit, to_server.closed()).await?;
    /// assert_eq!(again.to_string(), why.to_string());
    /// # client.close();
    /// # server.close();
    /// # Ok(())
    /// # }
    /// ```
    pub async fn closed(&self) -> NetError {
        NetError::from_connection(self.connection.closed().await)
    }
}

impl fmt::Debug for PeerConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerConnection").field("peer", &self.peer).field("remote_addr", &self.remote_addr()).finish()
    }
}
