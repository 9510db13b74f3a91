//! Mail: the message sitewarden sends (plain text, readable on a phone) and
//! the transport that sends it (SMTP with `none | starttls | tls`, optional
//! authentication, or the local `sendmail`). The only module that knows
//! lettre.
//!
//! Recipients come only from the config. File names never reach a header:
//! the subject is built from the host name, site names (validated) and
//! counts, and the body is text whose control characters are escaped.

use std::collections::BTreeMap;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SendmailTransport, SmtpTransport, Transport};

use super::AlertRecord;
use crate::config::{self, EmailSettings};
use crate::model::Severity;
use crate::util::bytes::{printable, printable_text};

/// Changes shown in full in one mail; the rest are listed one line each.
pub const FULL_SECTIONS: usize = 100;
/// Changes listed at all in one mail; beyond, only counted.
pub const LISTED: usize = 1000;
/// Longest wait for the mail server.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// A mail that cannot be sent.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// The settings cannot be used (an address that does not parse, an
    /// unreadable password or CA file, a TLS setup error) or the message
    /// cannot be built.
    #[error("mail settings: {0}")]
    Settings(String),
    /// Sending failed for now (server down, timeout, temporary refusal,
    /// `sendmail` failing): the outbox keeps the alerts and retries.
    #[error("mail to {server} failed: {message}")]
    Send {
        /// `host:port`, or `sendmail`.
        server: String,
        /// The error and its causes.
        message: String,
    },
    /// The server refused the message for good (5xx): retrying cannot help.
    #[error("mail to {server} refused: {message}")]
    Rejected {
        /// `host:port` of the server.
        server: String,
        /// The error and its causes.
        message: String,
    },
}

enum Delivery {
    Smtp(Box<SmtpTransport>),
    Sendmail(SendmailTransport),
}

/// A configured mail route, checked when it is built.
pub struct Mailer {
    route: Delivery,
    server: String,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl Mailer {
    /// Builds the route: addresses parsed, password file read, CA loaded.
    /// Connects to nothing: the server may be down, the outbox waits.
    pub fn build(s: &EmailSettings) -> Result<Mailer, EmailError> {
        let bad = |m: String| EmailError::Settings(m);
        let from: Mailbox = s.from.parse().map_err(|e| bad(format!("from '{}': {e}", s.from)))?;
        let to =
            s.to.iter()
                .map(|t| t.parse::<Mailbox>().map_err(|e| bad(format!("to '{t}': {e}"))))
                .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(bad("no recipient in alerts.email.to".into()));
        }
        let (route, server) = match s.transport {
            config::Transport::Sendmail => (Delivery::Sendmail(SendmailTransport::new()), "sendmail".to_string()),
            config::Transport::Smtp => {
                let mut b =
                    SmtpTransport::builder_dangerous(&s.smtp_host).port(s.smtp_port).timeout(Some(SMTP_TIMEOUT));
                if s.tls != config::Tls::None {
                    let mut params = TlsParameters::builder(s.smtp_host.clone());
                    if let Some(ca) = &s.ca_file {
                        let pem = std::fs::read(ca).map_err(|e| bad(format!("ca_file {}: {e}", ca.display())))?;
                        let cert =
                            Certificate::from_pem(&pem).map_err(|e| bad(format!("ca_file {}: {e}", ca.display())))?;
                        params = params.add_root_certificate(cert);
                    }
                    let params = params.build_rustls().map_err(|e| bad(format!("TLS: {e}")))?;
                    b = b.tls(match s.tls {
                        config::Tls::Starttls => Tls::Required(params),
                        _ => Tls::Wrapper(params),
                    });
                }
                if let Some(user) = &s.username {
                    let Some(pw_file) = &s.password_file else {
                        return Err(bad("smtp.username needs smtp.password_file".into()));
                    };
                    let pw = std::fs::read_to_string(pw_file)
                        .map_err(|e| bad(format!("password_file {}: {e}", pw_file.display())))?;
                    b = b.credentials(Credentials::new(user.clone(), pw.trim_end_matches(['\n', '\r']).to_string()));
                }
                (Delivery::Smtp(Box::new(b.build())), format!("{}:{}", s.smtp_host, s.smtp_port))
            }
        };
        Ok(Mailer { route, server, from, to })
    }

