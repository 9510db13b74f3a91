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
    /// The config has a global mail route (`alerts.email`), which a site
    /// owner's mail goes through.
    pub mail_route: bool,
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

/// The whole of `sitewarden.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Where the baseline, content store, mail outbox and quarantine live.
    #[serde(default)]
    pub state_dir: Option<AbsPath>,
    /// The watched sites (at least one).
    pub sites: Sites,
    /// Scan timing and throttling.
    #[serde(default)]
    pub scan: RawScan,
    /// The hook run after quarantine actions.
    #[serde(default)]
    pub quarantine: RawQuarantine,
    /// The alert log and mail.
    #[serde(default)]
    pub alerts: RawAlerts,
    /// Bounds of what the daemon keeps under `state_dir`.
    #[serde(default)]
    pub state: RawState,
    /// Where realtime events come from.
    #[serde(default)]
    pub realtime: RawRealtime,
    /// Published checksums of the packages sites run.
    #[serde(default)]
    pub vendors: RawVendors,
    /// Content signatures (YARA-X rules).
    #[serde(default)]
    pub signatures: RawSignatures,
    /// Prometheus metrics.
    #[serde(default)]
    pub metrics: RawMetrics,
}

/// The `metrics:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// node_exporter's textfile collector file, written atomically
    /// (e.g. /var/lib/prometheus/node-exporter/sitewarden.prom).
    pub textfile: Option<AbsPath>,
}

/// The `signatures:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSignatures {
    /// Scan new and changed files with the rules (default true).
    pub enabled: Option<bool>,
    /// Bytes of a file scanned at most (default 2MiB; a larger file's head).
    pub max_size: Option<super::size::ConfigSize>,
    /// The admin's rules, `*.yar` (default /etc/sitewarden/rules).
    pub rules_dir: Option<AbsPath>,
}

/// The `vendors:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVendors {
    /// Ask publishers for checksums (default true; only slug and version
    /// leave the server).
    pub enabled: Option<bool>,
    /// Accept a package update whose every file matches the new release,
    /// with one `info` summary (default true).
    pub auto_accept: Option<bool>,
    /// A request to a publisher taking longer is abandoned (default 20s).
    pub timeout: Option<ConfigDuration>,
    /// WordPress's endpoints (tests and mirrors point them elsewhere).
    #[serde(default)]
    pub wordpress: RawWordPressUrls,
}

/// `vendors.wordpress:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWordPressUrls {
    /// The core checksums API (`?version=V&locale=L` is added).
    pub core_checksums_url: Option<HttpUrl>,
    /// The base of plugin checksums (`/SLUG/VERSION.json` is added).
    pub plugin_checksums_url: Option<HttpUrl>,
    /// The base of core release archives (`/[LOCALE/]wordpress-V.zip`).
    pub core_archive_url: Option<HttpUrl>,
    /// The base of plugin archives (`/SLUG.V.zip`).
    pub plugin_archive_url: Option<HttpUrl>,
    /// The base of theme archives (`/SLUG.V.zip`).
    pub theme_archive_url: Option<HttpUrl>,
}

/// An `http://` or `https://` URL.
#[derive(Debug)]
pub struct HttpUrl(pub String);

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "an http:// or https:// URL", |s| {
            let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
            let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
            if host.is_some_and(|h| !h.is_empty() && !h.starts_with(':'))
                && !s.contains(char::is_control)
                && !s.contains(' ')
            {
                Ok(HttpUrl(s.to_string()))
            } else {
                // Never the whole of it in a log: a webhook's path is its token.
                Err(format!("{} is not an http:// or https:// URL with a host", crate::util::shown_url(s)))
            }
        })
    }
}

/// The `realtime:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRealtime {
    /// `auto` (fanotify where possible, else inotify), `fanotify` or `inotify`.
    #[serde(default)]
    pub source: crate::model::RealtimeSource,
}

/// The `state:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    /// The content store's cap (default 256MiB); the oldest versions no
    /// baseline refers to are pruned first.
    pub content_max: Option<super::size::ConfigSize>,
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

