//! Metrics: Prometheus text (format 0.0.4) for `/session/metrics` (one
//! session) and `/metrics` (everything), and the seed's `/metrics.json`.
//!
//! Series are built straight from the published snapshot into metric
//! families and encoded by the `prometheus` crate, which owns the format
//! and the escaping of label values (`families`). `/metrics` is built on a
//! blocking thread and streamed while it is built.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus::proto::{Bucket, Histogram, LabelPair, Metric, MetricType};
use serde_json::{Value, json};
use wapulse_core::delivery::{AckLatencies, LATENCY_BUCKETS_MS};
use wapulse_core::{
    AlertCode, Assessment, Delivery, Level, Session, SessionState, Thresholds, Timestamp, evaluate,
};

mod families;

use families::{Families, Sink};

use super::ApiError;
use super::session::{default_session, find};
use crate::app::Shared;
use crate::clock;
use crate::config::MetricsSessions;
use crate::probes::ProbeStatus;
use crate::tenancy::Caller;

/// Per-session series. With `fleet`, every series carries a `session`
/// label and `wa_session_state` lists only the current state (a fleet of
/// 100,000 sessions would otherwise expose 700,000 state series);
/// without, the series are unlabelled like the seed and every state is
/// listed with 0 or 1. The fleet also gets `wa_session_info`, the one
/// series that carries a session's own labels (joined in PromQL with
/// `* on (session) group_left(region) wa_session_info`): every other series
/// keeps only `session`, so labels never multiply the series count.
fn session_series<'s>(
    out: &mut Families,
    sessions: &[&'s Session],
    assessments: &[Assessment],
    t: &Thresholds,
    now: Timestamp,
    fleet: bool,
) {
    use MetricType::{COUNTER, GAUGE};
    // With `fleet`, every sample's first label is its session.
    // With `fleet`, every sample's first label is its session.
    let session = |s: &'s Session| fleet.then(|| ("session", s.id().as_str()));
    macro_rules! per_session {
        ($name:expr, $help:expr, $kind:expr, |$s:ident, $a:ident| $value:expr) => {{
            out.family($name, $help, $kind);
            for ($s, $a) in sessions.iter().zip(assessments) {
                let _ = &$a;
                out.sample(session($s), $value);
            }
        }};
    }
    if fleet {
        out.family(
            "wa_session_info",
            "1 for every session, with the session's labels (labels events)",
            GAUGE,
        );
        for s in sessions {
            out.sample(session(s).into_iter().chain(s.labels.iter()), 1.0);
        }
    }
    out.family("wa_session_state", "Current session state", GAUGE);
    for s in sessions {
        for state in SessionState::ALL {
            if fleet && state != s.state {
                continue;
            }
            out.sample(
                session(s).into_iter().chain([("state", state.as_str())]),
                f64::from(u8::from(state == s.state)),
            );
        }
    }
    per_session!(
        "wa_session_connected",
        "1 when the session is connected",
        GAUGE,
        |s, a| f64::from(u8::from(s.is_connected()))
    );
    per_session!(
        "wa_session_level",
        "Session health level: 0 ok, 1 warning, 2 critical",
        GAUGE,
        |s, a| a.level as u8 as f64
    );
    per_session!(
        "wa_session_alerts",
        "Alerts firing for the session",
        GAUGE,
        |s, a| a.alerts.len() as f64
    );
    per_session!(
        "wa_reconnect_attempts_total",
        "Total reconnect attempts",
        COUNTER,
        |s, a| s.reconnect.total_attempts as f64
    );
    per_session!(
        "wa_heartbeat_age_seconds",
        "Seconds since last heartbeat",
        GAUGE,
        |s, a| s.heartbeat_age(now).map_or(f64::NAN, |d| d.as_secs_f64())
    );
    per_session!(
        "wa_circuit_breaker_open",
        "Circuit breaker state",
        GAUGE,
        |s, a| f64::from(u8::from(s.breaker.open))
    );
    per_session!(
        "wa_reconnect_last_duration_seconds",
        "Duration of the last completed reconnect (NaN before the first)",
        GAUGE,
        |s, a| s
            .reconnect
            .last_duration
            .map_or(f64::NAN, |d| d.as_secs_f64())
    );
    delivery_series(out, sessions, &session, fleet);
    if fleet {
        return;
    }
    per_session!(
        "wa_reconnect_attempts",
        "Attempts in the current reconnect",
        GAUGE,
        |s, a| f64::from(s.reconnect.attempts)
    );
    per_session!(
        "wa_reconnect_in_progress",
        "1 while a reconnect is in progress",
        GAUGE,
        |s, a| f64::from(u8::from(s.reconnect.in_progress))
    );
    per_session!(
        "wa_reconnects_completed_total",
        "Reconnects completed",
        COUNTER,
        |s, a| s.reconnect.completed as f64
    );
    per_session!(
        "wa_heartbeats_total",
        "Heartbeats seen",
        COUNTER,
        |s, a| s.heartbeat.count as f64
    );
    per_session!(
        "wa_heartbeats_missed_total",
        "Heartbeats missed over the session's life",
        COUNTER,
        |s, a| s.heartbeat.missed_total as f64
    );
    per_session!(
        "wa_heartbeats_missed",
        "Heartbeats missed within the sliding window",
        GAUGE,
        |s, a| f64::from(s.missed_heartbeats(t, now))
    );
    per_session!(
        "wa_credential_age_seconds",
        "Seconds since credentials were last written",
        GAUGE,
        |s, a| s
            .credentials_written_at
            .map_or(f64::NAN, |at| now.since(at).as_secs_f64())
    );
    per_session!(
        "wa_checksum_valid",
        "1 when the latest integrity check passed",
        GAUGE,
        |s, a| f64::from(u8::from(s.integrity.checksum_valid))
    );
    per_session!(
        "wa_validation_failures_total",
        "Failed integrity checks",
        COUNTER,
        |s, a| s.integrity.failures_total as f64
    );
    per_session!(
        "wa_lock_held",
        "1 while the session lock is held",
        GAUGE,
        |s, a| f64::from(u8::from(s.lock.is_some()))
    );
    per_session!(
        "wa_state_age_seconds",
        "Seconds in the current state",
        GAUGE,
        |s, a| s.state_age(now).as_secs_f64()
    );
    per_session!(
        "wa_uptime_seconds",
        "Seconds the current connection has been up",
        GAUGE,
        |s, a| s.uptime(now).as_secs_f64()
    );
    per_session!(
        "wa_errors_total",
        "Send/receive errors",
        COUNTER,
        |s, a| s.traffic.errors as f64
    );
    out.family("wa_messages_total", "Messages passed", COUNTER);
    for s in sessions {
        out.sample([("direction", "inbound")], s.traffic.inbound as f64);
        out.sample([("direction", "outbound")], s.traffic.outbound as f64);
    }
}

