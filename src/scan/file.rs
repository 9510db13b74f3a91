//! Reading one filesystem object safely: `lstat` it, and if it is a regular
//! file, open it `O_NOFOLLOW|O_NONBLOCK`, check with `fstat` that it is still
//! the file that was stat'ed, and hash it as a stream. Symlinks are read with
//! `readlinkat`, never followed; FIFOs, sockets and devices are never opened.
//! Everything works relative to an open directory descriptor, so a parent
//! swapped for a symlink mid-scan cannot lead outside the root.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode};
use sha2::{Digest, Sha256};

use super::ItemError;
use crate::model::{FileState, FileType};

/// Size of the read buffer used when hashing: large enough that syscall
/// overhead vanishes next to SHA-256, small enough to stay in L2.
pub const HASH_BUF: usize = 256 * 1024;

/// How often a file that keeps changing while it is read is retried.
const RETRIES: usize = 3;

/// The recorded state for a stat result (no hash, no target yet).
pub fn state_from_stat(st: &FileStat) -> FileState {
    FileState {
        kind: FileType::from_mode(st.st_mode),
        // A directory's size is the room its entries take: no change of
        // its own. Its mode and owner are what is compared.
        size: if FileType::from_mode(st.st_mode) == FileType::Dir { 0 } else { st.st_size.max(0) as u64 },
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        mtime_ns: st.st_mtime.saturating_mul(1_000_000_000).saturating_add(st.st_mtime_nsec),
        ctime_ns: st.st_ctime.saturating_mul(1_000_000_000).saturating_add(st.st_ctime_nsec),
        dev: st.st_dev,
        ino: st.st_ino,
        sha256: None,
        target: None,
        nlink: u32::try_from(st.st_nlink).unwrap_or(u32::MAX),
    }
}

/// `lstat` of `name` in the open directory `dir`.
pub fn lstat_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<FileStat, Errno> {
    fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
}

/// Opens a directory below `dir` without following a symlink.
pub fn open_dir_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    openat(dir, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
}

/// Opens a directory path (following symlinks: only for a configured root).
pub fn open_root(path: &Path) -> Result<OwnedFd, Errno> {
    nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
}

/// The full state of `name` in `dir`: stat, plus the SHA-256 of a regular
/// file or the target of a symlink. `known` is an earlier state to reuse the
/// hash from when the stat is unchanged (the stat cache). `regular` is the
/// walker's word (`d_type`) that the name is a regular file: with no cached
/// state to compare, the file is then opened at once and `fstat` stands in
/// for the `lstat` (one stat fewer per file; anything else found there is
/// read the careful way). With `capture`, the bytes of a file hashed now
/// that fits the content store's limit are left there (empty otherwise).
/// `Ok(None)` means the name no longer exists.
pub fn read_state_at(
    dir: BorrowedFd<'_>,
    name: &CStr,
    known: Option<&FileState>,
    regular: bool,
    buf: &mut Vec<u8>,
    mut capture: Option<&mut Vec<u8>>,
) -> Result<Option<(FileState, u64)>, ItemError> {
    let mut last_err = None;
    let mut open_first = regular && known.is_none();
    for _ in 0..RETRIES {
        let stat = if open_first {
            None
        } else {
            match lstat_at(dir, name) {
                Ok(st) => Some(st),
                Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => return Ok(None),
                Err(e) => return Err(ItemError::Io(e)),
            }
        };
        if let Some(st) = &stat {
            let mut state = state_from_stat(st);
            match state.kind {
                FileType::File => {
                    if let Some(k) = known {
                        if k.same_stat(&state) && k.sha256.is_some() {
                            state.sha256 = k.sha256;
                            return Ok(Some((state, 0)));
                        }
                    }
                }
                FileType::Symlink => match nix::fcntl::readlinkat(dir, name) {
                    Ok(t) => {
                        state.target = Some(t.as_bytes().to_vec());
                        return Ok(Some((state, 0)));
                    }
                    Err(Errno::ENOENT) => return Ok(None),
                    // Replaced by something else between lstat and readlink.
                    Err(Errno::EINVAL) => {
                        last_err = Some(ItemError::Swapped);
                        continue;
                    }
                    Err(e) => return Err(ItemError::Io(e)),
                },
                _ => return Ok(Some((state, 0))),
            }
        }
        if let Some(c) = capture.as_deref_mut() {
            c.clear();
        }
        match hash_regular(dir, name, stat.as_ref(), buf, capture.as_deref_mut()) {
            Ok((sha, opened, after, bytes)) => {
                if same_identity(&opened, &after) {
                    let mut state = state_from_stat(&opened);
                    state.sha256 = Some(sha);
                    return Ok(Some((state, bytes)));
                }
                // Written while being read: read it again.
                let mut torn = state_from_stat(&after);
                torn.sha256 = Some(sha);
                last_err = Some(ItemError::Busy(Some(Box::new(torn))));
            }
            Err(OpenError::Gone) => return Ok(None),
            // Not a regular file after all (a symlink or a FIFO swapped
            // in): look at it the careful way.
            Err(OpenError::Swapped) if open_first => open_first = false,
            Err(OpenError::Swapped) => last_err = Some(ItemError::Swapped),
            Err(OpenError::Io(e)) => return Err(ItemError::Io(e)),
            Err(OpenError::Read(e)) => return Err(ItemError::Read(e.to_string())),
        }
    }
    Err(last_err.unwrap_or(ItemError::Busy(None)))
}

