//! Elastic Common Schema: the alert record as Filebeat, Elastic Agent,
//! Vector and Wazuh ingest it without a pipeline of their own
//! (`alerts.log_format: ecs`). The ECS fields carry what they define
//! (`@timestamp`, `event.*`, `file.*`, `host.name`, `rule.name`,
//! `process.*` and `user.*` for the writer); everything else of the record
//! is under `sitewarden.*`, as the record has it.

use serde_json::{json, Map, Value};

use super::AlertRecord;
use crate::model::{EventKind, Severity};

/// The ECS version the documents follow.
pub const ECS_VERSION: &str = "8.11.0";

/// `event.severity`: 1 (info) to 5 (critical).
fn severity_number(s: Severity) -> u8 {
    match s {
        Severity::Info => 1,
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

/// The record as one ECS document.
pub fn document(r: &AlertRecord) -> Value {
    let kind = match r.event {
        EventKind::Added => "creation",
        EventKind::Deleted => "deletion",
        EventKind::Modified | EventKind::Metadata => "change",
    };
    let state = r.after.as_ref().or(r.before.as_ref());
    let mut file = Map::new();
    file.insert("path".into(), json!(r.path));
    if let Some((dir, name)) = r.path.rsplit_once('/') {
        file.insert("directory".into(), json!(if dir.is_empty() { "/" } else { dir }));
        file.insert("name".into(), json!(name));
    }
    if let Some(s) = state {
        file.insert("type".into(), json!(s.kind));
        file.insert("size".into(), json!(s.size));
        file.insert("mode".into(), json!(s.mode));
        file.insert("uid".into(), json!(s.uid.to_string()));
        file.insert("gid".into(), json!(s.gid.to_string()));
        file.insert("mtime".into(), json!(s.mtime));
        if let Some(sha) = &s.sha256 {
            file.insert("hash".into(), json!({ "sha256": sha }));
        }
        if let Some(t) = &s.target {
            file.insert("target_path".into(), json!(t));
        }
    }
    let mut doc = json!({
        "@timestamp": r.time,
        "ecs": { "version": ECS_VERSION },
        "message": format!("{} {} ({}, rule {})", r.event.as_str(), r.path, r.severity.as_str(), r.rule),
        "event": {
            "kind": "alert",
            "category": ["file"],
            "type": [kind],
            "action": r.event.as_str(),
            "severity": severity_number(r.severity),
            "id": r.id,
            "dataset": "sitewarden.alert",
            "module": "sitewarden",
        },
        "log": { "level": r.severity.as_str() },
        "file": file,
        "host": { "name": r.host },
        "rule": { "name": r.rule },
        "sitewarden": sitewarden_fields(r),
    });
    if let Some(a) = &r.actor {
        let mut process = Map::new();
        process.insert("pid".into(), json!(a.pid));
        if let Some(p) = a.ppid {
            process.insert("parent".into(), json!({ "pid": p }));
        }
        if let Some(e) = &a.exe {
            process.insert("executable".into(), json!(e));
        }
        if let Some(c) = &a.comm {
            process.insert("name".into(), json!(c));
        }
        doc["process"] = Value::Object(process);
        let mut user = Map::new();
        if let Some(u) = a.uid {
            user.insert("id".into(), json!(u.to_string()));
        }
        if let Some(n) = &a.user {
            user.insert("name".into(), json!(n));
        }
        doc["user"] = Value::Object(user);
    }
    doc
}

/// What ECS has no field for: the record's own fields, as it names them.
fn sitewarden_fields(r: &AlertRecord) -> Value {
    let mut all = serde_json::to_value(r).unwrap_or_else(|_| json!({}));
    if let Some(m) = all.as_object_mut() {
        for k in ["time", "id", "host", "event", "severity", "rule", "path"] {
            m.remove(k);
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_becomes_an_ecs_alert() {
        let text = r#"{"time":"2026-11-27T18:00:00.123Z","id":"0123456789abcdef0123456789abcdef","host":"web1","site":"blog","event":"added","path":"/var/www/blog/wp-content/uploads/x.php","severity":"critical","rule":"php-in-uploads","detected_by":"realtime","before":null,"after":{"type":"file","sha256":"ab","size":12,"mode":"0644","uid":33,"gid":33,"mtime":"2026-11-27T17:59:59.870Z"},"diff":"+<?php","quarantine":null,"signatures":["php_request_to_exec"]}"#;
        let r: AlertRecord = serde_json::from_str(text).unwrap();
        let d = document(&r);
        assert_eq!(d["@timestamp"], "2026-11-27T18:00:00.123Z");
        assert_eq!(d["event"]["kind"], "alert");
        assert_eq!(d["event"]["category"], json!(["file"]));
        assert_eq!(d["event"]["type"], json!(["creation"]));
        assert_eq!(d["event"]["action"], "added");
        assert_eq!(d["event"]["severity"], 5);
        assert_eq!(d["event"]["id"], "0123456789abcdef0123456789abcdef");
        assert_eq!(d["file"]["path"], "/var/www/blog/wp-content/uploads/x.php");
        assert_eq!(d["file"]["name"], "x.php");
        assert_eq!(d["file"]["hash"]["sha256"], "ab");
        assert_eq!(d["file"]["size"], 12);
        assert_eq!(d["file"]["mode"], "0644");
        assert_eq!(d["file"]["uid"], "33");
        assert_eq!(d["host"]["name"], "web1");
        assert_eq!(d["rule"]["name"], "php-in-uploads");
        assert_eq!(d["sitewarden"]["site"], "blog");
        assert_eq!(d["sitewarden"]["signatures"], json!(["php_request_to_exec"]));
        assert_eq!(d["sitewarden"]["detected_by"], "realtime");
    }
}
