//! WordPress: which packages a site runs (core, plugins), their versions as
//! the site itself says them, and their published checksums.
//!
//! - core: `wp-includes/version.php` (`$wp_version`, `$wp_local_package`);
//!   checksums from `core_checksums_url?version=V&locale=L`, `{"checksums":
//!   {path: md5}}`, possibly nested under the version;
//! - plugins: the `Version:` header of the plugin's main file; checksums
//!   from `plugin_checksums_url/SLUG/VERSION.json`, `{"files": {path:
//!   {"md5": …, "sha256": …}}}` where a hash may be a string or a list.
//!
//! Only a slug and a version leave the server. Answers are bounded (size,
//! time), validated, and cached under `state_dir/vendor/` by (kind, slug,
//! version); a refusal (404) is cached as such for a day, a publisher host
//! that cannot be reached for 30 s to ten minutes ([`super::http`]). Offline or
//! refused means `unknown`, with one warning, never a failure.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::http::{Failure, Fetcher};
use super::{Hashes, Manifest, ManifestError};
use crate::model::RelPath;

/// Answers larger than this are refused.
pub const MAX_ANSWER: u64 = 16 << 20;
/// Release archives larger than this are refused (core is about 25 MiB).
pub const MAX_ARCHIVE: u64 = 96 << 20;
/// A package the publisher does not know is asked about again after this.
const NEGATIVE_TTL: Duration = Duration::from_secs(24 * 3600);

/// A package of a site.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Package {
    /// `wordpress`, or `plugin:SLUG`.
    pub name: String,
    /// As the site says.
    pub version: String,
    /// Core's locale (`en_US` when none).
    pub locale: String,
    /// Where its files are, relative to the site root (empty: core).
    pub dir: RelPath,
    /// The file its version was read from (`wp-includes/version.php`, the
    /// plugin's main file, the theme's `style.css`), relative to the root.
    pub version_file: RelPath,
}

/// The packages a WordPress site at `root` runs; premium plugins are
/// listed too (their checksums simply will not be found).
pub fn detect(root: &Path) -> Vec<Package> {
    let mut out = Vec::new();
    if let Some(text) = read_head(&root.join("wp-includes/version.php")) {
        if let Some(version) = php_string(&text, "$wp_version") {
            let locale = php_string(&text, "$wp_local_package").unwrap_or_else(|| "en_US".into());
            let version_file = b"wp-includes/version.php".to_vec();
            out.push(Package { name: "wordpress".into(), version, locale, dir: Vec::new(), version_file });
        }
    }
    let plugins = root.join("wp-content/plugins");
    for e in std::fs::read_dir(&plugins).into_iter().flatten().flatten() {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let slug = e.file_name().to_string_lossy().into_owned();
        if !slug.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.') {
            continue;
        }
        if let Some((version, main)) = plugin_version(&e.path(), &slug) {
            let dir = format!("wp-content/plugins/{slug}");
            out.push(Package {
                name: format!("plugin:{slug}"),
                version,
                locale: String::new(),
                version_file: format!("{dir}/{main}").into_bytes(),
                dir: dir.into_bytes(),
            });
        }
    }
    detect_themes(root, &mut out);
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Themes: the `Version:` of each `wp-content/themes/SLUG/style.css` that
/// names a theme.
fn detect_themes(root: &Path, out: &mut Vec<Package>) {
    let Ok(entries) = std::fs::read_dir(root.join("wp-content/themes")) else { return };
    for e in entries.flatten() {
        let slug = e.file_name().to_string_lossy().into_owned();
        if !e.file_type().is_ok_and(|t| t.is_dir()) || !valid_version(&slug) {
            continue;
        }
        let Some(text) = read_head(&e.path().join("style.css")) else { continue };
        if let Some(version) = text.contains("Theme Name:").then(|| header(&text, "Version:")).flatten() {
            let dir = format!("wp-content/themes/{slug}");
            out.push(Package {
                name: format!("theme:{slug}"),
                version,
                locale: String::new(),
                version_file: format!("{dir}/style.css").into_bytes(),
                dir: dir.into_bytes(),
            });
        }
    }
}

