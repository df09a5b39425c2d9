//! The one place writes go through, and the snapshot every read comes from.
//!
//! Writers take a short lock, apply a whole validated batch, and publish a
//! new [`FleetSnapshot`] through `arc-swap`; readers load the latest
//! snapshot without any lock, so a flood of ingest never blocks a health
//! check and a reader never sees half a batch.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use wapulse_core::{BatchOutcome, Event, Fleet, FleetSnapshot, SessionId, Thresholds, Timestamp};

/// The session model of the running service.
pub struct Model {
    // A std Mutex: the critical section is pure CPU work (no await inside),
    // short, and never held across I/O.
    writer: Mutex<Fleet>,
    published: ArcSwap<FleetSnapshot>,
}

impl Model {
    /// An empty model with `default_session` present from `now`, so that
    /// `/session/health` answers before its gateway says anything.
    pub fn new(
        thresholds: Thresholds,
        dedup_capacity: usize,
        default_session: &SessionId,
        now: Timestamp,
    ) -> Self {
        let mut fleet = Fleet::with_dedup_capacity(thresholds, dedup_capacity);
        fleet.ensure_session(default_session, now);
        let published = ArcSwap::from_pointee(fleet.snapshot());
        Self {
            writer: Mutex::new(fleet),
            published,
        }
    }

    /// The latest published view. Lock-free.
    pub fn snapshot(&self) -> Arc<FleetSnapshot> {
        self.published.load_full()
    }

    /// Applies a validated batch as a whole and publishes the result.
    pub fn apply(&self, events: &[Event]) -> BatchOutcome {
        let mut fleet = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let outcome = fleet.apply_all(events);
        self.published.store(Arc::new(fleet.snapshot()));
        outcome
    }
}
