//! wapulse's own health (the ProSaaS seed's platform endpoints): liveness,
//! readiness, `/api/health`, `/health/{group}` and `/warmup`.
//!
//! Readiness and health are computed from [`Condition`]s: named results
//! that background work keeps current (the model, the store, the cluster,
//! alerting, receivers, probes). Handlers only read them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use wapulse_core::{Level, SessionState};

use super::ApiError;
use crate::app::Shared;
use crate::clock;
use crate::probes::Probe;
use crate::tenancy::Caller;

/// One named condition, as readiness and health report it.
#[derive(Clone, Debug, Serialize)]
pub struct Condition {
    /// Its name (`model`, a probe's name).
    pub name: String,
    /// Whether it passes.
    pub ok: bool,
    /// Whether readiness depends on it.
    #[serde(skip)]
    pub readiness: bool,
    /// Why it fails, or a short note.
    pub detail: String,
}

/// The conditions in force: the session model, the store, and every probe (its
/// cached result; nothing here waits on a dependency).
fn conditions(state: &Shared) -> Vec<Condition> {
    let snapshot = state.model.snapshot();
    let store = state.model.store_health();
    let mut out = vec![
        Condition {
            name: "model".into(),
            ok: true,
            readiness: true,
            detail: format!("{} sessions loaded", snapshot.len()),
        },
        Condition {
            name: "store".into(),
            ok: store.reachable,
            readiness: true,
            detail: match &store.error {
                Some(e) => e.clone(),
                None => format!(
                    "{} schema v{}, {} events in the journal",
                    store.facts.backend, store.facts.schema_version, store.facts.journal_events
                ),
            },
        },
    ];
    if let Some(cluster) = &state.cluster {
        let position = state.model.position();
        let s = cluster.status(position);
        let ready = cluster.readiness_of(&s);
        out.push(Condition {
            name: "cluster".into(),
            ok: ready.is_ok(),
            readiness: true,
            detail: match ready {
                Err(why) => why,
                Ok(()) => format!(
                    "replica {}: applied {} of stream {} ({} behind){}",
                    s.replica,
                    s.position,
                    s.stream,
                    s.lag_events,
                    if s.connected {
                        ""
                    } else {
                        "; NATS unreachable: ingest answers 503"
                    }
                ),
            },
        });
        if let Some(error) = s.error {
            out.push(Condition {
                name: "stream".into(),
                ok: false,
                readiness: false,
                detail: error,
            });
        }
    }
    let judged = state.alerting.snapshot();
    // The evaluator passes at least every second; a snapshot this old means it
    // stopped, and with it every notification.
    let fresh = judged.is_fresh(clock::now(), wapulse_core::DurationMs::from_secs(30));
    out.push(Condition {
        name: "alerting".into(),
        ok: judged.store_error.is_none() && (fresh || judged.evaluated_at.is_none()),
        readiness: false,
        detail: match (&judged.store_error, fresh, judged.evaluated_at) {
            (Some(e), _, _) => format!("alert state not written: {e}"),
            (None, false, Some(at)) => format!("the alert evaluator last ran at {at}"),
            _ => format!(
                "{} alerts firing, {} pending",
                judged.counts.firing, judged.counts.pending
            ),
        },
    });
    for (name, r) in state.alerting.receivers().iter() {
        out.push(Condition {
            name: format!("receiver:{name}"),
            ok: r.status == "ok",
            readiness: false,
            detail: r
                .reason
                .clone()
                .unwrap_or_else(|| format!("{} delivered, {} pending", r.delivered, r.pending)),
        });
    }
    out.extend(state.probes.iter().map(|p| {
        let status = p.status();
        Condition {
            name: p.spec.name.clone(),
            ok: status.ok(),
            readiness: p.spec.readiness,
            detail: status.reason.clone(),
        }
    }));
    out
}

/// A probe as health endpoints show it: its configuration and latest result.
fn probe_json(p: &Probe) -> Value {
    let mut v = serde_json::to_value(&*p.status()).unwrap_or(Value::Null);
    v["kind"] = json!(p.spec.kind);
    v["group"] = json!(p.spec.group);
    v["readiness"] = json!(p.spec.readiness);
    v
}

