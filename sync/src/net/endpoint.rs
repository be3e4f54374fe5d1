//! The QUIC endpoint: one UDP socket that both dials and accepts, with mutual TLS by pinned
//! node id.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::{IdleTimeout, TransportConfig, VarInt};

use super::verify::PinnedVerifier;
use super::{Identity, NetError, NodeId, PeerConnection, Ticket, TrustList, tls};

/// The ALPN protocol id both sides must offer: the transport's version. A peer speaking another
/// version fails the handshake (TLS alert `no_application_protocol`).
///
/// Two endpoints with default settings agree on it:
///
/// ```
/// use gossamer_sync::net::ALPN;
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
/// let handshake = to_server.connection().handshake_data().expect("handshake finished");
/// let handshake = handshake.downcast::<quinn::crypto::rustls::HandshakeData>().expect("rustls handshake");
/// assert_eq!(handshake.protocol.as_deref(), Some(ALPN));
/// # client.close();
/// # server.close();
/// # Ok(())
/// # }
/// ```
pub const ALPN: &[u8] = b"gossamer/1";

/// The payload size a QUIC datagram can always carry on this endpoint's connections, whatever
/// the path: what is left of QUIC's minimum 1200-byte packet after the 1-RTT header
/// (flags, 8-byte connection id, packet number), the AEAD tag and the DATAGRAM frame header.
/// On most paths [`PeerConnection::max_datagram_size`] is larger once MTU discovery has run.
///
/// A datagram of this size gets through right after the handshake, before any MTU discovery:
///
/// ```
/// use std::time::Duration;
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
/// assert!(to_server.max_datagram_size().expect("datagrams enabled") >= MIN_DATAGRAM_SIZE);
/// let payload = bytes::Bytes::from(vec![7; MIN_DATAGRAM_SIZE]);
/// to_server.connection().send_datagram(payload.clone())?;
/// let received = tokio::time::timeout(Duration::from_secs(5), to_client.connection().read_datagram()).await??;
/// assert_eq!(received, payload);
/// # client.close();
/// # server.close();
/// # Ok(())
/// # }
/// ```
pub const MIN_DATAGRAM_SIZE: usize = 1162;

/// Default interval of keep-alive packets on an idle connection.
///
/// It is the builder's default: lowering only the idle timeout to it is refused, because the
/// keep-alive interval must be shorter than the idle timeout.
///
/// ```
/// use std::time::Duration;
/// use gossamer_sync::net::{Endpoint, Identity, NetError, TrustList, DEFAULT_KEEP_ALIVE};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let loopback = "127.0.0.1:0".parse()?;
/// let err = Endpoint::builder(Identity::generate()?, TrustList::new())
///     .idle_timeout(DEFAULT_KEEP_ALIVE)
///     .bind(loopback)
///     .unwrap_err();
/// assert!(matches!(err, NetError::InvalidConfig { setting: "keep_alive_interval", .. }), "{err}");
///
/// let endpoint = Endpoint::builder(Identity::generate()?, TrustList::new())
///     .idle_timeout(DEFAULT_KEEP_ALIVE + Duration::from_secs(1))
///     .bind(loopback)?;
/// # endpoint.close();
/// # Ok(())
/// # }
/// ```
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(5);

/// Default time after which a connection with no traffic at all (not even keep-alives) is
/// considered dead.
///
/// It is the builder's default: a keep-alive interval as long as it is refused, and the error
/// names it.
///
/// ```
/// use std::time::Duration;
/// use gossamer_sync::net::{Endpoint, Identity, NetError, TrustList, DEFAULT_IDLE_TIMEOUT};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let loopback = "127.0.0.1:0".parse()?;
/// let err = Endpoint::builder(Identity::generate()?, TrustList::new())
///     .keep_alive_interval(DEFAULT_IDLE_TIMEOUT)
///     .bind(loopback)
///     .unwrap_err();
/// assert!(matches!(err, NetError::InvalidConfig { setting: "keep_alive_interval", .. }), "{err}");
/// assert!(err.to_string().contains(&format!("the idle timeout {DEFAULT_IDLE_TIMEOUT:?}")), "{err}");
///
/// let endpoint = Endpoint::builder(Identity::generate()?, TrustList::new())
///     .keep_alive_interval(DEFAULT_IDLE_TIMEOUT - Duration::from_secs(1))
///     .bind(loopback)?;
/// # endpoint.close();
/// # Ok(())
/// # }
/// ```
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Default limit on a whole handshake, including the accepting side's confirmation.
///
/// It is what [`Endpoint::builder`] starts with (waiting it out would take too long here; see
/// [`EndpointBuilder::handshake_timeout`] for a timeout in action):
///
/// ```
/// use gossamer_sync::net::{Endpoint, Identity, TrustList, DEFAULT_HANDSHAKE_TIMEOUT};
///
/// let builder = Endpoint::builder(Identity::generate()?, TrustList::new());
/// let settings = format!("{builder:?}");
/// assert!(settings.contains(&format!("handshake_timeout: {DEFAULT_HANDSHAKE_TIMEOUT:?}")), "{settings}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Default number of unidirectional streams a peer may have open to us at once. A node sends
/// on one stream per connection; a few more leave room for a stream that is still being
/// drained when the next one opens. Each open stream may hold quinn's receive window
/// (about 1.25 MB) of data we have not read yet, so this bounds that memory per peer.
///
/// A peer of an endpoint with default settings can open this many streams; the next one waits
/// until the node has read one:
///
/// ```
/// use std::time::Duration;
/// use gossamer_sync::net::DEFAULT_MAX_INCOMING_UNI_STREAMS;
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
/// let mut open = Vec::new();
/// for _ in 0..DEFAULT_MAX_INCOMING_UNI_STREAMS {
///     let mut stream = tokio::time::timeout(limit, to_server.connection().open_uni()).await??;
///     stream.write_all(b"unread").await?;
///     open.push(stream);
/// }
/// let one_more = tokio::time::timeout(Duration::from_millis(100), to_server.connection().open_uni()).await;
/// assert!(one_more.is_err(), "the node has not read any of the streams yet");
/// # client.close();
/// # server.close();
/// # Ok(())
/// # }
/// ```
pub const DEFAULT_MAX_INCOMING_UNI_STREAMS: u32 = 4;

