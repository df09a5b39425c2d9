//! The writer thread: owns the fleet and the store, commits every waiting
//! request in one transaction (group commit), applies after the commit,
//! publishes the snapshot, and keeps snapshots and compaction on schedule.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::oneshot;
use wapulse_core::{BatchOutcome, DurationMs, Fleet, FleetSnapshot, SessionId, Timestamp};

use super::{Command, Ingest, IngestError, ModelOptions, StoreHealth, Watcher, codec};
use crate::clock;
use crate::history::Derived;
use crate::store::{Record, Store, StoreError, StreamPosition};

/// Most events one group commit takes.
const MAX_GROUP_EVENTS: usize = 50_000;

pub(super) struct Writer {
    pub(super) watcher: Watcher,
    pub(super) fleet: Fleet,
    pub(super) store: Box<dyn Store>,
    pub(super) published: Arc<ArcSwap<FleetSnapshot>>,
    pub(super) health: Arc<ArcSwap<StoreHealth>>,
    pub(super) last_seq: u64,
    pub(super) since_snapshot: u64,
    pub(super) last_snapshot_at: Timestamp,
    pub(super) last_compaction_at: Timestamp,
    pub(super) options: ModelOptions,
    /// Cluster mode: the last stream sequence committed.
    pub(super) position: Arc<AtomicU64>,
    /// Cluster mode: a commit failed; stream messages are refused until
    /// the consumer starts over.
    pub(super) stream_broken: bool,
    /// Sessions by state after the last commit, not yet in the history:
    /// written with the next commit, or alone when the writer idles.
    pub(super) states: Option<(i64, [usize; wapulse_core::SessionState::ALL.len()])>,
}

impl Writer {
    pub(super) fn run(mut self, rx: Receiver<Command>) {
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
                Some(Command::Levels(sample, detail)) => {
                    if let Err(e) = self.store.record_levels(&sample, &detail) {
                        tracing::warn!(error = %e, "the minute's levels were not recorded");
                    }
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
        let mut history = Derived::of(self.fleet.view(), records.iter().map(|r| r.event));
        if !records.is_empty() {
            history.states = self.states;
        }
        let result = if records.is_empty() && position.is_none() {
            Ok(())
        } else {
            match self.store.append(&records, &history, position.as_ref()) {
                // A full store forgets its oldest journal records rather
                // than refuse new events: room is made, and the commit tried
                // once more.
                Err(StoreError::Full(_)) if self.make_room(clock::now()) => {
                    self.store.append(&records, &history, position.as_ref())
                }
                other => other,
            }
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
                    // Filed under the minute the batch was received (the
                    // stream's receive time in cluster mode: the same on
                    // every replica).
                    let received = group
                        .iter()
                        .map(|i| i.received)
                        .max()
                        .unwrap_or(Timestamp::from_millis(0));
                    self.states = Some((
                        crate::history::bucket(received, crate::history::MINUTE_MS),
                        self.fleet.view().by_state(),
                    ));
                    let snapshot = self.fleet.snapshot();
                    let events = snapshot.events();
                    self.published.store(Arc::new(snapshot));
                    let watcher = self.watcher.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(watch) = watcher.as_ref() {
                        let mut touched: Vec<SessionId> =
                            records.iter().map(|r| r.event.session.clone()).collect();
                        touched.sort_unstable();
                        touched.dedup();
                        watch(touched, events);
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
        if let Some(states) = self.states.take() {
            let alone = Derived {
                states: Some(states),
                ..Derived::default()
            };
            if let Err(e) = self.store.append(&[], &alone, None) {
                tracing::warn!(error = %e, "the fleet's states were not recorded; will retry");
                self.states = Some(states);
            }
        }
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
        let body = codec::encode(&self.fleet).map_err(StoreError::Failed)?;
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

    /// The store is full (`max_store_bytes` or the disk): forgets every
    /// journal record a snapshot covers, whatever `retention` says, after
    /// taking a snapshot of all that was applied (so it covers them all).
    /// The model keeps everything; what is forgotten is the journal's
    /// oldest history (`/sessions/{id}/events`, the timeline). Whether any
    /// room was made.
    fn make_room(&mut self, now: Timestamp) -> bool {
        let everything = Timestamp::from_millis(i64::MAX);
        // What the last snapshot covers first: that room may be what the
        // new snapshot needs.
        let mut dropped = self.store.compact(everything).unwrap_or(0);
        let snapshotted = self.snapshot(now).is_ok();
        dropped += self.store.compact(everything).unwrap_or(0);
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "the store is full: forgot the oldest journal records (the model keeps \
                 everything; session history now starts at the newest snapshot)"
            );
        }
        dropped > 0 || snapshotted
    }

    fn compact(&mut self, now: Timestamp) -> Result<u64, StoreError> {
        self.last_compaction_at = now;
        let dropped = self.store.compact(now.minus(self.options.retention))?;
        let history = &self.options.history;
        let forgotten = self
            .store
            .prune_history(now.minus(history.minutes), now.minus(history.hours))?;
        if forgotten > 0 {
            tracing::info!(forgotten, "history past its retention forgotten");
        }
        if dropped > 0 {
            tracing::info!(dropped, "journal compacted");
        }
        self.record_health(None, false);
        Ok(dropped)
    }
}
