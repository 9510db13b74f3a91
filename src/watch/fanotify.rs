//! The fanotify source: one fanotify group with a filesystem mark on each
//! filesystem that holds a site root, reporting directory handles and
//! names (`FAN_REPORT_DFID_NAME`) and a pidfd of the writer
//! (`FAN_REPORT_PIDFD`). No per-directory watch: nothing to run out of, no
//! race on a new directory, and every event names its writer.
//!
//! A thin layer over the system calls of our own. nix's fanotify reads the
//! legacy format only (an open descriptor per event, no info records);
//! `fanotify-fid` (0.2) parses FID records but is young, brings its own
//! error and mount-table model, and would be a dependency for what is here
//! about 150 lines: a few fixed structs, parsed with bounds checks, which
//! the malformed-buffer test below feeds truncated and lying records. Moves are taken as the
//! `FAN_MOVED_FROM`/`FAN_MOVED_TO` pair (one path each, as inotify gives
//! them), which every kernel with names has; `FAN_RENAME` (5.17) would
//! carry both in one event and adds nothing the daemon uses.
//!
//! Events are filtered to the site roots in user space: a directory handle
//! is resolved to a path once (`open_by_handle_at` through a descriptor of
//! the filesystem, then its `/proc/self/fd` link) and cached, so writes
//! elsewhere on the filesystem (a database, logs) cost a hash lookup. A
//! directory renamed or removed anywhere empties the cache, since paths
//! below it changed.

use std::collections::HashMap;
use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::libc;
use tokio::sync::mpsc;

use super::{Op, WatchError, WatchEvent};
use crate::model::Actor;
use crate::model::{DetectedBy, RelPath};
use crate::policy::Policy;

/// What the filesystem marks ask for: what changes a file or a directory.
const MASK: u64 = libc::FAN_CREATE
    | libc::FAN_MODIFY
    | libc::FAN_CLOSE_WRITE
    | libc::FAN_ATTRIB
    | libc::FAN_MOVED_FROM
    | libc::FAN_MOVED_TO
    | libc::FAN_DELETE
    | libc::FAN_ONDIR;
/// Resolved directory handles kept; the cache is emptied when full.
const CACHE: usize = 65_536;
/// A directory outside every site with this many events in one second is
/// silenced in the kernel (an ignore mark): a database or a log writing
/// there costs the daemon nothing more.
const BUSY: u32 = 32;
/// At most this many ignore marks (each is a kernel mark of the user's).
const MAX_IGNORED: usize = 4096;

/// A site the fanotify source reports for.
struct Site {
    token: u64,
    name: Arc<str>,
    /// The canonical root, as bytes, without a trailing slash.
    root: Vec<u8>,
    policy: Arc<Policy>,
    tx: mpsc::Sender<WatchEvent>,
    lost: Arc<AtomicBool>,
    dev: u64,
    /// The root's inode: where a walk up from a directory too deep for
    /// `/proc` to name stops.
    ino: u64,
}

/// Where a resolved directory lies: the index of its site in `sites` and
/// its path relative to the root; `None`: in no site.
type Place = Option<(u64, RelPath)>;

/// Why a site is not on the fanotify source (it is on inotify instead).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unavailable {
    /// `realtime.source: inotify`.
    #[error("realtime.source is inotify")]
    NotAsked,
    /// Not root (no `CAP_SYS_ADMIN`).
    #[error("fanotify needs CAP_SYS_ADMIN")]
    Privilege,
    /// A kernel before 5.9.
    #[error("this kernel's fanotify cannot report names (needs Linux 5.9)")]
    NoNames,
    /// A kernel built without it.
    #[error("this kernel has no fanotify")]
    NoKernel,
    /// Another `fanotify_init` failure.
    #[error("fanotify_init: {}", .0.desc())]
    Init(Errno),
    /// The site's filesystem could not be marked.
    #[error(transparent)]
    Mark(Arc<WatchError>),
}

