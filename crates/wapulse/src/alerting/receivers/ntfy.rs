//! ntfy (self-hosted or public): a message published as JSON to the
//! server's root (`{topic, title, message, priority, tags, click}`), so
//! that titles in any language need no header encoding. Priority follows
//! the level (critical 5, warning 4, resolved 3); the message stays within
//! ntfy's 4,096 bytes (longer would become an attachment). ntfy renders no
//! markup unless asked, so texts go as written.

use serde_json::{Value, json};
use wapulse_core::Level;
use wapulse_core::grouping::{GroupMessage, Status};

use super::{Wording, link, said, session_list};
use crate::alerting::config::AlertingSettings;

/// ntfy's limit on a message body, in bytes.
const MAX_MESSAGE_BYTES: usize = 4096;

/// The server to publish to and the topic, from `https://host/<topic>`
/// (a path before the topic is kept: a server under a prefix); `None`
/// when the URL names no valid topic (1–64 of `A-Za-z0-9_-`).
pub fn split_topic(url: &str) -> Option<(String, String)> {
    let mut parsed = reqwest::Url::parse(url).ok()?;
    let topic = parsed.path_segments()?.rfind(|s| !s.is_empty())?.to_owned();
    let valid = (1..=64).contains(&topic.len())
        && topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        return None;
    }
    parsed.path_segments_mut().ok()?.pop_if_empty().pop();
    if !parsed.path().ends_with('/') {
        let path = format!("{}/", parsed.path());
        parsed.set_path(&path);
    }
    parsed.set_query(None);
    parsed.set_fragment(None);
    Some((parsed.to_string(), topic))
}

/// At most `max` bytes, cut at a character boundary, an ellipsis marking
/// a cut.
fn clip_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The JSON to publish `message` to `topic`.
pub fn render(
    topic: &str,
    w: &Wording,
    message: &GroupMessage,
    settings: &AlertingSettings,
) -> Value {
    let firing = message.status == Status::Firing;
    let lead = said(message).first();
    let (priority, tag) = match (firing, lead.map(|a| a.level)) {
        (false, _) => (3, "white_check_mark"),
        (true, Some(Level::Critical)) => (5, "rotating_light"),
        (true, _) => (4, "warning"),
    };
    let max = settings.max_listed_sessions;
    let mut text = String::new();
    if let Some(own) = &w.text {
        text.push_str(own);
        text.push('\n');
    } else if let Some(a) = lead {
        text.push_str(&a.summary);
        if !a.action.is_empty() {
            text.push_str("\nAction: ");
            text.push_str(&a.action);
        }
        text.push_str("\n\n");
    }
    if !message.firing.is_empty() && w.text.is_none() {
        text.push_str("Firing:\n");
        text.push_str(&session_list(&message.firing, message.firing_total, max));
        text.push('\n');
    }
    if !message.resolved.is_empty() && w.text.is_none() {
        text.push_str("Resolved:\n");
        text.push_str(&session_list(
            &message.resolved,
            message.resolved_total,
            max,
        ));
        text.push('\n');
    }
    if message.repeat {
        text.push_str("(reminder)\n");
    }
    let mut body = json!({
        "topic": topic,
        "title": w.title,
        "message": clip_bytes(text.trim_end(), MAX_MESSAGE_BYTES),
        "priority": priority,
        "tags": [tag, "wapulse"],
    });
    if let Some(url) = link(message, settings) {
        body["click"] = json!(url);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_is_the_server_and_the_topic() {
        let split = |u: &str| split_topic(u);
        assert_eq!(
            split("https://ntfy.sh/wa-alerts"),
            Some(("https://ntfy.sh/".into(), "wa-alerts".into()))
        );
        assert_eq!(
            split("http://127.0.0.1:8080/ntfy/ops_1/?x=1"),
            Some(("http://127.0.0.1:8080/ntfy/".into(), "ops_1".into()))
        );
        assert_eq!(split("https://ntfy.sh/"), None, "no topic");
        assert_eq!(split("https://ntfy.sh/a.b"), None, "not a topic name");
        assert_eq!(split("not a url"), None);
    }

    #[test]
    fn long_messages_are_cut_within_the_limit_at_a_character() {
        let text = "é".repeat(3000);
        let cut = clip_bytes(&text, MAX_MESSAGE_BYTES);
        assert!(cut.len() <= MAX_MESSAGE_BYTES);
        assert!(cut.ends_with('…'));
        assert_eq!(clip_bytes("short", MAX_MESSAGE_BYTES), "short");
    }
}
