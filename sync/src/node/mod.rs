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
pub struct Node;

impl Node {
    /// A builder for a node keeping its identity and store in `data_dir` (created if
    /// missing), listening on `127.0.0.1` on a port the system picks unless told otherwise.
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
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// A peer to trust and join through (its ticket). Peers trusted earlier, as the store
    /// remembers them, are joined as well.
    pub fn seed_peer(mut self, ticket: Ticket) -> Self {
        self.seeds.push(ticket);
        self
    }

    /// Replication protocol settings.
    pub fn protocol(mut self, config: protocol::Config) -> Self {
        self.protocol = config;
        self
    }

    /// Membership (SWIM) settings; the default is tuned for a LAN of a few dozen nodes.
    pub fn membership(mut self, config: membership::Config) -> Self {
        self.membership = Some(config);
        self
    }

    /// Uses `store` instead of the SQLite store in the data directory (tests use a
    /// [`MemoryStore`](crate::store::MemoryStore)).
    pub fn store(mut self, store: Box<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Seeds the node's randomness (peer choice, jitter) for reproducible tests.
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
    pub async fn spawn<T: Crdt + Send + Sync + 'static>(self) -> Result<NodeHandle<T>, NodeError>
    where
        T::Op: Send,
    {
        Driver::<T>::start(self).await
    }
}

/// A change of the replicated state, as [`NodeHandle::subscribe`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The version after the change.
    pub version: VClock,
}

/// A peer as the node sees it.
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
    pub fn node_id(&self) -> NodeId {
        self.node
    }

    /// This node's replica id (the first 16 bytes of its node id).
    pub fn replica_id(&self) -> ReplicaId {
        self.node.replica_id()
    }

    /// The address the node listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The ticket that introduces this node to others.
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
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// The peers: trusted ones and those the membership knows.
    ///
    /// # Errors
    /// [`NodeError::Shutdown`] after shutdown.
    pub async fn peers(&self) -> Result<Vec<PeerSummary>, NodeError> {
        self.ask(Command::Peers).await
    }

    /// The node's status: version, pending ops, counters.
    ///
    /// # Errors
    /// [`NodeError::Shutdown`] after shutdown.
    pub async fn status(&self) -> Result<NodeStatus, NodeError> {
        self.ask(Command::Status).await
    }

    /// Starts an anti-entropy exchange with every reachable peer now.
    ///
    /// # Errors
    /// [`NodeError::Shutdown`] after shutdown.
    pub async fn sync_now(&self) -> Result<(), NodeError> {
        self.ask(Command::SyncNow).await
    }

    /// Trusts the node of `ticket`, remembers it as a peer and joins it.
    ///
    /// # Errors
    /// [`NodeError::Store`] if it cannot be remembered.
    pub async fn trust(&self, ticket: Ticket) -> Result<(), NodeError> {
        self.ask(|reply| Command::Trust { ticket, reply }).await?
    }

    /// Pauses (`true`) or resumes gossip: while offline the node accepts local writes, closes
    /// its connections and refuses new ones.
    ///
    /// # Errors
    /// [`NodeError::Shutdown`] after shutdown.
    pub async fn set_offline(&self, offline: bool) -> Result<(), NodeError> {
        self.offline.store(offline, Ordering::SeqCst);
        self.ask(|reply| Command::SetOffline { offline, reply }).await
    }

    /// True while gossip is paused.
    pub fn is_offline(&self) -> bool {
        self.offline.load(Ordering::SeqCst)
    }

    /// The version delivered here: a session token for read-your-writes elsewhere.
    ///
    /// # Errors
    /// [`NodeError::Shutdown`] after shutdown.
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
    pub async fn wait_for(&self, token: VClock) -> Result<(), NodeError> {
        self.ask(|reply| Command::WaitFor { token, reply }).await
    }

    /// Stops the node gracefully: leaves the membership, closes connections, flushes and
    /// closes the store, releases the data directory.
    pub async fn shutdown(&self) {
        let _ = self.ask(Command::Shutdown).await;
    }
}
