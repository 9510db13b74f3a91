//! WordPress's own staging. The updater unpacks every package into
//! `wp-content/upgrade/WORK/` (`WP_Upgrader::unpack_package`); core is then
//! copied over file by file (`update_core`, `version.php` last) and a
//! plugin or theme is either copied over after its folder was deleted
//! (before 6.3) or its folder is renamed into
//! `wp-content/upgrade-temp-backup/{plugins,themes}/SLUG` and the new one
//! moved into place (`move_dir`, 6.3 and later), the backup removed at the
//! end, or moved back when the update fails. Each file of such a folder is
//! a copy of what is, was, or is about to be installed: thousands of new
//! code files per update that are no news by themselves.
//!
//! So a change there is not alerted on its own unless it is alarming by
//! itself (a signature, a quarantine rule, content the scanner could not
//! judge): it is held with the other changes of its staging folder. Once
//! the folder has been quiet for [`QUIET`] and no update of the site is
//! under way (no package held, no fresh `.maintenance`), each held file is
//! **accounted for** when its content is, or was, installed:
//! - the file at its destination has that content now (copied or moved
//!   into place, or unchanged by the update);
//! - the destination's accepted content was that when it was staged (the
//!   backup of the installed version);
//! - the release of the package at its destination lists that content;
//! - (a file gone before it could be read) its destination changed (its
//!   ctime) since the folder's first file was written: the update moved or
//!   copied it there, and it is judged there on its own; or, when the
//!   update did install files from the folder, the release vouches for what
//!   is at its destination (a file the update left alone); or, in a backup
//!   folder, the installed file is back untouched (a rollback). A file
//!   planted in `upgrade/` and removed beside an installed file while no
//!   update installs from its folder is not accounted for.
//!
//! Accounted files are accepted silently: what runs is judged where it is
//! installed, by the update's own summary. What is not accounted for:
//! - still there: judged as any change (a folder kept busy is judged at
//!   the latest [`MAX_STAGE`] after its first change);
//! - gone without being installed (an update that failed and was rolled
//!   back, a package unpacked and thrown away, a file planted and removed):
//!   one record for the folder, `info` when every file was read (and so
//!   scanned), `medium` when some was gone before it could be read.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::generation::Generation;
use crate::alert::AlertRecord;
use crate::model::{Change, EventKind, FileState, RelPath, Severity};

/// A staging folder is judged once it has been quiet this long (and no
/// update of the site is under way) ...
pub const QUIET: Duration = Duration::from_secs(5);
/// ... and at the latest this long after its first held change.
pub const MAX_STAGE: Duration = Duration::from_secs(60);
/// Staging folders held at once; past this a change is judged at once.
pub const MAX_FOLDERS: usize = 64;
/// Changes held per folder; past this they are judged at once.
pub const MAX_CHANGES: usize = 50_000;
/// WordPress ignores a `.maintenance` older than this; so does the wait.
const MAINTENANCE_FRESH: Duration = Duration::from_secs(600);
/// How much earlier than its first held change a folder's files may have
/// been written (the change is held after the debounce and the read).
const CLOCK_SLACK_NS: i64 = 10_000_000_000;
/// Paths a record of discarded files names.
const LISTED: usize = 50;

const UPGRADE: &[u8] = b"wp-content/upgrade/";
const BACKUP: &[u8] = b"wp-content/upgrade-temp-backup/";

/// The staging folder `rel` is in: `wp-content/upgrade/WORK` or
/// `wp-content/upgrade-temp-backup/KIND/SLUG` (`None`: not staging).
pub fn folder(rel: &[u8]) -> Option<RelPath> {
    let (prefix, depth) = if rel.starts_with(UPGRADE) {
        (UPGRADE, 1)
    } else if rel.starts_with(BACKUP) {
        (BACKUP, 2)
    } else {
        return None;
    };
    let rest = &rel[prefix.len()..];
    // The first `depth` components of what follows the prefix.
    let end = rest.iter().enumerate().filter(|(_, &b)| b == b'/').map(|(i, _)| i).nth(depth - 1).unwrap_or(rest.len());
    (end > 0).then(|| rel[..prefix.len() + end].to_vec())
}

