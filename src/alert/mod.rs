//! Alerts: the one record every output shares (the JSON-lines log, `check
//! --json`, the terminal, mail, webhooks, syslog) and the sinks that
//! deliver it.

pub mod courier;
pub mod diff;
pub mod digest;
pub mod ecs;
pub mod email;
pub mod log;
pub mod outbox;
pub mod record;
pub mod syslog;
pub mod terminal;
pub mod webhook;

pub use record::AlertRecord;

/// Every configured sink, owned by the daemon's judge. Delivery to the log
/// happens before an alert is counted as done (and so before it is
/// remembered as alerted); the routes take it from their outbox.
#[derive(Default)]
pub struct Sinks {
    /// The JSON-lines alert log (`alerts.log`).
    pub log: Option<log::AlertLog>,
    /// Alerts printed on the terminal (`sitewarden watch`).
    pub terminal: Option<terminal::Terminal>,
    /// Mail, webhooks and syslog, each through its outbox.
    pub routes: Vec<RouteSink>,
}

/// What a line of the alert log is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// The alert record of the interface contract.
    #[default]
    Json,
    /// The record as an Elastic Common Schema document.
    Ecs,
}

/// A route (mail, a webhook, a collector): alerts at or above
/// `min_severity`, of one site or of all, are queued in its outbox, and its
/// courier thread delivers them.
pub struct RouteSink {
    /// Where alerts wait until the route took them.
    pub outbox: outbox::Outbox,
    /// Alerts below this severity are not sent.
    pub min_severity: crate::model::Severity,
    /// Only this site's alerts (a site owner's route); `None`: every site's.
    pub site: Option<std::sync::Arc<str>>,
    /// Wakes the courier (and stops it when dropped).
    pub handle: courier::CourierHandle,
}

impl RouteSink {
    /// Queues the records it takes and wakes the courier.
    fn queue(&self, records: &[AlertRecord]) -> Result<(), SinkError> {
        let wanted: Vec<AlertRecord> = records
            .iter()
            .filter(|r| r.severity >= self.min_severity && self.site.as_deref().is_none_or(|s| r.site == s))
            .cloned()
            .collect();
        if !wanted.is_empty() {
            self.outbox.push(&wanted, crate::util::time::now_ns()).map_err(SinkError::Outbox)?;
            self.handle.wake();
        }
        Ok(())
    }
}

/// A sink could not take an alert.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The alert log could not be written.
    #[error(transparent)]
    Log(#[from] log::LogError),
    /// An outbox could not be written.
    #[error("outbox: {0}")]
    Outbox(std::io::Error),
}

