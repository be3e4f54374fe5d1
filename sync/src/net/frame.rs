//! Length-prefixed frames over byte streams (QUIC streams, or any tokio reader/writer).
//!
//! A frame is a 4-byte big-endian length `n` followed by `n` bytes of payload. What the payload
//! means is the `wire` layer's business; this layer only guarantees that a peer cannot make us
//! allocate more than `max_len` bytes for one frame.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The default maximum payload of one frame: 4 MiB.
///
/// ```
/// use gossamer_sync::net::{read_frame, write_frame, FrameError, DEFAULT_MAX_FRAME_LEN};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// // A frame announcing one byte more than the default is refused from its prefix alone.
/// let header = (DEFAULT_MAX_FRAME_LEN as u32 + 1).to_be_bytes();
/// let err = read_frame(&mut &header[..], DEFAULT_MAX_FRAME_LEN).await.unwrap_err();
/// assert!(matches!(err, FrameError::TooLarge { max, .. } if max == DEFAULT_MAX_FRAME_LEN as u64));
///
/// // The limit itself is allowed.
/// let mut buf = Vec::new();
/// write_frame(&mut buf, &vec![7; DEFAULT_MAX_FRAME_LEN]).await?;
/// let frame = read_frame(&mut &buf[..], DEFAULT_MAX_FRAME_LEN).await?.unwrap();
/// assert_eq!(frame.len(), DEFAULT_MAX_FRAME_LEN);
/// # Ok::<(), FrameError>(())
/// # }).unwrap();
/// ```
pub const DEFAULT_MAX_FRAME_LEN: usize = 4 * 1024 * 1024;

/// Size of the length prefix in bytes.
///
/// ```
/// use gossamer_sync::net::{read_frame, write_frame, FrameError, FRAME_HEADER_LEN};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let mut buf = Vec::new();
/// write_frame(&mut buf, b"abc").await?;
/// assert_eq!(buf.len(), FRAME_HEADER_LEN + 3);
/// // A stream that ends inside the prefix is a broken frame, not a clean end.
/// let cut = &buf[..FRAME_HEADER_LEN - 1];
/// let err = read_frame(&mut &cut[..], 1024).await.unwrap_err();
/// assert!(matches!(err, FrameError::TruncatedHeader { received } if received == FRAME_HEADER_LEN - 1));
/// # Ok::<(), FrameError>(())
/// # }).unwrap();
/// ```
pub const FRAME_HEADER_LEN: usize = 4;

/// The payload buffer starts at most this large and grows only as bytes actually arrive, so a
/// peer that announces a large frame and then stalls pins little memory.
const INITIAL_CAPACITY: usize = 64 * 1024;

/// Why a frame could not be read or written.
///
/// Every variant but [`Io`](Self::Io) means the peer broke the framing: the caller should close
/// that connection (only that one) and carry on.
///
/// ```
/// use gossamer_sync::net::{read_frame, write_frame, FrameError};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// // What a connection task does with each kind of error.
/// fn close_connection(err: &FrameError) -> bool {
///     match err {
///         FrameError::TooLarge { .. } | FrameError::TruncatedHeader { .. } | FrameError::Truncated { .. } => true,
///         FrameError::Io(_) => false, // the stream or connection is gone already
///     }
/// }
/// let broken = read_frame(&mut &[0, 0, 0, 5, b'h', b'i'][..], 1024).await.unwrap_err();
/// assert!(matches!(broken, FrameError::Truncated { expected: 5, received: 2 }));
/// assert!(close_connection(&broken));
///
/// // A writer with room for 6 bytes cannot take a 4-byte prefix and 5 bytes of payload.
/// let mut room = [0u8; 6];
/// let mut small = std::io::Cursor::new(&mut room[..]);
/// let failed = write_frame(&mut small, b"hello").await.unwrap_err();
/// assert!(matches!(failed, FrameError::Io(ref e) if e.kind() == std::io::ErrorKind::WriteZero));
/// assert!(!close_connection(&failed));
/// # });
/// ```
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announces more than the allowed maximum. Nothing was allocated for it.
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    TooLarge {
        /// The announced (or, when writing, the actual) payload length.
        len: u64,
        /// The maximum that was in force.
        max: u64,
    },
    /// The stream ended inside the 4-byte length prefix.
    #[error("stream ended after {received} of the {FRAME_HEADER_LEN} length-prefix bytes")]
    TruncatedHeader {
        /// Prefix bytes received before the end.
        received: usize,
    },
    /// The stream ended before the whole payload arrived.
    #[error("stream ended after {received} of {expected} payload bytes")]
    Truncated {
        /// Announced payload length.
        expected: usize,
        /// Payload bytes received before the end.
        received: usize,
    },
    /// Reading or writing the underlying stream failed (for a QUIC stream: it was reset, or the
    /// connection was lost).
    #[error("frame stream I/O: {0}")]
    Io(#[from] io::Error),
}

