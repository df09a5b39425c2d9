//! The embedded SQLite store: one database file in WAL mode under the data
//! directory. The writer thread owns one connection; journal reads use
//! another, read-only.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};

use crate::history::read::ReadFailed;
use crate::history::sqlite::Reads;
use crate::history::{Derived, FleetPoint, HistoryReader, LevelSample, SessionHour};
use wapulse_core::availability::Timeline;
use wapulse_core::{Event, SessionId, Timestamp};

use super::{
    Durability, JournalReader, Record, SnapshotRecord, Store, StoreError, StoreFacts, StoredEvent,
    StreamPosition,
};

/// The database file's name inside the data directory.
pub const FILE_NAME: &str = "wapulse.db";

/// The journal record format written today: the event's wire JSON.
pub const RECORD_FORMAT: i64 = 1;

/// Schema versions, applied in order at start. Never edit a released one:
/// add the next.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(
            "CREATE TABLE journal (
             seq INTEGER PRIMARY KEY,
             session TEXT NOT NULL,
             at_ms INTEGER NOT NULL,
             received_ms INTEGER NOT NULL,
             format INTEGER NOT NULL,
             body TEXT NOT NULL
         ) STRICT;
         CREATE INDEX journal_by_session ON journal (session, seq);
         CREATE TABLE snapshots (
             seq INTEGER PRIMARY KEY,
             taken_ms INTEGER NOT NULL,
             body BLOB NOT NULL
         ) STRICT;",
        ),
        // Alerting: lifecycle state per (session, code), aggregation
        // groups, the notification outbox, the history of transitions and
        // notifications, silences. Written by the alerting thread only.
        M::up(
            "CREATE TABLE alert_state (
             session TEXT NOT NULL,
             code TEXT NOT NULL,
             body TEXT NOT NULL,
             PRIMARY KEY (session, code)
         ) STRICT;
         CREATE TABLE alert_groups (
             receiver TEXT NOT NULL,
             key TEXT NOT NULL,
             body TEXT NOT NULL,
             PRIMARY KEY (receiver, key)
         ) STRICT;
         CREATE TABLE outbox (
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             receiver TEXT NOT NULL,
             group_key TEXT NOT NULL,
             created_ms INTEGER NOT NULL,
             body TEXT NOT NULL,
             state TEXT NOT NULL,
             attempts INTEGER NOT NULL DEFAULT 0,
             next_ms INTEGER NOT NULL,
             last_error TEXT,
             done_ms INTEGER
         ) STRICT;
         CREATE INDEX outbox_due ON outbox (receiver, state, id);
         CREATE TABLE alert_history (
             seq INTEGER PRIMARY KEY AUTOINCREMENT,
             at_ms INTEGER NOT NULL,
             kind TEXT NOT NULL,
             body TEXT NOT NULL
         ) STRICT;
         CREATE INDEX alert_history_at ON alert_history (at_ms);
         CREATE TABLE silences (
             id TEXT PRIMARY KEY,
             ends_ms INTEGER NOT NULL,
             body TEXT NOT NULL
         ) STRICT;",
        ),
        // Cluster mode: the last stream sequence the journal holds, written
        // in the same transaction as the events it brought.
        M::up(
            "CREATE TABLE stream_position (
             stream TEXT PRIMARY KEY,
             seq INTEGER NOT NULL
         ) STRICT;",
        ),
        // History (issue 31): state changes, fleet counts and samples,
        // session hours, written in the journal's transaction.
        M::up(crate::history::sqlite::SCHEMA),
        // The audit log (issue 30): admin actions and new token addresses,
        // written and read by `tenancy::audit`.
        M::up(
            "CREATE TABLE audit (
             seq INTEGER PRIMARY KEY AUTOINCREMENT,
             at_ms INTEGER NOT NULL,
             who TEXT NOT NULL,
             action TEXT NOT NULL,
             target TEXT NOT NULL,
             detail TEXT NOT NULL
         ) STRICT;
         CREATE INDEX audit_by_who ON audit (who, seq);",
        ),
    ])
}

// SQLite integers are signed; sequence numbers and sizes never negative.
fn unsigned(v: i64) -> u64 {
    v.max(0) as u64
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// How many schema versions exist.
pub fn schema_versions() -> usize {
    5
}

/// The writer's side of the SQLite store.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    journal_events: u64,
    last_seq: u64,
    snapshot_seq: Option<u64>,
}

