//! `sitewarden repair [--site NAME] [--dry-run]`: a site put back to the
//! releases it runs, from the releases themselves, never from the site's
//! own PHP. Each tampered release file gets the release's own file back,
//! each foreign file in a release's folders is set aside, each missing
//! release file is written again. Every step is a quarantine item (the
//! file as it was kept as evidence, so `quarantine restore ID` undoes it),
//! the baseline takes the repaired state, and the site is verified again.

use std::io::Write;
use std::sync::Arc;

use anyhow::Result;

use super::verify::{publisher, verify_site, Finding, Verified};
use super::{DRIFT, OK, UNCHECKED};
use crate::baseline::Store;
use crate::config::{Config, Site};
use crate::content::ContentStore;
use crate::model::{Change, DetectedBy, EventKind, FileState, FileType, QuarantineAction};
use crate::quarantine::{self, QuarantineStore};
use crate::releases::Manifest;
use crate::scan::file;
use crate::watch::own::OwnWrites;

/// The quarantine rule named in the items repair makes.
const RULE: &str = "repair";

pub fn run(cfg: &Config, only: Option<&str>, dry_run: bool) -> Result<i32> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let publisher = publisher(cfg);
    let (mut left, mut unchecked) = (false, false);
    for site in cfg.select(only)? {
        let found = verify_site(cfg, &publisher, site, None, true)?;
        let steps = plan(&found);
        for u in &found.unchecked {
            writeln!(out, "unchecked {} {}  [{}]", u.what, crate::util::bytes::printable(u.name.as_bytes()), u.reason)?;
        }
        if dry_run {
            for (f, m) in &steps {
                let what = match (f.what, m.and_then(|m| m.pristine(&f.rel))) {
                    ("foreign", _) => "would set aside".to_string(),
                    (_, Some(_)) => "would restore".to_string(),
                    _ => "cannot restore (the release's own file is not at hand)".to_string(),
                };
                writeln!(out, "{what}: {}  [{}]", shown(site, &f.rel), f.what)?;
            }
            writeln!(out, "{}: {} to repair (dry run: nothing changed)", site.name, steps.len())?;
            left |= !steps.is_empty();
            unchecked |= !found.unchecked.is_empty();
            continue;
        }
        for (f, m) in &steps {
            let line = match repair_one(cfg, site, f, *m) {
                Ok(meta) => format!("{} {}: {}  [{}]", meta.id, meta.result, shown(site, &f.rel), f.what),
                Err(e) => format!("not repaired: {}: {e}", shown(site, &f.rel)),
            };
            writeln!(out, "{line}")?;
        }
        let Verified { findings, unchecked: not_checked, summary, .. } =
            verify_site(cfg, &publisher, site, None, true)?;
        for f in &findings {
            writeln!(out, "{:<9} {}  [left]", f.what, shown(site, &f.rel))?;
        }
        writeln!(out, "{}: repaired {}; now {summary}", site.name, steps.len())?;
        left |= !findings.is_empty();
        unchecked |= !not_checked.is_empty();
    }
    out.flush()?;
    Ok(if left {
        DRIFT
    } else if unchecked {
        UNCHECKED
    } else {
        OK
    })
}

/// The findings repair acts on (a release file tampered or missing, a
/// foreign file), each with the manifest it was judged against. Signature
/// findings outside a release are left to the admin.
fn plan(found: &Verified) -> Vec<(&Finding, Option<&Manifest>)> {
    found
        .findings
        .iter()
        .filter(|f| matches!(f.what, "tampered" | "foreign" | "missing"))
        .map(|f| {
            let m = f.verdict.as_ref().and_then(|v| {
                found.manifests.iter().find(|m| m.package == v.package && m.version == v.version).map(Arc::as_ref)
            });
            (f, m)
        })
        .collect()
}

fn shown(site: &Site, rel: &[u8]) -> String {
    crate::scan::show(&crate::model::absolute(&site.root, rel))
}

