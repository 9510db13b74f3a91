//! Alerts printed for people, one line each (`sitewarden watch`), with
//! colour on a terminal. File names are escaped: a name cannot forge a line.

use std::io::{IsTerminal, Write};

use super::AlertRecord;
use crate::model::Severity;

/// Prints alerts on stdout, one line each, in colour on a terminal.
pub struct Terminal {
    colour: bool,
}

impl Default for Terminal {
    fn default() -> Self {
        Terminal::new()
    }
}

impl Terminal {
    /// Colour when stdout is a terminal and `NO_COLOR` is not set.
    pub fn new() -> Terminal {
        Terminal { colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() }
    }

    /// One alert as a line: time, severity, event, path (and link target), rule
    /// and how it was detected, then the signatures that matched, the
    /// release's verdict and what the quarantine did.
    pub fn line(&self, r: &AlertRecord) -> String {
        let time = r.time.get(11..23).unwrap_or(&r.time);
        let sev = format!("{:<8}", r.severity.as_str().to_uppercase());
        let sev = if self.colour {
            let code = match r.severity {
                Severity::Critical => "1;31",
                Severity::High => "31",
                Severity::Medium => "33",
                Severity::Low => "36",
                Severity::Info => "2",
            };
            format!("\x1b[{code}m{sev}\x1b[0m")
        } else {
            sev
        };
        let path = crate::util::bytes::printable(r.path.as_bytes());
        let extra = match (&r.after, &r.before) {
            (Some(a), _) if a.kind == "symlink" => format!(
                " -> {}",
                a.target.as_deref().map(|t| crate::util::bytes::printable(t.as_bytes())).unwrap_or_default()
            ),
            _ => String::new(),
        };
        let mut line =
            format!("{time} {sev} {:<8} {path}{extra}  [{}, {}]", r.event.as_str(), r.rule, r.detected_by.as_str());
        // What the mail says beyond the place: the rules that matched, the
        // release's word, and what the quarantine did (or could not do).
        if !r.signatures.is_empty() {
            let names: Vec<String> = r.signatures.iter().map(|s| crate::util::bytes::printable(s.as_bytes())).collect();
            line.push_str(&format!(" signatures: {}", names.join(", ")));
        }
        if let Some(why) = &r.unscanned {
            line.push_str(&format!(" NOT SCANNED: {why}"));
        }
        if let Some(v) = &r.verdict {
            line.push_str(&format!("; {}", super::email::verdict_line(v)));
        }
        if let Some(q) = &r.quarantine {
            let result = q.result.as_deref().unwrap_or(q.action.as_str());
            line.push_str(&format!(
                "; quarantine: {} (item {})",
                crate::util::bytes::printable(result.as_bytes()),
                q.id
            ));
        }
        line
    }

    /// Prints `records`, one line each, and flushes stdout.
    pub fn print(&self, records: &[AlertRecord]) {
        let mut out = std::io::stdout().lock();
        for r in records {
            let _ = writeln!(out, "{}", self.line(r));
        }
        let _ = out.flush();
    }
}
