//! Maintenance windows: `sitewarden maintenance` marks a site as being
//! updated on purpose (`state_dir/maintenance/SITE`, holding its pid); while
//! the mark is there and that process lives, the daemon holds back the
//! site's alerts. A mark left by a dead process is ignored.

use std::path::{Path, PathBuf};

/// A site's maintenance mark; removed when dropped.
pub struct Marker {
    path: PathBuf,
}

fn path(state_dir: &Path, site: &str) -> PathBuf {
    state_dir.join("maintenance").join(site)
}

impl Marker {
    /// Marks site `site` as in maintenance, held by this process.
    pub fn create(state_dir: &Path, site: &str) -> std::io::Result<Marker> {
        let p = path(state_dir, site);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&p, std::process::id().to_string())?;
        Ok(Marker { path: p })
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Is site `site` in a maintenance window?
pub fn active(state_dir: &Path, site: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(path(state_dir, site)) else { return false };
    text.trim().parse::<i32>().is_ok_and(|pid| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok())
}
