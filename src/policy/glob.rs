//! Glob patterns as sitewarden reads them, compiled once into `globset`.
//!
//! Patterns are relative to the site root and matched on the path's bytes:
//! `*` stays within one directory (`literal_separator`), `**` crosses any
//! number. Two additions on top of globset:
//! - In the last component, what follows `*.` matches in any case, so
//!   `*.php` also catches `shell.PhP` (Apache maps extensions without regard
//!   to case) while directory names stay exact.
//! - `@exec` as a whole component names every file PHP would run, including
//!   double extensions such as `x.php.jpg` that Apache's mod_mime executes.
//!   The list lives here once and every profile shares it.

use globset::{Candidate, GlobBuilder, GlobSet, GlobSetBuilder};

/// The extensions PHP runs under common Apache/nginx handlers.
pub const EXEC_EXTENSIONS: &[&str] =
    &["php", "phtml", "phtm", "phar", "pht", "php3", "php4", "php5", "php6", "php7", "php8", "phps", "inc"];

/// The token that stands for "an executable file name".
pub const EXEC_TOKEN: &str = "@exec";

/// Expands `@exec` and returns the globset patterns a user pattern stands for.
pub fn expand(pattern: &str) -> Vec<String> {
    let parts: Vec<&str> = pattern.split('/').collect();
    if !parts.contains(&EXEC_TOKEN) {
        return vec![ci_suffix(pattern)];
    }
    let exts = EXEC_EXTENSIONS.join(",");
    let single = format!("*.{{{exts}}}");
    let double = format!("*.{{{exts}}}.*");
    [single, double]
        .iter()
        .map(|name| {
            let replaced: Vec<&str> = parts.iter().map(|p| if *p == EXEC_TOKEN { name.as_str() } else { p }).collect();
            ci_suffix(&replaced.join("/"))
        })
        .collect()
}

/// Makes the letters after the first `*.` of the last component match in
/// any case by turning each into a class: `*.php` becomes `*.[pP][hH][pP]`.
fn ci_suffix(pattern: &str) -> String {
    let start = pattern.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (head, last) = pattern.split_at(start);
    let Some(at) = last.find("*.") else {
        return pattern.to_string();
    };
    let mut out = String::with_capacity(pattern.len() * 3);
    out.push_str(head);
    out.push_str(&last[..at + 2]);
    let mut in_class = false;
    let mut escaped = false;
    for c in last[at + 2..].chars() {
        if escaped {
            out.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                out.push(c);
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            c if !in_class && c.is_ascii_alphabetic() => {
                out.push('[');
                out.push(c.to_ascii_lowercase());
                out.push(c.to_ascii_uppercase());
                out.push(']');
            }
            c => out.push(c),
        }
    }
    out
}

/// A user glob that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    /// An empty string.
    #[error("empty glob")]
    Empty,
    /// Starts with `/`: globs are relative to the site root.
    #[error("glob '{0}' is absolute; globs are relative to the site root")]
    Absolute(String),
    /// globset refused it (unclosed class or alternation, ...).
    #[error("invalid glob '{pattern}': {reason}")]
    Invalid {
        /// The pattern as the user wrote it.
        pattern: String,
        /// What globset says is wrong.
        reason: String,
    },
}

/// Checks one user pattern; the error names what is wrong.
pub fn validate(pattern: &str) -> Result<(), GlobError> {
    if pattern.is_empty() {
        return Err(GlobError::Empty);
    }
    if pattern.starts_with('/') {
        return Err(GlobError::Absolute(pattern.to_string()));
    }
    for p in expand(pattern) {
        build_one(&p).map_err(|e| invalid(pattern, &e))?;
    }
    Ok(())
}

fn invalid(pattern: &str, e: &globset::Error) -> GlobError {
    GlobError::Invalid { pattern: pattern.to_string(), reason: e.kind().to_string() }
}

fn build_one(pattern: &str) -> Result<globset::Glob, globset::Error> {
    build(pattern, false)
}

fn build(pattern: &str, any_case: bool) -> Result<globset::Glob, globset::Error> {
    GlobBuilder::new(pattern).literal_separator(true).backslash_escape(true).case_insensitive(any_case).build()
}