/// The fanotify group and the sites it serves.
pub struct Fanotify {
    fd: OwnedFd,
    state: Mutex<State>,
    own_pid: i32,
    /// The daemon's own writes (the quarantine's): their events are dropped.
    own: Arc<super::own::OwnWrites>,
}

#[derive(Default)]
struct State {
    sites: Vec<Site>,
    /// A descriptor on each marked filesystem, by device, for
    /// `open_by_handle_at`, and how many sites are on it.
    filesystems: HashMap<u64, (OwnedFd, usize)>,
    /// Filesystem id (from events) → device.
    fsids: HashMap<[i32; 2], u64>,
    /// (fsid, handle type, handle bytes) → where that directory lies.
    cache: HashMap<Vec<u8>, Place>,
    /// Events this second of directories outside the sites, by handle.
    busy: HashMap<Vec<u8>, u32>,
    busy_since: Option<std::time::Instant>,
    /// Directories silenced with an ignore mark: (device, inode) → an
    /// O_PATH descriptor (to take the mark away if one is moved into a site).
    ignored: HashMap<(u64, u64), OwnedFd>,
    /// Writers read lately, by pid: a storm of one writer reads /proc once
    /// a second, not once per file.
    actors: HashMap<i32, (Arc<Actor>, std::time::Instant)>,
}

impl Fanotify {
    /// A fanotify group, if this kernel and these privileges allow one
    /// (kernel 5.9 for directory handles with names, `CAP_SYS_ADMIN`).
    /// `own`: the daemon's own writes, whose events are dropped.
    pub fn new(own: Arc<super::own::OwnWrites>) -> Result<Fanotify, Unavailable> {
        let flags = libc::FAN_CLASS_NOTIF
            | libc::FAN_CLOEXEC
            | libc::FAN_NONBLOCK
            | libc::FAN_REPORT_DFID_NAME
            | libc::FAN_REPORT_PIDFD;
        let event_flags = (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC) as libc::c_uint;
        // Safety: plain system call; the result is a new descriptor we own.
        let mut fd = unsafe { libc::fanotify_init(flags, event_flags) };
        if fd < 0 && Errno::last() == Errno::EINVAL {
            // Before 5.15: no pidfd; the pid is read at event time instead.
            // Safety: as above.
            fd = unsafe { libc::fanotify_init(flags & !libc::FAN_REPORT_PIDFD, event_flags) };
        }
        if fd < 0 {
            return Err(match Errno::last() {
                Errno::EPERM => Unavailable::Privilege,
                Errno::EINVAL => Unavailable::NoNames,
                Errno::ENOSYS => Unavailable::NoKernel,
                e => Unavailable::Init(e),
            });
        }
        // Safety: `fd` was just returned by fanotify_init and is ours.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Fanotify { fd, state: Mutex::new(State::default()), own_pid: std::process::id() as i32, own })
    }

