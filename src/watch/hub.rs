//! The one thread that reads every inotify instance: an epoll set of the
//! sites' instances, drained as they become readable, each event turned
//! into a [`WatchEvent`] by the map of watch descriptors of its site.
//!
//! The kernel mask is exact: only what can change a file or a directory
//! (create, modify, close after writing, attribute change, moves, delete).
//! Opening, reading and closing a file that was only read wake nobody, so
//! page views of a PHP site cost the daemon nothing.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent, WatchDescriptor};
use tokio::sync::mpsc;

use super::fanotify::{Fanotify, Unavailable};
use super::{Op, Source, WatchError, WatchEvent};
use crate::model::{DetectedBy, RelPath};

/// What a directory watch asks the kernel for. No `IN_OPEN`, `IN_ACCESS`
/// or `IN_CLOSE_NOWRITE`: reads are not changes.
pub(super) fn mask() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_ONLYDIR
}

/// One site's inotify instance, shared by its [`SiteWatcher`](super::SiteWatcher)
/// (which adds watches) and the hub thread (which reads events).
pub(super) struct Instance {
    pub(super) inotify: Inotify,
    site: Arc<str>,
    /// The site's canonical root, and its policy (which folders it enters).
    root: std::path::PathBuf,
    policy: Arc<crate::policy::Policy>,
    tx: mpsc::Sender<WatchEvent>,
    lost: Arc<AtomicBool>,
    /// Watch descriptor → the directory (relative) it watches now. A
    /// directory renamed inside the root keeps its descriptor; watching it
    /// again by its new path points the descriptor there.
    pub(super) dirs: Mutex<HashMap<WatchDescriptor, RelPath>>,
}

impl Instance {
    fn send(&self, ev: WatchEvent) {
        if self.tx.try_send(ev).is_err() {
            // Full (or closed at shutdown): remember to rescan instead.
            self.lost.store(true, Ordering::Release);
        }
    }

    fn dirs(&self) -> std::sync::MutexGuard<'_, HashMap<WatchDescriptor, RelPath>> {
        self.dirs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn handle(&self, ev: InotifyEvent) {
        let m = ev.mask;
        if m.contains(AddWatchFlags::IN_Q_OVERFLOW) {
            self.send(WatchEvent::Rescan { site: Arc::clone(&self.site), reason: "inotify queue overflow".into() });
            return;
        }
        if m.contains(AddWatchFlags::IN_IGNORED) {
            // The directory is gone (or unwatched): its descriptor may be
            // reused by the kernel for another directory.
            self.dirs().remove(&ev.wd);
            return;
        }
        // Events about a watched directory itself also come, with its
        // name, from its parent's watch.
        let Some(name) = ev.name else { return };
        let Some(dir) = self.dirs().get(&ev.wd).cloned() else { return };
        let op = if m.intersects(AddWatchFlags::IN_DELETE | AddWatchFlags::IN_MOVED_FROM) {
            Op::Gone
        } else if m.intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO) {
            Op::Created
        } else if m.contains(AddWatchFlags::IN_CLOSE_WRITE) {
            Op::Closed
        } else if m.contains(AddWatchFlags::IN_MODIFY) {
            Op::Written
        } else {
            Op::Attrib
        };
        let rel = crate::scan::walk::join(&dir, name.as_bytes());
        crate::util::fault::point("inotify", &rel);
        let is_dir = m.contains(AddWatchFlags::IN_ISDIR);
        if !is_dir && op.ignorable(&self.policy, &self.root, &rel) {
            return;
        }
        let new_dir = is_dir && op == Op::Created;
        self.send(WatchEvent::Path {
            site: Arc::clone(&self.site),
            rel: rel.clone(),
            by: DetectedBy::Realtime,
            op,
            actor: None,
        });
        if new_dir {
            self.watch_early(rel);
        }
    }

    /// A directory just appeared: watched here and now, with the folders
    /// below it, and what they hold already reported. An unpacked archive
    /// creates and fills its folders in microseconds, and may remove them
    /// a second later; waiting for a worker to place the watches would
    /// miss the files written before them (the worker's own walk of the
    /// folder finds nothing once it is gone). At most [`EARLY_ENTRIES`]
    /// entries per new directory; the worker's walk does the rest.
    fn watch_early(&self, top: RelPath) {
        let mut stack = vec![top];
        let mut budget = EARLY_ENTRIES;
        while let Some(dir) = stack.pop() {
            if !self.policy.descend(&dir) {
                continue;
            }
            let path = self.root.join(std::ffi::OsStr::from_bytes(&dir));
            // Never through a symlink swapped in for the folder.
            let Ok(wd) = self.inotify.add_watch(&path, mask() | AddWatchFlags::IN_DONT_FOLLOW) else { continue };
            self.dirs().insert(wd, dir.clone());
            let Ok(entries) = std::fs::read_dir(&path) else { continue };
            for e in entries.flatten() {
                if budget == 0 {
                    return;
                }
                budget -= 1;
                let rel = crate::scan::walk::join(&dir, e.file_name().as_bytes());
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(rel.clone());
                }
                let (site, by, actor) = (Arc::clone(&self.site), DetectedBy::Realtime, None);
                self.send(WatchEvent::Path { site, rel, by, op: Op::Created, actor });
            }
        }
    }
}

/// Entries a new directory's early watch reports (see [`Instance::watch_early`]).
const EARLY_ENTRIES: usize = 10_000;

