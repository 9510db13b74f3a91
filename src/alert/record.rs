//! The alert record of the interface contract, one JSON object per line.
//!
//! Paths are absolute; a name that is not valid UTF-8 is written with each
//! invalid byte as `\xHH` and the exact bytes are added as `path_base64`, so
//! a consumer can always recover the real name.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::{Change, DetectedBy, EventKind, FileState, QuarantineAction, Severity, Transient};
use crate::policy::Verdict;
pub use crate::util::bytes::hex;
use crate::util::bytes::{base64, lossless, needs_base64};
use crate::util::time::rfc3339_ms;

/// The state of a path as an alert shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRecord {
    /// `type`: `file`, `dir`, `symlink`, `fifo`, `socket` or `device`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Lower-case hex SHA-256 of the content (regular files only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits in octal, e.g. `0644`.
    pub mode: String,
    /// Owner's user id.
    pub uid: u32,
    /// Owner's group id.
    pub gid: u32,
    /// Modification time, RFC 3339 in UTC with milliseconds.
    pub mtime: String,
    /// A symlink's target, each invalid UTF-8 byte as `\xHH`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The target's exact bytes in base64, when they are not valid UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_base64: Option<String>,
    /// Hard links of a regular file, when it has more than one name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<u32>,
}

impl From<&FileState> for StateRecord {
    fn from(s: &FileState) -> StateRecord {
        let target = s.target.as_deref();
        StateRecord {
            kind: s.kind.as_str().to_string(),
            sha256: s.sha256.as_ref().map(hex),
            size: s.size,
            mode: format!("{:04o}", s.mode),
            uid: s.uid,
            gid: s.gid,
            mtime: rfc3339_ms(s.mtime_ns),
            target: target.map(lossless),
            target_base64: target.filter(|t| needs_base64(t)).map(base64),
            links: s.linked().then_some(s.nlink),
        }
    }
}

/// What the quarantine did, as the record shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineRecord {
    /// The quarantine item (`sitewarden quarantine show ID`).
    pub id: String,
    /// The action the matching rule asks for.
    pub action: QuarantineAction,
    /// What was done (`restored`, `removed`, `kept`) or why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

/// One alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// When the alert was raised, RFC 3339 in UTC with milliseconds.
    pub time: String,
    /// A stable identifier: the same alert (repeated after a crash, sent
    /// again from the outbox) has the same `id`, so a receiver can drop
    /// duplicates. 32 hex digits, from everything but `time`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Host name of the server.
    pub host: String,
    /// The site name.
    pub site: String,
    /// What happened.
    pub event: EventKind,
    /// Absolute path, each invalid UTF-8 byte as `\xHH`.
    pub path: String,
    /// The path's exact bytes in base64, when they are not valid UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_base64: Option<String>,
    /// How serious the change is.
    pub severity: Severity,
    /// Id of the rule that set the severity (`default` when none matched).
    pub rule: String,
    /// `realtime` or `scan`.
    pub detected_by: DetectedBy,
    /// The accepted state; null for `added`.
    pub before: Option<StateRecord>,
    /// The observed state; null for `deleted`.
    pub after: Option<StateRecord>,
    /// Unified diff of the content, capped; null for secrets, binary content,
    /// metadata changes and content not kept.
    pub diff: Option<String>,
    /// Why `diff` is null (or partial): secrets, binary, not kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff_note: Option<String>,
    /// What the quarantine did; null when no quarantine rule matched.
    pub quarantine: Option<QuarantineRecord>,
    /// Present when the change was over before it was judged: how long it
    /// lived and how it ended (`deleted` or `restored`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transient: Option<Transient>,
    /// Who wrote it: the process, user, service (realtime on the fanotify
    /// source; absent for scans and inotify).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<crate::model::Actor>,
    /// Against a manifest of the package the file belongs to: `vendor`,
    /// `tampered`, `foreign` (absent when no manifest covers the file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<crate::releases::Verdict>,
    /// Names of the signature rules the new content matches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<String>,
    /// Why the new content could not be scanned by the signature rules
    /// (`signatures` is then no evidence that it is clean).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unscanned: Option<String>,
    /// A package update judged as a whole (the record is its summary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<UpdateRecord>,
}

