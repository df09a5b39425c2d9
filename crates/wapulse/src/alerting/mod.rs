//! Alerting: from the session model to people.
//!
//! - [`config`]: `[alerting]`, `[[receivers]]`, `[[routes]]`, checked.
//! - `evaluator`: the thread that keeps each alert's lifecycle, the fleet
//!   rollup and fleet incidents, groups alerts and writes the outbox.
//! - [`routing`]: which receivers and which group an alert goes to.
//! - [`outbox`]: one delivery task per receiver (retries, rate limits).
//! - `receivers/`: one file per kind (Slack, PagerDuty, webhook,
//!   Alertmanager, log); the dead-man's switch and Alertmanager's resend
//!   loop live here.
//! - [`store`]: the alerting tables of the SQLite store.
//!
//! **Invariant:** a notification is in the store before it is sent, and it
//! is written in the same transaction as the lifecycle change that caused
//! it: a crash loses neither, and a restart sends what is pending.

pub mod config;
mod evaluator;
pub use evaluator::Clock;
pub mod outbox;
pub mod receivers;
pub mod routing;
pub mod store;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use prometheus::{Histogram, IntCounterVec, IntGaugeVec};
use serde::Serialize;
use tokio::sync::{Notify, watch};
use wapulse_core::grouping::{NotifiedAlert, Status};
use wapulse_core::{Level, Phase, Silence, Thresholds, Timestamp};

use crate::clock;
use crate::model::Model;
use crate::store::{Durability, StoreError};
use config::{AlertingSettings, ReceiverKind};
pub use evaluator::FLEET_INCIDENT;
use evaluator::{Evaluator, Msg};
use store::AlertStore;

/// One pending or firing alert (or fleet incident), as `/alerts` shows it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveAlert {
    /// The session (empty for a fleet incident).
    pub session: String,
    /// The code.
    pub code: String,
    /// How bad.
    pub level: Level,
    /// `pending` or `firing`.
    pub state: Phase,
    /// Since when the condition holds.
    #[serde(with = "wapulse_core::time::rfc3339")]
    pub since: Timestamp,
    /// When it fired.
    #[serde(with = "wapulse_core::time::rfc3339_opt")]
    pub fired_at: Option<Timestamp>,
    /// Whether it is flapping.
    pub flapping: bool,
    /// Whether a silence mutes it.
    pub silenced: bool,
    /// Whether a fleet incident covers it (said there, not on its own).
    pub folded: bool,
    /// What is wrong.
    pub summary: String,
    /// The session's labels (an incident's set and trouble).
    pub labels: BTreeMap<String, String>,
    /// For an incident: the sessions it covers (capped).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<String>,
    /// For an incident: how many sessions it covers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affected: Option<u64>,
    /// Whether an Alertmanager was told it fires (resent until resolved).
    #[serde(skip)]
    pub told: bool,
}

impl ActiveAlert {
    /// As routes and silences see it.
    pub fn as_notified(&self) -> NotifiedAlert {
        NotifiedAlert {
            session: self.session.clone(),
            code: self.code.clone(),
            level: self.level,
            status: Status::Firing,
            starts_at: self.fired_at.unwrap_or(self.since),
            ends_at: None,
            summary: self.summary.clone(),
            action: String::new(),
            flapping: self.flapping,
            labels: self.labels.clone(),
            sessions: self.sessions.clone(),
            affected: self.affected,
        }
    }
}

/// What the evaluator publishes after every pass; read lock-free.
#[derive(Clone, Debug, Default)]
pub struct AlertsView {
    /// When the last pass ran (`None` before the first).
    pub evaluated_at: Option<Timestamp>,
    /// Sessions per level (`ok`, `warning`, `critical`) as last judged.
    pub by_level: [usize; 3],
    /// Sessions per state (`SessionState::index`) and level, as last judged.
    pub by_state_level: [[usize; 3]; 7],
    /// Conditions holding over all sessions.
    pub alerts: usize,
    /// Counts over `active`.
    pub counts: AlertCounts,
    /// Pending and firing alerts and incidents, worst first.
    pub active: Arc<Vec<ActiveAlert>>,
    /// Why the last write of alert state failed, if it did.
    pub store_error: Option<String>,
}

