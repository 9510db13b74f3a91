//! sitewarden: a website integrity guard for web-hosting servers.
//!
//! Map of the crate, bottom layer first: each module uses only those above
//! it in this list (`layers.py` checks there is no loop).
//! - [`util`]: byte-path display, timestamps, supervised threads and their
//!   pulses, key files, the test-only fault switch.
//! - [`model`]: plain data: [`model::FileState`], [`model::Change`], the
//!   writer ([`model::Actor`]), path helpers, the settings the config holds
//!   for the parts it sets up.
//! - [`policy`]: pure classification of a path: watched, severity, nodiff,
//!   quarantine; globs compiled once; credentials by content.
//! - [`profile`]: site profiles (built-in and from `/etc/sitewarden/profiles`).
//! - [`baseline`]: the crash-safe store of accepted states (SQLite, WAL).
//! - [`content`]: earlier versions of text files, for diffs and restores.
//! - [`scan`]: the parallel, symlink-safe walker and hasher.
//! - [`signatures`]: the YARA-X rules and the scanning of contents.
//! - [`releases`]: published releases (checksums, archives) as verdicts.
//! - [`config`]: `sitewarden.yaml`, parsed and validated once.
//! - [`detect`]: a scan compared with the baseline gives changes.
//! - [`watch`]: the realtime sources: fanotify, and inotify where it
//!   cannot be had.
//! - [`alert`]: the alert record and its sinks.
//! - [`quarantine`]: evidence, restore/remove/keep, and the admin's hook.
//! - [`daemon`]: `run` and `watch`: coalescing, observing workers, the judge
//!   (the one owner of every decision), scheduled scans, reloads,
//!   supervision, systemd readiness.
//! - [`cmd`]: the commands of the command line; [`cli`] defines it.

// Nothing that comes from outside (a file, a config, a reply) may panic the
// daemon: outside tests, unwrap/expect are refused by clippy.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// Every public item says what it is for.
#![warn(missing_docs)]

pub mod alert;
pub mod baseline;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod content;
pub mod daemon;
pub mod detect;
pub mod model;
pub mod policy;
pub mod profile;
pub mod quarantine;
pub mod releases;
pub mod scan;
pub mod signatures;
pub mod util;
pub mod watch;
