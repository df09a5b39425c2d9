//! Telegram: a bot's `sendMessage` in HTML parse mode. Every text is
//! escaped (`&`, `<`, `>`), so a label cannot open a tag or a link; each
//! part is cut before it is escaped, so the message stays within 4,096
//! characters and a cut never splits a tag or an entity. A 429's
//! `parameters.retry_after` is honoured.

use std::time::Duration;

use serde_json::{Value, json};
use wapulse_core::grouping::GroupMessage;

use super::{Wording, clip, escape_html, link, said, session_list, wait_in_json};
use crate::alerting::config::AlertingSettings;

/// The request body for one group message to `chat_id` (and `thread_id`,
/// a forum topic).
pub fn render(
    w: &Wording,
    message: &GroupMessage,
    chat_id: &Value,
    thread_id: Option<i64>,
    settings: &AlertingSettings,
) -> Value {
    let max = settings.max_listed_sessions;
    // At most 256 + 1,024 + 512 + 2 × 1,000 + ~60 visible characters.
    let mut text = format!("<b>{}</b>", escape_html(&clip(&w.title, 256)));
    if let Some(own) = &w.text {
        text.push('\n');
        text.push_str(&escape_html(&clip(own, 3000)));
    } else if let Some(a) = said(message).first() {
        text.push('\n');
        text.push_str(&escape_html(&clip(&a.summary, 1024)));
        if !a.action.is_empty() {
            text.push_str("\n<i>Action:</i> ");
            text.push_str(&escape_html(&clip(&a.action, 512)));
        }
    }
    for (name, alerts, total) in [
        ("Firing", &message.firing, message.firing_total),
        ("Resolved", &message.resolved, message.resolved_total),
    ] {
        if !alerts.is_empty() && w.text.is_none() {
            let list = clip(&session_list(alerts, total, max), 1000);
            text.push_str(&format!(
                "\n<b>{name}</b>\n<pre>{}</pre>",
                escape_html(&list)
            ));
        }
    }
    if message.repeat {
        text.push_str("\n<i>reminder</i>");
    }
    if let Some(url) = link(message, settings) {
        let url = url.replace('"', "%22");
        text.push_str(&format!(
            "\n<a href=\"{}\">open in wapulse</a>",
            escape_html(&url)
        ));
    }
    let mut body = json!({
        "chat_id": chat_id,
        "text": text,
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": true},
    });
    if let Some(thread) = thread_id {
        body["message_thread_id"] = json!(thread);
    }
    body
}

/// How long a 429 says to wait (`parameters.retry_after`, seconds), up to
/// an hour.
pub fn retry_after_in(body: &str) -> Option<Duration> {
    wait_in_json(body, "/parameters/retry_after")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_texts_is_escaped() {
        assert_eq!(
            escape_html("<a href=\"x\">&amp;</a>"),
            "&lt;a href=\"x\"&gt;&amp;amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn a_429_says_how_long_to_wait_in_its_parameters() {
        let body = r#"{"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 3", "parameters": {"retry_after": 3}}"#;
        assert_eq!(retry_after_in(body), Some(Duration::from_secs(3)));
        assert_eq!(retry_after_in(r#"{"ok": false}"#), None);
    }
}
