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
//! version); a refusal (404) is cached as such for a day. Offline or
//! refused means `unknown`, with one warning, never a failure.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::{Hashes, Manifest};
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
}

/// The packages a WordPress site at `root` runs; premium plugins are
/// listed too (their checksums simply will not be found).
pub fn detect(root: &Path) -> Vec<Package> {
    let mut out = Vec::new();
    if let Some(text) = read_head(&root.join("wp-includes/version.php")) {
        if let Some(version) = php_string(&text, "$wp_version") {
            let locale = php_string(&text, "$wp_local_package").unwrap_or_else(|| "en_US".into());
            out.push(Package { name: "wordpress".into(), version, locale, dir: Vec::new() });
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
        if let Some(version) = plugin_version(&e.path(), &slug) {
            out.push(Package {
                name: format!("plugin:{slug}"),
                version,
                locale: String::new(),
                dir: format!("wp-content/plugins/{slug}").into_bytes(),
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
            out.push(Package {
                name: format!("theme:{slug}"),
                version,
                locale: String::new(),
                dir: format!("wp-content/themes/{slug}").into_bytes(),
            });
        }
    }
}

/// The `Version:` of the plugin's main file (`SLUG.php`, else the first
/// top-level `.php` with a `Plugin Name:` header).
fn plugin_version(dir: &Path, slug: &str) -> Option<String> {
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
        text.contains("Plugin Name:").then(|| header(&text, "Version:")).flatten()
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
#[derive(Clone, Debug)]
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
    /// The network, the size or the time limit, or a bad answer.
    #[error("{what}: {message}")]
    Failed {
        /// The package.
        what: String,
        /// What went wrong.
        message: String,
    },
}

/// The manifest of `p`, from the cache under `cache_dir` or from the
/// publisher: its published checksums, with the release archive's SHA-256
/// values and pristine files once the archive is shown to match them (a
/// theme has only its archive).
pub fn manifest(p: &Package, urls: &Urls, cache_dir: &Path) -> Result<Arc<Manifest>, FetchError> {
    // Shared by every site that runs the same release, in this process.
    type Memo = Mutex<Option<HashMap<(PathBuf, Package), Arc<Manifest>>>>;
    static MEMO: Memo = Mutex::new(None);
    let key = (cache_dir.to_path_buf(), p.clone());
    let memo = |m: &mut Option<HashMap<_, _>>| m.get_or_insert_with(HashMap::new).get(&key).cloned();
    if let Some(m) = memo(&mut MEMO.lock().unwrap_or_else(|e| e.into_inner())) {
        return Ok(m);
    }
    let m = Arc::new(build_manifest(p, urls, cache_dir)?);
    let mut guard = MEMO.lock().unwrap_or_else(|e| e.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    if map.len() >= 256 {
        map.clear();
    }
    map.insert(key, Arc::clone(&m));
    Ok(m)
}

fn build_manifest(p: &Package, urls: &Urls, cache_dir: &Path) -> Result<Manifest, FetchError> {
    let what = format!("{} {}", p.name, p.version);
    if p.name.starts_with("theme:") {
        let zip = archive(p, urls, cache_dir)?;
        let mut m = Manifest::from_zip(&zip, &p.name, &p.version, &p.dir).map_err(|message| {
            let _ = std::fs::remove_file(&zip);
            FetchError::Failed { what, message }
        })?;
        m.foreign_only_in(vec![p.dir.clone()]);
        return Ok(m);
    }
    let mut m = checksums(p, urls, cache_dir)?;
    if let Ok(zip) = archive(p, urls, cache_dir) {
        if let Err(e) = m.adopt_archive(&zip, &p.dir) {
            tracing::warn!("{what}: the release archive is not used: {e}");
            let _ = std::fs::remove_file(&zip);
        }
    }
    Ok(m)
}

/// The cached release archive of `p`, fetched when missing (at most
/// [`MAX_ARCHIVE`], into a temporary file renamed when whole).
fn archive(p: &Package, urls: &Urls, cache_dir: &Path) -> Result<PathBuf, FetchError> {
    let what = format!("{} {} archive", p.name, p.version);
    let path = cache_dir.join(p.name.replace(':', "/")).join(format!("{}-{}.zip", p.version, p.locale));
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
        std::fs::create_dir_all(dir).map_err(|e| FetchError::Failed { what: what.clone(), message: e.to_string() })?;
    }
    let tmp = path.with_extension("zip-tmp");
    match download(&url, &tmp, MAX_ARCHIVE, urls.timeout) {
        Ok(()) => {
            std::fs::rename(&tmp, &path).map_err(|e| FetchError::Failed { what, message: e.to_string() })?;
            Ok(path)
        }
        Err(Some(404)) => {
            let _ = std::fs::write(&missing, b"");
            Err(FetchError::NotPublished(what))
        }
        Err(_) => {
            let _ = std::fs::remove_file(&tmp);
            Err(FetchError::Failed { what, message: format!("cannot fetch {url}") })
        }
    }
}

/// Was the refusal marker at `p` written less than a day ago?
fn fresh(p: &Path) -> bool {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .is_ok_and(|t| SystemTime::now().duration_since(t).unwrap_or_default() < NEGATIVE_TTL)
}

/// The published checksums of `p` (core, plugins).
fn checksums(p: &Package, urls: &Urls, cache_dir: &Path) -> Result<Manifest, FetchError> {
    let what = format!("{} {}", p.name, p.version);
    let fail = |message: String| FetchError::Failed { what: what.clone(), message };
    let key = cache_dir.join(p.name.replace(':', "/")).join(format!("{}-{}.json", p.version, p.locale));
    let missing = key.with_extension("missing");
    if fresh(&missing) {
        return Err(FetchError::NotPublished(what));
    }
    let body = match std::fs::read(&key) {
        Ok(b) => b,
        Err(_) => {
            let url = if p.name == "wordpress" {
                format!("{}?version={}&locale={}", urls.core, p.version, p.locale)
            } else {
                format!("{}/{}/{}.json", urls.plugin.trim_end_matches('/'), &p.name["plugin:".len()..], p.version)
            };
            let body = match get(&url, urls.timeout) {
                Ok(b) => b,
                Err(Some(404)) => {
                    if let Some(dir) = missing.parent() {
                        let _ = std::fs::create_dir_all(dir);
                    }
                    let _ = std::fs::write(&missing, b"");
                    return Err(FetchError::NotPublished(what));
                }
                Err(_) => return Err(fail(format!("cannot fetch {url}"))),
            };
            // Parsed before it is cached: a bad answer is not kept.
            parse(p, &body).map_err(fail)?;
            if let Some(dir) = key.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let tmp = key.with_extension("tmp");
            if std::fs::write(&tmp, &body).is_ok() {
                let _ = std::fs::rename(&tmp, &key);
            }
            body
        }
    };
    parse(p, &body).map_err(fail)
}

/// At most one request to a host in this long (a server with hundreds of
/// sites asks politely).
const PER_HOST: Duration = Duration::from_millis(250);

/// Waits until the host of `url` may be asked again.
fn pace(url: &str) {
    static LAST: std::sync::Mutex<Option<HashMap<String, std::time::Instant>>> = std::sync::Mutex::new(None);
    let host = url.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or("").to_string();
    let wait = {
        let mut guard = LAST.lock().unwrap_or_else(|p| p.into_inner());
        let map = guard.get_or_insert_with(HashMap::new);
        let now = std::time::Instant::now();
        let next = map.get(&host).map(|t| *t + PER_HOST).filter(|t| *t > now).unwrap_or(now);
        map.insert(host, next);
        next.saturating_duration_since(now)
    };
    std::thread::sleep(wait);
}

/// GET `url`, bounded; `Err(Some(status))` for an HTTP error status.
fn get(url: &str, timeout: Duration) -> Result<Vec<u8>, Option<u16>> {
    pace(url);
    let agent = ureq::AgentBuilder::new().timeout(timeout).redirects(3).build();
    let resp = match agent.get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, _)) => return Err(Some(code)),
        Err(_) => return Err(None),
    };
    let mut body = Vec::new();
    resp.into_reader().take(MAX_ANSWER + 1).read_to_end(&mut body).map_err(|_| None)?;
    if body.len() as u64 > MAX_ANSWER {
        return Err(None);
    }
    Ok(body)
}

