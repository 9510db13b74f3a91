//! `sitewarden init`: write a commented, valid config for a site, detecting
//! the stack from marker files when no profile is given. On an existing
//! config it adds the site (a root already watched is not added twice);
//! `--force` writes a fresh file instead. Only CONFIG is written.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

use super::{discover, OK};
use crate::config::{self, Config};
use crate::profile;

/// Marker files of each stack, in the order they are tried.
const MARKERS: &[(&str, &str, &[&str])] = &[
    ("wordpress", "WordPress", &["wp-config.php", "wp-includes/version.php", "wp-login.php"]),
    ("drupal", "Drupal", &["core/lib/Drupal.php", "web/core/lib/Drupal.php"]),
    ("magento", "Magento", &["app/etc/env.php", "bin/magento", "app/etc/di.xml"]),
    ("laravel", "Laravel", &["artisan"]),
    (
        "joomla",
        "Joomla",
        &["libraries/src/Version.php", "administrator/manifests/files/joomla.xml", "libraries/cms/version/version.php"],
    ),
];

/// The profile for the site at `root`, and why.
pub fn detect(root: &Path) -> (&'static str, String) {
    for (profile, stack, markers) in MARKERS {
        for m in *markers {
            if std::fs::symlink_metadata(root.join(m)).is_ok() {
                return (profile, format!("{stack} ({m} found)"));
            }
        }
    }
    if has_php(root) {
        ("generic-php", "a PHP site of no known stack (PHP files found)".into())
    } else {
        ("static", "a static site (no PHP file found)".into())
    }
}

/// Looks for a PHP file in the first few thousand entries.
fn has_php(root: &Path) -> bool {
    let mut budget = 5000;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            budget -= 1;
            if budget == 0 {
                return true;
            }
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(e.path());
            } else if e.file_name().as_bytes().to_ascii_lowercase().ends_with(b".php") {
                return true;
            }
        }
    }
    false
}

