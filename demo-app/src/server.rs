//! `cart serve`: the node, plus a web page on localhost and the JSON/SSE API behind it.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the page (static, embedded; no build step) |
//! | `GET /api/cart` | the cart: `{"items":[{"name","qty","note"}]}` |
//! | `POST /api/edit` | an [`Edit`] as JSON; answers the cart, or 400 `{"error", "refused"}` (the [`EditError`]) |
//! | `GET /api/status` | node, ticket, version vector, pending ops, peers and their status |
//! | `POST /api/offline` | `{"offline": bool}`: pause or resume gossip |
//! | `POST /api/trust` | `{"ticket": "gossamer://…"}` |
//! | `POST /api/sync` | anti-entropy with every peer now |
//! | `GET /api/events` | server-sent events: `state` (cart + status) on every change and every second |

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use gossamer_sync::net::Ticket;
use gossamer_sync::node::{Node, NodeHandle};
use gossamer_sync::protocol::{Config, PeerStatus};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::app::{self, AppError, CONTROL_FILE, Control};
use crate::model::{Cart, CartView, Edit, EditError, view};

const INDEX: &str = include_str!("web/index.html");
const SCRIPT: &str = include_str!("web/app.js");

/// A running `cart serve`.
///
/// ```
/// use gossamer_cart::model::Edit;
/// use gossamer_cart::{app, server};
/// use gossamer_sync::protocol::Config;
///
/// let dir = tempfile::tempdir()?;
/// app::init(dir.path(), Some("127.0.0.1:0".parse()?))?;
/// # // Worker threads serve HTTP while this thread waits for the answer.
/// # let rt = tokio::runtime::Runtime::new()?;
/// let serve = rt.block_on(server::start(dir.path(), "127.0.0.1:0".parse()?, Config::default()))?;
/// // An edit made on the node shows on the page's API.
/// let me = serve.node.replica_id();
/// let add = Edit::Add { name: "milk".into(), qty: 2 };
/// rt.block_on(serve.node.try_update(move |cart| add.apply(cart, me, app::now_ms())))??;
/// let (status, body) = app::request(serve.http, "GET", "/api/cart", None)?;
/// assert_eq!((status, body.as_str()), (200, r#"{"items":[{"name":"milk","qty":2,"note":""}]}"#));
/// rt.block_on(serve.stop());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Server {
    /// The node.
    pub node: NodeHandle<Cart>,
    /// Where the page is served.
    pub http: SocketAddr,
    dir: PathBuf,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// A peer on the status page.
///
/// ```
/// use gossamer_cart::{app, server};
/// use gossamer_sync::protocol::Config;
///
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
/// let mut servers = Vec::new();
/// for dir in [&dir_a, &dir_b] {
///     app::init(dir.path(), Some("127.0.0.1:0".parse()?))?;
///     servers.push(rt.block_on(server::start(dir.path(), "127.0.0.1:0".parse()?, Config::default()))?);
/// }
/// let (a, b) = (&servers[0], &servers[1]);
/// rt.block_on(a.node.trust(b.node.ticket()))?;
/// rt.block_on(b.node.trust(a.node.ticket()))?;
/// let peers = rt.block_on(server::status_view(&a.node))?.peers;
/// assert_eq!(peers.len(), 1);
/// let peer = &peers[0];
/// assert_eq!(peer.node, b.node.node_id().to_string());
/// assert!(peer.trusted && peer.node.starts_with(&peer.short) && peer.short.chars().count() == 8);
/// assert_eq!(peer.addr, Some(b.node.addr().to_string()));
/// assert!(["alive", "suspect", "down"].contains(&peer.status.as_str()));
/// for s in servers {
///     rt.block_on(s.stop());
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PeerView {
    /// Full node id.
    pub node: String,
    /// The first 8 characters, for display.
    pub short: String,
    /// Where it was last seen.
    pub addr: Option<String>,
    /// `alive`, `suspect` or `down`.
    pub status: String,
    /// A connection is open now.
    pub connected: bool,
    /// We trust it.
    pub trusted: bool,
    /// It reported the same version as ours.
    pub in_sync: bool,
}

