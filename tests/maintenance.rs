//! `sitewarden maintenance`: a CMS update of 500 files under a running
//! daemon gives one summary mail, no per-file alert, and a clean baseline.

mod common;

use std::process::Command;
use std::time::Duration;

use common::daemon::{settle, Daemon};
use common::smtp::SmtpServer;
use common::{Fixture, Run};

#[test]
fn an_update_of_500_files_is_one_summary_and_no_alert() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(dir.path(), None);
    let f = Fixture::new("generic-php", "");
    f.add_email(smtp.port, "    digest_seconds: 1\n");
    for i in 0..500 {
        f.write(format!("lib/f{i}.php"), format!("<?php // v1 {i}\n"));
    }
    f.run(["baseline"]).ok();
    let d = Daemon::start(&f);
    let mut cmd = Command::new(common::BIN);
    cmd.current_dir(f.root()).arg("-c").arg(f.config()).args(["maintenance", "--site", "site", "--"]).args([
        "/bin/sh",
        "-c",
        "for i in $(seq 0 499); do echo \"<?php // v2 $i\" > lib/f$i.php; done; sleep 1",
    ]);
    let r = Run::of(cmd);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("500 changes accepted (0 added, 500 modified"), "{}", r.stdout);
    let mails = smtp.wait_messages(1, Duration::from_secs(30));
    assert!(mails[0].subject.contains("maintenance on site: 500 changes accepted"), "{}", mails[0].subject);
    settle();
    assert!(d.records().is_empty(), "no per-file alert: {:?}", d.records().first());
    assert_eq!(smtp.messages().len(), 1, "one summary");
    assert_eq!(f.run(["check"]).code, 0);
    // After the window, changes are alerted as usual.
    f.write("lib/f1.php", "<?php // tampered");
    d.wait_record("modified", "/lib/f1.php");
}
