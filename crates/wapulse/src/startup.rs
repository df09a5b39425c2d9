//! Builds the service from settings and runs it until shut down.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use tokio::net::TcpListener;

use crate::alerting::Alerting;
use crate::clock;
use crate::config::Settings;
use crate::model::Model;
use crate::priority::lanes::IngestLane;
use crate::probes::Probes;
use crate::routes::{self, AppState, Shared};
use crate::store::StoreError;
use crate::telemetry::Telemetry;

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
        let cluster = settings
            .cluster
            .clone()
            .map(|c| crate::cluster::Cluster::new(c, &telemetry.registry));
        let alerting = Alerting::start(
            settings.alerting.clone(),
            settings.thresholds.clone(),
            &settings.data_dir.join(crate::store::sqlite::FILE_NAME),
            settings.durability,
            settings.max_store_bytes,
            &model,
            telemetry.alerts.clone(),
            cluster
                .clone()
                .map(|c| -> crate::alerting::Clock { Arc::new(move || c.judging_time()) }),
        )
        .map_err(|e| anyhow::anyhow!("cannot start alerting: {e}"))?;
        let probes = Probes::new(settings.probes.clone());
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let ingest = IngestLane::start(cores, settings.ingest_priority)
            .context("cannot start the ingest lane's runtime")?;
        let state = Arc::new(AppState {
            probes,
            parser: crate::priority::ingest::Pool::new(
                "parse",
                cores.min(4),
                settings.ingest_priority,
            ),
            settings,
            model,
            alerting,
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
        let app = crate::serve::App {
            router: routes::router(self.state.clone()),
            fast: Arc::new(routes::FastPath::new(self.state.clone())),
        };
        tracing::info!(addr = %self.local_addr(), "wapulse listening");
        for p in self.state.probes.iter() {
            tracing::info!(probe = %p.spec.name, kind = p.spec.kind, target = %p.spec.display, "probe configured");
        }
        self.state.probes.start();
        if let Some(cluster) = &self.state.cluster {
            tracing::info!(
                replica = %cluster.settings().replica_id,
                stream = %cluster.settings().stream,
                nats = ?cluster.settings().urls,
                "cluster mode: events go through the stream"
            );
            cluster.start(self.state.clone(), &self.ingest.handle());
        }
        let state = Arc::downgrade(&self.state);
        self.state
            .alerting
            .start_delivery(
                Arc::new(move || {
                    // Healthy: the store takes writes and the evaluator runs.
                    state.upgrade().is_some_and(|s| {
                        let view = s.alerting.view();
                        s.model.store_health().reachable
                            && view.store_error.is_none()
                            && view.evaluated_at.is_some_and(|at| {
                                clock::now().since(at) < wapulse_core::DurationMs::from_secs(10)
                            })
                    })
                }),
                self.state.cluster.clone(),
            )
            .context("cannot start the notifiers' thread")?;
        crate::serve::serve(
            self.listener,
            app,
            self.ingest.handle(),
            self.state.telemetry.http_connections.clone(),
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

/// Completes on SIGTERM or SIGINT.
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
