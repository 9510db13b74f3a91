//! Owned threads: every long-lived thread of the daemon (workers, judge,
//! couriers, hook runner) is started through a [`Supervisor`], which hears
//! when it ends. A thread that returns `Ok` ended in order (its owner closed
//! its channel); one that returns `Err` or panics is dead, and the daemon
//! must not run on blind: its owner turns the [`Exit`] into a fatal error so
//! that systemd restarts the service.
//!
//! The panic message is captured with `catch_unwind`, so the reason reaches
//! stderr and the journal in one line rather than as a backtrace nobody
//! reads.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

/// How a supervised thread ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// The thread's name (`sw-judge`, `sw-mailer`, ...).
    pub name: String,
    /// `None`: it ended in order; `Some(reason)`: it died.
    pub failure: Option<String>,
}

/// Starts named threads and reports their end on one channel; holds the
/// pulses of those that report them, for the watchdog.
#[derive(Clone)]
pub struct Supervisor {
    exits: Sender<Exit>,
    pulses: Pulses,
}

/// One thread's pulse: a thread that may hang (on the kernel, the network,
/// the disk) says when it starts a unit of work and how long that may take
/// at most, and when it is back to waiting. A unit past its limit is a
/// hung thread: the watchdog stops telling systemd all is well.
#[derive(Clone, Debug)]
pub struct Pulse {
    name: std::sync::Arc<str>,
    /// When the current unit of work started (ns since the epoch); 0: idle.
    since: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// How long the current unit may take, in milliseconds.
    limit_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Pulse {
    /// A unit of work starts that must end within `limit`.
    pub fn busy(&self, limit: Duration) {
        use std::sync::atomic::Ordering;
        self.limit_ms.store(limit.as_millis() as u64, Ordering::Relaxed);
        self.since.store(crate::util::time::now_ns().max(1), Ordering::Release);
    }

    /// Back to waiting for work (waiting is never a hang).
    pub fn idle(&self) {
        self.since.store(0, std::sync::atomic::Ordering::Release);
    }

    /// How long past its limit the current unit is, if it is.
    fn overdue(&self, now_ns: i64) -> Option<Duration> {
        use std::sync::atomic::Ordering;
        let since = self.since.load(Ordering::Acquire);
        let limit = Duration::from_millis(self.limit_ms.load(Ordering::Relaxed));
        let busy = Duration::from_nanos((now_ns - since).max(0) as u64);
        (since != 0 && busy > limit).then_some(busy)
    }
}

/// The pulses of every thread that reports one.
#[derive(Clone, Debug, Default)]
pub struct Pulses(std::sync::Arc<std::sync::Mutex<Vec<Pulse>>>);

impl Pulses {
    /// A new pulse for thread `name`, idle.
    pub fn register(&self, name: &str) -> Pulse {
        let pulse = Pulse { name: name.into(), since: Default::default(), limit_ms: Default::default() };
        if let Ok(mut all) = self.0.lock() {
            // A thread of an earlier generation that ended leaves its pulse
            // idle; only live ones are kept.
            all.retain(|p| std::sync::Arc::strong_count(&p.since) > 1);
            all.push(pulse.clone());
        }
        pulse
    }

    /// The first thread whose unit of work is past its limit, and for how
    /// long it has been busy.
    pub fn stalled(&self) -> Option<(String, Duration)> {
        let now = crate::util::time::now_ns();
        let all = self.0.lock().ok()?;
        all.iter().find_map(|p| p.overdue(now).map(|d| (p.name.to_string(), d)))
    }
}

/// The receiving end: what the owner of the supervised threads watches.
pub struct Exits {
    rx: Receiver<Exit>,
}

impl Supervisor {
    /// A supervisor and the receiver of its threads' exits.
    pub fn new() -> (Supervisor, Exits) {
        let (exits, rx) = channel();
        (Supervisor { exits, pulses: Pulses::default() }, Exits { rx })
    }

    /// A pulse for thread `name`, which the watchdog checks.
    pub fn pulse(&self, name: &str) -> Pulse {
        self.pulses.register(name)
    }

    /// The thread that hangs, if one does (for the watchdog).
    pub fn stalled(&self) -> Option<(String, Duration)> {
        self.pulses.stalled()
    }

    /// Runs `body` on a new thread named `name`. Its `Err` or panic is
    /// reported as a death; its `Ok` as an orderly end.
    pub fn spawn<F>(&self, name: &str, body: F) -> std::io::Result<JoinHandle<()>>
    where
        F: FnOnce() -> Result<(), String> + Send + 'static,
    {
        let exits = self.exits.clone();
        let label = name.to_string();
        std::thread::Builder::new().name(label.clone()).spawn(move || {
            let failure = match catch_unwind(AssertUnwindSafe(body)) {
                Ok(Ok(())) => None,
                Ok(Err(reason)) => Some(reason),
                Err(payload) => Some(format!("panicked: {}", panic_text(payload.as_ref()))),
            };
            // The owner may be gone already (shutdown): nothing to tell.
            let _ = exits.send(Exit { name: label, failure });
        })
    }
}

impl Exits {
    /// The next death, waiting at most `timeout`. Orderly ends are skipped.
    pub fn next_death(&self, timeout: Duration) -> Option<Exit> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(exit) if exit.failure.is_some() => return Some(exit),
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Waits until the thread `name` ended (in order or not); false when it
    /// did not within `timeout`.
    pub fn wait_named(&self, name: &str, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(exit) if exit.name == name => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    }

    /// A death already reported, without waiting.
    pub fn try_death(&self) -> Option<Exit> {
        while let Ok(exit) = self.rx.try_recv() {
            if exit.failure.is_some() {
                return Some(exit);
            }
        }
        None
    }
}

/// The text of a panic payload (`panic!` with a literal or a format).
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orderly_ends_are_not_deaths_and_panics_carry_their_message() {
        let (sup, exits) = Supervisor::new();
        sup.spawn("ok", || Ok(())).unwrap().join().unwrap();
        sup.spawn("err", || Err("disk gone".into())).unwrap().join().unwrap();
        let e = exits.next_death(Duration::from_secs(5)).unwrap();
        assert_eq!(e, Exit { name: "err".into(), failure: Some("disk gone".into()) });
        sup.spawn("boom", || panic!("index {} out of range", 3)).unwrap().join().unwrap();
        let e = exits.next_death(Duration::from_secs(5)).unwrap();
        assert_eq!(e.name, "boom");
        assert_eq!(e.failure.as_deref(), Some("panicked: index 3 out of range"));
        assert!(exits.try_death().is_none());
    }

    #[test]
    fn a_unit_of_work_past_its_limit_is_a_stall_and_waiting_is_not() {
        let (sup, _exits) = Supervisor::new();
        let p = sup.pulse("sw-test");
        assert!(sup.stalled().is_none(), "idle from the start");
        p.busy(Duration::from_millis(20));
        assert!(sup.stalled().is_none(), "within its limit");
        std::thread::sleep(Duration::from_millis(40));
        let (name, busy) = sup.stalled().expect("past its limit");
        assert_eq!(name, "sw-test");
        assert!(busy >= Duration::from_millis(40));
        p.idle();
        assert!(sup.stalled().is_none(), "waiting again");
        drop(p);
        let _other = sup.pulse("sw-other");
        assert!(sup.stalled().is_none());
    }
}
