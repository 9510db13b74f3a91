//! The judge: the one owner of every decision. It alone writes the baseline
//! store, quarantines, runs the hook and delivers to the sinks; realtime
//! and scan workers only observe (stat, hash, compare with a read of the
//! store) and send it what they saw.
//!
//! It runs on its own thread, serving three bounded queues in a fixed
//! order: realtime observations first, then control messages (reload,
//! baseline writes, hook outcomes), then scans. A scan's findings are taken
//! [`SCAN_CHUNK`] changes at a time with the realtime queue looked at
//! between chunks, so a scan that finds ten thousand changes never holds a
//! realtime alert for longer than one chunk.
//!
//! Because one thread decides, "was this change alerted already?" needs no
//! lock: a change seen by a scan and by an event at the same moment reaches
//! the judge twice, and the second finds the first remembered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::generation::Generation;
use super::maintenance;
use super::staging;
use super::updates;
use crate::alert::record::QuarantineRecord;
use crate::alert::{diff, AlertRecord, SinkError, Sinks};
use crate::baseline::{Store, StoreError};
use crate::content::ContentStore;
use crate::model::{Change, EventKind, FileState, QuarantineAction, RelPath, Severity, TransientEnd};
use crate::quarantine::{self, hook, QuarantineStore};
use crate::scan::file;
use crate::util::supervise::Supervisor;
use crate::util::time::now_ns;
use crate::watch::own::OwnWrites;

/// Changes of a scan judged before the realtime queue is looked at again.
pub const SCAN_CHUNK: usize = 256;
/// Realtime observations waiting for the judge; a full queue makes the
/// realtime worker wait (never drop).
const REALTIME_QUEUE: usize = 1024;
/// Scan observations waiting (each may hold a whole site's changes).
const SCAN_QUEUE: usize = 8;
const CONTROL_QUEUE: usize = 256;
/// Quarantine alerts per path and minute; further rewrites are still undone.
const QUARANTINE_ALERTS: usize = 5;
/// Records kept until their hook has run, to name a failure; beyond this a
/// hook's failure is only logged.
const HOOKS_TRACKED: usize = 1024;
/// Adds `text` to what the record says its quarantine did.
fn add_to_result(record: &mut AlertRecord, text: String) {
    if let Some(q) = record.quarantine.as_mut() {
        q.result = Some(format!("{}{text}", q.result.take().unwrap_or_default()));
    }
}

/// Hook runs kept waiting for room in that queue (a burst of quarantined
/// files: each gets its run, later); past this a run is not made, and its
/// record says so.
const HOOK_BACKLOG: usize = 10_000;

/// What a worker saw of one site: changes against the baseline, and paths
/// found back at their accepted state.
pub struct Observed {
    /// The configuration generation the observation was made under.
    pub generation: Arc<Generation>,
    /// Index of the site in that generation.
    pub site: usize,
    /// Changes against the baseline as read by the worker.
    pub changes: Vec<Change>,
    /// Paths whose drift is gone (restored, or changed back).
    pub reverted: Vec<RelPath>,
    /// For a full scan: when it started. Its findings are older than
    /// anything alerted or accepted after that, which wins; once judged,
    /// the site is recorded as scanned at that time.
    pub scan_started: Option<i64>,
    /// Told how many alerts were sent, once judged.
    pub done: Option<oneshot::Sender<usize>>,
}

/// A first baseline, hashed by a worker, to be written in one transaction.
pub struct BaselineBuilt {
    /// The generation it was built under.
    pub generation: Arc<Generation>,
    /// Index of the site.
    pub site: usize,
    /// Every watched path and its state.
    pub entries: Vec<(RelPath, FileState)>,
    /// When the walk began.
    pub started: i64,
    /// Told the outcome.
    pub done: oneshot::Sender<Result<(), String>>,
}

/// Messages other than observations.
pub enum Control {
    /// A new configuration is in force: deliver to these sinks from now on.
    Reload(Sinks),
    /// Write a first baseline.
    Baseline(BaselineBuilt),
    /// A quarantine hook finished (`failure`: why it failed).
    Hook {
        /// The quarantine item the hook ran for.
        id: String,
        /// Why the hook failed; `None` when it succeeded.
        failure: Option<String>,
    },
}

/// The senders to the judge, cloned by workers and the loop.
#[derive(Clone)]
pub struct JudgeHandle {
    realtime: mpsc::Sender<Observed>,
    scans: mpsc::Sender<Observed>,
    control: mpsc::Sender<Control>,
    /// Since when the judge is busy with work (ns since the epoch); 0 while
    /// it waits for some. An idle judge wakes for nothing.
    busy_since: Arc<AtomicI64>,
}

/// The judge is gone (it died, or the daemon is stopping).
#[derive(Debug, thiserror::Error)]
#[error("the judge thread is gone")]
pub struct JudgeGone;

impl JudgeHandle {
    /// Hands over a realtime observation (waits while the queue is full).
    pub fn realtime(&self, o: Observed) -> Result<(), JudgeGone> {
        self.realtime.blocking_send(o).map_err(|_| JudgeGone)
    }

    /// Hands over a realtime observation from the async loop.
    pub async fn realtime_async(&self, o: Observed) -> Result<(), JudgeGone> {
        self.realtime.send(o).await.map_err(|_| JudgeGone)
    }

    /// Hands over a scan's observation (waits while the queue is full).
    pub fn scan(&self, o: Observed) -> Result<(), JudgeGone> {
        self.scans.blocking_send(o).map_err(|_| JudgeGone)
    }

    /// Sends a control message from a worker thread.
    pub fn control_blocking(&self, c: Control) -> Result<(), JudgeGone> {
        self.control.blocking_send(c).map_err(|_| JudgeGone)
    }

    /// Sends a control message from async code.
    pub async fn control(&self, c: Control) -> Result<(), JudgeGone> {
        self.control.send(c).await.map_err(|_| JudgeGone)
    }

    /// Has the judge been on one piece of work for longer than `limit`
    /// (hung on a dead disk, say)? Waiting for work is not being stuck.
    pub fn stalled(&self, limit: Duration) -> bool {
        let since = self.busy_since.load(Ordering::Acquire);
        since != 0 && now_ns() - since > limit.as_nanos() as i64
    }
}

