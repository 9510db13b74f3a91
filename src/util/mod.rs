//! Small helpers without a better home: lossless display of byte paths,
//! timestamps in the formats the interface contract fixes, supervised
//! threads, and the test-only fault switch.

pub mod bytes;
pub mod fault;
pub mod keyfile;
pub mod logging;
pub mod supervise;
pub mod time;

/// This machine's name, as alerts show it.
pub fn hostname() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".into())
}

/// A YAML error's place (line, column, from 1) and its message on one line,
/// without the "at line N column M" that the place already says.
pub fn yaml_error(e: &serde_yaml::Error) -> (Option<(usize, usize)>, String) {
    let mut message = e.to_string();
    while let Some(at) = message.find(" at line ") {
        let mut end = at + " at line ".len();
        end += message[end..].bytes().take_while(u8::is_ascii_digit).count();
        if let Some(col) = message[end..].strip_prefix(" column ") {
            end += " column ".len() + col.bytes().take_while(u8::is_ascii_digit).count();
        }
        message.replace_range(at..end, "");
    }
    (e.location().map(|l| (l.line(), l.column())), message.replace(['\n', '\r'], " "))
}

/// The SHA-256 of a byte string.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

/// The URL as logs show it: scheme and host, never the path (it may be
/// the token itself).
pub fn shown_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host);
    format!("{scheme}://{host}/…")
}

#[cfg(test)]
mod tests {
    #[test]
    fn yaml_errors_keep_the_place_apart_from_the_message() {
        let e = serde_yaml::from_str::<Vec<u32>>("- 1\n- x\n").unwrap_err();
        let (place, message) = super::yaml_error(&e);
        assert_eq!(place, Some((2, 3)));
        assert!(!message.contains(" at line ") && !message.contains('\n'), "{message}");
    }
}
