//! Known-good: manifests of what a site's code should be, and the verdict
//! on a change of a file they cover. A manifest lists path → (size,
//! SHA-256) for one package version.
//!
//! The source here is a site's `reference:` — a directory or a `.tar.gz`
//! release archive of what was deployed (any stack: Drupal, Joomla,
//! Magento, Laravel, static). A file the manifest lists and that now
//! differs is `tampered`; a file in one of the manifest's directories that
//! the manifest does not list is `foreign`; a file that matches is
//! `vendor`. Both of the first are `critical`.
//!
//! Bounded: at most [`MAX_FILES`] files and [`MAX_BYTES`] of content are
//! read from a reference (a hostile or mistaken archive is refused with a
//! clear error, never held in memory), names are never followed through
//! symlinks, and archive entries that would escape the tree (`..`,
//! absolute) are refused.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{FileState, FileType, RelPath};

pub mod http;
pub mod wordpress;

/// The published hashes of one file (a publisher may give several, or
/// only MD5).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hashes {
    /// SHA-256 values, any of which is the file.
    pub sha256: Vec<[u8; 32]>,
    /// MD5 values (WordPress core's checksums API gives only these).
    pub md5: Vec<[u8; 16]>,
}

/// Files a reference may hold.
pub const MAX_FILES: usize = 500_000;
/// Bytes of content a reference may hold (all files together).
pub const MAX_BYTES: u64 = 4 << 30;

/// Reading a reference failed.
#[derive(Debug, thiserror::Error)]
pub enum VendorError {
    /// The reference could not be read.
    #[error("reference {path}: {source}")]
    Read {
        /// The reference.
        path: PathBuf,
        /// What failed.
        source: ManifestError,
    },
}

/// A manifest could not be made from a reference, an archive or a
/// publisher's answer.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Over [`MAX_FILES`] files or [`MAX_BYTES`] of content.
    #[error("more than {MAX_FILES} files or {} GiB: refused", MAX_BYTES >> 30)]
    TooMany,
    /// An archive over [`MAX_ARCHIVE_BYTES`] unpacked.
    #[error("more than {} MiB unpacked: refused", MAX_ARCHIVE_BYTES >> 20)]
    TooLarge,
    /// A name that would land outside the tree (`..`, absolute).
    #[error("an entry escapes the archive: {0}")]
    Escapes(String),
    /// Nothing in it.
    #[error("an empty archive")]
    Empty,
    /// Not the release the published checksums describe.
    #[error("{bad} files differ from the published checksums, {first} first")]
    Differs {
        /// How many files differ or are missing.
        bad: usize,
        /// The first of them.
        first: String,
    },
    /// Not a zip archive, or a broken one.
    #[error("not a zip archive: {0}")]
    Zip(String),
    /// A file or an entry could not be read.
    #[error("{what}: {source}")]
    Io {
        /// The file or entry.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// A reference of another kind.
    #[error("a reference is a directory, a .zip or a .tar.gz archive")]
    Kind,
    /// A publisher's answer that is not a checksum list.
    #[error("{0}")]
    Answer(String),
}

/// [`ManifestError::Io`] for `what`.
fn io_error(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> ManifestError {
    move |source| ManifestError::Io { what: what.to_string(), source }
}

/// Where a changed file stands against the manifests (the record's
/// `verdict.origin`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Matches the release.
    Vendor,
    /// A file of the release that differs from it (or is missing).
    Tampered,
    /// In the release's directories, but not in the release.
    Foreign,
    /// No manifest covers it.
    Unknown,
}

impl Origin {
    /// Its name in the record (`vendor`, `tampered`, `foreign`, `unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Vendor => "vendor",
            Origin::Tampered => "tampered",
            Origin::Foreign => "foreign",
            Origin::Unknown => "unknown",
        }
    }
}

/// The record's `verdict`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// How the file stands.
    pub origin: Origin,
    /// Which package (`reference` for a site's own reference).
    pub package: String,
    /// Its version (for a reference: its path).
    pub version: String,
}

