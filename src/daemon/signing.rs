//! The signature lane: where the realtime path's costly signature scans
//! run, so that no alert waits behind another file's scan. The realtime
//! worker signs what is cheap (see [`crate::signatures::Signer::sign_quick`]) and
//! hands the rest here, read and hashed; this thread signs it with the full
//! timeout and hands it to the judge.
//!
//! The realtime worker's quick scans are paced: at most [`QUICK_BURST`] at
//! once and [`QUICK_SHARE`] of the time over a flood, except for a change
//! critical by its place alone (PHP in uploads), which is always scanned at
//! once when small.
//!
//! Two orders hold. A path's changes reach the judge in the order they were
//! seen: while a change of a path is in the lane, the worker sends the
//! later ones of that path here too. And a change critical by its place is
//! scanned before the others waiting (a batch in progress stops for it).

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::debounce::Seen;
use super::generation::Generation;
use super::judge::{JudgeHandle, Observed};
use crate::model::{Change, RelPath, Severity};
use crate::util::supervise::{Pulse, Supervisor};

/// Changes waiting in the channel; past this the realtime worker waits.
const CHANNEL: usize = 4096;
/// Changes the lane takes out of the channel to choose from.
const CHOOSE_FROM: usize = 4096;
/// How long the scans of one change may take before the watchdog calls the
/// lane hung (four rule sets and the payloads a file decodes, each under
/// the scan timeout).
const LIMIT: Duration = Duration::from_secs(300);
/// Changes of one site signed in a row with one scanner, at most.
const BATCH: usize = 64;
/// Time the realtime worker may spend on quick scans at once.
const QUICK_BURST: Duration = Duration::from_millis(100);
/// Share of the time the realtime worker spends on quick scans over a
/// flood of new content (the rest goes to the lane).
const QUICK_SHARE: f64 = 0.2;

/// One change waiting for its signature scan.
struct Waiting {
    generation: Arc<Generation>,
    site: usize,
    change: Change,
    /// Critical by its place alone: scanned first.
    urgent: bool,
}

/// The paths with a change in the lane, by (site, path): how many.
type InLane = Arc<Mutex<HashMap<(Arc<str>, RelPath), usize>>>;

/// The realtime worker's end of the lane.
pub struct SignLane {
    tx: mpsc::Sender<Waiting>,
    in_lane: InLane,
    /// The quick scans' allowance: when it was last counted, and what was
    /// left then, in seconds (below zero after an overrun).
    allowance: Cell<(Instant, f64)>,
}

impl SignLane {
    /// Starts the lane's thread (`sw-sign`), which hands what it signed to
    /// `judge`. It ends once this end is dropped and its queue is done.
    pub fn spawn(
        supervisor: &Supervisor,
        judge: JudgeHandle,
    ) -> std::io::Result<(SignLane, std::thread::JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let in_lane = InLane::default();
        let lane = Lane { rx, in_lane: Arc::clone(&in_lane), judge, queue: VecDeque::new() };
        let pulse = (supervisor.pulse("sw-sign"), crate::util::fault::limit(LIMIT));
        let handle = supervisor.spawn("sw-sign", move || lane.serve(pulse))?;
        let allowance = Cell::new((Instant::now(), QUICK_BURST.as_secs_f64()));
        Ok((SignLane { tx, in_lane, allowance }, handle))
    }

    /// Signs what is cheap in `o` at once; returns the rest, taken out of
    /// `o`, to hand to [`SignLane::defer`] once `o` is with the judge.
    pub fn sign_quick(&self, generation: &Generation, o: &mut Observed) -> Vec<Change> {
        let (at, left) = self.allowance.get();
        let now = Instant::now();
        let left = (left + now.duration_since(at).as_secs_f64() * QUICK_SHARE).min(QUICK_BURST.as_secs_f64());
        let budget = Duration::from_secs_f64(left.max(0.0));
        let in_lane = self.in_lane.lock().unwrap_or_else(|e| e.into_inner());
        let (slow, spent) = if in_lane.is_empty() {
            drop(in_lane);
            generation.sign_quick(o, |_| false, budget)
        } else {
            let name = &generation.cfg.sites[o.site].name;
            generation.sign_quick(o, |c| in_lane.contains_key(&(Arc::clone(name), c.rel.clone())), budget)
        };
        self.allowance.set((now, left - spent.as_secs_f64()));
        slow
    }

    /// Hands `changes` of site `site` to the lane (waits while it is full:
    /// nothing seen is dropped). Ends with an error when the lane is gone.
    pub fn defer(&self, generation: &Arc<Generation>, site: usize, changes: Vec<Change>) -> Result<(), String> {
        let s = &generation.cfg.sites[site];
        for change in changes {
            let urgent = s.policy.verdict(&change).severity >= Severity::Critical;
            *self
                .in_lane
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry((Arc::clone(&s.name), change.rel.clone()))
                .or_default() += 1;
            let w = Waiting { generation: Arc::clone(generation), site, change, urgent };
            self.tx.blocking_send(w).map_err(|_| "the signature lane is gone".to_string())?;
        }
        Ok(())
    }
}

