//! Hosting at scale: what the tools a hosting company already runs need
//! from the daemon. Under systemd the journal files each log line at its
//! priority (an alert's by its severity).

mod common;

use common::daemon::Daemon;
use common::Fixture;

#[test]
fn under_systemd_each_line_carries_its_priority() {
    let f = Fixture::new("wordpress", "");
    f.write("index.php", "<?php // index\n");
    f.run(["baseline"]).ok();
    let d = Daemon::start_env(&f, &[("JOURNAL_STREAM", "8:12345")]);
    f.write("wp-content/uploads/2026/11/x.php", "<?php echo 1;");
    f.write("wp-content/themes/t/style.js", "var a = 1;");
    d.wait_record("added", "/uploads/2026/11/x.php");
    d.wait_record("added", "/themes/t/style.js");
    common::daemon::settle();
    let err = d.stderr();
    let line = |needle: &str| err.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle}: {err}"));
    assert!(line("/uploads/2026/11/x.php").starts_with("<2>"), "critical: {err}");
    assert!(line("/themes/t/style.js").starts_with("<4>"), "medium: {err}");
    assert!(line("site watched").starts_with("<6>"), "info: {err}");
    assert!(!line("site watched").contains("T0"), "no timestamp of our own: {err}");
}

#[test]
fn the_alert_log_speaks_ecs_when_asked() {
    let f = Fixture::new("wordpress", "");
    f.write("index.php", "<?php // index\n");
    let cfg = std::fs::read_to_string(f.config()).unwrap().replacen("alerts:\n", "alerts:\n  log_format: ecs\n", 1);
    std::fs::write(f.config(), cfg).unwrap();
    f.run(["baseline"]).ok();
    let d = Daemon::start(&f);
    f.write("wp-content/uploads/2026/11/x.php", "<?php @eval($_POST['k']);");
    let docs = d.wait_for("the ECS document", |docs| {
        docs.iter().any(|v| v["file"]["path"].as_str().is_some_and(|p| p.ends_with("/uploads/2026/11/x.php")))
    });
    let v = docs.iter().find(|v| v["file"]["path"].as_str().is_some_and(|p| p.ends_with("/x.php"))).unwrap();
    assert!(v["@timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{v}");
    assert_eq!((v["event"]["kind"].as_str(), v["event"]["action"].as_str()), (Some("alert"), Some("added")), "{v}");
    assert_eq!(v["event"]["category"], serde_json::json!(["file"]));
    assert_eq!(v["event"]["type"], serde_json::json!(["creation"]));
    assert_eq!(v["event"]["severity"], 5, "critical: {v}");
    assert_eq!(v["event"]["id"].as_str().map(str::len), Some(32), "the record's stable id: {v}");
    assert_eq!(v["file"]["hash"]["sha256"].as_str().map(str::len), Some(64), "{v}");
    assert_eq!(v["rule"]["name"], "php-in-uploads");
    assert!(v["host"]["name"].is_string() && v["sitewarden"]["site"] == "site", "{v}");
    assert_eq!(v["sitewarden"]["signatures"][0], "php_request_to_exec", "{v}");
    // A bad value is a config error with its place.
    let bad = std::fs::read_to_string(f.config()).unwrap().replace("log_format: ecs", "log_format: xml");
    std::fs::write(f.config(), bad).unwrap();
    let r = f.run(["config-check"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("config.yaml:") && r.stderr.contains("xml"), "{}", r.stderr);
}

/// Debian's node_exporter on a loopback port, with only the textfile
/// collector, reading `dir`.
struct NodeExporter {
    child: std::process::Child,
    port: u16,
}

impl NodeExporter {
    fn start(dir: &std::path::Path) -> NodeExporter {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = std::process::Command::new("/usr/bin/prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .arg(format!("--collector.textfile.directory={}", dir.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let t = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t.elapsed() < std::time::Duration::from_secs(10), "node_exporter did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        NodeExporter { child, port }
    }

    /// `GET /metrics`, by hand (HTTP/1.0, the connection closes).
    fn scrape(&self) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn node_exporter_serves_the_metrics() {
    let f = Fixture::new("wordpress", "");
    f.write("index.php", "<?php // index\n");
    let textfiles = f.path("textfile");
    std::fs::create_dir_all(&textfiles).unwrap();
    let prom = textfiles.join("sitewarden.prom");
    let cfg = std::fs::read_to_string(f.config()).unwrap();
    std::fs::write(f.config(), format!("metrics:\n  textfile: {}\n{cfg}", prom.display())).unwrap();
    f.run(["baseline"]).ok();
    let exporter = NodeExporter::start(&textfiles);
    let d = Daemon::start(&f);
    f.write("wp-content/uploads/2026/11/x.php", "<?php echo 1;");
    d.wait_record("added", "/uploads/2026/11/x.php");
    // Written at the next status write (at most 10 s).
    let t = std::time::Instant::now();
    let mut page = String::new();
    while t.elapsed() < std::time::Duration::from_secs(30) {
        page = exporter.scrape();
        if page.contains("sitewarden_alerts_total{severity=\"critical\",site=\"site\"} 1") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    for want in [
        "sitewarden_up 1",
        "sitewarden_files{site=\"site\"} ",
        "sitewarden_drift{site=\"site\"} 1",
        "sitewarden_alerts_total{severity=\"critical\",site=\"site\"} 1",
        "sitewarden_degraded{site=\"site\"} 0",
        "sitewarden_watched_directories{site=\"site\"} ",
        "sitewarden_last_scan_age_seconds{site=\"site\"} ",
        "sitewarden_outbox_depth 0",
        "sitewarden_outbox_oldest_age_seconds 0",
        "sitewarden_realtime_source{site=\"site\",source=\"",
    ] {
        assert!(page.contains(want), "{want} not in the scrape:\n{page}");
    }
    // node_exporter reads the file without complaint.
    assert!(page.contains("node_textfile_scrape_error 0"), "{page}");
    let n = page.lines().filter(|l| l.starts_with("sitewarden_")).count();
    println!("node_exporter serves {n} sitewarden samples");
}

#[test]
fn a_site_owner_gets_the_mail_of_their_site_and_no_other() {
    let mail_dir = tempfile::tempdir().unwrap();
    let smtp = common::smtp::SmtpServer::start(mail_dir.path(), None);
    let f = Fixture::new("wordpress", "");
    for site in ["blog", "shop"] {
        std::fs::create_dir_all(f.path(site).join("wp-content/uploads/2026")).unwrap();
        std::fs::write(f.path(site).join("index.php"), "<?php // index\n").unwrap();
    }
    let config = format!(
        "state_dir: {state}\nsignatures: {{ rules_dir: {rules} }}\nvendors: {{ enabled: false }}\nalerts:\n  log: {log}\n  email:\n    to: [ops@example.com]\n    from: sitewarden@web1.example.com\n    smtp: {{ host: 127.0.0.1, port: {port}, tls: none }}\n    min_severity: info\n    digest_seconds: 2\nsites:\n  - name: blog\n    root: {blog}\n    profile: wordpress\n    alerts: {{ email: {{ to: [owner@blog.example] }} }}\n  - name: shop\n    root: {shop}\n    profile: wordpress\n",
        state = f.state().display(),
        rules = f.path("rules").display(),
        log = f.path("alerts.jsonl").display(),
        port = smtp.port,
        blog = f.path("blog").display(),
        shop = f.path("shop").display(),
    );
    std::fs::write(f.config(), config).unwrap();
    f.run(["baseline"]).ok();
    let d = Daemon::start(&f);
    std::fs::write(f.path("blog").join("wp-content/uploads/2026/b.php"), "<?php echo 'blog';").unwrap();
    std::fs::write(f.path("shop").join("wp-content/uploads/2026/s.php"), "<?php echo 'shop';").unwrap();
    d.wait_record("added", "/blog/wp-content/uploads/2026/b.php");
    d.wait_record("added", "/shop/wp-content/uploads/2026/s.php");
    // Critical: mailed within seconds, to both routes.
    let t = std::time::Instant::now();
    let done = |mails: &[common::smtp::Mail]| {
        let to = |who: &str| mails.iter().filter(|m| m.header("X-RcptTo").contains(&who)).count();
        let all: String = mails
            .iter()
            .filter(|m| m.header("X-RcptTo").contains(&"ops@example.com"))
            .map(|m| m.body.clone())
            .collect();
        to("owner@blog.example") >= 1 && all.contains("/b.php") && all.contains("/s.php")
    };
    let mut mails = smtp.messages();
    while !done(&mails) && t.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(300));
        mails = smtp.messages();
    }
    common::daemon::settle();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let mails = smtp.messages();
    let owner: Vec<_> = mails.iter().filter(|m| m.header("X-RcptTo").contains(&"owner@blog.example")).collect();
    assert!(!owner.is_empty(), "the owner got nothing: {mails:?}");
    for m in &owner {
        assert!(!m.header("X-RcptTo").contains(&"ops@example.com"), "separate mails: {:?}", m.headers);
        assert!(m.body.contains("/b.php") && !m.body.contains("shop") && !m.body.contains("/s.php"), "{}", m.body);
        assert!(m.subject.contains(" on blog "), "{}", m.subject);
    }
    let ops: String =
        mails.iter().filter(|m| m.header("X-RcptTo").contains(&"ops@example.com")).map(|m| m.body.clone()).collect();
    assert!(ops.contains("/b.php") && ops.contains("/s.php"), "the global recipients get everything: {ops}");
    println!("{} mails: {} to the blog's owner (blog only), the rest to ops (both sites)", mails.len(), owner.len());
    // An owner without a mail route is a config error.
    let cfg = std::fs::read_to_string(f.config()).unwrap();
    let start = cfg.find("  email:").unwrap();
    let end = cfg.find("sites:").unwrap();
    std::fs::write(f.config(), format!("{}{}", &cfg[..start], &cfg[end..])).unwrap();
    let r = f.run(["config-check"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("needs the mail route"), "{}", r.stderr);
}
