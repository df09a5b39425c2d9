//! Discord webhooks: one embed per message, coloured by level.
//! Limits honoured: title ≤ 256 characters, description ≤ 4,096, a
//! field's name ≤ 256 and value ≤ 1,024, at most 25 fields, 6,000
//! characters across the embed. Nothing a label says can ping anyone
//! (`allowed_mentions` is empty) or become markup (Markdown escaped).
//! A 429 carries `retry_after` (seconds) in its JSON body: honoured.

use std::time::Duration;

use serde_json::{Value, json};
use wapulse_core::Level;
use wapulse_core::grouping::{GroupMessage, Status};

use super::{Wording, clip, escape_markdown, link, said, session_list, wait_in_json};
use crate::alerting::config::AlertingSettings;

/// Red, orange, green.
const CRITICAL: u32 = 0xE0_1E_5A;
const WARNING: u32 = 0xEC_B2_2E;
const RESOLVED: u32 = 0x2E_B6_7D;

/// The request body for one group message.
pub fn render(w: &Wording, message: &GroupMessage, settings: &AlertingSettings) -> Value {
    let firing = message.status == Status::Firing;
    let lead = said(message).first();
    let color = match (firing, lead.map(|a| a.level)) {
        (false, _) => RESOLVED,
        (true, Some(Level::Critical)) => CRITICAL,
        (true, _) => WARNING,
    };
    let max = settings.max_listed_sessions;
    let mut description = String::new();
    if let Some(own) = &w.text {
        description.push_str(&escape_markdown(own));
    } else if let Some(a) = lead {
        description.push_str(&escape_markdown(&a.summary));
        if !a.action.is_empty() {
            description.push_str("\n**Action:** ");
            description.push_str(&escape_markdown(&a.action));
        }
    }
    let mut fields = Vec::new();
    if !message.firing.is_empty() && w.text.is_none() {
        let list = session_list(&message.firing, message.firing_total, max);
        fields
            .push(json!({"name": "Firing", "value": clip(&escape_markdown(&list), 1024), "inline": false}));
    }
    if !message.resolved.is_empty() && w.text.is_none() {
        let list = session_list(&message.resolved, message.resolved_total, max);
        fields.push(
            json!({"name": "Resolved", "value": clip(&escape_markdown(&list), 1024), "inline": false}),
        );
    }
    if let Some(a) = lead {
        fields.push(json!({"name": "Level", "value": a.level.as_str(), "inline": true}));
        fields.push(json!({"name": "Since", "value": a.starts_at.to_rfc3339(), "inline": true}));
    }
    let mut footer = format!("wapulse · group {}", message.group_key);
    if message.repeat {
        footer.push_str(" · reminder");
    }
    let mut embed = json!({
        "title": clip(&w.title, 256),
        "description": clip(&description, 2048),
        "color": color,
        "fields": fields,
        "footer": {"text": clip(&footer, 512)},
    });
    if let Some(url) = link(message, settings) {
        embed["url"] = json!(url);
    }
    json!({
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    })
}

/// How long a 429's JSON body says to wait (`retry_after`, seconds, a
/// fraction allowed; it wins over the header), up to an hour.
pub fn retry_after_in(body: &str) -> Option<Duration> {
    wait_in_json(body, "/retry_after")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_labels_shows_as_written() {
        assert_eq!(
            escape_markdown("**x** [a](http://b) @everyone"),
            "\\*\\*x\\*\\* \\[a\\]\\(http\\://b\\) \\@everyone"
        );
    }

    #[test]
    fn a_429_says_how_long_to_wait_in_its_body() {
        let body =
            r#"{"message": "You are being rate limited.", "retry_after": 2.5, "global": false}"#;
        assert_eq!(retry_after_in(body), Some(Duration::from_millis(2500)));
        assert_eq!(retry_after_in("not json"), None);
        assert_eq!(retry_after_in(r#"{"retry_after": -1}"#), None);
        assert_eq!(
            retry_after_in(r#"{"retry_after": 1e9}"#),
            Some(Duration::from_secs(3600))
        );
    }
}
