//! The cluster's own metrics (lag, position, leadership, publishes,
//! messages applied), registered by the cluster.

use prometheus::{Gauge, IntCounterVec, IntGauge, Opts, Registry};

pub(super) struct Metrics {
    pub(super) lag: IntGauge,
    pub(super) position: IntGauge,
    pub(super) leader: IntGauge,
    pub(super) judging_lag: Gauge,
    pub(super) publishes: IntCounterVec,
    pub(super) consumed: IntCounterVec,
}

impl Metrics {
    pub(super) fn register(registry: &Registry) -> Self {
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let counter = |name: &str, help: &str, label: &str| {
            let c = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let judging_lag = Gauge::new(
            "wapulse_cluster_judging_lag_seconds",
            "How far behind the wall clock this replica's alert evaluator judges: \
             the time it could not receive the stream, until every gateway caught up",
        )
        .expect("valid metric");
        registry
            .register(Box::new(judging_lag.clone()))
            .expect("unique metric");
        Self {
            judging_lag,
            lag: gauge(
                "wapulse_cluster_lag_events",
                "Stream messages this replica has not applied yet",
            ),
            position: gauge(
                "wapulse_cluster_position",
                "The last stream sequence this replica applied",
            ),
            leader: gauge(
                "wapulse_cluster_leader",
                "1 while this replica holds the notification lease",
            ),
            publishes: counter(
                "wapulse_cluster_publishes_total",
                "Batches published to the stream, by outcome (acked, duplicate, unavailable)",
                "outcome",
            ),
            consumed: counter(
                "wapulse_cluster_messages_total",
                "Stream messages applied, by kind (events, silence, unreadable, foreign)",
                "kind",
            ),
        }
    }
}