/// Repairs one finding through the quarantine: the file as it is kept as
/// evidence, the release's file (or nothing) put in its place, and the
/// baseline told first, so a running daemon sees its own state come back.
fn repair_one(cfg: &Config, site: &Site, f: &Finding, m: Option<&Manifest>) -> Result<quarantine::Meta> {
    let root = &site.real_root;
    let probe = || file::probe(root, &f.rel, None).map_err(|e| anyhow::anyhow!("{e}"));
    let now = probe()?;
    let content = ContentStore::new(&cfg.state_dir);
    let (kind, before, action) = match f.what {
        "foreign" => (EventKind::Added, None, QuarantineAction::Remove),
        _ => {
            let bytes = m
                .and_then(|m| m.pristine(&f.rel))
                .ok_or_else(|| anyhow::anyhow!("the release's own file is not at hand (no release archive)"))?;
            let sha = file::sha256(&bytes);
            // Kept (text only) so `quarantine show` can diff against it.
            let _ = content.put(&sha, &bytes);
            // Owner and mode of the file it replaces, else of a plain file.
            let shape = now.clone().filter(|s| s.kind == FileType::File);
            let pristine = FileState {
                kind: FileType::File,
                size: bytes.len() as u64,
                sha256: Some(sha),
                nlink: 1,
                target: None,
                ..shape.unwrap_or_else(|| plain_file(root))
            };
            let kind = if now.is_some() { EventKind::Modified } else { EventKind::Deleted };
            (kind, Some((pristine, bytes)), QuarantineAction::Keep)
        }
    };
    let (before, bytes): (Option<FileState>, Option<Vec<u8>>) = match before {
        Some((state, bytes)) => (Some(state), Some(bytes)),
        None => (None, None),
    };
    let change = Change::new(Arc::clone(&site.name), f.rel.clone(), kind, before.clone(), now, DetectedBy::Scan);
    let mut db = Store::open(&cfg.state_dir)?;
    let prior = db.get(&site.name, &f.rel)?;
    let w = db.write()?;
    w.accept(&site.name, &f.rel, before.as_ref())?;
    w.commit()?;
    let own = OwnWrites::default();
    let act = quarantine::Action {
        site_root_shown: &site.root,
        site_root_real: root,
        rule: RULE,
        action,
        nodiff: site.policy.nodiff(&f.rel),
        evidence: true,
        secrets: site.policy.secrets(),
        severity: crate::model::Severity::Critical,
        max_size: cfg.quarantine.max_size,
        own: &own,
    };
    let store = QuarantineStore::new(&cfg.state_dir);
    let quarantine::Applied { mut meta, evicted } = quarantine::apply(&store, &content, &change, &act)?;
    // Items the quarantine's cap purged for this one are alerted, as the
    // daemon alerts them.
    crate::alert::queue(cfg, &quarantine::evicted_records(&crate::util::hostname(), cfg, &evicted))?;
    // The release's own file, written here (binary files too: the content
    // store keeps text only).
    if let (Some(bytes), Some(state)) = (&bytes, &before) {
        let written = crate::quarantine::write::replace(&own, root, &f.rel, bytes, state.uid, state.gid, state.mode);
        let (result, undone) = match written {
            Ok(()) => (format!("restored to the pristine file of {} {}", pkg(m), ver(m)), true),
            Err(e) => (format!("not restored: {e}"), false),
        };
        store.set_result(&mut meta, result, undone)?;
    }
    // Done: the state as written (its inode and times), for the stat
    // cache. Not done: the baseline as it was, so the file stays drift and
    // is never accepted unrepaired.
    let w = db.write()?;
    if meta.undone {
        w.accept(&site.name, &f.rel, probe()?.as_ref())?;
    } else {
        w.accept(&site.name, &f.rel, prior.as_ref())?;
    }
    w.commit()?;
    Ok(meta)
}

fn pkg(m: Option<&Manifest>) -> &str {
    m.map(|m| m.package.as_str()).unwrap_or("?")
}

fn ver(m: Option<&Manifest>) -> &str {
    m.map(|m| m.version.as_str()).unwrap_or("?")
}

/// A 0644 file owned as the site root is, the shape of a release file
/// written where none was.
fn plain_file(root: &std::path::Path) -> FileState {
    use std::os::unix::fs::MetadataExt;
    let (uid, gid) = std::fs::metadata(root).map(|m| (m.uid(), m.gid())).unwrap_or((0, 0));
    FileState::to_write(0, None, 0o644, uid, gid)
}
