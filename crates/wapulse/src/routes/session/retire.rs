//! `DELETE /sessions/{id}`: retires a session on purpose.
//!
//! The retire is an event like any other (`{"type":"retire"}`): it goes
//! through the journal (and, in cluster mode, the stream), so it is durable,
//! replayed and applied by every replica. The alert evaluator resolves the
//! session's alerts as retired once the model no longer holds it.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use wapulse_core::{Event, EventKind};

use super::find;
use crate::app::Shared;
use crate::clock;
use crate::routes::ApiError;
use crate::tenancy::Caller;

/// The answer to a retire.
#[derive(Serialize)]
pub(in crate::routes) struct Retired {
    /// The session retired.
    retired: String,
    /// When.
    at: String,
}

pub(in crate::routes) async fn retire(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Retired>, ApiError> {
    let session = find(&state, &caller, &id)?;
    let now = clock::now();
    let event = Event {
        session: session.id().clone(),
        at: now,
        id: None,
        kind: EventKind::Retire {
            reason: Some("DELETE /sessions/{id}".into()),
        },
    };
    state.accept(vec![event], now).await?;
    state
        .audit
        .record(
            now,
            &caller.who(),
            "session.retired",
            session.id().as_str(),
            serde_json::json!({ "reason": "DELETE /sessions/{id}" }),
        )
        .await
        .map_err(|e| {
            ApiError::Internal(format!(
                "the session was retired, but its audit record was not written: {e}"
            ))
        })?;
    Ok(Json(Retired {
        retired: session.id().to_string(),
        at: now.to_rfc3339(),
    }))
}
