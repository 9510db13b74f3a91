//! What a careless admin or an attacker who read the source would try on
//! the edges of the daemon: settings that only fail at run time, names made
//! to forge hook environment lines or to display as something else, a hook
//! that fails, and `status` while the config on disk is broken.

mod common;

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::daemon::{Daemon, PATIENCE};
use common::smtp::SmtpServer;
use common::Fixture;

/// Inserts top-level YAML before `sites:`.
fn with_top(f: &Fixture, yaml: &str) {
    let cfg = std::fs::read_to_string(f.config()).unwrap();
    std::fs::write(f.config(), cfg.replacen("\nsites:", &format!("\n{yaml}sites:"), 1)).unwrap();
}

/// `config-check` and `run` both refuse, exit 2, with one line naming
/// `file:line:col` and `what`; and `run` created nothing.
fn refused(f: &Fixture, what: &str) {
    for cmd in ["config-check", "run"] {
        let r = f.run([cmd]);
        assert_eq!(r.code, 2, "{cmd}: {}", r.stderr);
        let line = r.stderr.trim();
        assert_eq!(line.lines().count(), 1, "{cmd}: one line: {line}");
        let at = format!("{}:", f.config().display());
        assert!(line.contains(&at) && line.contains(what), "{cmd}: {line}");
        let place = line.split(&at).nth(1).unwrap_or("");
        let mut parts = place.splitn(3, ':');
        assert!(
            parts.next().is_some_and(|l| l.parse::<u32>().is_ok())
                && parts.next().is_some_and(|c| c.parse::<u32>().is_ok()),
            "{cmd}: line and column in {line}"
        );
    }
    assert!(!f.state().exists(), "nothing created before the checks pass");
}

#[test]
fn a_missing_or_non_executable_hook_is_a_config_error() {
    let f = Fixture::new("wordpress", "");
    with_top(&f, "quarantine:\n  hook: [\"/nonexistent/on-quarantine\", \"--notify\"]\n");
    refused(&f, "hook program /nonexistent/on-quarantine does not exist");
    let script = f.path("hook.sh");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    f.write_config("wordpress", "");
    with_top(&f, &format!("quarantine:\n  hook: [\"{}\"]\n", script.display()));
    refused(&f, "is not executable");
    // A reload to such a config is refused too; the running one is kept.
    f.write_config("wordpress", "");
    f.run(["baseline"]).ok();
    let d = Daemon::start(&f);
    with_top(&f, "quarantine:\n  hook: [\"/nonexistent/on-quarantine\"]\n");
    d.signal(nix::sys::signal::Signal::SIGHUP);
    d.wait_stderr("config reload refused");
    assert!(d.stderr().contains("does not exist"), "{}", d.stderr());
}

#[test]
fn an_unreadable_password_file_is_a_config_error() {
    let f = Fixture::new("wordpress", "");
    with_top(
        &f,
        "alerts:\n  email:\n    to: [ops@example.com]\n    from: sw@example.com\n    smtp: { host: 127.0.0.1, username: u, password_file: /nonexistent/pw }\n",
    );
    // The fixture already has an `alerts:` key: keep one.
    let cfg = std::fs::read_to_string(f.config()).unwrap();
    let log_line = format!("alerts:\n  log: {}\n", f.path("alerts.jsonl").display());
    let cfg = cfg.replacen(&log_line, "", 1).replacen("alerts:\n", &log_line, 1);
    std::fs::write(f.config(), cfg).unwrap();
    refused(&f, "cannot read /nonexistent/pw");
}

/// A read-only filesystem mounted by the test (tmpfs, `ro`).
struct ReadOnly(tempfile::TempDir);

