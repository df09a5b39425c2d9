//! What an outbox row asks a receiver to send: the vocabulary the
//! evaluator writes, the outbox stores and the receivers render.

use serde::{Deserialize, Serialize};
use wapulse_core::grouping::{GroupMessage, NotifiedAlert};

/// What an outbox row asks a receiver to send.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "payload", rename_all = "snake_case")]
pub enum Payload {
    /// One group's message (Slack, PagerDuty, webhook, log).
    Group {
        /// The message.
        message: GroupMessage,
    },
    /// Alerts for Alertmanager, which groups them itself.
    Alerts {
        /// The alerts.
        alerts: Vec<NotifiedAlert>,
        /// Which of the receiver's Alertmanagers (its `url` list): one row
        /// per Alertmanager, so one that is down holds back only its own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<usize>,
    },
}

impl Payload {
    /// Its JSON, as stored.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("payloads serialize")
    }

    /// A stored row's payload; `None` when it does not decode.
    pub fn read(json: &str) -> Option<Self> {
        serde_json::from_str(json).ok()
    }

    /// The group message it carries; `None` for Alertmanager rows, which
    /// carry alerts (Alertmanager groups them itself).
    pub fn into_group_message(self) -> Option<GroupMessage> {
        match self {
            Payload::Group { message } => Some(message),
            Payload::Alerts { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_group_messages_are_asked_of_the_gate() {
        // Alertmanager rows carry alerts, not one group's message: they are
        // never marked, since every replica sends them.
        let am = Payload::Alerts {
            alerts: Vec::new(),
            url: None,
        };
        assert!(
            Payload::read(&am.to_json())
                .unwrap()
                .into_group_message()
                .is_none()
        );
        assert!(Payload::read("not json").is_none());
    }
}