/// Where WordPress installs the staged file `rel` of staging folder
/// `folder`: the places to look, most likely first.
pub fn destinations(folder: &[u8], rel: &[u8]) -> Vec<RelPath> {
    let Some(inner) = rel.get(folder.len() + 1..).filter(|_| rel.len() > folder.len()) else {
        return Vec::new();
    };
    let join = |a: &[u8], b: &[u8]| [a, b].concat();
    if folder.starts_with(BACKUP) {
        // wp-content/upgrade-temp-backup/plugins/SLUG/X → wp-content/plugins/SLUG/X
        let kind_slug = &folder[BACKUP.len()..];
        return vec![join(b"wp-content/", &[kind_slug, b"/", inner].concat())];
    }
    // wp-content/upgrade/WORK/TOP/X: core (`wordpress/`), else a plugin or
    // a theme named TOP; a plugin of one file sits in WORK itself.
    match inner.iter().position(|&b| b == b'/') {
        Some(p) if &inner[..p] == b"wordpress" => vec![inner[p + 1..].to_vec()],
        Some(_) => vec![join(b"wp-content/plugins/", inner), join(b"wp-content/themes/", inner)],
        None => vec![join(b"wp-content/plugins/", inner)],
    }
}

/// A held change and what was known of it when it was staged.
struct Entry {
    change: Change,
    /// Its content was the accepted content of its destination then.
    was_accepted: bool,
}

/// The held changes of one staging folder.
pub struct Staged {
    pub generation: Arc<Generation>,
    pub site: usize,
    pub folder: RelPath,
    entries: BTreeMap<RelPath, Entry>,
    first: Instant,
    /// `first` on the wall clock, in ns (file ctimes are compared with it).
    first_ns: i64,
    last: Instant,
    next_look: Instant,
}

impl Staged {
    pub fn new(generation: Arc<Generation>, site: usize, folder: RelPath, now: Instant) -> Staged {
        let first_ns = crate::util::time::now_ns() - CLOCK_SLACK_NS;
        Staged { generation, site, folder, entries: BTreeMap::new(), first: now, first_ns, last: now, next_look: now }
    }

    /// When it is to be looked at again.
    pub fn due(&self) -> Instant {
        (self.last + QUIET).min(self.first + MAX_STAGE).max(self.next_look)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Holds `c`. `accepted_at`: the accepted state of a destination.
    /// A path seen again keeps the content it was read with (a file read
    /// once and then gone is not "unread").
    pub fn hold(&mut self, c: &Change, accepted_at: impl Fn(&[u8]) -> Option<FileState>, now: Instant) {
        let sha = content(c);
        let was_accepted = sha.is_some_and(|sha| {
            destinations(&self.folder, &c.rel)
                .iter()
                .any(|d| accepted_at(d).and_then(|s| s.sha256).is_some_and(|a| a == sha))
        });
        let entry = self.entries.entry(c.rel.clone());
        match entry {
            std::collections::btree_map::Entry::Occupied(mut o) => {
                let e = o.get_mut();
                let read = content(&e.change).is_some();
                e.was_accepted |= was_accepted;
                if sha.is_some() || !read {
                    e.change = c.clone();
                } else {
                    // Keep what was read; note only that it changed again.
                    e.change.transient = c.transient.or(e.change.transient);
                }
            }
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(Entry { change: c.clone(), was_accepted });
            }
        }
        if let Some(ctime) = c.after.as_ref().map(|a| a.ctime_ns) {
            self.first_ns = self.first_ns.min(ctime);
        }
        self.last = now;
    }
}

/// The content a change saw (its new content, or for a deletion the old).
fn content(c: &Change) -> Option<[u8; 32]> {
    c.after.as_ref().or(c.before.as_ref()).and_then(|s| s.sha256)
}

/// Is an update of the site under way: a fresh `.maintenance` at its root?
pub fn maintenance_mode(root: &Path) -> bool {
    std::fs::symlink_metadata(root.join(".maintenance"))
        .and_then(|m| m.modified())
        .is_ok_and(|t| SystemTime::now().duration_since(t).is_ok_and(|age| age < MAINTENANCE_FRESH))
}

/// What became of a staging folder's changes.
#[derive(Default)]
pub struct Settled {
    /// Accounted for: accepted silently, at the state now on disk.
    pub accounted: Vec<(RelPath, Option<FileState>)>,
    /// Not accounted for and still there: judged as any change.
    pub judge: Vec<Change>,
    /// Not accounted for and gone: one record for the folder.
    pub discarded: Vec<Change>,
}

