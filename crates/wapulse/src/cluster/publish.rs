//! Writes through the stream: a checked batch (or a silence) is published
//! with a `Nats-Msg-Id`, and answered once JetStream acked it and this
//! replica applied it (read-your-writes), or 503 when the stream cannot be
//! reached.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream;
use axum::body::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use wapulse_core::{BatchOutcome, Event, Silence, Timestamp};

use super::{Cluster, RECENT_OUTCOMES, hex};

/// Why the cluster did not take a write.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The stream cannot be reached or did not ack in time: nothing was
    /// acknowledged; retry (on any replica).
    #[error(
        "the event stream is unreachable ({0}); nothing was acknowledged: retry later, on any \
         replica (events with ids are never applied twice; without ids a batch that reached the \
         stream before the failure can be)"
    )]
    Unavailable(String),
}

/// A batch of events as it travels the stream.
#[derive(Debug, Serialize, Deserialize)]
pub struct EventsMessage {
    /// When the accepting replica received it.
    pub received: Timestamp,
    /// The events, checked.
    pub events: Vec<Event>,
}

/// Messages applied and the requests waiting for them.
#[derive(Default)]
pub(super) struct Applied {
    /// Outcomes of the latest event messages, by sequence.
    recent: BTreeMap<u64, BatchOutcome>,
    /// Requests waiting until a sequence is applied.
    waiters: BTreeMap<u64, Vec<oneshot::Sender<Option<BatchOutcome>>>>,
    /// Every sequence up to this one was reported applied.
    notified_up_to: u64,
}

impl Cluster {
    /// Publishes a checked batch and answers once JetStream acked it and
    /// this replica applied it (or `publish_timeout` passed: it is in the
    /// stream and will be applied; every event counts as accepted).
    pub async fn publish_events(
        &self,
        events: Vec<Event>,
        received: Timestamp,
    ) -> Result<BatchOutcome, ClusterError> {
        let total = events.len();
        let id = message_id(&events, fastrand::u64(..));
        let body = serde_json::to_vec(&EventsMessage { received, events })
            .map_err(|e| ClusterError::Unavailable(format!("cannot encode the batch: {e}")))?;
        let ack = self
            .publish(self.settings.events_subject(), id, body)
            .await
            .inspect_err(|_| {
                self.metrics
                    .publishes
                    .with_label_values(&["unavailable"])
                    .inc();
            })?;
        // A duplicate ack after this request's own earlier attempt (stored,
        // its ack lost) is that attempt's: the batch is new.
        let (ack, retried) = ack;
        let duplicate = ack.duplicate && !retried;
        let label = if duplicate { "duplicate" } else { "acked" };
        self.metrics.publishes.with_label_values(&[label]).inc();
        let outcome = self.wait_applied(ack.sequence).await;
        Ok(if duplicate {
            // The stream already holds this batch: none of it is new.
            BatchOutcome {
                accepted: 0,
                duplicates: total,
            }
        } else {
            outcome.unwrap_or(BatchOutcome {
                accepted: total,
                duplicates: 0,
            })
        })
    }

    /// Publishes a silence (new, changed or expired) and waits until this
    /// replica applied it.
    pub async fn publish_silence(&self, silence: &Silence) -> Result<(), ClusterError> {
        let body = serde_json::to_vec(silence).expect("silences serialize");
        // Each save is its own message (an edit undone within the
        // duplicate window must not be taken for the first).
        let id = format!(
            "silence-{}-{:016x}",
            hex(&Sha256::digest(&body)[..8]),
            fastrand::u64(..)
        );
        let (ack, _) = self
            .publish(self.settings.silences_subject(), id, body)
            .await?;
        self.wait_applied(ack.sequence).await;
        Ok(())
    }