/// The summary of a package update whose files all match a release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateRecord {
    /// `wordpress`, `plugin:SLUG` or `theme:SLUG`.
    pub package: String,
    /// The version before (null: the package is new).
    pub from: Option<String>,
    /// The version now.
    pub to: String,
    /// `update`, `downgrade` or `new`.
    pub kind: String,
    /// Files the update changed, all matching the release `to`.
    pub files: usize,
    /// Whether they were accepted into the baseline.
    pub accepted: bool,
    /// Their paths relative to the site root (the first 1,000).
    pub paths: Vec<String>,
}

impl AlertRecord {
    /// The record of `change` of a site rooted at `root`, as classified.
    pub fn new(host: &str, root: &Path, change: &Change, verdict: &Verdict<'_>, time_ns: i64) -> AlertRecord {
        let abs = absolute(root, &change.rel);
        AlertRecord {
            time: rfc3339_ms(time_ns),
            id: String::new(),
            host: host.to_string(),
            site: change.site.to_string(),
            event: change.kind,
            path: lossless(&abs),
            path_base64: needs_base64(&abs).then(|| base64(&abs)),
            severity: verdict.severity,
            rule: verdict.rule.to_string(),
            detected_by: change.detected_by,
            before: change.before.as_ref().map(StateRecord::from),
            after: change.after.as_ref().map(StateRecord::from),
            diff: None,
            diff_note: None,
            quarantine: None,
            transient: change.transient,
            actor: change.actor.as_deref().cloned(),
            verdict: None,
            signatures: change.signatures.clone(),
            unscanned: change.unscanned.clone(),
            update: None,
        }
    }

    /// Sets `id` from everything the record says but its `time` (done as
    /// it is delivered, when every field is final).
    pub fn stamp_id(&mut self) {
        let mut unstamped = self.clone();
        unstamped.time.clear();
        unstamped.id.clear();
        let digest = crate::util::sha256(unstamped.to_json().as_bytes());
        self.id = hex(&digest)[..32].to_string();
    }

    /// One JSON line (without the newline).
    pub fn to_json(&self) -> String {
        // Serializing plain strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

pub use crate::model::absolute;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FileType;
    use std::sync::Arc;

    #[test]
    fn record_matches_the_contract_shape() {
        let after = FileState {
            kind: FileType::File,
            size: 123,
            mode: 0o644,
            uid: 33,
            gid: 33,
            mtime_ns: 1_795_802_399_870_000_000,
            ctime_ns: 0,
            dev: 0,
            ino: 0,
            sha256: Some([0xab; 32]),
            target: None,
            nlink: 1,
        };
        let change = Change::new(
            Arc::from("blog"),
            b"wp-content/uploads/\xff.php".to_vec(),
            EventKind::Added,
            None,
            Some(after),
            DetectedBy::Realtime,
        );
        let verdict =
            Verdict { severity: Severity::Critical, rule: "php-in-uploads".into(), nodiff: false, quarantine: None };
        let rec = AlertRecord::new("web1", Path::new("/var/www/blog"), &change, &verdict, 1_795_802_400_123_000_000);
        let v: serde_json::Value = serde_json::from_str(&rec.to_json()).unwrap();
        assert_eq!(v["time"], "2026-11-27T18:00:00.123Z");
        assert_eq!(v["path"], "/var/www/blog/wp-content/uploads/\\xFF.php");
        assert_eq!(v["path_base64"], base64(b"/var/www/blog/wp-content/uploads/\xff.php"));
        assert_eq!(v["after"]["mode"], "0644");
        assert_eq!(v["after"]["mtime"], "2026-11-27T17:59:59.870Z");
        assert_eq!(v["before"], serde_json::Value::Null);
        assert_eq!(v["severity"], "critical");
        assert_eq!(v["detected_by"], "realtime");
        assert!(v["after"].get("target").is_none());
    }

    #[test]
    fn the_id_is_the_same_for_the_same_alert_and_only_for_it() {
        let change =
            Change::new(Arc::from("blog"), b"x.php".to_vec(), EventKind::Added, None, None, DetectedBy::Realtime);
        let verdict = Verdict { severity: Severity::High, rule: "r".into(), nodiff: false, quarantine: None };
        let stamped = |c: &Change, t: i64| {
            let mut r = AlertRecord::new("web1", Path::new("/var/www/blog"), c, &verdict, t);
            r.stamp_id();
            r.id
        };
        let a = stamped(&change, 1);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a, stamped(&change, 2), "a repeat, later: the same id");
        let other = Change { rel: b"y.php".to_vec(), ..change.clone() };
        assert_ne!(a, stamped(&other, 1));
    }
}
