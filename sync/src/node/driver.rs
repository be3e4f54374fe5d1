//! The event loop. One task owns the protocol replica, the store, the membership and the
//! connection table; everything else talks to it through channels, so there is no lock
//! around the replicated state.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gossamer_crdt::{Dot, ReplicaId, VClock};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::clock::Clock;
use super::local::{NodeLock, STORE_FILE};
use super::transport::{self, NetEvent};
use super::{Change, NodeBuilder, NodeError, NodeHandle, NodeStatus, PeerSummary};
use crate::membership::{Backoff, Event as SwimEvent, MemberId, Membership, Output as SwimOutput, Timer};
use crate::net::{CloseCode, Endpoint, Identity, NodeId, PeerConnection, Ticket, TrustList};
use crate::protocol::{Crdt, Event, Output, PeerStatus, Replica, StoredSnapshot};
use crate::store::{PeerRecord, SqliteStore, Store};
use crate::wire::{self, Envelope, Message};

/// A local update: the op, or `None` when it was refused (the state is then unchanged).
type UpdateFn<T> = Box<dyn FnOnce(&mut T) -> Option<<T as gossamer_crdt::CmRDT>::Op> + Send>;
/// Where the driver answers an update: the dot of its op once durable (`None` if it changed nothing).
type UpdateReply = oneshot::Sender<Result<Option<Dot>, NodeError>>;

/// What a [`NodeHandle`] asks of the driver.
pub(crate) enum Command<T: Crdt> {
    Update { f: UpdateFn<T>, reply: UpdateReply },
    Read { f: Box<dyn FnOnce(&T) + Send> },
    Peers(oneshot::Sender<Vec<PeerSummary>>),
    Status(oneshot::Sender<NodeStatus>),
    SyncNow(oneshot::Sender<()>),
    Trust { ticket: Ticket, reply: oneshot::Sender<Result<(), NodeError>> },
    SetOffline { offline: bool, reply: oneshot::Sender<()> },
    WaitFor { token: VClock, reply: oneshot::Sender<()> },
    Shutdown(oneshot::Sender<()>),
}

/// Store work, in the order it must happen.
enum Persist {
    Ops(Vec<wire::OpRecord>),
    Snapshot(StoredSnapshot),
    Peer(PeerRecord),
}

struct Conn {
    id: u64,
    conn: PeerConnection,
    outbox: transport::Outbox,
    /// Pushed ops waiting for room in `outbox`, oldest first, and their size as counted for
    /// the push bound. Their payloads are shared with the op log (`Bytes`), not copied.
    deferred: VecDeque<wire::OpRecord>,
    deferred_bytes: usize,
}

/// Most pushed ops held for one peer while its connection's queue is full, in count and in
/// payload bytes. A writer faster than the link waits here instead of losing its pushes to
/// anti-entropy, which would fetch them a grace period later; beyond either bound, pushes
/// are dropped and anti-entropy covers them. The payloads are shared with the op log, which
/// keeps every op until all peers have it anyway, so these bound how much backlog is worth
/// pushing rather than memory: what they add is one record header (~100 B) per op.
const MAX_DEFERRED_OPS: usize = 65_536;
const MAX_DEFERRED_BYTES: usize = 256 << 20;

/// Most frames queued for a peer while it is being dialled, also bounded in bytes as its
/// connection's queue will be ([`transport::max_queued_bytes`]); beyond, they are dropped
/// (anti-entropy brings whatever they carried).
const MAX_PENDING_FRAMES: usize = 1024;
/// Most commands handled (and group-committed) in one go.
const MAX_BATCH: usize = 4096;
/// Meta key of the SWIM generation, so a restarted node rejoins above its last life.
const GENERATION_KEY: &str = "swim.generation";
/// How long shutdown lets the QUIC endpoint drain after closing every connection. The close
/// frames leave at once; draining waits three probe timeouts per connection, and for a peer
/// that has just gone, or a handshake still in flight, that ran into the old 2 s cap, so a
/// restarted node shut down at once took 2 s and its peer another 2 s. Peers that miss a close
/// frame learn of it from their idle timeout and from SWIM.
const CLOSE_GRACE: Duration = Duration::from_millis(300);

