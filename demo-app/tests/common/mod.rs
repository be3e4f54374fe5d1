//! Helpers shared by the end-to-end and browser tests: real `cart` processes on loopback, each
//! with its own data directory, and a guard that kills them when a test ends or fails.

#![allow(dead_code)] // Each test binary uses its own subset.

use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use gossamer_cart::app::{CONTROL_FILE, Control};
use gossamer_cart::model::{CartView, ItemView};

/// How long anything may take to converge or start: generous, because CI machines are shared.
/// Tests poll against it; none asserts how fast something happened.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The `cart` binary Cargo built for these tests.
pub fn cart_bin() -> &'static str {
    env!("CARGO_BIN_EXE_cart")
}

/// A UDP port on loopback that was free a moment ago (the QUIC listen address of a node).
pub fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind an ephemeral UDP port");
    socket.local_addr().expect("its address").port()
}

/// Polls `check` until it returns `Ok` or `PATIENCE` runs out; then panics with `what` and the
/// last reason `check` gave.
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match check() {
            Ok(v) => return v,
            Err(reason) if Instant::now() > deadline => {
                panic!("{what}: not within {} s; last: {reason}", PATIENCE.as_secs())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// A cart as `cart list --json` prints it, built from `(name, qty, note)`.
pub fn cart(items: &[(&str, i64, &str)]) -> CartView {
    CartView {
        items: items.iter().map(|&(name, qty, note)| ItemView { name: name.into(), qty, note: note.into() }).collect(),
    }
}

/// What one `cart` command did.
#[derive(Debug)]
pub struct Run {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            status: o.status,
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// One device: a data directory (in a temporary directory that also holds the server's log)
/// and, while it runs, its `cart serve`.
pub struct Device {
    /// A name for messages.
    pub name: &'static str,
    root: tempfile::TempDir,
    /// The QUIC address `cart init --listen` gave it.
    pub listen: SocketAddr,
    server: Option<Serve>,
}

impl Device {
    /// `cart init --listen 127.0.0.1:<free port>` in a fresh directory.
    pub fn init(name: &'static str) -> Device {
        let root = tempfile::Builder::new().prefix(&format!("cart-e2e-{name}-")).tempdir().expect("a temp dir");
        let listen = SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
        let dev = Device { name, root, listen, server: None };
        let out = dev.ok(&["init", "--listen", &listen.to_string()]);
        assert!(out.contains("cart ready in"), "{name}: init said {out:?}");
        dev
    }

    /// The data directory.
    pub fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.root.path().join("serve.log")
    }

    /// Runs `cart --data DIR ARGS…` to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        Command::new(cart_bin())
            .arg("--data")
            .arg(self.data())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run cart")
            .into()
    }

    /// Runs a command that must succeed; returns its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert!(r.status.success(), "{}: `cart {}` failed ({}): {}", self.name, args.join(" "), r.status, r.stderr);
        r.stdout
    }

    /// `cart list --json`, parsed.
    pub fn list(&self) -> CartView {
        let out = self.ok(&["list", "--json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{}: list --json printed {out:?}: {e}", self.name))
    }

    /// `cart ticket`.
    pub fn ticket(&self) -> String {
        self.ok(&["ticket"]).trim().to_string()
    }

    /// Each trusts the other (`cart ticket` on one, `cart trust` on the other, both ways).
    pub fn pair(&self, other: &Device) {
        self.ok(&["trust", &other.ticket()]);
        other.ok(&["trust", &self.ticket()]);
    }

    /// Starts `cart serve --http 127.0.0.1:0` and waits until it wrote its address.
    pub fn serve(&mut self) -> SocketAddr {
        assert!(self.server.is_none(), "{} is already serving", self.name);
        let log = File::options().create(true).append(true).open(self.log()).expect("the server log");
        let child = Command::new(cart_bin())
            .arg("--data")
            .arg(self.data())
            .args(["serve", "--http", "127.0.0.1:0"])
            .env("CART_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the server log"))
            .stderr(log)
            .spawn()
            .expect("spawn cart serve");
        let pid = child.id();
        let mut server = Serve { child, http: None };
        let data = self.data();
        let http = eventually(&format!("{} serve writes {CONTROL_FILE}", self.name), || {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("{}: cart serve exited early ({status}): {}", self.name, self.server_log());
            }
            control(&data).filter(|c| c.pid == pid).map(|c| c.http).ok_or_else(|| "no address yet".to_string())
        });
        server.http = Some(http);
        self.server = Some(server);
        http
    }

    /// The running server's page address.
    pub fn http(&self) -> SocketAddr {
        self.server.as_ref().and_then(|s| s.http).expect("a running server")
    }

    /// Is `cart serve` running on this device?
    pub fn serving(&self) -> bool {
        self.server.is_some()
    }

    /// Kills the server with SIGKILL: nothing gets a chance to clean up.
    pub fn kill(&mut self) {
        drop(self.server.take().expect("a running server"));
    }

    /// Stops the server as Ctrl-C would (SIGINT) and waits for it; returns its exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut s = self.server.take().expect("a running server");
        let sent = Command::new("kill").args(["-INT", &s.child.id().to_string()]).status().expect("run kill");
        assert!(sent.success(), "kill -INT failed");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = s.child.try_wait().expect("wait for cart serve") {
                return status;
            }
            assert!(Instant::now() < deadline, "{}: cart serve did not stop after SIGINT", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the server wrote so far (for failure messages).
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// Polls until `cart list --json` shows `want`.
    pub fn sees(&self, want: &CartView) {
        eventually(&format!("{} shows {want:?}", self.name), || {
            let got = self.list();
            if &got == want { Ok(()) } else { Err(format!("{got:?}")) }
        });
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        drop(self.server.take());
        if std::thread::panicking() {
            let log = self.server_log();
            if !log.is_empty() {
                eprintln!("--- {} serve log ---\n{log}", self.name);
            }
        }
    }
}

/// The address a running server left in `dir`.
pub fn control(dir: &Path) -> Option<Control> {
    let bytes = std::fs::read(dir.join(CONTROL_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A running `cart serve`, killed (SIGKILL) and reaped when dropped, so a failing test leaves
/// no orphans.
pub struct Serve {
    child: Child,
    http: Option<SocketAddr>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Any child process, killed and reaped on drop.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