/// One entry of `sites:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    /// Names the site in alerts, mail subjects and the store.
    pub name: SiteName,
    /// The site's root directory (a relative one is taken from the config's folder).
    pub root: SiteRoot,
    /// The site's profile (default `generic-php`).
    #[serde(default)]
    pub profile: Option<ProfileName>,
    /// Added to the profile's `restrict`: the regular files checked.
    #[serde(default)]
    pub restrict: Vec<GlobText>,
    /// Added to the profile's `ignore`: paths not watched.
    #[serde(default)]
    pub ignore: Vec<GlobText>,
    /// Added to the profile's `always`: watched even where `ignore` matches.
    #[serde(default)]
    pub always: Vec<GlobText>,
    /// Added to the profile's `nodiff`: secrets, hashed but never stored or shown.
    #[serde(default)]
    pub nodiff: Vec<GlobText>,
    /// Added to the profile's `secret_patterns`: what a credential looks like.
    #[serde(default)]
    pub secret_patterns: Vec<crate::profile::raw::SecretPattern>,
    /// Severity rules, tried before the profile's.
    #[serde(default)]
    pub rules: Vec<RawRule>,
    /// Quarantine rules, tried before the profile's.
    #[serde(default)]
    pub quarantine: Vec<RawQuarantineRule>,
    /// Take each change into the baseline as soon as it is alerted.
    #[serde(default)]
    pub auto_accept: bool,
    /// What was deployed: a directory or a `.tar.gz` release archive that
    /// changes are judged against (`verdict`), and `verify` checks.
    #[serde(default)]
    pub reference: Option<AbsPath>,
    /// The site owner's own alert routes.
    #[serde(default)]
    pub alerts: Option<RawSiteAlerts>,
}

/// `sites[].alerts:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSiteAlerts {
    /// Mail about this site only, through the route of `alerts.email`.
    pub email: Option<RawSiteEmail>,
    /// Webhooks receiving this site's alerts only.
    #[serde(default)]
    pub webhooks: Webhooks,
}

/// `sites[].alerts.email:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSiteEmail {
    /// The site owner's addresses (at least one), which need the global
    /// mail route.
    #[serde(deserialize_with = "owner_addresses")]
    pub to: Vec<EmailAddr>,
}

/// A site owner's addresses: at least one, and a mail route to send through.
fn owner_addresses<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EmailAddr>, D::Error> {
    let to = non_empty(d)?;
    if context(|c| c.mail_route) == Some(false) {
        return Err(de::Error::custom("a site owner's mail needs the mail route of the global alerts.email"));
    }
    Ok(to)
}

/// A list of webhooks, each URL at most once (two entries would deliver
/// every alert twice through one outbox).
#[derive(Debug, Default)]
pub struct Webhooks(pub Vec<RawWebhook>);

impl<'de> Deserialize<'de> for Webhooks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Webhooks;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of webhooks")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Webhooks, A::Error> {
                let mut hooks: Vec<RawWebhook> = Vec::new();
                while let Some(h) = seq.next_element::<RawWebhook>()? {
                    if hooks.iter().any(|o| o.url.0 == h.url.0) {
                        return Err(de::Error::custom(format!(
                            "webhook {} is listed twice",
                            crate::util::shown_url(&h.url.0)
                        )));
                    }
                    hooks.push(h);
                }
                Ok(Webhooks(hooks))
            }
        }
        d.deserialize_seq(V)
    }
}

/// `alerts.webhooks[]` and `sites[].alerts.webhooks[]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    /// Where the alerts are POSTed.
    pub url: HttpUrl,
    /// The payload: `json` (default), `slack`, `mattermost` or `teams`.
    #[serde(default)]
    pub kind: crate::model::WebhookKind,
    /// A file holding the key of the `X-Sitewarden-Signature` HMAC.
    pub secret_file: Option<SecretFile>,
    /// Alerts below this are not sent (default `low`).
    pub min_severity: Option<Severity>,
    /// Alerts below `high` are grouped this long (default 60; 0 for `json`).
    pub digest_seconds: Option<u64>,
    /// At most this many posts an hour; the overflow is folded into the next.
    pub max_per_hour: Option<u32>,
}

/// `alerts.syslog:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSyslog {
    /// The collector's host name or address.
    pub host: HostName,
    /// Its port (default 514, 6514 with TLS).
    pub port: Option<Port>,
    /// `udp` (default), `tcp` or `tls`.
    #[serde(default)]
    pub protocol: crate::model::SyslogProtocol,
    /// `rfc5424` (the record in structured data, default) or `json` (in MSG).
    #[serde(default)]
    pub format: crate::model::SyslogFormat,
    /// The syslog facility (default `daemon`).
    #[serde(default)]
    pub facility: crate::model::SyslogFacility,
    /// Alerts below this are not sent (default `info`: all).
    pub min_severity: Option<Severity>,
    /// CA certificates (PEM) the collector's certificate is checked with
    /// (default: the system's).
    pub ca_file: Option<CertFile>,
    /// This host's certificate (PEM), for a collector that asks for one.
    pub cert_file: Option<CertFile>,
    /// Its private key (PEM).
    pub key_file: Option<KeyFile>,
}