    /// The group's descriptor (for epoll).
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reports changes below `root` (canonical) to `tx` from now on. Fails
    /// when the filesystem cannot be marked (FUSE, overlay, a btrfs
    /// subvolume, ...): the site is then watched with inotify.
    pub fn add(
        &self,
        token: u64,
        name: Arc<str>,
        root: &Path,
        policy: Arc<Policy>,
        tx: mpsc::Sender<WatchEvent>,
        lost: Arc<AtomicBool>,
    ) -> Result<(), WatchError> {
        let other = |message: String| WatchError::Other { path: root.to_path_buf(), message };
        // Not O_PATH: open_by_handle_at refuses those as its mount descriptor.
        let dir = nix::fcntl::open(
            root,
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| other(format!("cannot open the root: {}", e.desc())))?;
        let root_stat = nix::sys::stat::fstat(&dir).map_err(|e| other(e.desc().to_string()))?;
        let (dev, ino) = (root_stat.st_dev, root_stat.st_ino);
        let fsid = fsid_of(dir.as_fd()).map_err(|e| other(format!("statfs: {}", e.desc())))?;
        let mut st = self.state();
        if let Some((_, n)) = st.filesystems.get_mut(&dev) {
            *n += 1;
        } else {
            self.mark(libc::FAN_MARK_ADD, root).map_err(|e| {
                other(match e {
                    Errno::ENODEV | Errno::EXDEV | Errno::EOPNOTSUPP => {
                        "fanotify cannot mark this filesystem (FUSE, overlay, a btrfs subvolume, ...)".to_string()
                    }
                    e => format!("fanotify_mark: {}", e.desc()),
                })
            })?;
            st.filesystems.insert(dev, (dir, 1));
            st.fsids.insert(fsid, dev);
        }
        let mut root = root.as_os_str().as_bytes().to_vec();
        while root.len() > 1 && root.last() == Some(&b'/') {
            root.pop();
        }
        st.sites.push(Site { token, name, root, policy, tx, lost, dev, ino });
        st.cache.clear();
        // A directory silenced while outside every site may be in this one.
        for (_, fd) in std::mem::take(&mut st.ignored) {
            self.unmark_ignored(&fd);
        }
        Ok(())
    }

    /// Stops reporting for `token`; the last site of a filesystem takes its
    /// mark away.
    pub fn remove(&self, token: u64) {
        let mut st = self.state();
        let Some(i) = st.sites.iter().position(|s| s.token == token) else { return };
        let site = st.sites.remove(i);
        st.cache.clear();
        let last = match st.filesystems.get_mut(&site.dev) {
            Some((_, n)) => {
                *n -= 1;
                *n == 0
            }
            None => false,
        };
        if last {
            if let Some((dir, _)) = st.filesystems.remove(&site.dev) {
                let path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
                let _ = self.mark(libc::FAN_MARK_REMOVE, &path);
            }
            st.fsids.retain(|_, d| *d != site.dev);
        }
    }

    /// The writer `pid`, from the last second's readings when the pidfd
    /// says the same process still lives (a pid is not reused while its
    /// process exists), else read now.
    fn actor(
        &self,
        cache: &mut HashMap<i32, (Arc<Actor>, std::time::Instant)>,
        pid: i32,
        pidfd: Option<BorrowedFd<'_>>,
    ) -> Arc<Actor> {
        let now = std::time::Instant::now();
        let fresh = std::time::Duration::from_secs(if pidfd.is_some() { 1 } else { 0 });
        if let Some((a, at)) = cache.get(&pid) {
            if now.duration_since(*at) < fresh && a.named() && pidfd.is_some_and(super::actor::alive) {
                return Arc::clone(a);
            }
        }
        let a = Arc::new(Actor::of(pid, pidfd));
        if cache.len() >= 256 {
            cache.clear();
        }
        cache.insert(pid, (Arc::clone(&a), now));
        a
    }