/// The `Version:` of the plugin's main file (`SLUG.php`, else the first
/// top-level `.php` with a `Plugin Name:` header), and that file's name.
fn plugin_version(dir: &Path, slug: &str) -> Option<(String, String)> {
    let main = dir.join(format!("{slug}.php"));
    let mut candidates = vec![main];
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut more: Vec<PathBuf> =
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "php")).collect();
        more.sort();
        candidates.extend(more);
    }
    candidates.into_iter().find_map(|p| {
        let text = read_head(&p)?;
        let version = text.contains("Plugin Name:").then(|| header(&text, "Version:")).flatten()?;
        Some((version, p.file_name()?.to_str()?.to_string()))
    })
}

/// The first 8 KiB of a regular file (never through a symlink).
fn read_head(p: &Path) -> Option<String> {
    if !std::fs::symlink_metadata(p).ok()?.is_file() {
        return None;
    }
    let mut buf = Vec::new();
    std::fs::File::open(p).ok()?.take(8192).read_to_end(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// `$name = 'value';` in PHP source.
/// The assignment, not a mention in a comment (`@global string
/// $wp_version` comes first in the real file).
fn php_string(text: &str, name: &str) -> Option<String> {
    text.match_indices(name).find_map(|(at, _)| {
        let rest = text[at + name.len()..].trim_start().strip_prefix('=')?.trim_start();
        let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
        let value: String = rest[1..].chars().take_while(|&c| c != quote).collect();
        valid_version(&value).then_some(value)
    })
}

/// `Name: value` in a plugin or theme header.
fn header(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let l = l.trim_start_matches([' ', '\t', '*', '#', '/']);
        let v = l.strip_prefix(name)?.trim();
        valid_version(v).then(|| v.to_string())
    })
}

/// A version or locale as it may go into a URL: short, plain.
fn valid_version(v: &str) -> bool {
    !v.is_empty() && v.len() <= 40 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
}

/// Where checksums are asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Urls {
    /// The core checksums API.
    pub core: String,
    /// The base of plugin checksums (`BASE/SLUG/VERSION.json`).
    pub plugin: String,
    /// The base of core release archives (`BASE/[LOCALE/]wordpress-VERSION.zip`).
    pub core_archive: String,
    /// The base of plugin archives (`BASE/SLUG.VERSION.zip`).
    pub plugin_archive: String,
    /// The base of theme archives (`BASE/SLUG.VERSION.zip`).
    pub theme_archive: String,
    /// A request for checksums taking longer is abandoned (an archive may
    /// take six times as long).
    pub timeout: Duration,
}

impl Default for Urls {
    fn default() -> Urls {
        Urls {
            core: "https://api.wordpress.org/core/checksums/1.0/".into(),
            plugin: "https://downloads.wordpress.org/plugin-checksums".into(),
            core_archive: "https://downloads.wordpress.org/release".into(),
            plugin_archive: "https://downloads.wordpress.org/plugin".into(),
            theme_archive: "https://downloads.wordpress.org/theme".into(),
            timeout: Duration::from_secs(20),
        }
    }
}

/// Fetching a manifest failed; the package is `unknown`.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The publisher does not know this version (404), or said so before.
    #[error("{0}: no published checksums")]
    NotPublished(String),
    /// The publisher's host could not be reached (now, or a short while
    /// ago): asked again later.
    #[error("{what}: the publisher {message}")]
    Unreachable {
        /// The package.
        what: String,
        /// Which host, why, and when it is asked again.
        message: String,
    },
    /// The caller gave up waiting (a reload, a shutdown).
    #[error("cancelled")]
    Cancelled,
    /// The network, the size or the time limit, or a bad answer.
    #[error("{what}: {message}")]
    Failed {
        /// The package.
        what: String,
        /// What went wrong.
        message: String,
    },
}

