//! `/session/observe`: everything known of one session, section by
//! section, as the seed's example has it.

use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use std::collections::BTreeMap;

use wapulse_core::{
    Labels, Level, Session, SessionId, SessionState, Thresholds, Timestamp, evaluate,
};

use super::alerts::{AlertView, alert_views};
use super::health::heartbeat_ok;
use super::{default_session, find, ts};
use crate::app::Shared;
use crate::clock;
use crate::routes::ApiError;
use crate::tenancy::Caller;

/// `GET /session/observe`: every section of the seed's example, with a few
/// more figures in each.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObserveView {
    #[serde(rename = "_meta")]
    meta: Meta,
    health: HealthSection,
    session: SessionSection,
    reconnect: ReconnectSection,
    heartbeat: HeartbeatSection,
    auth: AuthSection,
    lock: LockSection,
    integrity: IntegritySection,
    circuit_breaker: BreakerSection,
    messages: MessagesSection,
    delivery: DeliverySection,
    /// A business number's quality (Cloud API), `null` before a report.
    quality: Option<QualityView>,
    alerts: Vec<AlertView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QualityView {
    rating: Option<Box<str>>,
    event: Box<str>,
    tier: Option<Box<str>>,
    /// The tier as conversations a day (`null`: unknown or unlimited).
    limit: Option<u64>,
    at: String,
}

/// What the session's sends became (all zero and null for a session that
/// never sent a message with ids nor got an ack).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeliverySection {
    sent: u64,
    server_acked: u64,
    delivered: u64,
    read: u64,
    failed: u64,
    pending: u64,
    /// Sends not followed (no ids, or past the followed bound).
    untracked: u64,
    oldest_pending_age: Option<u64>,
    time_to_server: Option<Percentiles>,
    time_to_delivered: Option<Percentiles>,
    errors_by_code: BTreeMap<String, u32>,
    /// The failure window `errorsByCode` covers (ms).
    window: u64,
    last_error_at: Option<String>,
    restriction: Option<RestrictionView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RestrictionView {
    kind: &'static str,
    code: String,
    since: String,
    until: Option<String>,
    explanation: &'static str,
    action: &'static str,
}