    /// Counts an event of a directory outside every site; a busy one gets
    /// an ignore mark, so the kernel drops its events before they are
    /// queued (FAN_MARK_IGNORE, Linux 6.0; before, the ignored mask, which
    /// covers writes, the bulk of such events).
    fn maybe_silence(&self, st: &mut State, key: &[u8], fsid: [i32; 2], handle_type: i32, handle: &[u8]) {
        let now = std::time::Instant::now();
        if st.busy_since.is_none_or(|t| now.duration_since(t) >= std::time::Duration::from_secs(1)) {
            st.busy.clear();
            st.busy_since = Some(now);
        }
        if st.busy.len() >= CACHE {
            return;
        }
        let n = st.busy.entry(key.to_vec()).or_insert(0);
        *n += 1;
        if *n != BUSY || st.ignored.len() >= MAX_IGNORED {
            return;
        }
        let Some(dev) = st.fsids.get(&fsid).copied() else { return };
        let Some((mount, _)) = st.filesystems.get(&dev) else { return };
        let Ok(dir) = open_by_handle(mount.as_fd(), handle_type, handle) else { return };
        let Ok(id) = nix::sys::stat::fstat(&dir).map(|s| (s.st_dev, s.st_ino)) else { return };
        if st.ignored.contains_key(&id) {
            return;
        }
        let path = format!("/proc/self/fd/{}", dir.as_raw_fd());
        let modern = libc::FAN_MARK_ADD | libc::FAN_MARK_IGNORE_SURV;
        let ok = self.mark_path(modern, MASK | libc::FAN_EVENT_ON_CHILD, &path).is_ok()
            || self
                .mark_path(
                    libc::FAN_MARK_ADD | libc::FAN_MARK_IGNORED_MASK | libc::FAN_MARK_IGNORED_SURV_MODIFY,
                    libc::FAN_MODIFY | libc::FAN_CLOSE_WRITE | libc::FAN_ATTRIB | libc::FAN_EVENT_ON_CHILD,
                    &path,
                )
                .is_ok();
        if ok {
            st.ignored.insert(id, dir);
        }
    }

