//! `sitewarden accept [PATH...]`: take the current state into the baseline,
//! for every watched path of the selected sites or only for the named files
//! and directories. A path that cannot be read keeps its old baseline entry.
//!
//! Nothing enters the baseline unseen: a change accepted before the daemon
//! alerted it (a deploy script's `accept` half a second after a write, while
//! the daemon still held the change) is named on stderr and recorded, one
//! `accepted-without-alert` record with its diff per change, in the alert
//! log and every route's outbox.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use anyhow::Result;

use super::{locate, warn, OK};
use crate::baseline::Store;
use crate::config::{Config, Site};
use crate::content::ContentStore;
use crate::detect::{self, CompareSpec};
use crate::model::{Change, DetectedBy, FileState, RelPath};
use crate::scan::file;
use crate::util::time::now_ns;

pub fn run(cfg: &Config, only: Option<&str>, paths: &[OsString]) -> Result<i32> {
    // Bad paths are refused before anything is created.
    let mut targets: Vec<(&Site, RelPath)> = Vec::new();
    for p in paths {
        targets.push(locate(cfg, only, p)?);
    }
    let mut store = Store::open(&cfg.state_dir)?;
    let content = ContentStore::new(&cfg.state_dir);
    // What was never alerted is recorded before the baseline takes it in:
    // a failure between the two leaves an extra alert, never a change
    // accepted unseen.
    let mut recorded = 0;
    let mut record = |site: &Site, unalerted: &[Change]| -> Result<()> {
        let records = unalerted_records(site, unalerted, &content);
        crate::alert::queue(cfg, &records)?;
        recorded += records.len();
        Ok(())
    };
    if paths.is_empty() {
        for site in cfg.select(only)? {
            let accepted = accept_under(&mut store, site, b"", &content, &mut record)?;
            eprintln!("sitewarden: {}: accepted {} changes", site.name, accepted.changes.len());
        }
        crate::content::prune_unreferenced(&content, &store);
    } else {
        for (site, rel) in targets {
            let is_dir = rel.is_empty()
                || matches!(
                    file::open_parent(&site.real_root, &rel),
                    Ok(Some((dir, name))) if file::open_dir_at(std::os::fd::AsFd::as_fd(&dir), &name).is_ok()
                );
            let accepted = if is_dir {
                accept_under(&mut store, site, &rel, &content, &mut record)?
            } else {
                accept_one(&mut store, site, &rel, &mut record)?
            };
            eprintln!(
                "sitewarden: {}: accepted {} changes under {}",
                site.name,
                accepted.changes.len(),
                crate::scan::show(&crate::model::absolute(&site.root, &rel))
            );
        }
    }
    if recorded > 0 {
        eprintln!(
            "sitewarden: {recorded} of them had not been alerted: recorded as `accepted-without-alert` in the alert log and queued for every route"
        );
    }
    Ok(OK)
}

/// What an `accept` took into the baseline.
pub struct Accepted {
    /// Every change taken in.
    pub changes: Vec<Change>,
}

/// Called with the changes an accept takes in that were never alerted
/// (directories made or removed aside), before it commits them.
type Unalerted<'a> = dyn FnMut(&Site, &[Change]) -> Result<()> + 'a;

/// The changes of `changes` whose new state the store does not hold as
/// alerted drift. Read before the accept forgets that drift.
fn unalerted(store: &Store, site: &Site, changes: &[Change]) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    for c in changes.iter().filter(|c| !c.is_silent()) {
        let seen = store.alerted(&site.name, &c.rel)?;
        if seen.is_none_or(|state| FileState::compare(state.as_ref(), c.after.as_ref()).is_some()) {
            out.push(c.clone());
        }
    }
    Ok(out)
}