/// GET `url` into a new file `dest`, at most `cap` bytes (a larger answer is
/// refused and the file removed); `Err(Some(status))` for an HTTP error.
fn download(url: &str, dest: &Path, cap: u64, timeout: Duration) -> Result<(), Option<u16>> {
    pace(url);
    let agent = ureq::AgentBuilder::new().timeout(timeout * 6).redirects(3).build();
    let resp = match agent.get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, _)) => return Err(Some(code)),
        Err(_) => return Err(None),
    };
    let _ = std::fs::remove_file(dest);
    let mut out = std::fs::OpenOptions::new().write(true).create_new(true).open(dest).map_err(|_| None)?;
    let n = std::io::copy(&mut resp.into_reader().take(cap + 1), &mut out).map_err(|_| None)?;
    if n > cap {
        let _ = std::fs::remove_file(dest);
        return Err(None);
    }
    Ok(())
}

/// A checksum answer as a manifest of package `p`.
fn parse(p: &Package, body: &[u8]) -> Result<Manifest, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let mut m = Manifest { package: p.name.clone(), version: p.version.clone(), ..Manifest::default() };
    let mut bytes = 0u64;
    if p.name == "wordpress" {
        let sums = &v["checksums"];
        // Either {path: md5} or {version: {path: md5}}.
        let sums = match sums.get(&p.version) {
            Some(inner) if inner.is_object() => inner,
            _ => sums,
        };
        let map = sums.as_object().ok_or("no checksums in the answer")?;
        for (path, md5) in map {
            let md5 = md5.as_str().and_then(hex16).ok_or_else(|| format!("bad md5 for {path}"))?;
            m.insert_hashes(clean_path(path)?, Hashes { sha256: Vec::new(), md5: vec![md5] }, &mut bytes)?;
        }
    } else {
        let map = v["files"].as_object().ok_or("no files in the answer")?;
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
                return Err(format!("no usable hash for {path}"));
            }
            let mut rel = p.dir.clone();
            rel.push(b'/');
            rel.extend_from_slice(&clean_path(path)?);
            m.insert_hashes(rel, hashes, &mut bytes)?;
        }
    }
    if m.is_empty() {
        return Err("an empty manifest".into());
    }
    m.foreign_only_in(if p.dir.is_empty() {
        vec![b"wp-admin".to_vec(), b"wp-includes".to_vec()]
    } else {
        vec![p.dir.clone()]
    });
    Ok(m)
}

