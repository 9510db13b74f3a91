//! `sitewarden watch --profile NAME DIR`: the daemon's engine in the
//! foreground, with no config file and a throwaway state; alerts are
//! printed on the terminal.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::OK;
use crate::alert::terminal::Terminal;
use crate::alert::Sinks;
use crate::config::Config;
use crate::daemon::{self, Setup};

/// Removes the throwaway state when the command ends.
struct TempState(PathBuf);

impl Drop for TempState {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn run(profile: &str, dir: &Path) -> Result<i32> {
    let state = std::env::temp_dir().join(format!("sitewarden-watch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    std::fs::DirBuilder::new().mode(0o700).create(&state)?;
    let state = TempState(state);
    let cfg = Config::ephemeral(profile, dir, &state.0)?;
    eprintln!("sitewarden: watching {} with profile {profile} (Ctrl-C to stop)", cfg.sites[0].root.display());
    daemon::run(Setup {
        cfg,
        config_path: None,
        sinks: Box::new(|_, _| Ok(Sinks { terminal: Some(Terminal::new()), ..Sinks::default() })),
        phases: None,
    })?;
    Ok(OK)
}