/// The node's status on the page.
///
/// ```
/// use gossamer_cart::app;
/// use gossamer_cart::model::Edit;
/// use gossamer_cart::server::{self, StatusView};
/// use gossamer_sync::protocol::Config;
///
/// let dir = tempfile::tempdir()?;
/// app::init(dir.path(), Some("127.0.0.1:0".parse()?))?;
/// # // Worker threads serve HTTP while this thread waits for the answer.
/// # let rt = tokio::runtime::Runtime::new()?;
/// let serve = rt.block_on(server::start(dir.path(), "127.0.0.1:0".parse()?, Config::default()))?;
/// let me = serve.node.replica_id();
/// let add = Edit::Add { name: "milk".into(), qty: 2 };
/// rt.block_on(serve.node.try_update(move |cart| add.apply(cart, me, app::now_ms())))??;
/// let status = rt.block_on(server::status_view(&serve.node))?;
/// assert_eq!(status.node, serve.node.node_id().to_string());
/// assert!(status.node.starts_with(&status.short));
/// assert_eq!(status.ticket, serve.node.ticket().to_string());
/// assert!(!status.offline && status.peers.is_empty());
/// assert_eq!((status.version.len(), status.version[0].1, status.pending_ops), (1, 1, 0)); // one op, ours
/// // `GET /api/status` answers the same, as JSON.
/// let (_, body) = app::request(serve.http, "GET", "/api/status", None)?;
/// let served: StatusView = serde_json::from_str(&body)?;
/// assert_eq!((served.node, served.version), (status.node, status.version));
/// rt.block_on(serve.stop());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatusView {
    /// Full node id.
    pub node: String,
    /// First 8 characters.
    pub short: String,
    /// The ticket to give others.
    pub ticket: String,
    /// Gossip paused?
    pub offline: bool,
    /// Ops delivered per replica (short id → count).
    pub version: Vec<(String, u64)>,
    /// Ops waiting for their dependencies.
    pub pending_ops: usize,
    /// Ops in the log.
    pub log_ops: usize,
    /// The peers.
    pub peers: Vec<PeerView>,
}

#[derive(Clone)]
struct AppState {
    node: NodeHandle<Cart>,
}

/// Starts the node on `dir` (which `cart init` prepared) and the page on `http`; writes
/// `serve.json` so CLI commands on `dir` reach this server.
///
/// # Errors
/// [`AppError`] when the directory is not initialized or in use, or an address cannot be
/// bound.
///
/// ```
/// use gossamer_cart::{app, server};
/// use gossamer_sync::protocol::Config;
///
/// let dir = tempfile::tempdir()?;
/// app::init(dir.path(), Some("127.0.0.1:0".parse()?))?;
/// # let rt = tokio::runtime::Runtime::new()?;
/// let serve = rt.block_on(server::start(dir.path(), "127.0.0.1:0".parse()?, Config::default()))?;
/// // CLI commands on the directory now go through this server.
/// assert!(dir.path().join(app::CONTROL_FILE).exists());
/// // A second server on the same directory is refused: the running node holds it.
/// assert!(rt.block_on(server::start(dir.path(), "127.0.0.1:0".parse()?, Config::default())).is_err());
/// rt.block_on(serve.stop());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn start(dir: &Path, http: SocketAddr, protocol: Config) -> Result<Server, AppError> {
    let listen = app::listen_addr(dir)?;
    let node = Node::builder(dir).listen(listen).protocol(protocol).spawn::<Cart>().await?;
    let state = AppState { node: node.clone() };
    let router = Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route("/app.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT) }))
        .route("/api/cart", get(cart))
        .route("/api/edit", post(edit))
        .route("/api/status", get(status))
        .route("/api/offline", post(offline))
        .route("/api/trust", post(trust))
        .route("/api/sync", post(sync))
        .route("/api/events", get(events))
        .with_state(state);
    let listener = match tokio::net::TcpListener::bind(http).await {
        Ok(l) => l,
        Err(e) => {
            node.shutdown().await;
            return Err(AppError::Other(format!("cannot serve the page on {http}: {e}")));
        }
    };
    let http = listener.local_addr().map_err(|e| AppError::Other(e.to_string()))?;
    let control = Control { http, pid: std::process::id() };
    let json = serde_json::to_vec(&control).map_err(|e| AppError::Other(e.to_string()))?;
    // Written whole, then renamed: a CLI never reads half an address.
    let tmp = dir.join(format!(".{CONTROL_FILE}.tmp"));
    std::fs::write(&tmp, json)
        .and_then(|()| std::fs::rename(&tmp, dir.join(CONTROL_FILE)))
        .map_err(|e| AppError::Other(format!("cannot write {CONTROL_FILE}: {e}")))?;
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
            tracing::error!(%e, "the page server stopped");
        }
    });
    Ok(Server { node, http, dir: dir.to_owned(), stop, task })
}

