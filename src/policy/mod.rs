//! The policy: from a site's profile and its own additions, decide for a path
//! whether it is watched at all, how severe a change of it is, whether its
//! content may be shown, and whether it is quarantined.
//!
//! Pure and cheap: globs are compiled once, and classifying a path costs a
//! few automaton runs and no allocation beyond reused buffers, because it
//! runs for every kernel event.

pub mod glob;
pub mod secrets;

use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use globset::Candidate;

use crate::model::{Change, EventKind, FileState, FileType, QuarantineAction, Severity};
use glob::PatternSet;
use secrets::Secrets;

/// The rule id reported when no severity rule matches.
pub const DEFAULT_RULE: &str = "default";

/// One severity rule, as the profile or site gives it.
#[derive(Clone, Debug)]
pub struct RuleSpec {
    /// Reported as the alert's `rule`.
    pub id: String,
    /// Globs, any of which the path must match.
    pub patterns: Vec<String>,
    /// Empty means every event.
    pub events: Vec<EventKind>,
    /// Empty means every file type.
    pub types: Vec<FileType>,
    /// The severity of a matching change.
    pub severity: Severity,
    /// Who must have written it (`actor:`). Such a rule only ever raises
    /// the severity of what the other rules say, for changes whose writer
    /// is known (realtime on the fanotify source).
    pub actor: Option<ActorMatch>,
}

/// `actor:` of a rule: each list given must match (any of its entries).
#[derive(Clone, Debug, Default)]
pub struct ActorMatch {
    /// User names.
    pub users: Vec<String>,
    /// Executables, as globs (`*/php-fpm*`).
    pub exes: Vec<globset::GlobMatcher>,
    /// Command names, as globs (`php-fpm*`): readable where the executable
    /// link is not (another user's process, without CAP_SYS_PTRACE).
    pub comms: Vec<globset::GlobMatcher>,
    /// systemd units, as globs (`php*-fpm.service`).
    pub units: Vec<globset::GlobMatcher>,
    /// Command names of an ancestor, as globs (`php-fpm*`): any ancestor.
    pub ancestors: Vec<globset::GlobMatcher>,
}

impl ActorMatch {
    /// Does `a` match?
    pub fn matches(&self, a: &crate::model::Actor) -> bool {
        let any = |globs: &[globset::GlobMatcher], v: Option<&String>| {
            globs.is_empty() || v.is_some_and(|v| globs.iter().any(|g| g.is_match(v)))
        };
        (self.users.is_empty() || a.user.as_ref().is_some_and(|u| self.users.contains(u)))
            && any(&self.exes, a.exe.as_ref())
            && any(&self.comms, a.comm.as_ref())
            && any(&self.units, a.unit.as_ref())
            && (self.ancestors.is_empty() || a.ancestors.iter().any(|c| self.ancestors.iter().any(|g| g.is_match(c))))
    }
}

/// One quarantine rule.
#[derive(Clone, Debug)]
pub struct QuarantineSpec {
    /// Globs, any of which the path must match.
    pub patterns: Vec<String>,
    /// What is done with a matching changed file.
    pub action: QuarantineAction,
    /// Only for these events (empty: any).
    pub events: Vec<EventKind>,
    /// Always, or only when a signature matched.
    pub when: QuarantineWhen,
}

impl QuarantineSpec {
    /// Does it remove every new file it matches? Restoring an added file
    /// means removing it: a rule that restores on `added` (or on every
    /// event) without `when: signature` removes a plugin's protective
    /// `.htaccess` (`deny from all`) as surely as an attacker's.
    pub fn removes_every_new_file(&self) -> bool {
        self.action == crate::model::QuarantineAction::Restore
            && self.when == QuarantineWhen::Always
            && (self.events.is_empty() || self.events.contains(&EventKind::Added))
    }
}

/// When a quarantine rule acts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuarantineWhen {
    /// On every matching change.
    #[default]
    Always,
    /// Only when the new content matches a signature rule.
    Signature,
}

