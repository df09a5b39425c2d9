//! The notification lease: one replica at a time sends direct
//! notifications.
//!
//! The lease is the key `leader` in the KV bucket `<stream>_leader`, whose
//! entries expire `lease_ttl` after they were written. A replica takes it
//! with `create` (only when no live entry exists) and renews it every
//! `lease_ttl / 3` with `update` at the revision it holds (so a renewal
//! fails once another replica took over). It counts itself leader only
//! until `2/3 · lease_ttl` after the start of its last successful renewal:
//! it stops sending before the entry can expire and another replica can
//! take it, so two leaders never overlap (clocks are not compared: only
//! elapsed time on each side). A replica that stops releases the lease so
//! another takes over at once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use axum::body::Bytes;
use tokio::sync::watch;
use wapulse_core::DurationMs;

use super::config::ClusterSettings;

const KEY: &str = "leader";

#[derive(Default)]
struct State {
    /// The revision of our entry while we hold the lease.
    revision: Option<u64>,
    /// When the last successful renewal (or take-over) started.
    renewed: Option<Instant>,
    /// Who holds it, as last seen.
    leader: Option<String>,
}

/// This replica's side of the lease.
#[derive(Clone)]
pub struct Lease {
    replica: String,
    ttl: Duration,
    state: Arc<Mutex<State>>,
    kv: Arc<std::sync::OnceLock<kv::Store>>,
}

impl Lease {
    /// Not holding, not started.
    pub fn new(replica: String, ttl: DurationMs) -> Self {
        Self {
            replica,
            ttl: Duration::from_millis(ttl.as_millis()),
            state: Arc::default(),
            kv: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this replica holds the lease now (with margin).
    pub fn leading(&self) -> bool {
        let s = self.lock();
        s.revision.is_some() && s.renewed.is_some_and(|t| t.elapsed() < self.ttl * 2 / 3)
    }

    /// The holder as last seen.
    pub fn leader(&self) -> Option<String> {
        self.lock().leader.clone()
    }

    /// Starts taking and renewing the lease until `stop`.
    pub fn start(&self, kv: kv::Store, mut stop: watch::Receiver<bool>) {
        let _ = self.kv.set(kv.clone());
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                this.step(&kv).await;
                tokio::select! {
                    () = tokio::time::sleep(this.ttl / 3) => {}
                    _ = stop.changed() => return,
                }
            }
        });
    }

    async fn step(&self, kv: &kv::Store) {
        let started = Instant::now();
        let me = Bytes::from(self.replica.clone());
        let held = self.lock().revision;
        match held {
            Some(revision) => match kv.update(KEY, me, revision).await {
                Ok(revision) => {
                    let mut s = self.lock();
                    s.revision = Some(revision);
                    s.renewed = Some(started);
                }
                Err(e) => {
                    tracing::warn!(error = %e, replica = %self.replica, "notification lease lost");
                    let mut s = self.lock();
                    s.revision = None;
                    s.renewed = None;
                    s.leader = None;
                }
            },
            None => match kv.create(KEY, me).await {
                Ok(revision) => {
                    tracing::info!(replica = %self.replica, "took the notification lease: this replica sends direct notifications");
                    let mut s = self.lock();
                    s.revision = Some(revision);
                    s.renewed = Some(started);
                    s.leader = Some(self.replica.clone());
                }
                Err(_) => {
                    let holder = kv
                        .get(KEY)
                        .await
                        .ok()
                        .flatten()
                        .map(|b| String::from_utf8_lossy(&b).into_owned());
                    self.lock().leader = holder;
                }
            },
        }
    }

    /// Gives the lease up (at shutdown) so another replica takes it now.
    pub async fn release(&self) {
        let held = {
            let mut s = self.lock();
            s.renewed = None;
            s.revision.take()
        };
        if let (Some(_), Some(kv)) = (held, self.kv.get()) {
            match tokio::time::timeout(Duration::from_secs(2), kv.delete(KEY)).await {
                Ok(Ok(())) => {
                    tracing::info!(replica = %self.replica, "notification lease released")
                }
                _ => {
                    tracing::warn!("could not release the notification lease; it expires by itself")
                }
            }
        }
    }
}

/// Opens (creating if needed) the lease and sent-marks buckets.
pub async fn buckets(
    js: &jetstream::Context,
    settings: &ClusterSettings,
) -> Result<(kv::Store, kv::Store), String> {
    let lease = open(
        js,
        kv::Config {
            bucket: settings.lease_bucket(),
            description: "wapulse: which replica sends direct notifications".into(),
            history: 1,
            max_age: Duration::from_millis(settings.lease_ttl.as_millis()),
            num_replicas: settings.stream_replicas,
            ..Default::default()
        },
    )
    .await?;
    let marks = open(
        js,
        kv::Config {
            bucket: settings.marks_bucket(),
            description: "wapulse: notifications already delivered".into(),
            history: 1,
            max_age: Duration::from_secs(24 * 3600),
            num_replicas: settings.stream_replicas,
            ..Default::default()
        },
    )
    .await?;
    Ok((lease, marks))
}

async fn open(js: &jetstream::Context, config: kv::Config) -> Result<kv::Store, String> {
    if let Ok(kv) = js.get_key_value(&config.bucket).await {
        // A bucket made under another `lease_ttl`: its entries must expire
        // after this one, or a dead leader is replaced only after the old
        // TTL.
        let name = format!("KV_{}", config.bucket);
        if let Ok(mut stream) = js.get_stream(&name).await
            && let Ok(info) = stream.info().await
            && info.config.max_age != config.max_age
        {
            let mut changed = info.config.clone();
            changed.max_age = config.max_age;
            match js.update_stream(&changed).await {
                Ok(_) => {
                    tracing::info!(bucket = %config.bucket, max_age = ?config.max_age, "KV bucket's entry lifetime updated")
                }
                Err(e) => {
                    tracing::warn!(bucket = %config.bucket, error = %e, "cannot update the KV bucket's entry lifetime")
                }
            }
        }
        return Ok(kv);
    }
    let bucket = config.bucket.clone();
    match js.create_key_value(config).await {
        Ok(kv) => Ok(kv),
        // Another replica created it meanwhile.
        Err(e) => js
            .get_key_value(&bucket)
            .await
            .map_err(|_| format!("cannot open KV bucket {bucket}: {e}")),
    }
}
