//! `sitewarden status`: what is watched, when it was last scanned, and how
//! much drift waits for `accept`. Reads the store only; never creates it.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::OK;
use crate::baseline::Store;
use crate::config::Config;
use crate::util::time::rfc3339_ms;

#[derive(Serialize)]
struct SiteStatus {
    name: String,
    root: String,
    profile: String,
    files: u64,
    drift: u64,
    baseline_at: Option<String>,
    last_scan: Option<String>,
    /// Directories with a kernel watch (0 when no daemon runs).
    watches: usize,
    /// Realtime incomplete (watch limit): checked by frequent scans.
    degraded: bool,
    /// Why realtime is incomplete, when it is.
    degraded_reason: Option<String>,
    /// `fanotify` or `inotify` (none when no daemon runs).
    source: Option<String>,
    /// Why inotify, when fanotify was wanted.
    source_reason: Option<String>,
}

#[derive(Serialize)]
struct Status {
    /// True while a daemon has every site watched.
    ready: bool,
    /// The daemon's pid, when one runs.
    daemon_pid: Option<u32>,
    /// Alerts waiting in the outbox for delivery.
    outbox: u64,
    /// Kernel events the running daemon has read (reads of files add none).
    kernel_events: u64,
    /// Bytes the content store (earlier versions, for diffs) takes.
    content_bytes: u64,
    /// Bytes the quarantine (evidence) takes.
    quarantine_bytes: u64,
    sites: Vec<SiteStatus>,
    /// Alert routes whose outbox cannot be written (the running daemon's
    /// word): each degraded alone, its alerts held in memory.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failing_routes: Vec<crate::alert::RouteState>,
    /// Why the config file could not be read, when the status comes from
    /// the running daemon instead (which keeps the config it loaded).
    #[serde(skip_serializing_if = "Option::is_none")]
    config_error: Option<String>,
}

/// A site to report: from the config file, or from the running daemon.
struct Named {
    name: String,
    root: String,
    profile: String,
}

/// `sitewarden status`: from the config at `path`; when that file is
/// broken, from the running daemon (saying so), since an admin looks at
/// `status` exactly when something is wrong.
pub fn run_at(path: &Path, json: bool) -> Result<i32> {
    match Config::load(path) {
        Ok(cfg) => {
            let sites = cfg
                .sites
                .iter()
                .map(|s| Named {
                    name: s.name.to_string(),
                    root: s.root.display().to_string(),
                    profile: s.profile.clone(),
                })
                .collect();
            report(&cfg.state_dir, sites, None, json)
        }
        Err(e) => {
            let state_dir = Config::state_dir_hint(path);
            let Some(daemon) = crate::daemon::status::read(&state_dir) else { return Err(e.into()) };
            let why = e.to_string().replace(['\n', '\r'], " ");
            eprintln!("sitewarden: warning: {why}; showing the running daemon, which keeps the config it loaded");
            let sites = daemon
                .sites
                .iter()
                .map(|s| Named { name: s.name.clone(), root: s.root.clone(), profile: s.profile.clone() })
                .collect();
            report(&state_dir, sites, Some(why), json)
        }
    }
}

fn report(state_dir: &Path, named: Vec<Named>, config_error: Option<String>, json: bool) -> Result<i32> {
    let store = match Store::open_existing(state_dir) {
        Ok(s) => Some(s),
        Err(crate::baseline::StoreError::Missing(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let daemon = crate::daemon::status::read(state_dir);
    let mut sites = Vec::new();
    for site in named {
        let live = daemon.as_ref().and_then(|d| d.sites.iter().find(|s| s.name == site.name));
        let info = match &store {
            Some(s) => s.site_info(&site.name)?,
            None => None,
        };
        let info = info.unwrap_or_default();
        sites.push(SiteStatus {
            name: site.name,
            root: site.root,
            profile: site.profile,
            files: info.files,
            drift: info.drift,
            baseline_at: info.baseline_at.map(rfc3339_ms),
            last_scan: info.last_scan_at.map(rfc3339_ms),
            watches: live.map(|l| l.watches).unwrap_or(0),
            degraded: live.is_some_and(|l| l.degraded),
            degraded_reason: live.and_then(|l| l.degraded_reason.clone()),
            source: live.and_then(|l| l.source.clone()),
            source_reason: live.and_then(|l| l.source_reason.clone()),
        });
    }
    let status = Status {
        ready: daemon.as_ref().is_some_and(|d| d.ready),
        daemon_pid: daemon.as_ref().map(|d| d.pid),
        outbox: crate::alert::outbox::Outbox::count(state_dir) as u64,
        kernel_events: daemon.as_ref().map(|d| d.kernel_events).unwrap_or(0),
        content_bytes: crate::content::ContentStore::new(state_dir).size(),
        quarantine_bytes: crate::quarantine::QuarantineStore::new(state_dir).size(),
        sites,
        failing_routes: daemon
            .as_ref()
            .map(|d| d.routes.iter().filter(|r| r.failing.is_some()).cloned().collect())
            .unwrap_or_default(),
        config_error,
    };
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(&status)?)?;
        return Ok(OK);
    }
    writeln!(out, "daemon: {}", if status.ready { "ready" } else { "not running" })?;
    writeln!(out, "outbox: {} alerts waiting", status.outbox)?;
    for r in &status.failing_routes {
        writeln!(
            out,
            "ROUTE FAILING: {}: {}; {} alerts held in memory, {} lost for this route (all are in the alert log)",
            r.outbox,
            r.failing.as_deref().unwrap_or(""),
            r.held,
            r.dropped
        )?;
    }
    writeln!(out, "state: content store {} bytes, quarantine {} bytes", status.content_bytes, status.quarantine_bytes)?;
    for s in &status.sites {
        writeln!(
            out,
            "{}: {} ({}), {} files, {} unaccepted changes, baseline {}, last scan {}{}{}",
            s.name,
            s.root,
            s.profile,
            s.files,
            s.drift,
            s.baseline_at.as_deref().unwrap_or("never"),
            s.last_scan.as_deref().unwrap_or("never"),
            match (&s.degraded, &s.degraded_reason) {
                (true, Some(why)) => format!(", REALTIME INCOMPLETE ({why}): checked by frequent scans"),
                (true, None) => ", REALTIME INCOMPLETE: checked by frequent scans".to_string(),
                _ => String::new(),
            },
            match (&s.source, &s.source_reason) {
                (Some(src), Some(why)) => format!(", realtime by {src} ({why})"),
                (Some(src), None) => format!(", realtime by {src}"),
                _ => String::new(),
            },
        )?;
    }
    Ok(OK)
}
