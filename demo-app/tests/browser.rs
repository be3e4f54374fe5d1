//! The web page in a real browser: two `cart serve --http` nodes on loopback, one headless
//! Debian Chromium page on each, driven over the W3C WebDriver HTTP protocol by chromedriver.
//! Clicking +, −, remove and add on one replica's page must show on the other replica's page.
//! Screenshots go to `target/artifacts/*.png` (from the workspace root).
//!
//! Ignored by default (it needs `chromium` and `chromium-driver`; `.ci/install-browser.sh`
//! installs them): `cargo test -p gossamer-cart --test browser -- --ignored`. Set `CHROMIUM`
//! and `CHROMEDRIVER` to use binaries other than `/usr/bin/chromium` and `/usr/bin/chromedriver`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{ChildGuard, Device, eventually};
use serde_json::{Value, json};

/// The key W3C WebDriver uses for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One HTTP/1.1 request to chromedriver on loopback (`Connection: close`); answers the JSON
/// `value`, or the WebDriver error as a string.
fn call(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| format!("connect: {e}"))?;
    // Starting a browser on a busy machine can take a while.
    stream.set_read_timeout(Some(Duration::from_secs(90))).map_err(|e| e.to_string())?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(|e| format!("send: {e}"))?;
    let payload = read_answer(&mut stream).map_err(|e| format!("{method} {path}: {e}"))?;
    let answer: Value = serde_json::from_slice(&payload)
        .map_err(|e| format!("{method} {path}: not JSON ({e}): {}", String::from_utf8_lossy(&payload)))?;
    let value = answer.get("value").cloned().unwrap_or(Value::Null);
    match value.get("error") {
        Some(error) => Err(format!("{method} {path}: {error}: {}", value["message"])),
        None => Ok(value),
    }
}

/// Reads one HTTP answer's body: chromedriver says `Connection: close` but may keep the socket
/// open, so stop at `Content-Length` rather than at end of stream.
fn read_answer(stream: &mut TcpStream) -> Result<Vec<u8>, String> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            let body = &raw[split + 4..];
            match length {
                Some(n) if body.len() >= n => return Ok(body[..n].to_vec()),
                None if head.contains("transfer-encoding: chunked") && body.ends_with(b"0\r\n\r\n") => {
                    return Ok(dechunk(body));
                }
                _ => {}
            }
        }
        let n = stream.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("malformed answer")?;
            return Ok(raw[split + 4..].to_vec());
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..line_end]).ok().and_then(|s| usize::from_str_radix(s.trim(), 16).ok());
        let Some(n) = size.filter(|&n| n > 0 && body.len() >= line_end + 2 + n) else { break };
        out.extend_from_slice(&body[line_end + 2..line_end + 2 + n]);
        body = body[line_end + 2 + n..].strip_prefix(b"\r\n").unwrap_or(&body[line_end + 2 + n..]);
    }
    out
}

/// Standard base64 (what WebDriver screenshots are in).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let sextets: Vec<u8> = text.bytes().filter_map(value).collect();
    let mut out = Vec::with_capacity(sextets.len() * 3 / 4);
    for chunk in sextets.chunks(4) {
        let bits = chunk.iter().enumerate().fold(0u32, |acc, (i, &s)| acc | (u32::from(s) << (18 - 6 * i)));
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

/// chromedriver, killed when dropped (after its sessions are closed).
struct Driver {
    addr: SocketAddr,
    _process: ChildGuard,
}

impl Driver {
    fn start(log: PathBuf) -> Driver {
        let bin = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let log = std::fs::File::create(log).expect("the chromedriver log");
        let process = Command::new(&bin)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the chromedriver log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin} ({e}): run .ci/install-browser.sh"));
        let driver = Driver { addr: SocketAddr::from(([127, 0, 0, 1], port)), _process: ChildGuard(process) };
        eventually("chromedriver is ready", || {
            let status = call(driver.addr, "GET", "/status", None)?;
            if status["ready"] == true { Ok(()) } else { Err(status.to_string()) }
        });
        driver
    }

    /// A new headless browser.
    fn session(&self) -> Session<'_> {
        let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,720",
                         "--disable-gpu", "--no-first-run", "--disable-extensions"],
            },
        }}});
        let answer = call(self.addr, "POST", "/session", Some(&capabilities)).expect("a browser session");
        let id = answer["sessionId"].as_str().expect("a session id").to_string();
        Session { driver: self, id }
    }
}

