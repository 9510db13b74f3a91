//! The one directory walker, shared by scans (every watched name) and the
//! watcher (every directory to watch). It reads directories through
//! descriptors (`openat` with `O_NOFOLLOW`), never follows a symlink, stays
//! on the start's filesystem, enters only what the policy lets it, and
//! holds descriptors in proportion to the tree's depth, not its width.
//! What to do with each directory and name is the [`Visitor`]'s business;
//! it steers the walk with [`WalkState`] (as ripgrep's `ignore::WalkState`).

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::dir::{Dir, Type};
use nix::errno::Errno;

use super::{file, Found, ItemError, ScanError};
use crate::model::{FileType, RelPath};
use crate::policy::Policy;

/// What the visitor wants next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkState {
    /// Go on.
    Continue,
    /// Do not read this directory's entries (from [`Visitor::dir`]); the
    /// same as `Continue` elsewhere.
    Skip,
    /// Stop the walk now.
    Quit,
}

/// What a walk does with what it finds.
pub trait Visitor {
    /// A directory was opened (`rel` is empty for the root). Its `fd` stays
    /// valid as long as the visitor keeps the `Arc`.
    fn dir(&mut self, _rel: &[u8], _fd: &Arc<OwnedFd>) -> WalkState {
        WalkState::Continue
    }

    /// A name in directory `dir` that is not a directory (symlinks
    /// included, never followed), with its type from `d_type` (or `lstat`
    /// where the filesystem gives none).
    fn entry(&mut self, _dir: &Arc<OwnedFd>, _name: &CStr, _rel: RelPath, _kind: FileType) -> WalkState {
        WalkState::Continue
    }

    /// A name (`Found::Problem`) or a directory (`Found::Unreadable`) that
    /// could not be read.
    fn problem(&mut self, _found: Found) -> WalkState {
        WalkState::Continue
    }
}

/// Where a walk goes.
pub struct Walk<'a> {
    /// The site root (resolved: the one path that is followed).
    pub root: &'a Path,
    /// Start below this directory (relative; empty: the root).
    pub start: &'a [u8],
    /// Decides which directories are entered.
    pub policy: &'a Policy,
    /// Set to stop the walk early.
    pub cancel: Option<&'a AtomicBool>,
}

/// Figures of one walk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalkStats {
    /// Directories read.
    pub dirs: u64,
    /// Names and directories that could not be read.
    pub problems: u64,
    /// Directories skipped because they are another filesystem.
    pub other_fs: u64,
}

/// A directory waiting to be walked: opened only when its turn comes, so a
/// folder of 10,000 subfolders does not hold 10,000 descriptors.
enum PendingDir {
    Open(OwnedFd, RelPath),
    Child(Arc<OwnedFd>, CString, RelPath),
}

/// Walks `w.start` below `w.root` depth first. A start that is gone or not
/// a directory is an empty walk; only an unusable root is an error.
pub fn walk(w: &Walk<'_>, visitor: &mut impl Visitor) -> Result<WalkStats, ScanError> {
    let root_err = |errno| ScanError::Root { path: w.root.to_path_buf(), errno };
    let root_fd = file::open_root(w.root).map_err(root_err)?;
    let root_dev = nix::sys::stat::fstat(&root_fd).map_err(root_err)?.st_dev;
    let mut stats = WalkStats::default();
    let first = if w.start.is_empty() {
        root_fd
    } else {
        match file::open_parent(w.root, w.start) {
            Ok(Some((parent, name))) => match file::open_dir_at(parent.as_fd(), &name) {
                Ok(fd) => fd,
                Err(_) => return Ok(stats),
            },
            _ => return Ok(stats),
        }
    };
    let mut stack = vec![PendingDir::Open(first, w.start.to_vec())];
    while let Some(pending) = stack.pop() {
        if w.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            break;
        }
        let (dir_fd, rel_dir) = match open_pending(pending, root_dev, &mut stats) {
            Opened::Dir(fd, rel) => (Arc::new(fd), rel),
            Opened::Skipped => continue,
            Opened::Failed(found) => match visitor.problem(found) {
                WalkState::Quit => break,
                _ => continue,
            },
        };
        stats.dirs += 1;
        crate::util::fault::point("walker", &rel_dir);
        match visitor.dir(&rel_dir, &dir_fd) {
            WalkState::Continue => {}
            WalkState::Skip => continue,
            WalkState::Quit => break,
        }
        if read_dir(w, visitor, &dir_fd, &rel_dir, &mut stack, &mut stats) == WalkState::Quit {
            break;
        }
    }
    Ok(stats)
}

