//! Coalescing of events: events on one path within a quiet period give one
//! check of that path, after the writer is done. A path whose writer closed
//! it (`IN_CLOSE_WRITE`) is done already and is checked at once, unless it
//! was checked within the last quiet period (a file rewritten in a loop
//! then waits like any other). A path that never goes quiet is still
//! checked after `max_wait`, so a file rewritten in a loop cannot postpone
//! its alert forever.
//!
//! Each path also keeps what was seen of it ([`Seen`]): when its events
//! began and ended, whether it was written and how often closed, and
//! whether it was taken while still changing. That is how a change that was
//! over before it was judged (a shell deleted, a file put back) is still
//! reported as what it was.
//!
//! Pure: the clock is an argument, so tests drive it.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::{DetectedBy, RelPath};
use crate::watch::Op;

/// A path of a site.
pub type Key = (Arc<str>, RelPath);

/// What the events of one path said, from the first to the check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The first event.
    pub first: Instant,
    /// The last event.
    pub last: Instant,
    /// It was created, written or closed after writing.
    pub wrote: bool,
    /// Closes after writing.
    pub closes: u32,
    /// The last event removed it (deleted, moved away).
    pub gone: bool,
    /// Creations (created or moved in).
    pub created: u32,
    /// Removals (deleted or moved away).
    pub removals: u32,
    /// A removal came before a creation: it was created again.
    pub recreated: bool,
    /// Taken at `max_wait` while still receiving events.
    pub hot: bool,
    /// The last writer named by an event (fanotify).
    pub actor: Option<Arc<crate::model::Actor>>,
}

impl Seen {
    /// Nothing seen: a path looked at by a poll, not named by an event.
    pub fn polled(now: Instant) -> Seen {
        Seen::new(now)
    }

    fn new(now: Instant) -> Seen {
        Seen {
            first: now,
            last: now,
            wrote: false,
            closes: 0,
            gone: false,
            created: 0,
            removals: 0,
            recreated: false,
            hot: false,
            actor: None,
        }
    }

    fn add(&mut self, now: Instant, op: Op, actor: Option<Arc<crate::model::Actor>>) {
        // The latest writer, unless all that is known of it is a pid that
        // an earlier event of the same process named better (a writer gone
        // by its close: its create was read while it lived).
        if let Some(new) = actor {
            let keep = self.actor.as_ref().is_some_and(|old| old.pid == new.pid && old.named() && !new.named());
            if !keep {
                self.actor = Some(new);
            }
        }
        self.last = now;
        self.wrote |= matches!(op, Op::Created | Op::Written | Op::Closed);
        self.closes += u32::from(op == Op::Closed);
        if op == Op::Created {
            self.recreated |= self.removals > 0;
            self.created += 1;
        }
        self.gone = op == Op::Gone;
        self.removals += u32::from(op == Op::Gone);
    }

    /// Its events are one file's life: created once (nothing removed it
    /// before), written and closed at most once, perhaps removed (the
    /// removal may be still on its way). When the file is gone and its
    /// content was read and reported in that life (by the walk of its new
    /// directory, ahead of the path's own events), they have nothing more
    /// to say than that it is gone.
    pub fn one_life(&self) -> bool {
        self.created == 1 && !self.recreated && self.closes <= 1
    }

    /// Milliseconds from the first event to the last.
    pub fn span_ms(&self) -> u64 {
        self.last.saturating_duration_since(self.first).as_millis() as u64
    }
}

#[derive(Debug)]
struct Pending {
    /// Scheduling: the first event (or when it was held back) and the last.
    since: Instant,
    last: Instant,
    /// A writer closed it and it was not checked just before: due at once.
    closed: bool,
    /// How the change was first seen: a scan that found a file still being
    /// written hands it over here, and the alert keeps saying `scan`.
    by: DetectedBy,
    seen: Seen,
}

fn due_at(p: &Pending, quiet: Duration, max_wait: Duration) -> Instant {
    if p.closed {
        return p.last;
    }
    (p.last + quiet).min(p.since + max_wait)
}

