//! The requests to release publishers: bounded (size, time), polite (one
//! request to a host every [`PER_HOST`]), cancellable (a reload or a
//! shutdown stops a waiting caller within [`POLL`]), and asked once per
//! host while that host is down: after a failure to reach it, every lookup
//! at that host fails at once for a while, in this process and, through a
//! marker in the cache folder, in the next one. The while is
//! [`FIRST_DOWN`], doubled at each failure in a row up to [`MAX_DOWN`]: a
//! short outage heals within a minute, a server with no way out asks each
//! host once in ten minutes.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// At most one request to a host in this long (a server with hundreds of
/// sites asks politely).
pub const PER_HOST: Duration = Duration::from_millis(250);
/// A host that could not be reached is not asked again for this long
/// after its first failure...
pub const FIRST_DOWN: Duration = Duration::from_secs(30);
/// ...doubled at each failure in a row, up to this.
pub const MAX_DOWN: Duration = Duration::from_secs(600);

/// How long a host stays down after its `failures`-th failure in a row.
pub fn down_for(failures: u32) -> Duration {
    FIRST_DOWN.saturating_mul(1 << failures.saturating_sub(1).min(5)).min(MAX_DOWN)
}
/// How often a waiting caller looks at its cancel flag.
const POLL: Duration = Duration::from_millis(50);

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Why a request gave nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The publisher answered with this HTTP status (404: not published).
    Status(u16),
    /// The answer was larger than allowed (the limit, in bytes).
    TooLarge(u64),
    /// The host could not be reached (or answered 5xx/429), now or a short
    /// while ago (see [`down_for`]); the host is named.
    Down(String),
    /// The caller's cancel flag was raised.
    Cancelled,
    /// A local error (the cache folder).
    Local(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status(s) => write!(f, "HTTP status {s}"),
            Failure::TooLarge(cap) => write!(f, "the answer is larger than the {} KiB allowed: refused", cap >> 10),
            Failure::Down(why) => write!(f, "{why}"),
            Failure::Cancelled => write!(f, "cancelled"),
            Failure::Local(e) => write!(f, "{e}"),
        }
    }
}

/// The state of the requests of one process: each host's next free slot
/// and the hosts known to be down.
pub struct Fetcher {
    /// Markers of down hosts (`HOST.down`: the failures in a row, then why;
    /// marked when the file was last written).
    marks: PathBuf,
    next: Mutex<HashMap<String, Instant>>,
    down: Mutex<HashMap<String, Down>>,
}

/// A host that could not be reached.
#[derive(Clone, Debug)]
struct Down {
    /// When it last failed.
    since: Instant,
    /// Failures in a row.
    failures: u32,
    /// What went wrong, last time.
    why: String,
}

impl Down {
    fn until(&self) -> Instant {
        self.since + down_for(self.failures)
    }
}

/// The host (and port) of `url`.
pub fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    host.rsplit('@').next().unwrap_or(host)
}

impl Fetcher {
    /// A fetcher whose down-host markers live in `cache_dir/hosts/`.
    pub fn new(cache_dir: &Path) -> Fetcher {
        Fetcher { marks: cache_dir.join("hosts"), next: Mutex::default(), down: Mutex::default() }
    }

    fn mark_path(&self, host: &str) -> PathBuf {
        let name: String =
            host.chars().map(|c| if c.is_ascii_alphanumeric() || ".-:[]".contains(c) { c } else { '_' }).collect();
        self.marks.join(format!("{name}.down"))
    }

    /// What is known of `host` being down (from this process or the
    /// marker of an earlier one).
    fn known_down(&self, host: &str) -> Option<Down> {
        let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = down.get(host) {
            return Some(d.clone());
        }
        let mark = self.mark_path(host);
        let at = std::fs::metadata(&mark).and_then(|m| m.modified()).ok()?;
        let age = SystemTime::now().duration_since(at).unwrap_or_default();
        if age >= 2 * MAX_DOWN {
            // An old outage: the count starts again.
            return None;
        }
        let mut text = Vec::new();
        if let Ok(f) = std::fs::File::open(&mark) {
            let _ = f.take(1024).read_to_end(&mut text);
        }
        let text = String::from_utf8_lossy(&text).into_owned();
        let (count, why) = text.split_once('\n').unwrap_or(("1", text.as_str()));
        let failures = count.trim().parse().unwrap_or(1);
        let d = Down { since: Instant::now().checked_sub(age)?, failures, why: why.to_string() };
        down.insert(host.to_string(), d.clone());
        Some(d)
    }