    /// Takes the ignore marks away from `dir` (in a site now) and every
    /// directory below it.
    fn unsilence_tree(&self, ignored: &mut HashMap<(u64, u64), OwnedFd>, dir: &Path) {
        let mut stack = vec![dir.to_path_buf()];
        let mut seen = 0;
        while let Some(d) = stack.pop() {
            seen += 1;
            if seen > 100_000 {
                break;
            }
            let Ok(meta) = std::fs::symlink_metadata(&d) else { continue };
            if !meta.is_dir() {
                continue;
            }
            use std::os::unix::fs::MetadataExt;
            if let Some(fd) = ignored.remove(&(meta.dev(), meta.ino())) {
                self.unmark_ignored(&fd);
            }
            if let Ok(entries) = std::fs::read_dir(&d) {
                stack.extend(entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()));
            }
        }
    }

    fn unmark_ignored(&self, fd: &OwnedFd) {
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let _ =
            self.mark_path(libc::FAN_MARK_REMOVE | libc::FAN_MARK_IGNORE_SURV, MASK | libc::FAN_EVENT_ON_CHILD, &path);
        let _ = self.mark_path(
            libc::FAN_MARK_REMOVE | libc::FAN_MARK_IGNORED_MASK,
            libc::FAN_MODIFY | libc::FAN_CLOSE_WRITE | libc::FAN_ATTRIB | libc::FAN_EVENT_ON_CHILD,
            &path,
        );
    }

    /// An inode mark on `path` (a directory).
    fn mark_path(&self, flags: libc::c_uint, mask: u64, path: &str) -> Result<(), Errno> {
        let c = std::ffi::CString::new(path).map_err(|_| Errno::EINVAL)?;
        // Safety: valid descriptor, NUL-terminated path that outlives the call.
        let r = unsafe { libc::fanotify_mark(self.fd.as_raw_fd(), flags, mask, libc::AT_FDCWD, c.as_ptr()) };
        Errno::result(r).map(drop)
    }

    fn mark(&self, op: libc::c_uint, path: &Path) -> Result<(), Errno> {
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
        // Safety: valid descriptor, NUL-terminated path that outlives the call.
        let r = unsafe {
            libc::fanotify_mark(self.fd.as_raw_fd(), op | libc::FAN_MARK_FILESYSTEM, MASK, libc::AT_FDCWD, c.as_ptr())
        };
        Errno::result(r).map(drop)
    }

    /// Reads and dispatches every queued event; returns how many were read.
    pub fn drain(&self, buf: &mut [u8]) -> u64 {
        let mut n = 0;
        loop {
            // Safety: `buf` is valid for its length; the kernel writes whole events.
            let len = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if len < 0 {
                match Errno::last() {
                    Errno::EINTR => continue,
                    Errno::EAGAIN => return n,
                    e => {
                        self.lost_all(&format!("reading fanotify events: {}", e.desc()));
                        return n;
                    }
                }
            }
            if len == 0 {
                return n;
            }
            let mut at = 0;
            let len = len as usize;
            while let Some(ev) = parse(&buf[at..len]) {
                at += ev.len;
                n += 1;
                self.handle(&ev);
            }
        }
    }

    /// An event in a directory that could not be placed: every site on its
    /// filesystem is scanned (the daemon says why; rescans asked for while
    /// one runs are one more).
    fn unplaced(st: &State, fsid: [i32; 2], why: &str) {
        let dev = st.fsids.get(&fsid).copied();
        for s in st.sites.iter().filter(|s| dev.is_none_or(|d| d == s.dev)) {
            let reason = format!("an event in a directory that could not be placed ({why})");
            if s.tx.try_send(WatchEvent::Rescan { site: Arc::clone(&s.name), reason }).is_err() {
                s.lost.store(true, Ordering::Release);
            }
        }
    }

    fn lost_all(&self, reason: &str) {
        for s in &self.state().sites {
            let ev = WatchEvent::Rescan { site: Arc::clone(&s.name), reason: reason.to_string() };
            if s.tx.try_send(ev).is_err() {
                s.lost.store(true, Ordering::Release);
            }
        }
    }

    fn handle(&self, ev: &Event<'_>) {
        // Our own writes (the quarantine putting a file back) are ours.
        let pidfd = ev.pidfd.filter(|&fd| fd >= 0).map(|fd| {
            // Safety: the kernel gave us this descriptor with the event.
            unsafe { OwnedFd::from_raw_fd(fd) }
        });
        if ev.mask & libc::FAN_Q_OVERFLOW != 0 {
            self.lost_all("fanotify queue overflow");
            return;
        }
        let Some((dir_key, fsid, handle_type, handle, name)) = ev.dir.as_ref().map(|d| d.parts()) else { return };
        let ondir = ev.mask & libc::FAN_ONDIR != 0;
        let moved = ev.mask & (libc::FAN_MOVED_FROM | libc::FAN_MOVED_TO | libc::FAN_DELETE) != 0;
        let mut st = self.state();
        let place = match st.cache.get(dir_key) {
            Some(p) => p.clone(),
            None => match resolve(&st, fsid, handle_type, handle) {
                Ok(p) => {
                    if st.cache.len() >= CACHE {
                        st.cache.clear();
                    }
                    st.cache.insert(dir_key.to_vec(), p.clone());
                    p
                }
                Err(why) => {
                    // Never silenced, never dropped unsaid: the sites it
                    // could be in are scanned.
                    Self::unplaced(&st, fsid, &why);
                    return;
                }
            },
        };
        if ondir && moved {
            // Paths below a renamed or removed directory changed.
            st.cache.clear();
        }
        let Some((token, dir)) = place else {
            self.maybe_silence(&mut st, dir_key, fsid, handle_type, handle);
            return;
        };
        let Some(si) = st.sites.iter().position(|s| s.token == token) else { return };
        if !st.sites[si].policy.descend(&dir) {
            return;
        }
        let rel = if name.is_empty() { dir } else { crate::scan::walk::join(&dir, name) };
        if rel.is_empty() {
            return;
        }
        // An ignored file costs nothing more (no writer looked up, nothing
        // queued). The kernel merges the events of one name: one that was
        // also removed or moved away is kept.
        let op = if ev.mask & (libc::FAN_DELETE | libc::FAN_MOVED_FROM) != 0 {
            Op::Gone
        } else if ev.mask & (libc::FAN_CREATE | libc::FAN_MOVED_TO | libc::FAN_ATTRIB) != 0 {
            Op::Created
        } else {
            Op::Written
        };
        if !ondir && !name.is_empty() {
            let root = Path::new(std::ffi::OsStr::from_bytes(&st.sites[si].root));
            if op.ignorable(&st.sites[si].policy, root, &rel) {
                return;
            }
        }
        // A directory moved or made in a site may carry an ignore mark from
        // its life outside: take it away (and from what is below it).
        if ondir && ev.mask & (libc::FAN_MOVED_TO | libc::FAN_CREATE) != 0 && !st.ignored.is_empty() {
            let abs = crate::model::absolute(Path::new(std::ffi::OsStr::from_bytes(&st.sites[si].root)), &rel);
            let State { ignored, .. } = &mut *st;
            self.unsilence_tree(ignored, Path::new(std::ffi::OsStr::from_bytes(&abs)));
        }
        let site = &st.sites[si];
        // The quarantine's own restore or removal: ours, not news.
        if ev.pid == self.own_pid
            && self.own.is_ours(&crate::model::absolute(Path::new(std::ffi::OsStr::from_bytes(&site.root)), &rel), name)
        {
            return;
        }
        // The kernel merges events of one name and writer in its queue
        // (create, writes and close in one): replayed in their order, so a
        // closed file still takes the fast path.
        let m = ev.mask;
        let ops = [
            (libc::FAN_CREATE | libc::FAN_MOVED_TO, Op::Created),
            (libc::FAN_MODIFY, Op::Written),
            (libc::FAN_ATTRIB, Op::Attrib),
            (libc::FAN_CLOSE_WRITE, Op::Closed),
            (libc::FAN_DELETE | libc::FAN_MOVED_FROM, Op::Gone),
        ];
        crate::util::fault::point("inotify", &rel);
        let State { sites, actors, .. } = &mut *st;
        let site = &sites[si];
        let actor = self.actor(actors, ev.pid, pidfd.as_ref().map(|f| f.as_fd()));
        for (_, op) in ops.iter().filter(|(bits, _)| m & bits != 0) {
            let out = WatchEvent::Path {
                site: Arc::clone(&site.name),
                rel: rel.clone(),
                by: DetectedBy::Realtime,
                op: *op,
                actor: Some(Arc::clone(&actor)),
            };
            if site.tx.try_send(out).is_err() {
                site.lost.store(true, Ordering::Release);
            }
        }
    }
}