/// Delivery series, for the sessions that have delivery figures (a fleet
/// that never sends with ids exposes none): outstanding messages, error
/// acks by code; per-session ack latency quantiles on a single session's
/// page only (six series a session would swamp a fleet's scrape).
fn delivery_series<'s>(
    out: &mut Families,
    sessions: &[&'s Session],
    session: &dyn Fn(&'s Session) -> Option<(&'static str, &'s str)>,
    fleet: bool,
) {
    use MetricType::{COUNTER, GAUGE};
    let sending: Vec<(&Session, &Delivery)> = sessions
        .iter()
        .filter_map(|s| s.delivery.as_deref().map(|d| (*s, d)))
        .collect();
    out.family(
        "wa_outbound_pending",
        "Sent messages waiting for WhatsApp's server ack",
        GAUGE,
    );
    for &(s, d) in &sending {
        out.sample(session(s), d.pending() as f64);
    }
    out.family(
        "wa_outbound_messages_total",
        "Messages sent, as delivery follows them (with or without ids)",
        COUNTER,
    );
    for &(s, d) in &sending {
        out.sample(session(s), d.sent() as f64);
    }
    out.family(
        "wa_outbound_acks_total",
        "Sent messages by the furthest ack counted: server, delivered, read (cumulative: a \
         delivered message was also server-acked), failed",
        COUNTER,
    );
    for &(s, d) in &sending {
        for (status, n) in [
            ("server", d.server_acked()),
            ("delivered", d.delivered()),
            ("read", d.read()),
            ("failed", d.failed()),
        ] {
            out.sample(session(s).into_iter().chain([("status", status)]), n as f64);
        }
    }
    out.family(
        "wa_delivery_errors_total",
        "Error acks of sent messages, by code",
        COUNTER,
    );
    for &(s, d) in &sending {
        for (code, n) in d.errors_total() {
            out.sample(
                session(s).into_iter().chain([("code", code.as_str())]),
                *n as f64,
            );
        }
    }
    out.family(
        "wa_number_quality",
        "A business number's quality (Cloud API): 0 fine, 1 flagged, 2 messaging limit lowered",
        GAUGE,
    );
    for &(s, d) in &sending {
        if let Some(q) = d.quality() {
            out.sample(session(s), q.verdict() as u8 as f64);
        }
    }
    out.family(
        "wa_messaging_limit",
        "A business number's messaging limit in conversations a day (Cloud API tiers)",
        GAUGE,
    );
    for &(s, d) in &sending {
        if let Some(limit) = d.quality().and_then(|q| q.limit()) {
            out.sample(session(s), limit as f64);
        }
    }
    if fleet {
        return;
    }
    out.family(
        "wa_delivery_latency_seconds",
        "Time from send to ack over the recent acks (ack: server, delivered)",
        GAUGE,
    );
    for &(s, d) in &sending {
        for (ack, p) in [
            ("server", d.time_to_server()),
            ("delivered", d.time_to_delivered()),
        ] {
            let Some(p) = p else { continue };
            for (q, ms) in [("0.5", p.p50), ("0.9", p.p90), ("0.99", p.p99)] {
                out.sample(
                    session(s)
                        .into_iter()
                        .chain([("ack", ack), ("quantile", q)]),
                    f64::from(ms) / 1000.0,
                );
            }
        }
    }
}

/// The fleet's ack latency histogram (for heatmaps), by ack.
fn latency_histogram(out: &mut Families, latencies: &AckLatencies) {
    out.family(
        "wa_delivery_ack_latency_seconds",
        "Time from send to ack over the fleet, since wapulse started (ack: server, delivered)",
        MetricType::HISTOGRAM,
    );
    for (ack, h) in [
        ("server", &latencies.to_server),
        ("delivered", &latencies.to_delivered),
    ] {
        let mut histogram = Histogram::default();
        let mut cumulative = 0u64;
        let mut buckets = Vec::with_capacity(LATENCY_BUCKETS_MS.len());
        for (bound, n) in LATENCY_BUCKETS_MS.iter().zip(h.counts) {
            cumulative += n;
            let mut b = Bucket::default();
            b.set_upper_bound(f64::from(*bound) / 1000.0);
            b.set_cumulative_count(cumulative);
            buckets.push(b);
        }
        histogram.set_bucket(buckets);
        histogram.set_sample_count(h.count());
        histogram.set_sample_sum(h.sum_ms as f64 / 1000.0);
        let mut label = LabelPair::default();
        label.set_name("ack".to_owned());
        label.set_value(ack.to_owned());
        let mut m = Metric::from_label(vec![label]);
        m.set_histogram(histogram);
        out.metric(m);
    }
}

/// A Prometheus text answer.
fn text(body: Body) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

fn one_session(state: &Shared, s: &Session) -> Response {
    let (tx, rx) = std::sync::mpsc::channel();
    let mut out = Families::new(Box::new(move |piece| tx.send(piece).is_ok()));
    let t = &state.settings.thresholds;
    let now = clock::now();
    let assessment = evaluate(s, t, now);
    session_series(
        &mut out,
        &[s],
        std::slice::from_ref(&assessment),
        t,
        now,
        false,
    );
    if !out.finish() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "metrics encoding failed").into_response();
    }
    text(Body::from(rx.try_iter().flatten().collect::<Vec<u8>>()))
}