/// One package version: what its files are.
#[derive(Debug, Default)]
pub struct Manifest {
    /// The package's name (`reference`, `wordpress`, `plugin:SLUG`).
    pub package: String,
    /// Its version.
    pub version: String,
    files: HashMap<RelPath, Hashes>,
    dirs: HashSet<RelPath>,
    /// Where an unlisted file is `foreign` (`None`: in any of `dirs`).
    foreign_in: Option<Vec<RelPath>>,
    /// An unlisted `.php` file at the root is `foreign` too (core's
    /// release: WP-CLI's `--include-root`), `wp-config.php` aside.
    foreign_root_php: bool,
    /// Where the release's own files can be read (a diff against the
    /// pristine file, a repair).
    pristine: Option<Pristine>,
}

/// Where a release's files are.
#[derive(Debug, Clone)]
enum Pristine {
    /// A reference directory (site paths below it).
    Dir(PathBuf),
    /// A `.zip` release archive: its entry for a site path is `top` + the
    /// path with `strip` taken off.
    Zip { path: PathBuf, top: Vec<u8>, strip: RelPath },
}

/// Archive entries read at most (a zip bomb is refused, never unpacked).
pub const MAX_ARCHIVE_BYTES: u64 = 1 << 30;
/// A pristine file is read for a diff or a repair up to this size.
pub const MAX_PRISTINE: u64 = 16 << 20;

/// One regular file of a zip archive: its name (cleaned), size, SHA-256 and
/// MD5 (hashed in one read).
type ZipEntry = (RelPath, u64, [u8; 32], [u8; 16]);

impl Manifest {
    /// The manifest of a reference: a directory, or a `.tar.gz` / `.tgz`
    /// archive (a single top-level folder, as release archives have, is
    /// taken as the root).
    pub fn reference(path: &Path) -> Result<Manifest, VendorError> {
        let err = |source: ManifestError| VendorError::Read { path: path.to_path_buf(), source };
        let meta = std::fs::metadata(path).map_err(io_error(path.display())).map_err(err)?;
        let mut m =
            Manifest { package: "reference".to_string(), version: path.display().to_string(), ..Manifest::default() };
        if meta.is_dir() {
            m.add_dir(path).map_err(err)?;
            m.pristine = Some(Pristine::Dir(path.to_path_buf()));
        } else if path.as_os_str().as_bytes().ends_with(b".zip") {
            let (entries, top) = zip_entries(path).map_err(err)?;
            let mut bytes = 0;
            for (rel, size, sha, _) in entries {
                m.insert(rel, size, sha, &mut bytes).map_err(err)?;
            }
            m.pristine = Some(Pristine::Zip { path: path.to_path_buf(), top, strip: Vec::new() });
        } else {
            let name = path.as_os_str().as_bytes();
            if !(name.ends_with(b".tar.gz") || name.ends_with(b".tgz")) {
                return Err(err(ManifestError::Kind));
            }
            m.add_tar_gz(path).map_err(err)?;
            m.strip_single_top();
        }
        Ok(m)
    }

    /// The manifest of a release archive (`.zip`) of package `package` at
    /// `version`, whose files go below `dir` in a site.
    pub fn from_zip(path: &Path, package: &str, version: &str, dir: &[u8]) -> Result<Manifest, ManifestError> {
        let (entries, top) = indexed_zip_entries(path)?;
        let mut m = Manifest { package: package.to_string(), version: version.to_string(), ..Manifest::default() };
        let mut bytes = 0;
        for (rel, size, sha, _) in entries {
            m.insert(below(dir, &rel), size, sha, &mut bytes)?;
        }
        if m.is_empty() {
            return Err(ManifestError::Empty);
        }
        m.pristine = Some(Pristine::Zip { path: path.to_path_buf(), top, strip: dir.to_vec() });
        Ok(m)
    }

    /// Takes the release archive at `path` as this (published checksums)
    /// manifest's source of SHA-256 values and pristine files, once it is
    /// shown to be the same release: every listed file is in it, with a
    /// listed hash. An archive that differs is refused, whole.
    pub fn adopt_archive(&mut self, path: &Path, dir: &[u8]) -> Result<(), ManifestError> {
        let (entries, top) = indexed_zip_entries(path)?;
        let by_rel: HashMap<RelPath, ([u8; 32], [u8; 16])> =
            entries.into_iter().map(|(rel, _, sha, md5)| (below(dir, &rel), (sha, md5))).collect();
        let mut bad = 0usize;
        let mut first = None;
        for (rel, h) in &self.files {
            let ok = by_rel.get(rel).is_some_and(|(sha, md5)| h.sha256.contains(sha) || h.md5.contains(md5));
            if !ok {
                bad += 1;
                first.get_or_insert_with(|| String::from_utf8_lossy(rel).into_owned());
            }
        }
        if let Some(first) = first {
            return Err(ManifestError::Differs { bad, first });
        }
        for (rel, h) in self.files.iter_mut() {
            if let Some((sha, _)) = by_rel.get(rel) {
                if !h.sha256.contains(sha) {
                    h.sha256.push(*sha);
                }
            }
        }
        self.pristine = Some(Pristine::Zip { path: path.to_path_buf(), top, strip: dir.to_vec() });
        Ok(())
    }

