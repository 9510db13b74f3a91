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
        let child = std::process::Command::new("python3")
            .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < std::time::Duration::from_secs(10), "http.server did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Publisher { child, port }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
