//! The `net` layer over real QUIC connections on loopback: mutual trust, refusals, frames,
//! datagrams, persisted identities, tickets.
//!
//! Every test is bounded by `within` (a generous limit that only catches hangs); none asserts
//! how fast anything is.

use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use gossamer_sync::net::{
    CERT_FILE, CloseCode, DEFAULT_MAX_FRAME_LEN, Endpoint, FrameError, Identity, KEY_FILE, MIN_DATAGRAM_SIZE, NetError,
    NodeId, PeerConnection, Ticket, TrustList, read_frame, write_frame,
};
use rustls::AlertDescription;
use tokio::task::JoinHandle;

const LIMIT: Duration = Duration::from_secs(30);

async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(LIMIT, future).await.expect("test did not finish in time (hang?)")
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// An endpoint on loopback with a fresh identity that trusts `trusted`.
fn endpoint(trusted: &[NodeId]) -> Endpoint {
    endpoint_at(loopback(), trusted)
}

fn endpoint_at(addr: SocketAddr, trusted: &[NodeId]) -> Endpoint {
    let trust: TrustList = trusted.iter().copied().collect();
    // These tests talk over bidi streams, which a node's endpoint refuses by default.
    Endpoint::builder(Identity::generate().unwrap(), trust).max_incoming_bidi_streams(4).bind(addr).unwrap()
}

/// Accepts one connection attempt on `server` and runs its handshake in a task.
fn accept_one(server: &Endpoint) -> JoinHandle<Result<PeerConnection, NetError>> {
    let server = server.clone();
    tokio::spawn(async move {
        let incoming = server.accept().await.expect("endpoint open");
        incoming.handshake().await
    })
}

