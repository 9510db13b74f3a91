//! The realtime daemon, run for real over real temporary trees, judged by
//! its alert log.

mod common;

use std::time::{Duration, Instant};

use common::daemon::{settle, Daemon};
use common::Fixture;
use nix::sys::signal::Signal;

/// A small PHP site with a baseline; quiet period as configured.
fn site(extra: &str) -> Fixture {
    let f = Fixture::new("generic-php", extra);
    f.write("index.php", "<?php echo 'home';\n");
    f.write("lib/util.php", "<?php function u() {}\n");
    f.write("uploads/2026/photo.jpg", [0xffu8, 0xd8]);
    f.run(["baseline"]).ok();
    f
}

fn count(recs: &[serde_json::Value], suffix: &str) -> usize {
    recs.iter().filter(|r| r["path"].as_str().is_some_and(|p| p.ends_with(suffix))).count()
}

#[test]
fn a_new_file_is_alerted_in_realtime() {
    let f = site("");
    let d = Daemon::start(&f);
    let t = Instant::now();
    f.write("uploads/2026/shell.php", "<?php system($_GET['c']);");
    let r = d.wait_record("added", "/uploads/2026/shell.php");
    common::figure("a new file in uploads, write to record", t.elapsed(), Duration::from_millis(100));
    assert_eq!(r["detected_by"], "realtime");
    assert_eq!(r["severity"], "critical");
    assert_eq!(r["rule"], "php-in-uploads");
    assert!(r["after"]["sha256"].is_string());
    assert_eq!(r["id"].as_str().map(str::len), Some(32), "a stable id: {r}");
    // status and check work while the daemon runs.
    let s: serde_json::Value = serde_json::from_str(f.run(["status", "--json"]).ok().stdout.trim()).unwrap();
    assert_eq!(s["ready"], true, "{s}");
    assert!(s["sites"][0]["watches"].as_u64().unwrap() >= 3, "{s}");
    assert_eq!(f.run(["check"]).code, 1);
    let (status, _, _) = d.terminate();
    assert!(status.success());
}

#[test]
fn files_in_a_directory_made_and_filled_at_once_are_found() {
    let f = site("");
    let d = Daemon::start(&f);
    // mkdir -p deep/er/path && write x.php, in one go: the directories'
    // watches cannot exist yet when the file is written.
    std::fs::create_dir_all(f.abs(b"deep/er/path")).unwrap();
    std::fs::write(f.abs(b"deep/er/path/x.php"), "<?php // new").unwrap();
    std::fs::write(f.abs(b"deep/er/y.php"), "<?php // new").unwrap();
    let r = d.wait_record("added", "/deep/er/path/x.php");
    assert_eq!(r["detected_by"], "realtime");
    d.wait_record("added", "/deep/er/y.php");
    // Later files in the new directories come through their new watches.
    std::fs::write(f.abs(b"deep/er/path/later.php"), "<?php").unwrap();
    d.wait_record("added", "/deep/er/path/later.php");
}

#[test]
fn a_directory_deleted_and_made_again_is_watched_again() {
    // Regression: the watcher remembered the old directory by name and
    // never watched the new one (a new inode).
    let f = site("");
    f.write("lib/sub/a.php", "<?php");
    f.run(["accept"]).ok();
    let d = Daemon::start(&f);
    std::fs::remove_dir_all(f.abs(b"lib/sub")).unwrap();
    std::fs::create_dir(f.abs(b"lib/sub")).unwrap();
    d.wait_record("deleted", "/lib/sub/a.php");
    settle();
    f.write("lib/sub/shell.php", "<?php");
    d.wait_record("added", "/lib/sub/shell.php");
    // Swapped by renames, as a plugin update does.
    std::fs::create_dir(f.abs(b"lib/new")).unwrap();
    std::fs::rename(f.abs(b"lib/sub"), f.abs(b"lib/old")).unwrap();
    std::fs::rename(f.abs(b"lib/new"), f.abs(b"lib/sub")).unwrap();
    settle();
    f.write("lib/sub/shell2.php", "<?php");
    d.wait_record("added", "/lib/sub/shell2.php");
}