/// Reads one directory: subdirectories the policy enters are pushed on
/// `stack`, other names go to the visitor.
fn read_dir(
    w: &Walk<'_>,
    visitor: &mut impl Visitor,
    dir_fd: &Arc<OwnedFd>,
    rel_dir: &[u8],
    stack: &mut Vec<PendingDir>,
    stats: &mut WalkStats,
) -> WalkState {
    let mut dir = match nix::unistd::dup(dir_fd.as_fd()).and_then(Dir::from_fd) {
        Ok(d) => d,
        Err(e) => return report(visitor, stats, Found::Unreadable(rel_dir.to_vec(), ItemError::Io(e))),
    };
    for entry in dir.iter() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => return report(visitor, stats, Found::Unreadable(rel_dir.to_vec(), ItemError::Io(e))),
        };
        let name = entry.file_name();
        let name_bytes = name.to_bytes();
        if name_bytes == b"." || name_bytes == b".." {
            continue;
        }
        let rel = join(rel_dir, name_bytes);
        let kind = match entry.file_type() {
            Some(t) => dtype_kind(t),
            // DT_UNKNOWN (some filesystems): ask lstat.
            None => match file::lstat_at(dir_fd.as_fd(), name) {
                Ok(st) => FileType::from_mode(st.st_mode),
                Err(Errno::ENOENT) => continue,
                Err(e) => match report(visitor, stats, Found::Problem(rel, ItemError::Io(e))) {
                    WalkState::Quit => return WalkState::Quit,
                    _ => continue,
                },
            },
        };
        if kind == FileType::Dir {
            if w.policy.descend(&rel) {
                stack.push(PendingDir::Child(Arc::clone(dir_fd), CString::from(name), rel));
            }
            continue;
        }
        if visitor.entry(dir_fd, name, rel, kind) == WalkState::Quit {
            return WalkState::Quit;
        }
    }
    WalkState::Continue
}

fn report(visitor: &mut impl Visitor, stats: &mut WalkStats, found: Found) -> WalkState {
    stats.problems += 1;
    visitor.problem(found)
}

enum Opened {
    Dir(OwnedFd, RelPath),
    /// Gone, swapped for a symlink, or on another filesystem.
    Skipped,
    Failed(Found),
}

/// Opens a pending directory, never through a symlink, never onto another
/// filesystem.
fn open_pending(p: PendingDir, root_dev: u64, stats: &mut WalkStats) -> Opened {
    let (parent, name, rel) = match p {
        PendingDir::Open(fd, rel) => return Opened::Dir(fd, rel),
        PendingDir::Child(parent, name, rel) => (parent, name, rel),
    };
    match file::open_dir_at(parent.as_fd(), &name) {
        Ok(fd) => match nix::sys::stat::fstat(&fd) {
            Ok(st) if st.st_dev != root_dev => {
                stats.other_fs += 1;
                Opened::Skipped
            }
            Ok(_) => Opened::Dir(fd, rel),
            Err(e) => {
                stats.problems += 1;
                Opened::Failed(Found::Unreadable(rel, ItemError::Io(e)))
            }
        },
        // Gone, or swapped for a symlink since readdir: the next event or
        // scan sees what it became.
        Err(Errno::ENOENT) | Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => Opened::Skipped,
        Err(e) => {
            stats.problems += 1;
            Opened::Failed(Found::Unreadable(rel, ItemError::Io(e)))
        }
    }
}

/// `dir/name`, or `name` at the root.
pub fn join(dir: &[u8], name: &[u8]) -> RelPath {
    let mut rel = Vec::with_capacity(dir.len() + 1 + name.len());
    if !dir.is_empty() {
        rel.extend_from_slice(dir);
        rel.push(b'/');
    }
    rel.extend_from_slice(name);
    rel
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