/// The publisher of a server's WordPress packages: where it is asked, the
/// cache of its answers under the state dir, the manifests built in this
/// process (shared by every site that runs the same release) and the
/// requests' state ([`Fetcher`]). One per daemon, kept across reloads
/// that do not change `vendors:`.
pub struct Publisher {
    urls: Urls,
    cache_dir: PathBuf,
    fetcher: Fetcher,
    memo: Mutex<HashMap<Package, Arc<Manifest>>>,
}

/// Manifests kept in memory at most.
const MEMO_MAX: usize = 256;

impl Publisher {
    /// The publisher at `urls`, caching under `cache_dir`.
    pub fn new(urls: Urls, cache_dir: PathBuf) -> Publisher {
        Publisher { fetcher: Fetcher::new(&cache_dir), urls, cache_dir, memo: Mutex::default() }
    }

    /// The manifest of `p`, from memory, the cache or the publisher: its
    /// published checksums, with the release archive's SHA-256 values and
    /// pristine files once the archive is shown to match them (a theme has
    /// only its archive). `cancel` stops the wait for the network.
    pub fn manifest(&self, p: &Package, cancel: &Arc<AtomicBool>) -> Result<Arc<Manifest>, FetchError> {
        if let Some(m) = self.memo.lock().unwrap_or_else(|e| e.into_inner()).get(p) {
            return Ok(Arc::clone(m));
        }
        let m = Arc::new(self.build_manifest(p, cancel)?);
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        if memo.len() >= MEMO_MAX {
            memo.clear();
        }
        memo.insert(p.clone(), Arc::clone(&m));
        Ok(m)
    }

    fn build_manifest(&self, p: &Package, cancel: &Arc<AtomicBool>) -> Result<Manifest, FetchError> {
        let what = format!("{} {}", p.name, p.version);
        if p.name.starts_with("theme:") {
            let zip = self.archive(p, cancel)?;
            let mut m = Manifest::from_zip(&zip, &p.name, &p.version, &p.dir).map_err(|e| {
                let _ = std::fs::remove_file(&zip);
                FetchError::Failed { what, message: e.to_string() }
            })?;
            m.foreign_only_in(vec![p.dir.clone()]);
            return Ok(m);
        }
        let mut m = self.checksums(p, cancel)?;
        match self.archive(p, cancel) {
            Ok(zip) => {
                if let Err(e) = m.adopt_archive(&zip, &p.dir) {
                    tracing::warn!("{what}: the release archive is not used: {e}");
                    let _ = std::fs::remove_file(&zip);
                }
            }
            Err(FetchError::Cancelled) => return Err(FetchError::Cancelled),
            Err(_) => {}
        }
        Ok(m)
    }

