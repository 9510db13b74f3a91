//! One generation of the running configuration, and the observing half of
//! the daemon's work: start a site (watches first, then the baseline or a
//! catch-up scan under them), reconcile paths named by kernel events, and
//! scan sites. What is observed goes to the [judge](super::judge), which
//! alone decides and writes; this side only reads the store.
//!
//! Runs on worker threads (blocking I/O), never on the async loop.

use std::collections::HashSet;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use super::debounce::Seen;
use super::judge::{BaselineBuilt, Control, JudgeGone, JudgeHandle, Observed};
use crate::baseline::{Store, StoreError};
use crate::config::{Config, Site};
use crate::content::ContentStore;
use crate::detect::{self, CompareSpec, RebuildError};
use crate::model::{Change, DetectedBy, EventKind, FileState, FileType, RelPath};
use crate::model::{Transient, TransientEnd};
use crate::releases::wordpress::{self, FetchError, Package, Publisher};
use crate::scan::{self, file, ScanError};
use crate::util::time::now_ns;
use crate::watch::{Hub, Op, SiteWatcher, WatchError, WatchEvent};

/// A realtime path whose file is larger than this, and must be hashed, is
/// handed to the big-file lane: the fast lane keeps judging small files.
pub const BIG_FILE: u64 = 64 << 20;
/// A file written for this long (or closed twice) before it was judged and
/// found back at its accepted content was changed and put back: a
/// transient, reported. A single quick rewrite with the same bytes is not.
const PUT_BACK_SPAN_MS: u64 = 50;

