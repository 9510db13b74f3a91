//! The configuration: read `sitewarden.yaml` (a raw serde mirror, checked as
//! it is parsed), then compile it into the settings the rest of the program
//! uses. Every error is one line naming the file, line and column.

pub mod duration;
mod raw;
pub mod size;

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::model::Severity;
use crate::policy::{Policy, PolicySpec};
use crate::profile;
pub use raw::{Tls, Transport};

/// The `PATH` a quarantine hook runs with, and where a hook program named
/// without a slash is looked up.
pub const HOOK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The config read when neither `-c` nor `$SITEWARDEN_CONFIG` names one.
pub const DEFAULT_CONFIG: &str = "/etc/sitewarden/sitewarden.yaml";
/// Local profiles of the default config; also those of `sitewarden watch`.
pub const DEFAULT_PROFILE_DIR: &str = "/etc/sitewarden/profiles";
/// Default `state_dir`: baseline, content store, mail outbox, quarantine.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/sitewarden";
/// Default `alerts.log`: the JSON-lines alert log.
pub const DEFAULT_ALERT_LOG: &str = "/var/log/sitewarden/alerts.jsonl";
/// The admin's signature rules.
pub const DEFAULT_RULES_DIR: &str = "/etc/sitewarden/rules";
/// Bytes of a file scanned for signatures at most.
pub const DEFAULT_SIGNATURE_MAX: u64 = 2 << 20;
/// Default `scan.interval`: a full scan every 4 hours.
pub const DEFAULT_SCAN_INTERVAL: Duration = Duration::from_secs(4 * 3600);
/// Default `scan.quiet_period`: events on one path within 200 ms give one check.
pub const DEFAULT_QUIET_PERIOD: Duration = Duration::from_millis(200);
/// Default `scan.max_delay`: a file kept "hot" is still judged every 2 s.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(2);
/// Default `scan.hardlink_interval`.
pub const DEFAULT_HARDLINK_INTERVAL: Duration = Duration::from_secs(10);
/// Default `scan.fallback_interval`: a site whose realtime watching is
/// incomplete is scanned every 5 minutes.
pub const DEFAULT_FALLBACK_INTERVAL: Duration = Duration::from_secs(300);

/// A config or profile that cannot be used. Displayed as one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A parse or validation error at a known place in a config or profile.
    #[error("{file}:{line}:{column}: {message}")]
    At {
        /// The file, or `<built-in profile NAME>` / `<command line>`.
        file: String,
        /// Line, from 1.
        line: usize,
        /// Column, from 1.
        column: usize,
        /// What is wrong, on one line.
        message: String,
    },
    /// An error about a file as a whole: unreadable, empty, a site's policy
    /// that does not compile, or a YAML error without a position.
    #[error("{file}: {message}")]
    File {
        /// The file, as named in the error.
        file: String,
        /// What is wrong, on one line.
        message: String,
    },
    /// An error tied to no place in a file: an unknown site, an unknown or
    /// invalid profile name, a root that is not UTF-8, a reload that would
    /// change `state_dir`.
    #[error("{0}")]
    Other(String),
}

impl ConfigError {
    /// Turns a YAML error into `file:line:column: message`, with serde's own
    /// "at line X column Y" suffixes removed and the text kept on one line.
    pub fn from_yaml(file: &str, e: &serde_yaml::Error) -> ConfigError {
        let file = file.to_string();
        match crate::util::yaml_error(e) {
            (Some((line, column)), message) => ConfigError::At { file, line, column, message },
            (None, message) => ConfigError::File { file, message },
        }
    }
}

impl From<crate::profile::ProfileError> for ConfigError {
    fn from(e: crate::profile::ProfileError) -> ConfigError {
        use crate::profile::ProfileError;
        match e {
            ProfileError::At { file, line, column, message } => ConfigError::At { file, line, column, message },
            ProfileError::File { file, message } => ConfigError::File { file, message },
            ProfileError::Name(message) => ConfigError::Other(message),
        }
    }
}

