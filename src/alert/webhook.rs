//! Webhooks: alerts POSTed as JSON, through the outbox like mail. Four
//! shapes: the records themselves (`json`, signed with an HMAC when a
//! secret is set), Slack and Mattermost incoming-webhook messages, and a
//! Microsoft Teams (Workflows) Adaptive Card.
//!
//! File names and contents are attacker-controlled: in chat messages they
//! sit in code spans and blocks, with the characters that could close them
//! or make a link or a mention neutralized. Diffs are shown only where the
//! mail would show them (never for `nodiff` files), and a chat message is
//! kept small. The URL may hold a token, so logs name only its host.

use std::io::Read;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};

use super::courier::{Failure, Route};
use super::AlertRecord;
use crate::model::Severity;
use crate::util::bytes::printable;

/// How long a receiver may take to answer.
const TIMEOUT: Duration = Duration::from_secs(20);
/// Records in one POST at most.
const PER_POST: usize = 1_000;
/// Changes a chat message lists, and shows a diff of.
const CHAT_LISTED: usize = 20;
const CHAT_DIFFS: usize = 3;
/// Lines and characters of one diff in a chat message.
const CHAT_DIFF_LINES: usize = 40;
const CHAT_DIFF_CHARS: usize = 2_000;
/// Characters of a name or a fact in a chat message.
const CHAT_FIELD: usize = 300;
/// The answer read from a receiver at most.
const MAX_ANSWER: u64 = 4_096;

pub use crate::model::WebhookKind as Kind;

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Json => "json",
            Kind::Slack => "slack",
            Kind::Mattermost => "mattermost",
            Kind::Teams => "teams",
        }
    }
}

pub use crate::util::keyfile::read_secret;

/// The `X-Sitewarden-Signature` of `body`: `sha256=` and the hex HMAC-SHA256.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    format!("sha256={}", crate::util::bytes::hex_bytes(&mac.finalize().into_bytes()))
}

/// A configured webhook.
pub struct Webhook {
    url: String,
    kind: Kind,
    key: Option<Vec<u8>>,
    agent: ureq::Agent,
}

impl Webhook {
    /// Builds it; the secret file is read now, so a bad one fails at start.
    pub fn build(s: &crate::config::WebhookSettings) -> Result<Webhook, String> {
        let key = match &s.secret_file {
            Some(p) => Some(read_secret(p).map_err(|e| format!("webhook secret_file: {e}"))?),
            None => None,
        };
        let agent = ureq::AgentBuilder::new().timeout(TIMEOUT).redirects(0).user_agent("sitewarden").build();
        Ok(Webhook { url: s.url.clone(), kind: s.kind, key, agent })
    }
}

pub use crate::util::shown_url as shown;

impl Route for Webhook {
    fn describe(&self) -> String {
        format!("webhook ({}) {}", self.kind.as_str(), shown(&self.url))
    }

    fn thread(&self) -> &'static str {
        "sw-webhook"
    }

    fn batch(&self) -> usize {
        PER_POST
    }

    fn send(&mut self, host: &str, records: &[AlertRecord], overflow: u64) -> Result<String, Failure> {
        let body = payload(self.kind, host, records, overflow).to_string();
        let mut req = self.agent.post(&self.url).set("Content-Type", "application/json");
        if let Some(key) = &self.key {
            req = req.set("X-Sitewarden-Signature", &signature(key, body.as_bytes()));
        }
        match req.send_bytes(body.as_bytes()) {
            Ok(resp) if (200..300).contains(&resp.status()) => Ok(format!("{} {}", resp.status(), answer(resp))),
            // A redirect, a revoked token, a missing hook: the receiver's
            // setup is wrong, not this payload; the alerts wait (at the
            // longest backoff) for the admin to fix it.
            Ok(resp) => Err(Failure::Retry {
                message: format!("answered {} (a redirect is not followed): check the url", resp.status()),
                after: Some(Duration::from_secs(600)),
            }),
            Err(ureq::Error::Status(code, resp)) => {
                let after = resp.header("Retry-After").and_then(|v| v.trim().parse::<u64>().ok());
                let message = format!("answered {code} {}", answer(resp));
                match code {
                    413 => Err(Failure::TooLarge(message)),
                    // The receiver cannot take this payload.
                    400 | 422 => Err(Failure::Refused(message)),
                    401 | 403 | 404 | 410 => Err(Failure::Retry {
                        message: format!("{message}: check the url and the token"),
                        after: Some(Duration::from_secs(600)),
                    }),
                    // Busy or broken for now.
                    _ => Err(Failure::Retry { message, after: after.map(Duration::from_secs) }),
                }
            }
            Err(e) => Err(Failure::Retry { message: transport_error(&e), after: None }),
        }
    }
}

