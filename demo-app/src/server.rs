//! `cart serve`: the node, plus a web page on localhost and the JSON/SSE API behind it.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the page (static, embedded; no build step) |
//! | `GET /api/cart` | the cart: `{"items":[{"name","qty","note"}]}` |
//! | `POST /api/edit` | an [`Edit`] as JSON; answers the cart, or 400 `{"error"}` |
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
use crate::model::{Cart, CartView, Edit, view};

const INDEX: &str = include_str!("web/index.html");
const SCRIPT: &str = include_str!("web/app.js");

/// A running `cart serve`.
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
    pub fn url(&self) -> String {
        format!("http://{}/", self.http)
    }

    /// Stops the page and the node, and removes `serve.json`.
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

async fn edit(State(s): State<AppState>, Json(edit): Json<Edit>) -> Response {
    if let Err(e) = edit.validate() {
        return refuse(StatusCode::BAD_REQUEST, e);
    }
    let me = s.node.replica_id();
    let now = app::now_ms();
    match s.node.try_update(move |cart| edit.apply(cart, me, now)).await {
        Ok(Ok(_)) => cart(State(s)).await,
        Ok(Err(e)) => refuse(StatusCode::BAD_REQUEST, e),
        Err(e) => refuse(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

/// The status as the page shows it.
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