impl Server {
    /// The page's URL.
    ///
    /// ```
    /// use gossamer_cart::{app, server};
    /// use gossamer_sync::protocol::Config;
    ///
    /// let dir = tempfile::tempdir()?;
    /// app::init(dir.path(), Some("127.0.0.1:0".parse()?))?;
    /// # // Worker threads serve HTTP while this thread waits for the answer.
    /// # let rt = tokio::runtime::Runtime::new()?;
    /// let serve = rt.block_on(server::start(dir.path(), "127.0.0.1:0".parse()?, Config::default()))?;
    /// assert_eq!(serve.url(), format!("http://{}/", serve.http));
    /// let (status, page) = app::request(serve.http, "GET", "/", None)?;
    /// assert!(status == 200 && page.contains("<title>Gossamer cart</title>"));
    /// rt.block_on(serve.stop());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn url(&self) -> String {
        format!("http://{}/", self.http)
    }

    /// Stops the page and the node, and removes `serve.json`.
    ///
    /// ```
    /// use gossamer_cart::model::Edit;
    /// use gossamer_cart::{app, server};
    /// use gossamer_sync::protocol::Config;
    ///
    /// let dir = tempfile::tempdir()?;
    /// app::init(dir.path(), Some("127.0.0.1:0".parse()?))?;
    /// # let rt = tokio::runtime::Runtime::new()?;
    /// let serve = rt.block_on(server::start(dir.path(), "127.0.0.1:0".parse()?, Config::default()))?;
    /// app::edit(dir.path(), &Edit::Add { name: "tea".into(), qty: 1 })?; // through the server
    /// rt.block_on(serve.stop());
    /// assert!(!dir.path().join(app::CONTROL_FILE).exists());
    /// // The directory is free again, and the edit was committed: offline commands see it.
    /// assert_eq!(app::list(dir.path())?.items[0].name, "tea");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        // Open event streams end with the node; do not wait for them forever.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.task).await;
        let _ = std::fs::remove_file(self.dir.join(CONTROL_FILE));
        self.node.shutdown().await;
    }
}

fn refuse(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(serde_json::json!({ "error": message.to_string() }))).into_response()
}

