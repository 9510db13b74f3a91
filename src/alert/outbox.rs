//! The outbox: alerts waiting for mail delivery, under `state_dir/outbox/`,
//! one JSON-lines file per batch of alerts (one sync per batch, so a mass
//! change does not cost a disk flush per file), written before any send and
//! removed only after the mail server accepted them. It survives an SMTP outage and
//! a daemon restart. Its size is bounded: past the bound, alerts are counted
//! (they are in the alert log) and the next mail says how many.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::AlertRecord;
use crate::model::Severity;

/// Alerts kept at most; more are counted, not queued.
pub const MAX_ENTRIES: usize = 20_000;
/// Alerts in one batch file at most (a route takes whole batches, so this
/// bounds how far it can go past what it asked for).
pub const PER_BATCH: usize = 250;

const OVERFLOW_FILE: &str = "overflow";
/// Locked by the courier delivering from the folder ([`Outbox::claim`]).
const CLAIM_FILE: &str = ".sending";

/// The right to deliver from an outbox (see [`Outbox::claim`]).
pub struct Claim {
    _lock: nix::fcntl::Flock<File>,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// One queued batch of alerts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// File name of the batch in the outbox folder (it encodes the fields below).
    pub name: String,
    /// When it was queued (ns since the epoch).
    pub queued_ns: i64,
    /// The highest severity in it.
    pub severity: Severity,
    /// How many alerts it holds.
    pub count: usize,
}

/// An outbox folder: batches of alerts waiting for one route (mail, a webhook,
/// a syslog collector) to take them.
pub struct Outbox {
    dir: PathBuf,
}

fn severity_code(s: Severity) -> char {
    match s {
        Severity::Info => '0',
        Severity::Low => '1',
        Severity::Medium => '2',
        Severity::High => '3',
        Severity::Critical => '4',
    }
}

fn severity_of(c: char) -> Severity {
    match c {
        '0' => Severity::Info,
        '1' => Severity::Low,
        '3' => Severity::High,
        '4' => Severity::Critical,
        _ => Severity::Medium,
    }
}

impl Outbox {
    /// The outbox folder of `state_dir`.
    pub fn dir(state_dir: &Path) -> PathBuf {
        state_dir.join("outbox")
    }

    /// Opens (creating its folder, 0700) the outbox of one route: `leaf`
    /// (`webhook-…`, `syslog`) of the site `site`'s owner or, without a
    /// site, of everyone; with neither, the mail's; a site owner's mail is
    /// `site-NAME/` itself.
    pub fn open_route(state_dir: &Path, site: Option<&str>, leaf: Option<&str>) -> std::io::Result<Outbox> {
        let mut dir = Outbox::dir(state_dir);
        if let Some(name) = site {
            let safe = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
            dir.push(if safe && !name.starts_with('.') {
                format!("site-{name}")
            } else {
                format!("site-{}", crate::util::bytes::hex_bytes(name.as_bytes()))
            });
        }
        if let Some(leaf) = leaf {
            dir.push(leaf);
        }
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
        Ok(Outbox { dir })
    }

