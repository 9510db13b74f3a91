//! The mail sink's thread: takes alerts from the outbox when the digest
//! policy says so, sends them as one mail, removes them only once the
//! server accepted, and backs off on failure. It never blocks detection.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::digest::DigestPolicy;
use super::email::{compose, Mailer};
use super::outbox::Outbox;
use crate::util::time::now_ns;

/// One mailer sends at a time, even across a config reload.
static SENDING: Mutex<()> = Mutex::new(());

const FIRST_BACKOFF: Duration = Duration::from_secs(5);
/// Alerts in one mail at most (a CMS update of thousands of files is one
/// mail; beyond this, the next mail follows at once).
const PER_MAIL: usize = 10_000;
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// The running mail sink; dropping it stops the thread (what is queued
/// stays in the outbox).
pub struct MailerHandle {
    wake: SyncSender<()>,
    stop: Arc<AtomicBool>,
}

impl MailerHandle {
    /// Something was queued: look at the outbox now.
    pub fn wake(&self) {
        let _ = self.wake.try_send(());
    }
}

impl Drop for MailerHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.wake.try_send(());
    }
}

/// What the mailer thread needs.
pub struct MailerSetup {
    /// The configured route.
    pub mailer: Mailer,
    /// Where queued alerts wait.
    pub outbox: Outbox,
    /// When a mail is due.
    pub policy: DigestPolicy,
    /// This machine's name, for subjects.
    pub host: String,
}

/// Starts the mailer thread under `supervisor`.
pub fn spawn(setup: MailerSetup, supervisor: &crate::util::supervise::Supervisor) -> std::io::Result<MailerHandle> {
    let (wake, rx) = sync_channel(1);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    supervisor.spawn("sw-mailer", move || {
        run(setup, rx, flag);
        Ok(())
    })?;
    Ok(MailerHandle { wake, stop })
}

fn run(setup: MailerSetup, wake: Receiver<()>, stop: Arc<AtomicBool>) {
    let MailerSetup { mailer, outbox, policy, host } = setup;
    let mut sent: Vec<i64> = Vec::new();
    let mut retry_at: Option<i64> = None;
    let mut backoff = FIRST_BACKOFF;
    while !stop.load(Ordering::Acquire) {
        let now = now_ns();
        let entries = match outbox.list() {
            Ok(e) => e,
            Err(e) => {
                tracing::error!("mail outbox: {e}");
                Vec::new()
            }
        };
        let queue: Vec<_> = entries.iter().map(|e| (e.queued_ns, e.severity)).collect();
        let wait = match policy.due(&queue, &sent, retry_at, now) {
            None => Duration::from_secs(60),
            Some(at) if at > now => Duration::from_nanos((at - now) as u64).min(Duration::from_secs(60)),
            Some(_) => {
                let guard = SENDING.lock().unwrap_or_else(|p| p.into_inner());
                // Another mailer may have sent them meanwhile.
                // At most PER_MAIL alerts a mail (memory and message size stay
                // bounded); the rest follow in the next round, due at once.
                let mut entries = outbox.list().unwrap_or_default();
                let mut taken = 0;
                entries.retain(|e| {
                    let keep = taken < PER_MAIL;
                    taken += e.count;
                    keep
                });
                let mut records = Vec::new();
                for e in &entries {
                    records.extend(outbox.load(e));
                    // Only the first sections of a mail show diffs: drop the
                    // others' as we go, so memory stays small for a mass change.
                    if records.len() > 2 * super::email::FULL_SECTIONS {
                        super::email::order(&mut records);
                        for r in records.iter_mut().skip(super::email::FULL_SECTIONS) {
                            r.diff = None;
                        }
                    }
                }
                if entries.is_empty() {
                    continue;
                }
                crate::util::fault::point("mailer", b"");
                let (subject, body) = compose(&host, &records, outbox.overflow());
                match mailer.send(&subject, body) {
                    Ok(answer) => {
                        tracing::info!(alerts = records.len(), "mail sent: {answer}");
                        if let Err(e) = outbox.remove(&entries) {
                            tracing::error!("mail outbox: {e}");
                        }
                        outbox.clear_overflow();
                        sent.push(now_ns());
                        sent.retain(|&t| t > now_ns() - 3_600_000_000_000);
                        retry_at = None;
                        backoff = FIRST_BACKOFF;
                    }
                    Err(e @ super::email::EmailError::Rejected { .. }) => {
                        tracing::error!(
                            "{e}; {} alerts set aside in outbox/rejected (they are in the alert log)",
                            records.len()
                        );
                        if let Err(err) = outbox.reject(&entries) {
                            tracing::error!("mail outbox: {err}");
                        }
                    }
                    Err(e) => {
                        tracing::warn!("{e}; {} alerts stay queued, retry in {} s", records.len(), backoff.as_secs());
                        retry_at = Some(now_ns() + backoff.as_nanos() as i64);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
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
