//! `cart demo`: three replicas on loopback, fresh data directories, mutual trust, and a
//! scripted story — two devices edit while partitioned (including remove ∥ +1), the
//! partition heals, every cart converges. The pages stay up afterwards until Ctrl-C.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use gossamer_sync::protocol::Config;

use crate::app::{self, AppError};
use crate::model::{CartView, Edit, ItemView, view};
use crate::server::{self, Server};

/// How long the demo waits for convergence before it gives up.
const PATIENCE: Duration = Duration::from_secs(60);

struct Device {
    name: &'static str,
    server: Server,
    _dir: tempfile::TempDir,
}

impl Device {
    async fn edit(&self, e: Edit) -> Result<(), AppError> {
        let me = self.server.node.replica_id();
        let now = app::now_ms();
        self.server.node.try_update(move |cart| e.apply(cart, me, now)).await??;
        Ok(())
    }

    async fn cart(&self) -> Result<CartView, AppError> {
        Ok(self.server.node.read(view).await?)
    }
}

/// The cart the story must end with on every replica.
///
/// ```
/// use gossamer_cart::demo::expected;
/// use gossamer_cart::model::{Cart, Edit, view};
/// use gossamer_crdt::{CvRDT, ReplicaId};
///
/// let [phone_id, laptop_id, tablet_id] = [1, 2, 3].map(ReplicaId::from_u128);
/// let mut phone = Cart::new();
/// Edit::Add { name: "milk".into(), qty: 2 }.apply(&mut phone, phone_id, 1)?;
/// Edit::Add { name: "eggs".into(), qty: 12 }.apply(&mut phone, phone_id, 1)?;
/// let (mut laptop, mut tablet) = (phone.clone(), phone.clone());
/// // The story, on carts alone: apart, each device edits…
/// Edit::Inc { name: "milk".into(), n: 1 }.apply(&mut phone, phone_id, 2)?;
/// Edit::Note { name: "eggs".into(), text: "free range".into() }.apply(&mut phone, phone_id, 2)?;
/// Edit::Add { name: "bread".into(), qty: 1 }.apply(&mut tablet, tablet_id, 2)?;
/// Edit::Remove { name: "milk".into() }.apply(&mut laptop, laptop_id, 3)?;
/// Edit::Note { name: "eggs".into(), text: "organic".into() }.apply(&mut laptop, laptop_id, 3)?;
/// // …then they meet: the +1 milk survives the remove, and the later note wins.
/// phone.merge(&laptop);
/// phone.merge(&tablet);
/// assert_eq!(view(&phone), expected());
/// assert_eq!(expected().to_string(), "   1 × bread\n  12 × eggs   (organic)\n   1 × milk\n");
/// # Ok::<(), gossamer_cart::model::EditError>(())
/// ```
pub fn expected() -> CartView {
    let item = |name: &str, qty, note: &str| ItemView { name: name.into(), qty, note: note.into() };
    CartView { items: vec![item("bread", 1, ""), item("eggs", 12, "organic"), item("milk", 1, "")] }
}

fn say(line: &str) {
    println!("{line}");
}

fn side_by_side(devices: &[(&str, CartView)]) -> String {
    const W: usize = 30;
    let mut out = String::new();
    for (name, _) in devices {
        out.push_str(&format!("  {name:<W$}"));
    }
    out.push('\n');
    let lines: Vec<Vec<String>> =
        devices.iter().map(|(_, c)| c.to_string().lines().map(|l| l.to_string()).collect()).collect();
    let rows = lines.iter().map(Vec::len).max().unwrap_or(0);
    for r in 0..rows {
        for col in &lines {
            let cell = col.get(r).map_or("", String::as_str);
            let cell: String = cell.chars().take(W).collect();
            out.push_str(&format!("  {cell:<W$}"));
        }
        out.push('\n');
    }
    out
}

async fn show(devices: &[Device]) -> Result<(), AppError> {
    let mut carts = Vec::new();
    for d in devices {
        carts.push((d.name, d.cart().await?));
    }
    print!("{}", side_by_side(&carts));
    Ok(())
}

