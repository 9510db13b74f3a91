//! Known-bad: content verdicts with YARA-X. The samples written for these
//! tests (`tests/samples/`, every family the shipped rules cover, with
//! obfuscated variants) are detected, real code (Debian's WordPress and
//! every PHP file under /usr/share/php) is not, and the quarantine acts on
//! what a file does: a protective `.htaccess` is kept, a dangerous one and a
//! web shell in uploads are removed with their evidence kept.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::daemon::Daemon;
use common::Fixture;

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/samples");

/// Where a sample goes in a WordPress site: code in a plugin or theme,
/// server configuration and media in uploads.
fn place(sample: &Path) -> String {
    let family = sample.parent().unwrap().file_name().unwrap().to_str().unwrap();
    let name = sample.file_name().unwrap().to_str().unwrap();
    let stem = name.split('.').next().unwrap();
    match family {
        "php" => format!("wp-content/plugins/samples/{name}"),
        "htaccess" => format!("wp-content/uploads/samples/{stem}/.htaccess"),
        "userini" => format!("wp-content/uploads/samples/{stem}/.user.ini"),
        "js" => format!("wp-content/themes/t/js/{name}"),
        "seo" => format!("wp-content/themes/t/{name}"),
        "media" | "ssi" => format!("wp-content/uploads/2026/11/{name}"),
        other => panic!("unknown family {other}"),
    }
}

#[test]
fn the_samples_are_detected() {
    let f = Fixture::new("wordpress", "");
    f.write("index.php", "<?php require 'wp-blog-header.php';\n");
    let mut placed = BTreeMap::new();
    for sample in common::walk(Path::new(SAMPLES)) {
        let rel = place(&sample);
        std::fs::create_dir_all(f.abs(rel.as_bytes()).parent().unwrap()).unwrap();
        std::fs::copy(&sample, f.abs(rel.as_bytes())).unwrap();
        placed.insert(rel, sample.strip_prefix(SAMPLES).unwrap().display().to_string());
    }
    assert!(placed.len() >= 40, "{} samples", placed.len());
    let r = f.run(["verify", "--json"]);
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    for line in r.stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["result"] == "signature" {
            let path = v["path"].as_str().unwrap();
            let rel = path.strip_prefix(&format!("{}/", f.root().display())).unwrap().to_string();
            let rules: Vec<&str> = v["signatures"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
            found.insert(rel, rules.join(", "));
        }
    }
    println!("{:<40} rules matched", "sample");
    let mut missed = Vec::new();
    for (rel, sample) in &placed {
        let rules = found.get(rel).cloned().unwrap_or_else(|| "-- MISSED".into());
        if !found.contains_key(rel) {
            missed.push(sample.clone());
        }
        println!("{sample:<40} {rules}");
    }
    let rate = 100.0 * (placed.len() - missed.len()) as f64 / placed.len() as f64;
    println!("detected {} of {} samples ({rate:.1}%); missed: {missed:?}", placed.len() - missed.len(), placed.len());
    assert!(rate >= 95.0, "missed {missed:?}");
    assert!(!found.contains_key("index.php"), "{found:?}");
}

/// A config of one site at `root` (read only: verify writes nothing there).
fn site_at(dir: &Path, root: &str, profile: &str) -> PathBuf {
    let config = dir.join("config.yaml");
    let text = format!(
        "state_dir: {}/state\nvendors:\n  enabled: false\nsignatures:\n  rules_dir: {}/rules\nalerts:\n  log: {}/alerts.jsonl\nsites:\n  - name: real\n    root: {root}\n    profile: {profile}\n",
        dir.display(),
        dir.display(),
        dir.display()
    );
    std::fs::write(&config, text).unwrap();
    config
}

#[test]
fn no_false_positives_on_real_code() {
    // Debian's wordpress tree, and every PHP library the CI installs.
    let roots = [
        ("/usr/share/wordpress", "wordpress"),
        ("/usr/share/php", "generic-php"),
        ("/usr/share/phpmyadmin", "generic-php"),
        ("/usr/share/roundcube", "generic-php"),
    ];
    for (root, profile) in roots {
        let dir = tempfile::tempdir().unwrap();
        let config = site_at(dir.path(), root, profile);
        let mut cmd = std::process::Command::new(common::BIN);
        cmd.arg("-c").arg(&config).arg("verify");
        let r = common::Run::of(cmd);
        let files: usize = r
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("real: ")?.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("{r:?}"));
        let hits: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("signature")).collect();
        println!("{root} ({profile}): {files} files scanned, {} signature matches", hits.len());
        for h in &hits {
            println!("  {h}");
        }
        assert!(files > 300, "{root}: only {files} files: {}", r.stdout);
        assert!(hits.is_empty(), "{root}: false positives");
    }
}

