//! `sitewarden run`: the daemon, with the sinks of the config file, and
//! SIGHUP reloading that file.

use std::path::Path;

use anyhow::Result;

use super::OK;
use crate::alert::Sinks;
use crate::config::Config;
use crate::daemon::{self, Setup};

/// Runs the daemon on the config at `config_path` until SIGTERM.
pub fn run(config_path: &Path) -> Result<i32> {
    let cfg = Config::load(config_path)?;
    // A rule that does not compile stops the start (exit 2), as any config error.
    cfg.signatures.rules()?;
    // Nothing is created before the checks pass.
    cfg.check_writable()?;
    for site in &cfg.sites {
        for w in &site.warnings {
            eprintln!("sitewarden: warning: site {}: {w}", site.name);
        }
    }
    daemon::run(Setup {
        cfg,
        config_path: Some(config_path.to_path_buf()),
        sinks: Box::new(|cfg, supervisor| Ok(Sinks::build(cfg, supervisor)?)),
        phases: None,
    })?;
    Ok(OK)
}
