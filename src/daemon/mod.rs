//! The daemon (`sitewarden run`, and `sitewarden watch` in the foreground):
//! realtime watching, coalescing, scheduled scans, reloads, supervision and
//! readiness.
//!
//! Who owns what:
//! - the async loop ([`Core`], tokio, current thread) owns the event
//!   intake, the coalescing window, the schedule of scans and the
//!   configuration generations; it takes its shutdown and reload orders as
//!   [`Control`] messages, so tests drive it in-process ([`run_with`]) and
//!   `run` only turns signals into those messages;
//! - one thread reads the kernel's events ([`Hub`]);
//! - three worker threads observe: one for realtime paths, one for the
//!   realtime paths of big files (hashing a multi-gigabyte file must not
//!   hold up the alerts of small ones, in any site), one for scans (at low
//!   CPU and I/O priority). They read the store, never write it. The
//!   realtime worker signs what is cheap and leaves the costly signature
//!   scans to the [signature lane](signing), a thread of its own;
//! - the [judge](judge) thread decides: it alone writes the store,
//!   quarantines and delivers to the sinks;
//! - every thread is started through a [`Supervisor`]; when one dies, the
//!   loop returns an error and the process exits non-zero so that systemd
//!   restarts it, and the watchdog is pinged only while the judge makes
//!   progress.
//!
//! Shutdown stops the sources, hands the pending paths to the realtime
//! worker, waits for the workers and then the judge under a deadline.

pub mod debounce;
pub mod generation;
pub mod judge;
pub mod maintenance;
pub mod metrics;
mod signing;
mod staging;
pub mod status;
pub mod systemd;
mod updates;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::alert::Sinks;
use crate::baseline::{Store, StoreError};
use crate::config::{Config, ConfigError};
use crate::model::{Change, DetectedBy, EventKind, RelPath};
use crate::util::supervise::{Exits, Supervisor};
use crate::watch::Op;
use crate::watch::{Hub, WatchEvent};
use debounce::{Debouncer, Due, Seen};
use generation::{Generation, StartMode, Started, WorkError};
use judge::JudgeHandle;

/// Events waiting between the kernel and the loop; past this the watcher
/// raises the site's rescan flag instead of blocking.
const EVENT_QUEUE: usize = 65_536;
/// Time allowed for the workers and the judge to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);
/// How often the loop looks at the schedule and at dead threads.
const TICK: Duration = Duration::from_millis(100);
/// How often packages whose publisher could not be reached are looked up
/// again (the publisher host's own backoff, 30 s doubling to 10 min,
/// decides when the network is used; this asks nothing of it before).
const VENDORS_RETRY: Duration = Duration::from_secs(10);
/// Site roots are resolved again every this many ticks (a deploy symlink
/// swapped: `current -> releases/r2`).
const ROOT_CHECK_TICKS: u64 = 5;

/// The daemon cannot run, or had to stop (the caller exits non-zero).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The baseline store cannot be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A sink cannot be set up (alert log, mail route, outbox).
    #[error(transparent)]
    Sinks(#[from] crate::alert::BuildError),
    /// Another daemon holds the state directory.
    #[error("another sitewarden daemon is running on {0}")]
    Locked(PathBuf),
    /// A system call the daemon needs failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A thread of the daemon died: it must not run on blind.
    #[error("thread {thread} died: {reason}; exiting so that the service is restarted")]
    Died {
        /// The thread's name.
        thread: String,
        /// Its panic message or error.
        reason: String,
    },
}

/// Builds the sinks of a configuration generation; threads it starts (the
/// couriers of mail, webhooks and syslog) are started under the supervisor
/// it is given.
pub type SinkFactory = Box<dyn Fn(&Config, &Supervisor) -> Result<Sinks, DaemonError> + Send>;

/// Orders to a running daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Stop (SIGTERM, SIGINT).
    Shutdown,
    /// Reload the config file (SIGHUP).
    Reload,
}

/// What a running daemon tells an observer (tests, mostly).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Every site is watched and caught up.
    Ready,
    /// Generation N of the config is in force for every site.
    Reloaded(u64),
    /// A reload was refused; the running config is kept.
    Refused(String),
}

/// What the daemon runs with.
pub struct Setup {
    /// The configuration to start with.
    pub cfg: Config,
    /// Where a reload reads the config from (`None`: reload is off).
    pub config_path: Option<PathBuf>,
    /// Builds the sinks of each generation.
    pub sinks: SinkFactory,
    /// Told of each phase, when set.
    pub phases: Option<std::sync::mpsc::Sender<Phase>>,
}

/// Runs the daemon until SIGTERM or SIGINT; SIGHUP reloads.
pub fn run(setup: Setup) -> Result<(), DaemonError> {
    let runtime = new_runtime()?;
    let (tx, rx) = mpsc::channel(8);
    let result = runtime.block_on(async move {
        forward_signals(tx)?;
        serve(setup, rx).await
    });
    // A worker still busy past the grace period must not hold the exit:
    // what it had not judged is caught by the catch-up scan at next start.
    runtime.shutdown_background();
    result
}

