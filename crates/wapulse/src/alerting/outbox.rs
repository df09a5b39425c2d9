//! Delivery: one task per receiver sends what the outbox holds for it.
//!
//! A notification is in the store before it is sent (the evaluator writes
//! it with the state change that caused it). A task takes its receiver's
//! due rows oldest first, at most `rate_per_second`, sends each with a
//! timeout, and records the outcome: delivered; retry later (network
//! errors, timeouts, 408, 429, 5xx: exponential backoff with jitter, or the
//! receiver's `Retry-After`); or given up (any other 4xx: the request
//! itself is wrong, and repeating it cannot help). After a crash, rows
//! still pending are sent by the next start: at least once, with stable
//! ids (`webhook-id`, PagerDuty's `dedup_key`) so a repeat is harmless.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};
use wapulse_core::Timestamp;
use wapulse_core::grouping::{GroupMessage, NotifiedAlert};

use super::config::{AlertingSettings, ReceiverSpec};
use super::receivers::{self, Outcome};
use super::store::{AlertStore, OutboxRow};
use super::{AlertMetrics, ReceiverBoard};
use crate::clock;

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
    },
}

impl Payload {
    /// Its JSON, as stored.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("payloads serialize")
    }
}

/// What every delivery task shares.
pub struct Delivery {
    /// The alerting tables.
    pub store: Arc<Mutex<AlertStore>>,
    /// Rung when the evaluator wrote new rows.
    pub wake: Arc<Notify>,
    /// The HTTP client (timeouts are per request).
    pub client: reqwest::Client,
    /// Receiver health, for `/api/health`.
    pub board: Arc<ReceiverBoard>,
    /// Our metrics.
    pub metrics: AlertMetrics,
    /// The settings (links in messages).
    pub settings: Arc<AlertingSettings>,
    /// Turns true at shutdown.
    pub stop: watch::Receiver<bool>,
}

async fn blocking<T: Send + 'static>(
    store: &Arc<Mutex<AlertStore>>,
    f: impl FnOnce(&mut AlertStore) -> T + Send + 'static,
) -> T {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&mut store.lock().unwrap_or_else(|p| p.into_inner())))
        .await
        .expect("store calls do not panic")
}

/// How long to wait before attempt `attempts + 1`: 1 s doubling up to
/// 5 min, times a jitter in [0.5, 1.5) so that many failures do not come
/// back in step; a `Retry-After` from the receiver wins (up to an hour).
pub fn backoff(attempts: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(after) = retry_after {
        return after.min(Duration::from_secs(3600));
    }
    let base = Duration::from_secs(1)
        .saturating_mul(1u32 << attempts.min(9))
        .min(Duration::from_secs(300));
    base.mul_f64(0.5 + fastrand::f64())
}

/// Sends `spec`'s notifications until shutdown.
pub async fn deliver(spec: ReceiverSpec, d: Arc<Delivery>) {
    let mut stop = d.stop.clone();
    let gap = Duration::from_secs_f64(1.0 / spec.rate_per_second);
    let mut next_send = tokio::time::Instant::now();
    loop {
        if *stop.borrow() {
            return;
        }
        let notified = d.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let name = spec.name.clone();
        let now = clock::now();
        let rows = blocking(&d.store, move |s| s.due(&name, now, 32)).await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(receiver = %spec.name, error = %e, "cannot read the outbox");
                Vec::new()
            }
        };
        if rows.is_empty() {
            let name = spec.name.clone();
            let next = blocking(&d.store, move |s| s.next_due(&name))
                .await
                .ok()
                .flatten();
            let wait = next.map_or(Duration::from_secs(1), |t| {
                Duration::from_millis(t.since(clock::now()).as_millis())
            });
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep(wait.min(Duration::from_secs(1))) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        for row in rows {
            if *stop.borrow() {
                return;
            }
            tokio::time::sleep_until(next_send).await;
            next_send = tokio::time::Instant::now() + gap;
            if !send_one(&spec, &d, row).await {
                // In order: what follows waits for this one's retry.
                break;
            }
        }
    }
}

/// Sends one row and records the outcome; false when it must be retried.
async fn send_one(spec: &ReceiverSpec, d: &Delivery, row: OutboxRow) -> bool {
    let outcome = match serde_json::from_str::<Payload>(&row.body) {
        Ok(payload) => receivers::send(spec, &d.client, &row, &payload, &d.settings).await,
        Err(e) => Outcome::Permanent(format!("unreadable outbox row: {e}")),
    };
    let now = clock::now();
    let kind = spec.kind.name();
    let (label, health) = match &outcome {
        Outcome::Delivered => ("delivered", None),
        Outcome::Retry { reason, .. } => ("retry", Some((false, reason.clone()))),
        Outcome::Permanent(reason) => ("failed", Some((true, reason.clone()))),
    };
    d.metrics
        .notifications
        .with_label_values(&[spec.name.as_str(), kind, label])
        .inc();
    match &health {
        None => d.board.delivered(&spec.name, now),
        Some((permanent, reason)) => {
            tracing::warn!(receiver = %spec.name, kind, attempt = row.attempts + 1, permanent, reason = %reason, "notification not delivered");
            d.board.failed(&spec.name, reason, *permanent);
        }
    }
    let id = row.id;
    let attempts = row.attempts;
    let settled = !matches!(outcome, Outcome::Retry { .. });
    let receiver = spec.name.clone();
    let result = blocking(&d.store, move |s| -> Result<(), crate::store::StoreError> {
        match outcome {
            Outcome::Delivered => {
                s.delivered(id, now)?;
                let note = serde_json::json!({"receiver": receiver, "outbox": id, "outcome": "delivered", "at": now.to_rfc3339()});
                s.note(now, "notification", &note.to_string())
            }
            Outcome::Retry { after, reason } => {
                let next: Timestamp = now.plus(wapulse_core::DurationMs::from_millis(
                    backoff(attempts, after).as_millis() as u64,
                ));
                s.retry(id, next, &reason)
            }
            Outcome::Permanent(reason) => {
                s.failed(id, now, &reason)?;
                let note = serde_json::json!({"receiver": receiver, "outbox": id, "outcome": "failed", "reason": reason, "at": now.to_rfc3339()});
                s.note(now, "notification", &note.to_string())
            }
        }
    })
    .await;
    if let Err(e) = result {
        tracing::error!(receiver = %spec.name, error = %e, "cannot record a delivery outcome; the notification may be sent again");
        return false;
    }
    settled
}