/// One watched site, ready to use.
#[derive(Debug)]
pub struct Site {
    /// The site name (letters, digits, `.`, `_` and `-`): in alerts, mail and the store.
    pub name: Arc<str>,
    /// The root as configured, made absolute: what alerts show.
    pub root: PathBuf,
    /// The canonical root: what is walked and watched.
    pub real_root: PathBuf,
    /// Name of the profile its policy was built from.
    pub profile: String,
    /// The compiled policy: the profile's lists with the site's own added.
    pub policy: Arc<Policy>,
    /// Take each change into the baseline as soon as it is alerted.
    pub auto_accept: bool,
    /// What was deployed (`reference:`): a directory or `.tar.gz`.
    pub reference: Option<PathBuf>,
    /// The site owner's addresses (`sites[].alerts.email.to`): they receive
    /// the mails about this site only.
    pub owners: Vec<String>,
    /// The site owner's webhooks (`sites[].alerts.webhooks`).
    pub webhooks: Vec<WebhookSettings>,
    /// What in the site's settings is allowed but likely a mistake, for
    /// `config-check` and the daemon's start to say.
    pub warnings: Vec<String>,
}

/// When and how the daemon scans (`scan:`), defaults filled in.
#[derive(Debug, Clone)]
pub struct ScanSettings {
    /// Time between scheduled full scans.
    pub interval: Duration,
    /// Time between scans that hash every file, ignoring the stat cache
    /// (`None`: never).
    pub rehash_interval: Option<Duration>,
    /// Events on one path within this are coalesced into one check.
    pub quiet_period: Duration,
    /// Scan interval of a site whose realtime watching is incomplete.
    pub fallback_interval: Duration,
    /// A path that keeps changing (a "hot" file) is judged at least this
    /// often, and alerted once until it settles or its severity rises.
    pub max_delay: Duration,
    /// Files with more than one hard link are re-checked by stat this often
    /// (a write through another name gives no inotify event here).
    pub hardlink_interval: Duration,
    /// Read budget of scheduled scans, bytes per second.
    pub throttle: Option<u64>,
}

/// The quarantine hook (`quarantine:`).
#[derive(Debug, Clone)]
pub struct QuarantineSettings {
    /// argv of the command run after each quarantine action, without a shell
    /// (empty: none).
    pub hook: Vec<String>,
    /// A hook still running after this is killed (default 30 s).
    pub hook_timeout: Duration,
    /// The quarantine's total size at most (bytes); oldest items purged first.
    pub max_size: u64,
}

/// Bounds of the state kept under `state_dir` (`state:`).
#[derive(Clone, Debug)]
pub struct StateSettings {
    /// The content store's total size at most (bytes).
    pub content_max: u64,
}

/// Default `state.content_max`.
pub const DEFAULT_CONTENT_MAX: u64 = 256 << 20;
/// Default `quarantine.max_size`.
pub const DEFAULT_QUARANTINE_MAX: u64 = 1 << 30;

/// Where and when alerts are mailed (`alerts.email:`), defaults filled in.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    /// Recipients (at least one).
    pub to: Vec<String>,
    /// Sender address.
    pub from: String,
    /// SMTP, or the local `sendmail`.
    pub transport: Transport,
    /// Mail server (default `localhost`).
    pub smtp_host: String,
    /// Mail server port (default from `tls`: 25, 587 with STARTTLS, 465 with TLS).
    pub smtp_port: u16,
    /// How the SMTP connection is encrypted (default: not at all).
    pub tls: Tls,
    /// SMTP login, if the server wants one (needs `password_file`).
    pub username: Option<String>,
    /// File holding the SMTP password, so it never sits in the config.
    pub password_file: Option<PathBuf>,
    /// Extra CA certificates (PEM) to trust, for a private mail relay.
    pub ca_file: Option<PathBuf>,
    /// Alerts below this are not mailed (default `low`).
    pub min_severity: Severity,
    /// Alerts below `high` are grouped for this many seconds from the first
    /// queued one (default 60).
    pub digest_seconds: u64,
    /// At most this many mails an hour; the overflow is folded into the next one.
    pub max_per_hour: Option<u32>,
}

/// Where alerts go (`alerts:`).
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// The JSON-lines alert log.
    pub log: PathBuf,
    /// What a line of it is: the record, or its ECS document.
    pub log_format: crate::model::LogFormat,
    /// Mail delivery; `None` without `alerts.email`.
    pub email: Option<EmailSettings>,
    /// Webhooks receiving every alert (`alerts.webhooks`).
    pub webhooks: Vec<WebhookSettings>,
    /// The syslog collector (`alerts.syslog`).
    pub syslog: Option<SyslogSettings>,
}

