//! `sitewarden verify`: the tree now against what was deployed (each
//! site's `reference:`), not against the baseline: an infection present
//! before the first baseline is named too. Lists tampered, foreign and
//! missing files; exit 1 when there is any. Changes nothing.

use std::collections::HashSet;
use std::io::Write;

use anyhow::Result;

use super::{warn, DRIFT, OK};
use crate::config::Config;
use crate::model::FileType;
use crate::vendor::{Manifest, Origin};

pub fn run(cfg: &Config, only: Option<&str>, json: bool) -> Result<i32> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut bad = false;
    for site in cfg.select(only)? {
        let Some(reference) = &site.reference else {
            if !json {
                writeln!(out, "{}: no reference: configure `reference:` to verify", site.name)?;
            }
            continue;
        };
        let manifest = Manifest::reference(reference)?;
        let (entries, _, problems) = crate::detect::observe_all(site, None, None)?;
        for (rel, e) in &problems {
            warn(&site.name, rel, e);
        }
        let mut found: Vec<(Vec<u8>, Origin)> = Vec::new();
        let present: HashSet<&[u8]> = entries.iter().map(|(r, _)| r.as_slice()).collect();
        for (rel, state) in &entries {
            if state.kind != FileType::File {
                continue;
            }
            if let Some(o @ (Origin::Tampered | Origin::Foreign)) = manifest.judge(rel, Some(state), || {
                state.sha256.and_then(|sha| crate::vendor::live_md5(&site.real_root, rel, &sha))
            }) {
                found.push((rel.clone(), o));
            }
        }
        for rel in manifest.paths() {
            if !present.contains(rel.as_slice()) && site.policy.watched(rel, FileType::File) {
                found.push((rel.clone(), Origin::Tampered));
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        bad |= !found.is_empty();
        for (rel, origin) in &found {
            let what = match origin {
                Origin::Tampered if !present.contains(rel.as_slice()) => "missing",
                Origin::Tampered => "tampered",
                _ => "foreign",
            };
            let path = crate::alert::record::absolute(&site.root, rel);
            if json {
                let v = serde_json::json!({
                    "site": &*site.name,
                    "path": crate::util::bytes::lossless(&path),
                    "result": what,
                    "verdict": manifest.verdict(*origin),
                });
                writeln!(out, "{v}")?;
            } else {
                writeln!(out, "{:<9} {}", what, crate::scan::show(&path))?;
            }
        }
        if !json {
            writeln!(
                out,
                "{}: {} files of {} checked against {} ({} listed): {}",
                site.name,
                entries.iter().filter(|(_, s)| s.kind == FileType::File).count(),
                site.root.display(),
                reference.display(),
                manifest.len(),
                if found.is_empty() { "all match".to_string() } else { format!("{} do not", found.len()) }
            )?;
        }
    }
    Ok(if bad { DRIFT } else { OK })
}
