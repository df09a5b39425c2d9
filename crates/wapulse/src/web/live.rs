//! `/ui/live`: one Server-Sent Event a second with the fleet's counts and a
//! version that moves when anything a page shows may have changed (events
//! applied, the evaluator's verdicts). Pages update their counts from it
//! and fetch their `<main>` again when the version moves, so a page is at
//! most a second behind and costs nothing while nothing happens.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use serde_json::json;
use wapulse_core::Level;

use wapulse_core::event::STATES;

use crate::app::Shared;
use crate::tenancy::Caller;

/// A tenant's counts, judged now over its own sessions (the fleet's come
/// from the evaluator).
pub(super) struct Counts {
    pub(super) sessions: usize,
    pub(super) by_state: [usize; STATES],
    pub(super) by_level: [usize; 3],
    pub(super) by_state_level: [[usize; 3]; STATES],
    pub(super) firing: usize,
    pub(super) pending: usize,
    pub(super) silenced: usize,
}

impl Counts {
    pub(super) fn of(state: &Shared, caller: &Caller) -> Self {
        let snapshot = state.model.snapshot();
        let t = &state.settings.thresholds;
        let now = crate::clock::now();
        let mut c = Counts {
            sessions: 0,
            by_state: [0; STATES],
            by_level: [0; 3],
            by_state_level: [[0; 3]; STATES],
            firing: 0,
            pending: 0,
            silenced: 0,
        };
        let members = caller.members(&snapshot).unwrap_or_default();
        for s in members.iter().filter_map(|id| snapshot.get(id.as_str())) {
            let level = wapulse_core::evaluate(s, t, now).level as usize;
            c.sessions += 1;
            c.by_state[s.state.index()] += 1;
            c.by_level[level] += 1;
            c.by_state_level[s.state.index()][level] += 1;
        }
        let judged = state.alerting.snapshot();
        for a in judged.active.iter().filter(|a| caller.sees_alert(a)) {
            match a.state {
                wapulse_core::Phase::Firing => c.firing += 1,
                _ => c.pending += 1,
            }
            c.silenced += usize::from(a.silenced);
        }
        c
    }
}

/// A tenant's tick: its own counts, and a version that moves with them
/// only (never with other tenants' events).
fn tenant_tick(state: &Shared, caller: &Caller) -> serde_json::Value {
    let c = Counts::of(state, caller);
    let version = format!(
        "t-{:?}-{}-{}-{}",
        c.by_state_level, c.firing, c.pending, c.silenced
    );
    json!({
        "version": version,
        "sessions": c.sessions,
        "connected": c.by_state[wapulse_core::SessionState::Connected.index()],
        "ok": c.by_level[Level::Ok as usize],
        "warning": c.by_level[Level::Warning as usize],
        "critical": c.by_level[Level::Critical as usize],
        "firing": c.firing,
        "pending": c.pending,
        "silenced": c.silenced,
        "incidents": 0,
        "grid": c.by_state_level,
        "ingest": 0,
    })
}

/// The tick's data: what the pages show as counts (a tenant's own).
pub(super) fn tick(state: &Shared, caller: &Caller) -> serde_json::Value {
    if caller.scope().is_some() {
        return tenant_tick(state, caller);
    }
    let snapshot = state.model.snapshot();
    let judged = state.alerting.snapshot();
    let version = format!(
        "{}-{}-{}-{}-{}",
        snapshot.events(),
        snapshot.len(),
        judged.alerts,
        judged.counts.firing,
        judged.counts.pending
    );
    json!({
        "version": version,
        "sessions": snapshot.len(),
        "connected": snapshot.by_state()[wapulse_core::SessionState::Connected.index()],
        "ok": judged.by_level[Level::Ok as usize],
        "warning": judged.by_level[Level::Warning as usize],
        "critical": judged.by_level[Level::Critical as usize],
        "firing": judged.counts.firing,
        "pending": judged.counts.pending,
        "silenced": judged.counts.silenced,
        "incidents": judged.counts.incidents,
        "grid": judged.by_state_level,
        // Events accepted since start: the pages show the rate between ticks.
        "ingest": state.telemetry.ingest_events.with_label_values(&["accepted"]).get(),
    })
}

fn ticks(state: Shared, caller: Caller) -> impl Stream<Item = Result<Event, Infallible>> {
    let interval = tokio::time::interval(Duration::from_secs(1));
    stream::unfold(
        (state, caller, interval),
        |(state, caller, mut interval)| async move {
            interval.tick().await;
            let event = Event::default()
                .event("tick")
                .data(tick(&state, &caller).to_string());
            Some((Ok(event), (state, caller, interval)))
        },
    )
}

pub(super) async fn events(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let caller = match super::login::viewer(&state, &headers, "/ui/live") {
        Ok(c) => c,
        Err(refused) => return *refused,
    };
    Sse::new(ticks(state, caller))
        .keep_alive(KeepAlive::default())
        .into_response()
}
