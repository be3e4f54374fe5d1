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
///
/// ```
/// use std::net::SocketAddr;
///
/// use gossamer_cart::app::{self, DEFAULT_PORT};
///
/// let dir = tempfile::tempdir()?;
/// app::init(dir.path(), None)?; // no address given
/// assert_eq!(app::listen_addr(dir.path())?, SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const DEFAULT_PORT: u16 = 4747;
/// Store metadata key of the address the node listens on.
///
/// ```
/// use gossamer_cart::app::{self, LISTEN_KEY};
/// use gossamer_sync::node::STORE_FILE;
/// use gossamer_sync::store::{SqliteStore, Store};
///
/// let dir = tempfile::tempdir()?;
/// app::init(dir.path(), Some("127.0.0.1:4800".parse()?))?;
/// let store = SqliteStore::open(dir.path().join(STORE_FILE))?;
/// assert_eq!(store.get_meta(LISTEN_KEY)?.as_deref(), Some(&b"127.0.0.1:4800"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const LISTEN_KEY: &str = "cart.listen";
/// The file a running `cart serve` leaves in its data directory.
///
/// ```
/// use gossamer_cart::app::{self, CONTROL_FILE};
/// use gossamer_cart::server;
/// use gossamer_sync::protocol::Config;
///
/// let dir = tempfile::tempdir()?;
/// app::init(dir.path(), Some("127.0.0.1:0".parse()?))?;
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// let serve = rt.block_on(server::start(dir.path(), "127.0.0.1:0".parse()?, Config::default()))?;
/// assert!(dir.path().join(CONTROL_FILE).exists()); // while it runs
/// rt.block_on(serve.stop());
/// assert!(!dir.path().join(CONTROL_FILE).exists()); // a clean stop removes it
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const CONTROL_FILE: &str = "serve.json";

/// What went wrong, in one line for people.
///
/// ```
/// use gossamer_cart::app::{self, AppError};
/// use gossamer_cart::model::{Edit, EditError};
///
/// let dir = tempfile::tempdir()?;
/// let bread = Edit::Dec { name: "bread".into(), n: 1 };
/// let not_yet = app::edit(dir.path(), &bread).unwrap_err();
/// assert!(matches!(not_yet, AppError::NotInitialized(_)));
/// assert!(not_yet.to_string().ends_with("run `cart init` first"));
/// app::init(dir.path(), Some("127.0.0.1:0".parse()?))?;
/// let refused = app::edit(dir.path(), &bread).unwrap_err();
/// assert!(matches!(&refused, AppError::Edit(EditError::NotInCart(name)) if name == "bread"));
/// assert_eq!(refused.to_string(), "bread is not in the cart");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
///
/// ```
/// use gossamer_cart::app;
///
/// let dir = app::default_data_dir();
/// // Per platform, e.g. `~/.local/share/cart`; `.cart` where there is no home directory.
/// assert!(dir.to_string_lossy().contains("cart"));
/// ```
pub fn default_data_dir() -> PathBuf {
    directories::ProjectDirs::from("dev", "gossamer", "cart")
        .map(|p| p.data_dir().to_owned())
        .unwrap_or_else(|| PathBuf::from(".cart"))
}

/// Wall-clock milliseconds.
///
/// ```
/// use std::time::{SystemTime, UNIX_EPOCH};
///
/// use gossamer_cart::app;
///
/// let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
/// let now = app::now_ms();
/// assert!(now >= before && now - before < 60_000);
/// ```
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// True when `dir` holds a cart (`cart init` ran there).
///
/// ```
/// use gossamer_cart::app;
///
/// let dir = tempfile::tempdir()?;
/// let data = dir.path().join("cart");
/// assert!(!app::is_initialized(&data));
/// app::init(&data, Some("127.0.0.1:0".parse()?))?;
/// assert!(app::is_initialized(&data));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn is_initialized(dir: &Path) -> bool {
    dir.join(gossamer_sync::net::KEY_FILE).exists() && dir.join(STORE_FILE).exists()
}

fn require_init(dir: &Path) -> Result<(), AppError> {
    if is_initialized(dir) { Ok(()) } else { Err(AppError::NotInitialized(dir.to_owned())) }
}

