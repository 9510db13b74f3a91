//! The scanner: walk a site root and produce the state of every watched
//! path, in parallel over the machine's cores.
//!
//! One walker thread ([`walk`]) reads directories through descriptors
//! (`openat` with `O_NOFOLLOW`), stays on the root's filesystem, skips
//! directories the policy prunes and hands the names the policy watches, in
//! batches, to a pool of hashing threads. Files whose stat matches the cache
//! reuse the cached hash; the others are read once, with one `fstat` before
//! and one after. Results come back to the caller's thread in no particular order.
//! A file that vanishes or cannot be read is a per-item problem, counted and
//! reported, never an abort; only an unusable root stops a scan.

pub mod file;
pub mod walk;

use std::collections::HashMap;
use std::ffi::CString;
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;

use crate::content::ContentStore;
use crate::model::{FileState, FileType, RelPath};
use crate::policy::Policy;
use crate::util::bytes::printable;
use walk::WalkState;

/// A scan that cannot be done at all.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The root cannot be opened or stat'ed (gone, not a directory, no
    /// permission).
    #[error("cannot open site root {path}: {errno}")]
    Root {
        /// The root.
        path: PathBuf,
        /// Why not.
        errno: Errno,
    },
    /// A walking or hashing thread died: what it did not reach was never
    /// seen, so the scan is no evidence that anything is gone or unchanged
    /// (fail closed: nothing of it is compared, nothing reported deleted).
    #[error("scan of {path} did not finish: its {thread} thread died ({reason}); nothing of it was compared")]
    Incomplete {
        /// The root.
        path: PathBuf,
        /// Which thread: `walker` or `hasher`.
        thread: &'static str,
        /// The panic's message.
        reason: String,
    },
}

/// A problem with one path; the scan goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemError {
    /// A system call failed (EACCES, EIO...).
    Io(Errno),
    /// Reading the content failed.
    Read(String),
    /// The object changed type or identity between stat and open.
    Swapped,
    /// The file kept changing while it was read; the state of the last
    /// read (its hash is of the bytes as read, a mix of versions).
    Busy(Option<Box<FileState>>),
}

impl fmt::Display for ItemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemError::Io(Errno::EACCES) => f.write_str("permission denied"),
            ItemError::Io(e) => write!(f, "{}", e.desc()),
            ItemError::Read(e) => write!(f, "read error: {e}"),
            ItemError::Swapped => f.write_str("replaced while being read"),
            ItemError::Busy(_) => f.write_str("kept changing while being read"),
        }
    }
}

/// What the scanner reports, path by path.
#[derive(Debug)]
pub enum Found {
    /// A watched path and its state.
    Entry(RelPath, FileState),
    /// A watched path whose state could not be read: its baseline entry
    /// must be kept as it is, neither confirmed nor reported deleted.
    Problem(RelPath, ItemError),
    /// A directory that could not be read: nothing below it is known.
    Unreadable(RelPath, ItemError),
}

/// What one scan covers and how.
pub struct ScanSpec<'a> {
    /// The site root to walk.
    pub root: &'a Path,
    /// Decides which directories are entered and which paths are watched.
    pub policy: &'a Policy,
    /// Earlier states by path: the stat cache.
    pub cache: Option<&'a HashMap<RelPath, FileState>>,
    /// Hash every file, ignoring the cache.
    pub rehash: bool,
    /// Hashing threads (0: one per core).
    pub threads: usize,
    /// Walk only below this directory (relative, empty: the whole root).
    pub start: &'a [u8],
    /// Set to stop the scan early (shutdown); what was found is reported.
    pub cancel: Option<&'a AtomicBool>,
    /// Where the content of hashed text files is kept (except `nodiff`).
    pub content: Option<&'a ContentStore>,
    /// At most this many bytes read per second (scheduled scans that must
    /// not compete with the web server), `None`: as fast as possible.
    pub throttle: Option<u64>,
}

/// A shared read budget: hashing threads sleep when they get ahead of it.
struct Throttle<'a> {
    rate: u64,
    cancel: Option<&'a AtomicBool>,
    start: std::time::Instant,
    bytes: std::sync::atomic::AtomicU64,
}