    /// The cached release archive of `p`, fetched when missing (at most
    /// [`MAX_ARCHIVE`], into a temporary file renamed when whole).
    fn archive(&self, p: &Package, cancel: &Arc<AtomicBool>) -> Result<PathBuf, FetchError> {
        let urls = &self.urls;
        let what = format!("{} {} archive", p.name, p.version);
        let path = self.cache_dir.join(p.name.replace(':', "/")).join(format!("{}-{}.zip", p.version, p.locale));
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            return Ok(path);
        }
        let missing = path.with_extension("zip-missing");
        if fresh(&missing) {
            return Err(FetchError::NotPublished(what));
        }
        let url = match p.name.split_once(':') {
            None if p.locale.is_empty() || p.locale == "en_US" => {
                format!("{}/wordpress-{}.zip", urls.core_archive.trim_end_matches('/'), p.version)
            }
            None => format!("{}/{}/wordpress-{}.zip", urls.core_archive.trim_end_matches('/'), p.locale, p.version),
            Some(("plugin", slug)) => format!("{}/{slug}.{}.zip", urls.plugin_archive.trim_end_matches('/'), p.version),
            Some((_, slug)) => format!("{}/{slug}.{}.zip", urls.theme_archive.trim_end_matches('/'), p.version),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| FetchError::Failed { what: what.clone(), message: e.to_string() })?;
        }
        match self.fetcher.download(&url, &path, MAX_ARCHIVE, urls.timeout * 6, cancel) {
            Ok(()) => Ok(path),
            Err(Failure::Status(404)) => {
                let _ = std::fs::write(&missing, b"");
                Err(FetchError::NotPublished(what))
            }
            Err(e) => Err(FetchError::from_failure(what, &url, e)),
        }
    }

    /// The published checksums of `p` (core, plugins).
    fn checksums(&self, p: &Package, cancel: &Arc<AtomicBool>) -> Result<Manifest, FetchError> {
        let urls = &self.urls;
        let what = format!("{} {}", p.name, p.version);
        let fail = |e: ManifestError| FetchError::Failed { what: what.clone(), message: e.to_string() };
        let key = self.cache_dir.join(p.name.replace(':', "/")).join(format!("{}-{}.json", p.version, p.locale));
        let missing = key.with_extension("missing");
        if fresh(&missing) {
            return Err(FetchError::NotPublished(what));
        }
        if let Ok(body) = std::fs::read(&key) {
            return parse(p, &body).map_err(fail);
        }
        let url = if p.name == "wordpress" {
            format!("{}?version={}&locale={}", urls.core, p.version, p.locale)
        } else {
            format!("{}/{}/{}.json", urls.plugin.trim_end_matches('/'), &p.name["plugin:".len()..], p.version)
        };
        let body = match self.fetcher.get(&url, MAX_ANSWER, urls.timeout, cancel) {
            Ok(b) => b,
            Err(Failure::Status(404)) => {
                if let Some(dir) = missing.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                let _ = std::fs::write(&missing, b"");
                return Err(FetchError::NotPublished(what));
            }
            Err(e) => return Err(FetchError::from_failure(what, &url, e)),
        };
        // api.wordpress.org's answer for a version it does not know
        // (`false`, or a list by version without this one).
        let unknown = |v: Value| match &v["checksums"] {
            Value::Bool(false) => true,
            Value::Object(by) => !by.contains_key(&p.version) && !by.is_empty() && by.values().all(Value::is_object),
            _ => false,
        };
        if p.name == "wordpress" && serde_json::from_slice::<Value>(&body).is_ok_and(unknown) {
            if let Some(dir) = missing.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = std::fs::write(&missing, b"");
            return Err(FetchError::NotPublished(what));
        }
        // Parsed before it is cached: a bad answer is not kept.
        let m = parse(p, &body).map_err(fail)?;
        if let Some(dir) = key.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = key.with_extension("tmp");
        if std::fs::write(&tmp, &body).is_ok() {
            let _ = std::fs::rename(&tmp, &key);
        }
        Ok(m)
    }
}

/// Candidate releases looked at when a package's version is not published.
const CANDIDATES: usize = 8;