/// Default number of bidirectional streams a peer may open to us: none, the node never uses
/// them (quinn would otherwise allow 100, each with its own receive window).
///
/// A peer of an endpoint with default settings waits in vain to open one:
///
/// ```
/// use std::time::Duration;
/// use gossamer_sync::net::DEFAULT_MAX_INCOMING_BIDI_STREAMS;
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
/// assert_eq!(DEFAULT_MAX_INCOMING_BIDI_STREAMS, 0);
/// let bidi = tokio::time::timeout(Duration::from_millis(100), to_server.open_bi()).await;
/// assert!(bidi.is_err(), "no bidirectional stream is allowed");
/// // Unidirectional streams are what the node takes.
/// assert!(tokio::time::timeout(Duration::from_secs(5), to_server.connection().open_uni()).await.is_ok());
/// # client.close();
/// # server.close();
/// # Ok(())
/// # }
/// ```
pub const DEFAULT_MAX_INCOMING_BIDI_STREAMS: u32 = 0;

/// Space for datagrams queued in each direction of a connection: room for about 400 SWIM
/// messages, so a burst does not drop older ones.
const DATAGRAM_BUFFER: usize = 512 * 1024;

/// Settings for an [`Endpoint`], from [`Endpoint::builder`].
///
/// ```no_run
/// use std::time::Duration;
/// use gossamer_sync::net::{Endpoint, Identity, TrustList};
///
/// # async fn example() -> Result<(), gossamer_sync::net::NetError> {
/// let endpoint = Endpoint::builder(Identity::generate()?, TrustList::new())
///     .keep_alive_interval(Duration::from_secs(2))
///     .idle_timeout(Duration::from_secs(10))
///     .bind("0.0.0.0:4433".parse().unwrap())?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use = "an EndpointBuilder does nothing until bind() is called"]
pub struct EndpointBuilder {
    identity: Identity,
    trust: TrustList,
    alpn: Vec<u8>,
    keep_alive: Duration,
    idle_timeout: Duration,
    handshake_timeout: Duration,
    incoming_uni: u32,
    incoming_bidi: u32,
}

impl EndpointBuilder {
    /// The ALPN protocol id to require instead of [`ALPN`] (for tests of version mismatch, or
    /// a future protocol version).
    ///
    /// A node still on an older protocol version cannot connect, even though both sides trust each
    /// other:
    ///
    /// ```
    /// use std::time::Duration;
    /// use gossamer_sync::net::{Endpoint, Identity, NetError, TrustList};
    /// use rustls::AlertDescription;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let loopback = "127.0.0.1:0".parse()?;
    /// let server = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// let old = Endpoint::builder(Identity::generate()?, TrustList::new()).alpn(&b"gossamer/0"[..]).bind(loopback)?;
    /// server.trust().add(old.node_id());
    /// old.trust().add(server.node_id());
    /// # let accepting = server.clone();
    /// # let accepted = tokio::spawn(async move { accepting.accept().await.expect("open").handshake().await });
    ///
    /// let err = old.connect(server.local_addr()?, server.node_id()).await.unwrap_err();
    /// assert!(matches!(err, NetError::RefusedByPeer { alert: AlertDescription::NoApplicationProtocol }), "{err}");
    /// # assert!(tokio::time::timeout(Duration::from_secs(5), accepted).await??.is_err());
    /// # old.close();
    /// # server.close();
    /// # Ok(())
    /// # }
    /// ```
    pub fn alpn(mut self, alpn: impl Into<Vec<u8>>) -> Self {
        self.alpn = alpn.into();
        self
    }

    /// How often to send keep-alive packets on an otherwise idle connection
    /// (default [`DEFAULT_KEEP_ALIVE`]). Must be shorter than the idle timeout.
    ///
    /// Keep-alives hold an otherwise silent connection open past the idle timeout:
    ///
    /// ```
    /// use std::time::Duration;
    /// use gossamer_sync::net::{Endpoint, Identity, TrustList};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let loopback = "127.0.0.1:0".parse()?;
    /// let quick = |identity| {
    ///     Endpoint::builder(identity, TrustList::new())
    ///         .keep_alive_interval(Duration::from_millis(50))
    ///         .idle_timeout(Duration::from_millis(600))
    /// };
    /// let server = quick(Identity::generate()?).bind(loopback)?;
    /// let client = quick(Identity::generate()?).bind(loopback)?;
    /// # server.trust().add(client.node_id());
    /// # client.trust().add(server.node_id());
    /// # let accepting = server.clone();
    /// # let accepted = tokio::spawn(async move { accepting.accept().await.expect("open").handshake().await });
    /// let connection = client.connect(server.local_addr()?, server.node_id()).await?;
    /// # let _to_client = tokio::time::timeout(Duration::from_secs(5), accepted).await???;
    ///
    /// // Twice the idle timeout without a byte from the application.
    /// tokio::time::sleep(Duration::from_millis(1200)).await;
    /// assert!(connection.connection().close_reason().is_none(), "still open");
    /// # client.close();
    /// # server.close();
    /// # Ok(())
    /// # }
    /// ```
    pub fn keep_alive_interval(mut self, interval: Duration) -> Self {
        self.keep_alive = interval;
        self
    }

