//! Known-bad: content verdicts with YARA-X. The rules shipped with
//! sitewarden (`rules/*.yar`, built into the binary and installed to
//! `/usr/share/sitewarden/rules/` for reading) and the admin's
//! (`signatures.rules_dir`, `/etc/sitewarden/rules/*.yar`) are compiled once
//! when the configuration is loaded: a rule that does not compile is a
//! config error with `file:line:column`, so the daemon does not start on it
//! and a reload keeps the old rules.
//!
//! A rule tagged `foreign_place` (a script in an SVG, say) counts only for
//! a path the profile watches through `always:`, where no code belongs
//! (uploads, caches): the same bytes are a theme's template elsewhere.

pub mod php;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the rules may take over one file before the scan gives up (it
/// is then "not scanned", never "clean").
const FULL_TIMEOUT: Duration = Duration::from_secs(5);
/// The same on the realtime path's quick scan: a file that takes longer is
/// left to the signature lane (YARA-X counts whole seconds: 1 to 2 s).
const QUICK_TIMEOUT: Duration = Duration::from_secs(1);
/// Bytes of content the quick scan takes from one file; a larger file is
/// left to the signature lane, unless its content was scanned before.
pub const QUICK_BYTES: u64 = 256 << 10;

/// The rules shipped with sitewarden: (file name, text, the files they
/// are for). A file is scanned only with the sets that concern it, so a
/// theme's PHP pays for neither the `.htaccess` rules nor the media rules.
pub const SHIPPED: &[(&str, &str, Set)] = &[
    ("php_webshells.yar", include_str!("../../rules/php_webshells.yar"), Set::Code),
    ("javascript.yar", include_str!("../../rules/javascript.yar"), Set::Code),
    ("seo_spam.yar", include_str!("../../rules/seo_spam.yar"), Set::Code),
    ("server_config.yar", include_str!("../../rules/server_config.yar"), Set::Config),
    ("media.yar", include_str!("../../rules/media.yar"), Set::ForeignPlace),
];

/// Which files a shipped rule file is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Set {
    /// Every file.
    Code,
    /// `.htaccess`, `.user.ini`, `php.ini`.
    Config,
    /// Files where no code belongs (uploads, caches).
    ForeignPlace,
    /// The admin's rules (`signatures.rules_dir`): every file, after the
    /// shipped rules, in a scan of their own (a slow rule of the admin's
    /// must not cost the shipped rules' verdict).
    Admin,
}

/// Is `rel` a server configuration file the config rules are for?
pub fn is_config_file(rel: &[u8]) -> bool {
    let name = rel.rsplit(|&b| b == b'/').next().unwrap_or(rel);
    name.eq_ignore_ascii_case(b".htaccess")
        || name.eq_ignore_ascii_case(b".user.ini")
        || name.eq_ignore_ascii_case(b"php.ini")
}

/// The external variables community rule sets (THOR, LOKI, signature-base)
/// read, defined for every rule file: the name, the site path, the
/// extension (`.php`, lower case), the type and the owner of the file
/// scanned. sitewarden sets the first three per file; the type and the
/// owner stay empty.
pub const EXTERNALS: [&str; 5] = ["filename", "filepath", "extension", "filetype", "owner"];

/// Is the last extension of `rel` one PHP runs (`x.php`, not `x.php.jpg`)?
fn runs_as_php(rel: &[u8]) -> bool {
    let name = rel.rsplit(|&b| b == b'/').next().unwrap_or(rel);
    match name.iter().rposition(|&b| b == b'.') {
        Some(k) => {
            crate::policy::glob::EXEC_EXTENSIONS.iter().any(|e| name[k + 1..].eq_ignore_ascii_case(e.as_bytes()))
        }
        None => false,
    }
}

/// The tag of rules that count only where no code belongs.
pub const FOREIGN_PLACE: &str = "foreign_place";

/// A rule file that does not compile.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct RuleError {
    /// The rule file.
    pub file: String,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Compiled rules.
