//! Alerts: the one record every output shares (the JSON-lines log, `check
//! --json`, the terminal, mail) and the sinks that deliver it.

pub mod diff;
pub mod digest;
pub mod ecs;
pub mod email;
pub mod log;
pub mod mailer;
pub mod outbox;
pub mod record;
pub mod terminal;

pub use record::AlertRecord;

/// Every configured sink, owned by the daemon's judge. Delivery to the log
/// happens before an alert is counted as done (and so before it is
/// remembered as alerted).
#[derive(Default)]
pub struct Sinks {
    /// The JSON-lines alert log (`alerts.log`).
    pub log: Option<log::AlertLog>,
    /// Alerts printed on the terminal (`sitewarden watch`).
    pub terminal: Option<terminal::Terminal>,
    /// The mail route, through the outbox.
    pub mail: Option<MailSink>,
    /// Site owners' mail (`sites[].alerts.email.to`), each with its outbox.
    pub owners: Vec<(std::sync::Arc<str>, MailSink)>,
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

/// Mail: alerts at or above `min_severity` are queued in the outbox, and
/// the mailer thread sends them.
pub struct MailSink {
    /// Where alerts wait until the mailer sent them.
    pub outbox: outbox::Outbox,
    /// Alerts below this severity are not mailed.
    pub min_severity: crate::model::Severity,
    /// Wakes the mailer thread (and stops it when dropped).
    pub handle: mailer::MailerHandle,
}

impl MailSink {
    /// Queues the records at or above the threshold and wakes the mailer.
    fn queue<'r>(&self, records: impl Iterator<Item = &'r AlertRecord>) -> Result<(), SinkError> {
        let wanted: Vec<AlertRecord> = records.filter(|r| r.severity >= self.min_severity).cloned().collect();
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
    /// The mail outbox could not be written.
    #[error("mail outbox: {0}")]
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
    /// The outbox or the mailer thread could not be set up.
    #[error("mail outbox in {dir}: {source}")]
    Outbox {
        /// The state directory holding the outbox.
        dir: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl Sinks {
    /// The sinks `cfg` asks for: the alert log and, when configured, mail
    /// (whose thread is started under `supervisor`). Bad settings fail
    /// here, at start-up or when a reload is refused, not at the first
    /// alert.
    pub fn build(
        cfg: &crate::config::Config,
        supervisor: &crate::util::supervise::Supervisor,
    ) -> Result<Sinks, BuildError> {
        let log = Some(log::AlertLog::open(&cfg.alerts.log, cfg.alerts.log_format)?);
        let Some(e) = &cfg.alerts.email else {
            return Ok(Sinks { log, terminal: None, mail: None, owners: Vec::new() });
        };
        let mailer = email::Mailer::build(e)?;
        let io = |source| BuildError::Outbox { dir: cfg.state_dir.clone(), source };
        let policy = digest::DigestPolicy {
            urgent_delay: digest::URGENT_DELAY,
            digest: std::time::Duration::from_secs(e.digest_seconds),
            max_per_hour: e.max_per_hour,
        };
        let setup = mailer::MailerSetup {
            mailer,
            outbox: outbox::Outbox::open(&cfg.state_dir).map_err(io)?,
            policy: policy.clone(),
            host: crate::util::hostname(),
        };
        let handle = mailer::spawn(setup, supervisor).map_err(io)?;
        let outbox = outbox::Outbox::open(&cfg.state_dir).map_err(io)?;
        // Each site owner: the same route, their own recipients and outbox.
        let mut owners = Vec::new();
        for site in cfg.sites.iter().filter(|s| !s.owners.is_empty()) {
            let settings = crate::config::EmailSettings { to: site.owners.clone(), ..e.clone() };
            let setup = mailer::MailerSetup {
                mailer: email::Mailer::build(&settings)?,
                outbox: outbox::Outbox::open_site(&cfg.state_dir, &site.name).map_err(io)?,
                policy: policy.clone(),
                host: crate::util::hostname(),
            };
            let handle = mailer::spawn(setup, supervisor).map_err(io)?;
            let outbox = outbox::Outbox::open_site(&cfg.state_dir, &site.name).map_err(io)?;
            owners.push((std::sync::Arc::clone(&site.name), MailSink { outbox, min_severity: e.min_severity, handle }));
        }
        Ok(Sinks { log, terminal: None, mail: Some(MailSink { outbox, min_severity: e.min_severity, handle }), owners })
    }

    /// Delivers a batch of records to every sink (the global recipients get
    /// every record, a site's owner that site's).
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
        if let Some(mail) = &self.mail {
            mail.queue(records.iter())?;
        }
        // A site's owner gets the mails about that site, and no other.
        for (site, mail) in &self.owners {
            mail.queue(records.iter().filter(|r| r.site == **site))?;
        }
        Ok(())
    }
}
