//! Delivery threads, one per route (a mail route, a webhook, a syslog
//! collector): each takes the alerts of its outbox when its policy says so,
//! hands them to its route, removes them only once the route confirmed,
//! sets aside what the route refused for good, and backs off on failure.
//! None of them ever blocks detection.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use super::digest::DigestPolicy;
use super::outbox::Outbox;
use super::AlertRecord;
use crate::util::time::now_ns;

const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// Why a delivery did not happen.
#[derive(Debug)]
pub enum Failure {
    /// For now (the receiver is down, slow or busy): the alerts stay
    /// queued and are tried again after the backoff, or after `after` when
    /// the receiver said when.
    Retry {
        /// What went wrong.
        message: String,
        /// The receiver's own `Retry-After`.
        after: Option<Duration>,
    },
    /// For good (the receiver refused this content): the alerts are set
    /// aside in the outbox's `rejected/` folder (they are in the alert log).
    Refused(String),
    /// The receiver takes no payload this large: the next tries send half
    /// as many alerts; a single batch too large is refused.
    TooLarge(String),
}

/// Where a courier delivers.
pub trait Route: Send + 'static {
    /// Names the route in log lines (`mail to localhost:25`).
    fn describe(&self) -> String;
    /// Names its courier thread (`sw-mailer`, `sw-webhook`, `sw-syslog`).
    fn thread(&self) -> &'static str;
    /// Alerts handed over in one delivery at most; the rest follow at once.
    fn batch(&self) -> usize;
    /// Delivers `records` (most important first when they were thinned);
    /// `overflow` alerts did not fit the outbox and are only in the log.
    /// Returns the receiver's answer.
    fn send(&mut self, host: &str, records: &[AlertRecord], overflow: u64) -> Result<String, Failure>;
}

/// The running courier; dropping it stops the thread (what is queued stays
/// in the outbox).
pub struct CourierHandle {
    wake: SyncSender<()>,
    stop: Arc<AtomicBool>,
}

impl CourierHandle {
    /// Something was queued: look at the outbox now.
    pub fn wake(&self) {
        let _ = self.wake.try_send(());
    }
}

impl Drop for CourierHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.wake.try_send(());
    }
}

/// What a courier needs.
pub struct Setup {
    /// Where it delivers.
    pub route: Box<dyn Route>,
    /// Where its alerts wait.
    pub outbox: Outbox,
    /// When a delivery is due.
    pub policy: DigestPolicy,
    /// This machine's name.
    pub host: String,
}

/// Starts a courier thread under `supervisor`.
pub fn spawn(setup: Setup, supervisor: &crate::util::supervise::Supervisor) -> std::io::Result<CourierHandle> {
    let (wake, rx) = sync_channel(1);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let pulse = supervisor.pulse(setup.route.thread());
    supervisor.spawn(setup.route.thread(), move || {
        run(setup, rx, flag, &pulse);
        Ok(())
    })?;
    Ok(CourierHandle { wake, stop })
}

/// Loads up to `limit` queued alerts: the entries taken and their records.
/// Only the first sections of a delivery carry diffs (as a mail shows
/// them): the others' are dropped as they load, so memory stays small for
/// a mass change.
fn take(outbox: &Outbox, limit: usize) -> (Vec<super::outbox::Entry>, Vec<AlertRecord>) {
    let mut entries = outbox.list().unwrap_or_default();
    let mut taken = 0;
    entries.retain(|e| {
        let keep = taken < limit;
        taken += e.count;
        keep
    });
    let mut records = Vec::new();
    for e in &entries {
        records.extend(outbox.load(e));
        if records.len() > 2 * super::email::FULL_SECTIONS {
            thin(&mut records);
        }
    }
    thin(&mut records);
    (entries, records)
}

fn thin(records: &mut [AlertRecord]) {
    super::email::order(records);
    for r in records.iter_mut().skip(super::email::FULL_SECTIONS) {
        r.diff = None;
    }
}

/// Sets the next try after the backoff (or the receiver's own delay),
/// doubles the backoff, and returns the pause.
fn pause(retry_at: &mut Option<i64>, backoff: &mut Duration, after: Option<Duration>) -> Duration {
    let p = after.map(|a| a.clamp(FIRST_BACKOFF, MAX_BACKOFF)).unwrap_or(*backoff);
    *retry_at = Some(now_ns() + p.as_nanos() as i64);
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
    p
}

