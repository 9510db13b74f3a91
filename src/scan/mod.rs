//! The scanner: walk a site root and produce the state of every watched
//! path, in parallel over the machine's cores.
//!
//! One walker thread reads directories through descriptors (`openat` with
//! `O_NOFOLLOW`), stays on the root's filesystem, skips directories the
//! policy prunes and stats only names the policy watches. Files whose stat
//! matches the cache reuse the cached hash; the rest go to a pool of hashing
//! threads. Results come back to the caller's thread in no particular order.
//! A file that vanishes or cannot be read is a per-item problem, counted and
//! reported, never an abort; only an unusable root stops a scan.

pub mod file;

use std::collections::HashMap;
use std::ffi::CString;
use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use nix::dir::{Dir, Type};
use nix::errno::Errno;

use crate::content::ContentStore;
use crate::model::{FileState, FileType, RelPath};
use crate::policy::Policy;
use crate::util::bytes::printable;

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
    /// The file kept changing while it was read.
    Busy,
}

impl fmt::Display for ItemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemError::Io(Errno::EACCES) => f.write_str("permission denied"),
            ItemError::Io(e) => write!(f, "{}", e.desc()),
            ItemError::Read(e) => write!(f, "read error: {e}"),
            ItemError::Swapped => f.write_str("replaced while being read"),
            ItemError::Busy => f.write_str("kept changing while being read"),
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

struct Work {
    dir: Arc<OwnedFd>,
    name: CString,
    rel: RelPath,
}

/// Walks `spec.root` and calls `sink` with every watched path, on the
/// caller's thread.
pub fn scan(spec: &ScanSpec<'_>, mut sink: impl FnMut(Found)) -> Result<ScanStats, ScanError> {
    let root_fd =
        file::open_root(spec.root).map_err(|errno| ScanError::Root { path: spec.root.to_path_buf(), errno })?;
    let root_dev = nix::sys::stat::fstat(root_fd.as_raw_fd())
        .map_err(|errno| ScanError::Root { path: spec.root.to_path_buf(), errno })?
        .st_dev;
    let threads = if spec.threads == 0 {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
    } else {
        spec.threads
    };
    // Each queued item holds its directory open: the queue is kept short
    // (the hashing threads need little slack) so the descriptors are few.
    let (work_tx, work_rx) = sync_channel::<Work>(128);
    let (out_tx, out_rx) = sync_channel::<Found>(1024);
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
            let tx = out_tx.clone();
            s.spawn(move || walk(spec, root_fd, root_dev, &work_tx, &tx))
        };
        drop(out_tx);
        for found in out_rx {
            sink(found);
        }
        // The threads only end after their senders are gone, which is when
        // the loop above ends; join cannot block past that.
        let mut stats = walker.join().unwrap_or_default();
        for h in hashers {
            let (n, bytes, problems) = h.join().unwrap_or_default();
            stats.hashed += n;
            stats.bytes_hashed += bytes;
            stats.problems += problems;
        }
        Ok(stats)
    })
}

fn hash_worker(
    spec: &ScanSpec<'_>,
    rx: &Mutex<Receiver<Work>>,
    tx: &SyncSender<Found>,
    throttle: Option<&Throttle<'_>>,
) -> (u64, u64, u64) {
    let mut buf = Vec::new();
    let mut captured = Vec::new();
    let (mut hashed, mut bytes, mut problems) = (0, 0, 0);
    loop {
        let work = {
            let Ok(guard) = rx.lock() else { break };
            match guard.recv() {
                Ok(w) => w,
                Err(_) => break,
            }
        };
        let known = if spec.rehash { None } else { spec.cache.and_then(|c| c.get(&work.rel)) };
        let keep = spec.content.filter(|_| !spec.policy.nodiff(&work.rel));
        let capture = keep.is_some().then_some(&mut captured);
        let found = match file::read_state_at(work.dir.as_raw_fd(), &work.name, known, &mut buf, capture) {
            Ok(Some((state, n))) => {
                if n > 0 || state.size == 0 {
                    hashed += 1;
                    if let (Some(store), Some(sha)) = (keep, state.sha256.as_ref()) {
                        if captured.len() as u64 == state.size {
                            if let Err(e) = store.put(sha, &captured) {
                                tracing::warn!("content store: {e}");
                            }
                        }
                    }
                }
                bytes += n;
                if let Some(t) = throttle {
                    t.consume(n);
                }
                Found::Entry(work.rel, state)
            }
            // Vanished between readdir and stat: simply not there.
            Ok(None) => continue,
            Err(e) => {
                problems += 1;
                Found::Problem(work.rel, e)
            }
        };
        if tx.send(found).is_err() {
            break;
        }
    }
    (hashed, bytes, problems)
}