pub struct Signatures {
    /// For every file: the shipped code rules.
    code: yara_x::Rules,
    /// For server configuration files.
    config: yara_x::Rules,
    /// For files where no code belongs.
    foreign: yara_x::Rules,
    /// For every file: the admin's rules.
    admin: yara_x::Rules,
    /// The admin's rule files compiled in, for `config-check`.
    pub files: Vec<PathBuf>,
    /// Bytes of a file scanned at most (its head, when larger).
    pub max_size: u64,
    /// What content already scanned matched, by (SHA-256, config file,
    /// foreign place): the same plugin in a hundred sites is scanned once.
    memo: std::sync::Mutex<std::collections::HashMap<MemoKey, Matches>>,
}

/// A content scanned: its SHA-256, whether it was a server configuration
/// file, whether it was where no code belongs.
type MemoKey = ([u8; 32], bool, bool);

/// Contents remembered as scanned; past this the memo starts over.
const MEMO_ENTRIES: usize = 200_000;

impl std::fmt::Debug for Signatures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signatures").field("files", &self.files).field("max_size", &self.max_size).finish()
    }
}

/// Scans file after file with the same rules.
pub struct Scanner<'r> {
    sigs: &'r Signatures,
    sets: [Option<yara_x::Scanner<'r>>; 4],
    timeout: Duration,
}

impl Scanner<'_> {
    /// The rules that match `data`, the content (or head) of site path
    /// `rel`; `foreign`: the path is where no code belongs. The shipped
    /// rules and the PHP analysis come first; the admin's rules, which may
    /// be slow, last and on their own: their timeout leaves what the
    /// others found standing.
    pub fn scan(&mut self, rel: &[u8], data: &[u8], foreign: bool) -> Matches {
        let mut m = Matches::default();
        for set in [Set::Code, Set::Config, Set::ForeignPlace, Set::Admin] {
            let wanted = match set {
                Set::Code => true,
                Set::Config => is_config_file(rel),
                // PHP in a file PHP runs is not PHP hidden in media.
                Set::ForeignPlace => foreign && !runs_as_php(rel),
                Set::Admin => !self.sigs.files.is_empty(),
            };
            if !wanted {
                continue;
            }
            crate::util::fault::point("signatures", rel);
            match self.run(set, rel, data) {
                Ok(found) => {
                    for (name, foreign_tag) in found {
                        if set == Set::ForeignPlace || foreign_tag {
                            m.foreign_place.push(name);
                        } else {
                            m.anywhere.push(name);
                        }
                    }
                }
                // Not judged is not clean: the file is reported as
                // unscanned and scanned again when next seen.
                Err(e) => m.failed(&e, set, "the signature scan"),
            }
            if set == Set::Code && memchr::memmem::find(data, b"<?").is_some() {
                self.php(data, &mut m);
            }
        }
        m
    }

    /// The rules of `set` matching `data` (site path `rel`, empty for a
    /// decoded payload): each name, and whether it is tagged
    /// `foreign_place`.
    fn run(&mut self, set: Set, rel: &[u8], data: &[u8]) -> Result<Vec<(String, bool)>, yara_x::ScanError> {
        let (sigs, timeout) = (self.sigs, self.timeout);
        let scanner = self.sets[set as usize].get_or_insert_with(|| {
            let rules = match set {
                Set::Code => &sigs.code,
                Set::Config => &sigs.config,
                Set::ForeignPlace => &sigs.foreign,
                Set::Admin => &sigs.admin,
            };
            let mut s = yara_x::Scanner::new(rules);
            s.set_timeout(timeout);
            s
        });
        if matches!(set, Set::Code | Set::Admin) {
            set_externals(scanner, rel);
        }
        let results = scanner.scan(data)?;
        Ok(results
            .matching_rules()
            .map(|r| (r.identifier().to_string(), r.tags().any(|t| t.identifier() == FOREIGN_PLACE)))
            .collect())
    }

    /// What the PHP analysis finds in `data`, and what the code rules (the
    /// shipped and the admin's) find in the payloads it decoded.
    fn php(&mut self, data: &[u8], m: &mut Matches) {
        let a = php::analyze(data);
        m.anywhere.extend(a.findings.iter().map(php::Finding::label));
        let sets: &[Set] = if self.sigs.files.is_empty() { &[Set::Code] } else { &[Set::Code, Set::Admin] };
        for layer in &a.layers {
            for &set in sets {
                let found = match self.run(set, b"", layer) {
                    Ok(found) => found,
                    Err(e) => {
                        // A payload the rules could not judge is not clean.
                        m.failed(&e, set, "the signature scan of a decoded payload");
                        continue;
                    }
                };
                for (name, foreign_tag) in found {
                    if !foreign_tag && !m.anywhere.iter().any(|n| crate::model::signature_rule(n) == name) {
                        m.anywhere.push(format!("{name}: in a payload the file decodes"));
                    }
                }
            }
        }
    }
}

