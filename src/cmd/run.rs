//! `sitewarden run`: the daemon, with the sinks of the config file, and
//! SIGHUP reloading that file.

use std::path::Path;
use std::sync::Mutex;

use anyhow::Result;

use super::OK;
use crate::alert::log::AlertLog;
use crate::alert::Sinks;
use crate::config::Config;
use crate::daemon::{self, DaemonError, Setup};

/// The sinks a config asks for.
pub fn sinks(cfg: &Config) -> Result<Sinks, DaemonError> {
    Ok(Sinks {
        log: Some(Mutex::new(AlertLog::open(&cfg.alerts.log)?)),
        terminal: None,
    })
}

pub fn run(config_path: &Path) -> Result<i32> {
    let cfg = Config::load(config_path)?;
    daemon::run(Setup {
        cfg,
        config_path: Some(config_path.to_path_buf()),
        sinks: Box::new(sinks),
    })?;
    Ok(OK)
}
