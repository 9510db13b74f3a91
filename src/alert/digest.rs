//! When to send mail: critical and high changes go out within a few
//! seconds, the rest are grouped for `digest_seconds` counted from the first
//! queued alert; at most `max_per_hour` mails, the overflow folded into the
//! next one; after a failure, not before the retry time.
//!
//! Pure: times are arguments (ns since the epoch), so tests drive the clock.

use std::time::Duration;

use crate::model::Severity;

/// Critical and high alerts wait this long for company.
pub const URGENT_DELAY: Duration = Duration::from_secs(3);

/// When the outbox is mailed: the timing settings of `alerts.email`.
#[derive(Clone, Debug)]
pub struct DigestPolicy {
    /// How long critical and high alerts wait for company.
    pub urgent_delay: Duration,
    /// How long the rest are grouped, from the first queued alert (`digest_seconds`).
    pub digest: Duration,
    /// At most this many mails in any hour (`None`: no limit; 0: no mail at all).
    pub max_per_hour: Option<u32>,
}

const HOUR_NS: i64 = 3_600_000_000_000;

fn ns(d: Duration) -> i64 {
    d.as_nanos().min(i64::MAX as u128) as i64
}

impl DigestPolicy {
    /// When the queue should be mailed (`None`: nothing to send). `queue`
    /// holds (queued at, severity), `sent` the times of recent mails.
    pub fn due(&self, queue: &[(i64, Severity)], sent: &[i64], retry_at: Option<i64>, now: i64) -> Option<i64> {
        let first = queue.iter().map(|q| q.0).min()?;
        let mut at = first.saturating_add(ns(self.digest));
        if let Some(urgent) = queue.iter().filter(|q| q.1 >= Severity::High).map(|q| q.0).min() {
            at = at.min(urgent.saturating_add(ns(self.urgent_delay)));
        }
        if let Some(max) = self.max_per_hour {
            let mut recent: Vec<i64> = sent.iter().copied().filter(|&t| t > now - HOUR_NS).collect();
            recent.sort_unstable();
            if max == 0 {
                return None;
            }
            if recent.len() >= max as usize {
                // The oldest mail of the window leaves it an hour after.
                at = at.max(recent[recent.len() - max as usize] + HOUR_NS);
            }
        }
        if let Some(r) = retry_at {
            at = at.max(r);
        }
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn policy(max: Option<u32>) -> DigestPolicy {
        DigestPolicy { urgent_delay: URGENT_DELAY, digest: Duration::from_secs(60), max_per_hour: max }
    }

    #[test]
    fn urgent_goes_out_in_seconds_the_rest_in_a_digest() {
        let p = policy(None);
        assert_eq!(p.due(&[], &[], None, 0), None);
        assert_eq!(p.due(&[(10 * S, Severity::Medium)], &[], None, 10 * S), Some(70 * S));
        let q = [(10 * S, Severity::Medium), (20 * S, Severity::Critical)];
        assert_eq!(p.due(&q, &[], None, 20 * S), Some(23 * S));
    }

    #[test]
    fn the_hourly_limit_postpones_and_folds() {
        let p = policy(Some(2));
        let sent = [100 * S, 200 * S];
        let q = [(300 * S, Severity::Critical)];
        assert_eq!(p.due(&q, &sent, None, 300 * S), Some(100 * S + HOUR_NS));
        assert_eq!(p.due(&q, &sent[1..], None, 300 * S), Some(303 * S));
    }

    #[test]
    fn retries_wait_for_the_backoff() {
        let p = policy(None);
        let q = [(0, Severity::Critical)];
        assert_eq!(p.due(&q, &[], Some(30 * S), S), Some(30 * S));
    }
}
