//! The daemon (`sitewarden run`, and `sitewarden watch` in the foreground):
//! realtime watching, coalescing, scheduled scans, signals and readiness.
//!
//! One async loop (tokio, current thread) owns the event intake, the
//! coalescing window, the timers and the signals; detection runs on two
//! worker threads it owns: one for realtime paths, one for scans (at low CPU
//! and I/O priority). Shutdown stops intake, hands the pending paths to the
//! realtime worker, and waits for both workers under a deadline.

pub mod debounce;
pub mod engine;
pub mod maintenance;
pub mod status;
pub mod systemd;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::alert::Sinks;
use crate::baseline::{Store, StoreError};
use crate::config::{Config, ConfigError};
use crate::model::{DetectedBy, RelPath};
use crate::watch::WatchEvent;
use debounce::Debouncer;
use engine::{Runtime, Started, WorkError};

/// Events waiting between the kernel and the loop; past this the watcher
/// raises the site's rescan flag instead of blocking.
const EVENT_QUEUE: usize = 65_536;
/// A path that never goes quiet is still checked after this long.
const MAX_COALESCE: Duration = Duration::from_secs(2);
/// Time allowed for the workers to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// The daemon cannot run (the caller exits 2).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Log(#[from] crate::alert::log::LogError),
    #[error("{0}")]
    Email(String),
    #[error("another sitewarden daemon is running on {0}")]
    Locked(PathBuf),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

/// Builds the sinks of a configuration generation.
pub type SinkFactory = Box<dyn Fn(&Config) -> Result<Sinks, DaemonError>>;

/// What the daemon runs with.
pub struct Setup {
    pub cfg: Config,
    /// Where SIGHUP reloads the config from (`None`: reload is off).
    pub config_path: Option<PathBuf>,
    pub sinks: SinkFactory,
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(setup: Setup) -> Result<(), DaemonError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| DaemonError::Io { what: "cannot start the async runtime".into(), source })?;
    let result = runtime.block_on(serve(setup));
    // A worker still busy past the grace period must not hold the exit:
    // what it had not judged is caught by the catch-up scan at next start.
    runtime.shutdown_background();
    result
}

/// Work for the worker threads.
enum Job {
    Start { rt: Arc<Runtime>, site: usize },
    Scan { rt: Arc<Runtime>, site: usize, rehash: bool },
    Paths { rt: Arc<Runtime>, site: usize, rels: Vec<RelPath>, by: DetectedBy },
}

