//! The diff of an alert: a unified diff (3 lines of context) of the earlier
//! and the new content, or for an added file the head of it, capped in
//! lines, bytes and computing time. Binary content is named, never dumped;
//! secrets (`nodiff`) are never read for it at all, content that turns out
//! to hold a credential is not shown either, and credential lines in the
//! diff of any other file are redacted.

use std::time::Duration;

use similar::TextDiff;

use crate::model::EventKind;
use crate::policy::secrets::Secrets;

/// At most this many lines of diff...
pub const MAX_LINES: usize = 200;
/// ...and this many bytes.
pub const MAX_BYTES: usize = 16 * 1024;
/// A diff taking longer than this falls back to a coarser one.
const TIMEOUT: Duration = Duration::from_millis(250);

/// The record's `diff_note` for a file that holds secrets (by its name or
/// by its content).
pub const SECRET: &str = "secret";

/// The note of a file with more than one hard link.
pub const LINKED: &str = "content not shown: the file has more than one hard link, and another name may be a secret";

/// What a `diff_note` means, for people (mail, terminal, `sitewarden diff`).
pub fn note_text(note: &str) -> &str {
    match note {
        SECRET => "content changed (diff suppressed: file holds secrets)",
        other => other,
    }
}

/// What is known of one side of a change.
pub enum Side<'a> {
    /// Nothing there (the `before` of an added file).
    Absent,
    /// The content, text or not.
    Bytes(&'a [u8]),
    /// There was content, but it was not kept (too large, or before the
    /// content store knew the file).
    Unknown,
}

/// The diff and, where there is none, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The unified diff, capped; `None` when there is none to show.
    pub diff: Option<String>,
    /// Why there is no diff, or why it is partial (the record's `diff_note`).
    pub note: Option<String>,
}

/// The diff of `change`: earlier content from the content store, new
/// content from the store or, failing that, read from the live file below
/// `root` (only if it still has the hash the change reports).
pub fn of_change(
    change: &crate::model::Change,
    label: &str,
    nodiff: bool,
    secrets: &Secrets,
    content: &crate::content::ContentStore,
    root: Option<&std::path::Path>,
) -> Rendered {
    let known_secret = |s: Option<&crate::model::FileState>| {
        s.and_then(|s| s.sha256.as_ref()).is_some_and(|sha| content.is_secret(sha))
    };
    let nodiff = nodiff || known_secret(change.before.as_ref()) || known_secret(change.after.as_ref());
    if nodiff || change.kind == EventKind::Metadata {
        return render(change.kind, label, Side::Absent, Side::Absent, nodiff, secrets);
    }
    // Another name may be `wp-config.php` (or /etc/shadow): never read.
    if change.before.iter().chain(change.after.iter()).any(crate::model::FileState::linked) {
        return Rendered { diff: None, note: Some(LINKED.to_string()) };
    }
    let load = |state: Option<&crate::model::FileState>, live: bool| -> Loaded {
        let Some(s) = state else {
            return Loaded::Absent;
        };
        let Some(sha) = s.sha256 else {
            // Not a regular file: there is no content to show.
            return Loaded::Absent;
        };
        if let Some(b) = content.get(&sha) {
            return Loaded::Bytes(b);
        }
        if live {
            if let Some(root) = root {
                if let Some(b) = crate::scan::file::read_content(root, &change.rel, &sha) {
                    return Loaded::Bytes(b);
                }
            }
        }
        Loaded::Unknown
    };
    let before = load(change.before.as_ref(), false);
    let after = load(change.after.as_ref(), true);
    // A copy or a renamed secret: known by what it holds.
    for (state, side) in [(change.before.as_ref(), &before), (change.after.as_ref(), &after)] {
        if let (Loaded::Bytes(b), Some(sha)) = (side, state.and_then(|s| s.sha256.as_ref())) {
            if secrets.holds(b) {
                content.mark_secret(sha);
                return render(change.kind, label, Side::Absent, Side::Absent, true, secrets);
            }
        }
    }
    render(change.kind, label, before.side(), after.side(), false, secrets)
}

