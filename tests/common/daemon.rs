//! The real daemon (`sitewarden run`) as a child process: started, waited
//! for until it says it is ready, its alert log read, and stopped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Fixture, BIN};

pub struct Daemon {
    child: Option<Child>,
    stderr: Arc<Mutex<String>>,
    pub log: PathBuf,
}

/// How long a test waits for something the daemon should do in about a
/// second; generous, because CI machines are slow and shared.
pub const PATIENCE: Duration = Duration::from_secs(20);

impl Daemon {
    /// `sitewarden -c CONFIG run` for the fixture, ready.
    pub fn start(f: &Fixture) -> Daemon {
        let mut cmd = Command::new(BIN);
        cmd.arg("-c").arg(f.config()).arg("run");
        Daemon::spawn(cmd, f.path("alerts.jsonl"))
    }

    /// `sitewarden -c CONFIG run` with extra environment variables, ready.
    pub fn start_env(f: &Fixture, env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(BIN);
        cmd.arg("-c").arg(f.config()).arg("run");
        cmd.envs(env.iter().copied());
        Daemon::spawn(cmd, f.path("alerts.jsonl"))
    }

    /// Waits up to `limit` for the daemon to exit by itself.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        let child = self.child.as_mut()?;
        while start.elapsed() < limit {
            if let Some(status) = child.try_wait().unwrap() {
                // Let the stderr reader take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// Starts `cmd` (which must run the daemon) and waits for readiness.
    pub fn spawn(mut cmd: Command, log: PathBuf) -> Daemon {
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn the daemon");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let d = Daemon { child: Some(child), stderr, log };
        d.wait_stderr("sitewarden: ready");
        d
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr contains `text`.
    pub fn wait_stderr(&self, text: &str) {
        let start = Instant::now();
        while !self.stderr().contains(text) {
            if start.elapsed() > PATIENCE * 3 {
                panic!("daemon never said {text:?}; stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The records of the alert log so far.
    pub fn records(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        // A line still being written (no newline yet) is read next time.
        let complete = &text[..text.rfind('\n').map(|i| i + 1).unwrap_or(0)];
        complete
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad record {l:?}: {e}")))
            .collect()
    }

    /// Polls the alert log until `done` holds for it.
    pub fn wait_for(&self, what: &str, done: impl Fn(&[serde_json::Value]) -> bool) -> Vec<serde_json::Value> {
        let start = Instant::now();
        loop {
            let recs = self.records();
            if done(&recs) {
                return recs;
            }
            if start.elapsed() > PATIENCE {
                panic!("timed out waiting for {what}; records: {recs:#?}\nstderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits for a record of `event` on a path ending in `suffix`.
    pub fn wait_record(&self, event: &str, suffix: &str) -> serde_json::Value {
        let recs = self.wait_for(&format!("{event} {suffix}"), |r| {
            r.iter().any(|x| x["event"] == event && x["path"].as_str().is_some_and(|p| p.ends_with(suffix)))
        });
        recs.into_iter()
            .find(|x| x["event"] == event && x["path"].as_str().is_some_and(|p| p.ends_with(suffix)))
            .unwrap()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// Each thread of the daemon: its name, state and where in the kernel
    /// it waits (`/proc/PID/task/*`), and its CPU ticks: what a test that
    /// timed out prints, to tell a stuck thread from a busy one.
    pub fn threads(&self) -> String {
        let mut out = String::new();
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid())).into_iter().flatten().flatten();
        for t in tasks {
            let read = |f: &str| std::fs::read_to_string(t.path().join(f)).unwrap_or_default().trim().to_string();
            let stat = read("stat");
            // After the name in parentheses: state, ..., utime (14th), stime (15th).
            let fields: Vec<&str> =
                stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
            let field = |k: usize| fields.get(k).copied().unwrap_or("?");
            out.push_str(&format!(
                "  {} {:<16} state {} wchan {} utime {} stime {}\n",
                t.file_name().to_string_lossy(),
                read("comm"),
                field(0),
                read("wchan"),
                field(11),
                field(12)
            ));
        }
        out
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).unwrap();
    }

    /// SIGTERM, then the exit status and how long the exit took.
    pub fn terminate(mut self) -> (ExitStatus, Duration, String) {
        let start = Instant::now();
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let mut child = self.child.take().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50));
                return (status, start.elapsed(), self.stderr());
            }
            if start.elapsed() > Duration::from_secs(30) {
                child.kill().ok();
                panic!("daemon did not exit 30 s after SIGTERM:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Events settle: wait a little past the quiet period, for asserting that
/// something did NOT happen.
pub fn settle() {
    std::thread::sleep(Duration::from_millis(1500));
}