    /// How long a connection may stay silent before it is dropped
    /// (default [`DEFAULT_IDLE_TIMEOUT`]). The effective value is the smaller of both sides'.
    ///
    /// When the network between two nodes goes away, both give up after the shorter of their idle
    /// timeouts, here the client's:
    ///
    /// ```
    /// use std::time::Duration;
    /// use gossamer_sync::net::{Endpoint, Identity, NetError, TrustList};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let loopback = "127.0.0.1:0".parse()?;
    /// let server = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?; // 30 s
    /// let client = Endpoint::builder(Identity::generate()?, TrustList::new())
    ///     .keep_alive_interval(Duration::from_millis(50))
    ///     .idle_timeout(Duration::from_millis(500))
    ///     .bind(loopback)?;
    /// # server.trust().add(client.node_id());
    /// # client.trust().add(server.node_id());
    /// # // A UDP relay between the two, standing in for the network.
    /// # let relay = tokio::net::UdpSocket::bind(loopback).await?;
    /// # let relay_addr = relay.local_addr()?;
    /// # let server_addr = server.local_addr()?;
    /// # let network = tokio::spawn(async move {
    /// #     let (mut buf, mut client_addr) = (vec![0; 65536], None);
    /// #     while let Ok((len, from)) = relay.recv_from(&mut buf).await {
    /// #         let to = if from == server_addr { client_addr } else { client_addr = Some(from); Some(server_addr) };
    /// #         if let Some(to) = to {
    /// #             let _ = relay.send_to(&buf[..len], to).await;
    /// #         }
    /// #     }
    /// # });
    /// let accepting = server.clone();
    /// let accepted = tokio::spawn(async move { accepting.accept().await.expect("open").handshake().await });
    /// // `relay_addr` forwards packets to the server until `network` is aborted.
    /// let to_server = client.connect(relay_addr, server.node_id()).await?;
    /// let to_client = tokio::time::timeout(Duration::from_secs(5), accepted).await???;
    ///
    /// network.abort();
    /// let limit = Duration::from_secs(5);
    /// for connection in [to_server, to_client] {
    ///     let why = tokio::time::timeout(limit, connection.closed()).await?;
    ///     assert!(matches!(why, NetError::Connection(quinn::ConnectionError::TimedOut)), "{why}");
    /// }
    /// # client.close();
    /// # server.close();
    /// # Ok(())
    /// # }
    /// ```
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// The limit on one handshake, dialling or accepting (default
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`]).
    ///
    /// Dialling an address where nothing answers:
    ///
    /// ```
    /// use std::time::Duration;
    /// use gossamer_sync::net::{Endpoint, Identity, NetError, TrustList};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let silent = std::net::UdpSocket::bind("127.0.0.1:0")?; // a socket nobody reads
    /// let expected = Identity::generate()?.node_id();
    /// let timeout = Duration::from_millis(100);
    /// let client = Endpoint::builder(Identity::generate()?, [expected].into_iter().collect())
    ///     .handshake_timeout(timeout)
    ///     .bind("127.0.0.1:0".parse()?)?;
    ///
    /// let addr = silent.local_addr()?;
    /// let err = client.connect(addr, expected).await.unwrap_err();
    /// assert!(
    ///     matches!(err, NetError::HandshakeTimeout { addr: a, timeout: t } if a == addr && t == timeout),
    ///     "{err}"
    /// );
    /// # client.close();
    /// # Ok(())
    /// # }
    /// ```
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// How many unidirectional streams a peer may have open to us at once (default
    /// [`DEFAULT_MAX_INCOMING_UNI_STREAMS`]).
    ///
    /// With a limit of one, a peer opens its second stream only once the first has been read:
    ///
    /// ```
    /// use std::time::Duration;
    /// use gossamer_sync::net::{Endpoint, Identity, TrustList};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let loopback = "127.0.0.1:0".parse()?;
    /// let server =
    ///     Endpoint::builder(Identity::generate()?, TrustList::new()).max_incoming_uni_streams(1).bind(loopback)?;
    /// let client = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// # server.trust().add(client.node_id());
    /// # client.trust().add(server.node_id());
    /// # let accepting = server.clone();
    /// # let accepted = tokio::spawn(async move { accepting.accept().await.expect("open").handshake().await });
    /// # let to_server = client.connect(server.local_addr()?, server.node_id()).await?;
    /// # let to_client = tokio::time::timeout(Duration::from_secs(5), accepted).await???;
    /// let (limit, quick) = (Duration::from_secs(5), Duration::from_millis(100));
    /// let mut first = tokio::time::timeout(limit, to_server.connection().open_uni()).await??;
    /// first.write_all(b"one").await?;
    /// assert!(tokio::time::timeout(quick, to_server.connection().open_uni()).await.is_err());
    ///
    /// first.finish()?;
    /// let mut recv = tokio::time::timeout(limit, to_client.connection().accept_uni()).await??;
    /// assert_eq!(tokio::time::timeout(limit, recv.read_to_end(16)).await??, b"one");
    /// drop(recv);
    /// assert!(tokio::time::timeout(limit, to_server.connection().open_uni()).await.is_ok());
    /// # client.close();
    /// # server.close();
    /// # Ok(())
    /// # }
    /// ```
    pub fn max_incoming_uni_streams(mut self, n: u32) -> Self {
        self.incoming_uni = n;
        self
    }

    /// How many bidirectional streams a peer may have open to us at once (default
    /// [`DEFAULT_MAX_INCOMING_BIDI_STREAMS`]: none; raise it to use the connection's bidi
    /// streams directly).
    ///
    /// ```
    /// use std::time::Duration;
    /// use gossamer_sync::net::{Endpoint, Identity, TrustList};
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
    /// # let _to_client = tokio::time::timeout(Duration::from_secs(5), accepted).await???;
    /// let (_send, _recv) = tokio::time::timeout(Duration::from_secs(5), to_server.open_bi()).await??;
    /// // The one allowed stream is open: a second must wait.
    /// assert!(tokio::time::timeout(Duration::from_millis(100), to_server.open_bi()).await.is_err());
    /// # client.close();
    /// # server.close();
    /// # Ok(())
    /// # }
    /// ```
    pub fn max_incoming_bidi_streams(mut self, n: u32) -> Self {
        self.incoming_bidi = n;
        self
    }

