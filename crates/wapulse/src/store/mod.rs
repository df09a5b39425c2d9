//! Durable storage: the journal of accepted events, fleet snapshots, and
//! reads of the journal.
//!
//! [`Store`] is what the writer thread needs from a backend;
//! [`JournalReader`] is the one session read that may touch the disk
//! (`/sessions/{id}/events`). SQLite ([`sqlite`]) is the only backend; a
//! second one would implement the same two traits.

pub mod backup;
pub mod sqlite;

use serde::Serialize;
use wapulse_core::{Event, SessionId, Timestamp};

use crate::history::{Derived, LevelSample};

/// How hard a commit tries to survive a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every commit is on stable storage before it is acknowledged
    /// (survives power loss).
    #[default]
    Power,
    /// Every commit is in the OS before it is acknowledged (survives a
    /// killed process, not a power cut); faster.
    Process,
}

impl Durability {
    /// Parses `power` / `process`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "power" => Some(Self::Power),
            "process" => Some(Self::Process),
            _ => None,
        }
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be read: not a database, damaged, or a record
    /// that does not decode. The service must not start on it.
    #[error("the store {path} is unreadable or corrupt: {detail}")]
    Corrupt {
        /// The database file.
        path: String,
        /// What failed.
        detail: String,
    },
    /// The disk (or the configured `max_store_bytes`) is full.
    #[error("the store is full: {0}")]
    Full(String),
    /// Any other failure to read or write.
    #[error("the store failed: {0}")]
    Failed(String),
}

/// One journal record to append.
pub struct Record<'a> {
    /// Its sequence number (strictly increasing).
    pub seq: u64,
    /// When the request carrying it was received.
    pub received: Timestamp,
    /// The event.
    pub event: &'a Event,
}

/// Where a replica stands in the cluster's stream (cluster mode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamPosition {
    /// The JetStream stream's name.
    pub stream: String,
    /// The last stream sequence applied.
    pub seq: u64,
}

/// The latest fleet snapshot on disk.
pub struct SnapshotRecord {
    /// The last journal sequence number it includes.
    pub seq: u64,
    /// Its encoded body (see `crate::model` for the format).
    pub body: Vec<u8>,
}

/// Facts about the store for `/api/health` and `wapulse store check`.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreFacts {
    /// The backend (`sqlite`).
    pub backend: &'static str,
    /// Where it lives.
    pub location: String,
    /// The schema version in force.
    pub schema_version: usize,
    /// Migrations applied (all of them when the schema is current).
    pub migrations_applied: usize,
    /// Events held in the journal.
    pub journal_events: u64,
    /// The highest sequence number written.
    pub last_seq: u64,
    /// The newest snapshot's sequence number, if any.
    pub snapshot_seq: Option<u64>,
    /// Size on disk, in bytes.
    pub size_bytes: u64,
}

/// What the writer thread needs from a backend. Called from one thread.
pub trait Store: Send {
    /// Facts about the store (cheap: no full scans).
    fn facts(&mut self) -> Result<StoreFacts, StoreError>;
    /// The newest snapshot, if any.
    fn latest_snapshot(&mut self) -> Result<Option<SnapshotRecord>, StoreError>;
    /// Calls `apply` with every journal event after `after_seq`, in order;
    /// returns the last sequence number seen.
    fn replay(
        &mut self,
        after_seq: u64,
        apply: &mut dyn FnMut(u64, Event),
    ) -> Result<u64, StoreError>;
    /// Appends records in one transaction: all are durable, or none, and
    /// with them what they add to the history. In cluster mode `position`
    /// (the last stream message they came from) is written in the same
    /// transaction, even when `records` is empty.
    fn append(
        &mut self,
        records: &[Record<'_>],
        history: &Derived,
        position: Option<&StreamPosition>,
    ) -> Result<(), StoreError>;
    /// Records one minute's sample of levels, with its detail (JSON).
    fn record_levels(&mut self, sample: &LevelSample, detail: &str) -> Result<(), StoreError>;
    /// Forgets history older than its retention (minute rows before
    /// `minutes`, the rest before `hours`); returns the rows dropped.
    fn prune_history(&mut self, minutes: Timestamp, hours: Timestamp) -> Result<u64, StoreError>;
    /// The last stream sequence of `stream` the journal holds (0: none).
    fn position(&mut self, stream: &str) -> Result<u64, StoreError>;
    /// Stores a snapshot covering the journal up to `seq`.
    fn save_snapshot(&mut self, seq: u64, taken: Timestamp, body: &[u8]) -> Result<(), StoreError>;
    /// Drops journal records older than `cutoff` that the newest snapshot
    /// covers, and every older snapshot. Returns the records dropped.
    fn compact(&mut self, cutoff: Timestamp) -> Result<u64, StoreError>;
}

/// One event of a session's journal.
#[derive(Clone, Debug)]
pub struct StoredEvent {
    /// Its sequence number.
    pub seq: u64,
    /// When it was received.
    pub received: Timestamp,
    /// The event.
    pub event: Event,
}

/// Reads a session's journal, newest first. May touch the disk: callers
/// run it off the async workers.
pub trait JournalReader: Send + Sync {
    /// Up to `limit` events of `session` whose sequence numbers lie
    /// strictly inside `range` = (`after`, `before`) (unbounded where
    /// `None`), newest first.
    fn session_events(
        &self,
        session: &SessionId,
        limit: usize,
        range: (Option<u64>, Option<u64>),
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// The sequence number of `session`'s last retirement, if its journal
    /// holds one: its current life is what came after. Reads back from
    /// the newest event, so it costs the events since that retirement
    /// (all of the session's when it never was: ask only of a session the
    /// history says was retired).
    fn retired_seq(&self, session: &SessionId) -> Result<Option<u64>, StoreError>;
}
