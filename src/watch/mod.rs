//! The realtime sources: kernel events, from fanotify (the default as root:
//! one mark per filesystem, the writer of each change) or inotify (one
//! watch per directory, where fanotify cannot be had), read by our own
//! code over the system calls and turned into the project's own event type
//! at this one boundary.
//!
//! Watches are placed directory by directory: every directory the policy
//! lets the walker enter, found without following symlinks, each watched
//! through the descriptor the walker opened it with (`/proc/self/fd/N`), so
//! a directory deeper than `PATH_MAX` is watched like any other and a
//! directory swapped for a symlink between the walk and the watch is not
//! followed. A directory that appears later is watched by the daemon as
//! soon as it is seen, then walked, so files created in it before its watch
//! existed are found too.
//!
//! The reader never blocks: a full channel or a kernel queue overflow
//! raises the site's rescan flag, because for an integrity monitor a lost
//! event is a blind spot that only a scan can close.

pub mod actor;
mod fanotify;
mod hub;
pub mod own;

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use nix::errno::Errno;
use nix::sys::inotify::WatchDescriptor;
use tokio::sync::mpsc;

pub use crate::model::Actor;
pub use hub::Hub;

use crate::model::{DetectedBy, RelPath};
use crate::policy::Policy;

/// What the kernel said happened to a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Created, or moved in.
    Created,
    /// Written, still open (`IN_MODIFY`).
    Written,
    /// A writer closed it (`IN_CLOSE_WRITE`): it may be judged at once.
    Closed,
    /// Mode, owner, timestamps or link count changed.
    Attrib,
    /// Deleted, or moved away.
    Gone,
}

impl Op {
    /// Can an event of this kind about `rel` (not a directory) of the site
    /// at `root` be dropped where it is read, before any other work? Only a
    /// regular file is ignored by its name (a symlink, a FIFO is watched
    /// wherever it is): a write or a close can only be a regular file's; a
    /// creation or an attribute change is looked at (`lstat`); a removal is
    /// kept (what it removed only the baseline knows). A storm of ignored
    /// files then costs the reader a glob match and an `lstat` each, and
    /// never queues ahead of a watched path.
    pub fn ignorable(self, policy: &Policy, root: &Path, rel: &[u8]) -> bool {
        if policy.watched(rel, crate::model::FileType::File) {
            return false;
        }
        match self {
            Op::Written | Op::Closed => true,
            Op::Created | Op::Attrib => std::fs::symlink_metadata(root.join(std::ffi::OsStr::from_bytes(rel)))
                .is_ok_and(|m| m.file_type().is_file()),
            Op::Gone => false,
        }
    }
}

