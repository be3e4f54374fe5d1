//! The node: the driver that owns a protocol [`Replica`](crate::protocol::Replica), its [`Store`], the QUIC
//! [`Endpoint`](crate::net::Endpoint) and SWIM [`Membership`](crate::membership::Membership),
//! and the async API applications use ([`NodeHandle`]).
//!
//! | file | concept |
//! |---|---|
//! | `mod.rs` | [`Node::builder`], [`NodeHandle`]: update, read, subscribe, peers, sync, shutdown |
//! | `driver.rs` | the event loop: commands, frames, datagrams, timers → protocol → store → network |
//! | `transport.rs` | per-connection tasks that move frames and datagrams |
//! | `local.rs` | [`LocalReplica`]: the same data directory, opened without networking |
//! | `clock.rs` | wall-clock milliseconds that never go backwards |
//!
//! A write is acknowledged (its `update` future resolves) only after its op is committed to
//! the store; ops from peers are committed before they are advertised. Everything the
//! network sends is checked (frame bound before allocation, version, decoding): a peer that
//! breaks the rules loses its connection and the node keeps serving the others.
//!
//! ```no_run
//! use gossamer_crdt::{CausalCounter, OrMap};
//! use gossamer_sync::node::Node;
//!
//! # async fn example() -> Result<(), gossamer_sync::node::NodeError> {
//! let node = Node::builder("data").listen("127.0.0.1:4433".parse().unwrap())
//!     .spawn::<OrMap<String, CausalCounter>>().await?;
//! let me = node.replica_id();
//! node.update(move |cart| cart.update("milk".into(), |q| q.inc(me, 1))).await?;
//! let milk = node.read(|cart| cart.get(&"milk".to_string()).map(|q| q.value())).await?;
//! assert_eq!(milk, Some(1));
//! println!("invite others with {}", node.ticket());
//! node.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod clock;
mod driver;
mod error;
mod local;
mod transport;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gossamer_crdt::{Dot, ReplicaId, VClock};
use tokio::sync::{broadcast, mpsc, oneshot};

pub use error::NodeError;
pub use local::{LocalReplica, NodeLock, STORE_FILE};

use crate::membership;
use crate::net::{NodeId, Ticket};
use crate::protocol::{self, Crdt, PeerStatus, Stats};
use crate::store::Store;
use driver::{Command, Driver};

/// Where a node keeps its data and how it reaches others.
///
/// ```
/// use gossamer_crdt::{CausalCounter, OrMap};
/// use gossamer_sync::node::Node;
/// use gossamer_sync::protocol::Config;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let node = Node::builder(dir.path())
///     .listen("127.0.0.1:0".parse()?)
///     .protocol(Config { anti_entropy_interval_ms: 500, ..Config::default() })
///     .spawn::<OrMap<String, CausalCounter>>()
///     .await?;
/// assert!(node.addr().ip().is_loopback());
/// node.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct NodeBuilder {
    data_dir: PathBuf,
    listen: SocketAddr,
    seeds: Vec<Ticket>,
    protocol: protocol::Config,
    membership: Option<membership::Config>,
    store: Option<Box<dyn Store>>,
    seed: Option<u64>,
}

/// Entry point: [`Node::builder`].
///
/// ```
/// use gossamer_crdt::{CausalCounter, OrMap};
/// use gossamer_sync::node::Node;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let node = Node::builder(dir.path()).spawn::<OrMap<String, CausalCounter>>().await?;
/// let me = node.replica_id();
/// node.update(move |cart| cart.update("milk".into(), |q| q.inc(me, 2))).await?;
/// assert_eq!(node.read(|cart| cart.get(&"milk".to_string()).map(|q| q.value())).await?, Some(2));
/// node.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct Node;

impl Node {
    /// A builder for a node keeping its identity and store in `data_dir` (created if
    /// missing), listening on `127.0.0.1` on a port the system picks unless told otherwise.
    ///
    /// ```
    /// # use gossamer_crdt::{CausalCounter, OrMap};
    /// use std::net::Ipv4Addr;
    /// use gossamer_sync::node::Node;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let data = dir.path().join("cart"); // does not exist yet
    /// let node = Node::builder(&data).spawn::<OrMap<String, CausalCounter>>().await?;
    /// assert!(data.is_dir());
    /// assert_eq!(node.addr().ip(), Ipv4Addr::LOCALHOST);
    /// assert_ne!(node.addr().port(), 0); // the port the system picked
    /// node.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(data_dir: impl AsRef<Path>) -> NodeBuilder {
        NodeBuilder {
            data_dir: data_dir.as_ref().to_owned(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seeds: Vec::new(),
            protocol: protocol::Config::default(),
            membership: None,
            store: None,
            seed: None,
        }
    }
}