fn probes_json<'a>(probes: impl Iterator<Item = &'a Arc<Probe>>) -> BTreeMap<String, Value> {
    probes
        .map(|p| (p.spec.name.clone(), probe_json(p)))
        .collect()
}

fn store_summary(state: &Shared) -> Value {
    let store = state.model.store_health();
    let mut v = serde_json::to_value(&*store).unwrap_or(Value::Null);
    v["lastCommitAgeSeconds"] = match store.last_commit_at {
        Some(at) => json!(clock::now().since(at).as_secs_f64()),
        None => Value::Null,
    };
    v["schemaCurrent"] =
        json!(store.facts.schema_version == crate::store::sqlite::schema_versions());
    v
}

pub(super) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub(super) async fn livez() -> &'static str {
    "ok"
}

pub(super) async fn readyz(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let excluded: Vec<&str> = q
        .get("exclude")
        .map(|e| e.split(',').map(str::trim).collect())
        .unwrap_or_default();
    let checks: Vec<Condition> = conditions(&state)
        .into_iter()
        .filter(|c| c.readiness && !excluded.contains(&c.name.as_str()))
        .collect();
    let ready = checks.iter().all(|c| c.ok);
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    if q.contains_key("verbose") {
        let mut text = String::new();
        for c in &checks {
            if c.ok {
                text.push_str(&format!("[+]{} ok\n", c.name));
            } else {
                text.push_str(&format!("[-]{} failed: {}\n", c.name, c.detail));
            }
        }
        for name in &excluded {
            text.push_str(&format!("[+]{name} excluded: ok\n"));
        }
        text.push_str(if ready {
            "readyz check passed\n"
        } else {
            "readyz check failed\n"
        });
        return (code, text).into_response();
    }
    let map: BTreeMap<&str, &str> = checks
        .iter()
        .map(|c| (c.name.as_str(), if c.ok { "ok" } else { "failed" }))
        .collect();
    (code, Json(json!({ "ready": ready, "checks": map }))).into_response()
}

pub(super) async fn api_health(State(state): State<Shared>, caller: Caller) -> Response {
    let checks = conditions(&state);
    let failing_ready = checks.iter().any(|c| c.readiness && !c.ok);
    let failing_any = checks.iter().any(|c| !c.ok);
    let (status, code) = if failing_ready {
        ("unhealthy", StatusCode::SERVICE_UNAVAILABLE)
    } else if failing_any {
        ("degraded", StatusCode::OK)
    } else {
        ("healthy", StatusCode::OK)
    };
    if caller.scope().is_some() {
        // A tenant sees wapulse's status and its own sessions and alerts:
        // no check's detail, probe, receiver or store figure, all of which
        // speak of the whole fleet.
        let body = json!({
            "status": status,
            "sessions": sessions_summary(&state, &caller),
            "alerting": alerting_summary(&state, &caller),
            "version": env!("CARGO_PKG_VERSION"),
            "timestamp": clock::now().to_rfc3339(),
        });
        return (code, Json(body)).into_response();
    }
    let map: BTreeMap<&str, &Condition> = checks.iter().map(|c| (c.name.as_str(), c)).collect();
    let body = json!({
        "status": status,
        "checks": map,
        "probes": probes_json(state.probes.iter()),
        "store": store_summary(&state),
        "sessions": sessions_summary(&state, &caller),
        "alerting": alerting_summary(&state, &caller),
        "receivers": state.alerting.receivers(),
        "cluster": state.cluster.as_ref().map(|c| c.status(state.model.position())),
        "uptime_seconds": state.started.elapsed().as_secs_f64(),
        "version": env!("CARGO_PKG_VERSION"),
        "timestamp": clock::now().to_rfc3339(),
    });
    (code, Json(body)).into_response()
}

pub(super) async fn health(State(state): State<Shared>, caller: Caller) -> Json<Value> {
    let snapshot = state.model.snapshot();
    let sessions = caller
        .members(&snapshot)
        .map_or(snapshot.len(), |ids| ids.len());
    Json(json!({ "status": "ok", "sessions": sessions }))
}

