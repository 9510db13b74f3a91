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

/// Starts named threads and reports their end on one channel.
#[derive(Clone)]
pub struct Supervisor {
    exits: Sender<Exit>,
}

/// The receiving end: what the owner of the supervised threads watches.
pub struct Exits {
    rx: Receiver<Exit>,
}

impl Supervisor {
    /// A supervisor and the receiver of its threads' exits.
    pub fn new() -> (Supervisor, Exits) {
        let (exits, rx) = channel();
        (Supervisor { exits }, Exits { rx })
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
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
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
}
