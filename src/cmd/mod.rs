//! The commands of the command line, one file each. They are the edge of the
//! library: they load the config, call the subsystems, print for people or
//! machines and return the exit code.

mod accept;
mod baseline;
mod check;
mod config_check;
mod diff;
mod discover;
mod init;
mod maintenance;
pub(crate) mod profiles;
mod quarantine;
mod repair;
mod run;
mod status;
mod test_email;
mod verify;
mod watch;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::cli::{Cli, Command};
use crate::config::{self, Config, Site};
use crate::model::RelPath;

/// Exit code: success, no drift.
pub const OK: i32 = 0;
/// Exit code of `check`: drift found.
pub const DRIFT: i32 = 1;
/// Exit code of `verify`: nothing found, but something could not be
/// checked (a release's checksums could not be had, a file could not be
/// scanned). Never 0: a check not made is not a pass.
pub const UNCHECKED: i32 = 3;

/// Runs one command; `Err` is exit code 2.
pub fn run(cli: Cli) -> Result<i32> {
    let config_path = Config::resolve_path(cli.config.as_deref());
    match cli.command {
        Command::Init { discover: true, dry_run, panel_root, .. } => {
            init::run_discover(&config_path, dry_run, panel_root.as_deref().unwrap_or(std::path::Path::new("/")))
        }
        Command::Init { profile, root, name, email, force, .. } => init::run(init::InitArgs {
            config: &config_path,
            profile: profile.as_deref(),
            root: root.as_deref().unwrap_or(std::path::Path::new(".")),
            name: name.as_deref(),
            email: email.as_deref(),
            force,
        }),
        Command::Maintenance { site, command } => maintenance::run(&load(&config_path)?, &site, &command),
        Command::Profiles { name } => profiles::run(&config_path, name.as_deref()),
        Command::ConfigCheck => config_check::run(&load(&config_path)?),
        Command::Baseline { site } => baseline::run(&load(&config_path)?, site.as_deref()),
        Command::Check { site, json, rehash } => check::run(&load(&config_path)?, site.as_deref(), json, rehash),
        Command::Verify { site, json, rehash } => verify::run(&load(&config_path)?, site.as_deref(), json, rehash),
        Command::Repair { site, dry_run } => repair::run(&load(&config_path)?, site.as_deref(), dry_run),
        Command::Accept { site, paths } => accept::run(&load(&config_path)?, site.as_deref(), &paths),
        Command::Diff { path } => diff::run(&load(&config_path)?, &path),
        Command::Status { json } => status::run_at(&config_path, json),
        Command::Run => run::run(&config_path),
        Command::Quarantine { command } => quarantine::run(&load(&config_path)?, command),
        Command::Generate { what, dir } => generate(&what, &dir),
        Command::TestEmail => test_email::run(&load(&config_path)?),
        Command::TestAlert => test_email::run_all(&load(&config_path)?),
        Command::Watch { profile, dir } => watch::run(&profile, &dir),
    }
}

fn load(path: &Path) -> Result<Config> {
    Ok(Config::load(path)?)
}

pub use crate::util::hostname;

/// Resolves a `PATH` argument (absolute or relative to the current
/// directory) to its site and the path inside it. The last component is not
/// resolved: it may be deleted, or be a symlink that must not be followed.
pub fn locate<'a>(cfg: &'a Config, only: Option<&str>, arg: &OsStr) -> Result<(&'a Site, RelPath)> {
    let p = Path::new(arg);
    let abs: PathBuf = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir()?.join(p) };
    let abs = config::normalize(&abs);
    for site in cfg.select(only)? {
        for root in [&site.root, &site.real_root] {
            if let Ok(rest) = abs.strip_prefix(root) {
                return Ok((site, rest.as_os_str().as_bytes().to_vec()));
            }
        }
    }
    let roots: Vec<String> = cfg.sites.iter().map(|s| format!("{} ({})", s.name, s.root.display())).collect();
    bail!(
        "{} is not inside a site root (sites: {})",
        crate::util::bytes::printable(abs.as_os_str().as_bytes()),
        roots.join(", ")
    )
}

/// Prints a per-item problem as a warning line on stderr.
pub fn warn(site: &str, rel: &[u8], what: &dyn std::fmt::Display) {
    eprintln!("sitewarden: warning: {site}: {}: {what}", crate::scan::show(if rel.is_empty() { b"." } else { rel }));
}

/// `sitewarden generate man|bash|zsh DIR`: the man page and completions,
/// made from the same clap definitions as the command line itself.
fn generate(what: &str, dir: &Path) -> Result<i32> {
    use clap::CommandFactory;
    std::fs::create_dir_all(dir)?;
    let mut cmd = Cli::command();
    match what {
        "man" => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
            out.extend_from_slice(MAN_EXTRA.as_bytes());
            std::fs::write(dir.join("sitewarden.1"), out)?;
            // One page per command, as the main page's list refers to them.
            for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
                let name = format!("sitewarden-{}", sub.get_name());
                let mut out = Vec::new();
                clap_mangen::Man::new(sub.clone().name(name.clone())).render(&mut out)?;
                std::fs::write(dir.join(format!("{name}.1")), out)?;
            }
        }
        "bash" => {
            let mut out = Vec::new();
            clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, "sitewarden", &mut out);
            std::fs::write(dir.join("sitewarden"), out)?;
        }
        "zsh" => {
            let mut out = Vec::new();
            clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, "sitewarden", &mut out);
            std::fs::write(dir.join("_sitewarden"), out)?;
        }
        other => bail!("generate: unknown '{other}' (man, bash, zsh)"),
    }
    Ok(OK)
}

/// The man page sections that clap does not write: files, config, exit
/// codes, signals.
const MAN_EXTRA: &str = include_str!("../../packaging/man-extra.roff");
