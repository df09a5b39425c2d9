//! Google Chat incoming webhooks: one `cardsV2` card a message, its header
//! the title line, a line coloured by level, what and the action, the
//! sessions, and a button back to the dashboard. Card text reads a little
//! HTML, so every text from a label or a gateway is escaped (`&`, `<`,
//! `>`): a label cannot open a tag, a link or a mention (`<users/all>`).
//! The plain `text` (what notifications show) holds only the status, the
//! count and the codes. A message stays far under Chat's 32,000 bytes.
//! The webhook URL carries its key and token: it is a secret.

use serde_json::{Value, json};
use wapulse_core::Level;
use wapulse_core::grouping::{GroupMessage, Status};

use super::{Wording, clip, escape_html, headline, link, said, session_list};
use crate::alerting::config::AlertingSettings;

/// Red, orange, green.
const CRITICAL: &str = "#E01E5A";
const WARNING: &str = "#ECB22E";
const RESOLVED: &str = "#2EB67D";

/// The request body for one group message.
pub fn render(w: &Wording, message: &GroupMessage, settings: &AlertingSettings) -> Value {
    let firing = message.status == Status::Firing;
    let alerts = said(message);
    let lead = alerts.first();
    let (colour, state) = match (firing, lead.map(|a| a.level)) {
        (false, _) => (RESOLVED, "resolved"),
        (true, Some(Level::Critical)) => (CRITICAL, "critical"),
        (true, _) => (WARNING, "warning"),
    };
    let max = settings.max_listed_sessions;
    let mut head = format!("<font color=\"{colour}\"><b>{state}</b></font>");
    if let Some(a) = lead {
        head.push_str(&format!(" · since {}", a.starts_at.to_rfc3339()));
    }
    let mut widgets = vec![json!({"textParagraph": {"text": head}})];
    if let Some(own) = &w.text {
        let text = escape_html(&clip(own, 16_000)).replace('\n', "<br>");
        widgets.push(json!({"textParagraph": {"text": text}}));
    } else if let Some(a) = lead {
        widgets.push(json!({"textParagraph": {"text": escape_html(&clip(&a.summary, 2000))}}));
        if !a.action.is_empty() {
            widgets.push(json!({"decoratedText": {
                "topLabel": "Action",
                "text": escape_html(&clip(&a.action, 1000)),
                "wrapText": true,
            }}));
        }
    }
    let mut sections = vec![json!({"widgets": widgets})];
    for (name, listed, total) in [
        ("Firing", &message.firing, message.firing_total),
        ("Resolved", &message.resolved, message.resolved_total),
    ] {
        if !listed.is_empty() && w.text.is_none() {
            let list = clip(&session_list(listed, total, max), 8000);
            let text = escape_html(&list).replace('\n', "<br>");
            sections.push(json!({"header": name, "widgets": [{"textParagraph": {"text": text}}]}));
        }
    }
    if let Some(url) = link(message, settings) {
        sections.push(json!({"widgets": [{"buttonList": {"buttons": [
            {"text": "Open in wapulse", "onClick": {"openLink": {"url": url}}}
        ]}}]}));
    }
    let mut subtitle = format!("wapulse · group {}", message.group_key);
    if message.repeat {
        subtitle.push_str(" · reminder");
    }
    json!({
        // What a phone shows: no label, so no mention.
        "text": headline(message),
        "cardsV2": [{
            "cardId": "wapulse",
            "card": {
                "header": {"title": clip(&w.title, 200), "subtitle": clip(&subtitle, 200)},
                "sections": sections,
            },
        }],
    })
}
