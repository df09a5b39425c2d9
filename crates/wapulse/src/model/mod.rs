//! The one place writes go through, and the snapshot every read comes from.
//!
//! A dedicated writer thread (`writer`) owns the [`Fleet`] and the
//! [`Store`]. Ingest requests queue up for it; it takes every request
//! waiting, writes all their events in one transaction (group commit), and
//! only after the commit applies them to the fleet and publishes a new
//! [`FleetSnapshot`] through `arc-swap`. So an acknowledged event is
//! durable, a failed commit changes nothing, and readers load the latest
//! snapshot without any lock.
//!
//! Snapshots of the whole fleet are written every `snapshot_every_events`
//! events or `snapshot_interval`, and at shutdown (`codec` holds their
//! format); start-up loads the newest and replays the journal after it.
//!
//! [`Model`] is a cheap handle (clones share one writer): background parts
//! (the cluster consumer, the demo, the alert evaluator) take it, not the
//! application state.
//!
//! [`Fleet`]: wapulse_core::Fleet
//! [`Store`]: crate::store::Store
//! [`FleetSnapshot`]: wapulse_core::FleetSnapshot

pub mod codec;
#[cfg(test)]
mod tests;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::oneshot;
use wapulse_core::{
    BatchOutcome, DurationMs, Event, Fleet, FleetSnapshot, SessionId, Thresholds, Timestamp,
};

use crate::history::{HistoryReader, LevelSample};
use crate::store::sqlite::SqliteStore;
use crate::store::{Durability, JournalReader, Store, StoreError, StoreFacts};
use writer::Writer;

/// What the model needs to start.
#[derive(Clone, Debug)]
pub struct ModelOptions {
    /// Where the store lives.
    pub data_dir: PathBuf,
    /// What a commit survives.
    pub durability: Durability,
    /// A cap on the store's size, if any.
    pub max_store_bytes: Option<u64>,
    /// How long journal records are kept (once a snapshot covers them).
    pub retention: DurationMs,
    /// Snapshot after this many events.
    pub snapshot_every_events: u64,
    /// Snapshot at least this often while events arrive.
    pub snapshot_interval: DurationMs,
    /// Alert thresholds (they also shape the fold: heartbeat interval,
    /// windows).
    pub thresholds: Thresholds,
    /// How long and how many event ids each session remembers.
    pub dedup: wapulse_core::DedupLimits,
    /// The session created at start if the journal does not have it.
    pub default_session: SessionId,
    /// CPU priority of the writer thread.
    pub priority: crate::priority::ingest::Priority,
    /// Cluster mode: the stream whose position the journal keeps. The
    /// default session is then created by the cluster (at the stream's
    /// creation time, the same on every replica), not at start.
    pub stream: Option<String>,
    /// How long history is kept.
    pub history: crate::history::Retention,
}

/// The store as `/api/health` and `/readyz` see it. Updated by the writer;
/// read without touching the disk.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreHealth {
    /// Whether the last write succeeded.
    pub reachable: bool,
    /// Why not, when not.
    pub error: Option<String>,
    /// Facts as of the last write.
    #[serde(flatten)]
    pub facts: StoreFacts,
    /// When the last commit happened.
    #[serde(skip)]
    pub last_commit_at: Option<Timestamp>,
}

/// Why an ingest was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The commit failed; nothing was applied. Retry later.
    #[error("{0}; nothing was applied, retry later")]
    Unavailable(String),
}

struct Ingest {
    events: Vec<Event>,
    received: Timestamp,
    /// Cluster mode: the stream message they came from.
    position: Option<u64>,
    reply: oneshot::Sender<Result<BatchOutcome, IngestError>>,
}

enum Command {
    Ingest(Ingest),
    /// Creates a session if it does not exist (cluster mode: the default
    /// session, at the stream's creation time).
    Ensure(SessionId, Timestamp, oneshot::Sender<()>),
    /// Cluster mode: take stream messages again after a failed commit.
    Resume(oneshot::Sender<()>),
    /// Snapshot now and compact, then answer.
    Maintain(oneshot::Sender<Result<u64, String>>),
    /// Snapshot and stop.
    Shutdown(oneshot::Sender<()>),
    /// One minute's levels and their detail (JSON), for the history.
    Levels(LevelSample, String),
}

