//! The data every subsystem shares: the state of one file as the store keeps
//! it, and the `Change` that a scanner or a watcher finds, the policy
//! classifies and every sink reports.
//!
//! Paths inside a site are raw bytes relative to the site root (`RelPath`),
//! because file names on Linux are bytes and an attacker chooses them: a name
//! with a newline or invalid UTF-8 must be stored and reported losslessly.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A path relative to a site root, as raw bytes without a leading slash.
/// The root itself is the empty path.
pub type RelPath = Vec<u8>;

/// What kind of filesystem object a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileType {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (never followed).
    Symlink,
    /// A named pipe (never opened).
    Fifo,
    /// A Unix domain socket.
    Socket,
    /// A character or block device, or any other type `st_mode` names.
    Device,
}

impl FileType {
    /// From the `st_mode` of a stat result.
    pub fn from_mode(mode: u32) -> FileType {
        match mode & libc_mode::S_IFMT {
            libc_mode::S_IFREG => FileType::File,
            libc_mode::S_IFDIR => FileType::Dir,
            libc_mode::S_IFLNK => FileType::Symlink,
            libc_mode::S_IFIFO => FileType::Fifo,
            libc_mode::S_IFSOCK => FileType::Socket,
            _ => FileType::Device,
        }
    }

    /// The name used in alert records and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            FileType::File => "file",
            FileType::Dir => "dir",
            FileType::Symlink => "symlink",
            FileType::Fifo => "fifo",
            FileType::Socket => "socket",
            FileType::Device => "device",
        }
    }

    /// The inverse of [`FileType::as_str`]; `None` for an unknown name.
    pub fn parse(s: &str) -> Option<FileType> {
        Some(match s {
            "file" => FileType::File,
            "dir" => FileType::Dir,
            "symlink" => FileType::Symlink,
            "fifo" => FileType::Fifo,
            "socket" => FileType::Socket,
            "device" => FileType::Device,
            _ => return None,
        })
    }
}

/// The file-type bits of `st_mode`, spelled out so the pure core does not
/// depend on a platform crate for six constants.
mod libc_mode {
    pub const S_IFMT: u32 = 0o170000;
    pub const S_IFREG: u32 = 0o100000;
    pub const S_IFDIR: u32 = 0o040000;
    pub const S_IFLNK: u32 = 0o120000;
    pub const S_IFIFO: u32 = 0o010000;
    pub const S_IFSOCK: u32 = 0o140000;
}

/// The recorded state of one path: what the baseline accepts and what a scan
/// observes. `dev`, `ino`, `ctime_ns` are kept for the stat cache and are not
/// themselves a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileState {
    /// What kind of object the path is.
    pub kind: FileType,
    /// Size in bytes (`st_size`; for a symlink, the length of its target).
    pub size: u64,
    /// Permission bits including setuid/setgid/sticky (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner's user id.
    pub uid: u32,
    /// Owner's group id.
    pub gid: u32,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i64,
    /// Status-change time, ns since the epoch (stat cache only).
    pub ctime_ns: i64,
    /// Device of the filesystem holding it (stat cache only).
    pub dev: u64,
    /// Inode number (stat cache only).
    pub ino: u64,
    /// SHA-256 of the content, for regular files only.
    pub sha256: Option<[u8; 32]>,
    /// The link target as stored in the symlink, never followed.
    pub target: Option<Vec<u8>>,
    /// Number of hard links (names) of the inode.
    pub nlink: u32,
}

impl FileState {
    /// A regular file about to be written: its content's size and hash,
    /// mode and owner (no inode or times yet).
    pub fn to_write(size: u64, sha256: Option<[u8; 32]>, mode: u32, uid: u32, gid: u32) -> FileState {
        FileState {
            kind: FileType::File,
            size,
            mode,
            uid,
            gid,
            mtime_ns: 0,
            ctime_ns: 0,
            dev: 0,
            ino: 0,
            sha256,
            target: None,
            nlink: 1,
        }
    }

    /// A regular file with another name (a hard link): a write through
    /// that name, maybe outside the root, gives no event here.
    pub fn linked(&self) -> bool {
        self.kind == FileType::File && self.nlink > 1
    }

