//! Microsoft Teams through a Workflows webhook: one Adaptive Card 1.4
//! (Teams renders no later version from a webhook), its header in a
//! container styled by level, facts, the sessions, and a button back to the
//! dashboard. The URL's host is not checked: Workflows URLs live on several
//! Microsoft domains. A card stays under Teams' ≈ 28 KB; label text cannot
//! become markup (Markdown escaped) nor a date function (`{{…}}` broken).

use serde_json::{Value, json};
use wapulse_core::Level;
use wapulse_core::grouping::{GroupMessage, Status};

use super::{Wording, clip, escape_markdown, link, said, session_list};
use crate::alerting::config::AlertingSettings;

/// What a card's text shows as written: Markdown escaped, and `{{` split so
/// that `{{DATE(…)}}` is not read as a date function.
pub fn escape(text: &str) -> String {
    escape_markdown(text).replace("{{", "{\u{200B}{")
}

/// The request body for one group message.
pub fn render(w: &Wording, message: &GroupMessage, settings: &AlertingSettings) -> Value {
    let firing = message.status == Status::Firing;
    let lead = said(message).first();
    let style = match (firing, lead.map(|a| a.level)) {
        (false, _) => "good",
        (true, Some(Level::Critical)) => "attention",
        (true, _) => "warning",
    };
    let max = settings.max_listed_sessions;
    let mut items = vec![json!({
        "type": "TextBlock",
        "text": clip(&escape(&w.title), 400),
        "weight": "Bolder",
        "size": "Medium",
        "wrap": true,
    })];
    if let Some(own) = &w.text {
        // A TextBlock breaks lines only at a blank line.
        let text = escape(own).replace('\n', "\n\n");
        items.push(json!({"type": "TextBlock", "text": clip(&text, 8000), "wrap": true}));
    } else if let Some(a) = lead {
        items.push(
            json!({"type": "TextBlock", "text": clip(&escape(&a.summary), 2000), "wrap": true}),
        );
    }
    let mut facts = Vec::new();
    if let (Some(a), None) = (lead, &w.text) {
        facts.push(json!({"title": "Level", "value": a.level.as_str()}));
        facts.push(json!({"title": "Since", "value": a.starts_at.to_rfc3339()}));
        if !a.action.is_empty() {
            facts.push(json!({"title": "Action", "value": clip(&escape(&a.action), 1000)}));
        }
    }
    for (name, alerts, total) in [
        ("Firing", &message.firing, message.firing_total),
        ("Resolved", &message.resolved, message.resolved_total),
    ] {
        if !alerts.is_empty() && w.text.is_none() {
            let list = session_list(alerts, total, max);
            // One line a session: a card's TextBlock needs two newlines
            // (or a list) to break a line.
            let lines: Vec<String> = list.lines().map(|l| format!("- {}", escape(l))).collect();
            facts.push(json!({"title": name, "value": clip(&lines.join("\n"), 8000)}));
        }
    }
    let mut group = format!("group {}", message.group_key);
    if message.repeat {
        group.push_str(" · reminder");
    }
    facts.push(json!({"title": "wapulse", "value": clip(&escape(&group), 500)}));
    items.push(json!({"type": "FactSet", "facts": facts}));
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [{"type": "Container", "style": style, "bleed": true, "items": items}],
        "msteams": {"width": "Full"},
    });
    if let Some(url) = link(message, settings) {
        card["actions"] =
            json!([{"type": "Action.OpenUrl", "title": "Open in wapulse", "url": url}]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}
