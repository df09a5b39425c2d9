//! `/sessions/{id}/events`: one session's journal, newest first, read
//! from the store off the async workers; a retired session's too (`retired:
//! true`) until retention drops it.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use wapulse_core::SessionId;

use super::{parse_id, parse_limit};
use crate::app::Shared;
use crate::history::HistoryReader;
use crate::routes::ApiError;
use crate::store::{JournalReader, StoreError};
use crate::tenancy::Caller;

/// Where a caller that sees only a session's current life
/// ([`Caller::current_life_only`]) starts reading its journal: after the
/// sequence number of its last retirement (`None`: from the beginning).
/// The history says cheaply whether it was ever retired; only then is the
/// journal read back, over the current life, for where. Blocking.
pub(crate) fn life_after(
    history: &dyn HistoryReader,
    journal: &dyn JournalReader,
    id: &SessionId,
    current_life: bool,
) -> Result<Option<u64>, StoreError> {
    if !current_life {
        return Ok(None);
    }
    match history.retired_at(id) {
        Ok(None) => Ok(None),
        Ok(Some(_)) => journal.retired_seq(id),
        Err(e) => Err(StoreError::Failed(e.to_string())),
    }
}

/// `GET /sessions/{id}/events` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::routes) struct JournalQuery {
    limit: Option<String>,
    before: Option<String>,
}

/// `GET /sessions/{id}/events`: the session's journal, newest first. The
/// one read that touches the disk, so it runs on the blocking pool.
pub(in crate::routes) async fn events(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<JournalQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let id = parse_id(&id)?;
    // A retired session's journal stays readable until retention; to a
    // scoped caller only when its scope lists the session (a retired
    // session's labels are gone with it).
    let snapshot = state.model.snapshot();
    let retired = snapshot.get(id.as_str()).is_none();
    if !caller.sees_id(&snapshot, id.as_str()) {
        return Err(super::unknown(id.as_str()));
    }
    let limit = parse_limit(q.limit.as_deref())?;
    let before = match q.before.as_deref() {
        None => None,
        Some(b) => Some(b.parse::<u64>().map_err(|_| ApiError::BadRequest {
            message: format!("before `{b}` must be a sequence number (a whole number)"),
            index: None,
            field: Some("before"),
        })?),
    };
    let (journal, history) = (state.model.journal(), state.model.history());
    let read = id.clone();
    let life = caller.current_life_only();
    // One row more than the page: a cursor is given only when there is
    // more to read (never one that leads to an empty page). A tenant reads
    // the current life only: rows up to its last retirement are not there.
    let mut rows = tokio::task::spawn_blocking(move || {
        let after = life_after(history.as_ref(), journal.as_ref(), &read, life)?;
        journal.session_events(&read, limit + 1, (after, before))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("history read failed: {e}")))?
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    if retired && rows.is_empty() && before.is_none() {
        return Err(ApiError::NotFound(format!(
            "no session `{id}` has been seen"
        )));
    }
    let next_before = more.then(|| rows.last().map(|r| r.seq)).flatten();
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
        "session": id,
        "retired": retired,
        "count": events.len(),
        "events": events,
        "nextBefore": next_before,
    })))
}
