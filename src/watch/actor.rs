//! Who wrote: the process behind a fanotify event, read from `/proc` at
//! event time. With a pidfd (`FAN_REPORT_PIDFD`) the reading is checked
//! against pid reuse: the pidfd still answering after the reading means
//! the process read is the writer. A field that could not be read is
//! `None`, never guessed.

use std::os::fd::{AsRawFd, BorrowedFd};

use crate::model::Actor;

impl Actor {
    /// Reads process `pid`; `pidfd` (when the kernel gave one) guards
    /// against a pid reused between the event and the reading.
    pub fn of(pid: i32, pidfd: Option<BorrowedFd<'_>>) -> Actor {
        let mut a = Actor { pid, ..Actor::default() };
        if pid <= 0 {
            return a;
        }
        // The directory first, then the pidfd: if the writer still exists
        // (running or a zombie) once the directory is open, the directory
        // is the writer's, and every read through it is of the writer (or
        // fails once it is gone), never of a process that reused the pid.
        let Ok(dir) = nix::fcntl::open(
            format!("/proc/{pid}").as_str(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        ) else {
            return a;
        };
        if pidfd.is_some_and(|fd| !alive(fd)) {
            return a;
        }
        let read = |name: &str| -> Option<String> {
            let fd = nix::fcntl::openat(
                &dir,
                name,
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .ok()?;
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut s).ok()?;
            Some(s)
        };
        let status = read("status").unwrap_or_default();
        let field = |name: &str| {
            status.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')).map(str::trim))
        };
        a.ppid = field("PPid").and_then(|v| v.parse().ok());
        // Uid: real, effective, saved, filesystem.
        a.uid = field("Uid").and_then(|v| v.split_whitespace().nth(1)).and_then(|v| v.parse().ok());
        a.comm = read("comm").map(|c| c.trim_end().to_string());
        a.exe = nix::fcntl::readlinkat(&dir, "exe").ok().map(|p| crate::util::bytes::lossless(p.as_encoded_bytes()));
        a.loginuid = read("loginuid").and_then(|v| v.trim().parse::<u32>().ok()).filter(|&u| u != u32::MAX);
        a.cgroup = read("cgroup").and_then(|c| c.lines().find_map(|l| l.strip_prefix("0::")).map(str::to_string));
        a.unit = a.cgroup.as_deref().and_then(unit_of);
        a.user = a.uid.and_then(user_name);
        a.login_user = a.loginuid.and_then(user_name);
        a.ancestors = ancestors(a.ppid);
        a
    }
}

/// The command names of `ppid` and its ancestors, parent first, up to
/// [`crate::model::ANCESTORS`]; pid 1 (and the kernel's threads, pid 0)
/// ends the line. Read from `/proc/PID/stat`, whose command name is between
/// the first `(` and the last `)`.
fn ancestors(mut ppid: Option<i32>) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(pid) = ppid.filter(|&p| p > 1) {
        if out.len() >= crate::model::ANCESTORS {
            break;
        }
        let Ok(stat) = std::fs::read(format!("/proc/{pid}/stat")) else { break };
        let (Some(open), Some(close)) = (stat.iter().position(|&b| b == b'('), stat.iter().rposition(|&b| b == b')'))
        else {
            break;
        };
        out.push(crate::util::bytes::lossless(&stat[open + 1..close.max(open + 1)]));
        // After ") ": the state, then the parent's pid.
        let rest = String::from_utf8_lossy(&stat[close + 1..]);
        ppid = rest.split_whitespace().nth(1).and_then(|v| v.parse().ok());
    }
    out
}

/// Is the process of `pidfd` still there (running, or a zombie)?
pub(super) fn alive(pidfd: BorrowedFd<'_>) -> bool {
    // Safety: signal 0 only checks; the descriptor is valid for the call.
    let r = unsafe {
        nix::libc::syscall(nix::libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), 0, std::ptr::null::<u8>(), 0)
    };
    r == 0 || nix::errno::Errno::last() == nix::errno::Errno::EPERM
}

/// The systemd unit a cgroup path names: its last `.service` or `.scope`
/// component (`/system.slice/php8.2-fpm.service` → `php8.2-fpm.service`).
pub fn unit_of(cgroup: &str) -> Option<String> {
    cgroup.rsplit('/').find(|c| c.ends_with(".service") || c.ends_with(".scope")).map(str::to_string)
}

/// The name of `uid`, from a small per-thread cache (an NSS lookup reads
/// /etc/passwd, slow next to a writer that is exiting).
fn user_name(uid: u32) -> Option<String> {
    thread_local! {
        static NAMES: std::cell::RefCell<std::collections::HashMap<u32, Option<String>>> =
            std::cell::RefCell::new(std::collections::HashMap::new());
    }
    NAMES.with(|n| {
        let mut n = n.borrow_mut();
        if n.len() > 1024 {
            n.clear();
        }
        n.entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok().flatten().map(|u| u.name)
            })
            .clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = Actor::of(std::process::id() as i32, None);
        assert_eq!(me.uid, Some(nix::unistd::geteuid().as_raw()));
        assert!(me.comm.is_some() && me.exe.is_some() && me.ppid.is_some());
        // The test harness's own parent (cargo, a shell) at least, unless
        // it runs straight under pid 1.
        assert!(me.ppid == Some(1) || !me.ancestors.is_empty(), "{me:?}");
        assert!(Actor::of(i32::MAX, None).comm.is_none(), "no such process: nothing guessed");
    }

    #[test]
    fn units_come_from_the_cgroup_path() {
        assert_eq!(unit_of("/system.slice/php8.2-fpm.service").as_deref(), Some("php8.2-fpm.service"));
        assert_eq!(unit_of("/user.slice/user-1000.slice/session-3.scope").as_deref(), Some("session-3.scope"));
        assert_eq!(unit_of("/system.slice/apache2.service/worker").as_deref(), Some("apache2.service"));
        assert_eq!(unit_of("/"), None);
        let a = Actor {
            pid: 7,
            comm: Some("php-fpm8.2".into()),
            user: Some("www-data".into()),
            unit: Some("php8.2-fpm.service".into()),
            ..Actor::default()
        };
        assert_eq!(a.describe(), "php-fpm8.2 (www-data, php8.2-fpm.service)");
    }
}