/// What matched in one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Matches {
    /// Rules that count anywhere.
    pub anywhere: Vec<String>,
    /// Rules tagged `foreign_place`.
    pub foreign_place: Vec<String>,
    /// Why (part of) the rules could not be run over the content.
    pub unscanned: Option<String>,
    /// (Part of) the scan ran out of time: worth trying again with more.
    pub timed_out: bool,
}

impl Matches {
    /// Notes a scan of `set` that could not finish (the first reason is
    /// kept).
    fn failed(&mut self, e: &yara_x::ScanError, set: Set, what: &str) {
        self.timed_out |= matches!(e, yara_x::ScanError::Timeout);
        let whose = if set == Set::Admin { " with the admin's rules" } else { "" };
        self.unscanned.get_or_insert_with(|| match e {
            yara_x::ScanError::Timeout => format!("{what}{whose} timed out"),
            e => format!("{what}{whose} failed: {e}"),
        });
    }

    /// The rule names that count for a path (`foreign`: a path where no
    /// code belongs).
    pub fn counted(&self, foreign: bool) -> Vec<String> {
        let mut out = self.anywhere.clone();
        if foreign {
            out.extend(self.foreign_place.iter().cloned());
        }
        out
    }
}

impl Signatures {
    /// The shipped rules and every `*.yar` in `admin_dir` (absent: none).
    pub fn compile(admin_dir: Option<&Path>, max_size: u64) -> Result<Signatures, RuleError> {
        let mut sets =
            [yara_x::Compiler::new(), yara_x::Compiler::new(), yara_x::Compiler::new(), yara_x::Compiler::new()];
        // Community rules are written for YARA, whose regular expressions
        // take what YARA-X's strict syntax refuses (`\${` as a literal
        // brace, `[^]]`): accept it, as YARA does.
        for set in [Set::Code, Set::Admin] {
            sets[set as usize].relaxed_re_syntax(true);
            for name in EXTERNALS {
                // Cannot fail: each name is a new, valid identifier.
                let _ = sets[set as usize].define_global(name, "");
            }
        }
        for (name, text, set) in SHIPPED {
            add(&mut sets[*set as usize], &format!("<built-in rules/{name}>"), text)?;
        }
        let mut files = Vec::new();
        if let Some(dir) = admin_dir {
            if let Ok(entries) = std::fs::read_dir(dir) {
                let mut paths: Vec<PathBuf> = entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "yar" || x == "yara"))
                    .collect();
                paths.sort();
                let mut texts = Vec::new();
                for p in paths {
                    let origin = p.display().to_string();
                    let text = std::fs::read_to_string(&p).map_err(|e| RuleError {
                        file: origin.clone(),
                        line: 1,
                        column: 1,
                        message: format!("cannot read: {e}"),
                    })?;
                    texts.push((p, origin, text));
                }
                // A file another one includes (php-malware-finder's
                // whitelist.yar) is compiled through that include, not twice.
                let included: Vec<String> = texts.iter().flat_map(|(_, _, t)| includes(t)).collect();
                sets[Set::Admin as usize].add_include_dir(dir);
                for (p, origin, text) in texts {
                    let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                    if included.contains(&name) {
                        continue;
                    }
                    add(&mut sets[Set::Admin as usize], &origin, &text)?;
                    files.push(p);
                }
            }
        }
        let [code, config, foreign, admin] = sets.map(yara_x::Compiler::build);
        Ok(Signatures { code, config, foreign, admin, files, max_size, memo: Default::default() })
    }

    /// The rules that match `data`, the content (or head) of site path
    /// `rel`; `foreign`: the path is where no code belongs. For many files,
    /// [`Signatures::scanner`] once and its `scan` for each is cheaper.
    pub fn scan(&self, rel: &[u8], data: &[u8], foreign: bool) -> Matches {
        self.scanner().scan(rel, data, foreign)
    }

    /// What content `sha` of site path `rel` matches: remembered when it
    /// was scanned before (in any site), else `load`ed (its head, at most
    /// `max_size` bytes) and scanned with `scanner`. `None`: it could not be
    /// read.
    pub fn scan_content(
        &self,
        scanner: &mut Scanner<'_>,
        sha: &[u8; 32],
        rel: &[u8],
        foreign: bool,
        load: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Option<Matches> {
        if let Some(m) = self.remembered(sha, rel, foreign) {
            return Some(m);
        }
        let key = (*sha, is_config_file(rel), foreign);
        let bytes = load()?;
        let head = &bytes[..bytes.len().min(self.max_size as usize)];
        let m = scanner.scan(rel, head, foreign);
        // Only a whole file, fully scanned, is known by its hash: a scan
        // that timed out is tried again the next time the content is seen.
        if m.unscanned.is_none() && (bytes.len() as u64) < self.max_size && crate::util::sha256(&bytes) == *sha {
            if let Ok(mut memo) = self.memo.lock() {
                if memo.len() >= MEMO_ENTRIES {
                    memo.clear();
                }
                memo.insert(key, m.clone());
            }
        }
        Some(m)
    }

    /// What content `sha` of site path `rel` matched when it was scanned
    /// before, in any site (`None`: never scanned whole).
    pub fn remembered(&self, sha: &[u8; 32], rel: &[u8], foreign: bool) -> Option<Matches> {
        let key = (*sha, is_config_file(rel), foreign);
        self.memo.lock().ok().and_then(|m| m.get(&key).cloned())
    }

    /// A scanner to reuse across files (setting one up costs more than
    /// scanning a small file).
    pub fn scanner(&self) -> Scanner<'_> {
        Scanner { sigs: self, sets: [None, None, None, None], timeout: FULL_TIMEOUT }
    }

    /// A scanner for the realtime path's quick scan: a shorter timeout.
    fn quick_scanner(&self) -> Scanner<'_> {
        Scanner { timeout: QUICK_TIMEOUT, ..self.scanner() }
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        [&self.code, &self.config, &self.foreign, &self.admin].iter().map(|r| r.iter().len()).sum()
    }

    /// No rules.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What signing the changes of one site takes.