/// One browser window, closed when dropped.
struct Session<'d> {
    driver: &'d Driver,
    id: String,
}

impl Session<'_> {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        call(self.driver.addr, method, &format!("/session/{}{path}", self.id), body.as_ref())
    }

    fn open(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url }))).expect("navigate");
    }

    fn find(&self, css: &str) -> Result<String, String> {
        let found = self.call("POST", "/element", Some(json!({ "using": "css selector", "value": css })))?;
        found[ELEMENT].as_str().map(str::to_string).ok_or_else(|| format!("no element id in {found}"))
    }

    /// Clicks the element `css` selects, retrying while the page re-renders under us.
    fn click(&self, css: &str) {
        eventually(&format!("click {css}"), || {
            self.call("POST", &format!("/element/{}/click", self.find(css)?), Some(json!({})))
        });
    }

    fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).expect(css);
        self.call("POST", &format!("/element/{el}/clear"), Some(json!({}))).expect("clear");
        self.call("POST", &format!("/element/{el}/value"), Some(json!({ "text": text }))).expect("type");
    }

    /// Fills in the add form and submits it; waits until the page took it (the form clears).
    fn add(&self, name: &str, qty: u32) {
        self.type_into("#add-name", name);
        self.type_into("#add-qty", &qty.to_string());
        self.click("#add-button");
        eventually(&format!("the page accepts {name}"), || {
            let left = self.script("return document.getElementById('add-name').value;")?;
            if left == "" { Ok(()) } else { Err(format!("the form still holds {left}")) }
        });
    }

    fn script(&self, body: &str) -> Result<Value, String> {
        self.call("POST", "/execute/sync", Some(json!({ "script": body, "args": [] })))
    }

    /// The cart as the page shows it: `[(name, qty)]` from the table rows.
    fn items(&self) -> Result<Vec<(String, String)>, String> {
        let rows = self.script(
            "return Array.from(document.querySelectorAll('#items tr')).map(r => \
             [r.dataset.item, r.querySelector('.qty-value').textContent]);",
        )?;
        serde_json::from_value(rows).map_err(|e| e.to_string())
    }

    /// Polls the page until it shows exactly `want`.
    fn shows(&self, what: &str, want: &[(&str, &str)]) {
        let want: Vec<(String, String)> = want.iter().map(|&(n, q)| (n.into(), q.into())).collect();
        eventually(what, || {
            let got = self.items()?;
            if got == want { Ok(()) } else { Err(format!("{got:?}")) }
        });
    }

    /// Polls until the element `css` selects shows `want`.
    fn text_is(&self, css: &str, want: &str) {
        eventually(&format!("{css} shows {want}"), || {
            let text = self.call("GET", &format!("/element/{}/text", self.find(css)?), None)?;
            if text == want { Ok(()) } else { Err(text.to_string()) }
        });
    }

    fn wait_ready(&self) {
        eventually("the page received its first state", || {
            let ready = self.script("return document.body.dataset.ready === '1';")?;
            if ready == true { Ok(()) } else { Err("not yet".into()) }
        });
    }

    fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.call("GET", "/screenshot", None).expect("a screenshot");
        let bytes = base64_decode(png.as_str().expect("base64"));
        assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
        let dir = artifacts();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, bytes).expect("write the screenshot");
        path
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = call(self.driver.addr, "DELETE", &format!("/session/{}", self.id), None);
    }
}

/// `target/artifacts` under the workspace root.
fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/artifacts");
    std::fs::create_dir_all(&dir).expect("create target/artifacts");
    dir.canonicalize().expect("target/artifacts")
}

