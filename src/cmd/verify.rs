//! `sitewarden verify`: the tree now against what it should be, not
//! against the baseline, so an infection present before the first
//! baseline is named too: a site's `reference:` (what was deployed), or
//! the published releases of the WordPress core and plugins it runs.
//! Lists tampered, foreign and missing files; exit 1 when there is any.
//! What could not be checked (a release whose checksums could not be had,
//! a file the signature rules could not be run over) is never a pass:
//! listed as `unchecked`, exit 3 when nothing worse was found.
//! Changes nothing but the checksum cache.

use std::collections::HashSet;
use std::io::Write;

use anyhow::Result;

use super::{warn, DRIFT, OK, UNCHECKED};
use crate::config::{Config, Site};
use crate::model::{FileState, FileType, RelPath};
use crate::releases::wordpress::{self, Publisher};
use crate::releases::{Manifest, Origin};

/// A file that does not match, or whose content matches a signature.
pub(super) struct Finding {
    pub(super) rel: RelPath,
    pub(super) what: &'static str,
    /// Against which release (none for a signature).
    pub(super) verdict: Option<crate::releases::Verdict>,
    /// The signature rules its content matches.
    pub(super) signatures: Vec<String>,
}

/// Something verify could not check: a package whose release is not
/// known (its checksums could not be fetched), or a file whose content the
/// signature rules could not be run over.
pub(super) struct Unchecked {
    /// `package` or `file`.
    pub(super) what: &'static str,
    /// The package and version, or the site path.
    pub(super) name: String,
    /// Why not, in the words of the failure (HTTP status, timeout, ...).
    pub(super) reason: String,
}