/// Looks at a staging folder: `None` while it is to wait. `busy`: an
/// update of the site is under way. `probe`: the state of a path on disk
/// now, given the state it was last seen in (if any; its hash is reused
/// while the stat matches). `vouched`: the release at a destination lists
/// this content. `accepted`: the accepted state of a path.
pub fn settle(
    s: &mut Staged,
    now: Instant,
    busy: bool,
    probe: impl Fn(&[u8], Option<&FileState>) -> Option<FileState>,
    vouched: impl Fn(&[u8], &FileState) -> bool,
    accepted: impl Fn(&[u8]) -> Option<FileState>,
) -> Option<Settled> {
    let expired = now >= s.first + MAX_STAGE;
    if !expired && (now < s.last + QUIET || busy) {
        s.next_look = now + Duration::from_millis(500);
        return None;
    }
    let first_ns = s.first_ns;
    let backup = s.folder.starts_with(BACKUP);
    let written = |t: &Option<FileState>| t.as_ref().is_some_and(|t| t.ctime_ns >= first_ns);
    // Each held change, what is at its path and at its destinations now.
    let looked: Vec<_> = std::mem::take(&mut s.entries)
        .into_iter()
        .map(|(rel, e)| {
            let on_disk = probe(&rel, e.change.after.as_ref());
            let there: Vec<_> = destinations(&s.folder, &rel).into_iter().map(|d| (probe(&d, None), d)).collect();
            (rel, e, on_disk, there)
        })
        .collect();
    // The update installed something from this folder.
    let installing = looked.iter().any(|(.., there)| there.iter().any(|(t, _)| written(t)));
    let mut out = Settled::default();
    for (rel, e, on_disk, there) in looked {
        let c = &e.change;
        let seen = c.after.as_ref().or(c.before.as_ref());
        let installed = |(t, d): &(Option<FileState>, RelPath)| match seen.and_then(|st| st.sha256) {
            Some(sha) => t.as_ref().and_then(|t| t.sha256) == Some(sha) || seen.is_some_and(|st| vouched(d, st)),
            // Gone before it could be read: installed when its destination
            // was written since the folder was, or, while the update
            // installed from this folder, when the release vouches for what
            // is there (a file the update left alone). What is there is
            // judged there. A backup's file is accounted for as well when
            // the installed file is back untouched (same inode and times
            // as accepted: the backup moved back).
            None => {
                written(t)
                    || (installing && t.as_ref().is_some_and(|t| vouched(d, t)))
                    || (backup && t.as_ref().zip(accepted(d)).is_some_and(|(t, a)| a.same_stat(t)))
            }
        };
        let accounted = c.kind == EventKind::Deleted || e.was_accepted || there.iter().any(installed);
        if accounted {
            out.accounted.push((rel, on_disk));
        } else if on_disk.is_some() {
            out.judge.push(Change { after: on_disk, ..e.change });
        } else {
            out.discarded.push(e.change);
        }
    }
    Some(out)
}