impl Throttle<'_> {
    fn consume(&self, n: u64) {
        if n == 0 || self.rate == 0 {
            return;
        }
        let total = self.bytes.fetch_add(n, Ordering::Relaxed) + n;
        let due = std::time::Duration::from_secs_f64(total as f64 / self.rate as f64);
        // Slept in slices, so that a shutdown is not held up.
        loop {
            let elapsed = self.start.elapsed();
            if due <= elapsed || self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                break;
            }
            std::thread::sleep((due - elapsed).min(std::time::Duration::from_millis(100)));
        }
    }
}

/// Figures of one scan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Directories walked.
    pub dirs: u64,
    /// Watched paths found.
    pub entries: u64,
    /// Files hashed now rather than taken from the stat cache.
    pub hashed: u64,
    /// Bytes read to hash them.
    pub bytes_hashed: u64,
    /// Paths and directories that could not be read.
    pub problems: u64,
    /// Directories skipped because they are another filesystem.
    pub other_fs: u64,
}

/// Files handed to the hashing threads at a time, and results handed back:
/// one channel operation (and at most one futex wake) per batch, not per
/// file.
const BATCH: usize = 32;

/// A file for the hashing threads: its open directory, its name there.
struct Work {
    dir: Arc<OwnedFd>,
    name: CString,
    rel: RelPath,
    /// `d_type` said regular file.
    regular: bool,
}

/// Walks `spec.root` and calls `sink` with every watched path, on the
/// caller's thread.
pub fn scan(spec: &ScanSpec<'_>, mut sink: impl FnMut(Found)) -> Result<ScanStats, ScanError> {
    let threads = if spec.threads == 0 {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
    } else {
        spec.threads
    };
    // Each queued file holds its directory open: the queue is kept short
    // (the hashing threads need little slack) so the descriptors are few.
    let (work_tx, work_rx) = sync_channel::<Vec<Work>>(threads);
    let (out_tx, out_rx) = sync_channel::<Vec<Found>>(64);
    let work_rx = Arc::new(Mutex::new(work_rx));
    let throttle = spec.throttle.map(|rate| Throttle {
        rate,
        cancel: spec.cancel,
        start: std::time::Instant::now(),
        bytes: std::sync::atomic::AtomicU64::new(0),
    });
    let throttle = throttle.as_ref();

    std::thread::scope(|s| {
        let mut hashers = Vec::new();
        for _ in 0..threads {
            let rx = Arc::clone(&work_rx);
            let tx = out_tx.clone();
            hashers.push(s.spawn(move || hash_worker(spec, &rx, &tx, throttle)));
        }
        let walker = {
            let out = out_tx.clone();
            s.spawn(move || {
                let w = walk::Walk { root: spec.root, start: spec.start, policy: spec.policy, cancel: spec.cancel };
                let mut feeder = Feeder {
                    policy: spec.policy,
                    start: spec.start,
                    batch: Vec::new(),
                    work: &work_tx,
                    out: &out,
                    entries: 0,
                };
                let walked = walk::walk(&w, &mut feeder);
                feeder.flush();
                walked.map(|st| (st, feeder.entries))
            })
        };
        drop(out_tx);
        for batch in out_rx {
            for found in batch {
                sink(found);
            }
        }
        // The threads only end after their senders are gone, which is when
        // the loop above ends; join cannot block past that. A thread that
        // panicked left part of the tree unseen: the whole scan fails.
        let died = |thread, p: Box<dyn std::any::Any + Send>| ScanError::Incomplete {
            path: spec.root.to_path_buf(),
            thread,
            reason: crate::util::supervise::panic_text(p.as_ref()),
        };
        let walked = walker.join();
        let hashed: Vec<_> = hashers.into_iter().map(|h| h.join()).collect();
        let (walked, entries) = walked.map_err(|p| died("walker", p))??;
        let mut stats = ScanStats {
            dirs: walked.dirs,
            entries,
            problems: walked.problems,
            other_fs: walked.other_fs,
            ..ScanStats::default()
        };
        for h in hashed {
            let (n, bytes, problems) = h.map_err(|p| died("hasher", p))?;
            stats.hashed += n;
            stats.bytes_hashed += bytes;
            stats.problems += problems;
        }
        Ok(stats)
    })
}