pub(super) async fn session_default(State(state): State<Shared>, caller: Caller) -> Response {
    if caller.scope().is_some() {
        return match default_session(&state, &caller) {
            Ok(s) => one_session(&state, &s),
            Err(e) => e.into_response(),
        };
    }
    let snapshot = state.model.snapshot();
    match snapshot.get(state.settings.default_session.as_str()) {
        Some(s) => one_session(&state, s),
        None => ApiError::NotFound("the default session does not exist".into()).into_response(),
    }
}

pub(super) async fn session(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let s = find(&state, &caller, &id)?;
    Ok(one_session(&state, &s))
}

/// `/metrics`: built on a blocking thread (a fleet's answer takes a
/// core for a while; the request workers stay free) and streamed while it
/// is built. Should encoding fail, the answer is cut short, so that a
/// scraper records a failed scrape rather than partial figures.
pub(super) async fn all(State(state): State<Shared>, caller: Caller) -> Response {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(2);
    tokio::task::spawn_blocking(move || {
        let failed = tx.clone();
        let sink: Sink = Box::new(move |piece| tx.blocking_send(Ok(Bytes::from(piece))).is_ok());
        let encoded = match caller.scope() {
            Some(_) => tenant(&state, &caller, sink),
            None => fleet(&state, sink),
        };
        if !encoded {
            let _ = failed.blocking_send(Err(std::io::Error::other("metrics encoding failed")));
        }
    });
    let pieces = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    text(Body::from_stream(pieces))
}

