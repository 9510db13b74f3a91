//! The quarantine: for a change a quarantine rule names, keep the changed
//! version as evidence (`state_dir/quarantine/<id>/`, root-only), then
//! restore the accepted version, remove the file, or leave it, and run the
//! admin's hook.
//!
//! Restoring goes through the race-safe writer in [`write`]; the daemon sees
//! its own restore as a return to the baseline, which is no change, so it
//! neither alerts again nor loops.

pub mod hook;
pub mod write;

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{Read, Write as _};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::alert::record::{absolute, hex};
use crate::content::ContentStore;
use crate::model::{Change, EventKind, FileType, QuarantineAction, Severity};
use crate::scan::file;
use crate::util::bytes::{base64, lossless, needs_base64};
use crate::util::time::{now_ns, rfc3339_ms};
use hook::HookResult;

/// Evidence up to this size is copied whole.
pub const MAX_EVIDENCE: u64 = 1024 * 1024;
/// Of a larger file, only this much of its start is kept (with its hash,
/// size and metadata): a quarantine never copies gigabytes, and never
/// expands a sparse file, on the judge's time.
pub const EVIDENCE_HEAD: u64 = 64 * 1024;

/// Name of the evidence copy inside an item's folder.
pub const EVIDENCE: &str = "file";
const META: &str = "meta.json";
const HOOK: &str = "hook.json";

static SEQ: AtomicU64 = AtomicU64::new(0);

/// What is recorded of one quarantined change.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Meta {
    /// The item's id (also its folder name).
    pub id: String,
    /// The site's name.
    pub site: String,
    /// Absolute path (invalid UTF-8 as `\xHH`).
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The exact absolute path, base64, when `path` is not exact.
    pub path_base64: Option<String>,
    /// The exact path relative to the site root, base64.
    pub rel_base64: String,
    /// When it was quarantined (RFC 3339).
    pub time: String,
    /// When it was quarantined (ns since the epoch).
    pub time_ns: i64,
    /// The kind of change.
    pub event: EventKind,
    /// The quarantine rule that matched.
    pub rule: String,
    /// The action the rule asks for.
    pub action: QuarantineAction,
    /// What was done: `restored`, `removed`, `kept`, or why not.
    pub result: String,
    /// The live path is back at its accepted state (restored or removed).
    #[serde(default)]
    pub undone: bool,
    /// Owner uid of the changed version (the evidence).
    pub uid: Option<u32>,
    /// Group gid of the changed version.
    pub gid: Option<u32>,
    /// Mode of the changed version, in octal.
    pub mode: Option<String>,
    /// Size of the changed version, in bytes.
    pub size: Option<u64>,
    /// SHA-256 of the changed version (hex).
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Symlink target of the changed version.
    pub target: Option<String>,
    /// SHA-256 of the accepted version (hex).
    pub baseline_sha256: Option<String>,
    /// Size of the accepted version, in bytes.
    pub baseline_size: Option<u64>,
    /// True when `file` holds a copy of the changed version.
    pub evidence: bool,
    /// True when `file` holds only the first [`EVIDENCE_HEAD`] bytes of a
    /// larger changed version.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub evidence_head: bool,
    /// True when the evidence holds a credential (or may: a secret's path,
    /// another hard link): kept because the live file was undone, shown
    /// only with its credential lines redacted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub evidence_secret: bool,
    /// The severity of the alert that quarantined it: the quarantine's cap
    /// purges the least severe items first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// How many times this path was quarantined with this same content
    /// (a rewrite loop is one item, not thousands).
    #[serde(default = "one")]
    pub count: u64,
    /// When the repeats happened (the last [`REPEATS_KEPT`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repeats: Vec<String>,
}

fn one() -> u64 {
    1
}

/// Times of repeats kept in an item's metadata.
pub const REPEATS_KEPT: usize = 100;

/// A path of a site: (site name, path relative to its root).
type PathKey = (String, Vec<u8>);

