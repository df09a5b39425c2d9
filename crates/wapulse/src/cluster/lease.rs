//! The notification lease: one replica at a time sends direct
//! notifications.
//!
//! The lease is the key `leader` in the KV bucket `<stream>_leader`, whose
//! entries expire `max_age` (the bucket's, normally `lease_ttl`) after they
//! were written. A replica takes it with `create` (only when no live entry
//! exists) and renews it every `lease_ttl / 3` with `update` at the
//! revision it holds (so a renewal fails once another replica took over).
//! It counts itself leader only until `2/3` of the shorter of `lease_ttl`
//! and the bucket's `max_age` after the start of its last successful
//! renewal: it stops sending before the entry can expire and another
//! replica can take it, so two leaders never overlap (clocks are not
//! compared: only elapsed time on each side). Only a replica that is ready
//! (caught up with the stream, no stream error) takes or keeps the lease: a
//! replica still replaying must not page about the past. A replica that
//! stops releases the lease (deleting it only at the revision it holds) so
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
    /// The bucket's entry lifetime, as last read.
    max_age: Option<Duration>,
    /// Released at shutdown: never taken again.
    released: bool,
}

/// This replica's side of the lease.
#[derive(Clone)]
pub struct Lease {
    replica: String,
    ttl: Duration,
    state: Arc<Mutex<State>>,
    kv: Arc<std::sync::OnceLock<kv::Store>>,
    task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Lease {
    /// Not holding, not started.
    pub fn new(replica: String, ttl: DurationMs) -> Self {
        Self {
            replica,
            ttl: Duration::from_millis(ttl.as_millis()),
            state: Arc::default(),
            kv: Arc::default(),
            task: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long after a renewal started this replica may still send.
    fn margin(&self, s: &State) -> Duration {
        s.max_age.map_or(self.ttl, |age| age.min(self.ttl)) * 2 / 3
    }

    /// Whether this replica holds the lease now (with margin).
    pub fn leading(&self) -> bool {
        let s = self.lock();
        s.revision.is_some() && s.renewed.is_some_and(|t| t.elapsed() < self.margin(&s))
    }

    /// The holder as last seen.
    pub fn leader(&self) -> Option<String> {
        self.lock().leader.clone()
    }

    /// Takes and renews the lease while `ready()` until `stop`.
    pub fn start(
        &self,
        js: jetstream::Context,
        bucket: String,
        kv: kv::Store,
        ready: Arc<dyn Fn() -> bool + Send + Sync>,
        mut stop: watch::Receiver<bool>,
    ) {
        let _ = self.kv.set(kv.clone());
        let this = self.clone();
        let handle = tokio::spawn(async move {
            let period = this.ttl / 3;
            let mut next = tokio::time::Instant::now();
            loop {
                if *stop.borrow() {
                    return;
                }
                this.read_max_age(&js, &bucket).await;
                if ready() {
                    this.step(&kv, period).await;
                } else {
                    this.give_up(&kv, "not caught up with the stream").await;
                }
                // A fixed beat, whatever a step took.
                next += period;
                let now = tokio::time::Instant::now();
                if next < now {
                    next = now;
                }
                tokio::select! {
                    () = tokio::time::sleep_until(next) => {}
                    _ = stop.changed() => return,
                }
            }
        });
        *self.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
    }

    async fn read_max_age(&self, js: &jetstream::Context, bucket: &str) {
        let read = async {
            let mut stream = js.get_stream(format!("KV_{bucket}")).await.ok()?;
            stream.info().await.ok().map(|i| i.config.max_age)
        };
        if let Ok(Some(age)) = tokio::time::timeout(self.ttl / 3, read).await {
            self.lock().max_age = Some(age);
        }
    }

    async fn step(&self, kv: &kv::Store, limit: Duration) {
        let started = Instant::now();
        let me = Bytes::from(self.replica.clone());
        let (held, released) = {
            let s = self.lock();
            (s.revision, s.released)
        };
        if released {
            return;
        }
        match held {
            Some(revision) => match tokio::time::timeout(limit, kv.update(KEY, me, revision)).await
            {
                Ok(Ok(revision)) => {
                    let mut s = self.lock();
                    s.revision = Some(revision);
                    s.renewed = Some(started);
                }
                Ok(Err(e)) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    tracing::warn!(replica = %self.replica, "notification lease taken by another replica");
                    let mut s = self.lock();
                    s.revision = None;
                    s.renewed = None;
                    s.leader = None;
                }
                // A transient failure: keep trying on the next beat while
                // the margin lasts (`leading` runs out by itself).
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "lease renewal failed; retrying")
                }
                Err(_) => tracing::debug!("lease renewal timed out; retrying"),
            },
            None => match tokio::time::timeout(limit, kv.create(KEY, me.clone())).await {
                Ok(Ok(revision)) => {
                    tracing::info!(replica = %self.replica, "took the notification lease: this replica sends direct notifications");
                    let mut s = self.lock();
                    s.revision = Some(revision);
                    s.renewed = Some(started);
                    s.leader = Some(self.replica.clone());
                }
                _ => {
                    let entry = tokio::time::timeout(limit, kv.entry(KEY))
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .flatten();
                    let Some(entry) = entry else { return };
                    let holder = String::from_utf8_lossy(&entry.value).into_owned();
                    if holder == self.replica {
                        // Ours (a create whose answer was lost, or a
                        // restart within the TTL): renew it at its revision.
                        if let Ok(Ok(revision)) =
                            tokio::time::timeout(limit, kv.update(KEY, me, entry.revision)).await
                        {
                            tracing::info!(replica = %self.replica, "took the notification lease back");
                            let mut s = self.lock();
                            s.revision = Some(revision);
                            s.renewed = Some(started);
                        }
                    }
                    self.lock().leader = Some(holder);
                }
            },
        }
    }

    /// Stops leading and deletes our entry (only at our revision).
    async fn give_up(&self, kv: &kv::Store, why: &str) {
        let held = {
            let mut s = self.lock();
            s.renewed = None;
            s.revision.take()
        };
        if let Some(revision) = held {
            tracing::warn!(replica = %self.replica, why, "notification lease given up");
            let delete = kv.delete_expect_revision(KEY, Some(revision));
            let _ = tokio::time::timeout(Duration::from_secs(2), delete).await;
        }
    }

    /// Gives the lease up for good (at shutdown) so another replica takes
    /// it now.
    pub async fn release(&self) {
        self.lock().released = true;
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        if let Some(kv) = self.kv.get() {
            self.give_up(kv, "shutting down").await;
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
            description: "wapulse: the last notification settled per group".into(),
            history: 1,
            max_age: Duration::from_secs(7 * 24 * 3600),
            num_replicas: settings.stream_replicas,
            ..Default::default()
        },
    )
    .await?;
    Ok((lease, marks))
}

async fn open(js: &jetstream::Context, config: kv::Config) -> Result<kv::Store, String> {
    if let Ok(kv) = js.get_key_value(&config.bucket).await {
        // A bucket made under another `lease_ttl`: follow this one. (A
        // replica that still runs with a longer TTL stays safe: it leads
        // only within 2/3 of the bucket's lifetime as it reads it.)
        let name = format!("KV_{}", config.bucket);
        if let Ok(mut stream) = js.get_stream(&name).await
            && let Ok(info) = stream.info().await
            && info.config.max_age != config.max_age
        {
            let mut changed = info.config.clone();
            changed.max_age = config.max_age;
            changed.duplicate_window = changed.duplicate_window.min(config.max_age);
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
