//! `/sessions`: every session, filtered by status, state, alert code and
//! label, in id order, paged.

use axum::Json;
use axum::extract::{Query, State};
use serde::Serialize;
use wapulse_core::{
    AlertCode, Assessment, Labels, Level, Session, SessionId, SessionState, evaluate,
};

use super::parse_limit;
use crate::app::Shared;
use crate::clock;
use crate::routes::ApiError;
use crate::tenancy::Caller;

/// `GET /sessions` query: `status`, `state`, `code`, `limit`, `after` at
/// most once each, `label=name:value` any number of times (every one must
/// match).
#[derive(Default)]
struct ListQuery {
    status: Option<String>,
    state: Option<String>,
    code: Option<String>,
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
                "code" => &mut q.code,
                "limit" => &mut q.limit,
                "after" => &mut q.after,
                "label" => {
                    q.labels.push(label_filter(&value)?);
                    continue;
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unknown query parameter `{other}` (status, state, code, label, limit, after)"
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
pub(in crate::routes) struct ListView {
    total: usize,
    count: usize,
    next_after: Option<SessionId>,
    sessions: Vec<SessionRow>,
}

pub(in crate::routes) async fn list(
    State(state): State<Shared>,
    caller: Caller,
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
                 qr_required, logged_out, circuit_open, stopped"
            ),
            index: None,
            field: Some("state"),
        })?),
    };
    let code = match q.code.as_deref() {
        None => None,
        Some(c) => Some(
            AlertCode::ALL
                .into_iter()
                .find(|k| k.as_str() == c)
                .ok_or_else(|| ApiError::BadRequest {
                    message: format!(
                        "code `{c}` is not an alert code (one of {})",
                        AlertCode::ALL.map(|k| k.as_str()).join(", ")
                    ),
                    index: None,
                    field: Some("code"),
                })?,
        ),
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
    // A scoped caller's list is filtered like a label filter: its counts
    // come from the sessions it sees, never from the fleet's indexes.
    let by_label = !q.labels.is_empty() || caller.scope().is_some();
    let selected = |s: &Session| {
        caller.sees(s)
            && wanted_state.is_none_or(|w| s.state == w)
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
        (status.is_none_or(|w| a.level == w)
            && code.is_none_or(|c| a.alerts.iter().any(|x| x.code == c)))
        .then_some(a)
    };
    // By code or by level (warning, critical), once the evaluator has
    // judged every change of this snapshot, its indexes give the candidates
    // in id order and the totals (O(page), not a judgment of the fleet);
    // each row is judged now. Before that, the fleet is judged here.
    let judged = state.alerting.snapshot();
    let indexed = judged.judged(&snapshot);
    let after = q.after.as_deref();
    // A scoped caller walks its own sessions (kept per token), never the
    // fleet's: its page costs its tenant's size.
    let members = caller.members(&snapshot);
    let own = members.as_deref().map(|ids| {
        let start = after.map_or(0, |a| ids.partition_point(|id| id.as_str() <= a));
        (&ids[start..], ids)
    });
    let candidates: Box<dyn Iterator<Item = &std::sync::Arc<Session>>> = match (code, status) {
        _ if let Some((rest, _)) = own => {
            Box::new(rest.iter().filter_map(|id| snapshot.get(id.as_str())))
        }
        _ if !indexed => Box::new(snapshot.sessions_after(after)),
        (Some(c), _) => {
            let (alerts, _) = judged.active.with_code_by_session(c.as_str(), after);
            Box::new(alerts.filter_map(|a| snapshot.get(&a.session)))
        }
        (None, Some(l)) if let Some((ids, _)) = judged.levels.at(l, after) => {
            Box::new(ids.iter().filter_map(|id| snapshot.get(id.as_str())))
        }
        _ => Box::new(snapshot.sessions_after(after)),
    };
    let total = match (code, status, wanted_state) {
        (None, None, _) if let Some((_, all)) = own => all
            .iter()
            .filter_map(|id| snapshot.get(id.as_str()))
            .filter(|s| selected(s))
            .count(),
        _ if let Some((_, all)) = own => all
            .iter()
            .filter_map(|id| snapshot.get(id.as_str()))
            .filter(|s| matching(s).is_some())
            .count(),
        (Some(_), _, _) | (_, Some(_), _) if !indexed => snapshot
            .sessions()
            .filter(|s| matching(s).is_some())
            .count(),
        (Some(c), _, _) => {
            let (alerts, all) = judged.active.with_code_by_session(c.as_str(), None);
            if status.is_none() && wanted_state.is_none() && !by_label {
                all
            } else {
                alerts
                    .filter_map(|a| snapshot.get(&a.session))
                    .filter(|s| matching(s).is_some())
                    .count()
            }
        }
        (None, Some(l), state) if !by_label => match state {
            Some(w) => judged.by_state_level[w.index()][l as usize],
            None => judged.by_level[l as usize],
        },
        (None, Some(l), _) => match judged.levels.at(l, None) {
            Some((ids, _)) => ids
                .iter()
                .filter_map(|id| snapshot.get(id.as_str()))
                .filter(|s| selected(s))
                .count(),
            None => snapshot
                .sessions()
                .filter(|s| matching(s).is_some())
                .count(),
        },
        // By label: a scan, but no evaluation.
        (None, None, _) if by_label => snapshot.sessions().filter(|s| selected(s)).count(),
        (None, None, Some(w)) => snapshot.by_state()[w.index()],
        (None, None, None) => snapshot.len(),
    };
    let mut page: Vec<SessionRow> = Vec::with_capacity(limit.min(snapshot.len()));
    let mut more = false;
    for s in candidates {
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
