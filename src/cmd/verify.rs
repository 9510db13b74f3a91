//! `sitewarden verify`: the tree now against what it should be, not
//! against the baseline, so an infection present before the first
//! baseline is named too: a site's `reference:` (what was deployed), or
//! the published releases of the WordPress core and plugins it runs.
//! Lists tampered, foreign and missing files; exit 1 when there is any.
//! Changes nothing but the checksum cache.

use std::collections::HashSet;
use std::io::Write;

use anyhow::Result;

use super::{warn, DRIFT, OK};
use crate::config::{Config, Site};
use crate::model::{FileState, FileType, RelPath};
use crate::vendor::{wordpress, Manifest, Origin};

/// A file that does not match, or whose content matches a signature.
pub(super) struct Finding {
    pub(super) rel: RelPath,
    pub(super) what: &'static str,
    /// Against which release (none for a signature).
    pub(super) verdict: Option<crate::vendor::Verdict>,
    /// The signature rules its content matches.
    pub(super) signatures: Vec<String>,
}

impl Finding {
    /// `[package version]` or `[rule, rule]`.
    fn against(&self) -> String {
        match &self.verdict {
            Some(v) => format!("{} {}", v.package, v.version),
            None => self.signatures.join(", "),
        }
    }
}

pub fn run(cfg: &Config, only: Option<&str>, json: bool, rehash: bool) -> Result<i32> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut bad = false;
    for site in cfg.select(only)? {
        let (findings, summary) = verify_site(cfg, site, None, rehash)?;
        bad |= !findings.is_empty();
        for f in &findings {
            let path = crate::alert::record::absolute(&site.root, &f.rel);
            if json {
                let v = serde_json::json!({
                    "site": &*site.name,
                    "path": crate::util::bytes::lossless(&path),
                    "result": f.what,
                    "verdict": f.verdict,
                    "signatures": f.signatures,
                });
                writeln!(out, "{v}")?;
            } else {
                writeln!(out, "{:<9} {}  [{}]", f.what, crate::scan::show(&path), f.against())?;
            }
        }
        if !json {
            writeln!(out, "{}: {summary}", site.name)?;
        }
    }
    Ok(if bad { DRIFT } else { OK })
}

