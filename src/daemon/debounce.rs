//! Coalescing of events: events on one path within a quiet period give one
//! check of that path, after the writer is done. A path whose writer closed
//! it (`IN_CLOSE_WRITE`) is done already and is checked at once, unless it
//! was checked within the last quiet period (a file rewritten in a loop
//! then waits like any other). A path that never goes quiet is still
//! checked after `max_wait`, so a file rewritten in a loop cannot postpone
//! its alert forever.
//!
//! Pure: the clock is an argument, so tests drive it.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::{DetectedBy, RelPath};

/// A path of a site.
pub type Key = (Arc<str>, RelPath);

#[derive(Debug)]
struct Pending {
    first: Instant,
    last: Instant,
    /// A writer closed it and it was not checked just before: due at once.
    closed: bool,
    /// How the change was first seen: a scan that found a file still being
    /// written hands it over here, and the alert keeps saying `scan`.
    by: DetectedBy,
}

/// Paths waiting for their quiet period to end.
#[derive(Debug)]
pub struct Debouncer {
    quiet: Duration,
    max_wait: Duration,
    pending: HashMap<Key, Pending>,
    /// When paths were last taken, for the quiet period after a check
    /// (forgotten once it is over).
    taken: HashMap<Key, Instant>,
    /// Candidate deadlines; stale ones are skipped when popped.
    heap: BinaryHeap<Reverse<(Instant, Key)>>,
}

impl Debouncer {
    /// A debouncer waiting `quiet` after the last event, and at most `max_wait` (at least `quiet`) after the first.
    pub fn new(quiet: Duration, max_wait: Duration) -> Debouncer {
        Debouncer {
            quiet,
            max_wait: max_wait.max(quiet),
            pending: HashMap::new(),
            taken: HashMap::new(),
            heap: BinaryHeap::new(),
        }
    }

    fn deadline(&self, p: &Pending) -> Instant {
        if p.closed {
            return p.last;
        }
        (p.last + self.quiet).min(p.first + self.max_wait)
    }

    /// An event on `key` at `now`.
    ///
    /// `guarded`: a path a quarantine rule covers. Its every close is
    /// checked at once, rewrite loop or not: an attacker's `.htaccess` is
    /// undone at the speed it is written, not once per quiet period.
    pub fn push(&mut self, key: Key, now: Instant, by: DetectedBy, closed: bool, guarded: bool) {
        let hot = !guarded && self.taken.get(&key).is_some_and(|&t| now < t + self.quiet);
        let closed = closed && !hot;
        let p = match self.pending.entry(key.clone()) {
            Entry::Occupied(e) => {
                let p = e.into_mut();
                p.last = now;
                p.closed = closed;
                if by == DetectedBy::Scan {
                    p.by = by;
                }
                p
            }
            Entry::Vacant(e) => e.insert(Pending { first: now, last: now, closed, by }),
        };
        let deadline = if p.closed { p.last } else { (p.last + self.quiet).min(p.first + self.max_wait) };
        self.heap.push(Reverse((deadline, key)));
    }

