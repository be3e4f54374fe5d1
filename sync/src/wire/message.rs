//! The messages replicas exchange.

use bytes::Bytes;
use gossamer_crdt::Dot;
use serde::{Deserialize, Serialize};

use super::CompactVv;

/// One op as it travels and as it is logged: its sync-level dot, its causal dependencies and
/// the encoded CRDT op.
///
/// `deps` is compact: the op implicitly depends on its origin's previous op
/// (`dot.counter - 1`), and lists only the other replicas' events its origin had delivered
/// since that previous op — usually none or one — not a whole version vector.
///
/// ```
/// use bytes::Bytes;
/// use gossamer_crdt::{Dot, ReplicaId};
/// use gossamer_sync::wire::OpRecord;
///
/// let r = ReplicaId::from_u128(1);
/// let rec = OpRecord { dot: Dot::new(r, 2), deps: vec![], created_ms: 0, payload: Bytes::from_static(b"op") };
/// assert_eq!(rec.dot.counter, 2);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpRecord {
    /// The origin replica and the op's sequence number there (from 1).
    pub dot: Dot,
    /// Events of other replicas this op causally depends on, beyond its origin's previous op.
    pub deps: Vec<Dot>,
    /// The origin's clock when it made the op (ms). Never used for ordering or conflict
    /// resolution: only to tell how long the push tree has had to deliver it, so that
    /// anti-entropy does not race the tree.
    pub created_ms: u64,
    /// The CRDT op, encoded with [`codec`](super::codec).
    pub payload: Bytes,
}

/// A chunk of an encoded state snapshot, sent to a peer that needs ops this replica has
/// compacted away. Chunks of one snapshot share `id` and arrive in `index` order on one
/// stream; the first carries the version vector the state includes.
///
/// ```
/// use bytes::Bytes;
/// use gossamer_crdt::{ReplicaId, VClock};
/// use gossamer_sync::wire::{decode, encode, CompactVv, Envelope, Message, SnapshotChunk, DEFAULT_MAX_FRAME};
///
/// let mut vv = VClock::new();
/// vv.set(ReplicaId::from_u128(1), 40);
/// let state = b"an encoded state, far larger in real life";
/// // Cut into chunks; only the first says which version the state is at.
/// let parts: Vec<&[u8]> = state.chunks(16).collect();
/// let chunks: Vec<SnapshotChunk> = parts
///     .iter()
///     .enumerate()
///     .map(|(i, part)| SnapshotChunk {
///         id: 9,
///         index: i as u32,
///         last: i + 1 == parts.len(),
///         vv: (i == 0).then(|| CompactVv(vv.clone())),
///         data: Bytes::copy_from_slice(part),
///     })
///     .collect();
///
/// // The receiver reassembles them in `index` order.
/// let mut received = Vec::new();
/// for chunk in chunks {
///     let frame = encode(&Envelope::new(Message::Snapshot { chunk }))?;
///     let Message::Snapshot { chunk } = decode(&frame, DEFAULT_MAX_FRAME)?.body else { unreachable!() };
///     assert_eq!(chunk.index as usize, received.len());
///     received.push(chunk);
/// }
/// assert_eq!(received[0].vv, Some(CompactVv(vv)));
/// assert!(received.last().unwrap().last);
/// assert_eq!(received.iter().flat_map(|c| c.data.to_vec()).collect::<Vec<u8>>(), state);
/// # Ok::<(), gossamer_sync::wire::WireError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotChunk {
    /// Identifies the snapshot among the sender's.
    pub id: u64,
    /// Position of this chunk, from 0.
    pub index: u32,
    /// True on the final chunk.
    pub last: bool,
    /// The version vector of the state (first chunk only).
    pub vv: Option<CompactVv>,
    /// This chunk's bytes of the encoded state.
    pub data: Bytes,
}

/// A message between replicas.
///
/// ```
/// use gossamer_sync::wire::{decode, encode, Envelope, Message};
///
/// let msg = Message::Ops { ops: vec![], more: false };
/// let bytes = encode(&Envelope::new(msg.clone())).unwrap();
/// assert_eq!(decode(&bytes, usize::MAX).unwrap().body, msg);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Fresh ops pushed along the origin's push tree.
    Push {
        /// The ops, in causal order.
        ops: Vec<OpRecord>,
    },
    /// Anti-entropy: the sender's version vector (or only its hash, when the sender has no
    /// news). The receiver answers with the ops the sender lacks and, when `reply` is set
    /// and it lacks something itself, with its own digest.
    Digest {
        /// FNV-1a hash of the compact version vector.
        hash: u64,
        /// The version vector, omitted in idle rounds.
        vv: Option<CompactVv>,
        /// Ask the receiver for its own digest if it is missing something.
        reply: bool,
    },
    /// The answer to a digest: ops the peer lacks, in causal order.
    Ops {
        /// The ops.
        ops: Vec<OpRecord>,
        /// True when the answer was cut at the batch bound: send another digest for more.
        more: bool,
    },
    /// Part of a state snapshot (for a peer behind the compaction point).
    Snapshot {
        /// The chunk.
        chunk: SnapshotChunk,
    },
}

/// The versioned envelope of every frame.
///
/// ```
/// use gossamer_sync::wire::{decode, encode, Envelope, Message, WireError, WIRE_VERSION};
///
/// let body = Message::Ops { ops: vec![], more: false };
/// let env = Envelope::new(body.clone());
/// assert_eq!(env.version, WIRE_VERSION);
/// assert_eq!(decode(&encode(&env)?, 1024)?.body, body);
/// // The version is checked before the body is trusted.
/// let newer = Envelope { version: WIRE_VERSION + 1, body };
/// assert!(matches!(decode(&encode(&newer)?, 1024), Err(WireError::UnsupportedVersion { .. })));
/// # Ok::<(), WireError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The wire version; see [`WIRE_VERSION`](super::WIRE_VERSION).
    pub version: u16,
    /// The message.
    pub body: Message,
}

impl Envelope {
    /// `body` in an envelope of the current version.
    ///
    /// ```
    /// use gossamer_sync::wire::{Envelope, Message, WIRE_VERSION};
    ///
    /// let env = Envelope::new(Message::Digest { hash: 1, vv: None, reply: false });
    /// assert_eq!(env.version, WIRE_VERSION);
    /// assert_eq!(env.body, Message::Digest { hash: 1, vv: None, reply: false });
    /// ```
    pub fn new(body: Message) -> Self {
        Self { version: super::WIRE_VERSION, body }
    }
}
