//! The command line, as the interface contract fixes it. Kept apart from
//! `main.rs` so the man page and shell completions can be generated from the
//! same definitions.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The command line: the global `-c CONFIG` and one command.
#[derive(Debug, Parser)]
#[command(
    name = "sitewarden",
    version,
    about = "Website integrity guard: alerts within seconds when the code of a site changes",
    long_about = None
)]
pub struct Cli {
    /// Config file [default: $SITEWARDEN_CONFIG, then /etc/sitewarden/sitewarden.yaml]
    #[arg(short = 'c', long = "config", global = true, value_name = "CONFIG")]
    pub config: Option<PathBuf>,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands of `sitewarden`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write CONFIG for a site (detects the stack without --profile)
    Init {
        /// Site profile (see `sitewarden profiles`)
        #[arg(long)]
        profile: Option<String>,
        /// The site's root directory
        #[arg(long, value_name = "DIR", required_unless_present = "discover")]
        root: Option<PathBuf>,
        /// Site name [default: the root's last component]
        #[arg(long)]
        name: Option<String>,
        /// Where alerts are mailed
        #[arg(long, value_name = "ADDR")]
        email: Option<String>,
        /// Overwrite an existing CONFIG instead of adding to it
        #[arg(long)]
        force: bool,
        /// Find the web roots of Apache, nginx and the hosting panels, and add the new ones
        #[arg(long, conflicts_with_all = ["root", "name", "profile", "force"])]
        discover: bool,
        /// With --discover: print the table and the YAML, write nothing
        #[arg(long, requires = "discover")]
        dry_run: bool,
        /// With --discover: look for panel layouts (/home/*/public_html, ...) below DIR
        #[arg(long, value_name = "DIR", requires = "discover")]
        panel_root: Option<PathBuf>,
    },
    /// List the built-in profiles, or print one
    Profiles {
        /// Profile to print
        name: Option<String>,
    },
    /// Validate the config and print the effective settings
    ConfigCheck,
    /// Build or rebuild the baseline (hashes every watched file)
    Baseline {
        /// Only this site
        #[arg(long)]
        site: Option<String>,
    },
    /// Compare now with the baseline: exit 0 = no drift, 1 = drift, 2 = error
    Check {
        /// Only this site
        #[arg(long)]
        site: Option<String>,
        /// Print alert records, one JSON object per line
        #[arg(long)]
        json: bool,
        /// Hash every file, ignoring the stat cache
        #[arg(long)]
        rehash: bool,
    },
    /// Check the tree against the published releases (or `reference:`) and
    /// the signature rules: tampered, foreign and missing files, signature
    /// matches; exit 0 = all match, 1 = some do not
    Verify {
        /// Only this site
        #[arg(long)]
        site: Option<String>,
        /// One JSON object per file that does not match
        #[arg(long)]
        json: bool,
        /// Hash every file, even where its stat matches the baseline
        #[arg(long)]
        rehash: bool,
    },
    /// Put the site back to the releases it runs: each tampered or missing
    /// release file gets the release's own file back, each foreign file in
    /// a release's folders is set aside; every step is a quarantine item
    /// (`quarantine restore ID` undoes it), then the site is verified
    /// again; exit as `verify`
    Repair {
        /// Only this site
        #[arg(long)]
        site: Option<String>,
        /// Say what would be done, change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Take the current state (all, or the given paths) into the baseline; changes no alert named are recorded (rule accepted-without-alert)
    Accept {
        /// Only this site
        #[arg(long)]
        site: Option<String>,
        /// Files or directories to accept (absolute or relative to the current directory)
        #[arg(value_name = "PATH")]
        paths: Vec<OsString>,
    },
    /// Show the change of PATH against the baseline
    Diff {
        /// The file to show (absolute or relative to the current directory)
        #[arg(value_name = "PATH")]
        path: OsString,
    },
    /// The daemon: realtime watch, periodic scans, alerts
    Run,
    /// Watch DIR in the foreground with a profile, no config file; alerts are printed
    Watch {
        /// Profile of the site
        #[arg(long, default_value = "generic-php")]
        profile: String,
        /// The site's root directory
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Run COMMAND (a CMS update), accept what it changed, send one summary
    Maintenance {
        /// The site being updated
        #[arg(long)]
        site: String,
        /// The command and its arguments, after `--`
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<OsString>,
    },
    /// Quarantined changes: list, show, restore, purge
    Quarantine {
        /// What to do with them.
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// Send a test alert through the configured email route
    TestEmail,
    /// Send a test alert through every route (mail, site owners, webhooks,
    /// syslog) now, and print each receiver's answer; exit 1 if one failed
    TestAlert,
    /// Write the man page or shell completions (for packaging)
    #[command(hide = true)]
    Generate {
        /// man, bash or zsh
        what: String,
        /// Where to write
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Sites, files watched, last scan, alerts waiting
    Status {
        /// One JSON object
        #[arg(long)]
        json: bool,
    },
}

/// The commands of `sitewarden quarantine`.
#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// List quarantined changes
    List {
        /// One JSON object per line
        #[arg(long)]
        json: bool,
    },
    /// Show one item: what was done, and the quarantined version against the baseline
    Show {
        /// Item id, as `sitewarden quarantine list` prints it
        id: String,
    },
    /// Put the quarantined version back and accept it (the change was legitimate)
    Restore {
        /// Item id, as `sitewarden quarantine list` prints it
        id: String,
    },
    /// Remove items older than AGE (e.g. 30d)
    Purge {
        /// An age with its unit (ms, s, m, h or d), e.g. 30d
        #[arg(long, value_name = "AGE")]
        older_than: String,
    },
}
