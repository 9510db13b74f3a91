//! Webhooks, against a real HTTP receiver on loopback: the four payload
//! shapes, the HMAC a receiver checks, a site owner's hook that never sees
//! another site, secrets never sent, and delivery that survives a receiver
//! answering 500, a receiver down and a daemon restart.

mod common;

use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::receiver::Receiver;
use common::Fixture;
use hmac::Mac;

const SECRET: &str = "s3cret-webhook-key";

fn config(f: &Fixture, rx: &Receiver, secret_file: &std::path::Path) -> String {
    format!(
        "state_dir: {state}\nsignatures: {{ rules_dir: {rules} }}\nvendors: {{ enabled: false }}\nalerts:\n  log: {log}\n  webhooks:\n    - {{ url: \"{json}\", secret_file: {secret}, min_severity: info }}\n    - {{ url: \"{slack}\", kind: slack, min_severity: info, digest_seconds: 1 }}\n    - {{ url: \"{mm}\", kind: mattermost, min_severity: info, digest_seconds: 1 }}\n    - {{ url: \"{teams}\", kind: teams, min_severity: info, digest_seconds: 1 }}\nsites:\n  - name: blog\n    root: {blog}\n    profile: wordpress\n    alerts:\n      webhooks: [ {{ url: \"{owner}\", min_severity: info }} ]\n  - name: shop\n    root: {shop}\n    profile: wordpress\n",
        state = f.state().display(),
        rules = f.path("rules").display(),
        log = f.path("alerts.jsonl").display(),
        json = rx.url("/json"),
        secret = secret_file.display(),
        slack = rx.url("/services/T000/B000/TOKENTOKEN"),
        mm = rx.url("/hooks/mattermost"),
        teams = rx.url("/workflows/teams"),
        owner = rx.url("/owner"),
        blog = f.path("blog").display(),
        shop = f.path("shop").display(),
    )
}

