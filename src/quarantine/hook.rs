//! The admin's quarantine hook: an argv list run after each quarantine
//! action, never through a shell, with what happened in environment
//! variables. It runs on its own thread, is killed (with its process group)
//! at the timeout, and its exit status and output are recorded next to the
//! evidence. A failing hook never stops the daemon: its outcome goes back
//! to the judge, which names the failure in a follow-up alert record.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Runs the hook thread's queue holds.
pub const QUEUE: usize = 256;

/// Output kept from a hook (stdout and stderr together).
const MAX_OUTPUT: u64 = 64 * 1024;

/// One run of the hook.
pub struct HookJob {
    /// The command and its arguments (run without a shell).
    pub argv: Vec<String>,
    /// The environment variables (the only ones besides `PATH`).
    pub env: Vec<(String, OsString)>,
    /// How long the run may take before it is killed.
    pub timeout: Duration,
    /// Where the outcome is written (JSON).
    pub report: PathBuf,
    /// The quarantine item the run is for (handed back with the outcome).
    pub id: String,
}

/// What a run of the hook did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookResult {
    /// The command that was run.
    pub argv: Vec<String>,
    /// Exit code, when it exited.
    pub status: Option<i32>,
    /// It was killed at the timeout.
    pub timed_out: bool,
    /// Why it could not be run or waited for.
    pub error: Option<String>,
    /// Its stdout and stderr (at most 64 KiB each, lossy UTF-8).
    pub output: String,
    /// How long it ran, in milliseconds.
    pub millis: u64,
}

impl HookResult {
    /// The hook exited 0 in time.
    pub fn ok(&self) -> bool {
        self.status == Some(0) && !self.timed_out && self.error.is_none()
    }

    /// Why the run failed, in a few words (`None` when it did not).
    pub fn failure(&self, timeout: Duration) -> Option<String> {
        if self.ok() {
            return None;
        }
        Some(match (&self.error, self.timed_out, self.status) {
            (Some(e), _, _) => e.clone(),
            (None, true, _) => format!("killed after {} s", timeout.as_secs()),
            (None, false, Some(code)) => format!("exit status {code}"),
            (None, false, None) => "killed by a signal".into(),
        })
    }
}

/// Told for each finished run: the item id and what the run did.
pub type OnResult = Box<dyn Fn(&HookJob, &HookResult) + Send>;

/// The hook thread.
pub struct HookRunner {
    tx: SyncSender<HookJob>,
}

impl HookRunner {
    /// Starts the hook thread under `supervisor`; `on_result` hears every
    /// outcome.
    pub fn spawn(supervisor: &crate::util::supervise::Supervisor, on_result: OnResult) -> std::io::Result<HookRunner> {
        let (tx, rx) = sync_channel(QUEUE);
        supervisor.spawn("sw-hook", move || {
            serve(rx, on_result);
            Ok(())
        })?;
        Ok(HookRunner { tx })
    }

    /// Queues a run; hands the job back when the queue is full (the caller
    /// keeps it for later).
    pub fn submit(&self, job: HookJob) -> Result<(), HookJob> {
        self.tx.try_send(job).map_err(|e| match e {
            std::sync::mpsc::TrySendError::Full(j) | std::sync::mpsc::TrySendError::Disconnected(j) => j,
        })
    }
}

fn serve(rx: Receiver<HookJob>, on_result: OnResult) {
    for job in rx {
        let result = run(&job);
        if let Some(why) = result.failure(job.timeout) {
            tracing::error!("quarantine hook {:?} failed: {why}", result.argv);
        }
        // Written whole, then renamed: a reader never sees half a report.
        if let Ok(text) = serde_json::to_vec_pretty(&result) {
            let tmp = job.report.with_extension("json.tmp");
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(&tmp, &job.report);
            }
        }
        on_result(&job, &result);
    }
}

/// Runs one hook to completion or timeout.
pub fn run(job: &HookJob) -> HookResult {
    let started = Instant::now();
    let mut result = HookResult { argv: job.argv.clone(), ..HookResult::default() };
    let Some((prog, args)) = job.argv.split_first() else {
        result.error = Some("empty hook".into());
        return result;
    };
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .env_clear()
        .env("PATH", crate::config::HOOK_PATH)
        .envs(job.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout kills whatever it started.
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            result.error = Some(format!("cannot start {prog}: {e}"));
            return result;
        }
    };
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let readers: Vec<_> = [
        child.stdout.take().map(|o| Box::new(o) as Box<dyn Read + Send>),
        child.stderr.take().map(|e| Box::new(e) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|r| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.take(MAX_OUTPUT).read_to_end(&mut buf);
            buf
        })
    })
    .collect();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                result.status = status.code();
                break;
            }
            Ok(None) if started.elapsed() >= job.timeout => {
                result.timed_out = true;
                let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                break;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                result.error = Some(e.to_string());
                break;
            }
        }
    }
    // The group is dead or done; readers see end of file once every
    // writer is gone (a daemonised grandchild is killed with the group).
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    let mut out = Vec::new();
    for r in readers {
        out.extend(r.join().unwrap_or_default());
    }
    result.output = String::from_utf8_lossy(&out).into_owned();
    result.millis = started.elapsed().as_millis() as u64;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(argv: &[&str], timeout: Duration) -> HookJob {
        HookJob {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: vec![("SITEWARDEN_PATH".into(), "/var/www/a b;$(rm -rf /)".into())],
            timeout,
            report: PathBuf::from("/dev/null"),
            id: "t".into(),
        }
    }

    #[test]
    fn runs_without_a_shell_and_passes_the_environment() {
        let r = run(&job(&["/bin/sh", "-c", "printf '%s' \"$SITEWARDEN_PATH\""], Duration::from_secs(10)));
        assert!(r.ok(), "{r:?}");
        assert_eq!(r.output, "/var/www/a b;$(rm -rf /)");
    }

    #[test]
    fn a_hanging_hook_is_killed_at_the_timeout() {
        let r = run(&job(&["/bin/sleep", "30"], Duration::from_millis(300)));
        assert!(r.timed_out && !r.ok());
        assert!(r.millis < 5000, "{r:?}");
        let r = run(&job(&["/nonexistent/hook"], Duration::from_secs(1)));
        assert!(r.error.is_some());
    }
}
