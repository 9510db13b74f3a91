//! Alerts: the one record every output shares (the JSON-lines log, `check
//! --json`, mail) and the sinks that deliver it.

pub mod record;

pub use record::AlertRecord;