    /// The release's own content of site path `rel`, when the manifest
    /// knows where to read it and it is a file of the release.
    pub fn pristine(&self, rel: &[u8]) -> Option<Vec<u8>> {
        let h = self.files.get(rel)?;
        let bytes = match self.pristine.as_ref()? {
            Pristine::Dir(root) => {
                let (dir, name) = crate::scan::file::open_parent(root, rel).ok()??;
                let (file, _) = crate::scan::file::open_regular_at(std::os::fd::AsFd::as_fd(&dir), &name).ok()?;
                let mut buf = Vec::new();
                file.take(MAX_PRISTINE + 1).read_to_end(&mut buf).ok()?;
                buf
            }
            Pristine::Zip { path, top, strip } => {
                let inner =
                    if strip.is_empty() { rel } else { rel.strip_prefix(strip.as_slice())?.strip_prefix(b"/")? };
                let mut name = top.clone();
                name.extend_from_slice(inner);
                let mut zip = zip::ZipArchive::new(std::fs::File::open(path).ok()?).ok()?;
                let entry = zip.by_name(std::str::from_utf8(&name).ok()?).ok()?;
                let mut buf = Vec::new();
                entry.take(MAX_PRISTINE + 1).read_to_end(&mut buf).ok()?;
                buf
            }
        };
        // Only what the manifest vouches for.
        let sha: [u8; 32] = Sha256::digest(&bytes).into();
        (bytes.len() as u64 <= MAX_PRISTINE && (h.sha256.contains(&sha) || h.sha256.is_empty())).then_some(bytes)
    }