/// A path due for its check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    /// The site and path.
    pub key: Key,
    /// How it was first seen.
    pub by: DetectedBy,
    /// What its events said.
    pub seen: Seen,
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
        due_at(p, self.quiet, self.max_wait)
    }

    /// An event on `key` at `now`.
    ///
    /// `guarded`: a path a quarantine rule covers. Its every close is
    /// checked at once, rewrite loop or not: an attacker's `.htaccess` is
    /// undone at the speed it is written, not once per quiet period.
    pub fn push(
        &mut self,
        key: Key,
        now: Instant,
        by: DetectedBy,
        op: Op,
        actor: Option<Arc<crate::model::Actor>>,
        guarded: bool,
    ) {
        // Checked within the last quiet period and still receiving events:
        // still being written. The mark lasts as long as the events do, so
        // a writer that reopens the file for every append is coalesced
        // until it pauses (or max_wait), not judged at each close.
        let hot = !guarded
            && match self.taken.get_mut(&key) {
                Some(t) if now < *t + self.quiet => {
                    *t = now;
                    true
                }
                _ => false,
            };
        let closed = op == Op::Closed && !hot;
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
            Entry::Vacant(e) => e.insert(Pending { since: now, last: now, closed, by, seen: Seen::new(now) }),
        };
        p.seen.add(now, op, actor);
        let deadline = due_at(p, self.quiet, self.max_wait);
        self.heap.push(Reverse((deadline, key)));
    }

    /// New periods (a reload); paths pending keep their events.
    pub fn set_periods(&mut self, quiet: Duration, max_wait: Duration) {
        self.quiet = quiet;
        self.max_wait = max_wait.max(quiet);
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
    pub fn take_due(&mut self, now: Instant, ready: impl Fn(&str) -> bool) -> Vec<Due> {
        let mut due = Vec::new();
        let mut held = Vec::new();
        let mut held_over = Vec::new();
        while let Some(at) = self.next_deadline() {
            if at > now {
                break;
            }
            let Some(Reverse((_, key))) = self.heap.pop() else {
                break;
            };
            if ready(&key.0) {
                if let Some(mut p) = self.pending.remove(&key) {
                    self.taken.insert(key.clone(), now);
                    // Neither closed nor quiet: taken at max_wait, still changing.
                    p.seen.hot = !p.closed && now < p.last + self.quiet;
                    if p.seen.hot {
                        // Checked again once it goes quiet, events or not: the
                        // settled state must be judged too.
                        let again = Pending { since: now, last: p.last, closed: false, by: p.by, seen: Seen::new(now) };
                        held_over.push((key.clone(), again));
                    }
                    due.push(Due { key, by: p.by, seen: p.seen });
                }
            } else {
                held.push(key);
            }
        }
        for (key, p) in held_over {
            let at = due_at(&p, self.quiet, self.max_wait);
            self.pending.insert(key.clone(), p);
            self.heap.push(Reverse((at, key)));
        }
        for key in held {
            if let Some(p) = self.pending.get_mut(&key) {
                p.since = now;
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
    pub fn drain(&mut self) -> Vec<Due> {
        self.heap.clear();
        self.taken.clear();
        self.pending.drain().map(|(key, p)| Due { key, by: p.by, seen: p.seen }).collect()
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

    /// The keys and origins of what is due.
    fn due(d: &mut Debouncer, now: Instant) -> Vec<(Key, DetectedBy)> {
        d.take_due(now, |_| true).into_iter().map(|d| (d.key, d.by)).collect()
    }

    #[test]
    fn a_chunked_write_gives_one_check_after_the_quiet_period() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(Q, Duration::from_secs(2));
        for i in 0..3 {
            d.push(key("a.php"), t0 + Duration::from_millis(50 * i), R, Op::Written, None, false);
        }
        assert_eq!(d.next_deadline(), Some(t0 + Duration::from_millis(300)));
        assert!(due(&mut d, t0 + Duration::from_millis(299)).is_empty());
        assert_eq!(due(&mut d, t0 + Duration::from_millis(300)), vec![(key("a.php"), R)]);
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
            d.push(key("loop.php"), now, R, Op::Written, None, false);
            taken.extend(due(&mut d, now));
            now += Duration::from_millis(100);
        }
        assert_eq!(taken.len(), 1, "checked once within the first second");
    }

    #[test]
    fn paths_of_sites_not_ready_wait_and_scan_findings_keep_their_origin() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(Q, Duration::from_secs(2));
        d.push(key("x"), t0, R, Op::Written, None, false);
        d.push(key("x"), t0, DetectedBy::Scan, Op::Written, None, false);
        assert!(d.take_due(t0 + Q, |_| false).is_empty());
        assert_eq!(d.len(), 1);
        assert_eq!(due(&mut d, t0 + Q * 2), vec![(key("x"), DetectedBy::Scan)]);
    }

    #[test]
    fn a_closed_file_is_due_at_once_but_not_when_it_keeps_being_rewritten() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(Q, Duration::from_secs(2));
        // Created, written, closed: checked now, not after the quiet period.
        d.push(key("x.php"), t0, R, Op::Written, None, false);
        d.push(key("x.php"), t0 + Duration::from_millis(1), R, Op::Closed, None, false);
        assert_eq!(due(&mut d, t0 + Duration::from_millis(1)), vec![(key("x.php"), R)]);
        // Rewritten and closed again at once: a loop waits its quiet period.
        let t1 = t0 + Duration::from_millis(5);
        d.push(key("x.php"), t1, R, Op::Closed, None, false);
        assert!(due(&mut d, t1).is_empty());
        assert_eq!(due(&mut d, t1 + Q), vec![(key("x.php"), R)]);
        // Quiet for a while, then closed again: at once again.
        let t2 = t1 + Q * 3;
        d.push(key("x.php"), t2, R, Op::Closed, None, false);
        assert_eq!(due(&mut d, t2), vec![(key("x.php"), R)]);
        // A write after a close cancels the fast path (the writer is back).
        let t3 = t2 + Q * 3;
        d.push(key("y.php"), t3, R, Op::Closed, None, false);
        d.push(key("y.php"), t3, R, Op::Written, None, false);
        assert!(due(&mut d, t3).is_empty());
        // A quarantined path is checked at every close, loop or not.
        let t4 = t3 + Q * 3;
        due(&mut d, t4);
        d.push(key(".htaccess"), t4, R, Op::Closed, None, true);
        assert_eq!(due(&mut d, t4), vec![(key(".htaccess"), R)]);
        d.push(key(".htaccess"), t4 + Duration::from_millis(2), R, Op::Closed, None, true);
        assert_eq!(due(&mut d, t4 + Duration::from_millis(2)), vec![(key(".htaccess"), R)]);
    }

    #[test]
    fn what_was_seen_tells_transients_and_hot_paths() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(Q, Duration::from_secs(1));
        // Created, written, deleted before the check.
        d.push(key("s.php"), t0, R, Op::Created, None, false);
        d.push(key("s.php"), t0 + Duration::from_millis(1), R, Op::Written, None, false);
        d.push(key("s.php"), t0 + Duration::from_millis(37), R, Op::Gone, None, false);
        let due = d.take_due(t0 + Duration::from_millis(237), |_| true);
        let seen = due[0].seen.clone();
        assert!(seen.wrote && seen.gone && !seen.hot);
        assert_eq!(seen.span_ms(), 37);
        assert!(seen.one_life());
        // Created, deleted, created again and deleted: two lives.
        let t1 = t0 + Duration::from_millis(300);
        for (k, op) in [Op::Created, Op::Closed, Op::Gone, Op::Created, Op::Gone].into_iter().enumerate() {
            d.push(key("t.php"), t1 + Duration::from_millis(k as u64), R, op, None, false);
        }
        let due = d.take_due(t1 + Duration::from_millis(300), |_| true);
        assert!(due[0].seen.recreated && !due[0].seen.one_life());
        // Written in place and deleted: no creation in sight.
        let t2 = t1 + Duration::from_millis(600);
        for (k, op) in [Op::Written, Op::Closed, Op::Gone].into_iter().enumerate() {
            d.push(key("u.php"), t2 + Duration::from_millis(k as u64), R, op, None, false);
        }
        assert!(!d.take_due(t2 + Duration::from_millis(300), |_| true)[0].seen.one_life());
        // Written every 100 ms for 1.5 s: taken at max_wait, hot.
        let mut now = t0 + Q * 10;
        let mut hot = Vec::new();
        for _ in 0..15 {
            d.push(key("big.log.php"), now, R, Op::Written, None, false);
            hot.extend(d.take_due(now, |_| true).into_iter().map(|d| d.seen.hot));
            now += Duration::from_millis(100);
        }
        assert_eq!(hot, vec![true]);
        // Then quiet: the settled check comes by itself, and is not hot.
        let settled = d.take_due(now + Q, |_| true);
        assert_eq!(settled.len(), 1);
        assert!(!settled[0].seen.hot);
    }

    #[test]
    fn distinct_paths_are_independent() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(Q, Duration::from_secs(2));
        d.push(key("a"), t0, R, Op::Written, None, false);
        d.push(key("b"), t0 + Duration::from_millis(100), R, Op::Written, None, false);
        assert_eq!(due(&mut d, t0 + Q), vec![(key("a"), R)]);
        assert_eq!(due(&mut d, t0 + Duration::from_millis(300)), vec![(key("b"), R)]);
    }
}
