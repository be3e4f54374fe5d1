//! Connection tasks: they move frames and datagrams between QUIC and the driver, and nothing
//! else. Every decision (whom to dial, what to send, when to close) is the driver's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// Frames the driver may hand a connection's queue before it refuses more (`try_send`).
const QUEUED_FRAMES: usize = 1024;

/// Bytes of outgoing frames one connection may hold while its peer does not read: two
/// maximum frames. A frame that would go over is dropped (anti-entropy sends whatever it
/// carried again); one frame is always accepted when nothing is queued.
pub(crate) fn max_queued_bytes(max_frame: usize) -> usize {
    max_frame.saturating_mul(2)
}

/// Why an outgoing frame was not queued: the connection's queue holds `queued` bytes and
/// the frame would take it over `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("outgoing queue full: {queued} bytes queued, {len} more would pass the limit of {limit}")]
pub(crate) struct QueueFull {
    pub(crate) queued: usize,
    pub(crate) len: usize,
    pub(crate) limit: usize,
}

/// Admits a frame of `len` bytes to a queue holding `queued` bytes, or says why not.
fn admit(queued: &AtomicUsize, len: usize, limit: usize) -> Result<(), QueueFull> {
    let mut current = queued.load(Ordering::Acquire);
    loop {
        if current > 0 && current.saturating_add(len) > limit {
            return Err(QueueFull { queued: current, len, limit });
        }
        match queued.compare_exchange_weak(current, current + len, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Ok(()),
            Err(now) => current = now,
        }
    }
}

/// Starts the tasks of one authenticated connection and returns the sender of its outgoing
/// frames. Outgoing frames travel on one unidirectional stream, in order; incoming ones on
/// whatever unidirectional streams the peer opens. A frame that breaks the framing (too
/// long, truncated) closes this connection only.
///
/// What waits for a peer that does not read is bounded in bytes, not only in frames: a peer
/// that asks for everything (stale digests) and never reads the answers would otherwise pin
/// `QUEUED_FRAMES` answers of up to a batch each — hundreds of MiB. A pump moves frames from
/// the driver's queue to the writer's as long as the writer's holds at most
/// [`max_queued_bytes`]; beyond, it drops them ([`QueueFull`], logged).
pub(crate) fn start(
    conn: PeerConnection,
    id: u64,
    max_frame: usize,
    events: mpsc::Sender<NetEvent>,
) -> mpsc::Sender<Vec<u8>> {
    let node = conn.peer().node_id();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(QUEUED_FRAMES);
    // Unbounded in frames, bounded in bytes by `admit`.
    let (write_tx, mut write_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let queued = Arc::new(AtomicUsize::new(0));
    let limit = max_queued_bytes(max_frame);

    // Pump: never waits on the peer, so the driver's queue stays short.
    let pump_queued = queued.clone();
    tokio::spawn(async move {
        let mut dropped: u64 = 0;
        while let Some(payload) = rx.recv().await {
            if let Err(full) = admit(&pump_queued, payload.len(), limit) {
                dropped += 1;
                tracing::debug!(%node, %full, dropped, "peer not reading: frame dropped (anti-entropy will cover it)");
                continue;
            }
            if write_tx.send(payload).is_err() {
                return;
            }
        }
    });

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
        while let Some(payload) = write_rx.recv().await {
            let result = net::write_frame(&mut stream, &payload).await;
            queued.fetch_sub(payload.len(), Ordering::AcqRel);
            if let Err(e) = result {
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::{QueueFull, admit, max_queued_bytes};

    #[test]
    fn the_outgoing_queue_is_bounded_in_bytes_and_always_takes_one_frame() {
        let limit = max_queued_bytes(100);
        assert_eq!(limit, 200);
        let queued = AtomicUsize::new(0);
        // Empty: even a frame over the limit goes (frames are checked against the frame bound
        // elsewhere); then nothing more until it is written.
        assert_eq!(admit(&queued, 250, limit), Ok(()));
        assert_eq!(admit(&queued, 1, limit), Err(QueueFull { queued: 250, len: 1, limit }));
        queued.fetch_sub(250, Ordering::AcqRel);
        assert_eq!(admit(&queued, 120, limit), Ok(()));
        assert_eq!(admit(&queued, 80, limit), Ok(()));
        assert_eq!(admit(&queued, 1, limit), Err(QueueFull { queued: 200, len: 1, limit }));
    }
}
