//! Alerts: the one record every output shares (the JSON-lines log, `check
//! --json`, the terminal, mail) and the sinks that deliver it.

pub mod diff;
pub mod digest;
pub mod email;
pub mod log;
pub mod mailer;
pub mod outbox;
pub mod record;
pub mod terminal;

use std::sync::Mutex;

pub use record::AlertRecord;

/// Every configured sink. Delivery to the log happens before an alert is
/// counted as done (and so before it is remembered as alerted).
#[derive(Default)]
pub struct Sinks {
    pub log: Option<Mutex<log::AlertLog>>,
    pub terminal: Option<terminal::Terminal>,
    pub mail: Option<MailSink>,
}

/// Mail: alerts at or above `min_severity` are queued in the outbox, and
/// the mailer thread sends them.
pub struct MailSink {
    pub outbox: outbox::Outbox,
    pub min_severity: crate::model::Severity,
    pub handle: mailer::MailerHandle,
}

/// A sink could not take an alert.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    Log(#[from] log::LogError),
    #[error("mail outbox: {0}")]
    Outbox(std::io::Error),
}

impl Sinks {
    /// Delivers a batch of records to every sink.
    pub fn deliver(&self, records: &[AlertRecord]) -> Result<(), SinkError> {
        if records.is_empty() {
            return Ok(());
        }
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
        if let Some(log) = &self.log {
            // A poisoned lock only means another thread panicked mid-write;
            // the file itself is still usable.
            let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
            log.append(records)?;
        }
        if let Some(mail) = &self.mail {
            let wanted: Vec<AlertRecord> =
                records.iter().filter(|r| r.severity >= mail.min_severity).cloned().collect();
            if !wanted.is_empty() {
                mail.outbox.push(&wanted, crate::util::time::now_ns()).map_err(SinkError::Outbox)?;
                mail.handle.wake();
            }
        }
        Ok(())
    }
}