/// Sets what every connection that writes the store needs: WAL (readers
/// never block the writer), `synchronous` for `durability` (FULL syncs the
/// WAL on every commit: power loss; NORMAL leaves it to the OS: a killed
/// process), how long to wait for the other writer, and the size cap.
pub(crate) fn tune(
    conn: &Connection,
    durability: Durability,
    max_bytes: Option<u64>,
) -> rusqlite::Result<()> {
    let sync = match durability {
        Durability::Power => "FULL",
        Durability::Process => "NORMAL",
    };
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", sync)?;
    // The journal's writer and the alerting side share the file.
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    if let Some(bytes) = max_bytes {
        let page: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
        let pages = (bytes / page.max(1) as u64).clamp(1, i64::MAX as u64) as i64;
        conn.pragma_update(None, "max_page_count", pages)?;
    }
    Ok(())
}

/// A rusqlite error as a [`StoreError`] (full, corrupt, or failed).
pub(crate) fn classify(path: &Path, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreError::Full(e.to_string()),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            path: path.display().to_string(),
            detail: e.to_string(),
        },
        _ => StoreError::Failed(e.to_string()),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `dir`, applies
    /// migrations, and checks that it can be read. A database that cannot
    /// be read is an error, never a reason to start empty.
    pub fn open(
        dir: &Path,
        durability: Durability,
        max_bytes: Option<u64>,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Failed(format!(
                "cannot create the data directory {} (data_dir / WAPULSE_DATA_DIR): {e}",
                dir.display()
            ))
        })?;
        let path = dir.join(FILE_NAME);
        let fail = |e: rusqlite::Error| match classify(&path, e) {
            StoreError::Failed(detail) => StoreError::Failed(format!(
                "cannot open {} (data_dir / WAPULSE_DATA_DIR): {detail}",
                path.display()
            )),
            other => other,
        };
        let mut conn = Connection::open(&path).map_err(fail)?;
        tune(&conn, durability, max_bytes).map_err(fail)?;
        migrations().to_latest(&mut conn).map_err(|e| match e {
            rusqlite_migration::Error::RusqliteError { err, .. } => fail(err),
            other => StoreError::Corrupt {
                path: path.display().to_string(),
                detail: format!("schema migration failed: {other}"),
            },
        })?;
        let (journal_events, last_journal_seq): (i64, Option<i64>) = conn
            .query_row("SELECT count(*), max(seq) FROM journal", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(fail)?;
        let snapshot_seq: Option<i64> = conn
            .query_row("SELECT max(seq) FROM snapshots", [], |r| r.get(0))
            .map_err(fail)?;
        Ok(Self {
            conn,
            last_seq: unsigned(last_journal_seq.unwrap_or(0).max(snapshot_seq.unwrap_or(0))),
            path,
            journal_events: unsigned(journal_events),
            snapshot_seq: snapshot_seq.map(unsigned),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The highest sequence number written so far.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Runs SQLite's full integrity check; `Ok` lists nothing when sound.
    pub fn integrity_problems(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("PRAGMA integrity_check")
            .map_err(|e| classify(&self.path, e))?;
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .and_then(Iterator::collect)
            .map_err(|e| classify(&self.path, e))?;
        Ok(rows.into_iter().filter(|r| r != "ok").collect())
    }

    /// A reader of the journal, on its own read-only connection.
    pub fn journal(&self) -> Result<SqliteJournal, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| classify(&self.path, e))?;
        Ok(SqliteJournal {
            conn: Mutex::new(conn),
            path: self.path.clone(),
        })
    }

    fn corrupt_record(&self, seq: u64, e: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            path: self.path.display().to_string(),
            detail: format!("journal record {seq} does not decode: {e}"),
        }
    }
}

impl Store for SqliteStore {
    fn facts(&mut self) -> Result<StoreFacts, StoreError> {
        let pages: i64 = self
            .conn
            .pragma_query_value(None, "page_count", |r| r.get(0))
            .map_err(|e| classify(&self.path, e))?;
        let page: i64 = self
            .conn
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .map_err(|e| classify(&self.path, e))?;
        let wal = std::fs::metadata(self.path.with_extension("db-wal")).map_or(0, |m| m.len());
        let version = usize::try_from(
            self.conn
                .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
                .map_err(|e| classify(&self.path, e))?,
        )
        .unwrap_or(0);
        Ok(StoreFacts {
            backend: "sqlite",
            location: self.path.display().to_string(),
            schema_version: version,
            migrations_applied: version,
            journal_events: self.journal_events,
            last_seq: self.last_seq,
            snapshot_seq: self.snapshot_seq,
            size_bytes: unsigned(pages) * unsigned(page) + wal,
        })
    }

