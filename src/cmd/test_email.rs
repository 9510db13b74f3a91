//! `sitewarden test-email` and `test-alert`: send a sample alert through
//! the configured mail route (or every route), now, and report each
//! receiver's answer.

use std::sync::Arc;

use anyhow::{bail, Result};

use super::{hostname, OK};
use crate::alert::email::{compose, Mailer};
use crate::alert::AlertRecord;
use crate::config::Config;
use crate::model::{Change, DetectedBy, EventKind, FileState, FileType, Severity};
use crate::policy::Verdict;

pub fn run(cfg: &Config) -> Result<i32> {
    let Some(settings) = &cfg.alerts.email else {
        bail!("{}: no alerts.email section: mail is off", cfg.path.display());
    };
    let mailer = Mailer::build(settings)?;
    let (subject, body) = compose(&hostname(), &[sample(cfg, "test-email")], 0);
    let answer = mailer.send(&format!("{subject} [test]"), body)?;
    println!("test mail sent to {}: {answer}", settings.to.join(", "));
    Ok(OK)
}

/// `test-alert`: the sample through every route, directly (not through the
/// outbox); exit 0 when every receiver took it, 1 when one did not.
pub fn run_all(cfg: &Config) -> Result<i32> {
    let routes = crate::alert::plan(cfg)?;
    if routes.is_empty() {
        bail!(
            "{}: no route is configured (alerts.email, alerts.webhooks, alerts.syslog, sites[].alerts)",
            cfg.path.display()
        );
    }
    let record = sample(cfg, "test-alert");
    let mut failed = 0;
    for mut p in routes {
        let whose = p.site.as_deref().map(|s| format!(" (owner of {s})")).unwrap_or_default();
        let what = p.route.describe();
        match p.route.send(&hostname(), std::slice::from_ref(&record), 0) {
            Ok(answer) => println!("ok      {what}{whose}: {answer}"),
            Err(crate::alert::courier::Failure::Retry { message, .. }) => {
                failed += 1;
                println!("failed  {what}{whose}: {message}");
            }
            Err(crate::alert::courier::Failure::Refused(m) | crate::alert::courier::Failure::TooLarge(m)) => {
                failed += 1;
                println!("refused {what}{whose}: {m}");
            }
        }
    }
    Ok(if failed == 0 { OK } else { crate::cmd::DRIFT })
}

/// The sample alert: an `info` record of a file that was not written, on
/// the first site.
fn sample(cfg: &Config, rule: &'static str) -> AlertRecord {
    let site = cfg.sites.first().map(|s| (Arc::clone(&s.name), s.root.clone()));
    let (name, root) = site.unwrap_or_else(|| (Arc::from("test"), "/var/www/test".into()));
    let content = b"<?php /* sitewarden test alert: nothing changed on this server */\n";
    let after = FileState {
        kind: FileType::File,
        size: content.len() as u64,
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime_ns: crate::util::time::now_ns(),
        ctime_ns: 0,
        dev: 0,
        ino: 0,
        sha256: Some(crate::scan::file::sha256(content)),
        target: None,
        nlink: 1,
    };
    let change =
        Change::new(name, b"sitewarden-test-alert.php".to_vec(), EventKind::Added, None, Some(after), DetectedBy::Scan);
    let verdict = Verdict { severity: Severity::Info, rule: rule.into(), nodiff: false, quarantine: None };
    let mut record = AlertRecord::new(&hostname(), &root, &change, &verdict, crate::util::time::now_ns());
    record.diff =
        Some(format!("--- /dev/null\n+++ {}\n@@ -0,0 +1 @@\n+{}", record.path, String::from_utf8_lossy(content)));
    record.stamp_id();
    record
}
