//! The seed's session API: health, observe, alerts, thresholds, for the
//! default session and for any session by id, plus the session list.
//!
//! Response types here are the wire format (camelCase, `…Formatted`
//! durations, `null` for unknown times); they are built from core snapshots
//! so the JSON changes only when this file does.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use wapulse_core::{
    Alert, Assessment, Labels, Level, Session, SessionId, SessionState, Thresholds, Timestamp,
    evaluate,
};

use super::{ApiError, Shared};
use crate::clock;

/// Finds a session by a path id: 400 when malformed, 404 when unknown.
pub(super) fn find(state: &Shared, id: &str) -> Result<Arc<Session>, ApiError> {
    let id = SessionId::parse(id).map_err(|e| ApiError::BadRequest {
        message: e.to_string(),
        index: None,
        field: Some("id"),
    })?;
    state
        .model
        .snapshot()
        .get(id.as_str())
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("no session `{id}` has been seen")))
}

fn default_session(state: &Shared) -> Arc<Session> {
    let id = &state.settings.default_session;
    match state.model.snapshot().get(id.as_str()) {
        Some(s) => s.clone(),
        // The model creates the default session at start; this is only a
        // guard should that ever change.
        None => Arc::new(Session::new(id.clone(), state.started_at)),
    }
}

fn ts(t: Option<Timestamp>) -> Option<String> {
    t.map(Timestamp::to_rfc3339)
}

/// `GET /session/health`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthView {
    status: Level,
    state: SessionState,
    connected: bool,
    heartbeat_ok: bool,
    alert_count: usize,
    uptime: u64,
    #[serde(rename = "_responseTime")]
    response_time: String,
}

/// Connected, and the keepalive (when one is expected or failing) is
/// younger than the warning age.
fn heartbeat_ok(s: &Session, t: &Thresholds, now: Timestamp) -> bool {
    s.is_connected()
        && s.keepalive_reference()
            .is_none_or(|since| now.since(since) < t.heartbeat_age_warning)
}

fn health_response(state: &Shared, s: &Session, started: Instant) -> Response {
    let t = &state.settings.thresholds;
    let now = clock::now();
    let a = evaluate(s, t, now);
    let view = HealthView {
        status: a.level,
        state: s.state,
        connected: s.is_connected(),
        heartbeat_ok: heartbeat_ok(s, t, now),
        alert_count: a.alerts.len(),
        uptime: s.uptime(now).as_millis(),
        response_time: format!("{:.2}ms", started.elapsed().as_secs_f64() * 1000.0),
    };
    let code = if a.level == Level::Critical {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(view)).into_response()
}

pub(super) async fn health_default(State(state): State<Shared>) -> Response {
    health_default_response(&state, Instant::now())
}

/// `/session/health`'s answer, for the routed handler and the fast path
/// alike ([`super::fast`]).
pub(super) fn health_default_response(state: &Shared, started: Instant) -> Response {
    let s = default_session(state);
    health_response(state, &s, started)
}

pub(super) async fn health(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let s = find(&state, &id)?;
    Ok(health_response(&state, &s, started))
}

/// One alert on the wire.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertView {
    level: Level,
    code: &'static str,
    message: String,
    action: &'static str,
    value: u64,
    threshold: u64,
    since: Option<String>,
}

impl From<&Alert> for AlertView {
    fn from(a: &Alert) -> Self {
        Self {
            level: a.level,
            code: a.code.as_str(),
            message: a.message(),
            action: a.action(),
            value: a.value,
            threshold: a.threshold,
            since: ts(a.since),
        }
    }
}

fn alert_views(a: &Assessment) -> Vec<AlertView> {
    a.alerts.iter().map(AlertView::from).collect()
}

/// `GET /session/alerts`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertsView {
    session: SessionId,
    level: Level,
    count: usize,
    alerts: Vec<AlertView>,
    checked_at: String,
}

