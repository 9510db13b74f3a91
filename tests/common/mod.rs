//! Helpers shared by the integration tests: a temporary site with its own
//! config and state, and a way to run the real `sitewarden` binary on it.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub mod daemon;
pub mod publisher;
pub mod receiver;
pub mod rsyslog;
pub mod smtp;

pub const BIN: &str = env!("CARGO_BIN_EXE_sitewarden");

/// The only duration a test asserts: a deadline that catches a hang, never
/// a speed. How fast something is belongs to `bench/` (a shared, loaded CI
/// machine is no place to judge a latency).
pub const HANG: Duration = Duration::from_secs(60);

/// Prints a measured figure beside the target it is held to, as one
/// `figure:` line that `bench/test-figures.sh` collects into its table,
/// and asserts only that it is not a hang.
pub fn figure(name: &str, measured: Duration, target: Duration) {
    println!("figure: {name}: {:.1} ms (target {:.0} ms)", ms(measured), ms(target));
    assert!(measured < HANG, "{name}: {measured:?}, past the hang deadline of {HANG:?}");
}

/// Prints a count that depends on how fast the machine is (how many of
/// `of` short-lived writers were still there to be named) beside its
/// target, as a `figure:` line; asserts nothing.
pub fn count_figure(name: &str, got: usize, of: usize, target: usize) {
    println!("figure: {name}: {got} of {of} (target {target})");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A site under a temporary directory: `root/`, `state/`, `config.yaml`.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    /// A site named `site` with the given profile and extra site YAML lines
    /// (indented as keys of the site mapping).
    pub fn new(profile: &str, extra: &str) -> Fixture {
        let dir = tempfile::Builder::new().prefix("sitewarden-test").tempdir().unwrap();
        std::fs::create_dir(dir.path().join("root")).unwrap();
        let f = Fixture { dir };
        f.write_config(profile, extra);
        f
    }

    /// The realtime source is `auto`, or what `SITEWARDEN_TEST_SOURCE`
    /// says (`.ci/run` runs the realtime suites again on inotify).
    pub fn write_config(&self, profile: &str, extra: &str) {
        let source = std::env::var("SITEWARDEN_TEST_SOURCE").unwrap_or_else(|_| "auto".into());
        let text = format!(
            "state_dir: {state}\nrealtime:\n  source: {source}\n{vendors}signatures:\n  rules_dir: {rules}\nalerts:\n  log: {log}\nsites:\n  - name: site\n    root: {root}\n    profile: {profile}\n{extra}",
            // Never the real publishers from a test: a closed loopback port
            // (a test that serves checksums replaces these lines).
            vendors = "vendors:\n  wordpress:\n    core_checksums_url: http://127.0.0.1:9/core\n    plugin_checksums_url: http://127.0.0.1:9/plugins\n    core_archive_url: http://127.0.0.1:9/release\n    plugin_archive_url: http://127.0.0.1:9/plugin\n    theme_archive_url: http://127.0.0.1:9/theme\n",
            state = self.state().display(),
            // The admin's rules of this fixture (none unless a test writes some).
            rules = self.path("rules").display(),
            log = self.path("alerts.jsonl").display(),
            root = self.root().display(),
        );
        std::fs::write(self.config(), text).unwrap();
    }

    /// Sets `realtime.source` (whatever the environment said).
    pub fn set_source(&self, source: &str) {
        let cfg = std::fs::read_to_string(self.config()).unwrap();
        let line = cfg.lines().find(|l| l.starts_with("  source: ")).expect("the fixture's source line").to_string();
        std::fs::write(self.config(), cfg.replacen(&line, &format!("  source: {source}"), 1)).unwrap();
    }

    /// Mails alerts of every severity to ops@example.com through the SMTP
    /// server on loopback `port`; `extra` adds lines to the `email:` mapping
    /// (indented four spaces). Works whatever was added to the config since.
    pub fn add_email(&self, port: u16, extra: &str) {
        let log_line = format!("  log: {}\n", self.path("alerts.jsonl").display());
        let email = format!(
            "{log_line}  email:\n    to: [ops@example.com]\n    from: sitewarden@web1.example.com\n    smtp: {{ host: 127.0.0.1, port: {port}, tls: none }}\n    min_severity: info\n{extra}"
        );
        let cfg = std::fs::read_to_string(self.config()).unwrap();
        assert!(cfg.contains(&log_line), "the fixture's alert log line is gone: {cfg}");
        std::fs::write(self.config(), cfg.replacen(&log_line, &email, 1)).unwrap();
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.yaml")
    }

    /// The absolute path of `rel` inside the root (bytes, for odd names).
    pub fn abs(&self, rel: &[u8]) -> PathBuf {
        let mut p = self.root().into_os_string().into_vec();
        p.push(b'/');
        p.extend_from_slice(rel);
        PathBuf::from(std::ffi::OsString::from_vec(p))
    }

    /// Writes a file below the root, creating its parents.
    pub fn write(&self, rel: impl AsRef<[u8]>, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.abs(rel.as_ref());
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }

    /// Runs `sitewarden -c CONFIG ARGS...`.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(BIN);
        cmd.arg("-c").arg(self.config()).args(args);
        Run::of(cmd)
    }

    /// `check --json` parsed into records (and the exit code).
    pub fn check_json(&self) -> (i32, Vec<serde_json::Value>) {
        let r = self.run(["check", "--json"]);
        assert!(r.code == 0 || r.code == 1, "check failed: {r:?}");
        (r.code, r.records())
    }
}

use std::os::unix::ffi::OsStringExt;

/// The outcome of one run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub raw_stdout: Vec<u8>,
}

impl Run {
    /// Runs `cmd` with a 120 s limit (a hang is a failure, not a stuck CI).
    pub fn of(mut cmd: Command) -> Run {
        use std::io::Read;
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn sitewarden");
        // Drain both pipes while waiting, or a chatty child blocks on a full pipe.
        let mut so = child.stdout.take().unwrap();
        let mut se = child.stderr.take().unwrap();
        let t_out = std::thread::spawn(move || {
            let mut v = Vec::new();
            so.read_to_end(&mut v).ok();
            v
        });
        let t_err = std::thread::spawn(move || {
            let mut v = Vec::new();
            se.read_to_end(&mut v).ok();
            v
        });
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > Duration::from_secs(120) {
                child.kill().ok();
                panic!("sitewarden hung for 120 s: {cmd:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stdout = t_out.join().unwrap();
        let stderr = t_err.join().unwrap();
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            raw_stdout: stdout,
        }
    }

    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success: {self:?}");
        self
    }

    /// stdout parsed as JSON lines.
    pub fn records(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
            .collect()
    }
}

/// The record for a path ending in `suffix`, if any.
pub fn find<'a>(records: &'a [serde_json::Value], suffix: &str) -> Option<&'a serde_json::Value> {
    records.iter().find(|r| r["path"].as_str().is_some_and(|p| p.ends_with(suffix)))
}

/// Bytes of a path, for comparing with `path_base64`.
pub fn bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

/// Every file below `dir`, recursively.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
