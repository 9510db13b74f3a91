//! Detection: compare what a scan observes with the accepted baseline and
//! name each change. Shared by `check`, `accept` and the daemon's scans, so
//! a change is judged the same way however it was seen.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use std::os::unix::ffi::OsStrExt;

use crate::baseline::{Store, StoreError};
use crate::config::Site;
use crate::model::{Change, DetectedBy, FileState, RelPath};
use crate::policy::Policy;
use crate::scan::{self, Found, ItemError, ScanError, ScanSpec, ScanStats};

/// The outcome of comparing one site with its baseline.
#[derive(Debug, Default)]
pub struct Comparison {
    /// Changes, sorted by path.
    pub changes: Vec<Change>,
    /// Every path observed, with its state (for `accept`).
    pub observed: Option<Vec<(RelPath, FileState)>>,
    /// Paths or directories whose state could not be read.
    pub problems: Vec<(RelPath, ItemError)>,
    /// Figures of the scan.
    pub stats: ScanStats,
}

/// What to compare and how.
pub struct CompareSpec<'a> {
    /// The site name, as changes carry it.
    pub site: &'a Arc<str>,
    /// The directory walked: the site's canonical root.
    pub root: &'a std::path::Path,
    /// Decides what is watched.
    pub policy: &'a Policy,
    /// The accepted states, also the stat cache.
    pub baseline: &'a HashMap<RelPath, FileState>,
    /// Hash every file, ignoring the stat cache.
    pub rehash: bool,
    /// What the changes found say they were found by.
    pub detected_by: DetectedBy,
    /// Keep every observed state (for accepting them).
    pub keep_observed: bool,
    /// Only paths below this directory (empty: all).
    pub start: &'a [u8],
    /// Set to stop early (shutdown).
    pub cancel: Option<&'a std::sync::atomic::AtomicBool>,
    /// Keep the content of text files hashed now (not for `check`).
    pub content: Option<&'a crate::content::ContentStore>,
    /// Read budget in bytes per second (scheduled scans).
    pub throttle: Option<u64>,
}

impl<'a> CompareSpec<'a> {
    /// A whole-site comparison as `check` does it: by scan, with the stat
    /// cache, reading nothing it does not have to and keeping nothing.
    pub fn new(site: &'a Site, baseline: &'a HashMap<RelPath, FileState>) -> CompareSpec<'a> {
        CompareSpec {
            site: &site.name,
            root: &site.real_root,
            policy: &site.policy,
            baseline,
            rehash: false,
            detected_by: DetectedBy::Scan,
            keep_observed: false,
            start: b"",
            cancel: None,
            content: None,
            throttle: None,
        }
    }
}

pub use crate::model::is_under;

/// Scans a site (or a subtree) and compares it with its baseline.
pub fn compare(spec: &CompareSpec<'_>) -> Result<Comparison, ScanError> {
    let mut out = Comparison { observed: spec.keep_observed.then(Vec::new), ..Comparison::default() };
    let mut seen: HashSet<&[u8]> = HashSet::with_capacity(spec.baseline.len());
    let mut unreadable: Vec<RelPath> = Vec::new();
    let scan_spec = ScanSpec {
        root: spec.root,
        policy: spec.policy,
        cache: Some(spec.baseline),
        rehash: spec.rehash,
        threads: 0,
        start: spec.start,
        cancel: spec.cancel,
        content: spec.content,
        throttle: spec.throttle,
    };
    out.stats = scan::scan(&scan_spec, |found| match found {
        Found::Entry(rel, state) => {
            let before = match spec.baseline.get_key_value(&rel) {
                Some((key, before)) => {
                    seen.insert(key.as_slice());
                    Some(before)
                }
                None => None,
            };
            if let Some(kind) = FileState::compare(before, Some(&state)) {
                out.changes.push(Change {
                    site: Arc::clone(spec.site),
                    rel: rel.clone(),
                    kind,
                    before: before.cloned(),
                    after: Some(state.clone()),
                    detected_by: spec.detected_by,
                    transient: None,
                    hot: false,
                    actor: None,
                    signatures: Vec::new(),
                    unscanned: None,
                });
            }
            if let Some(obs) = out.observed.as_mut() {
                obs.push((rel, state));
            }
        }
        Found::Problem(rel, err) => {
            if let Some((key, _)) = spec.baseline.get_key_value(&rel) {
                seen.insert(key.as_slice());
            }
            out.problems.push((rel, err));
        }
        Found::Unreadable(rel, err) => {
            unreadable.push(rel.clone());
            out.problems.push((rel, err));
        }
    })?;
    for (rel, before) in spec.baseline {
        if seen.contains(rel.as_slice())
            || !is_under(rel, spec.start)
            || unreadable.iter().any(|d| is_under(rel, d))
            || !spec.policy.watched(rel, before.kind)
        {
            continue;
        }
        out.changes.push(Change::new(
            Arc::clone(spec.site),
            rel.clone(),
            crate::model::EventKind::Deleted,
            Some(before.clone()),
            None,
            spec.detected_by,
        ));
    }
    out.changes.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

/// Rebuilding a baseline failed.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// The site root could not be scanned.
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// The baseline store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The cancel flag was set before the scan ended; nothing was written.
    #[error("interrupted")]
    Cancelled,
}

/// A whole site as observed: every entry, the walk's figures, and the paths
/// that could not be read.
pub type Observation = (Vec<(RelPath, FileState)>, ScanStats, Vec<(RelPath, ItemError)>);

/// Every watched path of `site` with its state, hashed (a file whose stat
/// matches `cache` takes its hash from there), plus the paths that could
/// not be read. Cancelled: an error, as half a walk is not a baseline.
pub fn observe_all(
    site: &Site,
    cache: Option<&HashMap<RelPath, FileState>>,
    cancel: Option<&std::sync::atomic::AtomicBool>,
    content: Option<&crate::content::ContentStore>,
) -> Result<Observation, RebuildError> {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    let spec = ScanSpec {
        root: &site.real_root,
        policy: &site.policy,
        cache,
        rehash: cache.is_none(),
        threads: 0,
        start: b"",
        cancel,
        content,
        throttle: None,
    };
    let stats = scan::scan(&spec, |found| match found {
        Found::Entry(rel, state) => entries.push((rel, state)),
        Found::Problem(rel, e) | Found::Unreadable(rel, e) => problems.push((rel, e)),
    })?;
    if cancel.is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed)) {
        return Err(RebuildError::Cancelled);
    }
    Ok((entries, stats, problems))
}

/// Hashes every watched file of `site` and makes that its baseline, in one
/// transaction: a crash or a cancel leaves the old baseline untouched.
/// Paths that could not be read are returned (and left out).
pub fn rebuild(
    store: &mut Store,
    site: &Site,
    cancel: Option<&std::sync::atomic::AtomicBool>,
    content: Option<&crate::content::ContentStore>,
) -> Result<(ScanStats, Vec<(RelPath, ItemError)>), RebuildError> {
    let started = crate::util::time::now_ns();
    let (entries, stats, problems) = observe_all(site, None, cancel, content)?;
    store.write_baseline(&site.name, site.root.as_os_str().as_bytes(), &entries, started)?;
    Ok((stats, problems))
}
