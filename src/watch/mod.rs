//! The realtime source: kernel events (inotify, through `notify`) turned
//! into the project's own event type at this one boundary.
//!
//! Watches are placed directory by directory (notify's recursive mode would
//! follow symlinks and watch ignored folders): every directory the policy
//! lets the walker enter, found without following symlinks. A directory that
//! appears later is watched by the daemon as soon as it is seen, then walked,
//! so files created in it before its watch existed are found too.
//!
//! The notify callback never blocks: a full channel or a kernel queue
//! overflow raises the site's rescan flag, because for an integrity monitor
//! a lost event is a blind spot that only a scan can close.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use crate::model::{DetectedBy, RelPath};
use crate::policy::Policy;

/// What the watcher reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// Something happened at this path of site `site` (`by` is `Scan` for
    /// a path a scan found still being written; `closed`: a writer closed
    /// it, so it may be judged at once).
    Path {
        /// The site's name.
        site: Arc<str>,
        /// The path, relative to the site root.
        rel: RelPath,
        /// How it was detected.
        by: DetectedBy,
        /// A writer closed the file (`IN_CLOSE_WRITE`).
        closed: bool,
    },
    /// Events were lost (queue overflow, full channel, watch error): the
    /// site must be scanned.
    Rescan {
        /// The site's name.
        site: Arc<str>,
        /// Why events were lost.
        reason: String,
    },
}

/// Placing a watch failed.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// ENOSPC: the inotify watch limit.
    #[error(
        "inotify watch limit reached at {path}: raise it with `sysctl -w fs.inotify.max_user_watches=1048576` \
         (and persist it in /etc/sysctl.d/); until then this site is checked by frequent scans"
    )]
    Limit {
        /// The directory that could not be watched.
        path: PathBuf,
    },
    /// EMFILE/ENFILE: out of file descriptors, not of watches.
    #[error(
        "cannot watch {path}: too many open files: raise the descriptor limit (LimitNOFILE= in the unit, \
         `ulimit -n`); until then this site is checked by frequent scans"
    )]
    Descriptors {
        /// The directory that could not be watched.
        path: PathBuf,
    },
    /// EACCES/EPERM: the daemon may not read this directory.
    #[error(
        "cannot watch {path}: permission denied (the daemon runs as root: an ACL, a security module or \
         a FUSE mount refuses it); this site is checked by frequent scans"
    )]
    Denied {
        /// The directory that could not be watched.
        path: PathBuf,
    },
    /// Any other failure to place a watch.
    #[error("cannot watch {path}: {message}")]
    Other {
        /// The directory that could not be watched.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The inotify instance could not be created.
    #[error("cannot create an inotify instance: {0} (too many instances? raise fs.inotify.max_user_instances)")]
    Instance(String),
}

/// The kernel watches of one site.
pub struct SiteWatcher {
    root: PathBuf,
    inner: notify::INotifyWatcher,
    /// Watched directories and the (device, inode) the watch is on. The
    /// daemon updates it as it judges paths: a directory gone is forgotten
    /// with what was below it, one that appears is watched again whole.
    dirs: HashMap<RelPath, (u64, u64)>,
}

struct Handler {
    site: Arc<str>,
    root: PathBuf,
    tx: mpsc::Sender<WatchEvent>,
    lost: Arc<AtomicBool>,
}

impl Handler {
    fn send(&self, ev: WatchEvent) {
        if self.tx.try_send(ev).is_err() {
            // Full (or closed at shutdown): remember to rescan instead.
            self.lost.store(true, Ordering::Release);
        }
    }
}

impl notify::EventHandler for Handler {
    fn handle_event(&mut self, event: notify::Result<notify::Event>) {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                self.send(WatchEvent::Rescan { site: Arc::clone(&self.site), reason: format!("watch error: {e}") });
                return;
            }
        };
        if event.need_rescan() {
            self.send(WatchEvent::Rescan { site: Arc::clone(&self.site), reason: "inotify queue overflow".into() });
        }
        // Opening or reading a file changes nothing; closing after a write
        // is the moment a chunked write is done.
        let closed = event.kind == EventKind::Access(AccessKind::Close(AccessMode::Write));
        if matches!(event.kind, EventKind::Access(_)) && !closed {
            return;
        }
        // The map of watched directories is the daemon's to update, when
        // it looks at the paths (a rename is two paths, judged together).
        for path in event.paths {
            if let Ok(rest) = path.strip_prefix(&self.root) {
                let rel = rest.as_os_str().as_bytes().to_vec();
                self.send(WatchEvent::Path { site: Arc::clone(&self.site), rel, by: DetectedBy::Realtime, closed });
            }
        }
    }
}

