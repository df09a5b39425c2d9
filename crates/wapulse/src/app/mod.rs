//! The application's shared state: what every handler, page and the fast
//! path read, built once by `startup`.
//!
//! It sits below the HTTP layer (`routes/`, `web/`), which only reads it;
//! background parts (the cluster, the demo, the evaluator) never take it:
//! they are given the narrow handles they use (the [`Model`], the
//! [`Alerting`] handle, plain settings). Writes that may go through the
//! cluster's stream are chosen here, once ([`AppState::accept`],
//! [`AppState::save_silence`]).

use std::sync::Arc;
use std::time::Instant;

use wapulse_core::{BatchOutcome, Event, Silence, Timestamp};

use crate::alerting::Alerting;
use crate::cluster::Cluster;
use crate::config::Settings;
use crate::model::Model;
use crate::priority::ingest::Pool;
use crate::probes::Probes;
use crate::telemetry::Telemetry;

/// Shared by every handler.
pub struct AppState {
    /// Checked settings.
    pub settings: Settings,
    /// The session model.
    pub model: Model,
    /// Our own HTTP metrics, and the registry every part registers in.
    pub telemetry: Telemetry,
    /// Probes of the services around the sessions.
    pub probes: Probes,
    /// The alert evaluator and the notifiers.
    pub alerting: Arc<Alerting>,
    /// Low-priority threads that parse ingest batches.
    pub parser: Pool,
    /// Process start, for uptime.
    pub started: Instant,
    /// Process start, as a timestamp.
    pub started_at: Timestamp,
    /// Cluster mode: this replica's membership (none: embedded mode).
    pub cluster: Option<Arc<Cluster>>,
    /// `/openapi.json`: the API's description for the settings in force.
    pub openapi: serde_json::Value,
}

/// The handle handlers receive.
pub type Shared = Arc<AppState>;

/// A write that was not taken: nothing was applied; retry later.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

impl AppState {
    /// Takes a checked batch. Embedded mode: the model commits and applies
    /// it. Cluster mode: it is published to the stream and applied by
    /// every replica as it comes back; refused while the stream is
    /// unreachable.
    pub async fn accept(
        &self,
        events: Vec<Event>,
        received: Timestamp,
    ) -> Result<BatchOutcome, Unavailable> {
        match &self.cluster {
            Some(cluster) => cluster
                .publish_events(events, received)
                .await
                .map_err(|e| Unavailable(e.to_string())),
            None => self
                .model
                .ingest(events, received)
                .await
                .map_err(|e| Unavailable(e.to_string())),
        }
    }

    /// Saves a silence (new, changed or expired): through the stream in
    /// cluster mode, so every replica holds the same silences.
    pub async fn save_silence(&self, silence: Silence) -> Result<(), Unavailable> {
        match &self.cluster {
            Some(cluster) => cluster
                .publish_silence(&silence)
                .await
                .map_err(|e| Unavailable(format!("the silence was not saved: {e}"))),
            None => self
                .alerting
                .put_silence(silence)
                .await
                .map_err(|e| Unavailable(format!("the silence was not saved: {e}"))),
        }
    }
}