impl Publisher {
    /// The release a package's files are when `p`, the version its version
    /// file says (`version.php`, a plugin's `Version:` header, a theme's
    /// `style.css`), is not published: an attacker's lie, or a build of the
    /// site's own. Of the releases `also` names (the version the baseline
    /// holds), those cached, and the neighbours of `p`'s version, the one
    /// whose files the site at `root` holds most of, if it holds at least
    /// half of them. Its manifest judges the package; the version file
    /// differs from it, and is reported as tampered.
    ///
    /// Core is always looked for. A plugin or theme only when a release of
    /// it was known here before (in `also` or the cache): a premium plugin
    /// the publisher never had costs no guesses.
    pub fn identify(
        &self,
        root: &Path,
        p: &Package,
        also: &[String],
        cancel: &Arc<AtomicBool>,
    ) -> Option<Arc<Manifest>> {
        let suffixes = [format!("-{}.json", p.locale), format!("-{}.zip", p.locale)];
        let cached: Vec<String> = std::fs::read_dir(self.cache_dir.join(p.name.replace(':', "/")))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let v = suffixes.iter().find_map(|s| name.strip_suffix(s.as_str()))?;
                valid_version(v).then(|| v.to_string())
            })
            .collect();
        let mut known: Vec<String> = also.iter().chain(&cached).filter(|v| **v != p.version).cloned().collect();
        if known.is_empty() && p.name != "wordpress" {
            return None;
        }
        known.extend(neighbours(&p.version));
        let mut seen = vec![p.version.clone()];
        let mut best: Option<(usize, Arc<Manifest>)> = None;
        for v in known {
            if seen.contains(&v) || seen.len() > CANDIDATES {
                continue;
            }
            seen.push(v.clone());
            let candidate = Package { version: v, ..p.clone() };
            let Ok(m) = self.manifest(&candidate, cancel) else { continue };
            let held = holds(root, &m);
            if held * 2 >= m.len() && best.as_ref().is_none_or(|(b, _)| held > *b) {
                best = Some((held, m));
            }
        }
        best.map(|(_, m)| m)
    }
}

/// Releases next to `version` (`6.5.40`: 6.5.39, 6.5.41, 6.5).
fn neighbours(version: &str) -> Vec<String> {
    let parts: Option<Vec<u32>> = version.split('.').map(|n| n.parse().ok()).collect();
    match parts.as_deref() {
        Some(&[a, b, c]) => {
            let mut out = vec![format!("{a}.{b}.{}", c + 1), format!("{a}.{b}")];
            if c > 0 {
                out.insert(0, format!("{a}.{b}.{}", c - 1));
            }
            out
        }
        Some(&[a, b]) => vec![format!("{a}.{b}.1")],
        _ => Vec::new(),
    }
}

/// How many files of `m` the tree at `root` holds as the release does
/// (read through no symlink, hashed as the manifest gives them).
fn holds(root: &Path, m: &Manifest) -> usize {
    m.files
        .iter()
        .filter(|(rel, h)| {
            let Some((sha, md5)) = super::live_hashes(root, rel) else { return false };
            h.sha256.contains(&sha) || (h.sha256.is_empty() && h.md5.contains(&md5))
        })
        .count()
}

impl FetchError {
    fn from_failure(what: String, url: &str, f: Failure) -> FetchError {
        match f {
            Failure::Cancelled => FetchError::Cancelled,
            Failure::Down(why) => FetchError::Unreachable { what, message: why },
            other => FetchError::Failed { what, message: format!("{url}: {other}") },
        }
    }
}

/// Was the refusal marker at `p` written less than a day ago?
fn fresh(p: &Path) -> bool {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .is_ok_and(|t| SystemTime::now().duration_since(t).unwrap_or_default() < NEGATIVE_TTL)
}

/// A checksum answer as a manifest of package `p`.
fn parse(p: &Package, body: &[u8]) -> Result<Manifest, ManifestError> {
    let bad = ManifestError::Answer;
    let v: Value = serde_json::from_slice(body).map_err(|e| bad(format!("not JSON: {e}")))?;
    let mut m = Manifest { package: p.name.clone(), version: p.version.clone(), ..Manifest::default() };
    let mut bytes = 0u64;
    if p.name == "wordpress" {
        let sums = &v["checksums"];
        // Either {path: md5} or {version: {path: md5}}.
        let sums = match sums.get(&p.version) {
            Some(inner) if inner.is_object() => inner,
            _ => sums,
        };
        let map = sums.as_object().ok_or_else(|| bad("no checksums in the answer".into()))?;
        for (path, md5) in map {
            let md5 = md5.as_str().and_then(hex16).ok_or_else(|| bad(format!("bad md5 for {path}")))?;
            m.insert_hashes(clean_path(path)?, Hashes { sha256: Vec::new(), md5: vec![md5] }, &mut bytes)?;
        }
    } else {
        let map = v["files"].as_object().ok_or_else(|| bad("no files in the answer".into()))?;
        for (path, h) in map {
            let list = |k: &str| -> Vec<String> {
                match &h[k] {
                    Value::String(s) => vec![s.clone()],
                    Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
                    _ => Vec::new(),
                }
            };
            let hashes = Hashes {
                sha256: list("sha256").iter().filter_map(|s| hex32(s)).collect(),
                md5: list("md5").iter().filter_map(|s| hex16(s)).collect(),
            };
            if hashes.sha256.is_empty() && hashes.md5.is_empty() {
                return Err(bad(format!("no usable hash for {path}")));
            }
            let mut rel = p.dir.clone();
            rel.push(b'/');
            rel.extend_from_slice(&clean_path(path)?);
            m.insert_hashes(rel, hashes, &mut bytes)?;
        }
    }
    if m.is_empty() {
        return Err(bad("an empty manifest".into()));
    }
    if p.dir.is_empty() {
        m.foreign_only_in(vec![b"wp-admin".to_vec(), b"wp-includes".to_vec()]);
        m.foreign_also_at_root();
    } else {
        m.foreign_only_in(vec![p.dir.clone()]);
    }
    Ok(m)
}

