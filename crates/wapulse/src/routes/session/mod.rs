//! The seed's session API: health, observe, alerts, thresholds, for the
//! default session and for any session by id, plus the session list.
//!
//! Response types here are the wire format (camelCase, `…Formatted`
//! durations, `null` for unknown times); they are built from core snapshots
//! so the JSON changes only when these files do.
//!
//! - `health`: `/session/health` (also answered by the fast path).
//! - `alerts`: `/session/alerts` and the thresholds.
//! - `observe`: `/session/observe`, every section.
//! - `list`: `/sessions`, filtered and paged.
//! - `journal`: `/sessions/{id}/events`, read from the store.
//! - `retire`: `DELETE /sessions/{id}`.

pub(super) mod alerts;
pub(super) mod health;
pub(crate) mod journal;
pub(crate) mod list;
pub(crate) mod observe;
pub(super) mod retire;

use std::sync::Arc;

use wapulse_core::{Session, SessionId, Timestamp};

use super::ApiError;
use crate::app::Shared;
use crate::tenancy::Caller;

/// Most rows one page of `/sessions` or of a journal holds.
const MAX_PAGE: usize = 1000;

pub(crate) use list::label_filter;
pub(crate) use observe::observe_view;

/// A path id, checked: 400 naming `id` when malformed.
pub(super) fn parse_id(id: &str) -> Result<SessionId, ApiError> {
    SessionId::parse(id).map_err(|e| ApiError::BadRequest {
        message: e.to_string(),
        index: None,
        field: Some("id"),
    })
}

/// The answer for a session that is unknown, or outside the caller's
/// scope: the same, so a scoped token learns nothing of other tenants.
pub(crate) fn unknown(id: &str) -> ApiError {
    ApiError::NotFound(format!("no session `{id}` has been seen"))
}

/// Finds a session by a path id: 400 when malformed, 404 when unknown or
/// outside the caller's scope.
pub(crate) fn find(state: &Shared, caller: &Caller, id: &str) -> Result<Arc<Session>, ApiError> {
    let id = parse_id(id)?;
    state
        .model
        .snapshot()
        .get(id.as_str())
        .filter(|s| caller.sees(s))
        .cloned()
        .ok_or_else(|| unknown(id.as_str()))
}

/// The session `/session/*` answers for: the configured default session,
/// or, for a token scoped to a list of sessions, the first of its list
/// (404 when outside the caller's scope, or never seen by a scoped one).
pub(super) fn default_session(state: &Shared, caller: &Caller) -> Result<Arc<Session>, ApiError> {
    let id = &state.settings.default_session;
    let Some(scope) = caller.scope() else {
        return Ok(match state.model.snapshot().get(id.as_str()) {
            Some(s) => s.clone(),
            // The model creates the default session at start; this is only a
            // guard should that ever change.
            None => Arc::new(Session::new(id.clone(), state.started_at)),
        });
    };
    let id = scope.first_session().unwrap_or(id);
    find(state, caller, id.as_str())
}

pub(super) fn ts(t: Option<Timestamp>) -> Option<String> {
    t.map(Timestamp::to_rfc3339)
}

pub(super) fn parse_limit(text: Option<&str>) -> Result<usize, ApiError> {
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
