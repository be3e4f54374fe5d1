//! `cart`: the offline-first collaborative shopping cart.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gossamer_cart::app::{self, AppError};
use gossamer_cart::model::{CartView, Edit};
use gossamer_cart::{demo, server};
use gossamer_sync::net::Ticket;
use gossamer_sync::protocol::Config;

/// An offline-first collaborative shopping cart: every device keeps working with no network,
/// and carts converge when devices meet.
#[derive(Parser)]
#[command(name = "cart", version)]
struct Cli {
    /// The data directory (identity, store). Defaults to the platform's data directory.
    #[arg(long, global = true, value_name = "DIR")]
    data: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Creates this device's identity and cart; remembers the address to listen on.
    Init {
        /// The address other devices reach this one at (default 127.0.0.1:4747).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Prints this device's ticket: give it to another device's `cart trust`.
    Ticket,
    /// Trusts the device of TICKET and remembers it as a peer.
    Trust {
        /// gossamer://NODE-ID@HOST:PORT
        ticket: Ticket,
    },
    /// Adds QTY (default 1) of ITEM.
    Add {
        /// The item.
        item: String,
        /// How many.
        #[arg(default_value_t = 1)]
        qty: u64,
    },
    /// Removes ITEM from the cart.
    Remove {
        /// The item.
        item: String,
    },
    /// One more (or N more) of ITEM.
    Inc {
        /// The item.
        item: String,
        /// How many.
        #[arg(default_value_t = 1)]
        n: u64,
    },
    /// One fewer (or N fewer) of ITEM; reaching zero removes it.
    Dec {
        /// The item.
        item: String,
        /// How many.
        #[arg(default_value_t = 1)]
        n: u64,
    },
    /// Sets ITEM's note.
    Note {
        /// The item.
        item: String,
        /// The note.
        text: String,
    },
    /// Shows the cart.
    List {
        /// One JSON object: {"items":[{"name","qty","note"}]}.
        #[arg(long)]
        json: bool,
    },
    /// Runs the node: gossips with trusted peers and serves the cart's page.
    Serve {
        /// Where to serve the page (default 127.0.0.1:8080; port 0 picks one).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        http: SocketAddr,
    },
    /// Three replicas on loopback telling the converged story; then serves their pages.
    Demo {
        /// Exit after the story: 0 if every replica converged to the expected cart.
        #[arg(long)]
        script_only: bool,
    },
}

fn print_cart(view: &CartView, json: bool) -> Result<(), AppError> {
    if json {
        println!("{}", serde_json::to_string(view).map_err(|e| AppError::Other(e.to_string()))?);
    } else {
        print!("{view}");
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, AppError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| AppError::Other(format!("cannot start the runtime: {e}")))
}

fn run(cli: Cli) -> Result<ExitCode, AppError> {
    let dir = cli.data.unwrap_or_else(app::default_data_dir);
    match cli.command {
        Command::Init { listen } => {
            let ticket = app::init(&dir, listen)?;
            println!("cart ready in {}", dir.display());
            println!("ticket: {ticket}");
        }
        Command::Ticket => println!("{}", app::ticket(&dir)?),
        Command::Trust { ticket } => {
            app::trust(&dir, &ticket)?;
            println!("trusted {}", ticket.node);
        }
        Command::Add { item, qty } => print_cart(&app::edit(&dir, &Edit::Add { name: item, qty })?, false)?,
        Command::Remove { item } => print_cart(&app::edit(&dir, &Edit::Remove { name: item })?, false)?,
        Command::Inc { item, n } => print_cart(&app::edit(&dir, &Edit::Inc { name: item, n })?, false)?,
        Command::Dec { item, n } => print_cart(&app::edit(&dir, &Edit::Dec { name: item, n })?, false)?,
        Command::Note { item, text } => print_cart(&app::edit(&dir, &Edit::Note { name: item, text })?, false)?,
        Command::List { json } => print_cart(&app::list(&dir)?, json)?,
        Command::Serve { http } => {
            let rt = runtime()?;
            rt.block_on(async {
                let s = server::start(&dir, http, Config::default()).await?;
                println!("cart {} serving {}", &s.node.node_id().to_string()[..8], s.url());
                println!("ticket: {}", s.node.ticket());
                let _ = tokio::signal::ctrl_c().await;
                eprintln!("stopping…");
                s.stop().await;
                Ok::<(), AppError>(())
            })?;
        }
        Command::Demo { script_only } => {
            let rt = runtime()?;
            let ok = rt.block_on(demo::run(script_only))?;
            return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) });
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo pairs its devices while they run, so their first handshakes are refused as
    // untrusted by design: keep its output to the story.
    let quiet = if matches!(cli.command, Command::Demo { .. }) { "error" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("CART_LOG").unwrap_or_else(|_| quiet.into()))
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cart: {e}");
            ExitCode::from(1)
        }
    }
}
