//! `sitewarden check`: compare every site with its baseline and report the
//! drift. Changes nothing: no alert log, no mail, no store write. A site
//! whose scan did not finish (a walking or hashing thread died) is listed
//! as unchecked, never as clean or with its unread files deleted: exit 3
//! when nothing worse was found.

use std::io::Write;

use anyhow::{bail, Result};

use super::{hostname, warn, DRIFT, OK, UNCHECKED};
use crate::alert::diff;
use crate::baseline::Store;
use crate::config::Config;
use crate::detect::{self, CompareSpec};
use crate::util::time::now_ns;

pub fn run(cfg: &Config, only: Option<&str>, json: bool, rehash: bool) -> Result<i32> {
    let sites = cfg.select(only)?;
    let store = Store::open_existing(&cfg.state_dir)?;
    let host = hostname();
    let content = crate::content::ContentStore::new(&cfg.state_dir);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (mut drift, mut unchecked) = (false, false);
    for site in sites {
        if !store.has_baseline(&site.name)? {
            bail!("site '{}' has no baseline yet: run `sitewarden baseline --site {}`", site.name, site.name);
        }
        let baseline = store.load(&site.name)?;
        let mut cmp = match detect::compare(&CompareSpec { rehash, ..CompareSpec::new(site, &baseline) }) {
            Ok(cmp) => cmp,
            Err(e @ crate::scan::ScanError::Incomplete { .. }) => {
                unchecked = true;
                eprintln!("sitewarden: {}: {e}", site.name);
                if json {
                    let v = serde_json::json!({"site": &*site.name, "result": "unchecked", "reason": e.to_string()});
                    writeln!(out, "{v}")?;
                } else {
                    writeln!(out, "{}: NOT CHECKED: {e}", site.name)?;
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        for (rel, e) in &cmp.problems {
            warn(&site.name, rel, e);
        }
        if let Some(sigs) = cfg.signatures.rules()? {
            crate::signatures::Signer { sigs: &sigs, policy: &site.policy, root: &site.real_root, content: None }
                .sign(&mut cmp.changes);
        }
        let changes: Vec<_> = cmp.changes.iter().filter(|c| !c.is_silent()).collect();
        drift |= !changes.is_empty();
        let now = now_ns();
        for change in changes.iter().copied() {
            let verdict = site.policy.verdict(change);
            if json {
                let record =
                    diff::record_with_diff(&host, site, change, &verdict, &content, Some(&site.real_root), now);
                writeln!(out, "{}", record.to_json())?;
            } else {
                writeln!(
                    out,
                    "{:<9} {:<9} {}  [{}]",
                    change.kind.as_str(),
                    verdict.severity.as_str(),
                    crate::scan::show(&change.rel),
                    verdict.rule
                )?;
            }
        }
        if !json {
            if changes.is_empty() {
                writeln!(out, "{}: no drift ({} paths checked)", site.name, cmp.stats.entries)?;
            } else {
                writeln!(out, "{}: {} changes ({} paths checked)", site.name, changes.len(), cmp.stats.entries)?;
            }
        }
    }
    out.flush()?;
    Ok(if drift {
        DRIFT
    } else if unchecked {
        UNCHECKED
    } else {
        OK
    })
}
