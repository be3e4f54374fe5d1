//! Connection tasks: they move frames and datagrams between QUIC and the driver, and nothing
//! else. Every decision (whom to dial, what to send, when to close) is the driver's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::io::AsyncRead;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::net::{self, CloseCode, NodeId, PeerConnection};

/// What the connection tasks tell the driver.
#[derive(Debug)]
pub(crate) enum NetEvent {
    /// A handshake completed (dialled or accepted).
    Connected { conn: PeerConnection },
    /// A dial failed.
    DialFailed { node: NodeId, error: String },
    /// A frame arrived on connection `id`. Its bytes count against the connection's
    /// incoming budget until the event is dropped.
    Frame { node: NodeId, id: u64, payload: Vec<u8>, _budget: OwnedSemaphorePermit },
    /// A datagram arrived.
    Datagram { node: NodeId, bytes: Bytes },
    /// Connection `id` closed (or broke the framing and was closed).
    Closed { node: NodeId, id: u64, reason: String },
    /// Connection `id`'s outgoing queue drained to half its limit after the driver asked to
    /// hear of it ([`Outbox::notify_when_drained`]).
    Drained { node: NodeId, id: u64 },
}

/// Bytes of outgoing frames one connection may hold while its peer does not read: two
/// maximum frames. A frame that would go over is refused ([`Outbox::try_send`]); one frame
/// is always accepted when nothing is queued.
pub(crate) fn max_queued_bytes(max_frame: usize) -> usize {
    max_frame.saturating_mul(2)
}

/// Whether a frame of `len` bytes may join a queue of `queued` bytes bounded by `limit`: it
/// must stay within the limit, except that an empty queue always takes one frame. The rule
/// of every outgoing queue (a connection's, and the one kept while dialling).
pub(crate) fn fits(queued: usize, len: usize, limit: usize) -> bool {
    queued == 0 || queued.saturating_add(len) <= limit
}

/// Bytes of incoming frames one connection may have in memory at once: frames being read
/// (reserved in full once the length prefix is read, before the payload buffer exists) and
/// frames read but not yet handled by the driver. Two maximum frames, so one always fits
/// (capped at what a semaphore can count, far above any frame: lengths are `u32`).
pub(crate) fn max_incoming_bytes(max_frame: usize) -> usize {
    max_frame.saturating_mul(2).min(Semaphore::MAX_PERMITS)
}

/// Reads frames from one stream until it ends, handing each to `deliver` together with its
/// share of `budget`: the payload's length is reserved after the prefix is read and before
/// the payload is, and stays reserved until `deliver`'s receiver drops the permit. When the
/// budget is spent, reading waits, and QUIC's flow control holds the peer back. Stops when
/// `deliver` returns false (the driver is gone); errors as [`net::read_frame`].
pub(crate) async fn read_frames<R, F, Fut>(
    stream: &mut R,
    max_frame: usize,
    budget: Arc<Semaphore>,
    mut deliver: F,
) -> Result<(), net::FrameError>
where
    R: AsyncRead + Unpin + ?Sized,
    F: FnMut(Vec<u8>, OwnedSemaphorePermit) -> Fut,
    Fut: Future<Output = bool>,
{
    while let Some(len) = net::read_frame_len(stream, max_frame).await? {
        // `len` came from a `u32` prefix and is at most `max_frame`, so within the budget.
        let share = u32::try_from(len).unwrap_or(u32::MAX);
        let Ok(permit) = budget.clone().acquire_many_owned(share).await else { return Ok(()) };
        let payload = net::read_frame_payload(stream, len).await?;
        if !deliver(payload, permit).await {
            return Ok(());
        }
    }
    Ok(())
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
    let mut current = queued.load(Ordering::SeqCst);
    loop {
        if !fits(current, len, limit) {
            return Err(QueueFull { queued: current, len, limit });
        }
        match queued.compare_exchange_weak(current, current + len, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return Ok(()),
            Err(now) => current = now,
        }
    }
}