/// Counts of the active alerts, kept with the view (reads never count).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct AlertCounts {
    /// Firing alerts and incidents.
    pub firing: usize,
    /// Pending alerts.
    pub pending: usize,
    /// Firing fleet incidents.
    pub incidents: usize,
    /// Silenced alerts.
    pub silenced: usize,
}

impl AlertsView {
    /// Sessions judged (each counted at its level).
    pub fn sessions(&self) -> usize {
        self.by_level.iter().sum()
    }

    /// Whether the evaluator passed within `within` of `now` (it passes at
    /// least every second while it runs).
    pub fn is_fresh(&self, now: Timestamp, within: wapulse_core::DurationMs) -> bool {
        self.evaluated_at.is_some_and(|at| now.since(at) < within)
    }
}

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

/// A receiver's health, for `/api/health`.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverHealth {
    /// The kind.
    pub kind: &'static str,
    /// `ok`; `retrying` while its last attempt failed and is retried;
    /// `failing` when its last message was given up (a permanent error).
    pub status: &'static str,
    /// Delivered since start.
    pub delivered: u64,
    /// Attempts that failed since start.
    pub failures: u64,
    /// Notifications waiting.
    pub pending: u64,
    /// The last error, while failing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it last took a notification.
    #[serde(
        with = "wapulse_core::time::rfc3339_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_delivered_at: Option<Timestamp>,
}

/// Receiver health by name: written by the delivery tasks, read by
/// `/api/health` without a lock.
#[derive(Default)]
pub struct ReceiverBoard(ArcSwap<BTreeMap<String, ReceiverHealth>>);

impl ReceiverBoard {
    fn new(receivers: &[config::ReceiverSpec]) -> Self {
        let map = receivers
            .iter()
            .map(|r| {
                let health = ReceiverHealth {
                    kind: r.kind.name(),
                    status: "ok",
                    ..ReceiverHealth::default()
                };
                (r.name.clone(), health)
            })
            .collect();
        Self(ArcSwap::from_pointee(map))
    }

    fn with(&self, name: &str, f: impl Fn(&mut ReceiverHealth)) {
        self.0.rcu(|map| {
            let mut map = BTreeMap::clone(map);
            if let Some(h) = map.get_mut(name) {
                f(h);
            }
            map
        });
    }

    /// Records a delivery.
    pub fn delivered(&self, name: &str, now: Timestamp) {
        self.with(name, |h| {
            h.delivered += 1;
            h.status = "ok";
            h.reason = None;
            h.last_delivered_at = Some(now);
        });
    }

    /// Records a failed attempt: `failing` after a permanent error (a
    /// message was given up), `retrying` after one that is retried.
    pub fn failed(&self, name: &str, reason: &str, permanent: bool) {
        self.with(name, |h| {
            h.failures += 1;
            h.status = if permanent { "failing" } else { "retrying" };
            h.reason = Some(reason.to_owned());
        });
    }

    /// Every receiver's health. Lock-free.
    pub fn all(&self) -> Arc<BTreeMap<String, ReceiverHealth>> {
        self.0.load_full()
    }
}

/// The running alerting: evaluator thread, delivery tasks, silences.
pub struct Alerting {
    settings: Arc<AlertingSettings>,
    view: Arc<ArcSwap<AlertsView>>,
    store: Arc<Mutex<AlertStore>>,
    tx: Mutex<Option<Sender<Msg>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    wake: Arc<Notify>,
    board: Arc<ReceiverBoard>,
    metrics: AlertMetrics,
    stop: watch::Sender<bool>,
    notifier: Mutex<Option<JoinHandle<()>>>,
    silences: ArcSwap<Vec<Silence>>,
    /// Serializes silence writes (reads take `silences` without it).
    saving: Mutex<()>,
    started_at: Timestamp,
}