/// Runs the daemon until `control` says [`Control::Shutdown`] (or is
/// closed); signals are left alone. The entry point of in-process tests.
pub fn run_with(setup: Setup, control: mpsc::Receiver<Control>) -> Result<(), DaemonError> {
    let runtime = new_runtime()?;
    let result = runtime.block_on(serve(setup, control));
    runtime.shutdown_background();
    result
}

fn new_runtime() -> Result<tokio::runtime::Runtime, DaemonError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| DaemonError::Io { what: "cannot start the async runtime".into(), source })
}

/// SIGTERM and SIGINT become [`Control::Shutdown`], SIGHUP
/// [`Control::Reload`].
fn forward_signals(tx: mpsc::Sender<Control>) -> Result<(), DaemonError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(io("cannot handle SIGTERM"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(io("cannot handle SIGINT"))?;
    let mut hup = signal(SignalKind::hangup()).map_err(io("cannot handle SIGHUP"))?;
    tokio::spawn(async move {
        loop {
            let order = tokio::select! {
                _ = term.recv() => Control::Shutdown,
                _ = int.recv() => Control::Shutdown,
                _ = hup.recv() => Control::Reload,
            };
            if tx.send(order).await.is_err() {
                return;
            }
        }
    });
    Ok(())
}

/// Work for the worker threads.
enum Job {
    /// Look at the packages a site runs and fetch their manifests.
    Vendors {
        generation: Arc<Generation>,
        site: usize,
    },
    Start {
        generation: Arc<Generation>,
        site: usize,
        mode: StartMode,
    },
    Scan {
        generation: Arc<Generation>,
        site: usize,
        rehash: bool,
    },
    Paths {
        generation: Arc<Generation>,
        site: usize,
        rels: Vec<(RelPath, Seen)>,
        by: DetectedBy,
    },
    /// Re-check the files with hard links by stat (a write through another
    /// name gives no event here).
    Links {
        generation: Arc<Generation>,
        site: usize,
    },
}

/// What the workers tell the loop.
enum Report {
    Started { generation: u64, site: usize, mode: StartMode, result: Result<Started, String> },
    Scanned { generation: u64, site: usize },
}

/// The loop's view of one site of the current generation.
#[derive(Default, Clone)]
struct SiteSched {
    ready: bool,
    scan_running: bool,
    scan_again: bool,
    next_scan: Option<Instant>,
    next_rehash: Option<Instant>,
    next_links: Option<Instant>,
    /// When the packages whose publisher could not be reached are looked
    /// up again.
    next_vendors: Option<Instant>,
    /// The directory the root was last seen to resolve to, when that is
    /// not the generation's (alerted once, followed by a reload).
    swapped_to: Option<PathBuf>,
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> DaemonError + '_ {
    move |source| DaemonError::Io { what: what.to_string(), source }
}

/// Holds the exclusive lock of `state_dir` while the daemon runs.
fn lock(state_dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, DaemonError> {
    let path = state_dir.join("daemon.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io("cannot open the daemon lock"))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|_| DaemonError::Locked(state_dir.to_path_buf()))
}

/// The async loop's state.
struct Core {
    config_path: Option<PathBuf>,
    make_sinks: SinkFactory,
    phases: Option<std::sync::mpsc::Sender<Phase>>,
    supervisor: Supervisor,
    exits: Exits,
    judge: JudgeHandle,
    events: mpsc::Sender<WatchEvent>,
    paths: mpsc::Sender<Job>,
    scans: mpsc::Sender<Job>,
    current: Arc<Generation>,
    /// The generation being replaced by a reload, until every site of the
    /// current one is watched: its watchers and config keep realtime
    /// flowing meanwhile.
    previous: Option<Arc<Generation>>,
    sched: Vec<SiteSched>,
    debouncer: Debouncer,
    hub: Arc<Hub>,
    notifier: systemd::Notifier,
    announced: bool,
    started_at: String,
    status_due: bool,
    last_status: Instant,
    /// The current sinks' route health (the judge writes it).
    routes: crate::alert::RouteHealth,
    /// The thread the watchdog found hung, while it is.
    hung_thread: Option<String>,
    /// Alerts delivered since start (the judge counts, across reloads).
    counts: crate::alert::AlertCounts,
}

async fn serve(setup: Setup, mut control: mpsc::Receiver<Control>) -> Result<(), DaemonError> {
    let Setup { cfg, config_path, sinks: make_sinks, phases } = setup;
    cfg.signatures.rules()?;
    let state_dir = cfg.state_dir.clone();
    drop(Store::open(&state_dir)?);
    let _lock = lock(&state_dir)?;
    let (supervisor, exits) = Supervisor::new();
    let (ev_tx, mut ev_rx) = mpsc::channel::<WatchEvent>(EVENT_QUEUE);
    let (rep_tx, mut rep_rx) = mpsc::channel::<Report>(1024);
    let (paths_tx, paths_rx) = mpsc::channel::<Job>(4096);
    let (scans_tx, scans_rx) = mpsc::channel::<Job>(4096);
    let sinks = make_sinks(&cfg, &supervisor)?;
    let routes = sinks.health.clone();
    let counts = sinks.counts.clone();
    let content = crate::content::ContentStore::new(&state_dir);
    // The quarantine's writes, known to the fanotify source as the daemon's.
    let own = Arc::new(crate::watch::own::OwnWrites::default());
    let judge =
        judge::spawn(&state_dir, content.clone(), crate::util::hostname(), sinks, Arc::clone(&own), &supervisor)?;
    let hub = Hub::new(cfg.realtime, own)
        .map_err(|e| DaemonError::Io { what: "inotify".into(), source: std::io::Error::other(e) })?;
    let reader = Arc::clone(&hub);
    let pulse = supervisor.pulse("sw-inotify");
    supervisor.spawn("sw-inotify", move || reader.serve(&pulse)).map_err(io("cannot start the inotify reader"))?;
    let (big_tx, big_rx) = mpsc::channel::<Job>(4096);
    let (lane, signer) =
        signing::SignLane::spawn(&supervisor, judge.clone()).map_err(io("cannot start the signature lane"))?;
    let fast = Some(Fast { big: big_tx, lane });
    // The signature lane ends after the realtime worker, which feeds it.
    let workers = [
        spawn_worker(&supervisor, "sw-realtime", paths_rx, fast, rep_tx.clone(), judge.clone(), &state_dir)?,
        signer,
        spawn_worker(&supervisor, "sw-bigfile", big_rx, None, rep_tx.clone(), judge.clone(), &state_dir)?,
        spawn_worker(&supervisor, "sw-scan", scans_rx, None, rep_tx, judge.clone(), &state_dir)?,
    ];
    let (quiet, max_delay) = (cfg.scan.quiet_period, cfg.scan.max_delay);
    let current = Arc::new(Generation::new(1, cfg, content.clone(), Arc::clone(&hub), ev_tx.clone(), None));
    let mut core = Core {
        sched: vec![SiteSched::default(); current.sites.len()],
        current,
        previous: None,
        config_path,
        make_sinks,
        phases,
        supervisor,
        exits,
        judge,
        events: ev_tx,
        paths: paths_tx,
        scans: scans_tx,
        debouncer: Debouncer::new(quiet, max_delay),
        hub,
        notifier: systemd::Notifier::from_env(),
        announced: false,
        started_at: crate::util::time::rfc3339_ms(crate::util::time::now_ns()),
        status_due: true,
        last_status: Instant::now(),
        routes,
        hung_thread: None,
        counts,
    };
    core.start_sites(StartMode::CatchUp).await;

    let mut tick = tokio::time::interval(TICK);
    let watchdog = core.notifier.watchdog_interval();
    let mut watchdog_tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    let mut batch = Vec::with_capacity(1024);
    let mut ticks: u64 = 0;
    loop {
        let deadline = core.debouncer.next_deadline().map(Instant::from_std);
        tokio::select! {
            n = ev_rx.recv_many(&mut batch, 1024) => {
                if n == 0 {
                    break;
                }
                core.intake(batch.drain(..));
                // A closed file is due at once: dispatched now, not at the
                // timer's next millisecond.
                if core.debouncer.next_deadline().is_some_and(|d| d <= std::time::Instant::now()) {
                    core.dispatch_due().await;
                }
            }
            _ = sleep_until(deadline) => core.dispatch_due().await,
            Some(report) = rep_rx.recv() => core.report(report).await,
            _ = tick.tick() => {
                if let Some(exit) = core.exits.try_death() {
                    return Err(core.died(exit));
                }
                core.tick();
                core.hung();
                ticks += 1;
                if ticks % ROOT_CHECK_TICKS == 0 {
                    core.check_roots().await;
                }
            }
            _ = watchdog_tick.tick(), if watchdog.is_some() => {
                // Only while every part makes progress: a hung judge, kernel
                // reader, realtime or big-file lane or courier must make
                // systemd restart us.
                let judge_ok = watchdog.is_some_and(|w| !core.judge.stalled(w * 2));
                if judge_ok && core.hung().is_none() {
                    core.notifier.notify("WATCHDOG=1");
                }
            }
            order = control.recv() => match order {
                Some(Control::Reload) => core.reload().await,
                Some(Control::Shutdown) | None => break,
            },
        }
    }
    core.shutdown(ev_rx, workers, &state_dir).await
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Core {
    /// The thread that hangs, if one does: said once in the log (and the
    /// watchdog stops vouching for the daemon while it lasts).
    fn hung(&mut self) -> Option<String> {
        let stalled = self.supervisor.stalled();
        match (&stalled, &self.hung_thread) {
            (Some((name, busy)), None) => {
                tracing::error!(thread = %name, "thread {name} hung: busy for {busy:?}, past its limit; the watchdog no longer vouches for the daemon");
                self.hung_thread = Some(name.clone());
            }
            (None, Some(name)) => {
                tracing::warn!(thread = %name, "thread {name} is making progress again");
                self.hung_thread = None;
            }
            _ => {}
        }
        stalled.map(|(name, _)| name)
    }

    fn phase(&self, p: Phase) {
        if let Some(tx) = &self.phases {
            let _ = tx.send(p);
        }
    }

    fn died(&self, exit: crate::util::supervise::Exit) -> DaemonError {
        let reason = exit.failure.unwrap_or_default();
        tracing::error!(thread = %exit.name, "{reason}");
        status::remove(&self.current.cfg.state_dir);
        DaemonError::Died { thread: exit.name, reason }
    }

    async fn start_sites(&mut self, mode: StartMode) {
        for site in 0..self.current.sites.len() {
            let job = Job::Start { generation: Arc::clone(&self.current), site, mode };
            if self.scans.send(job).await.is_err() {
                // The scan worker is gone; its death is reported at the next tick.
                return;
            }
        }
    }

    /// Does a quarantine rule of site `name` cover `rel`?
    fn guarded(&self, name: &str, rel: &[u8]) -> bool {
        self.current.site_index(name).is_some_and(|i| {
            let policy = &self.current.cfg.sites[i].policy;
            policy.classify(rel, crate::model::FileType::File, crate::model::EventKind::Modified).quarantine.is_some()
        })
    }

    /// Kernel events (and paths a scan found still being written).
    fn intake(&mut self, batch: impl Iterator<Item = WatchEvent>) {
        let now = std::time::Instant::now();
        for ev in batch {
            match ev {
                WatchEvent::Path { site, rel, by, op, actor } => {
                    // A closed file a quarantine rule covers is undone at once,
                    // however often it is rewritten.
                    let guarded = op == Op::Closed && self.guarded(&site, &rel);
                    self.debouncer.push((site, rel), now, by, op, actor, guarded)
                }
                WatchEvent::Rescan { site, reason } => {
                    if let Some(i) = self.current.site_index(&site) {
                        tracing::warn!(site = %site, "{reason}: rescanning the site");
                        self.request_scan(i, false);
                    }
                }
            }
        }
    }

    /// The generation that judges realtime paths of site `name` now: the
    /// current one once the site is watched there, else the one it replaces.
    fn route(&self, name: &str) -> Option<(Arc<Generation>, usize)> {
        if let Some(i) = self.current.site_index(name) {
            if self.sched[i].ready {
                return Some((Arc::clone(&self.current), i));
            }
        }
        let prev = self.previous.as_ref()?;
        prev.site_index(name).map(|i| (Arc::clone(prev), i))
    }

    /// Hands the paths whose quiet period is over to the realtime worker,
    /// one job per site.
    async fn dispatch_due(&mut self) {
        let now = std::time::Instant::now();
        let (current, previous, sched) = (&self.current, self.previous.as_deref(), &self.sched);
        let due = self.debouncer.take_due(now, |name| routable(current, previous, sched, name));
        self.dispatch(due).await;
    }

    async fn dispatch(&self, due: Vec<Due>) {
        // Keyed by (generation, site, how seen).
        let mut groups: HashMap<(u64, usize, DetectedBy), Job> = HashMap::new();
        for Due { key: (name, rel), by, seen } in due {
            if let Some((generation, site)) = self.route(&name) {
                let job = groups.entry((generation.number, site, by)).or_insert_with(|| Job::Paths {
                    generation,
                    site,
                    rels: Vec::new(),
                    by,
                });
                if let Job::Paths { rels, .. } = job {
                    rels.push((rel, seen));
                }
            }
        }
        for job in groups.into_values() {
            // Closed only when the realtime worker died: reported at the next tick.
            let _ = self.paths.send(job).await;
        }
    }

    async fn report(&mut self, report: Report) {
        match report {
            Report::Started { generation, site, mode, result } if generation == self.current.number => {
                self.site_started(site, mode, result);
                if self.sched.iter().all(|s| s.ready) {
                    self.all_started();
                }
            }
            Report::Scanned { generation, site } if generation == self.current.number => {
                let s = &mut self.sched[site];
                s.scan_running = false;
                if std::mem::take(&mut s.scan_again) {
                    self.request_scan(site, false);
                }
                self.status_due = true;
            }
            // From a generation a reload replaced.
            _ => {}
        }
    }

    fn site_started(&mut self, site: usize, mode: StartMode, result: Result<Started, String>) {
        let name = &self.current.cfg.sites[site].name;
        match result {
            Ok(s) => tracing::info!(
                site = %name,
                watches = s.watches,
                degraded = s.degraded,
                baseline_built = s.built_baseline,
                alerts = s.alerts,
                "site watched"
            ),
            Err(e) => {
                tracing::error!(site = %name, "start failed: {e}; the site is checked by scans");
                self.current.sites[site].set_degraded(Some(format!("start failed: {e}")));
                self.current.sites[site].rescan_due.store(true, Ordering::Release);
            }
        }
        let now = Instant::now();
        let interval = self.scan_interval(site);
        let rehash = self.current.cfg.scan.rehash_interval.map(|d| now + d);
        // Published checksums, on the scan worker (network time).
        let _ = self.scans.try_send(Job::Vendors { generation: Arc::clone(&self.current), site });
        let s = &mut self.sched[site];
        s.ready = true;
        s.next_scan = Some(now + interval);
        s.next_rehash = rehash;
        self.status_due = true;
        if mode == StartMode::Reload {
            // What the new config sees differently (new ignores, new sites).
            self.request_scan(site, false);
        }
    }

    /// Every site of the current generation is watched.
    fn all_started(&mut self) {
        if let Some(old) = self.previous.take() {
            old.stop_watching();
            tracing::info!("configuration reloaded");
            self.phase(Phase::Reloaded(self.current.number));
        }
        if !self.announced {
            self.announced = true;
            // `status` must say ready as soon as the line below is out.
            self.write_status();
            let watches: usize = (0..self.current.sites.len()).map(|i| self.current.watch_count(i)).sum();
            let sites = self.current.sites.len();
            eprintln!("sitewarden: ready ({sites} sites, {watches} directories watched)");
            self.notifier.notify(&format!("READY=1\nSTATUS=watching {sites} sites, {watches} directories"));
            self.phase(Phase::Ready);
        }
    }

    fn tick(&mut self) {
        let now = Instant::now();
        for i in 0..self.sched.len() {
            if !self.sched[i].ready {
                continue;
            }
            let site = &self.current.sites[i];
            let retry = self.sched[i].next_vendors.is_none_or(|t| now >= t) && self.current.vendors_unreachable(i);
            if site.vendors_stale.swap(false, Ordering::AcqRel) || retry {
                self.sched[i].next_vendors = Some(now + VENDORS_RETRY);
                let _ = self.scans.try_send(Job::Vendors { generation: Arc::clone(&self.current), site: i });
            }
            let site = &self.current.sites[i];
            if site.rescan_due.swap(false, Ordering::AcqRel) {
                tracing::warn!(site = %self.current.cfg.sites[i].name, "events were dropped: rescanning the site");
                self.request_scan(i, false);
            }
            // Turned degraded (watch limit) since it was scheduled: the
            // fallback interval applies from now on.
            let interval = self.scan_interval(i);
            let s = &mut self.sched[i];
            if s.next_scan.is_some_and(|t| t > now + interval) {
                s.next_scan = Some(now + interval);
            }
            // A maintenance window that held back alerts is over: whatever
            // it did not accept is reported now.
            let site = &self.current.sites[i];
            if site.suppressed.load(Ordering::Acquire)
                && !maintenance::active(&self.current.cfg.state_dir, &self.current.cfg.sites[i].name)
            {
                site.suppressed.store(false, Ordering::Release);
                self.request_scan(i, false);
            }
            let links_every = self.current.cfg.scan.hardlink_interval;
            let s = &mut self.sched[i];
            if s.next_links.is_none_or(|t| t <= now) {
                s.next_links = Some(now + links_every);
                // Full: the next round does it.
                let _ = self.paths.try_send(Job::Links { generation: Arc::clone(&self.current), site: i });
            }
            let rehash_every = self.current.cfg.scan.rehash_interval;
            let s = &mut self.sched[i];
            let rehash = s.next_rehash.is_some_and(|t| t <= now);
            if rehash || s.next_scan.is_some_and(|t| t <= now) {
                s.next_scan = Some(now + interval);
                if rehash {
                    s.next_rehash = rehash_every.map(|d| now + d);
                }
                self.request_scan(i, rehash);
            }
        }
        if self.status_due || self.last_status.elapsed() > Duration::from_secs(10) {
            self.write_status();
            self.status_due = false;
            self.last_status = Instant::now();
        }
    }

    /// Deploy symlinks: a root (or a parent of it) that now resolves to
    /// another directory is alerted (rule `root-swapped`), then the
    /// configuration is loaded again, which watches the new directory and
    /// scans it against the baseline at once.
    async fn check_roots(&mut self) {
        let mut swapped = false;
        for i in 0..self.current.cfg.sites.len() {
            let site = &self.current.cfg.sites[i];
            // A root that is gone is reported by its scans, file by file.
            let Ok(now) = std::fs::canonicalize(&site.root) else { continue };
            if !self.sched[i].ready || now == site.real_root || self.sched[i].swapped_to.as_ref() == Some(&now) {
                continue;
            }
            tracing::warn!(
                site = %site.name,
                "the root {} now resolves to {} (was {}): following it",
                site.root.display(),
                now.display(),
                site.real_root.display()
            );
            let change = Change::new(
                Arc::clone(&site.name),
                Vec::new(),
                EventKind::Modified,
                Some(resolved(&site.root, &site.real_root)),
                Some(resolved(&site.root, &now)),
                DetectedBy::Realtime,
            );
            self.sched[i].swapped_to = Some(now);
            let observed = judge::Observed {
                generation: Arc::clone(&self.current),
                site: i,
                changes: vec![change],
                reverted: Vec::new(),
                scan_started: None,
                done: None,
            };
            if self.judge.realtime_async(observed).await.is_err() {
                return; // The judge died: reported at the next tick.
            }
            swapped = true;
        }
        if swapped {
            if self.config_path.is_some() {
                self.reload().await;
            } else {
                tracing::error!("no config file to load again: restart to watch the new root");
            }
        }
    }

    /// Scan interval of a site: the configured one, or the fallback while
    /// the site has no complete realtime coverage.
    fn scan_interval(&self, site: usize) -> Duration {
        if self.current.sites[site].degraded().is_some() {
            self.current.cfg.scan.fallback_interval
        } else {
            self.current.cfg.scan.interval
        }
    }

    fn request_scan(&mut self, site: usize, rehash: bool) {
        let s = &mut self.sched[site];
        if !s.ready {
            // Still starting: remembered, and scanned once the site is ready.
            self.current.sites[site].rescan_due.store(true, Ordering::Release);
            return;
        }
        if s.scan_running {
            s.scan_again = true;
            return;
        }
        let job = Job::Scan { generation: Arc::clone(&self.current), site, rehash };
        if self.scans.try_send(job).is_ok() {
            s.scan_running = true;
        } else {
            s.scan_again = true;
        }
    }

    /// SIGHUP: a new generation replaces the current one. The old one's
    /// scans are cancelled at once; its watchers keep realtime flowing until
    /// every site of the new one is watched.
    async fn reload(&mut self) {
        let Some(path) = self.config_path.clone() else {
            tracing::info!("SIGHUP ignored: no config file to reload");
            return;
        };
        let (cfg, sinks) = match self.load(&path) {
            Ok(next) => next,
            Err(e) => {
                tracing::error!("config reload refused, the running config is kept: {e}");
                self.phase(Phase::Refused(e.to_string()));
                return;
            }
        };
        tracing::info!("reloading {}", path.display());
        self.routes = sinks.health.clone();
        if self.judge.control(judge::Control::Reload(sinks)).await.is_err() {
            return; // The judge died: reported at the next tick.
        }
        let next = Arc::new(Generation::new(
            self.current.number + 1,
            cfg,
            self.current.content.clone(),
            Arc::clone(&self.hub),
            self.events.clone(),
            Some(&self.current),
        ));
        let scan = &next.cfg.scan;
        self.debouncer.set_periods(scan.quiet_period, scan.max_delay);
        let old = std::mem::replace(&mut self.current, next);
        old.cancel.store(true, Ordering::Relaxed);
        if let Some(older) = self.previous.replace(old) {
            older.stop_watching();
        }
        self.sched = vec![SiteSched::default(); self.current.sites.len()];
        self.start_sites(StartMode::Reload).await;
    }

    fn load(&self, path: &Path) -> Result<(Config, Sinks), DaemonError> {
        let cfg = Config::load(path)?;
        // Rules that do not compile refuse the reload: the old ones stay.
        cfg.signatures.rules()?;
        if cfg.state_dir != self.current.cfg.state_dir {
            return Err(DaemonError::Config(ConfigError::Other(format!(
                "state_dir changed from {} to {}: that needs a restart",
                self.current.cfg.state_dir.display(),
                cfg.state_dir.display()
            ))));
        }
        let sinks = (self.make_sinks)(&cfg, &self.supervisor)?;
        Ok((cfg, sinks))
    }

    fn write_status(&self) {
        let rt = &self.current;
        let sites = rt
            .cfg
            .sites
            .iter()
            .enumerate()
            .map(|(i, s)| (i, s, rt.source(i)))
            .map(|(i, s, (source, source_reason))| status::SiteState {
                name: s.name.to_string(),
                root: s.root.display().to_string(),
                profile: s.profile.clone(),
                watches: rt.watch_count(i),
                degraded: rt.sites[i].degraded().is_some(),
                degraded_reason: rt.sites[i].degraded(),
                ready: self.sched[i].ready,
                source,
                source_reason,
            })
            .collect();
        let st = status::DaemonStatus {
            pid: std::process::id(),
            ready: self.sched.iter().all(|s| s.ready),
            started: self.started_at.clone(),
            kernel_events: self.hub.events(),
            sites,
            routes: self.routes.snapshot(),
        };
        if let Err(e) = status::write(&rt.cfg.state_dir, &st) {
            tracing::warn!("cannot write the status file: {e}");
        }
        if let Some(path) = &rt.cfg.metrics.textfile {
            self.write_metrics(path, &st);
        }
    }

    /// The Prometheus textfile, from the status just written, the store and
    /// the outbox.
    fn write_metrics(&self, path: &Path, st: &status::DaemonStatus) {
        let rt = &self.current;
        let store = crate::baseline::Store::open_existing(&rt.cfg.state_dir).ok();
        let now = crate::util::time::now_ns();
        let sites = st
            .sites
            .iter()
            .map(|s| {
                let info = store.as_ref().and_then(|db| db.site_info(&s.name).ok().flatten()).unwrap_or_default();
                metrics::SiteMetrics {
                    name: s.name.clone(),
                    files: info.files,
                    drift: info.drift,
                    watches: s.watches,
                    last_scan_age: info.last_scan_at.map(|t| (now - t).max(0) as f64 / 1e9),
                    degraded: s.degraded,
                    source: s.source.clone(),
                }
            })
            .collect();
        let queued = crate::alert::outbox::Outbox::all(&rt.cfg.state_dir);
        let oldest = queued.iter().map(|e| e.queued_ns).min();
        let m = metrics::Metrics {
            sites,
            outbox_depth: queued.iter().map(|e| e.count as u64).sum(),
            outbox_oldest_age: oldest.map(|t| (now - t).max(0) as f64 / 1e9).unwrap_or(0.0),
            kernel_events: st.kernel_events,
            routes: st.routes.clone(),
            alerts: self.counts.snapshot(),
        };
        if let Err(e) = metrics::write(path, &metrics::render(&m)) {
            tracing::warn!("cannot write the metrics file {}: {e}", path.display());
        }
    }

    /// Sources first, then the pending paths, then the workers, then the
    /// judge (which flushes to the sinks), all under one deadline.
    async fn shutdown(
        mut self,
        mut ev_rx: mpsc::Receiver<WatchEvent>,
        workers: [std::thread::JoinHandle<()>; 4],
        state_dir: &Path,
    ) -> Result<(), DaemonError> {
        self.notifier.notify("STOPPING=1");
        self.current.cancel.store(true, Ordering::Relaxed);
        if let Some(old) = self.previous.as_ref() {
            old.cancel.store(true, Ordering::Relaxed);
            old.stop_watching();
        }
        self.current.stop_watching();
        self.hub.stop();
        while let Ok(ev) = ev_rx.try_recv() {
            if let WatchEvent::Path { site, rel, by, op, actor } = ev {
                self.debouncer.push((site, rel), std::time::Instant::now(), by, op, actor, false);
            }
        }
        let (current, previous, sched) = (&self.current, self.previous.as_deref(), &self.sched);
        let pending: Vec<_> =
            self.debouncer.drain().into_iter().filter(|d| routable(current, previous, sched, &d.key.0)).collect();
        self.dispatch(pending).await;
        let Core { paths, scans, judge, current, previous, exits, .. } = self;
        drop((paths, scans, current, previous, judge));
        let joined = tokio::time::timeout(
            SHUTDOWN_GRACE,
            tokio::task::spawn_blocking(move || {
                for w in workers {
                    let _ = w.join();
                }
                // The workers' and the loop's handles are gone: the judge
                // finishes its queues and ends; wait for that.
                exits.wait_named("sw-judge", SHUTDOWN_GRACE)
            }),
        )
        .await;
        if !matches!(joined, Ok(Ok(true))) {
            tracing::warn!("workers still busy after {} s; exiting anyway", SHUTDOWN_GRACE.as_secs());
        }
        status::remove(state_dir);
        Ok(())
    }
}

/// The state of a site root `shown` as the record of a swap shows it: a
/// symlink to the directory it resolves to (owner, mode and times of the
/// root as named).
fn resolved(shown: &Path, real: &Path) -> crate::model::FileState {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(shown).ok();
    let num = |f: fn(&std::fs::Metadata) -> i64| meta.as_ref().map(f).unwrap_or(0);
    crate::model::FileState {
        kind: crate::model::FileType::Symlink,
        size: real.as_os_str().len() as u64,
        mode: meta.as_ref().map(|m| m.mode() & 0o7777).unwrap_or(0o777),
        uid: meta.as_ref().map(|m| m.uid()).unwrap_or(0),
        gid: meta.as_ref().map(|m| m.gid()).unwrap_or(0),
        mtime_ns: num(|m| m.mtime() * 1_000_000_000 + m.mtime_nsec()),
        ctime_ns: num(|m| m.ctime() * 1_000_000_000 + m.ctime_nsec()),
        dev: meta.as_ref().map(|m| m.dev()).unwrap_or(0),
        ino: meta.as_ref().map(|m| m.ino()).unwrap_or(0),
        sha256: None,
        target: Some(real.as_os_str().as_bytes().to_vec()),
        nlink: 1,
    }
}

/// May the paths of site `name` be judged now? Yes once the site is watched
/// in the current generation or still watched in the one it replaces; paths
/// of a site no longer configured are let through (and dropped).
fn routable(current: &Generation, previous: Option<&Generation>, sched: &[SiteSched], name: &str) -> bool {
    match current.site_index(name) {
        None => true,
        Some(i) => sched[i].ready || previous.is_some_and(|p| p.site_index(name).is_some()),
    }
}

/// Where the realtime worker hands what would hold it up: the big files
/// (to the big-file lane) and the costly signature scans.
struct Fast {
    big: mpsc::Sender<Job>,
    lane: signing::SignLane,
}

/// Starts a worker; `fast`: the realtime worker's lanes, none for the
/// big-file lane and the scan worker.
fn spawn_worker(
    supervisor: &Supervisor,
    name: &str,
    jobs: mpsc::Receiver<Job>,
    fast: Option<Fast>,
    reports: mpsc::Sender<Report>,
    judge: JudgeHandle,
    state_dir: &Path,
) -> Result<std::thread::JoinHandle<()>, DaemonError> {
    let state_dir = state_dir.to_path_buf();
    let low_priority = name == "sw-scan";
    // How long one job may take before the watchdog calls the lane hung:
    // a batch of realtime paths is milliseconds of work; a big file at the
    // scan's throttle takes minutes. A scan takes as long as the tree
    // (its progress is the scan's own business), so it has no limit.
    let limit = match name {
        "sw-realtime" => Some(Duration::from_secs(60)),
        "sw-bigfile" => Some(Duration::from_secs(600)),
        _ => None,
    };
    let pulse = limit.map(|l| (supervisor.pulse(name), crate::util::fault::limit(l)));
    supervisor
        .spawn(name, move || worker(jobs, fast, reports, judge, &state_dir, low_priority, pulse))
        .map_err(io("cannot start a worker thread"))
}

/// A worker: observes, and hands what it saw to the judge. Ends in order
/// when its job channel closes; the judge being gone is its death.
fn worker(
    mut jobs: mpsc::Receiver<Job>,
    fast: Option<Fast>,
    reports: mpsc::Sender<Report>,
    judge: JudgeHandle,
    state_dir: &Path,
    low_priority: bool,
    pulse: Option<(crate::util::supervise::Pulse, Duration)>,
) -> Result<(), String> {
    if low_priority {
        lower_priority();
    }
    // Reads only: the judge is the one writer.
    let store = Store::open_lean(state_dir).map_err(|e| e.to_string())?;
    let fatal = |e: WorkError| match e {
        WorkError::JudgeGone(g) => Err(g.to_string()),
        _ => Ok(e),
    };
    // Signs what it saw and hands it to the judge; on the realtime worker,
    // the costly scans go to the signature lane.
    let hand = |generation: &Arc<Generation>, mut observed: judge::Observed| -> Result<(), String> {
        let Some(f) = &fast else {
            generation.sign(&mut observed);
            return judge.realtime(observed).map_err(|e| e.to_string());
        };
        let site = observed.site;
        let slow = f.lane.sign_quick(generation, &mut observed);
        judge.realtime(observed).map_err(|e| e.to_string())?;
        f.lane.defer(generation, site, slow)
    };
    while let Some(job) = jobs.blocking_recv() {
        if let Some((p, limit)) = &pulse {
            p.busy(*limit);
        }
        match job {
            Job::Start { generation, site, mode } => {
                if generation.cancel.load(Ordering::Relaxed) {
                    continue; // A newer reload superseded it.
                }
                let result = match generation.start_site(site, &store, &judge, mode) {
                    Ok(s) => Ok(s),
                    Err(e) => Err(fatal(e)?.to_string()),
                };
                let _ = reports.blocking_send(Report::Started { generation: generation.number, site, mode, result });
            }
            Job::Scan { generation, site, rehash } => {
                crate::util::fault::point("scan", generation.cfg.sites[site].name.as_bytes());
                if !generation.cancel.load(Ordering::Relaxed) {
                    match generation.scan_site(site, &store, rehash) {
                        Ok(Some(mut observed)) => {
                            generation.sign(&mut observed);
                            judge.scan(observed).map_err(|e| e.to_string())?
                        }
                        Ok(None) => {}
                        Err(e) => log_work_error(&generation, site, &fatal(e)?),
                    }
                }
                let _ = reports.blocking_send(Report::Scanned { generation: generation.number, site });
            }
            Job::Paths { generation, site, rels, by } if generation.retired() => generation.hand_back(site, rels, by),
            Job::Paths { generation, site, rels, by } => {
                let kept = rels.clone();
                match generation.reconcile(site, &store, rels, by, fast.is_some()) {
                    // Retired while it looked: what it saw may postdate the
                    // new config, so the new one judges it.
                    Ok(_) if generation.retired() => generation.hand_back(site, kept, by),
                    Ok((observed, deferred)) => {
                        hand(&generation, observed)?;
                        if let (Some(Fast { big, .. }), false) = (&fast, deferred.is_empty()) {
                            let job = Job::Paths { generation: Arc::clone(&generation), site, rels: deferred, by };
                            if big.try_send(job).is_err() {
                                // The big-file lane is full: a scan judges them.
                                generation.sites[site].rescan_due.store(true, Ordering::Release);
                            }
                        }
                    }
                    Err(e) => {
                        log_work_error(&generation, site, &fatal(e)?);
                        // The paths are not judged: a scan judges them instead.
                        generation.sites[site].rescan_due.store(true, Ordering::Release);
                    }
                }
            }
            Job::Vendors { generation, site } => generation.refresh_vendors(site),
            Job::Links { generation, site } => {
                let name = &generation.cfg.sites[site].name;
                let now = std::time::Instant::now();
                let result = store.linked_paths(name).map_err(WorkError::from).and_then(|rels| {
                    let rels = rels.into_iter().map(|r| (r, Seen::polled(now))).collect();
                    generation.reconcile(site, &store, rels, DetectedBy::Scan, false)
                });
                match result {
                    Ok((observed, _)) => hand(&generation, observed)?,
                    Err(e) => log_work_error(&generation, site, &fatal(e)?),
                }
            }
        }
        if let Some((p, _)) = &pulse {
            p.idle();
        }
    }
    Ok(())
}

fn log_work_error(generation: &Generation, site: usize, e: &WorkError) {
    tracing::error!(site = %generation.cfg.sites[site].name, "{e}");
}

/// Scans run at nice 10 and the lowest best-effort I/O priority, so a
/// periodic scan never competes with the web server. Threads started from
/// here (the hashing pool) inherit both.
fn lower_priority() {
    // Safety: plain syscalls on the calling thread, no memory handed over.
    unsafe {
        let tid = nix::libc::gettid();
        nix::libc::setpriority(nix::libc::PRIO_PROCESS, tid as nix::libc::id_t, 10);
        const IOPRIO_WHO_PROCESS: nix::libc::c_long = 1;
        const IOPRIO_CLASS_BE: nix::libc::c_long = 2;
        nix::libc::syscall(
            nix::libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            tid as nix::libc::c_long,
            (IOPRIO_CLASS_BE << 13) | 7,
        );
    }
}
