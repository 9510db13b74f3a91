//! Small helpers without a better home: lossless display of byte paths,
//! timestamps in the formats the interface contract fixes, supervised
//! threads, and the test-only fault switch.

pub mod bytes;
pub mod fault;
pub mod supervise;
pub mod time;

/// This machine's name, as alerts show it.
pub fn hostname() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".into())
}
