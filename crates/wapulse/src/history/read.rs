//! What the history answers, and the reader the routes call (on blocking
//! threads: it touches the disk).

use wapulse_core::availability::Timeline;
use wapulse_core::{SessionId, SessionState, Timestamp};

use super::{Counts, HourFigures};

/// One bucket of the fleet's history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetPoint {
    /// The bucket's start.
    pub at_ms: i64,
    /// Events and messages in the bucket (by event time).
    pub counts: Counts,
    /// Sessions by state ([`SessionState::ALL`] order) at the bucket's end
    /// (`None` before the first sample).
    pub states: Option<[u64; SessionState::ALL.len()]>,
    /// Sessions by level and alerts firing: the bucket's last sample.
    pub levels: Option<LevelSample>,
    /// That sample's detail (JSON: alerts firing by code and level,
    /// notifications by outcome in its minute).
    pub detail: Option<String>,
}

/// One minute's sample of levels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LevelSample {
    /// The minute's start.
    pub minute_ms: i64,
    /// Sessions at each level.
    pub ok: u64,
    /// Sessions at warning.
    pub warning: u64,
    /// Sessions at critical.
    pub critical: u64,
    /// Alerts firing.
    pub alerts_firing: u64,
}

/// One session's figures in one hour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionHour {
    /// The hour's start.
    pub hour_ms: i64,
    /// What the session did in it.
    pub figures: HourFigures,
}

/// Why a history read failed.
#[derive(Debug, thiserror::Error)]
#[error("the history could not be read: {0}")]
pub struct ReadFailed(pub String);

/// Reads of the history. May touch the disk: callers run it off the async
/// workers.
pub trait HistoryReader: Send + Sync {
    /// One session's timeline for `[from, to)`.
    fn timeline(
        &self,
        session: &SessionId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Timeline, ReadFailed>;
    /// Every session's timeline for `[from, to)`, one at a time.
    fn timelines(
        &self,
        from: Timestamp,
        to: Timestamp,
        each: &mut dyn FnMut(&str, Timeline),
    ) -> Result<(), ReadFailed>;
    /// The fleet in buckets of `step_ms` over `[from, to)`.
    fn fleet(
        &self,
        from: Timestamp,
        to: Timestamp,
        step_ms: i64,
    ) -> Result<Vec<FleetPoint>, ReadFailed>;
    /// One session's hour rows in `[from, to)`.
    fn session_hours(
        &self,
        session: &SessionId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<SessionHour>, ReadFailed>;
    /// When `session` was last retired, if it ever was: its current life
    /// began after.
    fn retired_at(&self, session: &SessionId) -> Result<Option<Timestamp>, ReadFailed>;
}