impl NodeBuilder {
    /// The address to listen on.
    ///
    /// ```
    /// # use gossamer_crdt::{CausalCounter, OrMap};
    /// use gossamer_sync::node::{Node, NodeError};
    /// # type Cart = OrMap<String, CausalCounter>;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let (dir, other_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    /// let node = Node::builder(dir.path()).listen("127.0.0.1:0".parse()?).spawn::<Cart>().await?;
    /// assert!(node.addr().ip().is_loopback());
    /// assert_ne!(node.addr().port(), 0);
    /// // The address is taken now: another node cannot listen on it.
    /// let other = Node::builder(other_dir.path()).listen(node.addr()).spawn::<Cart>().await;
    /// assert!(matches!(other, Err(NodeError::Net(_))));
    /// # node.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// A peer to trust and join through (its ticket). Peers trusted earlier, as the store
    /// remembers them, are joined as well.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use gossamer_crdt::{CausalCounter, OrMap};
    /// # use gossamer_sync::node::Node;
    /// # type Cart = OrMap<String, CausalCounter>;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    /// let a = Node::builder(dir_a.path()).spawn::<Cart>().await?;
    /// let b = Node::builder(dir_b.path()).seed_peer(a.ticket()).spawn::<Cart>().await?;
    /// let peers = b.peers().await?;
    /// assert_eq!((peers.len(), peers[0].node, peers[0].trusted), (1, a.node_id(), true));
    ///
    /// // Once `a` trusts `b` back, they replicate.
    /// a.trust(b.ticket()).await?;
    /// let me = a.replica_id();
    /// a.update(move |cart| cart.update("milk".into(), |q| q.inc(me, 1))).await?;
    /// tokio::time::timeout(Duration::from_secs(10), b.wait_for(a.token().await?)).await??;
    /// assert_eq!(b.read(|cart| cart.get(&"milk".to_string()).map(|q| q.value())).await?, Some(1));
    /// # tokio::join!(a.shutdown(), b.shutdown());
    /// # Ok(())
    /// # }
    /// ```
    pub fn seed_peer(mut self, ticket: Ticket) -> Self {
        self.seeds.push(ticket);
        self
    }