/// Everything the policy is built from, profile lists first, site lists
/// appended (site rules are put first so a site can override its profile).
#[derive(Clone, Debug, Default)]
pub struct PolicySpec {
    /// Regular files checked at all (empty: every file).
    pub restrict: Vec<String>,
    /// Paths not watched.
    pub ignore: Vec<String>,
    /// Paths watched even where `ignore` matches.
    pub always: Vec<String>,
    /// Secrets: hashed, their content never stored or shown. Matched in
    /// any case, and also against the name with editor and backup
    /// decorations taken off (`.wp-config.php.swp`, `#wp-config.php#`,
    /// `wp-config.php.bak`...).
    pub nodiff: Vec<String>,
    /// Regular expressions added to the built-in credential patterns
    /// ([`secrets::BUILTIN`]).
    pub secret_patterns: Vec<String>,
    /// Severity rules in the order they are tried; the first that matches wins.
    pub rules: Vec<RuleSpec>,
    /// Quarantine rules; the first that matches wins.
    pub quarantine: Vec<QuarantineSpec>,
    /// Severity when no rule matches (`None`: medium).
    pub default_severity: Option<Severity>,
}

/// Rule id of a site root that resolves to another directory than before
/// (a deploy symlink swapped).
pub const ROOT_SWAPPED: &str = "root-swapped";
/// Rule id of a file that gained a hard link.
pub const HARDLINK: &str = "hardlink";
/// Rule id of new content the signature rules could not be run over (a
/// timeout under load, a scanner error): at least `high`, never "clean".
pub const UNSCANNED: &str = "signature-scan-failed";
/// Rule id of a directory that became writable by others.
pub const DIR_WORLD_WRITABLE: &str = "dir-world-writable";

/// The decision for one changed path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict<'a> {
    /// How serious the change is.
    pub severity: Severity,
    /// Id of the rule that decided it, or [`DEFAULT_RULE`]; made for the
    /// change only when a signature decided it (`signature:NAME`).
    pub rule: Cow<'a, str>,
    /// The content must never be stored or shown (a secret).
    pub nodiff: bool,
    /// What the quarantine does with the file, if a rule matches.
    pub quarantine: Option<QuarantineAction>,
}

/// A compiled policy for one site.
#[derive(Debug)]
pub struct Policy {
    restrict: PatternSet,
    ignore: PatternSet,
    always: PatternSet,
    nodiff: PatternSet,
    /// Ignore globs of the form `DIR/**`, reduced to `DIR`: directories the
    /// walker need not enter unless an `always` glob may match inside.
    prune: PatternSet,
    /// Literal directory prefixes of the `always` globs; `None` if one of them
    /// can match anywhere.
    always_prefixes: Option<Vec<Vec<u8>>>,
    rules: Vec<RuleSpec>,
    rule_set: PatternSet,
    rule_of_pattern: Vec<usize>,
    quarantine: Vec<QuarantineSpec>,
    quarantine_set: PatternSet,
    quarantine_of_pattern: Vec<usize>,
    default_severity: Severity,
    secrets: std::sync::Arc<Secrets>,
}

