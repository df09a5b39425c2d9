//! The dead-man's switch: pinged while wapulse is healthy, so that its
//! owner is paged when the pings stop.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::board::ReceiverBoard;
use super::metrics::AlertMetrics;
use super::receivers;
use crate::clock;

/// Pings the dead-man's switch every `interval` while wapulse is healthy:
/// when the pings stop, the switch's owner is paged.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    name: String,
    url: String,
    interval: Duration,
    timeout: Duration,
    client: reqwest::Client,
    healthy: Arc<dyn Fn() -> bool + Send + Sync>,
    metrics: AlertMetrics,
    board: Arc<ReceiverBoard>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if healthy() {
            let outcome = receivers::exchange(client.get(&url), timeout).await;
            let label = match &outcome {
                receivers::Outcome::Delivered => {
                    board.delivered(&name, clock::now());
                    "delivered"
                }
                receivers::Outcome::Retry { reason, .. }
                | receivers::Outcome::Permanent(reason)
                | receivers::Outcome::Expired(reason) => {
                    board.failed(&name, reason, false);
                    "failed"
                }
            };
            metrics
                .notifications
                .with_label_values(&[name.as_str(), "deadman", label])
                .inc();
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
    }
}