/// A webhook (`alerts.webhooks[]`, `sites[].alerts.webhooks[]`), defaults
/// filled in.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Where alerts are POSTed (it may hold a token: never logged whole).
    pub url: String,
    /// The payload's shape.
    pub kind: crate::model::WebhookKind,
    /// The file holding the HMAC key of `X-Sitewarden-Signature`.
    pub secret_file: Option<PathBuf>,
    /// Alerts below this are not sent.
    pub min_severity: Severity,
    /// Alerts below `high` are grouped this long.
    pub digest_seconds: u64,
    /// At most this many posts an hour.
    pub max_per_hour: Option<u32>,
}

fn webhook_settings(w: raw::RawWebhook) -> WebhookSettings {
    let machine = w.kind == crate::model::WebhookKind::Json;
    WebhookSettings {
        url: w.url.0,
        kind: w.kind,
        secret_file: w.secret_file.map(|p| p.0),
        min_severity: w.min_severity.unwrap_or(Severity::Low),
        digest_seconds: w.digest_seconds.unwrap_or(if machine { 0 } else { 60 }),
        max_per_hour: w.max_per_hour,
    }
}

/// The syslog collector (`alerts.syslog`), defaults filled in.
#[derive(Debug, Clone)]
pub struct SyslogSettings {
    /// Its host name or address.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// UDP, TCP or TLS.
    pub protocol: crate::model::SyslogProtocol,
    /// Where the record goes: structured data, or JSON in MSG.
    pub format: crate::model::SyslogFormat,
    /// The facility of every message.
    pub facility: crate::model::SyslogFacility,
    /// Alerts below this are not sent.
    pub min_severity: Severity,
    /// CA certificates (PEM) for TLS; default: the system's.
    pub ca_file: Option<PathBuf>,
    /// This host's certificate (PEM), for a collector that asks for one.
    pub cert_file: Option<PathBuf>,
    /// Its private key (PEM).
    pub key_file: Option<PathBuf>,
}

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// Where the baseline, content store, mail outbox and quarantine live.
    pub state_dir: PathBuf,
    /// The watched sites, in config order.
    pub sites: Vec<Site>,
    /// Scan timing and throttling.
    pub scan: ScanSettings,
    /// The quarantine hook.
    pub quarantine: QuarantineSettings,
    /// The alert log and mail.
    pub alerts: AlertSettings,
    /// Bounds of the state under `state_dir`.
    pub state: StateSettings,
    /// Where realtime events come from (`realtime.source`).
    pub realtime: crate::model::RealtimeSource,
    /// Published checksums (`vendors:`).
    pub vendors: VendorSettings,
    /// Content signatures (`signatures:`), compiled on first use.
    pub signatures: SignatureSettings,
    /// Prometheus metrics (`metrics:`).
    pub metrics: MetricsSettings,
}

/// `metrics:`.
#[derive(Debug, Clone, Default)]
pub struct MetricsSettings {
    /// The textfile collector's file, when metrics are on.
    pub textfile: Option<PathBuf>,
}

/// `signatures:`, defaults filled in; the rules are compiled once, when
/// first asked for (the daemon and `config-check` ask at load).
#[derive(Debug)]
pub struct SignatureSettings {
    /// Scan new and changed files.
    pub enabled: bool,
    /// Bytes of a file scanned at most.
    pub max_size: u64,
    /// The admin's rules.
    pub rules_dir: PathBuf,
    compiled: std::sync::OnceLock<Result<crate::signatures::Shared, String>>,
}

impl SignatureSettings {
    /// The compiled rules (`None`: signatures are off); a rule that does not
    /// compile is a config error `file:line:column: message`.
    pub fn rules(&self) -> Result<Option<crate::signatures::Shared>, ConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        let compiled = self.compiled.get_or_init(|| {
            crate::signatures::Signatures::compile(Some(&self.rules_dir), self.max_size)
                .map(std::sync::Arc::new)
                .map_err(|e| e.to_string())
        });
        match compiled {
            Ok(s) => Ok(Some(std::sync::Arc::clone(s))),
            Err(e) => Err(ConfigError::Other(e.clone())),
        }
    }

    /// The rules, or none when they cannot be had (already reported when the
    /// configuration was loaded).
    pub fn rules_or_none(&self) -> Option<crate::signatures::Shared> {
        self.rules().ok().flatten()
    }
}