    fn position(&mut self, stream: &str) -> Result<u64, StoreError> {
        self.conn
            .query_row(
                "SELECT seq FROM stream_position WHERE stream = ?1",
                [stream],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|seq| seq.map_or(0, unsigned))
            .map_err(|e| classify(&self.path, e))
    }

    fn latest_snapshot(&mut self) -> Result<Option<SnapshotRecord>, StoreError> {
        self.conn
            .query_row(
                "SELECT seq, body FROM snapshots ORDER BY seq DESC LIMIT 1",
                [],
                |r| {
                    Ok(SnapshotRecord {
                        seq: unsigned(r.get(0)?),
                        body: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(|e| classify(&self.path, e))
    }

    fn replay(
        &mut self,
        after_seq: u64,
        apply: &mut dyn FnMut(u64, Event),
    ) -> Result<u64, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, format, body FROM journal WHERE seq > ?1 ORDER BY seq")
            .map_err(|e| classify(&self.path, e))?;
        let mut rows = stmt
            .query([signed(after_seq)])
            .map_err(|e| classify(&self.path, e))?;
        let mut last = after_seq;
        while let Some(row) = rows.next().map_err(|e| classify(&self.path, e))? {
            let seq = unsigned(row.get(0).map_err(|e| classify(&self.path, e))?);
            let format: i64 = row.get(1).map_err(|e| classify(&self.path, e))?;
            if format != RECORD_FORMAT {
                return Err(self.corrupt_record(seq, format!("unknown record format {format}")));
            }
            let body = row.get_ref(2).map_err(|e| classify(&self.path, e))?;
            let text = body.as_str().map_err(|e| self.corrupt_record(seq, e))?;
            let event: Event =
                serde_json::from_str(text).map_err(|e| self.corrupt_record(seq, e))?;
            apply(seq, event);
            last = seq;
        }
        Ok(last)
    }

    fn append(
        &mut self,
        records: &[Record<'_>],
        history: &Derived,
        position: Option<&StreamPosition>,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| classify(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        crate::history::sqlite::write(&tx, history).map_err(err)?;
        if let Some(p) = position {
            tx.execute(
                "INSERT INTO stream_position (stream, seq) VALUES (?1, ?2)
                 ON CONFLICT (stream) DO UPDATE SET seq = excluded.seq",
                params![p.stream, signed(p.seq)],
            )
            .map_err(err)?;
        }
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO journal (seq, session, at_ms, received_ms, format, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(err)?;
            for r in records {
                let body = serde_json::to_string(r.event)
                    .map_err(|e| StoreError::Failed(format!("cannot encode an event: {e}")))?;
                insert
                    .execute(params![
                        signed(r.seq),
                        r.event.session.as_str(),
                        r.event.at.as_millis(),
                        r.received.as_millis(),
                        RECORD_FORMAT,
                        body
                    ])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        self.journal_events += records.len() as u64;
        if let Some(last) = records.last() {
            self.last_seq = last.seq;
        }
        Ok(())
    }

    fn record_levels(&mut self, sample: &LevelSample, detail: &str) -> Result<(), StoreError> {
        crate::history::sqlite::write_levels(&self.conn, sample, detail)
            .map_err(|e| classify(&self.path, e))
    }

    fn prune_history(&mut self, minutes: Timestamp, hours: Timestamp) -> Result<u64, StoreError> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| classify(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        let dropped = crate::history::sqlite::prune(&tx, minutes, hours).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(dropped)
    }

    fn save_snapshot(&mut self, seq: u64, taken: Timestamp, body: &[u8]) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO snapshots (seq, taken_ms, body) VALUES (?1, ?2, ?3)",
                params![signed(seq), taken.as_millis(), body],
            )
            .map_err(|e| classify(&self.path, e))?;
        self.snapshot_seq = Some(self.snapshot_seq.map_or(seq, |s| s.max(seq)));
        self.last_seq = self.last_seq.max(seq);
        Ok(())
    }

    fn compact(&mut self, cutoff: Timestamp) -> Result<u64, StoreError> {
        let Some(covered) = self.snapshot_seq else {
            return Ok(0);
        };
        let path = self.path.clone();
        let err = |e: rusqlite::Error| classify(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        let dropped = tx
            .execute(
                "DELETE FROM journal WHERE seq <= ?1 AND received_ms < ?2",
                params![signed(covered), cutoff.as_millis()],
            )
            .map_err(err)?;
        tx.execute("DELETE FROM snapshots WHERE seq < ?1", [signed(covered)])
            .map_err(err)?;
        tx.commit().map_err(err)?;
        self.journal_events = self.journal_events.saturating_sub(dropped as u64);
        Ok(dropped as u64)
    }
}

/// Journal reads over a read-only connection.
pub struct SqliteJournal {
    // One connection, used by one blocking task at a time; journal reads
    // are operator clicks, not a hot path.
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl JournalReader for SqliteJournal {
    fn session_events(
        &self,
        session: &SessionId,
        limit: usize,
        (after, before): (Option<u64>, Option<u64>),
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let err = |e: rusqlite::Error| classify(&self.path, e);
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, received_ms, body FROM journal
                 WHERE session = ?1 AND seq > ?2 AND seq < ?3 ORDER BY seq DESC LIMIT ?4",
            )
            .map_err(err)?;
        let (after, before) = (after.map_or(-1, signed), before.map_or(i64::MAX, signed));
        let rows = stmt
            .query_map(
                params![session.as_str(), after, before, limit as i64],
                |r| {
                    Ok((
                        unsigned(r.get(0)?),
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, received, body) = row.map_err(err)?;
            let event: Event = serde_json::from_str(&body).map_err(|e| StoreError::Corrupt {
                path: self.path.display().to_string(),
                detail: format!("journal record {seq} does not decode: {e}"),
            })?;
            out.push(StoredEvent {
                seq,
                received: Timestamp::from_millis(received),
                event,
            });
        }
        Ok(out)
    }

    fn retired_seq(&self, session: &SessionId) -> Result<Option<u64>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let err = |e: rusqlite::Error| classify(&self.path, e);
        conn.prepare_cached(
            "SELECT seq FROM journal WHERE session = ?1 AND json_extract(body, '$.type') = 'retire'
             ORDER BY seq DESC LIMIT 1",
        )
        .map_err(err)?
        .query_row([session.as_str()], |r| r.get::<_, i64>(0))
        .optional()
        .map(|seq| seq.map(unsigned))
        .map_err(err)
    }
}

impl HistoryReader for SqliteJournal {
    fn timeline(
        &self,
        session: &SessionId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Timeline, ReadFailed> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        Reads(&conn)
            .timeline(session, from, to)
            .map_err(|e| ReadFailed(e.to_string()))
    }

    fn timelines(
        &self,
        from: Timestamp,
        to: Timestamp,
        each: &mut dyn FnMut(&str, Timeline),
    ) -> Result<(), ReadFailed> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        Reads(&conn)
            .timelines(from, to, each)
            .map_err(|e| ReadFailed(e.to_string()))
    }

    fn fleet(
        &self,
        from: Timestamp,
        to: Timestamp,
        step_ms: i64,
    ) -> Result<Vec<FleetPoint>, ReadFailed> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        Reads(&conn)
            .fleet(from, to, step_ms)
            .map_err(|e| ReadFailed(e.to_string()))
    }

    fn session_hours(
        &self,
        session: &SessionId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<SessionHour>, ReadFailed> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        Reads(&conn)
            .session_hours(session, from, to)
            .map_err(|e| ReadFailed(e.to_string()))
    }

    fn retired_at(&self, session: &SessionId) -> Result<Option<Timestamp>, ReadFailed> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        Reads(&conn)
            .retired_at(session)
            .map_err(|e| ReadFailed(e.to_string()))
    }
}

/// What `wapulse store check` found.
#[derive(Debug, Default)]
pub struct Inspection {
    /// The database file.
    pub path: String,
    /// Schema version in the file.
    pub schema_version: usize,
    /// Journal records.
    pub journal_events: u64,
    /// Lowest and highest sequence numbers in the journal.
    pub seq_range: Option<(u64, u64)>,
    /// Distinct sessions in the journal.
    pub sessions: u64,
    /// Snapshots: sequence number, when taken, size in bytes.
    pub snapshots: Vec<(u64, Timestamp, usize)>,
    /// Everything wrong, one line each; empty when sound.
    pub problems: Vec<String>,
}

pub(super) fn open_existing_read_only(dir: &Path) -> Result<(Connection, PathBuf), StoreError> {
    let path = dir.join(FILE_NAME);
    if !path.exists() {
        return Err(StoreError::Failed(format!(
            "no store at {} (data_dir / WAPULSE_DATA_DIR)",
            path.display()
        )));
    }
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| classify(&path, e))?;
    Ok((conn, path))
}

/// Reads the whole store without changing it: SQLite's integrity check,
/// the schema version, every journal record and the newest snapshot
/// decoded. `decode_snapshot` checks a snapshot body.
pub fn inspect(
    dir: &Path,
    decode_snapshot: impl Fn(&[u8]) -> Result<(), String>,
) -> Result<Inspection, StoreError> {
    let (conn, path) = open_existing_read_only(dir)?;
    inspect_connection(&conn, &path, decode_snapshot)
}

/// [`inspect`] of an open database (`path` names it in the report).
pub(super) fn inspect_connection(
    conn: &Connection,
    path: &Path,
    decode_snapshot: impl Fn(&[u8]) -> Result<(), String>,
) -> Result<Inspection, StoreError> {
    let err = |e: rusqlite::Error| classify(path, e);
    let mut out = Inspection {
        path: path.display().to_string(),
        ..Inspection::default()
    };
    let mut stmt = conn.prepare("PRAGMA integrity_check").map_err(err)?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(Iterator::collect)
        .map_err(err)?;
    out.problems.extend(
        rows.into_iter()
            .filter(|r| r != "ok")
            .map(|r| format!("integrity: {r}")),
    );
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(err)?;
    out.schema_version = unsigned(version) as usize;
    if out.schema_version != schema_versions() {
        out.problems.push(format!(
            "schema version {} (this wapulse writes {}); start wapulse once to migrate",
            out.schema_version,
            schema_versions()
        ));
        return Ok(out);
    }
    let mut stmt = conn
        .prepare("SELECT seq, format, body, session FROM journal ORDER BY seq")
        .map_err(err)?;
    let mut rows = stmt.query([]).map_err(err)?;
    let mut sessions = std::collections::HashSet::new();
    while let Some(row) = rows.next().map_err(err)? {
        let seq = unsigned(row.get(0).map_err(err)?);
        let format: i64 = row.get(1).map_err(err)?;
        let body: String = row.get(2).map_err(err)?;
        let session: String = row.get(3).map_err(err)?;
        out.journal_events += 1;
        out.seq_range = Some(out.seq_range.map_or((seq, seq), |(lo, _)| (lo, seq)));
        if format != RECORD_FORMAT {
            out.problems
                .push(format!("journal record {seq}: unknown format {format}"));
        } else if let Err(e) = serde_json::from_str::<Event>(&body) {
            out.problems
                .push(format!("journal record {seq}: does not decode: {e}"));
        }
        sessions.insert(session);
    }
    out.sessions = sessions.len() as u64;
    let mut stmt = conn
        .prepare("SELECT seq, taken_ms, body FROM snapshots ORDER BY seq DESC")
        .map_err(err)?;
    let mut rows = stmt.query([]).map_err(err)?;
    let mut newest = true;
    while let Some(row) = rows.next().map_err(err)? {
        let seq = unsigned(row.get(0).map_err(err)?);
        let taken = Timestamp::from_millis(row.get(1).map_err(err)?);
        let body: Vec<u8> = row.get(2).map_err(err)?;
        if newest && let Err(e) = decode_snapshot(&body) {
            out.problems
                .push(format!("snapshot {seq}: does not decode: {e}"));
        }
        newest = false;
        out.snapshots.push((seq, taken, body.len()));
    }
    Ok(out)
}

/// Writes the journal (or one session's part) as NDJSON wire events, in
/// order, to `out`: what `POST /v1/events` accepts again. Returns the count.
pub fn export(
    dir: &Path,
    session: Option<&SessionId>,
    out: &mut dyn std::io::Write,
) -> Result<u64, StoreError> {
    let (conn, path) = open_existing_read_only(dir)?;
    let err = |e: rusqlite::Error| classify(&path, e);
    let mut stmt = conn
        .prepare("SELECT seq, body FROM journal WHERE (?1 IS NULL OR session = ?1) ORDER BY seq")
        .map_err(err)?;
    let mut rows = stmt.query([session.map(SessionId::as_str)]).map_err(err)?;
    let mut n = 0;
    while let Some(row) = rows.next().map_err(err)? {
        let body: String = row.get(1).map_err(err)?;
        out.write_all(body.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| StoreError::Failed(format!("cannot write the export: {e}")))?;
        n += 1;
    }
    out.flush()
        .map_err(|e| StoreError::Failed(format!("cannot write the export: {e}")))?;
    Ok(n)
}