    /// When the next path becomes due.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, key))) = self.heap.peek() {
            match self.pending.get(key) {
                Some(p) if self.deadline(p) == *at => return Some(*at),
                // Superseded by a later event, or already taken.
                _ => {
                    self.heap.pop();
                }
            }
        }
        None
    }

    /// Removes and returns the paths due at `now` whose site `ready` accepts;
    /// the others wait (their check is postponed by one quiet period).
    pub fn take_due(&mut self, now: Instant, ready: impl Fn(&str) -> bool) -> Vec<(Key, DetectedBy)> {
        let mut due = Vec::new();
        let mut held = Vec::new();
        while let Some(at) = self.next_deadline() {
            if at > now {
                break;
            }
            let Some(Reverse((_, key))) = self.heap.pop() else {
                break;
            };
            if ready(&key.0) {
                if let Some(p) = self.pending.remove(&key) {
                    self.taken.insert(key.clone(), now);
                    due.push((key, p.by));
                }
            } else {
                held.push(key);
            }
        }
        for key in held {
            if let Some(p) = self.pending.get_mut(&key) {
                p.first = now;
                p.last = now;
                p.closed = false;
            }
            self.heap.push(Reverse((now + self.quiet, key)));
        }
        let quiet = self.quiet;
        self.taken.retain(|_, t| now < *t + quiet);
        due
    }

    /// Everything pending, at once (shutdown).
    pub fn drain(&mut self) -> Vec<(Key, DetectedBy)> {
        self.heap.clear();
        self.taken.clear();
        self.pending.drain().map(|(k, p)| (k, p.by)).collect()
    }

    /// Number of paths pending.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// No path is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: &str) -> Key {
        (Arc::from("s"), p.as_bytes().to_vec())
    }

    const Q: Duration = Duration::from_millis(200);
    const R: DetectedBy = DetectedBy::Realtime;

    #[test]
    fn a_chunked_write_gives_one_check_after_the_quiet_period() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(Q, Duration::from_secs(2));
        for i in 0..3 {
            d.push(key("a.php"), t0 + Duration::from_millis(50 * i), R, false, false);
        }
        assert_eq!(d.next_deadline(), Some(t0 + Duration::from_millis(300)));
        assert!(d.take_due(t0 + Duration::from_millis(299), |_| true).is_empty());
        assert_eq!(d.take_due(t0 + Duration::from_millis(300), |_| true), vec![(key("a.php"), R)]);
        assert!(d.is_empty());
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn a_path_that_never_goes_quiet_is_checked_at_max_wait() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(Q, Duration::from_secs(1));
        let mut now = t0;
        let mut taken = Vec::new();
        while now < t0 + Duration::from_millis(1500) {
            d.push(key("loop.php"), now, R, false, false);
            taken.extend(d.take_due(now, |_| true));
            now += Duration::from_millis(100);
        }
        assert_eq!(taken.len(), 1, "checked once within the first second");
    }

    #[test]
    fn paths_of_sites_not_ready_wait_and_scan_findings_keep_their_origin() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(Q, Duration::from_secs(2));
        d.push(key("x"), t0, R, false, false);
        d.push(key("x"), t0, DetectedBy::Scan, false, false);
        assert!(d.take_due(t0 + Q, |_| false).is_empty());
        assert_eq!(d.len(), 1);
        assert_eq!(d.take_due(t0 + Q * 2, |_| true), vec![(key("x"), DetectedBy::Scan)]);
    }

    #[test]
    fn a_closed_file_is_due_at_once_but_not_when_it_keeps_being_rewritten() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(Q, Duration::from_secs(2));
        // Created, written, closed: checked now, not after the quiet period.
        d.push(key("x.php"), t0, R, false, false);
        d.push(key("x.php"), t0 + Duration::from_millis(1), R, true, false);
        assert_eq!(d.take_due(t0 + Duration::from_millis(1), |_| true), vec![(key("x.php"), R)]);
        // Rewritten and closed again at once: a loop waits its quiet period.
        let t1 = t0 + Duration::from_millis(5);
        d.push(key("x.php"), t1, R, true, false);
        assert!(d.take_due(t1, |_| true).is_empty());
        assert_eq!(d.take_due(t1 + Q, |_| true), vec![(key("x.php"), R)]);
        // Quiet for a while, then closed again: at once again.
        let t2 = t1 + Q * 3;
        d.push(key("x.php"), t2, R, true, false);
        assert_eq!(d.take_due(t2, |_| true), vec![(key("x.php"), R)]);
        // A write after a close cancels the fast path (the writer is back).
        let t3 = t2 + Q * 3;
        d.push(key("y.php"), t3, R, true, false);
        d.push(key("y.php"), t3, R, false, false);
        assert!(d.take_due(t3, |_| true).is_empty());
        // A quarantined path is checked at every close, loop or not.
        let t4 = t3 + Q * 3;
        d.take_due(t4, |_| true);
        d.push(key(".htaccess"), t4, R, true, true);
        assert_eq!(d.take_due(t4, |_| true), vec![(key(".htaccess"), R)]);
        d.push(key(".htaccess"), t4 + Duration::from_millis(2), R, true, true);
        assert_eq!(d.take_due(t4 + Duration::from_millis(2), |_| true), vec![(key(".htaccess"), R)]);
    }

    #[test]
    fn distinct_paths_are_independent() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(Q, Duration::from_secs(2));
        d.push(key("a"), t0, R, false, false);
        d.push(key("b"), t0 + Duration::from_millis(100), R, false, false);
        assert_eq!(d.take_due(t0 + Q, |_| true), vec![(key("a"), R)]);
        assert_eq!(d.take_due(t0 + Duration::from_millis(300), |_| true), vec![(key("b"), R)]);
    }
}
