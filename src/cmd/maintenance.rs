//! `sitewarden maintenance --site NAME -- COMMAND...`: run a legitimate
//! update (e.g. `wp core update`) without an alert per file: while it runs
//! the daemon holds back the site's alerts; at the end every change is
//! accepted into the baseline and one summary is printed and mailed.
//!
//! Anything that changes the site during the window is taken as part of
//! the update: run it when you are watching. Other sites, and changes after
//! the command ends, are alerted as usual.

use std::ffi::OsString;
use std::process::Command;

use anyhow::{anyhow, bail, Result};

use super::{hostname, OK};
use crate::alert::email::{compose, Mailer};
use crate::alert::AlertRecord;
use crate::baseline::Store;
use crate::config::Config;
use crate::daemon::maintenance::Marker;
use crate::model::EventKind;
use crate::util::time::now_ns;

pub fn run(cfg: &Config, site_name: &str, command: &[OsString]) -> Result<i32> {
    let site = cfg.select(Some(site_name))?[0];
    let Some((prog, args)) = command.split_first() else {
        bail!("maintenance needs a command after `--`");
    };
    let store = Store::open_existing(&cfg.state_dir)?;
    if !store.has_baseline(&site.name)? {
        bail!("site '{}' has no baseline yet: run `sitewarden baseline --site {}` first", site.name, site.name);
    }
    drop(store);
    let shown: Vec<String> = command.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let shown = shown.join(" ");
    let marker = Marker::create(&cfg.state_dir, &site.name)?;
    eprintln!("sitewarden: maintenance of site '{}': running {shown}", site.name);
    let status = Command::new(prog).args(args).status().map_err(|e| anyhow!("cannot run {shown}: {e}"))?;

    // Still inside the window: the daemon does not alert what we accept.
    let mut store = Store::open(&cfg.state_dir)?;
    let content = crate::content::ContentStore::new(&cfg.state_dir);
    // Directories made or removed are accepted without a word.
    let mut changes = super::accept::accept_site(&mut store, site, &content)?;
    changes.retain(|c| !c.is_silent());
    drop(marker);

    let count = |k: EventKind| changes.iter().filter(|c| c.kind == k).count();
    let summary = format!(
        "maintenance of site '{}': `{shown}` {}; {} changes accepted ({} added, {} modified, {} deleted, {} metadata)",
        site.name,
        match status.code() {
            Some(0) => "succeeded".to_string(),
            Some(c) => format!("exited {c}"),
            None => "was killed".to_string(),
        },
        changes.len(),
        count(EventKind::Added),
        count(EventKind::Modified),
        count(EventKind::Deleted),
        count(EventKind::Metadata),
    );
    println!("{summary}");
    if let Some(email) = &cfg.alerts.email {
        let host = hostname();
        let now = now_ns();
        let records: Vec<AlertRecord> = changes
            .iter()
            .map(|c| {
                let v = site.policy.verdict(c);
                crate::alert::diff::record_with_diff(&host, site, c, &v, &content, Some(&site.real_root), now)
            })
            .collect();
        let (_, body) = compose(&host, &records, 0);
        let subject = format!(
            "[sitewarden] {}: maintenance on {}: {} changes accepted",
            crate::alert::email::clean_header(&host),
            site.name,
            changes.len()
        );
        let body = format!("{summary}\n\nThese changes are now the accepted baseline:\n\n{body}");
        match Mailer::build(email).and_then(|m| m.send(&subject, body)) {
            Ok(answer) => eprintln!("sitewarden: summary mailed: {answer}"),
            Err(e) => eprintln!("sitewarden: warning: the summary was not mailed: {e}"),
        }
    }
    if !status.success() {
        bail!("{shown} failed ({status}); the changes it made were accepted, check the site");
    }
    Ok(OK)
}
