//! `sitewarden diff PATH`: the change of one path against its baseline.

use std::ffi::OsStr;
use std::io::Write;

use anyhow::Result;

use super::{locate, OK};
use crate::alert::record::{absolute, hex};
use crate::baseline::Store;
use crate::config::Config;
use crate::model::{FileState, FileType};
use crate::scan::{file, show};
use crate::util::time::rfc3339_ms;

pub fn run(cfg: &Config, arg: &OsStr) -> Result<i32> {
    let (site, rel) = locate(cfg, None, arg)?;
    let store = Store::open_existing(&cfg.state_dir)?;
    let before = store.get(&site.name, &rel)?;
    let after = file::probe(&site.real_root, &rel, None)
        .map_err(|e| anyhow::anyhow!("{}: {e}", show(&absolute(&site.root, &rel))))?;
    let shown = show(&absolute(&site.root, &rel));
    let mut out = std::io::stdout().lock();
    let kind = after.as_ref().or(before.as_ref()).map(|s| s.kind).unwrap_or(FileType::File);
    if !site.policy.watched(&rel, kind) && before.is_none() {
        writeln!(out, "{shown}: not watched by the profile of site '{}'", site.name)?;
        return Ok(OK);
    }
    let Some(event) = FileState::compare(before.as_ref(), after.as_ref()) else {
        writeln!(out, "{shown}: no change against the baseline")?;
        return Ok(OK);
    };
    let verdict = site.policy.classify(&rel, kind, event);
    writeln!(out, "--- baseline {shown}")?;
    writeln!(out, "+++ now      {shown}")?;
    writeln!(out, "event: {event}  severity: {}  rule: {}", verdict.severity, verdict.rule)?;
    for (field, b, a) in fields(before.as_ref(), after.as_ref()) {
        if b != a {
            writeln!(out, "{field:<8} {b} -> {a}")?;
        }
    }
    let change = crate::model::Change {
        site: std::sync::Arc::clone(&site.name),
        rel: rel.clone(),
        kind: event,
        before,
        after,
        detected_by: crate::model::DetectedBy::Scan,
        transient: None,
        hot: false,
        actor: None,
        signatures: Vec::new(),
        unscanned: None,
    };
    let content = crate::content::ContentStore::new(&cfg.state_dir);
    let rendered = crate::alert::diff::of_change(
        &change,
        &shown,
        verdict.nodiff,
        site.policy.secrets(),
        &content,
        Some(&site.real_root),
    );
    if let Some(note) = &rendered.note {
        writeln!(out, "({})", crate::alert::diff::note_text(note))?;
    }
    if let Some(d) = &rendered.diff {
        out.write_all(crate::util::bytes::printable_text(d).as_bytes())?;
    }
    Ok(OK)
}

/// How one field of a state is shown.
type Field = (&'static str, &'static dyn Fn(&FileState) -> String);

fn fields(b: Option<&FileState>, a: Option<&FileState>) -> Vec<(&'static str, String, String)> {
    let get = |s: Option<&FileState>, f: &dyn Fn(&FileState) -> String| s.map(f).unwrap_or_else(|| "-".into());
    let rows: [Field; 7] = [
        ("type", &|s| s.kind.as_str().into()),
        ("size", &|s| s.size.to_string()),
        ("sha256", &|s| s.sha256.as_ref().map(hex).unwrap_or_else(|| "-".into())),
        ("target", &|s| s.target.as_deref().map(show).unwrap_or_else(|| "-".into())),
        ("mode", &|s| format!("{:04o}", s.mode)),
        ("owner", &|s| format!("{}:{}", s.uid, s.gid)),
        ("mtime", &|s| rfc3339_ms(s.mtime_ns)),
    ];
    rows.iter().map(|(name, f)| (*name, get(b, f), get(a, f))).collect()
}