    /// Binds a UDP socket at `addr` (port 0 picks a free port) and starts the endpoint.
    ///
    /// Must be called from within a tokio runtime ([`NetError::NoRuntime`] otherwise). Binding
    /// a wildcard address (`0.0.0.0`, `[::]`) accepts on every interface.
    ///
    /// ```
    /// use gossamer_sync::net::{Endpoint, Identity, NetError, TrustList};
    ///
    /// let loopback = "127.0.0.1:0".parse()?;
    /// let err = Endpoint::builder(Identity::generate()?, TrustList::new()).bind(loopback).unwrap_err();
    /// assert!(matches!(err, NetError::NoRuntime), "{err}");
    ///
    /// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// runtime.block_on(async {
    ///     let endpoint = Endpoint::builder(Identity::generate()?, TrustList::new()).bind(loopback)?;
    ///     let addr = endpoint.local_addr()?;
    ///     assert_ne!(addr.port(), 0);
    ///     // The port is taken now.
    ///     let err = Endpoint::builder(Identity::generate()?, TrustList::new()).bind(addr).unwrap_err();
    ///     assert!(matches!(err, NetError::Bind { addr: a, .. } if a == addr), "{err}");
    /// #   endpoint.close();
    ///     Ok::<(), Box<dyn std::error::Error>>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bind(self, addr: SocketAddr) -> Result<Endpoint, NetError> {
        if self.keep_alive >= self.idle_timeout {
            return Err(NetError::InvalidConfig {
                setting: "keep_alive_interval",
                reason: format!("{:?} is not shorter than the idle timeout {:?}", self.keep_alive, self.idle_timeout),
            });
        }
        if self.alpn.is_empty() || self.alpn.len() > 255 {
            return Err(NetError::InvalidConfig {
                setting: "alpn",
                reason: format!("must be 1 to 255 bytes, got {}", self.alpn.len()),
            });
        }
        let idle = IdleTimeout::try_from(self.idle_timeout)
            .map_err(|e| NetError::InvalidConfig { setting: "idle_timeout", reason: e.to_string() })?;
        let mut transport = TransportConfig::default();
        transport
            .keep_alive_interval(Some(self.keep_alive))
            .max_idle_timeout(Some(idle))
            .datagram_receive_buffer_size(Some(DATAGRAM_BUFFER))
            .datagram_send_buffer_size(DATAGRAM_BUFFER)
            .max_concurrent_uni_streams(VarInt::from_u32(self.incoming_uni))
            .max_concurrent_bidi_streams(VarInt::from_u32(self.incoming_bidi));

        let shared = Arc::new(Shared {
            identity: self.identity,
            trust: self.trust,
            alpn: self.alpn,
            transport: Arc::new(transport),
            handshake_timeout: self.handshake_timeout,
        });
        let runtime = quinn::default_runtime().ok_or(NetError::NoRuntime)?;
        let socket = std::net::UdpSocket::bind(addr).map_err(|source| NetError::Bind { addr, source })?;
        // Incoming connections are accepted with a per-connection configuration (see
        // `Accepting::handshake`); this default only lets quinn hand them to us.
        let default_server = shared.server_config(Arc::new(PinnedVerifier::for_clients(shared.trust.clone())))?;
        let inner = quinn::Endpoint::new(quinn::EndpointConfig::default(), Some(default_server), socket, runtime)
            .map_err(|source| NetError::Bind { addr, source })?;
        let endpoint = Endpoint { inner, shared };
        tracing::info!(
            node = %endpoint.node_id(),
            addr = ?endpoint.local_addr().ok(),
            "endpoint listening"
        );
        Ok(endpoint)
    }
}

/// What every connection of one endpoint shares.
struct Shared {
    identity: Identity,
    trust: TrustList,
    alpn: Vec<u8>,
    transport: Arc<TransportConfig>,
    handshake_timeout: Duration,
}

impl Shared {
    fn server_config(&self, verifier: Arc<PinnedVerifier>) -> Result<quinn::ServerConfig, NetError> {
        let crypto = tls::server_crypto(&self.identity, verifier, &self.alpn)?;
        let mut config = quinn::ServerConfig::with_crypto(crypto);
        config.transport_config(Arc::clone(&self.transport));
        Ok(config)
    }

    fn client_config(&self, verifier: Arc<PinnedVerifier>) -> Result<quinn::ClientConfig, NetError> {
        let crypto = tls::client_crypto(&self.identity, verifier, &self.alpn)?;
        let mut config = quinn::ClientConfig::new(crypto);
        config.transport_config(Arc::clone(&self.transport));
        Ok(config)
    }
}

/// This node's QUIC endpoint: dials peers and accepts them, over one UDP socket.
///
/// Both directions use mutual TLS: each side presents its [`Identity`]'s certificate and checks
/// that the other's [`NodeId`] is in the shared [`TrustList`] (see [`Self::connect`] and
/// [`Accepting::handshake`]). The same connections carry datagrams (for SWIM).
///
/// Cloning is cheap; clones share the socket.
///
/// Two nodes on loopback that trust each other, exchanging one frame:
///
/// ```
/// use gossamer_sync::net::{read_frame, write_frame, Endpoint, Identity, TrustList};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let loopback = "127.0.0.1:0".parse()?;
/// // A node only takes unidirectional streams; this echo uses one bidi stream.
/// let server = Endpoint::builder(Identity::generate()?, TrustList::new()).max_incoming_bidi_streams(1).bind(loopback)?;
/// let client = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
/// // Each side pins the other's id (in real use: from a ticket the user pasted).
/// server.trust().add(client.node_id());
/// client.trust().add(server.node_id());
///
/// let accepting = server.clone();
/// let echo = tokio::spawn(async move {
///     let connection = accepting.accept().await.expect("open").handshake().await?;
///     let (mut send, mut recv) = connection.accept_bi().await?;
///     let frame = read_frame(&mut recv, 1024).await?.unwrap_or_default();
///     write_frame(&mut send, &frame).await?;
///     send.finish()?;
///     connection.closed().await; // until the client has read the reply
///     Ok::<_, gossamer_sync::net::NetError>(connection.peer())
/// });
///
/// let connection = client.connect(server.local_addr()?, server.node_id()).await?;
/// assert_eq!(connection.peer(), server.node_id());
/// let (mut send, mut recv) = connection.open_bi().await?;
/// write_frame(&mut send, b"ping").await?;
/// send.finish()?;
/// assert_eq!(read_frame(&mut recv, 1024).await?, Some(b"ping".to_vec()));
/// connection.close(gossamer_sync::net::CloseCode::Done, "bye");
/// assert_eq!(echo.await??, client.node_id());
/// # Ok(())
/// # }
/// ```
///
/// A long-running node accepts in a loop and handshakes each peer in its own task:
///
/// ```no_run
/// use gossamer_sync::net::{Endpoint, Identity, TrustList};
///
/// # async fn example(data_dir: &std::path::Path) -> Result<(), gossamer_sync::net::NetError> {
/// let trust = TrustList::new();
/// let endpoint = Endpoint::builder(Identity::load_or_generate(data_dir)?, trust.clone())
///     .bind("0.0.0.0:4433".parse().unwrap())?;
/// while let Some(incoming) = endpoint.accept().await {
///     tokio::spawn(async move {
///         match incoming.handshake().await {
///             Ok(connection) => println!("{} connected", connection.peer()),
///             Err(e) => eprintln!("refused: {e}"),
///         }
///     });
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Endpoint {
    inner: quinn::Endpoint,
    shared: Arc<Shared>,
}

