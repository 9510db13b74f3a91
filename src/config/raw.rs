//! The serde mirror of `sitewarden.yaml`. Unknown keys are errors (a typo
//! must not silently disable a guard) and every value is checked while it is
//! read, so the error carries its line and column. Nothing outside `config/`
//! sees these structs.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use super::duration::ConfigDuration;
use crate::model::Severity;
use crate::profile::raw::checked_str;
use crate::profile::{self, GlobText, RawQuarantineRule, RawRule};

/// What the deserializers need to know about where the config lives.
pub(crate) struct Context {
    /// Relative site roots are taken from here (the config file's folder).
    pub base_dir: PathBuf,
    /// Where profile files are looked up.
    pub profile_dir: PathBuf,
}

thread_local! {
    static CONTEXT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

/// Runs `f` with `ctx` visible to the deserializers below.
pub(crate) fn with_context<T>(ctx: Context, f: impl FnOnce() -> T) -> T {
    CONTEXT.with(|c| *c.borrow_mut() = Some(ctx));
    let out = f();
    CONTEXT.with(|c| *c.borrow_mut() = None);
    out
}

fn context<T>(f: impl FnOnce(&Context) -> T) -> Option<T> {
    CONTEXT.with(|c| c.borrow().as_ref().map(f))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub state_dir: Option<AbsPath>,
    pub sites: Sites,
    #[serde(default)]
    pub scan: RawScan,
    #[serde(default)]
    pub quarantine: RawQuarantine,
    #[serde(default)]
    pub alerts: RawAlerts,
}

/// The site list, checked for duplicate names and roots as it is read.
#[derive(Debug)]
pub struct Sites(pub Vec<RawSite>);

impl<'de> Deserialize<'de> for Sites {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Sites;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of sites")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Sites, A::Error> {
                let mut sites: Vec<RawSite> = Vec::new();
                let mut names = HashSet::new();
                let mut roots = HashSet::new();
                while let Some(site) = seq.next_element::<RawSite>()? {
                    if !names.insert(site.name.0.clone()) {
                        return Err(de::Error::custom(format!("duplicate site name '{}'", site.name.0)));
                    }
                    if let Some(other) = sites.iter().find(|o| {
                        o.root.real != site.root.real
                            && (site.root.real.starts_with(&o.root.real) || o.root.real.starts_with(&site.root.real))
                    }) {
                        return Err(de::Error::custom(format!(
                            "site '{}': root {} and the root of site '{}' ({}) are nested; one file would belong to two sites",
                            site.name.0,
                            site.root.real.display(),
                            other.name.0,
                            other.root.real.display()
                        )));
                    }
                    if !roots.insert(site.root.real.clone()) {
                        return Err(de::Error::custom(format!(
                            "site '{}': root {} is already the root of another site",
                            site.name.0,
                            site.root.real.display()
                        )));
                    }
                    sites.push(site);
                }
                if sites.is_empty() {
                    return Err(de::Error::custom("at least one site is needed"));
                }
                Ok(Sites(sites))
            }
        }
        d.deserialize_seq(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    pub name: SiteName,
    pub root: SiteRoot,
    #[serde(default)]
    pub profile: Option<ProfileName>,
    #[serde(default)]
    pub restrict: Vec<GlobText>,
    #[serde(default)]
    pub ignore: Vec<GlobText>,
    #[serde(default)]
    pub always: Vec<GlobText>,
    #[serde(default)]
    pub nodiff: Vec<GlobText>,
    #[serde(default)]
    pub rules: Vec<RawRule>,
    #[serde(default)]
    pub quarantine: Vec<RawQuarantineRule>,
    #[serde(default)]
    pub auto_accept: bool,
}

/// A site name: used in alerts, mail subjects and the store.
#[derive(Debug)]
pub struct SiteName(pub String);

impl<'de> Deserialize<'de> for SiteName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a site name", |s| {
            let ok = !s.is_empty()
                && s.len() <= 64
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                && s.as_bytes()[0].is_ascii_alphanumeric();
            if !ok {
                return Err(format!("invalid site name '{s}' (letters, digits, '.', '_' and '-', at most 64)"));
            }
            Ok(SiteName(s.to_string()))
        })
    }
}

/// A site root: must exist and be a directory. A root given through a
/// symlink (the admin's own choice) is resolved once, here.
#[derive(Debug)]
pub struct SiteRoot {
    /// As written, made absolute: what alerts show.
    pub shown: PathBuf,
    /// Canonical: what is walked and watched.
    pub real: PathBuf,
}

