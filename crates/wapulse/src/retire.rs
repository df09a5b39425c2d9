//! Retiring sessions that ended on purpose: `[sessions] retire_after`.
//!
//! A retired session leaves the model (`EventKind::Retire`): every list,
//! count and `/metrics` series; the evaluator resolves its alerts as
//! retired; its journal stays until retention; a later event starts it
//! afresh. Retires are events, so they are journaled, replayed and (in
//! cluster mode) go through the stream to every replica.
//!
//! `DELETE /sessions/{id}` and the gateways' delete signals retire one
//! session at a time. Here is the sweep that retires, on its own, the
//! sessions nobody deleted: no event for `retire_after` (off by default),
//! and not connected. The configured default session is never retired.
//!
//! Every replica sweeps; a session's retire carries an idempotency key
//! made of its last event's instant, so the same retire from several
//! replicas (or two sweeps) is applied once, and a session that came back
//! and went quiet again is retired again.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use serde::Deserialize;
use wapulse_core::{DurationMs, Event, EventKind, FleetSnapshot, SessionId, SessionState};

use crate::clock;

/// `[sessions]`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSessions {
    retire_after: Option<DurationMs>,
}

/// `[sessions]`, checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionSettings {
    /// Retire a session with no event for this long that is not connected
    /// (none: never).
    pub retire_after: Option<DurationMs>,
}

impl SessionSettings {
    /// Checks the section; `env_retire_after` is `WAPULSE_RETIRE_AFTER`,
    /// which wins over the file.
    pub fn check(raw: Option<RawSessions>, env_retire_after: Option<String>) -> Result<Self> {
        let from_env = match env_retire_after {
            Some(text) => Some(DurationMs::parse(&text).map_err(|e| {
                anyhow::anyhow!(
                    "WAPULSE_RETIRE_AFTER: `{text}` is not a duration like 30d or 12h ({e})"
                )
            })?),
            None => None,
        };
        let retire_after = from_env.or(raw.and_then(|r| r.retire_after));
        if retire_after.is_some_and(|d| d < DurationMs::from_secs(1)) {
            bail!(
                "sessions.retire_after (or WAPULSE_RETIRE_AFTER): must be at least 1s; leave it \
                 out to never retire sessions by age"
            );
        }
        Ok(Self { retire_after })
    }
}

/// The retire events due at `now`: one per session other than `default`
/// that is not connected and has had no event for `after`.
pub fn due(
    snapshot: &FleetSnapshot,
    after: DurationMs,
    now: wapulse_core::Timestamp,
    default: &SessionId,
) -> Vec<Event> {
    snapshot
        .sessions()
        .filter(|s| {
            s.state != SessionState::Connected
                && s.id() != default
                && s.last_event_at.plus(after) <= now
        })
        .map(|s| Event {
            session: s.id().clone(),
            at: now,
            id: Some(format!("retire_after:{}", s.last_event_at.as_millis()).into()),
            kind: EventKind::Retire {
                reason: Some(format!("no event for {after} (retire_after)").into()),
            },
        })
        .collect()
}

/// Takes a batch of retires (the application's write path: the model, or
/// the cluster's stream); an error is logged and the sweep tries again.
pub type Submit = Arc<
    dyn Fn(Vec<Event>) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync,
>;

/// Sweeps every `period(after)` until `fleet` gives nothing (the
/// application is gone), submitting at most `batch` retires at a time.
pub async fn sweep(
    after: DurationMs,
    default: SessionId,
    batch: usize,
    fleet: impl Fn() -> Option<Arc<FleetSnapshot>>,
    submit: Submit,
) {
    loop {
        tokio::time::sleep(period(after)).await;
        let Some(snapshot) = fleet() else {
            return;
        };
        let events = due(&snapshot, after, clock::now(), &default);
        drop(snapshot);
        for chunk in events.chunks(batch.max(1)) {
            let n = chunk.len();
            match submit(chunk.to_vec()).await {
                Ok(()) => tracing::info!(sessions = n, after = %after, "retired idle sessions"),
                Err(e) => {
                    tracing::warn!(error = %e, "idle sessions were not retired; trying again later");
                    break;
                }
            }
        }
    }
}

/// How often to look: a quarter of `after`, between 250 ms and a minute.
fn period(after: DurationMs) -> Duration {
    Duration::from_millis((after.as_millis() / 4).clamp(250, 60_000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wapulse_core::{Fleet, Thresholds, Timestamp};

    fn event(session: &str, at: i64, state: SessionState) -> Event {
        Event {
            session: SessionId::parse(session).unwrap(),
            at: Timestamp::from_millis(at),
            id: None,
            kind: EventKind::State {
                state,
                reason: None,
            },
        }
    }

    #[test]
    fn only_idle_sessions_that_are_not_connected_are_due_never_the_default() {
        let mut fleet = Fleet::new(Thresholds::default());
        fleet.apply_all(&[
            event("idle", 1_000, SessionState::Disconnected),
            event("stopped", 1_000, SessionState::Stopped),
            event("connected", 1_000, SessionState::Connected),
            event("recent", 50_000, SessionState::Disconnected),
            event("default", 1_000, SessionState::Disconnected),
        ]);
        let snap = fleet.snapshot();
        let default = SessionId::parse("default").unwrap();
        let after = DurationMs::from_secs(60);
        let mut due_ids: Vec<String> = due(&snap, after, Timestamp::from_millis(61_000), &default)
            .iter()
            .map(|e| e.session.to_string())
            .collect();
        due_ids.sort();
        assert_eq!(due_ids, ["idle", "stopped"]);
        // A millisecond before the bar: nothing.
        assert!(due(&snap, after, Timestamp::from_millis(60_999), &default).is_empty());
        // The key is the last event's instant: the same from every replica.
        let e = &due(&snap, after, Timestamp::from_millis(90_000), &default)[0];
        assert_eq!(e.id.as_deref(), Some("retire_after:1000"));
        assert!(matches!(e.kind, EventKind::Retire { .. }));
    }

    #[test]
    fn retire_after_is_off_by_default_and_checked() {
        assert_eq!(
            SessionSettings::check(None, None).unwrap().retire_after,
            None
        );
        let raw: RawSessions = toml::from_str("retire_after = \"30d\"").unwrap();
        assert_eq!(
            SessionSettings::check(Some(raw), None)
                .unwrap()
                .retire_after,
            Some(DurationMs::from_hours(30 * 24))
        );
        let env = SessionSettings::check(None, Some("2h".into())).unwrap();
        assert_eq!(env.retire_after, Some(DurationMs::from_hours(2)));
        let e = SessionSettings::check(None, Some("soon".into())).unwrap_err();
        assert!(e.to_string().contains("WAPULSE_RETIRE_AFTER"), "{e}");
        let raw: RawSessions = toml::from_str("retire_after = \"0s\"").unwrap();
        let e = SessionSettings::check(Some(raw), None).unwrap_err();
        assert!(e.to_string().contains("retire_after"), "{e}");
        assert!(toml::from_str::<RawSessions>("retire = \"1d\"").is_err());
    }
}
