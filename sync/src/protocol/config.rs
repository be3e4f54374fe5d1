//! Tuning knobs and bounds of the protocol.

use crate::wire::DEFAULT_MAX_FRAME;

/// How a replica gossips, and the bounds that keep a peer from making it allocate without
/// limit. The defaults suit devices on a LAN or the internet; the simulator shrinks the
/// intervals.
///
/// ```
/// use gossamer_sync::protocol::Config;
///
/// let c = Config { anti_entropy_interval_ms: 500, ..Config::default() };
/// assert!(c.max_batch_bytes < c.max_frame_bytes);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Children per node in each origin's push tree: a fresh op reaches N replicas in
    /// ⌈log_k N⌉ hops, each replica sending it at most k times.
    pub tree_fanout: usize,
    /// Period of push-pull anti-entropy rounds, in milliseconds.
    pub anti_entropy_interval_ms: u64,
    /// Anti-entropy leaves out ops younger than the push tree needs to deliver them (twice
    /// the recent push delays, never less than this, in ms): the tree is most likely still
    /// bringing them, and sending them twice is waste.
    pub push_grace_ms: u64,
    /// Largest encoded size of the ops in one `Ops` or `Push` message.
    pub max_batch_bytes: usize,
    /// Largest frame sent or accepted (checked before allocation).
    pub max_frame_bytes: usize,
    /// Ops waiting for their dependencies: beyond this, new early ops are dropped (and
    /// fetched again by anti-entropy) — unless another peer holds more of them than the
    /// sender would, when that peer's newest gives way: the space is shared fairly.
    pub max_buffered_ops: usize,
    /// The same bound in payload bytes.
    pub max_buffered_bytes: usize,
    /// How long an op may wait for its dependencies, in ms (counted again from each
    /// dependency that arrives). Older ones are dropped at the next tick, and anti-entropy
    /// fetches them again, in causal order, from a peer that has their dependencies: ops whose
    /// dependencies never come cannot hold the buffer until a restart.
    pub max_buffered_age_ms: u64,
    /// Most dependencies one op may list; never less than `max_vv_entries` (an op lists at
    /// most one per replica, so a smaller bound could refuse a valid op forever).
    pub max_deps: usize,
    /// Most entries a received version vector may have.
    pub max_vv_entries: usize,
    /// Compact the op log at causal stability once it holds more than this many ops.
    pub compaction_threshold: usize,
    /// Size of the chunks a snapshot is sent in.
    pub snapshot_chunk_bytes: usize,
    /// Largest snapshot accepted from a peer.
    pub max_snapshot_bytes: usize,
    /// Snapshot bytes being assembled from all peers together. A chunk that would pass it
    /// drops its snapshot (the peer is not at fault: it sends the snapshot again when a later
    /// digest shows we still lag), so many peers sending snapshots at once cannot make us hold
    /// `max_snapshot_bytes` each. Set it no lower than `max_snapshot_bytes`, or a snapshot of
    /// that size can never arrive.
    pub max_assembling_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tree_fanout: 3,
            anti_entropy_interval_ms: 1_000,
            push_grace_ms: 1_000,
            max_batch_bytes: 256 << 10,
            max_frame_bytes: DEFAULT_MAX_FRAME,
            max_buffered_ops: 16_384,
            max_buffered_bytes: 32 << 20,
            // Thirty anti-entropy rounds: an op whose dependencies exist gets them well before.
            max_buffered_age_ms: 30_000,
            // An op depends on at most one event per replica: as many as a version vector.
            max_deps: 65_536,
            max_vv_entries: 65_536,
            compaction_threshold: 100_000,
            snapshot_chunk_bytes: 1 << 20,
            max_snapshot_bytes: 1 << 30,
            // One maximum snapshot in total, however many peers send one.
            max_assembling_bytes: 1 << 30,
        }
    }
}