/// What the watcher reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// Something happened at this path of site `site` (`by` is `Scan` for
    /// a path a scan found still being written).
    Path {
        /// The site's name.
        site: Arc<str>,
        /// The path, relative to the site root.
        rel: RelPath,
        /// How it was detected.
        by: DetectedBy,
        /// What happened (a scan's hand-over is `Written`).
        op: Op,
        /// Who did it (the fanotify source; `None` from inotify and scans).
        actor: Option<Arc<Actor>>,
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

pub use crate::model::RealtimeSource as Source;

/// The kernel watches of one site.
pub struct SiteWatcher {
    root: PathBuf,
    hub: Arc<Hub>,
    token: u64,
    /// The inotify instance; `None` when the fanotify source covers the
    /// site (then `dirs` lists the directories, without kernel watches).
    inst: Option<Arc<hub::Instance>>,
    /// Why the site is on inotify, when fanotify was wanted.
    why_inotify: Option<fanotify::Unavailable>,
    /// Watched directories, the (device, inode) the watch is on and its
    /// descriptor (none under fanotify). The daemon updates it as it judges paths: a directory
    /// gone is forgotten with what was below it, one that appears is
    /// watched again whole.
    dirs: HashMap<RelPath, ((u64, u64), Option<WatchDescriptor>)>,
}

impl Drop for SiteWatcher {
    fn drop(&mut self) {
        match self.inst {
            Some(_) => self.hub.remove(self.token),
            None => self.hub.fan_remove(self.token),
        }
    }
}

impl SiteWatcher {
    /// The realtime source of site `site` rooted at `root` (the canonical
    /// root), read by `hub`: its fanotify group where `source` and the
    /// system allow, else an inotify instance of its own. Events go to
    /// `tx`; `lost` is raised when one could not be delivered.
    pub fn new(
        hub: &Arc<Hub>,
        source: Source,
        site: Arc<str>,
        root: &Path,
        policy: Arc<Policy>,
        tx: mpsc::Sender<WatchEvent>,
        lost: Arc<AtomicBool>,
    ) -> Result<SiteWatcher, WatchError> {
        let mut why_inotify = None;
        if source != Source::Inotify {
            match hub.fan_add(Arc::clone(&site), root, Arc::clone(&policy), tx.clone(), Arc::clone(&lost)) {
                Ok(token) => {
                    return Ok(SiteWatcher {
                        root: root.to_path_buf(),
                        hub: Arc::clone(hub),
                        token,
                        inst: None,
                        why_inotify: None,
                        dirs: HashMap::new(),
                    })
                }
                Err(why) => why_inotify = Some(why),
            }
        }
        let (token, inst) = hub.add(site, root, policy, tx, lost)?;
        Ok(SiteWatcher {
            root: root.to_path_buf(),
            hub: Arc::clone(hub),
            token,
            inst: Some(inst),
            why_inotify,
            dirs: HashMap::new(),
        })
    }

    /// `fanotify`, or `inotify` and why (when fanotify was wanted).
    pub fn source(&self) -> (&'static str, Option<&fanotify::Unavailable>) {
        match self.inst {
            None => ("fanotify", None),
            Some(_) => ("inotify", self.why_inotify.as_ref()),
        }
    }

    /// Watches `dir` (relative) and every directory below it that the policy
    /// enters. Returns how many watches were added. A directory that could
    /// not be read is an error: its subtree has no watch.
    ///
    /// `renew`: place every watch again, even where the map already has the
    /// directory with the same inode. For a directory that just appeared:
    /// renamed away and back (`mv x x.tmp; mv x.tmp x`), its directories
    /// keep their inodes, so their watches keep their descriptors, which
    /// must now name the directories by their current paths.
    pub fn watch_tree(&mut self, dir: &[u8], policy: &Policy, renew: bool) -> Result<usize, WatchError> {
        let mut added = 0;
        let mut error = None;
        let failed = crate::scan::walk_dirs(&self.root, dir, policy, |rel, id, fd| {
            if error.is_some() || (!renew && self.dirs.get(rel).is_some_and(|(known, _)| *known == id)) {
                return;
            }
            // fanotify's filesystem mark covers it already: only counted.
            let Some(inst) = &self.inst else {
                self.dirs.insert(rel.to_vec(), (id, None));
                added += 1;
                return;
            };
            // Through the descriptor the walker holds: no path length
            // limit, and no symlink swapped in since the walk looked.
            let by_fd = format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd());
            let placed = match inst.inotify.add_watch(by_fd.as_str(), hub::mask()) {
                Err(Errno::ENOENT) if !Path::new("/proc/self/fd").exists() => {
                    inst.inotify.add_watch(&abs(&self.root, rel), hub::mask())
                }
                other => other,
            };
            match placed {
                Ok(wd) => {
                    inst.dirs.lock().unwrap_or_else(|p| p.into_inner()).insert(wd, rel.to_vec());
                    self.dirs.insert(rel.to_vec(), (id, Some(wd)));
                    added += 1;
                }
                Err(e) => {
                    let path = abs(&self.root, rel);
                    error = Some(match e {
                        Errno::ENOSPC => WatchError::Limit { path },
                        Errno::EMFILE | Errno::ENFILE => WatchError::Descriptors { path },
                        Errno::EACCES | Errno::EPERM => WatchError::Denied { path },
                        _ => WatchError::Other { path, message: e.desc().to_string() },
                    });
                }
            }
        })
        .map_err(|e| WatchError::Other { path: self.root.clone(), message: e.to_string() })?;
        if let Some(e) = error {
            return Err(e);
        }
        if failed > 0 {
            return Err(WatchError::Other {
                path: abs(&self.root, dir),
                message: format!("{failed} directories could not be read (permissions, or too many open files)"),
            });
        }
        Ok(added)
    }

    /// Forgets `dir` and below: nothing is there any more. A directory
    /// renamed away keeps its watch; it is removed here unless its
    /// descriptor was just pointed at a new path (renamed inside the root
    /// and watched there already).
    pub fn forget_tree(&mut self, dir: &[u8]) {
        let mut gone = Vec::new();
        self.dirs.retain(|d, (_, wd)| {
            let under = crate::model::is_under(d, dir);
            if under {
                gone.push((d.clone(), *wd));
            }
            !under
        });
        let Some(inst) = &self.inst else { return };
        let mut wds = inst.dirs.lock().unwrap_or_else(|p| p.into_inner());
        for (d, wd) in gone {
            let Some(wd) = wd else { continue };
            if wds.get(&wd) == Some(&d) {
                wds.remove(&wd);
                // Already gone when the directory was deleted: nothing to do.
                let _ = inst.inotify.rm_watch(wd);
            }
        }
    }

    /// Is this directory watched?
    pub fn watches(&self, dir: &[u8]) -> bool {
        self.dirs.contains_key(dir)
    }

    /// Number of directories watched.
    pub fn count(&self) -> usize {
        self.dirs.len()
    }
}

fn abs(root: &Path, rel: &[u8]) -> PathBuf {
    if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(std::ffi::OsStr::from_bytes(rel))
    }
}
