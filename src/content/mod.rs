//! The content store: earlier versions of text files, addressed by their
//! SHA-256, compressed, under `state_dir/content/`. It serves the diffs of
//! alerts and the restoring of quarantined files.
//!
//! Identical files (the same WordPress core in fifty sites) are stored once.
//! Never stored: files the policy marks `nodiff` (secrets), files over the
//! size limit, binary files, and anything that is not a regular file.
//! Blobs no baseline or alerted drift refers to any more are pruned.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use crate::util::bytes::{hex, parse_sha256};

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Files larger than this are hashed but not kept.
pub const MAX_SIZE: u64 = 1024 * 1024;

/// How much of the start of a file decides whether it is text.
const SNIFF: usize = 8192;

/// Earlier file contents under `state_dir/content/`, one gzip blob per SHA-256.
/// Clones share what they know is kept.
#[derive(Clone)]
pub struct ContentStore {
    dir: PathBuf,
    /// Blobs known to be on disk: the same WordPress core in forty sites
    /// is looked for once, not forty times. Forgotten by [`prune`]
    /// (`ContentStore::prune`) and when it grows past [`KEPT_MEMORY`].
    kept: Arc<Mutex<HashSet<[u8; 32]>>>,
}

/// Blobs remembered as kept, at most (32 bytes each).
const KEPT_MEMORY: usize = 1 << 20;

/// Text, as far as diffs are concerned: no NUL byte near the start.
pub fn is_text(bytes: &[u8]) -> bool {
    !bytes[..bytes.len().min(SNIFF)].contains(&0)
}

impl ContentStore {
    /// The store under `state_dir` (created on first write).
    pub fn new(state_dir: &Path) -> ContentStore {
        ContentStore { dir: state_dir.join("content"), kept: Arc::default() }
    }

    fn path(&self, sha: &[u8; 32]) -> PathBuf {
        let h = hex(sha);
        self.dir.join(&h[..2]).join(format!("{}.gz", &h[2..]))
    }

    /// Keeps `bytes` (whose SHA-256 is `sha`) if it is text within the size
    /// limit. Written to a temporary file and renamed, so a reader never
    /// sees half a blob.
    pub fn put(&self, sha: &[u8; 32], bytes: &[u8]) -> std::io::Result<bool> {
        if bytes.len() as u64 > MAX_SIZE || !is_text(bytes) {
            return Ok(false);
        }
        if self.known(sha) {
            return Ok(true);
        }
        let path = self.path(sha);
        if path.is_file() {
            self.remember(sha);
            return Ok(true);
        }
        let Some(parent) = path.parent() else {
            return Ok(false);
        };
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(parent)?;
        // Unique per writer: two hashing threads may keep the same content.
        let tmp = parent.join(format!(
            ".{}.{}.{}.tmp",
            hex(sha),
            std::process::id(),
            TMP_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&tmp)?;
        let mut enc = GzEncoder::new(file, flate2::Compression::fast());
        enc.write_all(bytes)?;
        enc.finish()?;
        if let Err(e) = std::fs::rename(&tmp, &path) {
            let _ = std::fs::remove_file(&tmp);
            // Another writer put the same content first: that is success.
            if !path.is_file() {
                return Err(e);
            }
        }
        self.remember(sha);
        Ok(true)
    }

    fn known(&self, sha: &[u8; 32]) -> bool {
        self.kept.lock().is_ok_and(|k| k.contains(sha))
    }

    fn remember(&self, sha: &[u8; 32]) {
        if let Ok(mut k) = self.kept.lock() {
            if k.len() >= KEPT_MEMORY {
                k.clear();
            }
            k.insert(*sha);
        }
    }

    /// The content with this hash, if kept (and intact).
    pub fn get(&self, sha: &[u8; 32]) -> Option<Vec<u8>> {
        let file = std::fs::File::open(self.path(sha)).ok()?;
        let mut out = Vec::new();
        GzDecoder::new(file).take(MAX_SIZE + 1).read_to_end(&mut out).ok()?;
        (crate::util::sha256(&out) == *sha).then_some(out)
    }

    /// Removes blobs not in `keep` and older than `grace` (a blob written
    /// just now may belong to a change not yet recorded). Returns how many
    /// were removed.
    pub fn prune(&self, keep: &HashSet<[u8; 32]>, grace: Duration) -> std::io::Result<usize> {
        // What is removed must be written again when it comes back.
        if let Ok(mut k) = self.kept.lock() {
            k.clear();
        }
        let mut removed = 0;
        let Ok(shards) = std::fs::read_dir(&self.dir) else {
            return Ok(0);
        };
        let now = SystemTime::now();
        for shard in shards.flatten() {
            let Ok(entries) = std::fs::read_dir(shard.path()) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                let full = format!("{}{}", shard.file_name().to_string_lossy(), name.trim_end_matches(".gz"));
                let sha = parse_sha256(&full);
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .map(|t| now.duration_since(t).unwrap_or_default() > grace)
                    .unwrap_or(true);
                if old && sha.is_none_or(|s| !keep.contains(&s)) {
                    std::fs::remove_file(e.path())?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// How long a blob nobody refers to is kept (it may belong to a change
/// being recorded right now).
pub const PRUNE_GRACE: Duration = Duration::from_secs(3600);

/// Prunes what neither the baseline nor the alerted drift refers to; logs
/// and goes on on error (pruning is housekeeping).
pub fn prune_unreferenced(content: &ContentStore, store: &crate::baseline::Store) {
    match store.referenced_hashes() {
        Ok(keep) => match content.prune(&keep, PRUNE_GRACE) {
            Ok(0) => {}
            Ok(n) => tracing::info!("content store: pruned {n} earlier versions no longer referenced"),
            Err(e) => tracing::warn!("content store: pruning failed: {e}"),
        },
        Err(e) => tracing::warn!("content store: pruning skipped: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::sha256;

    #[test]
    fn stores_text_once_and_refuses_binary() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::new(dir.path());
        let text = b"<?php echo 1;\n".to_vec();
        let sha = sha256(&text);
        assert!(store.put(&sha, &text).unwrap());
        assert!(store.put(&sha, &text).unwrap());
        assert_eq!(store.get(&sha).unwrap(), text);
        let bin = vec![0u8, 1, 2];
        assert!(!store.put(&sha256(&bin), &bin).unwrap());
        assert!(store.get(&sha256(&bin)).is_none());
        // Pruning keeps what is referenced.
        assert_eq!(store.prune(&HashSet::from([sha]), Duration::ZERO).unwrap(), 0);
        assert_eq!(store.prune(&HashSet::new(), Duration::ZERO).unwrap(), 1);
        assert!(store.get(&sha).is_none());
    }
}