fn delivery_section(s: &Session, t: &Thresholds, now: Timestamp) -> DeliverySection {
    let window = t.delivery_failure_window;
    let percentiles = |p: Option<wapulse_core::window::Percentiles>| {
        p.map(|p| Percentiles {
            p50: Some(p.p50),
            p90: Some(p.p90),
            p99: Some(p.p99),
        })
    };
    let Some(d) = s.delivery.as_deref() else {
        return DeliverySection {
            sent: 0,
            server_acked: 0,
            delivered: 0,
            read: 0,
            failed: 0,
            pending: 0,
            untracked: 0,
            oldest_pending_age: None,
            time_to_server: None,
            time_to_delivered: None,
            errors_by_code: BTreeMap::new(),
            window: window.as_millis(),
            last_error_at: None,
            restriction: None,
        };
    };
    DeliverySection {
        sent: d.sent(),
        server_acked: d.server_acked(),
        delivered: d.delivered(),
        read: d.read(),
        failed: d.failed(),
        pending: d.pending(),
        untracked: d.untracked(),
        oldest_pending_age: d.oldest_pending().map(|at| now.since(at).as_millis()),
        time_to_server: percentiles(d.time_to_server()),
        time_to_delivered: percentiles(d.time_to_delivered()),
        errors_by_code: d
            .errors_by_code(now, window)
            .into_iter()
            .map(|(c, n)| (c.as_str().to_owned(), n))
            .collect(),
        window: window.as_millis(),
        last_error_at: ts(d.last_error_at()),
        restriction: d.restriction(now).map(|r| RestrictionView {
            kind: r.kind.as_str(),
            code: r.code.as_str().to_owned(),
            since: r.since.to_rfc3339(),
            until: ts(r.until),
            explanation: r.kind.explanation(),
            action: r.kind.action(),
        }),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    generated_at: String,
    response_time_target: &'static str,
    version: &'static str,
    response_time: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HealthSection {
    status: Level,
    alert_count: usize,
    uptime: u64,
    uptime_formatted: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionSection {
    id: SessionId,
    labels: Labels,
    state: SessionState,
    state_changed_at: String,
    state_age: u64,
    state_age_formatted: String,
    state_reason: Option<Box<str>>,
    last_disconnect: Option<LastDisconnectView>,
    conflicts: ConflictsView,
    init_successful: bool,
    auth_method: Option<&'static str>,
    first_seen_at: String,
    last_event_at: String,
    events: u64,
    late_events: u64,
}

/// The last reason given for not being connected, named when wapulse
/// knows the close code.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LastDisconnectView {
    /// The close code as a number, or the gateway's reason as given.
    code: serde_json::Value,
    name: Option<&'static str>,
    explanation: Option<&'static str>,
    action: Option<&'static str>,
    at: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConflictsView {
    recent: u32,
    window: u64,
    total: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReconnectSection {
    attempts: u32,
    max_attempts: u32,
    attempts_remaining: u32,
    in_progress: bool,
    started_at: Option<String>,
    last_duration: Option<u64>,
    last_duration_formatted: Option<String>,
    total_attempts: u64,
    completed: u64,
    latency_percentiles: Percentiles,
}

#[derive(Serialize)]
struct Percentiles {
    p50: Option<u32>,
    p90: Option<u32>,
    p99: Option<u32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HeartbeatSection {
    last_at: Option<String>,
    age: Option<u64>,
    age_formatted: Option<String>,
    count: u64,
    missed: u32,
    missed_total: u64,
    last_rtt_ms: Option<u32>,
    interval: u64,
    healthy: bool,
    /// Whether the source sends regular keepalives (the heartbeat rules
    /// judge their silence only then).
    expected: bool,
    failing_since: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AuthSection {
    method: Option<&'static str>,
    last_auth_at: Option<String>,
    auth_age: Option<u64>,
    last_credential_write_at: Option<String>,
    credential_age: Option<u64>,
    credential_age_formatted: Option<String>,
    credential_store: Option<Box<str>>,
    credential_fresh: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LockSection {
    held: bool,
    held_by: Option<Box<str>>,
    operation: Option<Box<str>>,
    since: Option<String>,
    held_for: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IntegritySection {
    checksum_valid: bool,
    validation_failures: u32,
    validation_failures_total: u64,
    last_check_at: Option<String>,
    corrupted_at: Option<String>,
    detail: Option<Box<str>>,
    status: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BreakerSection {
    open: bool,
    consecutive_failures: u32,
    threshold: u32,
    since: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MessagesSection {
    inbound: u64,
    outbound: u64,
    errors: u64,
    last_inbound_at: Option<String>,
    inbound_baseline: BaselineView,
}

/// The inbound rate INBOUND_SILENCE judges by.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BaselineView {
    per_hour: Option<f64>,
    weight: f64,
    observed: u64,
    /// Whether it rests on enough messages and time to be judged.
    judged: bool,
    usual_gap: Option<u64>,
    /// Connected time without an inbound message (ms), while judged.
    silent_for: Option<u64>,
    warning_after: Option<u64>,
    critical_after: Option<u64>,
}

pub(crate) fn observe_view(state: &Shared, s: &Session, started: Instant) -> ObserveView {
    let t = &state.settings.thresholds;
    let now = clock::now();
    let a = evaluate(s, t, now);
    let age = |at: Option<Timestamp>| at.map(|at| now.since(at).as_millis());
    let uptime = s.uptime(now);
    let hb_age = s.heartbeat.last_at.map(|at| now.since(at));
    let credential_age = s.credentials_written_at.map(|at| now.since(at));
    let failures = s.validation_failures(t, now);
    let p = s.reconnect.latency_percentiles();
    ObserveView {
        meta: Meta {
            generated_at: now.to_rfc3339(),
            response_time_target: "10ms",
            version: "1.0.0",
            response_time: format!("{:.2}ms", started.elapsed().as_secs_f64() * 1000.0),
        },
        health: HealthSection {
            status: a.level,
            alert_count: a.alerts.len(),
            uptime: uptime.as_millis(),
            uptime_formatted: uptime.formatted(),
        },
        session: SessionSection {
            id: s.id().clone(),
            labels: s.labels.clone(),
            state: s.state,
            state_changed_at: s.state_changed_at.to_rfc3339(),
            state_age: s.state_age(now).as_millis(),
            state_age_formatted: s.state_age(now).formatted(),
            state_reason: s.state_reason.clone(),
            last_disconnect: s.liveness.last_disconnect.as_ref().map(|d| {
                let read = d.read();
                let known = read.known();
                LastDisconnectView {
                    code: match read.code {
                        Some(code) if known.is_some() || d.reason.trim() == code.to_string() => {
                            code.into()
                        }
                        _ => d.reason.as_ref().into(),
                    },
                    name: known.map(|k| k.name),
                    explanation: known.map(|k| k.explanation),
                    action: known.map(|k| k.action),
                    at: d.at.to_rfc3339(),
                }
            }),
            conflicts: ConflictsView {
                recent: s.liveness.conflicts(now, t.session_conflict_window),
                window: t.session_conflict_window.as_millis(),
                total: s.liveness.conflicts_total,
            },
            init_successful: s.init_successful,
            auth_method: s.auth_method.map(|m| m.as_str()),
            first_seen_at: s.first_seen.to_rfc3339(),
            last_event_at: s.last_event_at.to_rfc3339(),
            events: s.events,
            late_events: s.late_events,
        },
        reconnect: ReconnectSection {
            attempts: s.reconnect.attempts,
            max_attempts: t.max_reconnect_attempts,
            attempts_remaining: t
                .max_reconnect_attempts
                .saturating_sub(s.reconnect.attempts),
            in_progress: s.reconnect.in_progress,
            started_at: ts(s.reconnect.started_at),
            last_duration: s.reconnect.last_duration.map(|d| d.as_millis()),
            last_duration_formatted: s.reconnect.last_duration.map(|d| d.formatted()),
            total_attempts: s.reconnect.total_attempts,
            completed: s.reconnect.completed,
            latency_percentiles: Percentiles {
                p50: p.map(|p| p.p50),
                p90: p.map(|p| p.p90),
                p99: p.map(|p| p.p99),
            },
        },
        heartbeat: HeartbeatSection {
            last_at: ts(s.heartbeat.last_at),
            age: hb_age.map(|d| d.as_millis()),
            age_formatted: hb_age.map(|d| d.formatted()),
            count: s.heartbeat.count,
            missed: s.missed_heartbeats(t, now),
            missed_total: s.heartbeat.missed_total,
            last_rtt_ms: s.heartbeat.last_rtt_ms,
            interval: t.heartbeat_interval.as_millis(),
            healthy: heartbeat_ok(s, t, now),
            expected: !s.liveness.keepalives_off,
            failing_since: ts(s.liveness.keepalive_failing_since),
        },
        auth: AuthSection {
            method: s.auth_method.map(|m| m.as_str()),
            last_auth_at: ts(s.auth_at),
            auth_age: age(s.auth_at),
            last_credential_write_at: ts(s.credentials_written_at),
            credential_age: credential_age.map(|d| d.as_millis()),
            credential_age_formatted: credential_age.map(|d| d.formatted()),
            credential_store: s.credentials_store.clone(),
            credential_fresh: credential_age.is_some_and(|d| d < t.credential_age_warning),
        },
        lock: LockSection {
            held: s.lock.is_some(),
            held_by: s.lock.as_ref().map(|l| l.held_by.clone()),
            operation: s.lock.as_ref().map(|l| l.operation.clone()),
            since: ts(s.lock.as_ref().map(|l| l.since)),
            held_for: age(s.lock.as_ref().map(|l| l.since)),
        },
        integrity: IntegritySection {
            checksum_valid: s.integrity.checksum_valid,
            validation_failures: failures,
            validation_failures_total: s.integrity.failures_total,
            last_check_at: ts(s.integrity.last_check_at),
            corrupted_at: ts(s.integrity.corrupted_at),
            detail: s.integrity.last_detail.clone(),
            status: if !s.integrity.checksum_valid {
                "corrupted"
            } else if failures > 0 {
                "degraded"
            } else {
                "healthy"
            },
        },
        circuit_breaker: BreakerSection {
            open: s.breaker.open,
            consecutive_failures: s.breaker.consecutive_failures,
            threshold: t.circuit_breaker_threshold,
            since: ts(s.breaker.since),
        },
        messages: MessagesSection {
            inbound: s.traffic.inbound,
            outbound: s.traffic.outbound,
            errors: s.traffic.errors,
            last_inbound_at: ts(s.liveness.inbound.last_at()),
            inbound_baseline: {
                let b = &s.liveness.inbound;
                let bar = b.bar(t);
                BaselineView {
                    per_hour: b.rate_per_hour().map(|r| (r * 100.0).round() / 100.0),
                    weight: (b.weight() * 100.0).round() / 100.0,
                    observed: b.observed().as_millis(),
                    judged: bar.is_some(),
                    usual_gap: bar.map(|b| b.usual_gap.as_millis()),
                    silent_for: bar.map(|b| b.silent_for(now).as_millis()),
                    warning_after: bar.map(|b| b.warning_after.as_millis()),
                    critical_after: bar.map(|b| b.critical_after.as_millis()),
                }
            },
        },
        delivery: delivery_section(s, t, now),
        quality: s
            .delivery
            .as_deref()
            .and_then(|d| d.quality())
            .map(|q| QualityView {
                rating: q.rating.clone(),
                event: q.event.clone(),
                tier: q.tier.clone(),
                limit: q.limit(),
                at: q.at.to_rfc3339(),
            }),
        alerts: alert_views(&a),
    }
}

pub(in crate::routes) async fn observe_default(
    State(state): State<Shared>,
    caller: Caller,
) -> Result<Json<ObserveView>, ApiError> {
    let started = Instant::now();
    let s = default_session(&state, &caller)?;
    Ok(Json(observe_view(&state, &s, started)))
}

pub(in crate::routes) async fn observe(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ObserveView>, ApiError> {
    let started = Instant::now();
    let s = find(&state, &caller, &id)?;
    Ok(Json(observe_view(&state, &s, started)))
}
