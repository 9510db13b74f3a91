//! No blind spots when the kernel's limits are hit: a queue overflow (of
//! either source) and running out of inotify watches both fall back to
//! scans, and every file is still reported; the fanotify source needs no
//! watches at all.

mod common;

use std::process::Command;
use std::sync::Mutex;

use common::daemon::Daemon;
use common::Fixture;

/// The two tests change kernel limits: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const QUEUED: &str = "/proc/sys/fs/inotify/max_queued_events";

/// Puts a sysctl back however the test ends.
struct Restore(&'static str, String);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0, &self.1);
    }
}

fn can_write(path: &str) -> bool {
    std::fs::OpenOptions::new().write(true).open(path).is_ok()
}

/// Floods a daemon whose event queue was made tiny (the sysctl `queued`,
/// lowered just around its start): 1,500 files, each reported once, the
/// lost ones by the rescan the overflow triggers.
fn overflow(source: &str, queued: &'static str) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_write(queued) {
        eprintln!("skipped: {queued} is not writable (needs root)");
        return;
    }
    let f = Fixture::new("generic-php", "");
    f.set_source(source);
    f.write("lib/keep.php", "<?php");
    f.run(["baseline"]).ok();
    // The kernel sizes a queue when the group is made: shrink the limit
    // just around the daemon's start, then put it back.
    let d = {
        let _restore = Restore(queued, std::fs::read_to_string(queued).unwrap());
        std::fs::write(queued, "16").unwrap();
        Daemon::start(&f)
    };
    // Stopped while the files are written: the queue overflows for sure.
    d.signal(nix::sys::signal::Signal::SIGSTOP);
    for i in 0..1500 {
        std::fs::write(f.abs(format!("lib/f{i}.php").as_bytes()), "<?php").unwrap();
    }
    d.signal(nix::sys::signal::Signal::SIGCONT);
    let recs = d.wait_for("1500 added files", |r| r.iter().filter(|x| x["event"] == "added").count() >= 1500);
    let mut paths: Vec<&str> = recs.iter().map(|r| r["path"].as_str().unwrap()).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), 1500, "each file exactly once");
    assert_eq!(recs.len(), 1500);
    assert!(d.stderr().contains(&format!("{source} queue overflow")), "{}", d.stderr());
    assert!(recs.iter().any(|r| r["detected_by"] == "scan"), "the rescan reports what the queue lost");
}

#[test]
fn an_inotify_queue_overflow_still_reports_every_file() {
    overflow("inotify", QUEUED);
}

#[test]
fn a_fanotify_queue_overflow_still_reports_every_file() {
    overflow("fanotify", "/proc/sys/fs/fanotify/max_queued_events");
}

/// fanotify needs no watch per directory: with the inotify watch limit at
/// 10, a site of 31 directories is whole, every shell alerted in realtime.
#[test]
fn the_watch_limit_does_not_degrade_the_fanotify_source() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    const WATCHES: &str = "/proc/sys/fs/inotify/max_user_watches";
    if !can_write(WATCHES) {
        eprintln!("skipped: {WATCHES} is not writable (needs root)");
        return;
    }
    let f = Fixture::new("generic-php", "");
    f.set_source("auto");
    for i in 0..30 {
        f.write(format!("dir{i:02}/index.php"), "<?php");
    }
    f.run(["baseline"]).ok();
    let d = {
        let _restore = Restore(WATCHES, std::fs::read_to_string(WATCHES).unwrap());
        std::fs::write(WATCHES, "10").unwrap();
        Daemon::start(&f)
    };
    let s: serde_json::Value = serde_json::from_str(f.run(["status", "--json"]).ok().stdout.trim()).unwrap();
    assert_eq!((&s["sites"][0]["degraded"], &s["sites"][0]["source"]), (&false.into(), &"fanotify".into()), "{s}");
    for i in 0..30 {
        f.write(format!("dir{i:02}/shell.php"), "<?php");
    }
    let recs = d.wait_for("30 added files", |r| r.iter().filter(|x| x["event"] == "added").count() >= 30);
    assert!(recs.iter().all(|r| r["detected_by"] == "realtime"), "{recs:#?}");
}