/// A judge failure that stops it (and so the daemon).
#[derive(Debug, thiserror::Error)]
enum Fatal {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// Starts the judge thread. `sinks` are the first generation's; `own`
/// registers the quarantine's writes (shared with the fanotify source).
pub fn spawn(
    state_dir: &std::path::Path,
    content: ContentStore,
    host: String,
    sinks: Sinks,
    own: Arc<OwnWrites>,
    supervisor: &Supervisor,
) -> Result<JudgeHandle, super::DaemonError> {
    let (rt_tx, rt_rx) = mpsc::channel(REALTIME_QUEUE);
    let (scan_tx, scan_rx) = mpsc::channel(SCAN_QUEUE);
    let (ctl_tx, ctl_rx) = mpsc::channel(CONTROL_QUEUE);
    let busy_since = Arc::new(AtomicI64::new(0));
    let handle = JudgeHandle { realtime: rt_tx, scans: scan_tx, control: ctl_tx.clone(), busy_since };
    let store = Store::open_lean(state_dir)?;
    let judge = Judge {
        store,
        content,
        quarantine: QuarantineStore::new(state_dir),
        own,
        limiter: quarantine::RateLimit::new(QUARANTINE_ALERTS, Duration::from_secs(60)),
        hooks: None,
        hook_control: ctl_tx.downgrade(),
        supervisor: supervisor.clone(),
        waiting_hooks: HashMap::new(),
        hook_backlog: std::collections::VecDeque::new(),
        evicted: Vec::new(),
        sinks,
        host,
        busy_since: Arc::clone(&handle.busy_since),
        recent: HashMap::new(),
        updates: HashMap::new(),
        awaiting: Vec::new(),
        staged: HashMap::new(),
    };
    supervisor
        .spawn("sw-judge", move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map_err(|e| format!("cannot start the judge's runtime: {e}"))?;
            runtime.block_on(judge.serve(rt_rx, scan_rx, ctl_rx)).map_err(|e| e.to_string())
        })
        .map_err(|source| super::DaemonError::Io { what: "cannot start the judge thread".into(), source })?;
    Ok(handle)
}

/// Most changes judged (and made durable) as one realtime batch.
const GROUP_MAX: usize = 512;

/// Group commit: `first` and the realtime observations already queued
/// behind it for the same site and generation, as one batch, so that a
/// storm costs one alert-log and outbox write per batch rather than per
/// worker look. Nothing waits for more: only what is already queued
/// joins. An observation that touches a path of the batch (or asks to be
/// told when judged) is not merged: it is returned, to be judged next.
fn group(mut first: Observed, queue: &mut mpsc::Receiver<Observed>) -> (Observed, Option<Observed>) {
    if first.done.is_some() || first.scan_started.is_some() {
        return (first, None);
    }
    let mut seen: std::collections::HashSet<RelPath> =
        first.changes.iter().map(|c| c.rel.clone()).chain(first.reverted.iter().cloned()).collect();
    while first.changes.len() < GROUP_MAX {
        let Ok(next) = queue.try_recv() else { break };
        let same = Arc::ptr_eq(&next.generation, &first.generation) && next.site == first.site;
        let apart = next.changes.iter().map(|c| &c.rel).chain(next.reverted.iter()).all(|r| !seen.contains(r));
        if !same || !apart || next.done.is_some() || next.scan_started.is_some() {
            return (first, Some(next));
        }
        seen.extend(next.changes.iter().map(|c| c.rel.clone()).chain(next.reverted.iter().cloned()));
        first.changes.extend(next.changes);
        first.reverted.extend(next.reverted);
    }
    (first, None)
}

struct Judge {
    /// Changes of packages that may be being updated, held until the
    /// package settles (see [`updates`](super::updates)).
    updates: HashMap<(Arc<str>, String), updates::Held>,
    /// Packages alerted while the publisher of their new release could not
    /// be reached, waiting for it.
    awaiting: Vec<updates::Awaiting>,
    /// Changes in WordPress's staging folders, held until the update that
    /// staged them is over (see [`staging`](super::staging)).
    staged: HashMap<(Arc<str>, RelPath), staging::Staged>,
    /// Realtime alerts of the last moments, by path: the severity and when
    /// (nanoseconds). A hot path is alerted once, then again only when it
    /// settles or its severity rises.
    recent: HashMap<(Arc<str>, RelPath), (Severity, i64)>,
    store: Store,
    content: ContentStore,
    quarantine: QuarantineStore,
    /// The daemon's own writes: registered before the quarantine writes.
    own: Arc<OwnWrites>,
    limiter: quarantine::RateLimit,
    /// The hook thread, started when a hook first has to run.
    hooks: Option<hook::HookRunner>,
    /// Where the hook thread reports (weak: it must not keep the judge's
    /// queue open).
    hook_control: mpsc::WeakSender<Control>,
    supervisor: Supervisor,
    /// Records whose quarantine hook has not reported yet, by item id.
    waiting_hooks: HashMap<String, AlertRecord>,
    /// Hook runs waiting for room in the hook thread's queue.
    hook_backlog: std::collections::VecDeque<hook::HookJob>,
    /// Alerts for quarantine items purged by its cap, sent with the
    /// records of the change that made room necessary.
    evicted: Vec<AlertRecord>,
    sinks: Sinks,
    host: String,
    busy_since: Arc<AtomicI64>,
}

/// What becomes of a judged change.
enum Fate {
    /// Alerted: remembered as drift (or accepted, with `auto_accept`).
    Drift,
    /// Quarantined back to its accepted state: its drift is forgotten.
    Undone,
    /// Put back to the release's own file, which becomes its baseline.
    Repaired,
    /// Held back by the rate limit and not undone: judged again later.
    Held,
}

/// What the judge's wait brought.
enum Next {
    Realtime(Option<Observed>),
    Control(Control),
    Scan(Option<Observed>),
    /// A held package update is due to be looked at.
    Updates,
}

async fn sleep_until(t: Option<std::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}

/// A scan observation being judged chunk by chunk.
struct ScanInProgress {
    obs: Observed,
    next: usize,
    alerts: usize,
}

