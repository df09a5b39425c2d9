//! Alerting's own metrics, registered by alerting in the service's
//! registry.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts, Registry};

/// The alerting metrics (registered in the service's registry).
#[derive(Clone)]
pub struct AlertMetrics {
    /// `wa_alerts_firing{code,level}`.
    pub alerts_firing: IntGaugeVec,
    /// `wapulse_notifications_total{receiver,kind,outcome}`.
    pub notifications: IntCounterVec,
    /// `wapulse_outbox_pending{receiver}`.
    pub outbox_pending: IntGaugeVec,
    /// `wapulse_evaluator_duration_seconds`.
    pub evaluator_duration: Histogram,
}

impl AlertMetrics {
    /// Creates alerting's metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Self {
        let metrics = Self {
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
                     failed; resent / resend_failed for Alertmanager's periodic resend; \
                     expired: a cluster replica's stale copy, never sent)",
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
            evaluator_duration: Histogram::with_opts(
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
            Box::new(metrics.alerts_firing.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(metrics.notifications.clone()),
            Box::new(metrics.outbox_pending.clone()),
            Box::new(metrics.evaluator_duration.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        metrics
    }
}