pub struct Signer<'a> {
    /// The rules.
    pub sigs: &'a Signatures,
    /// The site's policy (which places are foreign).
    pub policy: &'a crate::policy::Policy,
    /// The site's root, to read a file the content store does not hold.
    pub root: &'a Path,
    /// The bytes the hashing read kept, when the caller has them.
    pub content: Option<&'a crate::content::ContentStore>,
}

impl Signer<'_> {
    /// Scans the new content of each change that has some: the bytes the
    /// hashing read kept in the content store when it has them (the live
    /// file is not read again), else the head of the live file, read only
    /// if the file still has the hash the change reports. Sets
    /// `Change::signatures` (and `Change::unscanned`).
    pub fn sign(&self, changes: &mut [crate::model::Change]) {
        let mut scanner = self.sigs.scanner();
        for c in changes.iter_mut() {
            self.sign_change(&mut scanner, c);
        }
    }

    /// The realtime path's share of [`Signer::sign`]: what can be signed at
    /// once without holding up the alerts behind it. A content scanned
    /// before (in any site) costs nothing. The others, up to
    /// [`QUICK_BYTES`], are scanned under a short timeout: the `urgent`
    /// ones first (critical by their place alone: a PHP file in uploads),
    /// always; then the smallest first, while `budget` lasts, and only when
    /// the admin has no rules of their own (the shipped rules' cost is
    /// known; an admin rule may take the whole timeout on one file). Returns the
    /// indices of the changes left unsigned, for the signature lane (too
    /// large, past the budget, timed out with nothing found, or `held`: a
    /// path with an earlier change still in the lane), and the time spent.
    pub fn sign_quick(
        &self,
        changes: &mut [crate::model::Change],
        held: impl Fn(&crate::model::Change) -> bool,
        urgent: impl Fn(&crate::model::Change) -> bool,
        budget: Duration,
    ) -> (Vec<usize>, Duration) {
        let mut left = Vec::new();
        let mut costly = Vec::new();
        for (i, c) in changes.iter_mut().enumerate() {
            if held(c) {
                left.push(i);
                continue;
            }
            let Some((sha, size)) = scannable(c) else { continue };
            match self.sigs.remembered(&sha, &c.rel, self.policy.foreign_place(&c.rel)) {
                Some(m) => self.set(c, m),
                None if size.min(self.sigs.max_size) > QUICK_BYTES => left.push(i),
                None => costly.push((!urgent(c), size, i)),
            }
        }
        costly.sort_unstable();
        let started = Instant::now();
        let mut scanner = self.sigs.quick_scanner();
        let admin = !self.sigs.files.is_empty();
        for (later, _, i) in costly {
            if later && (admin || started.elapsed() >= budget) {
                left.push(i);
                continue;
            }
            let c = &mut changes[i];
            match self.scan_change(&mut scanner, c) {
                // What matched already decides; only nothing found is unsure.
                Some(m) if m.timed_out && m.anywhere.is_empty() && m.foreign_place.is_empty() => left.push(i),
                Some(m) => self.set(c, m),
                None => {}
            }
        }
        left.sort_unstable();
        (left, started.elapsed())
    }

    /// Signs one change with `scanner` (see [`Signer::sign`]).
    pub fn sign_change(&self, scanner: &mut Scanner<'_>, c: &mut crate::model::Change) {
        if let Some(m) = self.scan_change(scanner, c) {
            self.set(c, m);
        }
    }

    fn set(&self, c: &mut crate::model::Change, m: Matches) {
        c.signatures = m.counted(self.policy.foreign_place(&c.rel));
        c.unscanned = m.unscanned;
    }

    /// Scans the new content of `c`; `None` when it has none or it could
    /// not be read.
    fn scan_change(&self, scanner: &mut Scanner<'_>, c: &crate::model::Change) -> Option<Matches> {
        let (sha, _) = scannable(c)?;
        let sigs = self.sigs;
        let load = || match self.content.and_then(|cs| cs.get(&sha)) {
            Some(b) => Some(b),
            None => match read_head(self.root, &c.rel, sigs.max_size) {
                // Whole and no longer what was hashed: a later event judges it.
                Some(b) if (b.len() as u64) < sigs.max_size && crate::util::sha256(&b) != sha => None,
                other => other,
            },
        };
        sigs.scan_content(scanner, &sha, &c.rel, self.policy.foreign_place(&c.rel), load)
    }
}