/// The session model of the running service: a cheap handle, clones share
/// one writer.
#[derive(Clone)]
pub struct Model {
    published: Arc<ArcSwap<FleetSnapshot>>,
    watcher: Watcher,
    health: Arc<ArcSwap<StoreHealth>>,
    journal: Arc<dyn JournalReader>,
    history: Arc<dyn HistoryReader>,
    tx: Arc<Mutex<Option<Sender<Command>>>>,
    writer: Arc<Mutex<Option<JoinHandle<()>>>>,
    position: Arc<AtomicU64>,
    priority: crate::priority::ingest::Priority,
}

/// Told which sessions each commit touched (the alert evaluator).
type Watcher = Arc<Mutex<Option<Box<dyn Fn(Vec<SessionId>, u64) + Send>>>>;

impl Model {
    /// Opens the store, loads the newest snapshot, replays the journal after
    /// it, and starts the writer thread. A store that cannot be read is an
    /// error: the service must not start with an empty model over lost data.
    pub fn open(options: ModelOptions, now: Timestamp) -> Result<Self, StoreError> {
        let store = SqliteStore::open(
            &options.data_dir,
            options.durability,
            options.max_store_bytes,
        )?;
        let reads = Arc::new(store.journal()?);
        let journal: Arc<dyn JournalReader> = reads.clone();
        Self::start(Box::new(store), journal, reads, options, now)
    }

    fn start(
        mut store: Box<dyn Store>,
        journal: Arc<dyn JournalReader>,
        history: Arc<dyn HistoryReader>,
        options: ModelOptions,
        now: Timestamp,
    ) -> Result<Self, StoreError> {
        let started = std::time::Instant::now();
        let (mut fleet, snapshot_seq) = match store.latest_snapshot()? {
            Some(snap) => (codec::decode_snapshot(&snap.body, &options)?, snap.seq),
            None => (
                Fleet::with_dedup(options.thresholds.clone(), options.dedup),
                0,
            ),
        };
        let mut replayed = 0u64;
        let last_seq = store.replay(snapshot_seq, &mut |_, event| {
            fleet.apply(&event);
            replayed += 1;
        })?;
        let position = match &options.stream {
            Some(stream) => {
                let position = store.position(stream)?;
                if position == 0 && last_seq > 0 {
                    // Its events are not in the stream: applying the stream
                    // on top would count them twice or mix two histories.
                    return Err(StoreError::Failed(format!(
                        "{} holds {last_seq} events from embedded mode or another stream, \
                         not from stream {stream}: start cluster mode on an empty data_dir \
                         (keep this one for `wapulse store export`)",
                        options.data_dir.display()
                    )));
                }
                position
            }
            None => {
                fleet.ensure_session(&options.default_session, now);
                0
            }
        };
        let position = Arc::new(AtomicU64::new(position));
        let facts = store.facts()?;
        tracing::info!(
            snapshot_seq,
            replayed,
            sessions = fleet.view().len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "model restored"
        );
        let published = Arc::new(ArcSwap::from_pointee(fleet.snapshot()));
        let health = Arc::new(ArcSwap::from_pointee(StoreHealth {
            reachable: true,
            error: None,
            facts,
            last_commit_at: None,
        }));
        let watcher: Watcher = Arc::default();
        let writer = Writer {
            watcher: watcher.clone(),
            fleet,
            store,
            published: published.clone(),
            health: health.clone(),
            last_seq: last_seq.max(snapshot_seq),
            since_snapshot: replayed,
            last_snapshot_at: now,
            last_compaction_at: Timestamp::from_millis(0),
            options,
            position: position.clone(),
            stream_broken: false,
            states: None,
        };
        let (tx, rx) = channel();
        let priority = writer.options.priority;
        let handle = std::thread::Builder::new()
            .name("wapulse-writer".into())
            .spawn(move || {
                // Commits and applies yield to the request workers.
                crate::priority::ingest::set_current_thread(priority);
                writer.run(rx)
            })
            .map_err(|e| StoreError::Failed(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            published,
            watcher,
            health,
            journal,
            history,
            tx: Arc::new(Mutex::new(Some(tx))),
            writer: Arc::new(Mutex::new(Some(handle))),
            position,
            priority,
        })
    }