    /// True when the stat fields that any write would change are identical,
    /// so the recorded hash still describes the content.
    pub fn same_stat(&self, other: &FileState) -> bool {
        self.kind == other.kind
            && self.dev == other.dev
            && self.ino == other.ino
            && self.size == other.size
            && self.mtime_ns == other.mtime_ns
            && self.ctime_ns == other.ctime_ns
    }

    /// Compares an accepted state with an observed one and names the change,
    /// if any. Content (type, hash, size, link target) beats metadata (mode,
    /// owner); timestamps and inode numbers alone are not a change, so a
    /// `touch` or an editor's rewrite with identical bytes stays quiet.
    pub fn compare(before: Option<&FileState>, after: Option<&FileState>) -> Option<EventKind> {
        match (before, after) {
            (None, None) => None,
            (None, Some(_)) => Some(EventKind::Added),
            (Some(_), None) => Some(EventKind::Deleted),
            (Some(b), Some(a)) => {
                if b.kind != a.kind || b.sha256 != a.sha256 || b.size != a.size || b.target != a.target {
                    Some(EventKind::Modified)
                } else if b.mode != a.mode || b.uid != a.uid || b.gid != a.gid || b.linked() != a.linked() {
                    Some(EventKind::Metadata)
                } else {
                    None
                }
            }
        }
    }
}