pub(crate) struct Driver<T: Crdt> {
    replica: Replica<T>,
    store: Arc<std::sync::Mutex<Box<dyn Store>>>,
    membership: Membership,
    endpoint: Endpoint,
    trust: TrustList,
    clock: Arc<Clock>,
    node: NodeId,
    addr: SocketAddr,
    max_frame: usize,
    /// Largest payload of one coalesced `Push` (the protocol's batch bound, at most half a frame).
    max_push_bytes: usize,
    conns: HashMap<NodeId, Conn>,
    next_conn: u64,
    dialing: HashMap<NodeId, Vec<Vec<u8>>>,
    backoff: HashMap<NodeId, (Backoff, u64)>,
    addrs: HashMap<NodeId, SocketAddr>,
    timers: BinaryHeap<Reverse<(u64, u64)>>,
    timer_slots: HashMap<u64, Timer>,
    next_timer: u64,
    net_tx: mpsc::Sender<NetEvent>,
    changes: broadcast::Sender<Change>,
    offline: Arc<AtomicBool>,
    waiters: HashMap<u64, oneshot::Sender<()>>,
    next_waiter: u64,
    seed: u64,
    _lock: Option<NodeLock>,
}

impl<T: Crdt + Send + Sync + 'static> Driver<T>
where
    T::Op: Send,
{
    pub(crate) async fn start(b: NodeBuilder) -> Result<NodeHandle<T>, NodeError> {
        let lock = Some(NodeLock::acquire(&b.data_dir)?);
        let identity = Identity::load_or_generate(&b.data_dir)?;
        let node = identity.node_id();
        let mut store: Box<dyn Store> = match b.store {
            Some(s) => s,
            None => Box::new(SqliteStore::open(b.data_dir.join(STORE_FILE))?),
        };
        let seed = b.seed.unwrap_or_else(rand::random);
        let restored = store.load()?;
        let mut replica = Replica::restore(node.replica_id(), b.protocol.clone(), seed, restored)?;
        let max_frame = b.protocol.max_frame_bytes;
        let max_push_bytes = b.protocol.max_batch_bytes.min(max_frame / 2).max(1);

        // Trust: what the store remembers, plus the seeds given now.
        let trust = TrustList::new();
        let mut addrs = HashMap::new();
        for p in store.peers()? {
            if p.trusted {
                trust.add(p.node);
                if let Some(a) = p.addr {
                    addrs.insert(p.node, a);
                }
            }
        }
        for t in &b.seeds {
            trust.add(t.node);
            addrs.insert(t.node, t.addr);
            let mut rec = store.peers()?.into_iter().find(|p| p.node == t.node).unwrap_or(PeerRecord::new(t.node));
            rec.trusted = true;
            rec.addr = Some(t.addr);
            store.put_peer(&rec)?;
        }
        for n in trust.iter() {
            replica.set_peer(n.replica_id(), PeerStatus::Alive);
        }

        let endpoint = Endpoint::builder(identity, trust.clone()).bind(b.listen)?;
        let addr = endpoint.local_addr()?;

        let generation = store
            .get_meta(GENERATION_KEY)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map_or(0, u64::from_be_bytes)
            .saturating_add(1);
        store.put_meta(GENERATION_KEY, &generation.to_be_bytes())?;
        let mconfig = b.membership.unwrap_or_default();
        let membership = Membership::new(MemberId::new(node, addr, generation), mconfig, seed ^ 0x5111)?;

        let (net_tx, net_rx) = mpsc::channel(4096);
        let (cmd_tx, cmd_rx) = mpsc::channel(4096);
        let (changes, _) = broadcast::channel(256);
        let offline = Arc::new(AtomicBool::new(false));

        // Accept loop: handshakes run in their own tasks; a failed one concerns that peer only.
        let accept_endpoint = endpoint.clone();
        let accept_tx = net_tx.clone();
        let accept_offline = offline.clone();
        tokio::spawn(async move {
            while let Some(incoming) = accept_endpoint.accept().await {
                if accept_offline.load(Ordering::SeqCst) {
                    incoming.refuse();
                    continue;
                }
                let tx = accept_tx.clone();
                tokio::spawn(async move {
                    match incoming.handshake().await {
                        Ok(conn) => {
                            let _ = tx.send(NetEvent::Connected { conn }).await;
                        }
                        Err(e) => tracing::info!(%e, "refused an incoming connection"),
                    }
                });
            }
        });

        let handle = NodeHandle { commands: cmd_tx, changes: changes.clone(), node, addr, offline: offline.clone() };
        let mut driver = Driver {
            replica,
            store: Arc::new(std::sync::Mutex::new(store)),
            membership,
            endpoint,
            trust,
            clock: Arc::new(Clock::default()),
            node,
            addr,
            max_frame,
            max_push_bytes,
            conns: HashMap::new(),
            next_conn: 0,
            dialing: HashMap::new(),
            backoff: HashMap::new(),
            addrs,
            timers: BinaryHeap::new(),
            timer_slots: HashMap::new(),
            next_timer: 0,
            net_tx,
            changes,
            offline,
            waiters: HashMap::new(),
            next_waiter: 0,
            seed,
            _lock: lock,
        };
        let now = driver.clock.now_ms();
        let seeds: Vec<Ticket> = driver.addrs.iter().map(|(n, a)| Ticket::new(*n, *a)).collect();
        for t in seeds {
            if let Err(e) = driver.membership.announce(t, now) {
                tracing::warn!(%e, "cannot announce to a seed");
            }
        }
        driver.drain_membership(now);
        tracing::info!(node = %driver.node, addr = %driver.addr, "node started");
        tokio::spawn(driver.run(cmd_rx, net_rx));
        Ok(handle)
    }

    async fn run(mut self, mut commands: mpsc::Receiver<Command<T>>, mut net: mpsc::Receiver<NetEvent>) {
        let mut shutdown: Option<oneshot::Sender<()>> = None;
        loop {
            let now = self.clock.now_ms();
            let deadline = [self.replica.next_deadline(), self.timers.peek().map(|Reverse((t, _))| *t)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now + 1_000);
            let sleep = tokio::time::sleep(Duration::from_millis(deadline.saturating_sub(now)));
            let result = tokio::select! {
                cmd = commands.recv() => match cmd {
                    None => break,
                    Some(cmd) => {
                        let mut batch = vec![cmd];
                        while batch.len() < MAX_BATCH {
                            match commands.try_recv() {
                                Ok(c) => batch.push(c),
                                Err(_) => break,
                            }
                        }
                        self.commands(batch, &mut shutdown).await
                    }
                },
                ev = net.recv() => match ev {
                    None => break,
                    Some(ev) => {
                        let mut batch = vec![ev];
                        while batch.len() < MAX_BATCH {
                            match net.try_recv() {
                                Ok(e) => batch.push(e),
                                Err(_) => break,
                            }
                        }
                        self.net_events(batch).await
                    }
                },
                () = sleep => self.tick().await,
            };
            if let Err(e) = result {
                tracing::error!(%e, "the node stops: its store failed");
                break;
            }
            if shutdown.is_some() {
                break;
            }
        }
        self.close().await;
        // Release the store and the directory lock before saying we are done.
        drop(self);
        if let Some(reply) = shutdown {
            let _ = reply.send(());
        }
    }

    async fn close(&mut self) {
        let now = self.clock.now_ms();
        if self.membership.leave(now).is_ok() {
            self.drain_membership(now);
        }
        for (_, c) in self.conns.drain() {
            c.conn.close(CloseCode::Done, "shutting down");
        }
        self.endpoint.close();
        let _ = tokio::time::timeout(CLOSE_GRACE, self.endpoint.wait_idle()).await;
        tracing::info!(node = %self.node, "node stopped");
    }

    // ---- commands -----------------------------------------------------------------------

    async fn commands(
        &mut self,
        batch: Vec<Command<T>>,
        shutdown: &mut Option<oneshot::Sender<()>>,
    ) -> Result<(), NodeError> {
        let now = self.clock.now_ms();
        let mut outputs = Vec::new();
        let mut acks: Vec<(UpdateReply, Dot)> = Vec::new();
        let mut persist = Vec::new();
        let mut after: Vec<oneshot::Sender<()>> = Vec::new();
        for cmd in batch {
            match cmd {
                Command::Update { f, reply } => match self.replica.try_local_update(now, |t| f(t).ok_or(())) {
                    Ok(Ok((dot, out))) => {
                        outputs.extend(out);
                        acks.push((reply, dot));
                    }
                    Ok(Err(())) => {
                        let _ = reply.send(Ok(None));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                },
                Command::Read { f } => f(self.replica.state()),
                Command::Peers(reply) => {
                    let _ = reply.send(self.peer_summaries());
                }
                Command::Status(reply) => {
                    let _ = reply.send(self.status());
                }
                Command::SyncNow(reply) => {
                    outputs.extend(self.replica.sync_now(now));
                    after.push(reply);
                }
                Command::Trust { ticket, reply } => {
                    self.trust.add(ticket.node);
                    self.addrs.insert(ticket.node, ticket.addr);
                    self.replica.set_peer(ticket.node.replica_id(), PeerStatus::Alive);
                    let mut rec = self.peer_record(ticket.node);
                    rec.trusted = true;
                    rec.addr = Some(ticket.addr);
                    persist.push(Persist::Peer(rec));
                    if let Err(e) = self.membership.announce(ticket, now) {
                        tracing::warn!(%e, "cannot announce to a trusted peer");
                    }
                    self.drain_membership(now);
                    let _ = reply.send(Ok(()));
                }
                Command::SetOffline { offline, reply } => {
                    self.set_offline(offline, now, &mut outputs);
                    after.push(reply);
                }
                Command::WaitFor { token, reply } => {
                    self.next_waiter += 1;
                    if self.replica.wait_for(self.next_waiter, token) {
                        let _ = reply.send(());
                    } else {
                        self.waiters.insert(self.next_waiter, reply);
                    }
                }
                Command::Shutdown(reply) => *shutdown = Some(reply),
            }
        }
        let result = self.carry_out(outputs, persist).await;
        for (reply, dot) in acks {
            let _ = reply.send(match &result {
                Ok(()) => Ok(Some(dot)),
                Err(e) => Err(NodeError::Config(format!("not durable: {e}"))),
            });
        }
        for reply in after {
            let _ = reply.send(());
        }
        result
    }

    fn set_offline(&mut self, offline: bool, now: u64, outputs: &mut Vec<Output>) {
        self.offline.store(offline, Ordering::SeqCst);
        if offline {
            for (_, c) in self.conns.drain() {
                c.conn.close(CloseCode::Done, "going offline");
            }
            self.dialing.clear();
        } else {
            let seeds: Vec<Ticket> =
                self.addrs.iter().filter(|(n, _)| self.trust.contains(n)).map(|(n, a)| Ticket::new(*n, *a)).collect();
            for t in seeds {
                let _ = self.membership.announce(t, now);
                self.dial(t.node);
            }
            self.drain_membership(now);
            outputs.extend(self.replica.sync_now(now));
        }
    }

    fn peer_record(&self, node: NodeId) -> PeerRecord {
        let store = self.store.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        store.peers().ok().and_then(|ps| ps.into_iter().find(|p| p.node == node)).unwrap_or(PeerRecord::new(node))
    }

    fn peer_summaries(&self) -> Vec<PeerSummary> {
        let replica_peers = self.replica.peers();
        let mut nodes: Vec<NodeId> = self.trust.iter().collect();
        for m in self.membership.members() {
            if !nodes.contains(&m.id.node()) && m.id.node() != self.node {
                nodes.push(m.id.node());
            }
        }
        nodes.sort();
        nodes
            .into_iter()
            .map(|node| {
                let info = replica_peers.iter().find(|p| p.id == node.replica_id());
                let member = self.membership.member(&node);
                PeerSummary {
                    node,
                    replica: node.replica_id(),
                    addr: member.map(|m| m.id.addr()).or_else(|| self.addrs.get(&node).copied()),
                    trusted: self.trust.contains(&node),
                    status: member.map(|m| m.status).or(info.map(|i| i.status)).unwrap_or(PeerStatus::Down),
                    connected: self.conns.contains_key(&node),
                    version: info.and_then(|i| i.known_vv.clone()),
                }
            })
            .collect()
    }

    fn status(&self) -> NodeStatus {
        NodeStatus {
            node: self.node,
            addr: self.addr,
            version: self.replica.version().clone(),
            pending_ops: self.replica.buffered().0,
            log_ops: self.replica.log_size().0,
            offline: self.offline.load(Ordering::SeqCst),
            stats: self.replica.stats().clone(),
        }
    }

    // ---- network --------------------------------------------------------------------------

    async fn net_events(&mut self, batch: Vec<NetEvent>) -> Result<(), NodeError> {
        let now = self.clock.now_ms();
        let mut outputs = Vec::new();
        let mut persist = Vec::new();
        for ev in batch {
            match ev {
                NetEvent::Connected { conn } => self.connected(conn, now, &mut persist),
                NetEvent::DialFailed { node, error } => {
                    tracing::debug!(%node, %error, "dial failed");
                    self.dialing.remove(&node);
                    let (b, next) = self.backoff.entry(node).or_insert_with(|| {
                        (
                            Backoff::new(
                                Duration::from_millis(500),
                                Duration::from_secs(30),
                                self.seed ^ u64::from_le_bytes(node.as_bytes()[..8].try_into().unwrap_or_default()),
                            ),
                            0,
                        )
                    });
                    *next = now + b.next_delay().as_millis() as u64;
                }
                // Offline: frames and datagrams still in flight from connections closed by
                // `set_offline` are dropped, so nothing crosses the switch (anti-entropy brings
                // them again once back online).
                NetEvent::Frame { .. } | NetEvent::Datagram { .. } if self.offline.load(Ordering::SeqCst) => {}
                NetEvent::Frame { node, id, payload, .. } => match wire::decode(&payload, self.max_frame) {
                    Ok(env) => outputs.extend(self.replica.handle_message(now, node.replica_id(), env.body)),
                    Err(e) => {
                        tracing::warn!(%node, %e, "undecodable frame: closing that connection");
                        self.close_conn(node, Some(id), CloseCode::ProtocolViolation, "bad frame");
                    }
                },
                NetEvent::Datagram { node, bytes } => {
                    if let Err(e) = self.membership.handle_datagram(node, &bytes, now) {
                        tracing::debug!(%node, %e, "swim datagram refused");
                    }
                    self.drain_membership(now);
                }
                NetEvent::Drained { node, id } => {
                    if self.conns.get(&node).is_some_and(|c| c.id == id) {
                        self.flush_deferred(node);
                    }
                }
                NetEvent::Closed { node, id, reason } => {
                    tracing::debug!(%node, %reason, "connection closed");
                    if self.conns.get(&node).is_some_and(|c| c.id == id) {
                        self.conns.remove(&node);
                    }
                }
            }
        }
        self.carry_out(outputs, persist).await
    }

    fn connected(&mut self, conn: PeerConnection, now: u64, persist: &mut Vec<Persist>) {
        let node = conn.peer().node_id();
        if self.offline.load(Ordering::SeqCst) || !self.trust.contains(&node) {
            conn.close(CloseCode::Done, "not now");
            return;
        }
        self.next_conn += 1;
        let id = self.next_conn;
        let outbox = transport::start(conn.clone(), id, self.max_frame, self.net_tx.clone());
        for f in self.dialing.remove(&node).unwrap_or_default() {
            let _ = outbox.try_send(f);
        }
        let c = Conn { id, conn: conn.clone(), outbox, deferred: VecDeque::new(), deferred_bytes: 0 };
        if let Some(old) = self.conns.insert(node, c) {
            // Both sides dialled at once: keep the newer, let the older drain and close.
            let stale = old.conn;
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(5)).await;
                stale.close(CloseCode::Done, "replaced");
            });
        }
        self.backoff.remove(&node);
        let addr = conn.remote_addr();
        self.addrs.entry(node).or_insert(addr);
        let mut rec = self.peer_record(node);
        rec.last_seen_ms = Some(now);
        rec.addr = Some(*self.addrs.get(&node).unwrap_or(&addr));
        persist.push(Persist::Peer(rec));
        tracing::info!(peer = %node, %addr, "connected");
    }

    fn close_conn(&mut self, node: NodeId, id: Option<u64>, code: CloseCode, reason: &str) {
        if let Some(c) = self.conns.get(&node)
            && id.is_none_or(|i| i == c.id)
        {
            c.conn.close(code, reason);
            self.conns.remove(&node);
        }
    }

    fn dial(&mut self, node: NodeId) {
        if self.offline.load(Ordering::SeqCst) || self.conns.contains_key(&node) || node == self.node {
            return;
        }
        if !self.trust.contains(&node) || self.dialing.contains_key(&node) {
            return;
        }
        let now = self.clock.now_ms();
        if self.backoff.get(&node).is_some_and(|(_, next)| now < *next) {
            return;
        }
        let Some(&addr) = self.addrs.get(&node) else { return };
        self.dialing.insert(node, Vec::new());
        let endpoint = self.endpoint.clone();
        let tx = self.net_tx.clone();
        tokio::spawn(async move {
            let ev = match endpoint.connect(addr, node).await {
                Ok(conn) => NetEvent::Connected { conn },
                Err(e) => NetEvent::DialFailed { node, error: e.to_string() },
            };
            let _ = tx.send(ev).await;
        });
    }

    fn send_frame(&mut self, node: NodeId, frame: Vec<u8>) {
        if self.offline.load(Ordering::SeqCst) {
            return;
        }
        if let Some(c) = self.conns.get(&node) {
            if let Err(full) = c.outbox.try_send(frame) {
                tracing::debug!(%node, %full, "message dropped (anti-entropy will cover it)");
            }
            return;
        }
        self.dial(node);
        let limit = transport::max_queued_bytes(self.max_frame);
        if let Some(q) = self.dialing.get_mut(&node)
            && q.len() < MAX_PENDING_FRAMES
            && transport::fits(q.iter().map(Vec::len).sum(), frame.len(), limit)
        {
            q.push(frame);
        }
    }

    // ---- membership -----------------------------------------------------------------------

    fn drain_membership(&mut self, now: u64) {
        let outputs: Vec<SwimOutput> = self.membership.drain_outputs().collect();
        for out in outputs {
            match out {
                SwimOutput::Send { node, addr, bytes } => {
                    if self.offline.load(Ordering::SeqCst) || !self.trust.contains(&node) {
                        continue;
                    }
                    self.addrs.entry(node).or_insert(addr);
                    match self.conns.get(&node) {
                        Some(c) => {
                            if let Err(e) = c.conn.connection().send_datagram(bytes) {
                                tracing::debug!(%node, %e, "datagram not sent");
                            }
                        }
                        None => self.dial(node),
                    }
                }
                SwimOutput::ScheduleTimer { after, timer } => {
                    self.next_timer += 1;
                    let at = now + after.as_millis() as u64;
                    self.timers.push(Reverse((at, self.next_timer)));
                    self.timer_slots.insert(self.next_timer, timer);
                }
                SwimOutput::Event(ev) => self.membership_event(ev),
            }
        }
    }

    fn membership_event(&mut self, ev: SwimEvent) {
        tracing::debug!(?ev, "membership");
        match &ev {
            // Only trusted nodes are dialled; the address of any other member stays in the
            // membership view (bounded by `max_members`), not here.
            SwimEvent::Up { node, addr } | SwimEvent::AddressChanged { node, addr } if self.trust.contains(node) => {
                self.addrs.insert(*node, *addr);
                self.dial(*node);
            }
            SwimEvent::Rejoined { id } => {
                let generation = id.generation();
                let store = self.store.clone();
                tokio::task::spawn_blocking(move || {
                    let mut s = store.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if let Err(e) = s.put_meta(GENERATION_KEY, &generation.to_be_bytes()) {
                        tracing::warn!(%e, "cannot save the SWIM generation");
                    }
                });
            }
            _ => {}
        }
        if let Some((replica, status)) = ev.peer_status()
            && self.trust.iter().any(|n| n.replica_id() == replica)
        {
            self.replica.set_peer(replica, status);
        }
    }

    // ---- time -----------------------------------------------------------------------------

    async fn tick(&mut self) -> Result<(), NodeError> {
        let now = self.clock.now_ms();
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if let Some(timer) = self.timer_slots.remove(&id)
                && let Err(e) = self.membership.handle_timer(timer, now)
            {
                tracing::debug!(%e, "swim timer");
            }
        }
        self.drain_membership(now);
        // A fallback: `Drained` normally flushes held pushes as soon as there is room.
        let waiting: Vec<NodeId> = self.conns.iter().filter(|(_, c)| !c.deferred.is_empty()).map(|(n, _)| *n).collect();
        for node in waiting {
            self.flush_deferred(node);
        }
        let outputs = self.replica.handle_tick(now);
        self.carry_out(outputs, Vec::new()).await
    }

    // ---- outputs --------------------------------------------------------------------------

    /// Carries out protocol outputs: everything to persist first (in order, one transaction
    /// per batch of ops), then the sends, then the notifications.
    async fn carry_out(&mut self, outputs: Vec<Output>, mut persist: Vec<Persist>) -> Result<(), NodeError> {
        let mut sends = Vec::new();
        let mut changed = false;
        let mut misbehaved = Vec::new();
        for out in outputs {
            match out {
                Output::Persist(ops) => match persist.last_mut() {
                    Some(Persist::Ops(batch)) => batch.extend(ops),
                    _ => persist.push(Persist::Ops(ops)),
                },
                Output::PersistSnapshot { vv, floor, state } => {
                    persist.push(Persist::Snapshot(StoredSnapshot { vv, floor, state }));
                }
                Output::Send { to, msg } => sends.push((to, msg)),
                Output::Event(Event::Applied { .. } | Event::SnapshotMerged { .. }) => changed = true,
                Output::Event(Event::SessionReady { id }) => {
                    if let Some(w) = self.waiters.remove(&id) {
                        let _ = w.send(());
                    }
                }
                Output::Event(Event::PeerMisbehaved { peer, reason }) => misbehaved.push((peer, reason)),
                Output::Event(Event::Dropped { dot, reason }) => tracing::debug!(?dot, reason, "op dropped"),
            }
        }
        if !persist.is_empty() {
            let store = self.store.clone();
            let result = tokio::task::spawn_blocking(move || -> Result<(), NodeError> {
                let mut s = store.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                for p in persist {
                    match p {
                        Persist::Ops(ops) => s.append_ops(&ops)?,
                        Persist::Snapshot(snap) => s.put_snapshot(&snap)?,
                        Persist::Peer(rec) => s.put_peer(&rec)?,
                    }
                }
                Ok(())
            })
            .await;
            match result {
                Ok(r) => r?,
                Err(e) => return Err(NodeError::Config(format!("store task failed: {e}"))),
            }
        }
        for (to, msg) in coalesce_pushes(sends, self.max_push_bytes) {
            self.send_message(to, msg);
        }
        for (peer, reason) in misbehaved {
            if let Some(node) = self.node_of(&peer) {
                tracing::warn!(%node, %reason, "peer misbehaved: closing its connection");
                self.close_conn(node, None, CloseCode::ProtocolViolation, "protocol violation");
            }
        }
        if changed {
            let _ = self.changes.send(Change { version: self.replica.version().clone() });
        }
        Ok(())
    }

    fn node_of(&self, replica: &ReplicaId) -> Option<NodeId> {
        self.trust.iter().find(|n| n.replica_id() == *replica)
    }

    fn send_message(&mut self, to: ReplicaId, msg: Message) {
        let Some(node) = self.node_of(&to) else { return };
        let msg = match msg {
            Message::Push { ops } if !self.offline.load(Ordering::SeqCst) && self.conns.contains_key(&node) => {
                self.push(node, ops);
                return;
            }
            other => other,
        };
        let payload = match wire::encode(&Envelope::new(msg)) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(%e, "cannot encode a message");
                return;
            }
        };
        if payload.len() > self.max_frame {
            tracing::error!(len = payload.len(), max = self.max_frame, "message larger than a frame: not sent");
            return;
        }
        self.send_frame(node, payload);
    }
}