    /// Replication protocol settings.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use gossamer_crdt::{CausalCounter, OrMap};
    /// use gossamer_sync::node::Node;
    /// use gossamer_sync::protocol::Config;
    /// # type Cart = OrMap<String, CausalCounter>;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// // Compact the op log into a snapshot beyond 4 ops (alone, every op is causally stable).
    /// let config = Config { compaction_threshold: 4, anti_entropy_interval_ms: 50, ..Config::default() };
    /// let node = Node::builder(dir.path()).protocol(config).spawn::<Cart>().await?;
    /// let me = node.replica_id();
    /// for _ in 0..8 {
    ///     node.update(move |cart| cart.update("milk".into(), |q| q.inc(me, 1))).await?;
    /// }
    /// # tokio::time::timeout(Duration::from_secs(10), async {
    /// #     while node.status().await?.log_ops > 4 {
    /// #         tokio::time::sleep(Duration::from_millis(10)).await;
    /// #     }
    /// #     Ok::<_, gossamer_sync::node::NodeError>(())
    /// # })
    /// # .await??;
    /// // ... and after the node's next tick:
    /// assert!(node.status().await?.log_ops <= 4);
    /// assert_eq!(node.read(|cart| cart.get(&"milk".to_string()).map(|q| q.value())).await?, Some(8));
    /// # node.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn protocol(mut self, config: protocol::Config) -> Self {
        self.protocol = config;
        self
    }

    /// Membership (SWIM) settings; the default is tuned for a LAN of a few dozen nodes.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use gossamer_crdt::{CausalCounter, OrMap};
    /// use gossamer_sync::membership::Config;
    /// use gossamer_sync::node::{Node, NodeError};
    /// # type Cart = OrMap<String, CausalCounter>;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let node = Node::builder(dir.path()).membership(Config::lan(5)).spawn::<Cart>().await?;
    /// node.shutdown().await;
    ///
    /// // An inconsistent configuration is refused when the node starts.
    /// let bad = Config { probe_rtt: Duration::from_secs(2), ..Config::lan(5) };
    /// let refused = Node::builder(dir.path()).membership(bad).spawn::<Cart>().await;
    /// assert!(matches!(refused, Err(NodeError::Membership(_))));
    /// # Ok(())
    /// # }
    /// ```
    pub fn membership(mut self, config: membership::Config) -> Self {
        self.membership = Some(config);
        self
    }

    /// Uses `store` instead of the SQLite store in the data directory (tests use a
    /// [`MemoryStore`](crate::store::MemoryStore)).
    ///
    /// ```
    /// # use gossamer_crdt::{CausalCounter, OrMap};
    /// use gossamer_sync::node::{Node, STORE_FILE};
    /// use gossamer_sync::store::{MemoryStore, Store};
    /// # type Cart = OrMap<String, CausalCounter>;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let store = MemoryStore::new(); // clones share their contents
    /// let node = Node::builder(dir.path()).store(Box::new(store.clone())).spawn::<Cart>().await?;
    /// let me = node.replica_id();
    /// node.update(move |cart| cart.update("milk".into(), |q| q.inc(me, 1))).await?;
    /// node.shutdown().await;
    /// assert_eq!(store.stats()?.ops, 1);
    /// assert!(!dir.path().join(STORE_FILE).exists()); // no SQLite file
    /// # Ok(())
    /// # }
    /// ```
    pub fn store(mut self, store: Box<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Seeds the node's randomness (peer choice, jitter) for reproducible tests.
    ///
    /// ```
    /// # use gossamer_crdt::{CausalCounter, OrMap};
    /// # use gossamer_sync::node::Node;
    /// # type Cart = OrMap<String, CausalCounter>;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let node = Node::builder(dir.path()).rng_seed(42).spawn::<Cart>().await?;
    /// // The seed steers timing and peer choice only, never the data.
    /// let me = node.replica_id();
    /// node.update(move |cart| cart.update("milk".into(), |q| q.inc(me, 1))).await?;
    /// assert_eq!(node.read(|cart| cart.len()).await?, 1);
    /// # node.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn rng_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Opens the data directory (taking its lock), restores the replica from the store, binds
    /// the endpoint and starts the node's tasks on the current tokio runtime.
    ///
    /// # Errors
    /// [`NodeError`] when the directory is locked by another process, the identity or store
    /// cannot be opened, or the address cannot be bound.
    ///
    /// ```
    /// # use gossamer_crdt::{CausalCounter, OrMap};
    /// use gossamer_sync::node::{Node, NodeError};
    /// # type Cart = OrMap<String, CausalCounter>;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let node = Node::builder(dir.path()).spawn::<Cart>().await?;
    /// // The data directory is locked while the node runs...
    /// let second = Node::builder(dir.path()).spawn::<Cart>().await;
    /// assert!(matches!(second, Err(NodeError::Locked { .. })));
    /// // ...and free again once it has shut down.
    /// node.shutdown().await;
    /// let again = Node::builder(dir.path()).spawn::<Cart>().await?;
    /// again.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn spawn<T: Crdt + Send + Sync + 'static>(self) -> Result<NodeHandle<T>, NodeError>
    where
        T::Op: Send,
    {
        Driver::<T>::start(self).await
    }
}

/// A change of the replicated state, as [`NodeHandle::subscribe`] reports it.
///
/// ```
/// # use gossamer_crdt::{CausalCounter, OrMap};
/// # use gossamer_sync::node::Node;
/// use gossamer_sync::node::Change;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let node = Node::builder(dir.path()).spawn::<OrMap<String, CausalCounter>>().await?;
/// let mut changes = node.subscribe();
/// let me = node.replica_id();
/// let dot = node.update(move |cart| cart.update("milk".into(), |q| q.inc(me, 1))).await?;
/// let change: Change = changes.recv().await?;
/// assert!(change.version.contains(&dot));
/// # node.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The version after the change.
    pub version: VClock,
}

