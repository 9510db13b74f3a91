//! Fault injection for the supervision tests. Compiled in only with the
//! `fault-injection` cargo feature (the test suite turns it on); in a
//! release build [`point`] is an empty inline function.
//!
//! `SITEWARDEN_FAULT=PLACE[:TEXT]` makes the thread that reaches
//! `point(PLACE, detail)` panic, when `detail` contains TEXT (or always,
//! without TEXT). Places: `judge`, `worker`, `scan`, `mailer`.

/// Panics here when `SITEWARDEN_FAULT` names `place` and `detail` matches.
#[cfg(feature = "fault-injection")]
pub fn point(place: &str, detail: &[u8]) {
    let Ok(spec) = std::env::var("SITEWARDEN_FAULT") else { return };
    let (want, text) = spec.split_once(':').unwrap_or((spec.as_str(), ""));
    if want == place && (text.is_empty() || detail.windows(text.len()).any(|w| w == text.as_bytes())) {
        panic!("injected fault at {place} ({})", String::from_utf8_lossy(detail));
    }
}

/// Does nothing: fault injection is compiled out.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(_place: &str, _detail: &[u8]) {}
