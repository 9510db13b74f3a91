//! `sitewarden test-email`: sends a sample alert through the configured
//! mail route, now, and reports the server's answer.

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
    let site = cfg.sites.first().map(|s| (Arc::clone(&s.name), s.root.clone()));
    let (name, root) = site.unwrap_or_else(|| (Arc::from("test"), "/var/www/test".into()));
    let content = b"<?php /* sitewarden test alert: nothing changed on this server */\n";
    let change = Change {
        site: name,
        rel: b"sitewarden-test-alert.php".to_vec(),
        kind: EventKind::Added,
        before: None,
        after: Some(FileState {
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
        }),
        detected_by: DetectedBy::Scan,
        transient: None,
        hot: false,
        actor: None,
        signatures: Vec::new(),
    };
    let verdict = Verdict { severity: Severity::Info, rule: "test-email", nodiff: false, quarantine: None };
    let mut record = AlertRecord::new(&hostname(), &root, &change, &verdict, crate::util::time::now_ns());
    record.diff =
        Some(format!("--- /dev/null\n+++ {}\n@@ -0,0 +1 @@\n+{}", record.path, String::from_utf8_lossy(content)));
    let (subject, body) = compose(&hostname(), &[record], 0);
    let answer = mailer.send(&format!("{subject} [test]"), body)?;
    println!("test mail sent to {}: {answer}", settings.to.join(", "));
    Ok(OK)
}