/// The alert record of `change` with its diff: the one place the daemon,
/// `check --json` and `maintenance` build a record, so all three show the
/// same thing (and suppress the same secrets).
pub fn record_with_diff(
    host: &str,
    site: &crate::config::Site,
    change: &crate::model::Change,
    verdict: &crate::policy::Verdict<'_>,
    content: &crate::content::ContentStore,
    live_root: Option<&std::path::Path>,
    time_ns: i64,
) -> super::AlertRecord {
    let mut record = super::AlertRecord::new(host, &site.root, change, verdict, time_ns);
    let d = of_change(change, &record.path, verdict.nodiff, site.policy.secrets(), content, live_root);
    record.diff = d.diff;
    record.diff_note = d.note;
    record
}

enum Loaded {
    Absent,
    Bytes(Vec<u8>),
    Unknown,
}

impl Loaded {
    fn side(&self) -> Side<'_> {
        match self {
            Loaded::Absent => Side::Absent,
            Loaded::Bytes(b) => Side::Bytes(b),
            Loaded::Unknown => Side::Unknown,
        }
    }
}

fn is_binary(b: &[u8]) -> bool {
    !crate::content::is_text(b)
}

/// Renders the diff of a change of `label` (the path shown in the header);
/// lines that hold a credential by `secrets` are redacted.
pub fn render(
    event: EventKind,
    label: &str,
    before: Side<'_>,
    after: Side<'_>,
    nodiff: bool,
    secrets: &Secrets,
) -> Rendered {
    let none = |note: &str| Rendered { diff: None, note: Some(note.to_string()) };
    if nodiff {
        return if event == EventKind::Metadata { Rendered { diff: None, note: None } } else { none(SECRET) };
    }
    if event == EventKind::Metadata {
        return Rendered { diff: None, note: None };
    }
    let old = match before {
        Side::Absent => Some(&b""[..]),
        Side::Bytes(b) if is_binary(b) => return none(&format!("binary content ({} bytes before)", b.len())),
        Side::Bytes(b) => Some(b),
        Side::Unknown => None,
    };
    let new = match after {
        Side::Absent => Some(&b""[..]),
        Side::Bytes(b) if is_binary(b) => return none(&format!("binary content ({} bytes)", b.len())),
        Side::Bytes(b) => Some(b),
        Side::Unknown => None,
    };
    let label = &crate::util::bytes::printable(label.as_bytes());
    match (old, new) {
        // Nothing on either side (a symlink, a FIFO): no diff at all.
        (Some(old), Some(new)) if old.is_empty() && new.is_empty() => Rendered { diff: None, note: None },
        (Some(old), Some(new)) => Rendered { diff: Some(unified(label, event, old, new, secrets)), note: None },
        (None, Some(new)) => Rendered {
            diff: Some(unified(label, EventKind::Added, b"", new, secrets)),
            note: Some(
                "no earlier version was kept (too large, or older than the content store): new content shown".into(),
            ),
        },
        (_, None) => none("the content was not kept (file too large to diff)"),
    }
}

/// The diff of a quarantined change from its evidence copy `evidence` (item
/// `id`), whose content holds a credential: the file was undone, so what
/// it held is shown with every credential line redacted, never hidden
/// whole (a decoy `define('DB_PASSWORD', …)` does not hide a web shell).
pub fn of_evidence(
    event: EventKind,
    label: &str,
    before: Side<'_>,
    evidence: &[u8],
    id: &str,
    secrets: &Secrets,
) -> Rendered {
    let r = render(event, label, before, Side::Bytes(evidence), false, secrets);
    // A credential over several lines (a private key's armour and body)
    // survives redaction line by line: then nothing is shown.
    let bare = |d: &str| d.lines().map(|l| l.get(1..).unwrap_or("")).collect::<Vec<_>>().join("\n");
    if r.diff.as_deref().is_some_and(|d| secrets.mentions(d.as_bytes()) || secrets.mentions(bare(d).as_bytes())) {
        let note = format!(
            "content not shown: it holds a credential over several lines; kept as evidence in quarantine item {id}"
        );
        return Rendered { diff: None, note: Some(note) };
    }
    let kept = format!("credential lines redacted; the whole file is kept as evidence in quarantine item {id}");
    Rendered { diff: r.diff, note: Some(r.note.map(|n| format!("{n}; {kept}")).unwrap_or(kept)) }
}

