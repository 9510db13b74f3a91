//! A webhook receiver on loopback (Python's http.server): every POST is
//! kept as a file (path, headers, body) when it is answered 200; the
//! answer is what the test last set (`set_status`), and every attempt is
//! counted.

use std::path::{Path, PathBuf};

pub struct Receiver {
    child: Option<std::process::Child>,
    pub port: u16,
    dir: PathBuf,
}

/// One POST as received.
#[derive(Debug, Clone)]
pub struct Post {
    pub path: String,
    pub headers: serde_json::Value,
    pub body: Vec<u8>,
}

impl Post {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str().map(String::from))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

const SERVER: &str = r#"
import http.server, json, os, sys, base64, threading
d = sys.argv[2]
n = [0]
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            status = int(open(os.path.join(d, "status")).read())
        except Exception:
            status = 200
        with lock:
            n[0] += 1
            seq = n[0]
            with open(os.path.join(d, "attempts"), "a") as f:
                f.write("%s %d\n" % (self.path, status))
        if status == 200:
            rec = {"path": self.path, "headers": dict(self.headers.items()), "body": base64.b64encode(body).decode()}
            tmp = os.path.join(d, ".post-%06d" % seq)
            with open(tmp, "w") as f:
                json.dump(rec, f)
            os.rename(tmp, os.path.join(d, "post-%d-%06d.json" % (os.getpid(), seq)))
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok" if status == 200 else b"try later")
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"#;

impl Receiver {
    /// Starts a receiver keeping its posts in `dir`, on `port` (0: a free one).
    pub fn start(dir: &Path, port: u16) -> Receiver {
        let port = if port == 0 {
            std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
        } else {
            port
        };
        let mut r = Receiver { child: None, port, dir: dir.to_path_buf() };
        r.restart();
        r
    }

    /// Starts it again (after `stop`), on the same port.
    pub fn restart(&mut self) {
        let child = std::process::Command::new("python3")
            .args(["-c", SERVER, &self.port.to_string()])
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(start.elapsed() < std::time::Duration::from_secs(10), "the receiver did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What every POST is answered from now on.
    pub fn set_status(&self, status: u16) {
        std::fs::write(self.dir.join("status"), status.to_string()).unwrap();
    }

    /// Attempts so far: (path, status answered).
    pub fn attempts(&self) -> Vec<(String, u16)> {
        std::fs::read_to_string(self.dir.join("attempts"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(p, s)| (p.to_string(), s.parse().unwrap_or(0))))
            .collect()
    }

    /// The posts answered 200, in arrival order.
    pub fn posts(&self) -> Vec<Post> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("post-"))
            .collect();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .iter()
            .map(|p| {
                let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
                use base64::Engine;
                Post {
                    path: v["path"].as_str().unwrap().to_string(),
                    headers: v["headers"].clone(),
                    body: base64::engine::general_purpose::STANDARD.decode(v["body"].as_str().unwrap()).unwrap(),
                }
            })
            .collect()
    }

    /// The posts to `path`.
    pub fn posts_to(&self, path: &str) -> Vec<Post> {
        self.posts().into_iter().filter(|p| p.path == path).collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}