impl Endpoint {
    /// Settings for an endpoint with this identity and trust list; finish with
    /// [`EndpointBuilder::bind`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use gossamer_sync::net::{Endpoint, Identity, TrustList};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let identity = Identity::generate()?;
    /// let node = identity.node_id();
    /// let trust = TrustList::new();
    /// let endpoint = Endpoint::builder(identity, trust.clone())
    ///     .idle_timeout(Duration::from_secs(60))
    ///     .bind("127.0.0.1:0".parse()?)?;
    /// assert_eq!(endpoint.node_id(), node);
    /// # endpoint.close();
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(identity: Identity, trust: TrustList) -> EndpointBuilder {
        EndpointBuilder {
            identity,
            trust,
            alpn: ALPN.to_vec(),
            keep_alive: DEFAULT_KEEP_ALIVE,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            incoming_uni: DEFAULT_MAX_INCOMING_UNI_STREAMS,
            incoming_bidi: DEFAULT_MAX_INCOMING_BIDI_STREAMS,
        }
    }

    /// An endpoint at `addr` with default settings.
    ///
    /// ```
    /// use gossamer_sync::net::{Endpoint, Identity, TrustList};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let endpoint = Endpoint::bind(Identity::generate()?, TrustList::new(), "127.0.0.1:0".parse()?)?;
    /// let addr = endpoint.local_addr()?;
    /// assert!(addr.ip().is_loopback());
    /// assert_ne!(addr.port(), 0, "port 0 picks a free port");
    /// # endpoint.close();
    /// # Ok(())
    /// # }
    /// ```
    pub fn bind(identity: Identity, trust: TrustList, addr: SocketAddr) -> Result<Self, NetError> {
        Self::builder(identity, trust).bind(addr)
    }

    /// This node's id.
    ///
    /// A node keeps its id across restarts when its identity lives in its data directory:
    ///
    /// ```
    /// use gossamer_sync::net::{Endpoint, Identity, TrustList};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let data_dir = tempfile::tempdir()?;
    /// let loopback = "127.0.0.1:0".parse()?;
    /// let first = Endpoint::bind(Identity::load_or_generate(data_dir.path())?, TrustList::new(), loopback)?;
    /// first.close();
    ///
    /// let restarted = Endpoint::bind(Identity::load_or_generate(data_dir.path())?, TrustList::new(), loopback)?;
    /// assert_eq!(restarted.node_id(), first.node_id());
    /// # restarted.close();
    /// # Ok(())
    /// # }
    /// ```
    pub fn node_id(&self) -> NodeId {
        self.shared.identity.node_id()
    }

    /// This node's identity.
    ///
    /// The certificate the endpoint presents in handshakes, from which peers derive its id:
    ///
    /// ```
    /// use gossamer_sync::net::{Endpoint, Identity, NodeId, TrustList};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let endpoint = Endpoint::bind(Identity::generate()?, TrustList::new(), "127.0.0.1:0".parse()?)?;
    /// let certificate = endpoint.identity().certificate();
    /// assert_eq!(NodeId::from_certificate(certificate)?, endpoint.node_id());
    /// # endpoint.close();
    /// # Ok(())
    /// # }
    /// ```
    pub fn identity(&self) -> &Identity {
        &self.shared.identity
    }

    /// The trust list consulted by every handshake (shared with the caller's clones).
    ///
    /// ```
    /// use gossamer_sync::net::{Endpoint, Identity, TrustList};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let trust = TrustList::new();
    /// let endpoint = Endpoint::bind(Identity::generate()?, trust.clone(), "127.0.0.1:0".parse()?)?;
    /// let peer = Identity::generate()?.node_id();
    ///
    /// // The caller's clone and the endpoint's list are one list.
    /// trust.add(peer);
    /// assert!(endpoint.trust().contains(&peer));
    /// endpoint.trust().remove(&peer);
    /// assert!(trust.is_empty());
    /// # endpoint.close();
    /// # Ok(())
    /// # }
    /// ```
    pub fn trust(&self) -> &TrustList {
        &self.shared.trust
    }

    /// The address the socket is bound to (with the real port if bound to port 0).
    ///
    /// Bound to every interface, the endpoint is reachable on loopback at its real port:
    ///
    /// ```
    /// use std::net::{Ipv4Addr, SocketAddr};
    /// use gossamer_sync::net::{Endpoint, Identity, TrustList};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let endpoint = Endpoint::bind(Identity::generate()?, TrustList::new(), "0.0.0.0:0".parse()?)?;
    /// let addr = endpoint.local_addr()?;
    /// assert!(addr.ip().is_unspecified());
    /// assert_ne!(addr.port(), 0);
    /// let reachable = SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port()));
    /// # let trust = [endpoint.node_id()].into_iter().collect();
    /// # let client = Endpoint::bind(Identity::generate()?, trust, "127.0.0.1:0".parse()?)?;
    /// # endpoint.trust().add(client.node_id());
    /// # let accepting = endpoint.clone();
    /// # let accepted = tokio::spawn(async move { accepting.accept().await.expect("open").handshake().await });
    /// let connection = client.connect(reachable, endpoint.node_id()).await?;
    /// assert_eq!(connection.peer(), endpoint.node_id());
    /// # tokio::time::timeout(std::time::Duration::from_secs(5), accepted).await???;
    /// # client.close();
    /// # endpoint.close();
    /// # Ok(())
    /// # }
    /// ```
    pub fn local_addr(&self) -> Result<SocketAddr, NetError> {
        self.inner.local_addr().map_err(NetError::LocalAddr)
    }