async fn cart(State(s): State<AppState>) -> Response {
    match s.node.read(view).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => refuse(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

/// A refused edit: 400 with the message and the [`EditError`] itself, so that the CLI
/// reports the same variant as it does offline.
fn refuse_edit(e: EditError) -> Response {
    (StatusCode::BAD_REQUEST, Json(serde_json::json!({ "error": e.to_string(), "refused": e }))).into_response()
}

async fn edit(State(s): State<AppState>, Json(edit): Json<Edit>) -> Response {
    if let Err(e) = edit.validate() {
        return refuse_edit(e);
    }
    let me = s.node.replica_id();
    let now = app::now_ms();
    match s.node.try_update(move |cart| edit.apply(cart, me, now)).await {
        Ok(Ok(_)) => cart(State(s)).await,
        Ok(Err(e)) => refuse_edit(e),
        Err(e) => refuse(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

/// The status as the page shows it.
///
/// # Errors
/// [`AppError::Node`] when the node has stopped.
///
/// ```
/// use gossamer_cart::{app, server};
/// use gossamer_sync::protocol::Config;
///
/// let dir = tempfile::tempdir()?;
/// app::init(dir.path(), Some("127.0.0.1:0".parse()?))?;
/// # let rt = tokio::runtime::Runtime::new()?;
/// let serve = rt.block_on(server::start(dir.path(), "127.0.0.1:0".parse()?, Config::default()))?;
/// let st = rt.block_on(server::status_view(&serve.node))?;
/// assert_eq!(st.node, serve.node.node_id().to_string());
/// assert!(st.node.starts_with(&st.short) && st.ticket.starts_with("gossamer://"));
/// assert!(!st.offline && st.peers.is_empty() && st.pending_ops == 0);
/// rt.block_on(serve.stop());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn status_view(node: &NodeHandle<Cart>) -> Result<StatusView, AppError> {
    let st = node.status().await?;
    let peers = node.peers().await?;
    let short = |s: String| s.chars().take(8).collect::<String>();
    Ok(StatusView {
        node: st.node.to_string(),
        short: short(st.node.to_string()),
        ticket: node.ticket().to_string(),
        offline: st.offline,
        version: st.version.iter().map(|(r, c)| (short(r.to_string()), c)).collect(),
        pending_ops: st.pending_ops,
        log_ops: st.log_ops,
        peers: peers
            .into_iter()
            .filter(|p| p.trusted)
            .map(|p| PeerView {
                node: p.node.to_string(),
                short: short(p.node.to_string()),
                addr: p.addr.map(|a| a.to_string()),
                status: match p.status {
                    PeerStatus::Alive => "alive",
                    PeerStatus::Suspect => "suspect",
                    PeerStatus::Down => "down",
                }
                .to_string(),
                connected: p.connected,
                trusted: p.trusted,
                in_sync: p.version.as_ref() == Some(&st.version),
            })
            .collect(),
    })
}

async fn status(State(s): State<AppState>) -> Response {
    match status_view(&s.node).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => refuse(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

#[derive(Deserialize)]
struct OfflineBody {
    offline: bool,
}

async fn offline(State(s): State<AppState>, Json(b): Json<OfflineBody>) -> Response {
    match s.node.set_offline(b.offline).await {
        Ok(()) => status(State(s)).await,
        Err(e) => refuse(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

#[derive(Deserialize)]
struct TrustBody {
    ticket: String,
}

async fn trust(State(s): State<AppState>, Json(b): Json<TrustBody>) -> Response {
    let ticket: Ticket = match b.ticket.parse() {
        Ok(t) => t,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("bad ticket: {e}")),
    };
    if ticket.node == s.node.node_id() {
        return refuse(StatusCode::BAD_REQUEST, "that is this cart's own ticket");
    }
    match s.node.trust(ticket).await {
        Ok(()) => status(State(s)).await,
        Err(e) => refuse(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn sync(State(s): State<AppState>) -> Response {
    match s.node.sync_now().await {
        Ok(()) => status(State(s)).await,
        Err(e) => refuse(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

#[derive(Serialize)]
struct PageState {
    cart: CartView,
    status: StatusView,
}

async fn page_state(node: &NodeHandle<Cart>) -> Option<String> {
    let cart = node.read(view).await.ok()?;
    let status = status_view(node).await.ok()?;
    serde_json::to_string(&PageState { cart, status }).ok()
}

/// Live updates: the whole page state on every change of the cart, and once a second (for
/// peer status and sync state).
async fn events(State(s): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let changes = s.node.subscribe();
    let stream = futures_util::stream::unfold((s.node, changes, true), |(node, mut changes, first)| async move {
        if !first {
            tokio::select! {
                r = changes.recv() => {
                    if let Err(tokio::sync::broadcast::error::RecvError::Closed) = r {
                        return None;
                    }
                }
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        let data = page_state(&node).await?;
        Some((Ok(Event::default().event("state").data(data)), (node, changes, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