    /// Sends one mail; returns the server's answer.
    pub fn send(&self, subject: &str, body: String) -> Result<String, EmailError> {
        let msg = message(&self.from, &self.to, subject, body)?;
        let fail = |message: String| EmailError::Send { server: self.server.clone(), message };
        match &self.route {
            Delivery::Smtp(t) => t
                .send(&msg)
                .map(|r| format!("{} {}", r.code(), r.message().collect::<Vec<_>>().join(" ")))
                .map_err(|e| {
                    if e.is_permanent() {
                        EmailError::Rejected { server: self.server.clone(), message: error_chain(&e) }
                    } else {
                        fail(error_chain(&e))
                    }
                }),
            Delivery::Sendmail(t) => {
                t.send(&msg).map(|()| "accepted by sendmail".into()).map_err(|e| fail(error_chain(&e)))
            }
        }
    }
}

impl super::courier::Route for Mailer {
    fn describe(&self) -> String {
        format!("mail to {}", self.server)
    }

    fn thread(&self) -> &'static str {
        "sw-mailer"
    }

    /// A CMS update of thousands of files is one mail; beyond this, the
    /// next mail follows at once.
    fn batch(&self) -> usize {
        10_000
    }

    fn send(&mut self, host: &str, records: &[AlertRecord], overflow: u64) -> Result<String, super::courier::Failure> {
        use super::courier::Failure;
        let (subject, body) = compose(host, records, overflow);
        Mailer::send(self, &subject, body).map_err(|e| match e {
            e @ EmailError::Rejected { .. } => Failure::Refused(e.to_string()),
            e => Failure::Retry { message: e.to_string(), after: None },
        })
    }
}

/// The mail as it is sent: plain text, the subject cleaned of control
/// characters (lettre encodes what is not ASCII).
pub fn message(from: &Mailbox, to: &[Mailbox], subject: &str, body: String) -> Result<Message, EmailError> {
    // A Message-ID in the sender's domain (its absence raises spam scores at
    // the big providers); lettre adds the Date.
    let unique =
        crate::util::sha256(format!("{}{}{subject}{body}", crate::util::time::now_ns(), std::process::id()).as_bytes());
    let id = format!("<{}@{}>", &crate::util::bytes::hex(&unique)[..32], from.email.domain());
    let mut builder = Message::builder().from(from.clone()).subject(clean_header(subject)).message_id(Some(id));
    for t in to {
        builder = builder.to(t.clone());
    }
    builder.header(ContentType::TEXT_PLAIN).body(body).map_err(|e| EmailError::Settings(e.to_string()))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        text.push_str(": ");
        text.push_str(&s.to_string());
        src = s.source();
    }
    text
}

