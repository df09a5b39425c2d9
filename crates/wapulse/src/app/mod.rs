//! The application's shared state: what every handler, page and the fast
//! path read, built once by `startup`.
//!
//! It sits below the HTTP layer (`routes/`, `web/`), which only reads it;
//! background parts (the cluster, the demo, the evaluator) never take it:
//! they are given the narrow handles they use (the [`Model`], the
//! [`Alerting`] handle, plain settings). Writes that may go through the
//! cluster's stream are chosen here, once ([`AppState::accept`],
//! [`AppState::save_silence`]).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use wapulse_core::{BatchOutcome, Event, EventKind, Silence, Timestamp};

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
    /// The named tokens (`[[tokens]]`) in force.
    pub keyring: Arc<crate::tenancy::Keyring>,
    /// Admin actions and new token addresses, in the store.
    pub audit: crate::tenancy::AuditLog,
    /// The overview's last day of fleet hours, read at most once a minute.
    pub recent_hours: Arc<crate::history::recent::RecentHours>,
}

/// The handle handlers receive.
pub type Shared = Arc<AppState>;

/// A write that was not taken: nothing was applied; retry later.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// Why a batch of events was not taken; nothing of it was applied.
#[derive(Debug, thiserror::Error)]
pub enum NotTaken {
    /// The store or the stream refused the write: retry later.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// The batch would take the fleet past a cap (`max_sessions`, the
    /// platform metric names): it names the cap.
    #[error("{0}")]
    OverCapacity(String),
    /// The event at this index would retire the default session, which
    /// `/session/health` answers for.
    #[error("event {0} retires the default session")]
    RetiresDefault(usize),
}

/// Most distinct platform counter and gauge names (each batch copies the
/// map, so its size is every batch's cost).
pub const MAX_PLATFORM_METRICS: usize = 1000;

impl AppState {
    /// Takes a checked batch. Embedded mode: the model commits and applies
    /// it. Cluster mode: it is published to the stream and applied by
    /// every replica as it comes back; refused while the stream is
    /// unreachable.
    pub async fn accept(
        &self,
        events: Vec<Event>,
        received: Timestamp,
    ) -> Result<BatchOutcome, NotTaken> {
        self.room_for(&events)?;
        Ok(self.write(events, received).await?)
    }

    /// Refuses a batch that would take the fleet past `max_sessions` or
    /// past [`MAX_PLATFORM_METRICS`] names, or retire the default session. Judged against the published
    /// model when the batch arrives: batches arriving together can pass it
    /// together, by at most their own new sessions.
    fn room_for(&self, events: &[Event]) -> Result<(), NotTaken> {
        let snapshot = self.model.snapshot();
        let mut new_sessions = HashSet::new();
        let mut new_names = HashSet::new();
        for (i, e) in events.iter().enumerate() {
            if let EventKind::Retire { .. } = e.kind {
                if e.session == self.settings.default_session {
                    return Err(NotTaken::RetiresDefault(i));
                }
                // A retire never adds a session.
                continue;
            }
            if snapshot.get(e.session.as_str()).is_none() {
                new_sessions.insert(e.session.as_str());
            }
            let platform = snapshot.platform();
            match &e.kind {
                EventKind::Counter { name, .. } if !platform.counters.contains_key(name) => {
                    new_names.insert(("counter", name.as_str()));
                }
                EventKind::Gauge { name, .. } if !platform.gauges.contains_key(name) => {
                    new_names.insert(("gauge", name.as_str()));
                }
                _ => {}
            }
        }
        let max = self.settings.max_sessions;
        if !new_sessions.is_empty() && snapshot.len() + new_sessions.len() > max {
            return Err(NotTaken::OverCapacity(format!(
                "this batch would add {} sessions to {}; max_sessions is {max} (nothing was \
                 applied; known sessions keep ingesting)",
                new_sessions.len(),
                snapshot.len()
            )));
        }
        let platform = snapshot.platform();
        let names = platform.counters.len() + platform.gauges.len();
        if !new_names.is_empty() && names + new_names.len() > MAX_PLATFORM_METRICS {
            return Err(NotTaken::OverCapacity(format!(
                "this batch would add {} platform metric names to {names}; at most \
                 {MAX_PLATFORM_METRICS} counters and gauges are kept (nothing was applied)",
                new_names.len()
            )));
        }
        Ok(())
    }

    async fn write(
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