/// `vendors:`, defaults filled in.
#[derive(Debug, Clone)]
pub struct VendorSettings {
    /// Ask publishers for checksums.
    pub enabled: bool,
    /// Accept a genuine update quietly (`vendors.auto_accept`).
    pub auto_accept: bool,
    /// WordPress's endpoints.
    pub wordpress: crate::releases::wordpress::Urls,
}

impl Config {
    /// The config path: `-c` first, then `$SITEWARDEN_CONFIG`, then /etc.
    pub fn resolve_path(cli: Option<&Path>) -> PathBuf {
        if let Some(p) = cli {
            return p.to_path_buf();
        }
        match std::env::var_os("SITEWARDEN_CONFIG") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => PathBuf::from(DEFAULT_CONFIG),
        }
    }

    /// Reads and validates the config at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            file: path.display().to_string(),
            message: format!("cannot read config: {e}"),
        })?;
        let abs = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir().map(|d| d.join(path)).unwrap_or_else(|_| path.to_path_buf())
        };
        let base = abs.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
        Config::parse(&text, path, &base, &base.join("profiles"))
    }

    /// Validates config `text`; `origin` names it in errors, relative roots
    /// are taken from `base_dir`, profile files from `profile_dir`.
    pub fn parse(text: &str, origin: &Path, base_dir: &Path, profile_dir: &Path) -> Result<Config, ConfigError> {
        let file = origin.display().to_string();
        if text.trim().is_empty() {
            return Err(ConfigError::File { file, message: "the config is empty (it needs at least `sites:`)".into() });
        }
        // Whether there is a mail route, known before the sites are read.
        let mail_route = serde_yaml::from_str::<serde_yaml::Value>(text)
            .map(|v| v.get("alerts").and_then(|a| a.get("email")).is_some_and(|e| !e.is_null()))
            .unwrap_or(true);
        let ctx = raw::Context { base_dir: base_dir.to_path_buf(), profile_dir: profile_dir.to_path_buf(), mail_route };
        let raw: raw::RawConfig =
            raw::with_context(ctx, || serde_yaml::from_str(text)).map_err(|e| ConfigError::from_yaml(&file, &e))?;

        let mut sites = Vec::new();
        for s in raw.sites.0 {
            let profile_name =
                s.profile.as_ref().map(|p| p.0.clone()).unwrap_or_else(|| profile::DEFAULT_PROFILE.to_string());
            let profile = profile::load(&profile_name, profile_dir)?;
            let spec = site_spec(&profile.raw, &s);
            let warnings = s
                .quarantine
                .iter()
                .map(|q| q.spec())
                .filter(|q| q.removes_every_new_file())
                .map(|q| {
                    format!(
                        "quarantine rule {:?} restores added files, that is removes every new one it matches \
                         (a plugin's protective .htaccess too): limit it to `events: [modified, deleted, metadata]`, \
                         or add `when: signature`",
                        q.patterns
                    )
                })
                .collect();
            let policy = Policy::compile(&spec)
                .map_err(|e| ConfigError::File { file: file.clone(), message: format!("site '{}': {e}", s.name.0) })?;
            sites.push(Site {
                name: Arc::from(s.name.0.as_str()),
                root: s.root.shown,
                real_root: s.root.real,
                profile: profile_name,
                policy: Arc::new(policy),
                auto_accept: s.auto_accept,
                reference: match s.reference.as_ref() {
                    Some(p) if !p.0.exists() => {
                        return Err(ConfigError::Other(format!(
                            "site {}: reference {} does not exist",
                            s.name.0,
                            p.0.display()
                        )))
                    }
                    p => p.map(|p| p.0.clone()),
                },
                owners: s
                    .alerts
                    .as_ref()
                    .and_then(|a| a.email.as_ref())
                    .map(|e| e.to.iter().map(|a| a.0.clone()).collect())
                    .unwrap_or_default(),
                webhooks: s
                    .alerts
                    .map(|a| a.webhooks.0.into_iter().map(webhook_settings).collect())
                    .unwrap_or_default(),
                warnings,
            });
        }

        if let Some(sl) = &raw.alerts.syslog {
            let tls = sl.protocol == crate::model::SyslogProtocol::Tls;
            let misplaced = [
                ("ca_file", sl.ca_file.is_some()),
                ("cert_file", sl.cert_file.is_some()),
                ("key_file", sl.key_file.is_some()),
            ]
            .into_iter()
            .find(|(_, set)| *set && !tls);
            let half = match (&sl.cert_file, &sl.key_file) {
                (Some(_), None) => Some(("cert_file", "cert_file needs key_file")),
                (None, Some(_)) => Some(("key_file", "key_file needs cert_file")),
                _ => None,
            };
            let problem = misplaced
                .map(|(key, _)| (key, format!("alerts.syslog.{key} is for protocol: tls")))
                .or_else(|| half.map(|(key, m)| (key, format!("alerts.syslog: {m}"))));
            if let Some((key, message)) = problem {
                return Err(at_key(text, file, &["alerts", "syslog", key], message));
            }
        }
        let email = raw.alerts.email.map(|e| {
            let smtp = e.smtp;
            let tls = smtp.as_ref().and_then(|s| s.tls).unwrap_or(Tls::None);
            EmailSettings {
                to: e.to.into_iter().map(|a| a.0).collect(),
                from: e.from.0,
                transport: e.transport.unwrap_or(Transport::Smtp),
                smtp_host: smtp.as_ref().map(|s| s.host.clone()).unwrap_or_else(|| "localhost".into()),
                smtp_port: smtp.as_ref().and_then(|s| s.port).unwrap_or(match tls {
                    Tls::None => 25,
                    Tls::Starttls => 587,
                    Tls::Tls => 465,
                }),
                tls,
                username: smtp.as_ref().and_then(|s| s.username.clone()),
                password_file: smtp.as_ref().and_then(|s| s.password_file.as_ref().map(|p| p.0.clone())),
                ca_file: smtp.as_ref().and_then(|s| s.ca_file.as_ref().map(|p| p.0.clone())),
                min_severity: e.min_severity.unwrap_or(Severity::Low),
                digest_seconds: e.digest_seconds.unwrap_or(60),
                max_per_hour: e.max_per_hour,
            }
        });

        Ok(Config {
            path: origin.to_path_buf(),
            state_dir: raw.state_dir.map(|p| p.0).unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
            sites,
            scan: ScanSettings {
                interval: raw.scan.interval.map(|d| d.0).unwrap_or(DEFAULT_SCAN_INTERVAL),
                rehash_interval: raw.scan.rehash_interval.map(|d| d.0),
                quiet_period: raw.scan.quiet_period.map(|d| d.0).unwrap_or(DEFAULT_QUIET_PERIOD),
                fallback_interval: raw.scan.fallback_interval.map(|d| d.0).unwrap_or(DEFAULT_FALLBACK_INTERVAL),
                max_delay: raw.scan.max_delay.map(|d| d.0).unwrap_or(DEFAULT_MAX_DELAY),
                hardlink_interval: raw.scan.hardlink_interval.map(|d| d.0).unwrap_or(DEFAULT_HARDLINK_INTERVAL),
                throttle: raw.scan.throttle_mb_per_sec.filter(|&n| n > 0).map(|n| n.saturating_mul(1_000_000)),
            },
            quarantine: QuarantineSettings {
                hook: raw.quarantine.hook.0,
                hook_timeout: raw.quarantine.hook_timeout.map(|d| d.0).unwrap_or(Duration::from_secs(30)),
                max_size: raw.quarantine.max_size.map(|s| s.0).unwrap_or(DEFAULT_QUARANTINE_MAX),
            },
            state: StateSettings { content_max: raw.state.content_max.map(|s| s.0).unwrap_or(DEFAULT_CONTENT_MAX) },
            realtime: raw.realtime.source,
            vendors: VendorSettings {
                enabled: raw.vendors.enabled.unwrap_or(true),
                auto_accept: raw.vendors.auto_accept.unwrap_or(true),
                wordpress: {
                    let d = crate::releases::wordpress::Urls::default();
                    let w = raw.vendors.wordpress;
                    crate::releases::wordpress::Urls {
                        core: w.core_checksums_url.map(|u| u.0).unwrap_or(d.core),
                        plugin: w.plugin_checksums_url.map(|u| u.0).unwrap_or(d.plugin),
                        core_archive: w.core_archive_url.map(|u| u.0).unwrap_or(d.core_archive),
                        plugin_archive: w.plugin_archive_url.map(|u| u.0).unwrap_or(d.plugin_archive),
                        theme_archive: w.theme_archive_url.map(|u| u.0).unwrap_or(d.theme_archive),
                        timeout: raw.vendors.timeout.map(|t| t.0).unwrap_or(d.timeout),
                    }
                },
            },
            metrics: MetricsSettings { textfile: raw.metrics.textfile.map(|p| p.0) },
            signatures: SignatureSettings {
                enabled: raw.signatures.enabled.unwrap_or(true),
                max_size: raw.signatures.max_size.map(|s| s.0).unwrap_or(DEFAULT_SIGNATURE_MAX),
                rules_dir: raw.signatures.rules_dir.map(|d| d.0).unwrap_or_else(|| PathBuf::from(DEFAULT_RULES_DIR)),
                compiled: std::sync::OnceLock::new(),
            },
            alerts: AlertSettings {
                log: raw.alerts.log.map(|p| p.0).unwrap_or_else(|| PathBuf::from(DEFAULT_ALERT_LOG)),
                log_format: raw.alerts.log_format,
                email,
                webhooks: raw.alerts.webhooks.0.into_iter().map(webhook_settings).collect(),
                syslog: raw.alerts.syslog.map(|s| SyslogSettings {
                    port: s.port.map(|p| p.0).unwrap_or(match s.protocol {
                        crate::model::SyslogProtocol::Tls => 6514,
                        _ => 514,
                    }),
                    host: s.host.0,
                    protocol: s.protocol,
                    format: s.format,
                    facility: s.facility,
                    min_severity: s.min_severity.unwrap_or(Severity::Info),
                    ca_file: s.ca_file.map(|p| p.0),
                    cert_file: s.cert_file.map(|p| p.0),
                    key_file: s.key_file.map(|p| p.0),
                }),
            },
        })
    }

    /// Where the config at `path` keeps its state, read leniently (for
    /// `status` when the file no longer parses): its `state_dir:` line, else
    /// the default.
    pub fn state_dir_hint(path: &Path) -> PathBuf {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        locate_key(&text, &["state_dir"])
            .and_then(|(line, col)| text.lines().nth(line - 1).map(|l| l[col - 1..].trim().to_string()))
            .map(|v| PathBuf::from(v.trim_matches(|c| c == '"' || c == '\'')))
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
    }

    /// Checks what `run` will write: the state directory and the alert
    /// log's folder must be writable (or creatable) — a read-only
    /// filesystem is an error here, before anything is created, with the
    /// place of the key in the config file.
    pub fn check_writable(&self) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        let log_dir = self.alerts.log.parent().unwrap_or(Path::new("/"));
        for (keys, path, what) in [
            (&["state_dir"][..], &self.state_dir, "state_dir"),
            (&["alerts", "log"][..], &log_dir.to_path_buf(), "alerts.log"),
        ] {
            if let Err(message) = writable(path).and_then(|()| private(path)) {
                return Err(at_key(&text, self.path.display().to_string(), keys, format!("{what}: {message}")));
            }
        }
        Ok(())
    }

    /// A one-site configuration with no config file (`sitewarden watch`):
    /// built as YAML text and validated like any other.
    pub fn ephemeral(profile: &str, root: &Path, state_dir: &Path) -> Result<Config, ConfigError> {
        let root_text =
            root.to_str().ok_or_else(|| ConfigError::Other(format!("{} is not valid UTF-8", root.display())))?;
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let abs = normalize(&cwd.join(root));
        let name: String = abs
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '-' })
                    .collect()
            })
            .filter(|n: &String| n.as_bytes().first().is_some_and(|b| b.is_ascii_alphanumeric()))
            .unwrap_or_else(|| "site".into());
        let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let text = format!(
            "state_dir: {}\nsites:\n  - name: {}\n    root: {}\n    profile: {}\n",
            quote(&state_dir.display().to_string()),
            quote(&name),
            quote(root_text),
            quote(profile)
        );
        Config::parse(&text, Path::new("<command line>"), &cwd, Path::new(DEFAULT_PROFILE_DIR))
    }

    /// The site called `name`.
    pub fn site(&self, name: &str) -> Option<&Site> {
        self.sites.iter().find(|s| &*s.name == name)
    }

    /// The sites a `--site` option selects (all when it is absent).
    pub fn select(&self, name: Option<&str>) -> Result<Vec<&Site>, ConfigError> {
        match name {
            None => Ok(self.sites.iter().collect()),
            Some(n) => self.site(n).map(|s| vec![s]).ok_or_else(|| {
                let known: Vec<&str> = self.sites.iter().map(|s| &*s.name).collect();
                ConfigError::Other(format!(
                    "no site named '{n}' in {} (sites: {})",
                    self.path.display(),
                    known.join(", ")
                ))
            }),
        }
    }
}

