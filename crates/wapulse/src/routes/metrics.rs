//! Metrics: Prometheus text (format 0.0.4) for `/session/metrics` (one
//! session) and `/metrics` (everything), and the seed's `/metrics.json`.
//!
//! Series are built straight from the published snapshot into metric
//! families and encoded by the `prometheus` crate, which owns the format
//! and the escaping of label values.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use prometheus::{Encoder, TextEncoder};
use serde_json::{Value, json};
use wapulse_core::delivery::{AckLatencies, LATENCY_BUCKETS_MS};
use wapulse_core::{
    AlertCode, Assessment, Delivery, Level, Session, SessionState, Thresholds, Timestamp, evaluate,
};

use super::ApiError;
use super::session::find;
use crate::app::Shared;
use crate::clock;
use crate::config::MetricsSessions;
use crate::probes::ProbeStatus;

/// Builds metric families one at a time and encodes each as soon as the
/// next one starts, so at most one family's samples are held at once (a
/// fleet of 100,000 sessions has 100,000 samples per family).
struct Families {
    body: Vec<u8>,
    current: Option<MetricFamily>,
    encoder: TextEncoder,
    failed: bool,
}

impl Families {
    /// `samples` sizes the body up front (about 48 bytes a sample).
    fn with_capacity(samples: usize) -> Self {
        Self {
            body: Vec::with_capacity(samples * 48 + 16 * 1024),
            current: None,
            encoder: TextEncoder::new(),
            failed: false,
        }
    }

    fn flush(&mut self) {
        if let Some(f) = self.current.take()
            && !f.get_metric().is_empty()
            && let Err(e) = self
                .encoder
                .encode(std::slice::from_ref(&f), &mut self.body)
        {
            tracing::error!(error = %e, family = f.name(), "encoding metrics failed");
            self.failed = true;
        }
    }

    fn family(&mut self, name: &str, help: &str, kind: MetricType) -> &mut MetricFamily {
        self.flush();
        let mut f = MetricFamily::default();
        f.set_name(name.to_owned());
        f.set_help(help.to_owned());
        f.set_field_type(kind);
        self.current.insert(f)
    }

    /// Families gathered elsewhere (our own registry).
    fn extend(&mut self, families: Vec<MetricFamily>) {
        for f in families {
            self.flush();
            self.current = Some(f);
        }
    }

    fn encode(mut self) -> Response {
        self.flush();
        if self.failed {
            return (StatusCode::INTERNAL_SERVER_ERROR, "metrics encoding failed").into_response();
        }
        let mut response = self.body.into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        response
    }
}

fn label_pairs(labels: &[(&str, &str)]) -> Vec<LabelPair> {
    labels
        .iter()
        .map(|(k, v)| {
            let mut l = LabelPair::default();
            l.set_name((*k).to_owned());
            l.set_value((*v).to_owned());
            l
        })
        .collect()
}

fn sample(f: &mut MetricFamily, labels: &[(&str, &str)], value: f64) {
    push(f, label_pairs(labels), value);
}

fn push(f: &mut MetricFamily, labels: Vec<LabelPair>, value: f64) {
    let mut m = Metric::from_label(labels);
    if f.get_field_type() == MetricType::COUNTER {
        let mut c = Counter::default();
        c.set_value(value);
        m.set_counter(c);
    } else {
        let mut g = Gauge::default();
        g.set_value(value);
        m.set_gauge(g);
    }
    f.mut_metric().push(m);
}