/// The lane's thread.
struct Lane {
    rx: mpsc::Receiver<Waiting>,
    in_lane: InLane,
    judge: JudgeHandle,
    /// Taken out of the channel, in the order seen.
    queue: VecDeque<Waiting>,
}

impl Lane {
    fn serve(mut self, (pulse, limit): (Pulse, Duration)) -> Result<(), String> {
        loop {
            if self.queue.is_empty() {
                match self.rx.blocking_recv() {
                    Some(w) => self.queue.push_back(w),
                    None => return Ok(()),
                }
            }
            self.take_in();
            let Some(first) = self.queue.remove(next(&self.queue)) else { continue };
            // The changes of the same site that follow it, in order, one
            // per path (as the judge takes them: a second change of a path
            // is judged after the first).
            let mut batch = vec![first];
            while batch.len() < BATCH
                && !batch[0].urgent
                && self.queue.front().is_some_and(|w| {
                    w.site == batch[0].site
                        && Arc::ptr_eq(&w.generation, &batch[0].generation)
                        && !batch.iter().any(|b| b.change.rel == w.change.rel)
                })
            {
                batch.extend(self.queue.pop_front());
            }
            pulse.busy(limit);
            let result = self.sign(batch, || pulse.busy(limit));
            pulse.idle();
            result?;
        }
    }

    /// Takes what waits in the channel into the queue (up to
    /// [`CHOOSE_FROM`]); true when an urgent change came.
    fn take_in(&mut self) -> bool {
        let mut urgent = false;
        while self.queue.len() < CHOOSE_FROM {
            match self.rx.try_recv() {
                Ok(w) => {
                    urgent |= w.urgent;
                    self.queue.push_back(w);
                }
                Err(_) => break,
            }
        }
        urgent
    }

    /// Signs a batch of changes of one site and hands them to the judge; an
    /// urgent change that comes meanwhile stops the batch (the rest goes
    /// back to the front of the queue). A batch of a retired generation
    /// goes back to the loop, which routes its paths to the generation in
    /// force (as the realtime worker does). `next_change` is called before
    /// each change after the first (the watchdog's pulse: its limit is a
    /// change's).
    fn sign(&mut self, batch: Vec<Waiting>, next_change: impl Fn()) -> Result<(), String> {
        let (generation, site) = (Arc::clone(&batch[0].generation), batch[0].site);
        let (urgent, mut changes): (Vec<bool>, Vec<Change>) = batch.into_iter().map(|w| (w.urgent, w.change)).unzip();
        let done = match generation.retired() {
            true => changes.len(),
            false => generation.sign_while(site, &mut changes, || {
                next_change();
                !self.take_in()
            }),
        };
        let rest = changes.split_off(done);
        for (change, urgent) in rest.into_iter().zip(urgent[done..].iter().copied()).rev() {
            self.queue.push_front(Waiting { generation: Arc::clone(&generation), site, change, urgent });
        }
        let name = Arc::clone(&generation.cfg.sites[site].name);
        let keys: Vec<RelPath> = changes.iter().map(|c| c.rel.clone()).collect();
        let result = if generation.retired() {
            let now = Instant::now();
            let by = changes.first().map_or(crate::model::DetectedBy::Realtime, |c| c.detected_by);
            let rels = changes.into_iter().map(|c| (c.rel, Seen { actor: c.actor, ..Seen::polled(now) })).collect();
            generation.hand_back(site, rels, by);
            Ok(())
        } else {
            let o = Observed { generation, site, changes, reverted: Vec::new(), scan_started: None, done: None };
            self.judge.realtime(o).map_err(|e| e.to_string())
        };
        let mut in_lane = self.in_lane.lock().unwrap_or_else(|e| e.into_inner());
        for rel in keys {
            let key = (Arc::clone(&name), rel);
            if let Some(n) = in_lane.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    in_lane.remove(&key);
                }
            }
        }
        result
    }
}

/// The change to scan next: the first urgent one whose path has no earlier
/// change waiting, else the first.
fn next(queue: &VecDeque<Waiting>) -> usize {
    if !queue.iter().any(|w| w.urgent) {
        return 0;
    }
    let mut earlier: std::collections::HashSet<(&str, &[u8])> = std::collections::HashSet::new();
    for (i, w) in queue.iter().enumerate() {
        let key = (&*w.generation.cfg.sites[w.site].name, w.change.rel.as_slice());
        if w.urgent && !earlier.contains(&key) {
            return i;
        }
        earlier.insert(key);
    }
    0
}
