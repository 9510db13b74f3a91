//! Debian's rsyslogd as a syslog collector on loopback, with the test's
//! config: plain TCP, UDP and (when asked) TLS inputs, each writing the
//! raw messages it received to its own file. The queues are rsyslog's
//! usual in-memory ones, drained at shutdown.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Rsyslog {
    child: Option<std::process::Child>,
    pub dir: PathBuf,
    pub tcp: u16,
    pub udp: u16,
    pub tls: Option<u16>,
    /// A TLS input that wants a client certificate signed by its CA.
    pub mtls: Option<u16>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Rsyslog {
    /// A collector keeping its files in `dir`; with `tls`, a TLS input too
    /// (its certificate, signed by `dir/certs/ca.pem`, names 127.0.0.1).
    pub fn start(dir: &Path, tls: bool) -> Rsyslog {
        std::fs::create_dir_all(dir.join("work")).unwrap();
        let tls = tls.then(|| {
            make_certs(&dir.join("certs"));
            free_port()
        });
        let mtls = tls.map(|_| free_port());
        let mut r = Rsyslog { child: None, dir: dir.to_path_buf(), tcp: free_port(), udp: free_udp_port(), tls, mtls };
        r.write_config();
        r.restart();
        r
    }

    fn write_config(&self) {
        let d = self.dir.display();
        let mut conf = format!(
            r#"global(workDirectory="{d}/work" processInternalMessages="on" net.enableDNS="off" maxMessageSize="64k")
template(name="raw" type="string" string="%rawmsg%\n")
module(load="imtcp")
module(load="imudp")
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="r_tcp")
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="r_udp" rcvbufSize="4m")
ruleset(name="r_tcp" queue.type="LinkedList" queue.size="100000" queue.timeoutShutdown="10000") {{
  action(type="omfile" file="{d}/tcp.log" template="raw")
}}
ruleset(name="r_udp" queue.type="LinkedList" queue.size="100000" queue.timeoutShutdown="10000") {{
  action(type="omfile" file="{d}/udp.log" template="raw")
}}
action(type="omfile" file="{d}/internal.log")
"#,
            tcp = self.tcp,
            udp = self.udp,
        );
        // TLS inputs: one for any client, one for clients with a certificate.
        let inputs = [(self.tls, "tls", "anon"), (self.mtls, "mtls", "x509/certvalid")];
        for (port, name, auth) in inputs.into_iter().filter_map(|(p, n, a)| p.map(|p| (p, n, a))) {
            conf.push_str(&format!(
                r#"input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="r_{name}"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="{auth}"
      streamDriver.CAFile="{d}/certs/ca.pem" streamDriver.CertFile="{d}/certs/server.pem"
      streamDriver.KeyFile="{d}/certs/server-key.pem" gnutlsPriorityString="NORMAL")
ruleset(name="r_{name}" queue.type="LinkedList" queue.size="100000" queue.timeoutShutdown="10000") {{
  action(type="omfile" file="{d}/{name}.log" template="raw")
}}
"#
            ));
        }
        std::fs::write(self.dir.join("rsyslog.conf"), conf).unwrap();
    }

    /// Starts rsyslogd (again, after `stop`) on the same ports, and waits
    /// until it listens.
    pub fn restart(&mut self) {
        let internal = self.dir.join("internal.log");
        let starts_before = std::fs::read_to_string(&internal).unwrap_or_default().matches("] start").count();
        let child = std::process::Command::new("/usr/sbin/rsyslogd")
            .args(["-n", "-iNONE", "-f"])
            .arg(self.dir.join("rsyslog.conf"))
            .env_remove("NOTIFY_SOCKET")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("stderr.txt")).unwrap())
            .spawn()
            .expect("rsyslogd (Debian package rsyslog)");
        self.child = Some(child);
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&internal).unwrap_or_default();
            if text.matches("] start").count() > starts_before {
                assert!(!text.contains("Could not create"), "rsyslogd could not listen: {text}");
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "rsyslogd did not start: {text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, and waits for the exit (rsyslogd writes out what it took).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGTERM);
            let _ = c.wait();
        }
    }

    /// The raw messages of an input (`tcp`, `udp`, `tls`).
    pub fn messages(&self, input: &str) -> Vec<String> {
        std::fs::read_to_string(self.dir.join(format!("{input}.log")))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate,
/// made with openssl.
fn make_certs(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl").args(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ca = "-x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -days 30 -subj /CN=sitewarden-test-ca";
    let mut args: Vec<&str> = std::iter::once("req").chain(ca.split(' ')).collect();
    args.extend(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    run(&args);
    let usage = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n";
    for (name, cn, ext) in [
        ("server", "/CN=127.0.0.1", "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"),
        ("client", "/CN=web1", "extendedKeyUsage=clientAuth\n"),
    ] {
        let (key, csr, cert, extfile) =
            (format!("{name}-key.pem"), format!("{name}.csr"), format!("{name}.pem"), format!("{name}.ext"));
        run(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", cn]);
        std::fs::write(dir.join(&extfile), format!("{usage}{ext}")).unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "30",
            "-extfile",
            &extfile,
        ]);
    }
}