/// A failure of one unit of daemon work; the daemon goes on, except when
/// the judge is gone.
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The walk failed at the root.
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// The first baseline could not be built.
    #[error(transparent)]
    Rebuild(#[from] RebuildError),
    /// No inotify instance could be made.
    #[error(transparent)]
    Watch(#[from] WatchError),
    /// The judge refused the first baseline.
    #[error("writing the baseline: {0}")]
    Baseline(String),
    /// The judge is gone: fatal for the worker.
    #[error(transparent)]
    JudgeGone(#[from] JudgeGone),
}

/// Per-site state of a running generation.
pub struct SiteWatch {
    /// The site's inotify instance (replaced whole when the site restarts).
    pub watcher: Mutex<Option<SiteWatcher>>,
    /// Raised when an event could not be delivered or a path could not be
    /// judged: the site must be rescanned.
    pub rescan_due: Arc<AtomicBool>,
    /// Why realtime is incomplete (watch limit, descriptors, permissions,
    /// an unreadable directory), if it is: scans stand in meanwhile.
    degraded: Mutex<Option<String>>,
    /// Changes were held back during a maintenance window: rescan after it.
    pub suppressed: AtomicBool,
    /// The manifest of the site's `reference:`, once read (at start).
    manifest: std::sync::OnceLock<Option<Arc<crate::releases::Manifest>>>,
    /// The WordPress packages the site runs and their published manifests
    /// (`None`: not published, or not fetched yet).
    packages: Mutex<Vec<(Package, Fetch)>>,
    /// A version file changed: look at the packages again.
    pub vendors_stale: AtomicBool,
    /// The version of each package the baseline holds: as found at start,
    /// then as updates are accepted.
    accepted_versions: Mutex<std::collections::HashMap<String, String>>,
    /// Files the walk of a directory named by an event found, and when
    /// that walk began: their own events, received before it and taken
    /// after, are news of what it read.
    walked: Mutex<std::collections::HashMap<RelPath, std::time::Instant>>,
}

/// Files remembered as read by walks (then those older than
/// [`WALKED_FOR`] are forgotten, or all).
const WALKED_MAX: usize = 65_536;
const WALKED_FOR: std::time::Duration = std::time::Duration::from_secs(60);

impl SiteWatch {
    /// The walk that began at `began` read these files.
    fn walked(&self, rels: impl Iterator<Item = RelPath>, began: std::time::Instant) {
        let mut walked = self.walked.lock().unwrap_or_else(|p| p.into_inner());
        for rel in rels {
            if walked.len() >= WALKED_MAX {
                walked.retain(|_, t| t.elapsed() < WALKED_FOR);
                if walked.len() >= WALKED_MAX {
                    walked.clear();
                }
            }
            walked.insert(rel, began);
        }
    }

    /// Did a walk read `rel` after an event received at `last`?
    fn read_since(&self, rel: &[u8], last: std::time::Instant) -> bool {
        let walked = self.walked.lock().unwrap_or_else(|p| p.into_inner());
        walked.get(rel).is_some_and(|began| last < *began)
    }

    /// Why realtime watching of the site is incomplete, if it is.
    pub fn degraded(&self) -> Option<String> {
        self.degraded.lock().ok().and_then(|d| d.clone())
    }

    /// The manifest changes are judged against, if the site has one.
    pub fn manifest(&self) -> Option<&Arc<crate::releases::Manifest>> {
        self.manifest.get().and_then(Option::as_ref)
    }

    /// The verdict on a change of `rel` to `after`: against the site's
    /// reference, else against the published release of the package that
    /// holds it (`unknown` when its checksums are not at hand); `None`
    /// when no package holds it. `root`: the site's real root (an MD5 is
    /// read from the live file where the publisher gave only MD5s).
    pub fn verdict(
        &self,
        root: &std::path::Path,
        rel: &[u8],
        after: Option<&FileState>,
    ) -> Option<crate::releases::Verdict> {
        let md5 = || crate::releases::live_md5(root, rel, after);
        if let Some(m) = self.manifest() {
            return m.judge(rel, after, md5).map(|o| m.verdict(o));
        }
        let packages = self.packages.lock().unwrap_or_else(|p| p.into_inner());
        let (p, m) = owning(&packages, rel)?;
        match m {
            Fetch::Got(m) => m.judge(rel, after, md5).map(|o| m.verdict(o)),
            Fetch::Pending | Fetch::Failed | Fetch::Unreachable => Some(crate::releases::Verdict {
                origin: crate::releases::Origin::Unknown,
                package: p.name.clone(),
                version: p.version.clone(),
            }),
        }
    }

    /// Might the change of `rel` to `after` be part of a package update? A
    /// file in the tree of a package whose release is known, that the
    /// release does not vouch for or whose release is not the one the
    /// baseline holds, or a file in the folder of a plugin that was not
    /// installed. The package and the version the baseline holds (`None`:
    /// it is new). Never for a site judged against its own reference.
    pub fn update_candidate(
        &self,
        root: &std::path::Path,
        rel: &[u8],
        after: Option<&FileState>,
    ) -> Option<(String, Option<String>)> {
        if self.manifest().is_some() {
            return None;
        }
        let accepted = |name: &str| self.accepted_version(name);
        let packages = self.packages.lock().unwrap_or_else(|p| p.into_inner());
        match wordpress::owner(&packages, rel) {
            Some((p, Fetch::Got(m))) if m.covers(rel) => {
                let from = accepted(&p.name);
                // The release the files are (`version.php` may say another).
                if from.as_deref() != Some(m.version.as_str()) {
                    return Some((p.name.clone(), from));
                }
                let md5 = || crate::releases::live_md5(root, rel, after);
                let vouched = m.judge(rel, after, md5) == Some(crate::releases::Origin::Vendor);
                (!vouched).then(|| (p.name.clone(), from))
            }
            Some(_) => None,
            None => {
                let name = wordpress::package_of(rel)?;
                let from = accepted(&name);
                packages.iter().all(|(p, _)| p.name != name).then_some((name, from))
            }
        }
    }

    /// The package whose known release lists `rel`, and the version the
    /// baseline holds: a file put back with its accepted bytes (a
    /// transient) may be the first sign of that package's update (one
    /// updater deletes the tree and copies the new release in). Never for a
    /// site judged against its own reference.
    pub fn listing_package(&self, rel: &[u8]) -> Option<(String, Option<String>)> {
        if self.manifest().is_some() {
            return None;
        }
        let packages = self.packages.lock().unwrap_or_else(|p| p.into_inner());
        match wordpress::owner(&packages, rel) {
            Some((p, Fetch::Got(m))) if m.lists(rel) => Some((p.name.clone(), self.accepted_version(&p.name))),
            _ => None,
        }
    }

    /// The version of package `name` the baseline holds.
    pub fn accepted_version(&self, name: &str) -> Option<String> {
        self.accepted_versions.lock().ok().and_then(|a| a.get(name).cloned())
    }

    /// The baseline now holds `version` of package `name`.
    pub fn set_accepted_version(&self, name: &str, version: &str) {
        if let Ok(mut a) = self.accepted_versions.lock() {
            a.insert(name.to_string(), version.to_string());
        }
    }

    /// The manifest that judges `rel`, when it is at hand.
    fn manifest_of(&self, rel: &[u8]) -> Option<Arc<crate::releases::Manifest>> {
        if let Some(m) = self.manifest() {
            return Some(Arc::clone(m));
        }
        let packages = self.packages.lock().unwrap_or_else(|p| p.into_inner());
        match owning(&packages, rel) {
            Some((_, Fetch::Got(m))) => Some(Arc::clone(m)),
            _ => None,
        }
    }

    /// The release's own content of `rel` (for a diff against it, or a
    /// repair), and the release as `package version`.
    pub fn pristine(&self, rel: &[u8]) -> Option<(Vec<u8>, String)> {
        let m = self.manifest_of(rel)?;
        m.pristine(rel).map(|b| (b, format!("{} {}", m.package, m.version)))
    }

    /// Does the release vouch for `state` of `rel` (no manifest: no)?
    pub fn vouches(&self, root: &std::path::Path, rel: &[u8], state: Option<&FileState>) -> bool {
        let Some(m) = self.manifest_of(rel) else { return false };
        let md5 = || crate::releases::live_md5(root, rel, state);
        m.judge(rel, state, md5) == Some(crate::releases::Origin::Vendor)
    }

    /// The name of the package whose tree holds `rel` (installed or not).
    pub fn package_name(&self, rel: &[u8]) -> Option<String> {
        let packages = self.packages.lock().unwrap_or_else(|p| p.into_inner());
        wordpress::owner(&packages, rel).map(|(p, _)| p.name.clone()).or_else(|| wordpress::package_of(rel))
    }

    /// The package `name` as last looked at, and its manifest.
    pub fn package(&self, name: &str) -> Option<(Package, Fetch)> {
        let packages = self.packages.lock().unwrap_or_else(|p| p.into_inner());
        packages.iter().find(|(p, _)| p.name == name).cloned()
    }

    /// Marks package `p` (at the version its files now say) as waiting for
    /// its checksums: until they come, its files are judged `unknown`,
    /// never against the release they left.
    pub fn set_pending(&self, p: &Package) {
        let mut packages = self.packages.lock().unwrap_or_else(|e| e.into_inner());
        match packages.iter_mut().find(|(k, _)| k.name == p.name) {
            Some((k, Fetch::Got(_))) if k == p => {}
            Some(entry) => *entry = (p.clone(), Fetch::Pending),
            None => packages.push((p.clone(), Fetch::Pending)),
        }
    }

    /// Sets (or, with `None`, clears) why the site is degraded; true when
    /// the reason changed (worth a log line).
    pub fn set_degraded(&self, reason: Option<String>) -> bool {
        let Ok(mut d) = self.degraded.lock() else { return false };
        let changed = *d != reason;
        *d = reason;
        changed
    }
}

/// One generation of the running configuration.
pub struct Generation {
    /// Counts up from 1 with each reload.
    pub number: u64,
    /// The configuration of this generation.
    pub cfg: Config,
    /// Per-site state, in the order of `cfg.sites`.
    pub sites: Vec<SiteWatch>,
    /// Raised at shutdown and when a newer generation replaces this one:
    /// its scans stop early.
    pub cancel: Arc<AtomicBool>,
    /// Earlier versions of text files, kept as they are read.
    pub content: ContentStore,
    /// Where the WordPress packages' checksums come from (shared with the
    /// generations before and after while `vendors:` stays the same).
    pub publisher: Arc<Publisher>,
    hub: Arc<Hub>,
    events: mpsc::Sender<WatchEvent>,
    /// Raised once the next generation is in force (its watches placed,
    /// this one's taken away): from then on this one's policy judges
    /// nothing, even a job routed to it while the next one was starting.
    retired: AtomicBool,
}

/// What starting a site did.
#[derive(Debug)]
pub struct Started {
    /// Directories watched.
    pub watches: usize,
    /// Realtime coverage is incomplete.
    pub degraded: bool,
    /// There was no baseline: one was built.
    pub built_baseline: bool,
    /// Alerts of the catch-up scan.
    pub alerts: usize,
}

/// How a site is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartMode {
    /// At daemon start: a catch-up scan reports what changed while down,
    /// before the site counts as ready.
    CatchUp,
    /// After a reload: ready as soon as it is watched; the loop schedules a
    /// scan for what the new config sees differently.
    Reload,
}

impl Generation {
    /// A generation of `cfg`, whose watchers send to `events`; `content` is
    /// the daemon's content store (shared with the judge, which prunes it);
    /// `previous` is the generation it replaces (its publisher is kept when
    /// `vendors:` did not change).
    pub fn new(
        number: u64,
        cfg: Config,
        content: ContentStore,
        hub: Arc<Hub>,
        events: mpsc::Sender<WatchEvent>,
        previous: Option<&Generation>,
    ) -> Generation {
        let publisher = match previous {
            Some(p) if p.cfg.vendors.wordpress == cfg.vendors.wordpress && p.cfg.state_dir == cfg.state_dir => {
                Arc::clone(&p.publisher)
            }
            _ => Arc::new(Publisher::new(cfg.vendors.wordpress.clone(), cfg.state_dir.join("vendor"))),
        };
        let sites = cfg
            .sites
            .iter()
            .map(|_| SiteWatch {
                watcher: Mutex::new(None),
                rescan_due: Arc::new(AtomicBool::new(false)),
                degraded: Mutex::new(None),
                suppressed: AtomicBool::new(false),
                manifest: std::sync::OnceLock::new(),
                packages: Mutex::new(Vec::new()),
                vendors_stale: AtomicBool::new(false),
                accepted_versions: Mutex::new(std::collections::HashMap::new()),
                walked: Mutex::new(std::collections::HashMap::new()),
            })
            .collect();
        Generation {
            number,
            content,
            publisher,
            cfg,
            sites,
            cancel: Arc::new(AtomicBool::new(false)),
            hub,
            events,
            retired: AtomicBool::new(false),
        }
    }

    /// Index of the site named `name`.
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

    /// Watches `dir` and below; where that fails (watch limit, ...) the
    /// site turns degraded, saying why.
    fn watch(&self, i: usize, dir: &[u8], renew: bool) -> Result<usize, WorkError> {
        self.place_watches(i, dir, renew)?;
        Ok(self.watch_count(i))
    }

    /// Places the watches of `dir` and below; false when some could not be
    /// (the site is then degraded, with the reason logged once).
    fn place_watches(&self, i: usize, dir: &[u8], renew: bool) -> Result<bool, WorkError> {
        let site = &self.cfg.sites[i];
        let mut guard = self.watcher(i);
        let Some(w) = guard.as_mut() else {
            return Ok(true);
        };
        match w.watch_tree(dir, &site.policy, renew) {
            Ok(_) => Ok(true),
            // Realtime coverage is incomplete: scans at the fallback
            // interval stand in, and `status` says so.
            Err(
                e @ (WatchError::Limit { .. }
                | WatchError::Descriptors { .. }
                | WatchError::Denied { .. }
                | WatchError::Other { .. }),
            ) => {
                let reason = match &e {
                    WatchError::Limit { .. } => "watch limit".to_string(),
                    WatchError::Descriptors { .. } => "too many open files".to_string(),
                    WatchError::Denied { .. } => "permission denied".to_string(),
                    other => other.to_string(),
                };
                if self.sites[i].set_degraded(Some(reason)) {
                    tracing::error!(site = %site.name, "{e}");
                }
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A degraded site tries its watches again before each fallback scan:
    /// once the cause is gone (the sysctl raised, the deep directory
    /// removed), it is whole again and says so.
    fn retry_watches(&self, i: usize) -> Result<(), WorkError> {
        if self.place_watches(i, b"", false)? && self.sites[i].set_degraded(None) {
            tracing::info!(site = %self.cfg.sites[i].name, "realtime watching is complete again");
        }
        Ok(())
    }

    /// Starts site `i`: watches first, so nothing between them and the
    /// baseline is missed; then has the judge write a first baseline, or
    /// (at daemon start) reports with a catch-up scan what changed while the
    /// daemon was down, and waits until the judge has judged it.
    pub fn start_site(
        self: &Arc<Self>,
        i: usize,
        store: &Store,
        judge: &JudgeHandle,
        mode: StartMode,
    ) -> Result<Started, WorkError> {
        let site = &self.cfg.sites[i];
        let watcher = SiteWatcher::new(
            &self.hub,
            self.cfg.realtime,
            Arc::clone(&site.name),
            &site.real_root,
            Arc::clone(&site.policy),
            self.events.clone(),
            Arc::clone(&self.sites[i].rescan_due),
        )?;
        *self.watcher(i) = Some(watcher);
        if let Some(path) = &site.reference {
            let m = match crate::releases::Manifest::reference(path) {
                Ok(m) => {
                    tracing::info!(site = %site.name, files = m.len(), "reference {} read", path.display());
                    Some(Arc::new(m))
                }
                Err(e) => {
                    tracing::warn!(site = %site.name, "{e}; changes are judged without it");
                    None
                }
            };
            let _ = self.sites[i].manifest.set(m);
        }
        self.detect_packages(i);
        let watches = self.watch(i, b"", false)?;
        let degraded = self.sites[i].degraded().is_some();
        let mut started = Started { watches, degraded, built_baseline: false, alerts: 0 };
        if !store.has_baseline(&site.name)? {
            let walk_started = now_ns();
            let (entries, stats, problems) = detect::observe_all(site, None, Some(&self.cancel), Some(&self.content))?;
            for (rel, e) in problems {
                tracing::warn!(site = %site.name, "{}: {e}", scan::show(&rel));
            }
            let (done, outcome) = oneshot::channel();
            let built = BaselineBuilt { generation: Arc::clone(self), site: i, entries, started: walk_started, done };
            judge.control_blocking(Control::Baseline(built))?;
            outcome.blocking_recv().map_err(|_| JudgeGone)?.map_err(WorkError::Baseline)?;
            tracing::info!(site = %site.name, files = stats.entries, "baseline built");
            started.built_baseline = true;
        } else if mode == StartMode::CatchUp {
            if let Some(mut observed) = self.scan_site(i, store, false)? {
                self.sign(&mut observed);
                let (done, alerts) = oneshot::channel();
                observed.done = Some(done);
                judge.scan(observed)?;
                started.alerts = alerts.blocking_recv().map_err(|_| JudgeGone)?;
            }
        }
        Ok(started)
    }

    /// A full scan of site `i` compared with its baseline, for the judge;
    /// `None` when it was cancelled (an interrupted walk would look like
    /// mass deletion).
    pub fn scan_site(self: &Arc<Self>, i: usize, store: &Store, rehash: bool) -> Result<Option<Observed>, WorkError> {
        let site = &self.cfg.sites[i];
        if self.sites[i].degraded().is_some() {
            self.retry_watches(i)?;
        }
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
            return Ok(None);
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
                .try_send(WatchEvent::Path {
                    site: Arc::clone(&site.name),
                    rel: c.rel,
                    by: DetectedBy::Scan,
                    op: Op::Written,
                    actor: None,
                })
                .is_err()
            {
                self.sites[i].rescan_due.store(true, Ordering::Release);
            }
        }
        Ok(Some(Observed {
            generation: Arc::clone(self),
            site: i,
            changes: settled,
            reverted,
            scan_started: Some(started),
            done: None,
        }))
    }

    /// Scans the new content of the observed changes for signatures.
    pub fn sign(&self, o: &mut Observed) {
        if let Some(sigs) = self.cfg.signatures.rules_or_none() {
            self.signer(&sigs, o.site).sign(&mut o.changes);
        }
    }

    fn signer<'a>(&'a self, sigs: &'a crate::signatures::Signatures, site: usize) -> crate::signatures::Signer<'a> {
        let s = &self.cfg.sites[site];
        crate::signatures::Signer { sigs, policy: &s.policy, root: &s.real_root, content: Some(&self.content) }
    }

    /// The realtime path's share of [`Generation::sign`] (see
    /// [`crate::signatures::Signer::sign_quick`]): the changes it left
    /// unsigned are taken out of `o` and returned, for the signature lane,
    /// with the time spent.
    pub fn sign_quick(
        &self,
        o: &mut Observed,
        held: impl Fn(&Change) -> bool,
        budget: std::time::Duration,
    ) -> (Vec<Change>, std::time::Duration) {
        let Some(sigs) = self.cfg.signatures.rules_or_none() else { return (Vec::new(), Default::default()) };
        let policy = &self.cfg.sites[o.site].policy;
        let urgent = |c: &Change| policy.verdict(c).severity >= crate::model::Severity::Critical;
        let (left, spent) = self.signer(&sigs, o.site).sign_quick(&mut o.changes, held, urgent, budget);
        let mut left = left.into_iter().peekable();
        let (mut kept, mut out) = (Vec::with_capacity(o.changes.len()), Vec::new());
        for (i, c) in std::mem::take(&mut o.changes).into_iter().enumerate() {
            match left.next_if_eq(&i) {
                Some(_) => out.push(c),
                None => kept.push(c),
            }
        }
        o.changes = kept;
        (out, spent)
    }

    /// Signs `changes` of site `site` one by one with one scanner, while
    /// `go_on` says so; returns how many it signed.
    pub fn sign_while(&self, site: usize, changes: &mut [Change], mut go_on: impl FnMut() -> bool) -> usize {
        let Some(sigs) = self.cfg.signatures.rules_or_none() else { return changes.len() };
        let signer = self.signer(&sigs, site);
        let mut scanner = sigs.scanner();
        for (n, c) in changes.iter_mut().enumerate() {
            if n > 0 && !go_on() {
                return n;
            }
            signer.sign_change(&mut scanner, c);
        }
        changes.len()
    }

    /// Checks the paths named by kernel events. A path that is now a
    /// directory is watched and walked (its files may predate the watch); a
    /// path that was a directory reports what was below it as deleted. A
    /// change that was over before this look (see [`Seen`]) is reported as
    /// a transient.
    ///
    /// `defer_big`: regular files larger than [`BIG_FILE`] are not read
    /// here but returned, for the big-file lane.
    pub fn reconcile(
        self: &Arc<Self>,
        i: usize,
        store: &Store,
        mut rels: Vec<(RelPath, Seen)>,
        by: DetectedBy,
        defer_big: bool,
    ) -> Result<(Observed, Vec<(RelPath, Seen)>), WorkError> {
        let site = &self.cfg.sites[i];
        rels.sort_by(|a, b| a.0.cmp(&b.0));
        rels.dedup_by(|a, b| a.0 == b.0);
        let mut changes: Vec<Change> = Vec::new();
        let mut reverted: Vec<RelPath> = Vec::new();
        let mut deferred = Vec::new();
        let mut buf = Vec::new();
        for (rel, seen) in rels {
            crate::util::fault::point("worker", &rel);
            // The accepted state: the stat cache for the read, and what the
            // read is compared with.
            let before = store.get(&site.name, &rel)?;
            let now = self.current(site, &rel, before.as_ref(), &mut buf, defer_big);
            match now {
                Current::Big => deferred.push((rel, seen)),
                Current::Dir(state) => {
                    // The root's own attributes are not tracked; an event on
                    // it must not cost a walk of the whole site.
                    if rel.is_empty() || !site.policy.descend(&rel) {
                        continue;
                    }
                    // Its own mode and owner.
                    if let Some(kind) = FileState::compare(before.as_ref(), state.as_ref()) {
                        changes.push(Change {
                            site: Arc::clone(&site.name),
                            rel: rel.clone(),
                            kind,
                            before,
                            after: state,
                            detected_by: by,
                            transient: None,
                            hot: false,
                            actor: seen.actor.clone(),
                            signatures: Vec::new(),
                            unscanned: None,
                        });
                    }
                    // Only its attributes changed (chmod, chown) and it is
                    // watched: nothing below it to look at.
                    let attrib_only = !seen.wrote && !seen.gone;
                    if attrib_only && self.watcher(i).as_ref().is_some_and(|w| w.watches(&rel)) {
                        continue;
                    }
                    self.watch(i, &rel, true)?;
                    let mut below = store.load_under(&site.name, &rel)?;
                    // The walk starts inside it: its own state is judged above.
                    below.remove(&rel);
                    // Not cancellable: realtime work is finished even at
                    // shutdown, as a cut-short walk would look like deletions.
                    let began = std::time::Instant::now();
                    let cmp = detect::compare(&CompareSpec {
                        detected_by: by,
                        start: &rel,
                        content: Some(&self.content),
                        ..CompareSpec::new(site, &below)
                    })?;
                    for (p, e) in &cmp.problems {
                        tracing::warn!(site = %site.name, "{}: {e}", scan::show(p));
                    }
                    let read = cmp.changes.iter().filter(|c| c.after.as_ref().is_some_and(|a| a.sha256.is_some()));
                    self.sites[i].walked(read.map(|c| c.rel.clone()), began);
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
                    let accepted_below = store.load_under(&site.name, &rel)?;
                    // Files alerted and never accepted below it are gone too
                    // (their own events may name a parent that no longer
                    // exists): back to what was accepted, nothing.
                    if after.is_none() && !rel.is_empty() {
                        let drift = store.drift_under(&site.name, &rel)?;
                        reverted.extend(drift.into_iter().filter(|p| !accepted_below.contains_key(p)));
                    }
                    for (below, before) in accepted_below {
                        if below != rel && site.policy.watched(&below, before.kind) {
                            changes.push(Change::new(
                                Arc::clone(&site.name),
                                below,
                                EventKind::Deleted,
                                Some(before),
                                None,
                                by,
                            ));
                        }
                    }
                    let kind = after.as_ref().or(before.as_ref()).map(|s| s.kind).unwrap_or(FileType::File);
                    if !site.policy.watched(&rel, kind) {
                        continue;
                    }
                    let (kind, transient) = match FileState::compare(before.as_ref(), after.as_ref()) {
                        Some(event) => (event, None),
                        None => match transient(&seen, before.as_ref(), after.as_ref()) {
                            // Events received before a walk read the file
                            // (and reported it): it is gone, that is all.
                            Some(t) if t.end == TransientEnd::Deleted && self.sites[i].read_since(&rel, seen.last) => {
                                reverted.push(rel);
                                continue;
                            }
                            Some(t) => (if after.is_none() { EventKind::Added } else { EventKind::Modified }, Some(t)),
                            None => {
                                reverted.push(rel);
                                continue;
                            }
                        },
                    };
                    changes.push(Change {
                        site: Arc::clone(&site.name),
                        rel,
                        kind,
                        before,
                        after,
                        detected_by: by,
                        transient,
                        hot: seen.hot,
                        actor: seen.actor.clone(),
                        signatures: Vec::new(),
                        unscanned: None,
                    });
                }
            }
        }
        changes.sort_by(|a, b| a.rel.cmp(&b.rel));
        changes.dedup_by(|a, b| a.rel == b.rel);
        // A path found changed (a directory gone and made again between two
        // looks) is judged as found, not forgotten.
        reverted.sort();
        reverted.dedup();
        reverted.retain(|r| changes.binary_search_by(|c| c.rel.as_slice().cmp(r.as_slice())).is_err());
        let observed =
            Observed { generation: Arc::clone(self), site: i, changes, reverted, scan_started: None, done: None };
        Ok((observed, deferred))
    }

    /// What is at `rel` now (hashing a regular file unless its stat matches
    /// the baseline's). `defer_big`: a regular file larger than
    /// [`BIG_FILE`] is [`Current::Big`], not read.
    fn current(
        &self,
        site: &Site,
        rel: &[u8],
        known: Option<&FileState>,
        buf: &mut Vec<u8>,
        defer_big: bool,
    ) -> Current {
        if rel.is_empty() {
            return Current::Dir(None);
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
        match file::lstat_at(dir.as_fd(), &name) {
            Ok(st) if FileType::from_mode(st.st_mode) == FileType::Dir => {
                return Current::Dir(Some(file::state_from_stat(&st)))
            }
            Ok(st)
                if defer_big && FileType::from_mode(st.st_mode) == FileType::File && st.st_size as u64 > BIG_FILE =>
            {
                return Current::Big
            }
            Ok(_) => {}
            Err(nix::errno::Errno::ENOENT) => return Current::State(None),
            Err(e) => {
                tracing::warn!(site = %site.name, "{}: {}", scan::show(rel), e.desc());
                return Current::Unknown;
            }
        }
        // Only what the policy watches is kept, and never a secret: an
        // ignored notes.txt with a password is not copied into the store.
        let secret_name = site.policy.nodiff(rel);
        let keep = !secret_name && site.policy.watched(rel, FileType::File);
        let mut captured = Vec::new();
        let capture = keep.then_some(&mut captured);
        match file::read_state_at(dir.as_fd(), &name, known, false, buf, capture) {
            Ok(state) => {
                if let Some((s, n)) = &state {
                    if let (Some(sha), true) = (s.sha256.as_ref(), secret_name) {
                        self.content.mark_secret(sha);
                    }
                    if let Some(sha) = s.sha256.as_ref().filter(|_| keep && (*n > 0 || s.size == 0)) {
                        if captured.len() as u64 == s.size {
                            self.content.keep(sha, &captured, site.policy.secrets());
                        }
                    }
                }
                Current::State(state.map(|(s, _)| s))
            }
            // Kept changing while read (a "hot" file): judged as last read,
            // for a file that never stops being written must not go unseen.
            Err(scan::ItemError::Busy(Some(torn))) => Current::State(Some(*torn)),
            Err(e) => {
                tracing::warn!(site = %site.name, "{}: {e}", scan::show(rel));
                Current::Unknown
            }
        }
    }

    /// Looks at the WordPress packages site `i` runs now and fetches the
    /// manifests of new versions (cache first). Network time happens here,
    /// on the scan worker, never in the judge. A package whose checksums
    /// cannot be had is `unknown`, with one warning.
    pub fn refresh_vendors(&self, i: usize) {
        let site = &self.cfg.sites[i];
        if !self.vendors_apply(i) {
            return;
        }
        let now = wordpress::detect(&site.real_root);
        let known: Vec<(Package, Fetch)> = self.sites[i].packages.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut next = Vec::with_capacity(now.len());
        for p in now {
            if self.cancelled() {
                return;
            }
            if let Some(kept) = known.iter().find(|(k, m)| *k == p && matches!(m, Fetch::Got(_))) {
                next.push(kept.clone());
                continue;
            }
            let mut fetched = self.publisher.manifest(&p, &self.cancel);
            if matches!(fetched, Err(FetchError::NotPublished(_))) {
                // The version file names a release the publisher does not
                // know: the release the files are judges them.
                let also: Vec<String> = self.sites[i].accepted_version(&p.name).into_iter().collect();
                if let Some(m) = self.publisher.identify(&site.real_root, &p, &also, &self.cancel) {
                    // Once: a release found is kept until the version changes.
                    tracing::warn!(
                        site = %site.name,
                        "{}: {} says {}, a release the publisher does not know; the files are {} {}: judged against it",
                        p.name,
                        crate::util::bytes::printable(&p.version_file),
                        p.version,
                        p.name,
                        m.version
                    );
                    // The baseline holds the release the files are.
                    if self.sites[i].accepted_version(&p.name).as_deref() == Some(p.version.as_str()) {
                        self.sites[i].set_accepted_version(&p.name, &m.version);
                    }
                    fetched = Ok(m);
                }
            }
            let m = match fetched {
                Ok(m) => {
                    tracing::info!(site = %site.name, files = m.len(), "checksums of {} {}", p.name, p.version);
                    Fetch::Got(m)
                }
                // A newer generation takes over; it looks again.
                Err(FetchError::Cancelled) => return,
                Err(e) => {
                    // Once per package version, not at every look.
                    if !known.iter().any(|(k, m)| *k == p && matches!(m, Fetch::Failed | Fetch::Unreachable)) {
                        tracing::warn!(site = %site.name, "{e}: its changes are judged without a verdict (unknown)");
                    }
                    match e {
                        FetchError::Unreachable { .. } => Fetch::Unreachable,
                        _ => Fetch::Failed,
                    }
                }
            };
            next.push((p, m));
        }
        *self.sites[i].packages.lock().unwrap_or_else(|p| p.into_inner()) = next;
    }

    /// Has site `i` a package whose publisher could not be reached (to be
    /// asked again)?
    pub fn vendors_unreachable(&self, i: usize) -> bool {
        self.sites[i]
            .packages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|(_, m)| matches!(m, Fetch::Unreachable))
    }

    /// Are site `i`'s packages looked up at their publishers?
    pub fn vendors_apply(&self, i: usize) -> bool {
        let site = &self.cfg.sites[i];
        self.cfg.vendors.enabled && site.profile == "wordpress" && site.reference.is_none()
    }

    /// The packages site `i` runs, without their manifests yet (no
    /// network): from the start, their changes say `unknown` rather than
    /// nothing until the checksums are fetched.
    fn detect_packages(&self, i: usize) {
        if self.vendors_apply(i) {
            let found: Vec<_> =
                wordpress::detect(&self.cfg.sites[i].real_root).into_iter().map(|p| (p, Fetch::Pending)).collect();
            if let Ok(mut a) = self.sites[i].accepted_versions.lock() {
                *a = found.iter().map(|(p, _)| (p.name.clone(), p.version.clone())).collect();
            }
            *self.sites[i].packages.lock().unwrap_or_else(|p| p.into_inner()) = found;
        }
    }

    /// Where site `i`'s realtime events come from, and why inotify when
    /// fanotify was wanted.
    pub fn source(&self, i: usize) -> (Option<String>, Option<String>) {
        match self.watcher(i).as_ref() {
            Some(w) => {
                let (s, why) = w.source();
                (Some(s.to_string()), why.map(ToString::to_string))
            }
            None => (None, None),
        }
    }

    /// Directories watched by site `i`.
    pub fn watch_count(&self, i: usize) -> usize {
        self.watcher(i).as_ref().map(|w| w.count()).unwrap_or(0)
    }

    /// Stops every watch of this generation.
    pub fn stop_watching(&self) {
        self.retired.store(true, Ordering::Release);
        for i in 0..self.sites.len() {
            *self.watcher(i) = None;
        }
    }

    /// Is the next generation in force (see [`Generation::stop_watching`])?
    pub fn retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    /// Hands realtime paths back to the daemon, which routes them to the
    /// generation in force: a job of a retired generation must not be
    /// judged by its old policy (a path the new config ignores, walked
    /// below a new directory, was alerted just after a reload).
    pub fn hand_back(&self, site: usize, rels: Vec<(RelPath, Seen)>, by: DetectedBy) {
        let name = &self.cfg.sites[site].name;
        for (rel, seen) in rels {
            let event = WatchEvent::Path { site: Arc::clone(name), rel, by, op: Op::Written, actor: seen.actor };
            if self.events.try_send(event).is_err() {
                let reason = "the event queue is full after a reload".to_string();
                let _ = self.events.try_send(WatchEvent::Rescan { site: Arc::clone(name), reason });
                return;
            }
        }
    }
}

/// The package that holds `rel`: the innermost package folder, else core
/// (outside `wp-content/`, or a file of `wp-content/` core's release lists
/// that is in no plugin's or theme's folder: `plugins/hello.php`).
fn owning<'p>(packages: &'p [(Package, Fetch)], rel: &[u8]) -> Option<&'p (Package, Fetch)> {
    wordpress::owner(packages, rel).or_else(|| {
        wordpress::package_of(rel)
            .is_none()
            .then(|| packages.iter().find(|(p, m)| p.dir.is_empty() && matches!(m, Fetch::Got(m) if m.lists(rel))))
            .flatten()
    })
}

/// Where a package's manifest stands.
#[derive(Clone)]
pub enum Fetch {
    /// Not asked for yet.
    Pending,
    /// At hand.
    Got(Arc<crate::releases::Manifest>),
    /// Not published, or not to be had (warned once).
    Failed,
    /// The publisher could not be reached (warned once): the loop asks
    /// again (the host's own backoff decides when the network is used).
    Unreachable,
}

enum Current {
    /// A directory, and its state (none for the root).
    Dir(Option<FileState>),
    /// A big regular file, left to the big-file lane.
    Big,
    /// The state (None: nothing there).
    State(Option<FileState>),
    /// Could not be read: neither confirmed nor reported.
    Unknown,
}

/// The transient a path's events reveal when its state now is its
/// accepted one: created (or written) and gone again, or written and found
/// with its accepted content but a new inode or times.
fn transient(seen: &Seen, before: Option<&FileState>, after: Option<&FileState>) -> Option<Transient> {
    if !seen.wrote {
        return None;
    }
    let lived_ms = seen.span_ms();
    match (before, after) {
        (None, None) => Some(Transient { lived_ms, end: TransientEnd::Deleted, one_life: seen.one_life() }),
        (Some(b), Some(a)) if (seen.closes >= 2 || lived_ms >= PUT_BACK_SPAN_MS) && !b.same_stat(a) => {
            Some(Transient { lived_ms, end: TransientEnd::Restored, one_life: false })
        }
        _ => None,
    }
}
