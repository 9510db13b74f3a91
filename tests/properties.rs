//! Property tests over the attacker's input space: file names and paths as
//! arbitrary bytes, globs from profiles, diff texts, and mail headers built
//! from names. Each property is one a hostile name must not break.

use std::path::Path;

use proptest::prelude::*;
use sitewarden::alert::email::{compose, message};
use sitewarden::alert::{diff, AlertRecord};
use sitewarden::config::Config;
use sitewarden::model::{Change, DetectedBy, EventKind, FileState, FileType};
use sitewarden::policy::{Policy, PolicySpec};
use sitewarden::util::bytes::{is_bidi, lossless, needs_base64, printable};

/// `ext` with each letter's case chosen by `mask`.
fn mixed_case(ext: &str, mask: u32) -> String {
    ext.chars().enumerate().map(|(i, c)| if mask >> (i % 32) & 1 == 1 { c.to_ascii_uppercase() } else { c }).collect()
}

fn wordpress() -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("root")).unwrap();
    let cfg = Config::ephemeral("wordpress", &dir.path().join("root"), &dir.path().join("state")).unwrap();
    (dir, cfg)
}

fn state(size: u64) -> FileState {
    FileState {
        kind: FileType::File,
        size,
        mode: 0o644,
        uid: 33,
        gid: 33,
        mtime_ns: 0,
        ctime_ns: 0,
        dev: 1,
        ino: 2,
        sha256: Some([7; 32]),
        target: None,
        nlink: 1,
    }
}

/// A name segment: anything but `/` and NUL, never `.` or `..`.
fn segment() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>().prop_filter("no / or NUL", |b| *b != b'/' && *b != 0), 1..24)
        .prop_filter("not . or ..", |s| s != b"." && s != b"..")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// `always` beats `ignore`, at any depth, whatever the case of the
    /// extension.
    #[test]
    fn always_beats_ignore(dirs in proptest::collection::vec(segment(), 0..4), stem in segment(), mask in any::<u32>()) {
        let spec = PolicySpec {
            ignore: vec!["uploads/**".into()],
            always: vec!["uploads/**/*.php".into()],
            ..PolicySpec::default()
        };
        let policy = Policy::compile(&spec).unwrap();
        let mut rel = b"uploads/".to_vec();
        for d in &dirs {
            rel.extend_from_slice(d);
            rel.push(b'/');
        }
        rel.extend_from_slice(&stem);
        rel.extend_from_slice(format!(".{}", mixed_case("php", mask)).as_bytes());
        prop_assert!(policy.watched(&rel, FileType::File), "{}", lossless(&rel));
        let mut other = rel.clone();
        other.extend_from_slice(b".txt");
        prop_assert!(!policy.watched(&other, FileType::File), "{}", lossless(&other));
    }

    /// In WordPress uploads, a PHP file is critical however its extension
    /// is spelled, and so is a double extension that Apache may run.
    #[test]
    fn php_in_uploads_is_critical_in_any_case_and_double_extension(
        stem in "[a-zA-Z0-9_-]{1,12}",
        ext in prop::sample::select(vec!["php", "phtml", "phar", "php5", "php7"]),
        mask in any::<u32>(),
        double in any::<bool>(),
    ) {
        let (_dir, cfg) = wordpress();
        let policy = &cfg.sites[0].policy;
        let mut name = format!("wp-content/uploads/2026/11/{stem}.{}", mixed_case(ext, mask));
        if double {
            name.push_str(".jpg");
        }
        prop_assert!(policy.watched(name.as_bytes(), FileType::File), "{name}");
        let v = policy.classify(name.as_bytes(), FileType::File, EventKind::Added);
        prop_assert_eq!(v.severity.to_string(), "critical", "{}", name);
    }

    /// Any byte string prints losslessly: unchanged when it needs no
    /// escaping, never a raw bidi control, and `printable` never a control
    /// character at all.
    #[test]
    fn path_printing_is_lossless_and_safe(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let shown = lossless(&bytes);
        if !needs_base64(&bytes) {
            prop_assert_eq!(shown.as_bytes(), bytes.as_slice());
        }
        prop_assert!(!shown.chars().any(is_bidi));
        let p = printable(&bytes);
        prop_assert!(!p.chars().any(|c| c.is_control() || is_bidi(c)), "{:?}", p);
    }

    /// A diff is capped at MAX_LINES lines (plus the note) and about
    /// MAX_BYTES, whatever the lines look like.
    #[test]
    fn diffs_are_capped(lines in proptest::collection::vec("[+ -]?[^\n]{0,300}", 0..600)) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let out = diff::cap(&text);
        prop_assert!(out.lines().count() <= diff::MAX_LINES + 2, "{} lines", out.lines().count());
        prop_assert!(out.len() <= diff::MAX_BYTES + 200, "{} bytes", out.len());
        if text.len() <= diff::MAX_BYTES && text.lines().count() <= diff::MAX_LINES {
            prop_assert_eq!(out, text);
        }
    }

    /// Mail headers built from hostile names: ASCII only, every line ended
    /// by CRLF, and no header field but the ones we write.
    #[test]
    fn mail_headers_stay_clean(names in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 1..4), site in "\\PC{1,20}") {
        let records: Vec<AlertRecord> = names
            .iter()
            .map(|n| {
                let mut rel = b"wp-content/uploads/".to_vec();
                rel.extend(n.iter().map(|&b| if b == b'/' || b == 0 { b'_' } else { b }));
                let change =
                    Change::new(site.as_str().into(), rel, EventKind::Added, None, Some(state(10)), DetectedBy::Realtime);
                let verdict = sitewarden::policy::Verdict {
                    severity: sitewarden::model::Severity::Critical,
                    rule: "php-in-uploads".into(),
                    nodiff: false,
                    quarantine: None,
                };
                AlertRecord::new("web1", Path::new("/var/www/site"), &change, &verdict, 0)
            })
            .collect();
        let (subject, body) = compose("web1\r\nBcc: evil@example.com", &records, 0);
        let from = "sw@example.com".parse().unwrap();
        let to = vec!["ops@example.com".parse().unwrap()];
        let msg = message(&from, &to, &subject, body).unwrap();
        let raw = msg.formatted();
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = &raw[..end + 2];
        prop_assert!(head.is_ascii());
        for (i, b) in head.iter().enumerate() {
            if *b == b'\n' {
                prop_assert!(i > 0 && head[i - 1] == b'\r', "bare LF");
            }
            if *b == b'\r' {
                prop_assert!(head.get(i + 1) == Some(&b'\n'), "bare CR");
            }
        }
        let text = String::from_utf8_lossy(head);
        for line in text.split("\r\n").filter(|l| !l.is_empty() && !l.starts_with([' ', '\t'])) {
            let name = line.split(':').next().unwrap_or("");
            prop_assert!(
                ["From", "To", "Subject", "Content-Type", "Content-Transfer-Encoding", "MIME-Version", "Date", "Message-ID"].contains(&name),
                "unexpected header line {:?}", line
            );
        }
    }
}