/// What happened to a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// The path exists and the baseline has no entry for it.
    Added,
    /// The content changed: type, hash, size or link target.
    Modified,
    /// The baseline has the path and it is gone.
    Deleted,
    /// Only the mode or the owner changed.
    Metadata,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 4] = [EventKind::Added, EventKind::Modified, EventKind::Deleted, EventKind::Metadata];

    /// The name used in alert records and in rules' `events:`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Added => "added",
            EventKind::Modified => "modified",
            EventKind::Deleted => "deleted",
            EventKind::Metadata => "metadata",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How serious a change is. Ordered: `Info < Low < ... < Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Lowest; below the default mail threshold.
    Info,
    /// Minor; the default mail threshold (`min_severity`).
    Low,
    /// The default when no rule matches and the profile sets no `default_severity`.
    Medium,
    /// Serious: mailed within seconds rather than in a digest.
    High,
    /// Most serious (e.g. code in an upload folder): mailed within seconds.
    Critical,
}

impl Severity {
    /// The lower-case name used in records, rules and the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a change was seen: from a kernel event (including files found by
/// walking a directory that just appeared) or by a scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectedBy {
    /// From a kernel event, or by walking a directory that just appeared.
    Realtime,
    /// By a scan: scheduled, catch-up or on demand.
    Scan,
}

impl DetectedBy {
    /// The name used in alert records (`realtime`, `scan`).
    pub fn as_str(self) -> &'static str {
        match self {
            DetectedBy::Realtime => "realtime",
            DetectedBy::Scan => "scan",
        }
    }
}

/// What the quarantine does with a matching changed file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuarantineAction {
    /// Put the baseline version back (remove the file if it had none).
    Restore,
    /// Remove the live file.
    Remove,
    /// Keep a copy as evidence, leave the live file alone.
    Keep,
}

impl QuarantineAction {
    /// The name used in the config and in records.
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineAction::Restore => "restore",
            QuarantineAction::Remove => "remove",
            QuarantineAction::Keep => "keep",
        }
    }
}

/// One detected change of one path, shared by every source and sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Name of the site the path belongs to.
    pub site: Arc<str>,
    /// The path, relative to the site root.
    pub rel: RelPath,
    /// What happened.
    pub kind: EventKind,
    /// The accepted state; `None` for `Added`.
    pub before: Option<FileState>,
    /// The observed state; `None` for `Deleted`.
    pub after: Option<FileState>,
    /// How the change was seen.
    pub detected_by: DetectedBy,
    /// The change was over before it could be judged: a file added and
    /// removed, or modified and put back.
    pub transient: Option<Transient>,
    /// The path was still changing when it was judged (a "hot" file,
    /// judged at `scan.max_delay`).
    pub hot: bool,
    /// Who wrote it (realtime on the fanotify source; `None` otherwise).
    pub actor: Option<Arc<crate::model::Actor>>,
    /// Names of the signature rules its new content matches.
    pub signatures: Vec<String>,
    /// Why its new content could not be scanned by the signature rules (a
    /// timeout, a scanner error): never taken for "no match".
    pub unscanned: Option<String>,
}

/// A change that was over before it was judged (the record's `transient`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transient {
    /// From the first event to the last (the deletion, or the write that
    /// put the content back), in milliseconds.
    pub lived_ms: u64,
    /// How it ended.
    pub end: TransientEnd,
    /// Its events were one file's life (created once, closed at most
    /// once): if its content was read and reported in that life, they are
    /// late news of it. Not part of the record.
    #[serde(skip)]
    pub one_life: bool,
}

/// How a transient change ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransientEnd {
    /// The file was removed (or moved away).
    Deleted,
    /// The file's content was put back as accepted.
    Restored,
}

#[cfg(test)]
impl FileState {
    /// A regular file of one byte, owned by root, with content `sha`: what a
    /// unit test needs when only the content matters.
    pub fn file_for_test(sha: [u8; 32]) -> FileState {
        FileState {
            kind: FileType::File,
            size: 1,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime_ns: 0,
            ctime_ns: 0,
            dev: 0,
            ino: 0,
            sha256: Some(sha),
            target: None,
            nlink: 1,
        }
    }
}

impl Change {
    /// A change as a walk or a look sees it: not a transient, not hot, no
    /// writer known, no signature matched yet.
    pub fn new(
        site: Arc<str>,
        rel: RelPath,
        kind: EventKind,
        before: Option<FileState>,
        after: Option<FileState>,
        detected_by: DetectedBy,
    ) -> Change {
        Change {
            site,
            rel,
            kind,
            before,
            after,
            detected_by,
            transient: None,
            hot: false,
            actor: None,
            signatures: Vec::new(),
            unscanned: None,
        }
    }

    /// A directory added or removed: kept in the baseline without an alert
    /// (only a directory's mode and owner changes are news).
    pub fn is_silent(&self) -> bool {
        let mut states = self.before.iter().chain(self.after.iter()).peekable();
        self.kind != EventKind::Metadata && states.peek().is_some() && states.all(|s| s.kind == FileType::Dir)
    }

    /// The type of the object the change is about (the new one if any).
    pub fn file_type(&self) -> FileType {
        self.after.as_ref().or(self.before.as_ref()).map(|s| s.kind).unwrap_or(FileType::File)
    }
}

/// The absolute path of `rel` below `root`, as bytes.
pub fn absolute(root: &std::path::Path, rel: &[u8]) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let mut abs = root.as_os_str().as_bytes().to_vec();
    if !rel.is_empty() {
        if abs.last() != Some(&b'/') {
            abs.push(b'/');
        }
        abs.extend_from_slice(rel);
    }
    abs
}

/// True when `rel` is `dir` or below it (`dir` empty: the whole site).
pub fn is_under(rel: &[u8], dir: &[u8]) -> bool {
    dir.is_empty() || (rel.starts_with(dir) && (rel.len() == dir.len() || rel[dir.len()] == b'/'))
}

/// The writer of a change (the record's `actor`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Process id (of the thread group).
    pub pid: i32,
    /// Parent process id.
    pub ppid: Option<i32>,
    /// The executable (`/proc/PID/exe`).
    pub exe: Option<String>,
    /// The command name (`/proc/PID/comm`).
    pub comm: Option<String>,
    /// Effective user id.
    pub uid: Option<u32>,
    /// Its user name.
    pub user: Option<String>,
    /// The audit login uid (who logged in: SSH, FTP), when set.
    pub loginuid: Option<u32>,
    /// Its user name.
    pub login_user: Option<String>,
    /// The systemd unit (service or scope) of its cgroup.
    pub unit: Option<String>,
    /// The cgroup (v2) path.
    pub cgroup: Option<String>,
    /// The command names of its ancestors, parent first (up to
    /// [`ANCESTORS`], not pid 1): what started it, which a process cannot
    /// rename (a shell php-fpm spawned names php-fpm here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ancestors: Vec<String>,
}

/// Ancestors of a writer read, at most.
pub const ANCESTORS: usize = 8;

impl Actor {
    /// Was anything read beyond the pid?
    pub fn named(&self) -> bool {
        self.comm.is_some() || self.exe.is_some()
    }

    /// The mail's line: "php-fpm8.2 (www-data, php8.2-fpm.service)".
    pub fn describe(&self) -> String {
        let who = self.comm.clone().or_else(|| self.exe.clone()).unwrap_or_else(|| format!("pid {}", self.pid));
        let mut details: Vec<String> = Vec::new();
        if let Some(u) = self.user.clone().or_else(|| self.uid.map(|u| format!("uid {u}"))) {
            details.push(u);
        }
        if let Some(l) = self.login_user.as_ref().filter(|l| Some(*l) != self.user.as_ref()) {
            details.push(format!("logged in as {l}"));
        }
        if let Some(unit) = &self.unit {
            details.push(unit.clone());
        }
        let who = crate::util::bytes::printable(who.as_bytes());
        if details.is_empty() {
            who
        } else {
            format!("{who} ({})", crate::util::bytes::printable(details.join(", ").as_bytes()))
        }
    }
}

// Settings the configuration holds for the parts it sets up (the alert
// log, the routes, the realtime source): plain data, here so the compiled
// configuration needs nothing above it.

/// What a line of the alert log is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// The alert record of the interface contract.
    #[default]
    Json,
    /// The record as an Elastic Common Schema document.
    Ecs,
}

/// What a webhook's payload is (`kind:`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookKind {
    /// `{"host", "sent_at", "count", "overflow", "records": [...]}`.
    #[default]
    Json,
    /// A Slack incoming-webhook message (`text`, mrkdwn).
    Slack,
    /// A Mattermost incoming-webhook message (`text`, Markdown).
    Mattermost,
    /// A Teams Workflows message holding an Adaptive Card.
    Teams,
}

/// How messages travel (`alerts.syslog.protocol`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogProtocol {
    /// One datagram a message (RFC 5426), no acknowledgement.
    #[default]
    Udp,
    /// Octet-counted frames (RFC 6587).
    Tcp,
    /// Octet-counted frames over TLS (RFC 5425).
    Tls,
}

/// Where the record goes in a message (`alerts.syslog.format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogFormat {
    /// In structured data; MSG is a one-line summary.
    #[default]
    Rfc5424,
    /// The record as JSON in MSG.
    Json,
}

