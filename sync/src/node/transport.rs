//! Connection tasks: they move frames and datagrams between QUIC and the driver, and nothing
//! else. Every decision (whom to dial, what to send, when to close) is the driver's.

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::net::{self, CloseCode, NodeId, PeerConnection};

/// What the connection tasks tell the driver.
#[derive(Debug)]
pub(crate) enum NetEvent {
    /// A handshake completed (dialled or accepted).
    Connected { conn: PeerConnection },
    /// A dial failed.
    DialFailed { node: NodeId, error: String },
    /// A frame arrived on connection `id`.
    Frame { node: NodeId, id: u64, payload: Vec<u8> },
    /// A datagram arrived.
    Datagram { node: NodeId, bytes: Bytes },
    /// Connection `id` closed (or broke the framing and was closed).
    Closed { node: NodeId, id: u64, reason: String },
}

/// Starts the tasks of one authenticated connection and returns the sender of its outgoing
/// frames. Outgoing frames travel on one unidirectional stream, in order; incoming ones on
/// whatever unidirectional streams the peer opens. A frame that breaks the framing (too
/// long, truncated) closes this connection only.
pub(crate) fn start(
    conn: PeerConnection,
    id: u64,
    max_frame: usize,
    events: mpsc::Sender<NetEvent>,
) -> mpsc::Sender<Vec<u8>> {
    let node = conn.peer().node_id();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(1024);

    // Writer: one stream, frames in order.
    let writer_conn = conn.clone();
    tokio::spawn(async move {
        let mut stream = match writer_conn.connection().open_uni().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%node, %e, "cannot open a stream");
                return;
            }
        };
        while let Some(payload) = rx.recv().await {
            if let Err(e) = net::write_frame(&mut stream, &payload).await {
                tracing::debug!(%node, %e, "write failed");
                writer_conn.close(CloseCode::Done, "write failed");
                return;
            }
        }
        let _ = stream.finish();
    });

    // Readers: each incoming stream, and datagrams.
    let streams_conn = conn.clone();
    let stream_events = events.clone();
    tokio::spawn(async move {
        loop {
            let mut stream = match streams_conn.connection().accept_uni().await {
                Ok(s) => s,
                Err(e) => {
                    let _ = stream_events.send(NetEvent::Closed { node, id, reason: e.to_string() }).await;
                    return;
                }
            };
            let conn = streams_conn.clone();
            let events = stream_events.clone();
            tokio::spawn(async move {
                loop {
                    match net::read_frame(&mut stream, max_frame).await {
                        Ok(Some(payload)) => {
                            if events.send(NetEvent::Frame { node, id, payload }).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => return,
                        Err(net::FrameError::Io(e)) => {
                            tracing::debug!(%node, %e, "stream ended");
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(%node, %e, "peer broke the framing: closing its connection");
                            conn.close(CloseCode::ProtocolViolation, "bad frame");
                            return;
                        }
                    }
                }
            });
        }
    });
    let datagram_conn = conn;
    tokio::spawn(async move {
        while let Ok(bytes) = datagram_conn.connection().read_datagram().await {
            if events.send(NetEvent::Datagram { node, bytes }).await.is_err() {
                return;
            }
        }
    });
    tx
}