    /// Its folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The right to deliver from this outbox, held until the guard is
    /// dropped: an exclusive `flock` on its `.sending` file, so the old and
    /// the new courier of a route (across a reload), or a second process on
    /// the same state dir, never deliver the same batch twice. `None` while
    /// another holder has it (never waits).
    pub fn claim(&self) -> std::io::Result<Option<Claim>> {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(self.dir.join(CLAIM_FILE))?;
        match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(Claim { _lock: lock })),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(std::io::Error::from(e)),
        }
    }

    /// Every outbox folder of `state_dir` (every route, every site owner),
    /// `rejected/` folders left out.
    fn folders(state_dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut dirs = vec![Outbox::dir(state_dir)];
        while let Some(dir) = dirs.pop() {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) && e.file_name() != "rejected" {
                    dirs.push(e.path());
                }
            }
            out.push(dir);
        }
        out
    }

    /// The batches waiting in every outbox of `state_dir`, without
    /// opening: for `status` and the metrics.
    pub fn all(state_dir: &Path) -> Vec<Entry> {
        Outbox::folders(state_dir).into_iter().flat_map(|dir| Outbox { dir }.list().unwrap_or_default()).collect()
    }

    /// Sets aside the alerts queued for routes the config no longer has
    /// (a webhook whose URL changed, a site owner removed): each outbox
    /// folder of `state_dir` but those in `used` moves its batches to its
    /// `rejected/` folder, with a warning. They are in the alert log.
    pub fn retire_unused(state_dir: &Path, used: &[PathBuf]) {
        for dir in Outbox::folders(state_dir).into_iter().filter(|d| !used.contains(d)) {
            let outbox = Outbox { dir };
            let entries = outbox.list().unwrap_or_default();
            if entries.is_empty() {
                continue;
            }
            let n: usize = entries.iter().map(|e| e.count).sum();
            match outbox.reject(&entries) {
                Ok(()) => tracing::warn!(
                    "{n} alerts were queued for a route no longer configured: set aside in {}/rejected (they are in the alert log)",
                    outbox.dir.display()
                ),
                Err(e) => tracing::error!("outbox {}: {e}", outbox.dir.display()),
            }
        }
    }

    /// Number of alerts waiting in every outbox (for `status`).
    pub fn count(state_dir: &Path) -> usize {
        Outbox::all(state_dir).iter().map(|e| e.count).sum()
    }

    /// Queues records in batches of at most [`PER_BATCH`]; returns how many
    /// were queued (the rest overflowed).
    pub fn push(&self, records: &[AlertRecord], now_ns: i64) -> std::io::Result<usize> {
        let waiting: usize = self.list()?.iter().map(|e| e.count).sum();
        let room = MAX_ENTRIES.saturating_sub(waiting);
        let take = records.len().min(room);
        if take < records.len() {
            self.add_overflow((records.len() - take) as u64)?;
        }
        for batch in records[..take].chunks(PER_BATCH) {
            self.push_batch(batch, now_ns)?;
        }
        if take > 0 {
            // The renames themselves must survive a crash.
            File::open(&self.dir)?.sync_all()?;
        }
        Ok(take)
    }

    fn push_batch(&self, batch: &[AlertRecord], now_ns: i64) -> std::io::Result<()> {
        let top = batch.iter().map(|r| r.severity).max().unwrap_or(Severity::Medium);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let name = format!("{now_ns:020}-{}-{seq:08}-{}-{}.jsonl", std::process::id(), severity_code(top), batch.len());
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut text = String::new();
        for r in batch {
            text.push_str(&r.to_json());
            text.push('\n');
        }
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_data()?;
        std::fs::rename(&tmp, self.dir.join(&name))
    }

    /// Every queued batch, oldest first.
    pub fn list(&self) -> std::io::Result<Vec<Entry>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".jsonl") else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let parts: Vec<&str> = stem.split('-').collect();
            let queued_ns = parts.first().and_then(|t| t.parse().ok()).unwrap_or(0);
            let severity = severity_of(parts.get(3).and_then(|s| s.chars().next()).unwrap_or('2'));
            let count = parts.get(4).and_then(|c| c.parse().ok()).unwrap_or(1);
            out.push(Entry { name, queued_ns, severity, count });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The records of a batch (unreadable lines are skipped with a warning:
    /// the alert log still has them).
    pub fn load(&self, e: &Entry) -> Vec<AlertRecord> {
        let Ok(text) = std::fs::read_to_string(self.dir.join(&e.name)) else {
            tracing::warn!("mail outbox: cannot read {}", e.name);
            return Vec::new();
        };
        text.lines()
            .filter_map(|l| match serde_json::from_str(l) {
                Ok(r) => Some(r),
                Err(err) => {
                    tracing::warn!("mail outbox: bad line in {}: {err}", e.name);
                    None
                }
            })
            .collect()
    }

    /// Removes delivered entries.
    pub fn remove(&self, entries: &[Entry]) -> std::io::Result<()> {
        for e in entries {
            match std::fs::remove_file(self.dir.join(&e.name)) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
                _ => {}
            }
        }
        File::open(&self.dir)?.sync_all()
    }

    /// Sets aside batches the mail server refused for good, so they do not
    /// block the rest (they stay in `outbox/rejected/` and the alert log).
    pub fn reject(&self, entries: &[Entry]) -> std::io::Result<()> {
        let dir = self.dir.join("rejected");
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
        for e in entries {
            match std::fs::rename(self.dir.join(&e.name), dir.join(&e.name)) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
                _ => {}
            }
        }
        Ok(())
    }

    /// Alerts that did not fit since the last mail.
    pub fn overflow(&self) -> u64 {
        std::fs::read_to_string(self.dir.join(OVERFLOW_FILE)).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
    }

    fn add_overflow(&self, n: u64) -> std::io::Result<()> {
        let total = self.overflow() + n;
        tracing::error!("mail outbox full ({MAX_ENTRIES} alerts): {n} more alerts are only in the alert log");
        std::fs::write(self.dir.join(OVERFLOW_FILE), total.to_string())
    }

    /// Forgets `reported` of the overflow count, once a delivery has
    /// reported them (what overflowed meanwhile stays counted).
    pub fn take_overflow(&self, reported: u64) -> std::io::Result<()> {
        if reported == 0 {
            return Ok(());
        }
        let left = self.overflow().saturating_sub(reported);
        if left == 0 {
            match std::fs::remove_file(self.dir.join(OVERFLOW_FILE)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        } else {
            std::fs::write(self.dir.join(OVERFLOW_FILE), left.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: usize) -> AlertRecord {
        serde_json::from_str(&format!(
            r#"{{"time":"2026-11-27T18:00:00.123Z","host":"web1","site":"blog","event":"added","path":"/x{n}.php","severity":"high","rule":"r","detected_by":"scan","before":null,"after":null,"diff":null,"quarantine":null}}"#
        ))
        .unwrap()
    }

    #[test]
    fn a_mass_change_is_queued_in_bounded_batches() {
        let state = tempfile::tempdir().unwrap();
        let o = Outbox::open_route(state.path(), None, None).unwrap();
        let recs: Vec<AlertRecord> = (0..600).map(rec).collect();
        assert_eq!(o.push(&recs, 1).unwrap(), 600);
        let counts: Vec<usize> = o.list().unwrap().iter().map(|e| e.count).collect();
        assert_eq!(counts, vec![250, 250, 100]);
    }

    #[test]
    fn one_holder_at_a_time_delivers_from_an_outbox_and_the_lock_is_no_batch() {
        let state = tempfile::tempdir().unwrap();
        // The old and the new courier of a route open the folder apart.
        let old = Outbox::open_route(state.path(), None, Some("webhook-a")).unwrap();
        let new = Outbox::open_route(state.path(), None, Some("webhook-a")).unwrap();
        let held = old.claim().unwrap().expect("free at first");
        assert!(new.claim().unwrap().is_none(), "held by the old courier");
        drop(held);
        assert!(new.claim().unwrap().is_some(), "free once the old one is done");
        assert!(new.list().unwrap().is_empty(), "the lock file is not a queued batch");
        assert_eq!(Outbox::count(state.path()), 0);
    }

    #[test]
    fn the_queue_of_a_route_no_longer_configured_is_set_aside() {
        let state = tempfile::tempdir().unwrap();
        let kept = Outbox::open_route(state.path(), None, Some("webhook-a")).unwrap();
        let gone = Outbox::open_route(state.path(), Some("blog"), Some("webhook-b")).unwrap();
        kept.push(&[rec(1)], 1).unwrap();
        gone.push(&[rec(2), rec(3)], 1).unwrap();
        assert_eq!(Outbox::count(state.path()), 3);
        Outbox::retire_unused(state.path(), &[kept.path().to_path_buf()]);
        assert_eq!(Outbox::count(state.path()), 1);
        assert_eq!(kept.list().unwrap().len(), 1);
        assert_eq!(std::fs::read_dir(gone.path().join("rejected")).unwrap().count(), 1);
    }
}
