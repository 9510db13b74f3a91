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