/// A site name from the root's last component.
pub(super) fn default_name(root: &Path) -> String {
    let base = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name: String =
        base.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' }).take(64).collect();
    if name.as_bytes().first().is_some_and(|b| b.is_ascii_alphanumeric()) {
        name
    } else {
        "site".into()
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The YAML of one site entry.
pub(super) fn site_entry(name: &str, root: &Path, profile: &str) -> String {
    format!(
        "  - name: {}\n    root: {}\n    profile: {profile}\n    # Added to the profile's lists (see `sitewarden profiles {profile}`):\n    # ignore: [\"my-cache/**\"]\n    # quarantine:\n    #   - {{ match: \"**/.htaccess\", action: restore }}   # restore | remove | keep\n    # auto_accept: false\n",
        quote(name),
        quote(&root.display().to_string())
    )
}

/// A whole config for one site.
pub(super) fn fresh(name: &str, root: &Path, profile: &str, email: Option<&str>) -> String {
    let host = super::hostname();
    let email_block = match email {
        Some(to) => format!(
            "  email:\n    to: [{}]\n    from: {}\n    smtp: {{ host: localhost, port: 25, tls: none }}   # none | starttls | tls\n    # smtp: {{ host: mail.example.com, port: 587, tls: starttls, username: alerts, password_file: /etc/sitewarden/smtp-password }}\n    # transport: sendmail                             # instead of smtp\n    min_severity: medium\n    digest_seconds: 60\n    # max_per_hour: 30\n",
            quote(to),
            quote(&format!("sitewarden@{host}"))
        ),
        None => "  # email:\n  #   to: [ops@example.com]\n  #   from: sitewarden@example.com\n  #   smtp: { host: localhost, port: 25, tls: none }   # none | starttls | tls\n  #   min_severity: medium\n  #   digest_seconds: 60\n".to_string(),
    };
    format!(
        "# sitewarden configuration, written by `sitewarden init`.
# Check it with `sitewarden config-check`; `systemctl reload sitewarden`
# applies changes (a bad file is refused and the running config kept).
# Unknown keys are errors. Every key: man sitewarden.

# Baseline, content store, mail outbox and quarantine.
state_dir: {state}

scan:
  # Full scans besides realtime watching (and after any lost kernel event).
  interval: 4h
  # Events on one path within this quiet period give one check.
  quiet_period: 200ms
  # Re-hash every file, ignoring the stat cache, this often:
  # rehash_interval: 7d
  # Scans of a site whose realtime watching is incomplete (watch limit):
  fallback_interval: 5m
  # Scheduled scans run at low CPU and I/O priority; cap their reads too:
  # throttle_mb_per_sec: 50

quarantine:
  # Run after each quarantine action: argv, no shell. The path, site, ids
  # and hashes are in SITEWARDEN_* environment variables.
  # hook: [\"/usr/local/sbin/on-quarantine\", \"--notify\"]
  hook_timeout: 30s

alerts:
  # One JSON record per line.
  log: {log}
{email_block}
sites:
{site}",
        state = config::DEFAULT_STATE_DIR,
        log = config::DEFAULT_ALERT_LOG,
        site = site_entry(name, root, profile),
    )
}

/// Adds a site entry at the end of the `sites:` list of `text`.
pub(super) fn append_site(text: &str, entry: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| l.starts_with("sites:"))?;
    if lines[start].trim_end() == "sites: []" {
        let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        out[start] = "sites:".into();
        out.insert(start + 1, entry.trim_end().to_string());
        return Some(out.join("\n") + "\n");
    }
    if lines[start].trim_end() != "sites:" {
        return None;
    }
    let end = lines
        .iter()
        .enumerate()
        .skip(start + 1)
        .find(|(_, l)| !l.is_empty() && !l.starts_with([' ', '#', '-', '\t']))
        .map(|(i, _)| i)
        .unwrap_or(lines.len());
    let mut out: Vec<String> = lines[..end].iter().map(|l| l.to_string()).collect();
    out.push(entry.trim_end().to_string());
    out.extend(lines[end..].iter().map(|l| l.to_string()));
    Some(out.join("\n") + "\n")
}

pub(super) fn write_atomically(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    let tmp = PathBuf::from(format!("{}.sitewarden-new", path.display()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(&tmp)
        .map_err(|e| anyhow!("cannot write {}: {e}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).map_err(|e| anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

pub struct InitArgs<'a> {
    pub config: &'a Path,
    pub profile: Option<&'a str>,
    pub root: &'a Path,
    pub name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub force: bool,
}

pub fn run(a: InitArgs<'_>) -> Result<i32> {
    let cwd = std::env::current_dir()?;
    let root = config::normalize(&cwd.join(a.root));
    if !root.is_dir() {
        bail!("--root {}: not a directory", root.display());
    }
    let real = std::fs::canonicalize(&root)?;
    let profile = match a.profile {
        Some(p) => {
            let dir = super::profiles::profile_dir(a.config);
            if !profile::exists(p, &dir) {
                bail!("unknown profile '{p}' (built-in: {})", profile::names().join(", "));
            }
            p.to_string()
        }
        None => {
            let (p, why) = detect(&real);
            eprintln!("sitewarden: detected {why}: profile {p}");
            p.to_string()
        }
    };
    if let Some(e) = a.email {
        if !e.contains('@') || e.chars().any(|c| c.is_control() || c.is_whitespace()) {
            bail!("--email {e}: not a mail address");
        }
    }
    let mut name = a.name.map(str::to_string).unwrap_or_else(|| default_name(&root));
    let existing = std::fs::read_to_string(a.config).ok();
    let text = match (&existing, a.force) {
        (Some(old), false) => {
            let cfg = Config::load(a.config)
                .map_err(|e| anyhow!("{e} (the existing config is not valid: fix it, or start over with --force)"))?;
            if let Some(s) = cfg.sites.iter().find(|s| s.real_root == real) {
                eprintln!(
                    "sitewarden: {} is already watched as site '{}' in {}; nothing added",
                    root.display(),
                    s.name,
                    a.config.display()
                );
                return Ok(OK);
            }
            if cfg.site(&name).is_some() {
                if a.name.is_some() {
                    bail!("a site named '{name}' already exists in {}", a.config.display());
                }
                let base = name.clone();
                let mut n = 2;
                while cfg.site(&name).is_some() {
                    name = format!("{base}-{n}");
                    n += 1;
                }
            }
            append_site(old, &site_entry(&name, &root, &profile)).ok_or_else(|| {
                anyhow!(
                    "{}: cannot find the `sites:` list to add to; add the site by hand or use --force",
                    a.config.display()
                )
            })?
        }
        _ => fresh(&name, &root, &profile, a.email),
    };
    // What is written must load: validated like any config, before writing.
    let base = a.config.parent().map(|p| cwd.join(p)).unwrap_or_else(|| cwd.clone());
    Config::parse(&text, a.config, &base, &base.join("profiles"))?;
    write_atomically(a.config, &text)?;
    let verb = if existing.is_some() && !a.force { "added site" } else { "wrote" };
    eprintln!("sitewarden: {verb} '{name}' ({}, profile {profile}) to {}", root.display(), a.config.display());
    // An infected site is named on day one, before its baseline accepts it.
    let cfg = Config::load(a.config)?;
    if let Some(site) = cfg.site(&name) {
        super::verify::report(&cfg, &super::verify::publisher(&cfg), site, None);
    }
    eprintln!("sitewarden: next: `sitewarden baseline`");
    Ok(OK)
}

/// `init --discover`: every web root of the server as a table, the new ones
/// added to CONFIG (or printed as YAML with `dry_run`).
pub fn run_discover(config: &Path, dry_run: bool, panel_root: &Path) -> Result<i32> {
    let existing = match std::fs::read_to_string(config) {
        Ok(text) => Some((Config::load(config)?, text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => bail!("{}: {e}", config.display()),
    };
    let watched: Vec<PathBuf> =
        existing.as_ref().map(|(c, _)| c.sites.iter().map(|s| s.real_root.clone()).collect()).unwrap_or_default();
    let mut taken: Vec<String> =
        existing.as_ref().map(|(c, _)| c.sites.iter().map(|s| s.name.to_string()).collect()).unwrap_or_default();
    let found = discover::discover(panel_root);
    let mut out = std::io::stdout().lock();
    writeln!(out, "{:<44} {:<32} {:<12} {:>7}  FOUND BY", "ROOT", "SERVER NAMES", "PROFILE", "FILES")?;
    let mut new_sites: Vec<(String, PathBuf, &'static str)> = Vec::new();
    for f in &found {
        let (profile, _) = detect(&f.root);
        let files = count_files(&f.root, 200_000);
        let known = watched.contains(&f.root);
        let names = if f.names.is_empty() { "-".to_string() } else { f.names.join(",") };
        writeln!(
            out,
            "{:<44} {:<32} {:<12} {:>7}  {:<12} {}",
            f.root.display(),
            names,
            profile,
            files,
            f.by.join(","),
            if known { "already watched" } else { "new" }
        )?;
        if !known {
            // A panel's docroot is named after its account or domain.
            let generic = ["public_html", "httpdocs", "htdocs", "www", "html"];
            let dir = match (f.root.file_name().and_then(|n| n.to_str()), f.root.parent()) {
                (Some(leaf), Some(parent)) if generic.contains(&leaf) => parent,
                _ => f.root.as_path(),
            };
            let base = f.names.first().map(|n| default_name(Path::new(n))).unwrap_or_else(|| default_name(dir));
            let mut name = base.clone();
            let mut n = 2;
            while taken.contains(&name) {
                name = format!("{base}-{n}");
                n += 1;
            }
            taken.push(name.clone());
            new_sites.push((name, f.root.clone(), profile));
        }
    }
    if new_sites.is_empty() {
        writeln!(out, "no new web root")?;
        return Ok(OK);
    }
    if dry_run {
        writeln!(out, "\n# to add under `sites:`")?;
        for (name, root, profile) in &new_sites {
            write!(out, "{}", site_entry(name, root, profile))?;
        }
        return Ok(OK);
    }
    let mut text = match existing {
        Some((_, text)) => text,
        None => {
            let (name, root, profile) = &new_sites[0];
            fresh(name, root, profile, None)
        }
    };
    let skip = usize::from(!config.exists());
    for (name, root, profile) in new_sites.iter().skip(skip) {
        text = append_site(&text, &site_entry(name, root, profile))
            .ok_or_else(|| anyhow!("{}: cannot find the `sites:` list to add to", config.display()))?;
    }
    let cwd = std::env::current_dir()?;
    let base = config.parent().map(|p| cwd.join(p)).unwrap_or_else(|| cwd.clone());
    Config::parse(&text, config, &base, &base.join("profiles"))?;
    write_atomically(config, &text)?;
    drop(out);
    let n = new_sites.len();
    eprintln!("sitewarden: added {n} site{} to {}", if n == 1 { "" } else { "s" }, config.display());
    eprintln!("sitewarden: next: `sitewarden baseline`");
    Ok(OK)
}

/// Regular files below `root`, counted up to `cap` (never through a symlink).
fn count_files(root: &Path, cap: usize) -> usize {
    let mut n = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => n += 1,
                _ => {}
            }
            if n >= cap {
                return n;
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_to_the_sites_list() {
        let text = "state_dir: /x\nsites:\n  - name: a\n    root: /a\n# end\nalerts:\n  log: /l\n";
        let out = append_site(text, "  - name: b\n    root: /b\n").unwrap();
        assert_eq!(
            out,
            "state_dir: /x\nsites:\n  - name: a\n    root: /a\n# end\n  - name: b\n    root: /b\nalerts:\n  log: /l\n"
        );
        let out = append_site("sites: []\n", "  - name: b\n").unwrap();
        assert_eq!(out, "sites:\n  - name: b\n");
    }
}