/// The path of a directory handle, placed in a site (or in none: on a
/// filesystem no site is on, or gone since the event). `Err`: it could not
/// be placed, and why.
fn resolve(st: &State, fsid: [i32; 2], handle_type: i32, handle: &[u8]) -> Result<Place, String> {
    let Some(dev) = st.fsids.get(&fsid) else { return Ok(None) };
    let Some((mount, _)) = st.filesystems.get(dev) else { return Ok(None) };
    let dir = match open_by_handle(mount.as_fd(), handle_type, handle) {
        Ok(dir) => dir,
        // Removed since: what was in it is gone too.
        Err(Errno::ESTALE | Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(format!("open_by_handle_at: {}", e.desc())),
    };
    let path = match std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd())) {
        Ok(path) => path,
        // Longer than /proc names a path (a page): walked up instead.
        Err(e) if e.raw_os_error() == Some(libc::ENAMETOOLONG) => return place_by_walk(st, *dev, dir),
        Err(e) => return Err(format!("reading its path: {e}")),
    };
    let path = path.as_os_str().as_bytes();
    // Longest root first: nested sites belong to the inner one.
    Ok(st
        .sites
        .iter()
        .filter(|s| s.dev == *dev && crate::model::is_under(path, &s.root))
        .max_by_key(|s| s.root.len())
        .map(|s| (s.token, path[s.root.len()..].strip_prefix(b"/").unwrap_or(&[]).to_vec())))
}

/// Levels a walk up from a directory goes at most (a path of 1 MiB in
/// names of one byte).
const WALK_UP: usize = 1 << 19;