impl Judge {
    async fn serve(
        mut self,
        mut realtime: mpsc::Receiver<Observed>,
        mut scans: mpsc::Receiver<Observed>,
        mut control: mpsc::Receiver<Control>,
    ) -> Result<(), Fatal> {
        let mut current: Option<ScanInProgress> = None;
        let (mut rt_open, mut scans_open) = (true, true);
        // A realtime observation taken from the queue but not merged into
        // the batch before it (it touched one of its paths).
        let mut carried: Option<Observed> = None;
        loop {
            // Every unit of work (an observation, a message, a chunk) is
            // stamped: the watchdog asks whether one of them hangs, not
            // whether an attack keeps the judge busy.
            self.busy_since.store(now_ns(), Ordering::Release);
            if self.next_update().is_some_and(|t| t <= std::time::Instant::now()) {
                self.settle_updates()?;
            }
            // Realtime first, then control, then one chunk of the scan at hand.
            if let Some(o) = carried.take().or_else(|| realtime.try_recv().ok()) {
                let (batch, left) = group(o, &mut realtime);
                carried = left;
                self.judge_realtime(batch)?;
                continue;
            }
            if let Ok(c) = control.try_recv() {
                self.control(c)?;
                continue;
            }
            if let Some(scan) = current.as_mut() {
                if self.judge_chunk(scan)? {
                    if let Some(done) = current.take() {
                        self.finish_scan(done)?;
                    }
                }
                continue;
            }
            if !rt_open && !scans_open {
                return Ok(());
            }
            self.busy_since.store(0, Ordering::Release);
            let update_due = self.next_update();
            let next = tokio::select! {
                biased;
                o = realtime.recv(), if rt_open => Next::Realtime(o),
                Some(c) = control.recv() => Next::Control(c),
                o = scans.recv(), if scans_open => Next::Scan(o),
                _ = sleep_until(update_due) => Next::Updates,
            };
            self.busy_since.store(now_ns(), Ordering::Release);
            match next {
                Next::Realtime(Some(o)) => {
                    let (batch, left) = group(o, &mut realtime);
                    carried = left;
                    self.judge_realtime(batch)?;
                }
                Next::Realtime(None) => rt_open = false,
                Next::Control(c) => self.control(c)?,
                Next::Scan(Some(o)) => current = Some(ScanInProgress { obs: o, next: 0, alerts: 0 }),
                Next::Scan(None) => scans_open = false,
                Next::Updates => self.settle_updates()?,
            }
        }
    }

    fn judge_realtime(&mut self, mut o: Observed) -> Result<(), Fatal> {
        let changes = std::mem::take(&mut o.changes);
        let n = self.emit(&o.generation, o.site, &changes, &o.reverted, None, true)?;
        if let Some(done) = o.done {
            let _ = done.send(n);
        }
        Ok(())
    }

    /// Judges the next chunk of a scan; true when it is all judged.
    fn judge_chunk(&mut self, scan: &mut ScanInProgress) -> Result<bool, Fatal> {
        let end = (scan.next + SCAN_CHUNK).min(scan.obs.changes.len());
        let last = end == scan.obs.changes.len();
        // Reverted paths go with the last chunk, after every change.
        let reverted: &[RelPath] = if last { &scan.obs.reverted } else { &[] };
        let chunk = &scan.obs.changes[scan.next..end];
        scan.alerts += self.emit(&scan.obs.generation, scan.obs.site, chunk, reverted, scan.obs.scan_started, true)?;
        scan.next = end;
        Ok(last)
    }

    fn finish_scan(&mut self, scan: ScanInProgress) -> Result<(), Fatal> {
        let ScanInProgress { obs, alerts, .. } = scan;
        if let Some(started) = obs.scan_started {
            let site = &obs.generation.cfg.sites[obs.site];
            let w = self.store.write()?;
            w.site_done(
                &site.name,
                std::os::unix::ffi::OsStrExt::as_bytes(site.root.as_os_str()),
                None,
                Some(started),
            )?;
            w.commit()?;
            if obs.site + 1 == obs.generation.cfg.sites.len() {
                // After the last site's scan: drop earlier versions nothing
                // refers to any more.
                crate::content::prune_unreferenced(&self.content, &self.store);
            }
            crate::content::enforce_cap(&self.content, &self.store, obs.generation.cfg.state.content_max);
        }
        if let Some(done) = obs.done {
            let _ = done.send(alerts);
        }
        Ok(())
    }

    fn control(&mut self, c: Control) -> Result<(), Fatal> {
        match c {
            Control::Reload(mut sinks) => {
                // The count of alerts goes on across configurations.
                sinks.counts = self.sinks.counts.clone();
                self.sinks = sinks;
            }
            Control::Baseline(b) => {
                let result = self.write_baseline(&b).map_err(|e| e.to_string());
                let _ = b.done.send(result);
            }
            Control::Hook { id, failure } => {
                // A run is done: room for one that waited.
                self.feed_hooks();
                let Some(mut record) = self.waiting_hooks.remove(&id) else { return Ok(()) };
                if let Some(why) = failure {
                    // The change was alerted already; this record says that
                    // the admin's hook did not do its part.
                    add_to_result(&mut record, format!("; hook failed: {why}"));
                    record.time = crate::util::time::rfc3339_ms(now_ns());
                    self.sinks.deliver(&[record])?;
                }
            }
        }
        Ok(())
    }

    fn write_baseline(&mut self, b: &BaselineBuilt) -> Result<(), StoreError> {
        let site = &b.generation.cfg.sites[b.site];
        let root = std::os::unix::ffi::OsStrExt::as_bytes(site.root.as_os_str());
        self.store.write_baseline(&site.name, root, &b.entries, b.started)?;
        crate::content::enforce_cap(&self.content, &self.store, b.generation.cfg.state.content_max);
        // Accepted, but worth saying: a file with another name can be
        // written through it without an event here.
        let now = now_ns();
        let records: Vec<AlertRecord> = b
            .entries
            .iter()
            .filter(|(_, s)| s.linked())
            .map(|(rel, s)| {
                let c = Change::new(
                    Arc::clone(&site.name),
                    rel.clone(),
                    EventKind::Metadata,
                    None,
                    Some(s.clone()),
                    crate::model::DetectedBy::Scan,
                );
                AlertRecord::new(&self.host, &site.root, &c, &site.policy.verdict(&c), now)
            })
            .collect();
        if let Err(e) = self.sinks.deliver(&records) {
            tracing::error!(site = %site.name, "{e}");
        }
        Ok(())
    }