/// One `accepted-without-alert` record per change, each named on stderr:
/// the severity the site's rules give it, its diff, and a note saying the
/// rule that would have alerted it.
fn unalerted_records(site: &Site, changes: &[Change], content: &ContentStore) -> Vec<crate::alert::AlertRecord> {
    let host = crate::util::hostname();
    let now = now_ns();
    changes
        .iter()
        .map(|c| {
            let mut v = site.policy.verdict(c);
            let rule = std::mem::replace(&mut v.rule, ACCEPTED_RULE.into());
            v.quarantine = None;
            let mut record =
                crate::alert::diff::record_with_diff(&host, site, c, &v, content, Some(&site.real_root), now);
            let note = format!(
                "accepted by `sitewarden accept` before it was alerted (rule {rule}, {}); it is now the baseline",
                v.severity
            );
            record.diff_note = Some(match record.diff_note.take() {
                Some(n) => format!("{note}; {n}"),
                None => note,
            });
            eprintln!(
                "sitewarden: {}: accepted without an alert: {} {} ({}, rule {rule})",
                site.name,
                c.kind.as_str(),
                crate::scan::show(&crate::model::absolute(&site.root, &c.rel)),
                v.severity
            );
            record
        })
        .collect()
}

/// The rule of a record made by `accept` for a change it took in unalerted.
pub const ACCEPTED_RULE: &str = "accepted-without-alert";

/// Accepts the current state of the whole site; returns what changed.
pub fn accept_site(store: &mut Store, site: &Site, content: &ContentStore) -> Result<Vec<Change>> {
    Ok(accept_under(store, site, b"", content, &mut |_, _| Ok(()))?.changes)
}

/// Accepts the current state of everything below `dir` (all of the site
/// when empty).
fn accept_under(
    store: &mut Store,
    site: &Site,
    dir: &[u8],
    content: &ContentStore,
    record: &mut Unalerted<'_>,
) -> Result<Accepted> {
    let baseline = store.load(&site.name)?;
    let cmp = detect::compare(&CompareSpec {
        keep_observed: dir.is_empty(),
        start: dir,
        content: Some(content),
        ..CompareSpec::new(site, &baseline)
    })?;
    for (rel, e) in &cmp.problems {
        warn(&site.name, rel, e);
    }
    let unalerted = unalerted(store, site, &cmp.changes)?;
    // Before the transaction: building records reads files, and the
    // daemon must not wait on the store meanwhile.
    record(site, &unalerted)?;
    let writer = store.write()?;
    if let Some(observed) = &cmp.observed {
        // The whole site: the baseline becomes exactly what was observed,
        // plus the old entries of paths that could not be read, and drops
        // entries the policy no longer watches.
        let unreadable: HashMap<&[u8], ()> = cmp.problems.iter().map(|(r, _)| (r.as_slice(), ())).collect();
        writer.clear_site(&site.name)?;
        for (rel, state) in observed {
            writer.put(&site.name, rel, Some(state))?;
        }
        for (rel, state) in &baseline {
            let kept =
                unreadable.contains_key(rel.as_slice()) || cmp.problems.iter().any(|(d, _)| detect::is_under(rel, d));
            if kept {
                writer.put(&site.name, rel, Some(state))?;
            }
        }
        let now = now_ns();
        writer.site_done(&site.name, site.root.as_os_str().as_bytes(), Some(now), Some(now))?;
    } else {
        for change in &cmp.changes {
            writer.accept(&site.name, &change.rel, change.after.as_ref())?;
        }
    }
    writer.commit()?;
    Ok(Accepted { changes: cmp.changes })
}

/// Accepts the current state of one path (its absence, if it is gone).
fn accept_one(store: &mut Store, site: &Site, rel: &[u8], record: &mut Unalerted<'_>) -> Result<Accepted> {
    let before = store.get(&site.name, rel)?;
    let now = file::probe(&site.real_root, rel, None)
        .map_err(|e| anyhow::anyhow!("{}: {e}", crate::scan::show(&crate::model::absolute(&site.root, rel))))?;
    if let Some(state) = &now {
        if !site.policy.watched(rel, state.kind) {
            warn(&site.name, rel, &"not watched by the site's profile; nothing to accept");
            return Ok(Accepted { changes: Vec::new() });
        }
    }
    let changes: Vec<Change> = FileState::compare(before.as_ref(), now.as_ref())
        .map(|kind| Change::new(Arc::clone(&site.name), rel.to_vec(), kind, before, now.clone(), DetectedBy::Scan))
        .into_iter()
        .collect();
    let unalerted = unalerted(store, site, &changes)?;
    record(site, &unalerted)?;
    let writer = store.write()?;
    writer.accept(&site.name, rel, now.as_ref())?;
    writer.commit()?;
    Ok(Accepted { changes })
}