/// The content of a change to scan: its SHA-256 and size.
fn scannable(c: &crate::model::Change) -> Option<([u8; 32], u64)> {
    let after = c.after.as_ref().filter(|a| a.kind == crate::model::FileType::File)?;
    Some((after.sha256?, after.size))
}

/// Reads the head of the regular file `rel` below `root` (never through a
/// symlink), at most `max` bytes.
pub fn read_head(root: &Path, rel: &[u8], max: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let (dir, name) = crate::scan::file::open_parent(root, rel).ok()??;
    let (file, _) = crate::scan::file::open_regular_at(std::os::fd::AsFd::as_fd(&dir), &name).ok()?;
    let mut buf = Vec::new();
    file.take(max).read_to_end(&mut buf).ok()?;
    Some(buf)
}

/// The file names a rule text includes (`include "whitelist.yar"`).
fn includes(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("include")?.trim_start().strip_prefix('"')?.split('"').next())
        .map(|n| n.rsplit('/').next().unwrap_or(n).to_string())
        .collect()
}

/// Sets [`EXTERNALS`] for the file at site path `rel`.
fn set_externals(scanner: &mut yara_x::Scanner<'_>, rel: &[u8]) {
    let path = String::from_utf8_lossy(rel);
    let name = path.rsplit('/').next().unwrap_or(&path);
    let ext = match name.rfind('.') {
        Some(i) if i > 0 => name[i..].to_ascii_lowercase(),
        _ => String::new(),
    };
    // A name defined at compile time with a string accepts a string.
    let _ = scanner.set_global("filepath", path.as_ref());
    let _ = scanner.set_global("filename", name);
    let _ = scanner.set_global("extension", ext.as_str());
}

