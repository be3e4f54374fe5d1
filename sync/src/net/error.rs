//! The error type of the `net` layer.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rustls::AlertDescription;

use super::{FrameError, NodeId, TicketError};

/// Everything that can go wrong in the `net` layer.
///
/// Errors about one peer ([`UntrustedPeer`](Self::UntrustedPeer),
/// [`UnexpectedPeer`](Self::UnexpectedPeer), [`RefusedByPeer`](Self::RefusedByPeer),
/// [`Connection`](Self::Connection), [`Frame`](Self::Frame), ...) concern that connection only;
/// the endpoint keeps serving others.
///
/// ```
/// use std::time::Duration;
/// use gossamer_sync::net::{Endpoint, Identity, NetError, TrustList};
///
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// # rt.block_on(async {
/// let loopback = "127.0.0.1:0".parse()?;
/// let server = Endpoint::bind(Identity::generate()?, TrustList::new(), loopback)?;
/// let accepting = server.clone();
/// let accepted = tokio::spawn(async move { accepting.accept().await.unwrap().handshake().await });
///
/// // The client trusts the server, but the server does not trust the client.
/// let client = Endpoint::bind(Identity::generate()?, [server.node_id()].into_iter().collect(), loopback)?;
/// let limit = Duration::from_secs(10);
/// let dial = client.connect(server.local_addr()?, server.node_id());
/// let refused = tokio::time::timeout(limit, dial).await?.unwrap_err();
/// assert!(matches!(refused, NetError::RefusedByPeer { .. }), "{refused}");
/// let untrusted = tokio::time::timeout(limit, accepted).await??.unwrap_err();
/// assert!(matches!(untrusted, NetError::UntrustedPeer { node } if node == client.node_id()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The endpoint was bound outside a tokio runtime.
    #[error("no tokio runtime: bind the endpoint from within a tokio runtime")]
    NoRuntime,

    /// The UDP socket could not be bound.
    #[error("cannot bind UDP socket to {addr}: {source}")]
    Bind {
        /// The requested address.
        addr: SocketAddr,
        /// Why binding failed.
        source: io::Error,
    },

    /// The endpoint's socket address could not be read.
    #[error("cannot read the endpoint's local address: {0}")]
    LocalAddr(#[source] io::Error),

    /// A setting is out of range for QUIC.
    #[error("invalid endpoint setting {setting}: {reason}")]
    InvalidConfig {
        /// The setting's name.
        setting: &'static str,
        /// What is wrong with its value.
        reason: String,
    },

    /// An identity file or its directory could not be read or written.
    #[error("identity file {path}: {source}")]
    IdentityIo {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },

    /// An identity file exists but does not hold what it should.
    #[error("identity file {path} is malformed: {reason}")]
    IdentityMalformed {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The stored certificate is not for the stored key.
    #[error("certificate {cert_path} does not hold the public key of {key_path}")]
    IdentityMismatch {
        /// The certificate file.
        cert_path: PathBuf,
        /// The key file.
        key_path: PathBuf,
    },

    /// Generating a key pair or certificate failed.
    #[error("cannot generate the node certificate: {0}")]
    Certificate(#[from] rcgen::Error),

    /// The TLS configuration could not be built (for example, a key rustls cannot use).
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),

    /// The QUIC crypto configuration could not be built.
    #[error("QUIC crypto configuration: {0}")]
    QuicCrypto(#[from] quinn::crypto::rustls::NoInitialCipherSuite),

    /// Bytes that should be an X.509 certificate are not one.
    #[error("malformed certificate: {0}")]
    BadCertificate(#[source] rustls::Error),

    /// We refused the peer: its node id is not in our trust list.
    #[error("peer {node} is not in the trust list")]
    UntrustedPeer {
        /// The peer's (proven-by-key) node id.
        node: NodeId,
    },

    /// We dialled one node and a different one answered.
    #[error("expected node {expected} at the address, but node {actual} answered")]
    UnexpectedPeer {
        /// The node we dialled.
        expected: NodeId,
        /// The node whose certificate was presented.
        actual: NodeId,
    },

    /// The peer aborted the TLS handshake: most often it does not trust this node
    /// (alert `AccessDenied`).
    #[error("peer refused the handshake with TLS alert {alert:?}; does it trust this node?")]
    RefusedByPeer {
        /// The alert the peer sent.
        alert: AlertDescription,
    },

    /// The accepting side did not confirm the connection the way this module does (it sent
    /// data on, or reset, the confirmation stream): it is not a compatible gossamer node.
    #[error("peer did not confirm the connection: {reason}")]
    NotConfirmed {
        /// What it did instead.
        reason: String,
    },

    /// The peer completed a handshake without a certificate (cannot happen with this module's
    /// configuration; reported rather than assumed).
    #[error("peer presented no certificate")]
    MissingPeerIdentity,

    /// A connection attempt could not be started (bad address, endpoint closed, ...).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address dialled.
        addr: SocketAddr,
        /// Why quinn refused to start.
        source: quinn::ConnectError,
    },

    /// The handshake did not finish in time.
    #[error("handshake with {addr} did not finish within {timeout:?}")]
    HandshakeTimeout {
        /// The peer's address.
        addr: SocketAddr,
        /// The limit that expired.
        timeout: Duration,
    },

    /// The connection failed or was closed.
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),

    /// A stream could not be finished (it was already finished or reset).
    #[error("stream: {0}")]
    ClosedStream(#[from] quinn::ClosedStream),

    /// A frame could not be read or written.
    #[error(transparent)]
    Frame(#[from] FrameError),

    /// A ticket could not be parsed.
    #[error(transparent)]
    Ticket(#[from] TicketError),
}

/// QUIC carries a TLS alert as the transport error code `0x100 + alert`.
const CRYPTO_ERROR_BASE: u64 = 0x100;

impl NetError {
    /// Classifies why a connection ended: a TLS alert from the peer becomes
    /// [`NetError::RefusedByPeer`], anything else [`NetError::Connection`].
    pub(super) fn from_connection(err: quinn::ConnectionError) -> Self {
        if let quinn::ConnectionError::ConnectionClosed(close) = &err {
            let code = u64::from(close.error_code);
            if (CRYPTO_ERROR_BASE..CRYPTO_ERROR_BASE + 0x100).contains(&code) {
                // In range, so the difference fits in a byte.
                let alert = AlertDescription::from((code - CRYPTO_ERROR_BASE) as u8);
                return Self::RefusedByPeer { alert };
            }
        }
        Self::Connection(err)
    }
}
