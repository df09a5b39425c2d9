//! What a replica knows of itself: its status for `/api/health`, its
//! readiness, and what its judging clock (`judging.rs`) is told: whether
//! it receives, and whether every connected session has been heard from
//! since it was back. The stream is read every 500 ms for them.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::jetstream;
use serde::Serialize;

use super::{Cluster, Problem};
use wapulse_core::SessionState;

use crate::model::Model;

/// What `/api/health` shows of the cluster.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// This replica.
    pub replica: String,
    /// The stream.
    pub stream: String,
    /// Whether the NATS connection is up.
    pub connected: bool,
    /// The stream's last sequence, as last read.
    pub stream_last_seq: u64,
    /// The stream's first sequence still held.
    pub stream_first_seq: u64,
    /// The last sequence this replica applied.
    pub position: u64,
    /// How many messages this replica is behind.
    pub lag_events: u64,
    /// Whether it caught up since it started (readiness).
    pub caught_up: bool,
    /// The replica holding the notification lease, if known.
    pub leader: Option<String>,
    /// Whether this replica holds it.
    pub leading: bool,
    /// The last problem, if any.
    pub error: Option<String>,
}

impl Cluster {
    /// The status, with the position and lag as of now.
    pub fn status(&self, position: u64) -> ClusterStatus {
        let mut s = ClusterStatus::clone(&self.status.load());
        s.connected = self.connected();
        s.position = position;
        s.stream_last_seq = self.stream_last.load(Ordering::Acquire).max(position);
        s.lag_events = s.stream_last_seq - position;
        s.caught_up = self.caught_up.load(Ordering::Acquire);
        s.leading = self.lease.leading();
        s.leader = self.lease.leader();
        let problems = self.problems.lock().unwrap_or_else(|p| p.into_inner());
        s.error = (!problems.is_empty())
            .then(|| problems.values().cloned().collect::<Vec<_>>().join("; "));
        s
    }

    /// The instant the alert evaluator judges at (the rule: `judging.rs`):
    /// the wall clock while this replica receives; stopped while it is cut
    /// off from the stream or behind it; after an outage, behind the wall
    /// clock by the time it could not receive, until every connected
    /// session was heard from again or `heartbeat_age_critical` passed.
    pub fn judging_time(&self) -> wapulse_core::Timestamp {
        let now = crate::clock::now().as_millis();
        let caught_up_at = self.caught_up_at.load(Ordering::Acquire);
        // Checked every 500 ms: a check within 2 s counts as now.
        let receiving = self.connected() && now - caught_up_at < 2_000;
        let judged = self.judging().at(now, caught_up_at, receiving);
        self.metrics
            .judging_lag
            .set((now - judged).max(0) as f64 / 1000.0);
        wapulse_core::Timestamp::from_millis(judged)
    }

    fn judging(&self) -> std::sync::MutexGuard<'_, super::judging::Judging> {
        self.judging.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the NATS connection is up.
    pub(super) fn connected(&self) -> bool {
        self.client
            .get()
            .is_some_and(|c| c.connection_state() == async_nats::connection::State::Connected)
    }

    /// While judging lags after an outage: ends the lag once every session
    /// a gateway is working on (it reported a state, and that state is
    /// connected, connecting or reconnecting) has an event made at or
    /// after the resume. A session no gateway ever reported a state for
    /// (the default session, one created ahead of its gateway) is not
    /// waited for.
    fn check_heard(&self, model: &Model) {
        let Some(resumed_at) = self.judging().catching_up_since() else {
            return;
        };
        let fleet = model.snapshot();
        let heard = fleet.sessions().all(|s| {
            let working = s.state_seen
                && matches!(
                    s.state,
                    SessionState::Connected | SessionState::Connecting | SessionState::Reconnecting
                );
            !working || s.last_event_at.as_millis() >= resumed_at
        });
        if heard {
            self.judging().heard_all_since(resumed_at);
        }
    }

    /// Ready: caught up since start and not further behind than
    /// `max_lag_events`; else why not.
    pub fn readiness(&self, position: u64) -> Result<(), String> {
        self.readiness_of(&self.status(position))
    }

    /// The same, of a status already read.
    pub fn readiness_of(&self, s: &ClusterStatus) -> Result<(), String> {
        if let Some(error) = &s.error {
            return Err(error.clone());
        }
        if !s.caught_up {
            return Err(format!(
                "not caught up with stream {} yet (applied {}, stream at {})",
                s.stream, s.position, s.stream_last_seq
            ));
        }
        if s.lag_events > self.settings.max_lag_events {
            return Err(format!(
                "{} events behind stream {} (max_lag_events {})",
                s.lag_events, s.stream, self.settings.max_lag_events
            ));
        }
        Ok(())
    }

    /// Reads the stream's last sequence every 500 ms: the lag, readiness
    /// and the gauges.
    pub(super) async fn watch_stream(&self, mut stream: jetstream::stream::Stream, model: Model) {
        let mut stop = self.stop.subscribe();
        loop {
            match stream.info().await {
                Ok(info) => {
                    let (first, last) = (info.state.first_sequence, info.state.last_sequence);
                    self.stream_last.store(last, Ordering::Release);
                    let position = model.position();
                    let mut s = ClusterStatus::clone(&self.status.load());
                    s.stream_first_seq = first;
                    s.stream_last_seq = last;
                    let problem = if position > last {
                        Some(format!(
                            "this replica applied up to {position} but stream {} ends at {last}: \
                             was the stream recreated? Move this replica's data_dir aside to rebuild it",
                            self.settings.stream
                        ))
                    } else if position + 1 < first {
                        Some(format!(
                            "stream {} starts at {first}: messages {}..{} this replica never applied \
                             are gone (stream_max_age); its state is incomplete",
                            self.settings.stream,
                            position + 1,
                            first - 1
                        ))
                    } else {
                        None
                    };
                    let healthy = problem.is_none();
                    self.set_problem(Problem::Stream, problem);
                    self.status.store(Arc::new(s));
                    if healthy && last.saturating_sub(position) <= self.settings.max_lag_events {
                        self.caught_up.store(true, Ordering::Release);
                        let now = crate::clock::now().as_millis();
                        self.caught_up_at.fetch_max(now, Ordering::AcqRel);
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "stream info unavailable");
                }
            }
            self.check_heard(&model);
            let position = model.position();
            self.metrics.position.set(position as i64);
            self.metrics.lag.set(
                self.stream_last
                    .load(Ordering::Acquire)
                    .saturating_sub(position) as i64,
            );
            self.metrics.leader.set(i64::from(self.lease.leading()));
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = stop.changed() => return,
            }
        }
    }
}
