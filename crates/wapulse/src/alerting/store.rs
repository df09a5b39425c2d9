//! The alerting tables of the store: lifecycle state, groups, the outbox,
//! history and silences (schema version 2 of `store::sqlite`).
//!
//! One connection, shared behind a mutex by the evaluator thread and the
//! notifiers (which reach it from tokio's blocking pool). The journal's
//! writer has a connection of its own to the same WAL database; SQLite
//! serializes the two writers, and alerting writes are small.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use wapulse_core::Timestamp;

use crate::store::sqlite::{classify, tune};
use crate::store::{Durability, StoreError};

/// Runs `f` on the store from async code: on tokio's blocking pool,
/// under the store's mutex (never on an async worker).
pub async fn call<T: Send + 'static>(
    store: &Arc<Mutex<AlertStore>>,
    f: impl FnOnce(&mut AlertStore) -> T + Send + 'static,
) -> T {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&mut store.lock().unwrap_or_else(|p| p.into_inner())))
        .await
        .expect("store calls do not panic")
}

/// One notification waiting to be sent.
#[derive(Clone, Debug)]
pub struct OutboxRow {
    /// Its id (stable across retries and restarts: receivers deduplicate
    /// on it).
    pub id: i64,
    /// The receiver's name.
    pub receiver: String,
    /// The group it speaks for (its messages leave in order).
    pub group_key: String,
    /// What to send (see `outbox::Payload`).
    pub body: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it was written.
    pub created: Timestamp,
}

/// One history entry (a transition or a notification outcome).
#[derive(Clone, Debug)]
pub struct HistoryRow {
    /// Its sequence number (newest is highest).
    pub seq: i64,
    /// When.
    pub at: Timestamp,
    /// `transition` or `notification`.
    pub kind: String,
    /// Its JSON.
    pub body: String,
}

/// Everything one evaluation pass writes, in one transaction.
#[derive(Debug, Default)]
pub struct PassWrite {
    /// (session, code, state JSON or `None` to forget).
    pub lives: Vec<(String, String, Option<String>)>,
    /// (receiver, group key, group JSON or `None` to forget).
    pub groups: Vec<(String, String, Option<String>)>,
    /// (receiver, group key, payload JSON) to send.
    pub outbox: Vec<(String, String, String)>,
    /// (kind, JSON) history entries.
    pub history: Vec<(&'static str, String)>,
}

impl PassWrite {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.lives.is_empty()
            && self.groups.is_empty()
            && self.outbox.is_empty()
            && self.history.is_empty()
    }
}

/// The alerting side of the store.
pub struct AlertStore {
    conn: Connection,
    path: PathBuf,
}

fn millis(t: Timestamp) -> i64 {
    t.as_millis()
}

impl AlertStore {
    /// Opens the database the journal lives in (its migrations have run),
    /// under the same size cap as the journal.
    pub fn open(
        path: &Path,
        durability: Durability,
        max_bytes: Option<u64>,
    ) -> Result<Self, StoreError> {
        let fail = |e| classify(path, e);
        let conn = Connection::open(path).map_err(fail)?;
        tune(&conn, durability, max_bytes).map_err(fail)?;
        Ok(Self {
            conn,
            path: path.to_owned(),
        })
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        classify(&self.path, e)
    }

    /// Every saved lifecycle state: (session, code, JSON).
    pub fn lives(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT session, code, body FROM alert_state")
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(Iterator::collect)
            .map_err(|e| self.err(e))
    }

    /// Every saved group: (receiver, key, JSON).
    pub fn groups(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT receiver, key, body FROM alert_groups")
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(Iterator::collect)
            .map_err(|e| self.err(e))
    }

