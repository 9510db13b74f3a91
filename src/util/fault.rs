//! Fault injection for the supervision tests. Compiled in only with the
//! `fault-injection` cargo feature (the test suite turns it on); in a
//! release build [`point`] is an empty inline function and [`limit`] the
//! identity.
//!
//! `SITEWARDEN_FAULT=PLACE[:TEXT]` makes the thread that reaches
//! `point(PLACE, detail)` panic, when `detail` contains TEXT (or always,
//! without TEXT); `SITEWARDEN_FAULT=hang@PLACE[:TEXT]` makes it hang there
//! instead, for good. Places: `judge`, `worker`, `scan`, `walker`, `hasher`,
//! `verify`, `signatures`, `outbox`, `mailer`, `inotify`.
//! `SITEWARDEN_FAULT_LIMIT_MS=N` shortens every thread's pulse limit (how
//! long a unit of work may take before the watchdog calls it hung) to N ms,
//! so a test need not wait minutes for a hang to be noticed.

/// Panics (or hangs) here when `SITEWARDEN_FAULT` names `place` and
/// `detail` matches.
#[cfg(feature = "fault-injection")]
pub fn point(place: &str, detail: &[u8]) {
    let Ok(spec) = std::env::var("SITEWARDEN_FAULT") else { return };
    let (hang, spec) = match spec.strip_prefix("hang@") {
        Some(rest) => (true, rest.to_string()),
        None => (false, spec),
    };
    let (want, text) = spec.split_once(':').unwrap_or((spec.as_str(), ""));
    if want == place && (text.is_empty() || detail.windows(text.len()).any(|w| w == text.as_bytes())) {
        if hang {
            tracing::warn!("injected hang at {place} ({})", String::from_utf8_lossy(detail));
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        panic!("injected fault at {place} ({})", String::from_utf8_lossy(detail));
    }
}

/// Does nothing: fault injection is compiled out.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(_place: &str, _detail: &[u8]) {}

/// A pulse limit, shortened by `SITEWARDEN_FAULT_LIMIT_MS` in tests.
#[cfg(feature = "fault-injection")]
pub fn limit(normal: std::time::Duration) -> std::time::Duration {
    std::env::var("SITEWARDEN_FAULT_LIMIT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(std::time::Duration::from_millis)
        .unwrap_or(normal)
}

/// The pulse limit as given: fault injection is compiled out.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn limit(normal: std::time::Duration) -> std::time::Duration {
    normal
}