fn wait(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn ids_of(posts: &[common::receiver::Post]) -> Vec<String> {
    posts
        .iter()
        .flat_map(|p| p.json()["records"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r["id"].as_str().map(String::from))
        .collect()
}

#[test]
fn webhooks_deliver_every_shape_signed_per_owner_and_through_outages() {
    let rx_dir = tempfile::tempdir().unwrap();
    let mut rx = Receiver::start(rx_dir.path(), 0);
    let f = Fixture::new("wordpress", "");
    for site in ["blog", "shop"] {
        std::fs::create_dir_all(f.path(site).join("wp-content/uploads/2026")).unwrap();
        std::fs::create_dir_all(f.path(site).join("wp-content/themes/t")).unwrap();
        std::fs::write(f.path(site).join("index.php"), "<?php // index\n").unwrap();
        std::fs::write(f.path(site).join("wp-content/themes/t/functions.php"), "<?php\n// theme\n").unwrap();
    }
    let password = "Pw-9f8e7d6c5b4a-never-sent";
    std::fs::write(f.path("blog").join("wp-config.php"), "<?php\ndefine('DB_PASSWORD', 'old-password-1');\n").unwrap();
    let secret_file = f.path("webhook.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    std::fs::write(f.config(), config(&f, &rx, &secret_file)).unwrap();
    f.run(["config-check"]).ok();
    f.run(["baseline"]).ok();

    // The receiver is broken at first: every post answered 500.
    rx.set_status(500);
    let d = Daemon::start(&f);
    std::fs::write(f.path("blog").join("wp-content/uploads/2026/b.php"), "<?php echo 'blog';").unwrap();
    std::fs::write(f.path("shop").join("wp-content/uploads/2026/s.php"), "<?php echo 'shop';").unwrap();
    std::fs::write(f.path("blog").join("wp-content/themes/t/functions.php"), "<?php\n// theme\nadd_action('x');\n")
        .unwrap();
    std::fs::write(f.path("blog").join("wp-config.php"), format!("<?php\ndefine('DB_PASSWORD', '{password}');\n"))
        .unwrap();
    d.wait_record("added", "/blog/wp-content/uploads/2026/b.php");
    d.wait_record("added", "/shop/wp-content/uploads/2026/s.php");
    d.wait_record("modified", "/blog/wp-config.php");
    wait("a first attempt answered 500", Duration::from_secs(30), || {
        rx.attempts().iter().any(|(p, s)| p == "/json" && *s == 500)
    });
    assert!(rx.posts().is_empty());
    // Fixed: the queued alerts go out at the next retry.
    rx.set_status(200);
    let first_ok = Instant::now();
    wait("every hook delivered after the 500", Duration::from_secs(60), || {
        let p = rx.posts();
        ["/json", "/services/T000/B000/TOKENTOKEN", "/hooks/mattermost", "/workflows/teams", "/owner"]
            .iter()
            .all(|path| p.iter().any(|x| x.path == *path))
            && ids_of(&rx.posts_to("/json")).len() >= 4
    });
    println!("delivered {:?} after the receiver recovered", first_ok.elapsed());
    let retried = rx.attempts().iter().filter(|(p, s)| p == "/json" && *s == 500).count();
    println!("{retried} attempts answered 500 before it");

    // The generic JSON: the records of the contract, signed.
    let posts = rx.posts_to("/json");
    for p in &posts {
        let sig = p.header("X-Sitewarden-Signature").expect("signed");
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(&p.body);
        let want: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(sig, format!("sha256={want}"), "the HMAC of the body with the secret");
        assert_eq!(p.header("Content-Type").as_deref(), Some("application/json"));
        let v = p.json();
        assert_eq!(v["source"], "sitewarden");
        assert_eq!(v["count"].as_u64(), v["records"].as_array().map(|a| a.len() as u64), "{v}");
    }
    let records: Vec<serde_json::Value> =
        posts.iter().flat_map(|p| p.json()["records"].as_array().cloned().unwrap_or_default()).collect();
    let log = d.records();
    for r in &records {
        assert_eq!(r["id"].as_str().map(str::len), Some(32), "{r}");
        assert!(log.iter().any(|l| l["id"] == r["id"]), "the same id as in the alert log: {r}");
    }
    let theme =
        records.iter().find(|r| r["path"].as_str().unwrap().ends_with("/blog/wp-content/themes/t/functions.php"));
    let theme = theme.expect("the theme change");
    assert!(theme["diff"].as_str().is_some_and(|d| d.contains("+add_action('x');")), "diff as in mail: {theme}");
    let config = records.iter().find(|r| r["path"].as_str().unwrap().ends_with("/blog/wp-config.php")).unwrap();
    assert!(config["diff"].is_null() && config["diff_note"] == "secret", "{config}");

    // Slack and Mattermost: a text; Teams: an Adaptive Card.
    let slack = rx.posts_to("/services/T000/B000/TOKENTOKEN");
    let text: String = slack.iter().map(|p| p.json()["text"].as_str().unwrap().to_string()).collect();
    assert!(text.contains("*[sitewarden]") && text.contains("/blog/wp-content/uploads/2026/b.php"), "{text}");
    assert!(text.contains("```\n--- /dev/null") && text.contains("+&lt;?php echo 'blog';"), "a diff block: {text}");
    let mm: String =
        rx.posts_to("/hooks/mattermost").iter().map(|p| p.json()["text"].as_str().unwrap().to_string()).collect();
    assert!(mm.contains("**CRITICAL**") && mm.contains("/shop/wp-content/uploads/2026/s.php"), "{mm}");
    let teams = rx.posts_to("/workflows/teams");
    let card = &teams[0].json()["attachments"][0];
    assert_eq!(card["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    let cards: String = teams.iter().map(|p| p.text()).collect();
    assert!(cards.contains("/blog/wp-content/uploads/2026/b.php"), "{cards}");

    // The blog's owner: the blog's alerts only.
    let owner = rx.posts_to("/owner");
    let owned: Vec<serde_json::Value> =
        owner.iter().flat_map(|p| p.json()["records"].as_array().cloned().unwrap_or_default()).collect();
    assert!(!owned.is_empty() && owned.iter().all(|r| r["site"] == "blog"), "{owned:?}");
    assert!(owner.iter().all(|p| !p.text().contains("/shop/")));

    // The secret never left in any payload, and the token of the Slack URL
    // never reached the daemon's log.
    for p in rx.posts() {
        assert!(!p.text().contains(password), "the password was sent to {}", p.path);
    }
    assert!(!d.stderr().contains("TOKENTOKEN"), "{}", d.stderr());

    // The receiver goes down; an alert queued meanwhile survives a daemon
    // restart and is delivered once the receiver is back.
    rx.stop();
    let before = rx.posts_to("/json").len();
    std::fs::write(f.path("shop").join("wp-content/uploads/2026/late.php"), "<?php echo 'late';").unwrap();
    d.wait_record("added", "/shop/wp-content/uploads/2026/late.php");
    let late_id = d
        .records()
        .iter()
        .find(|r| r["path"].as_str().unwrap().ends_with("/late.php"))
        .map(|r| r["id"].as_str().unwrap().to_string())
        .unwrap();
    wait("a failed attempt", Duration::from_secs(30), || d.stderr().contains("stay queued"));
    let (status, _, _) = d.terminate();
    assert!(status.success());
    let status = f.run(["status", "--json"]).stdout;
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert!(v["outbox"].as_u64().unwrap_or(0) >= 1, "the late alert waits in an outbox: {status}");
    rx.restart();
    let d = Daemon::start(&f);
    let t = Instant::now();
    wait("the late alert after the restart", Duration::from_secs(60), || {
        ids_of(&rx.posts_to("/json")[before..]).contains(&late_id)
    });
    println!("queued alert delivered {:?} after the daemon and the receiver came back", t.elapsed());
    drop(d);
}

#[test]
fn a_bad_webhook_or_syslog_key_is_one_line_with_its_place() {
    let f = Fixture::new("wordpress", "");
    let base = std::fs::read_to_string(f.config()).unwrap();
    let log_line = format!("  log: {}\n", f.path("alerts.jsonl").display());
    let cases = [
        ("  webhooks:\n    - url: ftp://example.com/hook\n", "not an http:// or https:// URL"),
        ("  webhooks:\n    - url: https:///nohost\n", "not an http:// or https:// URL"),
        ("  webhooks:\n    - url: https://h.example/x\n      kind: discord\n", "unknown variant"),
        (
            "  webhooks:\n    - url: https://h.example/x\n      secret_file: /nonexistent/key\n",
            "cannot read /nonexistent/key",
        ),
        ("  webhooks:\n    - url: https://h.example/x\n      secret_file: relative/key\n", "must be an absolute path"),
        ("  syslog:\n    host: 127.0.0.1\n    port: 70000\n", "invalid port 70000"),
        ("  syslog:\n    host: 127.0.0.1\n    port: 0\n", "invalid port 0"),
        ("  syslog:\n    host: 127.0.0.1\n    protocol: sctp\n", "unknown variant"),
        ("  syslog:\n    host: \"tcp://127.0.0.1\"\n", "invalid host"),
        ("  syslog:\n    host: collector.example:514\n", "invalid host"),
        (
            "  webhooks:\n    - url: https://h.example/T/SECRETTOKEN\n    - url: https://h.example/T/SECRETTOKEN\n      kind: json\n",
            "listed twice",
        ),
        ("  webhooks:\n    - url: \"https://h.example/T/SECRETTOKEN \"\n", "not an http"),
        ("  syslog:\n    host: 127.0.0.1\n    format: cef\n", "unknown variant"),
        ("  syslog:\n    host: 127.0.0.1\n    facility: local9\n", "unknown syslog facility"),
        ("  syslog:\n    host: 127.0.0.1\n    protocol: tls\n    ca_file: /nonexistent/ca.pem\n", "cannot read"),
    ];
    for (extra, want) in cases {
        std::fs::write(f.config(), base.replacen(&log_line, &format!("{log_line}{extra}"), 1)).unwrap();
        let r = f.run(["config-check"]);
        assert_eq!(r.code, 2, "{extra}: {r:?}");
        let line = r.stderr.trim();
        assert!(!line.contains('\n'), "one line: {line}");
        assert!(line.contains(want), "{extra}: {line}");
        assert!(!line.contains("SECRETTOKEN"), "a webhook's token in an error: {line}");
        let place = line.trim_start_matches("sitewarden: ").split(": ").next().unwrap();
        let parts: Vec<&str> = place.rsplitn(3, ':').collect();
        assert!(
            parts.len() == 3 && parts[0].parse::<u32>().is_ok() && parts[1].parse::<u32>().is_ok(),
            "file:line:col: {line}"
        );
        println!("{line}");
    }
    // TLS files: PEM of the right kind, and only with protocol: tls.
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=x", "-keyout"])
        .arg(f.path("k.pem"))
        .arg("-out")
        .arg(f.path("c.pem"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let (cert, key) = (f.path("c.pem").display().to_string(), f.path("k.pem").display().to_string());
    let tls = "  syslog:\n    host: 127.0.0.1\n    protocol: tls\n";
    let udp = "  syslog:\n    host: 127.0.0.1\n    protocol: udp\n";
    for (extra, want) in [
        (format!("{udp}    ca_file: {cert}\n"), "ca_file is for protocol: tls"),
        (format!("{tls}    cert_file: {cert}\n"), "cert_file needs key_file"),
        (format!("{tls}    cert_file: {cert}\n    key_file: {cert}\n"), "no usable PEM private key"),
        (format!("{tls}    ca_file: {key}\n"), "no PEM certificate"),
    ] {
        std::fs::write(f.config(), base.replacen(&log_line, &format!("{log_line}{extra}"), 1)).unwrap();
        let r = f.run(["config-check"]);
        assert_eq!(r.code, 2, "{extra}: {r:?}");
        let line = r.stderr.trim();
        assert!(line.contains(want) && line.contains("config.yaml:"), "{extra}: {line}");
        let place = line.trim_start_matches("sitewarden: ").split(": ").next().unwrap();
        assert_eq!(place.matches(':').count(), 2, "file:line:col: {line}");
        println!("{line}");
    }
    // An empty secret file is no key.
    let empty = f.path("empty.secret");
    std::fs::write(&empty, "\n").unwrap();
    let extra = format!("  webhooks:\n    - url: https://h.example/x\n      secret_file: {}\n", empty.display());
    std::fs::write(f.config(), base.replacen(&log_line, &format!("{log_line}{extra}"), 1)).unwrap();
    let r = f.run(["config-check"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("config.yaml:") && r.stderr.contains("is empty"), "{}", r.stderr);
    // A site owner's mail without the global route: with its place too.
    let owner = base + "    alerts:\n      email:\n        to: [owner@blog.example]\n";
    std::fs::write(f.config(), owner).unwrap();
    let r = f.run(["config-check"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("config.yaml:") && r.stderr.contains("needs the mail route"), "{}", r.stderr);
    assert!(
        r.stderr.trim().trim_start_matches("sitewarden: ").split(": ").next().unwrap().matches(':').count() >= 2,
        "{}",
        r.stderr
    );
}

#[test]
fn test_alert_tries_every_route_and_says_which_failed() {
    let rx_dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(rx_dir.path(), 0);
    let col_dir = tempfile::tempdir().unwrap();
    let rs = common::rsyslog::Rsyslog::start(col_dir.path(), false);
    let f = Fixture::new("wordpress", "");
    let log_line = format!("  log: {}\n", f.path("alerts.jsonl").display());
    let routes = format!(
        "  webhooks:\n    - {{ url: \"{}\", kind: slack }}\n    - {{ url: \"http://127.0.0.1:9/closed\" }}\n  syslog: {{ host: 127.0.0.1, port: {}, protocol: tcp }}\n",
        rx.url("/slack"),
        rs.tcp
    );
    let cfg = std::fs::read_to_string(f.config()).unwrap().replacen(&log_line, &format!("{log_line}{routes}"), 1);
    std::fs::write(f.config(), cfg).unwrap();
    let check = f.run(["config-check"]).ok();
    assert!(check.stdout.contains("route: webhook (slack) http://127.0.0.1:"), "{}", check.stdout);
    assert!(check.stdout.contains("route: syslog (tcp) 127.0.0.1:"), "{}", check.stdout);
    let r = f.run(["test-alert"]);
    println!("{}", r.stdout);
    assert_eq!(r.code, 1, "one route is down: {r:?}");
    assert!(r.stdout.contains("ok      webhook (slack) http://127.0.0.1:"), "{}", r.stdout);
    assert!(r.stdout.contains("failed  webhook (json) http://127.0.0.1:9/…"), "{}", r.stdout);
    assert!(r.stdout.contains("ok      syslog (tcp) 127.0.0.1:"), "{}", r.stdout);
    assert!(rx.posts_to("/slack")[0].text().contains("sitewarden-test-alert.php"));
    assert!(rs
        .messages("tcp")
        .iter()
        .any(|m| m.contains("sitewarden-test-alert.php") && m.contains("rule=\"test-alert\"")));
}

/// A receiver that accepts connections and never answers.
fn black_hole() -> (std::process::Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let code = "import socket,sys,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('127.0.0.1',int(sys.argv[1])))\ns.listen(64)\nkeep=[]\nwhile True:\n    c,_=s.accept()\n    keep.append(c)\n";
    let child = std::process::Command::new("python3").args(["-c", code, &port.to_string()]).spawn().unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}

#[test]
fn a_receiver_that_never_answers_holds_up_no_other_route() {
    let rx_dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(rx_dir.path(), 0);
    let (mut hole, port) = black_hole();
    let f = Fixture::new("wordpress", "");
    f.write("index.php", "<?php // index\n");
    let log_line = format!("  log: {}\n", f.path("alerts.jsonl").display());
    let routes = format!(
        "  webhooks:\n    - {{ url: \"http://127.0.0.1:{port}/hole\" }}\n    - {{ url: \"{}\" }}\n",
        rx.url("/good")
    );
    let cfg = std::fs::read_to_string(f.config()).unwrap().replacen(&log_line, &format!("{log_line}{routes}"), 1);
    std::fs::write(f.config(), cfg).unwrap();
    f.run(["baseline"]).ok();
    let d = Daemon::start(&f);
    for i in 0..3 {
        f.write(format!("wp-content/uploads/2026/h{i}.php"), "<?php echo 1;");
        let t = Instant::now();
        d.wait_record("added", &format!("/uploads/2026/h{i}.php"));
        wait("the good receiver", Duration::from_secs(30), || {
            rx.posts_to("/good").iter().any(|p| p.text().contains(&format!("/h{i}.php")))
        });
        println!("alert {i} delivered to the good receiver {:?} after it was logged", t.elapsed());
    }
    // The stuck route gives up at its timeout and keeps its alerts.
    wait("the timeout of the stuck route", Duration::from_secs(60), || {
        d.stderr().lines().any(|l| l.contains("/…") && l.contains("127.0.0.1:") && l.contains("stay queued"))
    });
    let hole_dir = std::fs::read_dir(f.state().join("outbox"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("webhook-"))
        .find(|p| std::fs::read_dir(p).unwrap().flatten().any(|e| e.file_name().to_string_lossy().ends_with(".jsonl")));
    assert!(hole_dir.is_some(), "the stuck route's alerts are still queued");
    let _ = hole.kill();
    let _ = hole.wait();
}