/// Waits until every device has the same version and cart, printing a progress line.
async fn converge(devices: &[Device]) -> Result<Duration, AppError> {
    let start = Instant::now();
    let mut waited = 0u32;
    loop {
        let mut versions = Vec::new();
        let mut carts = Vec::new();
        for d in devices {
            versions.push(d.server.node.status().await?.version);
            carts.push(d.cart().await?);
        }
        let done = versions.windows(2).all(|w| w[0] == w[1]) && carts.windows(2).all(|w| w[0] == w[1]);
        let behind: Vec<String> =
            devices.iter().zip(&versions).map(|(d, v)| format!("{} {} ops", d.name, v.total())).collect();
        let tty = std::io::stdout().is_terminal();
        if tty {
            print!(
                "\r  … waiting for convergence: {:>4.1} s  ({})\x1b[K",
                start.elapsed().as_secs_f64(),
                behind.join(", ")
            );
            let _ = std::io::stdout().flush();
        } else if done || waited.is_multiple_of(10) {
            println!("  … waiting for convergence: {:>4.1} s  ({})", start.elapsed().as_secs_f64(), behind.join(", "));
        }
        waited += 1;
        if done {
            let back = if tty { "\r" } else { "" };
            println!(
                "{back}  ✓ converged in {:.1} s{}",
                start.elapsed().as_secs_f64(),
                if tty { "\x1b[K" } else { "" }
            );
            return Ok(start.elapsed());
        }
        if start.elapsed() > PATIENCE {
            println!();
            return Err(AppError::Other(format!("no convergence within {} s", PATIENCE.as_secs())));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn start_device(name: &'static str) -> Result<Device, AppError> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("cart-demo-{}-", name.split_whitespace().last().unwrap_or("x")))
        .tempdir()
        .map_err(|e| AppError::Other(format!("cannot create a data directory: {e}")))?;
    app::init(dir.path(), Some("127.0.0.1:0".parse().expect("an address")))?;
    // A snappy demo: anti-entropy every 300 ms instead of every second.
    let config = Config { anti_entropy_interval_ms: 300, push_grace_ms: 100, ..Config::default() };
    let server = server::start(dir.path(), "127.0.0.1:0".parse().expect("an address"), config).await?;
    Ok(Device { name, server, _dir: dir })
}

/// Runs the story. Returns whether every replica converged to [`expected`]. Unless
/// `script_only`, keeps the pages up until Ctrl-C.
///
/// # Errors
/// [`AppError`] when a replica cannot start or an edit fails.
///
/// ```
/// # let rt = tokio::runtime::Runtime::new()?;
/// // The story alone (what `cart demo --script-only` prints), without keeping the pages up.
/// assert!(rt.block_on(gossamer_cart::demo::run(true))?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn run(script_only: bool) -> Result<bool, AppError> {
    say("Gossamer cart demo: three devices, one cart, no server in the middle.\n");
    let devices = vec![
        start_device("Alice's phone").await?,
        start_device("Alice's laptop").await?,
        start_device("Bob's tablet").await?,
    ];
    for d in &devices {
        say(&format!("  {:<16} {}   (replica {})", d.name, d.server.url(), &d.server.node.node_id().to_string()[..8]));
    }
    // Everyone trusts everyone (tickets exchanged out of band, like pairing devices).
    for a in &devices {
        for b in &devices {
            if a.server.node.node_id() != b.server.node.node_id() {
                a.server.node.trust(b.server.node.ticket()).await?;
            }
        }
    }
    let (phone, laptop, tablet) = (&devices[0], &devices[1], &devices[2]);

    say("\n1. Alice's phone adds milk ×2 and eggs ×12; everyone syncs.");
    phone.edit(Edit::Add { name: "milk".into(), qty: 2 }).await?;
    phone.edit(Edit::Add { name: "eggs".into(), qty: 12 }).await?;
    converge(&devices).await?;
    show(&devices).await?;

    say("\n2. The laptop loses the network (the others cannot reach it either).");
    laptop.server.node.set_offline(true).await?;

    say("\n3. While apart:");
    say("   - the phone adds one more milk, and notes \"free range\" on the eggs;");
    phone.edit(Edit::Inc { name: "milk".into(), n: 1 }).await?;
    phone.edit(Edit::Note { name: "eggs".into(), text: "free range".into() }).await?;
    say("   - the tablet adds bread;");
    tablet.edit(Edit::Add { name: "bread".into(), qty: 1 }).await?;
    tokio::time::sleep(Duration::from_millis(20)).await;
    say("   - the laptop removes the milk it saw (2), and notes \"organic\" on the eggs, a moment later.");
    laptop.edit(Edit::Remove { name: "milk".into() }).await?;
    laptop.edit(Edit::Note { name: "eggs".into(), text: "organic".into() }).await?;
    tokio::time::sleep(Duration::from_millis(700)).await;
    show(&devices).await?;

    say("\n4. The laptop is back online; the partition heals.");
    laptop.server.node.set_offline(false).await?;
    converge(&devices).await?;
    show(&devices).await?;

    let want = expected();
    let mut ok = true;
    for d in &devices {
        ok &= d.cart().await? == want;
    }
    if ok {
        say("\nEvery cart agrees: the concurrent +1 milk survived the remove (1 milk, not 3 and not");
        say("none), bread arrived, and the later note won. Nothing was lost while the laptop was offline.");
    } else {
        say(&format!("\nUnexpected result: every replica should show\n{want}"));
    }

    if !script_only {
        say("\nThe pages stay up: open them, add and remove items, flip a device offline and back.");
        say("Press Ctrl-C to stop.");
        let _ = tokio::signal::ctrl_c().await;
        say("\nStopping…");
    }
    // Stop the three at once: each waits for its connections to close.
    let stops: Vec<_> = devices.into_iter().map(|d| tokio::spawn(d.server.stop())).collect();
    for s in stops {
        let _ = s.await;
    }
    Ok(ok)
}