/// The place of directory `dir`, whose path is too long for `/proc` to
/// name: found by walking up `..`, one name at a time (each looked up in
/// its parent by inode), to the nearest site root on `dev`.
fn place_by_walk(st: &State, dev: u64, mut dir: OwnedFd) -> Result<Place, String> {
    use nix::fcntl::OFlag;
    let failed = |what: &str, e: Errno| format!("walking up a deep directory: {what}: {}", e.desc());
    let mut names: Vec<Vec<u8>> = Vec::new();
    for _ in 0..WALK_UP {
        let here = nix::sys::stat::fstat(&dir).map_err(|e| failed("fstat", e))?;
        if let Some(site) = st.sites.iter().find(|s| s.dev == dev && s.ino == here.st_ino) {
            names.reverse();
            return Ok(Some((site.token, names.join(&b'/'))));
        }
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let parent =
            nix::fcntl::openat(&dir, "..", flags, nix::sys::stat::Mode::empty()).map_err(|e| failed("..", e))?;
        let up = nix::sys::stat::fstat(&parent).map_err(|e| failed("fstat", e))?;
        // The top of the filesystem, or of the tree: in no site.
        if up.st_dev != dev || up.st_ino == here.st_ino {
            return Ok(None);
        }
        names.push(name_in(&parent, here.st_ino).map_err(|e| failed("reading a parent", e))?);
        dir = parent;
    }
    Err("walking up a deep directory: too many levels".to_string())
}

/// The name of the directory with inode `ino` in directory `parent`.
fn name_in(parent: &OwnedFd, ino: u64) -> Result<Vec<u8>, Errno> {
    let fd = nix::unistd::dup(parent)?;
    let mut d = nix::dir::Dir::from_fd(fd)?;
    for entry in d.iter() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if entry.ino() == ino && name != b"." && name != b".." {
            return Ok(name.to_vec());
        }
    }
    Err(Errno::ENOENT)
}

fn open_by_handle(mount: BorrowedFd<'_>, handle_type: i32, handle: &[u8]) -> Result<OwnedFd, Errno> {
    // struct file_handle: u32 handle_bytes, i32 handle_type, then the bytes.
    let mut raw = Vec::with_capacity(8 + handle.len());
    raw.extend_from_slice(&(handle.len() as u32).to_ne_bytes());
    raw.extend_from_slice(&handle_type.to_ne_bytes());
    raw.extend_from_slice(handle);
    // u32 alignment for the struct.
    let mut aligned = vec![0u32; raw.len().div_ceil(4)];
    // Safety: `aligned` holds at least raw.len() bytes.
    unsafe { std::ptr::copy_nonoverlapping(raw.as_ptr(), aligned.as_mut_ptr().cast::<u8>(), raw.len()) };
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
    // Safety: a well-formed file_handle in `aligned`; the result is a new descriptor.
    let fd = unsafe { libc::open_by_handle_at(mount.as_raw_fd(), aligned.as_mut_ptr().cast(), flags) };
    Errno::result(fd).map(|fd| {
        // Safety: just returned by open_by_handle_at.
        unsafe { OwnedFd::from_raw_fd(fd) }
    })
}

fn fsid_of(fd: BorrowedFd<'_>) -> Result<[i32; 2], Errno> {
    let mut buf = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // Safety: `buf` is a valid statfs to fill.
    let r = unsafe { libc::fstatfs(fd.as_raw_fd(), buf.as_mut_ptr()) };
    Errno::result(r)?;
    // Safety: filled by a successful fstatfs.
    let st = unsafe { buf.assume_init() };
    // fsid_t is two ints, as the kernel puts them in events.
    // Safety: fsid_t is plain data of 8 bytes.
    Ok(unsafe { std::mem::transmute::<libc::fsid_t, [i32; 2]>(st.f_fsid) })
}

/// One event, as read.
struct Event<'a> {
    len: usize,
    mask: u64,
    pid: i32,
    dir: Option<DirName<'a>>,
    pidfd: Option<RawFd>,
}