/// A site's policy: its profile's lists with the site's own appended; the
/// site's severity rules come first so they can override the profile's.
fn site_spec(profile: &profile::RawProfile, site: &raw::RawSite) -> PolicySpec {
    let mut spec = profile.spec();
    let texts = crate::profile::raw::texts;
    spec.restrict.extend(texts(&site.restrict));
    spec.ignore.extend(texts(&site.ignore));
    spec.always.extend(texts(&site.always));
    spec.nodiff.extend(texts(&site.nodiff));
    spec.secret_patterns.extend(site.secret_patterns.iter().map(|p| p.0.clone()));
    let mut rules: Vec<_> = site.rules.iter().map(|r| r.spec()).collect();
    rules.append(&mut spec.rules);
    spec.rules = rules;
    let mut quarantine: Vec<_> = site.quarantine.iter().map(|q| q.spec()).collect();
    quarantine.append(&mut spec.quarantine);
    spec.quarantine = quarantine;
    spec
}

/// Removes `.` and `..` components without touching the filesystem.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Can this process create files in `dir` (or create `dir`)? The nearest
/// existing ancestor decides; a read-only filesystem says no even to root.
fn writable(dir: &Path) -> Result<(), String> {
    use nix::unistd::{access, AccessFlags};
    let mut probe = dir;
    loop {
        match std::fs::metadata(probe) {
            Ok(m) if !m.is_dir() => return Err(format!("{} is not a directory", probe.display())),
            Ok(_) => {
                return access(probe, AccessFlags::W_OK | AccessFlags::X_OK).map_err(|e| {
                    let why = if e == nix::errno::Errno::EROFS { "read-only filesystem" } else { e.desc() };
                    format!("{} is not writable ({why})", probe.display())
                })
            }
            Err(_) => match probe.parent() {
                Some(parent) => probe = parent,
                None => return Err(format!("{} cannot be created", dir.display())),
            },
        }
    }
}

