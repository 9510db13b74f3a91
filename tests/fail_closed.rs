//! Fail closed: a check that could not be made never reads as a pass. A
//! walking or hashing thread that dies (the test-only fault switch,
//! `SITEWARDEN_FAULT`), a signature scan that times out (a real slow rule),
//! a publisher that cannot be reached: each is reported as what it is,
//! never as "deleted", "clean" or "all match", and never with exit 0.

mod common;

use std::process::Command;

use common::daemon::Daemon;
use common::{Fixture, Run};

/// A site of 60 PHP files in three folders, with its baseline.
fn site(profile: &str) -> Fixture {
    let f = Fixture::new(profile, "");
    f.write("index.php", "<?php echo 'home';\n");
    for d in ["lib", "inc", "mod"] {
        for i in 0..20 {
            f.write(format!("{d}/f{i}.php"), format!("<?php // {d} {i}\n"));
        }
    }
    f.run(["baseline"]).ok();
    f
}

fn run_with(f: &Fixture, fault: &str, args: &[&str]) -> Run {
    let mut cmd = Command::new(common::BIN);
    cmd.arg("-c").arg(f.config()).args(args).env("SITEWARDEN_FAULT", fault);
    Run::of(cmd)
}

/// Regression: a panic in a scan's hashing or walking thread was swallowed
/// and the partial scan compared as if complete, so every baseline file the
/// dead thread never reached was reported deleted.
#[test]
fn a_scan_thread_that_dies_fails_the_check_and_reports_nothing_deleted() {
    let f = site("generic-php");
    for fault in ["hasher:inc/f7.php", "walker:mod"] {
        let r = run_with(&f, fault, &["check", "--json"]);
        println!("check with {fault}: exit {}, {}", r.code, r.stdout.trim());
        assert_eq!(r.code, 3, "{fault}: {r:?}");
        assert!(r.stderr.contains("did not finish"), "{fault}: {}", r.stderr);
        let lines: Vec<serde_json::Value> = r.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 1, "one line, no record: {lines:#?}");
        assert_eq!(lines[0]["result"], "unchecked", "{lines:#?}");
        let r = run_with(&f, fault, &["check"]);
        assert_eq!(r.code, 3, "{fault}: {r:?}");
        assert!(r.stdout.contains("NOT CHECKED"), "{fault}: {}", r.stdout);
        assert!(!r.stdout.contains("no drift") && !r.stdout.contains("deleted"), "{fault}: {}", r.stdout);
    }
    // Without the fault the same tree is clean: nothing was lost meanwhile.
    let (code, recs) = f.check_json();
    assert_eq!((code, recs.len()), (0, 0), "{recs:#?}");
}

