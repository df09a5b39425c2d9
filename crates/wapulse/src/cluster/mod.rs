//! Scale-out on NATS JetStream: replicas that share one log.
//!
//! Any replica accepts a batch, checks it whole as in embedded mode, and
//! publishes it to the stream (`<prefix>.events`, `Nats-Msg-Id` derived from
//! the batch's event ids, so a retried publish is deduplicated by the
//! server); the client is answered after JetStream's ack, and after this
//! replica applied the message (read-your-writes), or 503 when the stream
//! cannot be reached. Nothing is applied that did not come back from the
//! stream: every replica consumes it in order (`consume.rs`, an ordered
//! consumer from the sequence its own journal holds) and feeds the model's
//! writer, which stores each message's sequence in the same transaction as
//! its events. So every replica folds the same events in the same order and
//! holds the same state; a restart resumes from its snapshot, its journal
//! and the stream's tail.
//!
//! Silences travel the same way (`<prefix>.silences`). Direct notifications
//! (Slack, PagerDuty, webhook, dead-man's switch) are sent by one replica at
//! a time, the holder of a lease in a JetStream KV bucket (`lease.rs`); what
//! it delivered is marked in a second bucket (`marks.rs`), so a new leader
//! skips what the old one sent and sends what it left pending.

pub mod config;
mod consume;
pub mod lease;
pub mod marks;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use async_nats::jetstream;
use axum::body::Bytes;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{oneshot, watch};
use wapulse_core::{BatchOutcome, Event, Silence, Timestamp};

use self::config::{ClusterSettings, Credentials};
use crate::routes::Shared;

/// Recent message outcomes kept for ingest requests waiting on them.
const RECENT_OUTCOMES: usize = 8192;

/// Why the cluster did not take a write.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The stream cannot be reached or did not ack in time: nothing was
    /// acknowledged; retry (on any replica).
    #[error("the event stream is unreachable ({0}); nothing was acknowledged, retry later")]
    Unavailable(String),
}

/// A batch of events as it travels the stream.
#[derive(Debug, Serialize, Deserialize)]
pub struct EventsMessage {
    /// When the accepting replica received it.
    pub received: Timestamp,
    /// The events, checked.
    pub events: Vec<Event>,
}

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

struct Metrics {
    lag: IntGauge,
    position: IntGauge,
    leader: IntGauge,
    publishes: IntCounterVec,
    consumed: IntCounterVec,
}

impl Metrics {
    fn register(registry: &Registry) -> Self {
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
        Self {
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
                "Stream messages applied, by kind (events, silence, unreadable)",
                "kind",
            ),
        }
    }
}

/// Messages applied and the requests waiting for them.
#[derive(Default)]
struct Applied {
    /// Outcomes of the latest event messages, by sequence.
    recent: BTreeMap<u64, BatchOutcome>,
    /// Requests waiting until a sequence is applied.
    waiters: BTreeMap<u64, Vec<oneshot::Sender<Option<BatchOutcome>>>>,
}

/// One replica's membership of the cluster.
pub struct Cluster {
    settings: ClusterSettings,
    js: OnceLock<jetstream::Context>,
    client: OnceLock<async_nats::Client>,
    status: ArcSwap<ClusterStatus>,
    stream_last: AtomicU64,
    caught_up: AtomicBool,
    applied: Mutex<Applied>,
    metrics: Metrics,
    lease: lease::Lease,
    marks: OnceLock<jetstream::kv::Store>,
    stop: watch::Sender<bool>,
}