/// The walker's visitor for a scan: watched names go to the hashing threads
/// in batches, problems straight to the caller.
struct Feeder<'a> {
    policy: &'a Policy,
    /// Where the walk starts: its own state is its caller's business.
    start: &'a [u8],
    batch: Vec<Work>,
    work: &'a SyncSender<Vec<Work>>,
    out: &'a SyncSender<Vec<Found>>,
    entries: u64,
}

impl Feeder<'_> {
    fn flush(&mut self) -> WalkState {
        if self.batch.is_empty() {
            return WalkState::Continue;
        }
        match self.work.send(std::mem::take(&mut self.batch)) {
            Ok(()) => WalkState::Continue,
            Err(_) => WalkState::Quit,
        }
    }
}

impl walk::Visitor for Feeder<'_> {
    /// A directory's own state (mode, owner) goes straight to the caller:
    /// nothing to hash.
    fn dir(&mut self, rel: &[u8], fd: &Arc<OwnedFd>) -> WalkState {
        if rel == self.start || !self.policy.watched(rel, FileType::Dir) {
            return WalkState::Continue;
        }
        let found = match nix::sys::stat::fstat(fd.as_fd()) {
            Ok(st) => Found::Entry(rel.to_vec(), file::state_from_stat(&st)),
            Err(e) => Found::Problem(rel.to_vec(), ItemError::Io(e)),
        };
        match self.out.send(vec![found]) {
            Ok(()) => WalkState::Continue,
            Err(_) => WalkState::Quit,
        }
    }

    fn entry(&mut self, dir: &Arc<OwnedFd>, name: &std::ffi::CStr, rel: RelPath, kind: FileType) -> WalkState {
        if !self.policy.watched(&rel, kind) {
            return WalkState::Continue;
        }
        self.entries += 1;
        let regular = kind == FileType::File;
        self.batch.push(Work { dir: Arc::clone(dir), name: CString::from(name), rel, regular });
        if self.batch.len() >= BATCH {
            return self.flush();
        }
        WalkState::Continue
    }

    fn problem(&mut self, found: Found) -> WalkState {
        match self.out.send(vec![found]) {
            Ok(()) => WalkState::Continue,
            Err(_) => WalkState::Quit,
        }
    }
}

fn hash_worker(
    spec: &ScanSpec<'_>,
    rx: &Mutex<Receiver<Vec<Work>>>,
    tx: &SyncSender<Vec<Found>>,
    throttle: Option<&Throttle<'_>>,
) -> (u64, u64, u64) {
    let mut buf = Vec::new();
    let mut captured = Vec::new();
    let (mut hashed, mut bytes, mut problems) = (0, 0, 0);
    loop {
        let batch = {
            let Ok(guard) = rx.lock() else { break };
            match guard.recv() {
                Ok(w) => w,
                Err(_) => break,
            }
        };
        let mut results = Vec::with_capacity(batch.len());
        for work in batch {
            crate::util::fault::point("hasher", &work.rel);
            let known = if spec.rehash { None } else { spec.cache.and_then(|c| c.get(&work.rel)) };
            let secret_name = spec.policy.nodiff(&work.rel);
            let keep = spec.content.filter(|_| !secret_name);
            let capture = keep.is_some().then_some(&mut captured);
            match file::read_state_at(work.dir.as_fd(), &work.name, known, work.regular, &mut buf, capture) {
                Ok(Some((state, n))) => {
                    if let (Some(store), Some(sha), true) = (spec.content, state.sha256.as_ref(), secret_name) {
                        store.mark_secret(sha);
                    }
                    if n > 0 || state.size == 0 {
                        hashed += 1;
                        if let (Some(store), Some(sha)) = (keep, state.sha256.as_ref()) {
                            if captured.len() as u64 == state.size {
                                store.keep(sha, &captured, spec.policy.secrets());
                            }
                        }
                    }
                    bytes += n;
                    if let Some(t) = throttle {
                        t.consume(n);
                    }
                    results.push(Found::Entry(work.rel, state));
                }
                // Vanished between readdir and stat: simply not there.
                Ok(None) => {}
                Err(e) => {
                    problems += 1;
                    results.push(Found::Problem(work.rel, e));
                }
            }
        }
        if tx.send(results).is_err() {
            break;
        }
    }
    (hashed, bytes, problems)
}