    /// Alerts each change not alerted before in the same state, then
    /// remembers it (and, with `auto_accept`, accepts it). The records are
    /// on disk before they are remembered: a crash in between repeats an
    /// alert, never loses one.
    /// `since`: for a scan, when it started. Its findings are older than
    /// anything alerted or accepted after that, which wins. `hold`: a
    /// change that may be part of a package update waits for the package
    /// to settle.
    fn emit(
        &mut self,
        generation: &Arc<Generation>,
        i: usize,
        changes: &[Change],
        reverted: &[RelPath],
        since: Option<i64>,
        hold: bool,
    ) -> Result<usize, Fatal> {
        if changes.is_empty() && reverted.is_empty() {
            return Ok(0);
        }
        let site = &generation.cfg.sites[i];
        if maintenance::active(&generation.cfg.state_dir, &site.name) {
            // An update on purpose: `sitewarden maintenance` accepts it all;
            // a scan after the window reports whatever it did not.
            generation.sites[i].suppressed.store(true, Ordering::Release);
            return Ok(0);
        }
        let now = now_ns();
        let (effective, told) = self.still_news(&site.name, changes, since)?;
        let reverted: std::borrow::Cow<'_, [RelPath]> = match told.is_empty() {
            true => reverted.into(),
            false => reverted.iter().cloned().chain(told).collect::<Vec<_>>().into(),
        };
        let reverted = reverted.as_ref();
        let mut records = Vec::new();
        // Changes to remember as alerted drift, and paths back at their
        // accepted state (a quarantine restored or removed them).
        let mut fresh: Vec<&Change> = Vec::new();
        let mut back: Vec<&Change> = Vec::new();
        let mut silent: Vec<&Change> = Vec::new();
        let mut repaired: Vec<&Change> = Vec::new();
        for c in &effective {
            crate::util::fault::point("judge", &c.rel);
            if c.is_silent() {
                silent.push(c);
                continue;
            }
            if hold && (self.stage(generation, i, c) || self.hold(generation, i, c)) {
                continue;
            }
            let (record, fate) = self.judge_one(generation, i, c, now);
            match fate {
                Fate::Drift => {
                    self.await_also(generation, i, c);
                    fresh.push(c);
                }
                Fate::Undone => back.push(c),
                Fate::Repaired => repaired.push(c),
                Fate::Held => {}
            }
            records.extend(record);
        }
        records.append(&mut self.evicted);
        let forget = self.forgettable(&site.name, reverted, since)?;
        if records.is_empty() && forget.is_empty() && back.is_empty() && silent.is_empty() && repaired.is_empty() {
            return Ok(0);
        }
        self.sinks.deliver(&records)?;
        self.persist(site, &fresh, &back, &forget, now)?;
        if !silent.is_empty() || !repaired.is_empty() {
            let w = self.store.write()?;
            for c in silent {
                w.accept(&site.name, &c.rel, c.after.as_ref())?;
            }
            // Put back to the release's own file: that is the baseline now.
            for c in repaired {
                if let Ok(Some(state)) = file::probe(&site.real_root, &c.rel, None) {
                    w.accept(&site.name, &c.rel, Some(&state))?;
                }
            }
            w.commit()?;
        }
        // Cheap when under the cap (a counter); prunes when over.
        crate::content::enforce_cap(&self.content, &self.store, generation.cfg.state.content_max);
        Ok(records.len())
    }

    /// The record of one change (none when the rate limit holds it back)
    /// and what becomes of it, after its quarantine if a rule says so.
    fn judge_one(&mut self, generation: &Generation, i: usize, c: &Change, now: i64) -> (Option<AlertRecord>, Fate) {
        let site = &generation.cfg.sites[i];
        let mut verdict = site.policy.verdict(c);
        // Known-good: against what was deployed.
        let vendor = generation.sites[i].verdict(&site.real_root, &c.rel, c.after.as_ref());
        if c.rel.ends_with(b"version.php")
            || c.rel.starts_with(b"wp-content/plugins/") && c.rel.ends_with(b".php")
            || c.rel.starts_with(b"wp-content/themes/") && c.rel.ends_with(b"/style.css")
        {
            // Maybe a new version: the loop looks at the packages again.
            generation.sites[i].vendors_stale.store(true, Ordering::Release);
        }
        match vendor.as_ref().map(|v| v.origin) {
            Some(crate::releases::Origin::Tampered) => {
                verdict.severity = Severity::Critical;
                verdict.rule = "vendor-tampered".into();
                // The version file (`version.php`, a plugin's main file, a
                // theme's `style.css`) names another release than the
                // package's files are.
                let lies = vendor.as_ref().and_then(|v| {
                    let (p, _) = generation.sites[i].package(&v.package)?;
                    Some(p.version_file == c.rel && p.version != v.version)
                });
                if lies.unwrap_or(false) {
                    verdict.rule = "vendor-version-mismatch".into();
                }
            }
            Some(crate::releases::Origin::Foreign) => {
                verdict.severity = Severity::Critical;
                verdict.rule = "vendor-foreign".into();
            }
            _ => {}
        }
        if verdict.quarantine.is_none() && self.still_hot(generation, c, verdict.severity, now) {
            return (None, Fate::Held);
        }
        // A tampered file of a release is shown (and repaired) against the
        // release's own file, when the release archive is at hand.
        let pristine = match vendor.as_ref().map(|v| v.origin) {
            Some(crate::releases::Origin::Tampered) if c.after.is_some() => generation.sites[i].pristine(&c.rel),
            _ => None,
        };
        let pristine_change = pristine.as_ref().and_then(|(bytes, _)| {
            let sha = crate::util::sha256(bytes);
            self.content.put(&sha, bytes).ok()?;
            let shape = c.before.as_ref().or(c.after.as_ref())?;
            let before = FileState { sha256: Some(sha), size: bytes.len() as u64, nlink: 1, ..shape.clone() };
            Some(Change { before: Some(before), kind: EventKind::Modified, ..c.clone() })
        });
        // Built after the quarantine acted: undoing comes first.
        let build = |content: &ContentStore| {
            let shown = pristine_change.as_ref().unwrap_or(c);
            let mut r = diff::record_with_diff(&self.host, site, shown, &verdict, content, Some(&site.real_root), now);
            if let (Some(_), Some((_, release))) = (&pristine_change, &pristine) {
                r.event = c.kind;
                r.before = c.before.as_ref().map(crate::alert::record::StateRecord::from);
                let note = format!("diff against the pristine file of {release}");
                r.diff_note = Some(match r.diff_note.take() {
                    Some(n) => format!("{note}; {}", diff::note_text(&n)),
                    None => note,
                });
            }
            r.verdict = vendor.clone();
            r
        };
        if let Some(t) = c.transient {
            let ours = c
                .after
                .as_ref()
                .is_some_and(|a| self.own.was_placed(&crate::model::absolute(&site.real_root, &c.rel), (a.dev, a.ino)));
            if ours {
                return (None, Fate::Undone);
            }
            // Over already: nothing to quarantine, no drift to remember.
            let mut record = build(&self.content);
            if record.diff.as_deref().is_none_or(str::is_empty) && !verdict.nodiff {
                record.diff = None;
                record.diff_note = Some(match t.end {
                    TransientEnd::Deleted => "gone before it could be read".to_string(),
                    TransientEnd::Restored => "put back before the changed content could be read".to_string(),
                });
            }
            return (Some(record), Fate::Undone);
        }
        let Some(action) =
            verdict.quarantine.filter(|a| c.kind != EventKind::Deleted || *a == QuarantineAction::Restore)
        else {
            return (Some(build(&self.content)), Fate::Drift);
        };
        // Rate limit per path: a rewrite loop is undone every time, but
        // alerted (and copied as evidence) a few times a minute.
        let allowed = self.limiter.check(&site.name, &c.rel, now);
        let act = quarantine::Action {
            site_root_shown: &site.root,
            site_root_real: &site.real_root,
            rule: &verdict.rule,
            action,
            nodiff: verdict.nodiff,
            evidence: allowed.is_ok(),
            secrets: site.policy.secrets(),
            severity: verdict.severity,
            max_size: generation.cfg.quarantine.max_size,
            own: &self.own,
        };
        // Repair: where the accepted version is not kept, or is itself not
        // the release's, a restore puts the release's own file back.
        let repair = match (&pristine_change, action) {
            (Some(p), QuarantineAction::Restore) => {
                let kept = c.before.as_ref().and_then(|b| b.sha256).is_some_and(|sha| self.content.get(&sha).is_some());
                let good = generation.sites[i].vouches(&site.real_root, &c.rel, c.before.as_ref());
                (!kept || !good).then_some(p)
            }
            _ => None,
        };
        let meta = match quarantine::apply(&self.quarantine, &self.content, repair.unwrap_or(c), &act) {
            Ok(applied) => {
                self.evicted.extend(quarantine::evicted_records(&self.host, &generation.cfg, &applied.evicted));
                applied.meta
            }
            Err(e) => {
                tracing::error!(site = %site.name, "quarantine failed: {e}");
                return (Some(build(&self.content)), Fate::Drift);
            }
        };
        tracing::warn!(site = %site.name, id = %meta.id, "quarantine {}: {}", action.as_str(), meta.result);
        let mut result = meta.result.clone();
        if let (Some(_), Some((_, release)), true) = (repair, &pristine, meta.undone) {
            result.push_str(&format!(" to the pristine file of {release}"));
        }
        let alert = match allowed {
            Ok(0) => true,
            Ok(held) => {
                result.push_str(&format!(" ({held} earlier changes of this file were undone without an alert)"));
                true
            }
            Err(()) => !meta.undone,
        };
        let fate = match (meta.undone, alert) {
            (true, _) if repair.is_some() => Fate::Repaired,
            (true, _) => Fate::Undone,
            (false, true) => Fate::Drift,
            (false, false) => Fate::Held,
        };
        if !alert {
            return (None, fate);
        }
        let mut record = build(&self.content);
        if meta.evidence_secret && !verdict.nodiff && record.diff.is_none() {
            self.show_evidence(&mut record, site, c, &meta);
        }
        record.quarantine = Some(QuarantineRecord { id: meta.id.clone(), action, result: Some(result) });
        if !generation.cfg.quarantine.hook.is_empty() {
            self.run_hook(generation, &meta, &mut record, verdict.severity.as_str());
        }
        (Some(record), fate)
    }

    /// Holds `c` with the other changes of its package when it may be part
    /// of an update; false when it is to be judged now.
    fn hold(&mut self, generation: &Arc<Generation>, i: usize, c: &Change) -> bool {
        let cfg = &generation.cfg;
        if !cfg.vendors.auto_accept || !generation.vendors_apply(i) {
            return false;
        }
        let site = &cfg.sites[i];
        if c.transient.is_none() && site.policy.verdict(c).quarantine.is_some() {
            return false; // Undone at once, whatever it is (a transient is over).
        }
        let watch = &generation.sites[i];
        let now = std::time::Instant::now();
        // A package already held takes every change of its tree (files that
        // match a release fetched meanwhile included).
        let held =
            watch.package_name(&c.rel).map(|p| (Arc::clone(&site.name), p)).filter(|k| self.updates.contains_key(k));
        let key = match held {
            Some(key) => key,
            // A transient joins a package already held (a file deleted and
            // written back with the same bytes is part of the update; one
            // gone before it could be read is judged with it). Only a file
            // of the release put back starts a hold: the first file an
            // updater that deletes and copies writes may be one the new
            // release did not change.
            None => {
                let candidate = match c.transient {
                    Some(t) if t.end == TransientEnd::Restored => watch.listing_package(&c.rel),
                    Some(_) => None,
                    None => watch.update_candidate(&site.real_root, &c.rel, c.after.as_ref()),
                };
                let Some((package, from)) = candidate else {
                    return false;
                };
                if self.updates.len() >= updates::MAX_PACKAGES {
                    return false;
                }
                let key = (Arc::clone(&site.name), package.clone());
                self.updates.insert(key.clone(), updates::Held::new(Arc::clone(generation), i, package, from, now));
                // Its checksums, looked at again on the scan worker.
                watch.vendors_stale.store(true, Ordering::Release);
                key
            }
        };
        let Some(h) = self.updates.get_mut(&key) else { return false };
        if h.changes.len() >= updates::MAX_CHANGES && !h.changes.contains_key(&c.rel) {
            return false;
        }
        h.changes.insert(c.rel.clone(), c.clone());
        h.last = now;
        if c.after.is_some() && c.transient.is_none() && watch.listing_package(&c.rel).is_none() {
            h.unlisted.entry(c.rel.clone()).or_insert(now);
        }
        true
    }

    /// Holds `c` with the other changes of its WordPress staging folder,
    /// unless it is alarming by itself; false when it is to be judged now.
    fn stage(&mut self, generation: &Arc<Generation>, i: usize, c: &Change) -> bool {
        let site = &generation.cfg.sites[i];
        if site.profile != "wordpress" || c.kind == EventKind::Metadata {
            return false;
        }
        let Some(folder) = staging::folder(&c.rel) else { return false };
        let verdict = site.policy.verdict(c);
        if verdict.quarantine.is_some()
            || verdict.severity >= Severity::Critical
            || !c.signatures.is_empty()
            || c.unscanned.is_some()
        {
            return false;
        }
        let key = (Arc::clone(&site.name), folder);
        let now = std::time::Instant::now();
        if !self.staged.contains_key(&key) {
            if self.staged.len() >= staging::MAX_FOLDERS {
                return false;
            }
            let s = staging::Staged::new(Arc::clone(generation), i, key.1.clone(), now);
            tracing::info!(
                site = %site.name,
                "{}: held as WordPress's staging folder until the update is done",
                crate::util::bytes::lossless(&key.1)
            );
            self.staged.insert(key.clone(), s);
        }
        let store = &self.store;
        let Some(s) = self.staged.get_mut(&key) else { return false };
        if s.len() >= staging::MAX_CHANGES {
            return false;
        }
        s.hold(c, |d| store.get(&site.name, d).ok().flatten(), now);
        true
    }

    /// A change alerted in the tree of a package that waits for its
    /// publisher (the update's later files) waits with it.
    fn await_also(&mut self, generation: &Arc<Generation>, i: usize, c: &Change) {
        if self.awaiting.is_empty() {
            return;
        }
        let Some(name) = generation.sites[i].package_name(&c.rel) else { return };
        let same =
            |a: &&mut updates::Awaiting| a.site == i && Arc::ptr_eq(&a.generation, generation) && a.now.name == name;
        if let Some(a) = self.awaiting.iter_mut().find(same) {
            a.add(c);
        }
    }

    /// When the next held package or staging folder is to be looked at.
    fn next_update(&self) -> Option<std::time::Instant> {
        let packages = self.updates.values().map(updates::Held::due);
        let awaiting = self.awaiting.iter().map(updates::Awaiting::due);
        packages.chain(awaiting).chain(self.staged.values().map(staging::Staged::due)).min()
    }

    /// Judges the staging folders that settled: what was installed (or
    /// was the installed version) silently, what is left as usual, what
    /// was thrown away as one record per folder.
    fn settle_staging(&mut self) -> Result<(), Fatal> {
        let now = std::time::Instant::now();
        let due: Vec<_> = self.staged.iter().filter(|(_, s)| s.due() <= now).map(|(k, _)| k.clone()).collect();
        for key in due {
            let Some(mut s) = self.staged.remove(&key) else { continue };
            let (generation, i) = (Arc::clone(&s.generation), s.site);
            let site = &generation.cfg.sites[i];
            let watch = &generation.sites[i];
            let root = &site.real_root;
            let busy = self.updates.values().any(|h| h.site == i && Arc::ptr_eq(&h.generation, &generation))
                || staging::maintenance_mode(root);
            // The stat cache: what the worker read, else the baseline (an
            // installed file is not hashed again while its stat matches).
            let store = &self.store;
            let probe = |rel: &[u8], seen: Option<&FileState>| {
                let known = seen.cloned().or_else(|| store.get(&site.name, rel).ok().flatten());
                file::probe(root, rel, known.as_ref()).ok().flatten()
            };
            // Core's package also carries the bundled plugins and themes,
            // which an update leaves alone: listed by core's release, they
            // are accounted for without being installed.
            let core = match watch.package("wordpress") {
                Some((_, super::generation::Fetch::Got(m))) => Some(m),
                _ => None,
            };
            let content = &self.content;
            let vouched = |d: &[u8], st: &FileState| {
                watch.vouches(root, d, Some(st))
                    || core.as_ref().is_some_and(|m| {
                        let md5 = || {
                            let bytes = content.get(&st.sha256?)?;
                            Some(<md5::Md5 as sha2::Digest>::digest(&bytes).into())
                        };
                        m.judge(d, Some(st), md5) == Some(crate::releases::Origin::Vendor)
                    })
            };
            let accepted = |rel: &[u8]| store.get(&site.name, rel).ok().flatten();
            let Some(done) = staging::settle(&mut s, now, busy, probe, vouched, accepted) else {
                self.staged.insert(key, s);
                continue;
            };
            tracing::info!(
                site = %site.name,
                "{}: staged by the updater: {} installed, {} left, {} discarded",
                crate::util::bytes::lossless(&s.folder),
                done.accounted.len(),
                done.judge.len(),
                done.discarded.len()
            );
            if !done.accounted.is_empty() {
                let w = self.store.write()?;
                for (rel, state) in &done.accounted {
                    w.accept(&site.name, rel, state.as_ref())?;
                }
                w.commit()?;
            }
            if !done.discarded.is_empty() {
                let record = staging::discarded_record(
                    &self.host,
                    (&site.name, &site.root),
                    &s.folder,
                    &done.discarded,
                    now_ns(),
                );
                self.sinks.deliver(&[record])?;
                let w = self.store.write()?;
                for c in &done.discarded {
                    w.accept(&site.name, &c.rel, None)?;
                }
                w.commit()?;
            }
            self.emit(&generation, i, &done.judge, &[], None, false)?;
        }
        Ok(())
    }

    /// Looks at the packages waiting for their publisher: once the release
    /// is known, the files alerted meanwhile that are still as they were
    /// and match it are one summary record, and accepted (an update); the
    /// others are judged again against it, and stay drift.
    fn settle_awaiting(&mut self) -> Result<(), Fatal> {
        let now = std::time::Instant::now();
        let mut k = 0;
        while k < self.awaiting.len() {
            if self.awaiting[k].due() > now {
                k += 1;
                continue;
            }
            let (kind, manifest) = match updates::answer(&mut self.awaiting[k], now) {
                updates::Answer::Wait => {
                    k += 1;
                    continue;
                }
                updates::Answer::Drop => {
                    self.awaiting.remove(k);
                    continue;
                }
                updates::Answer::Known { kind, manifest } => (kind, manifest),
            };
            let a = self.awaiting.remove(k);
            let site = &a.generation.cfg.sites[a.site];
            let root = &site.real_root;
            let (mut ok, mut bad): (Vec<Change>, Vec<Change>) = (Vec::new(), Vec::new());
            for c in a.changes.values() {
                let state = file::probe(root, &c.rel, c.after.as_ref()).ok().flatten();
                let accepted = self.store.get(&site.name, &c.rel)?;
                let still = FileState::compare(c.after.as_ref(), state.as_ref()).is_none();
                let drift = FileState::compare(accepted.as_ref(), state.as_ref()).is_some();
                let c = Change { after: state, ..c.clone() };
                if !(still && drift) {
                    continue;
                }
                if updates::vouched(&manifest, root, &c) {
                    ok.push(c);
                } else {
                    bad.push(c);
                }
            }
            // What the release does not vouch for was alerted without a
            // verdict: judged again, now against it (tampered, foreign).
            if !bad.is_empty() {
                let t = now_ns();
                let mut records = Vec::new();
                let (mut fresh, mut back) = (Vec::new(), Vec::new());
                for c in &bad {
                    let (record, fate) = self.judge_one(&a.generation, a.site, c, t);
                    records.extend(record);
                    match fate {
                        Fate::Drift => fresh.push(c),
                        Fate::Undone | Fate::Repaired => back.push(c),
                        Fate::Held => {}
                    }
                }
                records.append(&mut self.evicted);
                self.sinks.deliver(&records)?;
                self.persist(site, &fresh, &back, &[], t)?;
            }
            tracing::info!(
                site = %site.name,
                "{} {}: the publisher answered; {} of {} files alerted meanwhile match the release",
                a.now.name,
                a.now.version,
                ok.len(),
                a.changes.len()
            );
            if ok.is_empty() {
                continue;
            }
            let t = now_ns();
            let package = crate::releases::wordpress::Package { version: manifest.version.clone(), ..a.now.clone() };
            let shown: Vec<&Change> = ok.iter().collect();
            let mut record = updates::summary(&self.host, site, kind, a.from.as_deref(), &package, &shown, t);
            if let Some(n) = record.diff_note.as_mut() {
                n.push_str(" (alerted before the release's checksums were at hand, confirmed since)");
            }
            self.sinks.deliver(&[record])?;
            if kind.accepted() {
                let w = self.store.write()?;
                for c in &ok {
                    w.accept(&site.name, &c.rel, c.after.as_ref())?;
                }
                w.commit()?;
            }
        }
        Ok(())
    }

    /// Judges the held packages that settled: an update, a downgrade or a
    /// new package as one summary, everything else as usual.
    fn settle_updates(&mut self) -> Result<(), Fatal> {
        self.settle_staging()?;
        self.settle_awaiting()?;
        let now = std::time::Instant::now();
        let due: Vec<_> = self.updates.iter().filter(|(_, h)| h.due() <= now).map(|(k, _)| k.clone()).collect();
        for key in due {
            let Some(mut h) = self.updates.remove(&key) else { continue };
            // A new file held while its package is kept busy: judged now.
            let updating = self.staged.keys().any(|(site, _)| *site == key.0)
                || staging::maintenance_mode(&h.generation.cfg.sites[h.site].real_root);
            let late = h.overdue(now, updating);
            if !late.is_empty() {
                tracing::info!(
                    site = %h.generation.cfg.sites[h.site].name,
                    "{}: still being written {} s after {} new files came: judged without waiting for it",
                    h.package,
                    updates::BUSY_LIMIT.as_secs(),
                    late.len()
                );
                let generation = Arc::clone(&h.generation);
                self.emit(&generation, h.site, &late, &[], None, false)?;
                if !h.changes.is_empty() && h.due() > now {
                    self.updates.insert(key, h);
                    continue;
                }
                if h.changes.is_empty() {
                    continue;
                }
            }
            let outcome = updates::outcome(&mut h, now);
            if matches!(outcome, updates::Outcome::Wait) {
                self.updates.insert(key, h);
                continue;
            }
            let (generation, i) = (Arc::clone(&h.generation), h.site);
            let changes: Vec<Change> = std::mem::take(&mut h.changes).into_values().collect();
            match outcome {
                updates::Outcome::Wait => {}
                updates::Outcome::Release => {
                    self.emit(&generation, i, &changes, &[], None, false)?;
                }
                updates::Outcome::Unreachable { now: package } => {
                    self.emit(&generation, i, &changes, &[], None, false)?;
                    let mut a = updates::Awaiting::new(&h, package, changes, now);
                    if let Some(k) = self.awaiting.iter().position(|o| o.same_release(&a)) {
                        a.absorb(self.awaiting.remove(k));
                    }
                    if self.awaiting.len() >= updates::AWAIT_PACKAGES {
                        self.awaiting.remove(0);
                    }
                    self.awaiting.push(a);
                }
                updates::Outcome::Moved { kind, now: package, manifest } => {
                    let site = &generation.cfg.sites[i];
                    if maintenance::active(&generation.cfg.state_dir, &site.name) {
                        self.emit(&generation, i, &changes, &[], None, false)?;
                        continue;
                    }
                    let (live, _) = self.still_news(&site.name, &changes, None)?;
                    let (ok, other): (Vec<&Change>, Vec<&Change>) =
                        live.iter().partition(|c| updates::vouched(&manifest, &site.real_root, c));
                    if !ok.is_empty() {
                        let t = now_ns();
                        let record = updates::summary(&self.host, site, kind, h.from.as_deref(), &package, &ok, t);
                        tracing::info!(site = %site.name, files = ok.len(), "{}", record.diff_note.as_deref().unwrap_or(""));
                        self.sinks.deliver(&[record])?;
                        let w = self.store.write()?;
                        for c in &ok {
                            if kind.accepted() || site.auto_accept {
                                w.accept(&site.name, &c.rel, c.after.as_ref())?;
                            } else {
                                w.mark_alerted(&site.name, &c.rel, c.after.as_ref(), t)?;
                            }
                        }
                        w.commit()?;
                    }
                    let other: Vec<Change> = other.into_iter().cloned().collect();
                    self.emit(&generation, i, &other, &[], None, false)?;
                }
            }
        }
        Ok(())
    }

    /// Is `c` a hot path's change that was alerted moments ago at this
    /// severity or higher? Then it is held back (and the path's alert
    /// stays the one sent); else it is remembered as alerted now.
    fn still_hot(&mut self, generation: &Generation, c: &Change, severity: Severity, now: i64) -> bool {
        if c.detected_by != crate::model::DetectedBy::Realtime {
            return false;
        }
        // Hot checks come every max_delay: twice that without one, it cooled.
        let window = generation.cfg.scan.max_delay.as_nanos() as i64 * 2;
        let key = (Arc::clone(&c.site), c.rel.clone());
        if c.hot {
            if let Some((sev, at)) = self.recent.get_mut(&key) {
                if now - *at < window && severity <= *sev {
                    *at = now;
                    return true;
                }
            }
        }
        if self.recent.len() >= 4096 {
            self.recent.retain(|_, (_, at)| now - *at < window);
        }
        self.recent.insert(key, (severity, now));
        false
    }

    /// Remembers what was alerted (or accepts it, with `auto_accept`),
    /// forgets the drift of what is back at its accepted state.
    fn persist(
        &mut self,
        site: &crate::config::Site,
        fresh: &[&Change],
        back: &[&Change],
        forget: &[&RelPath],
        now: i64,
    ) -> Result<(), StoreError> {
        let w = self.store.write()?;
        for c in fresh {
            if site.auto_accept {
                w.accept(&site.name, &c.rel, c.after.as_ref())?;
            } else {
                w.mark_alerted(&site.name, &c.rel, c.after.as_ref(), now)?;
            }
        }
        for c in back {
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
        w.commit()
    }

    /// What of `changes` is still news, judged against the store as it is
    /// now: not alerted in this state already, not overtaken by a later
    /// alert (for a scan's findings), and against the baseline as it is now
    /// (an `accept` or a maintenance window may have moved it since the
    /// worker looked). Apart: the paths whose change only says that a file
    /// already reported is gone (the late events of its life, after the
    /// walk of its new directory read it), to forget as reverted.
    fn still_news(
        &self,
        site: &str,
        changes: &[Change],
        since: Option<i64>,
    ) -> Result<(Vec<Change>, Vec<RelPath>), StoreError> {
        let mut effective = Vec::with_capacity(changes.len());
        let mut told = Vec::new();
        for c in changes {
            if let Some((prev, at)) = self.store.alerted_at(site, &c.rel)? {
                if FileState::compare(prev.as_ref(), c.after.as_ref()).is_none() || since.is_some_and(|t| at > t) {
                    continue;
                }
                let read = prev.as_ref().is_some_and(|p| p.sha256.is_some());
                if read && c.transient.is_some_and(|t| t.end == TransientEnd::Deleted && t.one_life) {
                    told.push(c.rel.clone());
                    continue;
                }
            }
            let accepted = self.store.get(site, &c.rel)?;
            // The root itself (a deploy symlink swapped) has no accepted state.
            if accepted == c.before || c.rel.is_empty() {
                effective.push(c.clone());
            } else if let Some(kind) = FileState::compare(accepted.as_ref(), c.after.as_ref()) {
                effective.push(Change { kind, before: accepted, ..c.clone() });
            }
        }
        Ok((effective, told))
    }

    /// Reverted paths whose alerted drift can be forgotten (for a scan, only
    /// drift alerted before it started).
    fn forgettable<'r>(
        &self,
        site: &str,
        reverted: &'r [RelPath],
        since: Option<i64>,
    ) -> Result<Vec<&'r RelPath>, StoreError> {
        let mut forget = Vec::new();
        for rel in reverted {
            if let Some((_, at)) = self.store.alerted_at(site, rel)? {
                if since.is_none_or(|t| at <= t) {
                    forget.push(rel);
                }
            }
        }
        Ok(forget)
    }

    /// The diff of an undone file whose content holds (or may hold) a
    /// credential, which the usual diff leaves out: from the evidence kept,
    /// credential lines redacted; a file with other hard links only says
    /// where its copy is (another name may be a secret file).
    fn show_evidence(&self, record: &mut AlertRecord, site: &crate::config::Site, c: &Change, meta: &quarantine::Meta) {
        let kept = format!("kept as evidence: `sitewarden quarantine show {}`", meta.id);
        let evidence = self.quarantine.evidence(&meta.id).filter(|_| meta.evidence);
        let linked = c.after.as_ref().is_some_and(FileState::linked);
        let Some(bytes) = evidence.filter(|_| !linked) else {
            record.diff_note = Some(match record.diff_note.take() {
                Some(n) => format!("{}; {kept}", diff::note_text(&n)),
                None => kept,
            });
            return;
        };
        let before = c.before.as_ref().map(|b| b.sha256.and_then(|sha| self.content.get(&sha)));
        let side = match &before {
            None => diff::Side::Absent,
            Some(Some(b)) => diff::Side::Bytes(b),
            Some(None) => diff::Side::Unknown,
        };
        let r = diff::of_evidence(c.kind, &record.path, side, &bytes, &meta.id, site.policy.secrets());
        (record.diff, record.diff_note) = (r.diff, r.note);
    }

    /// Queues the admin's hook for a quarantine item; its failure comes back
    /// as a [`Control::Hook`] and is alerted then.
    fn run_hook(&mut self, generation: &Generation, meta: &quarantine::Meta, record: &mut AlertRecord, severity: &str) {
        let job = hook::HookJob {
            argv: generation.cfg.quarantine.hook.clone(),
            env: quarantine::hook_env(meta, &self.quarantine, severity),
            timeout: generation.cfg.quarantine.hook_timeout,
            report: quarantine::hook_report(&self.quarantine, &meta.id),
            id: meta.id.clone(),
        };
        if self.hooks.is_none() {
            let control = self.hook_control.clone();
            let report: hook::OnResult = Box::new(move |job, result| {
                if let Some(tx) = control.upgrade() {
                    let failure = result.failure(job.timeout);
                    let _ = tx.blocking_send(Control::Hook { id: job.id.clone(), failure });
                }
            });
            match hook::HookRunner::spawn(&self.supervisor, report) {
                Ok(h) => self.hooks = Some(h),
                Err(e) => {
                    add_to_result(record, format!("; hook not run: cannot start its thread: {e}"));
                    return;
                }
            }
        }
        let Some(hooks) = self.hooks.as_ref() else { return };
        // Runs wait their turn in order: behind the backlog, if there is one.
        let job = match self.hook_backlog.is_empty() {
            true => hooks.submit(job).err(),
            false => Some(job),
        };
        if let Some(job) = job {
            if self.hook_backlog.len() >= HOOK_BACKLOG {
                tracing::error!(
                    "quarantine hook not run for item {}: {HOOK_BACKLOG} runs are waiting already",
                    meta.id
                );
                add_to_result(record, format!("; hook not run: {HOOK_BACKLOG} runs were waiting already"));
                return;
            }
            self.hook_backlog.push_back(job);
            add_to_result(record, format!("; hook queued behind {} runs", self.hook_backlog.len() - 1 + hook::QUEUE));
        }
        if self.waiting_hooks.len() < HOOKS_TRACKED {
            self.waiting_hooks.insert(meta.id.clone(), record.clone());
        }
    }

    /// Hands the hook thread the runs that waited for room, oldest first.
    fn feed_hooks(&mut self) {
        let Some(hooks) = self.hooks.as_ref() else { return };
        while let Some(job) = self.hook_backlog.pop_front() {
            if let Err(job) = hooks.submit(job) {
                self.hook_backlog.push_front(job);
                break;
            }
        }
    }
}