/// Refuses a folder of the daemon's own (the state dir, the alert log's)
/// that someone else could write, as sshd's StrictModes does: the folder,
/// if it exists, and every folder above it must belong to root or to this
/// user; the folder itself must be writable by no one else, a folder above
/// by no one but its owner and group (Ubuntu's `/var/log` is `root:syslog
/// 0775`), or by all with the sticky bit, as `/tmp`, where only an entry's
/// owner may rename or remove it. A www-data that could write there could
/// rewrite the baseline, the quarantine or the alerts. Checked along the
/// path as written and along the path it resolves to: a symlink on the way
/// leads to folders whose own owners count too.
fn private(dir: &Path) -> Result<(), String> {
    private_along(dir)?;
    // The deepest folder that exists, resolved, and the rest as written.
    let mut existing = dir;
    let mut rest = Vec::new();
    while !existing.exists() {
        let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else { return Ok(()) };
        rest.push(name);
        existing = parent;
    }
    let Ok(mut real) = existing.canonicalize() else { return Ok(()) };
    real.extend(rest.iter().rev());
    if real == dir {
        return Ok(());
    }
    private_along(&real)
}

fn private_along(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    let mut probe = Some(dir);
    while let Some(p) = probe {
        probe = p.parent();
        let Ok(m) = std::fs::metadata(p) else { continue };
        let own = p == dir;
        let sticky = m.mode() & 0o1000 != 0;
        if m.uid() != 0 && m.uid() != me {
            return Err(format!(
                "{} belongs to uid {}: only root (or this user) may own the folders sitewarden keeps its state in",
                p.display(),
                m.uid()
            ));
        }
        let shared = if own { 0o022 } else { 0o002 };
        if m.mode() & shared != 0 && (own || !sticky) {
            return Err(format!(
                "{} is writable by others (mode {:04o}): whoever can write there can rewrite what sitewarden \
                 trusts; make it `chmod go-w`",
                p.display(),
                m.mode() & 0o7777
            ));
        }
    }
    Ok(())
}

