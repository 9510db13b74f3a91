//! The daemon's detection work, one configuration generation at a time:
//! start a site (watches first, then the baseline or a catch-up scan under
//! them), reconcile paths named by kernel events, scan sites, and emit each
//! change once.
//!
//! Runs on worker threads (blocking I/O), never on the async loop. The
//! decision "alert this change?" is taken under one lock across workers, so
//! a change seen by a scan and by an event at the same moment is alerted
//! once.

use std::collections::HashSet;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::alert::record::QuarantineRecord;
use crate::alert::{diff, AlertRecord, Sinks};
use crate::baseline::{Store, StoreError};
use crate::config::{Config, Site};
use crate::content::ContentStore;
use crate::detect::{self, CompareSpec, RebuildError};
use crate::model::{Change, DetectedBy, EventKind, FileState, FileType, QuarantineAction, RelPath};
use crate::quarantine::{self, QuarantineStore};
use crate::scan::{self, file, ScanError};
use crate::util::time::now_ns;
use crate::watch::{SiteWatcher, WatchError, WatchEvent};

/// Quarantine alerts per path and minute; further rewrites are still undone.
const QUARANTINE_ALERTS: usize = 5;

/// A failure of one unit of daemon work; the daemon goes on.
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error(transparent)]
    Rebuild(#[from] RebuildError),
    #[error(transparent)]
    Sink(#[from] crate::alert::SinkError),
    #[error(transparent)]
    Watch(#[from] WatchError),
}

/// Per-site state of a running generation.
pub struct SiteRt {
    pub watcher: Mutex<Option<SiteWatcher>>,
    /// Raised by the watcher when an event could not be delivered.
    pub lost: Arc<AtomicBool>,
    /// Realtime is incomplete (watch limit): scans stand in.
    pub degraded: AtomicBool,
    /// Changes were held back during a maintenance window: rescan after it.
    pub suppressed: AtomicBool,
}

/// One generation of the running configuration.
pub struct Runtime {
    pub generation: u64,
    pub cfg: Config,
    pub host: String,
    pub sinks: Arc<Sinks>,
    pub sites: Vec<SiteRt>,
    /// Held while deciding whether a change was alerted already.
    pub decide: Arc<Mutex<()>>,
    /// Raised at shutdown: long scans stop early.
    pub cancel: Arc<AtomicBool>,
    /// Earlier versions of text files, for diffs.
    pub content: ContentStore,
    pub quarantine: QuarantineStore,
    /// Runs the admin's quarantine hook, when one is configured.
    hooks: Option<quarantine::hook::HookRunner>,
    limiter: Mutex<quarantine::RateLimit>,
    events: mpsc::Sender<WatchEvent>,
}

/// What starting a site did.
#[derive(Debug)]
pub struct Started {
    pub watches: usize,
    pub degraded: bool,
    pub built_baseline: bool,
    pub alerts: usize,
}

impl Runtime {
    pub fn new(
        generation: u64,
        cfg: Config,
        host: String,
        sinks: Arc<Sinks>,
        decide: Arc<Mutex<()>>,
        events: mpsc::Sender<WatchEvent>,
    ) -> Runtime {
        let content = ContentStore::new(&cfg.state_dir);
        let cfg_state = cfg.state_dir.clone();
        let hooks = if cfg.quarantine.hook.is_empty() {
            None
        } else {
            match quarantine::hook::HookRunner::spawn() {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::error!("cannot start the quarantine hook thread: {e}");
                    None
                }
            }
        };
        let sites = cfg
            .sites
            .iter()
            .map(|_| SiteRt {
                watcher: Mutex::new(None),
                lost: Arc::new(AtomicBool::new(false)),
                degraded: AtomicBool::new(false),
                suppressed: AtomicBool::new(false),
            })
            .collect();
        Runtime {
            generation,
            cfg,
            host,
            sinks,
            sites,
            decide,
            cancel: Arc::new(AtomicBool::new(false)),
            content,
            quarantine: QuarantineStore::new(&cfg_state),
            hooks,
            limiter: Mutex::new(quarantine::RateLimit::new(QUARANTINE_ALERTS, Duration::from_secs(60))),
            events,
        }
    }

    pub fn site_index(&self, name: &str) -> Option<usize> {
        self.cfg.sites.iter().position(|s| &*s.name == name)
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    fn watcher(&self, i: usize) -> std::sync::MutexGuard<'_, Option<SiteWatcher>> {
        // A panic while holding the lock leaves the watcher usable.
        self.sites[i].watcher.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Watches `dir` and below; on the watch limit the site turns degraded.
    fn watch(&self, i: usize, dir: &[u8]) -> Result<usize, WorkError> {
        let site = &self.cfg.sites[i];
        let mut guard = self.watcher(i);
        let Some(w) = guard.as_mut() else {
            return Ok(0);
        };
        match w.watch_tree(dir, &site.policy) {
            Ok(n) => Ok(n),
            // Realtime coverage is incomplete: scans at the fallback
            // interval stand in, and `status` says so.
            Err(e @ (WatchError::Limit { .. } | WatchError::Other { .. })) => {
                if !self.sites[i].degraded.swap(true, Ordering::AcqRel) {
                    tracing::error!(site = %site.name, "{e}");
                }
                Ok(0)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Starts site `i`: watches first, so nothing between them and the
    /// baseline is missed; then builds the baseline, or reports with a
    /// catch-up scan what changed while the daemon was down.
    pub fn start_site(&self, i: usize, store: &mut Store) -> Result<Started, WorkError> {
        let site = &self.cfg.sites[i];
        let watcher = SiteWatcher::new(
            Arc::clone(&site.name),
            &site.real_root,
            self.events.clone(),
            Arc::clone(&self.sites[i].lost),
        )?;
        *self.watcher(i) = Some(watcher);
        let watches = self.watch(i, b"")?;
        let degraded = self.sites[i].degraded.load(Ordering::Acquire);
        if !store.has_baseline(&site.name)? {
            let (stats, problems) = detect::rebuild(store, site, Some(&self.cancel), Some(&self.content))?;
            for (rel, e) in problems {
                tracing::warn!(site = %site.name, "{}: {e}", scan::show(&rel));
            }
            tracing::info!(site = %site.name, files = stats.entries, "baseline built");
            return Ok(Started { watches, degraded, built_baseline: true, alerts: 0 });
        }
        let alerts = self.scan_site(i, store, false)?;
        Ok(Started { watches, degraded, built_baseline: false, alerts })
    }

    /// A full scan of site `i` compared with its baseline; returns the
    /// number of alerts emitted.
    pub fn scan_site(&self, i: usize, store: &mut Store, rehash: bool) -> Result<usize, WorkError> {
        let site = &self.cfg.sites[i];
        let started = now_ns();
        let baseline = store.load(&site.name)?;
        let cmp = detect::compare(&CompareSpec {
            rehash,
            cancel: Some(&self.cancel),
            content: Some(&self.content),
            throttle: self.cfg.scan.throttle,
            ..CompareSpec::new(site, &baseline)
        })?;
        if self.cancelled() {
            // An interrupted walk would look like mass deletion.
            return Ok(0);
        }
        for (rel, e) in &cmp.problems {
            tracing::warn!(site = %site.name, "{}: {e}", scan::show(rel));
        }
        let changed: HashSet<RelPath> = cmp.changes.iter().map(|c| c.rel.clone()).collect();
        let reverted: Vec<RelPath> = store
            .drift_paths(&site.name)?
            .into_iter()
            .filter(|p| !changed.contains(p.as_slice()) && !cmp.problems.iter().any(|(d, _)| detect::is_under(p, d)))
            .collect();
        // A file modified since shortly before the scan began may still be
        // being written (the scan may have read it half-way): hand it to
        // the realtime path, which waits for the writer to finish.
        let fresh_after = started - self.cfg.scan.quiet_period.as_nanos() as i64 * 2;
        let (settled, busy): (Vec<Change>, Vec<Change>) = cmp
            .changes
            .into_iter()
            .partition(|c| c.after.as_ref().is_none_or(|a| a.mtime_ns < fresh_after && a.ctime_ns < fresh_after));
        for c in busy {
            if self
                .events
                .try_send(WatchEvent::Path { site: Arc::clone(&site.name), rel: c.rel, by: DetectedBy::Scan })
                .is_err()
            {
                self.sites[i].lost.store(true, Ordering::Release);
            }
        }
        let n = self.emit(i, store, &settled, &reverted, Some(started))?;
        if i + 1 == self.cfg.sites.len() {
            // After the last site's scan: drop earlier versions nothing
            // refers to any more.
            crate::content::prune_unreferenced(&self.content, store);
        }
        let w = store.write()?;
        w.site_done(&site.name, std::os::unix::ffi::OsStrExt::as_bytes(site.root.as_os_str()), None, Some(started))?;
        w.commit()?;
        Ok(n)
    }

    /// Checks the paths named by kernel events. A path that is now a
    /// directory is watched and walked (its files may predate the watch); a
    /// path that was a directory reports what was below it as deleted.
    pub fn reconcile(
        &self,
        i: usize,
        store: &mut Store,
        mut rels: Vec<RelPath>,
        by: DetectedBy,
    ) -> Result<usize, WorkError> {
        let site = &self.cfg.sites[i];
        rels.sort();
        rels.dedup();
        let mut changes: Vec<Change> = Vec::new();
        let mut reverted: Vec<RelPath> = Vec::new();
        let mut buf = Vec::new();
        for rel in rels {
            // The accepted state: the stat cache for the read, and what the
            // read is compared with.
            let before = store.get(&site.name, &rel)?;
            let now = self.current(site, &rel, before.as_ref(), &mut buf);
            match now {
                Current::Dir => {
                    // The root's own attributes are not tracked; an event on
                    // it must not cost a walk of the whole site.
                    if rel.is_empty() || !site.policy.descend(&rel) {
                        continue;
                    }
                    self.watch(i, &rel)?;
                    let below = store.load_under(&site.name, &rel)?;
                    // Not cancellable: realtime work is finished even at
                    // shutdown, as a cut-short walk would look like deletions.
                    let cmp = detect::compare(&CompareSpec {
                        detected_by: by,
                        start: &rel,
                        content: Some(&self.content),
                        ..CompareSpec::new(site, &below)
                    })?;
                    for (p, e) in &cmp.problems {
                        tracing::warn!(site = %site.name, "{}: {e}", scan::show(p));
                    }
                    changes.extend(cmp.changes);
                }
                Current::Unknown => {}
                Current::State(after) => {
                    if after.is_none() {
                        if let Some(w) = self.watcher(i).as_mut() {
                            if w.watches(&rel) {
                                w.forget_tree(&rel);
                            }
                        }
                    }
                    // Whatever was below this path, if it was a directory.
                    for (below, before) in store.load_under(&site.name, &rel)? {
                        if below != rel && site.policy.watched(&below, before.kind) {
                            changes.push(Change {
                                site: Arc::clone(&site.name),
                                rel: below,
                                kind: EventKind::Deleted,
                                before: Some(before),
                                after: None,
                                detected_by: by,
                            });
                        }
                    }
                    let kind = after.as_ref().or(before.as_ref()).map(|s| s.kind).unwrap_or(FileType::File);
                    if !site.policy.watched(&rel, kind) {
                        continue;
                    }
                    match FileState::compare(before.as_ref(), after.as_ref()) {
                        Some(event) => changes.push(Change {
                            site: Arc::clone(&site.name),
                            rel,
                            kind: event,
                            before,
                            after,
                            detected_by: by,
                        }),
                        None => reverted.push(rel),
                    }
                }
            }
        }
        changes.sort_by(|a, b| a.rel.cmp(&b.rel));
        changes.dedup_by(|a, b| a.rel == b.rel);
        self.emit(i, store, &changes, &reverted, None)
    }

    /// What is at `rel` now (hashing a regular file unless its stat matches
    /// the baseline's).
    fn current(&self, site: &Site, rel: &[u8], known: Option<&FileState>, buf: &mut Vec<u8>) -> Current {
        if rel.is_empty() {
            return Current::Dir;
        }
        let opened = match file::open_parent(&site.real_root, rel) {
            Ok(Some(p)) => p,
            Ok(None) => return Current::State(None),
            Err(e) => {
                tracing::warn!(site = %site.name, "{}: {e}", scan::show(rel));
                return Current::Unknown;
            }
        };
        let (dir, name) = opened;
        match file::lstat_at(dir.as_raw_fd(), &name) {
            Ok(st) if FileType::from_mode(st.st_mode) == FileType::Dir => return Current::Dir,
            Ok(_) => {}
            Err(nix::errno::Errno::ENOENT) => return Current::State(None),
            Err(e) => {
                tracing::warn!(site = %site.name, "{}: {}", scan::show(rel), e.desc());
                return Current::Unknown;
            }
        }
        let keep = !site.policy.nodiff(rel);
        let mut captured = Vec::new();
        let capture = keep.then_some(&mut captured);
        match file::read_state_at(dir.as_raw_fd(), &name, known, buf, capture) {
            Ok(state) => {
                if let Some((s, n)) = &state {
                    if let Some(sha) = s.sha256.as_ref().filter(|_| keep && (*n > 0 || s.size == 0)) {
                        if captured.len() as u64 == s.size {
                            if let Err(e) = self.content.put(sha, &captured) {
                                tracing::warn!("content store: {e}");
                            }
                        }
                    }
                }
                Current::State(state.map(|(s, _)| s))
            }
            Err(e) => {
                tracing::warn!(site = %site.name, "{}: {e}", scan::show(rel));
                Current::Unknown
            }
        }
    }

    /// Alerts each change not alerted before in the same state, then
    /// remembers it (and, with `auto_accept`, accepts it). The records are
    /// on disk before they are remembered: a crash in between repeats an
    /// alert, never loses one.
    /// `since`: for a scan, when it started. Its findings are older than
    /// anything alerted or accepted after that, which wins.
    fn emit(
        &self,
        i: usize,
        store: &mut Store,
        changes: &[Change],
        reverted: &[RelPath],
        since: Option<i64>,
    ) -> Result<usize, WorkError> {
        if changes.is_empty() && reverted.is_empty() {
            return Ok(0);
        }
        let site = &self.cfg.sites[i];
        let _decide = self.decide.lock().unwrap_or_else(|p| p.into_inner());
        if super::maintenance::active(&self.cfg.state_dir, &site.name) {
            // An update on purpose: `sitewarden maintenance` accepts it all;
            // a scan after the window reports whatever it did not.
            self.sites[i].suppressed.store(true, Ordering::Release);
            return Ok(0);
        }
        let now = now_ns();
        let mut records = Vec::new();
        // Changes to remember as alerted drift, and paths back at their
        // accepted state (a quarantine restored or removed them).
        let mut fresh: Vec<&Change> = Vec::new();
        let mut back: Vec<(&Change, bool)> = Vec::new();
        // What is still news, judged now, under the lock: not alerted in
        // this state already, not overtaken by a later alert (for a scan's
        // findings), and against the baseline as it is now (an `accept` or
        // a maintenance window may have moved it during a long scan).
        let mut effective: Vec<Change> = Vec::with_capacity(changes.len());
        for c in changes {
            if let Some((prev, at)) = store.alerted_at(&site.name, &c.rel)? {
                if FileState::compare(prev.as_ref(), c.after.as_ref()).is_none() || since.is_some_and(|t| at > t) {
                    continue;
                }
            }
            let accepted = store.get(&site.name, &c.rel)?;
            if accepted == c.before {
                effective.push(c.clone());
            } else if let Some(kind) = FileState::compare(accepted.as_ref(), c.after.as_ref()) {
                effective.push(Change { kind, before: accepted, ..c.clone() });
            }
        }
        for c in &effective {
            let verdict = site.policy.classify(&c.rel, c.file_type(), c.kind);
            let mut record = AlertRecord::new(&self.host, &site.root, c, &verdict, now);
            let d = diff::of_change(c, &record.path, verdict.nodiff, &self.content, Some(&site.real_root));
            record.diff = d.diff;
            record.diff_note = d.note;
            let mut alert = true;
            if let Some(action) =
                verdict.quarantine.filter(|a| c.kind != EventKind::Deleted || *a == QuarantineAction::Restore)
            {
                // Rate limit per path: a rewrite loop is undone every time,
                // but alerted (and copied as evidence) a few times a minute.
                let allowed = self.limiter.lock().unwrap_or_else(|p| p.into_inner()).check(&site.name, &c.rel, now);
                let act = quarantine::Action {
                    site_root_shown: &site.root,
                    site_root_real: &site.real_root,
                    rule: verdict.rule,
                    action,
                    nodiff: verdict.nodiff,
                    evidence: allowed.is_ok(),
                };
                match quarantine::apply(&self.quarantine, &self.content, c, &act) {
                    Ok(meta) => {
                        tracing::warn!(site = %site.name, id = %meta.id, "quarantine {}: {}", action.as_str(), meta.result);
                        let undone = meta.undone;
                        let mut result = meta.result.clone();
                        match allowed {
                            Ok(0) => {}
                            Ok(held) => result.push_str(&format!(
                                " ({held} earlier changes of this file were undone without an alert)"
                            )),
                            Err(()) if undone => alert = false,
                            Err(()) => {}
                        }
                        if let (Some(hooks), true) = (&self.hooks, alert) {
                            hooks.submit(quarantine::hook::HookJob {
                                argv: self.cfg.quarantine.hook.clone(),
                                env: quarantine::hook_env(&meta, &self.quarantine, verdict.severity.as_str()),
                                timeout: self.cfg.quarantine.hook_timeout,
                                report: quarantine::hook_report(&self.quarantine, &meta.id),
                            });
                        }
                        record.quarantine = Some(QuarantineRecord { id: meta.id, action, result: Some(result) });
                        if undone {
                            back.push((c, alert));
                            if alert {
                                records.push(record);
                            }
                            continue;
                        }
                    }
                    Err(e) => tracing::error!(site = %site.name, "quarantine failed: {e}"),
                }
            }
            if alert {
                records.push(record);
                fresh.push(c);
            }
        }
        let mut forget = Vec::new();
        for rel in reverted {
            if let Some((_, at)) = store.alerted_at(&site.name, rel)? {
                if since.is_none_or(|t| at <= t) {
                    forget.push(rel);
                }
            }
        }
        if records.is_empty() && forget.is_empty() && back.is_empty() {
            return Ok(0);
        }
        self.sinks.deliver(&records)?;
        let w = store.write()?;
        for c in &fresh {
            if site.auto_accept {
                w.accept(&site.name, &c.rel, c.after.as_ref())?;
            } else {
                w.mark_alerted(&site.name, &c.rel, c.after.as_ref(), now)?;
            }
        }
        for (c, _) in &back {
            w.forget_drift(&site.name, &c.rel)?;
            // Refresh the stat cache of a restored file: same content and
            // owner, new inode and times.
            if let Ok(Some(now_state)) = file::probe(&site.real_root, &c.rel, None) {
                if c.before.is_some() && FileState::compare(c.before.as_ref(), Some(&now_state)).is_none() {
                    w.put(&site.name, &c.rel, Some(&now_state))?;
                }
            }
        }
        for rel in forget {
            w.forget_drift(&site.name, rel)?;
        }
        w.commit()?;
        Ok(records.len())
    }

    /// Directories watched by site `i`.
    pub fn watch_count(&self, i: usize) -> usize {
        self.watcher(i).as_ref().map(|w| w.count()).unwrap_or(0)
    }

    /// Stops every watch of this generation.
    pub fn stop_watching(&self) {
        for i in 0..self.sites.len() {
            *self.watcher(i) = None;
        }
    }
}

enum Current {
    Dir,
    /// The state (None: nothing there).
    State(Option<FileState>),
    /// Could not be read: neither confirmed nor reported.
    Unknown,
}
