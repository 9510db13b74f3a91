//! The daemon's own writes into sites (the quarantine putting a file back
//! or removing one): registered just before they happen, so that the
//! fanotify source, which sees the writer's pid, drops their events. Only
//! events of our own pid on a registered path (or on a restore's temporary
//! name) are dropped: anything else this process writes (tests drive the
//! daemon in-process) is reported as usual.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A registration is good for this long: the events of a write arrive
/// within microseconds.
const VALID: Duration = Duration::from_secs(2);
/// At most this many paths are remembered (a rewrite loop registers one
/// path again and again).
const MAX: usize = 1024;

/// The temporary names of restores start with this.
pub const TEMP_PREFIX: &str = ".sitewarden-restore-";

/// The daemon's own writes: one value, made by the daemon and handed to
/// the quarantine (which registers), the fanotify source (which drops
/// their events) and the judge (which knows a file it put back).
#[derive(Default)]
pub struct OwnWrites {
    /// Absolute paths about to be written, and when.
    writing: Mutex<Vec<(Vec<u8>, Instant)>>,
    /// Files the daemon put in place (a restore's new inode), by absolute
    /// path: the last 256 of each. Finding one of them "changed and put
    /// back" is the daemon's own doing, not a transient.
    placed: Mutex<Placed>,
}

/// Absolute path → the (device, inode) of the last files put there.
type Placed = HashMap<Vec<u8>, Vec<(u64, u64)>>;

impl OwnWrites {
    /// The daemon is about to write the absolute path `abs`.
    pub fn writing(&self, abs: &[u8]) {
        let now = Instant::now();
        let mut own = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        own.retain(|(p, at)| now < *at + VALID && p != abs);
        if own.len() >= MAX {
            own.remove(0);
        }
        own.push((abs.to_vec(), now));
    }

    /// Did the daemon register `abs` as its own write moments ago?
    pub fn is_ours(&self, abs: &[u8], name: &[u8]) -> bool {
        if name.starts_with(TEMP_PREFIX.as_bytes()) {
            return true;
        }
        let now = Instant::now();
        self.writing.lock().unwrap_or_else(|p| p.into_inner()).iter().any(|(p, at)| p == abs && now < *at + VALID)
    }

    /// The daemon put the file (device, inode) `id` at `abs`.
    pub fn placed(&self, abs: &[u8], id: (u64, u64)) {
        let mut map = self.placed.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX && !map.contains_key(abs) {
            map.clear();
        }
        let recent = map.entry(abs.to_vec()).or_default();
        // A rewrite loop is restored hundreds of times a second; a worker's
        // look may be judged many restores later.
        if recent.len() >= 256 {
            recent.remove(0);
        }
        recent.push(id);
    }

    /// Did the daemon put the file `id` at `abs`?
    pub fn was_placed(&self, abs: &[u8], id: (u64, u64)) -> bool {
        self.placed.lock().unwrap_or_else(|p| p.into_inner()).get(abs).is_some_and(|r| r.contains(&id))
    }
}