/// A peer as the node sees it.
///
/// ```
/// # use gossamer_crdt::{CausalCounter, OrMap};
/// # use gossamer_sync::node::Node;
/// # type Cart = OrMap<String, CausalCounter>;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
/// # let a = Node::builder(dir_a.path()).spawn::<Cart>().await?;
/// # let b = Node::builder(dir_b.path()).spawn::<Cart>().await?;
/// a.trust(b.ticket()).await?;
/// let peers = a.peers().await?;
/// assert_eq!(peers.len(), 1);
/// let peer = &peers[0];
/// assert_eq!((peer.node, peer.replica), (b.node_id(), b.replica_id()));
/// assert_eq!(peer.addr, Some(b.addr()));
/// assert!(peer.trusted);
/// # a.shutdown().await;
/// # b.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSummary {
    /// Its node id.
    pub node: NodeId,
    /// Its replica id (derived from the node id).
    pub replica: ReplicaId,
    /// Where it was last reachable.
    pub addr: Option<SocketAddr>,
    /// Whether the user trusts it (only trusted peers can connect).
    pub trusted: bool,
    /// What the failure detector says.
    pub status: PeerStatus,
    /// Whether a QUIC connection is open now.
    pub connected: bool,
    /// The last version vector it reported.
    pub version: Option<VClock>,
}

/// What the node is doing.
///
/// ```
/// # use gossamer_crdt::{CausalCounter, OrMap};
/// # use gossamer_sync::node::Node;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let node = Node::builder(dir.path()).spawn::<OrMap<String, CausalCounter>>().await?;
/// let me = node.replica_id();
/// let dot = node.update(move |cart| cart.update("milk".into(), |q| q.inc(me, 1))).await?;
/// let status = node.status().await?;
/// assert_eq!((status.node, status.addr), (node.node_id(), node.addr()));
/// assert!(status.version.contains(&dot));
/// assert_eq!((status.log_ops, status.pending_ops, status.offline), (1, 0, false));
/// assert_eq!(status.stats.applied, 1);
/// # node.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// This node's id.
    pub node: NodeId,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// What it has delivered.
    pub version: VClock,
    /// Ops waiting for their dependencies.
    pub pending_ops: usize,
    /// Ops in its log.
    pub log_ops: usize,
    /// Whether gossip is paused.
    pub offline: bool,
    /// Protocol counters.
    pub stats: Stats,
}

/// The application's handle on a running node: cheap to clone, usable from any task.
///
/// ```
/// use gossamer_crdt::{CausalCounter, OrMap};
/// use gossamer_sync::node::Node;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let node = Node::builder(dir.path()).spawn::<OrMap<String, CausalCounter>>().await?;
/// let writer = node.clone();
/// let me = node.replica_id();
/// tokio::spawn(async move { writer.update(move |cart| cart.update("milk".into(), |q| q.inc(me, 1))).await })
///     .await??;
/// assert_eq!(node.read(|cart| cart.get(&"milk".to_string()).map(|q| q.value())).await?, Some(1));
/// node.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct NodeHandle<T: Crdt> {
    commands: mpsc::Sender<Command<T>>,
    changes: broadcast::Sender<Change>,
    node: NodeId,
    addr: SocketAddr,
    offline: Arc<AtomicBool>,
}

impl<T: Crdt> Clone for NodeHandle<T> {
    fn clone(&self) -> Self {
        NodeHandle {
            commands: self.commands.clone(),
            changes: self.changes.clone(),
            node: self.node,
            addr: self.addr,
            offline: self.offline.clone(),
        }
    }
}

