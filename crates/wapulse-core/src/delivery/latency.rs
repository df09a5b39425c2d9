//! Ack latencies: what one ack measured, and the fleet's histograms.

/// What one ack measured: the wait for the server and for delivery, in ms,
/// where this ack was the one that said so.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AckTiming {
    /// Send to server ack.
    pub to_server: Option<u32>,
    /// Send to delivered.
    pub to_delivered: Option<u32>,
}

/// Buckets (ms) of the fleet-wide ack latency histogram.
pub const LATENCY_BUCKETS_MS: [u32; 14] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000,
    1_800_000, 3_600_000,
];

/// Ack latencies over the fleet, cumulative since the process started
/// (kept in memory only: a restart is a counter reset to Prometheus).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// Per bucket of [`LATENCY_BUCKETS_MS`] (not cumulative), then the
    /// overflow.
    pub counts: [u64; LATENCY_BUCKETS_MS.len() + 1],
    /// Sum of the observations (ms).
    pub sum_ms: u64,
}

impl LatencyHistogram {
    /// Adds one observation.
    pub fn observe(&mut self, ms: u32) {
        let i = LATENCY_BUCKETS_MS.partition_point(|b| *b < ms);
        self.counts[i] += 1;
        self.sum_ms += u64::from(ms);
    }

    /// Observations in all.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// The fleet's ack latency histograms: to server, to delivered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AckLatencies {
    /// Send to server ack.
    pub to_server: LatencyHistogram,
    /// Send to delivered.
    pub to_delivered: LatencyHistogram,
}

impl AckLatencies {
    /// Records what one ack measured.
    pub fn record(&mut self, timing: AckTiming) {
        if let Some(ms) = timing.to_server {
            self.to_server.observe(ms);
        }
        if let Some(ms) = timing.to_delivered {
            self.to_delivered.observe(ms);
        }
    }
}