fn clean_path(p: &str) -> Result<RelPath, ManifestError> {
    super::clean(p.as_bytes()).ok_or_else(|| ManifestError::Answer(format!("a path that escapes the package: {p}")))
}

fn hex16(s: &str) -> Option<[u8; 16]> {
    let v = crate::util::bytes::unhex(s)?;
    v.try_into().ok()
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    let v = crate::util::bytes::unhex(s)?;
    v.try_into().ok()
}

/// The package a path of a plugin folder belongs to (`plugin:SLUG` for
/// `wp-content/plugins/SLUG/…`), whether or not it is installed.
pub fn package_of(rel: &[u8]) -> Option<String> {
    let (kind, rest) = match rel.strip_prefix(b"wp-content/plugins/") {
        Some(rest) => ("plugin", rest),
        None => ("theme", rel.strip_prefix(b"wp-content/themes/")?),
    };
    let slash = rest.iter().position(|&b| b == b'/')?;
    let slug = std::str::from_utf8(&rest[..slash]).ok()?;
    valid_version(slug).then(|| format!("{kind}:{slug}"))
}

/// Orders two versions as releases do: numeric parts as numbers
/// (`6.10` after `6.9`), a pre-release (`6.4-RC1`) before its release.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let split = |v: &str| -> (Vec<u64>, String) {
        let (main, pre) = v.split_once(['-', '+']).unwrap_or((v, ""));
        (main.split('.').map(|x| x.parse().unwrap_or(0)).collect(), pre.to_string())
    };
    let ((mut na, pa), (mut nb, pb)) = (split(a), split(b));
    let len = na.len().max(nb.len());
    na.resize(len, 0);
    nb.resize(len, 0);
    na.cmp(&nb).then_with(|| match (pa.is_empty(), pb.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => pa.cmp(&pb),
    })
}

