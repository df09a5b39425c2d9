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
//!
//! - here: [`Cluster`], one replica's membership: connecting, the stream,
//!   start and stop.
//! - `publish`: ingest and silences published, answered once applied.
//! - `consume`: the stream folded into the model in order.
//! - `status`: lag, readiness and what the judging clock is told.
//! - `judging`: the instant the evaluator judges at (time this replica
//!   could not receive does not count as silence).
//! - [`lease`], [`marks`] and [`gate`]: who sends direct notifications.
//! - [`config`]: `[cluster]`, checked.
//!
//! The cluster takes narrow handles ([`Local`]: the model and alerting),
//! never the application state.

pub mod config;
mod consume;
pub mod gate;
mod judging;
pub mod lease;
pub mod marks;
mod metrics;
mod publish;
mod status;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use async_nats::jetstream;
use prometheus::Registry;
use tokio::sync::watch;
use wapulse_core::{SessionId, Timestamp};

use self::config::{ClusterSettings, Credentials, shown_url};
use crate::alerting::Alerting;
use crate::model::Model;
use metrics::Metrics;
use publish::Applied;
pub use publish::{ClusterError, EventsMessage, message_id};
pub use status::ClusterStatus;

/// Recent message outcomes kept for ingest requests waiting on them.
const RECENT_OUTCOMES: usize = 8192;

/// What a replica applies the stream to, and what it needs to connect:
/// its own model and alerting (silences), and plain settings.
pub struct Local {
    /// The session model: the consumer feeds its writer.
    pub model: Model,
    /// Alerting: silences from the stream are saved there.
    pub alerting: Arc<Alerting>,
    /// The session created at the stream's creation time.
    pub default_session: SessionId,
    /// `ca_file`: certificates trusted for a TLS connection to NATS.
    pub ca_file: Option<PathBuf>,
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
    /// The instant evaluations may use (`judging.rs`).
    judging: Mutex<judging::Judging>,
    /// When the stream was last seen with this replica caught up (ms).
    caught_up_at: AtomicI64,
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
    /// `catch_up`: the longest its judging lags the wall clock after an
    /// outage (`heartbeat_age_critical`).
    pub fn new(
        settings: ClusterSettings,
        registry: &Registry,
        catch_up: wapulse_core::DurationMs,
    ) -> Arc<Self> {
        let now = crate::clock::now().as_millis();
        let bound = i64::try_from(catch_up.as_millis()).unwrap_or(i64::MAX);
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
            judging: Mutex::new(judging::Judging::new(now, bound)),
            caught_up_at: AtomicI64::new(now),
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
    pub fn start(self: &Arc<Self>, local: Local, runtime: &tokio::runtime::Handle) {
        let this = self.clone();
        runtime.spawn(async move {
            if let Err(e) = this.clone().run(Arc::new(local)).await {
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
        let connected = self.connected();
        match self.js.get() {
            Some(js) if connected => Ok(js),
            Some(_) => Err(ClusterError::Unavailable("not connected to NATS".into())),
            None => Err(ClusterError::Unavailable(
                "the stream is not set up yet".into(),
            )),
        }
    }

    async fn run(self: Arc<Self>, local: Arc<Local>) -> Result<(), String> {
        let client = connect(&self.settings, local.ca_file.as_deref()).await?;
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
        local
            .model
            .ensure_session(
                local.default_session.clone(),
                Timestamp::from_millis(i64::try_from(created).unwrap_or(0)),
            )
            .await;
        let this = self.clone();
        let model = local.model.clone();
        tokio::spawn(async move { this.watch_stream(stream, model).await });
        // The lease and the marks, retried until NATS has them; meanwhile
        // direct notifications wait.
        let this = self.clone();
        let (lease_js, lease_model) = (js.clone(), local.model.clone());
        tokio::spawn(async move {
            let mut stop = this.stop.subscribe();
            loop {
                match lease::buckets(&lease_js, &this.settings).await {
                    Ok((lease_kv, marks_kv)) => {
                        let _ = this.marks.set(marks_kv);
                        let ready: Arc<dyn Fn() -> bool + Send + Sync> = {
                            let this = this.clone();
                            Arc::new(move || this.readiness(lease_model.position()).is_ok())
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
        consume::run(self.clone(), local, js, stop).await;
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
                .map_err(|e| format!("cluster.nats_url: `{}`: {e}", shown_url(u)))
        })
        .collect::<Result<_, _>>()?;
    options
        .connect(addrs)
        .await
        .map_err(|e| format!("cannot connect to NATS: {e}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
