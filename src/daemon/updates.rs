//! Genuine updates told from attacks. WordPress updates itself from
//! WP-Cron, where no `maintenance` window wraps it: every file of a new
//! release would otherwise look like tampering of the old one.
//!
//! A change in the tree of a package whose release is known, that the
//! release does not vouch for, is held by the judge with the other changes
//! of that package until the package has been quiet for [`SETTLE`] (at
//! most [`MAX_HOLD`] after the first, so a writer who keeps a package busy
//! only delays its alerts; a file the installed release does not list, a
//! new file, at most [`BUSY_LIMIT`]). Then the version on disk is read
//! again:
//! - unchanged: the changes are tampering, judged as usual (`critical`);
//! - changed, and the new release's checksums are at hand: the files that
//!   match it are one summary record — an update (`info`, accepted), a
//!   downgrade (`high`, never accepted: the way back to a vulnerable
//!   release), a package that was not there (`medium`, accepted: a genuine
//!   file manager is a classic foothold) — and every file that does not
//!   match is judged as usual against the new release;
//! - the new release cannot be had: judged as usual (`unknown`). When the
//!   publisher could not be reached, the package waits for it ([`Awaiting`],
//!   up to [`AWAIT_MAX`]): once the release is at hand, the files alerted
//!   meanwhile that still match it are one summary record and accepted
//!   (an update made while offline), and the rest stays drift.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::generation::{Fetch, Generation};
use crate::alert::record::UpdateRecord;
use crate::alert::AlertRecord;
use crate::model::{Change, DetectedBy, EventKind, RelPath, Severity};
use crate::releases::wordpress::{self, Package};
use crate::releases::{Manifest, Origin};

/// A package's changes are judged once it has been quiet this long.
pub const SETTLE: Duration = Duration::from_secs(2);
/// ... and at the latest this long after its first held change.
pub const MAX_HOLD: Duration = Duration::from_secs(60);
/// A file the installed release does not list (a new file) held with a
/// package that is still being written is judged on its own this long
/// after it came: a writer who keeps a package busy never holds back a new
/// file's alert longer than this (an updater writes a package in a burst).
pub const BUSY_LIMIT: Duration = Duration::from_secs(5);
/// How long a package held to [`MAX_HOLD`] waits, past it, for the
/// checksums of its new version once they are asked for.
pub const ANSWER_WAIT: Duration = Duration::from_secs(30);
/// Packages held at once; past this a change is judged at once.
pub const MAX_PACKAGES: usize = 256;
/// Changes held per package; past this they are judged at once.
pub const MAX_CHANGES: usize = 50_000;
/// A package alerted while its publisher was down waits this long for it.
pub const AWAIT_MAX: Duration = Duration::from_secs(24 * 3600);
/// How often a package waiting for its publisher is looked at.
const AWAIT_LOOK: Duration = Duration::from_secs(2);
/// Packages waiting for their publisher at once (the oldest gives way).
pub const AWAIT_PACKAGES: usize = 256;
/// Paths a summary record lists.
const LISTED: usize = 1000;

/// The changes of one package, held.
pub struct Held {
    pub generation: Arc<Generation>,
    pub site: usize,
    pub package: String,
    /// Its version when the first change was held (`None`: not installed).
    pub from: Option<String>,
    pub changes: BTreeMap<RelPath, Change>,
    /// The held changes of files the installed release does not list, and
    /// when each came ([`BUSY_LIMIT`]).
    pub unlisted: BTreeMap<RelPath, Instant>,
    pub first: Instant,
    pub last: Instant,
    /// The version on disk the checksums were last asked for, and when.
    asked_for: Option<String>,
    asked_at: Instant,
    /// Not looked at again before this (waiting for checksums).
    next_look: Instant,
}

