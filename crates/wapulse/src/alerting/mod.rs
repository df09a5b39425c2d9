//! Alerting: from the session model to people.
//!
//! - [`config`]: `[alerting]`, `[[receivers]]`, `[[routes]]`, checked.
//! - `evaluator/`: the `wapulse-alerts` thread: each alert's lifecycle,
//!   the fleet rollup and fleet incidents, groups, and the outbox rows.
//! - [`snapshot`]: what the evaluator publishes after every pass;
//!   [`active`]: its active alerts, indexed for O(page) reads.
//! - [`routing`]: which receivers and which group an alert goes to.
//! - [`payload`]: what an outbox row asks a receiver to send.
//! - [`outbox`]: one delivery task per receiver (retries, rate limits,
//!   Alertmanager's resend), on the `wapulse-notify` runtime.
//! - [`gate`]: the interface delivery asks before a direct send ("may I?
//!   did a peer already?"); cluster mode implements it.
//! - [`receivers`]: one file per kind (Slack, PagerDuty, webhook,
//!   Alertmanager, log) turning a payload into a request.
//! - `deadman`: the dead-man's switch.
//! - [`board`]: receiver health. [`metrics`]: alerting's metrics.
//! - [`store`]: the alerting tables of the SQLite store.
//!
//! Alerting knows the model and the store, never the cluster or the HTTP
//! layer.
//!
//! **Invariant:** a notification is in the store before it is sent, and it
//! is written in the same transaction as the lifecycle change that caused
//! it: a crash loses neither, and a restart sends what is pending.

pub mod active;
pub mod board;
pub mod config;
mod deadman;
mod evaluator;
pub mod gate;
pub mod metrics;
pub mod outbox;
pub mod payload;
pub mod receivers;
pub mod repair;
pub mod routing;
pub mod snapshot;
pub mod store;
pub mod templates;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use arc_swap::ArcSwap;
use tokio::sync::{Notify, watch};
use wapulse_core::{Silence, Thresholds, Timestamp};

use crate::clock;
use crate::model::Model;
use crate::store::{Durability, StoreError};
pub use active::{ActiveAlerts, AlertGroup, SessionLevels};
use board::{ReceiverBoard, ReceiverHealth};
use config::{AlertingSettings, ReceiverKind};
use evaluator::{Evaluator, Msg};
pub use evaluator::{FLEET_INCIDENT, JudgingClock};
use gate::Gate;
use metrics::AlertMetrics;
pub use snapshot::{ActiveAlert, AlertCounts, AlertSnapshot};
use store::AlertStore;

/// The running alerting: evaluator thread, delivery tasks, silences.
pub struct Alerting {
    settings: Arc<AlertingSettings>,
    snapshot: Arc<ArcSwap<AlertSnapshot>>,
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
        clock: Option<JudgingClock>,
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
        let snapshot = Arc::new(ArcSwap::from_pointee(AlertSnapshot::default()));
        let wake = Arc::new(Notify::new());
        let board = Arc::new(ReceiverBoard::new(&settings.receivers));
        let published = model.published();
        let evaluator = Evaluator::load(
            settings.clone(),
            thresholds,
            store.clone(),
            Box::new(move || published.load_full()),
            snapshot.clone(),
            metrics.clone(),
            wake.clone(),
            silences.clone(),
        )?
        .with_clock(clock);
        let (tx, rx) = std::sync::mpsc::channel();
        let feed = tx.clone();
        model.watch(Box::new(move |ids, events| {
            let _ = feed.send(Msg::Changed(ids, events));
        }));
        let priority = model.priority();
        let thread = std::thread::Builder::new()
            .name("wapulse-alerts".into())
            .spawn(move || {
                // A pass over 100,000 sessions (a fleet-wide outage, a burst
                // of deadlines) yields the CPU to the reads, as writes do.
                crate::priority::ingest::set_current_thread(priority);
                evaluator.run(rx)
            })
            .map_err(|e| StoreError::Failed(format!("cannot start the evaluator thread: {e}")))?;
        let (stop, _) = watch::channel(false);
        Ok(Self {
            settings,
            snapshot,
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
    ///
    /// `gate`: who may send direct notifications (none: this process
    /// alone, always).
    pub fn start_delivery(
        &self,
        healthy: Arc<dyn Fn() -> bool + Send + Sync>,
        gate: Option<Arc<dyn Gate>>,
    ) -> std::io::Result<()> {
        let client = crate::tls::http_client(
            &crate::tls::client_config(&self.settings.extra_roots),
            // A receiver answers, it does not send us elsewhere: a redirect
            // is not followed (it is a refusal, said as such).
            reqwest::Client::builder()
                .user_agent(concat!("wapulse/", env!("CARGO_PKG_VERSION")))
                .redirect(reqwest::redirect::Policy::none()),
        );
        let delivery = Arc::new(outbox::Delivery {
            store: self.store.clone(),
            wake: self.wake.clone(),
            client: client.clone(),
            board: self.board.clone(),
            metrics: self.metrics.clone(),
            settings: self.settings.clone(),
            stop: self.stop.subscribe(),
            gate: gate.clone(),
            judged: self.snapshot.clone(),
        });
        let mut tasks: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> =
            Vec::new();
        // Behind a gate (cluster mode), only the replica that may send
        // pings the dead-man's switch (and when none may, its owner is
        // rightly paged).
        let pinging: Arc<dyn Fn() -> bool + Send + Sync> = match gate {
            Some(gate) => {
                let healthy = healthy.clone();
                Arc::new(move || gate.may_send() && healthy())
            }
            None => healthy.clone(),
        };
        for spec in &self.settings.receivers {
            match &spec.kind {
                ReceiverKind::Deadman { url, interval } => {
                    tasks.push(Box::pin(deadman::run(
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
                            snapshot: self.snapshot.clone(),
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
        let names = self.settings.receivers.iter().map(|r| r.name.clone());
        tasks.push(Box::pin(outbox::watch_pending(
            self.store.clone(),
            self.metrics.clone(),
            self.board.clone(),
            names.collect(),
            self.settings.outbox_retention,
            self.stop.subscribe(),
        )));
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

    /// What the evaluator published last. Lock-free.
    pub fn snapshot(&self) -> Arc<AlertSnapshot> {
        self.snapshot.load_full()
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
