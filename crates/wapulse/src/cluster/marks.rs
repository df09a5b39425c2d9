//! Sent-marks: what the leader delivered, so a new leader neither resends
//! it nor drops what the old one left pending.
//!
//! Every replica runs the evaluator and writes the same notifications into
//! its own outbox, each stamped with its own clock. Only the leader sends a
//! direct receiver's rows; after a row is settled (delivered, or refused
//! for good) it records a mark in the KV bucket `<stream>_sent` under a
//! digest of the receiver and the message's [`content_key`] (what it says,
//! not when), holding the creation times of the last rows sent with that
//! content. Another replica's row is covered by a mark when one of those
//! times is within `window` of its own creation time: the window is the
//! smallest `group_interval`, since the same content comes again only two
//! group intervals later or a repeat interval later. A follower settles a
//! covered row without sending it; whatever is not covered is sent by
//! whoever leads.
//!
//! [`content_key`]: wapulse_core::grouping::GroupMessage::content_key

use async_nats::jetstream::kv;
use axum::body::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wapulse_core::{DurationMs, Timestamp};

use crate::alerting::outbox::Payload;

/// Creation times remembered per content.
const KEPT: usize = 8;

/// A mark as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// Creation times (ms) of the rows sent with this content, oldest
    /// first.
    pub created: Vec<i64>,
    /// The replica that sent the last one.
    pub by: String,
}

impl Mark {
    /// Whether a row created at `created` is one of those sent.
    pub fn covers(&self, created: Timestamp, window: DurationMs) -> bool {
        let window = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        self.created
            .iter()
            .any(|t| (t - created.as_millis()).abs() < window)
    }

    fn with(mut self, created: Timestamp, by: &str) -> Self {
        self.created.push(created.as_millis());
        if self.created.len() > KEPT {
            self.created.remove(0);
        }
        self.by = by.to_owned();
        self
    }
}

/// The mark key of an outbox row for `receiver` (its body, as stored), or
/// `None` when the row is not one group's message.
pub fn key(receiver: &str, body: &str) -> Option<String> {
    let Ok(Payload::Group { message }) = serde_json::from_str::<Payload>(body) else {
        return None;
    };
    let mut hash = Sha256::new();
    hash.update(receiver.as_bytes());
    hash.update([0]);
    hash.update(message.content_key().as_bytes());
    Some(super::hex(&hash.finalize()[..20]))
}

/// The mark under `key`, if any.
pub async fn lookup(kv: &kv::Store, key: &str) -> Result<Option<Mark>, String> {
    match kv.get(key).await {
        Ok(Some(bytes)) => Ok(Some(serde_json::from_slice(&bytes).unwrap_or_default())),
        Ok(None) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Adds a row created at `created`, sent by `by`, to the mark under `key`.
pub async fn record(kv: &kv::Store, key: &str, created: Timestamp, by: &str) -> Result<(), String> {
    let mark = lookup(kv, key).await?.unwrap_or_default().with(created, by);
    let body = serde_json::to_vec(&mark).expect("marks serialize");
    kv.put(key, Bytes::from(body))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wapulse_core::Level;
    use wapulse_core::grouping::{GroupMessage, NotifiedAlert, Status};

    fn alert(session: &str, at: i64) -> NotifiedAlert {
        serde_json::from_value(serde_json::json!({
            "session": session, "code": "LOGGED_OUT", "level": "critical", "status": "firing",
            "startsAt": Timestamp::from_millis(at).to_rfc3339(), "summary": "s", "action": "a"
        }))
        .unwrap()
    }

    fn body(alerts: Vec<NotifiedAlert>, status: Status) -> String {
        let n = alerts.len();
        Payload::Group {
            message: GroupMessage {
                group_key: "slack/code=LOGGED_OUT".into(),
                group_labels: Default::default(),
                status,
                firing: alerts,
                resolved: Vec::new(),
                firing_total: n,
                resolved_total: 0,
                repeat: false,
            },
        }
        .to_json()
    }

    #[test]
    fn replicas_messages_with_the_same_content_share_a_key_whatever_their_times() {
        let a = body(vec![alert("s1", 1_000), alert("s2", 1_000)], Status::Firing);
        // Another replica judged a few milliseconds later, in another order.
        let b = body(vec![alert("s2", 1_007), alert("s1", 1_004)], Status::Firing);
        assert_eq!(key("slack", &a), key("slack", &b));
        assert!(key("slack", &a).is_some());
        assert_ne!(key("slack", &a), key("pager", &a));
        let c = body(vec![alert("s1", 1_000)], Status::Firing);
        assert_ne!(key("slack", &a), key("slack", &c));
        assert_eq!(
            Level::Critical,
            serde_json::from_str("\"critical\"").unwrap()
        );
        // Alertmanager rows are not marked.
        let am = Payload::Alerts {
            alerts: vec![alert("s1", 1)],
            url: None,
        };
        assert_eq!(key("am", &am.to_json()), None);
    }

    #[test]
    fn a_mark_covers_rows_created_within_the_window_only() {
        let window = DurationMs::from_secs(30);
        let mark = Mark::default().with(Timestamp::from_millis(100_000), "r1");
        assert!(mark.covers(Timestamp::from_millis(100_000), window));
        assert!(mark.covers(Timestamp::from_millis(129_999), window));
        assert!(mark.covers(Timestamp::from_millis(70_001), window));
        assert!(!mark.covers(Timestamp::from_millis(130_000), window));
        // Keeps the last eight sends.
        let mut mark = mark;
        for i in 1..=8 {
            mark = mark.with(Timestamp::from_millis(100_000 + i * 100_000), "r2");
        }
        assert_eq!(mark.created.len(), KEPT);
        assert!(!mark.covers(Timestamp::from_millis(100_000), window));
        assert!(mark.covers(Timestamp::from_millis(900_000), window));
        assert_eq!(mark.by, "r2");
    }
}