/// A PEM file holding at least one certificate.
#[derive(Debug)]
pub struct CertFile(pub PathBuf);

impl<'de> Deserialize<'de> for CertFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        pem_file(d, "an absolute path to a PEM certificate file", |p| crate::util::keyfile::read_certs(p).map(|_| ()))
            .map(CertFile)
    }
}

/// A PEM file holding a private key.
#[derive(Debug)]
pub struct KeyFile(pub PathBuf);

impl<'de> Deserialize<'de> for KeyFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        pem_file(d, "an absolute path to a PEM private key file", |p| crate::util::keyfile::read_key(p).map(|_| ()))
            .map(KeyFile)
    }
}

/// An absolute path whose content `check` accepts.
fn pem_file<'de, D: Deserializer<'de>>(
    d: D,
    what: &'static str,
    check: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<PathBuf, D::Error> {
    checked_str(d, what, |s| {
        let p = Path::new(s);
        if !p.is_absolute() {
            return Err(format!("{} must be an absolute path", p.display()));
        }
        check(p).map(|()| super::normalize(p))
    })
}

/// A host name or an address.
#[derive(Debug)]
pub struct HostName(pub String);

impl<'de> Deserialize<'de> for HostName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a host name or address", |s| {
            let bare = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(s);
            let name_ok = |h: &str| {
                !h.is_empty()
                    && h.len() <= 253
                    && h.trim_end_matches('.').split('.').all(|l| {
                        !l.is_empty()
                            && l.len() <= 63
                            && !l.starts_with('-')
                            && !l.ends_with('-')
                            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    })
            };
            if bare.parse::<std::net::IpAddr>().is_ok() || name_ok(bare) {
                Ok(HostName(bare.to_string()))
            } else {
                Err(format!("invalid host '{s}' (a name or an address; the port goes in port:)"))
            }
        })
    }
}

/// A TCP or UDP port, 1 to 65535.
#[derive(Debug, Clone, Copy)]
pub struct Port(pub u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Checked inside the visitor, so the error carries the value's place.
        struct V;
        impl Visitor<'_> for V {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a port, 1 to 65535")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Port, E> {
                match u16::try_from(n) {
                    Ok(p) if p > 0 => Ok(Port(p)),
                    _ => Err(E::custom(format!("invalid port {n} (1 to 65535)"))),
                }
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Port, E> {
                self.visit_i64(i64::try_from(n).unwrap_or(i64::MAX))
            }
        }
        d.deserialize_u64(V)
    }
}

/// A file holding a secret key: absolute, readable, not empty, at most
/// 4 KiB. Only its path is kept; it is read again when the sink is built.
#[derive(Debug)]
pub struct SecretFile(pub PathBuf);

impl<'de> Deserialize<'de> for SecretFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "an absolute path to a readable file", |s| {
            let p = Path::new(s);
            if !p.is_absolute() {
                return Err(format!("{} must be an absolute path", p.display()));
            }
            crate::util::keyfile::read_secret(p).map(|_| SecretFile(super::normalize(p)))
        })
    }
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

/// A hook's argv: the program is checked when the config is read, so a
/// missing or non-executable hook fails `config-check`, start and reload
/// rather than every quarantine.
#[derive(Debug, Default)]
pub struct HookArgv(pub Vec<String>);

impl<'de> Deserialize<'de> for HookArgv {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HookArgv;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list: the hook program, then its arguments")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<HookArgv, A::Error> {
                let mut argv = Vec::new();
                if let Some(Executable(prog)) = seq.next_element()? {
                    argv.push(prog);
                }
                while let Some(arg) = seq.next_element::<String>()? {
                    argv.push(arg);
                }
                Ok(HookArgv(argv))
            }
        }
        d.deserialize_seq(V)
    }
}

/// A program that exists and may be executed (absolute, or found on
/// [`super::HOOK_PATH`]).
struct Executable(String);

