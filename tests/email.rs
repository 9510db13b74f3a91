//! Mail alerts against a real SMTP server (aiosmtpd on loopback): diffs in
//! the body, secrets never anywhere, no header injection through file
//! names, STARTTLS, delivery after an outage and a restart, digests.

mod common;

use std::io::Read;
use std::time::Duration;

use common::daemon::{settle, Daemon};
use common::smtp::{test_certificate, SmtpServer};
use common::Fixture;

const LONG: Duration = Duration::from_secs(60);

/// A WordPress-like site whose config mails to `port`.
fn site(port: u16, email_extra: &str) -> Fixture {
    let f = Fixture::new("wordpress", "");
    f.add_email(port, email_extra);
    f.write("index.php", "<?php require 'wp-blog-header.php';\n");
    f.write("wp-content/themes/t/functions.php", "<?php\n// theme setup\nadd_theme_support('title-tag');\n");
    f.write("wp-config.php", "<?php\ndefine('DB_PASSWORD', 'old-secret-AAA');\n");
    f.run(["baseline"]).ok();
    f
}

#[test]
fn a_modified_theme_file_mails_its_diff() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(dir.path(), None);
    let f = site(smtp.port, "    digest_seconds: 2\n");
    let _d = Daemon::start(&f);
    f.write(
        "wp-content/themes/t/functions.php",
        "<?php\n// theme setup\nadd_theme_support('title-tag');\neval(base64_decode($_POST['EVIL_MARKER']));\n",
    );
    let mails = smtp.wait_messages(1, LONG);
    let m = &mails[0];
    assert!(
        m.subject.starts_with("[sitewarden] ") && m.subject.ends_with(": 1 change on site (1 critical)"),
        "{}",
        m.subject
    );
    assert!(m.body.contains("\n+eval(base64_decode($_POST['EVIL_MARKER']));\n"), "{}", m.body);
    assert!(m.body.contains(" add_theme_support('title-tag');\n"), "context lines: {}", m.body);
    // A backdoor in a theme is critical by its content (a signature).
    assert!(m.body.contains("CRITICAL modified"), "{}", m.body);
    assert!(m.body.contains("rule signature:php_request_to_exec"), "{}", m.body);
    assert_eq!(m.header("X-RcptTo"), vec!["ops@example.com"]);
    // What the big providers look for: a Message-ID in the sender's domain, a Date.
    let id = m.header("Message-ID");
    assert!(id.len() == 1 && id[0].starts_with('<') && id[0].ends_with("@web1.example.com>"), "{id:?}");
    assert_eq!(m.header("Date").len(), 1, "{:?}", m.headers);
}

#[test]
fn an_added_php_file_is_mailed_at_once_with_its_head() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(dir.path(), None);
    // A long digest: only the urgent path can deliver within the test.
    let f = site(smtp.port, "    digest_seconds: 3600\n");
    let _d = Daemon::start(&f);
    f.write("wp-content/uploads/2026/11/x.php", "<?php system($_GET['HEAD_MARKER']);\n");
    let mails = smtp.wait_messages(1, Duration::from_secs(30));
    let m = &mails[0];
    assert!(m.subject.ends_with("(1 critical)"), "{}", m.subject);
    assert!(m.body.contains("+<?php system($_GET['HEAD_MARKER']);"), "{}", m.body);
    assert!(m.body.contains("CRITICAL added"), "{}", m.body);
}

#[test]
fn secrets_reach_no_mail_no_log_and_no_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(dir.path(), None);
    let f = site(smtp.port, "    digest_seconds: 1\n");
    let d = Daemon::start(&f);
    f.write("wp-config.php", "<?php\ndefine('DB_PASSWORD', 'new-secret-BBB');\n");
    // Backups of it are secrets too.
    f.write("wp-config.php.bak", "<?php\ndefine('DB_PASSWORD', 'new-secret-BBB');\n");
    let mails = smtp.wait_messages(1, LONG);
    d.wait_record("modified", "/wp-config.php");
    d.wait_record("added", "/wp-config.php.bak");
    let all_mail: String = mails.iter().map(|m| m.raw.clone() + &m.body).collect();
    assert!(all_mail.contains("diff suppressed: file holds secrets"), "{all_mail}");
    let mut texts = vec![all_mail, std::fs::read_to_string(f.path("alerts.jsonl")).unwrap(), d.stderr()];
    texts.push(f.run(["check", "--json"]).stdout);
    texts.push(f.run(["diff", f.abs(b"wp-config.php").to_str().unwrap()]).stdout);
    for file in common::walk(&f.state()) {
        let raw = std::fs::read(&file).unwrap();
        texts.push(String::from_utf8_lossy(&raw).into_owned());
        if file.extension().is_some_and(|e| e == "gz") {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut plain).unwrap();
            texts.push(String::from_utf8_lossy(&plain).into_owned());
        }
    }
    for t in &texts {
        assert!(!t.contains("secret-AAA") && !t.contains("secret-BBB"), "a secret leaked: {t}");
    }
}

