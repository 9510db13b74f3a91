//! `sitewarden config-check`: validate the config (loading it already did)
//! and print the effective settings, profile lists included.

use std::io::Write;

use anyhow::Result;

use super::OK;
use crate::config::{duration, Config, Transport};

pub fn run(cfg: &Config) -> Result<i32> {
    // What `run` would refuse, refused here too (before anything is printed).
    cfg.check_writable()?;
    let rules = cfg.signatures.rules()?;
    let routes = crate::alert::plan(cfg)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "config: {}", cfg.path.display())?;
    writeln!(out, "state_dir: {}", cfg.state_dir.display())?;
    writeln!(
        out,
        "scan: interval {}, quiet period {}, full re-hash {}",
        duration::format(cfg.scan.interval),
        duration::format(cfg.scan.quiet_period),
        cfg.scan.rehash_interval.map(duration::format).unwrap_or_else(|| "off".into())
    )?;
    if let Some(t) = cfg.scan.throttle {
        writeln!(out, "scan: scheduled scans read at most {} MB/s, at nice 10", t / 1_000_000)?;
    }
    match &rules {
        None => writeln!(out, "signatures: off")?,
        Some(r) => writeln!(
            out,
            "signatures: {} rules ({} shipped files, {} of {}), files scanned up to {} bytes",
            r.len(),
            crate::signatures::SHIPPED.len(),
            r.files.len(),
            cfg.signatures.rules_dir.display(),
            r.max_size
        )?,
    }
    writeln!(out, "alerts: log {}", cfg.alerts.log.display())?;
    match &cfg.alerts.email {
        None => writeln!(out, "email: off")?,
        Some(e) => {
            let route = match e.transport {
                Transport::Sendmail => "sendmail".to_string(),
                Transport::Smtp => format!("smtp {}:{} (tls {:?})", e.smtp_host, e.smtp_port, e.tls).to_lowercase(),
            };
            writeln!(
                out,
                "email: to {} from {} via {route}, min severity {}, digest {}s",
                e.to.join(", "),
                e.from,
                e.min_severity,
                e.digest_seconds
            )?;
        }
    }
    for r in routes.iter().filter(|r| r.leaf.is_some()) {
        let whose = r.site.as_deref().map(|s| format!(", site {s} only")).unwrap_or_default();
        writeln!(out, "route: {}, min severity {}{whose}", r.route.describe(), r.min_severity)?;
    }
    if !cfg.quarantine.hook.is_empty() {
        writeln!(
            out,
            "quarantine hook: {:?} (timeout {})",
            cfg.quarantine.hook,
            duration::format(cfg.quarantine.hook_timeout)
        )?;
    }
    for site in &cfg.sites {
        writeln!(out, "site {}:", site.name)?;
        writeln!(out, "  root: {}", site.root.display())?;
        if site.real_root != site.root {
            writeln!(out, "  real root: {}", site.real_root.display())?;
        }
        writeln!(out, "  profile: {}", site.profile)?;
        for w in &site.warnings {
            writeln!(out, "  warning: {w}")?;
            eprintln!("sitewarden: warning: site {}: {w}", site.name);
        }
        writeln!(out, "  auto_accept: {}", site.auto_accept)?;
        for (name, list) in site.policy.lists() {
            writeln!(out, "  {name}: {}", if list.is_empty() { "[]".into() } else { format!("{list:?}") })?;
        }
        let (rules, quarantine, default) = site.policy.rules();
        for r in rules {
            let events: Vec<&str> = r.events.iter().map(|e| e.as_str()).collect();
            writeln!(
                out,
                "  rule {}: {:?} {} -> {}",
                r.id,
                r.patterns,
                if events.is_empty() { "any event".into() } else { events.join("|") },
                r.severity
            )?;
        }
        writeln!(out, "  default severity: {default}")?;
        for q in quarantine {
            writeln!(out, "  quarantine {:?} -> {}", q.patterns, q.action.as_str())?;
        }
    }
    writeln!(out, "config OK")?;
    Ok(OK)
}