/// Writes `payload` as one frame: its length as a big-endian `u32`, then the bytes.
///
/// Works on a [`quinn::SendStream`] or any tokio [`AsyncWrite`]. It does not flush or finish
/// the stream: call `finish()` on a QUIC stream after the last frame (or `flush()` on a
/// buffered writer). Fails with [`FrameError::TooLarge`] for payloads that do not fit in a
/// `u32`; the reader's maximum is the reader's to enforce.
///
/// ```
/// use gossamer_sync::net::{read_frame, write_frame, DEFAULT_MAX_FRAME_LEN};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let mut buf = Vec::new();
/// write_frame(&mut buf, b"hello").await?;
/// assert_eq!(buf, b"\0\0\0\x05hello");
///
/// let mut reader = &buf[..];
/// assert_eq!(read_frame(&mut reader, DEFAULT_MAX_FRAME_LEN).await?, Some(b"hello".to_vec()));
/// assert_eq!(read_frame(&mut reader, DEFAULT_MAX_FRAME_LEN).await?, None);
/// # Ok::<(), gossamer_sync::net::FrameError>(())
/// # }).unwrap();
/// ```
pub async fn write_frame<W>(writer: &mut W, payload: &[u8]) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin + ?Sized,
{
    let len = u32::try_from(payload.len())
        .map_err(|_| FrameError::TooLarge { len: payload.len() as u64, max: u64::from(u32::MAX) })?;
    writer.write_all(&len.to_be_bytes()).await?;
    writer.write_all(payload).await?;
    Ok(())
}

/// Reads one frame of at most `max_len` payload bytes.
///
/// Returns `Ok(None)` when the stream ends cleanly before a frame starts (the peer finished
/// the stream). The length is checked against `max_len` before any payload buffer is
/// allocated, and the buffer then grows only as bytes arrive. Works on a [`quinn::RecvStream`]
/// or any tokio [`AsyncRead`].
///
/// Errors: [`FrameError::TooLarge`] for an announced length above `max_len` (the payload is
/// left unread), [`FrameError::TruncatedHeader`] / [`FrameError::Truncated`] when the stream
/// ends mid-frame, [`FrameError::Io`] when the stream fails.
///
/// ```
/// use gossamer_sync::net::{read_frame, FrameError};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// // A peer announces 1 GiB; with a 1 KiB limit that is refused before allocating.
/// let mut stream = &[0x40, 0, 0, 0, b'x'][..];
/// let err = read_frame(&mut stream, 1024).await.unwrap_err();
/// assert!(matches!(err, FrameError::TooLarge { len: 0x4000_0000, max: 1024 }));
///
/// let mut cut = &[0, 0, 0, 9, b'a', b'b'][..];
/// let err = read_frame(&mut cut, 1024).await.unwrap_err();
/// assert!(matches!(err, FrameError::Truncated { expected: 9, received: 2 }));
/// # });
/// ```
pub async fn read_frame<R>(reader: &mut R, max_len: usize) -> Result<Option<Vec<u8>>, FrameError>
where
    R: AsyncRead + Unpin + ?Sized,
{
    match read_frame_len(reader, max_len).await? {
        None => Ok(None),
        Some(len) => read_frame_payload(reader, len).await.map(Some),
    }
}

/// The first half of [`read_frame`]: reads a frame's length prefix and checks it against
/// `max_len`, reading nothing of the payload. `Ok(None)` when the stream ends cleanly
/// first. A caller can then reserve `len` bytes of a budget before
/// [`read_frame_payload`] allocates them.
pub(crate) async fn read_frame_len<R>(reader: &mut R, max_len: usize) -> Result<Option<usize>, FrameError>
where
    R: AsyncRead + Unpin + ?Sized,
{
    let mut header = [0u8; FRAME_HEADER_LEN];
    let mut received = 0;
    while received < FRAME_HEADER_LEN {
        match reader.read(&mut header[received..]).await? {
            0 if received == 0 => return Ok(None),
            0 => return Err(FrameError::TruncatedHeader { received }),
            n => received += n,
        }
    }
    let announced = u32::from_be_bytes(header);
    match usize::try_from(announced) {
        Ok(len) if len <= max_len => Ok(Some(len)),
        _ => Err(FrameError::TooLarge { len: u64::from(announced), max: max_len as u64 }),
    }
}