fn alerts_view(state: &Shared, s: &Session) -> AlertsView {
    let now = clock::now();
    let a = evaluate(s, &state.settings.thresholds, now);
    AlertsView {
        session: s.id().clone(),
        level: a.level,
        count: a.alerts.len(),
        alerts: alert_views(&a),
        checked_at: now.to_rfc3339(),
    }
}

pub(super) async fn alerts_default(State(state): State<Shared>) -> Json<AlertsView> {
    let s = default_session(&state);
    Json(alerts_view(&state, &s))
}

pub(super) async fn alerts(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<AlertsView>, ApiError> {
    let s = find(&state, &id)?;
    Ok(Json(alerts_view(&state, &s)))
}

pub(super) async fn thresholds(State(state): State<Shared>) -> Json<Thresholds> {
    Json(state.settings.thresholds.clone())
}

pub(super) async fn thresholds_for(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Thresholds>, ApiError> {
    find(&state, &id)?;
    Ok(Json(state.settings.thresholds.clone()))
}

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
    alerts: Vec<AlertView>,
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
        alerts: alert_views(&a),
    }
}

pub(super) async fn observe_default(State(state): State<Shared>) -> Json<ObserveView> {
    let started = Instant::now();
    let s = default_session(&state);
    Json(observe_view(&state, &s, started))
}

pub(super) async fn observe(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<ObserveView>, ApiError> {
    let started = Instant::now();
    let s = find(&state, &id)?;
    Ok(Json(observe_view(&state, &s, started)))
}

/// `GET /sessions` query: `status`, `state`, `limit`, `after` at most
/// once each, `label=name:value` any number of times (every one must match).
#[derive(Default)]
struct ListQuery {
    status: Option<String>,
    state: Option<String>,
    limit: Option<String>,
    after: Option<String>,
    labels: Vec<(String, String)>,
}

impl ListQuery {
    fn parse(pairs: Vec<(String, String)>) -> Result<Self, ApiError> {
        let mut q = ListQuery::default();
        for (key, value) in pairs {
            let slot = match key.as_str() {
                "status" => &mut q.status,
                "state" => &mut q.state,
                "limit" => &mut q.limit,
                "after" => &mut q.after,
                "label" => {
                    q.labels.push(label_filter(&value)?);
                    continue;
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unknown query parameter `{other}` (status, state, label, limit, after)"
                    )));
                }
            };
            if slot.replace(value).is_some() {
                return Err(ApiError::bad_request(format!(
                    "query parameter `{key}` is given more than once"
                )));
            }
        }
        Ok(q)
    }
}

/// One `label=name:value` filter.
pub(crate) fn label_filter(text: &str) -> Result<(String, String), ApiError> {
    let bad = |why: String| ApiError::invalid("label", format!("label `{text}`: {why}"));
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| bad("must be name:value, e.g. label=region:eu-1".into()))?;
    wapulse_core::labels::check_name(name).map_err(|e| bad(e.to_string()))?;
    Ok((name.to_owned(), value.to_owned()))
}

/// One row of `GET /sessions`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionRow {
    id: SessionId,
    labels: Labels,
    state: SessionState,
    status: Level,
    alert_count: usize,
    state_changed_at: String,
    last_event_at: String,
}

/// `GET /sessions`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListView {
    total: usize,
    count: usize,
    next_after: Option<SessionId>,
    sessions: Vec<SessionRow>,
}

/// Most rows one page may hold.
const MAX_PAGE: usize = 1000;

