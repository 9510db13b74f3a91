//! sitewarden: a website integrity guard for web-hosting servers.
//!
//! Map of the crate, following the data flow (sources → detection → policy
//! → actions and sinks):
//! - [`model`]: the shared types: [`model::FileState`], [`model::Change`].
//! - [`config`]: `sitewarden.yaml`, parsed and validated once.
//! - [`profile`]: site profiles (built-in and from `/etc/sitewarden/profiles`).
//! - [`policy`]: pure classification of a path: watched, severity, nodiff,
//!   quarantine; globs compiled once.
//! - [`scan`]: the parallel, symlink-safe walker and hasher.
//! - [`detect`]: a scan compared with the baseline gives changes.
//! - [`baseline`]: the crash-safe store of accepted states (SQLite, WAL).
//! - [`content`]: earlier versions of text files, for diffs and restores.
//! - [`watch`]: the realtime source (inotify through notify).
//! - [`daemon`]: `run` and `watch`: coalescing, observing workers, the judge
//!   (the one owner of every decision), scheduled scans, reloads,
//!   supervision, systemd readiness.
//! - [`quarantine`]: evidence, restore/remove/keep, and the admin's hook.
//! - [`alert`]: the alert record and its sinks.
//! - [`cmd`]: the commands of the command line; [`cli`] defines it.
//! - [`util`]: byte-path display, timestamps, supervised threads, the
//!   test-only fault switch.

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
pub mod scan;
pub mod signatures;
pub mod util;
pub mod vendor;
pub mod watch;
