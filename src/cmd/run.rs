//! `sitewarden run`: the daemon, with the sinks of the config file, and
//! SIGHUP reloading that file.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Result;

use super::{hostname, OK};
use crate::alert::digest::{DigestPolicy, URGENT_DELAY};
use crate::alert::email::Mailer;
use crate::alert::log::AlertLog;
use crate::alert::outbox::Outbox;
use crate::alert::{mailer, MailSink, Sinks};
use crate::config::Config;
use crate::daemon::{self, DaemonError, Setup};

/// The sinks a config asks for; bad settings fail here, at start-up (or
/// refuse a reload), not at the first alert.
pub fn sinks(cfg: &Config) -> Result<Sinks, DaemonError> {
    let log = Some(Mutex::new(AlertLog::open(&cfg.alerts.log)?));
    let mail = match &cfg.alerts.email {
        None => None,
        Some(e) => {
            let mailer = Mailer::build(e).map_err(|err| DaemonError::Email(err.to_string()))?;
            let io = |source| DaemonError::Io { what: format!("mail outbox in {}", cfg.state_dir.display()), source };
            let policy = DigestPolicy {
                urgent_delay: URGENT_DELAY,
                digest: Duration::from_secs(e.digest_seconds),
                max_per_hour: e.max_per_hour,
            };
            let handle =
                mailer::spawn(mailer, Outbox::open(&cfg.state_dir).map_err(io)?, policy, hostname()).map_err(io)?;
            Some(MailSink { outbox: Outbox::open(&cfg.state_dir).map_err(io)?, min_severity: e.min_severity, handle })
        }
    };
    Ok(Sinks { log, terminal: None, mail })
}

pub fn run(config_path: &Path) -> Result<i32> {
    let cfg = Config::load(config_path)?;
    daemon::run(Setup { cfg, config_path: Some(config_path.to_path_buf()), sinks: Box::new(sinks) })?;
    Ok(OK)
}