pub(super) async fn list(
    State(state): State<Shared>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ListView>, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let q = ListQuery::parse(pairs)?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(Level::parse(s).ok_or_else(|| ApiError::BadRequest {
            message: format!("status `{s}` is not one of ok, warning, critical"),
            index: None,
            field: Some("status"),
        })?),
    };
    let wanted_state = match q.state.as_deref() {
        None => None,
        Some(s) => Some(SessionState::parse(s).ok_or_else(|| ApiError::BadRequest {
            message: format!(
                "state `{s}` is not one of connecting, connected, reconnecting, disconnected, \
                 qr_required, logged_out, circuit_open"
            ),
            index: None,
            field: Some("state"),
        })?),
    };
    let limit = parse_limit(q.limit.as_deref())?;
    let t = &state.settings.thresholds;
    let now = clock::now();
    let snapshot = state.model.snapshot();
    // Sessions come in id order from the snapshot's sorted index: no sort
    // per request, and only what a filter needs is evaluated.
    let row = |s: &Session, a: &Assessment| SessionRow {
        id: s.id().clone(),
        labels: s.labels.clone(),
        state: s.state,
        status: a.level,
        alert_count: a.alerts.len(),
        state_changed_at: s.state_changed_at.to_rfc3339(),
        last_event_at: s.last_event_at.to_rfc3339(),
    };
    // The filters that need no evaluation: state, then labels.
    let selected = |s: &Session| {
        wanted_state.is_none_or(|w| s.state == w)
            && q.labels
                .iter()
                .all(|(name, value)| s.labels.get(name) == Some(value.as_str()))
    };
    // Every filter, with the assessment it needed (kept for the row).
    let matching = |s: &Session| -> Option<Assessment> {
        if !selected(s) {
            return None;
        }
        let a = evaluate(s, t, now);
        status.is_none_or(|w| a.level == w).then_some(a)
    };
    let total = match (status, wanted_state) {
        // The total by level needs every session's level.
        (Some(_), _) => snapshot
            .sessions()
            .filter(|s| matching(s).is_some())
            .count(),
        // By label: a scan, but no evaluation.
        (None, _) if !q.labels.is_empty() => snapshot.sessions().filter(|s| selected(s)).count(),
        (None, Some(w)) => snapshot.by_state()[w.index()],
        (None, None) => snapshot.len(),
    };
    let mut page: Vec<SessionRow> = Vec::with_capacity(limit.min(snapshot.len()));
    let mut more = false;
    for s in snapshot.sessions_after(q.after.as_deref()) {
        let Some(a) = matching(s) else { continue };
        if page.len() == limit {
            more = true;
            break;
        }
        page.push(row(s, &a));
    }
    let next_after = more.then(|| page.last().map(|r| r.id.clone())).flatten();
    Ok(Json(ListView {
        total,
        count: page.len(),
        next_after,
        sessions: page,
    }))
}

/// `GET /sessions/{id}/events` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HistoryQuery {
    limit: Option<String>,
    before: Option<String>,
}

/// `GET /sessions/{id}/events`: the session's journal, newest first. The
/// one read that touches the disk, so it runs on the blocking pool.
pub(super) async fn history(
    State(state): State<Shared>,
    Path(id): Path<String>,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let session = find(&state, &id)?;
    let limit = parse_limit(q.limit.as_deref())?;
    let before = match q.before.as_deref() {
        None => None,
        Some(b) => Some(b.parse::<u64>().map_err(|_| ApiError::BadRequest {
            message: format!("before `{b}` must be a sequence number (a whole number)"),
            index: None,
            field: Some("before"),
        })?),
    };
    let history = state.model.history();
    let id = session.id().clone();
    let rows = tokio::task::spawn_blocking(move || history.session_events(&id, limit, before))
        .await
        .map_err(|e| ApiError::Internal(format!("history read failed: {e}")))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let next_before = (rows.len() == limit)
        .then(|| rows.last().map(|r| r.seq))
        .flatten();
    let events: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|r| {
            let mut v = serde_json::to_value(&r.event).unwrap_or_default();
            v["seq"] = r.seq.into();
            v["receivedAt"] = r.received.to_rfc3339().into();
            v
        })
        .collect();
    Ok(Json(serde_json::json!({
        "session": session.id(),
        "count": events.len(),
        "events": events,
        "nextBefore": next_before,
    })))
}

fn parse_limit(text: Option<&str>) -> Result<usize, ApiError> {
    match text {
        None => Ok(100),
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(ApiError::BadRequest {
                message: format!("limit `{l}` must be a whole number from 1 to {MAX_PAGE}"),
                index: None,
                field: Some("limit"),
            }),
        },
    }
}
