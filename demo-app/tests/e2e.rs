//! End-to-end tests with real processes: `cart` commands on their own data directories, and two
//! `cart serve` nodes on loopback, paired with `cart ticket` / `cart trust`, edited through the
//! CLI and checked through `cart list --json` until they converge (polling with a deadline;
//! nothing here asserts how fast).

mod common;

use common::{Device, cart, eventually};
use gossamer_cart::app::{self, CONTROL_FILE};

/// Every command works with no server at all, straight on the data directory.
#[test]
fn every_command_works_offline_on_the_data_directory() {
    let a = Device::init("a");
    let b = Device::init("b");

    let ticket = a.ticket();
    assert!(ticket.starts_with("gossamer://"), "ticket {ticket:?}");
    assert!(ticket.ends_with(&format!("@{}", a.listen)), "ticket {ticket:?} names {}", a.listen);
    let trusted = a.ok(&["trust", &b.ticket()]);
    assert!(trusted.starts_with("trusted "), "{trusted:?}");

    let out = a.ok(&["add", "milk", "2"]);
    assert!(out.contains("milk"), "add prints the cart: {out:?}");
    a.ok(&["add", "eggs"]);
    a.ok(&["inc", "eggs", "2"]);
    a.ok(&["dec", "milk"]);
    a.ok(&["note", "eggs", "brown, free range"]);
    a.ok(&["add", "bread"]);
    a.ok(&["remove", "bread"]);
    a.ok(&["add", "jam"]);
    a.ok(&["dec", "jam"]);

    // The documented shape, byte for byte: sorted by name, items at zero left out.
    let json = a.ok(&["list", "--json"]);
    assert_eq!(
        json.trim(),
        r#"{"items":[{"name":"eggs","qty":3,"note":"brown, free range"},{"name":"milk","qty":1,"note":""}]}"#
    );
    let text = a.ok(&["list"]);
    assert!(text.contains("eggs") && text.contains("milk") && !text.contains("bread"), "{text:?}");

    // `init` again keeps the identity and the cart.
    a.ok(&["init"]);
    assert_eq!(a.ticket(), ticket);
    assert_eq!(a.list(), cart(&[("eggs", 3, "brown, free range"), ("milk", 1, "")]));
    // The other directory is untouched: nothing is shared without a running node.
    assert_eq!(b.list(), cart(&[]));
}