impl<'de> Deserialize<'de> for Executable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a program", |s| {
            use std::os::unix::fs::PermissionsExt;
            let candidates: Vec<PathBuf> = if s.contains('/') {
                vec![PathBuf::from(s)]
            } else {
                super::HOOK_PATH.split(':').map(|dir| Path::new(dir).join(s)).collect()
            };
            for p in &candidates {
                match std::fs::metadata(p) {
                    Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {
                        return Ok(Executable(s.to_string()))
                    }
                    Ok(m) if m.is_file() => {
                        return Err(format!("hook program {} is not executable (chmod +x it)", p.display()))
                    }
                    Ok(_) => return Err(format!("hook program {} is not a regular file", p.display())),
                    Err(_) => {}
                }
            }
            Err(format!("hook program {s} does not exist"))
        })
    }
}

/// An absolute path to a regular file this process can read (a secret
/// such as the SMTP password).
#[derive(Debug)]
pub struct ReadableFile(pub PathBuf);

impl<'de> Deserialize<'de> for ReadableFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "an absolute path to a readable file", |s| {
            let p = Path::new(s);
            if !p.is_absolute() {
                return Err(format!("{} must be an absolute path", p.display()));
            }
            match std::fs::File::open(p).and_then(|f| f.metadata()) {
                Ok(m) if m.is_file() => Ok(ReadableFile(super::normalize(p))),
                Ok(_) => Err(format!("{} is not a regular file", p.display())),
                Err(e) => Err(format!("cannot read {}: {e}", p.display())),
            }
        })
    }
}

/// The `scan:` section.
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
    /// A path that keeps changing is judged at least this often.
    pub max_delay: Option<ConfigDuration>,
    /// Files with more than one hard link are re-checked by stat this often.
    pub hardlink_interval: Option<ConfigDuration>,
    /// Scheduled scans read at most this many MB (10^6 bytes) per second.
    pub throttle_mb_per_sec: Option<u64>,
}

/// The `quarantine:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuarantine {
    /// argv of a command run after each quarantine action (no shell); its
    /// program must exist and be executable.
    #[serde(default)]
    pub hook: HookArgv,
    /// A hook still running after this is killed (default 30s).
    pub hook_timeout: Option<ConfigDuration>,
    /// The quarantine's cap (default 1GiB); the oldest items go first.
    pub max_size: Option<super::size::ConfigSize>,
}

/// The `alerts:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    /// The JSON-lines alert log (absolute; default /var/log/sitewarden/alerts.jsonl).
    pub log: Option<AbsPath>,
    /// `json` (the record, the default) or `ecs` (Elastic Common Schema).
    #[serde(default)]
    pub log_format: crate::model::LogFormat,
    /// Mail delivery; absent: no mail.
    pub email: Option<RawEmail>,
    /// Webhooks receiving every alert.
    #[serde(default)]
    pub webhooks: Webhooks,
    /// A syslog collector receiving every alert.
    pub syslog: Option<RawSyslog>,
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

/// The `alerts.email:` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmail {
    /// Recipients (at least one).
    #[serde(deserialize_with = "non_empty")]
    pub to: Vec<EmailAddr>,
    /// Sender address.
    pub from: EmailAddr,
    /// The mail server (default: `localhost`, no TLS, port 25).
    pub smtp: Option<RawSmtp>,
    /// `smtp` (default) or `sendmail`.
    #[serde(default)]
    pub transport: Option<Transport>,
    /// Alerts below this severity are not mailed (default `low`).
    pub min_severity: Option<Severity>,
    /// How long alerts below `high` are grouped, from the first queued one
    /// (default 60).
    pub digest_seconds: Option<u64>,
    /// At most this many mails an hour; the overflow is folded into the next one.
    pub max_per_hour: Option<u32>,
}

/// How mail leaves the host (`alerts.email.transport`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Through an SMTP server (`alerts.email.smtp`).
    Smtp,
    /// Through the local MTA's `sendmail` command.
    Sendmail,
}

/// How the SMTP connection is encrypted (`alerts.email.smtp.tls`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// Not at all (default port 25).
    None,
    /// Plain connection upgraded with STARTTLS, which is required (default port 587).
    Starttls,
    /// TLS from the first byte (default port 465).
    Tls,
}

/// The `alerts.email.smtp:` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    /// Server host name or address.
    pub host: String,
    /// Server port (default from `tls`: 25, 587 or 465).
    pub port: Option<u16>,
    /// `none` (default), `starttls` or `tls`.
    pub tls: Option<Tls>,
    /// Login, if the server wants one (needs `password_file`).
    pub username: Option<String>,
    /// A file holding the password, so it never sits in the config.
    pub password_file: Option<ReadableFile>,
    /// Extra CA certificates (PEM) to trust, for a private mail relay.
    pub ca_file: Option<AbsPath>,
}
