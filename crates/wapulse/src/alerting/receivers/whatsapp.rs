//! WhatsApp itself, through a gateway the operator already runs: WAHA's
//! `POST /api/sendText` (`X-Api-Key`) and Evolution API's
//! `POST /message/sendText/{instance}` (`apikey`), to a number or a group.
//!
//! The sending session is watched like any other (the wapulse session of
//! the same id, or `watch_session`): while the evaluator judges it
//! critical, the outbox sends the message through the receiver's
//! `fallback` instead (`alerting::outbox`), or keeps it until the session
//! recovers. WhatsApp has no way to escape its markup, so texts from labels
//! and gateways are shown inside monospace blocks, where it does not apply;
//! mentions need an explicit list, which is never sent.

use serde_json::{Value, json};
use wapulse_core::grouping::{GroupMessage, Status};

use super::{Wording, clip, link, said, session_list};
use crate::alerting::config::AlertingSettings;

/// WhatsApp's own limit is far higher; a page is read on a phone.
const MAX_TEXT: usize = 4096;

/// A WAHA chat id: a number becomes a contact (`<number>@c.us`); an id
/// with a domain (`…@c.us`, `…@g.us`) is kept.
pub fn waha_chat(chat: &str) -> String {
    if chat.contains('@') {
        chat.to_owned()
    } else {
        format!("{chat}@c.us")
    }
}

/// The message's text.
pub fn text(w: &Wording, message: &GroupMessage, settings: &AlertingSettings) -> String {
    let max = settings.max_listed_sessions;
    let status = match message.status {
        Status::Firing => "*FIRING*",
        Status::Resolved => "*RESOLVED*",
    };
    let mut text = format!("{status}\n```{}```\n", w.title.replace("```", "'''"));
    if let Some(own) = &w.text {
        // The operator's own words: their WhatsApp markup is theirs.
        text.push_str(own);
        text.push('\n');
    } else if let Some(a) = said(message).first() {
        text.push_str(&format!("```{}```\n", a.summary.replace("```", "'''")));
        if !a.action.is_empty() {
            text.push_str(&format!(
                "Action: ```{}```\n",
                a.action.replace("```", "'''")
            ));
        }
    }
    for (name, alerts, total) in [
        ("Firing", &message.firing, message.firing_total),
        ("Resolved", &message.resolved, message.resolved_total),
    ] {
        if !alerts.is_empty() && w.text.is_none() {
            let list = clip(&session_list(alerts, total, max), 2000).replace("```", "'''");
            text.push_str(&format!("\n{name}:\n```{list}```\n"));
        }
    }
    if message.repeat {
        text.push_str("_reminder_\n");
    }
    if let Some(url) = link(message, settings) {
        text.push_str(&format!("\n{url}\n"));
    }
    clip(text.trim_end(), MAX_TEXT)
}

/// WAHA's `sendText` body.
pub fn waha_body(session: &str, chat: &str, text: String) -> Value {
    json!({"session": session, "chatId": chat, "text": text})
}

/// Evolution API's `sendText` body.
pub fn evolution_body(number: &str, text: String) -> Value {
    json!({"number": number, "text": text})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_becomes_a_contact_and_a_group_stays_a_group() {
        assert_eq!(waha_chat("5511999990000"), "5511999990000@c.us");
        assert_eq!(waha_chat("1203630@g.us"), "1203630@g.us");
    }
}