fn same_identity(a: &FileStat, b: &FileStat) -> bool {
    a.st_dev == b.st_dev
        && a.st_ino == b.st_ino
        && a.st_size == b.st_size
        && a.st_mtime == b.st_mtime
        && a.st_mtime_nsec == b.st_mtime_nsec
}

/// Why a name could not be read as a regular file.
#[derive(Debug)]
pub enum OpenError {
    /// Nothing is there any more.
    Gone,
    /// Something else is there now: a symlink, FIFO, socket, device,
    /// directory, or another file than the one stat'ed.
    Swapped,
    /// A system call failed.
    Io(Errno),
    /// Reading failed.
    Read(std::io::Error),
}

/// Opens `name` in `dir` for reading if, and only if, it is a regular file:
/// never through a symlink (`O_NOFOLLOW`), never blocking on a FIFO swapped
/// in (`O_NONBLOCK`, then `fstat` rejects it), never as a controlling
/// terminal. Returns the file with the `fstat` of what was opened. Every
/// read of a site file (hashing, diffs, evidence) opens it here.
pub fn open_regular_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<(File, FileStat), OpenError> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let fd = match openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => return Err(OpenError::Gone),
        // ELOOP: it is a symlink; ENXIO: a socket. Either way not ours.
        Err(Errno::ELOOP) | Err(Errno::ENXIO) | Err(Errno::EISDIR) => return Err(OpenError::Swapped),
        Err(e) => return Err(OpenError::Io(e)),
    };
    let file = File::from(fd);
    let st = fstat(&file).map_err(OpenError::Io)?;
    if FileType::from_mode(st.st_mode) != FileType::File {
        return Err(OpenError::Swapped);
    }
    Ok((file, st))
}

/// Opens and hashes a regular file (the one `lstat`ed as `expected`, when
/// given). Returns the hash, the `fstat` before and after reading (to
/// notice a concurrent writer) and the bytes read.
fn hash_regular(
    dir: BorrowedFd<'_>,
    name: &CStr,
    expected: Option<&FileStat>,
    buf: &mut Vec<u8>,
    mut capture: Option<&mut Vec<u8>>,
) -> Result<([u8; 32], FileStat, FileStat, u64), OpenError> {
    let (mut file, opened) = open_regular_at(dir, name)?;
    if expected.is_some_and(|st| opened.st_ino != st.st_ino || opened.st_dev != st.st_dev) {
        return Err(OpenError::Swapped);
    }
    // A file with other hard links may be a secret (wp-config.php) under
    // an innocent name: its content is never kept.
    if opened.st_nlink > 1 {
        capture = None;
    }
    if buf.len() < HASH_BUF {
        buf.resize(HASH_BUF, 0);
    }
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    loop {
        match file.read(buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                total += n as u64;
                if let Some(c) = capture.as_deref_mut() {
                    if total <= crate::content::MAX_SIZE {
                        c.extend_from_slice(&buf[..n]);
                    } else {
                        c.clear();
                        capture = None;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(OpenError::Read(e)),
        }
    }
    let after = fstat(&file).map_err(OpenError::Io)?;
    Ok((hasher.finalize().into(), opened, after, total))
}

pub use crate::util::sha256;

/// Reads the state of one path below `root` component by component, with
/// `O_NOFOLLOW` at every step: a symlinked parent directory means the path
/// does not exist as a file of the site. `Ok(None)`: nothing is there.
pub fn probe(root: &Path, rel: &[u8], known: Option<&FileState>) -> Result<Option<FileState>, ItemError> {
    let Some((dir, name)) = open_parent(root, rel)? else {
        return Ok(None);
    };
    let mut buf = Vec::new();
    Ok(read_state_at(dir.as_fd(), &name, known, false, &mut buf, None)?.map(|(s, _)| s))
}

/// The content of the regular file `rel` below `root`, if it is within the
/// content store's size limit and still hashes to `sha` (never through a
/// symlink, never a FIFO or device).
pub fn read_content(root: &Path, rel: &[u8], sha: &[u8; 32]) -> Option<Vec<u8>> {
    let (dir, name) = open_parent(root, rel).ok()??;
    let (file, st) = open_regular_at(dir.as_fd(), &name).ok()?;
    if st.st_size as u64 > crate::content::MAX_SIZE || st.st_nlink > 1 {
        return None;
    }
    let mut out = Vec::new();
    file.take(crate::content::MAX_SIZE + 1).read_to_end(&mut out).ok()?;
    (sha256(&out) == *sha).then_some(out)
}

/// Opens the directory holding `rel` (without following symlinks below the
/// root) and returns it with the last component. `Ok(None)` when a parent is
/// missing or is not a real directory.
pub fn open_parent(root: &Path, rel: &[u8]) -> Result<Option<(OwnedFd, CString)>, ItemError> {
    let mut dir = open_root(root).map_err(ItemError::Io)?;
    let mut parts = rel.split(|&b| b == b'/').filter(|p| !p.is_empty()).peekable();
    while let Some(part) = parts.next() {
        let c = CString::new(part).map_err(|_| ItemError::Io(Errno::EINVAL))?;
        if parts.peek().is_none() {
            return Ok(Some((dir, c)));
        }
        match open_dir_at(dir.as_fd(), c.as_c_str()) {
            Ok(d) => dir = d,
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) | Err(Errno::ELOOP) => return Ok(None),
            Err(e) => return Err(ItemError::Io(e)),
        }
    }
    Ok(None)
}
