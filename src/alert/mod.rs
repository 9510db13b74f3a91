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
    /// How each route's outbox is doing, for the status page and the
    /// metrics (a handle the daemon keeps a clone of).
    pub health: RouteHealth,
    /// Alerts delivered, by site and severity (the daemon's metrics read
    /// it; a reload hands the same counts to the next sinks).
    pub counts: AlertCounts,
}

/// Alerts delivered since the daemon started, by (site, severity): shared
/// by the judge, which counts as it delivers, and the daemon, which
/// writes them as metrics.
#[derive(Clone, Debug, Default)]
pub struct AlertCounts(
    std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<(String, crate::model::Severity), u64>>>,
);

impl AlertCounts {
    fn add(&self, records: &[AlertRecord]) {
        if let Ok(mut m) = self.0.lock() {
            for r in records {
                *m.entry((r.site.clone(), r.severity)).or_default() += 1;
            }
        }
    }

    /// Every (site, severity) and its count.
    pub fn snapshot(&self) -> Vec<((String, crate::model::Severity), u64)> {
        self.0.lock().map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect()).unwrap_or_default()
    }
}

/// Alerts a route whose outbox cannot be written keeps in memory, to be
/// written with the next batch; past this, the oldest are counted as
/// dropped for that route (they are in the alert log all the same).
const HELD_MAX: usize = 10_000;

/// The health of every route, by outbox folder: shared by the judge, which
/// writes it as it queues alerts, and the daemon, which shows it in
/// `status` and the metrics.
#[derive(Clone, Debug, Default)]
pub struct RouteHealth(std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, RouteState>>>);

/// One route's health.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RouteState {
    /// The route's outbox folder.
    pub outbox: String,
    /// Why its outbox could not be written the last time; `None`: it can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing: Option<String>,
    /// Alerts waiting in memory for the outbox to be writable again.
    #[serde(default)]
    pub held: u64,
    /// Alerts this route lost while it failed (more than it could hold).
    #[serde(default)]
    pub dropped: u64,
}

impl RouteHealth {
    /// Every route's state, in outbox order.
    pub fn snapshot(&self) -> Vec<RouteState> {
        self.0.lock().map(|m| m.values().cloned().collect()).unwrap_or_default()
    }

    fn set(&self, state: RouteState) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(state.outbox.clone(), state);
        }
    }
}

pub use crate::model::LogFormat;

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
    /// Alerts the outbox could not take, written with the next batch.
    held: Vec<AlertRecord>,
    /// This route's health, as the status page shows it.
    state: RouteState,
}

impl RouteSink {
    /// Queues the records it takes and wakes the courier. An outbox that
    /// cannot be written (a full or read-only disk, a folder gone) degrades
    /// this route only: its alerts are held in memory and written with the
    /// next batch, the failure is logged and shown in `status` and the
    /// metrics; detection and the other routes go on.
    fn queue(&mut self, records: &[AlertRecord], health: &RouteHealth) {
        let wanted = records
            .iter()
            .filter(|r| r.severity >= self.min_severity && self.site.as_deref().is_none_or(|s| r.site == s))
            .cloned();
        let mut batch = std::mem::take(&mut self.held);
        batch.extend(wanted);
        if batch.is_empty() {
            return;
        }
        crate::util::fault::point("outbox", self.state.outbox.as_bytes());
        match self.outbox.push(&batch, crate::util::time::now_ns()) {
            Ok(_) => {
                self.handle.wake();
                let Some(why) = self.state.failing.take() else { return };
                tracing::warn!(outbox = %self.state.outbox, "the outbox takes alerts again ({} held were written); it failed with: {why}", batch.len());
                self.state.held = 0;
            }
            Err(e) => {
                if self.state.failing.is_none() {
                    tracing::error!(
                        outbox = %self.state.outbox,
                        "cannot queue alerts for this route: {e}; they are held in memory (at most {HELD_MAX}) until it can; detection and the other routes go on"
                    );
                }
                self.state.failing = Some(e.to_string());
                let excess = batch.len().saturating_sub(HELD_MAX);
                if excess > 0 {
                    batch.drain(..excess);
                    self.state.dropped += excess as u64;
                }
                self.state.held = batch.len() as u64;
                self.held = batch;
            }
        }
        health.set(self.state.clone());
    }
}

/// `records`, each with its id.
fn stamped(records: &[AlertRecord]) -> Vec<AlertRecord> {
    records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.stamp_id();
            r
        })
        .collect()
}

/// Records made outside the daemon (by `sitewarden accept`): appended to
/// the alert log and queued in the outbox of every route that wants them,
/// from where the daemon's couriers deliver them (within a minute while it
/// runs, else at its next start). Returns how many route queues took them.
pub fn queue(cfg: &crate::config::Config, records: &[AlertRecord]) -> Result<usize, BuildError> {
    if records.is_empty() {
        return Ok(0);
    }
    let stamped = stamped(records);
    log::AlertLog::open(&cfg.alerts.log, cfg.alerts.log_format)?.append(&stamped).map_err(BuildError::Log)?;
    let io = |source| BuildError::Outbox { dir: cfg.state_dir.clone(), source };
    let mut queued = 0;
    for p in plan(cfg)? {
        let wanted: Vec<AlertRecord> = stamped
            .iter()
            .filter(|r| r.severity >= p.min_severity && p.site.as_deref().is_none_or(|s| r.site == s))
            .cloned()
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let outbox = outbox::Outbox::open_route(&cfg.state_dir, p.site.as_deref(), p.leaf.as_deref()).map_err(io)?;
        outbox.push(&wanted, crate::util::time::now_ns()).map_err(io)?;
        queued += 1;
    }
    Ok(queued)
}

/// A sink could not take an alert.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The alert log could not be written.
    #[error(transparent)]
    Log(#[from] log::LogError),
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
        let health = RouteHealth::default();
        for p in plan(cfg)? {
            let open = || outbox::Outbox::open_route(&cfg.state_dir, p.site.as_deref(), p.leaf.as_deref()).map_err(io);
            let setup = courier::Setup { route: p.route, outbox: open()?, policy: p.policy, host: host.clone() };
            let handle = courier::spawn(setup, supervisor).map_err(io)?;
            let outbox = open()?;
            let state = RouteState { outbox: outbox.path().display().to_string(), ..RouteState::default() };
            health.set(state.clone());
            let (held, min_severity, site) = (Vec::new(), p.min_severity, p.site);
            routes.push(RouteSink { outbox, min_severity, site, handle, held, state });
        }
        let used: Vec<std::path::PathBuf> = routes.iter().map(|r| r.outbox.path().to_path_buf()).collect();
        outbox::Outbox::retire_unused(&cfg.state_dir, &used);
        Ok(Sinks { log, terminal: None, routes, health, counts: AlertCounts::default() })
    }

    /// Delivers a batch of records to every sink (the global routes get every
    /// record, a site owner's that site's).
    pub fn deliver(&mut self, records: &[AlertRecord]) -> Result<(), SinkError> {
        if records.is_empty() {
            return Ok(());
        }
        let stamped = stamped(records);
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
        self.counts.add(records);
        // A site owner's route gets that site's alerts, and no other.
        for route in &mut self.routes {
            route.queue(records, &self.health);
        }
        Ok(())
    }
}