/// The findings of one site, and a line saying what it was checked against.
/// `observed`: the site's states when the caller has just read them all
/// (`baseline`), so the tree is not hashed twice.
pub(super) fn verify_site(
    cfg: &Config,
    site: &Site,
    observed: Option<Vec<(RelPath, FileState)>>,
    rehash: bool,
) -> Result<(Vec<Finding>, String)> {
    let mut manifests: Vec<(std::sync::Arc<Manifest>, Option<RelPath>)> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    if let Some(reference) = &site.reference {
        manifests.push((std::sync::Arc::new(Manifest::reference(reference)?), None));
    } else if cfg.vendors.enabled && site.profile == "wordpress" {
        let cache = cfg.state_dir.join("vendor");
        for p in wordpress::detect(&site.real_root) {
            match wordpress::manifest(&p, &cfg.vendors.wordpress, &cache) {
                Ok(m) => manifests.push((m, Some(p.dir.clone()))),
                Err(e) => unknown.push(e.to_string()),
            }
        }
    }
    let sigs = cfg.signatures.rules()?;
    if manifests.is_empty() && unknown.is_empty() && sigs.is_none() {
        return Ok((
            Vec::new(),
            "nothing to verify against: configure `reference:` (or use the wordpress profile)".into(),
        ));
    }
    let entries = match observed {
        Some(e) => e,
        None => {
            // The baseline's hashes where the stat still matches (as `check`
            // trusts them); every file is hashed with `--rehash`.
            let cache = match (rehash, crate::baseline::Store::open_existing(&cfg.state_dir)) {
                (false, Ok(store)) => store.load(&site.name).ok().filter(|m| !m.is_empty()),
                _ => None,
            };
            let (entries, _, problems) = crate::detect::observe_all(site, cache.as_ref(), None, None)?;
            for (rel, e) in &problems {
                warn(&site.name, rel, e);
            }
            entries
        }
    };
    let present: HashSet<&[u8]> = entries.iter().map(|(r, _)| r.as_slice()).collect();
    let mut findings = Vec::new();
    let files = entries.iter().filter(|(_, s)| s.kind == FileType::File).count();
    for (m, dir) in &manifests {
        // Core's manifest judges what is not in wp-content/; a plugin's,
        // its own folder.
        let mine = |rel: &[u8]| match dir.as_deref() {
            None => true,
            Some([]) => !rel.starts_with(b"wp-content/"),
            Some(d) => crate::detect::is_under(rel, d),
        };
        for (rel, state) in entries.iter().filter(|(r, s)| s.kind == FileType::File && mine(r)) {
            let md5 = || crate::vendor::live_md5(&site.real_root, rel, Some(state));
            if let Some(o @ (Origin::Tampered | Origin::Foreign)) = m.judge(rel, Some(state), md5) {
                let what = if o == Origin::Tampered { "tampered" } else { "foreign" };
                findings.push(Finding { rel: rel.clone(), what, verdict: Some(m.verdict(o)), signatures: Vec::new() });
            }
        }
        for rel in m.paths() {
            if !present.contains(rel.as_slice()) && site.policy.watched(rel, FileType::File) {
                let verdict = Some(m.verdict(Origin::Tampered));
                findings.push(Finding { rel: rel.clone(), what: "missing", verdict, signatures: Vec::new() });
            }
        }
    }
    // Known-bad: every file's content against the signature rules.
    if let Some(sigs) = &sigs {
        findings.extend(scan_all(sigs, site, &entries));
    }
    findings.sort_by(|a, b| a.rel.cmp(&b.rel));
    let mut against: Vec<String> = manifests.iter().map(|(m, _)| format!("{} {}", m.package, m.version)).collect();
    if let Some(sigs) = &sigs {
        against.push(format!("{} signature rules", sigs.len()));
    }
    let mut summary = format!(
        "{files} files checked against {}: {}",
        if against.is_empty() { "nothing".to_string() } else { against.join(", ") },
        if findings.is_empty() { "all match".to_string() } else { format!("{} do not", findings.len()) }
    );
    for u in unknown {
        summary.push_str(&format!("; unknown: {u}"));
    }
    Ok((findings, summary))
}

/// The signature findings of every regular file of `entries`, read and
/// scanned on every core; a content seen before (the same plugin in
/// another site) is not scanned again.
fn scan_all(sigs: &crate::signatures::Signatures, site: &Site, entries: &[(RelPath, FileState)]) -> Vec<Finding> {
    let files: Vec<(&RelPath, [u8; 32])> =
        entries.iter().filter(|(_, s)| s.kind == FileType::File).filter_map(|(r, s)| Some((r, s.sha256?))).collect();
    let threads = std::thread::available_parallelism().map(usize::from).unwrap_or(1).clamp(1, 8);
    let chunk = files.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut scanner = sigs.scanner();
                    let mut found = Vec::new();
                    for (rel, sha) in part {
                        let foreign = site.policy.foreign_place(rel);
                        let load = || crate::signatures::read_head(&site.real_root, rel, sigs.max_size);
                        let Some(m) = sigs.scan_content(&mut scanner, sha, rel, foreign, load) else { continue };
                        let matched = m.counted(foreign);
                        if !matched.is_empty() {
                            let rel = (*rel).clone();
                            found.push(Finding { rel, what: "signature", verdict: None, signatures: matched });
                        }
                    }
                    found
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap_or_default()).collect()
    })
}

/// Prints what `verify` finds in `site` as warnings and its summary line
/// (for `init` and `baseline`: an infected site is named on day one).
pub(super) fn report(cfg: &Config, site: &Site, observed: Option<Vec<(RelPath, FileState)>>) {
    match verify_site(cfg, site, observed, false) {
        Ok((findings, summary)) => {
            for f in &findings {
                eprintln!("sitewarden: {}: {} {} ({})", site.name, f.what, crate::scan::show(&f.rel), f.against());
            }
            eprintln!("sitewarden: {}: verify: {summary}", site.name);
        }
        Err(e) => eprintln!("sitewarden: {}: verify: {e}", site.name),
    }
}