#[test]
fn running_out_of_watches_falls_back_to_scans() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let probe = Command::new("unshare").args(["-U", "-r", "true"]).status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("skipped: unshare -U -r is not available");
        return;
    }
    let f = Fixture::new("generic-php", "");
    // In a user namespace fanotify is not allowed: inotify it is, chosen
    // automatically.
    std::fs::write(
        f.config(),
        std::fs::read_to_string(f.config()).unwrap().replace("sites:", "scan:\n  fallback_interval: 1s\nsites:"),
    )
    .unwrap();
    for i in 0..30 {
        f.write(format!("dir{i:02}/index.php"), "<?php");
    }
    f.run(["baseline"]).ok();
    // A user namespace of its own, whose inotify watch limit is 10.
    let mut cmd = Command::new("unshare");
    cmd.args(["-U", "-r", "sh", "-c", "echo 10 > /proc/sys/user/max_inotify_watches && exec \"$0\" \"$@\""])
        .arg(common::BIN)
        .arg("-c")
        .arg(f.config())
        .arg("run");
    let d = Daemon::spawn(cmd, f.path("alerts.jsonl"));
    let err = d.stderr();
    assert!(err.contains("watch limit reached") && err.contains("fs.inotify.max_user_watches"), "{err}");
    let s: serde_json::Value = serde_json::from_str(f.run(["status", "--json"]).ok().stdout.trim()).unwrap();
    assert_eq!(s["sites"][0]["degraded"], true, "{s}");
    assert_eq!(s["sites"][0]["source"], "inotify", "{s}");
    assert!(s["sites"][0]["source_reason"].as_str().is_some_and(|r| r.contains("CAP_SYS_ADMIN")), "{s}");
    assert_eq!(s["sites"][0]["degraded_reason"], "watch limit", "status says why: {s}");
    // Directories past the limit have no watch; the fallback scans see them.
    for i in 0..30 {
        f.write(format!("dir{i:02}/shell.php"), "<?php");
    }
    let recs = d.wait_for("30 added files", |r| r.iter().filter(|x| x["event"] == "added").count() >= 30);
    assert_eq!(recs.len(), 30, "each once");
    assert!(recs.iter().any(|r| r["detected_by"] == "scan"), "some were found by the fallback scans");
    // The admin raises the limit: at the next fallback scan the site is
    // whole again, and `status` says so.
    let raised = Command::new("nsenter")
        .args(["-U", "-t", &d.pid().to_string(), "sh", "-c", "echo 10000 > /proc/sys/user/max_inotify_watches"])
        .status()
        .unwrap();
    assert!(raised.success());
    d.wait_stderr("realtime watching is complete again");
    let start = std::time::Instant::now();
    loop {
        let s: serde_json::Value = serde_json::from_str(f.run(["status", "--json"]).ok().stdout.trim()).unwrap();
        if s["sites"][0]["degraded"] == false && s["sites"][0]["degraded_reason"].is_null() {
            assert!(s["sites"][0]["watches"].as_u64().unwrap() >= 31, "{s}");
            break;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(15), "still degraded: {s}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn a_wide_tree_needs_few_file_descriptors() {
    // Regression: the walker held one descriptor per pending directory, so
    // a folder of 1,500 subfolders under a 1,024 limit went unwatched.
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let f = Fixture::new("generic-php", "");
    for i in 0..1500 {
        f.write(format!("wide/d{i:04}/index.php"), "<?php");
    }
    let limited = |args: &str| {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(format!("ulimit -n 256 && exec \"$0\" -c \"$1\" {args}")).arg(common::BIN).arg(f.config());
        cmd
    };
    let r = common::Run::of(limited("baseline"));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("unreadable"), "{}", r.stderr);
    let d = Daemon::spawn(limited("run"), f.path("alerts.jsonl"));
    assert!(d.stderr().contains("1502 directories watched"), "{}", d.stderr());
    f.write("wide/d1480/shell.php", "<?php");
    let rec = d.wait_record("added", "/wide/d1480/shell.php");
    assert_eq!(rec["detected_by"], "realtime");
}
