//! The JSON-lines alert log (`alerts.log`): one record per line, appended
//! and flushed to disk before an alert counts as delivered.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::AlertRecord;

/// The alert log cannot be opened or written.
#[derive(Debug, thiserror::Error)]
#[error("alert log {path}: {source}")]
pub struct LogError {
    /// The log file.
    pub path: PathBuf,
    /// Why not.
    pub source: std::io::Error,
}

/// The alert log, open for appending.
pub struct AlertLog {
    path: PathBuf,
    file: File,
    format: super::LogFormat,
}

impl AlertLog {
    /// Opens (creating) the log for appending; its folder is made 0750.
    pub fn open(path: &Path, format: super::LogFormat) -> Result<AlertLog, LogError> {
        let err = |source| LogError { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent() {
            if !dir.is_dir() {
                std::fs::DirBuilder::new().recursive(true).mode(0o750).create(dir).map_err(err)?;
            }
        }
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(path)
            .map_err(err)?;
        Ok(AlertLog { path: path.to_path_buf(), file, format })
    }

    /// Appends records and waits until they are on disk.
    pub fn append(&mut self, records: &[AlertRecord]) -> Result<(), LogError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = String::new();
        for r in records {
            match self.format {
                super::LogFormat::Json => buf.push_str(&r.to_json()),
                super::LogFormat::Ecs => buf.push_str(&super::ecs::document(r).to_string()),
            }
            buf.push('\n');
        }
        let err = |source| LogError { path: self.path.clone(), source };
        self.file.write_all(buf.as_bytes()).map_err(err)?;
        self.file.sync_data().map_err(err)
    }
}