/// Starts the tasks of one authenticated connection and returns its [`Outbox`]. Outgoing
/// frames travel on one unidirectional stream, in order; incoming ones on whatever
/// unidirectional streams the peer opens. A frame that breaks the framing (too long,
/// truncated) closes this connection only.
///
/// What waits for a peer that does not read is bounded in bytes: a peer that asks for
/// everything (stale digests) and never reads the answers would otherwise pin answers of up
/// to a batch each without limit. The outbox refuses frames beyond [`max_queued_bytes`]
/// ([`QueueFull`]); the driver drops them or, for pushes, holds their ops (bounded) until
/// the queue drains ([`NetEvent::Drained`]).
pub(crate) fn start(conn: PeerConnection, id: u64, max_frame: usize, events: mpsc::Sender<NetEvent>) -> Outbox {
    let node = conn.peer().node_id();
    let (write_tx, mut write_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let outbox = Outbox {
        tx: write_tx,
        queued: Arc::new(AtomicUsize::new(0)),
        limit: max_queued_bytes(max_frame),
        wanted: Arc::new(AtomicBool::new(false)),
    };
    let (queued, wanted, limit) = (outbox.queued.clone(), outbox.wanted.clone(), outbox.limit);
    let drained_events = events.clone();

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
            let left = queued.fetch_sub(payload.len(), Ordering::SeqCst) - payload.len();
            // SeqCst pairs with `notify_when_drained`: the driver sets the flag, then reads the
            // count; we lower the count, then read the flag. One of us sees the other.
            if left <= limit / 2 && wanted.swap(false, Ordering::SeqCst) {
                let _ = drained_events.send(NetEvent::Drained { node, id }).await;
            }
            if let Err(e) = result {
                tracing::debug!(%node, %e, "write failed");
                writer_conn.close(CloseCode::Done, "write failed");
                return;
            }
        }
        let _ = stream.finish();
    });

    // Readers: each incoming stream, and datagrams. Every stream of the connection reads
    // against one budget of incoming bytes (see `read_frames`).
    let budget = Arc::new(Semaphore::new(max_incoming_bytes(max_frame)));
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
            let budget = budget.clone();
            tokio::spawn(async move {
                let delivered = read_frames(&mut stream, max_frame, budget, |payload, budget| {
                    let events = events.clone();
                    async move { events.send(NetEvent::Frame { node, id, payload, _budget: budget }).await.is_ok() }
                })
                .await;
                match delivered {
                    Ok(()) => {}
                    Err(net::FrameError::Io(e)) => tracing::debug!(%node, %e, "stream ended"),
                    Err(e) => {
                        tracing::warn!(%node, %e, "peer broke the framing: closing its connection");
                        conn.close(CloseCode::ProtocolViolation, "bad frame");
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
    outbox
}

/// The driver's end of a connection's outgoing queue: frames wait here, bounded in bytes,
/// until the writer task has written them to the connection's stream.
#[derive(Debug)]
pub(crate) struct Outbox {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    /// Bytes handed over and not yet written.
    queued: Arc<AtomicUsize>,
    limit: usize,
    /// The driver waits for [`NetEvent::Drained`].
    wanted: Arc<AtomicBool>,
}

impl Outbox {
    /// Queues `frame` unless that would take the queue over its byte limit (one frame is
    /// always taken when nothing is queued). The driver is the only sender, so the check is
    /// exact. A closed connection takes the frame and drops it: its `Closed` event follows.
    pub(crate) fn try_send(&self, frame: Vec<u8>) -> Result<(), QueueFull> {
        let len = frame.len();
        admit(&self.queued, len, self.limit)?;
        if self.tx.send(frame).is_err() {
            self.queued.fetch_sub(len, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Whether a frame of `len` bytes would be taken now.
    pub(crate) fn has_room(&self, len: usize) -> bool {
        fits(self.queued.load(Ordering::SeqCst), len, self.limit)
    }

    /// Asks for a [`NetEvent::Drained`] once the queue is down to half its limit. Returns
    /// true instead (and asks nothing) when it already is.
    pub(crate) fn notify_when_drained(&self) -> bool {
        self.wanted.store(true, Ordering::SeqCst);
        if self.queued.load(Ordering::SeqCst) <= self.limit / 2 {
            self.wanted.store(false, Ordering::SeqCst);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use std::sync::Arc;

    use tokio::sync::{Semaphore, mpsc};

    use super::{QueueFull, admit, max_incoming_bytes, max_queued_bytes, read_frames};

    /// Frames read but not yet handled hold their bytes of the connection's budget; once it
    /// is spent the reader stops before the next payload, and goes on as frames are handled.
    #[tokio::test]
    async fn incoming_frames_wait_for_the_budget_before_their_payload_is_read() {
        let mut data = Vec::new();
        for i in 0..5u8 {
            data.extend_from_slice(&100u32.to_be_bytes());
            data.extend(std::iter::repeat_n(i, 100));
        }
        let budget = Arc::new(Semaphore::new(max_incoming_bytes(100)));
        assert_eq!(budget.available_permits(), 200);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn({
            let budget = budget.clone();
            async move {
                let mut stream = &data[..];
                read_frames(&mut stream, 100, budget, |payload, permit| {
                    let tx = tx.clone();
                    async move { tx.send((payload, permit)).is_ok() }
                })
                .await
            }
        });
        async fn settle() {
            for _ in 0..50 {
                tokio::task::yield_now().await;
            }
        }
        let mut held = Vec::new();
        settle().await;
        while let Ok(f) = rx.try_recv() {
            held.push(f);
        }
        assert_eq!(held.len(), 2, "two frames fill the budget");
        assert_eq!(budget.available_permits(), 0);
        assert!(!reader.is_finished());

        drop(held.remove(0)); // the driver handled the first frame
        settle().await;
        while let Ok(f) = rx.try_recv() {
            held.push(f);
        }
        assert_eq!(held.iter().map(|(p, _)| p[0]).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(budget.available_permits(), 0);

        held.clear();
        reader.await.unwrap().unwrap();
        let rest: Vec<u8> = std::iter::from_fn(|| rx.try_recv().ok()).map(|(p, _)| p[0]).collect();
        assert_eq!(rest, vec![3, 4]);
        assert_eq!(budget.available_permits(), 200, "every permit is back");
    }

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
