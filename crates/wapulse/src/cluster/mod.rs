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

/// After a replica is caught up again (at start, or after losing NATS),
/// its evaluator keeps judging at the instant it froze for this long (ms):
/// gateways retry what was refused with 503 meanwhile, and their events
/// must land before the silence is judged.
const RESUME_GRACE_MS: i64 = 10_000;

/// Recent message outcomes kept for ingest requests waiting on them.
const RECENT_OUTCOMES: usize = 8192;

/// Why the cluster did not take a write.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The stream cannot be reached or did not ack in time: nothing was
    /// acknowledged; retry (on any replica).
    #[error(
        "the event stream is unreachable ({0}); nothing was acknowledged: retry later, on any \
         replica (events with ids are never applied twice; without ids a batch that reached the \
         stream before the failure can be)"
    )]
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
                "Stream messages applied, by kind (events, silence, unreadable, foreign)",
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
    /// Every sequence up to this one was reported applied.
    notified_up_to: u64,
}

/// What can be wrong, each kept apart so one part's recovery does not hide
/// another's problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Problem {
    /// Setting up (connection, stream).
    Setup,
    /// The stream does not match this replica's position.
    Stream,
    /// The consumer cannot apply a message.
    Consumer,
}

/// One replica's membership of the cluster.
pub struct Cluster {
    settings: ClusterSettings,
    problems: Mutex<BTreeMap<Problem, String>>,
    /// The instant evaluations may use: now while caught up; frozen while
    /// the replica cannot know what it missed (ms).
    judged_until: std::sync::atomic::AtomicI64,
    /// When the stream was last seen with this replica caught up (ms).
    caught_up_at: std::sync::atomic::AtomicI64,
    /// When it was caught up again after it was not (ms).
    resumed_at: std::sync::atomic::AtomicI64,
    /// The instant judged at until `RESUME_GRACE_MS` after that (ms).
    resumed_from: std::sync::atomic::AtomicI64,
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
            problems: Mutex::default(),
            judged_until: std::sync::atomic::AtomicI64::new(crate::clock::now().as_millis()),
            caught_up_at: std::sync::atomic::AtomicI64::new(crate::clock::now().as_millis()),
            resumed_at: std::sync::atomic::AtomicI64::new(crate::clock::now().as_millis()),
            resumed_from: std::sync::atomic::AtomicI64::new(crate::clock::now().as_millis()),
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
                this.set_problem(Problem::Setup, Some(e));
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
        let problems = self.problems.lock().unwrap_or_else(|p| p.into_inner());
        s.error = (!problems.is_empty())
            .then(|| problems.values().cloned().collect::<Vec<_>>().join("; "));
        s
    }

    /// The instant the alert evaluator judges at: now while this replica
    /// is connected and caught up; otherwise the last instant it was, so
    /// that a replica cut off from the stream does not take the silence of
    /// every session for their failure (and page about it). After it is
    /// caught up again, it stays there for `RESUME_GRACE_MS` more, while
    /// the gateways' retries arrive. Never moves back.
    pub fn judging_time(&self) -> wapulse_core::Timestamp {
        let now = crate::clock::now().as_millis();
        let caught_up_at = self.caught_up_at.load(Ordering::Acquire);
        let connected = self
            .client
            .get()
            .is_some_and(|c| c.connection_state() == async_nats::connection::State::Connected);
        // Checked every 500 ms: a check within 2 s counts as now.
        let resumed_at = self.resumed_at.load(Ordering::Acquire);
        let candidate = if !connected || now - caught_up_at >= 2_000 {
            caught_up_at
        } else if now - resumed_at < RESUME_GRACE_MS {
            self.resumed_from.load(Ordering::Acquire)
        } else {
            now
        };
        let judged = self
            .judged_until
            .fetch_max(candidate, Ordering::AcqRel)
            .max(candidate);
        wapulse_core::Timestamp::from_millis(judged)
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

    /// The consumer's problem (none: it applies messages).
    fn consumer_problem(&self, error: Option<String>) {
        self.set_problem(Problem::Consumer, error);
    }

    fn consumer_stuck(&self) -> bool {
        self.problems
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&Problem::Consumer)
    }

    fn set_problem(&self, which: Problem, error: Option<String>) {
        let mut problems = self.problems.lock().unwrap_or_else(|p| p.into_inner());
        match error {
            Some(e) => {
                problems.insert(which, e);
            }
            None => {
                problems.remove(&which);
            }
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
    ) -> Result<BatchOutcome, ClusterError> {
        let total = events.len();
        let id = message_id(&events, fastrand::u64(..));
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
        // A duplicate ack after this request's own earlier attempt (stored,
        // its ack lost) is that attempt's: the batch is new.
        let (ack, retried) = ack;
        let duplicate = ack.duplicate && !retried;
        let label = if duplicate { "duplicate" } else { "acked" };
        self.metrics.publishes.with_label_values(&[label]).inc();
        let outcome = self.wait_applied(ack.sequence).await;
        Ok(if duplicate {
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
    pub async fn publish_silence(&self, silence: &Silence) -> Result<(), ClusterError> {
        let body = serde_json::to_vec(silence).expect("silences serialize");
        // Each save is its own message (an edit undone within the
        // duplicate window must not be taken for the first).
        let id = format!(
            "silence-{}-{:016x}",
            hex(&Sha256::digest(&body)[..8]),
            fastrand::u64(..)
        );
        let (ack, _) = self
            .publish(self.settings.silences_subject(), id, body)
            .await?;
        self.wait_applied(ack.sequence).await;
        Ok(())
    }

    async fn publish(
        &self,
        subject: String,
        id: String,
        body: Vec<u8>,
    ) -> Result<(jetstream::publish::PublishAck, bool), ClusterError> {
        let timeout = Duration::from_millis(self.settings.publish_timeout.as_millis());
        let deadline = tokio::time::Instant::now() + timeout;
        let body = Bytes::from(body);
        // Tried again with the same id until the deadline: the stream keeps
        // one copy whichever attempts landed.
        let mut retried = false;
        loop {
            let attempt = async {
                let js = self.context().map_err(|e| e.to_string())?;
                let publish = jetstream::message::PublishMessage::build()
                    .payload(body.clone())
                    .message_id(&id);
                js.send_publish(subject.clone(), publish)
                    .await
                    .map_err(|e| e.to_string())?
                    .await
                    .map_err(|e| e.to_string())
            };
            let failure = match tokio::time::timeout_at(deadline, attempt).await {
                Ok(Ok(ack)) => return Ok((ack, retried)),
                Ok(Err(e)) => e,
                Err(_) => format!("no ack within {timeout:?}"),
            };
            if tokio::time::Instant::now() + Duration::from_millis(100) >= deadline {
                return Err(ClusterError::Unavailable(failure));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            retried = true;
        }
    }

    /// Waits (at most `publish_timeout`) until `seq` is applied here; its
    /// outcome when it was an event batch still remembered.
    async fn wait_applied(&self, seq: u64) -> Option<BatchOutcome> {
        let answer = {
            let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(outcome) = applied.recent.get(&seq) {
                return Some(*outcome);
            }
            if applied.notified_up_to >= seq {
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
        applied.notified_up_to = applied.notified_up_to.max(seq);
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
                    self.set_problem(
                        Problem::Setup,
                        Some(format!("cannot open stream {}: {e}", self.settings.stream)),
                    );
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => return Ok(()),
                    }
                }
            }
        };
        let _ = self.js.set(js.clone());
        self.set_problem(Problem::Setup, None);
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
        let this = self.clone();
        let model_state = state.clone();
        tokio::spawn(async move { this.watch_stream(stream, model_state).await });
        // The lease and the marks, retried until NATS has them; meanwhile
        // direct notifications wait.
        let this = self.clone();
        let (lease_js, lease_state) = (js.clone(), state.clone());
        tokio::spawn(async move {
            let mut stop = this.stop.subscribe();
            loop {
                match lease::buckets(&lease_js, &this.settings).await {
                    Ok((lease_kv, marks_kv)) => {
                        let _ = this.marks.set(marks_kv);
                        let ready: Arc<dyn Fn() -> bool + Send + Sync> = {
                            let this = this.clone();
                            Arc::new(move || this.readiness(lease_state.model.position()).is_ok())
                        };
                        this.lease.start(
                            lease_js,
                            this.settings.lease_bucket(),
                            lease_kv,
                            ready,
                            this.stop.subscribe(),
                        );
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot open the lease buckets yet; direct notifications wait");
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                            _ = stop.changed() => return,
                        }
                    }
                }
            }
        });
        consume::run(self.clone(), state, js, stop).await;
        Ok(())
    }

    fn stream_config(&self) -> jetstream::stream::Config {
        jetstream::stream::Config {
            name: self.settings.stream.clone(),
            subjects: vec![format!("{}.>", self.settings.subject_prefix)],
            max_age: Duration::from_millis(self.settings.stream_max_age.as_millis()),
            num_replicas: self.settings.stream_replicas,
            // JetStream refuses a window longer than the age.
            duplicate_window: Duration::from_secs(120).min(Duration::from_millis(
                self.settings.stream_max_age.as_millis(),
            )),
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
                        let before = self.caught_up_at.fetch_max(now, Ordering::AcqRel);
                        let connected = self.client.get().is_some_and(|c| {
                            c.connection_state() == async_nats::connection::State::Connected
                        });
                        if connected && now - before >= 2_000 {
                            // Back after a gap: judged as of its start for
                            // a while yet.
                            self.resumed_from.store(before, Ordering::Release);
                            self.resumed_at.store(now, Ordering::Release);
                        }
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
/// and `nonce`, drawn once per request (this request's publish attempts
/// are one message; another request is another, as in embedded mode).
pub fn message_id(events: &[Event], nonce: u64) -> String {
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
        hash.update(nonce.to_be_bytes());
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
    fn a_batch_with_ids_has_the_same_message_id_whichever_request_carries_it() {
        let batch = vec![
            event(
                serde_json::json!({"session": "a", "at": "2026-01-01T00:00:00Z", "type": "heartbeat", "id": "1"}),
            ),
            event(
                serde_json::json!({"session": "b", "at": "2026-01-01T00:00:00Z", "type": "heartbeat", "id": "1"}),
            ),
        ];
        let a = message_id(&batch, 1);
        assert_eq!(a, message_id(&batch, 2));
        assert!(a.starts_with("ids-"), "{a}");
        // Other ids, another message.
        let mut other = batch.clone();
        other[1].id = Some("2".into());
        assert_ne!(a, message_id(&other, 1));
        // Without ids: the same request is one message, a new one another.
        let mut plain = batch;
        plain[0].id = None;
        let p = message_id(&plain, 1);
        assert!(p.starts_with("batch-"));
        assert_eq!(p, message_id(&plain, 1));
        assert_ne!(p, message_id(&plain, 2));
    }
}
