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

use arc_swap::ArcSwap;
use tokio::sync::{Notify, watch};
use wapulse_core::grouping::GroupMessage;
use wapulse_core::{Level, Timestamp};

use super::board::ReceiverBoard;
use super::config::{AlertingSettings, ReceiverKind, ReceiverSpec};
use super::gate::{Gate, Notice, PeerSays};
use super::metrics::AlertMetrics;
use super::payload::Payload;
use super::receivers::{self, Outcome};
use super::snapshot::AlertSnapshot;
use super::store::{AlertStore, OutboxRow, call};
use crate::clock;

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
    /// Who may send direct notifications (cluster mode: the lease and the
    /// sent-marks); none: always this process.
    pub gate: Option<Arc<dyn Gate>>,
    /// What the evaluator published last (a WhatsApp receiver's sending
    /// session is judged there).
    pub judged: Arc<ArcSwap<AlertSnapshot>>,
}

/// What the gate says about a direct receiver's row.
enum Turn {
    /// Send it (no gate, or this replica may send and nobody sent it).
    Send,
    /// A peer settled it: settle it without sending.
    SentByPeer,
    /// Not ours to send now (another replica sends, or the gate cannot
    /// tell yet): try again shortly.
    Wait,
    /// Not ours to send, and stale (see [`PeerSays::Open`]): settle it
    /// unsent, recorded as expired.
    Expired,
}

impl Turn {
    /// The turn of a gated row: what the peers say, and whether this
    /// replica may send now. A row this replica may send never expires:
    /// it is retried until delivered or refused.
    fn of(peer: Result<PeerSays, String>, may_send: bool) -> Self {
        match peer {
            Ok(PeerSays::Settled) => Turn::SentByPeer,
            Err(e) => {
                tracing::debug!(error = %e, "the gate cannot tell whether a peer sent this; waiting");
                Turn::Wait
            }
            Ok(PeerSays::Open { .. }) if may_send => Turn::Send,
            Ok(PeerSays::Open { stale: true }) => Turn::Expired,
            Ok(PeerSays::Open { stale: false }) => Turn::Wait,
        }
    }
}

impl Delivery {
    /// The gate `spec` sends behind, if any (not an Alertmanager, which
    /// deduplicates itself, nor our own log).
    fn gate_of(&self, spec: &ReceiverSpec) -> Option<&dyn Gate> {
        match spec.kind {
            ReceiverKind::Alertmanager { .. } | ReceiverKind::Log => None,
            _ => self.gate.as_deref(),
        }
    }

    async fn turn(&self, spec: &ReceiverSpec, row: &OutboxRow) -> Turn {
        let Some(gate) = self.gate_of(spec) else {
            return Turn::Send;
        };
        let peer = match group_message(row) {
            Some(message) => gate.settled_by_peer(notice(spec, row, &message)).await,
            None => Ok(PeerSays::Open { stale: false }),
        };
        Turn::of(peer, gate.may_send())
    }

    /// Whether this replica may still send `spec`'s rows (re-checked right
    /// before each send: the answer may have changed meanwhile).
    fn may_send(&self, spec: &ReceiverSpec) -> bool {
        self.gate_of(spec).is_none_or(|g| g.may_send())
    }

    /// After this replica settled a row: tell the peers.
    async fn settled(&self, spec: &ReceiverSpec, row: &OutboxRow) {
        if let (Some(gate), Some(message)) = (self.gate_of(spec), group_message(row)) {
            gate.settled(notice(spec, row, &message)).await;
        }
    }
}

/// A row's group message: what a gate is asked about (`None` for an
/// Alertmanager row, which carries alerts).
fn group_message(row: &OutboxRow) -> Option<GroupMessage> {
    Payload::read(&row.body)?.into_group_message()
}

fn notice<'a>(spec: &'a ReceiverSpec, row: &OutboxRow, message: &'a GroupMessage) -> Notice<'a> {
    Notice {
        receiver: &spec.name,
        message,
        created: row.created,
    }
}

/// How long to wait before attempt `attempts + 1`: 1 s doubling up to
/// 5 min, times a jitter in [0.5, 1.5) so that many failures do not come
/// back in step; a `Retry-After` from the receiver wins (up to an hour).
pub fn backoff(attempts: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(after) = retry_after {
        // At least a second: `Retry-After: 0` must not make a hot loop.
        return after.clamp(Duration::from_secs(1), Duration::from_secs(3600));
    }
    let base = Duration::from_secs(1)
        .saturating_mul(1u32 << attempts.min(9))
        .min(Duration::from_secs(300));
    base.mul_f64(0.5 + fastrand::f64())
}