/// A baseline taken by a scan that did not finish would forget what the
/// dead thread did not reach: it is refused, the old baseline kept.
#[test]
fn a_baseline_whose_scan_died_is_refused_and_the_old_one_kept() {
    let f = site("generic-php");
    f.write("inc/new.php", "<?php // new since the baseline\n");
    let r = run_with(&f, "hasher:lib/f3.php", &["baseline"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("did not finish"), "{}", r.stderr);
    let (code, recs) = f.check_json();
    assert_eq!(code, 1);
    assert_eq!(recs.len(), 1, "only the new file, none of lib/ forgotten: {recs:#?}");
    assert_eq!(recs[0]["event"], "added");
}

/// In the daemon a scan that died is logged as failed and reports nothing
/// deleted; realtime goes on, and the next scan judges the tree.
#[test]
fn the_daemon_reports_a_dead_scan_and_nothing_deleted() {
    let f = site("generic-php");
    let d = Daemon::start_env(&f, &[("SITEWARDEN_FAULT", "hasher:inc/f7.php")]);
    d.wait_stderr("did not finish");
    f.write("lib/rt.php", "<?php // realtime goes on\n");
    d.wait_record("added", "/lib/rt.php");
    assert!(!d.records().iter().any(|r| r["event"] == "deleted"), "{:#?}", d.records());
}

/// Regression: verify's signature workers' panics were swallowed, and what
/// they had not reached went unreported.
#[test]
fn verify_whose_worker_dies_is_an_error_not_a_pass() {
    let f = site("generic-php");
    let r = run_with(&f, "verify:lib/f3.php", &["verify"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("did not finish"), "{}", r.stderr);
    assert!(!r.stdout.contains("all match"), "{}", r.stdout);
}

/// A rule that cannot finish in YARA-X's time limit on a 100 KB file (a
/// real timeout, no injection): the file is "not scanned", never clean,
/// and the same content is scanned again when seen again.
#[test]
fn a_signature_scan_that_times_out_is_not_clean() {
    let f = Fixture::new("wordpress", "");
    f.write("index.php", "<?php\n");
    f.run(["baseline"]).ok();
    std::fs::create_dir_all(f.path("rules")).unwrap();
    std::fs::write(
        f.path("rules").join("slow.yar"),
        "rule slow_admin_rule {\n  condition:\n    for all i in (0..filesize) : ( for all j in (0..filesize) : ( uint8(i) < 0x100 ) )\n}\n",
    )
    .unwrap();
    let body = format!("<?php\n/* {} */\n", "x".repeat(100_000));
    f.write("wp-content/themes/t/big.php", &body);
    let (code, recs) = f.check_json();
    assert_eq!(code, 1);
    let r = common::find(&recs, "/wp-content/themes/t/big.php").expect("the file is reported");
    println!("timed-out scan: rule {}, severity {}, unscanned {}", r["rule"], r["severity"], r["unscanned"]);
    assert_eq!(r["rule"], "signature-scan-failed", "{r}");
    assert_eq!(r["severity"], "high", "{r}");
    assert!(r["unscanned"].as_str().is_some_and(|u| u.contains("timed out")), "{r}");
    // verify: the file could not be checked, exit 3 and a JSON line.
    let v = f.run(["verify", "--json"]);
    assert_eq!(v.code, 3, "{v:?}");
    let lines: Vec<serde_json::Value> = v.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(
        lines.iter().any(|l| l["result"] == "unchecked"
            && l["what"] == "file"
            && l["name"].as_str().unwrap().ends_with("big.php")),
        "{lines:#?}"
    );
    let v = f.run(["verify"]);
    assert_eq!(v.code, 3);
    assert!(v.stdout.contains("NOT VERIFIED") && !v.stdout.contains("all match"), "{}", v.stdout);
}

/// Regression: `verify` exited 0 with "all match; unknown: ..." for a
/// tampered site whose release checksums could not be fetched, and
/// `--json` printed nothing.
#[test]
fn verify_with_an_unreachable_publisher_is_not_a_pass() {
    let f = Fixture::new("wordpress", "");
    f.write("wp-includes/version.php", "<?php\n$wp_version = '6.4.2';\n");
    f.write("wp-includes/load.php", "<?php // tampered, but against what?\n");
    f.run(["baseline"]).ok();
    let v = f.run(["verify", "--json"]);
    assert_eq!(v.code, 3, "{v:?}");
    let lines: Vec<serde_json::Value> = v.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let unchecked: Vec<_> = lines.iter().filter(|l| l["result"] == "unchecked").collect();
    println!("{unchecked:#?}");
    assert!(unchecked.iter().any(|l| l["what"] == "package" && l["name"] == "wordpress 6.4.2"), "{lines:#?}");
    let v = f.run(["verify"]);
    assert_eq!(v.code, 3);
    assert!(v.stdout.contains("unchecked package wordpress 6.4.2"), "{}", v.stdout);
    assert!(!v.stdout.contains("all match"), "{}", v.stdout);
}

/// Regression: a route whose outbox could not be written stopped the whole
/// daemon (the judge died on the error). Now that route alone degrades:
/// its alerts wait in memory, `status` and the log say so, the other route
/// and the alert log get every alert, and once the outbox can be written
/// again the held alerts go out. The failure is real: the route's outbox
/// folder made immutable (`chattr +i`, which binds root too).
#[test]
fn a_route_whose_outbox_cannot_be_written_degrades_alone() {
    use common::receiver::Receiver;
    let rx_dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(rx_dir.path(), 0);
    let f = Fixture::new("generic-php", "");
    f.write("index.php", "<?php\n");
    let cfg = format!(
        "state_dir: {state}\nsignatures: {{ rules_dir: {rules} }}\nvendors: {{ enabled: false }}\nalerts:\n  log: {log}\n  webhooks: [ {{ url: \"{a}\", min_severity: info }} ]\nsites:\n  - name: site\n    root: {root}\n    profile: generic-php\n    alerts:\n      webhooks: [ {{ url: \"{b}\", min_severity: info }} ]\n",
        state = f.state().display(),
        rules = f.path("rules").display(),
        log = f.path("alerts.jsonl").display(),
        a = rx.url("/a"),
        b = rx.url("/b"),
        root = f.root().display(),
    );
    std::fs::write(f.config(), cfg).unwrap();
    f.run(["baseline"]).ok();
    let d = Daemon::start(&f);
    let outbox = std::fs::read_dir(f.state().join("outbox"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("webhook-"))
        .expect("the global webhook's outbox");
    let chattr = |flag: &str| {
        let st = Command::new("chattr").arg(flag).arg(&outbox).status().expect("chattr (e2fsprogs)");
        assert!(st.success(), "chattr {flag} {}: the test needs a filesystem with attributes", outbox.display());
    };
    chattr("+i");
    let guard = scopeguard(|| {
        let _ = Command::new("chattr").arg("-i").arg(&outbox).status();
    });
    f.write("lib/one.php", "<?php // one\n");
    d.wait_record("added", "/lib/one.php");
    let wait = |what: &str, done: &dyn Fn() -> bool| {
        let t = std::time::Instant::now();
        while !done() {
            assert!(t.elapsed() < common::HANG, "{what}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    wait("the other route gets the alert", &|| !rx.posts_to("/b").is_empty());
    d.wait_stderr("cannot queue alerts for this route");
    f.write("lib/two.php", "<?php // two: detection goes on\n");
    d.wait_record("added", "/lib/two.php");
    wait("status shows the failing route", &|| f.run(["status"]).stdout.contains("ROUTE FAILING"));
    let s = f.run(["status"]).stdout;
    println!("{}", s.lines().find(|l| l.contains("ROUTE FAILING")).unwrap());
    assert!(rx.posts_to("/a").is_empty());
    // Writable again: the next alert takes the held ones along.
    chattr("-i");
    drop(guard);
    f.write("lib/three.php", "<?php // three\n");
    d.wait_record("added", "/lib/three.php");
    wait("the held alerts reach the route", &|| {
        let posts = rx.posts_to("/a");
        let paths: Vec<String> = posts
            .iter()
            .flat_map(|p| p.json()["records"].as_array().cloned().unwrap_or_default())
            .filter_map(|r| r["path"].as_str().map(String::from))
            .collect();
        ["one.php", "two.php", "three.php"].iter().all(|n| paths.iter().any(|p| p.ends_with(n)))
    });
    wait("status no longer shows the route failing", &|| !f.run(["status"]).stdout.contains("ROUTE FAILING"));
}

/// Runs `f` when dropped (so a failed assertion leaves no immutable folder
/// that `rm -rf` of the temporary directory could not remove).
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

/// What a hung part does to the systemd watchdog: the daemon is started as
/// systemd starts it (`NOTIFY_SOCKET`, `WATCHDOG_USEC` of 1 s), a part is
/// made to hang (`hang@PLACE`, with a pulse limit of 1 s), and the test,
/// as systemd, reads `WATCHDOG=1` until it stops coming.
fn watchdog_stops_for(fault: &str, thread: &str, trigger: impl FnOnce(&Fixture, &Daemon)) {
    let f = site("generic-php");
    let sock_path = f.path("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_millis(200))).unwrap();
    let sock_s = sock_path.to_str().unwrap().to_string();
    let d = Daemon::start_env(
        &f,
        &[
            ("SITEWARDEN_FAULT", fault),
            ("SITEWARDEN_FAULT_LIMIT_MS", "1000"),
            ("NOTIFY_SOCKET", sock_s.as_str()),
            ("WATCHDOG_USEC", "1000000"),
        ],
    );
    let pings = |window: std::time::Duration| {
        let mut buf = [0u8; 256];
        let t = std::time::Instant::now();
        let mut n = 0;
        while t.elapsed() < window {
            if let Ok(len) = sock.recv(&mut buf) {
                n += usize::from(&buf[..len] == b"WATCHDOG=1");
            }
        }
        n
    };
    let t = std::time::Instant::now();
    while pings(std::time::Duration::from_millis(600)) == 0 {
        assert!(t.elapsed() < common::HANG, "no WATCHDOG=1 while healthy");
    }
    trigger(&f, &d);
    d.wait_stderr(&format!("thread {thread} hung"));
    // What was sent before the hang was seen waits in the socket: drained.
    sock.set_nonblocking(true).unwrap();
    while sock.recv(&mut [0u8; 256]).is_ok() {}
    sock.set_nonblocking(false).unwrap();
    // Once hung, not one more ping: systemd's timeout ends the process.
    let after = pings(std::time::Duration::from_secs(3));
    println!("{fault}: '{thread} hung' logged, {after} pings in the 3 s after");
    assert_eq!(after, 0, "{}", d.stderr());
}

/// Regression: the watchdog measured only the judge; a hung kernel reader
/// (realtime silently blind) kept systemd's watchdog happy.
#[test]
fn a_hung_kernel_reader_stops_the_watchdog() {
    watchdog_stops_for("hang@inotify:hang.php", "sw-inotify", |f, _| {
        f.write("lib/hang.php", "<?php // the reader hangs on this one\n");
    });
}

/// Regression: a courier stuck in a delivery went unnoticed.
#[test]
fn a_hung_courier_stops_the_watchdog() {
    use common::receiver::Receiver;
    let rx_dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(rx_dir.path(), 0);
    let url = rx.url("/hook");
    watchdog_stops_for("hang@mailer", "sw-webhook", move |f, d| {
        let cfg = std::fs::read_to_string(f.config()).unwrap();
        let cfg = cfg.replacen(
            "alerts:\n",
            &format!("alerts:\n  webhooks: [ {{ url: \"{url}\", min_severity: info }} ]\n"),
            1,
        );
        std::fs::write(f.config(), cfg).unwrap();
        // The route comes with a reload; its first delivery hangs.
        d.signal(nix::sys::signal::Signal::SIGHUP);
        d.wait_stderr("configuration reloaded");
        f.write("lib/sent.php", "<?php // alerted, and its delivery hangs\n");
    });
    drop(rx);
}