    /// Number of files listed.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Lists no file.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    fn insert(&mut self, rel: RelPath, size: u64, sha: [u8; 32], bytes: &mut u64) -> Result<(), ManifestError> {
        *bytes += size;
        self.insert_hashes(rel, Hashes { sha256: vec![sha], md5: Vec::new() }, bytes)
    }

    pub(crate) fn insert_hashes(&mut self, rel: RelPath, hashes: Hashes, bytes: &mut u64) -> Result<(), ManifestError> {
        if self.files.len() >= MAX_FILES || *bytes > MAX_BYTES {
            return Err(ManifestError::TooMany);
        }
        let mut dir = parent(&rel).to_vec();
        loop {
            if !self.dirs.insert(dir.clone()) || dir.is_empty() {
                break;
            }
            dir = parent(&dir).to_vec();
        }
        self.files.insert(rel, hashes);
        Ok(())
    }

    fn add_dir(&mut self, root: &Path) -> Result<(), ManifestError> {
        let mut bytes = 0u64;
        let mut stack: Vec<(PathBuf, RelPath)> = vec![(root.to_path_buf(), Vec::new())];
        while let Some((dir, rel)) = stack.pop() {
            for entry in std::fs::read_dir(&dir).map_err(io_error(dir.display()))? {
                let entry = entry.map_err(io_error(dir.display()))?;
                let name = entry.file_name();
                let child = crate::scan::walk::join(&rel, name.as_bytes());
                let path = entry.path();
                // Never through a symlink: file_type() is the entry's own.
                let ty = entry.file_type().map_err(io_error(path.display()))?;
                if ty.is_dir() {
                    stack.push((path, child));
                } else if ty.is_file() {
                    let mut f = std::fs::File::open(&path).map_err(io_error(path.display()))?;
                    let (size, sha) = hash(&mut f).map_err(io_error(path.display()))?;
                    self.insert(child, size, sha, &mut bytes)?;
                }
            }
        }
        Ok(())
    }

    fn add_tar_gz(&mut self, path: &Path) -> Result<(), ManifestError> {
        let file = std::fs::File::open(path).map_err(io_error(path.display()))?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut bytes = 0u64;
        for entry in archive.entries().map_err(io_error(path.display()))? {
            let mut entry = entry.map_err(io_error(path.display()))?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let name = entry.path_bytes().into_owned();
            let shown = || String::from_utf8_lossy(&name).into_owned();
            let rel = clean(&name).ok_or_else(|| ManifestError::Escapes(shown()))?;
            let (size, sha) = hash(&mut entry).map_err(io_error(shown()))?;
            self.insert(rel, size, sha, &mut bytes)?;
        }
        Ok(())
    }

    /// `wordpress/wp-login.php` → `wp-login.php` when every file is below
    /// one folder.
    fn strip_single_top(&mut self) {
        let mut tops = self.files.keys().map(|k| k.split(|&b| b == b'/').next().unwrap_or(&[]));
        let Some(first) = tops.next().map(<[u8]>::to_vec) else { return };
        if self.files.keys().any(|k| !k.starts_with(&first) || k.len() == first.len() || k[first.len()] != b'/') {
            return;
        }
        let cut = first.len() + 1;
        let files = std::mem::take(&mut self.files);
        self.dirs.clear();
        let mut bytes = 0;
        for (k, h) in files {
            let _ = self.insert_hashes(k[cut..].to_vec(), h, &mut bytes);
        }
    }

    /// The verdict on path `rel` now in state `after` (`None`: absent);
    /// `None` when the manifest does not cover the path. `md5`: the file's
    /// MD5, asked for only when the publisher gave nothing else.
    pub fn judge(
        &self,
        rel: &[u8],
        after: Option<&FileState>,
        md5: impl FnOnce() -> Option<[u8; 16]>,
    ) -> Option<Origin> {
        if let Some(h) = self.files.get(rel) {
            let Some(a) = after.filter(|a| a.kind == FileType::File) else { return Some(Origin::Tampered) };
            let by_sha = a.sha256.is_some_and(|s| h.sha256.contains(&s));
            let by_md5 = !by_sha && h.sha256.is_empty() && md5().is_some_and(|m| h.md5.contains(&m));
            return Some(if by_sha || by_md5 { Origin::Vendor } else { Origin::Tampered });
        }
        let regular = after.is_some_and(|a| a.kind == FileType::File);
        // Below a package's own folders, anywhere (a new subfolder too);
        // else in one of the release's folders.
        let within =
            match &self.foreign_in {
                Some(roots) => roots.iter().any(|r| crate::model::is_under(rel, r)),
                None => self.dirs.contains(parent(rel)),
            } || (self.foreign_root_php && !rel.contains(&b'/') && rel.ends_with(b".php") && rel != b"wp-config.php");
        (regular && within).then_some(Origin::Foreign)
    }

    /// The record's verdict for `origin`.
    pub fn verdict(&self, origin: Origin) -> Verdict {
        Verdict { origin, package: self.package.clone(), version: self.version.clone() }
    }

    /// An unlisted `.php` file at the root (`wp-config.php` aside) is
    /// `foreign` too.
    pub fn foreign_also_at_root(&mut self) {
        self.foreign_root_php = true;
    }

    /// Unlisted files are `foreign` only below these directories (core's
    /// own folders, not the site root where `wp-config.php` lives).
    pub fn foreign_only_in(&mut self, dirs: Vec<RelPath>) {
        self.foreign_in = Some(dirs);
    }

    /// Is `rel` in the package's tree: listed, or where an unlisted file
    /// would be `foreign` (a new folder of the package included)?
    pub fn covers(&self, rel: &[u8]) -> bool {
        self.files.contains_key(rel)
            || match &self.foreign_in {
                Some(roots) => roots.iter().any(|r| crate::model::is_under(rel, r)),
                None => self.dirs.contains(parent(rel)),
            }
    }

    /// Does the release have a file `rel`?
    pub fn lists(&self, rel: &[u8]) -> bool {
        self.files.contains_key(rel)
    }

    /// Paths the manifest lists (for `verify`: what is missing).
    pub fn paths(&self) -> impl Iterator<Item = &RelPath> {
        self.files.keys()
    }
}

/// `dir/rel` (`rel` when `dir` is the root).
fn below(dir: &[u8], rel: &[u8]) -> RelPath {
    if dir.is_empty() {
        return rel.to_vec();
    }
    let mut out = dir.to_vec();
    out.push(b'/');
    out.extend_from_slice(rel);
    out
}