/// Which of `packages` (with whatever goes with each) holds the path.
pub fn owner<'p, T>(packages: &'p [(Package, T)], rel: &[u8]) -> Option<&'p (Package, T)> {
    // The longest package directory that holds it; core owns what is not
    // in wp-content/.
    packages
        .iter()
        .filter(|(p, _)| !p.dir.is_empty() && crate::model::is_under(rel, &p.dir))
        .max_by_key(|(p, _)| p.dir.len())
        .or_else(
            || if rel.starts_with(b"wp-content/") { None } else { packages.iter().find(|(p, _)| p.dir.is_empty()) },
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_the_site_and_must_be_plain() {
        assert_eq!(php_string("<?php\n$wp_version = '6.4.2';\n", "$wp_version").as_deref(), Some("6.4.2"));
        let real = "/**\n * @global string $wp_version\n */\n$wp_version = '6.1.9';\n";
        assert_eq!(php_string(real, "$wp_version").as_deref(), Some("6.1.9"), "the assignment, not the comment");
        assert_eq!(php_string("$wp_local_package = \"de_DE\";", "$wp_local_package").as_deref(), Some("de_DE"));
        assert_eq!(php_string("$wp_version = '6.4/../../x';", "$wp_version"), None, "never into a URL");
        assert_eq!(header(" * Plugin Name: Akismet\n * Version: 5.3.1\n", "Version:").as_deref(), Some("5.3.1"));
    }

    fn core_642() -> Package {
        Package {
            name: "wordpress".into(),
            version: "6.4.2".into(),
            locale: "en_US".into(),
            dir: vec![],
            version_file: b"wp-includes/version.php".to_vec(),
        }
    }

    #[test]
    fn answers_in_either_shape_and_bad_ones() {
        let core = core_642();
        let flat = br#"{"checksums":{"index.php":"926dd0f95df723f9ed934eb058882cc8"}}"#;
        let nested = br#"{"checksums":{"6.4.2":{"index.php":"926dd0f95df723f9ed934eb058882cc8"}}}"#;
        assert_eq!(parse(&core, flat).unwrap().len(), 1);
        assert_eq!(parse(&core, nested).unwrap().len(), 1);
        assert!(parse(&core, b"<html>").is_err());
        assert!(parse(&core, br#"{"checksums":false}"#).is_err());
        assert!(parse(&core, br#"{"checksums":{"../x.php":"926dd0f95df723f9ed934eb058882cc8"}}"#).is_err());
        let plugin = Package {
            name: "plugin:akismet".into(),
            version: "5.3".into(),
            locale: String::new(),
            dir: b"wp-content/plugins/akismet".to_vec(),
            version_file: b"wp-content/plugins/akismet/akismet.php".to_vec(),
        };
        let files = br#"{"files":{"akismet.php":{"md5":"926dd0f95df723f9ed934eb058882cc8","sha256":["aa","0000000000000000000000000000000000000000000000000000000000000000"]}}}"#;
        let m = parse(&plugin, files).unwrap();
        assert_eq!(m.paths().next().map(|p| p.as_slice()), Some(&b"wp-content/plugins/akismet/akismet.php"[..]));
    }

    #[test]
    fn a_version_not_published_is_looked_for_next_to_it() {
        assert_eq!(neighbours("6.5.40"), ["6.5.39", "6.5.41", "6.5"]);
        assert_eq!(neighbours("6.5.0"), ["6.5.1", "6.5"]);
        assert_eq!(neighbours("6.5"), ["6.5.1"]);
        assert!(neighbours("6.5-beta1").is_empty());
    }

    #[test]
    fn versions_order_as_releases_do() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_versions("6.10", "6.9"), Greater);
        assert_eq!(compare_versions("5.3", "5.3.0"), Equal);
        assert_eq!(compare_versions("5.3", "5.3.1"), Less);
        assert_eq!(compare_versions("6.4-RC1", "6.4"), Less);
        assert_eq!(package_of(b"wp-content/plugins/wp-file-manager/x.php").as_deref(), Some("plugin:wp-file-manager"));
        assert_eq!(package_of(b"wp-content/plugins/hello.php"), None);
    }

    #[test]
    fn paths_belong_to_the_innermost_package() {
        let core = core_642();
        let plugin = Package {
            name: "plugin:a".into(),
            version: "1".into(),
            locale: String::new(),
            dir: b"wp-content/plugins/a".to_vec(),
            version_file: b"wp-content/plugins/a/a.php".to_vec(),
        };
        let ps = vec![(core, ()), (plugin, ())];
        let name = |rel: &[u8]| owner(&ps, rel).map(|(p, _)| p.name.clone());
        assert_eq!(name(b"wp-includes/load.php").as_deref(), Some("wordpress"));
        assert_eq!(name(b"wp-content/plugins/a/x.php").as_deref(), Some("plugin:a"));
        assert_eq!(name(b"wp-content/themes/t/x.php"), None);
    }
}