/// The address to put in tickets for a node listening on `listen`: an unspecified address
/// (`0.0.0.0`) becomes this machine's address on the default route, or loopback.
///
/// ```
/// use std::net::SocketAddr;
///
/// use gossamer_cart::app;
///
/// let lan: SocketAddr = "192.168.1.20:4747".parse()?;
/// assert_eq!(app::advertised(lan), lan); // a specific address is advertised as it is
/// // "Every interface" is no address to dial: this machine's address (or loopback) instead.
/// let any = app::advertised("0.0.0.0:4747".parse()?);
/// assert!(!any.ip().is_unspecified());
/// assert_eq!(any.port(), 4747);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
///
/// ```
/// use gossamer_cart::app;
/// use gossamer_cart::model::Edit;
///
/// let dir = tempfile::tempdir()?;
/// let data = dir.path().join("cart"); // created if needed
/// let ticket = app::init(&data, Some("127.0.0.1:4800".parse()?))?;
/// assert!(app::is_initialized(&data));
/// assert_eq!(ticket.addr.to_string(), "127.0.0.1:4800");
/// app::edit(&data, &Edit::Add { name: "milk".into(), qty: 2 })?;
/// // Again, with a new address: the same identity and cart, the new address.
/// let again = app::init(&data, Some("127.0.0.1:4801".parse()?))?;
/// assert_eq!((again.node, again.addr.port()), (ticket.node, 4801));
/// assert_eq!(app::list(&data)?.items[0].name, "milk");
/// // Again, with none: the address stays.
/// assert_eq!(app::init(&data, None)?, again);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
///
/// ```
/// use std::net::SocketAddr;
///
/// use gossamer_cart::app::{self, AppError};
///
/// let dir = tempfile::tempdir()?;
/// assert!(matches!(app::listen_addr(dir.path()), Err(AppError::NotInitialized(_))));
/// app::init(dir.path(), Some("127.0.0.1:4800".parse()?))?;
/// assert_eq!(app::listen_addr(dir.path())?, "127.0.0.1:4800".parse::<SocketAddr>()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn listen_addr(dir: &Path) -> Result<SocketAddr, AppError> {
    require_init(dir)?;
    let store = gossamer_sync::store::SqliteStore::open(dir.join(STORE_FILE)).map_err(NodeError::from)?;
    Ok(listen_of(&store).unwrap_or(SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT))))
}

/// `cart ticket`: how others reach this cart.
///
/// # Errors
/// [`AppError::NotInitialized`] or an identity error.
///
/// ```
/// use gossamer_cart::app;
/// use gossamer_sync::net::Ticket;
///
/// let dir = tempfile::tempdir()?;
/// assert!(app::ticket(dir.path()).is_err()); // no cart yet
/// let from_init = app::init(dir.path(), Some("127.0.0.1:4800".parse()?))?;
/// let ticket = app::ticket(dir.path())?;
/// assert_eq!(ticket, from_init);
/// let text = ticket.to_string(); // what a user copies to another device
/// assert!(text.starts_with("gossamer://") && text.ends_with("@127.0.0.1:4800"));
/// assert_eq!(text.parse::<Ticket>()?, ticket);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn ticket(dir: &Path) -> Result<Ticket, AppError> {
    require_init(dir)?;
    let identity = Identity::load(dir).map_err(NodeError::from)?;
    Ok(Ticket::new(identity.node_id(), advertised(listen_addr(dir)?)))
}