    /// The CPU priority of the work that follows from writes (the writer;
    /// the alert evaluator runs at it too): `ingest_priority`.
    pub fn priority(&self) -> crate::priority::ingest::Priority {
        self.priority
    }

    /// Cluster mode: the last stream sequence committed (0: none).
    pub fn position(&self) -> u64 {
        self.position.load(Ordering::Acquire)
    }

    /// The latest published view. Lock-free.
    pub fn snapshot(&self) -> Arc<FleetSnapshot> {
        self.published.load_full()
    }

    /// The published snapshot's cell, for a reader that outlives borrows
    /// (the alert evaluator's thread).
    pub fn published(&self) -> Arc<ArcSwap<FleetSnapshot>> {
        self.published.clone()
    }

    /// After every commit, `watch` is called with the sessions it touched
    /// (each once) and the published snapshot's event count
    /// (`FleetSnapshot::events`), on the writer thread: it must not block.
    pub fn watch(&self, watch: Box<dyn Fn(Vec<SessionId>, u64) + Send>) {
        *self.watcher.lock().unwrap_or_else(|p| p.into_inner()) = Some(watch);
    }

    /// The store's health as of the last write. Lock-free, no disk.
    pub fn store_health(&self) -> Arc<StoreHealth> {
        self.health.load_full()
    }

    /// Reads of the sessions' journal (may touch the disk).
    pub fn journal(&self) -> Arc<dyn JournalReader> {
        self.journal.clone()
    }

    /// Reads of the history (may touch the disk).
    pub fn history(&self) -> Arc<dyn HistoryReader> {
        self.history.clone()
    }

    /// Records one minute's sample of levels and alerts firing (the
    /// evaluator's view; written by the writer thread), with its detail
    /// (JSON: alerts firing by code and level, notifications by outcome).
    pub fn record_levels(&self, sample: LevelSample, detail: String) {
        let _ = self.send(Command::Levels(sample, detail));
    }

    fn send(&self, command: Command) -> bool {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        tx.as_ref().is_some_and(|tx| tx.send(command).is_ok())
    }

    /// Makes a validated batch durable, then applies it as a whole.
    pub async fn ingest(
        &self,
        events: Vec<Event>,
        received: Timestamp,
    ) -> Result<BatchOutcome, IngestError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || IngestError::Unavailable("wapulse is shutting down".into());
        if !self.send(Command::Ingest(Ingest {
            events,
            received,
            position: None,
            reply,
        })) {
            return Err(stopped());
        }
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Cluster mode: hands stream message `position` to the writer, which
    /// commits and applies it (its events may be empty: the position alone
    /// is then recorded). A message at or before the position committed is
    /// answered and not applied again. After a failed commit every message
    /// is refused until [`Model::resume_stream`], so none is applied past
    /// a gap.
    pub fn submit_message(
        &self,
        position: u64,
        events: Vec<Event>,
        received: Timestamp,
    ) -> oneshot::Receiver<Result<BatchOutcome, IngestError>> {
        let (reply, answer) = oneshot::channel();
        let _ = self.send(Command::Ingest(Ingest {
            events,
            received,
            position: Some(position),
            reply,
        }));
        answer
    }

    /// Cluster mode: takes stream messages again after a failed commit
    /// (the consumer starts over from [`Model::position`]).
    pub async fn resume_stream(&self) {
        let (reply, answer) = oneshot::channel();
        if self.send(Command::Resume(reply)) {
            let _ = answer.await;
        }
    }

    /// Creates `session` at `at` unless it exists.
    pub async fn ensure_session(&self, session: SessionId, at: Timestamp) {
        let (reply, answer) = oneshot::channel();
        if self.send(Command::Ensure(session, at, reply)) {
            let _ = answer.await;
        }
    }

    /// Writes a snapshot now and compacts the journal; returns the records
    /// dropped.
    pub async fn maintain(&self) -> Result<u64, String> {
        let (reply, answer) = oneshot::channel();
        if !self.send(Command::Maintain(reply)) {
            return Err("wapulse is shutting down".into());
        }
        answer
            .await
            .unwrap_or_else(|_| Err("the writer stopped".into()))
    }

    /// Writes a final snapshot and stops the writer. Idempotent.
    pub async fn shutdown(&self) {
        let (reply, answer) = oneshot::channel();
        if self.send(Command::Shutdown(reply)) {
            let _ = answer.await;
        }
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}
