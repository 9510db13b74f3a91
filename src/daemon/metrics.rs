//! Prometheus metrics through node_exporter's textfile collector
//! (`metrics.textfile`): written whole to a temporary file beside it and
//! renamed over it, every status write (at most every 10 s), so a scrape
//! never reads half a file.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use crate::model::Severity;

/// What the metrics say of one site.
pub struct SiteMetrics {
    /// The site's name.
    pub name: String,
    /// Files in its baseline.
    pub files: u64,
    /// Paths alerted and not accepted.
    pub drift: u64,
    /// Directories watched.
    pub watches: usize,
    /// Seconds since its last complete scan (`None`: never).
    pub last_scan_age: Option<f64>,
    /// Realtime coverage incomplete.
    pub degraded: bool,
    /// `fanotify` or `inotify`.
    pub source: Option<String>,
}

/// What the metrics say of the daemon.
pub struct Metrics {
    /// Per site.
    pub sites: Vec<SiteMetrics>,
    /// Alerts queued in every route's outbox.
    pub outbox_depth: u64,
    /// Age of the oldest undelivered alert, seconds (0: none).
    pub outbox_oldest_age: f64,
    /// Kernel events read.
    pub kernel_events: u64,
    /// Each route's outbox health.
    pub routes: Vec<crate::alert::RouteState>,
    /// Alerts delivered since the daemon started, by (site, severity).
    pub alerts: Vec<((String, Severity), u64)>,
}

/// A label value as the exposition format wants it.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The exposition text.
pub fn render(m: &Metrics) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in rows {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let per_site = |f: &dyn Fn(&SiteMetrics) -> Option<String>| -> Vec<(String, String)> {
        m.sites.iter().filter_map(|s| Some((format!("{{site=\"{}\"}}", label(&s.name)), f(s)?))).collect()
    };
    family("sitewarden_up", "gauge", "1 while the daemon runs.", vec![(String::new(), "1".into())]);
    family("sitewarden_files", "gauge", "Files in the site's baseline.", per_site(&|s| Some(s.files.to_string())));
    family("sitewarden_drift", "gauge", "Paths alerted and not accepted.", per_site(&|s| Some(s.drift.to_string())));
    family(
        "sitewarden_watched_directories",
        "gauge",
        "Directories watched in realtime.",
        per_site(&|s| Some(s.watches.to_string())),
    );
    family(
        "sitewarden_last_scan_age_seconds",
        "gauge",
        "Seconds since the site's last complete scan.",
        per_site(&|s| s.last_scan_age.map(|a| format!("{a:.0}"))),
    );
    family(
        "sitewarden_degraded",
        "gauge",
        "1 while realtime coverage of the site is incomplete (scans stand in).",
        per_site(&|s| Some(u8::from(s.degraded).to_string())),
    );
    let sources = m
        .sites
        .iter()
        .filter_map(|s| {
            let src = s.source.as_deref()?;
            Some((format!("{{site=\"{}\",source=\"{}\"}}", label(&s.name), label(src)), "1".to_string()))
        })
        .collect();
    family("sitewarden_realtime_source", "gauge", "Where the site's realtime events come from.", sources);
    let alerts = m
        .alerts
        .iter()
        .map(|((site, sev), n)| (format!("{{site=\"{}\",severity=\"{}\"}}", label(site), sev.as_str()), n.to_string()))
        .collect();
    family("sitewarden_alerts_total", "counter", "Alerts delivered since the daemon started.", alerts);
    family(
        "sitewarden_outbox_depth",
        "gauge",
        "Alerts waiting in the routes' outboxes.",
        vec![(String::new(), m.outbox_depth.to_string())],
    );
    family(
        "sitewarden_outbox_oldest_age_seconds",
        "gauge",
        "Age of the oldest alert waiting in an outbox (0: none).",
        vec![(String::new(), format!("{:.0}", m.outbox_oldest_age))],
    );
    let per_route = |f: &dyn Fn(&crate::alert::RouteState) -> String| -> Vec<(String, String)> {
        m.routes.iter().map(|r| (format!("{{outbox=\"{}\"}}", label(&r.outbox)), f(r))).collect()
    };
    family(
        "sitewarden_route_failing",
        "gauge",
        "1 while the route's outbox cannot be written (its alerts are held in memory).",
        per_route(&|r| u8::from(r.failing.is_some()).to_string()),
    );
    family(
        "sitewarden_route_held",
        "gauge",
        "Alerts held in memory for the route.",
        per_route(&|r| r.held.to_string()),
    );
    family(
        "sitewarden_route_dropped_total",
        "counter",
        "Alerts the route lost while its outbox failed (they are in the alert log).",
        per_route(&|r| r.dropped.to_string()),
    );
    family(
        "sitewarden_kernel_events_total",
        "counter",
        "Kernel events read.",
        vec![(String::new(), m.kernel_events.to_string())],
    );
    out
}

/// Writes `text` to `path` atomically (a temporary file renamed over it),
/// readable by node_exporter (0644).
pub fn write(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("prom.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    drop(f);
    std::fs::rename(&tmp, path)
}