/// A refused command says why in one line, exits non-zero, and changes nothing — offline and
/// through a running server alike.
#[test]
fn bad_commands_print_one_error_line_and_lose_nothing() {
    let mut a = Device::init("a");
    a.ok(&["add", "milk", "2"]);
    a.ok(&["note", "milk", "oat"]);
    let before = a.list();
    let own_ticket = a.ticket();
    let long_note = "x".repeat(1001);

    let refusals: [(&[&str], &str); 7] = [
        (&["dec", "cheese"], "cheese is not in the cart"),
        (&["note", "cheese", "blue"], "cheese is not in the cart"),
        (&["remove", "cheese"], "cheese is not in the cart"),
        (&["add", "   "], "an item name must be 1 to 200 characters"),
        (&["add", "milk", "0"], "a quantity must be between 1 and 1000000"),
        (&["note", "milk", &long_note], "a note must be at most 1000 characters"),
        (&["trust", &own_ticket], "that is this cart's own ticket"),
    ];
    let check = |a: &Device, where_: &str| {
        for (args, message) in &refusals {
            let r = a.run(args);
            let shown = format!("{where_}: `cart {}`: {r:?}", args.join(" "));
            assert_eq!(r.status.code(), Some(1), "{shown}");
            assert_eq!(r.stderr.lines().collect::<Vec<_>>(), [format!("cart: {message}")], "{shown}");
            assert_eq!(r.stdout, "", "{shown}");
        }
        assert_eq!(a.list(), before, "{where_}: a refused command changed the cart");
    };
    check(&a, "offline");

    // Arguments clap cannot parse: its own message, and a non-zero exit.
    for args in [&["trust", "not-a-ticket"][..], &["frobnicate"], &["inc", "milk", "lots"]] {
        let r = a.run(args);
        assert_eq!(r.status.code(), Some(2), "`cart {}`: {r:?}", args.join(" "));
        assert_eq!(r.stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{r:?}");
        assert_eq!(r.stdout, "");
    }
    assert_eq!(a.list(), before);

    // No cart at all.
    let nowhere = tempfile::tempdir().expect("a temp dir");
    let dir = nowhere.path().join("none");
    let r: common::Run = std::process::Command::new(common::cart_bin())
        .arg("--data")
        .arg(&dir)
        .args(["list", "--json"])
        .output()
        .expect("run cart")
        .into();
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    assert!(r.stderr.starts_with("cart: no cart in ") && r.stderr.contains("cart init"), "{r:?}");

    a.serve();
    check(&a, "through the running server");
    assert!(a.serving());
    assert_eq!(a.stop().code(), Some(0));
    assert_eq!(a.list(), before);
}

/// Two nodes on loopback, paired with tickets, edited through the CLI on both sides: while both
/// run, while one is killed (its directory still takes edits) and while one has its offline
/// switch on. Concurrent remove ∥ +1 keeps the +1, a removed item stays removed, and a
/// graceful stop keeps everything.
#[test]
fn two_nodes_converge_through_cli_edits() {
    let mut a = Device::init("a");
    let mut b = Device::init("b");
    a.pair(&b);
    a.serve();
    b.serve();

    // 1. Edits on both running nodes: a CLI edit goes to the running node (it answers with the
    //    cart it now has) and on to its peer.
    let out = a.ok(&["add", "milk", "2"]);
    assert!(out.contains("milk"), "{out:?}");
    a.ok(&["add", "eggs", "12"]);
    b.ok(&["add", "bread"]);
    let want = cart(&[("bread", 1, ""), ("eggs", 12, ""), ("milk", 2, "")]);
    a.sees(&want);
    b.sees(&want);

    // 2. inc, dec, note and remove, from both sides.
    b.ok(&["inc", "milk"]);
    a.ok(&["dec", "eggs", "2"]);
    a.ok(&["note", "eggs", "free range"]);
    b.ok(&["add", "butter"]);
    b.ok(&["remove", "butter"]);
    let want = cart(&[("bread", 1, ""), ("eggs", 10, "free range"), ("milk", 3, "")]);
    a.sees(&want);
    b.sees(&want);

    // 3. B is killed. A removes the milk it saw; B's directory, offline, takes +1 milk.
    b.kill();
    a.ok(&["remove", "milk"]);
    a.ok(&["note", "bread", "wholemeal"]);
    assert!(b.ok(&["inc", "milk"]).contains("milk"));
    b.ok(&["add", "apples", "3"]);
    assert_eq!(b.list(), cart(&[("apples", 3, ""), ("bread", 1, ""), ("eggs", 10, "free range"), ("milk", 4, "")]));
    assert_eq!(a.list(), cart(&[("bread", 1, "wholemeal"), ("eggs", 10, "free range")]));
    b.serve();
    // The +1 made concurrently with the remove survives (1, not 4 and not none).
    let want = cart(&[("apples", 3, ""), ("bread", 1, "wholemeal"), ("eggs", 10, "free range"), ("milk", 1, "")]);
    a.sees(&want);
    b.sees(&want);

    // 4. A's offline switch: both sides edit apart, then A comes back.
    let (status, body) = app::request(a.http(), "POST", "/api/offline", Some(r#"{"offline":true}"#))
        .unwrap_or_else(|e| panic!("POST /api/offline: {e}"));
    assert_eq!(status, 200, "{body}");
    a.ok(&["remove", "apples"]);
    b.ok(&["inc", "apples"]);
    b.ok(&["remove", "eggs"]);
    a.ok(&["inc", "milk", "2"]);
    assert_eq!(a.list(), cart(&[("bread", 1, "wholemeal"), ("eggs", 10, "free range"), ("milk", 3, "")]));
    let (status, body) = app::request(a.http(), "POST", "/api/offline", Some(r#"{"offline":false}"#))
        .unwrap_or_else(|e| panic!("POST /api/offline: {e}"));
    assert_eq!(status, 200, "{body}");
    let want = cart(&[("apples", 1, ""), ("bread", 1, "wholemeal"), ("milk", 3, "")]);
    a.sees(&want);
    b.sees(&want);

    // 5. A graceful stop (Ctrl-C) exits 0, removes serve.json and keeps every write.
    for d in [&mut a, &mut b] {
        assert_eq!(d.stop().code(), Some(0), "{}: {}", d.name, d.server_log());
        assert!(!d.data().join(CONTROL_FILE).exists(), "{}: serve.json left behind", d.name);
        assert_eq!(d.list(), want, "{} after stopping", d.name);
    }

    // 6. The removed eggs never come back by themselves: restart both, sync, look again.
    a.serve();
    b.serve();
    a.ok(&["add", "tea"]);
    let want = cart(&[("apples", 1, ""), ("bread", 1, "wholemeal"), ("milk", 3, ""), ("tea", 1, "")]);
    b.sees(&want);
    eventually("a agrees", || if a.list() == want { Ok(()) } else { Err(format!("{:?}", a.list())) });
}

/// Regression: after `cart serve` was killed its `serve.json` stays behind. Commands run at the
/// same time on that directory then find it locked by each other, and must wait for the lock
/// rather than send the edit to the dead server's address.
#[test]
fn concurrent_commands_after_a_killed_server_all_land() {
    let mut a = Device::init("a");
    a.ok(&["add", "milk"]);
    a.serve();
    a.kill();
    assert!(a.data().join(CONTROL_FILE).exists(), "SIGKILL leaves serve.json behind");
    let runs: Vec<common::Run> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..6).map(|_| s.spawn(|| a.run(&["inc", "milk"]))).collect();
        workers.into_iter().map(|w| w.join().expect("a worker")).collect()
    });
    for r in &runs {
        assert!(r.status.success(), "{r:?}");
    }
    assert_eq!(a.list(), cart(&[("milk", 7, "")]));
}