    /// Writes one pass: all of it or nothing.
    pub fn write(&mut self, w: &PassWrite, now: Timestamp) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| classify(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO alert_state (session, code, body) VALUES (?1, ?2, ?3)
                     ON CONFLICT (session, code) DO UPDATE SET body = excluded.body",
                )
                .map_err(err)?;
            let mut del = tx
                .prepare_cached("DELETE FROM alert_state WHERE session = ?1 AND code = ?2")
                .map_err(err)?;
            for (session, code, body) in &w.lives {
                match body {
                    Some(b) => put.execute(params![session, code, b]).map_err(err)?,
                    None => del.execute(params![session, code]).map_err(err)?,
                };
            }
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO alert_groups (receiver, key, body) VALUES (?1, ?2, ?3)
                     ON CONFLICT (receiver, key) DO UPDATE SET body = excluded.body",
                )
                .map_err(err)?;
            let mut del = tx
                .prepare_cached("DELETE FROM alert_groups WHERE receiver = ?1 AND key = ?2")
                .map_err(err)?;
            for (receiver, key, body) in &w.groups {
                match body {
                    Some(b) => put.execute(params![receiver, key, b]).map_err(err)?,
                    None => del.execute(params![receiver, key]).map_err(err)?,
                };
            }
            let mut out = tx
                .prepare_cached(
                    "INSERT INTO outbox (receiver, group_key, created_ms, body, state, next_ms)
                     VALUES (?1, ?2, ?3, ?4, 'pending', ?3)",
                )
                .map_err(err)?;
            for (receiver, group, body) in &w.outbox {
                out.execute(params![receiver, group, millis(now), body])
                    .map_err(err)?;
            }
            let mut hist = tx
                .prepare_cached("INSERT INTO alert_history (at_ms, kind, body) VALUES (?1, ?2, ?3)")
                .map_err(err)?;
            for (kind, body) in &w.history {
                hist.execute(params![millis(now), kind, body])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// The oldest pending rows of `receiver` with their due times.
    fn pending_rows(&self, receiver: &str) -> Result<Vec<(OutboxRow, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, receiver, group_key, body, attempts, created_ms, next_ms FROM outbox
                 WHERE receiver = ?1 AND state = 'pending'
                 ORDER BY id LIMIT 1000",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![receiver], |r| {
            Ok((
                OutboxRow {
                    id: r.get(0)?,
                    receiver: r.get(1)?,
                    group_key: r.get(2)?,
                    body: r.get(3)?,
                    attempts: u32::try_from(r.get::<_, i64>(4)?).unwrap_or(u32::MAX),
                    created: Timestamp::from_millis(r.get(5)?),
                },
                r.get(6)?,
            ))
        })
        .and_then(Iterator::collect)
        .map_err(|e| self.err(e))
    }

    /// Up to `limit` pending notifications of `receiver` that are due at
    /// `now`, oldest first. Within a group, messages leave in the order
    /// written: a row waiting for its retry holds back the later rows of
    /// its group (a resolve never overtakes the firing message it ends),
    /// and only those.
    pub fn due(
        &self,
        receiver: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut blocked = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (row, next) in self.pending_rows(receiver)? {
            if blocked.contains(&row.group_key) {
                continue;
            }
            blocked.insert(row.group_key.clone());
            if next > millis(now) {
                continue;
            }
            out.push(row);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// When `receiver`'s next message can leave: the earliest due time of
    /// the first pending row of each group.
    pub fn next_due(&self, receiver: &str) -> Result<Option<Timestamp>, StoreError> {
        let mut seen = std::collections::HashSet::new();
        Ok(self
            .pending_rows(receiver)?
            .into_iter()
            .filter(|(row, _)| seen.insert(row.group_key.clone()))
            .map(|(_, next)| Timestamp::from_millis(next))
            .min())
    }

    /// Gives up the pending notifications of receivers no longer in the
    /// configuration (nothing would ever send them); returns how many.
    pub fn abandon_unknown(&mut self, known: &[String], now: Timestamp) -> Result<u64, StoreError> {
        let receivers: Vec<String> = self
            .conn
            .prepare("SELECT DISTINCT receiver FROM outbox WHERE state = 'pending'")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .map_err(|e| self.err(e))?;
        let mut dropped = 0;
        for r in receivers.iter().filter(|r| !known.contains(r)) {
            dropped += self
                .conn
                .execute(
                    "UPDATE outbox SET state = 'failed', done_ms = ?2,
                     last_error = 'the receiver is no longer in the configuration'
                     WHERE state = 'pending' AND receiver = ?1",
                    params![r, millis(now)],
                )
                .map_err(|e| self.err(e))? as u64;
        }
        Ok(dropped)
    }

    /// Marks a notification delivered.
    pub fn delivered(&mut self, id: i64, now: Timestamp) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET state = 'delivered', attempts = attempts + 1,
                 done_ms = ?2, last_error = NULL WHERE id = ?1",
                params![id, millis(now)],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Records a failed attempt to retry at `next`.
    pub fn retry(&mut self, id: i64, next: Timestamp, error: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET attempts = attempts + 1, next_ms = ?2, last_error = ?3
                 WHERE id = ?1",
                params![id, millis(next), error],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Gives a notification up (a permanent error).
    pub fn failed(&mut self, id: i64, now: Timestamp, error: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET state = 'failed', attempts = attempts + 1, done_ms = ?2,
                 last_error = ?3 WHERE id = ?1",
                params![id, millis(now), error],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Pending notifications per receiver.
    pub fn pending(&self) -> Result<HashMap<String, u64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT receiver, count(*) FROM outbox WHERE state = 'pending' GROUP BY receiver",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64)))
            .and_then(Iterator::collect)
            .map_err(|e| self.err(e))
    }

    /// Forgets delivered and failed notifications, history, and silences
    /// that ended, older than `before`. Returns the rows dropped.
    pub fn prune(&mut self, before: Timestamp) -> Result<u64, StoreError> {
        let a = self
            .conn
            .execute(
                "DELETE FROM outbox WHERE state != 'pending' AND done_ms < ?1",
                params![millis(before)],
            )
            .map_err(|e| self.err(e))?;
        let b = self
            .conn
            .execute(
                "DELETE FROM alert_history WHERE at_ms < ?1",
                params![millis(before)],
            )
            .map_err(|e| self.err(e))?;
        let c = self
            .conn
            .execute(
                "DELETE FROM silences WHERE ends_ms < ?1",
                params![millis(before)],
            )
            .map_err(|e| self.err(e))?;
        Ok((a + b + c) as u64)
    }

    /// History, newest first, below `before` (a sequence number).
    pub fn history(
        &self,
        limit: usize,
        before: Option<i64>,
    ) -> Result<Vec<HistoryRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, at_ms, kind, body FROM alert_history WHERE seq < ?1
                 ORDER BY seq DESC LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![before.unwrap_or(i64::MAX), limit as i64], |r| {
            Ok(HistoryRow {
                seq: r.get(0)?,
                at: Timestamp::from_millis(r.get(1)?),
                kind: r.get(2)?,
                body: r.get(3)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(|e| self.err(e))
    }

    /// Appends one history entry outside a pass (a notification outcome).
    pub fn note(&mut self, now: Timestamp, kind: &str, body: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO alert_history (at_ms, kind, body) VALUES (?1, ?2, ?3)",
                params![millis(now), kind, body],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Every silence: (id, JSON).
    pub fn silences(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, body FROM silences ORDER BY id")
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(|e| self.err(e))
    }

    /// Saves (creates or replaces) a silence.
    pub fn put_silence(&mut self, id: &str, ends: Timestamp, body: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO silences (id, ends_ms, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET ends_ms = excluded.ends_ms, body = excluded.body",
                params![id, millis(ends), body],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// One silence's JSON.
    pub fn silence(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT body FROM silences WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wapulse_core::DurationMs;

    fn open() -> (tempfile::TempDir, AlertStore) {
        let dir = tempfile::tempdir().unwrap();
        let journal =
            crate::store::sqlite::SqliteStore::open(dir.path(), Durability::Process, None).unwrap();
        let store = AlertStore::open(journal.path(), Durability::Process, None).unwrap();
        (dir, store)
    }

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_millis(1_770_000_000_000 + secs * 1000)
    }

    #[test]
    fn due_rows_come_in_order_and_a_waiting_row_holds_back_the_rest() {
        let (_dir, mut s) = open();
        let w = PassWrite {
            outbox: vec![
                ("r".into(), "g1".into(), "one".into()),
                ("r".into(), "g1".into(), "two".into()),
                ("r".into(), "g2".into(), "three".into()),
                ("other".into(), "g1".into(), "x".into()),
            ],
            ..PassWrite::default()
        };
        s.write(&w, t(0)).unwrap();
        let due = s.due("r", t(0), 10).unwrap();
        assert_eq!(
            due.iter().map(|r| r.body.as_str()).collect::<Vec<_>>(),
            ["one", "three"],
            "the first of each group"
        );
        s.retry(due[0].id, t(30), "HTTP 503").unwrap();
        s.delivered(due[1].id, t(0)).unwrap();
        assert!(
            s.due("r", t(10), 10).unwrap().is_empty(),
            "two waits behind one"
        );
        assert_eq!(s.next_due("r").unwrap(), Some(t(30)));
        let again = s.due("r", t(30), 10).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 1);
        assert_eq!(s.pending().unwrap().get("r"), Some(&2));
        s.delivered(again[0].id, t(30)).unwrap();
        assert_eq!(s.due("r", t(30), 10).unwrap()[0].body, "two");
        // A receiver gone from the configuration: its rows are given up.
        assert_eq!(s.abandon_unknown(&["r".to_owned()], t(31)).unwrap(), 1);
        assert!(s.due("other", t(31), 10).unwrap().is_empty());
    }

    #[test]
    fn pruning_drops_old_settled_rows_and_history_but_never_pending_ones() {
        let (_dir, mut s) = open();
        let w = PassWrite {
            outbox: vec![
                ("r".into(), "g".into(), "a".into()),
                ("r".into(), "h".into(), "b".into()),
            ],
            history: vec![("transition", "{}".into())],
            ..PassWrite::default()
        };
        s.write(&w, t(0)).unwrap();
        let rows = s.due("r", t(0), 10).unwrap();
        s.delivered(rows[0].id, t(1)).unwrap();
        let dropped = s.prune(t(0).plus(DurationMs::from_secs(3600))).unwrap();
        assert_eq!(dropped, 2, "the delivered row and the history entry");
        assert_eq!(s.pending().unwrap().get("r"), Some(&1), "b is still owed");
        assert!(s.history(10, None).unwrap().is_empty());
    }
}