/// Everything `/metrics` says, handed to `sink` piece by piece; `false`
/// when encoding failed.
fn fleet(state: &Shared, sink: Sink) -> bool {
    use MetricType::{COUNTER, GAUGE};
    let t = &state.settings.thresholds;
    let now = clock::now();
    let snapshot = state.model.snapshot();
    let choice = state.settings.metrics_sessions;
    // In id order from the snapshot's sorted index; evaluated once, for
    // the rollups and the per-session series alike. With no per-session
    // series, no session is evaluated: the rollups are the evaluator's, as
    // of its last pass.
    let sessions: Vec<&Session> = match choice {
        MetricsSessions::None => Vec::new(),
        _ => snapshot.sessions_after(None).map(|s| s.as_ref()).collect(),
    };
    let assessments: Vec<Assessment> = sessions.iter().map(|s| evaluate(s, t, now)).collect();

    let mut out = Families::new(sink);
    out.extend(state.telemetry.registry.gather());
    out.family(
        "wapulse_uptime_seconds",
        "Seconds since wapulse started",
        GAUGE,
    );
    out.sample([], state.started.elapsed().as_secs_f64());
    out.family("wapulse_build_info", "wapulse build", GAUGE);
    out.sample(
        [
            ("version", env!("CARGO_PKG_VERSION")),
            ("commit", crate::build::COMMIT),
        ],
        1.0,
    );
    out.family(
        "wapulse_events_applied_total",
        "Events applied to the model",
        COUNTER,
    );
    out.sample([], snapshot.events() as f64);

    let by_state = snapshot.by_state();
    out.family("wa_sessions", "Sessions by state", GAUGE);
    for st in SessionState::ALL {
        out.sample([("state", st.as_str())], by_state[st.index()] as f64);
    }
    let (by_level, by_code) = if choice == MetricsSessions::None {
        let judged = state.alerting.snapshot();
        (judged.by_level, judged.by_code)
    } else {
        judged_counts(&assessments)
    };
    level_families(&mut out, &by_level, &by_code);
    let platform = snapshot.platform();
    out.family(
        "wa_platform_total",
        "Platform counters, by name (as in /metrics.json)",
        COUNTER,
    );
    for (name, value) in &platform.counters {
        out.sample([("name", name.as_str())], *value);
    }
    out.family(
        "wa_platform_current",
        "Platform gauges, by name (as in /metrics.json)",
        GAUGE,
    );
    for (name, value) in &platform.gauges {
        out.sample([("name", name.as_str())], *value);
    }
    latency_histogram(&mut out, snapshot.ack_latencies());
    probe_series(&mut out, state);
    chosen_series(&mut out, choice, &sessions, assessments, t, now);
    out.finish()
}

/// Sessions per level and alerts per code and level, as judged.
fn judged_counts(assessments: &[Assessment]) -> ([usize; 3], [[usize; 3]; AlertCode::ALL.len()]) {
    let mut by_level = [0usize; 3];
    let mut by_code = [[0usize; 3]; AlertCode::ALL.len()];
    for a in assessments {
        by_level[a.level as usize] += 1;
        for alert in &a.alerts {
            by_code[alert.code as usize][alert.level as usize] += 1;
        }
    }
    (by_level, by_code)
}

/// `wa_sessions_by_level` and `wa_alerts`.
fn level_families(
    out: &mut Families,
    by_level: &[usize; 3],
    by_code: &[[usize; 3]; AlertCode::ALL.len()],
) {
    use MetricType::GAUGE;
    out.family("wa_sessions_by_level", "Sessions by health level", GAUGE);
    for level in Level::ALL {
        out.sample([("level", level.as_str())], by_level[level as usize] as f64);
    }
    out.family(
        "wa_alerts",
        "Alerts firing across the fleet, by code and level",
        GAUGE,
    );
    for code in AlertCode::ALL {
        for level in [Level::Warning, Level::Critical] {
            let n = by_code[code as usize][level as usize];
            if n > 0 {
                out.sample(
                    [("code", code.as_str()), ("level", level.as_str())],
                    n as f64,
                );
            }
        }
    }
}