impl Held {
    pub fn new(generation: Arc<Generation>, site: usize, package: String, from: Option<String>, now: Instant) -> Held {
        Held {
            generation,
            site,
            package,
            from,
            changes: BTreeMap::new(),
            unlisted: BTreeMap::new(),
            first: now,
            last: now,
            asked_for: None,
            asked_at: now,
            next_look: now,
        }
    }

    /// When it is to be looked at again.
    pub fn due(&self) -> Instant {
        let settled = (self.last + SETTLE).min(self.first + MAX_HOLD).max(self.next_look);
        match self.unlisted.values().min() {
            Some(&came) if came + BUSY_LIMIT < self.last + SETTLE => settled.min(came + BUSY_LIMIT),
            _ => settled,
        }
    }

    /// The changes of files the installed release does not list, held
    /// [`BUSY_LIMIT`] while the package is still being written: taken out,
    /// to be judged now. None once the package is quiet (its outcome
    /// judges them with the rest).
    ///
    /// While WordPress's updater is at work on the site (a staging folder
    /// held, a fresh `.maintenance`: `updating`), a slow copy of a release
    /// is not cut short: the clock starts again instead.
    pub fn overdue(&mut self, now: Instant, updating: bool) -> Vec<Change> {
        if now >= self.last + SETTLE {
            return Vec::new();
        }
        if updating {
            self.unlisted.values_mut().for_each(|came| *came = (*came).max(now));
            return Vec::new();
        }
        let late: Vec<RelPath> =
            self.unlisted.iter().filter(|(_, &came)| now >= came + BUSY_LIMIT).map(|(r, _)| r.clone()).collect();
        late.iter()
            .filter_map(|r| {
                self.unlisted.remove(r);
                self.changes.remove(r)
            })
            .collect()
    }
}

/// The kind of a package change whose files all match a release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Update,
    Downgrade,
    New,
}

impl Kind {
    fn severity(self) -> Severity {
        match self {
            Kind::Update => Severity::Info,
            Kind::Downgrade => Severity::High,
            Kind::New => Severity::Medium,
        }
    }

    fn rule(self) -> &'static str {
        match self {
            Kind::Update => "vendor-update",
            Kind::Downgrade => "vendor-downgrade",
            Kind::New => "vendor-new-package",
        }
    }

    /// A package going from release `from` (`None`: not installed) to
    /// release `to`.
    fn of(from: Option<&str>, to: &str) -> Kind {
        match from {
            None => Kind::New,
            Some(from) if wordpress::compare_versions(to, from).is_lt() => Kind::Downgrade,
            Some(_) => Kind::Update,
        }
    }

    /// Are its matching files accepted into the baseline?
    pub fn accepted(self) -> bool {
        self != Kind::Downgrade
    }
}

/// What to do with a held package now.
pub enum Outcome {
    /// Not settled yet, or the new release's checksums are on their way.
    Wait,
    /// Judge every change as usual.
    Release,
    /// Judge every change as usual, and wait for the publisher of release
    /// `now`, which could not be reached.
    Unreachable { now: Package },
    /// The package is at release `now`, whose manifest is `manifest`.
    Moved { kind: Kind, now: Package, manifest: Arc<Manifest> },
}

