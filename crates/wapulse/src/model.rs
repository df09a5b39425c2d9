//! The one place writes go through, and the snapshot every read comes from.
//!
//! A dedicated writer thread owns the [`Fleet`] and the [`Store`]. Ingest
//! requests queue up for it; it takes every request waiting, writes all
//! their events in one transaction (group commit), and only after the
//! commit applies them to the fleet and publishes a new [`FleetSnapshot`]
//! through `arc-swap`. So an acknowledged event is durable, a failed commit
//! changes nothing, and readers load the latest snapshot without any lock.
//!
//! Snapshots of the whole fleet are written every `snapshot_every_events`
//! events or `snapshot_interval`, and at shutdown; start-up loads the newest
//! and replays the journal after it.
//!
//! Snapshot body format 3 (written today): one version byte (`3`), the
//! postcard encoding of [`wapulse_core::FleetState`], then the postcard
//! encoding of `Vec<(SessionId, Labels)>` (the labels of every session that
//! has some, in id order), then of `Vec<(SessionId, Liveness)>` (disconnect
//! reason, conflicts, inbound baseline, keepalive expectation; the sessions
//! that have any). The session layout is format 1's (labels and liveness
//! are not part of a session's serde form), so format 2 (no liveness
//! section) and format 1 (the state alone) still decode: what they lack
//! starts empty.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::oneshot;
use wapulse_core::{
    BatchOutcome, DurationMs, Event, Fleet, FleetSnapshot, FleetState, Labels, Liveness, SessionId,
    Thresholds, Timestamp,
};

use crate::clock;
use crate::store::sqlite::SqliteStore;
use crate::store::{Durability, History, Record, Store, StoreError, StoreFacts, StreamPosition};

/// The snapshot body format written today (3: format 1, a labels section
/// and a liveness section). Formats 1 and 2 are read.
pub const SNAPSHOT_FORMAT: u8 = 3;

/// Most events one group commit takes.
const MAX_GROUP_EVENTS: usize = 50_000;

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
    /// Idempotency keys remembered.
    pub dedup_capacity: usize,
    /// The session created at start if the journal does not have it.
    pub default_session: SessionId,
    /// CPU priority of the writer thread.
    pub priority: crate::priority::ingest::Priority,
    /// Cluster mode: the stream whose position the journal keeps. The
    /// default session is then created by the cluster (at the stream's
    /// creation time, the same on every replica), not at start.
    pub stream: Option<String>,
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
}

/// The session model of the running service.
pub struct Model {
    published: Arc<ArcSwap<FleetSnapshot>>,
    watcher: Watcher,
    health: Arc<ArcSwap<StoreHealth>>,
    history: Arc<dyn History>,
    tx: Mutex<Option<Sender<Command>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    position: Arc<AtomicU64>,
}

/// Told which sessions each commit touched (the alert evaluator).
type Watcher = Arc<Mutex<Option<Box<dyn Fn(Vec<SessionId>) + Send>>>>;

