//! History and availability (issue 31): `/history/fleet`,
//! `/sessions/{id}/history`, `/sessions/{id}/availability`,
//! `/availability`. JSON, or CSV with `Accept: text/csv`. Reads touch the
//! disk, so they run on the blocking pool.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use wapulse_core::availability::Timeline;
use wapulse_core::{DurationMs, SessionId, SessionState, Timestamp};

use super::session::parse_id;
use crate::app::Shared;
use crate::clock;
use crate::history::{self, FleetPoint, HOUR_MS, MINUTE_MS};
use crate::routes::ApiError;
use crate::tenancy::Caller;

/// The steps a history may be read at.
const STEPS: [(&str, i64); 4] = [
    ("1m", MINUTE_MS),
    ("5m", 5 * MINUTE_MS),
    ("1h", HOUR_MS),
    ("1d", 24 * HOUR_MS),
];

/// Most points one answer holds.
const MAX_POINTS: i64 = 10_000;

fn bad(field: &'static str, message: String) -> ApiError {
    ApiError::BadRequest {
        message,
        index: None,
        field: Some(field),
    }
}

fn parse_time(field: &'static str, text: &str) -> Result<Timestamp, ApiError> {
    Timestamp::parse_rfc3339(text).map_err(|_| {
        bad(
            field,
            format!("{field} `{text}` is not an RFC 3339 time (2026-12-01T00:00:00Z)"),
        )
    })
}

fn parse_step(text: &str) -> Result<i64, ApiError> {
    STEPS
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, ms)| *ms)
        .ok_or_else(|| {
            bad(
                "step",
                format!("step `{text}` must be one of 1m, 5m, 1h, 1d"),
            )
        })
}

fn step_name(ms: i64) -> &'static str {
    STEPS
        .iter()
        .find(|(_, s)| *s == ms)
        .map_or("1h", |(name, _)| name)
}

/// A window read from `window=` or `from=`/`to=`.
struct Range {
    from: Timestamp,
    to: Timestamp,
}

/// Reads `from`/`to` (RFC 3339) or `window` (a duration back from now);
/// `default` back from now when none is given.
fn range(
    from: Option<&str>,
    to: Option<&str>,
    window: Option<&str>,
    default: DurationMs,
    now: Timestamp,
) -> Result<Range, ApiError> {
    if window.is_some() && (from.is_some() || to.is_some()) {
        return Err(bad(
            "window",
            "give either window or from/to, not both".into(),
        ));
    }
    let to = match to {
        Some(t) => parse_time("to", t)?,
        None => now,
    };
    let from = match (from, window) {
        (Some(f), _) => parse_time("from", f)?,
        (None, Some(w)) => {
            let d = DurationMs::parse(w).map_err(|_| {
                bad(
                    "window",
                    format!("window `{w}` is not a duration (24h, 7d, 30d)"),
                )
            })?;
            if d == DurationMs::ZERO || d > DurationMs::from_hours(400 * 24) {
                return Err(bad(
                    "window",
                    format!("window `{w}` must be longer than zero and at most 400d"),
                ));
            }
            to.minus(d)
        }
        (None, None) => to.minus(default),
    };
    if from >= to {
        return Err(bad("from", "from must be before to".into()));
    }
    Ok(Range { from, to })
}

/// Whether the client asked for CSV.
fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"))
}

/// Writes `rows` under `head` as CSV.
fn csv(head: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> Result<Response, ApiError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| ApiError::Internal(format!("CSV: {e}"));
    out.write_record(head).map_err(fail)?;
    for row in rows {
        out.write_record(&row).map_err(fail)?;
    }
    let body = out
        .into_inner()
        .map_err(|e| ApiError::Internal(format!("CSV: {e}")))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        )],
        body,
    )
        .into_response())
}

/// Runs a history read on the blocking pool.
async fn blocking<T: Send + 'static>(
    read: impl FnOnce() -> Result<T, history::read::ReadFailed> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(read)
        .await
        .map_err(|e| ApiError::Internal(format!("history read failed: {e}")))?
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// `from`, `to`, `step` (and `window`) of a history read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HistoryQuery {
    from: Option<String>,
    to: Option<String>,
    step: Option<String>,
}