/// The epoll token of the fanotify group (inotify instances count from 1).
const FANOTIFY: u64 = 0;
/// How long one round of reading the kernel's events may take before the
/// watchdog calls the reader hung.
const READER_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The epoll set and its reading thread.
pub struct Hub {
    epoll: Epoll,
    /// The fanotify group, or why there is none.
    fan: Result<Fanotify, Unavailable>,
    instances: Mutex<HashMap<u64, Arc<Instance>>>,
    next: AtomicU64,
    stop: AtomicBool,
    /// Kernel events read since start (for `status` and the benchmarks).
    events: AtomicU64,
}

impl Hub {
    /// A hub with no instance yet; [`Hub::serve`] runs its reading loop.
    /// With `source` other than inotify, it makes a fanotify group if the
    /// system allows.
    /// `own`: the daemon's own writes (fanotify drops their events).
    pub fn new(source: Source, own: Arc<super::own::OwnWrites>) -> Result<Arc<Hub>, WatchError> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| WatchError::Instance(e.to_string()))?;
        let fan = match source {
            Source::Inotify => Err(Unavailable::NotAsked),
            _ => Fanotify::new(own),
        };
        if let Ok(f) = &fan {
            epoll
                .add(f.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, FANOTIFY))
                .map_err(|e| WatchError::Instance(e.desc().to_string()))?;
        }
        Ok(Arc::new(Hub {
            epoll,
            fan,
            instances: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            stop: AtomicBool::new(false),
            events: AtomicU64::new(0),
        }))
    }

    fn instances(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Instance>>> {
        self.instances.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new inotify instance for site `site`, read by this hub; returns
    /// its token (for [`Hub::remove`]) and the instance.
    pub(super) fn add(
        &self,
        site: Arc<str>,
        root: &std::path::Path,
        policy: Arc<crate::policy::Policy>,
        tx: mpsc::Sender<WatchEvent>,
        lost: Arc<AtomicBool>,
    ) -> Result<(u64, Arc<Instance>), WatchError> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(|e| WatchError::Instance(e.desc().to_string()))?;
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let root = root.to_path_buf();
        let inst = Arc::new(Instance { inotify, site, root, policy, tx, lost, dirs: Mutex::new(HashMap::new()) });
        self.instances().insert(token, Arc::clone(&inst));
        if let Err(e) = self.epoll.add(inst.inotify.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, token)) {
            self.instances().remove(&token);
            return Err(WatchError::Instance(e.desc().to_string()));
        }
        Ok((token, inst))
    }

    /// Has the fanotify source report for site `site` rooted at `root`;
    /// its token, or why it cannot.
    pub(super) fn fan_add(
        &self,
        site: Arc<str>,
        root: &std::path::Path,
        policy: Arc<crate::policy::Policy>,
        tx: mpsc::Sender<WatchEvent>,
        lost: Arc<AtomicBool>,
    ) -> Result<u64, Unavailable> {
        let fan = self.fan.as_ref().map_err(Clone::clone)?;
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        fan.add(token, site, root, policy, tx, lost).map_err(|e| Unavailable::Mark(Arc::new(e)))?;
        Ok(token)
    }

    /// Stops the fanotify source's reports for `token`.
    pub(super) fn fan_remove(&self, token: u64) {
        if let Ok(f) = &self.fan {
            f.remove(token);
        }
    }

    /// Stops reading the instance of `token` (closed when its last user
    /// drops it).
    pub(super) fn remove(&self, token: u64) {
        if let Some(inst) = self.instances().remove(&token) {
            let _ = self.epoll.delete(inst.inotify.as_fd());
        }
    }

    /// Kernel events read so far.
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    /// Makes [`Hub::serve`] return (within its poll interval).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// The reading loop, until [`Hub::stop`]. An error of epoll itself is
    /// fatal: the thread's death stops the daemon, which must not run blind.
    pub fn serve(&self, pulse: &crate::util::supervise::Pulse) -> Result<(), String> {
        // Wake first: the writer of an event is read from /proc while it
        // may be exiting (a shell that wrote one file and quit).
        // Safety: a plain system call on this thread.
        unsafe {
            nix::libc::setpriority(nix::libc::PRIO_PROCESS, nix::libc::gettid() as nix::libc::id_t, -10);
        }
        let mut ready = [EpollEvent::empty(); 64];
        let mut buf = vec![0u8; 64 * 1024];
        while !self.stop.load(Ordering::Acquire) {
            pulse.idle();
            let n = match self.epoll.wait(&mut ready, 200u16) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(format!("epoll_wait: {}", e.desc())),
            };
            // Reading and handing on what the kernel said takes milliseconds;
            // far longer is a reader stuck (on /proc, on a full queue).
            pulse.busy(crate::util::fault::limit(READER_LIMIT));
            for r in &ready[..n] {
                if r.data() == FANOTIFY {
                    if let Ok(f) = &self.fan {
                        self.events.fetch_add(f.drain(&mut buf), Ordering::Relaxed);
                    }
                    continue;
                }
                let Some(inst) = self.instances().get(&r.data()).cloned() else { continue };
                self.drain(&inst);
            }
        }
        Ok(())
    }

    fn drain(&self, inst: &Instance) {
        loop {
            match inst.inotify.read_events() {
                Ok(events) if events.is_empty() => return,
                Ok(events) => {
                    self.events.fetch_add(events.len() as u64, Ordering::Relaxed);
                    for ev in events {
                        inst.handle(ev);
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return,
                Err(e) => {
                    inst.send(WatchEvent::Rescan {
                        site: Arc::clone(&inst.site),
                        reason: format!("reading inotify events: {}", e.desc()),
                    });
                    return;
                }
            }
        }
    }
}