/// A syslog facility, by name (`alerts.syslog.facility`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyslogFacility(pub u8);

impl Default for SyslogFacility {
    fn default() -> Self {
        SyslogFacility(3) // daemon
    }
}

/// Where a site's realtime events come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RealtimeSource {
    /// fanotify where the kernel, the privileges and the filesystem allow
    /// it, else inotify.
    #[default]
    Auto,
    /// fanotify (inotify, with an error, where it cannot be had).
    Fanotify,
    /// inotify only.
    Inotify,
}

/// The rule's name in a `signatures` entry: an entry is the name alone
/// (a YARA rule) or the name, `: `, and the evidence (the PHP analysis, a
/// rule matched in a decoded payload).
pub fn signature_rule(entry: &str) -> &str {
    entry.split(':').next().unwrap_or(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> FileState {
        FileState {
            kind: FileType::File,
            size: 3,
            mode: 0o644,
            uid: 33,
            gid: 33,
            mtime_ns: 1,
            ctime_ns: 1,
            dev: 1,
            ino: 1,
            sha256: Some([1; 32]),
            target: None,
            nlink: 1,
        }
    }

    #[test]
    fn compare_names_the_change() {
        let a = state();
        assert_eq!(FileState::compare(None, Some(&a)), Some(EventKind::Added));
        assert_eq!(FileState::compare(Some(&a), None), Some(EventKind::Deleted));
        let mut b = a.clone();
        b.mtime_ns = 99;
        b.ino = 7;
        assert_eq!(FileState::compare(Some(&a), Some(&b)), None, "timestamps alone are no change");
        b.mode = 0o755;
        assert_eq!(FileState::compare(Some(&a), Some(&b)), Some(EventKind::Metadata));
        b.sha256 = Some([2; 32]);
        assert_eq!(FileState::compare(Some(&a), Some(&b)), Some(EventKind::Modified));
    }

    #[test]
    fn severities_are_ordered() {
        assert!(Severity::Critical > Severity::High);
        assert!(Severity::Info < Severity::Low);
    }
}