#[test]
fn sigterm_is_not_held_up_by_a_throttled_scan() {
    let f = site("");
    let cfg = std::fs::read_to_string(f.config()).unwrap().replacen(
        "\nsites:",
        "\nscan: {throttle_mb_per_sec: 1, rehash_interval: 1s}\nsites:",
        1,
    );
    std::fs::write(f.config(), cfg).unwrap();
    let big = std::fs::File::create(f.abs(b"lib/big.js")).unwrap();
    big.set_len(40 << 20).unwrap();
    drop(big);
    f.run(["accept"]).ok();
    let d = Daemon::start(&f);
    // The re-hashing scan reads 40 MB at 1 MB/s: it is mid-way now.
    std::thread::sleep(Duration::from_secs(3));
    let (status, took, stderr) = d.terminate();
    assert_eq!(status.code(), Some(0), "{stderr}");
    common::figure("SIGTERM during a throttled scan, signal to exit", took, Duration::from_secs(2));
}

#[test]
fn changes_of_an_interrupted_maintenance_window_are_reported() {
    let f = site("");
    let d = Daemon::start(&f);
    // The maintenance process dies (kill -9) before it could accept.
    let mut cmd = std::process::Command::new(common::BIN);
    cmd.current_dir(f.root()).arg("-c").arg(f.config()).args(["maintenance", "--site", "site", "--"]).args([
        "/bin/sh",
        "-c",
        "echo '<?php evil();' > lib/during.php; sleep 1; kill -9 $PPID",
    ]);
    let r = common::Run::of(cmd);
    assert_ne!(r.code, 0);
    let rec = d.wait_record("added", "/lib/during.php");
    assert_eq!(rec["detected_by"], "scan");
}

#[test]
fn a_tree_moved_in_is_reported_file_by_file() {
    let f = site("");
    let outside = f.path("incoming");
    for i in 0..20 {
        let p = outside.join(format!("plugin/sub{}/f{i}.php", i % 4));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, format!("<?php // {i}")).unwrap();
    }
    let d = Daemon::start(&f);
    std::fs::rename(outside.join("plugin"), f.abs(b"plugin")).unwrap();
    let recs = d.wait_for("20 added files", |r| r.iter().filter(|x| x["event"] == "added").count() >= 20);
    for i in 0..20 {
        assert_eq!(count(&recs, &format!("/plugin/sub{}/f{i}.php", i % 4)), 1, "f{i}");
    }
    // Moved out again before it was accepted: back to the baseline, no drift.
    std::fs::rename(f.abs(b"plugin"), outside.join("plugin")).unwrap();
    settle();
    assert_eq!(f.run(["check"]).code, 0);
    // Accepted, then moved out: every file of it is deleted.
    std::fs::rename(outside.join("plugin"), f.abs(b"plugin")).unwrap();
    settle();
    f.run(["accept"]).ok();
    std::fs::rename(f.abs(b"plugin"), outside.join("plugin")).unwrap();
    let recs = d.wait_for("20 deleted", |r| r.iter().filter(|x| x["event"] == "deleted").count() >= 20);
    assert_eq!(recs.iter().filter(|x| x["event"] == "deleted").count(), 20);
    // Its old watches follow the moved directory: events out there are not
    // reported as if they were in the site.
    std::fs::write(outside.join("plugin/sub0/outside.php"), "<?php").unwrap();
    settle();
    assert_eq!(count(&d.records(), "outside.php"), 0);
}