/// Looks at a held package: settled? at which version? checksums at hand?
pub fn outcome(h: &mut Held, now: Instant) -> Outcome {
    let expired = now >= h.first + MAX_HOLD;
    if !expired && now < h.last + SETTLE {
        return Outcome::Wait;
    }
    let site = &h.generation.sites[h.site];
    let root = &h.generation.cfg.sites[h.site].real_root;
    let Some(disk) = wordpress::detect(root).into_iter().find(|p| p.name == h.package) else {
        return Outcome::Release;
    };
    if h.from.as_deref() == Some(disk.version.as_str()) {
        return Outcome::Release;
    }
    // Whatever comes of it, the next change of the package is measured
    // against this version (a downgrade stays a downgrade: not accepted).
    let accept_version = |kind: Option<Kind>, version: &str| {
        if kind != Some(Kind::Downgrade) {
            site.set_accepted_version(&h.package, version);
        }
    };
    match site.package(&h.package) {
        // The files are still the release the baseline holds, whatever
        // `version.php` says now: no update, each change judged as usual.
        Some((known, Fetch::Got(manifest)))
            if known == disk && h.from.as_deref() == Some(manifest.version.as_str()) =>
        {
            Outcome::Release
        }
        Some((known, Fetch::Got(manifest))) if known == disk => {
            let kind = Kind::of(h.from.as_deref(), &manifest.version);
            accept_version(Some(kind), &manifest.version);
            let now = Package { version: manifest.version.clone(), ..disk };
            Outcome::Moved { kind, now, manifest }
        }
        Some((known, Fetch::Failed)) if known == disk => {
            accept_version(None, &disk.version);
            Outcome::Release
        }
        Some((known, Fetch::Unreachable)) if known == disk => {
            accept_version(None, &disk.version);
            Outcome::Unreachable { now: disk }
        }
        // Held to the cap (a busy host whose judge lags behind the
        // update, a writer who keeps the package busy) and the checksums
        // of the version the files now say asked for but not at hand
        // [`ANSWER_WAIT`] later (a slow publisher, a slow archive): judged
        // `unknown` now, never against the release they left (every
        // updated file would read as tampered), and again once the
        // publisher answers. Never asked yet: asked first (a lying version
        // is then judged against the release the files are, at once).
        _ if expired && h.asked_for.as_deref() == Some(disk.version.as_str()) && now >= h.asked_at + ANSWER_WAIT => {
            site.set_pending(&disk);
            site.vendors_stale.store(true, Ordering::Release);
            accept_version(None, &disk.version);
            Outcome::Unreachable { now: disk }
        }
        _ => {
            // The scan worker fetches it (network time is never the judge's).
            if h.asked_for.as_deref() != Some(disk.version.as_str()) {
                h.asked_for = Some(disk.version.clone());
                h.asked_at = now;
                site.vendors_stale.store(true, Ordering::Release);
            }
            h.next_look = now + Duration::from_millis(200);
            Outcome::Wait
        }
    }
}

/// The changes of a package alerted while the publisher of its new
/// release could not be reached.
pub struct Awaiting {
    pub generation: Arc<Generation>,
    pub site: usize,
    /// The package at the release it was found at.
    pub now: Package,
    /// Its version before.
    pub from: Option<String>,
    /// By path, the latest of each.
    pub changes: BTreeMap<RelPath, Change>,
    pub until: Instant,
    next_look: Instant,
}

impl Awaiting {
    pub fn new(h: &Held, now: Package, changes: Vec<Change>, at: Instant) -> Awaiting {
        Awaiting {
            generation: Arc::clone(&h.generation),
            site: h.site,
            now,
            from: h.from.clone(),
            changes: changes.into_iter().map(|c| (c.rel.clone(), c)).collect(),
            until: at + AWAIT_MAX,
            next_look: at + AWAIT_LOOK,
        }
    }

    /// When it is to be looked at again.
    pub fn due(&self) -> Instant {
        self.next_look
    }

    /// Is `other` waiting for the same release of the same package?
    pub fn same_release(&self, other: &Awaiting) -> bool {
        self.site == other.site && self.now == other.now && Arc::ptr_eq(&self.generation, &other.generation)
    }

    /// A later change in the package's tree, alerted while it waits: it is
    /// confirmed (or judged again) with the rest when the answer comes.
    pub fn add(&mut self, c: &Change) {
        if self.changes.len() < MAX_CHANGES || self.changes.contains_key(&c.rel) {
            self.changes.insert(c.rel.clone(), c.clone());
        }
    }

    /// Takes in an earlier wait for the same release (an update whose
    /// files came in two bursts): its changes that this one has not, and
    /// the version the baseline held before both.
    pub fn absorb(&mut self, earlier: Awaiting) {
        for (rel, c) in earlier.changes {
            if self.changes.len() >= MAX_CHANGES {
                break;
            }
            self.changes.entry(rel).or_insert(c);
        }
        self.from = earlier.from;
    }
}

