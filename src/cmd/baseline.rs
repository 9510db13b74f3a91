//! `sitewarden baseline`: hash every watched file of a site and make that
//! the accepted state, in one transaction (a crash leaves the old baseline).

use std::time::Instant;

use anyhow::Result;

use super::{warn, OK};
use crate::baseline::Store;
use crate::config::Config;
use crate::detect;

pub fn run(cfg: &Config, only: Option<&str>) -> Result<i32> {
    // A state dir someone else can write is refused before it is trusted.
    cfg.check_writable()?;
    let sites = cfg.select(only)?;
    let mut store = Store::open(&cfg.state_dir)?;
    let content = crate::content::ContentStore::new(&cfg.state_dir);
    let publisher = super::verify::publisher(cfg);
    for site in sites {
        let started = Instant::now();
        let (stats, problems) = detect::rebuild(&mut store, site, None, Some(&content))?;
        for (rel, e) in &problems {
            warn(&site.name, rel, e);
        }
        // Against the states just taken in: the tree is not read again.
        super::verify::report(cfg, &publisher, site, Some(store.load(&site.name)?.into_iter().collect()));
        for rel in store.linked_paths(&site.name)? {
            eprintln!(
                "sitewarden: {}: {}: has more than one hard link (rule hardlink): a write through another name \
                 gives no event; the daemon checks it by stat every scan.hardlink_interval",
                site.name,
                crate::scan::show(&rel)
            );
        }
        eprintln!(
            "sitewarden: {}: baseline of {} paths ({} files hashed, {:.1} MB) in {:.2} s{}",
            site.name,
            stats.entries.saturating_sub(problems.len() as u64),
            stats.hashed,
            stats.bytes_hashed as f64 / 1e6,
            started.elapsed().as_secs_f64(),
            if problems.is_empty() { String::new() } else { format!(", {} unreadable (see warnings)", problems.len()) }
        );
    }
    crate::content::prune_unreferenced(&content, &store);
    crate::content::enforce_cap(&content, &store, cfg.state.content_max);
    Ok(OK)
}