/// The one record for the files of `folder` that were staged and removed
/// without being installed.
pub fn discarded_record(
    host: &str,
    (site, root): (&Arc<str>, &Path),
    folder: &[u8],
    gone: &[Change],
    time_ns: i64,
) -> AlertRecord {
    let unread = gone.iter().filter(|c| content(c).is_none()).count();
    let by = if gone.iter().any(|c| c.detected_by == crate::model::DetectedBy::Realtime) {
        crate::model::DetectedBy::Realtime
    } else {
        crate::model::DetectedBy::Scan
    };
    let stand_in = Change::new(Arc::clone(site), folder.to_vec(), EventKind::Deleted, None, None, by);
    // A file that could not be read could not be scanned either.
    let severity = if unread > 0 { Severity::Medium } else { Severity::Info };
    let verdict =
        crate::policy::Verdict { severity, rule: "wp-staging-discarded".into(), nodiff: true, quarantine: None };
    let mut r = AlertRecord::new(host, root, &stand_in, &verdict, time_ns);
    let n = gone.len();
    let mut names: Vec<String> = gone
        .iter()
        .take(LISTED)
        .map(|c| crate::util::bytes::lossless(c.rel[folder.len()..].strip_prefix(b"/").unwrap_or(&c.rel)))
        .collect();
    if n > LISTED {
        names.push(format!("and {} more", n - LISTED));
    }
    let unread_note = match unread {
        0 => "each was read and scanned".to_string(),
        u => format!("{u} gone before they could be read (not scanned)"),
    };
    r.diff_note = Some(format!(
        "{n} file{} staged by WordPress's updater and removed without being installed (a failed or rolled-back update, or a file planted and removed); {unread_note}: {}",
        if n == 1 { "" } else { "s" },
        names.join(", ")
    ));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_folders_and_where_their_files_go() {
        assert_eq!(
            folder(b"wp-content/upgrade/wordpress-6.5.5/wordpress/wp-login.php").unwrap(),
            b"wp-content/upgrade/wordpress-6.5.5"
        );
        assert_eq!(
            folder(b"wp-content/upgrade/akismet.5.3.3/akismet/akismet.php").unwrap(),
            b"wp-content/upgrade/akismet.5.3.3"
        );
        assert_eq!(folder(b"wp-content/upgrade/x.php").unwrap(), b"wp-content/upgrade/x.php");
        assert_eq!(
            folder(b"wp-content/upgrade-temp-backup/plugins/akismet/class.akismet.php").unwrap(),
            b"wp-content/upgrade-temp-backup/plugins/akismet"
        );
        assert_eq!(
            folder(b"wp-content/upgrade-temp-backup/plugins").unwrap(),
            b"wp-content/upgrade-temp-backup/plugins"
        );
        assert_eq!(folder(b"wp-content/upgrade"), None);
        assert_eq!(folder(b"wp-content/upgrades/x.php"), None);
        assert_eq!(folder(b"wp-content/plugins/upgrade/x.php"), None);

        let f = b"wp-content/upgrade/wordpress-6.5.5";
        assert_eq!(
            destinations(f, b"wp-content/upgrade/wordpress-6.5.5/wordpress/wp-includes/version.php"),
            vec![b"wp-includes/version.php".to_vec()]
        );
        let f = b"wp-content/upgrade/akismet.5.3.3";
        assert_eq!(
            destinations(f, b"wp-content/upgrade/akismet.5.3.3/akismet/akismet.php"),
            vec![b"wp-content/plugins/akismet/akismet.php".to_vec(), b"wp-content/themes/akismet/akismet.php".to_vec()]
        );
        let f = b"wp-content/upgrade/hello";
        assert_eq!(
            destinations(f, b"wp-content/upgrade/hello/hello.php"),
            vec![b"wp-content/plugins/hello.php".to_vec()]
        );
        let f = b"wp-content/upgrade-temp-backup/themes/twentyten";
        assert_eq!(
            destinations(f, b"wp-content/upgrade-temp-backup/themes/twentyten/style.css"),
            vec![b"wp-content/themes/twentyten/style.css".to_vec()]
        );
        assert!(destinations(f, f).is_empty());
    }

    #[test]
    fn a_discarded_file_that_was_never_read_is_never_called_scanned() {
        let site: Arc<str> = Arc::from("s");
        let root = Path::new("/srv/s");
        let folder = b"wp-content/upgrade/w.1";
        let change = |name: &str, after: Option<FileState>| {
            let rel = [&folder[..], b"/", name.as_bytes()].concat();
            Change::new(Arc::clone(&site), rel, EventKind::Added, None, after, crate::model::DetectedBy::Realtime)
        };
        let read = change("a/read.php", Some(FileState::file_for_test([7; 32])));
        let r = discarded_record("h", (&site, root), folder, std::slice::from_ref(&read), 1);
        assert_eq!((r.severity, r.rule.as_str()), (Severity::Info, "wp-staging-discarded"));
        assert!(r.diff_note.as_deref().unwrap().contains("each was read and scanned"), "{:?}", r.diff_note);
        let r = discarded_record("h", (&site, root), folder, &[read, change("a/gone.php", None)], 1);
        assert_eq!(r.severity, Severity::Medium);
        let note = r.diff_note.unwrap();
        assert!(note.starts_with("2 files staged") && note.contains("1 gone before they could be read"), "{note}");
        assert!(r.path.ends_with("/srv/s/wp-content/upgrade/w.1"), "{}", r.path);
    }
}