    /// Why `host` counts as down now, if it does.
    fn is_down(&self, host: &str) -> Option<String> {
        let d = self.known_down(host)?;
        let left = d.until().checked_duration_since(Instant::now())?;
        Some(format!("{} could not be reached ({}); asked again in {} s", host, d.why, left.as_secs().max(1)))
    }

    fn mark_down(&self, host: &str, why: &str) {
        let failures = self.known_down(host).map_or(1, |d| d.failures.saturating_add(1));
        let d = Down { since: Instant::now(), failures, why: why.to_string() };
        self.down.lock().unwrap_or_else(|p| p.into_inner()).insert(host.to_string(), d);
        let _ = std::fs::create_dir_all(&self.marks);
        let _ = std::fs::write(self.mark_path(host), format!("{failures}\n{why}"));
    }

    /// `host` answered: it is not down.
    fn mark_up(&self, host: &str) {
        if self.down.lock().unwrap_or_else(|p| p.into_inner()).remove(host).is_some() {
            let _ = std::fs::remove_file(self.mark_path(host));
        }
    }

    /// Waits for the host's turn; false when cancelled meanwhile.
    fn take_turn(&self, host: &str, cancel: &AtomicBool) -> bool {
        let at = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if next.len() > 1024 {
                next.retain(|_, t| *t > now);
            }
            let at = next.get(host).copied().filter(|t| *t > now).unwrap_or(now);
            next.insert(host.to_string(), at + PER_HOST);
            at
        };
        while Instant::now() < at {
            if cancel.load(Ordering::Relaxed) {
                return false;
            }
            std::thread::sleep(POLL.min(at.saturating_duration_since(Instant::now())));
        }
        !cancel.load(Ordering::Relaxed)
    }

    /// GET `url` into memory, at most `cap` bytes, within `timeout`.
    pub fn get(&self, url: &str, cap: u64, timeout: Duration, cancel: &Arc<AtomicBool>) -> Result<Vec<u8>, Failure> {
        let url_owned = url.to_string();
        let flag = Arc::clone(cancel);
        self.request(url, cancel, move || {
            let mut body = Vec::new();
            let reader = answer(&url_owned, timeout)?;
            copy(reader, &mut body, cap, &flag)?;
            Ok(body)
        })
    }

    /// GET `url` into the file `dest` (through a temporary file renamed when
    /// whole), at most `cap` bytes, within `timeout`. The download goes on
    /// to its end (or its deadline) when the caller is cancelled, so that
    /// what it fetched is cached for the next one.
    pub fn download(
        &self,
        url: &str,
        dest: &Path,
        cap: u64,
        timeout: Duration,
        cancel: &Arc<AtomicBool>,
    ) -> Result<(), Failure> {
        let url_owned = url.to_string();
        let dest = dest.to_path_buf();
        let never = Arc::new(AtomicBool::new(false));
        self.request(url, cancel, move || {
            let seq = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
            let tmp = dest.with_extension(format!("part-{}-{seq}", std::process::id()));
            let result = (|| {
                let reader = answer(&url_owned, timeout)?;
                let mut out = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&tmp)
                    .map_err(|e| Failure::Local(format!("{}: {e}", tmp.display())))?;
                copy(reader, &mut out, cap, &never)?;
                std::fs::rename(&tmp, &dest).map_err(|e| Failure::Local(format!("{}: {e}", dest.display())))
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result
        })
    }

    /// Runs `job` (one request to the host of `url`) on its own thread,
    /// once the host's turn has come, and waits for it while `cancel` stays
    /// low. A host found down is marked so.
    fn request<T: Send + 'static>(
        &self,
        url: &str,
        cancel: &AtomicBool,
        job: impl FnOnce() -> Result<T, Failure> + Send + 'static,
    ) -> Result<T, Failure> {
        let host = host_of(url).to_string();
        if let Some(why) = self.is_down(&host) {
            return Err(Failure::Down(why));
        }
        if !self.take_turn(&host, cancel) {
            return Err(Failure::Cancelled);
        }
        let (tx, rx) = sync_channel(1);
        std::thread::Builder::new()
            .name("sw-fetch".into())
            .spawn(move || {
                let _ = tx.send(job());
            })
            .map_err(|e| Failure::Local(format!("cannot start a fetch: {e}")))?;
        let outcome = loop {
            match rx.recv_timeout(POLL) {
                Ok(r) => break r,
                Err(RecvTimeoutError::Timeout) if cancel.load(Ordering::Relaxed) => return Err(Failure::Cancelled),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break Err(Failure::Local("the fetch thread died".into())),
            }
        };
        match outcome {
            Err(Failure::Down(why)) => {
                self.mark_down(&host, &why);
                Err(Failure::Down(self.is_down(&host).unwrap_or(why)))
            }
            Err(e @ (Failure::Cancelled | Failure::Local(_))) => Err(e),
            // It answered, whatever it said.
            answered => {
                self.mark_up(&host);
                answered
            }
        }
    }
}