impl SiteWatcher {
    /// An inotify instance for site `site` rooted at `root` (the canonical
    /// root). Events go to `tx`; `lost` is raised when one could not be
    /// delivered.
    pub fn new(
        site: Arc<str>,
        root: &Path,
        tx: mpsc::Sender<WatchEvent>,
        lost: Arc<AtomicBool>,
    ) -> Result<SiteWatcher, WatchError> {
        let handler = Handler { site, root: root.to_path_buf(), tx, lost };
        let inner = notify::INotifyWatcher::new(handler, notify::Config::default().with_follow_symlinks(false))
            .map_err(|e| WatchError::Instance(e.to_string()))?;
        Ok(SiteWatcher { root: root.to_path_buf(), inner, dirs: HashMap::new() })
    }

    /// Watches `dir` (relative) and every directory below it that the policy
    /// enters. Returns how many watches were added. A directory that could
    /// not be read is an error: its subtree has no watch.
    ///
    /// `renew`: place every watch again, even where the map already has the
    /// directory with the same inode. For a directory that just appeared:
    /// renamed away and back (`mv x x.tmp; mv x.tmp x`), its directories
    /// keep their inodes, so their watches keep their descriptors, but
    /// notify still names their events by the path they had in between;
    /// adding the watch again by the current path corrects that.
    pub fn watch_tree(&mut self, dir: &[u8], policy: &Policy, renew: bool) -> Result<usize, WatchError> {
        let mut found = Vec::new();
        let failed = crate::scan::walk_dirs(&self.root, dir, policy, |rel, id| found.push((rel.to_vec(), id)))
            .map_err(|e| WatchError::Other { path: self.root.clone(), message: e.to_string() })?;
        let mut added = 0;
        for (rel, id) in found {
            if !renew && self.dirs.get(&rel) == Some(&id) {
                continue;
            }
            let path = self.abs(&rel);
            match self.inner.watch(&path, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.dirs.insert(rel, id);
                    added += 1;
                }
                Err(e) => match &e.kind {
                    notify::ErrorKind::MaxFilesWatch => return Err(WatchError::Limit { path }),
                    // Gone again already: nothing to watch.
                    notify::ErrorKind::PathNotFound => {}
                    notify::ErrorKind::Io(io) => {
                        return Err(match io.raw_os_error() {
                            Some(nix::libc::ENOSPC) => WatchError::Limit { path },
                            Some(nix::libc::EMFILE | nix::libc::ENFILE) => WatchError::Descriptors { path },
                            Some(nix::libc::EACCES | nix::libc::EPERM) => WatchError::Denied { path },
                            Some(nix::libc::ENOENT) => continue,
                            _ => WatchError::Other { path, message: e.to_string() },
                        })
                    }
                    _ => return Err(WatchError::Other { path, message: e.to_string() }),
                },
            }
        }
        if failed > 0 {
            return Err(WatchError::Other {
                path: self.abs(dir),
                message: format!("{failed} directories could not be read (permissions, or too many open files)"),
            });
        }
        Ok(added)
    }

    /// Forgets `dir` and below: nothing is there any more. The kernel drops
    /// the watches of deleted directories itself; a directory renamed away
    /// keeps its watch descriptor, which may be the very one its new path
    /// was just watched with, so nothing is unwatched here.
    pub fn forget_tree(&mut self, dir: &[u8]) {
        self.dirs.retain(|d, _| !crate::detect::is_under(d, dir));
    }

    /// Is this directory watched?
    pub fn watches(&self, dir: &[u8]) -> bool {
        self.dirs.contains_key(dir)
    }

    /// Number of directories watched.
    pub fn count(&self) -> usize {
        self.dirs.len()
    }

    fn abs(&self, rel: &[u8]) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(std::ffi::OsStr::from_bytes(rel))
        }
    }
}