/// A directory handle and a name (`FAN_EVENT_INFO_TYPE_DFID_NAME`).
struct DirName<'a> {
    /// fsid, handle type and handle bytes: the cache key.
    key: &'a [u8],
    name: &'a [u8],
}

impl<'a> DirName<'a> {
    fn parts(&self) -> (&'a [u8], [i32; 2], i32, &'a [u8], &'a [u8]) {
        let k = self.key;
        let fsid = [
            i32::from_ne_bytes(k[0..4].try_into().unwrap_or_default()),
            i32::from_ne_bytes(k[4..8].try_into().unwrap_or_default()),
        ];
        let handle_type = i32::from_ne_bytes(k[12..16].try_into().unwrap_or_default());
        (k, fsid, handle_type, &k[16..], self.name)
    }
}

/// Parses the event at the start of `b`; `None` when no whole event is
/// there (a short or malformed buffer ends the batch).
fn parse(b: &[u8]) -> Option<Event<'_>> {
    let meta_size = std::mem::size_of::<libc::fanotify_event_metadata>();
    if b.len() < meta_size {
        return None;
    }
    let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap_or_default());
    let event_len = u32_at(0) as usize;
    let metadata_len = u16::from_ne_bytes([b[6], b[7]]) as usize;
    if event_len < meta_size || event_len > b.len() || metadata_len < meta_size || metadata_len > event_len {
        return None;
    }
    let mask = u64::from_ne_bytes(b[8..16].try_into().unwrap_or_default());
    let pid = u32_at(20) as i32;
    let mut ev = Event { len: event_len, mask, pid, dir: None, pidfd: None };
    let mut at = metadata_len;
    while at + 4 <= event_len {
        let info_type = b[at];
        let info_len = u16::from_ne_bytes([b[at + 2], b[at + 3]]) as usize;
        if info_len < 4 || at + info_len > event_len {
            break;
        }
        let info = &b[at + 4..at + info_len];
        match info_type {
            // fsid (8), handle_bytes (4), handle_type (4), handle, [name NUL].
            libc::FAN_EVENT_INFO_TYPE_DFID_NAME | libc::FAN_EVENT_INFO_TYPE_DFID if info.len() >= 16 => {
                let handle_bytes = u32::from_ne_bytes(info[8..12].try_into().unwrap_or_default()) as usize;
                if 16 + handle_bytes <= info.len() {
                    let key = &info[..16 + handle_bytes];
                    let rest = &info[16 + handle_bytes..];
                    let name = if info_type == libc::FAN_EVENT_INFO_TYPE_DFID_NAME {
                        CStr::from_bytes_until_nul(rest).map(CStr::to_bytes).unwrap_or(&[])
                    } else {
                        &[]
                    };
                    // "." names the directory itself.
                    let name = if name == b"." { &[][..] } else { name };
                    ev.dir = Some(DirName { key, name });
                }
            }
            libc::FAN_EVENT_INFO_TYPE_PIDFD if info.len() >= 4 => {
                ev.pidfd = Some(i32::from_ne_bytes(info[0..4].try_into().unwrap_or_default()));
            }
            _ => {}
        }
        at += info_len;
    }
    Some(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_events_end_the_batch_without_a_panic() {
        assert!(parse(&[]).is_none());
        let mut b = vec![0u8; 64];
        // event_len larger than the buffer.
        b[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        b[6..8].copy_from_slice(&24u16.to_ne_bytes());
        assert!(parse(&b).is_none());
        // A whole event with an info record whose length runs past the end.
        b[0..4].copy_from_slice(&40u32.to_ne_bytes());
        b[24] = libc::FAN_EVENT_INFO_TYPE_DFID_NAME;
        b[26..28].copy_from_slice(&200u16.to_ne_bytes());
        let ev = parse(&b).unwrap();
        assert!(ev.dir.is_none());
        assert_eq!(ev.len, 40);
    }
}