/// Visits every directory the policy lets the walker enter, from `start`
/// (relative; empty: the root) down, on the root's filesystem, never
/// through a symlink. Used to place watches. `visit` gets each directory's
/// relative path and (device, inode), `start` first. Returns how many
/// directories could not be read (their subtrees are not visited).
pub fn walk_dirs(
    root: &Path,
    start: &[u8],
    policy: &Policy,
    visit: impl FnMut(&[u8], (u64, u64), BorrowedFd<'_>),
) -> Result<u64, ScanError> {
    struct Dirs<F> {
        visit: F,
        failed: u64,
    }
    impl<F: FnMut(&[u8], (u64, u64), BorrowedFd<'_>)> walk::Visitor for Dirs<F> {
        fn dir(&mut self, rel: &[u8], fd: &Arc<OwnedFd>) -> WalkState {
            let id = nix::sys::stat::fstat(fd.as_fd()).map(|st| (st.st_dev, st.st_ino)).unwrap_or((0, 0));
            (self.visit)(rel, id, fd.as_fd());
            WalkState::Continue
        }

        fn problem(&mut self, found: Found) -> WalkState {
            if matches!(found, Found::Unreadable(..)) {
                self.failed += 1;
            }
            WalkState::Continue
        }
    }
    let mut dirs = Dirs { visit, failed: 0 };
    walk::walk(&walk::Walk { root, start, policy, cancel: None }, &mut dirs)?;
    Ok(dirs.failed)
}

/// Prints a relative path for people (control characters escaped).
pub fn show(rel: &[u8]) -> String {
    printable(rel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicySpec;

    #[test]
    fn a_vanished_name_is_absent_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let fd = file::open_root(dir.path()).unwrap();
        let name = CString::new("gone.php").unwrap();
        let mut buf = Vec::new();
        assert_eq!(file::read_state_at(fd.as_fd(), &name, None, true, &mut buf, None), Ok(None));
    }

    #[test]
    fn a_wrong_regular_file_hint_never_opens_a_fifo_or_follows_a_link() {
        // The walker's d_type said "regular file", then the name was
        // swapped: a FIFO (opening it must not block, nor be hashed) and a
        // symlink (never followed).
        let dir = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(&dir.path().join("p.php"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("l.php")).unwrap();
        let fd = file::open_root(dir.path()).unwrap();
        let mut buf = Vec::new();
        let fifo = CString::new("p.php").unwrap();
        let (st, n) = file::read_state_at(fd.as_fd(), &fifo, None, true, &mut buf, None).unwrap().unwrap();
        assert_eq!((st.kind, st.sha256, n), (FileType::Fifo, None, 0));
        let link = CString::new("l.php").unwrap();
        let (st, _) = file::read_state_at(fd.as_fd(), &link, None, true, &mut buf, None).unwrap().unwrap();
        assert_eq!(st.kind, FileType::Symlink);
        assert_eq!(st.target.as_deref(), Some(&b"/etc/passwd"[..]));
    }

    #[test]
    fn scan_reports_types_and_hashes_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a.php"), b"abc").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("l.php")).unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("etcdir")).unwrap();
        let policy = Policy::compile(&PolicySpec::default()).unwrap();
        let spec = ScanSpec {
            root: dir.path(),
            policy: &policy,
            cache: None,
            rehash: true,
            threads: 2,
            start: b"",
            cancel: None,
            content: None,
            throttle: None,
        };
        let mut found = HashMap::new();
        let stats = scan(&spec, |f| {
            if let Found::Entry(rel, st) = f {
                found.insert(rel, st);
            }
        })
        .unwrap();
        // The directory `sub` too, for its mode and owner (size 0).
        assert_eq!(found.len(), 4, "{found:?}");
        assert_eq!((found[&b"sub".to_vec()].kind, found[&b"sub".to_vec()].size), (FileType::Dir, 0));
        assert_eq!(found[&b"sub/a.php".to_vec()].sha256, Some(file::sha256(b"abc")));
        assert_eq!(found[&b"l.php".to_vec()].target.as_deref(), Some(&b"/etc/passwd"[..]));
        assert_eq!(found[&b"etcdir".to_vec()].kind, FileType::Symlink);
        assert_eq!(stats.dirs, 2);
    }
}
