//! `sitewarden quarantine list | show ID | restore ID | purge --older-than AGE`.

use std::io::Write;

use anyhow::{anyhow, bail, Result};

use super::OK;
use crate::alert::diff::{render, Side};
use crate::baseline::Store;
use crate::cli::QuarantineCommand;
use crate::config::{duration, Config};
use crate::content::ContentStore;
use crate::model::{EventKind, FileState};
use crate::quarantine::{rel_of, write, QuarantineStore};
use crate::scan::file;
use crate::util::bytes::printable_text;
use crate::watch::own::OwnWrites;

pub fn run(cfg: &Config, command: QuarantineCommand) -> Result<i32> {
    let store = QuarantineStore::new(&cfg.state_dir);
    let mut out = std::io::stdout().lock();
    match command {
        QuarantineCommand::List { json } => {
            let items = store.list();
            for m in &items {
                if json {
                    writeln!(out, "{}", serde_json::to_string(m)?)?;
                } else {
                    writeln!(
                        out,
                        "{}  {}  {:<8} {:<8} {}  ({})",
                        m.id,
                        m.time,
                        m.site,
                        m.action.as_str(),
                        crate::util::bytes::printable(m.path.as_bytes()),
                        m.result
                    )?;
                }
            }
            if !json && items.is_empty() {
                writeln!(out, "no quarantined changes")?;
            }
        }
        QuarantineCommand::Show { id } => {
            let m =
                store.get(&id).ok_or_else(|| anyhow!("no quarantine item '{id}' in {}", cfg.state_dir.display()))?;
            writeln!(out, "{}", serde_json::to_string_pretty(&m)?)?;
            if let Some(h) = store.hook_result(&id) {
                writeln!(
                    out,
                    "hook: {:?} -> {}",
                    h.argv,
                    if h.ok() { "ok".to_string() } else { format!("FAILED ({h:?})") }
                )?;
            }
            // A site no longer configured: its policy is unknown, show nothing.
            let site = cfg.site(&m.site);
            let nodiff = site.is_none_or(|s| s.policy.nodiff(&rel_of(&m)));
            let secrets = site.map(|s| s.policy.secrets().clone()).unwrap_or_default();
            let content = ContentStore::new(&cfg.state_dir);
            let evidence = store.evidence(&id).filter(|_| m.evidence);
            let before =
                m.baseline_sha256.as_deref().and_then(crate::util::bytes::parse_sha256).and_then(|s| content.get(&s));
            let before_side = match (&m.baseline_sha256, &before) {
                (None, _) => Side::Absent,
                (Some(_), Some(b)) => Side::Bytes(b),
                (Some(_), None) => Side::Unknown,
            };
            let after_side = match &evidence {
                Some(e) => Side::Bytes(e),
                None => Side::Unknown,
            };
            let event = if m.baseline_sha256.is_some() { EventKind::Modified } else { EventKind::Added };
            // Either side may hold a credential (a version kept before it
            // was known for a secret): then neither is shown.
            let r = match &evidence {
                // Undone, and holding a credential: shown with every
                // credential line redacted (the shell behind a decoy).
                Some(e) if m.evidence_secret && !nodiff => {
                    crate::alert::diff::of_evidence(event, &m.path, before_side, e, &id, &secrets)
                }
                _ => {
                    let hidden = [&evidence, &before].iter().any(|s| s.as_deref().is_some_and(|b| secrets.holds(b)));
                    if (nodiff || hidden) && evidence.is_some() {
                        let file = store.item_dir(&id).join(crate::quarantine::EVIDENCE);
                        writeln!(
                            out,
                            "(the evidence holds a secret and is not shown here: {}, root only)",
                            file.display()
                        )?;
                    }
                    render(event, &m.path, before_side, after_side, nodiff || hidden, &secrets)
                }
            };
            if let Some(note) = r.note {
                writeln!(out, "({})", crate::alert::diff::note_text(&note))?;
            }
            if let Some(d) = r.diff {
                out.write_all(printable_text(&d).as_bytes())?;
            }
        }
        QuarantineCommand::Restore { id } => {
            let m =
                store.get(&id).ok_or_else(|| anyhow!("no quarantine item '{id}' in {}", cfg.state_dir.display()))?;
            let site = cfg
                .site(&m.site)
                .ok_or_else(|| anyhow!("item {id} belongs to site '{}', which is not in the config", m.site))?;
            if m.evidence_head {
                bail!(
                    "item {id} kept only the first {} KiB of the {}-byte file as evidence: it cannot be put back",
                    crate::quarantine::EVIDENCE_HEAD / 1024,
                    m.size.unwrap_or(0)
                );
            }
            let Some(bytes) = store.evidence(&id).filter(|_| m.evidence) else {
                bail!("item {id} has no copy of the file to put back (it was a {} change)", m.event);
            };
            let rel = rel_of(&m);
            let mode = m.mode.as_deref().and_then(|t| u32::from_str_radix(t, 8).ok()).unwrap_or(0o644);
            let (uid, gid) = (m.uid.unwrap_or(0), m.gid.unwrap_or(0));
            let sha = file::sha256(&bytes);
            let state = FileState::to_write(bytes.len() as u64, Some(sha), mode, uid, gid);
            if !site.policy.nodiff(&rel) {
                ContentStore::new(&cfg.state_dir).keep(&sha, &bytes, site.policy.secrets());
            }
            // Accepted first: a running daemon then sees the write as no change.
            let mut db = Store::open(&cfg.state_dir)?;
            let w = db.write()?;
            w.accept(&site.name, &rel, Some(&state))?;
            w.commit()?;
            write::replace(&OwnWrites::default(), &site.real_root, &rel, &bytes, uid, gid, mode)
                .map_err(|e| anyhow!("{}: {e}", m.path))?;
            if let Ok(Some(now)) = file::probe(&site.real_root, &rel, None) {
                let w = db.write()?;
                w.accept(&site.name, &rel, Some(&now))?;
                w.commit()?;
            }
            writeln!(out, "restored {} from {id} and accepted it", crate::util::bytes::printable(m.path.as_bytes()))?;
        }
        QuarantineCommand::Purge { older_than } => {
            let age = duration::parse(&older_than).map_err(|e| anyhow!("--older-than: {e}"))?;
            let n = store.purge(age)?;
            writeln!(out, "purged {n} quarantine items older than {}", duration::format(age))?;
        }
    }
    Ok(OK)
}
