//! `/session/alerts` and `/sessions/{id}/alerts`: the alerts in force,
//! judged now; and the thresholds they are judged by.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use wapulse_core::{Alert, Assessment, Level, Session, SessionId, Thresholds, evaluate};

use super::{default_session, find, ts};
use crate::app::Shared;
use crate::clock;
use crate::routes::ApiError;
use crate::tenancy::Caller;

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

pub(super) fn alert_views(a: &Assessment) -> Vec<AlertView> {
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

pub(in crate::routes) async fn alerts_default(
    State(state): State<Shared>,
    caller: Caller,
) -> Result<Json<AlertsView>, ApiError> {
    let s = default_session(&state, &caller)?;
    Ok(Json(alerts_view(&state, &s)))
}

pub(in crate::routes) async fn alerts(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AlertsView>, ApiError> {
    let s = find(&state, &caller, &id)?;
    Ok(Json(alerts_view(&state, &s)))
}

pub(in crate::routes) async fn thresholds(State(state): State<Shared>) -> Json<Thresholds> {
    Json(state.settings.thresholds.clone())
}

pub(in crate::routes) async fn thresholds_for(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Thresholds>, ApiError> {
    find(&state, &caller, &id)?;
    Ok(Json(state.settings.thresholds.clone()))
}