    /// The ticket for this node at its bound address. If the endpoint is bound to a wildcard
    /// address, build the ticket with [`Ticket::new`] and an address peers can reach.
    ///
    /// The user copies one node's ticket to the other, which trusts the node named in it and dials:
    ///
    /// ```
    /// use std::time::Duration;
    /// use gossamer_sync::net::{Endpoint, Identity, Ticket, TrustList};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let loopback = "127.0.0.1:0".parse()?;
    /// let server = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// let client = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// server.trust().add(client.node_id());
    ///
    /// let text = server.ticket()?.to_string();
    /// assert!(text.starts_with(&format!("gossamer://{}@127.0.0.1:", server.node_id())), "{text}");
    /// let ticket: Ticket = text.parse()?;
    /// client.trust().add(ticket.node);
    /// # let accepting = server.clone();
    /// # let accepted = tokio::spawn(async move { accepting.accept().await.expect("open").handshake().await });
    /// let connection = client.connect_ticket(&ticket).await?;
    /// assert_eq!(connection.peer(), server.node_id());
    /// # tokio::time::timeout(Duration::from_secs(5), accepted).await???;
    /// # client.close();
    /// # server.close();
    /// # Ok(())
    /// # }
    /// ```
    pub fn ticket(&self) -> Result<Ticket, NetError> {
        Ok(Ticket::new(self.node_id(), self.local_addr()?))
    }

    /// Dials `addr`, which must be node `expected`, and waits until both sides have accepted.
    ///
    /// Fails without sending anything if `expected` is not in the trust list
    /// ([`NetError::UntrustedPeer`]). Fails with [`NetError::UnexpectedPeer`] if another node
    /// answers, and with [`NetError::RefusedByPeer`] if the peer does not trust this node.
    /// Bounded by the handshake timeout.
    ///
    /// Dialling a node that is not trusted fails at once; dialling a trusted id at an address where
    /// another node answers is refused during the handshake:
    ///
    /// ```
    /// use std::time::Duration;
    /// use gossamer_sync::net::{Endpoint, Identity, NetError, TrustList};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let loopback = "127.0.0.1:0".parse()?;
    /// let server = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// let client = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// server.trust().add(client.node_id());
    /// let (addr, limit) = (server.local_addr()?, Duration::from_secs(5));
    ///
    /// let err = client.connect(addr, server.node_id()).await.unwrap_err();
    /// assert!(matches!(err, NetError::UntrustedPeer { node } if node == server.node_id()), "{err}");
    ///
    /// // Another node's id, trusted, but it is not the one at `addr`.
    /// let other = Identity::generate()?.node_id();
    /// client.trust().add(other);
    /// # let accepting = server.clone();
    /// # let accepted = tokio::spawn(async move { accepting.accept().await.expect("open").handshake().await });
    /// let err = client.connect(addr, other).await.unwrap_err();
    /// assert!(
    ///     matches!(err, NetError::UnexpectedPeer { expected, actual }
    ///         if expected == other && actual == server.node_id()),
    ///     "{err}"
    /// );
    /// # assert!(tokio::time::timeout(limit, accepted).await??.is_err());
    ///
    /// client.trust().add(server.node_id());
    /// # let accepting = server.clone();
    /// # let accepted = tokio::spawn(async move { accepting.accept().await.expect("open").handshake().await });
    /// let connection = client.connect(addr, server.node_id()).await?;
    /// assert_eq!(connection.peer(), server.node_id());
    /// # tokio::time::timeout(limit, accepted).await???;
    /// # client.close();
    /// # server.close();
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(&self, addr: SocketAddr, expected: NodeId) -> Result<PeerConnection, NetError> {
        if !self.shared.trust.contains(&expected) {
            return Err(NetError::UntrustedPeer { node: expected });
        }
        let verifier = Arc::new(PinnedVerifier::for_server(self.shared.trust.clone(), expected));
        let config = self.shared.client_config(Arc::clone(&verifier))?;
        // The server name is not checked (the verifier pins the key), but it must be a valid
        // DNS name; a node id in base32 is one, and it reads well in packet captures.
        let connecting = self
            .inner
            .connect_with(config, addr, &expected.to_string())
            .map_err(|source| NetError::Connect { addr, source })?;
        let handshake = async {
            let connection = connecting
                .await
                .map_err(|e| verifier.take_rejection().unwrap_or_else(|| NetError::from_connection(e)))?;
            await_confirmation(&connection).await?;
            PeerConnection::from_verified(connection)
        };
        let timeout = self.shared.handshake_timeout;
        let connection = tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|_| NetError::HandshakeTimeout { addr, timeout })??;
        // The verifier already insisted on `expected`; this guards the guard.
        if connection.peer() != expected {
            connection.close(super::CloseCode::ProtocolViolation, "unexpected node");
            return Err(NetError::UnexpectedPeer { expected, actual: connection.peer().node_id() });
        }
        tracing::debug!(peer = %expected, %addr, "connected");
        Ok(connection)
    }

    /// Dials the node named by `ticket`. The ticket's node must already be trusted: adding it
    /// to the trust list is the user's decision, not a side effect of dialling.
    ///
    /// A pasted ticket is not enough: the user must trust its node first.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gossamer_sync::net::{Endpoint, Identity, NetError, Ticket, TrustList};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let loopback = "127.0.0.1:0".parse()?;
    /// let server = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// let client = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// # server.trust().add(client.node_id());
    /// let ticket: Ticket = server.ticket()?.to_string().parse()?;
    ///
    /// let err = client.connect_ticket(&ticket).await.unwrap_err();
    /// assert!(matches!(err, NetError::UntrustedPeer { node } if node == ticket.node), "{err}");
    /// assert!(client.trust().is_empty(), "dialling did not trust the node");
    ///
    /// client.trust().add(ticket.node);
    /// # let accepting = server.clone();
    /// # let accepted = tokio::spawn(async move { accepting.accept().await.expect("open").handshake().await });
    /// let connection = client.connect_ticket(&ticket).await?;
    /// assert_eq!(connection.peer(), ticket.node);
    /// assert_eq!(connection.remote_addr(), ticket.addr);
    /// # tokio::time::timeout(Duration::from_secs(5), accepted).await???;
    /// # client.close();
    /// # server.close();
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect_ticket(&self, ticket: &Ticket) -> Result<PeerConnection, NetError> {
        self.connect(ticket.addr, ticket.node).await
    }

    /// Waits for the next incoming connection attempt; `None` once the endpoint is closed.
    ///
    /// Run [`Accepting::handshake`] on each, typically in its own task, so a slow peer does not
    /// delay the others.
    ///
    /// A node's accept loop, which ends when the endpoint is closed:
    ///
    /// ```
    /// use std::time::Duration;
    /// use gossamer_sync::net::{Endpoint, Identity, NetError, TrustList};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let loopback = "127.0.0.1:0".parse()?;
    /// let server = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// let client = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// # server.trust().add(client.node_id());
    /// # client.trust().add(server.node_id());
    /// let accepting = server.clone();
    /// let accept_loop = tokio::spawn(async move {
    ///     // Kept, not dropped: dropping the last handle to a connection closes it.
    ///     let mut connections = Vec::new();
    ///     while let Some(incoming) = accepting.accept().await {
    ///         connections.push(incoming.handshake().await?);
    ///     }
    ///     Ok::<_, NetError>(connections)
    /// });
    /// let _connection = client.connect(server.local_addr()?, server.node_id()).await?;
    ///
    /// server.close();
    /// let connections = tokio::time::timeout(Duration::from_secs(5), accept_loop).await???;
    /// assert_eq!(connections.len(), 1);
    /// assert_eq!(connections[0].peer(), client.node_id());
    /// assert!(tokio::time::timeout(Duration::from_secs(5), server.accept()).await?.is_none());
    /// # client.close();
    /// # server.close();
    /// # Ok(())
    /// # }
    /// ```
    pub async fn accept(&self) -> Option<Accepting> {
        let incoming = self.inner.accept().await?;
        Some(Accepting { incoming, shared: Arc::clone(&self.shared) })
    }

    /// Closes every connection and stops accepting. Call [`wait_idle`](Self::wait_idle) before
    /// exiting so peers learn of the close.
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
    /// server.close();
    /// assert!(server.accept().await.is_none(), "no longer accepting");
    /// tokio::time::timeout(limit, server.wait_idle()).await?;
    ///
    /// // The client's connection ends with the orderly close code.
    /// let why = tokio::time::timeout(limit, to_server.closed()).await?;
    /// assert!(
    ///     matches!(&why, NetError::Connection(quinn::ConnectionError::ApplicationClosed(close))
    ///         if close.error_code == quinn::VarInt::from_u32(CloseCode::Done.code())),
    ///     "{why}"
    /// );
    /// # drop(to_client);
    /// # client.close();
    /// # server.close();
    /// # Ok(())
    /// # }
    /// ```
    pub fn close(&self) {
        self.inner.close(VarInt::from_u32(super::CloseCode::Done.code()), b"endpoint closed");
    }

    /// Waits until every connection is closed and the close has been sent.
    ///
    /// A node shutting down: once `wait_idle` returns, its connections are closed and the peers have
    /// been told why:
    ///
    /// ```
    /// use std::time::Duration;
    /// use gossamer_sync::net::NetError;
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
    /// server.close();
    /// tokio::time::timeout(limit, server.wait_idle()).await?;
    /// assert!(matches!(to_client.connection().close_reason(), Some(quinn::ConnectionError::LocallyClosed)));
    ///
    /// let why = tokio::time::timeout(limit, to_server.closed()).await?;
    /// assert!(
    ///     matches!(&why, NetError::Connection(quinn::ConnectionError::ApplicationClosed(close))
    ///         if &close.reason[..] == b"endpoint closed"),
    ///     "{why}"
    /// );
    /// # client.close();
    /// # server.close();
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_idle(&self) {
        self.inner.wait_idle().await;
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("node_id", &self.node_id())
            .field("local_addr", &self.local_addr().ok())
            .finish_non_exhaustive()
    }
}

