//! The serde mirror of a profile and of the rule lists a site config shares
//! with it. Values are checked as they are read (a glob compiles, a duration
//! parses), so serde's error carries the line and column of the culprit.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::model::{EventKind, FileType, QuarantineAction, Severity};
use crate::policy::{glob, QuarantineSpec, RuleSpec};

/// A glob checked while it is parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobText(pub String);

impl<'de> Deserialize<'de> for GlobText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a glob", |s| glob::validate(s).map(|()| GlobText(s.to_string())).map_err(|e| e.to_string()))
    }
}

/// A `secret_patterns` entry: a regular expression checked while it is
/// parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretPattern(pub String);

impl<'de> Deserialize<'de> for SecretPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a regular expression", |s| {
            crate::policy::secrets::validate(s).map(|()| SecretPattern(s.to_string())).map_err(|e| e.to_string())
        })
    }
}

/// Deserializes a string and checks it inside the visitor, so that the YAML
/// deserializer attaches the string's own line and column to the error.
pub fn checked_str<'de, D, T, F>(d: D, what: &'static str, check: F) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    F: FnOnce(&str) -> Result<T, String>,
{
    struct V<F>(F, &'static str);
    impl<T, F: FnOnce(&str) -> Result<T, String>> Visitor<'_> for V<F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.1)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.0)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(V(check, what))
}

/// The glob texts of a list, as the policy spec takes them.
pub fn texts(globs: &[GlobText]) -> Vec<String> {
    globs.iter().map(|g| g.0.clone()).collect()
}

/// `match:` takes one glob or a list of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneOrMany(pub Vec<GlobText>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a glob or a list of globs")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                glob::validate(v).map_err(E::custom)?;
                Ok(OneOrMany(vec![GlobText(v.to_string())]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::new();
                while let Some(g) = seq.next_element::<GlobText>()? {
                    out.push(g);
                }
                if out.is_empty() {
                    return Err(de::Error::custom("match: needs at least one glob"));
                }
                Ok(OneOrMany(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A file type as rules name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleType {
    /// A regular file.
    File,
    /// A symbolic link.
    Symlink,
    /// A named pipe.
    Fifo,
    /// A Unix domain socket.
    Socket,
    /// A device node.
    Device,
}

impl From<RuleType> for FileType {
    fn from(t: RuleType) -> FileType {
        match t {
            RuleType::File => FileType::File,
            RuleType::Symlink => FileType::Symlink,
            RuleType::Fifo => FileType::Fifo,
            RuleType::Socket => FileType::Socket,
            RuleType::Device => FileType::Device,
        }
    }
}

/// `{ id, match, events?, types?, severity }`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Reported as the alert's `rule`.
    pub id: String,
    /// `match:` the globs a path must match (one, or a list).
    #[serde(rename = "match")]
    pub patterns: OneOrMany,
    /// The events the rule applies to (empty: every event).
    #[serde(default)]
    pub events: Vec<EventKind>,
    /// The file types the rule applies to (empty: every type).
    #[serde(default)]
    pub types: Vec<RuleType>,
    /// The severity of a matching change.
    pub severity: Severity,
    /// Who must have written it: the rule then only raises the severity.
    #[serde(default)]
    pub actor: Option<RawActorMatch>,
}

/// `actor:` of a rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawActorMatch {
    /// User names, any of which.
    #[serde(default)]
    pub user: Vec<String>,
    /// Executable globs, any of which (`*/php-fpm*`).
    #[serde(default)]
    pub exe: Vec<ActorGlob>,
    /// Command name globs, any of which (`php-fpm*`).
    #[serde(default)]
    pub comm: Vec<ActorGlob>,
    /// systemd unit globs, any of which (`php*-fpm.service`).
    #[serde(default)]
    pub unit: Vec<ActorGlob>,
    /// Command name globs, any of which, for any of the writer's ancestors
    /// (`php-fpm*`: started by the web server).
    #[serde(default)]
    pub ancestor: Vec<ActorGlob>,
}

/// A glob over an executable path or a unit name (`*` crosses `/`).
#[derive(Clone, Debug)]
pub struct ActorGlob(pub globset::GlobMatcher);

impl PartialEq for ActorGlob {
    fn eq(&self, other: &Self) -> bool {
        self.0.glob() == other.0.glob()
    }
}

impl Eq for ActorGlob {}

impl<'de> Deserialize<'de> for ActorGlob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a glob", |s| {
            globset::Glob::new(s).map(|g| ActorGlob(g.compile_matcher())).map_err(|e| e.to_string())
        })
    }
}

impl RawRule {
    /// The rule as the policy takes it.
    pub fn spec(&self) -> RuleSpec {
        RuleSpec {
            id: self.id.clone(),
            patterns: texts(&self.patterns.0),
            events: self.events.clone(),
            types: self.types.iter().map(|&t| t.into()).collect(),
            severity: self.severity,
            actor: self.actor.as_ref().map(|a| crate::policy::ActorMatch {
                users: a.user.clone(),
                exes: a.exe.iter().map(|g| g.0.clone()).collect(),
                comms: a.comm.iter().map(|g| g.0.clone()).collect(),
                units: a.unit.iter().map(|g| g.0.clone()).collect(),
                ancestors: a.ancestor.iter().map(|g| g.0.clone()).collect(),
            }),
        }
    }
}

/// `{ match, action }`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuarantineRule {
    /// `match:` the globs of the paths quarantined (one, or a list).
    #[serde(rename = "match")]
    pub patterns: OneOrMany,
    /// What is done with a matching changed file.
    pub action: QuarantineAction,
    /// Only for these events (empty: any).
    #[serde(default)]
    pub events: Vec<EventKind>,
    /// `always` (the default) or `signature`: only when the new content
    /// matches a signature rule.
    #[serde(default)]
    pub when: crate::policy::QuarantineWhen,
}

impl RawQuarantineRule {
    /// The rule as the policy takes it.
    pub fn spec(&self) -> QuarantineSpec {
        QuarantineSpec {
            patterns: texts(&self.patterns.0),
            action: self.action,
            events: self.events.clone(),
            when: self.when,
        }
    }
}

/// A profile file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    /// One line shown by `sitewarden profiles`.
    #[serde(default)]
    pub description: String,
    /// Regular files checked at all (empty: every file).
    #[serde(default)]
    pub restrict: Vec<GlobText>,
    /// Paths not watched; a `DIR/**` is not even entered unless an `always`
    /// glob may match inside.
    #[serde(default)]
    pub ignore: Vec<GlobText>,
    /// Watched even where `ignore` matches.
    #[serde(default)]
    pub always: Vec<GlobText>,
    /// Secrets: hashed, never stored or shown.
    #[serde(default)]
    pub nodiff: Vec<GlobText>,
    /// Credential patterns added to the built-in ones.
    #[serde(default)]
    pub secret_patterns: Vec<SecretPattern>,
    /// Severity of a change no rule matches (default `medium`).
    #[serde(default)]
    pub default_severity: Option<Severity>,
    /// Severity rules; the first that matches the path, event and type wins.
    #[serde(default)]
    pub rules: Vec<RawRule>,
    /// Quarantine rules; the first that matches wins.
    #[serde(default)]
    pub quarantine: Vec<RawQuarantineRule>,
}
