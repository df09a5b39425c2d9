//! Builds the service from settings and runs it until shut down: the one
//! place that wires the parts together (the model, alerting and its gate,
//! the cluster, probes, the metrics registry, the API and the pages).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::net::TcpListener;

use crate::alerting::gate::Gate;
use crate::alerting::metrics::AlertMetrics;
use crate::alerting::{Alerting, JudgingClock};
use crate::app::{AppState, Shared};
use crate::cluster::gate::NotificationGate;
use crate::cluster::{Cluster, Local};
use crate::config::Settings;
use crate::model::Model;
use crate::priority::lanes::IngestLane;
use crate::probes::Probes;
use crate::serve::{ConnectionMetrics, Endpoints, Limits};
use crate::store::StoreError;
use crate::telemetry::Telemetry;
use crate::{clock, openapi, priority, routes, web};

/// A bound, ready-to-run service.
pub struct Application {
    listener: TcpListener,
    state: Shared,
    ingest: IngestLane,
}

impl Application {
    /// Binds the listener (port 0 picks a free port) and builds the state.
    pub async fn build(settings: Settings) -> Result<Self> {
        let listener = TcpListener::bind(settings.bind).await.with_context(|| {
            format!(
                "cannot listen on {} (bind / WAPULSE_BIND / PORT)",
                settings.bind
            )
        })?;
        let now = clock::now();
        let model = Model::open(settings.model_options(), now).map_err(|e| {
            let hint = match e {
                StoreError::Corrupt { .. } => {
                    "; refusing to start rather than start empty and forget every session. \
                     Move the file aside or restore a backup; `wapulse store check` shows what is wrong"
                }
                _ => "",
            };
            anyhow::anyhow!("{e}{hint}")
        })?;
        let telemetry = Telemetry::new();
        priority::metrics::register(&telemetry.registry);
        let cluster = settings.cluster.clone().map(|c| {
            Cluster::new(
                c,
                &telemetry.registry,
                settings.thresholds.heartbeat_age_critical,
            )
        });
        let judging: Option<JudgingClock> = cluster
            .clone()
            .map(|c| -> JudgingClock { Arc::new(move || c.judging_time()) });
        let alerting = Alerting::start(
            settings.alerting.clone(),
            settings.thresholds.clone(),
            &settings.data_dir.join(crate::store::sqlite::FILE_NAME),
            settings.durability,
            settings.max_store_bytes,
            &model,
            AlertMetrics::register(&telemetry.registry),
            judging,
        )
        .map_err(|e| anyhow::anyhow!("cannot start alerting: {e}"))?;
        let probes = Probes::new(settings.probes.clone());
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let ingest = IngestLane::start(cores, settings.ingest_priority)
            .context("cannot start the ingest lane's runtime")?;
        let audit = crate::tenancy::AuditLog::open(
            &settings.data_dir.join(crate::store::sqlite::FILE_NAME),
            settings.durability,
        )
        .map_err(|e| anyhow::anyhow!("cannot open the audit log: {e}"))?;
        let keyring = Arc::new(crate::tenancy::Keyring::new(&settings.tokens));
        let state = Arc::new(AppState {
            keyring,
            audit,
            recent_hours: Arc::new(crate::history::recent::RecentHours::new(
                Duration::from_secs(60),
            )),
            probes,
            parser: crate::priority::ingest::Pool::new(
                "parse",
                cores.min(4),
                settings.ingest_priority,
            ),
            openapi: openapi::document(&settings),
            settings,
            model,
            alerting: Arc::new(alerting),
            telemetry,
            started: Instant::now(),
            started_at: now,
            cluster,
        });
        Ok(Self {
            listener,
            state,
            ingest,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The shared state (the demo feeds the model directly).
    pub fn state(&self) -> Shared {
        self.state.clone()
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let endpoints = Endpoints {
            router: routes::router(self.state.clone(), web::router()),
            fast: Arc::new(routes::FastPath::new(self.state.clone())),
        };
        tracing::info!(addr = %self.local_addr(), "wapulse listening");
        warn_open_surfaces(&self.state.settings);
        for p in self.state.probes.iter() {
            tracing::info!(probe = %p.spec.name, kind = p.spec.kind, target = %p.spec.display, "probe configured");
        }
        self.state.probes.start();
        if !self.state.keyring.is_empty() {
            // Rotation: secret files are read again every 2 s and on SIGHUP.
            tokio::spawn(crate::tenancy::keyring::watch(
                self.state.keyring.clone(),
                Duration::from_secs(2),
            ));
        }
        if let Some(cluster) = &self.state.cluster {
            tracing::info!(
                replica = %cluster.settings().replica_id,
                stream = %cluster.settings().stream,
                nats = ?cluster.settings().shown_urls(),
                "cluster mode: events go through the stream"
            );
            let local = Local {
                model: self.state.model.clone(),
                alerting: self.state.alerting.clone(),
                default_session: self.state.settings.default_session.clone(),
                ca_file: self.state.settings.ca_file.clone(),
            };
            cluster.start(local, &self.ingest.handle());
        }
        // Cluster mode: direct notifications go out from the lease holder,
        // and what it settled is marked for the others.
        let gate = self.state.cluster.clone().map(|cluster| -> Arc<dyn Gate> {
            let alerting = &self.state.settings.alerting;
            Arc::new(NotificationGate::new(
                cluster,
                alerting.mark_window(),
                alerting.reminder_window(),
                alerting.stale_copy_after(),
            ))
        });
        let state = Arc::downgrade(&self.state);
        self.state
            .alerting
            .start_delivery(
                Arc::new(move || {
                    // Healthy: the store takes writes and the evaluator runs.
                    state.upgrade().is_some_and(|s| {
                        let alerts = s.alerting.snapshot();
                        s.model.store_health().reachable
                            && alerts.store_error.is_none()
                            && alerts.evaluated_at.is_some_and(|at| {
                                clock::now().since(at) < wapulse_core::DurationMs::from_secs(10)
                            })
                    })
                }),
                gate,
            )
            .context("cannot start the notifiers' thread")?;
        if let Some(after) = self.state.settings.sessions.retire_after {
            tokio::spawn(retire_idle_sessions(Arc::downgrade(&self.state), after));
        }
        tokio::spawn(sample_levels(Arc::downgrade(&self.state)));
        let t = &self.state.telemetry;
        let metrics = ConnectionMetrics {
            accepted: t.http_connections.clone(),
            refused: t.http_connections_refused.clone(),
            open: t.http_connections_open.clone(),
        };
        crate::serve::serve(
            self.listener,
            endpoints,
            self.ingest.handle(),
            connection_limits(&self.state.settings),
            metrics,
            shutdown,
        )
        .await;
        // Requests are done: stop probing, write the final snapshot, stop
        // the writer.
        self.state.probes.stop();
        if let Some(cluster) = &self.state.cluster {
            cluster.stop().await;
        }
        self.state.alerting.stop().await;
        self.state.model.shutdown().await;
        drop(self.ingest);
        tracing::info!("wapulse stopped");
        Ok(())
    }
}

/// Names every surface left open, at every start (loopback included: a
/// browser on this machine, or a DNS-rebinding page, reaches loopback too).
fn warn_open_surfaces(s: &Settings) {
    let bind = s.bind;
    if !s.tokens.is_empty() {
        let scoped = s.tokens.iter().filter(|t| t.scope.is_some()).count();
        tracing::info!(
            tokens = s.tokens.len(),
            scoped,
            "named tokens ([[tokens]]): every route but the open ones needs a token"
        );
        if s.metrics_token.is_none() {
            tracing::info!("/metrics.json takes METRICS_TOKEN or a named token");
        }
        return;
    }
    if s.read_token.is_none() {
        tracing::warn!(%bind, "reads are open (no READ_TOKEN): whoever reaches this address reads every session (phone numbers), the alerts, /metrics and the dashboard; set READ_TOKEN");
        if !bind.ip().is_loopback() && s.allowed_hosts.is_empty() {
            tracing::warn!(%bind, "requests are taken whatever host name they are addressed to (no allowed_hosts): a DNS-rebinding page can read through a visitor's browser; set READ_TOKEN or allowed_hosts");
        }
    }
    if s.ingest_token.is_none() {
        tracing::warn!(%bind, "ingest is open (no INGEST_TOKEN): whoever reaches this address can write events and gateway webhooks; set INGEST_TOKEN");
    }
    match (&s.admin_token, &s.ingest_token) {
        (None, None) => {
            tracing::warn!(%bind, "silences are open (no ADMIN_TOKEN, no INGEST_TOKEN): whoever reaches this address can mute every page; set ADMIN_TOKEN")
        }
        (None, Some(_)) => tracing::warn!(
            "silences are guarded by INGEST_TOKEN (no ADMIN_TOKEN): a gateway's token, often in its webhook URL, can mute every page; set ADMIN_TOKEN"
        ),
        _ => {}
    }
    if s.metrics_token.is_none() {
        tracing::info!("/metrics.json is closed (no METRICS_TOKEN)");
    }
}

/// The connection limits in force: `max_connections` kept below the
/// process's file limit (with room for the store, probes, receivers and
/// NATS), so a flood of connections is answered 503 instead of `accept`
/// running out of descriptors.
fn connection_limits(settings: &Settings) -> Limits {
    let configured = settings.max_connections;
    let max_connections = match open_files_limit() {
        Some(files) => {
            let room = files.saturating_sub((files / 8).max(64)).max(1);
            if configured > room {
                tracing::warn!(
                    max_connections = configured,
                    open_files_limit = files,
                    lowered_to = room,
                    "max_connections lowered below the process's file limit (ulimit -n); raise \
                     the limit to serve more connections at once"
                );
            }
            configured.min(room)
        }
        None => configured,
    };
    Limits {
        max_connections,
        header_read_timeout: Duration::from_millis(settings.header_read_timeout.as_millis()),
        // Only a client's silence counts: a handler's own wait (`/warmup`
        // on its probes, ingest on the store or the stream) is not idle
        // time (`serve::activity`).
        idle_timeout: Duration::from_millis(settings.idle_timeout.as_millis()),
    }
}

/// How many files the process may open (the soft limit), if known.
fn open_files_limit() -> Option<usize> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    limit.current.and_then(|n| usize::try_from(n).ok())
}

/// Completes on SIGTERM or SIGINT.
/// Once a minute, records the sessions by level and the alerts firing in
/// the history, with alerts firing by code and level and the notifications
/// delivered and failed in the minute (the evaluator's and the notifiers'
/// work is not in the log, so it is sampled; the rest of the history is
/// derived from the log).
async fn sample_levels(state: std::sync::Weak<AppState>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut told: Option<(u64, u64)> = None;
    loop {
        tick.tick().await;
        let Some(app) = state.upgrade() else {
            return;
        };
        let judged = app.alerting.snapshot();
        if judged.evaluated_at.is_none() {
            continue;
        }
        let now = clock::now();
        let receivers = app.alerting.receivers();
        let totals = receivers
            .values()
            .fold((0, 0), |(d, f), r| (d + r.delivered, f + r.failures));
        let (delivered, failed) = told.map_or((0, 0), |(d, f)| {
            (totals.0.saturating_sub(d), totals.1.saturating_sub(f))
        });
        told = Some(totals);
        let mut detail = judged.history_detail();
        detail.insert(
            "notifications".into(),
            serde_json::json!({"delivered": delivered, "failed": failed}),
        );
        app.model.record_levels(
            crate::history::LevelSample {
                minute_ms: crate::history::bucket(now, crate::history::MINUTE_MS),
                ok: judged.by_level[wapulse_core::Level::Ok as usize] as u64,
                warning: judged.by_level[wapulse_core::Level::Warning as usize] as u64,
                critical: judged.by_level[wapulse_core::Level::Critical as usize] as u64,
                alerts_firing: judged.counts.firing as u64,
            },
            serde_json::Value::Object(detail).to_string(),
        );
    }
}

/// `retire_after`: sweeps while the application lives, retiring through
/// the same write path as `DELETE /sessions/{id}` (the stream in cluster
/// mode).
async fn retire_idle_sessions(state: std::sync::Weak<AppState>, after: wapulse_core::DurationMs) {
    let Some(app) = state.upgrade() else {
        return;
    };
    let default = app.settings.default_session.clone();
    let batch = app.settings.max_batch_events;
    drop(app);
    let fleet = {
        let state = state.clone();
        move || state.upgrade().map(|s| s.model.snapshot())
    };
    let submit: crate::retire::Submit = Arc::new(move |events| {
        let state = state.clone();
        Box::pin(async move {
            let Some(app) = state.upgrade() else {
                return Err("wapulse is stopping".to_owned());
            };
            app.accept(events, clock::now())
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        })
    });
    crate::retire::sweep(after, default, batch, fleet, submit).await;
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}
