//! `sitewarden baseline`: hash every watched file of a site and make that
//! the accepted state, in one transaction (a crash leaves the old baseline).

use std::os::unix::ffi::OsStrExt;
use std::time::Instant;

use anyhow::Result;

use super::{warn, OK};
use crate::baseline::Store;
use crate::config::Config;
use crate::scan::{self, Found, ScanSpec};
use crate::util::time::now_ns;

pub fn run(cfg: &Config, only: Option<&str>) -> Result<i32> {
    let sites = cfg.select(only)?;
    let mut store = Store::open(&cfg.state_dir)?;
    for site in sites {
        let started = Instant::now();
        let scan_start = now_ns();
        let writer = store.write()?;
        writer.clear_site(&site.name)?;
        let mut failed = None;
        let mut problems = 0u64;
        let spec = ScanSpec {
            root: &site.real_root,
            policy: &site.policy,
            cache: None,
            rehash: true,
            threads: 0,
            start: b"",
        };
        let stats = scan::scan(&spec, |found| match found {
            Found::Entry(rel, state) => {
                if failed.is_none() {
                    if let Err(e) = writer.put(&site.name, &rel, Some(&state)) {
                        failed = Some(e);
                    }
                }
            }
            Found::Problem(rel, e) | Found::Unreadable(rel, e) => {
                problems += 1;
                warn(&site.name, &rel, &e);
            }
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        writer.site_done(
            &site.name,
            site.root.as_os_str().as_bytes(),
            Some(scan_start),
            Some(scan_start),
        )?;
        writer.commit()?;
        eprintln!(
            "sitewarden: {}: baseline of {} paths ({} files hashed, {:.1} MB) in {:.2} s{}",
            site.name,
            stats.entries.saturating_sub(problems),
            stats.hashed,
            stats.bytes_hashed as f64 / 1e6,
            started.elapsed().as_secs_f64(),
            if problems > 0 {
                format!(", {problems} unreadable (see warnings)")
            } else {
                String::new()
            }
        );
    }
    Ok(OK)
}