/// Per-session series. With `fleet`, every series carries a `session`
/// label and `wa_session_state` lists only the current state (a fleet of
/// 100,000 sessions would otherwise expose 700,000 state series);
/// without, the series are unlabelled like the seed and every state is
/// listed with 0 or 1. The fleet also gets `wa_session_info`, the one
/// series that carries a session's own labels (joined in PromQL with
/// `* on (session) group_left(region) wa_session_info`): every other series
/// keeps only `session`, so labels never multiply the series count.
fn session_series(
    out: &mut Families,
    sessions: &[&Session],
    assessments: &[Assessment],
    t: &Thresholds,
    now: Timestamp,
    fleet: bool,
) {
    use MetricType::{COUNTER, GAUGE};
    let label = |s: &Session| -> Vec<LabelPair> {
        if fleet {
            label_pairs(&[("session", s.id().as_str())])
        } else {
            Vec::new()
        }
    };
    macro_rules! per_session {
        ($name:expr, $help:expr, $kind:expr, |$s:ident, $a:ident| $value:expr) => {{
            let f = out.family($name, $help, $kind);
            f.mut_metric().reserve_exact(sessions.len());
            for ($s, $a) in sessions.iter().zip(assessments) {
                let _ = &$a;
                push(f, label($s), $value);
            }
        }};
    }
    if fleet {
        let f = out.family(
            "wa_session_info",
            "1 for every session, with the session's labels (labels events)",
            GAUGE,
        );
        f.mut_metric().reserve_exact(sessions.len());
        for s in sessions {
            let mut labels = label(s);
            labels.extend(s.labels.iter().map(|(name, value)| {
                let mut l = LabelPair::default();
                l.set_name(name.to_owned());
                l.set_value(value.to_owned());
                l
            }));
            push(f, labels, 1.0);
        }
    }
    {
        let f = out.family("wa_session_state", "Current session state", GAUGE);
        f.mut_metric().reserve_exact(sessions.len());
        for s in sessions {
            for state in SessionState::ALL {
                if fleet && state != s.state {
                    continue;
                }
                let mut labels = label(s);
                labels.extend(label_pairs(&[("state", state.as_str())]));
                push(f, labels, f64::from(u8::from(state == s.state)));
            }
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
    delivery_series(out, sessions, &label, fleet);
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
    let f = out.family("wa_messages_total", "Messages passed", COUNTER);
    for s in sessions {
        sample(f, &[("direction", "inbound")], s.traffic.inbound as f64);
        sample(f, &[("direction", "outbound")], s.traffic.outbound as f64);
    }
}

/// Delivery series, for the sessions that have delivery figures (a fleet
/// that never sends with ids exposes none): outstanding messages, error
/// acks by code; per-session ack latency quantiles on a single session's
/// page only (six series a session would swamp a fleet's scrape).
fn delivery_series(
    out: &mut Families,
    sessions: &[&Session],
    label: &dyn Fn(&Session) -> Vec<LabelPair>,
    fleet: bool,
) {
    use MetricType::{COUNTER, GAUGE};
    let sending: Vec<(&Session, &Delivery)> = sessions
        .iter()
        .filter_map(|s| s.delivery.as_deref().map(|d| (*s, d)))
        .collect();
    let f = out.family(
        "wa_outbound_pending",
        "Sent messages waiting for WhatsApp's server ack",
        GAUGE,
    );
    for (s, d) in &sending {
        push(f, label(s), d.pending() as f64);
    }
    let f = out.family(
        "wa_outbound_messages_total",
        "Messages sent, as delivery follows them (with or without ids)",
        COUNTER,
    );
    for (s, d) in &sending {
        push(f, label(s), d.sent() as f64);
    }
    let f = out.family(
        "wa_outbound_acks_total",
        "Sent messages by the furthest ack counted: server, delivered, read (cumulative: a \
         delivered message was also server-acked), failed",
        COUNTER,
    );
    for (s, d) in &sending {
        for (status, n) in [
            ("server", d.server_acked()),
            ("delivered", d.delivered()),
            ("read", d.read()),
            ("failed", d.failed()),
        ] {
            let mut labels = label(s);
            labels.extend(label_pairs(&[("status", status)]));
            push(f, labels, n as f64);
        }
    }
    let f = out.family(
        "wa_delivery_errors_total",
        "Error acks of sent messages, by code",
        COUNTER,
    );
    for (s, d) in &sending {
        for (code, n) in d.errors_total() {
            let mut labels = label(s);
            labels.extend(label_pairs(&[("code", code.as_str())]));
            push(f, labels, *n as f64);
        }
    }
    let f = out.family(
        "wa_number_quality",
        "A business number's quality (Cloud API): 0 fine, 1 flagged, 2 messaging limit lowered",
        GAUGE,
    );
    for (s, d) in &sending {
        if let Some(q) = d.quality() {
            push(f, label(s), q.verdict() as u8 as f64);
        }
    }
    let f = out.family(
        "wa_messaging_limit",
        "A business number's messaging limit in conversations a day (Cloud API tiers)",
        GAUGE,
    );
    for (s, d) in &sending {
        if let Some(limit) = d.quality().and_then(|q| q.limit()) {
            push(f, label(s), limit as f64);
        }
    }
    if fleet {
        return;
    }
    let f = out.family(
        "wa_delivery_latency_seconds",
        "Time from send to ack over the recent acks (ack: server, delivered)",
        GAUGE,
    );
    for (s, d) in &sending {
        for (ack, p) in [
            ("server", d.time_to_server()),
            ("delivered", d.time_to_delivered()),
        ] {
            let Some(p) = p else { continue };
            for (q, ms) in [("0.5", p.p50), ("0.9", p.p90), ("0.99", p.p99)] {
                let mut labels = label(s);
                labels.extend(label_pairs(&[("ack", ack), ("quantile", q)]));
                push(f, labels, f64::from(ms) / 1000.0);
            }
        }
    }
}

/// The fleet's ack latency histogram (for heatmaps), by ack.
fn latency_histogram(out: &mut Families, latencies: &AckLatencies) {
    let f = out.family(
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
        let mut m = Metric::from_label(label_pairs(&[("ack", ack)]));
        m.set_histogram(histogram);
        f.mut_metric().push(m);
    }
}

fn one_session(state: &Shared, s: &Session) -> Response {
    let mut out = Families::with_capacity(64);
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
    out.encode()
}

pub(super) async fn session_default(State(state): State<Shared>) -> Response {
    let snapshot = state.model.snapshot();
    match snapshot.get(state.settings.default_session.as_str()) {
        Some(s) => one_session(&state, s),
        None => ApiError::NotFound("the default session does not exist".into()).into_response(),
    }
}

pub(super) async fn session(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let s = find(&state, &id)?;
    Ok(one_session(&state, &s))
}

pub(super) async fn all(State(state): State<Shared>) -> Response {
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

    let mut out = Families::with_capacity(sessions.len() * 7);
    out.extend(state.telemetry.registry.gather());
    let f = out.family(
        "wapulse_uptime_seconds",
        "Seconds since wapulse started",
        GAUGE,
    );
    sample(f, &[], state.started.elapsed().as_secs_f64());
    let f = out.family("wapulse_build_info", "wapulse build", GAUGE);
    sample(
        f,
        &[
            ("version", env!("CARGO_PKG_VERSION")),
            ("commit", crate::build::COMMIT),
        ],
        1.0,
    );
    let f = out.family(
        "wapulse_events_applied_total",
        "Events applied to the model",
        COUNTER,
    );
    sample(f, &[], snapshot.events() as f64);

    let by_state = snapshot.by_state();
    let f = out.family("wa_sessions", "Sessions by state", GAUGE);
    for st in SessionState::ALL {
        sample(f, &[("state", st.as_str())], by_state[st.index()] as f64);
    }
    let (by_level, by_code) = if choice == MetricsSessions::None {
        let judged = state.alerting.snapshot();
        (judged.by_level, judged.by_code)
    } else {
        let mut by_level = [0usize; 3];
        let mut by_code = [[0usize; 3]; AlertCode::ALL.len()];
        for a in &assessments {
            by_level[a.level as usize] += 1;
            for alert in &a.alerts {
                by_code[alert.code as usize][alert.level as usize] += 1;
            }
        }
        (by_level, by_code)
    };
    let f = out.family("wa_sessions_by_level", "Sessions by health level", GAUGE);
    for level in Level::ALL {
        sample(
            f,
            &[("level", level.as_str())],
            by_level[level as usize] as f64,
        );
    }
    let f = out.family(
        "wa_alerts",
        "Alerts firing across the fleet, by code and level",
        GAUGE,
    );
    for code in AlertCode::ALL {
        for level in [Level::Warning, Level::Critical] {
            let n = by_code[code as usize][level as usize];
            if n > 0 {
                sample(
                    f,
                    &[("code", code.as_str()), ("level", level.as_str())],
                    n as f64,
                );
            }
        }
    }
    let platform = snapshot.platform();
    let f = out.family(
        "wa_platform_total",
        "Platform counters, by name (as in /metrics.json)",
        COUNTER,
    );
    for (name, value) in &platform.counters {
        sample(f, &[("name", name.as_str())], *value);
    }
    let f = out.family(
        "wa_platform_current",
        "Platform gauges, by name (as in /metrics.json)",
        GAUGE,
    );
    for (name, value) in &platform.gauges {
        sample(f, &[("name", name.as_str())], *value);
    }
    latency_histogram(&mut out, snapshot.ack_latencies());
    probe_series(&mut out, &state);
    match choice {
        MetricsSessions::All => session_series(&mut out, &sessions, &assessments, t, now, true),
        MetricsSessions::Unhealthy => {
            let (listed, judged): (Vec<&Session>, Vec<Assessment>) = sessions
                .iter()
                .zip(assessments)
                .filter(|(_, a)| a.level != Level::Ok)
                .map(|(s, a)| (*s, a))
                .unzip();
            session_series(&mut out, &listed, &judged, t, now, true);
        }
        MetricsSessions::None => {}
    }
    out.encode()
}

/// What one probe family reads from a status (`None`: no sample).
type ProbeValue = fn(&ProbeStatus) -> Option<f64>;

fn probe_series(out: &mut Families, state: &Shared) {
    use MetricType::GAUGE;
    let probes: Vec<_> = state
        .probes
        .iter()
        .map(|p| {
            let labels = label_pairs(&[
                ("probe", &p.spec.name),
                ("kind", p.spec.kind),
                ("group", p.spec.group.as_deref().unwrap_or_default()),
            ]);
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
        let f = out.family(name, help, GAUGE);
        for (labels, status) in &probes {
            if let Some(v) = value(status) {
                push(f, labels.clone(), v);
            }
        }
    }
}

/// `/metrics.json`: the seed's platform counters and gauges.
pub(super) async fn json(State(state): State<Shared>) -> Json<Value> {
    let snapshot = state.model.snapshot();
    let platform = snapshot.platform();
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
