//! wapulse's HTTP metrics (requests, connections, ingest, webhooks) and
//! logging set-up. Each subsystem registers its own metrics in
//! [`Telemetry::registry`] (alerting, the cluster, the read governor).

use prometheus::core::Collector;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// Handles to our own metrics; cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    /// Where they are registered.
    pub registry: Registry,
    /// Requests by route, method and status.
    pub http_requests: IntCounterVec,
    /// Request latency by route.
    pub http_duration: HistogramVec,
    /// Ingested events by outcome (accepted, duplicate, rejected).
    pub ingest_events: IntCounterVec,
    /// Accepted connections by the lane that serves them (read, ingest).
    pub http_connections: IntCounterVec,
    /// Connections answered 503 and closed: over `max_connections`.
    pub http_connections_refused: IntCounter,
    /// Connections open now.
    pub http_connections_open: IntGauge,
    /// Gateway webhook deliveries by gateway and outcome (mapped,
    /// duplicate, ignored, rejected).
    pub webhooks: IntCounterVec,
}

impl Telemetry {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Self {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new("wapulse_http_requests_total", "HTTP requests served"),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "wapulse_http_request_duration_seconds",
                "HTTP request latency",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0,
            ]),
            &["route"],
        )
        .expect("valid metric");
        let ingest_events = IntCounterVec::new(
            Opts::new(
                "wapulse_ingest_events_total",
                "Session events received, by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let http_connections = IntCounterVec::new(
            Opts::new(
                "wapulse_http_connections_total",
                "HTTP connections accepted, by the lane that serves them (ingest: \
                 connections that start with a POST, served at the ingest priority)",
            ),
            &["lane"],
        )
        .expect("valid metric");
        let http_connections_refused = IntCounter::new(
            "wapulse_http_connections_refused_total",
            "Connections answered 503 and closed at once: more than max_connections were open",
        )
        .expect("valid metric");
        let http_connections_open =
            IntGauge::new("wapulse_http_connections_open", "HTTP connections open now")
                .expect("valid metric");
        let webhooks = IntCounterVec::new(
            Opts::new(
                "wapulse_webhooks_total",
                "Gateway webhook deliveries, by gateway and outcome (mapped: applied; duplicate: \
                 a retry already applied; ignored: an event wapulse does not map; rejected: \
                 malformed or unauthenticated body; unavailable: the store refused the write)",
            ),
            &["gateway", "outcome"],
        )
        .expect("valid metric");
        for c in [
            Box::new(http_requests.clone()) as Box<dyn Collector>,
            Box::new(http_duration.clone()),
            Box::new(ingest_events.clone()),
            Box::new(http_connections.clone()),
            Box::new(webhooks.clone()),
            Box::new(http_connections_refused.clone()),
            Box::new(http_connections_open.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        for outcome in ["accepted", "duplicate", "rejected"] {
            ingest_events.with_label_values(&[outcome]);
        }
        for lane in ["read", "ingest"] {
            http_connections.with_label_values(&[lane]);
        }
        for gateway in ["waha", "evolution"] {
            for outcome in ["mapped", "duplicate", "ignored", "rejected", "unavailable"] {
                webhooks.with_label_values(&[gateway, outcome]);
            }
        }
        Self {
            registry,
            http_requests,
            http_duration,
            ingest_events,
            http_connections,
            http_connections_refused,
            http_connections_open,
            webhooks,
        }
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human text; coloured only when standard output is a terminal and
    /// `NO_COLOR` is unset.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `message`, `target`,
    /// every field, the current span and the span list.
    Json,
}

impl LogFormat {
    /// Parses `text` or `json` (any case), or names what is allowed.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("`{text}` is not a log format (text or json)")),
        }
    }
}

/// Installs the log subscriber with `filter` (already validated), writing
/// `format` to standard output.
pub fn init_logging(filter: &str, format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    match format {
        LogFormat::Text => {
            let colour = std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_target(false)
                .with_ansi(colour)
                .try_init();
        }
        LogFormat::Json => {
            let _ = tracing_subscriber::fmt()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(true)
                .with_target(true)
                .with_env_filter(filter)
                .try_init();
        }
    }
}
