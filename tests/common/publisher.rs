//! A publisher of release checksums and archives on loopback, as the
//! tests' stand-in for wordpress.org.

use std::path::Path;

/// A publisher on loopback (Python's http.server over a folder).
pub struct Publisher {
    child: std::process::Child,
    pub port: u16,
}

impl Publisher {
    pub fn start(dir: &Path) -> Publisher {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Publisher::start_on(dir, port)
    }

    /// The publisher of `dir` on loopback port `port` (back after an outage).
    pub fn start_on(dir: &Path, port: u16) -> Publisher {
        Publisher::start_slow(dir, port, "", std::time::Duration::ZERO)
    }
}

impl Publisher {
    /// The publisher of `dir` on loopback port `port`, which answers a GET
    /// whose path holds `slow` only after `delay` (a publisher, or a host,
    /// slow to hand over one file; with no delay, a plain one).
    pub fn start_slow(dir: &Path, port: u16, slow: &str, delay: std::time::Duration) -> Publisher {
        const SERVER: &str = r#"
import functools, http.server, sys, time
port, root, slow, delay = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
class H(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if slow in self.path:
            time.sleep(delay)
        super().do_GET()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(H, directory=root)).serve_forever()
"#;
        let child = std::process::Command::new("python3")
            .args(["-c", SERVER, &port.to_string()])
            .arg(dir)
            .args([slow, &delay.as_secs_f64().to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        listening(port);
        Publisher { child, port }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A publisher that answers every GET badly: `slow` (a byte every half
/// second, forever) or `endless` (an answer that never ends, as fast as it
/// can be read).
pub fn hostile(mode: &str) -> Publisher {
    hostile_logged(mode, Path::new("/dev/null"))
}

/// [`hostile`], appending the path of every GET to `log` as it comes.
pub fn hostile_logged(mode: &str, log: &Path) -> Publisher {
    const SERVER: &str = r#"
import http.server, sys, time
mode = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(sys.argv[3], "a") as log:
            log.write(self.path + "\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        try:
            if mode == "slow":
                while True:
                    self.wfile.write(b" "); self.wfile.flush(); time.sleep(0.5)
            else:
                chunk = b"\0" * 65536
                while True:
                    self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"#;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = std::process::Command::new("python3")
        .args(["-c", SERVER, &port.to_string(), mode])
        .arg(log)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    listening(port);
    Publisher { child, port }
}

/// Waits until a server listens on loopback `port`.
fn listening(port: u16) {
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "the publisher did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