impl<T: Crdt + Send + Sync + 'static> Driver<T>
where
    T::Op: Send,
{
    /// Pushes `ops` to connected `node` behind the ops already held for it, so a peer sees a
    /// writer's pushes in order.
    fn push(&mut self, node: NodeId, ops: Vec<wire::OpRecord>) {
        let Some(c) = self.conns.get_mut(&node) else { return };
        let mut dropped = 0usize;
        for rec in ops {
            let size = push_size(&rec);
            let full = c.deferred.len() >= MAX_DEFERRED_OPS || c.deferred_bytes + size > MAX_DEFERRED_BYTES;
            if full && !c.deferred.is_empty() {
                dropped += 1;
                continue;
            }
            c.deferred_bytes += size;
            c.deferred.push_back(rec);
        }
        if dropped > 0 {
            tracing::debug!(%node, dropped, "peer's push backlog full: pushes dropped (anti-entropy will cover them)");
        }
        self.flush_deferred(node);
    }

    /// Sends `node` the ops held for it, a push of up to `max_push_bytes` at a time, while its
    /// connection's queue has room; when it has none, asks to hear when it drains.
    fn flush_deferred(&mut self, node: NodeId) {
        let max = self.max_push_bytes;
        let Some(c) = self.conns.get_mut(&node) else { return };
        while !c.deferred.is_empty() {
            let (mut n, mut size) = (0, 0);
            for rec in &c.deferred {
                let s = push_size(rec);
                if n > 0 && size + s > max {
                    break;
                }
                size += s;
                n += 1;
            }
            if !c.outbox.has_room(size) {
                if c.outbox.notify_when_drained() {
                    continue;
                }
                return;
            }
            let env = Envelope::new(Message::Push { ops: c.deferred.drain(..n).collect() });
            c.deferred_bytes -= size;
            let payload = match wire::encode(&env) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(%e, "cannot encode a push");
                    continue;
                }
            };
            if let Err(full) = c.outbox.try_send(payload) {
                // The estimate was short of the encoding: hold the ops again, wait for room.
                if let Message::Push { ops } = env.body {
                    c.deferred_bytes += size;
                    for rec in ops.into_iter().rev() {
                        c.deferred.push_front(rec);
                    }
                }
                tracing::trace!(%node, %full, "push waits for room");
                if !c.outbox.notify_when_drained() {
                    return;
                }
            }
        }
    }
}

