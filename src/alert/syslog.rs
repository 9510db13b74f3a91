//! Syslog to a collector: RFC 5424 messages over UDP (RFC 5426), TCP with
//! octet-counted framing (RFC 6587) or TLS (RFC 5425), the record in
//! structured data (`[sitewarden@32473 id="…" …]`) or as JSON in MSG.
//!
//! Delivery goes through the outbox. Over TCP and TLS a batch counts as
//! delivered only once the collector has read all of it: after the last
//! frame the connection is half-closed, and the collector closing its side
//! in turn (it read the end of the stream) is the acknowledgement. A
//! collector that stops with frames unread resets the connection instead,
//! and the batch is sent again; a receiver drops duplicates by `id`. UDP
//! has no acknowledgement: what the network loses is in the alert log.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use super::courier::{Failure, Route};
use super::AlertRecord;
use crate::model::Severity;
use crate::util::bytes::printable;

/// The structured-data ID of a record (32473 is the enterprise number
/// RFC 5612 sets aside for documentation; receivers match the name).
pub const SD_ID: &str = "sitewarden@32473";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// One read or write at most.
const IO_TIMEOUT: Duration = Duration::from_secs(20);
/// A whole exchange at most, plus a millisecond per 100 bytes sent.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(60);
/// Records in one connection at most.
const PER_CONNECTION: usize = 5_000;
/// Paths of an update summary sent at most (the rest are in the log).
const UPDATE_PATHS: usize = 20;

pub use crate::model::SyslogProtocol as Protocol;

pub use crate::model::SyslogFormat as Format;

pub use crate::model::SyslogFacility as Facility;

const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

impl<'de> serde::Deserialize<'de> for Facility {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::profile::raw::checked_str(d, "a syslog facility", |s| {
            FACILITIES
                .iter()
                .position(|f| *f == s)
                .map(|i| Facility(i as u8))
                .ok_or_else(|| format!("unknown syslog facility '{s}' (daemon, auth, authpriv, user, local0 … local7)"))
        })
    }
}

/// The syslog severity of an alert.
fn level(s: Severity) -> u8 {
    match s {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
        Severity::Info => 6,
    }
}

/// An SD-PARAM value: printable, with `"`, `\` and `]` escaped.
fn sd_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in printable(s.as_bytes()).chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A header field: printable ASCII without spaces, at most `max`, or `-`.
fn header_field(s: &str, max: usize) -> String {
    let f: String = s.chars().filter(|c| c.is_ascii_graphic()).take(max).collect();
    if f.is_empty() {
        "-".into()
    } else {
        f
    }
}

/// What a collector is sent of a record: no diff (file contents stay in the
/// mail and the alert log), an update's paths shortened.
fn trimmed(r: &AlertRecord) -> AlertRecord {
    let mut r = r.clone();
    r.diff = None;
    if let Some(u) = r.update.as_mut() {
        u.paths.truncate(UPDATE_PATHS);
    }
    r
}

/// The RFC 5424 message of a record.
pub fn message(r: &AlertRecord, host: &str, facility: Facility, format: Format) -> String {
    let pri = u16::from(facility.0) * 8 + u16::from(level(r.severity));
    let head = format!(
        "<{pri}>1 {} {} sitewarden {} {}",
        header_field(&r.time, 32),
        header_field(host, 255),
        std::process::id(),
        header_field(r.event.as_str(), 32)
    );
    let r = trimmed(r);
    match format {
        Format::Json => format!("{head} - {}", r.to_json()),
        Format::Rfc5424 => {
            let mut params: Vec<(&str, String)> = vec![
                ("id", r.id.clone()),
                ("site", r.site.clone()),
                ("event", r.event.as_str().into()),
                ("path", r.path.clone()),
                ("severity", r.severity.as_str().into()),
                ("rule", r.rule.clone()),
                ("detected_by", r.detected_by.as_str().into()),
            ];
            if let Some(a) = &r.after {
                params.extend(a.sha256.clone().map(|h| ("sha256", h)));
                params.push(("size", a.size.to_string()));
                params.push(("mode", a.mode.clone()));
                params.push(("uid", a.uid.to_string()));
            }
            if let Some(v) = &r.verdict {
                params.push(("origin", v.origin.as_str().into()));
                params.push(("package", v.package.clone()));
                params.push(("version", v.version.clone()));
            }
            if !r.signatures.is_empty() {
                params.push(("signatures", r.signatures.join(",")));
            }
            params.extend(r.unscanned.clone().map(|u| ("unscanned", u)));
            if let Some(a) = &r.actor {
                params.push(("actor_pid", a.pid.to_string()));
                params.extend(a.exe.clone().map(|v| ("actor_exe", v)));
                params.extend(a.user.clone().map(|v| ("actor_user", v)));
                params.extend(a.unit.clone().map(|v| ("actor_unit", v)));
            }
            if let Some(t) = &r.transient {
                params.push(("transient_ms", t.lived_ms.to_string()));
            }
            if let Some(q) = &r.quarantine {
                params.push(("quarantine", q.action.as_str().into()));
            }
            let sd: String = params.iter().map(|(k, v)| format!(" {k}=\"{}\"", sd_value(v))).collect();
            let summary = format!(
                "{} {} {} on {} (rule {})",
                r.severity.as_str().to_uppercase(),
                r.event.as_str(),
                printable(r.path.as_bytes()),
                r.site,
                r.rule
            );
            format!("{head} [{SD_ID}{sd}] {summary}")
        }
    }
}

