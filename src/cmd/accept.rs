//! `sitewarden accept [PATH...]`: take the current state into the baseline,
//! for every watched path of the selected sites or only for the named files
//! and directories. A path that cannot be read keeps its old baseline entry.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use anyhow::Result;

use super::{locate, warn, OK};
use crate::baseline::Store;
use crate::config::{Config, Site};
use crate::content::ContentStore;
use crate::detect::{self, CompareSpec};
use crate::model::RelPath;
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
    if paths.is_empty() {
        for site in cfg.select(only)? {
            let n = accept_under(&mut store, site, b"", &content)?.len();
            eprintln!("sitewarden: {}: accepted {n} changes", site.name);
        }
        crate::content::prune_unreferenced(&content, &store);
        return Ok(OK);
    }
    for (site, rel) in targets {
        let is_dir = rel.is_empty()
            || matches!(
                file::open_parent(&site.real_root, &rel),
                Ok(Some((dir, name))) if file::open_dir_at(std::os::fd::AsFd::as_fd(&dir), &name).is_ok()
            );
        let n = if is_dir {
            accept_under(&mut store, site, &rel, &content)?.len()
        } else {
            accept_one(&mut store, site, &rel)?
        };
        eprintln!(
            "sitewarden: {}: accepted {n} changes under {}",
            site.name,
            crate::scan::show(&crate::model::absolute(&site.root, &rel))
        );
    }
    Ok(OK)
}

/// Accepts the current state of the whole site; returns what changed.
pub fn accept_site(store: &mut Store, site: &Site, content: &ContentStore) -> Result<Vec<crate::model::Change>> {
    accept_under(store, site, b"", content)
}

/// Accepts the current state of everything below `dir` (all of the site
/// when empty). Returns the changes taken in.
fn accept_under(
    store: &mut Store,
    site: &Site,
    dir: &[u8],
    content: &ContentStore,
) -> Result<Vec<crate::model::Change>> {
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
    Ok(cmp.changes)
}

/// Accepts the current state of one path (its absence, if it is gone).
fn accept_one(store: &mut Store, site: &Site, rel: &[u8]) -> Result<usize> {
    let before = store.get(&site.name, rel)?;
    let now = file::probe(&site.real_root, rel, None)
        .map_err(|e| anyhow::anyhow!("{}: {e}", crate::scan::show(&crate::model::absolute(&site.root, rel))))?;
    if let Some(state) = &now {
        if !site.policy.watched(rel, state.kind) {
            warn(&site.name, rel, &"not watched by the site's profile; nothing to accept");
            return Ok(0);
        }
    }
    let changed = crate::model::FileState::compare(before.as_ref(), now.as_ref()).is_some();
    let writer = store.write()?;
    writer.accept(&site.name, rel, now.as_ref())?;
    writer.commit()?;
    Ok(usize::from(changed))
}