fn join(dir: &[u8], name: &[u8]) -> RelPath {
    let mut rel = Vec::with_capacity(dir.len() + 1 + name.len());
    if !dir.is_empty() {
        rel.extend_from_slice(dir);
        rel.push(b'/');
    }
    rel.extend_from_slice(name);
    rel
}

fn walk(
    spec: &ScanSpec<'_>,
    root_fd: OwnedFd,
    root_dev: u64,
    work: &SyncSender<Work>,
    out: &SyncSender<Found>,
) -> ScanStats {
    let mut stats = ScanStats::default();
    let start: RelPath = spec.start.to_vec();
    let first = if start.is_empty() {
        root_fd
    } else {
        match file::open_parent(spec.root, &start) {
            Ok(Some((parent, name))) => match file::open_dir_at(Some(parent.as_raw_fd()), &name) {
                Ok(fd) => fd,
                Err(_) => return stats,
            },
            _ => return stats,
        }
    };
    // Subdirectories wait as (parent, name) and are opened only when their
    // turn comes: the descriptors held stay near the tree's depth, not its
    // width (a folder of 10,000 subfolders must not exhaust the fd limit).
    let mut stack: Vec<PendingDir> = vec![PendingDir::Open(first, start)];
    while let Some(pending) = stack.pop() {
        if spec.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            break;
        }
        let Some((dir_fd, rel_dir)) = open_pending(pending, root_dev, &mut stats, out) else { continue };
        stats.dirs += 1;
        let dir_fd = Arc::new(dir_fd);
        let mut dir = match nix::unistd::dup(dir_fd.as_raw_fd()).and_then(Dir::from_fd) {
            Ok(d) => d,
            Err(e) => {
                stats.problems += 1;
                let _ = out.send(Found::Unreadable(rel_dir, ItemError::Io(e)));
                continue;
            }
        };
        for entry in dir.iter() {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    stats.problems += 1;
                    let _ = out.send(Found::Unreadable(rel_dir.clone(), ItemError::Io(e)));
                    break;
                }
            };
            let name = entry.file_name();
            let name_bytes = name.to_bytes();
            if name_bytes == b"." || name_bytes == b".." {
                continue;
            }
            let rel = join(&rel_dir, name_bytes);
            let mut kind = entry.file_type().map(dtype_kind);
            if kind.is_none() {
                // DT_UNKNOWN (some filesystems): ask lstat.
                match file::lstat_at(dir_fd.as_raw_fd(), name) {
                    Ok(st) => kind = Some(FileType::from_mode(st.st_mode)),
                    Err(Errno::ENOENT) => continue,
                    Err(e) => {
                        stats.problems += 1;
                        let _ = out.send(Found::Problem(rel, ItemError::Io(e)));
                        continue;
                    }
                }
            }
            let kind = kind.unwrap_or(FileType::File);
            if kind == FileType::Dir {
                if !spec.policy.descend(&rel) {
                    continue;
                }
                stack.push(PendingDir::Child(Arc::clone(&dir_fd), CString::from(name), rel));
                continue;
            }
            if !spec.policy.watched(&rel, kind) {
                continue;
            }
            stats.entries += 1;
            let name = CString::from(name);
            if work.send(Work { dir: Arc::clone(&dir_fd), name, rel }).is_err() {
                return stats;
            }
        }
    }
    stats
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
    mut visit: impl FnMut(&[u8], (u64, u64)),
) -> Result<u64, ScanError> {
    let root_fd = file::open_root(root).map_err(|errno| ScanError::Root { path: root.to_path_buf(), errno })?;
    let root_dev = nix::sys::stat::fstat(root_fd.as_raw_fd())
        .map_err(|errno| ScanError::Root { path: root.to_path_buf(), errno })?
        .st_dev;
    let first = if start.is_empty() {
        root_fd
    } else {
        match file::open_parent(root, start) {
            Ok(Some((parent, name))) => match file::open_dir_at(Some(parent.as_raw_fd()), &name) {
                Ok(fd) => fd,
                Err(_) => return Ok(0),
            },
            _ => return Ok(0),
        }
    };
    // Problems are counted here, not reported: with its receiver gone, a
    // send to this channel fails at once.
    let (sink, unused) = sync_channel::<Found>(0);
    drop(unused);
    let mut stats = ScanStats::default();
    let mut failed = 0;
    let mut stack: Vec<PendingDir> = vec![PendingDir::Open(first, start.to_vec())];
    while let Some(pending) = stack.pop() {
        let before = stats.problems;
        let Some((dir_fd, rel_dir)) = open_pending(pending, root_dev, &mut stats, &sink) else {
            failed += stats.problems - before;
            continue;
        };
        let id = nix::sys::stat::fstat(dir_fd.as_raw_fd()).map(|st| (st.st_dev, st.st_ino)).unwrap_or((0, 0));
        visit(&rel_dir, id);
        let dir_fd = Arc::new(dir_fd);
        let Ok(mut dir) = nix::unistd::dup(dir_fd.as_raw_fd()).and_then(Dir::from_fd) else {
            failed += 1;
            continue;
        };
        for entry in dir.iter() {
            let Ok(entry) = entry else {
                failed += 1;
                break;
            };
            let name = entry.file_name();
            let name_bytes = name.to_bytes();
            if name_bytes == b"." || name_bytes == b".." {
                continue;
            }
            let is_dir = match entry.file_type() {
                Some(t) => t == Type::Directory,
                None => file::lstat_at(dir_fd.as_raw_fd(), name)
                    .map(|st| FileType::from_mode(st.st_mode) == FileType::Dir)
                    .unwrap_or(false),
            };
            if !is_dir {
                continue;
            }
            let rel = join(&rel_dir, name_bytes);
            if policy.descend(&rel) {
                stack.push(PendingDir::Child(Arc::clone(&dir_fd), CString::from(name), rel));
            }
        }
    }
    Ok(failed)
}