/// The error `message` at the value of the key at `keys` in `text` (of
/// `file`), or about the whole file when it is not written there.
fn at_key(text: &str, file: String, keys: &[&str], message: String) -> ConfigError {
    match locate_key(text, keys) {
        Some((line, column)) => ConfigError::At { file, line, column, message },
        None => ConfigError::File { file, message },
    }
}

/// Line and column (from 1) of the value of the key at `keys` (a path of
/// block-mapping keys, as `state_dir` or `alerts` → `log`) in YAML `text`;
/// `None` when it is not written there (a default applies).
fn locate_key(text: &str, keys: &[&str]) -> Option<(usize, usize)> {
    let mut depth = 0;
    let mut indent: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        let body = line.trim_start();
        let here = line.len() - body.len();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        if indent.is_some_and(|i| here <= i) {
            return None; // left the parent mapping
        }
        let Some(rest) = body.strip_prefix(keys[depth]).and_then(|r| r.strip_prefix(':')) else { continue };
        if depth + 1 == keys.len() {
            let value_at = line.len() - rest.trim_start().len();
            return Some((n + 1, value_at + 1));
        }
        depth += 1;
        indent = Some(here);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_located_for_error_messages() {
        let text = "# c\nstate_dir: /x\nalerts:\n  email: {}\n  log:   /var/log/a.jsonl\nsites: []\n";
        assert_eq!(locate_key(text, &["state_dir"]), Some((2, 12)));
        assert_eq!(locate_key(text, &["alerts", "log"]), Some((5, 10)));
        assert_eq!(locate_key("sites:\n  log: x\n", &["alerts", "log"]), None);
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let dir = std::env::temp_dir();
        Config::parse(text, Path::new("test.yaml"), &dir, &dir.join("no-such-profiles"))
    }

    #[test]
    fn errors_carry_line_and_column() {
        let root = std::env::temp_dir();
        let text = format!("sites:\n  - name: a\n    root: {}\n    ignore: [\"x/[b\"]\n", root.display());
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.starts_with("test.yaml:4:"), "{e}");
        assert!(e.contains("invalid glob 'x/[b'"), "{e}");
        let e =
            parse(&format!("sites:\n  - {{name: a, root: {}, profle: x}}\n", root.display())).unwrap_err().to_string();
        assert!(e.starts_with("test.yaml:2:") && e.contains("unknown field `profle`"), "{e}");
        let e = parse("sites: []\n").unwrap_err().to_string();
        assert!(e.contains("at least one site is needed"), "{e}");
        let e = parse("sites:\n  - name: a\n    root: /no/such/dir\n").unwrap_err().to_string();
        assert_eq!(e, "test.yaml:3:11: sites[0].root: site root /no/such/dir does not exist");
        let e = parse(&format!("scan: {{interval: 4x}}\nsites:\n  - {{name: a, root: {}}}\n", root.display()))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("test.yaml:1:18: ") && e.contains("unknown unit"), "{e}");
    }

    #[test]
    fn site_lists_extend_the_profile() {
        let root = std::env::temp_dir();
        let text = format!(
            "sites:\n  - name: a\n    root: {}\n    profile: wordpress\n    ignore: [\"wp-content/my-cache/**\"]\n",
            root.display()
        );
        let c = parse(&text).unwrap();
        let p = &c.sites[0].policy;
        assert!(!p.watched(b"wp-content/my-cache/x.js", crate::model::FileType::File));
        assert!(p.watched(b"wp-content/themes/t/x.js", crate::model::FileType::File));
        assert_eq!(c.scan.interval, DEFAULT_SCAN_INTERVAL);
    }
}
