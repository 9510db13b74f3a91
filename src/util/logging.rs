//! Log lines on stderr. Under systemd (`JOURNAL_STREAM` set) each line
//! starts with its syslog priority, `<N>`, so the journal files it at that
//! level and `journalctl -p warning -u sitewarden` shows what matters: an
//! alert's line by its severity (critical `<2>`, high `<3>`, medium `<4>`,
//! low `<5>`, info `<6>`), any other line by its level (error `<3>`, warn
//! `<4>`, info `<6>`, debug `<7>`). The journal adds its own timestamps.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Starts logging to stderr; `SITEWARDEN_LOG` takes a filter such as `debug`.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SITEWARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        let inner = tracing_subscriber::fmt::format().with_target(false).without_time().with_ansi(false);
        builder.event_format(Journald(inner)).init();
    } else {
        builder.with_target(false).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init();
    }
}

/// The priority of a line: an alert's severity, else its level.
pub fn priority(severity: Option<&str>, level: &Level) -> u8 {
    match severity {
        Some("critical") => 2,
        Some("high") => 3,
        Some("medium") => 4,
        Some("low") => 5,
        Some("info") => 6,
        _ => match *level {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            _ => 7,
        },
    }
}

/// A format that puts `<N>` before what `F` writes.
struct Journald<F>(F);

/// The `severity` field of an event, if it has one.
#[derive(Default)]
struct SeverityField(Option<String>);

impl Visit for SeverityField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "severity" {
            self.0 = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "severity" {
            self.0 = Some(format!("{value:?}").trim_matches('"').to_string());
        }
    }
}

impl<S, N, F> FormatEvent<S, N> for Journald<F>
where
    F: FormatEvent<S, N>,
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut severity = SeverityField::default();
        event.record(&mut severity);
        write!(writer, "<{}>", priority(severity.0.as_deref(), event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_is_filed_by_its_severity_any_other_line_by_its_level() {
        assert_eq!(priority(Some("critical"), &Level::INFO), 2);
        assert_eq!(priority(Some("high"), &Level::INFO), 3);
        assert_eq!(priority(None, &Level::WARN), 4);
        assert_eq!(priority(None, &Level::INFO), 6);
    }
}