/// A header value with control characters removed (CR/LF cannot start a
/// new header).
pub fn clean_header(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// The host name as a subject may carry it.
fn clean_host(h: &str) -> String {
    let h: String = h.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-').collect();
    if h.is_empty() {
        "localhost".into()
    } else {
        h
    }
}

/// The subject of a mail (and the title of a chat message) about
/// `records`: the host, the count, the sites by name (the first three,
/// then how many more) and how many are critical.
pub fn subject(host: &str, records: &[AlertRecord], overflow: u64) -> String {
    let host = clean_host(host);
    let n = records.len() as u64 + overflow;
    let critical = records.iter().filter(|r| r.severity == Severity::Critical).count();
    let mut sites: Vec<&str> = records.iter().map(|r| r.site.as_str()).collect();
    sites.sort_unstable();
    sites.dedup();
    let on = match sites.len() {
        0 => "this host".to_string(),
        1..=3 => sites.iter().map(|s| clean_header(s)).collect::<Vec<_>>().join(", "),
        k => format!("{} +{} more", sites[..3].iter().map(|s| clean_header(s)).collect::<Vec<_>>().join(", "), k - 3),
    };
    format!("[sitewarden] {host}: {} on {on} ({critical} critical)", plural(n, "change", "changes"))
}

/// Subject and body of a mail for `records`; `overflow` alerts did not fit
/// the outbox and are only in the alert log.
pub fn compose(host: &str, records: &[AlertRecord], overflow: u64) -> (String, String) {
    let subject = subject(host, records, overflow);
    let host = clean_host(host);
    let n = records.len() as u64 + overflow;
    let mut sites: Vec<&str> = records.iter().map(|r| r.site.as_str()).collect();
    sites.sort_unstable();
    sites.dedup();
    let changes = plural(n, "change", "changes");

    let mut by_sev: BTreeMap<std::cmp::Reverse<Severity>, usize> = BTreeMap::new();
    for r in records {
        *by_sev.entry(std::cmp::Reverse(r.severity)).or_default() += 1;
    }
    let mut body = String::new();
    body.push_str(&format!("sitewarden on {host}: {changes} on {}\n", sites.join(", ")));
    let counts: Vec<String> = by_sev.iter().map(|(s, c)| format!("{} {c}", s.0)).collect();
    body.push_str(&counts.join(", "));
    body.push('\n');
    if let (Some(first), Some(last)) = (records.iter().map(|r| &r.time).min(), records.iter().map(|r| &r.time).max()) {
        body.push_str(&format!("from {first} to {last}\n"));
    }
    if overflow > 0 {
        body.push_str(&format!("{overflow} more alerts did not fit in the mail queue; they are in the alert log.\n"));
    }

    let mut sorted: Vec<&AlertRecord> = records.iter().collect();
    sorted.sort_by(|a, b| by_importance(a, b));
    for (i, r) in sorted.iter().enumerate() {
        if i == FULL_SECTIONS {
            body.push_str(&format!("\n== {} more changes, listed without details:\n", records.len() - FULL_SECTIONS));
        }
        if i >= LISTED {
            body.push_str(&format!("\n... and {} more changes (see the alert log).\n", records.len() - LISTED));
            break;
        }
        if i >= FULL_SECTIONS {
            body.push_str(&format!(
                "{} {} {}\n",
                r.severity.as_str().to_uppercase(),
                r.event.as_str(),
                printable(r.path.as_bytes())
            ));
            continue;
        }
        section(&mut body, r);
    }
    (subject, body)
}

/// `1 change`, `2 changes`.
fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The order changes are shown in: most severe first, then oldest first.
fn by_importance(a: &AlertRecord, b: &AlertRecord) -> std::cmp::Ordering {
    b.severity.cmp(&a.severity).then(a.time.cmp(&b.time))
}

/// Sorts records in the order a mail shows them.
pub fn order(records: &mut [AlertRecord]) {
    records.sort_by(by_importance);
}

/// A verdict for people: `TAMPERED: differs from wordpress 6.4.3`.
pub fn verdict_line(v: &crate::releases::Verdict) -> String {
    let origin = match v.origin {
        crate::releases::Origin::Vendor => "matches",
        crate::releases::Origin::Tampered => "TAMPERED: differs from",
        crate::releases::Origin::Foreign => "FOREIGN: not in",
        crate::releases::Origin::Unknown => "unknown to",
    };
    format!("{origin} {} {}", v.package, printable(v.version.as_bytes()))
}

fn section(body: &mut String, r: &AlertRecord) {
    body.push_str("\n----------------------------------------\n");
    body.push_str(&format!("{} {}\n", r.severity.as_str().to_uppercase(), r.event.as_str()));
    body.push_str(&format!("{}\n", printable(r.path.as_bytes())));
    body.push_str(&format!("site {} | rule {} | found by {} | {}\n", r.site, r.rule, r.detected_by.as_str(), r.time));
    if let Some(a) = &r.actor {
        body.push_str(&format!("written by {}\n", a.describe()));
    }
    if !r.signatures.is_empty() {
        body.push_str(&format!("SIGNATURES: {}\n", r.signatures.join(", ")));
    }
    if let Some(why) = &r.unscanned {
        body.push_str(&format!("NOT SCANNED: {why}; the content is not known to be clean\n"));
    }
    if let Some(v) = &r.verdict {
        body.push_str(&verdict_line(v));
        body.push('\n');
    }
    if let Some(t) = &r.transient {
        let end = match t.end {
            crate::model::TransientEnd::Deleted => "deleted",
            crate::model::TransientEnd::Restored => "put back",
        };
        body.push_str(&format!("transient: {end} after {} ms\n", t.lived_ms));
    }
    for (label, st) in [("before", &r.before), ("now", &r.after)] {
        if let Some(s) = st {
            let mut line = format!("{label}: {} {} bytes, mode {}, owner {}:{}", s.kind, s.size, s.mode, s.uid, s.gid);
            if let Some(t) = &s.target {
                line.push_str(&format!(", -> {}", printable(t.as_bytes())));
            }
            if let Some(h) = &s.sha256 {
                line.push_str(&format!(", sha256 {}", &h[..16.min(h.len())]));
            }
            body.push_str(&line);
            body.push('\n');
        }
    }
    if let Some(q) = &r.quarantine {
        let result = q.result.as_deref().unwrap_or(q.action.as_str());
        body.push_str(&format!("QUARANTINE ({}): {result}; evidence kept as {}\n", q.action.as_str(), q.id));
        if result.starts_with("restored") || result.starts_with("removed") {
            body.push_str(&format!(
                "  if this change was legitimate, put it back and accept it with:\n  sitewarden quarantine restore {}\n",
                q.id
            ));
        }
    }
    if let Some(note) = &r.diff_note {
        body.push_str(&format!("({})\n", super::diff::note_text(note)));
    }
    if let Some(d) = &r.diff {
        body.push('\n');
        body.push_str(&printable_text(d));
        if !d.ends_with('\n') {
            body.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(site: &str, severity: Severity) -> AlertRecord {
        let text = format!(
            r#"{{"time":"2026-11-27T18:00:00.123Z","host":"web1","site":"{site}","event":"modified","path":"/var/www/{site}/x.php","severity":"{}","rule":"r","detected_by":"scan","before":null,"after":null,"diff":null,"quarantine":null}}"#,
            severity.as_str()
        );
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn a_subject_names_its_sites_and_counts_in_english() {
        let (subject, body) = compose("web1", &[rec("blog", Severity::Critical)], 0);
        assert_eq!(subject, "[sitewarden] web1: 1 change on blog (1 critical)");
        assert!(body.starts_with("sitewarden on web1: 1 change on blog\n"), "{body}");
        let two = [rec("shop", Severity::High), rec("blog", Severity::Low)];
        assert_eq!(compose("web1", &two, 0).0, "[sitewarden] web1: 2 changes on blog, shop (0 critical)");
        let five: Vec<AlertRecord> = ["e", "d", "c", "b", "a"].iter().map(|s| rec(s, Severity::Medium)).collect();
        assert_eq!(compose("web1", &five, 0).0, "[sitewarden] web1: 5 changes on a, b, c +2 more (0 critical)");
    }

    #[test]
    fn a_section_says_who_wrote_it_and_how_long_a_transient_lived() {
        let mut r: AlertRecord = serde_json::from_str(
            r#"{"time":"2026-11-29T20:00:00.000Z","host":"web1","site":"blog","event":"added",
                "path":"/var/www/blog/wp-content/uploads/x.php","severity":"critical","rule":"php-in-uploads",
                "detected_by":"realtime","before":null,"after":null,"diff":null,"quarantine":null,
                "transient":{"lived_ms":37,"end":"deleted"}}"#,
        )
        .unwrap();
        r.actor = Some(crate::model::Actor {
            pid: 4242,
            comm: Some("php-fpm8.2".into()),
            user: Some("www-data".into()),
            unit: Some("php8.2-fpm.service".into()),
            ..Default::default()
        });
        let mut body = String::new();
        section(&mut body, &r);
        assert!(body.contains("written by php-fpm8.2 (www-data, php8.2-fpm.service)\n"), "{body}");
        assert!(body.contains("transient: deleted after 37 ms\n"), "{body}");
    }
}