/// A directory waiting to be walked.
enum PendingDir {
    Open(OwnedFd, RelPath),
    Child(Arc<OwnedFd>, CString, RelPath),
}

/// Opens a pending directory (never through a symlink, never onto another
/// filesystem); problems are reported and the directory skipped.
fn open_pending(
    p: PendingDir,
    root_dev: u64,
    stats: &mut ScanStats,
    out: &SyncSender<Found>,
) -> Option<(OwnedFd, RelPath)> {
    let (parent, name, rel) = match p {
        PendingDir::Open(fd, rel) => return Some((fd, rel)),
        PendingDir::Child(parent, name, rel) => (parent, name, rel),
    };
    match file::open_dir_at(Some(parent.as_raw_fd()), &name) {
        Ok(fd) => match nix::sys::stat::fstat(fd.as_raw_fd()) {
            Ok(st) if st.st_dev != root_dev => {
                stats.other_fs += 1;
                None
            }
            Ok(_) => Some((fd, rel)),
            Err(e) => {
                stats.problems += 1;
                let _ = out.send(Found::Unreadable(rel, ItemError::Io(e)));
                None
            }
        },
        // Gone, or swapped for a symlink since readdir: the next event or
        // scan sees what it became.
        Err(Errno::ENOENT) | Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => None,
        Err(e) => {
            stats.problems += 1;
            let _ = out.send(Found::Unreadable(rel, ItemError::Io(e)));
            None
        }
    }
}

fn dtype_kind(t: Type) -> FileType {
    match t {
        Type::File => FileType::File,
        Type::Directory => FileType::Dir,
        Type::Symlink => FileType::Symlink,
        Type::Fifo => FileType::Fifo,
        Type::Socket => FileType::Socket,
        Type::CharacterDevice | Type::BlockDevice => FileType::Device,
    }
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
        assert_eq!(file::read_state_at(fd.as_raw_fd(), &name, None, &mut buf, None), Ok(None));
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
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(found[&b"sub/a.php".to_vec()].sha256, Some(file::sha256(b"abc")));
        assert_eq!(found[&b"l.php".to_vec()].target.as_deref(), Some(&b"/etc/passwd"[..]));
        assert_eq!(found[&b"etcdir".to_vec()].kind, FileType::Symlink);
        assert_eq!(stats.dirs, 2);
    }
}