/// The answer's body to `url`, or why not.
fn answer(url: &str, timeout: Duration) -> Result<Box<dyn Read + Send + Sync>, Failure> {
    let agent = ureq::AgentBuilder::new().timeout(timeout).redirects(3).build();
    match agent.get(url).call() {
        Ok(r) => Ok(r.into_reader()),
        Err(ureq::Error::Status(code, _)) if code >= 500 || code == 429 => {
            Err(Failure::Down(format!("it answered HTTP status {code}")))
        }
        Err(ureq::Error::Status(code, _)) => Err(Failure::Status(code)),
        Err(ureq::Error::Transport(t)) => Err(Failure::Down(transport(&t, timeout))),
    }
}

/// What went wrong on the way, in words of its own: DNS, TLS, a timeout,
/// no connection.
fn transport(t: &ureq::Transport, timeout: Duration) -> String {
    use ureq::ErrorKind;
    let detail = t.to_string();
    let lower = detail.to_ascii_lowercase();
    let what = match t.kind() {
        ErrorKind::Dns => "DNS: the name did not resolve",
        _ if lower.contains("timed out") || lower.contains("timeout") => {
            return format!("timeout: no answer within {} s ({detail})", timeout.as_secs());
        }
        _ if lower.contains("tls") || lower.contains("certificate") || lower.contains("handshake") => {
            "TLS: the secure connection failed"
        }
        ErrorKind::ConnectionFailed => "no connection",
        ErrorKind::TooManyRedirects => "too many redirects",
        ErrorKind::InvalidUrl | ErrorKind::UnknownScheme => "a bad URL",
        _ => "the request failed",
    };
    format!("{what} ({detail})")
}

