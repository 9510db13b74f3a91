//! A real SMTP server for the tests: Debian's `python3-aiosmtpd`, on a free
//! loopback port, storing what it receives in a maildir that the tests read
//! back (parsed by Python's `email` package, so MIME decoding is real too).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PYTHON: &str = "/usr/bin/python3";

pub struct SmtpServer {
    child: Option<Child>,
    pub port: u16,
    pub maildir: PathBuf,
    tls: Option<(PathBuf, PathBuf)>,
}

/// One received message.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Mail {
    pub subject: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub raw: String,
}

impl Mail {
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl SmtpServer {
    /// Starts a server storing mail under `dir/maildir`; with `tls`
    /// (certificate, key) it offers STARTTLS.
    pub fn start(dir: &Path, tls: Option<(PathBuf, PathBuf)>) -> SmtpServer {
        let mut s = SmtpServer { child: None, port: free_port(), maildir: dir.join("maildir"), tls };
        s.restart();
        s
    }

    /// (Re)starts on the same port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none());
        let mut cmd = Command::new(PYTHON);
        cmd.args(["-m", "aiosmtpd", "-n", "-l"]).arg(format!("127.0.0.1:{}", self.port));
        if let Some((cert, key)) = &self.tls {
            cmd.arg("--tlscert").arg(cert).arg("--tlskey").arg(key).arg("--no-requiretls");
        }
        cmd.args(["-c", "aiosmtpd.handlers.Mailbox"]).arg(&self.maildir);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        self.child = Some(cmd.spawn().expect("start aiosmtpd (apt-get install python3-aiosmtpd)"));
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(20), "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The messages received so far.
    pub fn messages(&self) -> Vec<Mail> {
        const PARSE: &str = r#"
import email, email.policy, json, os, sys
out = []
for sub in ("new", "cur"):
    d = os.path.join(sys.argv[1], sub)
    if not os.path.isdir(d):
        continue
    for name in sorted(os.listdir(d)):
        raw = open(os.path.join(d, name), "rb").read()
        m = email.message_from_bytes(raw, policy=email.policy.default)
        part = m.get_body(("plain",)) if m.is_multipart() else m
        out.append({"subject": str(m["subject"]), "headers": [[k, str(v)] for k, v in m.items()],
                    "body": part.get_content(), "raw": raw.decode("utf-8", "replace")})
print(json.dumps(out))
"#;
        let out = Command::new(PYTHON).args(["-c", PARSE]).arg(&self.maildir).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Waits until `n` messages arrived (or panics after `limit`).
    pub fn wait_messages(&self, n: usize, limit: Duration) -> Vec<Mail> {
        let start = Instant::now();
        loop {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            assert!(start.elapsed() < limit, "expected {n} mails, got {}: {m:#?}", m.len());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A CA and a certificate for 127.0.0.1 signed by it, made with openssl:
/// returns (ca.pem, cert.pem, key.pem).
pub fn test_certificate(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let st = Command::new("openssl").args(args).current_dir(dir).stderr(Stdio::null()).status().unwrap();
        assert!(st.success(), "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=sitewarden test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "key.pem", "-out", "req.csr"]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "req.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);
    (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"))
}