/// An incoming connection attempt, from [`Endpoint::accept`].
///
/// A stranger, a node the server does not trust, is refused during the handshake, and learns it
/// at once:
///
/// ```
/// use std::time::Duration;
/// use gossamer_sync::net::{Accepting, Endpoint, Identity, NetError, TrustList};
/// use rustls::AlertDescription;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let loopback = "127.0.0.1:0".parse()?;
/// let server = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
/// let stranger = Endpoint::bind(Identity::generate()?, [server.node_id()].into_iter().collect(), loopback)?;
///
/// let accepting = server.clone();
/// let accepted = tokio::spawn(async move {
///     let incoming: Accepting = accepting.accept().await.expect("endpoint open");
///     incoming.handshake().await
/// });
/// let err = stranger.connect(server.local_addr()?, server.node_id()).await.unwrap_err();
/// assert!(matches!(err, NetError::RefusedByPeer { alert: AlertDescription::AccessDenied }), "{err}");
///
/// let err = tokio::time::timeout(Duration::from_secs(5), accepted).await??.unwrap_err();
/// assert!(matches!(err, NetError::UntrustedPeer { node } if node == stranger.node_id()), "{err}");
/// # stranger.close();
/// # server.close();
/// # Ok(())
/// # }
/// ```
#[must_use = "an incoming connection is refused when dropped; call handshake()"]
pub struct Accepting {
    incoming: quinn::Incoming,
    shared: Arc<Shared>,
}

