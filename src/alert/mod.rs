//! Alerts: the one record every output shares (the JSON-lines log, `check
//! --json`, the terminal, mail) and the sinks that deliver it.

pub mod log;
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
}

impl Sinks {
    /// Delivers a batch of records to every sink.
    pub fn deliver(&self, records: &[AlertRecord]) -> Result<(), log::LogError> {
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
        Ok(())
    }
}