impl Alerting {
    /// Loads the saved alert state from the store in `data_dir` and starts
    /// the evaluator thread, fed by `model`'s commits.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        settings: AlertingSettings,
        thresholds: Thresholds,
        db: &Path,
        durability: Durability,
        max_store_bytes: Option<u64>,
        model: &Model,
        metrics: AlertMetrics,
        clock: Option<Clock>,
    ) -> Result<Self, StoreError> {
        let settings = Arc::new(settings);
        let store = Arc::new(Mutex::new(AlertStore::open(
            db,
            durability,
            max_store_bytes,
        )?));
        let silences: Vec<Silence> = store
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .silences()?
            .into_iter()
            .filter_map(|(id, body)| match serde_json::from_str(&body) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(silence = id, error = %e, "unreadable silence ignored");
                    None
                }
            })
            .collect();
        let view = Arc::new(ArcSwap::from_pointee(AlertsView::default()));
        let wake = Arc::new(Notify::new());
        let board = Arc::new(ReceiverBoard::new(&settings.receivers));
        let published = model.published();
        let evaluator = Evaluator::load(
            settings.clone(),
            thresholds,
            store.clone(),
            Box::new(move || published.load_full()),
            view.clone(),
            metrics.clone(),
            wake.clone(),
            silences.clone(),
        )?
        .with_clock(clock);
        let (tx, rx) = std::sync::mpsc::channel();
        let feed = tx.clone();
        model.watch(Box::new(move |ids| {
            let _ = feed.send(Msg::Changed(ids));
        }));
        let thread = std::thread::Builder::new()
            .name("wapulse-alerts".into())
            .spawn(move || evaluator.run(rx))
            .map_err(|e| StoreError::Failed(format!("cannot start the evaluator thread: {e}")))?;
        let (stop, _) = watch::channel(false);
        Ok(Self {
            settings,
            view,
            store,
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            wake,
            board,
            metrics,
            stop,
            notifier: Mutex::new(None),
            silences: ArcSwap::from_pointee(silences),
            saving: Mutex::new(()),
            started_at: clock::now(),
        })
    }

    /// Starts one delivery task per receiver, Alertmanager's resend loop
    /// and the dead-man's switch, on a runtime of their own (thread
    /// `wapulse-notify`): notifications never take a request worker, and
    /// their store calls never run on the request runtime's blocking pool.
    pub fn start_delivery(
        &self,
        healthy: Arc<dyn Fn() -> bool + Send + Sync>,
        cluster: Option<Arc<crate::cluster::Cluster>>,
    ) -> std::io::Result<()> {
        let client = crate::tls::http_client(
            &crate::tls::client_config(&self.settings.extra_roots),
            reqwest::Client::builder().user_agent(concat!("wapulse/", env!("CARGO_PKG_VERSION"))),
        );
        let delivery = Arc::new(outbox::Delivery {
            store: self.store.clone(),
            wake: self.wake.clone(),
            client: client.clone(),
            board: self.board.clone(),
            metrics: self.metrics.clone(),
            settings: self.settings.clone(),
            stop: self.stop.subscribe(),
            cluster: cluster.clone(),
        });
        let mut tasks: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> =
            Vec::new();
        // Cluster mode: only the leader pings the dead-man's switch (and
        // when no replica can lead, its owner is rightly paged).
        let pinging: Arc<dyn Fn() -> bool + Send + Sync> = match cluster {
            Some(cluster) => {
                let healthy = healthy.clone();
                Arc::new(move || cluster.leading() && healthy())
            }
            None => healthy.clone(),
        };
        for spec in &self.settings.receivers {
            match &spec.kind {
                ReceiverKind::Deadman { url, interval } => {
                    tasks.push(Box::pin(deadman(
                        spec.name.clone(),
                        url.expose().to_owned(),
                        *interval,
                        spec.timeout,
                        client.clone(),
                        pinging.clone(),
                        self.metrics.clone(),
                        self.board.clone(),
                        self.stop.subscribe(),
                    )));
                }
                ReceiverKind::Alertmanager { resend, .. } => {
                    tasks.push(Box::pin(outbox::deliver(
                        spec.clone(),
                        delivery.clone(),
                        Some(outbox::Resend {
                            view: self.view.clone(),
                            every: *resend,
                            started: self.started_at,
                            healthy: healthy.clone(),
                        }),
                    )));
                }
                _ => tasks.push(Box::pin(outbox::deliver(
                    spec.clone(),
                    delivery.clone(),
                    None,
                ))),
            }
        }
        let store = self.store.clone();
        let metrics = self.metrics.clone();
        let board = self.board.clone();
        let names: Vec<String> = self
            .settings
            .receivers
            .iter()
            .map(|r| r.name.clone())
            .collect();
        let retention = self.settings.outbox_retention;
        let mut stop = self.stop.subscribe();
        tasks.push(Box::pin(async move {
            let mut last_prune = Timestamp::from_millis(0);
            loop {
                let s = store.clone();
                let now = clock::now();
                let prune = now.since(last_prune) >= wapulse_core::DurationMs::from_mins(10);
                if prune {
                    last_prune = now;
                }
                let pending = tokio::task::spawn_blocking(move || {
                    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
                    if prune && let Err(e) = s.prune(now.minus(retention)) {
                        tracing::warn!(error = %e, "outbox pruning failed");
                    }
                    s.pending()
                })
                .await;
                if let Ok(Ok(pending)) = pending {
                    for name in &names {
                        let n = pending.get(name).copied().unwrap_or(0);
                        metrics
                            .outbox_pending
                            .with_label_values(&[name.as_str()])
                            .set(n as i64);
                        if board.all().get(name).is_some_and(|h| h.pending != n) {
                            board.with(name, |h| h.pending = n);
                        }
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => return,
                }
            }
        }));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("wapulse-notify")
            .build()?;
        let thread = std::thread::Builder::new()
            .name("wapulse-notify".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let mut set = tokio::task::JoinSet::new();
                    for t in tasks {
                        set.spawn(t);
                    }
                    while set.join_next().await.is_some() {}
                });
            })?;
        *self.notifier.lock().unwrap_or_else(|p| p.into_inner()) = Some(thread);
        Ok(())
    }

    /// The latest published view. Lock-free.
    pub fn view(&self) -> Arc<AlertsView> {
        self.view.load_full()
    }

    /// Receiver health. Lock-free.
    pub fn receivers(&self) -> Arc<BTreeMap<String, ReceiverHealth>> {
        self.board.all()
    }

    /// History entries, newest first.
    pub async fn history(
        &self,
        limit: usize,
        before: Option<i64>,
    ) -> Result<Vec<store::HistoryRow>, StoreError> {
        store::call(&self.store, move |s| s.history(limit, before)).await
    }

    /// Every silence. Lock-free.
    pub fn silences(&self) -> Arc<Vec<Silence>> {
        self.silences.load_full()
    }

    /// Saves a silence (new or changed) and tells the evaluator.
    pub async fn put_silence(&self, silence: Silence) -> Result<(), StoreError> {
        let body = serde_json::to_string(&silence).expect("silences serialize");
        let (id, ends) = (silence.id.clone(), silence.ends_at);
        store::call(&self.store, move |s| s.put_silence(&id, ends, &body)).await?;
        // Under the lock: two silences saved at once reach the evaluator
        // in the order their lists were made.
        let _saving = self.saving.lock().unwrap_or_else(|p| p.into_inner());
        let mut list = Vec::clone(&self.silences.load());
        list.retain(|s| s.id != silence.id);
        list.push(silence);
        list.sort_by(|a, b| a.id.cmp(&b.id));
        self.send(Msg::Silences(list.clone()));
        self.silences.store(Arc::new(list));
        Ok(())
    }

    fn send(&self, msg: Msg) {
        if let Some(tx) = self.tx.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = tx.send(msg);
        }
    }

    /// Stops the delivery tasks, then the evaluator after one last pass.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let notifier = self
            .notifier
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(thread) = notifier {
            // Every task watches `stop`; a send in flight ends within its
            // timeout.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        self.send(Msg::Stop);
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

/// Pings the dead-man's switch every `interval` while wapulse is healthy:
/// when the pings stop, the switch's owner is paged.
#[allow(clippy::too_many_arguments)]
async fn deadman(
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
                | receivers::Outcome::Permanent(reason) => {
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
