//! The data directory and the commands people run against it.
//!
//! Every command works offline, straight on the directory's store. While `cart serve` runs
//! on a directory it holds the directory's lock; then a command is sent to it over HTTP (its
//! address is in `serve.json`), so the edit reaches the running node — and its peers — at
//! once, without a restart.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gossamer_sync::net::{Identity, Ticket};
use gossamer_sync::node::{LocalReplica, NodeError, STORE_FILE};
use gossamer_sync::store::{PeerRecord, Store};
use serde::{Deserialize, Serialize};

use crate::model::{Cart, CartView, Edit, EditError, view};

/// The port `cart init` listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 4747;
/// Store metadata key of the address the node listens on.
pub const LISTEN_KEY: &str = "cart.listen";
/// The file a running `cart serve` leaves in its data directory.
pub const CONTROL_FILE: &str = "serve.json";

/// What went wrong, in one line for people.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The directory has no cart yet.
    #[error("no cart in {}: run `cart init` first", .0.display())]
    NotInitialized(PathBuf),
    /// The edit was refused (nothing changed).
    #[error("{0}")]
    Edit(#[from] EditError),
    /// The node, store or network failed.
    #[error("{0}")]
    Node(#[from] NodeError),
    /// The running server could not be reached or refused the request.
    #[error("the running `cart serve` on {dir}: {reason}")]
    Server {
        /// Its data directory.
        dir: PathBuf,
        /// What happened.
        reason: String,
    },
    /// Something else, said plainly.
    #[error("{0}")]
    Other(String),
}

/// The platform's data directory for the cart (e.g. `~/.local/share/cart`).
pub fn default_data_dir() -> PathBuf {
    directories::ProjectDirs::from("dev", "gossamer", "cart")
        .map(|p| p.data_dir().to_owned())
        .unwrap_or_else(|| PathBuf::from(".cart"))
}

/// Wall-clock milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// True when `dir` holds a cart (`cart init` ran there).
pub fn is_initialized(dir: &Path) -> bool {
    dir.join(gossamer_sync::net::KEY_FILE).exists() && dir.join(STORE_FILE).exists()
}

fn require_init(dir: &Path) -> Result<(), AppError> {
    if is_initialized(dir) { Ok(()) } else { Err(AppError::NotInitialized(dir.to_owned())) }
}

/// The address to put in tickets for a node listening on `listen`: an unspecified address
/// (`0.0.0.0`) becomes this machine's address on the default route, or loopback.
pub fn advertised(listen: SocketAddr) -> SocketAddr {
    if !listen.ip().is_unspecified() {
        return listen;
    }
    // `connect` on UDP sends nothing; it only picks the outgoing interface.
    let ip = UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|()| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    SocketAddr::new(ip, listen.port())
}

/// `cart init`: creates the identity and the store, remembers the listen address. Running it
/// again keeps the identity and the cart, and updates the address if one is given.
///
/// # Errors
/// [`AppError`] if the directory cannot be written or is in use.
pub fn init(dir: &Path, listen: Option<SocketAddr>) -> Result<Ticket, AppError> {
    let mut local = LocalReplica::<Cart>::open(dir)?;
    let store = local.store();
    let current = listen_of(store);
    let listen = listen.or(current).unwrap_or(SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)));
    store.put_meta(LISTEN_KEY, listen.to_string().as_bytes()).map_err(NodeError::from)?;
    Ok(Ticket::new(local.node_id(), advertised(listen)))
}

fn listen_of(store: &dyn Store) -> Option<SocketAddr> {
    store.get_meta(LISTEN_KEY).ok().flatten().and_then(|v| String::from_utf8(v).ok()).and_then(|s| s.parse().ok())
}

/// The address `cart serve` on `dir` listens on (as `cart init` set it).
///
/// # Errors
/// [`AppError::NotInitialized`].
pub fn listen_addr(dir: &Path) -> Result<SocketAddr, AppError> {
    require_init(dir)?;
    let store = gossamer_sync::store::SqliteStore::open(dir.join(STORE_FILE)).map_err(NodeError::from)?;
    Ok(listen_of(&store).unwrap_or(SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT))))
}

/// `cart ticket`: how others reach this cart.
///
/// # Errors
/// [`AppError::NotInitialized`] or an identity error.
pub fn ticket(dir: &Path) -> Result<Ticket, AppError> {
    require_init(dir)?;
    let identity = Identity::load(dir).map_err(NodeError::from)?;
    Ok(Ticket::new(identity.node_id(), advertised(listen_addr(dir)?)))
}

/// What a running `cart serve` writes into its directory.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Control {
    /// Its HTTP address.
    pub http: SocketAddr,
    /// Its process id.
    pub pid: u32,
}

