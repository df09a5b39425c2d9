//! `GET /v1/audit`: the audit log, newest first (admin tokens; a scoped
//! admin token reads its own records only).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use crate::app::Shared;
use crate::tenancy::Caller;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    limit: Option<usize>,
    before: Option<i64>,
}

/// `GET /v1/audit?limit=&before=`: `{entries, next}`; `next` is the
/// `before` of the next page.
pub(super) async fn list(
    State(state): State<Shared>,
    caller: Caller,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = super::alerts::record_limit(q.limit)?;
    let who = caller.scope().map(|_| caller.who());
    let entries = state.audit.read(limit, q.before, who).await.map_err(|e| {
        tracing::error!(error = %e, "cannot read the audit log");
        ApiError::Internal("the audit log could not be read; the server log says why".into())
    })?;
    let next = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    Ok(Json(json!({ "entries": entries, "next": next })))
}