/// Copies at most `cap` bytes of `from` into `to`, stopping when `cancel`
/// rises. A read that fails midway (the deadline) counts as the host down.
fn copy(mut from: impl Read, to: &mut impl Write, cap: u64, cancel: &AtomicBool) -> Result<(), Failure> {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(Failure::Cancelled);
        }
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {
                return Err(Failure::Down(format!("timeout: the answer stopped coming ({e})")))
            }
            Err(e) => return Err(Failure::Down(format!("the answer broke off: {e}"))),
        };
        total += n as u64;
        if total > cap {
            return Err(Failure::TooLarge(cap));
        }
        to.write_all(&buf[..n]).map_err(|e| Failure::Local(e.to_string()))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_named_without_scheme_path_or_credentials() {
        assert_eq!(host_of("https://api.wordpress.org/core/checksums/1.0/?version=6"), "api.wordpress.org");
        assert_eq!(host_of("http://127.0.0.1:8080/x"), "127.0.0.1:8080");
        assert_eq!(host_of("http://user:pw@h.example/x"), "h.example");
        assert_eq!(host_of("http://h.example?x=1"), "h.example");
    }

    /// A listener on loopback that closes every connection at once, and
    /// counts them.
    fn slamming() -> (String, Arc<AtomicU64>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/x", listener.local_addr().unwrap());
        let count = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&count);
        std::thread::spawn(move || {
            for c in listener.incoming() {
                seen.fetch_add(1, Ordering::Relaxed);
                drop(c);
            }
        });
        (url, count)
    }

    #[test]
    fn a_host_found_down_is_not_asked_again_in_this_process_or_the_next() {
        let dir = std::env::temp_dir().join(format!("sw-fetch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let never = Arc::new(AtomicBool::new(false));
        let (url, asked) = slamming();
        let f = Fetcher::new(&dir);
        assert!(matches!(f.get(&url, 10, Duration::from_secs(5), &never), Err(Failure::Down(_))));
        let once = asked.load(Ordering::Relaxed);
        assert!(once >= 1);
        assert!(matches!(f.get(&url, 10, Duration::from_secs(5), &never), Err(Failure::Down(_))));
        let next = Fetcher::new(&dir);
        match next.get(&format!("{url}/y"), 10, Duration::from_secs(5), &never) {
            Err(Failure::Down(why)) => assert!(why.contains(host_of(&url)), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(asked.load(Ordering::Relaxed), once, "the host was asked again");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_old_outage_does_not_lengthen_the_next_one() {
        let dir = std::env::temp_dir().join(format!("sw-fetch-old-{}", std::process::id()));
        let f = Fetcher::new(&dir);
        std::fs::create_dir_all(&f.marks).unwrap();
        let mark = f.mark_path("h.example");
        std::fs::write(&mark, "6\nlast week").unwrap();
        let week = SystemTime::now() - Duration::from_secs(7 * 24 * 3600);
        std::fs::File::options().write(true).open(&mark).unwrap().set_modified(week).unwrap();
        assert!(f.known_down("h.example").is_none());
        f.mark_down("h.example", "refused");
        assert_eq!(f.known_down("h.example").map(|d| d.failures), Some(1), "counted from 1 again, 30 s");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_cancelled_caller_stops_waiting_for_a_host_that_never_answers() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/x", listener.local_addr().unwrap());
        let dir = std::env::temp_dir().join(format!("sw-fetch-c-{}", std::process::id()));
        let f = Fetcher::new(&dir);
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&cancel);
        let raiser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            flag.store(true, Ordering::Relaxed);
        });
        let t = Instant::now();
        assert_eq!(f.get(&url, 10, Duration::from_secs(60), &cancel), Err(Failure::Cancelled));
        assert!(t.elapsed() < Duration::from_secs(30), "cancel, not the 60 s deadline: {:?}", t.elapsed());
        raiser.join().unwrap();
        assert!(f.is_down(host_of(&url)).is_none(), "a cancelled request says nothing of the host");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A loopback server that gives every connection `answer` (after
    /// reading the request), or holds it open and silent when `None`.
    fn serving(answer: Option<&'static [u8]>) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/x", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for mut c in listener.incoming().flatten() {
                let mut buf = [0u8; 4096];
                let _ = c.read(&mut buf);
                match answer {
                    Some(a) => {
                        let _ = c.write_all(a);
                    }
                    None => held.push(c),
                }
            }
        });
        url
    }

    #[test]
    fn each_failure_says_what_happened() {
        let dir = std::env::temp_dir().join(format!("sw-fetch-w-{}", std::process::id()));
        let never = Arc::new(AtomicBool::new(false));
        let why = |url: &str, cap: u64, timeout: u64| {
            let _ = std::fs::remove_dir_all(&dir);
            let f = Fetcher::new(&dir);
            match f.get(url, cap, Duration::from_secs(timeout), &never) {
                Err(e) => e.to_string(),
                Ok(b) => panic!("{url}: {} bytes", b.len()),
            }
        };
        let busy = serving(Some(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"));
        assert!(why(&busy, 100, 5).contains("HTTP status 503"), "{}", why(&busy, 100, 5));
        let missing = serving(Some(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"));
        assert_eq!(why(&missing, 100, 5), "HTTP status 404");
        let big =
            serving(Some(b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n0123456789012345678901234567890123456789"));
        assert!(why(&big, 10, 5).starts_with("the answer is larger than the 0 KiB allowed"), "{}", why(&big, 10, 5));
        let silent = serving(None);
        let w = why(&silent, 100, 1);
        assert!(w.contains("timeout: no answer within 1 s"), "{w}");
        let plain = serving(Some(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
        let w = why(&plain.replace("http://", "https://"), 100, 5);
        assert!(w.contains("TLS: the secure connection failed"), "{w}");
        let (refused, _) = slamming();
        let w = why(&refused, 100, 5);
        assert!(w.contains(host_of(&refused)), "{w}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