#[test]
fn a_file_name_cannot_inject_a_header_or_a_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(dir.path(), None);
    let f = site(smtp.port, "    digest_seconds: 1\n");
    let _d = Daemon::start(&f);
    f.write(b"wp-content/themes/t/x\r\nBcc: x@example.com\r\nSubject: pwned.php".as_slice(), "<?php // name attack");
    smtp.wait_messages(1, LONG);
    settle();
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert!(m.header("Bcc").is_empty(), "{:?}", m.headers);
    assert_eq!(m.header("Subject").len(), 1);
    assert!(!m.subject.contains("pwned"));
    assert_eq!(m.header("X-RcptTo"), vec!["ops@example.com"], "{:?}", m.headers);
    assert!(m.body.contains("x\\x0D\\x0ABcc: x@example.com"), "the name is shown, escaped: {}", m.body);
}

#[test]
fn starttls_with_a_private_ca_and_test_email() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_certificate(dir.path());
    let smtp = SmtpServer::start(dir.path(), Some((cert, key)));
    let f = site(smtp.port, "");
    let cfg = std::fs::read_to_string(f.config())
        .unwrap()
        .replace("tls: none }", &format!("tls: starttls, ca_file: {} }}", ca.display()));
    std::fs::write(f.config(), cfg).unwrap();
    let r = f.run(["test-email"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("250"), "{}", r.stdout);
    let mails = smtp.wait_messages(1, LONG);
    assert!(mails[0].subject.contains("[test]"), "{}", mails[0].subject);
    // Without the CA the server's certificate is refused.
    let cfg = std::fs::read_to_string(f.config()).unwrap().replace(&format!(", ca_file: {}", ca.display()), "");
    std::fs::write(f.config(), cfg).unwrap();
    let r = f.run(["test-email"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
}

#[test]
fn mail_survives_an_smtp_outage_and_a_daemon_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut smtp = SmtpServer::start(dir.path(), None);
    let f = site(smtp.port, "    digest_seconds: 1\n");
    smtp.stop();
    let d = Daemon::start(&f);
    f.write("wp-content/themes/t/outage.js", "first();");
    d.wait_record("added", "/outage.js");
    // Queued on disk while the server is down...
    wait_outbox(&f, 1);
    // ...across a restart of the daemon...
    let (status, _, _) = d.terminate();
    assert!(status.success());
    wait_outbox(&f, 1);
    smtp.restart();
    let d = Daemon::start(&f);
    let mails = smtp.wait_messages(1, LONG);
    assert!(mails[0].body.contains("outage.js"), "{}", mails[0].body);
    wait_outbox(&f, 0);
    // And an outage while running: retried with backoff until accepted.
    smtp.stop();
    f.write("wp-content/themes/t/outage2.js", "second();");
    d.wait_record("added", "/outage2.js");
    std::thread::sleep(Duration::from_secs(3));
    smtp.restart();
    let mails = smtp.wait_messages(2, LONG);
    assert!(mails.iter().any(|m| m.body.contains("outage2.js")));
}

#[test]
fn three_thousand_changes_make_one_digest() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(dir.path(), None);
    let f = site(smtp.port, "    digest_seconds: 15\n");
    let d = Daemon::start(&f);
    for i in 0..3000 {
        f.write(format!("wp-content/plugins/update/f{i}.js"), format!("v2({i});"));
    }
    d.wait_for("3000 records", |r| r.len() >= 3000);
    let mails = smtp.wait_messages(1, LONG);
    settle();
    assert_eq!(smtp.messages().len(), 1, "one digest");
    let m = &mails[0];
    assert!(m.subject.contains(": 3000 changes on site (0 critical)"), "{}", m.subject);
    assert!(m.body.contains("more changes, listed without details"), "{}", &m.body[..2000]);
}

#[test]
fn the_hourly_limit_holds_mail_back_without_losing_it() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(dir.path(), None);
    let f = site(smtp.port, "    digest_seconds: 1\n    max_per_hour: 1\n");
    let d = Daemon::start(&f);
    f.write("wp-content/uploads/a.php", "<?php");
    smtp.wait_messages(1, LONG);
    f.write("wp-content/uploads/b.php", "<?php");
    d.wait_record("added", "/uploads/b.php");
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(smtp.messages().len(), 1, "held back by max_per_hour");
    wait_outbox(&f, 1);
}

fn wait_outbox(f: &Fixture, n: u64) {
    let start = std::time::Instant::now();
    loop {
        let s: serde_json::Value = serde_json::from_str(f.run(["status", "--json"]).ok().stdout.trim()).unwrap();
        if s["outbox"] == n {
            return;
        }
        assert!(start.elapsed() < LONG, "outbox never reached {n}: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