/// The per-session series `metrics_sessions` chooses.
fn chosen_series(
    out: &mut Families,
    choice: MetricsSessions,
    sessions: &[&Session],
    assessments: Vec<Assessment>,
    t: &Thresholds,
    now: Timestamp,
) {
    match choice {
        MetricsSessions::All => session_series(out, sessions, &assessments, t, now, true),
        MetricsSessions::Unhealthy => {
            let (listed, judged): (Vec<&Session>, Vec<Assessment>) = sessions
                .iter()
                .zip(assessments)
                .filter(|(_, a)| a.level != Level::Ok)
                .map(|(s, a)| (*s, a))
                .unzip();
            session_series(out, &listed, &judged, t, now, true);
        }
        MetricsSessions::None => {}
    }
}

/// What `/metrics` says to a scoped token: its sessions' rollups and
/// per-session series (as `metrics_sessions` chooses), and nothing of
/// wapulse's own or of the fleet (platform counters, probes, the ack
/// latencies of every session, the HTTP series), which other tenants'
/// sessions make.
fn tenant(state: &Shared, caller: &Caller, sink: Sink) -> bool {
    use MetricType::GAUGE;
    let t = &state.settings.thresholds;
    let now = clock::now();
    let snapshot = state.model.snapshot();
    let members = caller.members(&snapshot).unwrap_or_default();
    let sessions: Vec<&Session> = members
        .iter()
        .filter_map(|id| snapshot.get(id.as_str()))
        .map(|s| s.as_ref())
        .collect();
    let assessments: Vec<Assessment> = sessions.iter().map(|s| evaluate(s, t, now)).collect();
    let mut out = Families::new(sink);
    let mut by_state = [0usize; wapulse_core::event::STATES];
    for s in &sessions {
        by_state[s.state.index()] += 1;
    }
    out.family("wa_sessions", "Sessions by state", GAUGE);
    for st in SessionState::ALL {
        out.sample([("state", st.as_str())], by_state[st.index()] as f64);
    }
    let (by_level, by_code) = judged_counts(&assessments);
    level_families(&mut out, &by_level, &by_code);
    chosen_series(
        &mut out,
        state.settings.metrics_sessions,
        &sessions,
        assessments,
        t,
        now,
    );
    out.finish()
}

/// What one probe family reads from a status (`None`: no sample).
type ProbeValue = fn(&ProbeStatus) -> Option<f64>;

fn probe_series(out: &mut Families, state: &Shared) {
    use MetricType::GAUGE;
    let probes: Vec<_> = state
        .probes
        .iter()
        .map(|p| {
            let labels = [
                ("probe", p.spec.name.as_str()),
                ("kind", p.spec.kind),
                ("group", p.spec.group.as_deref().unwrap_or_default()),
            ];
            (labels, p.status())
        })
        .collect();
    let families: [(&str, &str, ProbeValue); 3] = [
        (
            "wapulse_probe_up",
            "Whether the probe's last run passed (0 also while not yet run)",
            |s| Some(if s.ok() { 1.0 } else { 0.0 }),
        ),
        (
            "wapulse_probe_duration_seconds",
            "How long the probe's last run took",
            |s| s.latency_ms.map(|ms| ms / 1000.0),
        ),
        (
            "wapulse_probe_last_success_timestamp_seconds",
            "When the probe last passed, in Unix seconds",
            |s| s.last_success.map(Timestamp::as_secs_f64),
        ),
    ];
    for (name, help, value) in families {
        out.family(name, help, GAUGE);
        for (labels, status) in &probes {
            if let Some(v) = value(status) {
                out.sample(*labels, v);
            }
        }
    }
}

/// `/metrics.json`: the seed's platform counters and gauges.
pub(super) async fn json(State(state): State<Shared>, caller: Caller) -> Json<Value> {
    let snapshot = state.model.snapshot();
    // Platform counters are the whole platform's: a scoped token sees none.
    let none = wapulse_core::PlatformMetrics::default();
    let platform = if caller.scope().is_some() {
        &none
    } else {
        snapshot.platform()
    };
    let counters: BTreeMap<&str, Value> = platform
        .counters
        .iter()
        .map(|(k, v)| (k.as_str(), number(*v)))
        .collect();
    let gauges: BTreeMap<&str, Value> = platform
        .gauges
        .iter()
        .map(|(k, v)| (k.as_str(), number(*v)))
        .collect();
    Json(json!({
        "uptime_seconds": state.started.elapsed().as_secs_f64(),
        "counters": counters,
        "gauges": gauges,
        "timestamp": clock::now().as_secs_f64(),
    }))
}

/// Whole values print as integers (`150`, like the seed), others as
/// decimals (`3.5`).
fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}
