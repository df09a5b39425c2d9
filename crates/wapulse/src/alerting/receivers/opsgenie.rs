//! Opsgenie's Alerts API: a group fires as one alert under a stable
//! `alias` (so a repeat, or a resend after a crash, is deduplicated by
//! Opsgenie into the same alert) and is closed by that alias when it
//! resolves. `Authorization: GenieKey <api_key>`; the US endpoint unless
//! `url` names another (`https://api.eu.opsgenie.com`). Opsgenie answers
//! 202 and processes later. Limits honoured: `message` 130 characters,
//! `alias` 512, `description` 15,000, at most 20 tags of 50.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wapulse_core::Level;
use wapulse_core::grouping::{GroupMessage, Status};

use super::{Wording, clip, link, path_segment, said, session_list};
use crate::alerting::config::AlertingSettings;

/// The alias of a group (≤ 512 characters).
pub fn alias(group_key: &str) -> String {
    let alias = format!("wapulse/{group_key}");
    if alias.chars().count() <= 512 {
        alias
    } else {
        let digest = Sha256::digest(group_key.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("wapulse/sha256:{hex}")
    }
}

/// Where a message goes: the alerts list to create, the alias's close to
/// resolve.
pub fn endpoint(base: &str, message: &GroupMessage) -> String {
    match message.status {
        Status::Firing => format!("{base}/v2/alerts"),
        Status::Resolved => format!(
            "{base}/v2/alerts/{}/close?identifierType=alias",
            path_segment(&alias(&message.group_key))
        ),
    }
}

/// The request body for one group message.
pub fn render(w: &Wording, message: &GroupMessage, settings: &AlertingSettings) -> Value {
    if message.status == Status::Resolved {
        return json!({"source": "wapulse", "note": clip(&w.title, 1000)});
    }
    let lead = said(message).first();
    let priority = match message.level() {
        Level::Critical => "P1",
        _ => "P3",
    };
    let max = settings.max_listed_sessions;
    let mut description = String::new();
    if let Some(own) = &w.text {
        description.push_str(own);
    } else {
        if let Some(a) = lead {
            description.push_str(&a.summary);
            if !a.action.is_empty() {
                description.push_str("\nAction: ");
                description.push_str(&a.action);
            }
            description.push_str("\n\n");
        }
        description.push_str("Firing:\n");
        description.push_str(&session_list(&message.firing, message.firing_total, max));
    }
    let mut tags = vec!["wapulse".to_owned()];
    let mut codes: Vec<&str> = message.firing.iter().map(|a| a.code.as_str()).collect();
    codes.sort_unstable();
    codes.dedup();
    tags.extend(codes.iter().map(|c| clip(c, 50)));
    for (k, v) in &message.group_labels {
        if k != "code" && !v.is_empty() {
            tags.push(clip(&format!("{k}:{v}"), 50));
        }
    }
    tags.truncate(20);
    let mut details = json!({
        "group": clip(&message.group_key, 8000),
        "firing": message.firing_total.to_string(),
    });
    if let Some(url) = link(message, settings) {
        details["wapulse"] = json!(url);
    }
    let mut body = json!({
        "message": clip(&w.title, 130),
        "alias": alias(&message.group_key),
        "description": clip(&description, 15_000),
        "priority": priority,
        "tags": tags,
        "details": details,
        "source": "wapulse",
    });
    let sessions: Vec<&str> = message.firing.iter().map(|a| a.session.as_str()).collect();
    if let [one] = sessions.as_slice()
        && !one.is_empty()
    {
        body["entity"] = json!(clip(one, 512));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_stay_stable_and_within_512() {
        assert_eq!(alias("{}:{code=\"X\"}"), "wapulse/{}:{code=\"X\"}");
        let long = "k".repeat(600);
        assert_eq!(alias(&long), alias(&long), "stable");
        assert!(alias(&long).starts_with("wapulse/sha256:") && alias(&long).len() <= 512);
    }
}