/// The second half of [`read_frame`]: reads a payload of `len` bytes (already checked
/// against the maximum), into a buffer that grows only as bytes arrive.
pub(crate) async fn read_frame_payload<R>(reader: &mut R, len: usize) -> Result<Vec<u8>, FrameError>
where
    R: AsyncRead + Unpin + ?Sized,
{
    let mut payload = Vec::with_capacity(len.min(INITIAL_CAPACITY));
    (&mut *reader).take(len as u64).read_to_end(&mut payload).await?;
    if payload.len() < len {
        return Err(FrameError::Truncated { expected: len, received: payload.len() });
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::ReadBuf;

    use super::*;

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("current-thread runtime").block_on(future)
    }

    /// A reader that hands out its bytes at most `chunk` at a time and counts what was taken,
    /// to check how far a failed read got.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        chunk: usize,
    }

    impl AsyncRead for Trickle {
        fn poll_read(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            let n = self.chunk.min(buf.remaining()).min(self.data.len() - self.pos);
            let start = self.pos;
            buf.put_slice(&self.data[start..start + n]);
            self.pos += n;
            Poll::Ready(Ok(()))
        }
    }

    fn framed(payloads: &[&[u8]]) -> Vec<u8> {
        block_on(async {
            let mut out = Vec::new();
            for p in payloads {
                write_frame(&mut out, p).await.unwrap();
            }
            out
        })
    }

    #[test]
    fn round_trip_several_frames_byte_by_byte() {
        let big = vec![0xa5; 200_000];
        let data = framed(&[b"one", b"", &big, b"three"]);
        let mut reader = Trickle { data, pos: 0, chunk: 1 };
        block_on(async {
            let max = DEFAULT_MAX_FRAME_LEN;
            assert_eq!(read_frame(&mut reader, max).await.unwrap().unwrap(), b"one");
            assert_eq!(read_frame(&mut reader, max).await.unwrap().unwrap(), b"");
            assert_eq!(read_frame(&mut reader, max).await.unwrap().unwrap(), big);
            assert_eq!(read_frame(&mut reader, max).await.unwrap().unwrap(), b"three");
            assert!(read_frame(&mut reader, max).await.unwrap().is_none());
        });
    }

    #[test]
    fn oversize_length_is_refused_before_reading_the_payload() {
        let mut data = u32::MAX.to_be_bytes().to_vec();
        data.extend_from_slice(&[7; 100]);
        let mut reader = Trickle { data, pos: 0, chunk: 64 };
        let err = block_on(read_frame(&mut reader, DEFAULT_MAX_FRAME_LEN)).unwrap_err();
        match err {
            FrameError::TooLarge { len, max } => {
                assert_eq!(len, u64::from(u32::MAX));
                assert_eq!(max, DEFAULT_MAX_FRAME_LEN as u64);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        // Only the prefix was consumed: no payload byte was read, so none was buffered.
        assert_eq!(reader.pos, FRAME_HEADER_LEN);
    }

    #[test]
    fn limit_is_inclusive() {
        let data = framed(&[&[1; 10]]);
        assert_eq!(block_on(read_frame(&mut &data[..], 10)).unwrap().unwrap().len(), 10);
        assert!(matches!(block_on(read_frame(&mut &data[..], 9)), Err(FrameError::TooLarge { len: 10, max: 9 })));
    }

    #[test]
    fn truncated_header_and_payload_are_errors() {
        let err = block_on(read_frame(&mut &[0u8, 0][..], 100)).unwrap_err();
        assert!(matches!(err, FrameError::TruncatedHeader { received: 2 }), "{err:?}");

        let mut data = framed(&[b"complete payload"]);
        data.truncate(data.len() - 3);
        let err = block_on(read_frame(&mut &data[..], 100)).unwrap_err();
        assert!(matches!(err, FrameError::Truncated { expected: 16, received: 13 }), "{err:?}");
    }

    /// Something that is not our framing at all (here: an HTTP request) reads as an absurd
    /// length and is refused, instead of being taken as a 1 GiB frame.
    #[test]
    fn garbage_before_a_frame_is_refused() {
        let mut data = b"GET / HTTP/1.1\r\n\r\n".to_vec();
        data.extend(framed(&[b"real frame"]));
        let err = block_on(read_frame(&mut &data[..], DEFAULT_MAX_FRAME_LEN)).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len: 0x4745_5420, .. }), "{err:?}");
    }

    #[test]
    fn reader_errors_surface_as_io() {
        struct Failing;
        impl AsyncRead for Failing {
            fn poll_read(self: Pin<&mut Self>, _cx: &mut Context<'_>, _buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset")))
            }
        }
        let err = block_on(read_frame(&mut Failing, 10)).unwrap_err();
        assert!(matches!(err, FrameError::Io(ref e) if e.kind() == io::ErrorKind::ConnectionReset));
    }
}