impl<T: Crdt + Send + Sync + 'static> NodeHandle<T>
where
    T::Op: Send,
{
    /// This node's id.
    ///
    /// ```
    /// # use gossamer_crdt::{CausalCounter, OrMap};
    /// # use gossamer_sync::node::Node;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let node = Node::builder(dir.path()).spawn::<OrMap<String, CausalCounter>>().await?;
    /// let id = node.node_id();
    /// node.shutdown().await;
    /// // The identity is kept in the data directory: a restart keeps the id.
    /// let again = Node::builder(dir.path()).spawn::<OrMap<String, CausalCounter>>().await?;
    /// assert_eq!(again.node_id(), id);
    /// # again.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn node_id(&self) -> NodeId {
        self.node
    }

    /// This node's replica id (the first 16 bytes of its node id).
    ///
    /// ```
    /// # use gossamer_crdt::{CausalCounter, OrMap};
    /// # use gossamer_sync::node::Node;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let node = Node::builder(dir.path()).spawn::<OrMap<String, CausalCounter>>().await?;
    /// let me = node.replica_id();
    /// assert_eq!(me, node.node_id().replica_id());
    /// let dot = node.update(move |cart| cart.update("milk".into(), |q| q.inc(me, 1))).await?;
    /// assert_eq!(dot.replica, me);
    /// # node.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn replica_id(&self) -> ReplicaId {
        self.node.replica_id()
    }

    /// The address the node listens on.
    ///
    /// ```
    /// # use gossamer_crdt::{CausalCounter, OrMap};
    /// # use gossamer_sync::node::Node;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let node = Node::builder(dir.path()).spawn::<OrMap<String, CausalCounter>>().await?;
    /// let addr = node.addr();
    /// assert!(addr.ip().is_loopback() && addr.port() != 0);
    /// assert_eq!(node.status().await?.addr, addr);
    /// # node.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The ticket that introduces this node to others.
    ///
    /// ```
    /// # use gossamer_crdt::{CausalCounter, OrMap};
    /// # use gossamer_sync::node::Node;
    /// use gossamer_sync::net::Ticket;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let node = Node::builder(dir.path()).spawn::<OrMap<String, CausalCounter>>().await?;
    /// let text = node.ticket().to_string(); // what a user copies to another device
    /// assert!(text.starts_with("gossamer://"));
    /// let pasted: Ticket = text.parse()?;
    /// assert_eq!((pasted.node, pasted.addr), (node.node_id(), node.addr()));
    /// # node.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn ticket(&self) -> Ticket {
        Ticket::new(self.node, self.addr)
    }

    async fn ask<R>(&self, make: impl FnOnce(oneshot::Sender<R>) -> Command<T>) -> Result<R, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.map_err(|_| NodeError::Shutdown)?;
        rx.await.map_err(|_| NodeError::Shutdown)
    }

    /// Applies a local update: `f` mutates the state and returns the CRDT op it made.
    /// Resolves once the op is durable in the store; then it is also on its way to the
    /// peers.
    ///
    /// # Errors
    /// [`NodeError::Store`] if the op could not be made durable (the write is not
    /// acknowledged and the node stops), [`NodeError::Shutdown`] after shutdown.
    ///
    /// ```
    /// # use gossamer_crdt::{CausalCounter, OrMap};
    /// # use gossamer_sync::node::Node;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let node = Node::builder(dir.path()).spawn::<OrMap<String, CausalCounter>>().await?;
    /// let me = node.replica_id();
    /// let first = node.update(move |cart| cart.update("milk".into(), |q| q.inc(me, 2))).await?;
    /// let second = node.update(move |cart| cart.update("eggs".into(), |q| q.inc(me, 6))).await?;
    /// assert_eq!((first.counter, second.counter), (1, 2)); // one op, one dot each
    /// assert_eq!(node.read(|cart| cart.get(&"eggs".to_string()).map(|q| q.value())).await?, Some(6));
    /// # node.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn update<F>(&self, f: F) -> Result<Dot, NodeError>
    where
        F: FnOnce(&mut T) -> T::Op + Send + 'static,
    {
        match self.try_update(move |t| Ok::<_, std::convert::Infallible>(f(t))).await? {
            Ok(dot) => Ok(dot),
            Err(never) => match never {},
        }
    }

    /// A local update that may be refused: `f` returns the op it made, or an error — and then
    /// it MUST have left the state unchanged (check first, then mutate). A refused update
    /// makes no op; its error comes back as the inner `Err`.
    ///
    /// # Errors
    /// As [`update`](Self::update).
    ///
    /// ```
    /// # use gossamer_crdt::{CausalCounter, OrMap};
    /// # use gossamer_sync::node::Node;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let node = Node::builder(dir.path()).spawn::<OrMap<String, CausalCounter>>().await?;
    /// let me = node.replica_id();
    /// // Take one milk out of the cart, never going below zero.
    /// let take_milk = move |cart: &mut OrMap<String, CausalCounter>| {
    ///     if cart.get(&"milk".to_string()).map_or(0, |q| q.value()) < 1 {
    ///         return Err("no milk in the cart"); // checked before anything changed
    ///     }
    ///     Ok(cart.update("milk".into(), |q| q.dec(me, 1)))
    /// };
    /// assert_eq!(node.try_update(take_milk).await?, Err("no milk in the cart"));
    /// assert!(node.token().await?.is_empty()); // refused: no op was made
    ///
    /// node.update(move |cart| cart.update("milk".into(), |q| q.inc(me, 1))).await?;
    /// assert!(node.try_update(take_milk).await?.is_ok());
    /// assert_eq!(node.read(|cart| cart.get(&"milk".to_string()).map(|q| q.value())).await?, Some(0));
    /// # node.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn try_update<F, E>(&self, f: F) -> Result<Result<Dot, E>, NodeError>
    where
        F: FnOnce(&mut T) -> Result<T::Op, E> + Send + 'static,
        E: Send + 'static,
    {
        let refusal = Arc::new(std::sync::Mutex::new(None));
        let slot = refusal.clone();
        let f = move |t: &mut T| match f(t) {
            Ok(op) => Some(op),
            Err(e) => {
                *slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                None
            }
        };
        match self.ask(|reply| Command::Update { f: Box::new(f), reply }).await?? {
            Some(dot) => Ok(Ok(dot)),
            None => {
                let e = refusal.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
                e.map(Err).ok_or(NodeError::Shutdown)
            }
        }
    }

    /// Reads the state through `f`.
    ///
    /// # Errors
    /// [`NodeError::Shutdown`] after shutdown.
    ///
    /// ```
    /// # use gossamer_crdt::{CausalCounter, OrMap};
    /// # use gossamer_sync::node::Node;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let node = Node::builder(dir.path()).spawn::<OrMap<String, CausalCounter>>().await?;
    /// let me = node.replica_id();
    /// node.update(move |cart| cart.update("milk".into(), |q| q.inc(me, 2))).await?;
    /// let milk = node.read(|cart| cart.get(&"milk".to_string()).map(|q| q.value())).await?;
    /// assert_eq!(milk, Some(2));
    /// let items: Vec<String> = node.read(|cart| cart.keys().cloned().collect()).await?;
    /// assert_eq!(items, ["milk"]);
    /// # node.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn read<R: Send + 'static>(&self, f: impl FnOnce(&T) -> R + Send + 'static) -> Result<R, NodeError> {
        let (tx, rx) = oneshot::channel();
        let f = Box::new(move |t: &T| {
            let _ = tx.send(f(t));
        });
        self.commands.send(Command::Read { f }).await.map_err(|_| NodeError::Shutdown)?;
        rx.await.map_err(|_| NodeError::Shutdown)
    }

    /// A stream of changes: one item per batch of applied ops (local or remote). A slow
    /// subscriber skips changes rather than holding the node back (`Lagged`); read the
    /// state again when that happens.
    ///
    /// ```
    /// # use gossamer_crdt::{CausalCounter, OrMap};
    /// # use gossamer_sync::node::Node;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let node = Node::builder(dir.path()).spawn::<OrMap<String, CausalCounter>>().await?;
    /// let mut changes = node.subscribe();
    /// let me = node.replica_id();
    /// node.update(move |cart| cart.update("milk".into(), |q| q.inc(me, 1))).await?;
    /// let change = changes.recv().await?;
    /// assert_eq!(change.version, node.token().await?);
    /// assert!(changes.try_recv().is_err()); // nothing else changed
    /// # node.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// The peers: trusted ones and those the membership knows.
    ///
    /// # Errors
    /// [`NodeError::Shutdown`] after shutdown.
    ///
    /// ```
    /// # use gossamer_crdt::{CausalCounter, OrMap};
    /// # use gossamer_sync::node::Node;
    /// # type Cart = OrMap<String, CausalCounter>;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    /// # let a = Node::builder(dir_a.path()).spawn::<Cart>().await?;
    /// # let b = Node::builder(dir_b.path()).spawn::<Cart>().await?;
    /// assert!(a.peers().await?.is_empty()); // a new node knows no one
    /// a.trust(b.ticket()).await?;
    /// let peers = a.peers().await?;
    /// assert_eq!(peers.len(), 1);
    /// assert!(peers[0].node == b.node_id() && peers[0].trusted);
    /// # a.shutdown().await;
    /// # b.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn peers(&self) -> Result<Vec<PeerSummary>, NodeError> {
        self.ask(Command::Peers).await
    }

    /// The node's status: version, pending ops, counters.
    ///
    /// # Errors
    /// [`NodeError::Shutdown`] after shutdown.
    ///
    /// ```
    /// # use gossamer_crdt::{CausalCounter, OrMap};
    /// # use gossamer_sync::node::Node;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let node = Node::builder(dir.path()).spawn::<OrMap<String, CausalCounter>>().await?;
    /// assert_eq!(node.status().await?.log_ops, 0);
    /// let me = node.replica_id();
    /// let dot = node.update(move |cart| cart.update("milk".into(), |q| q.inc(me, 1))).await?;
    /// let status = node.status().await?;
    /// assert_eq!(status.log_ops, 1);
    /// assert!(status.version.contains(&dot));
    /// # node.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn status(&self) -> Result<NodeStatus, NodeError> {
        self.ask(Command::Status).await
    }

    /// Starts an anti-entropy exchange with every reachable peer now.
    ///
    /// # Errors
    /// [`NodeError::Shutdown`] after shutdown.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use gossamer_crdt::{CausalCounter, OrMap};
    /// # use gossamer_sync::node::Node;
    /// # use gossamer_sync::protocol::Config;
    /// # type Cart = OrMap<String, CausalCounter>;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    /// # // Anti-entropy may send ops as soon as they are made (the default waits a second for pushes).
    /// # let config = Config { push_grace_ms: 0, ..Config::default() };
    /// # let a = Node::builder(dir_a.path()).protocol(config).spawn::<Cart>().await?;
    /// # let b = Node::builder(dir_b.path()).spawn::<Cart>().await?;
    /// // `a` writes before it knows `b`: no push carries this op to `b`.
    /// let me = a.replica_id();
    /// a.update(move |cart| cart.update("milk".into(), |q| q.inc(me, 1))).await?;
    /// b.trust(a.ticket()).await?;
    /// a.trust(b.ticket()).await?;
    /// a.sync_now().await?; // rather than wait for the next anti-entropy round
    /// tokio::time::timeout(Duration::from_secs(10), b.wait_for(a.token().await?)).await??;
    /// assert_eq!(b.status().await?.stats.pulled_new, 1); // it came by anti-entropy
    /// # tokio::join!(a.shutdown(), b.shutdown());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn sync_now(&self) -> Result<(), NodeError> {
        self.ask(Command::SyncNow).await
    }

    /// Trusts the node of `ticket`, remembers it as a peer and joins it.
    ///
    /// # Errors
    /// [`NodeError::Store`] if it cannot be remembered.
    ///
    /// ```
    /// # use gossamer_crdt::{CausalCounter, OrMap};
    /// use gossamer_sync::node::{Node, STORE_FILE};
    /// use gossamer_sync::store::{SqliteStore, Store};
    /// # type Cart = OrMap<String, CausalCounter>;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    /// # let a = Node::builder(dir_a.path()).spawn::<Cart>().await?;
    /// # let b = Node::builder(dir_b.path()).spawn::<Cart>().await?;
    /// a.trust(b.ticket()).await?;
    /// assert!(a.peers().await?.iter().any(|p| p.node == b.node_id() && p.trusted));
    /// // The store remembers it: restarted, `a` trusts and joins `b` again.
    /// a.shutdown().await;
    /// let store = SqliteStore::open(dir_a.path().join(STORE_FILE))?;
    /// assert!(store.peers()?.iter().any(|p| p.node == b.node_id() && p.trusted));
    /// # b.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn trust(&self, ticket: Ticket) -> Result<(), NodeError> {
        self.ask(|reply| Command::Trust { ticket, reply }).await?
    }

    /// Pauses (`true`) or resumes gossip: while offline the node accepts local writes, closes
    /// its connections and refuses new ones.
    ///
    /// # Errors
    /// [`NodeError::Shutdown`] after shutdown.
    ///
    /// ```
    /// # use gossamer_crdt::{CausalCounter, OrMap};
    /// # use gossamer_sync::node::Node;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let node = Node::builder(dir.path()).spawn::<OrMap<String, CausalCounter>>().await?;
    /// node.set_offline(true).await?;
    /// assert!(node.status().await?.offline);
    /// // Local writes are still accepted (and durable) while offline.
    /// let me = node.replica_id();
    /// node.update(move |cart| cart.update("milk".into(), |q| q.inc(me, 1))).await?;
    /// node.set_offline(false).await?; // reconnects to trusted peers and syncs with them
    /// assert!(!node.status().await?.offline);
    /// # node.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn set_offline(&self, offline: bool) -> Result<(), NodeError> {
        self.offline.store(offline, Ordering::SeqCst);
        self.ask(|reply| Command::SetOffline { offline, reply }).await
    }

    /// True while gossip is paused.
    ///
    /// ```
    /// # use gossamer_crdt::{CausalCounter, OrMap};
    /// # use gossamer_sync::node::Node;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let node = Node::builder(dir.path()).spawn::<OrMap<String, CausalCounter>>().await?;
    /// assert!(!node.is_offline());
    /// node.set_offline(true).await?;
    /// assert!(node.is_offline());
    /// # node.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_offline(&self) -> bool {
        self.offline.load(Ordering::SeqCst)
    }

    /// The version delivered here: a session token for read-your-writes elsewhere.
    ///
    /// # Errors
    /// [`NodeError::Shutdown`] after shutdown.
    ///
    /// ```
    /// # use gossamer_crdt::{CausalCounter, OrMap};
    /// # use gossamer_sync::node::Node;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let node = Node::builder(dir.path()).spawn::<OrMap<String, CausalCounter>>().await?;
    /// let me = node.replica_id();
    /// let dot = node.update(move |cart| cart.update("milk".into(), |q| q.inc(me, 1))).await?;
    /// let token = node.token().await?;
    /// assert!(token.contains(&dot));
    /// node.wait_for(token).await?; // at once here: this node has delivered it
    /// # node.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn token(&self) -> Result<VClock, NodeError> {
        self.read_version().await
    }

    async fn read_version(&self) -> Result<VClock, NodeError> {
        Ok(self.status().await?.version)
    }

    /// Session guarantee: resolves once this node has delivered everything in `token`.
    ///
    /// # Errors
    /// [`NodeError::Shutdown`] after shutdown.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use gossamer_crdt::{CausalCounter, OrMap};
    /// # use gossamer_sync::node::Node;
    /// # type Cart = OrMap<String, CausalCounter>;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    /// # let a = Node::builder(dir_a.path()).spawn::<Cart>().await?;
    /// # let b = Node::builder(dir_b.path()).spawn::<Cart>().await?;
    /// # b.trust(a.ticket()).await?;
    /// # a.trust(b.ticket()).await?;
    /// // A session writes on `a`, then reads on `b`: the token carries its writes along.
    /// let me = a.replica_id();
    /// a.update(move |cart| cart.update("milk".into(), |q| q.inc(me, 1))).await?;
    /// let token = a.token().await?;
    /// tokio::time::timeout(Duration::from_secs(10), b.wait_for(token)).await??;
    /// assert_eq!(b.read(|cart| cart.get(&"milk".to_string()).map(|q| q.value())).await?, Some(1));
    /// # tokio::join!(a.shutdown(), b.shutdown());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_for(&self, token: VClock) -> Result<(), NodeError> {
        self.ask(|reply| Command::WaitFor { token, reply }).await
    }

    /// Stops the node gracefully: leaves the membership, closes connections, flushes and
    /// closes the store, releases the data directory.
    ///
    /// ```
    /// # use gossamer_crdt::{CausalCounter, OrMap};
    /// use gossamer_sync::node::{Node, NodeError};
    /// # type Cart = OrMap<String, CausalCounter>;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let node = Node::builder(dir.path()).spawn::<Cart>().await?;
    /// let me = node.replica_id();
    /// node.update(move |cart| cart.update("milk".into(), |q| q.inc(me, 1))).await?;
    /// node.shutdown().await;
    /// assert!(matches!(node.read(|cart| cart.len()).await, Err(NodeError::Shutdown)));
    /// // The directory is released and the data kept: a new node carries on.
    /// let again = Node::builder(dir.path()).spawn::<Cart>().await?;
    /// assert_eq!(again.read(|cart| cart.len()).await?, 1);
    /// again.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn shutdown(&self) {
        let _ = self.ask(Command::Shutdown).await;
    }
}