impl Cluster {
    /// A replica not yet connected; [`Cluster::start`] connects.
    pub fn new(settings: ClusterSettings, registry: &Registry) -> Arc<Self> {
        let status = ClusterStatus {
            replica: settings.replica_id.clone(),
            stream: settings.stream.clone(),
            ..ClusterStatus::default()
        };
        let lease = lease::Lease::new(settings.replica_id.clone(), settings.lease_ttl);
        Arc::new(Self {
            metrics: Metrics::register(registry),
            status: ArcSwap::from_pointee(status),
            settings,
            js: OnceLock::new(),
            client: OnceLock::new(),
            stream_last: AtomicU64::new(0),
            caught_up: AtomicBool::new(false),
            applied: Mutex::new(Applied::default()),
            lease,
            marks: OnceLock::new(),
            stop: watch::channel(false).0,
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &ClusterSettings {
        &self.settings
    }

    /// Connects and runs the consumer, the lease and the status loop on
    /// `runtime` (the ingest lane: this is ingest work) until [`stop`].
    ///
    /// [`stop`]: Cluster::stop
    pub fn start(self: &Arc<Self>, state: Shared, runtime: &tokio::runtime::Handle) {
        let this = self.clone();
        runtime.spawn(async move {
            if let Err(e) = this.clone().run(state).await {
                tracing::error!(error = %e, "cluster membership stopped");
                this.set_error(Some(e));
            }
        });
    }

    /// Stops the tasks; a leader gives up its lease so another takes over
    /// at once.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        self.lease.release().await;
    }

    /// Whether this replica may send direct notifications now.
    pub fn leading(&self) -> bool {
        self.lease.leading()
    }

    /// The sent-marks bucket, once connected.
    pub(crate) fn marks(&self) -> Option<&jetstream::kv::Store> {
        self.marks.get()
    }

    /// The status, with the position and lag as of now.
    pub fn status(&self, position: u64) -> ClusterStatus {
        let mut s = ClusterStatus::clone(&self.status.load());
        s.connected = self
            .client
            .get()
            .is_some_and(|c| c.connection_state() == async_nats::connection::State::Connected);
        s.position = position;
        s.stream_last_seq = self.stream_last.load(Ordering::Acquire).max(position);
        s.lag_events = s.stream_last_seq - position;
        s.caught_up = self.caught_up.load(Ordering::Acquire);
        s.leading = self.lease.leading();
        s.leader = self.lease.leader();
        s
    }

    /// Ready: caught up since start and not further behind than
    /// `max_lag_events`; else why not.
    pub fn readiness(&self, position: u64) -> Result<(), String> {
        let s = self.status(position);
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

    fn set_error(&self, error: Option<String>) {
        let mut s = ClusterStatus::clone(&self.status.load());
        if s.error != error {
            s.error = error;
            self.status.store(Arc::new(s));
        }
    }

    fn context(&self) -> Result<&jetstream::Context, ClusterError> {
        let connected = self
            .client
            .get()
            .is_some_and(|c| c.connection_state() == async_nats::connection::State::Connected);
        match self.js.get() {
            Some(js) if connected => Ok(js),
            Some(_) => Err(ClusterError::Unavailable("not connected to NATS".into())),
            None => Err(ClusterError::Unavailable(
                "the stream is not set up yet".into(),
            )),
        }
    }

    /// Publishes a checked batch and answers once JetStream acked it and
    /// this replica applied it (or `publish_timeout` passed: it is in the
    /// stream and will be applied; every event counts as accepted).
    pub async fn publish_events(
        &self,
        events: Vec<Event>,
        received: Timestamp,
        model: &crate::model::Model,
    ) -> Result<BatchOutcome, ClusterError> {
        let total = events.len();
        let id = message_id(&events, received);
        let body = serde_json::to_vec(&EventsMessage { received, events })
            .map_err(|e| ClusterError::Unavailable(format!("cannot encode the batch: {e}")))?;
        let ack = self
            .publish(self.settings.events_subject(), id, body)
            .await
            .inspect_err(|_| {
                self.metrics
                    .publishes
                    .with_label_values(&["unavailable"])
                    .inc();
            })?;
        let label = if ack.duplicate { "duplicate" } else { "acked" };
        self.metrics.publishes.with_label_values(&[label]).inc();
        let outcome = self.wait_applied(ack.sequence, model).await;
        Ok(if ack.duplicate {
            // The stream already holds this batch: none of it is new.
            BatchOutcome {
                accepted: 0,
                duplicates: total,
            }
        } else {
            outcome.unwrap_or(BatchOutcome {
                accepted: total,
                duplicates: 0,
            })
        })
    }

    /// Publishes a silence (new, changed or expired) and waits until this
    /// replica applied it.
    pub async fn publish_silence(
        &self,
        silence: &Silence,
        model: &crate::model::Model,
    ) -> Result<(), ClusterError> {
        let body = serde_json::to_vec(silence).expect("silences serialize");
        let id = format!(
            "silence-{}",
            hex(&Sha256::digest(&body)[..16]) // the same edit twice is one
        );
        let ack = self
            .publish(self.settings.silences_subject(), id, body)
            .await?;
        self.wait_applied(ack.sequence, model).await;
        Ok(())
    }

    async fn publish(
        &self,
        subject: String,
        id: String,
        body: Vec<u8>,
    ) -> Result<jetstream::publish::PublishAck, ClusterError> {
        let js = self.context()?;
        let timeout = Duration::from_millis(self.settings.publish_timeout.as_millis());
        let publish = jetstream::message::PublishMessage::build()
            .payload(Bytes::from(body))
            .message_id(id);
        let unavailable = |e: &dyn std::fmt::Display| ClusterError::Unavailable(e.to_string());
        let ack = tokio::time::timeout(timeout, async {
            js.send_publish(subject, publish)
                .await
                .map_err(|e| unavailable(&e))?
                .await
                .map_err(|e| unavailable(&e))
        })
        .await
        .map_err(|_| ClusterError::Unavailable(format!("no ack within {timeout:?}")))??;
        Ok(ack)
    }

    /// Waits (at most `publish_timeout`) until `seq` is applied here; its
    /// outcome when it was an event batch still remembered.
    async fn wait_applied(&self, seq: u64, model: &crate::model::Model) -> Option<BatchOutcome> {
        let answer = {
            let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(outcome) = applied.recent.get(&seq) {
                return Some(*outcome);
            }
            if model.position() >= seq {
                return None;
            }
            let (tx, rx) = oneshot::channel();
            applied.waiters.entry(seq).or_default().push(tx);
            rx
        };
        let timeout = Duration::from_millis(self.settings.publish_timeout.as_millis());
        tokio::time::timeout(timeout, answer)
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
    }

    /// Called by the consumer once message `seq` is committed.
    fn applied(&self, seq: u64, outcome: Option<BatchOutcome>) {
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(outcome) = outcome {
            applied.recent.insert(seq, outcome);
            while applied.recent.len() > RECENT_OUTCOMES {
                applied.recent.pop_first();
            }
        }
        let later = applied.waiters.split_off(&(seq + 1));
        let due = std::mem::replace(&mut applied.waiters, later);
        drop(applied);
        for (s, senders) in due {
            for tx in senders {
                let _ = tx.send(if s == seq { outcome } else { None });
            }
        }
    }

    async fn run(self: Arc<Self>, state: Shared) -> Result<(), String> {
        let client = connect(&self.settings, state.settings.ca_file.as_deref()).await?;
        let _ = self.client.set(client.clone());
        let mut js = jetstream::new(client);
        js.set_timeout(Duration::from_millis(
            self.settings.publish_timeout.as_millis(),
        ));
        let mut stop = self.stop.subscribe();
        // The stream (created by the first replica); retried until NATS
        // answers.
        let stream = loop {
            match js.get_or_create_stream(self.stream_config()).await {
                Ok(s) => break s,
                Err(e) => {
                    self.set_error(Some(format!(
                        "cannot open stream {}: {e}",
                        self.settings.stream
                    )));
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => return Ok(()),
                    }
                }
            }
        };
        let _ = self.js.set(js.clone());
        self.set_error(None);
        let created = stream.cached_info().created.unix_timestamp_nanos() / 1_000_000;
        // The default session exists on every replica from the same
        // instant: the stream's creation.
        state
            .model
            .ensure_session(
                state.settings.default_session.clone(),
                Timestamp::from_millis(i64::try_from(created).unwrap_or(0)),
            )
            .await;
        match lease::buckets(&js, &self.settings).await {
            Ok((lease_kv, marks_kv)) => {
                let _ = self.marks.set(marks_kv);
                self.lease.start(lease_kv, self.stop.subscribe());
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot open the lease buckets; direct notifications wait");
                self.set_error(Some(e));
            }
        }
        let this = self.clone();
        let model_state = state.clone();
        tokio::spawn(async move { this.watch_stream(stream, model_state).await });
        consume::run(self.clone(), state, js, stop).await;
        Ok(())
    }

    fn stream_config(&self) -> jetstream::stream::Config {
        jetstream::stream::Config {
            name: self.settings.stream.clone(),
            subjects: vec![format!("{}.>", self.settings.subject_prefix)],
            max_age: Duration::from_millis(self.settings.stream_max_age.as_millis()),
            num_replicas: self.settings.stream_replicas,
            duplicate_window: Duration::from_secs(120),
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        }
    }

    /// Reads the stream's last sequence every 500 ms: the lag, readiness
    /// and the gauges.
    async fn watch_stream(&self, mut stream: jetstream::stream::Stream, state: Shared) {
        let mut stop = self.stop.subscribe();
        loop {
            match stream.info().await {
                Ok(info) => {
                    let (first, last) = (info.state.first_sequence, info.state.last_sequence);
                    self.stream_last.store(last, Ordering::Release);
                    let position = state.model.position();
                    let mut s = ClusterStatus::clone(&self.status.load());
                    s.stream_first_seq = first;
                    s.stream_last_seq = last;
                    s.error = if position > last {
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
                    self.status.store(Arc::new(s));
                    if last.saturating_sub(position) <= self.settings.max_lag_events {
                        self.caught_up.store(true, Ordering::Release);
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "stream info unavailable");
                }
            }
            let position = state.model.position();
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

async fn connect(
    settings: &ClusterSettings,
    ca_file: Option<&std::path::Path>,
) -> Result<async_nats::Client, String> {
    let mut options = async_nats::ConnectOptions::new()
        .name(format!("wapulse {}", settings.replica_id))
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(Duration::from_millis(
            settings.publish_timeout.as_millis(),
        )))
        // Back quickly after a NATS restart: 100 ms, 200 ms, … up to 2 s.
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis(100 * attempts.clamp(1, 20) as u64)
        })
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("connected to NATS"),
                async_nats::Event::Disconnected => {
                    tracing::warn!("NATS connection lost; ingest answers 503 until it is back")
                }
                other => tracing::debug!(event = %other, "nats"),
            }
        });
    if let Some(path) = ca_file {
        options = options.add_root_certificates(path.to_path_buf());
    }
    options = match &settings.credentials {
        Credentials::None => options,
        Credentials::UserPassword { user, password } => {
            options.user_and_password(user.clone(), password.expose().to_owned())
        }
        Credentials::Token(token) => options.token(token.expose().to_owned()),
        Credentials::CredsFile(path) => options.credentials_file(path).await.map_err(|e| {
            format!(
                "cluster.creds_file / WAPULSE_NATS_CREDS: {}: {e}",
                path.display()
            )
        })?,
    };
    let addrs: Vec<async_nats::ServerAddr> = settings
        .urls
        .iter()
        .map(|u| {
            u.parse()
                .map_err(|e| format!("cluster.nats_url: `{u}`: {e}"))
        })
        .collect::<Result<_, _>>()?;
    options
        .connect(addrs)
        .await
        .map_err(|e| format!("cannot connect to NATS: {e}"))
}

