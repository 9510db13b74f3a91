//! Known-good: a site judged against what was deployed (`reference:`, a
//! directory or a .tar.gz release archive). A changed file of the release
//! is critical `tampered`, a new one among the release's folders critical
//! `foreign`; `verify` names both (and what is missing) even in a site
//! that was infected before its first baseline.

mod common;

use std::path::Path;

use common::daemon::Daemon;
use common::publisher::Publisher;
use common::Fixture;

/// A release tree: a few core files and a plugin.
fn release(dir: &Path) {
    for (rel, text) in [
        ("index.php", "<?php require 'wp-blog-header.php';\n"),
        ("wp-blog-header.php", "<?php // header\n"),
        ("wp-includes/load.php", "<?php // load\n"),
        ("wp-includes/version.php", "<?php $wp_version = '6.4.2';\n"),
        ("wp-content/plugins/akismet/akismet.php", "<?php // akismet\n"),
    ] {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

/// A site deployed from `release`, with `reference:` at the directory or
/// at a .tar.gz of it.
fn site(archive: bool) -> (Fixture, std::path::PathBuf) {
    let f = Fixture::new("generic-php", "");
    let rel_dir = f.path("release/wordpress");
    release(&rel_dir);
    release(&f.root());
    let reference = if archive {
        let tgz = f.path("release.tar.gz");
        let ok = std::process::Command::new("tar")
            .arg("czf")
            .arg(&tgz)
            .arg("-C")
            .arg(f.path("release"))
            .arg("wordpress")
            .status()
            .unwrap();
        assert!(ok.success());
        tgz
    } else {
        rel_dir
    };
    f.write_config("generic-php", &format!("    reference: {}\n", reference.display()));
    (f, reference)
}

#[test]
fn a_tampered_and_a_foreign_file_are_critical_with_their_verdict() {
    for archive in [false, true] {
        let (f, reference) = site(archive);
        f.run(["baseline"]).ok();
        let d = Daemon::start(&f);
        f.write("wp-includes/load.php", "<?php // load\n$changed = true;\n");
        f.write("wp-includes/x.php", "<?php system($_GET['c']);");
        f.write("wp-content/plugins/akismet/akismet.php", "<?php // akismet\n");
        let r = d.wait_record("modified", "/wp-includes/load.php");
        assert_eq!((r["severity"].as_str(), r["rule"].as_str()), (Some("critical"), Some("vendor-tampered")), "{r}");
        assert_eq!(r["verdict"]["origin"], "tampered", "{r}");
        assert_eq!(r["verdict"]["package"], "reference", "{r}");
        assert_eq!(r["verdict"]["version"], reference.display().to_string(), "{r}");
        assert!(r["diff"].as_str().is_some_and(|d| d.contains("+$changed = true;")), "{r}");
        let r = d.wait_record("added", "/wp-includes/x.php");
        assert_eq!((r["severity"].as_str(), r["rule"].as_str()), (Some("critical"), Some("vendor-foreign")), "{r}");
        assert_eq!(r["verdict"]["origin"], "foreign", "{r}");
        // Rewritten with the very bytes of the release: no change at all.
        common::daemon::settle();
        assert!(!d.records().iter().any(|r| r["path"].as_str().is_some_and(|p| p.ends_with("/akismet.php"))));
    }
}

#[test]
fn verify_names_an_infection_older_than_the_baseline() {
    for archive in [false, true] {
        let (f, _) = site(archive);
        // Infected before sitewarden came: the baseline accepts it...
        f.write("wp-blog-header.php", "<?php // header\n@include '/tmp/.x';\n");
        f.write("wp-includes/cache.php", "<?php eval(base64_decode($_POST['p']));");
        std::fs::remove_file(f.abs(b"wp-includes/version.php")).unwrap();
        f.run(["baseline"]).ok();
        assert_eq!(f.run(["check"]).code, 0, "the baseline took the infection in");
        // ...verify does not.
        let r = f.run(["verify"]);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stdout.contains("tampered  ") && r.stdout.contains("/wp-blog-header.php"), "{}", r.stdout);
        assert!(r.stdout.contains("foreign") && r.stdout.contains("/wp-includes/cache.php"), "{}", r.stdout);
        assert!(r.stdout.contains("missing") && r.stdout.contains("/wp-includes/version.php"), "{}", r.stdout);
        let j = f.run(["verify", "--json"]);
        let lines: Vec<serde_json::Value> = j.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        // Three against the reference, and the web shell's content.
        assert_eq!(lines.len(), 4, "{}", j.stdout);
        let signed: Vec<_> = lines.iter().filter(|v| v["result"] == "signature").collect();
        assert_eq!(signed.len(), 1, "{}", j.stdout);
        assert!(signed[0]["path"].as_str().unwrap().ends_with("/wp-includes/cache.php"));
        assert!(lines
            .iter()
            .filter(|v| v["result"] != "signature")
            .all(|v| v["site"] == "site" && v["verdict"]["package"] == "reference"));
    }
    // A clean site verifies.
    let (f, _) = site(false);
    let r = f.run(["verify"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("all match"), "{}", r.stdout);
}

#[test]
fn a_hostile_or_missing_reference_is_a_clear_error() {
    let (f, _) = site(false);
    // Missing: the config is refused.
    f.write_config("generic-php", "    reference: /nonexistent/release\n");
    let r = f.run(["config-check"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("reference /nonexistent/release does not exist"), "{}", r.stderr);
    // An archive whose entry climbs out of the tree: refused, nothing written.
    let evil = f.path("evil.tar.gz");
    let script = format!(
        "import tarfile, io\nt = tarfile.open('{}', 'w:gz')\ni = tarfile.TarInfo('../../etc/x.php')\ni.size = 5\nt.addfile(i, io.BytesIO(b'<?php'))\nt.close()\n",
        evil.display()
    );
    assert!(std::process::Command::new("python3").arg("-c").arg(script).status().unwrap().success());
    f.write_config("generic-php", &format!("    reference: {}\n", evil.display()));
    let r = f.run(["verify"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("escapes the archive"), "{}", r.stderr);
    // Not an archive at all.
    let junk = f.path("junk.tar.gz");
    std::fs::write(&junk, vec![0x1f; 1000]).unwrap();
    f.write_config("generic-php", &format!("    reference: {}\n", junk.display()));
    let r = f.run(["verify"]);
    assert_eq!(r.code, 2, "{r:?}");
}

fn md5_hex(path: &Path) -> String {
    let out = std::process::Command::new("md5sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

fn sha256_hex(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

/// A WordPress site (core 6.4.2, plugin akismet 5.3) and a publisher
/// serving their checksums as wordpress.org does: core as MD5s, the
/// plugin as SHA-256 lists; `answer` replaces the core answer's body.
fn wordpress_site(answer: Option<&[u8]>) -> (Fixture, Publisher) {
    let f = Fixture::new("wordpress", "");
    for (rel, text) in [
        ("index.php", "<?php require 'wp-blog-header.php';\n"),
        ("wp-blog-header.php", "<?php // header\n"),
        ("wp-config.php", "<?php define('DB_NAME', 'blog');\n"),
        ("wp-includes/load.php", "<?php // load\n"),
        ("wp-includes/version.php", "<?php\n$wp_version = '6.4.2';\n"),
        ("wp-admin/admin.php", "<?php // admin\n"),
        ("wp-content/plugins/akismet/akismet.php", "<?php\n/*\n * Plugin Name: Akismet\n * Version: 5.3\n */\n"),
        ("wp-content/plugins/akismet/class.akismet.php", "<?php class Akismet {}\n"),
    ] {
        f.write(rel, text);
    }
    let web = f.path("publisher");
    std::fs::create_dir_all(web.join("plugin-checksums/akismet")).unwrap();
    let core: Vec<String> =
        ["index.php", "wp-blog-header.php", "wp-includes/load.php", "wp-includes/version.php", "wp-admin/admin.php"]
            .iter()
            .map(|p| format!("{p:?}: {:?}", md5_hex(&f.abs(p.as_bytes()))))
            .collect();
    let core_json = format!("{{\"checksums\": {{\"6.4.2\": {{{}}}}}}}", core.join(", "));
    std::fs::write(web.join("core.json"), answer.map(<[u8]>::to_vec).unwrap_or_else(|| core_json.into_bytes()))
        .unwrap();
    let plugin: Vec<String> = ["akismet.php", "class.akismet.php"]
        .iter()
        .map(|p| {
            let abs = f.abs(format!("wp-content/plugins/akismet/{p}").as_bytes());
            format!("{p:?}: {{\"md5\": {:?}, \"sha256\": [\"00\", {:?}]}}", md5_hex(&abs), sha256_hex(&abs))
        })
        .collect();
    std::fs::write(web.join("plugin-checksums/akismet/5.3.json"), format!("{{\"files\": {{{}}}}}", plugin.join(", ")))
        .unwrap();
    let publisher = Publisher::start(&web);
    let cfg = std::fs::read_to_string(f.config())
        .unwrap()
        .replace("http://127.0.0.1:9/core", &format!("http://127.0.0.1:{}/core.json", publisher.port))
        .replace("http://127.0.0.1:9/plugins", &format!("http://127.0.0.1:{}/plugin-checksums", publisher.port));
    std::fs::write(f.config(), cfg).unwrap();
    f.run(["baseline"]).ok();
    (f, publisher)
}

#[test]
fn wordpress_core_and_plugins_are_judged_against_their_published_checksums() {
    let (f, _publisher) = wordpress_site(None);
    let d = Daemon::start(&f);
    d.wait_stderr("checksums of wordpress 6.4.2");
    d.wait_stderr("checksums of plugin:akismet 5.3");
    f.write("wp-includes/load.php", "<?php // load\n$changed = true;\n");
    f.write("wp-includes/x.php", "<?php system($_GET['c']);");
    f.write("wp-content/plugins/akismet/class.akismet.php", "<?php class Akismet {} @eval($_REQUEST['a']);\n");
    f.write("wp-content/plugins/akismet/fm.php", "<?php // file manager");
    f.write("wp-config.php", "<?php define('DB_NAME', 'blog2');\n");
    let r = d.wait_record("modified", "/wp-includes/load.php");
    assert_eq!((r["severity"].as_str(), r["rule"].as_str()), (Some("critical"), Some("vendor-tampered")), "{r}");
    assert_eq!(r["verdict"], serde_json::json!({"origin": "tampered", "package": "wordpress", "version": "6.4.2"}));
    let r = d.wait_record("added", "/wp-includes/x.php");
    assert_eq!((r["rule"].as_str(), r["verdict"]["origin"].as_str()), (Some("vendor-foreign"), Some("foreign")), "{r}");
    let r = d.wait_record("modified", "/akismet/class.akismet.php");
    assert_eq!(r["verdict"], serde_json::json!({"origin": "tampered", "package": "plugin:akismet", "version": "5.3"}));
    let r = d.wait_record("added", "/akismet/fm.php");
    assert_eq!(r["verdict"]["origin"], "foreign", "{r}");
    // wp-config.php is no file of the release, and no stranger at the root.
    let r = d.wait_record("modified", "/wp-config.php");
    assert!(r["verdict"].is_null() && r["rule"] != "vendor-foreign", "{r}");
}

#[test]
fn a_repair_to_the_release_is_judged_vendor() {
    let (f, _publisher) = wordpress_site(None);
    f.write(
        "wp-blog-header.php",
        "<?php // header
@include '/tmp/.x';
",
    );
    // Accepted without an alert: recorded as such.
    let out = f.run(["accept"]).ok();
    assert!(out.stderr.contains("accepted without an alert: modified"), "{}", out.stderr);
    let d = Daemon::start(&f);
    d.wait_stderr("checksums of wordpress 6.4.2");
    f.write("wp-blog-header.php", "<?php // header\n");
    let alerted = |r: &serde_json::Value| {
        r["event"] == "modified"
            && r["rule"] != "accepted-without-alert"
            && r["path"].as_str().is_some_and(|p| p.ends_with("/wp-blog-header.php"))
    };
    let records = d.wait_for("the repair's record", |r| r.iter().any(alerted));
    let r = records.iter().find(|r| alerted(r)).unwrap();
    assert_eq!(
        r["verdict"],
        serde_json::json!({"origin": "vendor", "package": "wordpress", "version": "6.4.2"}),
        "{r}"
    );
    assert_eq!(r["rule"], "core-code", "a genuine file keeps its path's rule: {r}");
}

#[test]
fn a_publisher_down_or_lying_leaves_detection_whole() {
    // Down (a closed port), a page instead of JSON, an answer over the cap.
    let big = vec![b' '; 17 << 20];
    let cases = [("down", None), ("404", None), ("html", Some(&b"<html>hi</html>"[..])), ("huge", Some(&big[..]))];
    for (what, answer) in cases {
        let (f, publisher) = wordpress_site(answer);
        if what == "down" {
            // Down from now on, and nothing cached by the baseline's verify.
            drop(publisher);
            let _ = std::fs::remove_dir_all(f.state().join("vendor"));
        } else if what == "404" {
            std::fs::remove_file(f.path("publisher/core.json")).unwrap();
            let _ = std::fs::remove_dir_all(f.state().join("vendor"));
        }
        let d = Daemon::start(&f);
        f.write("wp-includes/load.php", "<?php // load\n$changed = true;\n");
        let r = d.wait_record("modified", "/wp-includes/load.php");
        assert_eq!(r["verdict"]["origin"], "unknown", "{what}: {r}");
        d.wait_stderr("wordpress 6.4.2: ");
        common::daemon::settle();
        assert_eq!(r["verdict"]["package"], "wordpress", "{what}: {r}");
        assert_eq!(r["severity"], "high", "{what}: the path's own severity: {r}");
        let warnings = d.stderr().matches("wordpress 6.4.2: ").count();
        assert_eq!(warnings, 1, "{what}: one warning: {}", d.stderr());
    }
}

#[test]
fn verify_and_baseline_name_what_differs_from_the_published_release() {
    let (f, _publisher) = wordpress_site(None);
    f.write("wp-includes/load.php", "<?php // load\n$changed = true;\n");
    f.write("wp-admin/shell.php", "<?php system($_GET['c']);");
    std::fs::remove_file(f.abs(b"wp-content/plugins/akismet/class.akismet.php")).unwrap();
    let b = f.run(["baseline"]).ok();
    assert!(b.stderr.contains("tampered wp-includes/load.php (wordpress 6.4.2)"), "{}", b.stderr);
    assert!(b.stderr.contains("foreign wp-admin/shell.php (wordpress 6.4.2)"), "{}", b.stderr);
    let r = f.run(["verify"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("missing") && r.stdout.contains("class.akismet.php  [plugin:akismet 5.3]"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("signature /")
            && r.stdout.contains("shell.php  [php_request_to_exec, php_flow_request_to_exec: line 1, $_GET['c'] (line 1) reaches system()]"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("against plugin:akismet 5.3, wordpress 6.4.2, "), "{}", r.stdout);
    assert!(r.stdout.contains(" signature rules: 4 do not"), "{}", r.stdout);
    // wp-config.php and the like are nobody's business here.
    assert!(!r.stdout.contains("wp-config.php"), "{}", r.stdout);
}

/// The WordPress site with nothing cached and its publisher replaced by one
/// that holds every request (a byte every half second, forever), asked
/// with `vendors.timeout: TIMEOUT`; the file where each request is logged.
fn hanging_publisher(timeout: &str) -> (Fixture, Publisher, std::path::PathBuf) {
    let (f, publisher) = wordpress_site(None);
    drop(publisher);
    let _ = std::fs::remove_dir_all(f.state().join("vendor"));
    let asked = f.path("asked.log");
    let bad = common::publisher::hostile_logged("slow", &asked);
    let cfg = std::fs::read_to_string(f.config())
        .unwrap()
        .replace("vendors:\n", &format!("vendors:\n  timeout: {timeout}\n"));
    std::fs::write(f.config(), on_port(&cfg, bad.port)).unwrap();
    (f, bad, asked)
}

#[test]
fn verify_against_a_publisher_that_never_answers_asks_each_host_once_and_says_it_could_not_check() {
    // Core and the plugin are asked at the same host.
    let (f, _bad, asked) = hanging_publisher("2s");
    let t = std::time::Instant::now();
    let r = f.run(["verify", "--json"]);
    common::figure(
        "verify, publisher that never answers (timeout 2 s)",
        t.elapsed(),
        std::time::Duration::from_secs(3),
    );
    assert_eq!(r.code, 3, "could not check, not clean: {r:?}");
    let unchecked: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["result"] == "unchecked")
        .collect();
    assert_eq!(unchecked.len(), 2, "core and the plugin, each named: {}", r.stdout);
    assert!(r.stdout.contains("could not be reached"), "{}", r.stdout);
    let requests = std::fs::read_to_string(&asked).unwrap_or_default().lines().count();
    assert_eq!(requests, 1, "one request to the host, not one per package");
    // The next run does not ask again while the host is marked down.
    let again = f.run(["verify", "--json"]);
    assert_eq!(again.code, 3);
    assert_eq!(std::fs::read_to_string(&asked).unwrap_or_default().lines().count(), 1);
}

#[test]
fn a_slow_or_endless_publisher_costs_bounded_time_and_memory() {
    for mode in ["slow", "endless"] {
        let (f, publisher) = wordpress_site(None);
        drop(publisher);
        let _ = std::fs::remove_dir_all(f.state().join("vendor"));
        let bad = common::publisher::hostile(mode);
        let cfg = std::fs::read_to_string(f.config()).unwrap();
        let cfg = cfg.replace("vendors:\n", "vendors:\n  timeout: 2s\n");
        let re = on_port(&cfg, bad.port);
        std::fs::write(f.config(), re).unwrap();
        let t = std::time::Instant::now();
        let d = Daemon::start(&f);
        // Detection goes on while the publisher holds the fetch.
        f.write("wp-includes/load.php", "<?php // load\n$changed = true;\n");
        let r = d.wait_record("modified", "/wp-includes/load.php");
        assert_eq!(r["verdict"]["origin"], "unknown", "{mode}: {r}");
        d.wait_stderr("wordpress 6.4.2: ");
        let took = t.elapsed();
        common::figure(
            &format!("{mode} publisher (timeout 2 s), start to giving up"),
            took,
            std::time::Duration::from_secs(4),
        );
        let rss = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
        let rss_kb: u64 = rss
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap();
        println!("{mode} publisher: given up after {took:?}, peak RSS {} MiB", rss_kb / 1024);
        assert!(rss_kb < 200 * 1024, "{mode}: peak RSS {rss_kb} kB");
    }
}

#[test]
fn a_reload_while_a_publisher_hangs_takes_effect_at_once() {
    let (f, _bad, asked) = hanging_publisher("60s");
    let d = Daemon::start(&f);
    let t = std::time::Instant::now();
    while std::fs::read_to_string(&asked).map_or(true, |s| s.is_empty()) {
        assert!(t.elapsed() < common::HANG, "the daemon never asked the publisher");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The checksum request now hangs for up to 60 s.
    let t = std::time::Instant::now();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    // wait_stderr's patience (20 s) is well inside the request's 60 s.
    d.wait_stderr("configuration reloaded");
    common::figure("reload while a release fetch hangs (timeout 60 s)", t.elapsed(), std::time::Duration::from_secs(1));
    // The new configuration watches, and the cancelled fetch was not taken
    // for a publisher that is down.
    f.write("wp-includes/load.php", "<?php // load\n$changed = true;\n");
    let r = d.wait_record("modified", "/wp-includes/load.php");
    assert_eq!(r["verdict"]["origin"], "unknown", "{r}");
    assert!(!d.stderr().contains("could not be reached"), "{}", d.stderr());
}

#[test]
fn a_publisher_back_after_an_outage_brings_the_verdicts_back() {
    let (f, publisher) = wordpress_site(None);
    let port = publisher.port;
    drop(publisher);
    let _ = std::fs::remove_dir_all(f.state().join("vendor"));
    let d = Daemon::start(&f);
    d.wait_stderr("wordpress 6.4.2: the publisher 127.0.0.1:");
    // Back, on the same address.
    let _back = Publisher::start_on(&f.path("publisher"), port);
    let t = std::time::Instant::now();
    while !d.stderr().contains("checksums of wordpress 6.4.2") {
        assert!(t.elapsed() < common::HANG, "never asked again: {}", d.stderr());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    common::figure("publisher back after an outage, to its checksums", t.elapsed(), std::time::Duration::from_secs(60));
    f.write("wp-includes/load.php", "<?php // load\n$changed = 2;\n");
    let verdict = d.wait_for("the tamper judged against the release", |records| {
        records.iter().any(|r| {
            r["path"].as_str().is_some_and(|p| p.ends_with("/wp-includes/load.php"))
                && r["verdict"]["origin"] != "unknown"
        })
    });
    let verdict = verdict
        .iter()
        .rev()
        .find(|r| r["path"].as_str().is_some_and(|p| p.ends_with("/wp-includes/load.php")))
        .unwrap()
        .clone();
    assert_eq!(verdict["verdict"]["origin"], "tampered", "{verdict}");
    assert_eq!(verdict["severity"], "critical", "{verdict}");
}

/// The config with every publisher URL on loopback port `port`.
fn on_port(cfg: &str, port: u16) -> String {
    cfg.lines()
        .map(|l| match l.find("http://127.0.0.1:") {
            Some(at) => {
                let rest = &l[at + "http://127.0.0.1:".len()..];
                let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
                format!("{}http://127.0.0.1:{port}{path}", &l[..at])
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn init_names_an_infection_before_the_site_is_accepted() {
    let (f, _publisher) = wordpress_site(None);
    // A second copy of the site, infected, added to the same config.
    let blog = f.path("blog2");
    for p in common::walk(&f.root()) {
        let rel = p.strip_prefix(f.root()).unwrap();
        if std::fs::symlink_metadata(&p).unwrap().is_file() {
            std::fs::create_dir_all(blog.join(rel).parent().unwrap()).unwrap();
            std::fs::copy(&p, blog.join(rel)).unwrap();
        }
    }
    std::fs::write(blog.join("wp-includes/load.php"), "<?php // load\n@include '/tmp/.x';\n").unwrap();
    let r = f.run(["init", "--root", blog.to_str().unwrap(), "--name", "blog2", "--profile", "wordpress"]).ok();
    assert!(r.stderr.contains("blog2: tampered wp-includes/load.php (wordpress 6.4.2)"), "{}", r.stderr);
    assert!(r.stderr.contains("blog2: verify: "), "{}", r.stderr);
}

#[test]
fn hello_dolly_is_core_s_and_a_stray_php_file_at_the_root_is_foreign() {
    let hello = "<?php\n/* Plugin Name: Hello Dolly */\n";
    let sums: Vec<String> = [
        ("index.php", "<?php require 'wp-blog-header.php';\n"),
        ("wp-blog-header.php", "<?php // header\n"),
        ("wp-includes/load.php", "<?php // load\n"),
        ("wp-includes/version.php", "<?php\n$wp_version = '6.4.2';\n"),
        ("wp-admin/admin.php", "<?php // admin\n"),
        ("wp-content/plugins/hello.php", hello),
    ]
    .iter()
    .map(|(p, text)| {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), text).unwrap();
        format!("{p:?}: {:?}", md5_hex(tmp.path()))
    })
    .collect();
    let answer = format!("{{\"checksums\": {{{}}}}}", sums.join(", "));
    let (f, _publisher) = wordpress_site(Some(answer.as_bytes()));
    let d = Daemon::start(&f);
    d.wait_stderr("checksums of wordpress 6.4.2");
    f.write("wp-content/plugins/hello.php", "<?php\n/* Plugin Name: Hello Dolly */\n$x = $_GET;\n");
    let r = d.wait_record("added", "/wp-content/plugins/hello.php");
    assert_eq!(r["verdict"], serde_json::json!({"origin": "tampered", "package": "wordpress", "version": "6.4.2"}));
    assert_eq!(r["severity"], "critical", "{r}");
    f.write("info.php", "<?php phpinfo();\n");
    let r = d.wait_record("added", "/info.php");
    assert_eq!((r["severity"].as_str(), r["verdict"]["origin"].as_str()), (Some("critical"), Some("foreign")), "{r}");
    // wp-config.php is the site's own, at the root.
    f.write("wp-config.php", "<?php define('DB_NAME', 'blog3');\n");
    let r = d.wait_record("modified", "/wp-config.php");
    assert!(r["verdict"].is_null(), "{r}");
}
