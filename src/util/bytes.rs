//! Byte strings (file names) turned into text without losing anything.
//!
//! The contract writes a name that is not valid UTF-8 with each invalid byte
//! as `\xHH` (and the record adds the exact bytes in base64). For terminal
//! output, control characters are escaped too, so a name holding a newline or
//! an escape sequence cannot forge a line of output.

use base64::Engine as _;

/// `bytes` as UTF-8 text with each invalid byte written as `\xHH` and each
/// bidi control as `\uHHHH`. Other valid UTF-8 is returned unchanged
/// (control characters included: JSON escapes those itself).
pub fn lossless(bytes: &[u8]) -> String {
    escape(bytes, false)
}

/// Like [`lossless`], and also escapes ASCII control characters and DEL, for
/// output read by people (terminals, mail subjects, log lines).
pub fn printable(bytes: &[u8]) -> String {
    escape(bytes, true)
}

/// Multi-line text for a terminal or a mail body: newlines and tabs kept,
/// every other control character escaped (no escape sequences, no `\r`).
pub fn printable_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_bidi(c) {
            push_bidi(&mut out, c);
        } else if c.is_control() && c != '\n' && c != '\t' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// True when [`lossless`] would have to escape something.
pub fn needs_base64(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).map_or(true, |s| s.chars().any(is_bidi))
}

/// Unicode bidirectional controls: invisible, they reorder what follows, so
/// `uni\u{202E}gnp.php` shows as "uniphp.png". Always escaped, as `\u202E`.
pub fn is_bidi(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn push_bidi(out: &mut String, c: char) {
    out.push_str(&format!("\\u{:04X}", c as u32));
}

/// Lower-case hex of a SHA-256.
pub fn hex(sha: &[u8; 32]) -> String {
    sha.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lower-case hex of any bytes.
pub fn hex_bytes(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from their hex form (either case); `None` when it is not hex.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

/// A SHA-256 from its hex form (as [`hex`] writes it).
pub fn parse_sha256(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.as_bytes().chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

/// Standard base64 (with padding) of `bytes`: the exact name next to a lossy one.
pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn escape(mut bytes: &[u8], controls: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    loop {
        match std::str::from_utf8(bytes) {
            Ok(valid) => {
                push_valid(&mut out, valid, controls);
                return out;
            }
            Err(err) => {
                let (valid, rest) = bytes.split_at(err.valid_up_to());
                // Checked by from_utf8 just above.
                push_valid(&mut out, std::str::from_utf8(valid).unwrap_or_default(), controls);
                let bad = err.error_len().unwrap_or(rest.len());
                for b in &rest[..bad] {
                    out.push_str(&format!("\\x{b:02X}"));
                }
                bytes = &rest[bad..];
            }
        }
    }
}

fn push_valid(out: &mut String, s: &str, controls: bool) {
    if !controls && !s.chars().any(is_bidi) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        if is_bidi(c) {
            push_bidi(out, c);
        } else if controls && c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_bytes_are_escaped() {
        assert_eq!(lossless(b"a\xffb.php"), "a\\xFFb.php");
        assert_eq!(lossless("caf\u{e9}".as_bytes()), "caf\u{e9}");
        assert!(needs_base64(b"\xff"));
        assert!(!needs_base64(b"ok\n"));
    }

    #[test]
    fn bidi_controls_are_escaped_everywhere() {
        let name = "uni\u{202E}gnp.php".as_bytes();
        assert_eq!(lossless(name), "uni\\u202Egnp.php");
        assert_eq!(printable(name), "uni\\u202Egnp.php");
        assert_eq!(printable_text("a\u{2066}b\nc"), "a\\u2066b\nc");
        assert!(needs_base64(name), "the exact name goes in path_base64");
        assert!(!needs_base64("plain/é.php".as_bytes()));
    }

    #[test]
    fn hex_round_trips() {
        let sha = [0xab; 32];
        assert_eq!(parse_sha256(&hex(&sha)), Some(sha));
        assert_eq!(parse_sha256("zz"), None);
    }

    #[test]
    fn printable_escapes_controls() {
        assert_eq!(printable(b"a\r\nBcc: x"), "a\\x0D\\x0ABcc: x");
        assert_eq!(printable(b"\x1b[31m"), "\\x1B[31m");
        assert_eq!(lossless(b"a\nb"), "a\nb");
    }
}
