//! Syslog to a collector, against Debian's rsyslogd started by the test:
//! RFC 5424 over TCP (octet-counted) with the record in structured data,
//! through the outbox, so a collector restarted in the middle of a burst
//! of 1,000 changes still ends up with every record; JSON in MSG over UDP;
//! TLS checked against the collector's CA.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::rsyslog::Rsyslog;
use common::Fixture;

fn with_syslog(f: &Fixture, syslog: &str) {
    let log_line = format!("  log: {}\n", f.path("alerts.jsonl").display());
    let cfg = std::fs::read_to_string(f.config()).unwrap();
    let start = cfg.find("  syslog:").unwrap_or(cfg.len());
    let end = cfg[start..].find("sites:").map(|e| start + e).unwrap_or(cfg.len());
    let cfg = if start < cfg.len() { format!("{}{}", &cfg[..start], &cfg[end..]) } else { cfg };
    std::fs::write(f.config(), cfg.replacen(&log_line, &format!("{log_line}  syslog:\n{syslog}"), 1)).unwrap();
}

/// The record ids in raw RFC 5424 messages (`id="…"` of the structured data).
fn sd_ids(messages: &[String]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| m.split("[sitewarden@32473 id=\"").nth(1).and_then(|r| r.split('"').next()).map(String::from))
        .collect()
}