/// What became of a package waiting for its publisher.
pub enum Answer {
    /// Still no answer: looked at again later.
    Wait,
    /// Given up: the package moved on, the release is refused, the wait
    /// is over, the configuration was reloaded.
    Drop,
    /// The release is at hand.
    Known { kind: Kind, manifest: Arc<Manifest> },
}

/// Looks at a package waiting for its publisher.
pub fn answer(a: &mut Awaiting, now: Instant) -> Answer {
    if now >= a.until || a.generation.retired() {
        return Answer::Drop;
    }
    match a.generation.sites[a.site].package(&a.now.name) {
        Some((known, Fetch::Got(manifest))) if known == a.now => {
            let kind = Kind::of(a.from.as_deref(), &manifest.version);
            if kind.accepted() {
                a.generation.sites[a.site].set_accepted_version(&a.now.name, &manifest.version);
            }
            Answer::Known { kind, manifest }
        }
        Some((known, Fetch::Unreachable | Fetch::Pending)) if known == a.now => {
            a.next_look = now + AWAIT_LOOK;
            Answer::Wait
        }
        _ => Answer::Drop,
    }
}

/// Does the release vouch for this change: the file as released, or a
/// file the release no longer has, deleted?
pub fn vouched(manifest: &Manifest, root: &std::path::Path, c: &Change) -> bool {
    match &c.after {
        None => !manifest.lists(&c.rel),
        after => {
            let md5 = || crate::releases::live_md5(root, &c.rel, after.as_ref());
            manifest.judge(&c.rel, after.as_ref(), md5) == Some(Origin::Vendor)
        }
    }
}

/// The one record that stands for the `changes` of a package moved to
/// release `now`, all matching it.
pub fn summary(
    host: &str,
    site: &crate::config::Site,
    kind: Kind,
    from: Option<&str>,
    now: &Package,
    changes: &[&Change],
    time_ns: i64,
) -> AlertRecord {
    let by = if changes.iter().any(|c| c.detected_by == DetectedBy::Realtime) {
        DetectedBy::Realtime
    } else {
        DetectedBy::Scan
    };
    let stand_in = Change::new(
        Arc::clone(&site.name),
        now.dir.clone(),
        if kind == Kind::New { EventKind::Added } else { EventKind::Modified },
        None,
        None,
        by,
    );
    let verdict =
        crate::policy::Verdict { severity: kind.severity(), rule: kind.rule().into(), nodiff: true, quarantine: None };
    let mut r = AlertRecord::new(host, &site.root, &stand_in, &verdict, time_ns);
    let shown = now.name.replace(':', " ");
    let n = changes.len();
    let files = if n == 1 { "1 file".to_string() } else { format!("{n} files") };
    r.diff_note = Some(match (kind, from) {
        (Kind::New, _) => format!("new {shown} {}: {files}, all match the release", now.version),
        (Kind::Downgrade, Some(f)) => {
            format!("{shown} {f} → {} is a DOWNGRADE: {files}, all match the older release; not accepted", now.version)
        }
        (_, f) => format!("{shown} {} → {}: {files}, all match the release", f.unwrap_or("?"), now.version),
    });
    r.verdict = Some(crate::releases::Verdict {
        origin: Origin::Vendor,
        package: now.name.clone(),
        version: now.version.clone(),
    });
    r.update = Some(UpdateRecord {
        package: now.name.clone(),
        from: from.map(str::to_string),
        to: now.version.clone(),
        kind: match kind {
            Kind::Update => "update",
            Kind::Downgrade => "downgrade",
            Kind::New => "new",
        }
        .to_string(),
        files: n,
        accepted: kind.accepted(),
        paths: changes.iter().take(LISTED).map(|c| crate::util::bytes::lossless(&c.rel)).collect(),
    });
    r
}