/// How long one delivery may take before the watchdog calls the courier
/// hung: every route's own deadline (a webhook's 20 s, a collector's 60 s
/// plus its bytes, SMTP's timeouts) is well inside it.
const SEND_LIMIT: Duration = Duration::from_secs(300);
/// How soon a courier looks again when another one holds its outbox.
const CLAIM_RETRY: Duration = Duration::from_secs(1);

fn run(setup: Setup, wake: Receiver<()>, stop: Arc<AtomicBool>, pulse: &crate::util::supervise::Pulse) {
    let Setup { mut route, outbox, policy, host } = setup;
    let what = route.describe();
    let mut sent: Vec<i64> = Vec::new();
    let mut retry_at: Option<i64> = None;
    let mut backoff = FIRST_BACKOFF;
    let mut limit = route.batch();
    while !stop.load(Ordering::Acquire) {
        let now = now_ns();
        let entries = match outbox.list() {
            Ok(e) => e,
            Err(e) => {
                tracing::error!("{what}: outbox: {e}");
                Vec::new()
            }
        };
        let queue: Vec<_> = entries.iter().map(|e| (e.queued_ns, e.severity)).collect();
        let wait = match policy.due(&queue, &sent, retry_at, now) {
            None => Duration::from_secs(60),
            Some(at) if at > now => Duration::from_nanos((at - now) as u64).min(Duration::from_secs(60)),
            Some(_) => {
                // One courier delivers from an outbox at a time, even across
                // a reload (the old and the new courier of a route share its
                // folder): the other one looks again in a moment.
                let guard = match outbox.claim() {
                    Ok(Some(g)) => g,
                    Ok(None) => {
                        let _ = wake.recv_timeout(CLAIM_RETRY);
                        continue;
                    }
                    Err(e) => {
                        tracing::error!("{what}: outbox: {e}");
                        pause(&mut retry_at, &mut backoff, None);
                        continue;
                    }
                };
                // Another courier of this outbox may have delivered meanwhile.
                let (entries, records) = take(&outbox, limit);
                if entries.is_empty() {
                    continue;
                }
                pulse.busy(crate::util::fault::limit(SEND_LIMIT));
                crate::util::fault::point("mailer", what.as_bytes());
                let overflow = outbox.overflow();
                let outcome = route.send(&host, &records, overflow);
                pulse.idle();
                match outcome {
                    Ok(answer) => {
                        tracing::info!(alerts = records.len(), "{what}: delivered: {answer}");
                        retry_at = None;
                        backoff = FIRST_BACKOFF;
                        limit = route.batch();
                        if let Err(e) = outbox.remove(&entries).and_then(|()| outbox.take_overflow(overflow)) {
                            // Never a resend loop: the next try waits.
                            tracing::error!("{what}: outbox: {e}");
                            pause(&mut retry_at, &mut backoff, None);
                        }
                        sent.push(now_ns());
                        sent.retain(|&t| t > now_ns() - 3_600_000_000_000);
                    }
                    Err(Failure::TooLarge(e)) if entries.len() > 1 => {
                        limit = (records.len() / 2).max(1);
                        tracing::warn!("{what}: {e}; next try with {limit} alerts at most");
                    }
                    Err(Failure::Refused(e) | Failure::TooLarge(e)) => {
                        tracing::error!(
                            "{what}: refused: {e}; {} alerts set aside in {}/rejected (they are in the alert log)",
                            records.len(),
                            outbox.path().display()
                        );
                        if let Err(err) = outbox.reject(&entries) {
                            tracing::error!("{what}: outbox: {err}");
                            pause(&mut retry_at, &mut backoff, None);
                        }
                    }
                    Err(Failure::Retry { message, after }) => {
                        let p = pause(&mut retry_at, &mut backoff, after);
                        tracing::warn!(
                            "{what}: {message}; {} alerts stay queued, retry in {} s",
                            records.len(),
                            p.as_secs()
                        );
                    }
                }
                drop(guard);
                continue;
            }
        };
        match wake.recv_timeout(wait) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
}