/// A policy that cannot be compiled.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A bad glob.
    #[error(transparent)]
    Glob(#[from] glob::GlobError),
    /// A bad `secret_patterns` entry.
    #[error(transparent)]
    Secret(#[from] secrets::SecretPatternError),
}

/// Suffixes editors and admins add to a file's name when they copy it.
const BACKUP_SUFFIXES: &[&str] =
    &[".bak", ".orig", ".save", ".old", ".dist", ".tmp", ".backup", ".copy", ".swp", ".swo", ".swx", "~"];

/// The name `rel` stands for with editor and backup decorations taken off
/// its last component (`.x.swp`, `#x#`, `.#x`, `x~`, `x.bak`, `x.save.1`),
/// lower-cased; `None` when there were none.
fn undecorated(rel: &[u8]) -> Option<Vec<u8>> {
    let cut = rel.iter().rposition(|&b| b == b'/').map(|i| i + 1).unwrap_or(0);
    let (dir, name) = rel.split_at(cut);
    let mut n: Vec<u8> = name.to_ascii_lowercase();
    let original = n.clone();
    for _ in 0..4 {
        let before = n.clone();
        // A numbered copy: x.save.1, x.bak.2
        if let Some(dot) = n.iter().rposition(|&b| b == b'.') {
            if dot + 1 < n.len() && n[dot + 1..].iter().all(u8::is_ascii_digit) {
                n.truncate(dot);
            }
        }
        if n.len() > 2 && n.starts_with(b"#") && n.ends_with(b"#") {
            n = n[1..n.len() - 1].to_vec();
        }
        if let Some(rest) = n.strip_prefix(b".#") {
            n = rest.to_vec();
        }
        for suffix in BACKUP_SUFFIXES {
            if n.len() > suffix.len() && n.ends_with(suffix.as_bytes()) {
                n.truncate(n.len() - suffix.len());
                // vim's swap file hides the name behind a dot.
                if matches!(*suffix, ".swp" | ".swo" | ".swx") && n.len() > 1 && n.starts_with(b".") {
                    n.remove(0);
                }
                break;
            }
        }
        if n == before {
            break;
        }
    }
    (n != original).then(|| [dir, &n[..]].concat())
}

thread_local! {
    static SCRATCH: RefCell<(Vec<usize>, Vec<usize>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

fn candidate(rel: &[u8]) -> Candidate<'_> {
    Candidate::new(Path::new(OsStr::from_bytes(rel)))
}

impl Policy {
    /// Compiles a spec; the error names the first invalid glob.
    pub fn compile(spec: &PolicySpec) -> Result<Policy, PolicyError> {
        let mut rule_patterns = Vec::new();
        let mut rule_of_pattern = Vec::new();
        for (i, r) in spec.rules.iter().enumerate() {
            for p in &r.patterns {
                rule_patterns.push(p.clone());
                rule_of_pattern.push(i);
            }
        }
        let mut q_patterns = Vec::new();
        let mut quarantine_of_pattern = Vec::new();
        for (i, q) in spec.quarantine.iter().enumerate() {
            for p in &q.patterns {
                q_patterns.push(p.clone());
                quarantine_of_pattern.push(i);
            }
        }
        let prune: Vec<String> = spec
            .ignore
            .iter()
            .filter_map(|g| g.strip_suffix("/**").map(str::to_string))
            .filter(|g| !g.is_empty())
            .collect();
        let always_prefixes = spec.always.iter().map(|g| literal_prefix(g)).collect::<Option<Vec<_>>>();
        Ok(Policy {
            restrict: PatternSet::new(&spec.restrict)?,
            ignore: PatternSet::new(&spec.ignore)?,
            always: PatternSet::new(&spec.always)?,
            nodiff: PatternSet::any_case(&spec.nodiff)?,
            prune: PatternSet::new(&prune)?,
            always_prefixes,
            rules: spec.rules.clone(),
            rule_set: PatternSet::new(&rule_patterns)?,
            rule_of_pattern,
            quarantine: spec.quarantine.clone(),
            quarantine_set: PatternSet::new(&q_patterns)?,
            quarantine_of_pattern,
            default_severity: spec.default_severity.unwrap_or(Severity::Medium),
            secrets: Secrets::shared(&spec.secret_patterns)?,
        })
    }

    /// The glob lists, for `config-check` and `profiles`.
    pub fn lists(&self) -> [(&'static str, &[String]); 4] {
        [
            ("restrict", self.restrict.patterns()),
            ("ignore", self.ignore.patterns()),
            ("always", self.always.patterns()),
            ("nodiff", self.nodiff.patterns()),
        ]
    }

    /// Severity rules in the order they are tried, and quarantine rules.
    pub fn rules(&self) -> (&[RuleSpec], &[QuarantineSpec], Severity) {
        (&self.rules, &self.quarantine, self.default_severity)
    }

    /// Is this path integrity-checked? `always` beats `ignore`; `restrict`
    /// and `ignore` narrow regular files only: a symlink, FIFO, socket or
    /// device node has no business in a web root (a symlink to
    /// `/etc/shadow` in `uploads/` is a classic way to read it over HTTP), so
    /// every one found where the walker goes is watched. So is every
    /// directory the walker enters (below the root), for its mode and
    /// owner: a world-writable `uploads/` is how many compromises start.
    pub fn watched(&self, rel: &[u8], kind: FileType) -> bool {
        match kind {
            FileType::Dir => return !rel.is_empty() && self.descend(rel),
            FileType::File => {}
            _ => return true,
        }
        let cand = candidate(rel);
        if self.always.is_match(&cand) {
            return true;
        }
        if self.ignore.is_match(&cand) {
            return false;
        }
        self.restrict.is_empty() || self.restrict.is_match(&cand)
    }

    /// Must the walker (and the watcher) enter this directory? Only an
    /// ignored `DIR/**` that no `always` glob can reach into is skipped.
    pub fn descend(&self, rel_dir: &[u8]) -> bool {
        if rel_dir.is_empty() || !self.prune.is_match(&candidate(rel_dir)) {
            return true;
        }
        match &self.always_prefixes {
            None => true,
            Some(prefixes) => prefixes.iter().any(|p| related(p, rel_dir)),
        }
    }

    /// Is this path a secret by its name (hash only, content never stored
    /// or shown)? In any case, at the depth its pattern allows, and through
    /// editor and backup copies of the name. A secret by content is told by
    /// [`Policy::secrets`].
    pub fn nodiff(&self, rel: &[u8]) -> bool {
        if self.nodiff.is_match(&candidate(rel)) {
            return true;
        }
        let Some(u) = undecorated(rel) else { return false };
        if self.nodiff.is_match(&candidate(&u)) {
            return true;
        }
        // vim hides a name behind a dot (`.x.swp`); a dotfile's own dot may
        // have gone with it (`.env.swp` stands for `.env`, not `env`).
        let cut = u.iter().rposition(|&b| b == b'/').map(|i| i + 1).unwrap_or(0);
        let dotted = [&u[..cut], b".", &u[cut..]].concat();
        self.nodiff.is_match(&candidate(&dotted))
    }

    /// The credential patterns of this site (built-in and added).
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// The verdict on `c`: [`Policy::classify`], then what the state
    /// itself says: a root that resolves elsewhere is at least `high`
    /// ([`ROOT_SWAPPED`]); a directory that became writable by others is at least
    /// `high` ([`DIR_WORLD_WRITABLE`]); a file that gained a hard link is at
    /// least `medium` ([`HARDLINK`]).
    pub fn verdict(&self, c: &Change) -> Verdict<'_> {
        let mut v = self.classify_signed(&c.rel, c.file_type(), c.kind, !c.signatures.is_empty());
        if let Some(first) = c.signatures.first() {
            // What the content is beats where it is.
            if v.severity < Severity::Critical {
                v.severity = Severity::Critical;
                v.rule = Cow::Owned(format!("signature:{}", crate::model::signature_rule(first)));
            }
        }
        if c.unscanned.is_some() && c.signatures.is_empty() && v.severity < Severity::High {
            v.severity = Severity::High;
            v.rule = UNSCANNED.into();
        }
        if let Some(r) = c.actor.as_deref().and_then(|a| self.actor_rule(&c.rel, c.file_type(), c.kind, a)) {
            if r.severity > v.severity {
                v.severity = r.severity;
                v.rule = r.id.as_str().into();
            }
        }
        if c.rel.is_empty() {
            // The root now resolves elsewhere: a deploy, or someone
            // pointing the site at code of their own.
            v.severity = v.severity.max(Severity::High);
            v.rule = ROOT_SWAPPED.into();
            return v;
        }
        let linked = |s: Option<&FileState>| s.is_some_and(FileState::linked);
        if linked(c.after.as_ref()) && !linked(c.before.as_ref()) {
            // Metadata with nothing else changed (or reported at baseline).
            let only_links = c.kind == EventKind::Metadata
                && c.before
                    .as_ref()
                    .zip(c.after.as_ref())
                    .is_none_or(|(b, a)| (b.mode, b.uid, b.gid) == (a.mode, a.uid, a.gid));
            if only_links || v.severity < Severity::Medium {
                v.severity = v.severity.max(Severity::Medium);
                v.rule = HARDLINK.into();
            }
        }
        let others_write = |s: Option<&FileState>| s.is_some_and(|s| s.mode & 0o002 != 0);
        if c.file_type() == FileType::Dir
            && others_write(c.after.as_ref())
            && !others_write(c.before.as_ref())
            && v.severity < Severity::High
        {
            v.severity = Severity::High;
            v.rule = DIR_WORLD_WRITABLE.into();
        }
        v
    }

    /// The most severe rule with an `actor:` that matches the change and
    /// its writer.
    fn actor_rule(
        &self,
        rel: &[u8],
        kind: FileType,
        event: EventKind,
        actor: &crate::model::Actor,
    ) -> Option<&RuleSpec> {
        let cand = candidate(rel);
        SCRATCH.with(|cell| {
            let mut guard = cell.borrow_mut();
            let (scratch, hits) = &mut *guard;
            self.rule_set.matches_into(&cand, scratch, hits);
            hits.iter()
                .map(|&p| &self.rules[self.rule_of_pattern[p]])
                .filter(|r| {
                    r.actor.as_ref().is_some_and(|m| m.matches(actor))
                        && (r.events.is_empty() || r.events.contains(&event))
                        && (r.types.is_empty() || r.types.contains(&kind))
                })
                .max_by_key(|r| r.severity)
        })
    }

    /// Classifies a change of a watched path (as if its content matched no
    /// signature).
    pub fn classify(&self, rel: &[u8], kind: FileType, event: EventKind) -> Verdict<'_> {
        self.classify_signed(rel, kind, event, false)
    }

    /// Is `rel` watched only through `always` (uploads, caches): a place
    /// where no code belongs?
    pub fn foreign_place(&self, rel: &[u8]) -> bool {
        let cand = candidate(rel);
        self.always.is_match(&cand) && self.ignore.is_match(&cand)
    }

    /// Classifies a change; `signed`: its content matched a signature.
    fn classify_signed(&self, rel: &[u8], kind: FileType, event: EventKind, signed: bool) -> Verdict<'_> {
        let cand = candidate(rel);
        SCRATCH.with(|cell| {
            let mut guard = cell.borrow_mut();
            let (scratch, hits) = &mut *guard;
            self.rule_set.matches_into(&cand, scratch, hits);
            let rule = hits
                .iter()
                .map(|&p| self.rule_of_pattern[p])
                .filter(|&r| {
                    let r = &self.rules[r];
                    r.actor.is_none()
                        && (r.events.is_empty() || r.events.contains(&event))
                        && (r.types.is_empty() || r.types.contains(&kind))
                })
                .min()
                .map(|r| &self.rules[r]);
            self.quarantine_set.matches_into(&cand, scratch, hits);
            let quarantine = hits
                .iter()
                .map(|&p| self.quarantine_of_pattern[p])
                .filter(|&q| {
                    let q = &self.quarantine[q];
                    (q.events.is_empty() || q.events.contains(&event)) && (q.when == QuarantineWhen::Always || signed)
                })
                .min()
                .map(|q| self.quarantine[q].action);
            Verdict {
                severity: rule.map(|r| r.severity).unwrap_or(self.default_severity),
                rule: rule.map(|r| r.id.as_str()).unwrap_or(DEFAULT_RULE).into(),
                nodiff: self.nodiff(rel),
                quarantine,
            }
        })
    }
}