/// The `Nats-Msg-Id` of a batch: when every event has an id, a digest of
/// those ids (a client's retry of the batch, on any replica, is the same
/// message and JetStream stores it once); otherwise a digest of the batch
/// and the instant it was received (a retried publish of this request is
/// deduplicated; a new request is new, as in embedded mode).
pub fn message_id(events: &[Event], received: Timestamp) -> String {
    let mut hash = Sha256::new();
    let all_ids = events.iter().all(|e| e.id.is_some());
    for e in events {
        hash.update(e.session.as_str().as_bytes());
        hash.update([0]);
        match &e.id {
            Some(id) if all_ids => hash.update(id.as_bytes()),
            _ => hash.update(serde_json::to_vec(e).unwrap_or_default()),
        }
        hash.update([0]);
    }
    if !all_ids {
        hash.update(received.as_millis().to_be_bytes());
    }
    let kind = if all_ids { "ids" } else { "batch" };
    format!("{kind}-{}", hex(&hash.finalize()[..16]))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: serde_json::Value) -> Event {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_batch_with_ids_has_the_same_message_id_whenever_it_is_received() {
        let batch = vec![
            event(
                serde_json::json!({"session": "a", "at": "2026-01-01T00:00:00Z", "type": "heartbeat", "id": "1"}),
            ),
            event(
                serde_json::json!({"session": "b", "at": "2026-01-01T00:00:00Z", "type": "heartbeat", "id": "1"}),
            ),
        ];
        let a = message_id(&batch, Timestamp::from_millis(1));
        assert_eq!(a, message_id(&batch, Timestamp::from_millis(2)));
        assert!(a.starts_with("ids-"), "{a}");
        // Other ids, another message.
        let mut other = batch.clone();
        other[1].id = Some("2".into());
        assert_ne!(a, message_id(&other, Timestamp::from_millis(1)));
        // Without ids: the same request is one message, a new one another.
        let mut plain = batch;
        plain[0].id = None;
        let p = message_id(&plain, Timestamp::from_millis(1));
        assert!(p.starts_with("batch-"));
        assert_eq!(p, message_id(&plain, Timestamp::from_millis(1)));
        assert_ne!(p, message_id(&plain, Timestamp::from_millis(2)));
    }
}
