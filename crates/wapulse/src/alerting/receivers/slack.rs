//! Slack incoming webhooks: `text` (what phones show) and `blocks`.
//! Limits honoured: a header's text ≤ 150 characters, a section's ≤ 3000,
//! at most 50 blocks (we send at most 6).

use serde_json::{Value, json};
use wapulse_core::grouping::GroupMessage;

use super::{Wording, clip, escape_html, link, said, session_list};
use crate::alerting::config::AlertingSettings;

/// The request body for one group message.
pub fn render(w: &Wording, message: &GroupMessage, settings: &AlertingSettings) -> Value {
    // The header is plain_text (no markup read); everything else mrkdwn.
    let plain_title = w.title.clone();
    let title = escape_html(&plain_title);
    let max = settings.max_listed_sessions;
    let lead = said(message).first();
    let mut text = title.clone();
    if let Some(own) = &w.text {
        text.push('\n');
        text.push_str(&escape_html(own));
    } else if let Some(a) = lead {
        text.push_str(": ");
        text.push_str(&escape_html(&a.summary));
    }
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": clip(&plain_title, 150), "emoji": true}
    })];
    if let Some(own) = &w.text {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": clip(&escape_html(own), 3000)}
        }));
    } else if let Some(a) = lead {
        blocks.push(json!({
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": clip(&format!("*Level*\n{}", a.level), 2000)},
                {"type": "mrkdwn", "text": clip(&format!("*Since*\n{}", a.starts_at), 2000)},
                {"type": "mrkdwn", "text": clip(&format!("*What*\n{}", escape_html(&a.summary)), 2000)},
                {"type": "mrkdwn", "text": clip(&format!("*Action*\n{}", if a.action.is_empty() { "-".to_owned() } else { escape_html(&a.action) }), 2000)},
            ]
        }));
    }
    if !message.firing.is_empty() && w.text.is_none() {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": clip(&format!("*Firing*\n```{}```", escape_html(&session_list(&message.firing, message.firing_total, max))), 3000)}
        }));
    }
    if !message.resolved.is_empty() && w.text.is_none() {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": clip(&format!("*Resolved*\n```{}```", escape_html(&session_list(&message.resolved, message.resolved_total, max))), 3000)}
        }));
    }
    let mut context = format!("wapulse · group {}", escape_html(&message.group_key));
    if message.repeat {
        context.push_str(" · reminder");
    }
    if let Some(url) = link(message, settings) {
        context.push_str(&format!(" · <{url}|open in wapulse>"));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": clip(&context, 3000)}]
    }));
    json!({"text": clip(&text, 3000), "blocks": blocks})
}