/// A configured collector.
pub struct Collector {
    host: String,
    port: u16,
    protocol: Protocol,
    format: Format,
    facility: Facility,
    tls: Option<(Arc<rustls::ClientConfig>, rustls::pki_types::ServerName<'static>)>,
}

impl Collector {
    /// Builds it: the CA, certificate and key files are read now, so a bad
    /// one fails at start.
    pub fn build(s: &crate::config::SyslogSettings) -> Result<Collector, String> {
        let tls = match s.protocol {
            Protocol::Tls => {
                let name = rustls::pki_types::ServerName::try_from(s.host.clone())
                    .map_err(|e| format!("syslog host {}: {e}", s.host))?;
                Some((tls_config(s)?, name))
            }
            _ => None,
        };
        Ok(Collector {
            host: s.host.clone(),
            port: s.port,
            protocol: s.protocol,
            format: s.format,
            facility: s.facility,
            tls,
        })
    }

    fn addrs(&self) -> Result<Vec<SocketAddr>, Failure> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map(|a| a.collect())
            .map_err(|e| retry(format!("cannot resolve {}: {e}", self.host)))
    }

    fn connect(&self) -> Result<TcpStream, Failure> {
        let mut last = String::from("no address");
        for a in self.addrs()? {
            match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                Ok(s) => return Ok(s),
                Err(e) => last = format!("connect to {a}: {e}"),
            }
        }
        Err(retry(last))
    }

    fn send_udp(&self, messages: &[String]) -> Result<String, Failure> {
        let addr = *self.addrs()?.first().ok_or_else(|| retry(format!("{} has no address", self.host)))?;
        let local: SocketAddr =
            if addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
        let sock = UdpSocket::bind(local).map_err(|e| retry(e.to_string()))?;
        sock.connect(addr).map_err(|e| retry(format!("{addr}: {e}")))?;
        for (i, m) in messages.iter().enumerate() {
            // Most collectors take 64 KiB at most; the log has the rest.
            let mut end = m.len().min(65_000);
            while !m.is_char_boundary(end) {
                end -= 1;
            }
            let bytes = &m.as_bytes()[..end];
            sock.send(bytes).map_err(|e| retry(format!("{addr}: {e}")))?;
            // Paced, so a burst does not overrun the collector's buffer.
            if i % 64 == 63 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        Ok(format!("{} datagrams to {addr}", messages.len()))
    }

    fn send_stream(&self, messages: &[String]) -> Result<String, Failure> {
        let mut data = Vec::new();
        frames(&mut data, messages).map_err(|e| retry(e.to_string()))?;
        let sock = self.connect()?;
        let peer = sock.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        let fail = |e: std::io::Error| retry(format!("{peer}: {e}"));
        // The whole exchange has one deadline: a collector that reads a
        // byte now and then cannot hold the courier.
        let budget = EXCHANGE_TIMEOUT + Duration::from_millis(data.len() as u64 / 100);
        let mut stream = Timed { sock, until: std::time::Instant::now() + budget };
        match &self.tls {
            None => {
                stream.write_all(&data).map_err(fail)?;
                stream.sock.shutdown(Shutdown::Write).map_err(fail)?;
                acknowledged(&mut stream).map_err(fail)?;
                all_taken(&stream).map_err(fail)?;
            }
            Some((config, name)) => {
                let conn = rustls::ClientConnection::new(Arc::clone(config), name.clone())
                    .map_err(|e| retry(e.to_string()))?;
                let mut tls = rustls::StreamOwned::new(conn, stream);
                tls.write_all(&data).map_err(fail)?;
                tls.conn.send_close_notify();
                tls.flush().map_err(fail)?;
                tls.sock.sock.shutdown(Shutdown::Write).map_err(fail)?;
                acknowledged(&mut tls).map_err(fail)?;
                all_taken(&tls.sock).map_err(fail)?;
            }
        }
        Ok(format!("{} messages to {peer}, read to the end", messages.len()))
    }
}