struct Writer {
    watcher: Watcher,
    fleet: Fleet,
    store: Box<dyn Store>,
    published: Arc<ArcSwap<FleetSnapshot>>,
    health: Arc<ArcSwap<StoreHealth>>,
    last_seq: u64,
    since_snapshot: u64,
    last_snapshot_at: Timestamp,
    last_compaction_at: Timestamp,
    options: ModelOptions,
    /// Cluster mode: the last stream sequence committed.
    position: Arc<AtomicU64>,
    /// Cluster mode: a commit failed; stream messages are refused until
    /// the consumer starts over.
    stream_broken: bool,
}

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
        let history: Arc<dyn History> = Arc::new(store.history()?);
        Self::start(Box::new(store), history, options, now)
    }

    fn start(
        mut store: Box<dyn Store>,
        history: Arc<dyn History>,
        options: ModelOptions,
        now: Timestamp,
    ) -> Result<Self, StoreError> {
        let started = std::time::Instant::now();
        let (mut fleet, snapshot_seq) = match store.latest_snapshot()? {
            Some(snap) => (decode_snapshot(&snap.body, &options)?, snap.seq),
            None => (
                Fleet::with_dedup_capacity(options.thresholds.clone(), options.dedup_capacity),
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
            history,
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
            position,
        })
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
    /// (each once), on the writer thread: it must not block.
    pub fn watch(&self, watch: Box<dyn Fn(Vec<SessionId>) + Send>) {
        *self.watcher.lock().unwrap_or_else(|p| p.into_inner()) = Some(watch);
    }

    /// The store's health as of the last write. Lock-free, no disk.
    pub fn store_health(&self) -> Arc<StoreHealth> {
        self.health.load_full()
    }

    /// Session history (may touch the disk).
    pub fn history(&self) -> Arc<dyn History> {
        self.history.clone()
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

fn decode_snapshot(body: &[u8], options: &ModelOptions) -> Result<Fleet, StoreError> {
    let state = decode_state(body).map_err(|e| StoreError::Corrupt {
        path: options.data_dir.display().to_string(),
        detail: format!("the newest snapshot does not decode: {e}"),
    })?;
    Ok(Fleet::from_state(
        options.thresholds.clone(),
        state,
        options.dedup_capacity,
    ))
}

/// Decodes a snapshot body of format 1, 2 or 3, or says what is wrong.
fn decode_state(body: &[u8]) -> Result<FleetState, String> {
    let (format, rest) = body.split_first().ok_or("empty")?;
    if !(1..=3).contains(format) {
        return Err(format!("unknown snapshot format {format}"));
    }
    let (mut state, mut rest): (FleetState, _) =
        postcard::take_from_bytes(rest).map_err(|e| e.to_string())?;
    if *format >= 2 {
        let (labels, after): (Vec<(SessionId, Labels)>, _) =
            postcard::take_from_bytes(rest).map_err(|e| format!("labels section: {e}"))?;
        state
            .restore_labels(labels)
            .map_err(|e| format!("labels section: labels for {e}"))?;
        rest = after;
    }
    if *format >= 3 {
        let (liveness, after): (Vec<(SessionId, Liveness)>, _) =
            postcard::take_from_bytes(rest).map_err(|e| format!("liveness section: {e}"))?;
        state
            .restore_liveness(liveness)
            .map_err(|e| format!("liveness section: liveness for {e}"))?;
        rest = after;
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes after the last section", rest.len()));
    }
    Ok(state)
}

/// Checks that a snapshot body decodes (for `wapulse store check`).
pub fn check_snapshot(body: &[u8]) -> Result<(), String> {
    decode_state(body).map(|_| ())
}

/// Encodes a fleet as a snapshot body (format [`SNAPSHOT_FORMAT`]).
pub fn encode_snapshot(fleet: &Fleet) -> Result<Vec<u8>, String> {
    let state = fleet.state_ref();
    let body = postcard::to_extend(&state, vec![SNAPSHOT_FORMAT]).map_err(|e| e.to_string())?;
    let body = postcard::to_extend(&state.labels(), body).map_err(|e| e.to_string())?;
    postcard::to_extend(&state.liveness(), body).map_err(|e| e.to_string())
}

impl Writer {
    fn run(mut self, rx: Receiver<Command>) {
        loop {
            let first = match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(c) => c,
                Err(RecvTimeoutError::Timeout) => {
                    self.housekeeping(clock::now());
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // Every handle is gone without a shutdown: still leave a
                    // snapshot so the next start replays little.
                    if let Err(e) = self.snapshot(clock::now()) {
                        tracing::error!(error = %e, "final snapshot failed; the journal still has everything");
                    }
                    return;
                }
            };
            let mut group = Vec::new();
            let mut control = None;
            match first {
                Command::Ingest(i) => group.push(i),
                other => control = Some(other),
            }
            // Group commit: take every request already waiting.
            let mut events: usize = group.iter().map(|i| i.events.len()).sum();
            while control.is_none() && events < MAX_GROUP_EVENTS {
                match rx.try_recv() {
                    Ok(Command::Ingest(i)) => {
                        events += i.events.len();
                        group.push(i);
                    }
                    Ok(other) => control = Some(other),
                    Err(_) => break,
                }
            }
            if !group.is_empty() {
                self.commit(group);
            }
            match control {
                Some(Command::Maintain(reply)) => {
                    let now = clock::now();
                    let result = self
                        .snapshot(now)
                        .and_then(|()| self.compact(now))
                        .map_err(|e| e.to_string());
                    let _ = reply.send(result);
                }
                Some(Command::Shutdown(reply)) => {
                    if let Err(e) = self.snapshot(clock::now()) {
                        tracing::error!(error = %e, "final snapshot failed; the journal still has everything");
                    }
                    let _ = reply.send(());
                    return;
                }
                Some(Command::Ensure(session, at, reply)) => {
                    if self.fleet.view().get(session.as_str()).is_none() {
                        self.fleet.ensure_session(&session, at);
                        self.since_snapshot += 1;
                        self.published.store(Arc::new(self.fleet.snapshot()));
                        // Not in the journal: a snapshot keeps it, so a
                        // restart replays later events on top of it, as
                        // they were applied.
                        if let Err(e) = self.snapshot(clock::now()) {
                            tracing::error!(error = %e, "snapshot failed; will retry");
                        }
                    }
                    let _ = reply.send(());
                }
                Some(Command::Resume(reply)) => {
                    self.stream_broken = false;
                    let _ = reply.send(());
                }
                Some(Command::Ingest(_)) | None => self.housekeeping(clock::now()),
            }
        }
    }

    fn commit(&mut self, group: Vec<Ingest>) {
        // Cluster mode: a message already committed is answered, not
        // applied again; none is taken past a failed commit.
        let committed = self.position.load(Ordering::Acquire);
        let mut group = group;
        group.retain_mut(|i| match i.position {
            Some(_) if self.stream_broken => {
                let (tx, _) = oneshot::channel();
                let reply = std::mem::replace(&mut i.reply, tx);
                let _ = reply.send(Err(IngestError::Unavailable(
                    "an earlier stream message failed to commit".into(),
                )));
                false
            }
            Some(p) if p <= committed => {
                let (tx, _) = oneshot::channel();
                let reply = std::mem::replace(&mut i.reply, tx);
                let _ = reply.send(Ok(BatchOutcome::default()));
                false
            }
            _ => true,
        });
        if group.is_empty() {
            return;
        }
        let mut keys: HashSet<(SessionId, Box<str>)> = HashSet::new();
        let mut records = Vec::new();
        let mut outcomes = vec![BatchOutcome::default(); group.len()];
        let mut seq = self.last_seq;
        for (request, outcome) in group.iter().zip(&mut outcomes) {
            for event in &request.events {
                let duplicate = event.id.as_ref().is_some_and(|id| {
                    self.fleet.is_duplicate(event)
                        || !keys.insert((event.session.clone(), id.clone()))
                });
                if duplicate {
                    outcome.duplicates += 1;
                    continue;
                }
                seq += 1;
                outcome.accepted += 1;
                records.push(Record {
                    seq,
                    received: request.received,
                    event,
                });
            }
        }
        let position = group
            .iter()
            .filter_map(|i| i.position)
            .max()
            .zip(self.options.stream.as_ref())
            .map(|(seq, stream)| StreamPosition {
                stream: stream.clone(),
                seq,
            });
        let result = if records.is_empty() && position.is_none() {
            Ok(())
        } else {
            self.store.append(&records, position.as_ref())
        };
        match result {
            Ok(()) => {
                for r in &records {
                    self.fleet.apply(r.event);
                }
                if let Some(p) = &position {
                    self.position.store(p.seq, Ordering::Release);
                }
                self.last_seq = seq;
                self.since_snapshot += records.len() as u64;
                if !records.is_empty() {
                    self.published.store(Arc::new(self.fleet.snapshot()));
                    let watcher = self.watcher.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(watch) = watcher.as_ref() {
                        let mut touched: Vec<SessionId> =
                            records.iter().map(|r| r.event.session.clone()).collect();
                        touched.sort_unstable();
                        touched.dedup();
                        watch(touched);
                    }
                }
                self.record_health(None, !records.is_empty());
                drop(records);
                for (request, outcome) in group.into_iter().zip(outcomes) {
                    let _ = request.reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "journal commit failed; batch refused");
                if position.is_some() {
                    self.stream_broken = true;
                }
                self.record_health(Some(e.to_string()), false);
                drop(records);
                for request in group {
                    let _ = request
                        .reply
                        .send(Err(IngestError::Unavailable(e.to_string())));
                }
            }
        }
    }

    fn record_health(&mut self, error: Option<String>, committed: bool) {
        let previous = self.health.load();
        let facts = match self.store.facts() {
            Ok(f) => f,
            Err(_) => previous.facts.clone(),
        };
        self.health.store(Arc::new(StoreHealth {
            reachable: error.is_none(),
            error,
            facts,
            last_commit_at: if committed {
                Some(clock::now())
            } else {
                previous.last_commit_at
            },
        }));
    }

    fn housekeeping(&mut self, now: Timestamp) {
        let due = self.since_snapshot >= self.options.snapshot_every_events
            || (self.since_snapshot > 0
                && now.since(self.last_snapshot_at) >= self.options.snapshot_interval);
        if due && let Err(e) = self.snapshot(now) {
            tracing::error!(error = %e, "snapshot failed; will retry");
        }
        if now.since(self.last_compaction_at) >= DurationMs::from_hours(1)
            && let Err(e) = self.compact(now)
        {
            tracing::error!(error = %e, "journal compaction failed; will retry");
        }
    }

    fn snapshot(&mut self, now: Timestamp) -> Result<(), StoreError> {
        if self.since_snapshot == 0 {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let body = encode_snapshot(&self.fleet).map_err(StoreError::Failed)?;
        self.store.save_snapshot(self.last_seq, now, &body)?;
        tracing::info!(
            seq = self.last_seq,
            bytes = body.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "snapshot written"
        );
        self.since_snapshot = 0;
        self.last_snapshot_at = now;
        self.record_health(None, false);
        Ok(())
    }

    fn compact(&mut self, now: Timestamp) -> Result<u64, StoreError> {
        self.last_compaction_at = now;
        let dropped = self.store.compact(now.minus(self.options.retention))?;
        if dropped > 0 {
            tracing::info!(dropped, "journal compacted");
        }
        self.record_health(None, false);
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    use wapulse_core::Session;

    use super::*;

    fn sid(id: &str) -> SessionId {
        SessionId::parse(id).unwrap()
    }

    /// The events behind `tests/data/snapshot-format-1.bin`, a snapshot
    /// written by wapulse before labels existed.
    fn format_1_events() -> Vec<Event> {
        include_str!("../tests/data/snapshot-format-1.ndjson")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn fleet_of(events: &[Event]) -> Fleet {
        let mut fleet = Fleet::new(Thresholds::default());
        fleet.apply_all(events);
        fleet
    }

    fn restored(body: &[u8]) -> Fleet {
        Fleet::from_state(
            Thresholds::default(),
            decode_state(body).unwrap(),
            wapulse_core::fleet::DEFAULT_DEDUP_CAPACITY,
        )
    }

    /// The fleet as a format-2 snapshot held it (the byte 2, the state,
    /// the labels section): everything but liveness.
    fn format_2_body(fleet: &Fleet) -> Vec<u8> {
        let state = fleet.state_ref();
        let body = postcard::to_extend(&state, vec![2]).unwrap();
        postcard::to_extend(&state.labels(), body).unwrap()
    }

    fn without_liveness(fleet: &Fleet) -> Fleet {
        restored(&format_2_body(fleet))
    }

    fn same_model(a: &Fleet, b: &Fleet) {
        let sessions = |f: &Fleet| -> Vec<Session> {
            let mut all: Vec<Session> = f.view().sessions().map(|s| Session::clone(s)).collect();
            all.sort_by(|x, y| x.id().cmp(y.id()));
            all
        };
        // Session's PartialEq covers labels; the state's JSON covers the
        // platform metrics and the idempotency memory.
        assert_eq!(sessions(a), sessions(b));
        assert_eq!(
            serde_json::to_value(a.to_state()).unwrap(),
            serde_json::to_value(b.to_state()).unwrap()
        );
    }

    fn cluster_options(dir: &std::path::Path) -> ModelOptions {
        ModelOptions {
            data_dir: dir.to_path_buf(),
            durability: Durability::Process,
            max_store_bytes: None,
            retention: DurationMs::from_hours(1),
            snapshot_every_events: 1000,
            snapshot_interval: DurationMs::from_mins(5),
            thresholds: Thresholds::default(),
            dedup_capacity: 1000,
            default_session: sid("default"),
            priority: crate::priority::ingest::Priority::default(),
            stream: Some("WAPULSE".into()),
        }
    }

    #[test]
    fn a_stream_message_is_applied_once_and_its_position_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let now = Timestamp::from_millis(1_700_000_000_000);
        let message = |seq: u64| {
            let e: Event = serde_json::from_value(serde_json::json!({
                "session": "a", "at": "2026-02-05T11:00:00Z", "type": "message",
                "direction": "inbound", "count": seq
            }))
            .unwrap();
            vec![e]
        };
        let model = Model::open(cluster_options(dir.path()), now).unwrap();
        // Cluster mode: no default session until the stream says when.
        assert!(model.snapshot().get("default").is_none());
        assert_eq!(model.position(), 0);
        let one = model.submit_message(1, message(1), now);
        let two = model.submit_message(2, message(2), now);
        assert_eq!(one.blocking_recv().unwrap().unwrap().accepted, 1);
        assert_eq!(two.blocking_recv().unwrap().unwrap().accepted, 1);
        // Delivered again (a consumer started over): answered, not applied.
        let again = model.submit_message(2, message(2), now);
        assert_eq!(again.blocking_recv().unwrap().unwrap().accepted, 0);
        // A message with no events (a silence) still moves the position.
        let empty = model.submit_message(3, Vec::new(), now);
        empty.blocking_recv().unwrap().unwrap();
        assert_eq!(model.position(), 3);
        let inbound = |m: &Model| m.snapshot().get("a").unwrap().traffic.inbound;
        assert_eq!(inbound(&model), 3);
        drop(model);
        let model = Model::open(cluster_options(dir.path()), now).unwrap();
        assert_eq!(model.position(), 3, "stored with the events it brought");
        assert_eq!(inbound(&model), 3);
        let stale = model.submit_message(1, message(1), now);
        assert_eq!(stale.blocking_recv().unwrap().unwrap().accepted, 0);
        assert_eq!(inbound(&model), 3);
    }

    #[test]
    fn cluster_mode_refuses_a_journal_written_in_embedded_mode() {
        let dir = tempfile::tempdir().unwrap();
        let now = Timestamp::from_millis(1_700_000_000_000);
        let mut embedded = cluster_options(dir.path());
        embedded.stream = None;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let model = Model::open(embedded, now).unwrap();
            model.ingest(format_1_events(), now).await.unwrap();
            model.shutdown().await;
        });
        let Err(e) = Model::open(cluster_options(dir.path()), now) else {
            panic!("an embedded journal must not be taken for the stream's");
        };
        assert!(e.to_string().contains("embedded mode"), "{e}");
    }

    #[test]
    fn a_format_1_snapshot_from_before_labels_still_restores() {
        let body = include_bytes!("../tests/data/snapshot-format-1.bin");
        assert_eq!(body[0], 1);
        check_snapshot(body).unwrap();
        let fleet = restored(body);
        // Format 1 knew no liveness: the same events give the same model
        // but for it.
        same_model(&fleet, &without_liveness(&fleet_of(&format_1_events())));
        assert_eq!(fleet.view().len(), 2);
        assert!(fleet.view().sessions().all(|s| s.labels.is_empty()));
        // Its idempotency memory came back too.
        let mut again = format_1_events()[10].clone();
        assert_eq!(again.id.as_deref(), Some("k1"));
        again.at = again.at.plus(DurationMs::from_secs(1));
        assert!(fleet.is_duplicate(&again));
    }

    /// Labels, a named disconnect, conflicts, an inbound baseline and a
    /// keepalive expectation over the format-1 events.
    fn events_with_liveness() -> Vec<Event> {
        let mut events = format_1_events();
        let line = |json: serde_json::Value| -> Event { serde_json::from_value(json).unwrap() };
        events.push(line(serde_json::json!({
            "session": "a", "at": "2026-02-05T11:09:00Z", "type": "labels", "labels": {"tenant": "acme"}
        })));
        for (i, (state, reason)) in [
            ("disconnected", "440"),
            ("connected", ""),
            ("disconnected", "401"),
        ]
        .into_iter()
        .enumerate()
        {
            let mut e = serde_json::json!({
                "session": "b", "at": format!("2026-02-05T11:1{i}:00Z"), "type": "state", "state": state
            });
            if !reason.is_empty() {
                e["reason"] = reason.into();
            }
            events.push(line(e));
        }
        events.push(line(serde_json::json!({
            "session": "a", "at": "2026-02-05T11:13:00Z", "type": "message", "direction": "inbound", "count": 3
        })));
        events.push(line(serde_json::json!({
            "session": "a", "at": "2026-02-05T11:14:00Z", "type": "keepalives", "expected": false
        })));
        events
    }

    #[test]
    fn format_3_keeps_labels_and_liveness_exactly() {
        let fleet = fleet_of(&events_with_liveness());
        let b = fleet.view().get("b").unwrap();
        assert_eq!(b.liveness.conflicts_total, 1);
        assert_eq!(
            b.liveness.last_disconnect.as_ref().unwrap().read().code,
            Some(401)
        );
        let body = encode_snapshot(&fleet).unwrap();
        assert_eq!(body[0], SNAPSHOT_FORMAT);
        assert_eq!(SNAPSHOT_FORMAT, 3);
        check_snapshot(&body).unwrap();
        let back = restored(&body);
        same_model(&back, &fleet);
        let a = back.view().get("a").unwrap();
        assert!(a.liveness.keepalives_off);
        assert!(a.liveness.inbound.weight() > 0.0);
        // Restored exactly: the same events on top give the same model.
        let mut more = back;
        let mut original = fleet;
        let tail = events_with_liveness()[12..].to_vec();
        more.apply_all(&tail);
        original.apply_all(&tail);
        same_model(&more, &original);
    }

    #[test]
    fn a_format_2_snapshot_restores_with_empty_liveness() {
        let fleet = fleet_of(&events_with_liveness());
        let body = format_2_body(&fleet);
        check_snapshot(&body).unwrap();
        let back = restored(&body);
        assert_eq!(
            back.view().get("a").unwrap().labels.get("tenant"),
            Some("acme")
        );
        assert!(back.view().sessions().all(|s| s.liveness.is_empty()));
        let mut expected = Session::clone(fleet.view().get("b").unwrap());
        expected.liveness = Default::default();
        assert_eq!(**back.view().get("b").unwrap(), expected);
    }

    #[test]
    fn labels_are_kept_exactly() {
        let mut events = format_1_events();
        let labels = |session: &str, json: serde_json::Value| -> Event {
            serde_json::from_value(serde_json::json!({
                "session": session, "at": "2026-02-05T11:09:00Z", "type": "labels", "labels": json
            }))
            .unwrap()
        };
        events.push(labels(
            "a",
            serde_json::json!({"tenant": "acme", "note": "q\"uote\\ \n"}),
        ));
        events.push(labels("b", serde_json::json!({"region": "eu-1"})));
        events.push(labels(
            "b",
            serde_json::json!({"region": null, "zone": "z"}),
        ));
        let fleet = fleet_of(&events);
        let body = encode_snapshot(&fleet).unwrap();
        assert_eq!(body[0], SNAPSHOT_FORMAT);
        check_snapshot(&body).unwrap();
        let back = restored(&body);
        same_model(&back, &fleet);
        let a = back.view().get("a").unwrap();
        assert_eq!(a.labels.get("note"), Some("q\"uote\\ \n"));
        let b = back.view().get("b").unwrap();
        assert_eq!(b.labels.iter().collect::<Vec<_>>(), [("zone", "z")]);
        // Without labels the section is an empty list, and still exact.
        let plain = fleet_of(&format_1_events());
        same_model(&restored(&encode_snapshot(&plain).unwrap()), &plain);
    }

    #[test]
    fn a_damaged_body_is_refused() {
        let fleet = fleet_of(&format_1_events());
        let body = encode_snapshot(&fleet).unwrap();
        let mut longer = body.clone();
        longer.push(0);
        assert!(
            check_snapshot(&longer)
                .unwrap_err()
                .contains("after the last section")
        );
        assert!(check_snapshot(&body[..body.len() - 1]).is_err());
        // Labels for a session the snapshot does not hold.
        let mut ghost = postcard::to_stdvec(&fleet.state_ref()).unwrap();
        ghost.insert(0, 2);
        let stray = vec![(sid("ghost"), Labels::try_from_pairs([("a", "b")]).unwrap())];
        let ghost = postcard::to_extend(&stray, ghost).unwrap();
        assert!(check_snapshot(&ghost).unwrap_err().contains("ghost"));
        assert_eq!(
            check_snapshot(&[9]).unwrap_err(),
            "unknown snapshot format 9"
        );
        assert_eq!(check_snapshot(&[]).unwrap_err(), "empty");
    }
}