/// What an Alertmanager receiver's task resends every `interval`.
pub struct Resend {
    /// What the evaluator published last.
    pub snapshot: Arc<arc_swap::ArcSwap<AlertSnapshot>>,
    /// How often.
    pub every: Duration,
    /// When wapulse started (the Watchdog's `startsAt`).
    pub started: Timestamp,
    /// Whether wapulse is healthy (no Watchdog, no resend otherwise: a
    /// frozen evaluator must not keep stale alerts alive).
    pub healthy: Arc<dyn Fn() -> bool + Send + Sync>,
}

/// Sends `spec`'s notifications until shutdown: its outbox rows, and for
/// an Alertmanager receiver the periodic resend, in one task so a resend
/// never overtakes a resolve.
pub async fn deliver(spec: ReceiverSpec, d: Arc<Delivery>, resend: Option<Resend>) {
    let mut stop = d.stop.clone();
    let gap = Duration::from_secs_f64(1.0 / spec.rate_per_second);
    let mut next_send = tokio::time::Instant::now();
    let mut next_resend = tokio::time::Instant::now();
    // Sent, but the outcome not yet written (the store refused): never
    // sent again, the write retried.
    let mut unrecorded: Vec<(OutboxRow, Outcome)> = Vec::new();
    loop {
        if *stop.borrow() {
            return;
        }
        let notified = d.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !unrecorded.is_empty() {
            let pending = std::mem::take(&mut unrecorded);
            for (row, outcome) in pending {
                if let Err(outcome) = record(&spec, &d, &row, outcome).await {
                    unrecorded.push((row, outcome));
                }
            }
        }
        if let Some(r) = &resend
            && tokio::time::Instant::now() >= next_resend
        {
            next_resend = tokio::time::Instant::now() + r.every;
            resend_firing(&spec, &d, r).await;
        }
        let name = spec.name.clone();
        let now = clock::now();
        let rows = call(&d.store, move |s| s.due(&name, now, 32)).await;
        let rows: Vec<OutboxRow> = match rows {
            Ok(rows) => rows
                .into_iter()
                .filter(|r| !unrecorded.iter().any(|(u, _)| u.id == r.id))
                .collect(),
            Err(e) => {
                tracing::error!(receiver = %spec.name, error = %e, "cannot read the outbox");
                Vec::new()
            }
        };
        if rows.is_empty() {
            let name = spec.name.clone();
            let next = call(&d.store, move |s| s.next_due(&name))
                .await
                .ok()
                .flatten();
            let mut wait = next.map_or(Duration::from_secs(1), |t| {
                Duration::from_millis(t.since(clock::now()).as_millis())
            });
            if !unrecorded.is_empty() {
                // The store refuses writes: try again in a second, not in
                // a loop (the kept rows are still due in its eyes).
                wait = wait.max(Duration::from_secs(1));
            }
            if resend.is_some() {
                wait = wait.min(next_resend.saturating_duration_since(tokio::time::Instant::now()));
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep(wait.min(Duration::from_secs(1))) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        let mut waiting = false;
        for row in rows {
            if *stop.borrow() {
                return;
            }
            match d.turn(&spec, &row).await {
                Turn::Send => {}
                Turn::SentByPeer => {
                    if let Err(outcome) = record(&spec, &d, &row, Outcome::Delivered).await {
                        unrecorded.push((row, outcome));
                    }
                    continue;
                }
                Turn::Wait => {
                    waiting = true;
                    continue;
                }
                Turn::Expired => {
                    let outcome = Outcome::Expired(
                        "expired unsent: this replica does not send, and no replica settled \
                         anything of its group for a repeat_interval since it was written"
                            .into(),
                    );
                    count(&spec, &d, &row, &outcome);
                    if let Err(outcome) = record(&spec, &d, &row, outcome).await {
                        unrecorded.push((row, outcome));
                    }
                    continue;
                }
            }
            tokio::time::sleep_until(next_send).await;
            next_send = tokio::time::Instant::now() + gap;
            if !d.may_send(&spec) {
                waiting = true;
                continue;
            }
            let outcome = send(&spec, &d, &row).await;
            count(&spec, &d, &row, &outcome);
            if !matches!(outcome, Outcome::Retry { .. }) {
                d.settled(&spec, &row).await;
            }
            if let Err(outcome) = record(&spec, &d, &row, outcome).await {
                unrecorded.push((row, outcome));
            }
        }
        if waiting {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

/// Sends one row. A WhatsApp receiver whose sending session the
/// evaluator judges critical does not page into the void: the row goes to
/// its fallback receiver (rendered for that one's kind), or waits for the
/// session to recover when it has none.
async fn send(spec: &ReceiverSpec, d: &Delivery, row: &OutboxRow) -> Outcome {
    let payload = match serde_json::from_str::<Payload>(&row.body) {
        Ok(payload) => payload,
        Err(e) => return Outcome::Permanent(format!("unreadable outbox row: {e}")),
    };
    let Some(sender) = spec.kind.sender() else {
        return receivers::send(spec, &d.client, row, &payload, &d.settings).await;
    };
    let healthy = d.judged.load().levels.level_of(&sender.watch) != Level::Critical;
    let fallback = sender
        .fallback
        .as_deref()
        .and_then(|name| d.settings.receivers.iter().find(|r| r.name == name));
    d.board
        .sender(&spec.name, healthy, !healthy && fallback.is_some());
    match (healthy, fallback) {
        (true, _) => receivers::send(spec, &d.client, row, &payload, &d.settings).await,
        (false, Some(fallback)) => {
            tracing::warn!(receiver = %spec.name, session = %sender.watch, fallback = %fallback.name, "the sending session is critical: sent through the fallback");
            match receivers::send(fallback, &d.client, row, &payload, &d.settings).await {
                Outcome::Retry { after, reason } => Outcome::Retry {
                    after,
                    reason: format!("through fallback {}: {reason}", fallback.name),
                },
                Outcome::Permanent(reason) => {
                    Outcome::Permanent(format!("through fallback {}: {reason}", fallback.name))
                }
                other => other,
            }
        }
        (false, None) => Outcome::Retry {
            after: None,
            reason: format!(
                "the sending session {} is critical and no fallback is set: kept until it recovers",
                sender.watch
            ),
        },
    }
}

/// Counts and logs the outcome of a send (once per send), or of an
/// expiry.
fn count(spec: &ReceiverSpec, d: &Delivery, row: &OutboxRow, outcome: &Outcome) {
    let now = clock::now();
    let kind = spec.kind.name();
    let label = match outcome {
        Outcome::Delivered => "delivered",
        Outcome::Retry { .. } => "retry",
        Outcome::Permanent(_) => "failed",
        Outcome::Expired(_) => "expired",
    };
    d.metrics
        .notifications
        .with_label_values(&[spec.name.as_str(), kind, label])
        .inc();
    match outcome {
        Outcome::Delivered => d.board.delivered(&spec.name, now),
        Outcome::Retry { reason, .. } => {
            tracing::warn!(receiver = %spec.name, kind, attempt = row.attempts + 1, reason = %reason, "notification not delivered; will retry");
            d.board.failed(&spec.name, reason, false);
        }
        Outcome::Permanent(reason) => {
            tracing::warn!(receiver = %spec.name, kind, attempt = row.attempts + 1, reason = %reason, "notification given up: the receiver refused it");
            d.board.failed(&spec.name, reason, true);
        }
        Outcome::Expired(reason) => {
            tracing::warn!(receiver = %spec.name, kind, outbox = row.id, reason = %reason, "notification copy expired");
        }
    }
}

/// Writes the outcome of a send; gives it back when the store refused
/// (the caller keeps it and writes it again, without sending again).
async fn record(
    spec: &ReceiverSpec,
    d: &Delivery,
    row: &OutboxRow,
    outcome: Outcome,
) -> Result<(), Outcome> {
    let now = clock::now();
    let id = row.id;
    let attempts = row.attempts;
    let receiver = spec.name.clone();
    let kept = outcome.clone();
    let expired = matches!(outcome, Outcome::Expired(_));
    let result = call(&d.store, move |s| -> Result<(), crate::store::StoreError> {
        match outcome {
            Outcome::Delivered => {
                s.delivered(id, now)?;
                let note = serde_json::json!({"receiver": receiver, "outbox": id, "outcome": "delivered", "at": now.to_rfc3339()});
                // History is a record, not the state: its failure must not make a
                // settled row look unrecorded.
                if let Err(e) = s.note(now, "notification", &note.to_string()) {
                    tracing::warn!(error = %e, "notification history not written");
                }
                Ok(())
            }
            Outcome::Retry { after, reason } => {
                let next: Timestamp = now.plus(wapulse_core::DurationMs::from_millis(
                    backoff(attempts, after).as_millis() as u64,
                ));
                s.retry(id, next, &reason)
            }
            Outcome::Permanent(reason) | Outcome::Expired(reason) => {
                s.failed(id, now, &reason)?;
                let said = if expired { "expired" } else { "failed" };
                let note = serde_json::json!({"receiver": receiver, "outbox": id, "outcome": said, "reason": reason, "at": now.to_rfc3339()});
                if let Err(e) = s.note(now, "notification", &note.to_string()) {
                    tracing::warn!(error = %e, "notification history not written");
                }
                Ok(())
            }
        }
    })
    .await;
    match result {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::error!(receiver = %spec.name, error = %e, "cannot record a delivery outcome; kept, and written again before anything else is sent");
            Err(kept)
        }
    }
}

/// Sends every firing alert routed to this Alertmanager receiver (and
/// those it was told fire), and the `Watchdog`.
async fn resend_firing(spec: &ReceiverSpec, d: &Delivery, r: &Resend) {
    let ReceiverKind::Alertmanager { urls, .. } = &spec.kind else {
        return;
    };
    let v = r.snapshot.load_full();
    if v.evaluated_at.is_none() || !(r.healthy)() {
        return;
    }
    let now = clock::now();
    let settings = &d.settings;
    let mut body = vec![receivers::alertmanager::watchdog(r.started, now, r.every)];
    for a in v.active.iter() {
        if a.state != wapulse_core::Phase::Firing {
            continue;
        }
        let n = a.as_notified();
        if (a.silenced || a.folded) && !a.told {
            continue;
        }
        let routed = super::routing::routes_for(settings, &n)
            .iter()
            .any(|route| settings.receivers[route.receiver].name == spec.name);
        if routed {
            body.push(receivers::alertmanager::alert(&n, now, r.every, settings));
        }
    }
    let outcome = receivers::alertmanager::post_all(
        &d.client,
        urls,
        &serde_json::Value::Array(body),
        spec.timeout,
    )
    .await;
    let label = match outcome {
        Outcome::Delivered => "resent",
        _ => "resend_failed",
    };
    d.metrics
        .notifications
        .with_label_values(&[spec.name.as_str(), "alertmanager", label])
        .inc();
}

/// Every second: each receiver's pending count (the gauge and the board);
/// every ten minutes: rows settled before `retention` are pruned.
pub(super) async fn watch_pending(
    store: Arc<Mutex<AlertStore>>,
    metrics: AlertMetrics,
    board: Arc<ReceiverBoard>,
    names: Vec<String>,
    retention: wapulse_core::DurationMs,
    mut stop: watch::Receiver<bool>,
) {
    let mut last_prune = Timestamp::from_millis(0);
    loop {
        let s = store.clone();
        let now = clock::now();
        let prune = now.since(last_prune) >= wapulse_core::DurationMs::from_mins(10);
        if prune {
            last_prune = now;
        }
        let pending = tokio::task::spawn_blocking(move || {
            let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
            if prune && let Err(e) = s.prune(now.minus(retention)) {
                tracing::warn!(error = %e, "outbox pruning failed");
            }
            s.pending()
        })
        .await;
        if let Ok(Ok(pending)) = pending {
            for name in &names {
                let n = pending.get(name).copied().unwrap_or(0);
                metrics
                    .outbox_pending
                    .with_label_values(&[name.as_str()])
                    .set(n as i64);
                if board.all().get(name).is_some_and(|h| h.pending != n) {
                    board.with(name, |h| h.pending = n);
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_expires_only_on_a_replica_that_does_not_send() {
        let open = |stale| Ok(PeerSays::Open { stale });
        assert!(
            matches!(Turn::of(open(true), true), Turn::Send),
            "the sender retries its own until delivered or refused"
        );
        assert!(matches!(Turn::of(open(true), false), Turn::Expired));
        assert!(matches!(Turn::of(open(false), false), Turn::Wait));
        assert!(matches!(Turn::of(open(false), true), Turn::Send));
        assert!(matches!(
            Turn::of(Ok(PeerSays::Settled), true),
            Turn::SentByPeer
        ));
        assert!(matches!(
            Turn::of(Err("no bucket".into()), true),
            Turn::Wait
        ));
        assert!(matches!(
            Turn::of(Err("no bucket".into()), false),
            Turn::Wait
        ));
    }
}
