//! What this wapulse is: `/version` (build information) and
//! `/openapi.json` (the API's description, built once at start from the
//! route table and the settings in force).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::app::Shared;

pub(super) async fn version() -> Json<Value> {
    Json(json!({
        "build": crate::build::NUMBER,
        "version": env!("CARGO_PKG_VERSION"),
        "commit": crate::build::COMMIT,
        "buildTime": crate::build::TIME,
        "name": "wapulse",
    }))
}

pub(super) async fn openapi(State(state): State<Shared>) -> Json<Value> {
    Json(state.openapi.clone())
}
