//! Slack incoming webhooks: `text` (what phones show) and `blocks`.
//! Limits honoured: a header's text ≤ 150 characters, a section's ≤ 3000,
//! at most 50 blocks (we send at most 6).

use serde_json::{Value, json};
use wapulse_core::grouping::{GroupMessage, Status};

use super::{session_list, title};
use crate::alerting::config::AlertingSettings;

/// Escapes what Slack's mrkdwn reads as markup (`&`, `<`, `>`): a label
/// value of `<!channel>` must not ping a channel, nor `<url|x>` make a
/// link.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// The request body for one group message.
pub fn render(message: &GroupMessage, settings: &AlertingSettings) -> Value {
    // The header is plain_text (no markup read); everything else mrkdwn.
    let plain_title = title(message);
    let title = escape(&plain_title);
    let max = settings.max_listed_sessions;
    let firing = message.status == Status::Firing;
    let lead = if firing {
        message.firing.first()
    } else {
        message.resolved.first()
    };
    let mut text = title.clone();
    if let Some(a) = lead {
        text.push_str(": ");
        text.push_str(&escape(&a.summary));
    }
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": clip(&plain_title, 150), "emoji": true}
    })];
    if let Some(a) = lead {
        blocks.push(json!({
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": clip(&format!("*Level*\n{}", a.level), 2000)},
                {"type": "mrkdwn", "text": clip(&format!("*Since*\n{}", a.starts_at), 2000)},
                {"type": "mrkdwn", "text": clip(&format!("*What*\n{}", escape(&a.summary)), 2000)},
                {"type": "mrkdwn", "text": clip(&format!("*Action*\n{}", if a.action.is_empty() { "-".to_owned() } else { escape(&a.action) }), 2000)},
            ]
        }));
    }
    if !message.firing.is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": clip(&format!("*Firing*\n```{}```", escape(&session_list(&message.firing, message.firing_total, max))), 3000)}
        }));
    }
    if !message.resolved.is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": clip(&format!("*Resolved*\n```{}```", escape(&session_list(&message.resolved, message.resolved_total, max))), 3000)}
        }));
    }
    let mut context = format!("wapulse · group {}", escape(&message.group_key));
    if message.repeat {
        context.push_str(" · reminder");
    }
    if let Some(url) = &settings.external_url {
        context.push_str(&format!(" · <{url}/alerts|alerts>"));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": clip(&context, 3000)}]
    }));
    json!({"text": clip(&text, 3000), "blocks": blocks})
}