/// Shared compiled rules.
pub type Shared = Arc<Signatures>;

fn add(compiler: &mut yara_x::Compiler<'_>, origin: &str, text: &str) -> Result<(), RuleError> {
    let src = yara_x::SourceCode::from(text).with_origin(origin);
    compiler.add_source(src).map(|_| ()).map_err(|e| {
        // "error[E001]: title\n --> origin:LINE:COL\n ..." as the one line
        // the config's errors are.
        let text = e.to_string();
        let title = text.lines().next().unwrap_or("").to_string();
        let title = title.split_once("]: ").map(|(_, t)| t.to_string()).unwrap_or(title);
        let (line, column) = text
            .lines()
            .find_map(|l| {
                let at = l.trim_start().strip_prefix("--> ")?;
                let mut parts = at.rsplitn(3, ':');
                let col = parts.next()?.trim().parse().ok()?;
                let line = parts.next()?.trim().parse().ok()?;
                Some((line, col))
            })
            .unwrap_or((1, 1));
        let detail = text
            .lines()
            .filter_map(|l| l.split_once("^ ").or_else(|| l.split_once("- ")).map(|(_, d)| d.trim().to_string()))
            .find(|d| !d.is_empty());
        let message = match detail {
            Some(d) if d != title => format!("{title}: {d}"),
            _ => title,
        };
        RuleError { file: origin.to_string(), line, column, message }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_rules_compile_and_a_broken_one_is_named_with_its_line() {
        let s = Signatures::compile(None, 1 << 20).unwrap();
        assert!(s.len() >= 20, "{} rules", s.len());
        let m = s.scan(b"x.php", b"<?php @eval($_POST['x']); ?>", false);
        assert_eq!(m.anywhere[0], "php_request_to_exec");
        assert_eq!(m.anywhere[1], "php_flow_request_to_code: line 1, $_POST['x'] (line 1) reaches eval()");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("local.yar"),
            "rule ok { condition: true }\n\nrule bad {\n  strings: $a = \"x\"\n  condition: $b\n}\n",
        )
        .unwrap();
        let e = Signatures::compile(Some(dir.path()), 1 << 20).unwrap_err();
        assert!(e.file.ends_with("local.yar"), "{e}");
        assert_eq!(e.line, 5, "{e}");
        assert!(e.message.contains("$b"), "{e}");
    }

    #[test]
    fn server_config_that_makes_data_run_is_named_and_hardening_is_not() {
        let s = Signatures::compile(None, 1 << 20).unwrap();
        let rule = |text: &str| s.scan(b"wp-content/uploads/.htaccess", text.as_bytes(), true).anywhere;
        for (text, want) in [
            ("AddType application/x-httpd-php .htaccess\n", "htaccess_php_handler_for_other_ext"),
            ("AddHandler application/x-httpd-php .jpg\n", "htaccess_php_handler_for_other_ext"),
            ("<Files x.txt>\nForceType application/x-httpd-php\n</Files>\n", "htaccess_php_handler_for_other_ext"),
            ("Options +ExecCGI\nAddHandler cgi-script .png\n", "htaccess_cgi_or_ssi_enabled"),
            ("AddHandler perl-script .gif\n", "htaccess_cgi_or_ssi_enabled"),
            ("SetHandler python-program\n", "htaccess_cgi_or_ssi_enabled"),
            ("Options Includes\nAddOutputFilter INCLUDES .txt\n", "htaccess_cgi_or_ssi_enabled"),
            ("php_value auto_prepend_file /tmp/x.php\n", "ini_auto_prepend_file"),
            ("php_flag engine on\n", "htaccess_php_engine_on"),
            ("# <?php system($_GET['c']); ?>\n", "server_config_with_php_inside"),
        ] {
            assert!(rule(text).iter().any(|r| r == want), "{want} not in {:?} for {text:?}", rule(text));
        }
        for text in [
            "php_flag engine off\n",
            "Options -Indexes -ExecCGI\n",
            "deny from all\n",
            "<FilesMatch \"\\.(php|phtml)$\">\nRequire all denied\n</FilesMatch>\n",
            "# BEGIN WordPress\n<IfModule mod_rewrite.c>\nRewriteEngine On\nRewriteBase /\nRewriteRule ^index\\.php$ - [L]\nRewriteCond %{REQUEST_FILENAME} !-f\nRewriteRule . /index.php [L]\n</IfModule>\n# END WordPress\n",
            "RemoveHandler .php .phtml\nRemoveType .php\nAddType text/plain .php\n",
        ] {
            assert!(rule(text).is_empty(), "{:?} for {text:?}", rule(text));
        }
        // The legitimate embed escapes the tag only; a hidden script escapes all.
        let js = |t: &str| s.scan(b"x.js", t.as_bytes(), false).anywhere;
        assert!(js("document.write(unescape(\"%3Cscript src='\" + host + \"wufoo.com/form.js' type='text/javascript'%3E%3C/script%3E\"));").is_empty());
        assert_eq!(
            js("document.write(unescape('%3C%73%63%72%69%70%74%20%73%72%63'));"),
            vec!["js_obfuscated_script_injection"]
        );
    }

    #[test]
    fn community_rules_load_with_their_modules_and_externals() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("community.yar"),
            r#"import "math"
import "hash"
import "string"
import "console"
rule high_entropy_php {
  strings: $php = "<?php"
  condition: $php at 0 and math.entropy(0, filesize) > 5.0 and string.length("ab") == 2
}
rule named_by_path {
  condition: filepath contains "wp-content/uploads/" and extension == ".php" and filename == "x.php"
    and hash.sha256(0, 0) != "" and console.log("seen")
}
"#,
        )
        .unwrap();
        // php-malware-finder's layout: the main file includes a list of
        // private rules that sits beside it.
        // YARA's looser regular expressions, as community rules use them.
        std::fs::write(
            dir.path().join("legacy.yar"),
            "rule legacy_re { strings: $v = /\\${\\$[0-9a-z]+}/ condition: $v }\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("php.yar"), "include \"whitelist.yar\"\nrule pmf_like { strings: $a = \"evil_marker\" condition: $a and not known_good }\n").unwrap();
        std::fs::write(
            dir.path().join("whitelist.yar"),
            "private rule known_good { strings: $g = \"known_good_marker\" condition: $g }\n",
        )
        .unwrap();
        let s = Signatures::compile(Some(dir.path()), 1 << 20).unwrap();
        assert_eq!(s.scan(b"x.php", b"<?php evil_marker", false).anywhere, vec!["pmf_like"]);
        assert!(s.scan(b"x.php", b"<?php evil_marker known_good_marker", false).anywhere.is_empty());
        let mut noise = b"<?php ".to_vec();
        noise.extend((0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
        let m = s.scan(b"wp-content/uploads/x.php", &noise, false);
        assert!(m.anywhere.contains(&"high_entropy_php".to_string()), "{m:?}");
        assert!(m.anywhere.contains(&"named_by_path".to_string()), "{m:?}");
        let m = s.scan(b"wp-includes/x.php", b"<?php echo 1; echo 1; echo 1;", false);
        assert!(m.anywhere.is_empty(), "{m:?}");
    }
}