#[test]
fn the_quarantine_acts_on_what_a_file_does() {
    let f = Fixture::new("wordpress", "");
    f.write("index.php", "<?php // index\n");
    f.write("wp-content/uploads/2026/11/photo.jpg", "\u{ff}\u{d8}");
    f.run(["baseline"]).ok();
    let d = Daemon::start(&f);
    // A protective .htaccess an admin adds: kept, and alerted.
    f.write("wp-content/uploads/private/.htaccess", "Require all denied\n");
    let r = d.wait_record("added", "/uploads/private/.htaccess");
    assert!(r["quarantine"].is_null() && r["signatures"].is_null(), "{r}");
    common::daemon::settle();
    assert!(f.abs(b"wp-content/uploads/private/.htaccess").exists(), "a protective .htaccess is kept");
    // A dangerous one: removed, its evidence kept.
    f.write("wp-content/uploads/2026/.htaccess", "AddHandler application/x-httpd-php .jpg\n");
    let r = d.wait_record("added", "/uploads/2026/.htaccess");
    assert_eq!(r["signatures"], serde_json::json!(["htaccess_php_handler_for_other_ext"]), "{r}");
    assert_eq!((r["severity"].as_str(), r["quarantine"]["action"].as_str()), (Some("critical"), Some("remove")), "{r}");
    assert!(!f.abs(b"wp-content/uploads/2026/.htaccess").exists(), "a dangerous .htaccess is removed");
    let show = f.run(["quarantine", "show", r["quarantine"]["id"].as_str().unwrap()]).ok();
    assert!(show.stdout.contains("AddHandler application/x-httpd-php .jpg"), "evidence: {}", show.stdout);
    // A web shell in uploads: removed. A harmless script: critical by its
    // place, kept.
    f.write("wp-content/uploads/2026/11/cache.php", "<?php @eval($_POST['k']); ?>");
    let r = d.wait_record("added", "/uploads/2026/11/cache.php");
    assert_eq!(r["rule"], "php-in-uploads", "{r}");
    assert_eq!(r["signatures"][0], "php_request_to_exec", "{r}");
    assert_eq!(r["quarantine"]["result"], "removed", "{r}");
    assert!(!f.abs(b"wp-content/uploads/2026/11/cache.php").exists());
    f.write("wp-content/uploads/2026/11/hello.php", "<?php echo 'hello';");
    let r = d.wait_record("added", "/uploads/2026/11/hello.php");
    assert!(r["quarantine"].is_null() && r["severity"] == "critical", "{r}");
    // An SVG with script is removed; a plain one is low and kept.
    f.write("wp-content/uploads/2026/11/logo.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"><circle r=\"4\"/></svg>");
    let r = d.wait_record("added", "/uploads/2026/11/logo.svg");
    assert_eq!((r["severity"].as_str(), r["rule"].as_str()), (Some("low"), Some("media-in-uploads")), "{r}");
    f.write("wp-content/uploads/2026/11/x.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>");
    let r = d.wait_record("added", "/uploads/2026/11/x.svg");
    assert_eq!(
        (r["severity"].as_str(), r["rule"].as_str()),
        (Some("critical"), Some("signature:svg_with_script")),
        "{r}"
    );
    assert_eq!(r["quarantine"]["result"], "removed", "{r}");
    // A backdoor pasted into a theme: critical by its content.
    f.write(
        "wp-content/themes/t/functions.php",
        "<?php\nadd_action('init', function () { eval(base64_decode($_COOKIE['k'])); });\n",
    );
    let r = d.wait_record("added", "/themes/t/functions.php");
    assert_eq!(
        (r["severity"].as_str(), r["rule"].as_str()),
        (Some("critical"), Some("signature:php_request_to_exec")),
        "{r}"
    );
}

#[test]
fn what_a_web_server_can_run_in_uploads_is_reported() {
    let f = Fixture::new("wordpress", "");
    f.write("index.php", "<?php // index\n");
    f.run(["baseline"]).ok();
    let d = Daemon::start(&f);
    let names = ["php.ini", "x.shtml", "x.shtm", "x.stm", "x.cgi", "x.pl", "x.py", "x.sh", "x.phtm"];
    for n in names {
        f.write(format!("wp-content/uploads/2026/11/{n}"), "#!/bin/sh\necho hi\n");
    }
    for n in names {
        let r = d.wait_record("added", &format!("/uploads/2026/11/{n}"));
        assert_eq!(r["severity"], "critical", "{n}: {r}");
    }
}

#[test]
fn a_broken_rule_file_stops_the_start_and_a_reload_keeps_the_old_rules() {
    let f = Fixture::new("wordpress", "");
    f.write("index.php", "<?php // index\n");
    std::fs::create_dir_all(f.path("rules")).unwrap();
    let good = "rule local_marker\n{\n    strings:\n        $a = \"LOCAL-MARKER-1\"\n    condition:\n        $a\n}\n";
    std::fs::write(f.path("rules/local.yar"), good).unwrap();
    f.run(["baseline"]).ok();
    let d = Daemon::start(&f);
    f.write("wp-content/themes/t/a.php", "<?php // LOCAL-MARKER-1\n");
    let r = d.wait_record("added", "/themes/t/a.php");
    assert_eq!(r["signatures"], serde_json::json!(["local_marker"]), "the admin's rule: {r}");
    // Broken on line 5: the reload is refused, the old rules stay.
    std::fs::write(f.path("rules/local.yar"), good.replace("        $a\n", "        $b\n")).unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    d.wait_stderr("config reload refused");
    assert!(d.stderr().contains("local.yar:6:"), "{}", d.stderr());
    f.write("wp-content/themes/t/b.php", "<?php // LOCAL-MARKER-1\n");
    let r = d.wait_record("added", "/themes/t/b.php");
    assert_eq!(r["signatures"], serde_json::json!(["local_marker"]), "{r}");
    drop(d);
    // At start: a config error, exit 2, file:line:column.
    for cmd in ["config-check", "run"] {
        let r = f.run([cmd]);
        assert_eq!(r.code, 2, "{cmd}: {r:?}");
        assert!(r.stderr.contains("local.yar:6:"), "{cmd}: {}", r.stderr);
    }
}