/// What the workers tell the loop.
enum Report {
    Started { generation: u64, site: usize, result: Result<Started, String> },
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

async fn serve(setup: Setup) -> Result<(), DaemonError> {
    let notifier = systemd::Notifier::from_env();
    let state_dir = setup.cfg.state_dir.clone();
    drop(Store::open(&state_dir)?);
    let _lock = lock(&state_dir)?;
    let host = crate::cmd::hostname();

    let (ev_tx, mut ev_rx) = mpsc::channel::<WatchEvent>(EVENT_QUEUE);
    let (rep_tx, mut rep_rx) = mpsc::channel::<Report>(1024);
    let (paths_tx, paths_rx) = mpsc::channel::<Job>(4096);
    let (scans_tx, scans_rx) = mpsc::channel::<Job>(4096);
    let realtime_worker = spawn_worker("sw-realtime", paths_rx, rep_tx.clone(), false)?;
    let scan_worker = spawn_worker("sw-scan", scans_rx, rep_tx, true)?;

    let decide = Arc::new(Mutex::new(()));
    let sinks = Arc::new((setup.sinks)(&setup.cfg)?);
    let quiet = setup.cfg.scan.quiet_period;
    let mut current = Arc::new(Runtime::new(1, setup.cfg, host.clone(), sinks, Arc::clone(&decide), ev_tx.clone()));
    let mut previous: Option<Arc<Runtime>> = None;
    let mut sched = vec![SiteSched::default(); current.sites.len()];
    for site in 0..current.sites.len() {
        let _ = scans_tx.send(Job::Start { rt: Arc::clone(&current), site }).await;
    }
    let started_at = crate::util::time::rfc3339_ms(crate::util::time::now_ns());
    let mut announced = false;
    let mut debouncer = Debouncer::new(quiet, MAX_COALESCE);

    let mut term = signal(SignalKind::terminate()).map_err(io("cannot handle SIGTERM"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(io("cannot handle SIGINT"))?;
    let mut hup = signal(SignalKind::hangup()).map_err(io("cannot handle SIGHUP"))?;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let watchdog = notifier.watchdog_interval();
    let mut watchdog_tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    let mut status_due = true;
    let mut last_status = Instant::now();
    let mut batch = Vec::with_capacity(1024);

    loop {
        let deadline = debouncer.next_deadline().map(Instant::from_std);
        tokio::select! {
            n = ev_rx.recv_many(&mut batch, 1024) => {
                if n == 0 {
                    break;
                }
                let now = std::time::Instant::now();
                for ev in batch.drain(..) {
                    match ev {
                        WatchEvent::Path { site, rel, by } => debouncer.push((site, rel), now, by),
                        WatchEvent::Rescan { site, reason } => {
                            if let Some(i) = current.site_index(&site) {
                                tracing::warn!(site = %site, "{reason}: rescanning the site");
                                request_scan(&current, &mut sched[i], i, false, &scans_tx);
                            }
                        }
                    }
                }
            }
            _ = sleep_until(deadline) => {
                let now = std::time::Instant::now();
                let due = debouncer.take_due(now, |name| {
                    current.site_index(name).is_none_or(|i| sched[i].ready)
                });
                dispatch(&current, due, &paths_tx).await;
            }
            Some(report) = rep_rx.recv() => {
                match report {
                    Report::Started { generation, site, result } if generation == current.generation => {
                        match result {
                            Ok(s) => tracing::info!(
                                site = %current.cfg.sites[site].name,
                                watches = s.watches,
                                degraded = s.degraded,
                                baseline_built = s.built_baseline,
                                alerts = s.alerts,
                                "site watched"
                            ),
                            Err(e) => {
                                tracing::error!(site = %current.cfg.sites[site].name, "start failed: {e}; the site is checked by scans");
                                current.sites[site].degraded.store(true, Ordering::Release);
                                current.sites[site].lost.store(true, Ordering::Release);
                            }
                        }
                        let now = Instant::now();
                        let s = &mut sched[site];
                        s.ready = true;
                        s.next_scan = Some(now + scan_interval(&current, site));
                        s.next_rehash = current.cfg.scan.rehash_interval.map(|d| now + d);
                        status_due = true;
                        if sched.iter().all(|s| s.ready) {
                            if let Some(old) = previous.take() {
                                old.stop_watching();
                                tracing::info!("configuration reloaded");
                            }
                            if !announced {
                                announced = true;
                                // `status` must say ready as soon as the line below is out.
                                write_status(&current, &sched, &started_at);
                                let watches: usize = (0..current.sites.len()).map(|i| current.watch_count(i)).sum();
                                eprintln!(
                                    "sitewarden: ready ({} sites, {watches} directories watched)",
                                    current.sites.len()
                                );
                                notifier.notify(&format!("READY=1\nSTATUS=watching {} sites, {watches} directories", current.sites.len()));
                            }
                        }
                    }
                    Report::Scanned { generation, site } if generation == current.generation => {
                        let s = &mut sched[site];
                        s.scan_running = false;
                        if std::mem::take(&mut s.scan_again) {
                            request_scan(&current, s, site, false, &scans_tx);
                        }
                        status_due = true;
                    }
                    _ => {}
                }
            }
            _ = tick.tick() => {
                let now = Instant::now();
                for (i, s) in sched.iter_mut().enumerate() {
                    if !s.ready {
                        continue;
                    }
                    if current.sites[i].lost.swap(false, Ordering::AcqRel) {
                        tracing::warn!(site = %current.cfg.sites[i].name, "events were dropped: rescanning the site");
                        request_scan(&current, s, i, false, &scans_tx);
                    }
                    // Turned degraded (watch limit) since it was scheduled:
                    // the fallback interval applies from now on.
                    let interval = scan_interval(&current, i);
                    if s.next_scan.is_some_and(|t| t > now + interval) {
                        s.next_scan = Some(now + interval);
                    }
                    // A maintenance window that held back alerts is over:
                    // whatever it did not accept is reported now.
                    if current.sites[i].suppressed.load(Ordering::Acquire)
                        && !maintenance::active(&current.cfg.state_dir, &current.cfg.sites[i].name)
                    {
                        current.sites[i].suppressed.store(false, Ordering::Release);
                        request_scan(&current, s, i, false, &scans_tx);
                    }
                    let rehash = s.next_rehash.is_some_and(|t| t <= now);
                    if rehash || s.next_scan.is_some_and(|t| t <= now) {
                        s.next_scan = Some(now + scan_interval(&current, i));
                        if rehash {
                            s.next_rehash = current.cfg.scan.rehash_interval.map(|d| now + d);
                        }
                        request_scan(&current, s, i, rehash, &scans_tx);
                    }
                }
                if status_due || last_status.elapsed() > Duration::from_secs(10) {
                    write_status(&current, &sched, &started_at);
                    status_due = false;
                    last_status = Instant::now();
                }
            }
            _ = watchdog_tick.tick(), if watchdog.is_some() => notifier.notify("WATCHDOG=1"),
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                let Some(path) = setup.config_path.as_deref() else {
                    tracing::info!("SIGHUP ignored: no config file to reload");
                    continue;
                };
                match reload(path, &current, &setup.sinks) {
                    Err(e) => tracing::error!("config reload refused, the running config is kept: {e}"),
                    Ok((cfg, sinks)) => {
                        let next = Arc::new(Runtime::new(current.generation + 1, cfg, host.clone(), Arc::new(sinks), Arc::clone(&decide), ev_tx.clone()));
                        if let Some(older) = previous.replace(std::mem::replace(&mut current, next)) {
                            older.stop_watching();
                        }
                        sched = vec![SiteSched::default(); current.sites.len()];
                        for site in 0..current.sites.len() {
                            let _ = scans_tx.send(Job::Start { rt: Arc::clone(&current), site }).await;
                        }
                        tracing::info!("reloading {}", path.display());
                    }
                }
            }
        }
    }

    // Shutdown: sources first, then the pending work, then the sinks.
    notifier.notify("STOPPING=1");
    current.cancel.store(true, Ordering::Relaxed);
    if let Some(old) = previous.take() {
        old.cancel.store(true, Ordering::Relaxed);
        old.stop_watching();
    }
    current.stop_watching();
    while let Ok(ev) = ev_rx.try_recv() {
        if let WatchEvent::Path { site, rel, by } = ev {
            debouncer.push((site, rel), std::time::Instant::now(), by);
        }
    }
    let pending: Vec<_> = debouncer
        .drain()
        .into_iter()
        .filter(|((name, _), _)| current.site_index(name).is_some_and(|i| sched[i].ready))
        .collect();
    dispatch(&current, pending, &paths_tx).await;
    drop(paths_tx);
    drop(scans_tx);
    drop(current);
    let joined = tokio::time::timeout(
        SHUTDOWN_GRACE,
        tokio::task::spawn_blocking(move || {
            let _ = realtime_worker.join();
            let _ = scan_worker.join();
        }),
    )
    .await;
    if joined.is_err() {
        tracing::warn!("workers still busy after {} s; exiting anyway", SHUTDOWN_GRACE.as_secs());
    }
    status::remove(&state_dir);
    Ok(())
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Scan interval of a site: the configured one, or the fallback while the
/// site has no complete realtime coverage.
fn scan_interval(rt: &Runtime, site: usize) -> Duration {
    if rt.sites[site].degraded.load(Ordering::Acquire) {
        rt.cfg.scan.fallback_interval
    } else {
        rt.cfg.scan.interval
    }
}

fn request_scan(rt: &Arc<Runtime>, s: &mut SiteSched, site: usize, rehash: bool, scans: &mpsc::Sender<Job>) {
    if !s.ready {
        // Still starting: remembered, and scanned once the site is ready.
        rt.sites[site].lost.store(true, Ordering::Release);
        return;
    }
    if s.scan_running {
        s.scan_again = true;
        return;
    }
    if scans.try_send(Job::Scan { rt: Arc::clone(rt), site, rehash }).is_ok() {
        s.scan_running = true;
    } else {
        s.scan_again = true;
    }
}

/// Hands due paths to the realtime worker, one job per site.
async fn dispatch(rt: &Arc<Runtime>, due: Vec<(debounce::Key, DetectedBy)>, paths: &mpsc::Sender<Job>) {
    let mut groups: HashMap<(usize, DetectedBy), Vec<RelPath>> = HashMap::new();
    for ((name, rel), by) in due {
        if let Some(i) = rt.site_index(&name) {
            groups.entry((i, by)).or_default().push(rel);
        }
    }
    for ((site, by), rels) in groups {
        let _ = paths.send(Job::Paths { rt: Arc::clone(rt), site, rels, by }).await;
    }
}

fn reload(path: &Path, current: &Runtime, sinks: &SinkFactory) -> Result<(Config, Sinks), DaemonError> {
    let cfg = Config::load(path)?;
    if cfg.state_dir != current.cfg.state_dir {
        return Err(DaemonError::Config(ConfigError::Other(format!(
            "state_dir changed from {} to {}: that needs a restart",
            current.cfg.state_dir.display(),
            cfg.state_dir.display()
        ))));
    }
    let sinks = sinks(&cfg)?;
    Ok((cfg, sinks))
}

fn write_status(rt: &Runtime, sched: &[SiteSched], started: &str) {
    let sites = rt
        .cfg
        .sites
        .iter()
        .enumerate()
        .map(|(i, s)| status::SiteState {
            name: s.name.to_string(),
            watches: rt.watch_count(i),
            degraded: rt.sites[i].degraded.load(Ordering::Acquire),
            ready: sched[i].ready,
        })
        .collect();
    let st = status::DaemonStatus {
        pid: std::process::id(),
        ready: sched.iter().all(|s| s.ready),
        started: started.to_string(),
        sites,
    };
    if let Err(e) = status::write(&rt.cfg.state_dir, &st) {
        tracing::warn!("cannot write the status file: {e}");
    }
}

fn spawn_worker(
    name: &str,
    jobs: mpsc::Receiver<Job>,
    reports: mpsc::Sender<Report>,
    low_priority: bool,
) -> Result<std::thread::JoinHandle<()>, DaemonError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || worker(jobs, reports, low_priority))
        .map_err(io("cannot start a worker thread"))
}

fn worker(mut jobs: mpsc::Receiver<Job>, reports: mpsc::Sender<Report>, low_priority: bool) {
    if low_priority {
        lower_priority();
    }
    let mut store: Option<(PathBuf, Store)> = None;
    while let Some(job) = jobs.blocking_recv() {
        let rt = match &job {
            Job::Start { rt, .. } | Job::Scan { rt, .. } | Job::Paths { rt, .. } => Arc::clone(rt),
        };
        if store.as_ref().is_none_or(|(dir, _)| *dir != rt.cfg.state_dir) {
            match Store::open(&rt.cfg.state_dir) {
                Ok(s) => store = Some((rt.cfg.state_dir.clone(), s)),
                Err(e) => {
                    tracing::error!("{e}");
                    if let Job::Start { site, .. } = job {
                        let _ = reports.blocking_send(Report::Started {
                            generation: rt.generation,
                            site,
                            result: Err(e.to_string()),
                        });
                    }
                    continue;
                }
            }
        }
        let Some((_, st)) = store.as_mut() else {
            continue;
        };
        match job {
            Job::Start { site, .. } => {
                let result = rt.start_site(site, st).map_err(|e| e.to_string());
                let _ = reports.blocking_send(Report::Started { generation: rt.generation, site, result });
            }
            Job::Scan { site, rehash, .. } => {
                if let Err(e) = rt.scan_site(site, st, rehash) {
                    log_work_error(&rt, site, &e);
                }
                let _ = reports.blocking_send(Report::Scanned { generation: rt.generation, site });
            }
            Job::Paths { site, rels, by, .. } => {
                if let Err(e) = rt.reconcile(site, st, rels, by) {
                    log_work_error(&rt, site, &e);
                    // The paths are not judged: a scan judges them instead.
                    rt.sites[site].lost.store(true, Ordering::Release);
                }
            }
        }
    }
}

fn log_work_error(rt: &Runtime, site: usize, e: &WorkError) {
    tracing::error!(site = %rt.cfg.sites[site].name, "{e}");
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
