//! PagerDuty Events API v2: one incident per group, triggered and
//! resolved under a stable `dedup_key`, so a repeat or a resend after a
//! crash updates the same incident instead of opening another.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wapulse_core::Level;
use wapulse_core::grouping::{GroupMessage, Status};

use super::{Wording, link};
use crate::alerting::config::AlertingSettings;

/// The dedup key of a group (≤ 255 characters).
pub fn dedup_key(group_key: &str) -> String {
    let key = format!("wapulse/{group_key}");
    if key.len() <= 255 {
        key
    } else {
        let digest = Sha256::digest(group_key.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("wapulse/sha256:{hex}")
    }
}

fn severity(level: Level) -> &'static str {
    match level {
        Level::Critical => "critical",
        Level::Warning => "warning",
        Level::Ok => "info",
    }
}

fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The event for one group message.
pub fn render(
    w: &Wording,
    message: &GroupMessage,
    routing_key: &str,
    settings: &AlertingSettings,
) -> Value {
    let dedup = dedup_key(&message.group_key);
    if message.status == Status::Resolved {
        return json!({
            "routing_key": routing_key,
            "dedup_key": dedup,
            "event_action": "resolve",
        });
    }
    let lead = message.firing.first();
    let summary = match (lead, &w.text) {
        (_, Some(own)) => format!("{}: {}", w.title, own.lines().next().unwrap_or_default()),
        (Some(a), None) => format!("{}: {}", w.title, a.summary),
        (None, None) => w.title.clone(),
    };
    let max = settings.max_listed_sessions;
    let firing: Vec<Value> = message
        .firing
        .iter()
        .take(max)
        .map(|a| json!({"session": a.session, "code": a.code, "level": a.level, "summary": a.summary, "since": a.starts_at.to_rfc3339()}))
        .collect();
    let mut body = json!({
        "routing_key": routing_key,
        "dedup_key": dedup,
        "event_action": "trigger",
        "client": "wapulse",
        "payload": {
            "summary": clip(&summary, 1024),
            "source": "wapulse",
            "severity": severity(message.level()),
            "timestamp": lead.map(|a| a.starts_at.to_rfc3339()),
            "component": lead.map(|a| a.code.clone()),
            "group": message.group_labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
            "class": lead.map(|a| a.code.clone()),
            "custom_details": {
                "firing": firing,
                "firing_count": message.firing_total,
                "more": message.firing_total.saturating_sub(max.min(message.firing.len())),
                "action": lead.map(|a| a.action.clone()),
                "text": w.text,
            }
        }
    });
    if let Some(url) = link(message, settings) {
        body["links"] = json!([{"href": url, "text": "open in wapulse"}]);
        body["client_url"] = json!(url);
    }
    body
}
