//! The daemon's status file (`state_dir/daemon.json`), read by
//! `sitewarden status` from another process. Written atomically (temporary
//! file and rename); a file left by a dead daemon is recognised by its pid.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Name of the status file inside the state directory.
pub const FILE: &str = "daemon.json";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
/// The state of one watched site.
pub struct SiteState {
    /// The site's name.
    pub name: String,
    /// The root as configured.
    #[serde(default)]
    pub root: String,
    /// The profile in force.
    #[serde(default)]
    pub profile: String,
    /// Directories with a kernel watch.
    pub watches: usize,
    /// Realtime is off (watch limit): the site is checked by scans.
    pub degraded: bool,
    /// Why: `watch limit`, `too many open files`, `permission denied`, ...
    #[serde(default)]
    pub degraded_reason: Option<String>,
    /// The site is ready (its startup is done).
    pub ready: bool,
    /// Where its realtime events come from: `fanotify` or `inotify`.
    #[serde(default)]
    pub source: Option<String>,
    /// Why it is on inotify when fanotify was wanted.
    #[serde(default)]
    pub source_reason: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
/// What the status file holds.
pub struct DaemonStatus {
    /// Process id of the daemon.
    pub pid: u32,
    /// Every site is ready.
    pub ready: bool,
    /// When the daemon started.
    pub started: String,
    /// Kernel (inotify) events read since start: opening and reading files
    /// add none.
    #[serde(default)]
    pub kernel_events: u64,
    /// The state of each site.
    pub sites: Vec<SiteState>,
    /// Each alert route's outbox: failing (why), alerts held in memory.
    #[serde(default)]
    pub routes: Vec<crate::alert::RouteState>,
}

/// Path of the status file in `state_dir`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// Writes `status` to the status file atomically.
pub fn write(state_dir: &Path, status: &DaemonStatus) -> std::io::Result<()> {
    let tmp = state_dir.join(format!(".{FILE}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec(status)?)?;
    std::fs::rename(&tmp, path(state_dir))
}

/// Removes the status file, if any.
pub fn remove(state_dir: &Path) {
    let _ = std::fs::remove_file(path(state_dir));
}

/// The status of a running daemon, if one is running.
pub fn read(state_dir: &Path) -> Option<DaemonStatus> {
    let bytes = std::fs::read(path(state_dir)).ok()?;
    let status: DaemonStatus = serde_json::from_slice(&bytes).ok()?;
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(status.pid as i32), None).is_ok();
    alive.then_some(status)
}