/// Bytes an op takes in a `Push`, as the protocol counts them for its batch bound.
fn push_size(rec: &wire::OpRecord) -> usize {
    24 + rec.payload.len() + rec.deps.len() * 28
}

/// Merges pushes to the same peer into one message, up to `max_bytes` of ops each.
///
/// The protocol makes one `Push` per local update; a group commit of thousands of updates
/// would otherwise become thousands of frames, each encoded, queued and written on its own
/// (and, past the connection's queue, dropped and fetched again by anti-entropy). A push is
/// merged only into the peer's latest message, and only if that is a push too: the order of
/// messages to each peer is kept.
fn coalesce_pushes(sends: Vec<(ReplicaId, Message)>, max_bytes: usize) -> Vec<(ReplicaId, Message)> {
    let mut out: Vec<(ReplicaId, Message)> = Vec::with_capacity(sends.len());
    // Per peer: the index in `out` of its latest message if that is a push, and its size.
    let mut open: HashMap<ReplicaId, (usize, usize)> = HashMap::new();
    for (to, msg) in sends {
        match msg {
            Message::Push { ops } => {
                let size: usize = ops.iter().map(push_size).sum();
                if let Some((i, total)) = open.get_mut(&to)
                    && *total + size <= max_bytes
                    && let Some((_, Message::Push { ops: merged })) = out.get_mut(*i)
                {
                    merged.extend(ops);
                    *total += size;
                    continue;
                }
                open.insert(to, (out.len(), size));
                out.push((to, Message::Push { ops }));
            }
            other => {
                open.remove(&to);
                out.push((to, other));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use gossamer_crdt::{Dot, ReplicaId};

    use super::coalesce_pushes;
    use crate::wire::{Message, OpRecord};

    fn push(r: ReplicaId, counter: u64, len: usize) -> Message {
        let rec =
            OpRecord { dot: Dot::new(r, counter), deps: vec![], created_ms: 0, payload: Bytes::from(vec![0; len]) };
        Message::Push { ops: vec![rec] }
    }

    fn dots(m: &Message) -> Vec<u64> {
        match m {
            Message::Push { ops } => ops.iter().map(|r| r.dot.counter).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn pushes_merge_per_peer_in_order_and_within_the_bound() {
        let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
        let digest = Message::Digest { hash: 7, vv: None, reply: false };
        let sends = vec![
            (a, push(a, 1, 10)),
            (b, push(a, 1, 10)),
            (a, push(a, 2, 10)),
            (a, digest.clone()),
            (a, push(a, 3, 10)),
            (a, push(a, 4, 60)),
            (b, push(a, 2, 10)),
        ];
        // 34 bytes per 10-byte op, 84 for the 60-byte one: a bound of 100 fits two small ops.
        let out = coalesce_pushes(sends, 100);
        let summary: Vec<(ReplicaId, Vec<u64>)> = out.iter().map(|(to, m)| (*to, dots(m))).collect();
        assert_eq!(summary, vec![(a, vec![1, 2]), (b, vec![1, 2]), (a, vec![]), (a, vec![3]), (a, vec![4])],);
        assert!(matches!(out[2].1, Message::Digest { .. }));
    }
}