fn clean_path(p: &str) -> Result<RelPath, String> {
    super::clean(p.as_bytes()).ok_or_else(|| format!("a path that escapes the package: {p}"))
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

    #[test]
    fn answers_in_either_shape_and_bad_ones() {
        let core = Package { name: "wordpress".into(), version: "6.4.2".into(), locale: "en_US".into(), dir: vec![] };
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
        };
        let files = br#"{"files":{"akismet.php":{"md5":"926dd0f95df723f9ed934eb058882cc8","sha256":["aa","0000000000000000000000000000000000000000000000000000000000000000"]}}}"#;
        let m = parse(&plugin, files).unwrap();
        assert_eq!(m.paths().next().map(|p| p.as_slice()), Some(&b"wp-content/plugins/akismet/akismet.php"[..]));
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
        let core = Package { name: "wordpress".into(), version: "6.4.2".into(), locale: "en_US".into(), dir: vec![] };
        let plugin = Package {
            name: "plugin:a".into(),
            version: "1".into(),
            locale: String::new(),
            dir: b"wp-content/plugins/a".to_vec(),
        };
        let ps = vec![(core, ()), (plugin, ())];
        let name = |rel: &[u8]| owner(&ps, rel).map(|(p, _)| p.name.clone());
        assert_eq!(name(b"wp-includes/load.php").as_deref(), Some("wordpress"));
        assert_eq!(name(b"wp-content/plugins/a/x.php").as_deref(), Some("plugin:a"));
        assert_eq!(name(b"wp-content/themes/t/x.php"), None);
    }
}