/// A compiled list of user patterns that can tell which of them matched.
#[derive(Clone, Debug)]
pub struct PatternSet {
    set: GlobSet,
    /// For each compiled glob, the index of the user pattern it came from.
    owner: Vec<usize>,
    patterns: Vec<String>,
}

impl PatternSet {
    /// Compiles user patterns (`@exec` expanded); the error names the bad one.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<PatternSet, GlobError> {
        PatternSet::compile(patterns, false)
    }

    /// Like [`PatternSet::new`], matching names in any case (for secrets:
    /// `WP-CONFIG.PHP` is `wp-config.php`).
    pub fn any_case<S: AsRef<str>>(patterns: &[S]) -> Result<PatternSet, GlobError> {
        PatternSet::compile(patterns, true)
    }

    fn compile<S: AsRef<str>>(patterns: &[S], any_case: bool) -> Result<PatternSet, GlobError> {
        let mut builder = GlobSetBuilder::new();
        let mut owner = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            validate(p.as_ref())?;
            for expanded in expand(p.as_ref()) {
                let glob = build(&expanded, any_case).map_err(|e| invalid(p.as_ref(), &e))?;
                builder.add(glob);
                owner.push(i);
            }
        }
        let set = builder.build().map_err(|e| GlobError::Invalid { pattern: "(set)".into(), reason: e.to_string() })?;
        Ok(PatternSet { set, owner, patterns: patterns.iter().map(|p| p.as_ref().to_string()).collect() })
    }

    /// True when the list holds no pattern.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The user patterns, as given.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// True when any pattern matches (never for an empty list).
    pub fn is_match(&self, cand: &Candidate<'_>) -> bool {
        !self.patterns.is_empty() && self.set.is_match_candidate(cand)
    }

    /// The user-pattern indices that match, in ascending order, written
    /// into `out` (cleared first) so the caller can reuse the buffer.
    pub fn matches_into(&self, cand: &Candidate<'_>, scratch: &mut Vec<usize>, out: &mut Vec<usize>) {
        out.clear();
        if self.patterns.is_empty() {
            return;
        }
        self.set.matches_candidate_into(cand, scratch);
        out.extend(scratch.iter().map(|&g| self.owner[g]));
        out.sort_unstable();
        out.dedup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    fn m(pattern: &str, path: &[u8]) -> bool {
        let set = PatternSet::new(&[pattern]).unwrap();
        set.is_match(&Candidate::new(Path::new(OsStr::from_bytes(path))))
    }

    #[test]
    fn extensions_ignore_case_directories_do_not() {
        assert!(m("**/*.php", b"a/b/x.PhP"));
        assert!(m("uploads/**/*.php", b"uploads/2026/x.PHP"));
        assert!(!m("uploads/**/*.php", b"Uploads/2026/x.php"));
        assert!(m("*.{php,inc}", b"x.INC"));
    }

    #[test]
    fn star_stays_in_one_directory() {
        assert!(m("*.php", b"index.php"));
        assert!(!m("*.php", b"dir/index.php"));
        assert!(m("**/*.php", b"index.php"));
    }

    #[test]
    fn exec_covers_cousins_and_double_extensions() {
        for p in [&b"u/x.php"[..], b"u/x.PhTmL", b"u/a.php.jpg", b"u/x.phar", b"u/x.php7", b"u/deep/x.inc"] {
            assert!(m("u/**/@exec", p), "{}", String::from_utf8_lossy(p));
        }
        for p in [&b"u/x.jpg"[..], b"u/php", b"u/x.phpx"] {
            assert!(!m("u/**/@exec", p), "{}", String::from_utf8_lossy(p));
        }
    }

    #[test]
    fn matches_invalid_utf8_names() {
        assert!(m("**/*.php", b"a/\xff\xfe.php"));
    }

    #[test]
    fn bad_globs_are_named() {
        let err = validate("a/[b").unwrap_err();
        assert!(err.to_string().contains("a/[b"), "{err}");
        assert!(validate("/etc/*").is_err());
    }
}
