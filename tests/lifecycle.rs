//! The daemon driven in-process through its entry point
//! (`daemon::run_with(setup, control)`): start, reload and shutdown as
//! messages, readiness and reloads as phases. Real inotify, real files; the
//! alert log is read as it grows.
//!
//! Also the two promises of the judge's queue order: a scan that emits ten
//! thousand changes does not hold realtime alerts back, and a reload during
//! a long scan is in force at once.

mod common;

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::Fixture;
use sitewarden::alert::Sinks;
use sitewarden::config::Config;
use sitewarden::daemon::{self, Control, DaemonError, Phase, Setup};
use tokio::sync::mpsc;

/// A daemon running on a thread of the test.
struct InProcess {
    control: mpsc::Sender<Control>,
    phases: Receiver<Phase>,
    thread: Option<JoinHandle<Result<(), DaemonError>>>,
}

impl InProcess {
    fn start(config: &Path) -> InProcess {
        let cfg = Config::load(config).unwrap();
        let (control, rx) = mpsc::channel(4);
        let (ptx, phases) = std::sync::mpsc::channel();
        let setup = Setup {
            cfg,
            config_path: Some(config.to_path_buf()),
            sinks: Box::new(|cfg, sup| Ok(Sinks::build(cfg, sup)?)),
            phases: Some(ptx),
        };
        let thread = std::thread::spawn(move || daemon::run_with(setup, rx));
        let d = InProcess { control, phases, thread: Some(thread) };
        assert_eq!(d.next_phase(Duration::from_secs(60)), Phase::Ready);
        d
    }

    fn next_phase(&self, limit: Duration) -> Phase {
        self.phases.recv_timeout(limit).expect("a phase from the daemon")
    }

    fn send(&self, c: Control) {
        self.control.blocking_send(c).unwrap();
    }

    fn stop(mut self) -> Result<(), DaemonError> {
        self.send(Control::Shutdown);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = self.control.blocking_send(Control::Shutdown);
            let _ = t.join();
        }
    }
}

/// Reads an alert log as it grows, without reading it again from the top.
struct Tail {
    path: PathBuf,
    offset: u64,
    partial: String,
}

impl Tail {
    fn new(path: PathBuf) -> Tail {
        Tail { path, offset: 0, partial: String::new() }
    }