impl Accepting {
    /// The address the attempt comes from (not yet authenticated).
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
    /// let accepted = tokio::spawn(async move {
    ///     let incoming = accepting.accept().await.expect("endpoint open");
    ///     // Known before any check: for logs, or to turn away an address that tries too often.
    ///     let from = incoming.remote_addr();
    ///     (from, incoming.handshake().await)
    /// });
    /// let _connection = client.connect(server.local_addr()?, server.node_id()).await?;
    ///
    /// let (from, handshake) = tokio::time::timeout(Duration::from_secs(5), accepted).await??;
    /// assert_eq!(from, client.local_addr()?);
    /// assert_eq!(handshake?.peer(), client.node_id());
    /// # client.close();
    /// # server.close();
    /// # Ok(())
    /// # }
    /// ```
    pub fn remote_addr(&self) -> SocketAddr {
        self.incoming.remote_address()
    }

    /// Runs the handshake: the client must present a certificate whose [`NodeId`] is in the
    /// trust list ([`NetError::UntrustedPeer`] otherwise, and the client is told
    /// `access_denied`). On success the client is sent its confirmation and the connection is
    /// returned. Bounded by the handshake timeout.
    ///
    /// The accepted connection names the client by its verified id. The trust list is read at each
    /// handshake, so a node removed from it cannot connect again:
    ///
    /// ```
    /// use std::time::Duration;
    /// use gossamer_sync::net::{Endpoint, Identity, NetError, TrustList};
    /// use rustls::AlertDescription;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let loopback = "127.0.0.1:0".parse()?;
    /// let server = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// let client = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// server.trust().add(client.node_id());
    /// client.trust().add(server.node_id());
    /// let limit = Duration::from_secs(5);
    /// let accept_one = |server: &Endpoint| {
    ///     let accepting = server.clone();
    ///     tokio::spawn(async move { accepting.accept().await.expect("endpoint open").handshake().await })
    /// };
    ///
    /// let accepted = accept_one(&server);
    /// let _to_server = client.connect(server.local_addr()?, server.node_id()).await?;
    /// let to_client = tokio::time::timeout(limit, accepted).await???;
    /// assert_eq!(to_client.peer(), client.node_id());
    ///
    /// server.trust().remove(&client.node_id());
    /// let accepted = accept_one(&server);
    /// let err = client.connect(server.local_addr()?, server.node_id()).await.unwrap_err();
    /// assert!(matches!(err, NetError::RefusedByPeer { alert: AlertDescription::AccessDenied }), "{err}");
    /// let err = tokio::time::timeout(limit, accepted).await??.unwrap_err();
    /// assert!(matches!(err, NetError::UntrustedPeer { node } if node == client.node_id()), "{err}");
    /// # client.close();
    /// # server.close();
    /// # Ok(())
    /// # }
    /// ```
    pub async fn handshake(self) -> Result<PeerConnection, NetError> {
        let addr = self.incoming.remote_address();
        let verifier = Arc::new(PinnedVerifier::for_clients(self.shared.trust.clone()));
        let config = self.shared.server_config(Arc::clone(&verifier))?;
        let connecting = self.incoming.accept_with(Arc::new(config)).map_err(NetError::from_connection)?;
        let handshake = async {
            let connection = connecting
                .await
                .map_err(|e| verifier.take_rejection().unwrap_or_else(|| NetError::from_connection(e)))?;
            let connection = PeerConnection::from_verified(connection)?;
            confirm(&connection).await?;
            Ok::<_, NetError>(connection)
        };
        let timeout = self.shared.handshake_timeout;
        let connection = tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|_| NetError::HandshakeTimeout { addr, timeout })??;
        tracing::debug!(peer = %connection.peer(), %addr, "accepted");
        Ok(connection)
    }

    /// Refuses the attempt without a handshake (for example, when the node is overloaded).
    ///
    /// The dialling side sees QUIC's `CONNECTION_REFUSED`, even though both sides trust each other:
    ///
    /// ```
    /// use std::time::Duration;
    /// use gossamer_sync::net::NetError;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use gossamer_sync::net::{Endpoint, Identity, TrustList};
    /// # let loopback = "127.0.0.1:0".parse()?;
    /// # let server = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// # let client = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
    /// # server.trust().add(client.node_id());
    /// # client.trust().add(server.node_id());
    /// let refusing = server.clone();
    /// let refused = tokio::spawn(async move { refusing.accept().await.expect("endpoint open").refuse() });
    ///
    /// let err = client.connect(server.local_addr()?, server.node_id()).await.unwrap_err();
    /// assert!(
    ///     matches!(&err, NetError::Connection(quinn::ConnectionError::ConnectionClosed(close))
    ///         if close.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED),
    ///     "{err}"
    /// );
    /// tokio::time::timeout(Duration::from_secs(5), refused).await??;
    /// # client.close();
    /// # server.close();
    /// # Ok(())
    /// # }
    /// ```
    pub fn refuse(self) {
        self.incoming.refuse();
    }
}

impl fmt::Debug for Accepting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accepting").field("remote_addr", &self.remote_addr()).finish_non_exhaustive()
    }
}

// The confirmation. In TLS 1.3 the client finishes its handshake before the server has seen
// the client's certificate, so a client that the server refuses would otherwise believe it is
// connected until its first read fails. The server therefore opens one unidirectional stream
// and finishes it, empty, once it has accepted the client; `connect` returns only after
// receiving it (or the server's refusal). It is the first stream the server opens, so it is the
// first one the client accepts, before the caller can see any other.

/// Server side: tells the client it was accepted.
async fn confirm(connection: &PeerConnection) -> Result<(), NetError> {
    let mut stream = connection.connection().open_uni().await.map_err(NetError::from_connection)?;
    stream.finish()?;
    Ok(())
}

/// Client side: waits until the server accepted us.
async fn await_confirmation(connection: &quinn::Connection) -> Result<(), NetError> {
    let mut stream = connection.accept_uni().await.map_err(NetError::from_connection)?;
    match stream.read_to_end(0).await {
        Ok(_) => Ok(()),
        Err(quinn::ReadToEndError::Read(quinn::ReadError::ConnectionLost(e))) => Err(NetError::from_connection(e)),
        Err(e) => {
            connection.close(VarInt::from_u32(super::CloseCode::ProtocolViolation.code()), b"bad confirmation stream");
            Err(NetError::NotConfirmed { reason: e.to_string() })
        }
    }
}
