//! Supervision: a dead thread is a dead daemon. With the test-only fault
//! switch (`SITEWARDEN_FAULT`, compiled in by the `fault-injection`
//! feature) a worker, the judge, the scan worker or the mailer panics; the
//! daemon must exit non-zero within 2 s with the reason on stderr, and
//! after a restart nothing that was on disk is lost.

mod common;

use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::smtp::SmtpServer;
use common::Fixture;

fn site(extra: &str) -> Fixture {
    let f = Fixture::new("generic-php", extra);
    f.write("index.php", "<?php echo 'home';\n");
    f.run(["baseline"]).ok();
    f
}

/// Starts the daemon with `fault`, has `trigger` make it fire, and returns
/// the daemon's stderr after it died; the exit is asserted non-zero and
/// within 2 s of the fault (the quiet period before a path is judged is
/// counted out).
fn dies(f: &Fixture, fault: &str, thread: &str, trigger: impl FnOnce()) -> String {
    let mut d = Daemon::start_env(f, &[("SITEWARDEN_FAULT", fault)]);
    let t = Instant::now();
    trigger();
    let status = d.wait_exit(Duration::from_secs(10)).unwrap_or_else(|| panic!("still running:\n{}", d.stderr()));
    let took = t.elapsed();
    let stderr = d.stderr();
    println!("fault {fault}: exit {status}");
    assert!(!status.success(), "{status}");
    common::figure(&format!("fault {fault}, fault to exit"), took, Duration::from_millis(2300));
    assert!(stderr.contains(&format!("thread {thread} died")), "{stderr}");
    assert!(stderr.contains("injected fault"), "{stderr}");
    stderr
}

fn count(recs: &[serde_json::Value], suffix: &str) -> usize {
    recs.iter().filter(|r| r["path"].as_str().is_some_and(|p| p.ends_with(suffix))).count()
}

#[test]
fn a_dead_judge_stops_the_daemon_and_nothing_is_lost() {
    let f = site("");
    let mut d = Daemon::start_env(&f, &[("SITEWARDEN_FAULT", "judge:boom")]);
    f.write("first.php", "<?php // alerted before the fault");
    d.wait_record("added", "/first.php");
    let t = Instant::now();
    f.write("boom.php", "<?php // the judge dies on this one");
    let status = d.wait_exit(Duration::from_secs(10)).expect("the daemon exits");
    println!("fault judge: exit {status}");
    assert!(!status.success());
    common::figure("fault judge:boom, fault to exit", t.elapsed(), Duration::from_millis(2300));
    assert!(d.stderr().contains("thread sw-judge died: panicked: injected fault at judge"), "{}", d.stderr());
    drop(d);
    // Restarted (as systemd would), without the fault: the change the dead
    // judge never alerted is found by the catch-up scan; the one it did
    // alert is not repeated.
    let d = Daemon::start(&f);
    let r = d.wait_record("added", "/boom.php");
    assert_eq!(r["detected_by"], "scan");
    assert_eq!(count(&d.records(), "/first.php"), 1);
}

#[test]
fn a_dead_realtime_worker_stops_the_daemon() {
    let f = site("");
    dies(&f, "worker:boom", "sw-realtime", || {
        f.write("boom.php", "<?php");
    });
    let d = Daemon::start(&f);
    d.wait_record("added", "/boom.php");
}

#[test]
fn a_dead_inotify_reader_stops_the_daemon() {
    let f = site("");
    dies(&f, "inotify:boom", "sw-inotify", || {
        f.write("boom.php", "<?php");
    });
    // After the restart, the catch-up scan reports what the reader died on.
    let d = Daemon::start(&f);
    d.wait_record("added", "/boom.php");
}

#[test]
fn a_dead_scan_worker_stops_the_daemon() {
    let f = site("scan:\n  interval: 1s\n");
    // The fault fires on the first scheduled scan, a second after ready.
    let stderr = dies(&f, "scan:site", "sw-scan", || std::thread::sleep(Duration::from_millis(900)));
    assert!(stderr.contains("sitewarden: ready"), "{stderr}");
}

#[test]
fn a_dead_mailer_stops_the_daemon_and_its_mail_is_sent_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(dir.path(), None);
    let f = Fixture::new("generic-php", "");
    f.add_email(smtp.port, "");
    f.write("index.php", "<?php\n");
    f.run(["baseline"]).ok();
    let mut d = Daemon::start_env(&f, &[("SITEWARDEN_FAULT", "mailer")]);
    f.write("uploads/shell.php", "<?php system($_GET[1]);");
    let status = d.wait_exit(Duration::from_secs(20)).expect("the daemon exits");
    assert!(!status.success());
    assert!(d.stderr().contains("thread sw-mailer died"), "{}", d.stderr());
    assert_eq!(count(&d.records(), "/uploads/shell.php"), 1, "alerted to the log before the mailer died");
    drop(d);
    let _d = Daemon::start(&f);
    let mails = smtp.wait_messages(1, Duration::from_secs(60));
    assert!(mails[0].body.contains("/uploads/shell.php"), "{}", mails[0].body);
}