/// What verify found in one site.
pub(super) struct Verified {
    pub(super) findings: Vec<Finding>,
    /// The releases the site was checked against.
    pub(super) manifests: Vec<std::sync::Arc<Manifest>>,
    pub(super) unchecked: Vec<Unchecked>,
    /// One line: what it was checked against, and the outcome.
    pub(super) summary: String,
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

/// The publisher the release checks of this command ask (one per run: a
/// host found down is asked once).
pub(super) fn publisher(cfg: &Config) -> Publisher {
    Publisher::new(cfg.vendors.wordpress.clone(), cfg.state_dir.join("vendor"))
}

pub fn run(cfg: &Config, only: Option<&str>, json: bool, rehash: bool) -> Result<i32> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut bad, mut unchecked) = (false, false);
    let publisher = publisher(cfg);
    for site in cfg.select(only)? {
        let Verified { findings, unchecked: not_checked, summary, .. } =
            verify_site(cfg, &publisher, site, None, rehash)?;
        bad |= !findings.is_empty();
        unchecked |= !not_checked.is_empty();
        for u in &not_checked {
            if json {
                let v = serde_json::json!({
                    "site": &*site.name,
                    "result": "unchecked",
                    "what": u.what,
                    "name": crate::util::bytes::printable(u.name.as_bytes()),
                    "reason": u.reason,
                });
                writeln!(out, "{v}")?;
            } else {
                let name = crate::util::bytes::printable(u.name.as_bytes());
                writeln!(out, "unchecked {} {name}  [{}]", u.what, u.reason)?;
            }
        }
        for f in &findings {
            let path = crate::model::absolute(&site.root, &f.rel);
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
    Ok(if bad {
        DRIFT
    } else if unchecked {
        UNCHECKED
    } else {
        OK
    })
}

/// The findings of one site, and a line saying what it was checked against.
/// `observed`: the site's states when the caller has just read them all
/// (`baseline`), so the tree is not hashed twice.
pub(super) fn verify_site(
    cfg: &Config,
    publisher: &Publisher,
    site: &Site,
    observed: Option<Vec<(RelPath, FileState)>>,
    rehash: bool,
) -> Result<Verified> {
    let mut manifests: Vec<(std::sync::Arc<Manifest>, Option<RelPath>)> = Vec::new();
    let mut unchecked: Vec<Unchecked> = Vec::new();
    let mut claims: Vec<String> = Vec::new();
    if let Some(reference) = &site.reference {
        manifests.push((std::sync::Arc::new(Manifest::reference(reference)?), None));
    } else if cfg.vendors.enabled && site.profile == "wordpress" {
        let never = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        for p in wordpress::detect(&site.real_root) {
            let mut fetched = publisher.manifest(&p, &never);
            if matches!(fetched, Err(wordpress::FetchError::NotPublished(_))) {
                // The version file names a release the publisher does not
                // know: the release the files are judges them (and the
                // version file, which differs from it, is tampered).
                if let Some(m) = publisher.identify(&site.real_root, &p, &[], &never) {
                    claims.push(format!("{} says {}", crate::util::bytes::printable(&p.version_file), p.version));
                    fetched = Ok(m);
                }
            }
            match fetched {
                Ok(m) => manifests.push((m, Some(p.dir.clone()))),
                Err(e) => unchecked.push(Unchecked {
                    what: "package",
                    name: format!("{} {}", p.name, p.version),
                    reason: e.to_string(),
                }),
            }
        }
    }
    let sigs = cfg.signatures.rules()?;
    if manifests.is_empty() && unchecked.is_empty() && sigs.is_none() {
        let summary = "nothing to verify against: configure `reference:` (or use the wordpress profile)".into();
        return Ok(Verified { findings: Vec::new(), manifests: Vec::new(), unchecked, summary });
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
            Some([]) => !rel.starts_with(b"wp-content/") || (m.lists(rel) && wordpress::package_of(rel).is_none()),
            Some(d) => crate::model::is_under(rel, d),
        };
        for (rel, state) in entries.iter().filter(|(r, s)| s.kind == FileType::File && mine(r)) {
            let md5 = || crate::releases::live_md5(&site.real_root, rel, Some(state));
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
        let (found, unscanned) = scan_all(sigs, site, &entries)?;
        findings.extend(found);
        for (rel, reason) in unscanned {
            let name = crate::util::bytes::lossless(&crate::model::absolute(&site.root, &rel));
            unchecked.push(Unchecked { what: "file", name, reason });
        }
    }
    findings.sort_by(|a, b| a.rel.cmp(&b.rel));
    let mut against: Vec<String> = manifests.iter().map(|(m, _)| format!("{} {}", m.package, m.version)).collect();
    if let Some(sigs) = &sigs {
        against.push(format!("{} signature rules", sigs.len()));
    }
    let outcome = match (findings.len(), unchecked.len()) {
        (0, 0) => "all match".to_string(),
        (0, u) => format!("no finding, but {u} could not be checked: NOT VERIFIED"),
        (f, 0) => format!("{f} do not"),
        (f, u) => format!("{f} do not, and {u} could not be checked"),
    };
    against.extend(claims);
    let against = if against.is_empty() { "nothing".to_string() } else { against.join(", ") };
    let summary = format!("{files} files checked against {against}: {outcome}");
    let manifests = manifests.into_iter().map(|(m, _)| m).collect();
    Ok(Verified { findings, manifests, unchecked, summary })
}

/// A file the signature rules could not be run over, and why.
type Unscanned = (RelPath, String);

/// The signature findings of every regular file of `entries`, read and
/// scanned on every core, and the files the rules could not be run over;
/// a content seen before (the same plugin in another site) is not scanned
/// again. A worker that died fails the whole check: what it did not reach
/// was never judged.
fn scan_all(
    sigs: &crate::signatures::Signatures,
    site: &Site,
    entries: &[(RelPath, FileState)],
) -> Result<(Vec<Finding>, Vec<Unscanned>)> {
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
                    let (mut found, mut unscanned) = (Vec::new(), Vec::new());
                    for (rel, sha) in part {
                        crate::util::fault::point("verify", rel);
                        let foreign = site.policy.foreign_place(rel);
                        let load = || crate::signatures::read_head(&site.real_root, rel, sigs.max_size);
                        let Some(m) = sigs.scan_content(&mut scanner, sha, rel, foreign, load) else { continue };
                        let matched = m.counted(foreign);
                        if !matched.is_empty() {
                            let rel = (*rel).clone();
                            found.push(Finding { rel, what: "signature", verdict: None, signatures: matched });
                        } else if let Some(why) = m.unscanned {
                            unscanned.push(((*rel).clone(), why));
                        }
                    }
                    (found, unscanned)
                })
            })
            .collect();
        let (mut found, mut unscanned) = (Vec::new(), Vec::new());
        for w in workers {
            let (f, u) = w.join().map_err(|p| {
                anyhow::anyhow!(
                    "{}: the signature check did not finish: a worker died ({}); nothing was verified",
                    site.name,
                    crate::util::supervise::panic_text(p.as_ref())
                )
            })?;
            found.extend(f);
            unscanned.extend(u);
        }
        Ok((found, unscanned))
    })
}

/// Prints what `verify` finds in `site` as warnings and its summary line
/// (for `init` and `baseline`: an infected site is named on day one).
pub(super) fn report(cfg: &Config, publisher: &Publisher, site: &Site, observed: Option<Vec<(RelPath, FileState)>>) {
    match verify_site(cfg, publisher, site, observed, false) {
        Ok(Verified { findings, unchecked, summary, .. }) => {
            for f in &findings {
                eprintln!("sitewarden: {}: {} {} ({})", site.name, f.what, crate::scan::show(&f.rel), f.against());
            }
            for u in &unchecked {
                let name = crate::util::bytes::printable(u.name.as_bytes());
                eprintln!("sitewarden: {}: could not check {} {name}: {}", site.name, u.what, u.reason);
            }
            eprintln!("sitewarden: {}: verify: {summary}", site.name);
        }
        Err(e) => eprintln!("sitewarden: {}: verify: {e}", site.name),
    }
}
