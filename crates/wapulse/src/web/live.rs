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

use crate::app::Shared;
use crate::tenancy::Caller;

/// A tenant's counts, judged now over its own sessions.
pub(super) fn tenant_counts(state: &Shared, caller: &Caller) -> crate::tenancy::Counts {
    caller.counts(
        &state.model.snapshot(),
        &state.settings.thresholds,
        crate::clock::now(),
        &state.alerting.snapshot(),
    )
}

/// A tenant's tick: its own counts, and a version that moves with them
/// only (never with other tenants' events).
fn tenant_tick(state: &Shared, caller: &Caller) -> serde_json::Value {
    let c = tenant_counts(state, caller);
    let (r, a) = (&c.rollup, &c.alerts);
    let version = format!(
        "t-{:?}-{}-{}-{}",
        c.by_state_level, a.firing, a.pending, a.silenced
    );
    json!({
        "version": version,
        "sessions": r.sessions,
        "connected": r.by_state[wapulse_core::SessionState::Connected.index()],
        "ok": r.by_level[Level::Ok as usize],
        "warning": r.by_level[Level::Warning as usize],
        "critical": r.by_level[Level::Critical as usize],
        "firing": a.firing,
        "pending": a.pending,
        "silenced": a.silenced,
        "incidents": a.incidents,
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