#[tokio::test]
async fn mutual_trust_handshake_and_frame_round_trip() {
    within(async {
        let server = endpoint(&[]);
        let client = endpoint(&[server.node_id()]);
        server.trust().add(client.node_id());
        let addr = server.local_addr().unwrap();

        let accepted = accept_one(&server);
        let to_server = client.connect(addr, server.node_id()).await.unwrap();
        let to_client = accepted.await.unwrap().unwrap();
        assert_eq!(to_server.peer(), server.node_id());
        assert_eq!(to_client.peer(), client.node_id());
        assert_eq!(to_client.peer().replica_id(), client.node_id().replica_id());

        let echo = tokio::spawn(async move {
            let (mut send, mut recv) = to_client.accept_bi().await.unwrap();
            let mut frames = Vec::new();
            while let Some(frame) = read_frame(&mut recv, DEFAULT_MAX_FRAME_LEN).await.unwrap() {
                frames.push(frame);
            }
            for frame in frames.iter().rev() {
                write_frame(&mut send, frame).await.unwrap();
            }
            send.finish().unwrap();
            // Keep the connection until the client has read everything.
            to_client.closed().await
        });

        let big = vec![0x5a; 1024 * 1024];
        let (mut send, mut recv) = to_server.open_bi().await.unwrap();
        write_frame(&mut send, b"first").await.unwrap();
        write_frame(&mut send, &big).await.unwrap();
        write_frame(&mut send, b"").await.unwrap();
        send.finish().unwrap();
        let mut replies = Vec::new();
        while let Some(frame) = read_frame(&mut recv, DEFAULT_MAX_FRAME_LEN).await.unwrap() {
            replies.push(frame);
        }
        assert_eq!(replies, vec![b"".to_vec(), big, b"first".to_vec()]);

        to_server.close(CloseCode::Done, "bye");
        let reason = echo.await.unwrap();
        assert!(
            matches!(&reason, NetError::Connection(quinn::ConnectionError::ApplicationClosed(c))
                if c.error_code == quinn::VarInt::from_u32(0) && &c.reason[..] == b"bye"),
            "{reason:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn datagrams_are_enabled_and_fit_the_minimum_size() {
    within(async {
        let server = endpoint(&[]);
        let client = endpoint(&[server.node_id()]);
        server.trust().add(client.node_id());
        let accepted = accept_one(&server);
        let to_server = client.connect(server.local_addr().unwrap(), server.node_id()).await.unwrap();
        let to_client = accepted.await.unwrap().unwrap();

        let max = to_server.max_datagram_size().expect("datagrams enabled");
        assert!(max >= MIN_DATAGRAM_SIZE, "{max} < {MIN_DATAGRAM_SIZE}");
        let payload = bytes::Bytes::from(vec![7u8; MIN_DATAGRAM_SIZE]);
        // Datagrams are unreliable even on loopback in principle: resend until one arrives.
        let received = loop {
            to_server.connection().send_datagram(payload.clone()).unwrap();
            let read = to_client.connection().read_datagram();
            if let Ok(got) = tokio::time::timeout(Duration::from_millis(500), read).await {
                break got.unwrap();
            }
        };
        assert_eq!(received, payload);
    })
    .await;
}

#[tokio::test]
async fn server_refuses_untrusted_client() {
    within(async {
        let server = endpoint(&[]);
        let client = endpoint(&[server.node_id()]);
        let accepted = accept_one(&server);

        let err = client.connect(server.local_addr().unwrap(), server.node_id()).await.unwrap_err();
        assert!(matches!(err, NetError::RefusedByPeer { alert: AlertDescription::AccessDenied }), "{err:?}");
        let err = accepted.await.unwrap().unwrap_err();
        assert!(matches!(err, NetError::UntrustedPeer { node } if node == client.node_id()), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn client_refuses_server_that_is_not_the_expected_node() {
    within(async {
        let impostor = endpoint(&[]);
        let expected = Identity::generate().unwrap().node_id();
        // The client trusts both; trust alone is not enough when dialling a particular node.
        let client = endpoint(&[expected, impostor.node_id()]);
        impostor.trust().add(client.node_id());
        let accepted = accept_one(&impostor);

        let err = client.connect(impostor.local_addr().unwrap(), expected).await.unwrap_err();
        assert!(
            matches!(err, NetError::UnexpectedPeer { expected: e, actual: a }
                if e == expected && a == impostor.node_id()),
            "{err:?}"
        );
        let err = accepted.await.unwrap().unwrap_err();
        assert!(matches!(err, NetError::RefusedByPeer { alert: AlertDescription::AccessDenied }), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn client_does_not_dial_an_untrusted_node() {
    within(async {
        let server = endpoint(&[]);
        let client = endpoint(&[]);
        server.trust().add(client.node_id());
        let err = client.connect(server.local_addr().unwrap(), server.node_id()).await.unwrap_err();
        assert!(matches!(err, NetError::UntrustedPeer { node } if node == server.node_id()), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn trust_changes_apply_to_the_next_handshake() {
    within(async {
        let server = endpoint(&[]);
        let client = endpoint(&[server.node_id()]);
        let addr = server.local_addr().unwrap();

        let accepted = accept_one(&server);
        let err = client.connect(addr, server.node_id()).await.unwrap_err();
        assert!(matches!(err, NetError::RefusedByPeer { .. }), "{err:?}");
        assert!(matches!(accepted.await.unwrap(), Err(NetError::UntrustedPeer { .. })));

        // The user accepts the client's ticket on the server: no restart needed.
        assert!(server.trust().add(client.node_id()));
        let accepted = accept_one(&server);
        let connection = client.connect(addr, server.node_id()).await.unwrap();
        assert_eq!(accepted.await.unwrap().unwrap().peer(), client.node_id());
        connection.close(CloseCode::Done, "");

        // And revokes it: the next handshake fails again (no session resumption sneaks it in).
        assert!(server.trust().remove(&client.node_id()));
        let accepted = accept_one(&server);
        let err = client.connect(addr, server.node_id()).await.unwrap_err();
        assert!(matches!(err, NetError::RefusedByPeer { .. }), "{err:?}");
        assert!(matches!(accepted.await.unwrap(), Err(NetError::UntrustedPeer { .. })));
    })
    .await;
}

/// Sets up a trusted pair and returns (client's connection, server's connection).
async fn connected_pair() -> (PeerConnection, PeerConnection, Endpoint, Endpoint) {
    let server = endpoint(&[]);
    let client = endpoint(&[server.node_id()]);
    server.trust().add(client.node_id());
    let accepted = accept_one(&server);
    let to_server = client.connect(server.local_addr().unwrap(), server.node_id()).await.unwrap();
    let to_client = accepted.await.unwrap().unwrap();
    (to_server, to_client, client, server)
}

#[tokio::test]
async fn oversize_frame_closes_only_that_connection() {
    within(async {
        let (to_server, to_client, _client, server) = connected_pair().await;

        let (mut send, _recv) = to_server.open_bi().await.unwrap();
        send.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        send.write_all(b"a little of the promised 4 GiB").await.unwrap();

        let (_send, mut recv) = to_client.accept_bi().await.unwrap();
        let err = read_frame(&mut recv, DEFAULT_MAX_FRAME_LEN).await.unwrap_err();
        assert!(
            matches!(err, FrameError::TooLarge { len, max }
                if len == u64::from(u32::MAX) && max == DEFAULT_MAX_FRAME_LEN as u64),
            "{err:?}"
        );
        to_client.close(CloseCode::ProtocolViolation, "frame too large");
        let reason = to_server.closed().await;
        assert!(
            matches!(&reason, NetError::Connection(quinn::ConnectionError::ApplicationClosed(c))
                if c.error_code == quinn::VarInt::from_u32(CloseCode::ProtocolViolation.code())),
            "{reason:?}"
        );

        // The endpoint still serves other peers.
        let other = endpoint(&[server.node_id()]);
        server.trust().add(other.node_id());
        let accepted = accept_one(&server);
        let connection = other.connect(server.local_addr().unwrap(), server.node_id()).await.unwrap();
        assert_eq!(accepted.await.unwrap().unwrap().peer(), other.node_id());
        assert_eq!(connection.peer(), server.node_id());
    })
    .await;
}

#[tokio::test]
async fn truncated_frame_over_quic_is_an_error() {
    within(async {
        let (to_server, to_client, _client, _server) = connected_pair().await;

        let (mut send, _recv) = to_server.open_bi().await.unwrap();
        send.write_all(&100u32.to_be_bytes()).await.unwrap();
        send.write_all(&[1; 10]).await.unwrap();
        send.finish().unwrap();

        let (_send, mut recv) = to_client.accept_bi().await.unwrap();
        let err = read_frame(&mut recv, DEFAULT_MAX_FRAME_LEN).await.unwrap_err();
        assert!(matches!(err, FrameError::Truncated { expected: 100, received: 10 }), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn ipv6_loopback_and_ticket_dialling() {
    within(async {
        let server = endpoint_at("[::1]:0".parse().unwrap(), &[]);
        let client = endpoint_at("[::1]:0".parse().unwrap(), &[]);
        server.trust().add(client.node_id());

        let text = server.ticket().unwrap().to_string();
        assert!(text.starts_with(&format!("gossamer://{}@[::1]:", server.node_id())), "{text}");
        let ticket: Ticket = text.parse().unwrap();
        client.trust().add(ticket.node);

        let accepted = accept_one(&server);
        let connection = client.connect_ticket(&ticket).await.unwrap();
        assert_eq!(connection.peer(), server.node_id());
        assert_eq!(accepted.await.unwrap().unwrap().peer(), client.node_id());
    })
    .await;
}

#[tokio::test]
async fn alpn_mismatch_fails_the_handshake() {
    within(async {
        let server = endpoint(&[]);
        let trust: TrustList = [server.node_id()].into_iter().collect();
        let client =
            Endpoint::builder(Identity::generate().unwrap(), trust).alpn(&b"gossamer/0"[..]).bind(loopback()).unwrap();
        server.trust().add(client.node_id());
        let accepted = accept_one(&server);
        let err = client.connect(server.local_addr().unwrap(), server.node_id()).await.unwrap_err();
        assert!(matches!(err, NetError::RefusedByPeer { alert: AlertDescription::NoApplicationProtocol }), "{err:?}");
        assert!(accepted.await.unwrap().is_err());
    })
    .await;
}

#[tokio::test]
async fn handshake_with_a_silent_peer_times_out() {
    within(async {
        // A UDP socket that never answers.
        let silent = std::net::UdpSocket::bind(loopback()).unwrap();
        let expected = Identity::generate().unwrap().node_id();
        let trust: TrustList = [expected].into_iter().collect();
        let timeout = Duration::from_millis(300);
        let client = Endpoint::builder(Identity::generate().unwrap(), trust)
            .handshake_timeout(timeout)
            .bind(loopback())
            .unwrap();
        let addr = silent.local_addr().unwrap();
        let err = client.connect(addr, expected).await.unwrap_err();
        assert!(
            matches!(err, NetError::HandshakeTimeout { addr: a, timeout: t } if a == addr && t == timeout),
            "{err:?}"
        );
    })
    .await;
}

#[test]
fn binding_outside_a_runtime_is_an_error_not_a_panic() {
    let err = Endpoint::bind(Identity::generate().unwrap(), TrustList::new(), loopback()).unwrap_err();
    assert!(matches!(err, NetError::NoRuntime), "{err:?}");
}

#[tokio::test]
async fn invalid_settings_are_refused() {
    let err = Endpoint::builder(Identity::generate().unwrap(), TrustList::new())
        .keep_alive_interval(Duration::from_secs(30))
        .idle_timeout(Duration::from_secs(10))
        .bind(loopback())
        .unwrap_err();
    assert!(matches!(err, NetError::InvalidConfig { setting: "keep_alive_interval", .. }), "{err:?}");
    let err = Endpoint::builder(Identity::generate().unwrap(), TrustList::new())
        .alpn(Vec::new())
        .bind(loopback())
        .unwrap_err();
    assert!(matches!(err, NetError::InvalidConfig { setting: "alpn", .. }), "{err:?}");
}

#[test]
fn identity_is_persisted_with_a_private_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node-data");
    let created = Identity::load_or_generate(&data).unwrap();

    let key_mode = std::fs::metadata(data.join(KEY_FILE)).unwrap().permissions().mode();
    assert_eq!(key_mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(&data).unwrap().permissions().mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    assert!(std::fs::read_to_string(data.join(KEY_FILE)).unwrap().contains("PRIVATE KEY"));

    let loaded = Identity::load_or_generate(&data).unwrap();
    assert_eq!(loaded.node_id(), created.node_id());
    assert_eq!(loaded.certificate(), created.certificate());
    assert_eq!(Identity::load(&data).unwrap().node_id(), created.node_id());

    // A lost certificate is regenerated from the key: same node.
    std::fs::remove_file(data.join(CERT_FILE)).unwrap();
    let regenerated = Identity::load_or_generate(&data).unwrap();
    assert_eq!(regenerated.node_id(), created.node_id());
    assert!(data.join(CERT_FILE).exists());
}

#[test]
fn damaged_identity_files_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    Identity::load_or_generate(dir.path()).unwrap();

    // Someone else's certificate next to our key.
    let other = tempfile::tempdir().unwrap();
    Identity::load_or_generate(other.path()).unwrap();
    std::fs::copy(other.path().join(CERT_FILE), dir.path().join(CERT_FILE)).unwrap();
    let err = Identity::load_or_generate(dir.path()).unwrap_err();
    assert!(matches!(err, NetError::IdentityMismatch { .. }), "{err:?}");

    std::fs::write(dir.path().join(CERT_FILE), "not a certificate").unwrap();
    let err = Identity::load(dir.path()).unwrap_err();
    assert!(matches!(err, NetError::IdentityMalformed { ref path, .. } if path.ends_with(CERT_FILE)), "{err:?}");

    std::fs::write(dir.path().join(KEY_FILE), "-----BEGIN PRIVATE KEY-----\ngarbage\n").unwrap();
    let err = Identity::load(dir.path()).unwrap_err();
    assert!(matches!(err, NetError::IdentityMalformed { ref path, .. } if path.ends_with(KEY_FILE)), "{err:?}");
}

/// A peer may hold only a few streams open to a node's endpoint: unidirectional ones up to
/// the default limit, bidirectional ones not at all (quinn's default would be 100 of each,
/// every one with its own receive window).
#[tokio::test]
async fn a_peer_cannot_open_more_streams_than_the_endpoint_allows() {
    let server = Endpoint::bind(Identity::generate().unwrap(), TrustList::new(), loopback()).unwrap();
    let client = endpoint(&[server.node_id()]);
    server.trust().add(client.node_id());
    let accepted = accept_one(&server);
    let to_server = client.connect(server.local_addr().unwrap(), server.node_id()).await.unwrap();
    let _to_client = accepted.await.unwrap().unwrap();
    let quick = Duration::from_millis(300);

    let mut open = Vec::new();
    for _ in 0..gossamer_sync::net::DEFAULT_MAX_INCOMING_UNI_STREAMS {
        let mut s = within(to_server.connection().open_uni()).await.unwrap();
        s.write_all(b"x").await.unwrap();
        open.push(s);
    }
    assert!(tokio::time::timeout(quick, to_server.connection().open_uni()).await.is_err(), "one uni stream too many");
    assert!(tokio::time::timeout(quick, to_server.open_bi()).await.is_err(), "a bidi stream");
}
