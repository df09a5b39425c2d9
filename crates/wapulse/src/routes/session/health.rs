//! `/session/health` and `/sessions/{id}/health`: the verdict, for load
//! balancers and the seed's health script.

use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use wapulse_core::{Level, Session, SessionState, Thresholds, Timestamp, evaluate};

use super::{default_session, find};
use crate::app::Shared;
use crate::clock;
use crate::routes::ApiError;
use crate::tenancy::Caller;

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
pub(super) fn heartbeat_ok(s: &Session, t: &Thresholds, now: Timestamp) -> bool {
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

pub(in crate::routes) async fn health_default(
    State(state): State<Shared>,
    caller: Caller,
) -> Response {
    let started = Instant::now();
    match default_session(&state, &caller) {
        Ok(s) => health_response(&state, &s, started),
        Err(e) => e.into_response(),
    }
}

/// `/session/health`'s answer to an unscoped caller, for the routed
/// handler and the fast path alike ([`super::fast`]).
pub(in crate::routes) fn health_default_response(state: &Shared, started: Instant) -> Response {
    match default_session(state, &Caller::default()) {
        Ok(s) => health_response(state, &s, started),
        Err(e) => e.into_response(),
    }
}

pub(in crate::routes) async fn health(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let s = find(&state, &caller, &id)?;
    Ok(health_response(&state, &s, started))
}