/// The quarantine folder (`state_dir/quarantine`), one subfolder per item.
pub struct QuarantineStore {
    dir: PathBuf,
    /// The last item of each path, with the content it quarantined: the
    /// same content again is a repeat of that item.
    last: Mutex<HashMap<PathKey, (String, Option<String>)>>,
    /// Bytes on disk, once counted.
    bytes: Mutex<Option<u64>>,
}

/// A quarantine item could not be recorded at all.
#[derive(Debug, thiserror::Error)]
#[error("quarantine {path}: {source}")]
pub struct QuarantineError {
    /// The file or folder that could not be written.
    pub path: PathBuf,
    /// The I/O error.
    pub source: std::io::Error,
}

impl QuarantineStore {
    /// The quarantine store under `state_dir`.
    pub fn new(state_dir: &Path) -> QuarantineStore {
        QuarantineStore { dir: state_dir.join("quarantine"), last: Mutex::default(), bytes: Mutex::default() }
    }

    /// Bytes the quarantine takes on disk (counted once, then kept up to date).
    pub fn size(&self) -> u64 {
        if let Some(n) = self.bytes.lock().ok().and_then(|b| *b) {
            return n;
        }
        let n = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| self.item_size(&e.file_name().to_string_lossy()))
            .sum();
        if let Ok(mut b) = self.bytes.lock() {
            *b = Some(n);
        }
        n
    }

    fn item_size(&self, id: &str) -> u64 {
        std::fs::read_dir(self.item_dir(id))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    }

    fn count(&self, delta: i64) {
        if let Ok(mut b) = self.bytes.lock() {
            if let Some(n) = b.as_mut() {
                *n = n.saturating_add_signed(delta);
            }
        }
    }

    /// Keeps the quarantine under `cap` bytes; returns the items purged
    /// (each is to be alerted). The least severe go first, of equal
    /// severity the largest, then the newest; never `made` (the item just
    /// made). Junk that fills the cap is pushed out before a real shell,
    /// which is small, and the first item of an intrusion outlasts the
    /// junk that follows it.
    pub fn enforce_cap(&self, cap: u64, made: Option<&str>) -> Vec<Meta> {
        if self.size() <= cap {
            return Vec::new();
        }
        let target = cap - cap / 10;
        let mut items: Vec<(Meta, u64)> = self
            .list()
            .into_iter()
            .filter(|m| Some(m.id.as_str()) != made)
            .map(|m| {
                let n = self.item_size(&m.id);
                (m, n)
            })
            .collect();
        items.sort_by(|(a, an), (b, bn)| {
            a.severity.cmp(&b.severity).then(bn.cmp(an)).then(b.time_ns.cmp(&a.time_ns)).then(b.id.cmp(&a.id))
        });
        let mut purged = Vec::new();
        for (m, n) in items {
            if self.size() <= target {
                break;
            }
            if std::fs::remove_dir_all(self.item_dir(&m.id)).is_ok() {
                self.count(-(n as i64));
                purged.push(m);
            }
        }
        tracing::warn!(
            "quarantine over its cap of {cap} bytes: purged {} items, the least severe and largest first",
            purged.len()
        );
        purged
    }

    /// The item `change` repeats, if its path was last quarantined with the
    /// same content and that item is still there.
    fn repeat_of(&self, change: &Change, sha: Option<&String>) -> Option<Meta> {
        let key = (change.site.to_string(), change.rel.clone());
        let last = self.last.lock().ok()?;
        let (id, last_sha) = last.get(&key)?;
        if last_sha.as_ref() != sha {
            return None;
        }
        self.get(id)
    }

    fn remember(&self, change: &Change, meta: &Meta) {
        if let Ok(mut last) = self.last.lock() {
            // Bounded: paths quarantined since start; a long-lived daemon
            // forgets them all at once rather than grow.
            if last.len() >= 100_000 {
                last.clear();
            }
            last.insert((change.site.to_string(), change.rel.clone()), (meta.id.clone(), meta.sha256.clone()));
        }
    }

    /// The folder of item `id`.
    pub fn item_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn valid_id(id: &str) -> bool {
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    }

    /// Records what was done to an item's live path after it was made.
    pub fn set_result(&self, meta: &mut Meta, result: String, undone: bool) -> Result<(), QuarantineError> {
        meta.result = result;
        meta.undone = undone;
        rewrite_meta(&self.item_dir(&meta.id), meta)
    }

    /// Every item, oldest first.
    pub fn list(&self) -> Vec<Meta> {
        let mut out: Vec<Meta> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| self.get(&e.file_name().to_string_lossy()))
            .collect();
        out.sort_by(|a, b| a.time_ns.cmp(&b.time_ns).then(a.id.cmp(&b.id)));
        out
    }

    /// Item `id`'s metadata, if it exists and is readable.
    pub fn get(&self, id: &str) -> Option<Meta> {
        if !Self::valid_id(id) {
            return None;
        }
        let bytes = std::fs::read(self.item_dir(id).join(META)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The hook's outcome for an item, once it ran.
    pub fn hook_result(&self, id: &str) -> Option<HookResult> {
        let bytes = std::fs::read(self.item_dir(id).join(HOOK)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The evidence copy of item `id`, if one was kept.
    pub fn evidence(&self, id: &str) -> Option<Vec<u8>> {
        std::fs::read(self.item_dir(id).join(EVIDENCE)).ok()
    }

    /// Removes items older than `age`; returns how many.
    pub fn purge(&self, age: Duration) -> std::io::Result<usize> {
        let limit = now_ns() - age.as_nanos() as i64;
        let mut n = 0;
        for m in self.list() {
            if m.time_ns < limit {
                std::fs::remove_dir_all(self.item_dir(&m.id))?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn new_item(&self) -> Result<(String, PathBuf), QuarantineError> {
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| QuarantineError { path, source }
        };
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir).map_err(err(&self.dir))?;
        let stamp: String = rfc3339_ms(now_ns()).chars().filter(|c| c.is_ascii_digit()).take(14).collect();
        loop {
            let seq = SEQ.fetch_add(1, Ordering::Relaxed);
            let id = format!("{}-{}-{:x}{seq:x}", &stamp[..8], &stamp[8..], std::process::id() % 0xfff);
            let dir = self.item_dir(&id);
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok((id, dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(err(&dir)(e)),
            }
        }
    }
}

/// What a quarantine action needs to know besides the change.
pub struct Action<'a> {
    /// The site root as configured (used in recorded paths).
    pub site_root_shown: &'a Path,
    /// The canonical site root (used for file access).
    pub site_root_real: &'a Path,
    /// The quarantine rule that matched.
    pub rule: &'a str,
    /// What to do with the live path.
    pub action: QuarantineAction,
    /// The file holds secrets: no copy of its content is kept.
    pub nodiff: bool,
    /// Keep a copy of the changed version (once per alert window: a
    /// rewrite loop is undone every time, but not copied every time).
    pub evidence: bool,
    /// What a credential looks like: content holding one is copied only
    /// when the live file is undone (it is then the only copy left).
    pub secrets: &'a crate::policy::secrets::Secrets,
    /// The severity of the change's alert.
    pub severity: Severity,
    /// The quarantine's cap in bytes (`quarantine.max_size`).
    pub max_size: u64,
    /// Where the daemon's own writes are registered before they happen.
    pub own: &'a crate::watch::own::OwnWrites,
}

/// What [`apply`] did.
pub struct Applied {
    /// The item's metadata (its `result` says what was done).
    pub meta: Meta,
    /// Items purged to keep the quarantine under its cap.
    pub evicted: Vec<Meta>,
}

/// Quarantines `change`: evidence first, then the action.
pub fn apply(
    store: &QuarantineStore,
    content: &ContentStore,
    change: &Change,
    act: &Action<'_>,
) -> Result<Applied, QuarantineError> {
    let now = now_ns();
    let after = change.after.as_ref();
    let before = change.before.as_ref();
    let after_sha = after.and_then(|a| a.sha256.as_ref()).map(hex);
    if let Some(mut meta) = store.repeat_of(change, after_sha.as_ref()) {
        // The same content again (a rewrite loop): one item, counted.
        meta.count += 1;
        meta.repeats.push(rfc3339_ms(now));
        if meta.repeats.len() > REPEATS_KEPT {
            meta.repeats.remove(0);
        }
        (meta.result, meta.undone) = act_on(content, change, act);
        rewrite_meta(&store.item_dir(&meta.id), &meta)?;
        return Ok(Applied { meta, evicted: Vec::new() });
    }
    let (id, dir) = store.new_item()?;
    let abs = absolute(act.site_root_shown, &change.rel);
    let mut meta = Meta {
        id: id.clone(),
        site: change.site.to_string(),
        path: lossless(&abs),
        path_base64: needs_base64(&abs).then(|| base64(&abs)),
        rel_base64: base64(&change.rel),
        time: rfc3339_ms(now),
        time_ns: now,
        event: change.kind,
        rule: act.rule.to_string(),
        action: act.action,
        result: String::new(),
        undone: false,
        uid: after.map(|a| a.uid),
        gid: after.map(|a| a.gid),
        mode: after.map(|a| format!("{:04o}", a.mode)),
        size: after.map(|a| a.size),
        sha256: after.and_then(|a| a.sha256.as_ref()).map(hex),
        target: after.and_then(|a| a.target.as_deref()).map(lossless),
        baseline_sha256: before.and_then(|b| b.sha256.as_ref()).map(hex),
        baseline_size: before.map(|b| b.size),
        evidence: false,
        evidence_head: false,
        evidence_secret: false,
        severity: Some(act.severity),
        count: 1,
        repeats: Vec::new(),
    };
    let secret = after.and_then(|a| a.sha256.as_ref()).is_some_and(|sha| content.is_secret(sha));
    // What is undone is destroyed: its copy here (root-only) is then the
    // only one, so it is kept whatever it holds. What is kept live is its
    // own evidence, and a secret is never copied for it.
    let undoing = act.action != QuarantineAction::Keep;
    if after.is_some_and(|a| a.kind == FileType::File) && act.evidence && (undoing || (!act.nodiff && !secret)) {
        match copy_evidence(act.site_root_real, &change.rel, &dir.join(EVIDENCE), act.secrets, undoing) {
            Ok(Some(copied)) => {
                match copied.kind {
                    CopyKind::Whole(sha) => {
                        meta.evidence = true;
                        meta.sha256 = Some(hex(&sha));
                    }
                    CopyKind::Head => meta.evidence_head = true,
                }
                meta.evidence_secret = copied.secret || act.nodiff || secret;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("quarantine {id}: evidence not copied: {e}"),
        }
    }
    (meta.result, meta.undone) = act_on(content, change, act);
    write_meta(&dir, &meta)?;
    store.remember(change, &meta);
    store.count(store.item_size(&id) as i64);
    let evicted = store.enforce_cap(act.max_size, Some(&id));
    Ok(Applied { meta, evicted })
}

/// Rule of the alert for an item the quarantine's cap purged.
pub const EVICTED_RULE: &str = "quarantine-evicted";

/// The alert for item `m`, purged to keep the quarantine under `cap`
/// bytes: evidence is never destroyed in silence.
fn evicted_record(
    host: &str,
    site: &crate::config::Site,
    m: &Meta,
    cap: u64,
    time_ns: i64,
) -> crate::alert::AlertRecord {
    let rel = base64_decode(&m.rel_base64);
    let stand_in =
        Change::new(std::sync::Arc::clone(&site.name), rel, m.event, None, None, crate::model::DetectedBy::Scan);
    let verdict =
        crate::policy::Verdict { severity: Severity::High, rule: EVICTED_RULE.into(), nodiff: true, quarantine: None };
    let mut r = crate::alert::AlertRecord::new(host, &site.root, &stand_in, &verdict, time_ns);
    let was = m.severity.map(|s| format!("{} ", s.as_str())).unwrap_or_default();
    r.diff_note = Some(format!(
        "quarantine over its cap (quarantine.max_size, {cap} bytes): item {} ({was}{}, {} at {}, sha256 {}) and its \
         evidence were deleted to make room; the least severe, largest and newest items go first",
        m.id,
        m.rule,
        m.result,
        m.time,
        m.sha256.as_deref().unwrap_or("unknown")
    ));
    r.quarantine = Some(crate::alert::record::QuarantineRecord {
        id: m.id.clone(),
        action: m.action,
        result: Some("evicted".into()),
    });
    r
}

/// The alerts for items the quarantine's cap purged (an item of a site no
/// longer configured is only logged).
pub fn evicted_records(host: &str, cfg: &crate::config::Config, items: &[Meta]) -> Vec<crate::alert::AlertRecord> {
    let cap = cfg.quarantine.max_size;
    let record = |m: &Meta| match cfg.site(&m.site) {
        Some(site) => Some(evicted_record(host, site, m, cap, now_ns())),
        None => {
            tracing::warn!("quarantine item {} of site {} (no longer configured) purged by the cap", m.id, m.site);
            None
        }
    };
    items.iter().filter_map(record).collect()
}

/// Does the action to the live path; the result text, and whether the path
/// is back at its accepted state.
fn act_on(content: &ContentStore, change: &Change, act: &Action<'_>) -> (String, bool) {
    match act.action {
        QuarantineAction::Keep => ("kept".into(), false),
        QuarantineAction::Remove => match change.kind {
            EventKind::Deleted => ("already gone".into(), false),
            // A file the baseline holds is never destroyed on what its new
            // content matched (an attacker's request text in a security
            // plugin's log): its accepted version is put back, or it is
            // left as it is, alerted.
            _ if change.before.as_ref().is_some_and(|b| b.kind == FileType::File) => {
                match restore_baseline(content, change, act) {
                    (done, true) => (format!("{done}: it was in the baseline, its accepted version is back"), true),
                    (why, false) => (format!("kept: it was in the baseline, and {why}"), false),
                }
            }
            _ => outcome(write::remove(act.own, act.site_root_real, &change.rel), "removed"),
        },
        QuarantineAction::Restore => restore_baseline(content, change, act),
    }
}

/// Replaces an item's metadata whole (a temporary file renamed over it).
/// Not synced: it only counts a repeat, and the judge must keep up with a
/// rewrite loop (the item itself was synced when it was made).
fn rewrite_meta(dir: &Path, meta: &Meta) -> Result<(), QuarantineError> {
    let path = dir.join(META);
    let tmp = dir.join(".meta.json.tmp");
    let err = |source| QuarantineError { path: path.clone(), source };
    let _ = std::fs::remove_file(&tmp);
    write_meta_to(&tmp, meta, false).map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)
}

/// The result text, and whether the live path is back at its accepted state.
fn outcome(r: Result<(), write::WriteError>, done: &str) -> (String, bool) {
    match r {
        Ok(()) => (done.to_string(), true),
        Err(e) => (e.to_string(), false),
    }
}

/// Puts the accepted version back; a file with no accepted version is
/// removed.
fn restore_baseline(content: &ContentStore, change: &Change, act: &Action<'_>) -> (String, bool) {
    let root = act.site_root_real;
    let Some(before) = change.before.as_ref() else {
        return outcome(write::remove(act.own, root, &change.rel), "removed (it had no accepted version)");
    };
    if before.kind != FileType::File {
        return (format!("not restored: the accepted version is a {}", before.kind.as_str()), false);
    }
    let Some(good) = before.sha256.and_then(|sha| content.get(&sha)) else {
        return ("not restored: the accepted version was not kept (binary or too large)".into(), false);
    };
    outcome(write::replace(act.own, root, &change.rel, &good, before.uid, before.gid, before.mode), "restored")
}

fn write_meta(dir: &Path, meta: &Meta) -> Result<(), QuarantineError> {
    let path = dir.join(META);
    write_meta_to(&path, meta, true).map_err(|source| QuarantineError { path, source })
}

/// Writes `meta` to a new file at `path` (0600), synced if `sync`.
fn write_meta_to(path: &Path, meta: &Meta, sync: bool) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(meta).map_err(std::io::Error::other)?;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(&text)?;
    if sync {
        f.sync_all()?;
    }
    Ok(())
}

/// What [`copy_evidence`] kept.
enum CopyKind {
    /// The whole file, with the SHA-256 of what was copied.
    Whole([u8; 32]),
    /// Its first [`EVIDENCE_HEAD`] bytes.
    Head,
}

/// An evidence copy.
struct Copied {
    kind: CopyKind,
    /// It holds a credential, or may (another hard link may be a secret
    /// under another name).
    secret: bool,
}

/// Copies the live regular file to `dest` (0600), never through a symlink:
/// whole up to [`MAX_EVIDENCE`], else its head. Content that holds (or may
/// hold) a credential is copied only when `always` (the live file is about
/// to be undone).
fn copy_evidence(
    root: &Path,
    rel: &[u8],
    dest: &Path,
    secrets: &crate::policy::secrets::Secrets,
    always: bool,
) -> std::io::Result<Option<Copied>> {
    let Some((dir, name)) = file::open_parent(root, rel).map_err(|e| std::io::Error::other(e.to_string()))? else {
        return Ok(None);
    };
    let Ok((src, st)) = file::open_regular_at(dir.as_fd(), &name) else {
        return Ok(None);
    };
    // A file with other hard links may be a secret under another name.
    let linked = st.st_nlink > 1;
    if linked && !always {
        return Ok(None);
    }
    let whole = st.st_size as u64 <= MAX_EVIDENCE;
    // Read first (bounded even if the file grows meanwhile), so content
    // that holds a credential is never written anywhere of ours unless
    // it is the only copy left.
    let mut bytes = Vec::new();
    src.take(if whole { MAX_EVIDENCE + 1 } else { EVIDENCE_HEAD }).read_to_end(&mut bytes)?;
    let secret = linked || secrets.mentions(&bytes);
    if secret && !always {
        return Ok(None);
    }
    let mut out = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(dest)?;
    out.write_all(&bytes)?;
    out.sync_all()?;
    let kind = if whole { CopyKind::Whole(Sha256::digest(&bytes).into()) } else { CopyKind::Head };
    Ok(Some(Copied { kind, secret }))
}

/// The hook's environment for an item. Every value is text a shell script
/// can use as it is: names are escaped as in alert records (invalid bytes
/// as `\xHH`, control and bidi characters escaped, so no newline can forge
/// a line of `env`), and where that changed a name its exact bytes are in a
/// `..._BASE64` variable.
pub fn hook_env(meta: &Meta, store: &QuarantineStore, severity: &str) -> Vec<(String, OsString)> {
    let rel = base64_decode(&meta.rel_base64);
    let abs = match &meta.path_base64 {
        Some(b) => base64_decode(b),
        None => meta.path.as_bytes().to_vec(),
    };
    let text = |s: &str| OsString::from(crate::util::bytes::printable(s.as_bytes()));
    let mut env = vec![
        ("SITEWARDEN_EVENT".to_string(), OsString::from(meta.event.as_str())),
        ("SITEWARDEN_SITE".into(), text(&meta.site)),
        ("SITEWARDEN_PATH".into(), OsString::from(crate::util::bytes::printable(&abs))),
        ("SITEWARDEN_REL_PATH".into(), OsString::from(crate::util::bytes::printable(&rel))),
        ("SITEWARDEN_QUARANTINE_ID".into(), OsString::from(&meta.id)),
        ("SITEWARDEN_QUARANTINE_DIR".into(), store.item_dir(&meta.id).into_os_string()),
        ("SITEWARDEN_ACTION".into(), OsString::from(meta.action.as_str())),
        ("SITEWARDEN_RESULT".into(), text(&meta.result)),
        ("SITEWARDEN_RULE".into(), text(&meta.rule)),
        ("SITEWARDEN_SEVERITY".into(), OsString::from(severity)),
        ("SITEWARDEN_SHA256_BEFORE".into(), OsString::from(meta.baseline_sha256.clone().unwrap_or_default())),
        ("SITEWARDEN_SHA256_AFTER".into(), OsString::from(meta.sha256.clone().unwrap_or_default())),
    ];
    for (name, bytes) in [("SITEWARDEN_PATH_BASE64", &abs), ("SITEWARDEN_REL_PATH_BASE64", &rel)] {
        if crate::util::bytes::printable(bytes).as_bytes() != bytes.as_slice() {
            env.push((name.into(), OsString::from(base64(bytes))));
        }
    }
    if meta.evidence {
        env.push(("SITEWARDEN_QUARANTINE_FILE".into(), store.item_dir(&meta.id).join(EVIDENCE).into_os_string()));
    }
    env
}

/// Where a hook's outcome is written.
pub fn hook_report(store: &QuarantineStore, id: &str) -> PathBuf {
    store.item_dir(id).join(HOOK)
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap_or_default()
}

/// The exact relative path of an item.
pub fn rel_of(meta: &Meta) -> Vec<u8> {
    base64_decode(&meta.rel_base64)
}

/// Per-path limit on quarantine alerts: an attacker rewriting a file in a
/// loop is restored every time, but alerted at most `max` times a window.
pub struct RateLimit {
    window: Duration,
    max: usize,
    seen: HashMap<(String, Vec<u8>), (Vec<i64>, u64)>,
}

impl RateLimit {
    /// At most `max` alerts per path in each `window`.
    pub fn new(max: usize, window: Duration) -> RateLimit {
        RateLimit { window, max, seen: HashMap::new() }
    }

    /// Records one quarantine of `rel` at `now`; `Ok(suppressed_before)`
    /// when it may be alerted (with how many were not), `Err(())` when not.
    #[allow(clippy::result_unit_err)]
    pub fn check(&mut self, site: &str, rel: &[u8], now: i64) -> Result<u64, ()> {
        let window = self.window.as_nanos() as i64;
        // Paths quiet for a whole window are forgotten (their count was
        // alerted or is moot): the map holds only paths active now.
        if self.seen.len() >= 1024 {
            self.seen.retain(|_, (times, _)| times.last().is_some_and(|&t| t > now - window));
        }
        let entry = self.seen.entry((site.to_string(), rel.to_vec())).or_default();
        entry.0.retain(|&t| t > now - window);
        if entry.0.len() >= self.max {
            entry.1 += 1;
            return Err(());
        }
        entry.0.push(now);
        Ok(std::mem::take(&mut entry.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_forgets_paths_quiet_for_a_window() {
        // An attacker quarantining a new name every time must not grow the
        // judge's memory for ever.
        let mut r = RateLimit::new(2, Duration::from_secs(60));
        let s = 1_000_000_000;
        for i in 0..5000u32 {
            let _ = r.check("a", format!("x{i}").as_bytes(), i64::from(i) * s);
        }
        assert!(r.seen.len() <= 1024 + 60, "{} paths remembered", r.seen.len());
    }

    #[test]
    fn the_rate_limit_counts_what_it_holds_back() {
        let mut r = RateLimit::new(2, Duration::from_secs(60));
        let s = 1_000_000_000;
        assert_eq!(r.check("a", b"x", 0), Ok(0));
        assert_eq!(r.check("a", b"x", s), Ok(0));
        assert_eq!(r.check("a", b"x", 2 * s), Err(()));
        assert_eq!(r.check("a", b"x", 3 * s), Err(()));
        assert_eq!(r.check("a", b"y", 3 * s), Ok(0));
        assert_eq!(r.check("a", b"x", 61 * s), Ok(2));
    }
}