/// The start of a receiver's answer, on one line.
fn answer(resp: ureq::Response) -> String {
    let mut text = String::new();
    let _ = resp.into_reader().take(MAX_ANSWER).read_to_string(&mut text);
    let line: String = text.chars().take(200).map(|c| if c.is_control() { ' ' } else { c }).collect();
    line.trim().to_string()
}

/// A transport error without the URL (which may hold a token).
fn transport_error(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Transport(t) => {
            let mut m = t.kind().to_string();
            if let Some(msg) = t.message() {
                m.push_str(": ");
                m.push_str(msg);
            }
            m
        }
        ureq::Error::Status(code, _) => format!("answered {code}"),
    }
}

/// The body POSTed for `records`.
pub fn payload(kind: Kind, host: &str, records: &[AlertRecord], overflow: u64) -> Value {
    let title = super::email::subject(host, records, overflow);
    match kind {
        Kind::Json => json!({
            "source": "sitewarden",
            "host": host,
            "sent_at": crate::util::time::rfc3339_ms(crate::util::time::now_ns()),
            "count": records.len(),
            "overflow": overflow,
            "records": records,
        }),
        Kind::Slack => json!({ "text": chat_text(Chat::Slack, &title, records, overflow) }),
        Kind::Mattermost => json!({
            "username": "sitewarden",
            "text": chat_text(Chat::Mattermost, &title, records, overflow),
        }),
        Kind::Teams => teams_card(&title, records, overflow),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Chat {
    Slack,
    Mattermost,
}

/// Text shown in a code span: printable, no backtick to close it, and for
/// Slack `&`, `<` and `>` escaped (they make links and mentions).
fn code(chat: Chat, s: &str) -> String {
    let s = short(&printable(s.as_bytes())).replace('`', "ˋ");
    match chat {
        Chat::Slack => slack_escape(&s),
        Chat::Mattermost => s,
    }
}

fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A diff as a code block: at most so many lines and characters, and no
/// line that would close the block.
fn diff_block(chat: Chat, diff: &str) -> String {
    let mut out = String::new();
    let lines: Vec<&str> = diff.lines().collect();
    for l in lines.iter().take(CHAT_DIFF_LINES) {
        if out.len() + l.len() > CHAT_DIFF_CHARS {
            break;
        }
        out.push_str(&crate::util::bytes::printable_text(l).replace("```", "ˋˋˋ"));
        out.push('\n');
    }
    if lines.len() > CHAT_DIFF_LINES || out.len() < diff.len() / 2 {
        out.push_str("… (the full diff is in the mail and the alert log)\n");
    }
    let out = if chat == Chat::Slack { slack_escape(&out) } else { out };
    format!("```\n{out}```")
}

/// One line of facts about a record beyond its path: rule, signatures,
/// verdict, writer, transient.
fn facts(r: &AlertRecord) -> Vec<String> {
    let mut f = vec![format!("rule {}", r.rule), format!("found by {}", r.detected_by.as_str())];
    if !r.signatures.is_empty() {
        f.push(format!("signatures {}", r.signatures.join(", ")));
    }
    f.extend(r.unscanned.as_ref().map(|u| format!("NOT SCANNED: {u}")));
    f.extend(r.verdict.as_ref().map(super::email::verdict_line));
    if let Some(a) = &r.actor {
        f.push(format!("written by {}", a.describe()));
    }
    if let Some(t) = &r.transient {
        f.push(format!("transient, lived {} ms", t.lived_ms));
    }
    if let Some(q) = &r.quarantine {
        f.push(format!("quarantine {}", q.result.as_deref().unwrap_or(q.action.as_str())));
    }
    f
}

fn chat_text(chat: Chat, title: &str, records: &[AlertRecord], overflow: u64) -> String {
    let bold = |s: &str| match chat {
        Chat::Slack => format!("*{s}*"),
        Chat::Mattermost => format!("**{s}**"),
    };
    let title = if chat == Chat::Slack { slack_escape(title) } else { title.to_string() };
    let mut text = bold(&title);
    text.push('\n');
    for (i, r) in records.iter().enumerate().take(CHAT_LISTED) {
        text.push_str(&format!(
            "{} {} `{}` on `{}` — {}\n",
            bold(&r.severity.as_str().to_uppercase()),
            r.event.as_str(),
            code(chat, &r.path),
            code(chat, &r.site),
            code(chat, &facts(r).join("; "))
        ));
        if let Some(note) = &r.diff_note {
            text.push_str(&format!("_{}_\n", code(chat, super::diff::note_text(note)).replace('_', " ")));
        }
        if let (Some(d), true) = (&r.diff, i < CHAT_DIFFS) {
            text.push_str(&diff_block(chat, d));
            text.push('\n');
        }
    }
    if records.len() > CHAT_LISTED {
        text.push_str(&format!("… and {} more changes (see the mail or the alert log)\n", records.len() - CHAT_LISTED));
    }
    if overflow > 0 {
        text.push_str(&format!("{overflow} more alerts did not fit in the queue; they are in the alert log.\n"));
    }
    text
}

/// Text of an Adaptive Card text block: printable, and `[`/`]` kept from
/// making a Markdown link.
fn card_text(s: &str) -> String {
    short(&printable(s.as_bytes())).replace('[', "［").replace(']', "］")
}

/// A field of a chat message: at most [`CHAT_FIELD`] characters, so the
/// message stays within what chat services take.
fn short(s: &str) -> String {
    if s.chars().count() <= CHAT_FIELD {
        return s.to_string();
    }
    let mut out: String = s.chars().take(CHAT_FIELD).collect();
    out.push('…');
    out
}

fn teams_card(title: &str, records: &[AlertRecord], overflow: u64) -> Value {
    let critical = records.iter().any(|r| r.severity >= Severity::High);
    let mut body = vec![json!({
        "type": "TextBlock", "text": card_text(title), "weight": "Bolder", "size": "Medium", "wrap": true,
        "color": if critical { "Attention" } else { "Default" },
    })];
    for (i, r) in records.iter().enumerate().take(CHAT_LISTED) {
        body.push(json!({
            "type": "TextBlock", "wrap": true, "separator": true,
            "text": card_text(&format!("{} {} {}", r.severity.as_str().to_uppercase(), r.event.as_str(), r.path)),
            "weight": "Bolder",
        }));
        let mut facts = vec![json!({"title": "site", "value": card_text(&r.site)})];
        for f in self::facts(r) {
            let (k, v) = f.split_once(' ').unwrap_or(("", &f));
            facts.push(json!({"title": k, "value": card_text(v)}));
        }
        if let Some(note) = &r.diff_note {
            facts.push(json!({"title": "diff", "value": card_text(super::diff::note_text(note))}));
        }
        body.push(json!({"type": "FactSet", "facts": facts}));
        if let (Some(d), true) = (&r.diff, i < CHAT_DIFFS) {
            let shown: String = d.lines().take(CHAT_DIFF_LINES).collect::<Vec<_>>().join("\n");
            let shown: String = shown.chars().take(CHAT_DIFF_CHARS).collect();
            body.push(json!({
                "type": "TextBlock", "wrap": true, "fontType": "Monospace", "size": "Small",
                "text": crate::util::bytes::printable_text(&shown).replace('[', "［").replace(']', "］"),
            }));
        }
    }
    if records.len() > CHAT_LISTED || overflow > 0 {
        body.push(json!({
            "type": "TextBlock", "wrap": true, "isSubtle": true,
            "text": format!("… and {} more changes (see the mail or the alert log)",
                records.len().saturating_sub(CHAT_LISTED) as u64 + overflow),
        }));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "msteams": {"width": "Full"},
                "body": body,
            },
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(path: &str) -> AlertRecord {
        let text = format!(
            r#"{{"time":"2026-11-27T18:00:00.123Z","host":"web1","site":"blog","event":"added","path":{},"severity":"critical","rule":"php-in-uploads","detected_by":"realtime","before":null,"after":null,"diff":"--- /dev/null\n+++ x\n@@ -0,0 +1 @@\n+<?php ``` <!channel> [x](http://e.vil)","quarantine":null}}"#,
            serde_json::to_string(path).unwrap()
        );
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn the_signature_is_the_hmac_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hostile_names_make_no_link_mention_or_escape_in_chat() {
        let r = rec("/var/www/blog/up/`<!channel>`[a](http://e.vil)\n.php");
        let slack = payload(Kind::Slack, "web1", std::slice::from_ref(&r), 0)["text"].as_str().unwrap().to_string();
        assert!(!slack.contains("<!channel>") && !slack.contains("<http"), "{slack}");
        assert_eq!(slack.matches("```").count(), 2, "one code block: {slack}");
        assert!(!slack.contains("\n.php"), "{slack}");
        let mm = payload(Kind::Mattermost, "web1", std::slice::from_ref(&r), 0)["text"].as_str().unwrap().to_string();
        assert_eq!(mm.matches("```").count(), 2, "{mm}");
        let teams = payload(Kind::Teams, "web1", &[r], 0).to_string();
        assert!(!teams.contains("[a](http"), "{teams}");
    }

    #[test]
    fn a_chat_message_stays_small_whatever_the_names() {
        let long = format!("/var/www/blog/{}", "\u{1}".repeat(4096));
        let many: Vec<AlertRecord> = (0..500).map(|_| rec(&long)).collect();
        for kind in [Kind::Slack, Kind::Mattermost, Kind::Teams] {
            let size = payload(kind, "web1", &many, 7).to_string().len();
            assert!(size < 28_000, "{kind:?}: {size} bytes");
        }
    }

    #[test]
    fn logs_never_show_the_token_of_a_url() {
        assert_eq!(shown("https://hooks.slack.com/services/T0/B0/SECRET"), "https://hooks.slack.com/…");
        assert_eq!(shown("https://user:pw@h.example:8443/x?token=1"), "https://h.example:8443/…");
    }
}
