//! wapulse's own metrics (HTTP, ingest) and logging set-up.

use std::sync::Mutex;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::priority::reads::Governor;

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
    /// Gateway webhook deliveries by gateway and outcome (mapped,
    /// duplicate, ignored, rejected).
    pub webhooks: IntCounterVec,
    /// Alerting: firing alerts, notifications, outbox, evaluator time.
    pub alerts: crate::alerting::AlertMetrics,
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
        let alerts = crate::alerting::AlertMetrics {
            alerts_firing: IntGaugeVec::new(
                Opts::new(
                    "wa_alerts_firing",
                    "Alerts firing, by code and level (FLEET_INCIDENT for fleet incidents)",
                ),
                &["code", "level"],
            )
            .expect("valid metric"),
            notifications: IntCounterVec::new(
                Opts::new(
                    "wapulse_notifications_total",
                    "Notification attempts by receiver, kind and outcome (delivered, retry, \
                     failed; resent / resend_failed for Alertmanager's periodic resend)",
                ),
                &["receiver", "kind", "outcome"],
            )
            .expect("valid metric"),
            outbox_pending: IntGaugeVec::new(
                Opts::new(
                    "wapulse_outbox_pending",
                    "Notifications written and not yet delivered, by receiver",
                ),
                &["receiver"],
            )
            .expect("valid metric"),
            evaluator_duration: prometheus::Histogram::with_opts(
                HistogramOpts::new(
                    "wapulse_evaluator_duration_seconds",
                    "Time of one alert evaluator pass",
                )
                .buckets(vec![
                    0.00001, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0,
                ]),
            )
            .expect("valid metric"),
        };
        for c in [
            Box::new(alerts.alerts_firing.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(alerts.notifications.clone()),
            Box::new(alerts.outbox_pending.clone()),
            Box::new(alerts.evaluator_duration.clone()),
            Box::new(http_requests.clone()),
            Box::new(http_duration.clone()),
            Box::new(ingest_events.clone()),
            Box::new(http_connections.clone()),
            Box::new(webhooks.clone()),
            Box::new(ReadPriorityCollector::new()),
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
            webhooks,
            alerts,
        }
    }
}

/// `wapulse_read_realtime` and `wapulse_read_realtime_demotions_total`,
/// read from the process's read governor ([`Governor`]) when scraped.
struct ReadPriorityCollector {
    realtime: IntGauge,
    demotions: IntCounter,
    /// Scrapes may run at once; the counter is brought up to date under it.
    update: Mutex<()>,
}

impl ReadPriorityCollector {
    fn new() -> Self {
        Self {
            realtime: IntGauge::new(
                "wapulse_read_realtime",
                "1 while the request workers run at a real-time priority \
                 (read_priority = \"realtime\", within read_realtime_budget)",
            )
            .expect("valid metric"),
            demotions: IntCounter::new(
                "wapulse_read_realtime_demotions_total",
                "Times the request workers went back to normal priority because \
                 reads used more than read_realtime_budget",
            )
            .expect("valid metric"),
            update: Mutex::new(()),
        }
    }
}

impl Collector for ReadPriorityCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.realtime.desc();
        descs.extend(self.demotions.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let _update = self.update.lock();
        let governor = Governor::current();
        self.realtime
            .set(i64::from(governor.is_some_and(|g| g.is_realtime())));
        let total = governor.map_or(0, |g| g.demotions());
        let shown = self.demotions.get();
        if total > shown {
            self.demotions.inc_by(total - shown);
        }
        let mut families = self.realtime.collect();
        families.extend(self.demotions.collect());
        families
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

/// Installs the log subscriber with `filter` (already validated).
pub fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}
