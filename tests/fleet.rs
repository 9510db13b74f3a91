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