impl<'de> Deserialize<'de> for SiteRoot {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a directory path", |s| {
            let s = PathBuf::from(s);
            let shown = if s.is_absolute() { s } else { context(|c| c.base_dir.join(&s)).unwrap_or(s) };
            let shown = super::normalize(&shown);
            match std::fs::metadata(&shown) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Err(format!("site root {} does not exist", shown.display()))
                }
                Err(e) => Err(format!("site root {}: {e}", shown.display())),
                Ok(m) if !m.is_dir() => Err(format!("site root {} is not a directory", shown.display())),
                Ok(_) => {
                    let real =
                        std::fs::canonicalize(&shown).map_err(|e| format!("site root {}: {e}", shown.display()))?;
                    Ok(SiteRoot { shown, real })
                }
            }
        })
    }
}

/// A profile name that resolves to a built-in or a file.
#[derive(Debug)]
pub struct ProfileName(pub String);

impl<'de> Deserialize<'de> for ProfileName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a profile name", |s| {
            let dir = context(|c| c.profile_dir.clone()).unwrap_or_else(|| PathBuf::from(super::DEFAULT_PROFILE_DIR));
            if !profile::exists(s, &dir) {
                return Err(format!(
                    "unknown profile '{s}' (built-in: {}; or add {}/{s}.yaml)",
                    profile::names().join(", "),
                    dir.display()
                ));
            }
            Ok(ProfileName(s.to_string()))
        })
    }
}

/// An absolute path.
#[derive(Debug)]
pub struct AbsPath(pub PathBuf);

impl<'de> Deserialize<'de> for AbsPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "an absolute path", |s| {
            let p = Path::new(s);
            if !p.is_absolute() {
                return Err(format!("{} must be an absolute path", p.display()));
            }
            Ok(AbsPath(super::normalize(p)))
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScan {
    /// Time between periodic full scans.
    pub interval: Option<ConfigDuration>,
    /// Time between scans that re-hash every file, ignoring the stat cache.
    pub rehash_interval: Option<ConfigDuration>,
    /// Quiet period that coalesces events on one path.
    pub quiet_period: Option<ConfigDuration>,
    /// Scan interval of a site whose realtime watching is incomplete
    /// (inotify watch limit reached).
    pub fallback_interval: Option<ConfigDuration>,
    /// Scheduled scans read at most this many MB (10^6 bytes) per second.
    pub throttle_mb_per_sec: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuarantine {
    /// argv of a command run after each quarantine action (no shell).
    #[serde(default)]
    pub hook: Vec<String>,
    pub hook_timeout: Option<ConfigDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    pub log: Option<AbsPath>,
    pub email: Option<RawEmail>,
}

/// A mail address: `user@host` or `Name <user@host>`, no control characters.
#[derive(Debug, Clone)]
pub struct EmailAddr(pub String);

impl<'de> Deserialize<'de> for EmailAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a mail address", |s| {
            let addr = match (s.find('<'), s.rfind('>')) {
                (Some(a), Some(b)) if a < b => &s[a + 1..b],
                _ => s,
            };
            let ok = !s.chars().any(|c| c.is_control())
                && addr
                    .split_once('@')
                    .is_some_and(|(u, h)| !u.is_empty() && !h.is_empty() && !addr.contains(char::is_whitespace));
            if ok {
                Ok(EmailAddr(s.to_string()))
            } else {
                Err(format!("invalid mail address '{s}'"))
            }
        })
    }
}

/// A list that must hold at least one item.
fn non_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a non-empty list")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(x) = seq.next_element()? {
                out.push(x);
            }
            if out.is_empty() {
                return Err(de::Error::custom("at least one recipient is needed"));
            }
            Ok(out)
        }
    }
    d.deserialize_seq(V(std::marker::PhantomData))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmail {
    #[serde(deserialize_with = "non_empty")]
    pub to: Vec<EmailAddr>,
    pub from: EmailAddr,
    pub smtp: Option<RawSmtp>,
    #[serde(default)]
    pub transport: Option<Transport>,
    pub min_severity: Option<Severity>,
    pub digest_seconds: Option<u64>,
    pub max_per_hour: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Smtp,
    Sendmail,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    pub host: String,
    pub port: Option<u16>,
    pub tls: Option<Tls>,
    pub username: Option<String>,
    /// A file holding the password, so it never sits in the config.
    pub password_file: Option<AbsPath>,
    /// Extra CA certificates (PEM) to trust, for a private mail relay.
    pub ca_file: Option<AbsPath>,
}