#[test]
fn rename_delete_and_chmod() {
    let f = site("");
    let d = Daemon::start(&f);
    std::fs::rename(f.abs(b"lib/util.php"), f.abs(b"lib/util2.php")).unwrap();
    d.wait_record("deleted", "/lib/util.php");
    d.wait_record("added", "/lib/util2.php");
    std::fs::remove_file(f.abs(b"index.php")).unwrap();
    d.wait_record("deleted", "/index.php");
    f.write("lib/perm.php", "<?php");
    d.wait_record("added", "/lib/perm.php");
    f.run(["accept", f.abs(b"lib/perm.php").to_str().unwrap()]).ok();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(f.abs(b"lib/perm.php"), std::fs::Permissions::from_mode(0o666)).unwrap();
    let m = d.wait_record("metadata", "/lib/perm.php");
    assert_eq!(m["after"]["mode"], "0666");
}

#[test]
fn a_file_written_in_chunks_gives_one_record() {
    let f = site("");
    let d = Daemon::start(&f);
    use std::io::Write;
    let mut file = std::fs::File::create(f.abs(b"lib/chunked.php")).unwrap();
    for chunk in ["<?php\n", "// part two\n", "// part three\n"] {
        file.write_all(chunk.as_bytes()).unwrap();
        file.flush().unwrap();
        std::thread::sleep(Duration::from_millis(60));
    }
    drop(file);
    let r = d.wait_record("added", "/lib/chunked.php");
    assert_eq!(r["after"]["size"], 32, "hashed after the writer was done: {r}");
    settle();
    assert_eq!(count(&d.records(), "/lib/chunked.php"), 1);
}