/// [`zip_entries`] of an archive of the cache, from the index kept beside
/// it (`ARCHIVE.index`) when there is one no older than the archive: an
/// archive is unpacked and hashed once, not at every start.
fn indexed_zip_entries(path: &Path) -> Result<(Vec<ZipEntry>, Vec<u8>), ManifestError> {
    #[derive(Serialize, Deserialize)]
    struct Index {
        top: String,
        files: Vec<(String, u64, String, String)>,
    }
    let index = path.with_extension("index");
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if mtime(&index).is_some_and(|i| mtime(path).is_some_and(|z| i >= z)) {
        let parsed = std::fs::read(&index).ok().and_then(|b| serde_json::from_slice::<Index>(&b).ok());
        let entries = parsed.as_ref().and_then(|ix| {
            ix.files
                .iter()
                .map(|(rel, size, sha, md5)| {
                    let sha: [u8; 32] = crate::util::bytes::unhex(sha)?.try_into().ok()?;
                    let md5: [u8; 16] = crate::util::bytes::unhex(md5)?.try_into().ok()?;
                    Some((rel.as_bytes().to_vec(), *size, sha, md5))
                })
                .collect::<Option<Vec<ZipEntry>>>()
        });
        if let (Some(entries), Some(ix)) = (entries, parsed) {
            return Ok((entries, ix.top.into_bytes()));
        }
    }
    let (entries, top) = zip_entries(path)?;
    // Names that are not UTF-8 cannot be asked for by name: not indexed.
    let files: Option<Vec<_>> = entries
        .iter()
        .map(|(rel, size, sha, md5)| {
            Some((
                String::from_utf8(rel.clone()).ok()?,
                *size,
                crate::util::bytes::hex_bytes(sha),
                crate::util::bytes::hex_bytes(md5),
            ))
        })
        .collect();
    if let (Some(files), Ok(top_s)) = (files, String::from_utf8(top.clone())) {
        if let Ok(text) = serde_json::to_vec(&Index { top: top_s, files }) {
            let tmp = path.with_extension("index-tmp");
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(&tmp, &index);
            }
        }
    }
    Ok((entries, top))
}

/// The regular files of a zip archive, hashed, with the single top-level
/// folder release archives have taken off (and returned, with its slash).
/// Bounded: [`MAX_FILES`] entries, [`MAX_ARCHIVE_BYTES`] unpacked; a name
/// that would escape is refused.
fn zip_entries(path: &Path) -> Result<(Vec<ZipEntry>, Vec<u8>), ManifestError> {
    use md5::Md5;
    let file = std::fs::File::open(path).map_err(io_error(path.display()))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| ManifestError::Zip(e.to_string()))?;
    if zip.len() > MAX_FILES {
        return Err(ManifestError::TooMany);
    }
    let mut out = Vec::new();
    let mut total = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    for i in 0..zip.len() {
        let entry = zip.by_index(i).map_err(|e| ManifestError::Zip(e.to_string()))?;
        if !entry.is_file() || entry.is_symlink() {
            continue;
        }
        let rel = clean(entry.name_raw())
            .ok_or_else(|| ManifestError::Escapes(String::from_utf8_lossy(entry.name_raw()).into_owned()))?;
        let (mut s, mut m) = (Sha256::new(), Md5::new());
        let mut n = 0u64;
        // Reads past the cap are refused, whatever the header claims.
        let mut r = entry.take(MAX_ARCHIVE_BYTES - total + 1);
        loop {
            let k = r.read(&mut buf).map_err(io_error(String::from_utf8_lossy(&rel)))?;
            if k == 0 {
                break;
            }
            s.update(&buf[..k]);
            m.update(&buf[..k]);
            n += k as u64;
        }
        total += n;
        if total > MAX_ARCHIVE_BYTES {
            return Err(ManifestError::TooLarge);
        }
        out.push((rel, n, s.finalize().into(), m.finalize().into()));
    }
    // The single top folder (`wordpress/`, `akismet/`), when there is one.
    let first_top = out.first().and_then(|(r, ..)| r.iter().position(|&b| b == b'/').map(|i| r[..=i].to_vec()));
    let top = first_top.filter(|t| out.iter().all(|(r, ..)| r.starts_with(t))).unwrap_or_default();
    for e in &mut out {
        e.0.drain(..top.len());
    }
    Ok((out, top))
}