/// A connection whose reads and writes all end by one deadline.
struct Timed {
    sock: TcpStream,
    until: std::time::Instant,
}

impl Timed {
    fn arm(&self) -> std::io::Result<()> {
        let left = self.until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(ErrorKind::TimedOut, "the collector took too long"));
        }
        let t = Some(left.min(IO_TIMEOUT));
        self.sock.set_read_timeout(t)?;
        self.sock.set_write_timeout(t)
    }
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.arm()?;
        self.sock.read(buf)
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.arm()?;
        self.sock.write(&buf[..buf.len().min(64 << 10)])
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn retry(message: String) -> Failure {
    Failure::Retry { message, after: None }
}

/// Writes the messages as octet-counted frames.
fn frames(w: &mut impl Write, messages: &[String]) -> std::io::Result<()> {
    for m in messages {
        write!(w, "{} ", m.len())?;
        w.write_all(m.as_bytes())?;
    }
    Ok(())
}

/// Waits for the collector to close its side: it read everything. A reset
/// means it stopped with frames unread, and a collector that neither
/// closes nor resets by the deadline may have stalled with them in its
/// socket: both are failures, and the batch is sent again.
fn acknowledged(r: &mut impl Read) -> std::io::Result<()> {
    let mut buf = [0u8; 512];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            // Closed without a TLS close_notify: still the end of its reading.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(std::io::Error::new(
                    ErrorKind::TimedOut,
                    "the collector did not close the connection after the batch: not known to be read",
                ))
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The collector's end of the stream was a close after reading, not one
/// before: every byte sent (and the end of the stream) was acknowledged by
/// its TCP. A collector that closed before the batch arrived answers it
/// with a reset, never an acknowledgement, though its close may reach us
/// first and read as the end of the stream.
fn all_taken(t: &Timed) -> std::io::Result<()> {
    loop {
        if let Some(e) = t.sock.take_error()? {
            return Err(e);
        }
        if unacknowledged(&t.sock)? == 0 {
            return Ok(());
        }
        if std::time::Instant::now() >= t.until {
            return Err(std::io::Error::new(
                ErrorKind::ConnectionAborted,
                "the collector closed the connection before it took the whole batch",
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Bytes sent on `sock` that the peer's TCP has not acknowledged yet
/// (Linux `SIOCOUTQ`: unsent and unacknowledged, the FIN included).
fn unacknowledged(sock: &TcpStream) -> std::io::Result<i32> {
    use nix::libc;
    use std::os::fd::AsRawFd;
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ stores one int through the pointer, which points to
    // `n`; the descriptor is the open socket `sock` borrows.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::TIOCOUTQ, &mut n as *mut libc::c_int) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(n)
}

pub use crate::util::keyfile::{read_certs, read_key};

/// The TLS client settings: the CA file's certificates, or the system's;
/// the client certificate and key when the collector asks for one.
fn tls_config(s: &crate::config::SyslogSettings) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match &s.ca_file {
        Some(p) => {
            for cert in read_certs(p).map_err(|e| format!("syslog ca_file: {e}"))? {
                roots.add(cert).map_err(|e| format!("syslog ca_file {}: {e}", p.display()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(
                    "syslog over TLS: no CA certificate on this system (install ca-certificates, or set ca_file)"
                        .into(),
                );
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots);
    let config = match (&s.cert_file, &s.key_file) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert).map_err(|e| format!("syslog cert_file: {e}"))?;
            let key = read_key(key).map_err(|e| format!("syslog key_file: {e}"))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| format!("syslog cert_file and key_file: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

impl Route for Collector {
    fn describe(&self) -> String {
        let p = match self.protocol {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
            Protocol::Tls => "tls",
        };
        format!("syslog ({p}) {}:{}", self.host, self.port)
    }

    fn thread(&self) -> &'static str {
        "sw-syslog"
    }

    fn batch(&self) -> usize {
        PER_CONNECTION
    }

    fn send(&mut self, host: &str, records: &[AlertRecord], _overflow: u64) -> Result<String, Failure> {
        let mut records = records.to_vec();
        records.sort_by(|a, b| a.time.cmp(&b.time));
        let messages: Vec<String> = records.iter().map(|r| message(r, host, self.facility, self.format)).collect();
        match self.protocol {
            Protocol::Udp => self.send_udp(&messages),
            Protocol::Tcp | Protocol::Tls => self.send_stream(&messages),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> AlertRecord {
        serde_json::from_str(
            r#"{"time":"2026-11-27T18:00:00.123Z","id":"0123abcd","host":"web1","site":"blog","event":"added",
                "path":"/var/www/blog/a\"]\\b\n.php","severity":"critical","rule":"php-in-uploads",
                "detected_by":"realtime","before":null,"after":null,"diff":"+secret diff","quarantine":null}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_message_is_rfc5424_with_the_record_in_structured_data() {
        let m = message(&rec(), "web 1", Facility::default(), Format::Rfc5424);
        assert!(m.starts_with("<26>1 2026-11-27T18:00:00.123Z web1 sitewarden "), "{m}");
        assert!(
            m.contains(
                r#"[sitewarden@32473 id="0123abcd" site="blog" event="added" path="/var/www/blog/a\"\]\\b\\x0A.php""#
            ),
            "{m}"
        );
        assert!(!m.contains('\n') && !m.contains("secret diff"), "{m}");
        let j = message(&rec(), "web1", Facility(16), Format::Json);
        assert!(j.starts_with("<130>1 "), "{j}");
        let json: serde_json::Value = serde_json::from_str(j.split_once(" - ").unwrap().1).unwrap();
        assert_eq!(json["id"], "0123abcd");
        assert!(json["diff"].is_null());
    }

    /// A collector on loopback that reads `read` bytes, then closes its
    /// side (`close`) or holds the connection open.
    fn collector(read: usize, close: bool) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = vec![0u8; read];
            s.read_exact(&mut buf).unwrap();
            if close {
                let mut rest = Vec::new();
                let _ = s.read_to_end(&mut rest);
                drop(s);
            } else {
                std::thread::sleep(Duration::from_secs(2));
            }
        });
        (addr, h)
    }

    fn exchange(addr: std::net::SocketAddr, data: &[u8], within: Duration) -> std::io::Result<()> {
        let sock = TcpStream::connect(addr)?;
        let mut t = Timed { sock, until: std::time::Instant::now() + within };
        t.write_all(data)?;
        t.sock.shutdown(Shutdown::Write)?;
        acknowledged(&mut t)?;
        all_taken(&t)
    }

    #[test]
    fn only_a_collector_that_read_to_the_end_acknowledges() {
        let (addr, h) = collector(5, true);
        exchange(addr, b"hello", Duration::from_secs(5)).unwrap();
        h.join().unwrap();
        // Read, but never closed: not known to be delivered, by the deadline.
        let (addr, h) = collector(5, false);
        let start = std::time::Instant::now();
        let e = exchange(addr, b"hello", Duration::from_millis(300)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
        assert!(start.elapsed() < Duration::from_secs(2));
        h.join().unwrap();
    }

    #[test]
    fn a_collector_that_closed_before_the_batch_arrived_did_not_take_it() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let h = std::thread::spawn(move || drop(l.accept().unwrap()));
        let sock = TcpStream::connect(addr).unwrap();
        h.join().unwrap();
        // Its close is here before the batch leaves.
        std::thread::sleep(Duration::from_millis(50));
        let mut t = Timed { sock, until: std::time::Instant::now() + Duration::from_millis(500) };
        // Whichever step notices (the reset may come back at once), the
        // batch is never taken as delivered.
        let end = t
            .write_all(b"5 hello")
            .and_then(|()| t.sock.shutdown(Shutdown::Write))
            .and_then(|()| acknowledged(&mut t))
            .and_then(|()| all_taken(&t));
        assert!(end.is_err(), "taken as delivered");
    }

    #[test]
    fn frames_are_octet_counted() {
        let mut out = Vec::new();
        frames(&mut out, &["<1>1 a".into(), "é".into()]).unwrap();
        assert_eq!(out, "6 <1>1 a2 é".as_bytes());
    }
}
