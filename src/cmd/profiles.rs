//! `sitewarden profiles [NAME]`: list the profiles (built-in and local), or
//! print one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::Result;

use super::OK;
use crate::config::DEFAULT_PROFILE_DIR;
use crate::profile::{self, Source};

/// The folder of local profiles that goes with a config path.
pub fn profile_dir(config_path: &Path) -> std::path::PathBuf {
    // The same folder `Config::load` reads: beside the config file.
    match config_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join("profiles"),
        Some(_) => Path::new("profiles").to_path_buf(),
        None => Path::new(DEFAULT_PROFILE_DIR).to_path_buf(),
    }
}

pub fn run(config_path: &Path, name: Option<&str>) -> Result<i32> {
    let dir = profile_dir(config_path);
    let mut out = std::io::stdout().lock();
    if let Some(name) = name {
        let p = profile::load(name, &dir)?;
        if let Source::File(f) = &p.source {
            writeln!(out, "# from {}", f.display())?;
        }
        out.write_all(p.text.as_bytes())?;
        return Ok(OK);
    }
    let mut names: BTreeMap<String, ()> = profile::names().into_iter().map(|n| (n.to_string(), ())).collect();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let file = e.file_name();
            let file = file.to_string_lossy();
            if let Some(n) = file.strip_suffix(".yaml") {
                if profile::valid_name(n) {
                    names.insert(n.to_string(), ());
                }
            }
        }
    }
    for n in names.keys() {
        match profile::load(n, &dir) {
            Ok(p) => {
                let origin = match &p.source {
                    Source::Builtin => "built-in".to_string(),
                    Source::File(f) => f.display().to_string(),
                };
                writeln!(out, "{n:<12} {}  ({origin})", p.raw.description)?;
            }
            Err(e) => writeln!(out, "{n:<12} ERROR: {e}")?,
        }
    }
    Ok(OK)
}