#[test]
fn base64_decodes_what_webdriver_sends() {
    assert_eq!(base64_decode("iVBORw0KGgo="), b"\x89PNG\r\n\x1a\n");
    assert_eq!(base64_decode("TWFu"), b"Man");
    assert_eq!(base64_decode("TWE="), b"Ma");
    assert_eq!(base64_decode("TQ=="), b"M");
}

/// Clicks on one replica's page show on the other's: add, +, −, remove, and back the other way.
#[test]
#[ignore = "needs chromium and chromedriver: run .ci/install-browser.sh, then --ignored"]
fn clicks_on_one_page_show_on_the_other_replicas_page() {
    let mut a = Device::init("a");
    let mut b = Device::init("b");
    a.pair(&b);
    let page_a = format!("http://{}/", a.serve());
    let page_b = format!("http://{}/", b.serve());

    let logs = tempfile::tempdir().expect("a temp dir");
    let driver = Driver::start(logs.path().join("chromedriver.log"));
    let left = driver.session();
    let right = driver.session();
    left.open(&page_a);
    right.open(&page_b);
    left.wait_ready();
    right.wait_ready();
    left.shows("a starts empty", &[]);
    right.shows("b starts empty", &[]);

    // Add on A's page.
    left.add("milk", 2);
    left.shows("A shows the milk it added", &[("milk", "2")]);
    right.shows("B shows A's milk", &[("milk", "2")]);
    left.add("eggs", 1);
    right.shows("B shows A's eggs", &[("eggs", "1"), ("milk", "2")]);

    // + and − on A's page.
    left.click(r#"tr[data-item="milk"] button.inc"#);
    right.shows("B shows A's +1", &[("eggs", "1"), ("milk", "3")]);
    left.click(r#"tr[data-item="eggs"] button.inc"#);
    left.click(r#"tr[data-item="milk"] button.dec"#);
    right.shows("B shows A's + and −", &[("eggs", "2"), ("milk", "2")]);
    left.screenshot("browser-a-edited");
    right.screenshot("browser-b-sees-a");

    // Remove on A's page.
    left.click(r#"tr[data-item="milk"] button.remove"#);
    right.shows("B no longer shows the milk", &[("eggs", "2")]);

    // And the other way: B's page edits show on A's.
    right.add("bread", 1);
    right.click(r#"tr[data-item="eggs"] button.dec"#);
    left.shows("A shows B's edits", &[("bread", "1"), ("eggs", "1")]);
    right.click(r#"tr[data-item="eggs"] button.dec"#);
    left.shows("A shows B's last eggs gone", &[("bread", "1")]);

    // A's offline switch: B's edit waits, and arrives once A is back online.
    left.click("#offline-toggle");
    left.text_is("#net", "offline");
    right.add("jam", 3);
    right.shows("B shows its jam", &[("bread", "1"), ("jam", "3")]);
    left.screenshot("browser-a-offline");
    left.click("#offline-toggle");
    left.text_is("#net", "online");
    left.shows("A shows B's jam once online", &[("bread", "1"), ("jam", "3")]);
    left.click(r#"tr[data-item="jam"] button.remove"#);
    right.shows("B shows A's removal", &[("bread", "1")]);

    // The CLI on a served directory lands on both pages too.
    a.ok(&["note", "bread", "sourdough"]);
    eventually("B's page shows the note", || {
        let note = right.script(r#"return document.querySelector('tr[data-item="bread"] .note-input').value;"#)?;
        if note == "sourdough" { Ok(()) } else { Err(note.to_string()) }
    });
    eventually("both pages list the peer as in sync", || {
        let text = left.script("return document.getElementById('peers').textContent;")?;
        if text.as_str().is_some_and(|t| t.contains("in sync")) { Ok(()) } else { Err(text.to_string()) }
    });
    let shots = [left.screenshot("browser-a-final"), right.screenshot("browser-b-final")];
    for shot in shots {
        eprintln!("screenshot: {}", shot.display());
    }
    drop((left, right));
    drop(driver);
    assert_eq!(a.stop().code(), Some(0));
    assert_eq!(b.stop().code(), Some(0));
}