#[test]
fn each_change_is_alerted_once_and_drift_stays_until_accepted() {
    let f = site("");
    let d = Daemon::start(&f);
    f.write("lib/util.php", "<?php function u() { evil(); }\n");
    d.wait_record("modified", "/lib/util.php");
    // Touching it again without changing it alerts nothing new.
    let t = filetime::now();
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        &f.abs(b"lib/util.php"),
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
    settle();
    assert_eq!(count(&d.records(), "/lib/util.php"), 1);
    // The drift stays listed by check and status until accepted.
    assert_eq!(f.run(["check"]).code, 1);
    // The alert is in the log before it is remembered as drift: wait for both.
    let start = Instant::now();
    loop {
        let s: serde_json::Value = serde_json::from_str(f.run(["status", "--json"]).ok().stdout.trim()).unwrap();
        if s["sites"][0]["drift"] == 1 {
            break;
        }
        assert!(start.elapsed() < common::daemon::PATIENCE, "{s}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // accept while the daemon runs takes effect at once.
    f.run(["accept"]).ok();
    assert_eq!(f.run(["check"]).code, 0);
    f.write("lib/util.php", "<?php function u() { evil(); evil(); }\n");
    d.wait_for("a second modification", |r| count(r, "/lib/util.php") == 2);
    // A restart does not repeat what was alerted.
    let (status, _, _) = d.terminate();
    assert!(status.success());
    let d = Daemon::start(&f);
    settle();
    assert_eq!(count(&d.records(), "/lib/util.php"), 2);
}

#[test]
fn restart_catch_up_reports_what_changed_while_down() {
    let f = site("");
    let d = Daemon::start(&f);
    let (status, _, _) = d.terminate();
    assert!(status.success());
    f.write("lib/offline.php", "<?php // added while down");
    std::fs::remove_file(f.abs(b"index.php")).unwrap();
    let d = Daemon::start(&f);
    let r = d.wait_record("added", "/lib/offline.php");
    assert_eq!(r["detected_by"], "scan");
    assert_eq!(d.wait_record("deleted", "/index.php")["detected_by"], "scan");
}

#[test]
fn no_baseline_builds_one_under_the_watches() {
    let f = Fixture::new("generic-php", "");
    f.write("index.php", "<?php");
    let d = Daemon::start(&f);
    assert!(f.run(["status", "--json"]).ok().stdout.contains("\"files\":1"));
    settle();
    assert!(d.records().is_empty(), "the first baseline alerts nothing");
    f.write("new.php", "<?php");
    d.wait_record("added", "/new.php");
}

#[test]
fn sigterm_exits_0_quickly() {
    let f = site("");
    let d = Daemon::start(&f);
    f.write("lib/last.php", "<?php");
    let (status, took, stderr) = d.terminate();
    assert_eq!(status.code(), Some(0), "{stderr}");
    common::figure("SIGTERM, signal to exit", took, Duration::from_secs(2));
    assert!(!f.state().join("daemon.json").exists(), "status file left behind");
    // Whatever was pending was judged before exit, or is caught at restart.
    let d = Daemon::start(&f);
    d.wait_record("added", "/lib/last.php");
    let (status, _, _) = d.terminate();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn sighup_reloads_a_good_config_and_refuses_a_bad_one() {
    let f = site("");
    let d = Daemon::start(&f);
    // Bad config: refused, the old one keeps working.
    std::fs::write(f.config(), "sites: [ {name: x, root: /nonexistent} ]\n").unwrap();
    d.signal(Signal::SIGHUP);
    d.wait_stderr("config reload refused");
    f.write("lib/after-bad.php", "<?php");
    d.wait_record("added", "/lib/after-bad.php");
    // Good config with a new ignore: the reload takes effect.
    f.write_config("generic-php", "    ignore: [\"lib/skip/**\"]\n");
    d.signal(Signal::SIGHUP);
    d.wait_stderr("configuration reloaded");
    f.write("lib/skip/x.js", "ignored");
    f.write("lib/after-good.php", "<?php");
    d.wait_record("added", "/lib/after-good.php");
    settle();
    assert_eq!(count(&d.records(), "/lib/skip/x.js"), 0);
    let (status, _, _) = d.terminate();
    assert!(status.success());
}

#[test]
fn a_second_daemon_on_the_same_state_is_refused() {
    let f = site("");
    let _d = Daemon::start(&f);
    let r = f.run(["run"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("another sitewarden daemon is running"), "{}", r.stderr);
}

#[test]
fn watch_prints_alerts_without_a_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.php"), "<?php").unwrap();
    let mut cmd = std::process::Command::new(common::BIN);
    cmd.args(["watch", "--profile", "generic-php"]).arg(dir.path());
    cmd.stdout(std::process::Stdio::piped());
    let mut child = cmd.stderr(std::process::Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    use std::io::BufRead;
    let mut err_lines = std::io::BufReader::new(stderr).lines();
    loop {
        let line = err_lines.next().expect("watch exited").unwrap();
        if line.starts_with("sitewarden: ready") {
            break;
        }
    }
    std::thread::spawn(move || for _ in err_lines {});
    std::fs::write(dir.path().join("evil.php"), "<?php").unwrap();
    let mut out_lines = std::io::BufReader::new(stdout).lines();
    let line = out_lines.next().unwrap().unwrap();
    assert!(line.contains("added") && line.contains("evil.php") && line.contains("realtime"), "{line}");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    assert!(child.wait().unwrap().success());
}

/// The alert log, read without a daemon.
fn logged(f: &Fixture) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(f.path("alerts.jsonl")).unwrap_or_default();
    text.lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Nothing enters the baseline unseen: a change taken in by `accept`
/// before any alert named it is named by `accept`, recorded with its diff
/// (`accepted-without-alert`, the severity the site's rules give it) and
/// queued for the mail, which the daemon delivers once it runs.
#[test]
fn a_change_accepted_before_any_alert_is_recorded_and_mailed() {
    let f = site("");
    let mail_dir = tempfile::tempdir().unwrap();
    let smtp = common::smtp::SmtpServer::start(mail_dir.path(), None);
    f.add_email(smtp.port, "    digest_seconds: 1\n");
    f.write("lib/cache.php", "<?php $f = $_GET['f']; $f($_GET['a']);\n");
    f.write("lib/util.php", "<?php function u() { return 2; }\n");
    let out = f.run(["accept"]).ok();
    assert!(out.stderr.contains("accepted without an alert: added"), "{}", out.stderr);
    assert!(out.stderr.contains("/lib/cache.php"), "{}", out.stderr);
    assert!(out.stderr.contains("2 of them had not been alerted"), "{}", out.stderr);
    let recs = logged(&f);
    assert_eq!(recs.len(), 2, "{recs:#?}");
    let r = recs.iter().find(|r| r["path"].as_str().unwrap().ends_with("/lib/cache.php")).unwrap();
    assert_eq!((r["event"].as_str(), r["rule"].as_str()), (Some("added"), Some("accepted-without-alert")), "{r}");
    assert!(r["diff"].as_str().unwrap().contains("+<?php $f = $_GET['f']"), "{r}");
    assert!(r["diff_note"].as_str().unwrap().contains("accepted by `sitewarden accept` before it was alerted"), "{r}");
    assert_eq!(f.run(["check"]).code, 0);
    // Queued for the mail: the daemon sends it.
    let d = Daemon::start(&f);
    let mails = smtp.wait_messages(1, common::daemon::PATIENCE);
    assert!(
        mails.iter().any(|m| m.body.contains("accepted-without-alert") && m.body.contains("lib/cache.php")),
        "{mails:#?}"
    );
    // What the daemon alerted is not recorded again when accepted.
    f.write("lib/util.php", "<?php function u() { return 3; }\n");
    d.wait_record("modified", "/lib/util.php");
    let out = f.run(["accept"]).ok();
    assert!(!out.stderr.contains("without an alert"), "{}", out.stderr);
    settle();
    assert_eq!(d.records().iter().filter(|r| r["rule"] == "accepted-without-alert").count(), 2);
}

/// The record of a change never alerted is written before the baseline
/// takes the change in: where it cannot be written (the alert log's place
/// taken by a folder), `accept` fails and the change stays drift.
#[test]
fn an_accept_that_cannot_record_accepts_nothing() {
    let f = site("");
    f.write("lib/cache.php", "<?php $f = $_GET['f']; $f($_GET['a']);\n");
    let log = f.path("alerts.jsonl");
    let _ = std::fs::remove_file(&log);
    std::fs::create_dir(&log).unwrap();
    let one = f.abs(b"lib/cache.php").into_os_string();
    for args in [vec!["accept".into()], vec!["accept".into(), one]] {
        let out = f.run(&args);
        assert_ne!(out.code, 0, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("alerts.jsonl"), "{args:?}: {}", out.stderr);
    }
    std::fs::remove_dir(&log).unwrap();
    let check = f.run(["check"]);
    assert_eq!(check.code, 1, "still drift: {}", check.stdout);
    assert!(check.stdout.contains("lib/cache.php"), "{}", check.stdout);
}

/// A deploy script's `accept` half a second after an attacker's write,
/// while the daemon still holds the change: the change is alerted or
/// recorded as accepted, never neither.
#[test]
fn an_accept_racing_the_daemon_never_swallows_a_change() {
    let f = site("");
    let d = Daemon::start(&f);
    for k in 0..5 {
        let rel = format!("lib/plugin{k}/x.php");
        f.write(&rel, format!("<?php $f = $_GET['f{k}']; $f($_GET['a']);\n"));
        std::thread::sleep(Duration::from_millis(100 * k));
        f.run(["accept"]).ok();
        let seen = d.wait_for("the change alerted or recorded", |r| count(r, &format!("/{rel}")) >= 1);
        assert!(count(&seen, &format!("/{rel}")) >= 1);
    }
    settle();
    for k in 0..5 {
        let n = count(&d.records(), &format!("/lib/plugin{k}/x.php"));
        assert!((1..=2).contains(&n), "plugin{k}: {n} records");
    }
}

mod filetime {
    pub fn now() -> nix::sys::time::TimeSpec {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        nix::sys::time::TimeSpec::new(d.as_secs() as i64, d.subsec_nanos() as i64)
    }
}