/// The leading components of a glob that hold no glob syntax, as bytes;
/// `None` when the glob starts with a wildcard and so may match anywhere.
fn literal_prefix(glob: &str) -> Option<Vec<u8>> {
    let mut prefix: Vec<&str> = Vec::new();
    for comp in glob.split('/') {
        if comp.contains(['*', '?', '[', '{', '\\']) || comp == glob::EXEC_TOKEN {
            break;
        }
        prefix.push(comp);
    }
    if prefix.is_empty() {
        None
    } else {
        Some(prefix.join("/").into_bytes())
    }
}

/// True when one of the two directory paths contains the other.
fn related(a: &[u8], b: &[u8]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    long.starts_with(short) && (long.len() == short.len() || long[short.len()] == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_match_in_any_case_and_through_editor_copies() {
        let p = Policy::compile(&PolicySpec { nodiff: vec!["**/wp-config*".into()], ..PolicySpec::default() }).unwrap();
        for name in [
            "wp-config.php",
            "WP-CONFIG.PHP",
            "blog2/wp-config.php",
            ".wp-config.php.swp",
            "backup/.wp-config.php.swo",
            "#wp-config.php#",
            ".#wp-config.php",
            "wp-config.php~",
            "wp-config.php.bak",
            "wp-config.php.save.1",
            "wp-config.php.orig",
            "wp-config.php.dist",
        ] {
            assert!(p.nodiff(name.as_bytes()), "{name}");
        }
        for name in ["config.php", "wp-settings.php", "my-wp-config-notes.txt"] {
            assert!(!p.nodiff(name.as_bytes()), "{name}");
        }
        let env = Policy::compile(&PolicySpec { nodiff: vec!["**/.env".into()], ..PolicySpec::default() }).unwrap();
        assert!(env.nodiff(b".env.bak") && env.nodiff(b"sub/.ENV") && env.nodiff(b".env~"));
        assert!(env.nodiff(b".env.swp") && env.nodiff(b"sub/.env.swo"), "vim's swap file of a dotfile");
        assert_eq!(undecorated(b"a/b/.x.php.swp").as_deref(), Some(&b"a/b/x.php"[..]));
        assert_eq!(undecorated(b"x.php"), None);
    }

    fn wp_like() -> Policy {
        Policy::compile(&PolicySpec {
            restrict: vec!["**/@exec".into(), "**/*.js".into(), "**/.htaccess".into()],
            ignore: vec!["wp-content/uploads/**".into(), "wp-content/cache/**".into()],
            always: vec!["wp-content/uploads/**/@exec".into(), "wp-content/uploads/**/.htaccess".into()],
            nodiff: vec!["wp-config.php".into()],
            secret_patterns: Vec::new(),
            rules: vec![RuleSpec {
                id: "php-in-uploads".into(),
                patterns: vec!["wp-content/uploads/**/@exec".into()],
                events: vec![EventKind::Added, EventKind::Modified],
                types: vec![],
                severity: Severity::Critical,
                actor: None,
            }],
            quarantine: vec![QuarantineSpec {
                patterns: vec!["**/.htaccess".into()],
                action: QuarantineAction::Restore,
                events: vec![],
                when: QuarantineWhen::Always,
            }],
            default_severity: Some(Severity::High),
        })
        .unwrap()
    }

    #[test]
    fn always_beats_ignore() {
        let p = wp_like();
        assert!(p.watched(b"wp-content/uploads/2026/11/x.PhP", FileType::File));
        assert!(p.watched(b"wp-content/uploads/a.php.jpg", FileType::File));
        assert!(!p.watched(b"wp-content/uploads/a.jpg", FileType::File));
        assert!(!p.watched(b"wp-content/cache/x.php", FileType::File));
        assert!(p.watched(b"index.php", FileType::File));
        assert!(!p.watched(b"readme.txt", FileType::File));
        assert!(p.watched(b"readme.txt", FileType::Symlink));
        assert!(p.watched(b"wp-content/uploads/s.txt", FileType::Symlink));
    }

    #[test]
    fn pruning_respects_always() {
        let p = wp_like();
        assert!(!p.descend(b"wp-content/cache"));
        assert!(p.descend(b"wp-content/uploads"));
        assert!(p.descend(b"wp-content/uploads/2026"));
        assert!(p.descend(b"wp-content"));
    }

    #[test]
    fn classify_picks_first_rule_for_the_event() {
        let p = wp_like();
        let v = p.classify(b"wp-content/uploads/x.php", FileType::File, EventKind::Added);
        assert_eq!((v.severity, &*v.rule), (Severity::Critical, "php-in-uploads"));
        let v = p.classify(b"wp-content/uploads/x.php", FileType::File, EventKind::Deleted);
        assert_eq!((v.severity, &*v.rule), (Severity::High, DEFAULT_RULE));
        let v = p.classify(b"a/.htaccess", FileType::File, EventKind::Modified);
        assert_eq!(v.quarantine, Some(QuarantineAction::Restore));
        assert!(p.classify(b"wp-config.php", FileType::File, EventKind::Modified).nodiff);
    }
}