/// A scoped caller's counts, judged now.
fn tenant_counts(state: &Shared, caller: &Caller) -> crate::tenancy::Counts {
    caller.counts(
        &state.model.snapshot(),
        &state.settings.thresholds,
        clock::now(),
        &state.alerting.snapshot(),
    )
}

fn sessions_summary(state: &Shared, caller: &Caller) -> Value {
    let snapshot = state.model.snapshot();
    let judged = state.alerting.snapshot();
    // The evaluator keeps the rollup by difference; reads never judge the
    // fleet, except before its first pass (the first second of a start).
    let rollup = if caller.scope().is_some() {
        tenant_counts(state, caller).rollup
    } else if judged.evaluated_at.is_some() {
        wapulse_core::Rollup {
            sessions: snapshot.len(),
            by_state: snapshot.by_state(),
            by_level: judged.by_level,
            alerts: judged.alerts,
        }
    } else {
        snapshot.rollup(&state.settings.thresholds, clock::now())
    };
    let by_state: BTreeMap<&str, usize> = SessionState::ALL
        .iter()
        .map(|s| (s.as_str(), rollup.in_state(*s)))
        .collect();
    let by_level: BTreeMap<&str, usize> = Level::ALL
        .iter()
        .map(|l| (l.as_str(), rollup.at_level(*l)))
        .collect();
    let worst = Level::ALL
        .into_iter()
        .rev()
        .find(|l| rollup.at_level(*l) > 0)
        .unwrap_or(Level::Ok);
    json!({
        "total": rollup.sessions,
        "connected": rollup.in_state(SessionState::Connected),
        "status": worst,
        "alerts": rollup.alerts,
        "byState": by_state,
        "byLevel": by_level,
    })
}

fn alerting_summary(state: &Shared, caller: &Caller) -> Value {
    let judged = state.alerting.snapshot();
    let counts = if caller.scope().is_some() {
        tenant_counts(state, caller).alerts
    } else {
        judged.counts
    };
    json!({
        "evaluatedAt": judged.evaluated_at.map(|t| t.to_rfc3339()),
        "firing": counts.firing,
        "pending": counts.pending,
        "incidents": counts.incidents,
        "silenced": counts.silenced,
    })
}

fn all_ok(probes: &BTreeMap<String, Value>) -> bool {
    probes.values().all(|p| p["status"] == "ok")
}

pub(super) async fn health_whatsapp(State(state): State<Shared>, caller: Caller) -> Json<Value> {
    let sessions = sessions_summary(&state, &caller);
    let probes = probes_json(state.probes.in_group("whatsapp"));
    // A failing probe of the group (the Baileys service, say) is as bad as
    // a critical session: the sessions behind it cannot be trusted.
    let status = if all_ok(&probes) {
        sessions["status"].clone()
    } else {
        json!(Level::Critical)
    };
    Json(json!({
        "status": status,
        "sessions": sessions,
        "probes": probes,
    }))
}

pub(super) async fn health_group(
    State(state): State<Shared>,
    Path(group): Path<String>,
) -> Result<Response, ApiError> {
    let probes = probes_json(state.probes.in_group(&group));
    if probes.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no probe group `{group}`; groups come from the `group` of [[probes]] in the config"
        )));
    }
    // Judged from the very statuses shown (each read once).
    let ok = all_ok(&probes);
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ok { "ok" } else { "failed" },
        "group": group,
        "probes": probes,
        "timestamp": clock::now().to_rfc3339(),
    });
    Ok((code, Json(body)).into_response())
}

pub(super) async fn warmup(State(state): State<Shared>) -> Json<Value> {
    // Run every probe once (each within its timeout), then touch every read
    // path so the first real request is not the one that pays for lazy
    // initialisation.
    state.probes.run_all().await;
    let checks = conditions(&state);
    let _ = state.telemetry.registry.gather();
    let failing: Vec<&str> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.name.as_str())
        .collect();
    Json(json!({ "status": "warm", "checks": checks.len(), "failing": failing }))
}
