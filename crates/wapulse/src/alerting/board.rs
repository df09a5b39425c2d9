//! Receiver health ([`ReceiverBoard`]): written by the delivery tasks, read
//! by `/api/health` and the dashboard without a lock.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Serialize;
use wapulse_core::Timestamp;

use super::config::ReceiverSpec;

/// A receiver's health, for `/api/health`.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverHealth {
    /// The kind.
    pub kind: &'static str,
    /// `ok`; `retrying` while its last attempt failed and is retried;
    /// `failing` when its last message was given up (a permanent error).
    pub status: &'static str,
    /// Delivered since start.
    pub delivered: u64,
    /// Attempts that failed since start.
    pub failures: u64,
    /// Notifications waiting.
    pub pending: u64,
    /// The last error, while failing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A WhatsApp receiver's own sending session, as last checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<SenderHealth>,
    /// When it last took a notification.
    #[serde(
        with = "wapulse_core::time::rfc3339_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_delivered_at: Option<Timestamp>,
}

/// A WhatsApp receiver's sending session, for `/api/health`.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SenderHealth {
    /// The wapulse session watched.
    pub session: String,
    /// Whether it may send: not judged critical.
    pub healthy: bool,
    /// Who gets the messages while it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// Messages sent through the fallback since start.
    pub via_fallback: u64,
}

/// Receiver health by name: written by the delivery tasks, read by
/// `/api/health` without a lock.
#[derive(Default)]
pub struct ReceiverBoard(ArcSwap<BTreeMap<String, ReceiverHealth>>);

impl ReceiverBoard {
    pub(super) fn new(receivers: &[ReceiverSpec]) -> Self {
        let map = receivers
            .iter()
            .map(|r| {
                let health = ReceiverHealth {
                    kind: r.kind.name(),
                    status: "ok",
                    sender: r.kind.sender().map(|s| SenderHealth {
                        session: s.watch.clone(),
                        healthy: true,
                        fallback: s.fallback.clone(),
                        via_fallback: 0,
                    }),
                    ..ReceiverHealth::default()
                };
                (r.name.clone(), health)
            })
            .collect();
        Self(ArcSwap::from_pointee(map))
    }

    pub(super) fn with(&self, name: &str, f: impl Fn(&mut ReceiverHealth)) {
        self.0.rcu(|map| {
            let mut map = BTreeMap::clone(map);
            if let Some(h) = map.get_mut(name) {
                f(h);
            }
            map
        });
    }

    /// Records a delivery.
    pub fn delivered(&self, name: &str, now: Timestamp) {
        self.with(name, |h| {
            h.delivered += 1;
            h.status = "ok";
            h.reason = None;
            h.last_delivered_at = Some(now);
        });
    }

    /// Records a failed attempt: `failing` after a permanent error (a
    /// message was given up), `retrying` after one that is retried.
    pub fn failed(&self, name: &str, reason: &str, permanent: bool) {
        self.with(name, |h| {
            h.failures += 1;
            h.status = if permanent { "failing" } else { "retrying" };
            h.reason = Some(reason.to_owned());
        });
    }

    /// Records how a WhatsApp receiver's sending session was found, and
    /// whether a message went through its fallback.
    pub fn sender(&self, name: &str, healthy: bool, via_fallback: bool) {
        self.with(name, |h| {
            if let Some(s) = &mut h.sender {
                s.healthy = healthy;
                s.via_fallback += u64::from(via_fallback);
            }
        });
    }

    /// Every receiver's health. Lock-free.
    pub fn all(&self) -> Arc<BTreeMap<String, ReceiverHealth>> {
        self.0.load_full()
    }
}
