//! Race-safe replacement of a file inside a site: everything goes through
//! the descriptor of the parent directory (opened from the root with
//! `O_NOFOLLOW` at every step), the new content is written to a temporary
//! file in that same directory, given its owner and mode, renamed over
//! the target, then synced. A target that became a symlink or a directory, or a
//! parent that was swapped, is refused: nothing is written through it.

use std::ffi::CStr;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, OFlag};
use nix::sys::stat::{fchmod, Mode};
use nix::unistd::{fchown, unlinkat, Gid, Uid, UnlinkatFlags};

use crate::model::FileType;
use crate::scan::file;
use crate::watch::own::{OwnWrites, TEMP_PREFIX};

/// Why a file was not written or removed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WriteError {
    /// A parent directory is missing or was replaced.
    #[error("refused: a parent directory is missing or was replaced")]
    Parent,
    /// The target is now something other than a file (named).
    #[error("refused: the path is now a {0}")]
    NotAFile(&'static str),
    /// A system call failed.
    #[error("{}", .0.desc())]
    Io(Errno),
    /// The parent directory could not be opened safely.
    #[error("{0}")]
    Item(crate::scan::ItemError),
}

fn io(e: Errno) -> WriteError {
    WriteError::Io(e)
}

fn io_std(e: std::io::Error) -> WriteError {
    WriteError::Io(Errno::from_raw(e.raw_os_error().unwrap_or(Errno::EIO as i32)))
}

/// The type now at `name` in `dir`, if anything.
fn current_type(dir: BorrowedFd<'_>, name: &CStr) -> Result<Option<FileType>, WriteError> {
    match file::lstat_at(dir, name) {
        Ok(st) => Ok(Some(FileType::from_mode(st.st_mode))),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(io(e)),
    }
}

/// Replaces `rel` below `root` with `content`, owned `uid:gid`, mode `mode`.
/// The write is registered in `own` first (its events are the daemon's).
pub fn replace(
    own: &OwnWrites,
    root: &Path,
    rel: &[u8],
    content: &[u8],
    uid: u32,
    gid: u32,
    mode: u32,
) -> Result<(), WriteError> {
    own.writing(&crate::model::absolute(root, rel));
    let (dir, name) = file::open_parent(root, rel).map_err(WriteError::Item)?.ok_or(WriteError::Parent)?;
    let dfd = dir.as_fd();
    match current_type(dfd, &name)? {
        None | Some(FileType::File) => {}
        Some(other) => return Err(WriteError::NotAFile(other.as_str())),
    }
    let tmp = format!("{}{}-{}", TEMP_PREFIX, std::process::id(), crate::util::time::now_ns());
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(dfd, tmp.as_str(), flags, Mode::from_bits_truncate(0o600)).map_err(io)?;
    let mut f = File::from(fd);
    let written = (|| {
        f.write_all(content).map_err(io_std)?;
        fchown(&f, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))).map_err(io)?;
        fchmod(&f, Mode::from_bits_truncate(mode & 0o7777)).map_err(io)?;
        let st = nix::sys::stat::fstat(&f).map_err(io)?;
        own.placed(&crate::model::absolute(root, rel), (st.st_dev, st.st_ino));
        // Checked again just before the switch: rename replaces a symlink
        // itself, never its target, but a symlink here is an attack to
        // report, not a file to restore.
        match current_type(dfd, &name)? {
            None | Some(FileType::File) => {}
            Some(other) => return Err(WriteError::NotAFile(other.as_str())),
        }
        renameat(dfd, tmp.as_str(), dfd, name.as_c_str()).map_err(io)
    })();
    if written.is_err() {
        let _ = unlinkat(dfd, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        return written;
    }
    // Durable after the switch, not before: the attacker's version is live
    // until the rename, and a crash in between at worst leaves a file the
    // catch-up scan finds changed and restores again.
    f.sync_all().map_err(io_std)?;
    let _ = nix::unistd::fsync(dfd);
    Ok(())
}

/// Removes `rel` below `root` (a file, symlink or special file; never a
/// directory).
pub fn remove(own: &OwnWrites, root: &Path, rel: &[u8]) -> Result<(), WriteError> {
    own.writing(&crate::model::absolute(root, rel));
    let (dir, name) = file::open_parent(root, rel).map_err(WriteError::Item)?.ok_or(WriteError::Parent)?;
    match current_type(dir.as_fd(), &name)? {
        None => return Ok(()),
        Some(FileType::Dir) => return Err(WriteError::NotAFile("directory")),
        Some(_) => {}
    }
    match unlinkat(dir.as_fd(), name.as_c_str(), UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {
            let _ = nix::unistd::fsync(dir.as_fd());
            Ok(())
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn replaces_with_owner_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/.htaccess"), "evil").unwrap();
        let me = nix::unistd::getuid().as_raw();
        let g = nix::unistd::getgid().as_raw();
        replace(&OwnWrites::default(), dir.path(), b"d/.htaccess", b"good\n", me, g, 0o640).unwrap();
        let m = std::fs::metadata(dir.path().join("d/.htaccess")).unwrap();
        assert_eq!(std::fs::read(dir.path().join("d/.htaccess")).unwrap(), b"good\n");
        assert_eq!(m.mode() & 0o7777, 0o640);
        assert_eq!(std::fs::read_dir(dir.path().join("d")).unwrap().count(), 1, "no temporary file left");
    }

    #[test]
    fn refuses_symlinks_and_swapped_parents() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("target"), "outside").unwrap();
        std::os::unix::fs::symlink(outside.path().join("target"), dir.path().join(".htaccess")).unwrap();
        let me = nix::unistd::getuid().as_raw();
        assert_eq!(
            replace(&OwnWrites::default(), dir.path(), b".htaccess", b"x", me, me, 0o644),
            Err(WriteError::NotAFile("symlink"))
        );
        std::os::unix::fs::symlink(outside.path(), dir.path().join("sub")).unwrap();
        assert_eq!(
            replace(&OwnWrites::default(), dir.path(), b"sub/target", b"x", me, me, 0o644),
            Err(WriteError::Parent)
        );
        assert_eq!(std::fs::read(outside.path().join("target")).unwrap(), b"outside");
        assert_eq!(remove(&OwnWrites::default(), dir.path(), b"sub/target"), Err(WriteError::Parent));
        assert!(outside.path().join("target").exists());
    }
}