/// Where a command goes: straight to the store, or to the running server.
enum Target {
    Local(Box<LocalReplica<Cart>>),
    Remote(SocketAddr),
}

fn target(dir: &Path) -> Result<Target, AppError> {
    require_init(dir)?;
    // A server that is starting up holds the lock before it has written its address.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match LocalReplica::<Cart>::open(dir) {
            Ok(local) => return Ok(Target::Local(Box::new(local))),
            Err(NodeError::Locked { .. }) => {
                if let Some(http) = answering_server(dir) {
                    return Ok(Target::Remote(http));
                }
                if std::time::Instant::now() > deadline {
                    return Err(AppError::Server {
                        dir: dir.to_owned(),
                        reason: "the directory is in use, and no server answers on it".into(),
                    });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The address in `serve.json`, if a server answers there. A killed server leaves the file
/// behind, and another command holding the lock for a moment is not a server: both mean
/// "wait for the lock", not "send the edit to a dead address".
fn answering_server(dir: &Path) -> Option<SocketAddr> {
    let bytes = std::fs::read(dir.join(CONTROL_FILE)).ok()?;
    let control = serde_json::from_slice::<Control>(&bytes).ok()?;
    TcpStream::connect_timeout(&control.http, Duration::from_millis(500)).ok().map(|_| control.http)
}

/// Applies an edit, offline or through the running server; returns the cart after it.
///
/// # Errors
/// [`AppError::Edit`] when the edit is refused (nothing changed), or a store/server error.
pub fn edit(dir: &Path, edit: &Edit) -> Result<CartView, AppError> {
    edit.validate()?;
    match target(dir)? {
        Target::Local(mut local) => {
            let me = local.replica_id();
            let now = now_ms();
            let e = edit.clone();
            local.try_update(move |cart| e.apply(cart, me, now))??;
            Ok(view(local.state()))
        }
        Target::Remote(http) => {
            let body = serde_json::to_string(edit).map_err(|e| AppError::Other(e.to_string()))?;
            parse(dir, request(http, "POST", "/api/edit", Some(&body)))
        }
    }
}

/// `cart list`.
///
/// # Errors
/// A store or server error.
pub fn list(dir: &Path) -> Result<CartView, AppError> {
    match target(dir)? {
        Target::Local(local) => Ok(view(local.state())),
        Target::Remote(http) => parse(dir, request(http, "GET", "/api/cart", None)),
    }
}

/// `cart trust TICKET`: trusts that node and remembers it as a peer.
///
/// # Errors
/// A store or server error.
pub fn trust(dir: &Path, ticket: &Ticket) -> Result<(), AppError> {
    match target(dir)? {
        Target::Local(mut local) => {
            if ticket.node == local.node_id() {
                return Err(AppError::Other("that is this cart's own ticket".into()));
            }
            let store = local.store();
            let mut rec = store
                .peers()
                .map_err(NodeError::from)?
                .into_iter()
                .find(|p| p.node == ticket.node)
                .unwrap_or(PeerRecord::new(ticket.node));
            rec.trusted = true;
            rec.addr = Some(ticket.addr);
            store.put_peer(&rec).map_err(NodeError::from)?;
            Ok(())
        }
        Target::Remote(http) => {
            let body = serde_json::json!({ "ticket": ticket.to_string() }).to_string();
            let (status, text) =
                request(http, "POST", "/api/trust", Some(&body)).map_err(|reason| server(dir, reason))?;
            if status == 200 { Ok(()) } else { Err(server_refusal(dir, &text)) }
        }
    }
}

fn server(dir: &Path, reason: String) -> AppError {
    AppError::Server { dir: dir.to_owned(), reason }
}

fn server_refusal(dir: &Path, body: &str) -> AppError {
    #[derive(Deserialize)]
    struct Refusal {
        error: String,
    }
    match serde_json::from_str::<Refusal>(body) {
        Ok(r) => AppError::Other(r.error),
        Err(_) => server(dir, format!("unexpected answer: {body}")),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(dir: &Path, answer: Result<(u16, String), String>) -> Result<T, AppError> {
    let (status, body) = answer.map_err(|reason| server(dir, reason))?;
    if status != 200 {
        return Err(server_refusal(dir, &body));
    }
    serde_json::from_str(&body).map_err(|e| server(dir, format!("unexpected answer: {e}")))
}

/// A minimal HTTP/1.1 client for talking to our own server on loopback: one request per
/// connection, `Connection: close`.
pub fn request(addr: SocketAddr, method: &str, path: &str, json: Option<&str>) -> Result<(u16, String), String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| format!("cannot connect: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    let body = json.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).map_err(|e| format!("cannot send: {e}"))?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| format!("no answer: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("malformed answer")?;
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse::<u16>().ok()).ok_or("malformed status line")?;
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    let body = if chunked { dechunk(body) } else { body.to_string() };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}