    pub(super) async fn publish(
        &self,
        subject: String,
        id: String,
        body: Vec<u8>,
    ) -> Result<(jetstream::publish::PublishAck, bool), ClusterError> {
        let timeout = Duration::from_millis(self.settings.publish_timeout.as_millis());
        let deadline = tokio::time::Instant::now() + timeout;
        let body = Bytes::from(body);
        // Tried again with the same id until the deadline: the stream keeps
        // one copy whichever attempts landed.
        let mut retried = false;
        loop {
            let attempt = async {
                let js = self.context().map_err(|e| e.to_string())?;
                let publish = jetstream::message::PublishMessage::build()
                    .payload(body.clone())
                    .message_id(&id);
                js.send_publish(subject.clone(), publish)
                    .await
                    .map_err(|e| e.to_string())?
                    .await
                    .map_err(|e| e.to_string())
            };
            let failure = match tokio::time::timeout_at(deadline, attempt).await {
                Ok(Ok(ack)) => return Ok((ack, retried)),
                Ok(Err(e)) => e,
                Err(_) => format!("no ack within {timeout:?}"),
            };
            if tokio::time::Instant::now() + Duration::from_millis(100) >= deadline {
                return Err(ClusterError::Unavailable(failure));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            retried = true;
        }
    }

    /// Waits (at most `publish_timeout`) until `seq` is applied here; its
    /// outcome when it was an event batch still remembered.
    pub(super) async fn wait_applied(&self, seq: u64) -> Option<BatchOutcome> {
        let answer = {
            let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(outcome) = applied.recent.get(&seq) {
                return Some(*outcome);
            }
            if applied.notified_up_to >= seq {
                return None;
            }
            let (tx, rx) = oneshot::channel();
            applied.waiters.entry(seq).or_default().push(tx);
            rx
        };
        let timeout = Duration::from_millis(self.settings.publish_timeout.as_millis());
        tokio::time::timeout(timeout, answer)
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
    }

    /// Called by the consumer once message `seq` is committed.
    pub(super) fn applied(&self, seq: u64, outcome: Option<BatchOutcome>) {
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(outcome) = outcome {
            applied.recent.insert(seq, outcome);
            while applied.recent.len() > RECENT_OUTCOMES {
                applied.recent.pop_first();
            }
        }
        applied.notified_up_to = applied.notified_up_to.max(seq);
        let later = applied.waiters.split_off(&(seq + 1));
        let due = std::mem::replace(&mut applied.waiters, later);
        drop(applied);
        for (s, senders) in due {
            for tx in senders {
                let _ = tx.send(if s == seq { outcome } else { None });
            }
        }
    }
}

/// The `Nats-Msg-Id` of a batch: when every event has an id, a digest of
/// those ids (a client's retry of the batch, on any replica, is the same
/// message and JetStream stores it once); otherwise a digest of the batch
/// and `nonce`, drawn once per request (this request's publish attempts
/// are one message; another request is another, as in embedded mode).
pub fn message_id(events: &[Event], nonce: u64) -> String {
    let mut hash = Sha256::new();
    let all_ids = events.iter().all(|e| e.id.is_some());
    for e in events {
        hash.update(e.session.as_str().as_bytes());
        hash.update([0]);
        match &e.id {
            Some(id) if all_ids => hash.update(id.as_bytes()),
            _ => hash.update(serde_json::to_vec(e).unwrap_or_default()),
        }
        hash.update([0]);
    }
    if !all_ids {
        hash.update(nonce.to_be_bytes());
    }
    let kind = if all_ids { "ids" } else { "batch" };
    format!("{kind}-{}", hex(&hash.finalize()[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: serde_json::Value) -> Event {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_batch_with_ids_has_the_same_message_id_whichever_request_carries_it() {
        let batch = vec![
            event(
                serde_json::json!({"session": "a", "at": "2026-01-01T00:00:00Z", "type": "heartbeat", "id": "1"}),
            ),
            event(
                serde_json::json!({"session": "b", "at": "2026-01-01T00:00:00Z", "type": "heartbeat", "id": "1"}),
            ),
        ];
        let a = message_id(&batch, 1);
        assert_eq!(a, message_id(&batch, 2));
        assert!(a.starts_with("ids-"), "{a}");
        // Other ids, another message.
        let mut other = batch.clone();
        other[1].id = Some("2".into());
        assert_ne!(a, message_id(&other, 1));
        // Without ids: the same request is one message, a new one another.
        let mut plain = batch;
        plain[0].id = None;
        let p = message_id(&plain, 1);
        assert!(p.starts_with("batch-"));
        assert_eq!(p, message_id(&plain, 1));
        assert_ne!(p, message_id(&plain, 2));
    }
}
