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
    Path(id): Path<String>,
) -> Result<Json<Retired>, ApiError> {
    let session = find(&state, &id)?;
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
    Ok(Json(Retired {
        retired: session.id().to_string(),
        at: now.to_rfc3339(),
    }))
}
