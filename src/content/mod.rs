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
    /// Contents known to be secrets (of a `nodiff` file, or holding a
    /// credential): never stored, never shown, whatever name a copy has.
    secret: Arc<Mutex<HashSet<[u8; 32]>>>,
    /// Bytes on disk, once counted ([`ContentStore::size`]); kept up to
    /// date by writes and prunes, so the cap costs no walk per write.
    bytes: Arc<Mutex<Option<u64>>>,
}

/// Secret contents remembered, at most (a server has few secret files;
/// past this the credential patterns still decide).
const SECRET_MEMORY: usize = 100_000;

/// Blobs remembered as kept, at most (32 bytes each).
const KEPT_MEMORY: usize = 1 << 20;

/// Text, as far as diffs are concerned: no NUL byte near the start.
pub fn is_text(bytes: &[u8]) -> bool {
    !bytes[..bytes.len().min(SNIFF)].contains(&0)
}

impl ContentStore {
    /// The store under `state_dir` (created on first write).
    pub fn new(state_dir: &Path) -> ContentStore {
        ContentStore {
            dir: state_dir.join("content"),
            kept: Arc::default(),
            secret: Arc::default(),
            bytes: Arc::default(),
        }
    }

    fn path(&self, sha: &[u8; 32]) -> PathBuf {
        let h = hex(sha);
        self.dir.join(&h[..2]).join(format!("{}.gz", &h[2..]))
    }

    /// Keeps `bytes` (whose SHA-256 is `sha`) if it is text within the size
    /// limit. Written to a temporary file and renamed, so a reader never
    /// sees half a blob.
    pub fn put(&self, sha: &[u8; 32], bytes: &[u8]) -> std::io::Result<bool> {
        if bytes.len() as u64 > MAX_SIZE || !is_text(bytes) || self.is_secret(sha) {
            return Ok(false);
        }
        if self.known(sha) {
            return Ok(true);
        }
        let path = self.path(sha);
        if path.is_file() {
            // Used again: young again, so a prune's grace covers it.
            if let Ok(f) = std::fs::File::options().write(true).open(&path) {
                let _ = f.set_modified(SystemTime::now());
            }
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
        let written = enc.finish()?.metadata().map(|m| m.len()).unwrap_or(0);
        if let Err(e) = std::fs::rename(&tmp, &path) {
            let _ = std::fs::remove_file(&tmp);
            // Another writer put the same content first: that is success.
            if !path.is_file() {
                return Err(e);
            }
        } else {
            self.count(written as i64);
        }
        self.remember(sha);
        Ok(true)
    }

    fn count(&self, delta: i64) {
        if let Ok(mut b) = self.bytes.lock() {
            if let Some(n) = b.as_mut() {
                *n = n.saturating_add_signed(delta);
            }
        }
    }

    /// Bytes the store takes on disk (counted once, then kept up to date).
    pub fn size(&self) -> u64 {
        if let Some(n) = self.bytes.lock().ok().and_then(|b| *b) {
            return n;
        }
        let n = self.blobs().iter().map(|b| b.len).sum();
        if let Ok(mut b) = self.bytes.lock() {
            *b = Some(n);
        }
        n
    }

    /// Every blob on disk: its path, hash (if its name is one), size and age.
    fn blobs(&self) -> Vec<Blob> {
        let mut out = Vec::new();
        let Ok(shards) = std::fs::read_dir(&self.dir) else { return out };
        for shard in shards.flatten() {
            let Ok(entries) = std::fs::read_dir(shard.path()) else { continue };
            for e in entries.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                let full = format!("{}{}", shard.file_name().to_string_lossy(), name.trim_end_matches(".gz"));
                let Ok(meta) = e.metadata() else { continue };
                out.push(Blob {
                    path: e.path(),
                    sha: parse_sha256(&full),
                    len: meta.len(),
                    modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                });
            }
        }
        out
    }

    /// Keeps the store under `cap` bytes: versions nothing refers to go
    /// first, oldest first; then, if that is not enough, the oldest of the
    /// rest (their diffs lose the earlier side, the disk stays bounded).
    /// Returns how many blobs were removed.
    pub fn cap(&self, keep: &HashSet<[u8; 32]>, cap: u64) -> std::io::Result<usize> {
        let mut total = self.size();
        if total <= cap {
            return Ok(0);
        }
        let mut blobs = self.blobs();
        // Unreferenced first, then oldest first.
        blobs.sort_by_key(|b| (b.sha.is_some_and(|s| keep.contains(&s)), b.modified));
        let mut removed = 0;
        // Down to 90% of the cap, so that the next writes do not prune again.
        let target = cap - cap / 10;
        for b in blobs {
            if total <= target {
                break;
            }
            if let Err(e) = std::fs::remove_file(&b.path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(e);
                }
            }
            total = total.saturating_sub(b.len);
            removed += 1;
            if let (Some(sha), Ok(mut k)) = (b.sha, self.kept.lock()) {
                k.remove(&sha);
            }
        }
        if let Ok(mut b) = self.bytes.lock() {
            *b = Some(total);
        }
        Ok(removed)
    }

    /// Keeps `bytes` read from a site file unless they are a secret: known
    /// as one, or holding a credential (`secrets`), which is then
    /// remembered. Decided before any byte is written.
    pub fn keep(&self, sha: &[u8; 32], bytes: &[u8], secrets: &crate::policy::secrets::Secrets) {
        if self.known(sha) || self.is_secret(sha) {
            return;
        }
        match secrets.scope(bytes) {
            Some(crate::policy::secrets::Scope::File) => {
                self.mark_secret(sha);
                return;
            }
            // A credential pasted into ordinary code: the diff shows the
            // line redacted, but no copy of it is kept.
            Some(crate::policy::secrets::Scope::Line) => return,
            None => {}
        }
        if let Err(e) = self.put(sha, bytes) {
            tracing::warn!("content store: {e}");
        }
    }

    /// Remembers `sha` as the content of a secret.
    pub fn mark_secret(&self, sha: &[u8; 32]) {
        if let Ok(mut s) = self.secret.lock() {
            if s.len() < SECRET_MEMORY {
                s.insert(*sha);
            }
        }
    }

    /// Is `sha` the content of a known secret?
    pub fn is_secret(&self, sha: &[u8; 32]) -> bool {
        self.secret.lock().is_ok_and(|s| s.contains(sha))
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
        // Counted again after.
        if let Ok(mut b) = self.bytes.lock() {
            *b = None;
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
                    // What is removed must be written again when it comes back.
                    if let (Some(s), Ok(mut k)) = (sha, self.kept.lock()) {
                        k.remove(&s);
                    }
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// One blob on disk.
struct Blob {
    path: PathBuf,
    sha: Option<[u8; 32]>,
    len: u64,
    modified: SystemTime,
}

/// How long a blob nobody refers to is kept (it may belong to a change
/// being recorded right now).
pub const PRUNE_GRACE: Duration = Duration::from_secs(3600);

/// Keeps the content store under `cap` bytes (see [`ContentStore::cap`]);
/// logs and goes on on error.
pub fn enforce_cap(content: &ContentStore, store: &crate::baseline::Store, cap: u64) {
    if content.size() <= cap {
        return;
    }
    match store
        .referenced_hashes()
        .map_err(|e| e.to_string())
        .and_then(|keep| content.cap(&keep, cap).map_err(|e| e.to_string()))
    {
        Ok(n) => tracing::info!(
            "content store over its cap of {} bytes: removed {n} earlier versions (now {} bytes)",
            cap,
            content.size()
        ),
        Err(e) => tracing::warn!("content store: keeping it under its cap failed: {e}"),
    }
}

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