/// Size and SHA-256 of a stream.
fn hash(r: &mut impl Read) -> std::io::Result<(u64, [u8; 32])> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        let k = r.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, h.finalize().into()))
}

fn parent(rel: &[u8]) -> &[u8] {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => &rel[..i],
        None => b"",
    }
}

/// An archive name as a relative path: `./` and empty components dropped;
/// `None` for `..` or an absolute name.
pub(crate) fn clean(name: &[u8]) -> Option<RelPath> {
    if name.starts_with(b"/") {
        return None;
    }
    let mut out: Vec<&[u8]> = Vec::new();
    for part in name.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return None,
            p => out.push(p),
        }
    }
    (!out.is_empty()).then(|| out.join(&b'/'))
}

/// The MD5 of the regular file `rel` below `root`, if it is still in
/// `state` (its SHA-256 is checked in the same read; at most 64 MiB; never
/// through a symlink).
pub fn live_md5(root: &Path, rel: &[u8], state: Option<&FileState>) -> Option<[u8; 16]> {
    let sha = state?.sha256?;
    let (got, md5) = live_hashes(root, rel)?;
    (got == sha).then_some(md5)
}

/// The SHA-256 and MD5 of the regular file `rel` under `root` (opened
/// through no symlink; none for a file over 64 MiB or with other links).
pub fn live_hashes(root: &Path, rel: &[u8]) -> Option<([u8; 32], [u8; 16])> {
    use md5::Md5;
    let (dir, name) = crate::scan::file::open_parent(root, rel).ok()??;
    let (file, st) = crate::scan::file::open_regular_at(std::os::fd::AsFd::as_fd(&dir), &name).ok()?;
    if st.st_size > 64 << 20 || st.st_nlink > 1 {
        return None;
    }
    let (mut s, mut m) = (Sha256::new(), Md5::new());
    let mut buf = vec![0u8; 64 * 1024];
    let mut r = file.take(64 << 20);
    loop {
        let k = r.read(&mut buf).ok()?;
        if k == 0 {
            break;
        }
        s.update(&buf[..k]);
        m.update(&buf[..k]);
    }
    Some((s.finalize().into(), m.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(sha: [u8; 32]) -> FileState {
        FileState::file_for_test(sha)
    }

    #[test]
    fn archive_names_never_escape() {
        assert_eq!(clean(b"./wordpress/wp-login.php"), Some(b"wordpress/wp-login.php".to_vec()));
        assert_eq!(clean(b"a//b"), Some(b"a/b".to_vec()));
        assert_eq!(clean(b"../etc/passwd"), None);
        assert_eq!(clean(b"a/../../x"), None);
        assert_eq!(clean(b"/etc/passwd"), None);
        assert_eq!(clean(b"./"), None);
    }

    #[test]
    fn verdicts_of_listed_unlisted_and_uncovered_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("wordpress/wp-includes")).unwrap();
        std::fs::write(dir.path().join("wordpress/wp-includes/load.php"), "<?php // load").unwrap();
        std::fs::write(dir.path().join("wordpress/index.php"), "<?php").unwrap();
        let tgz = dir.path().join("wp.tar.gz");
        let ok = std::process::Command::new("tar")
            .args(["czf"])
            .arg(&tgz)
            .arg("-C")
            .arg(dir.path())
            .arg("wordpress")
            .status()
            .unwrap();
        assert!(ok.success());
        for m in [Manifest::reference(&dir.path().join("wordpress")).unwrap(), Manifest::reference(&tgz).unwrap()] {
            assert_eq!(m.len(), 2);
            let good = crate::util::sha256(b"<?php // load");
            assert_eq!(m.judge(b"wp-includes/load.php", Some(&state(good)), || None), Some(Origin::Vendor));
            assert_eq!(m.judge(b"wp-includes/load.php", Some(&state([1; 32])), || None), Some(Origin::Tampered));
            assert_eq!(m.judge(b"wp-includes/load.php", None, || None), Some(Origin::Tampered));
            assert_eq!(m.judge(b"wp-includes/x.php", Some(&state([1; 32])), || None), Some(Origin::Foreign));
            assert_eq!(m.judge(b"x.php", Some(&state([1; 32])), || None), Some(Origin::Foreign), "the root is covered");
            assert_eq!(m.judge(b"wp-content/x.php", Some(&state([1; 32])), || None), None);
        }
        assert!(Manifest::reference(&dir.path().join("missing")).is_err());
    }
}