/// A sink could not be set up from the config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The alert log cannot be opened for appending.
    #[error(transparent)]
    Log(#[from] log::LogError),
    /// The mail route is misconfigured.
    #[error(transparent)]
    Email(#[from] email::EmailError),
    /// A webhook or the syslog collector is misconfigured.
    #[error("{0}")]
    Route(String),
    /// An outbox or a courier thread could not be set up.
    #[error("outbox in {dir}: {source}")]
    Outbox {
        /// The state directory holding the outbox.
        dir: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// The outbox folder of a webhook: named by its URL and shape, so a
/// restart finds its queue again.
fn webhook_leaf(w: &crate::config::WebhookSettings) -> String {
    let digest = crate::util::sha256(format!("{:?} {}", w.kind, w.url).as_bytes());
    format!("webhook-{}", &crate::util::bytes::hex(&digest)[..16])
}

/// A route the config asks for, built and checked, not yet started.
pub struct Planned {
    /// Where it delivers.
    pub route: Box<dyn courier::Route>,
    /// Only this site's alerts (a site owner's); `None`: every site's.
    pub site: Option<std::sync::Arc<str>>,
    /// Its outbox folder below the site's (or the global) one.
    pub leaf: Option<String>,
    /// When a delivery is due.
    pub policy: digest::DigestPolicy,
    /// Alerts below this are not sent.
    pub min_severity: crate::model::Severity,
}

/// Every route of `cfg`: mail (and each site owner's), the webhooks (global
/// and per site), the syslog collector.
pub fn plan(cfg: &crate::config::Config) -> Result<Vec<Planned>, BuildError> {
    let policy = |digest_seconds: u64, max_per_hour: Option<u32>| digest::DigestPolicy {
        urgent_delay: digest::URGENT_DELAY,
        digest: std::time::Duration::from_secs(digest_seconds),
        max_per_hour,
    };
    let mut out = Vec::new();
    if let Some(e) = &cfg.alerts.email {
        let p = policy(e.digest_seconds, e.max_per_hour);
        let route = Box::new(email::Mailer::build(e)?);
        out.push(Planned { route, site: None, leaf: None, policy: p.clone(), min_severity: e.min_severity });
        // Each site owner: the same route, their own recipients and outbox.
        for site in cfg.sites.iter().filter(|s| !s.owners.is_empty()) {
            let settings = crate::config::EmailSettings { to: site.owners.clone(), ..e.clone() };
            let route = Box::new(email::Mailer::build(&settings)?);
            let site = Some(std::sync::Arc::clone(&site.name));
            out.push(Planned { route, site, leaf: None, policy: p.clone(), min_severity: e.min_severity });
        }
    }
    let hooks = cfg.alerts.webhooks.iter().map(|w| (None, w));
    let site_hooks = cfg.sites.iter().flat_map(|s| s.webhooks.iter().map(move |w| (Some(&s.name), w)));
    for (site, w) in hooks.chain(site_hooks) {
        out.push(Planned {
            route: Box::new(webhook::Webhook::build(w).map_err(BuildError::Route)?),
            site: site.cloned(),
            leaf: Some(webhook_leaf(w)),
            policy: policy(w.digest_seconds, w.max_per_hour),
            min_severity: w.min_severity,
        });
    }
    if let Some(s) = &cfg.alerts.syslog {
        out.push(Planned {
            route: Box::new(syslog::Collector::build(s).map_err(BuildError::Route)?),
            site: None,
            leaf: Some("syslog".into()),
            // A collector takes each alert as it comes.
            policy: digest::DigestPolicy {
                urgent_delay: std::time::Duration::ZERO,
                digest: std::time::Duration::ZERO,
                max_per_hour: None,
            },
            min_severity: s.min_severity,
        });
    }
    Ok(out)
}

impl Sinks {
    /// The sinks `cfg` asks for: the alert log and every route (each
    /// courier started under `supervisor`). Bad settings fail here, at
    /// start-up or when a reload is refused, not at the first alert.
    pub fn build(
        cfg: &crate::config::Config,
        supervisor: &crate::util::supervise::Supervisor,
    ) -> Result<Sinks, BuildError> {
        let log = Some(log::AlertLog::open(&cfg.alerts.log, cfg.alerts.log_format)?);
        let io = |source| BuildError::Outbox { dir: cfg.state_dir.clone(), source };
        let host = crate::util::hostname();
        let mut routes = Vec::new();
        for p in plan(cfg)? {
            let open = || outbox::Outbox::open_route(&cfg.state_dir, p.site.as_deref(), p.leaf.as_deref()).map_err(io);
            let setup = courier::Setup { route: p.route, outbox: open()?, policy: p.policy, host: host.clone() };
            let handle = courier::spawn(setup, supervisor).map_err(io)?;
            routes.push(RouteSink { outbox: open()?, min_severity: p.min_severity, site: p.site, handle });
        }
        let used: Vec<std::path::PathBuf> = routes.iter().map(|r| r.outbox.path().to_path_buf()).collect();
        outbox::Outbox::retire_unused(&cfg.state_dir, &used);
        Ok(Sinks { log, terminal: None, routes })
    }

    /// Delivers a batch of records to every sink (the global routes get every
    /// record, a site owner's that site's).
    pub fn deliver(&mut self, records: &[AlertRecord]) -> Result<(), SinkError> {
        if records.is_empty() {
            return Ok(());
        }
        let stamped: Vec<AlertRecord> = records
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.stamp_id();
                r
            })
            .collect();
        let records = &stamped[..];
        if let Some(t) = &self.terminal {
            t.print(records);
        }
        for r in records.iter().filter(|_| self.terminal.is_none()) {
            tracing::info!(
                site = %r.site,
                severity = %r.severity,
                rule = %r.rule,
                detected_by = r.detected_by.as_str(),
                "{} {}",
                r.event.as_str(),
                crate::util::bytes::printable(r.path.as_bytes())
            );
        }
        if let Some(log) = self.log.as_mut() {
            log.append(records)?;
        }
        crate::daemon::metrics::count_alerts(records);
        // A site owner's route gets that site's alerts, and no other.
        for route in &self.routes {
            route.queue(records)?;
        }
        Ok(())
    }
}