impl ReadOnly {
    fn mount() -> Option<ReadOnly> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m,ro", "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(ReadOnly(dir))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn a_state_dir_or_alert_log_on_a_read_only_filesystem_is_refused_up_front() {
    let Some(ro) = ReadOnly::mount() else {
        panic!("mounting a read-only tmpfs needs root (.ci/run runs as root)");
    };
    let f = Fixture::new("wordpress", "");
    let cfg = std::fs::read_to_string(f.config()).unwrap();
    let state = f.state().display().to_string();
    std::fs::write(f.config(), cfg.replacen(&state, &ro.path().join("state").display().to_string(), 1)).unwrap();
    let r = f.run(["config-check"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains(":1:12: state_dir:") && r.stderr.contains("read-only filesystem"), "{}", r.stderr);
    let r = f.run(["run"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("read-only filesystem"), "{}", r.stderr);
    // The alert log likewise.
    f.write_config("wordpress", "");
    let cfg = std::fs::read_to_string(f.config()).unwrap();
    let log = f.path("alerts.jsonl").display().to_string();
    std::fs::write(f.config(), cfg.replacen(&log, &ro.path().join("alerts.jsonl").display().to_string(), 1)).unwrap();
    refused(&f, "alerts.log:");
}

#[test]
fn a_state_dir_or_log_folder_someone_else_can_write_is_refused() {
    // As sshd's StrictModes: www-data pre-creating the state dir (or making
    // it writable by all) must not get to rewrite the baseline.
    let f = Fixture::new("wordpress", "");
    let state = f.state();
    std::fs::create_dir_all(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    for cmd in ["config-check", "baseline", "run"] {
        let r = f.run([cmd]);
        assert_eq!(r.code, 2, "{cmd}: {}", r.stderr);
        assert!(
            r.stderr.contains("state_dir:") && r.stderr.contains("writable by others (mode 0777)"),
            "{cmd}: {}",
            r.stderr
        );
    }
    assert!(!state.join("baseline.db").exists(), "nothing written into it");
    // Private, but www-data's (uid 33).
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    nix::unistd::chown(&state, Some(nix::unistd::Uid::from_raw(33)), None).unwrap();
    let r = f.run(["baseline"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("belongs to uid 33"), "{}", r.stderr);
    // The alert log's folder likewise; a folder above writable by others
    // counts too, unless it is sticky (as /tmp).
    nix::unistd::chown(&state, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
    let above = f.path("logs");
    std::fs::create_dir_all(above.join("sub")).unwrap();
    std::fs::set_permissions(&above, std::fs::Permissions::from_mode(0o777)).unwrap();
    let cfg = std::fs::read_to_string(f.config()).unwrap();
    let log = f.path("alerts.jsonl").display().to_string();
    std::fs::write(f.config(), cfg.replacen(&log, &above.join("sub/alerts.jsonl").display().to_string(), 1)).unwrap();
    let r = f.run(["baseline"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("alerts.log:") && r.stderr.contains("logs is writable by others"), "{}", r.stderr);
    std::fs::set_permissions(&above, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let r = f.run(["baseline"]);
    assert_eq!(r.code, 0, "a sticky folder above is fine: {}", r.stderr);
    // A private-looking state dir reached through a symlink into a folder
    // anyone can write: the folders it resolves to count.
    let shared = f.path("shared");
    std::fs::create_dir_all(shared.join("state")).unwrap();
    std::fs::set_permissions(shared.join("state"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::symlink(shared.join("state"), f.path("state-link")).unwrap();
    let cfg = std::fs::read_to_string(f.config()).unwrap();
    let state = f.state().display().to_string();
    std::fs::write(f.config(), cfg.replacen(&state, &f.path("state-link").display().to_string(), 1)).unwrap();
    let r = f.run(["baseline"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("shared is writable by others"), "{}", r.stderr);
}

#[test]
fn status_answers_from_the_running_daemon_while_the_config_is_broken() {
    let f = Fixture::new("generic-php", "");
    f.write("index.php", "<?php");
    f.run(["baseline"]).ok();
    let _d = Daemon::start(&f);
    let good = std::fs::read_to_string(f.config()).unwrap();
    std::fs::write(f.config(), format!("{good}  - name: [broken\n")).unwrap();
    let r = f.run(["status", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("warning") && r.stderr.contains("running daemon"), "{}", r.stderr);
    let s: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(s["ready"], true, "{s}");
    assert_eq!(s["sites"][0]["name"], "site", "{s}");
    assert_eq!(s["sites"][0]["profile"], "generic-php", "{s}");
    assert!(s["sites"][0]["files"].as_u64().unwrap() >= 1, "{s}");
    assert!(s["config_error"].as_str().is_some_and(|e| e.contains(":")), "{s}");
    // Without a daemon, a broken config is an error as before.
    drop(_d);
    assert_eq!(f.run(["status"]).code, 2);
}

/// A WordPress site with a hook that records its environment to `dir`.
fn site_with_hook(hook_body: &str) -> Fixture {
    let f = Fixture::new("wordpress", "");
    let hook = f.path("hook.sh");
    std::fs::write(&hook, format!("#!/bin/sh\n{hook_body}\n")).unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    with_top(&f, &format!("quarantine:\n  hook: [\"{}\"]\n  hook_timeout: 10s\n", hook.display()));
    f.write("index.php", "<?php // wp");
    f.run(["baseline"]).ok();
    f
}

fn wait_for_file(p: &Path) -> String {
    let t = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(p) {
            if s.ends_with("END\n") {
                return s;
            }
        }
        assert!(t.elapsed() < PATIENCE, "{} never written", p.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_newline_or_invalid_utf8_in_a_name_cannot_forge_hook_environment_lines() {
    let f = site_with_hook(&format!("{{ env | grep ^SITEWARDEN_; echo END; }} > {}/hook.env", f_dir_placeholder()));
    // The placeholder is replaced now that the fixture's folder is known.
    let hook = f.path("hook.sh");
    let body =
        std::fs::read_to_string(&hook).unwrap().replace(f_dir_placeholder(), &f.dir.path().display().to_string());
    std::fs::write(&hook, body).unwrap();
    let d = Daemon::start(&f);
    // A directory whose name carries a newline, a forged variable and an
    // invalid byte; an added .htaccess in it is quarantined (removed).
    let mut dir = b"up\nSITEWARDEN_RESULT=forged\xff".to_vec();
    std::fs::create_dir(f.abs(&dir)).unwrap();
    dir.extend_from_slice(b"/.htaccess");
    std::fs::write(f.abs(&dir), "AddHandler application/x-httpd-php .png\n").unwrap();
    let env = wait_for_file(&f.path("hook.env"));
    let lines: Vec<&str> = env.lines().collect();
    assert!(!lines.iter().any(|l| l.starts_with("SITEWARDEN_RESULT=forged")), "{env}");
    let path = lines.iter().find(|l| l.starts_with("SITEWARDEN_PATH=")).expect("SITEWARDEN_PATH");
    assert!(path.ends_with("/up\\x0ASITEWARDEN_RESULT=forged\\xFF/.htaccess"), "{path}");
    let b64 = lines.iter().find(|l| l.starts_with("SITEWARDEN_PATH_BASE64=")).expect("the exact bytes too");
    use base64::Engine as _;
    let exact = base64::engine::general_purpose::STANDARD.decode(&b64["SITEWARDEN_PATH_BASE64=".len()..]).unwrap();
    assert_eq!(exact, f.abs(&dir).as_os_str().as_bytes());
    drop(d);
}

fn f_dir_placeholder() -> &'static str {
    "@FIXTURE_DIR@"
}

#[test]
fn a_failing_hook_is_named_in_a_record_and_in_the_mail() {
    let smtp_dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(smtp_dir.path(), None);
    let f = site_with_hook("echo 'no ticket system' >&2; exit 3");
    f.add_email(smtp.port, "    digest_seconds: 1\n");
    let d = Daemon::start(&f);
    f.write("wp-content/uploads/.htaccess", "AddHandler application/x-httpd-php .jpg\n");
    let recs = d.wait_for("the hook failure record", |r| {
        r.iter().any(|x| x["quarantine"]["result"].as_str().is_some_and(|s| s.contains("hook failed: exit status 3")))
    });
    let first = recs.iter().find(|r| r["path"].as_str().is_some_and(|p| p.ends_with("/uploads/.htaccess"))).unwrap();
    // An added .htaccess that makes images run as PHP: removed (when: signature).
    assert_eq!(first["quarantine"]["action"], "remove");
    let mails = smtp.wait_messages(1, Duration::from_secs(60));
    let all: String = mails.iter().map(|m| m.body.clone()).collect();
    let t = Instant::now();
    let mut all = all;
    while !all.contains("hook failed: exit status 3") && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
        all = smtp.messages().iter().map(|m| m.body.clone()).collect();
    }
    assert!(all.contains("hook failed: exit status 3"), "{all}");
}

#[test]
fn bidi_controls_in_a_name_are_escaped_in_the_log_the_mail_and_stderr() {
    let smtp_dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(smtp_dir.path(), None);
    let f = Fixture::new("wordpress", "");
    f.add_email(smtp.port, "    digest_seconds: 1\n");
    f.write("index.php", "<?php");
    f.run(["baseline"]).ok();
    let d = Daemon::start(&f);
    let name = "wp-content/uploads/uni\u{202E}gnp.php";
    f.write(name, "<?php system($_GET[1]);");
    let r = d.wait_record("added", "gnp.php");
    let path = r["path"].as_str().unwrap();
    assert!(path.ends_with("/uni\\u202Egnp.php") && !path.contains('\u{202E}'), "{path}");
    assert!(r["path_base64"].is_string(), "the exact name: {r}");
    let mails = smtp.wait_messages(1, Duration::from_secs(60));
    for m in &mails {
        assert!(!m.body.contains('\u{202E}') && !m.subject.contains('\u{202E}'), "{}", m.body);
    }
    assert!(mails.iter().any(|m| m.body.contains("uni\\u202Egnp.php")), "{}", mails[0].body);
    let log = std::fs::read_to_string(f.path("alerts.jsonl")).unwrap();
    assert!(!log.contains('\u{202E}'), "{log}");
    assert!(!d.stderr().contains('\u{202E}'), "{}", d.stderr());
}

#[test]
fn a_huge_sparse_htaccess_is_restored_with_bounded_evidence() {
    // 100 MB that cost the attacker no disk: the evidence must not expand
    // it, nor hold the judge while it copies.
    let f = Fixture::new("wordpress", "");
    f.write("index.php", "<?php");
    f.write(".htaccess", "deny from all\n");
    f.run(["baseline"]).ok();
    let d = Daemon::start(&f);
    let h = std::fs::OpenOptions::new().write(true).open(f.abs(b".htaccess")).unwrap();
    h.set_len(100_000_000).unwrap();
    drop(h);
    let r = d.wait_record("modified", "/.htaccess");
    assert_eq!(r["quarantine"]["result"], "restored", "{r}");
    assert_eq!(std::fs::read_to_string(f.abs(b".htaccess")).unwrap(), "deny from all\n");
    let id = r["quarantine"]["id"].as_str().unwrap();
    let item = f.state().join("quarantine").join(id);
    let used: u64 = std::fs::read_dir(&item).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    println!("evidence of a 100 MB sparse .htaccess: {used} bytes");
    assert!(used < 2_000_000, "{used} bytes kept");
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(item.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["evidence_head"], true, "{meta}");
    assert_eq!(meta["size"], 100_000_000u64);
    let back = f.run(["quarantine", "restore", id]);
    assert_eq!(back.code, 2);
    assert!(back.stderr.contains("kept only the first 64 KiB"), "{}", back.stderr);
}
