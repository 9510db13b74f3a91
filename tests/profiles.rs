//! Every built-in profile judged against a table of paths and events
//! (`tests/profiles/NAME.tsv`): ignored, or severity, rule, nodiff and
//! quarantine action.

use std::path::Path;

use sitewarden::model::{EventKind, FileType};
use sitewarden::policy::Policy;

fn kind(s: &str) -> FileType {
    match s {
        "file" => FileType::File,
        "symlink" => FileType::Symlink,
        "fifo" => FileType::Fifo,
        other => panic!("unknown type {other}"),
    }
}

fn event(s: &str) -> EventKind {
    EventKind::ALL.into_iter().find(|e| e.as_str() == s).unwrap_or_else(|| panic!("unknown event {s}"))
}

#[test]
fn every_profile_has_a_table_and_passes_it() {
    let none = Path::new("/nonexistent");
    for name in sitewarden::profile::names() {
        let table = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/profiles/{name}.tsv"));
        let text = std::fs::read_to_string(&table).unwrap_or_else(|_| panic!("no table for profile {name}"));
        let profile = sitewarden::profile::load(name, none).unwrap();
        let policy = Policy::compile(&profile.raw.spec()).unwrap();
        let mut failures = Vec::new();
        let mut rows = 0;
        for (n, line) in text.lines().enumerate() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            rows += 1;
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 4, "{name}.tsv:{}: 4 tab-separated columns", n + 1);
            let (path, t, ev) = (cols[0].as_bytes(), kind(cols[1]), event(cols[2]));
            let want: Vec<&str> = cols[3].split_whitespace().collect();
            let got = if !policy.watched(path, t) {
                "ignored".to_string()
            } else {
                let v = policy.classify(path, t, ev);
                let mut s = format!("{} {}", v.severity.as_str(), v.rule);
                if v.nodiff {
                    s.push_str(" nodiff");
                }
                if let Some(q) = v.quarantine {
                    s.push_str(&format!(" quarantine={}", q.as_str()));
                }
                s
            };
            if got != want.join(" ") {
                failures.push(format!(
                    "{name}.tsv:{}: {} {} {}: want {:?}, got {got:?}",
                    n + 1,
                    cols[0],
                    cols[1],
                    cols[2],
                    cols[3]
                ));
            }
        }
        assert!(rows >= 9, "{name}: a real table, please");
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }
}