type Queried<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

/// The range and step of a history read, aligned to the step (UTC).
fn steps(q: &HistoryQuery, now: Timestamp, allowed: &[i64]) -> Result<(Range, i64), ApiError> {
    let r = range(
        q.from.as_deref(),
        q.to.as_deref(),
        None,
        DurationMs::from_hours(24),
        now,
    )?;
    let span = r.to.as_millis() - r.from.as_millis();
    let step = match q.step.as_deref() {
        Some(s) => parse_step(s)?,
        // The finest step that keeps a day to 1,440 points.
        None => STEPS
            .iter()
            .map(|(_, ms)| *ms)
            .find(|ms| allowed.contains(ms) && span / ms <= 1440)
            .unwrap_or(24 * HOUR_MS),
    };
    if !allowed.contains(&step) {
        return Err(bad(
            "step",
            format!(
                "step must be one of {} here",
                allowed
                    .iter()
                    .map(|ms| step_name(*ms))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let from = Timestamp::from_millis(history::bucket(r.from, step));
    if (r.to.as_millis() - from.as_millis()) / step > MAX_POINTS {
        return Err(bad(
            "step",
            format!("from..to at this step is more than {MAX_POINTS} points: widen the step"),
        ));
    }
    Ok((Range { from, to: r.to }, step))
}

/// `GET /history/fleet?from&to&step`.
pub(super) async fn fleet(
    State(state): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    query: Queried<HistoryQuery>,
) -> Result<Response, ApiError> {
    if let Some(scope) = caller.scope() {
        return Err(ApiError::Forbidden(format!(
            "fleet history counts the sessions of every tenant, and this token is scoped to {}: \
             read its sessions' history at /sessions/{{id}}/history and their availability at \
             /availability",
            scope.describe()
        )));
    }
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let now = clock::now();
    let (r, step) = steps(&q, now, &[MINUTE_MS, 5 * MINUTE_MS, HOUR_MS, 24 * HOUR_MS])?;
    let reader = state.model.history();
    let (from, to) = (r.from, r.to);
    let mut points = blocking(move || reader.fleet(from, to, step)).await?;
    // The step now running: the live figures for what is not on disk yet.
    if let Some(last) = points.last_mut()
        && last.at_ms + step > now.as_millis()
        && last.at_ms <= now.as_millis()
    {
        let snapshot = state.model.snapshot();
        let by_state = snapshot.by_state();
        last.states = Some(by_state.map(|n| n as u64));
        let judged = state.alerting.snapshot();
        last.levels = Some(history::LevelSample {
            minute_ms: history::bucket(now, MINUTE_MS),
            ok: judged.by_level[wapulse_core::Level::Ok as usize] as u64,
            warning: judged.by_level[wapulse_core::Level::Warning as usize] as u64,
            critical: judged.by_level[wapulse_core::Level::Critical as usize] as u64,
            alerts_firing: judged.counts.firing as u64,
        });
        // Alerts and the grid as they are now; notifications as last
        // sampled.
        let mut detail = judged.history_detail();
        if let Some(n) = notifications_of(last) {
            detail.insert("notifications".into(), n);
        }
        last.detail = Some(Value::Object(detail).to_string());
    }
    if wants_csv(&headers) {
        let mut head = vec!["at"];
        head.extend(SessionState::ALL.iter().map(|s| s.as_str()));
        head.extend([
            "ok",
            "warning",
            "critical",
            "alertsFiring",
            "eventsAccepted",
            "messagesIn",
            "messagesOut",
            "acksServer",
            "acksDelivered",
            "acksRead",
            "sendsFailed",
            "notificationsDelivered",
            "notificationsFailed",
        ]);
        let rows = points.iter().map(|p| {
            let mut row = vec![Timestamp::from_millis(p.at_ms).to_rfc3339()];
            let states = p.states.unwrap_or_default();
            row.extend(states.iter().map(u64::to_string));
            let l = p.levels;
            row.extend([
                l.map_or(String::new(), |l| l.ok.to_string()),
                l.map_or(String::new(), |l| l.warning.to_string()),
                l.map_or(String::new(), |l| l.critical.to_string()),
                l.map_or(String::new(), |l| l.alerts_firing.to_string()),
                p.counts.events.to_string(),
                p.counts.messages_in.to_string(),
                p.counts.messages_out.to_string(),
                p.counts.acks_server.to_string(),
                p.counts.acks_delivered.to_string(),
                p.counts.acks_read.to_string(),
                p.counts.sends_failed.to_string(),
            ]);
            let n = notifications(p);
            row.extend([
                n["delivered"]
                    .as_u64()
                    .map_or(String::new(), |v| v.to_string()),
                n["failed"]
                    .as_u64()
                    .map_or(String::new(), |v| v.to_string()),
            ]);
            row
        });
        return csv(&head, rows);
    }
    Ok(axum::Json(json!({
        "from": r.from.to_rfc3339(),
        "to": r.to.to_rfc3339(),
        "step": step_name(step),
        "points": points.iter().map(fleet_point).collect::<Vec<_>>(),
    }))
    .into_response())
}

fn fleet_point(p: &FleetPoint) -> Value {
    let states = p.states.unwrap_or_default();
    let sessions: BTreeMap<&str, u64> = SessionState::ALL
        .iter()
        .map(|s| (s.as_str(), states[s.index()]))
        .collect();
    json!({
        "at": Timestamp::from_millis(p.at_ms).to_rfc3339(),
        "sessions": sessions,
        "levels": p.levels.map(|l| json!({"ok": l.ok, "warning": l.warning, "critical": l.critical})),
        "alertsFiring": p.levels.map(|l| l.alerts_firing),
        "eventsAccepted": p.counts.events,
        "messagesIn": p.counts.messages_in,
        "messagesOut": p.counts.messages_out,
        "delivery": {
            "server": p.counts.acks_server,
            "delivered": p.counts.acks_delivered,
            "read": p.counts.acks_read,
            "failed": p.counts.sends_failed,
        },
        "alertsByCode": detail(p).get("alerts").cloned().unwrap_or(Value::Null),
        "stateLevels": detail(p).get("stateLevels").cloned().unwrap_or(Value::Null),
        "notifications": notifications(p),
    })
}

/// A point's sampled detail (`{}` when none was sampled).
fn detail(p: &FleetPoint) -> Value {
    p.detail
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_else(|| json!({}))
}

/// Notifications delivered and failed in the point's last sampled minute
/// (`null` before the first sample).
fn notifications(p: &FleetPoint) -> Value {
    notifications_of(p).unwrap_or(Value::Null)
}

fn notifications_of(p: &FleetPoint) -> Option<Value> {
    detail(p).get("notifications").cloned()
}

/// A session known now or in the history: 404 otherwise, like every
/// route by id.
pub(super) async fn timeline_for(
    state: &Shared,
    caller: &Caller,
    id: &SessionId,
    from: Timestamp,
    to: Timestamp,
) -> Result<Timeline, ApiError> {
    if !caller.sees_id(&state.model.snapshot(), id.as_str()) {
        return Err(super::session::unknown(id.as_str()));
    }
    let reader = state.model.history();
    let read = id.clone();
    let life = caller.current_life_only();
    let timeline =
        blocking(move || history::timeline_of_life(reader.as_ref(), &read, (from, to), life))
            .await?;
    if timeline.changes().is_empty() && state.model.snapshot().get(id.as_str()).is_none() {
        // Not in the window: was it ever seen?
        let reader = state.model.history();
        let read = id.clone();
        let ever = blocking(move || {
            reader.timeline(
                &read,
                Timestamp::from_millis(i64::MAX),
                Timestamp::from_millis(i64::MAX),
            )
        })
        .await?;
        if ever.changes().is_empty() {
            return Err(ApiError::NotFound(format!(
                "no session `{id}` has been seen"
            )));
        }
    }
    Ok(timeline)
}

/// `window` or `from`/`to` of an availability read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WindowQuery {
    window: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `GET /sessions/{id}/availability?window=30d` (or `from`/`to`).
pub(super) async fn session_availability(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Queried<WindowQuery>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let id = parse_id(&id)?;
    let now = clock::now();
    let r = range(
        q.from.as_deref(),
        q.to.as_deref(),
        q.window.as_deref(),
        DurationMs::from_hours(30 * 24),
        now,
    )?;
    let timeline = timeline_for(&state, &caller, &id, r.from, r.to).await?;
    let a = timeline.over(r.from, r.to, now);
    if wants_csv(&headers) {
        return csv(
            &[
                "session",
                "from",
                "to",
                "availability",
                "connectedMs",
                "observedMs",
                "intervals",
            ],
            [vec![
                id.to_string(),
                r.from.to_rfc3339(),
                r.to.to_rfc3339(),
                a.share().map_or(String::new(), |s| s.to_string()),
                a.connected_ms.to_string(),
                a.observed_ms.to_string(),
                a.intervals.to_string(),
            ]],
        );
    }
    Ok(axum::Json(json!({
        "session": id,
        "from": r.from.to_rfc3339(),
        "to": r.to.to_rfc3339(),
        "availability": a.share(),
        "connectedMs": a.connected_ms,
        "observedMs": a.observed_ms,
        "intervals": a.intervals,
    }))
    .into_response())
}

/// `GET /availability?by&window&below` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FleetAvailabilityQuery {
    by: Option<String>,
    window: Option<String>,
    from: Option<String>,
    to: Option<String>,
    below: Option<String>,
    limit: Option<String>,
}

/// `GET /availability?by=tenant&window=30d&below=0.99`: per label value,
/// the sessions' total connected over total observed time; and the
/// sessions below the target, worst first.
pub(super) async fn fleet_availability(
    State(state): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    query: Queried<FleetAvailabilityQuery>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let now = clock::now();
    let r = range(
        q.from.as_deref(),
        q.to.as_deref(),
        q.window.as_deref(),
        DurationMs::from_hours(30 * 24),
        now,
    )?;
    let below = match q.below.as_deref() {
        None => 1.0,
        Some(b) => b
            .parse::<f64>()
            .ok()
            .filter(|v| (0.0..=1.0).contains(v))
            .ok_or_else(|| bad("below", format!("below `{b}` must be a number from 0 to 1")))?,
    };
    let limit = super::session::parse_limit(q.limit.as_deref())?;
    if let Some(by) = q.by.as_deref() {
        wapulse_core::labels::check_name(by).map_err(|e| bad("by", format!("by `{by}`: {e}")))?;
    }
    let window = q
        .window
        .clone()
        .unwrap_or_else(|| DurationMs::from_millis(r.to.since(r.from).as_millis()).formatted());
    // Labels as they are now; a retired session has none.
    let snapshot = state.model.snapshot();
    let reader = state.model.history();
    let by = q.by.clone();
    let ranked = blocking(move || {
        let label_of = |id: &str| -> Option<String> {
            let by = by.as_deref()?;
            snapshot.get(id)?.labels.get(by).map(str::to_owned)
        };
        let admits = |id: &str| caller.sees_id(&snapshot, id);
        let seen = history::Seen {
            admits: &admits,
            current_life: caller.current_life_only(),
        };
        history::rank(
            reader.as_ref(),
            (r.from, r.to, now),
            by.as_deref(),
            &label_of,
            seen,
            below,
            limit,
        )
    })
    .await?;
    let (groups, under) = (&ranked.groups, &ranked.below);
    if wants_csv(&headers) {
        let mut rows: Vec<Vec<String>> = groups
            .iter()
            .map(|(value, a, n)| {
                vec![
                    "group".into(),
                    value.clone(),
                    a.share().map_or(String::new(), |s| s.to_string()),
                    n.to_string(),
                ]
            })
            .collect();
        rows.extend(
            under
                .iter()
                .map(|(s, share)| vec!["below".into(), s.clone(), share.to_string(), "1".into()]),
        );
        return csv(&["kind", "name", "availability", "sessions"], rows);
    }
    Ok(axum::Json(json!({
        "by": q.by,
        "window": window,
        "from": r.from.to_rfc3339(),
        "to": r.to.to_rfc3339(),
        "groups": groups.iter().map(|(value, a, n)| json!({
            "value": value,
            "availability": a.share(),
            "sessions": n,
        })).collect::<Vec<_>>(),
        "below": under.iter().map(|(s, share)| json!({
            "session": s,
            "availability": share,
        })).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// `GET /sessions/{id}/history?from&to&step`: per step, time in each state,
/// messages in and out, reconnects (and how long the outages that ended
/// lasted), missed heartbeats and the mean round trip. Per-session figures
/// are kept by the hour: the step is 1h or 1d.
pub(super) async fn session_history(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Queried<HistoryQuery>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let id = parse_id(&id)?;
    let now = clock::now();
    let (r, step) = steps(&q, now, &[HOUR_MS, 24 * HOUR_MS])?;
    let timeline = timeline_for(&state, &caller, &id, r.from, r.to).await?;
    let reader = state.model.history();
    let (read, from, to) = (id.clone(), r.from, r.to);
    let life = caller.current_life_only();
    let hours =
        blocking(move || history::hours_of(reader.as_ref(), &read, (from, to), life)).await?;
    let mut points = Vec::new();
    let mut rows = hours.iter().peekable();
    let mut at = r.from.as_millis();
    while at < r.to.as_millis() {
        let (a, b) = (
            Timestamp::from_millis(at),
            Timestamp::from_millis(at + step),
        );
        let spent = timeline.spent(a, b, now);
        let outages = timeline.outages(a, b, now);
        let mut sums = history::HourFigures::default();
        while let Some(h) = rows.next_if(|h| h.hour_ms < at + step) {
            sums.add(&h.figures);
        }
        points.push((at, spent, outages, sums));
        at += step;
    }
    if wants_csv(&headers) {
        let mut head = vec!["at"];
        head.extend(SessionState::ALL.iter().map(|s| s.as_str()));
        head.extend([
            "messagesIn",
            "messagesOut",
            "reconnects",
            "outages",
            "outageMsMax",
            "heartbeatsMissed",
            "rttMs",
            "acksDelivered",
            "sendsFailed",
            "deliveryMs",
        ]);
        let rows = points.iter().map(|(at, spent, outages, s)| {
            let mut row = vec![Timestamp::from_millis(*at).to_rfc3339()];
            row.extend(spent.iter().map(u64::to_string));
            row.extend([
                s.messages_in.to_string(),
                s.messages_out.to_string(),
                s.reconnects.to_string(),
                outages.len().to_string(),
                outages
                    .iter()
                    .map(|o| o.1)
                    .max()
                    .map_or(String::new(), |m| m.to_string()),
                s.heartbeats_missed.to_string(),
                s.mean_rtt_ms().map_or(String::new(), |m| m.to_string()),
                s.acks_delivered.to_string(),
                s.sends_failed.to_string(),
                s.mean_delivery_ms()
                    .map_or(String::new(), |m| m.to_string()),
            ]);
            row
        });
        return csv(&head, rows);
    }
    let points: Vec<Value> = points
        .iter()
        .map(|(at, spent, outages, s)| {
            let states: BTreeMap<&str, u64> = SessionState::ALL
                .iter()
                .map(|st| (st.as_str(), spent[st.index()]))
                .collect();
            json!({
                "at": Timestamp::from_millis(*at).to_rfc3339(),
                "stateMs": states,
                "messagesIn": s.messages_in,
                "messagesOut": s.messages_out,
                "reconnects": s.reconnects,
                "outages": outages.iter().map(|(start, ms)| json!({
                    "at": start.to_rfc3339(),
                    "ms": ms,
                })).collect::<Vec<_>>(),
                "heartbeatsMissed": s.heartbeats_missed,
                "rttMs": s.mean_rtt_ms(),
                "acksDelivered": s.acks_delivered,
                "sendsFailed": s.sends_failed,
                "deliveryMs": s.mean_delivery_ms(),
            })
        })
        .collect();
    Ok(axum::Json(json!({
        "session": id,
        "from": r.from.to_rfc3339(),
        "to": r.to.to_rfc3339(),
        "step": step_name(step),
        "points": points,
    }))
    .into_response())
}