/// Writes 20 files below `app/NAME/` and waits until `received` holds the
/// id of each of their records.
fn burst_reaches(f: &Fixture, d: &Daemon, name: &str, received: impl Fn() -> HashSet<String>) {
    let dir = format!("/app/{name}/");
    for i in 0..20 {
        f.write(format!("app/{name}/f{i:02}.php"), format!("<?php echo {i};\n"));
    }
    let recs =
        d.wait_for("20 records", |r| r.iter().filter(|x| x["path"].as_str().unwrap().contains(&dir)).count() >= 20);
    let want: HashSet<String> = recs
        .iter()
        .filter(|x| x["path"].as_str().unwrap().contains(&dir))
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    let start = Instant::now();
    loop {
        let got = received();
        if want.is_subset(&got) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{name}: {} of 20; stderr:\n{}", got.len(), d.stderr());
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("{name}: 20 of 20 records");
}

#[test]
fn tcp_delivery_survives_a_collector_restart_during_a_burst() {
    let dir = tempfile::tempdir().unwrap();
    let mut rs = Rsyslog::start(dir.path(), false);
    let f = Fixture::new("generic-php", "");
    f.write("index.php", "<?php // index\n");
    with_syslog(&f, &format!("    host: 127.0.0.1\n    port: {}\n    protocol: tcp\n", rs.tcp));
    f.run(["config-check"]).ok();
    f.run(["baseline"]).ok();
    let d = Daemon::start(&f);
    const N: usize = 1000;
    let t = Instant::now();
    for i in 0..N {
        f.write(format!("app/burst/f{i:04}.php"), format!("<?php echo {i};\n"));
        std::thread::sleep(Duration::from_millis(2));
        if i == N * 3 / 10 {
            rs.stop();
        }
        if i == N * 6 / 10 {
            rs.restart();
        }
    }
    println!("burst of {N} new files written in {:?}, the collector down from file 300 to 600", t.elapsed());
    let recs = d.wait_for("every change alerted", |r| {
        r.iter().filter(|x| x["path"].as_str().is_some_and(|p| p.contains("/app/burst/"))).count() >= N
    });
    let want: HashSet<String> = recs
        .iter()
        .filter(|x| x["path"].as_str().is_some_and(|p| p.contains("/app/burst/")))
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(want.len(), N, "one id per change");
    let start = Instant::now();
    let mut got: HashSet<String> = HashSet::new();
    while start.elapsed() < Duration::from_secs(180) {
        got = sd_ids(&rs.messages("tcp")).into_iter().collect();
        if want.is_subset(&got) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let received = sd_ids(&rs.messages("tcp"));
    let missing: Vec<&String> = want.difference(&got).collect();
    println!(
        "collector holds {} of {N} record ids ({} messages, {} duplicates), {:?} after the burst",
        want.intersection(&got).count(),
        received.len(),
        received.len() - got.len(),
        start.elapsed()
    );
    assert!(missing.is_empty(), "{} ids never reached the collector; stderr:\n{}", missing.len(), d.stderr());
    let failed = d.stderr().lines().filter(|l| l.contains("syslog (tcp)") && l.contains("stay queued")).count();
    println!("{failed} deliveries failed while the collector was down, and were retried");
    assert!(failed > 0, "the restart was not in the burst: {}", d.stderr());
    // The messages are RFC 5424: PRI, version, the record in structured data.
    let m = rs.messages("tcp").into_iter().find(|m| m.contains("/app/burst/f0001.php")).unwrap();
    assert!(m.starts_with('<') && m.contains(">1 ") && m.contains(" sitewarden "), "{m}");
    assert!(m.contains(" site=\"site\" event=\"added\" path=\"") && m.contains(" severity=\""), "{m}");
    // What was delivered is gone from the outbox.
    let queued = || {
        std::fs::read_dir(f.state().join("outbox/syslog"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
            .count()
    };
    let start = Instant::now();
    while queued() > 0 {
        assert!(start.elapsed() < Duration::from_secs(20), "{} batches left", queued());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn json_over_udp_and_rfc5424_over_tls_reach_the_collector() {
    let dir = tempfile::tempdir().unwrap();
    let rs = Rsyslog::start(dir.path(), true);
    let f = Fixture::new("generic-php", "");
    f.write("index.php", "<?php // index\n");
    f.run(["baseline"]).ok();

    // UDP, the record as JSON in MSG.
    with_syslog(
        &f,
        &format!(
            "    host: 127.0.0.1\n    port: {}\n    protocol: udp\n    format: json\n    facility: local3\n",
            rs.udp
        ),
    );
    let d = Daemon::start(&f);
    let json_of = |m: &String| -> Option<serde_json::Value> {
        m.split_once(" - {").and_then(|(_, j)| serde_json::from_str(&format!("{{{j}")).ok())
    };
    burst_reaches(&f, &d, "udp", || {
        rs.messages("udp").iter().filter_map(json_of).map(|v| v["id"].as_str().unwrap().to_string()).collect()
    });
    let m = rs.messages("udp").into_iter().find(|m| m.contains("/app/udp/f00.php")).unwrap();
    // local3 (19) * 8 + the level of the record's severity.
    assert!(m.starts_with("<15"), "{m}");
    let v = json_of(&m).unwrap();
    assert_eq!(v["event"], "added");
    assert!(v["path"].as_str().unwrap().ends_with("/app/udp/f00.php"));
    assert!(v.get("diff").is_none_or(|d| d.is_null()), "no file content to the collector: {v}");
    drop(d);

    // TLS, the collector's certificate checked against its CA.
    let ca = rs.dir.join("certs/ca.pem");
    with_syslog(
        &f,
        &format!(
            "    host: 127.0.0.1\n    port: {}\n    protocol: tls\n    ca_file: {}\n",
            rs.tls.unwrap(),
            ca.display()
        ),
    );
    f.run(["config-check"]).ok();
    let d = Daemon::start(&f);
    burst_reaches(&f, &d, "tls", || sd_ids(&rs.messages("tls")).into_iter().collect());
    drop(d);

    // A collector that wants a client certificate: without one, it drops
    // the connection and nothing counts as delivered; with one, it takes
    // the queued alert and the next ones.
    let mtls = |client: &str| {
        format!(
            "    host: 127.0.0.1\n    port: {}\n    protocol: tls\n    ca_file: {}\n{client}",
            rs.mtls.unwrap(),
            ca.display()
        )
    };
    with_syslog(&f, &mtls(""));
    let d = Daemon::start(&f);
    f.write("app/mtls/early.php", "<?php echo 'early';\n");
    let early = d.wait_record("added", "/app/mtls/early.php")["id"].as_str().unwrap().to_string();
    let start = Instant::now();
    while !d.stderr().contains("stay queued") {
        assert!(start.elapsed() < Duration::from_secs(30), "{}", d.stderr());
        std::thread::sleep(Duration::from_millis(200));
    }
    common::daemon::settle();
    assert!(rs.messages("mtls").is_empty(), "{:?}", rs.messages("mtls"));
    let refused = d.stderr().lines().filter(|l| l.contains("stay queued")).count();
    println!("mtls without a client certificate: {refused} deliveries refused, none counted delivered");
    drop(d);
    let certs = rs.dir.join("certs");
    with_syslog(
        &f,
        &mtls(&format!(
            "    cert_file: {}\n    key_file: {}\n",
            certs.join("client.pem").display(),
            certs.join("client-key.pem").display()
        )),
    );
    f.run(["config-check"]).ok();
    let d = Daemon::start(&f);
    burst_reaches(&f, &d, "mtls", || sd_ids(&rs.messages("mtls")).into_iter().collect());
    assert!(sd_ids(&rs.messages("mtls")).contains(&early), "the alert queued while refused");
    drop(d);

    // A collector whose certificate the CA did not sign: nothing is sent,
    // the alerts stay queued and the log says why.
    let other = tempfile::tempdir().unwrap();
    let wrong = Rsyslog::start(other.path(), true);
    with_syslog(
        &f,
        &format!(
            "    host: 127.0.0.1\n    port: {}\n    protocol: tls\n    ca_file: {}\n",
            wrong.tls.unwrap(),
            ca.display()
        ),
    );
    let d = Daemon::start(&f);
    f.write("app/tls/x.php", "<?php echo 'x';\n");
    d.wait_record("added", "/app/tls/x.php");
    let start = Instant::now();
    while !d.stderr().contains("stay queued") {
        assert!(start.elapsed() < Duration::from_secs(30), "{}", d.stderr());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(wrong.messages("tls").is_empty());
    let err = d.stderr();
    let line = err.lines().find(|l| l.contains("stay queued")).unwrap();
    assert!(line.to_lowercase().contains("certificate"), "{line}");
}