/// What a running `cart serve` writes into its directory.
///
/// ```
/// use gossamer_cart::app::{self, CONTROL_FILE, Control};
/// use gossamer_cart::server;
/// use gossamer_sync::protocol::Config;
///
/// let dir = tempfile::tempdir()?;
/// app::init(dir.path(), Some("127.0.0.1:0".parse()?))?;
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// let serve = rt.block_on(server::start(dir.path(), "127.0.0.1:0".parse()?, Config::default()))?;
/// let control: Control = serde_json::from_slice(&std::fs::read(dir.path().join(CONTROL_FILE))?)?;
/// assert_eq!((control.http, control.pid), (serve.http, std::process::id()));
/// rt.block_on(serve.stop());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
///
/// ```
/// use gossamer_cart::app::{self, AppError};
/// use gossamer_cart::model::{Edit, EditError, view};
/// use gossamer_cart::server;
/// use gossamer_sync::protocol::Config;
///
/// let dir = tempfile::tempdir()?;
/// app::init(dir.path(), Some("127.0.0.1:0".parse()?))?;
/// // With no server on the directory, straight on its store.
/// let cart = app::edit(dir.path(), &Edit::Add { name: "milk".into(), qty: 2 })?;
/// assert_eq!(cart.items[0].qty, 2);
/// let refused = app::edit(dir.path(), &Edit::Dec { name: "bread".into(), n: 1 });
/// assert!(matches!(refused, Err(AppError::Edit(EditError::NotInCart(_)))));
/// // While `cart serve` runs on it, through the server: the running node has the edit at once.
/// # // Worker threads serve HTTP while this thread waits for the answer.
/// # let rt = tokio::runtime::Runtime::new()?;
/// let serve = rt.block_on(server::start(dir.path(), "127.0.0.1:0".parse()?, Config::default()))?;
/// let cart = app::edit(dir.path(), &Edit::Inc { name: "milk".into(), n: 1 })?;
/// assert_eq!(cart.items[0].qty, 3);
/// assert_eq!(rt.block_on(serve.node.read(view))?, cart);
/// // A refusal through the server is the same error as offline.
/// let refused = app::edit(dir.path(), &Edit::Dec { name: "bread".into(), n: 1 });
/// assert!(matches!(refused, Err(AppError::Edit(EditError::NotInCart(_)))));
/// rt.block_on(serve.stop());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
///
/// ```
/// use gossamer_cart::app;
/// use gossamer_cart::model::Edit;
///
/// let dir = tempfile::tempdir()?;
/// app::init(dir.path(), Some("127.0.0.1:0".parse()?))?;
/// assert!(app::list(dir.path())?.items.is_empty());
/// app::edit(dir.path(), &Edit::Add { name: "eggs".into(), qty: 12 })?;
/// assert_eq!(app::list(dir.path())?.to_string(), "  12 × eggs\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
///
/// ```
/// use gossamer_cart::app::{self, AppError};
/// use gossamer_sync::node::STORE_FILE;
/// use gossamer_sync::store::{SqliteStore, Store};
///
/// let (mine, theirs) = (tempfile::tempdir()?, tempfile::tempdir()?);
/// app::init(mine.path(), Some("127.0.0.1:4800".parse()?))?;
/// let their_ticket = app::init(theirs.path(), Some("127.0.0.1:4801".parse()?))?;
/// app::trust(mine.path(), &their_ticket)?;
/// let peers = SqliteStore::open(mine.path().join(STORE_FILE))?.peers()?;
/// assert!(peers.iter().any(|p| p.node == their_ticket.node && p.trusted && p.addr == Some(their_ticket.addr)));
/// // A cart's own ticket is refused.
/// let own = app::ticket(mine.path())?;
/// assert!(matches!(app::trust(mine.path(), &own), Err(AppError::Other(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
        /// Present when an edit was refused: the same error as offline.
        #[serde(default)]
        refused: Option<EditError>,
    }
    match serde_json::from_str::<Refusal>(body) {
        Ok(Refusal { refused: Some(e), .. }) => AppError::Edit(e),
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
/// let add = r#"{"kind":"add","name":"milk","qty":2}"#;
/// let (status, body) = app::request(serve.http, "POST", "/api/edit", Some(add))?;
/// assert_eq!((status, body.as_str()), (200, r#"{"items":[{"name":"milk","qty":2,"note":""}]}"#));
/// let (status, body) = app::request(serve.http, "POST", "/api/edit", Some(r#"{"kind":"remove","name":"tea"}"#))?;
/// assert_eq!((status, body.as_str()), (400, r#"{"error":"tea is not in the cart","refused":{"not_in_cart":"tea"}}"#));
/// rt.block_on(serve.stop());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