fn unified(label: &str, event: EventKind, old: &[u8], new: &[u8], secrets: &Secrets) -> String {
    let old = String::from_utf8_lossy(old);
    let new = String::from_utf8_lossy(new);
    let (from, to) = match event {
        EventKind::Added => ("/dev/null".to_string(), label.to_string()),
        EventKind::Deleted => (label.to_string(), "/dev/null".to_string()),
        _ => (label.to_string(), label.to_string()),
    };
    let diff = TextDiff::configure().timeout(TIMEOUT).diff_lines(old.as_ref(), new.as_ref());
    let text = diff.unified_diff().context_radius(3).header(&from, &to).to_string();
    cap(&secrets.redact(&text))
}

/// Cuts a diff at `MAX_LINES` lines or `MAX_BYTES` bytes, saying how many
/// changed lines were left out.
pub fn cap(text: &str) -> String {
    let mut out = String::new();
    let mut lines = 0;
    let mut rest_changed = 0;
    let mut cut = false;
    for line in text.split_inclusive('\n') {
        if !cut && (lines >= MAX_LINES || out.len() + line.len() > MAX_BYTES) {
            cut = true;
            // One huge line (an obfuscated web shell) is shown in part
            // rather than not at all.
            let room = MAX_BYTES.saturating_sub(out.len() + 40);
            if lines < MAX_LINES && room > 80 {
                let mut end = room.min(line.len());
                while !line.is_char_boundary(end) {
                    end -= 1;
                }
                out.push_str(&line[..end]);
                out.push_str(&format!(" [line cut: {} more bytes]\n", line.len() - end));
                lines += 1;
                continue;
            }
        }
        if cut {
            if (line.starts_with('+') && !line.starts_with("+++"))
                || (line.starts_with('-') && !line.starts_with("---"))
            {
                rest_changed += 1;
            }
            continue;
        }
        out.push_str(line);
        lines += 1;
    }
    if cut {
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("[truncated: {rest_changed} more changed lines]\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modified_text_gives_a_unified_diff() {
        let r = render(
            EventKind::Modified,
            "a.php",
            Side::Bytes(b"1\n2\n3\n"),
            Side::Bytes(b"1\n2\nevil()\n3\n"),
            false,
            &Secrets::default(),
        );
        let d = r.diff.unwrap();
        assert!(d.contains("--- a.php\n+++ a.php\n"), "{d}");
        assert!(d.contains("\n+evil()\n"), "{d}");
    }

    #[test]
    fn added_shows_the_head_and_big_diffs_are_truncated() {
        let big: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        let r =
            render(EventKind::Added, "x.php", Side::Absent, Side::Bytes(big.as_bytes()), false, &Secrets::default());
        let d = r.diff.unwrap();
        assert!(d.starts_with("--- /dev/null\n+++ x.php\n"), "{d}");
        assert!(d.contains("+line 0\n"));
        assert!(d.lines().count() <= MAX_LINES + 1);
        assert!(d.len() <= MAX_BYTES + 100);
        assert!(d.ends_with("more changed lines]\n"), "{}", &d[d.len() - 80..]);
        let one_line = format!("<?php {}\n", "x".repeat(100_000));
        let d = render(
            EventKind::Added,
            "s.php",
            Side::Absent,
            Side::Bytes(one_line.as_bytes()),
            false,
            &Secrets::default(),
        )
        .diff
        .unwrap();
        assert!(d.contains("+<?php xxxx") && d.contains("[line cut: ") && d.len() <= MAX_BYTES + 200, "{}", d.len());
    }

    #[test]
    fn nothing_to_show_is_null_and_labels_are_escaped() {
        let r = render(EventKind::Added, "link", Side::Absent, Side::Absent, false, &Secrets::default());
        assert_eq!(r, Rendered { diff: None, note: None });
        let d = render(EventKind::Added, "a\nb.php", Side::Absent, Side::Bytes(b"x\n"), false, &Secrets::default())
            .diff
            .unwrap();
        assert!(d.starts_with("--- /dev/null\n+++ a\\x0Ab.php\n"), "{d}");
    }

    #[test]
    fn secrets_and_binaries_are_never_shown() {
        let r = render(
            EventKind::Modified,
            "wp-config.php",
            Side::Bytes(b"pw1"),
            Side::Bytes(b"pw2"),
            true,
            &Secrets::default(),
        );
        assert_eq!(r, Rendered { diff: None, note: Some(SECRET.into()) });
        let r =
            render(EventKind::Added, "x.jpg", Side::Absent, Side::Bytes(b"\xff\xd8\0\0"), false, &Secrets::default());
        assert!(r.diff.is_none() && r.note.unwrap().contains("binary"));
    }
}