    /// The complete records appended since the last call.
    fn poll(&mut self) -> Vec<serde_json::Value> {
        let Ok(mut f) = std::fs::File::open(&self.path) else { return Vec::new() };
        f.seek(SeekFrom::Start(self.offset)).unwrap();
        let mut text = String::new();
        self.offset += f.read_to_string(&mut text).unwrap() as u64;
        self.partial.push_str(&text);
        let Some(end) = self.partial.rfind('\n') else { return Vec::new() };
        let complete: String = self.partial.drain(..=end).collect();
        complete.lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

fn path_of(r: &serde_json::Value) -> &str {
    r["path"].as_str().unwrap_or("")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[test]
fn start_alert_reload_and_shutdown_in_process() {
    let f = Fixture::new("generic-php", "");
    f.write("index.php", "<?php");
    f.run(["baseline"]).ok();
    let d = InProcess::start(&f.config());
    let mut tail = Tail::new(f.path("alerts.jsonl"));
    f.write("lib/a.php", "<?php // one");
    let mut seen = Vec::new();
    let t = Instant::now();
    while !seen.iter().any(|r| path_of(r).ends_with("/lib/a.php")) {
        assert!(t.elapsed() < Duration::from_secs(20), "no alert: {seen:?}");
        seen.extend(tail.poll());
        std::thread::sleep(Duration::from_millis(10));
    }
    // A reload that ignores lib/skip: in force once the phase says so.
    f.write_config("generic-php", "    ignore: [\"lib/skip/**\"]\n");
    d.send(Control::Reload);
    assert_eq!(d.next_phase(Duration::from_secs(20)), Phase::Reloaded(2));
    f.write("lib/skip/b.php", "<?php // ignored now");
    f.write("lib/c.php", "<?php // still watched");
    let t = Instant::now();
    while !seen.iter().any(|r| path_of(r).ends_with("/lib/c.php")) {
        assert!(t.elapsed() < Duration::from_secs(20), "no alert: {seen:?}");
        seen.extend(tail.poll());
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(500));
    seen.extend(tail.poll());
    assert!(!seen.iter().any(|r| path_of(r).contains("/lib/skip/")), "{seen:?}");
    // A bad config is refused with the reason, the running one kept.
    std::fs::write(f.config(), "sites: [ {name: x, root: /nonexistent} ]\n").unwrap();
    d.send(Control::Reload);
    match d.next_phase(Duration::from_secs(20)) {
        Phase::Refused(why) => assert!(why.contains("nonexistent"), "{why}"),
        other => panic!("{other:?}"),
    }
    d.stop().unwrap();
    assert!(!f.state().join("daemon.json").exists(), "the status file goes with the daemon");
}

/// Writes `name` and waits until its record is in the log; returns the time
/// from the write to the record, and every record seen meanwhile.
fn alert_latency(f: &Fixture, tail: &mut Tail, name: &str, seen: &mut usize) -> Duration {
    let t = Instant::now();
    f.write(name, "<?php // realtime probe");
    loop {
        let recs = tail.poll();
        let found = recs.iter().any(|r| path_of(r).ends_with(&format!("/{name}")));
        *seen += recs.iter().filter(|r| path_of(r).contains("/bulk/")).count();
        if found {
            return t.elapsed();
        }
        assert!(t.elapsed() < Duration::from_secs(20), "{name} never alerted");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_scan_of_ten_thousand_changes_does_not_hold_realtime_alerts_back() {
    // 10,000 files in bulk/, ignored at first: not in the baseline. A
    // reload stops ignoring them, and the scan it schedules reports all
    // 10,000 as added while realtime probes are written elsewhere.
    const BULK: usize = 10_000;
    let f = Fixture::new("generic-php", "    ignore: [\"bulk/**\"]\nscan:\n  quiet_period: 20ms\n");
    f.write("index.php", "<?php");
    for i in 0..BULK {
        f.write(format!("bulk/d{}/f{i}.php", i % 100), format!("<?php // {i}\n"));
    }
    f.run(["baseline"]).ok();
    let d = InProcess::start(&f.config());
    let mut tail = Tail::new(f.path("alerts.jsonl"));
    f.write_config("generic-php", "scan:\n  quiet_period: 20ms\n");
    d.send(Control::Reload);
    assert_eq!(d.next_phase(Duration::from_secs(60)), Phase::Reloaded(2));
    let mut bulk_seen = 0;
    let mut during = Vec::new();
    let mut after = Vec::new();
    for i in 0..200 {
        let busy = bulk_seen < BULK;
        let l = alert_latency(&f, &mut tail, &format!("probe/p{i}.php"), &mut bulk_seen);
        if busy {
            during.push(l);
        } else {
            after.push(l);
        }
        if during.len() >= 50 || (bulk_seen >= BULK && i >= 10) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let t = Instant::now();
    while bulk_seen < BULK {
        assert!(t.elapsed() < Duration::from_secs(120), "only {bulk_seen} of {BULK} bulk files alerted");
        bulk_seen += tail.poll().iter().filter(|r| path_of(r).contains("/bulk/")).count();
        std::thread::sleep(Duration::from_millis(20));
    }
    during.sort();
    assert!(during.len() >= 10, "the scan ended before the probes overlapped it ({} probes)", during.len());
    let (p50, p99) = (percentile(&during, 0.5), percentile(&during, 0.99));
    println!("realtime alert during a scan of {BULK} changes: {} probes (quiet period 20 ms)", during.len());
    common::figure("realtime alert during a scan of 10,000 changes, p50", p50, Duration::from_millis(100));
    common::figure("realtime alert during a scan of 10,000 changes, p99", p99, Duration::from_millis(300));
    d.stop().unwrap();
}

#[test]
fn a_reload_during_a_long_scan_is_in_force_within_a_second() {
    // 24 MB read at 1 MB/s: a rehash scan takes about 24 s.
    let f =
        Fixture::new("generic-php", "scan:\n  rehash_interval: 1s\n  throttle_mb_per_sec: 1\n  quiet_period: 20ms\n");
    for i in 0..24 {
        f.write(format!("lib/big{i}.php"), vec![b'x'; 1_000_000]);
    }
    f.run(["baseline"]).ok();
    let d = InProcess::start(&f.config());
    let mut tail = Tail::new(f.path("alerts.jsonl"));
    // The rehash is due a second after ready; let it get going.
    std::thread::sleep(Duration::from_secs(3));
    f.write_config(
        "generic-php",
        "    ignore: [\"lib/skip/**\"]\nscan:\n  rehash_interval: 1h\n  throttle_mb_per_sec: 1\n  quiet_period: 20ms\n",
    );
    let t = Instant::now();
    d.send(Control::Reload);
    assert_eq!(d.next_phase(Duration::from_secs(30)), Phase::Reloaded(2));
    let switch = t.elapsed();
    common::figure("reload during a throttled rehash scan, in force after", switch, Duration::from_secs(1));
    // Realtime keeps flowing under the new config.
    let mut latencies = Vec::new();
    let mut unused = 0;
    for i in 0..10 {
        latencies.push(alert_latency(&f, &mut tail, &format!("lib/after{i}.php"), &mut unused));
    }
    f.write("lib/skip/x.php", "<?php // ignored by the new config");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!tail.poll().iter().any(|r| path_of(r).contains("/lib/skip/")));
    latencies.sort();
    let worst = *latencies.last().unwrap();
    common::figure("realtime alert after the reload, p50", percentile(&latencies, 0.5), Duration::from_millis(100));
    common::figure("realtime alert after the reload, max of 10", worst, Duration::from_millis(300));
    let t = Instant::now();
    d.stop().unwrap();
    common::figure("in-process shutdown after the reload", t.elapsed(), Duration::from_secs(2));
}
