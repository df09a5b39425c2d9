//! The history's tables in the SQLite store: written in the journal's
//! transaction ([`write`]), pruned by retention ([`prune`]), read over the
//! read-only connection ([`Reads`]).

use rusqlite::{Connection, Transaction, params};
use wapulse_core::{SessionId, SessionState, Timestamp};

use super::read::{FleetPoint, LevelSample, SessionHour};
use super::{Counts, Derived, HourFigures, timeline_of};
use wapulse_core::availability::{Phase, Timeline};

/// The schema the store's migrations create (one migration, applied after
/// the journal's).
pub const SCHEMA: &str = "CREATE TABLE state_changes (
     session TEXT NOT NULL,
     at_ms INTEGER NOT NULL,
     phase INTEGER NOT NULL
 ) STRICT;
 CREATE INDEX state_changes_by_session ON state_changes (session, at_ms, phase);
 CREATE INDEX state_changes_at ON state_changes (at_ms);
 CREATE TABLE fleet_minutes (
     minute_ms INTEGER PRIMARY KEY,
     events INTEGER NOT NULL,
     messages_in INTEGER NOT NULL,
     messages_out INTEGER NOT NULL,
     acks_server INTEGER NOT NULL,
     acks_delivered INTEGER NOT NULL,
     acks_read INTEGER NOT NULL,
     sends_failed INTEGER NOT NULL
 ) STRICT;
 CREATE TABLE fleet_hours (
     hour_ms INTEGER PRIMARY KEY,
     events INTEGER NOT NULL,
     messages_in INTEGER NOT NULL,
     messages_out INTEGER NOT NULL,
     acks_server INTEGER NOT NULL,
     acks_delivered INTEGER NOT NULL,
     acks_read INTEGER NOT NULL,
     sends_failed INTEGER NOT NULL
 ) STRICT;
 CREATE TABLE fleet_states (
     minute_ms INTEGER PRIMARY KEY,
     counts TEXT NOT NULL
 ) STRICT;
 CREATE TABLE level_minutes (
     minute_ms INTEGER PRIMARY KEY,
     ok INTEGER NOT NULL,
     warning INTEGER NOT NULL,
     critical INTEGER NOT NULL,
     alerts_firing INTEGER NOT NULL,
     detail TEXT NOT NULL
 ) STRICT;
 CREATE TABLE session_hours (
     session TEXT NOT NULL,
     hour_ms INTEGER NOT NULL,
     messages_in INTEGER NOT NULL,
     messages_out INTEGER NOT NULL,
     heartbeats_missed INTEGER NOT NULL,
     rtt_sum_ms INTEGER NOT NULL,
     rtt_count INTEGER NOT NULL,
     reconnects INTEGER NOT NULL,
     acks_delivered INTEGER NOT NULL,
     sends_failed INTEGER NOT NULL,
     delivery_ms_sum INTEGER NOT NULL,
     delivery_count INTEGER NOT NULL,
     PRIMARY KEY (session, hour_ms)
 ) STRICT, WITHOUT ROWID;";

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn unsigned(v: i64) -> u64 {
    v.max(0) as u64
}

/// Writes what a commit adds, inside its transaction.
pub fn write(tx: &Transaction<'_>, derived: &Derived) -> rusqlite::Result<()> {
    if !derived.changes.is_empty() {
        let mut insert = tx.prepare_cached(
            "INSERT INTO state_changes (session, at_ms, phase) VALUES (?1, ?2, ?3)",
        )?;
        for (session, at, phase) in &derived.changes {
            insert.execute(params![
                session.as_str(),
                at.as_millis(),
                super::phase_code(*phase)
            ])?;
        }
    }
    for (table, key, rows) in [
        ("fleet_minutes", "minute_ms", &derived.minutes),
        ("fleet_hours", "hour_ms", &derived.hours),
    ] {
        if rows.is_empty() {
            continue;
        }
        let mut upsert = tx.prepare_cached(&format!(
            "INSERT INTO {table} ({key}, events, messages_in, messages_out, acks_server,
                 acks_delivered, acks_read, sends_failed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT ({key}) DO UPDATE SET
                 events = events + excluded.events,
                 messages_in = messages_in + excluded.messages_in,
                 messages_out = messages_out + excluded.messages_out,
                 acks_server = acks_server + excluded.acks_server,
                 acks_delivered = acks_delivered + excluded.acks_delivered,
                 acks_read = acks_read + excluded.acks_read,
                 sends_failed = sends_failed + excluded.sends_failed"
        ))?;
        for (at, c) in rows {
            upsert.execute(params![
                at,
                signed(c.events),
                signed(c.messages_in),
                signed(c.messages_out),
                signed(c.acks_server),
                signed(c.acks_delivered),
                signed(c.acks_read),
                signed(c.sends_failed)
            ])?;
        }
    }
    if !derived.session_hours.is_empty() {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO session_hours (session, hour_ms, messages_in, messages_out,
                 heartbeats_missed, rtt_sum_ms, rtt_count, reconnects, acks_delivered, sends_failed,
                 delivery_ms_sum, delivery_count)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (session, hour_ms) DO UPDATE SET
                 messages_in = messages_in + excluded.messages_in,
                 messages_out = messages_out + excluded.messages_out,
                 heartbeats_missed = heartbeats_missed + excluded.heartbeats_missed,
                 rtt_sum_ms = rtt_sum_ms + excluded.rtt_sum_ms,
                 rtt_count = rtt_count + excluded.rtt_count,
                 reconnects = reconnects + excluded.reconnects,
                 acks_delivered = acks_delivered + excluded.acks_delivered,
                 sends_failed = sends_failed + excluded.sends_failed,
                 delivery_ms_sum = delivery_ms_sum + excluded.delivery_ms_sum,
                 delivery_count = delivery_count + excluded.delivery_count",
        )?;
        for ((session, hour), f) in &derived.session_hours {
            upsert.execute(params![
                session.as_str(),
                hour,
                signed(f.messages_in),
                signed(f.messages_out),
                signed(f.heartbeats_missed),
                signed(f.rtt_sum_ms),
                signed(f.rtt_count),
                signed(f.reconnects),
                signed(f.acks_delivered),
                signed(f.sends_failed),
                signed(f.delivery_ms_sum),
                signed(f.delivery_count)
            ])?;
        }
    }
    if let Some((minute, counts)) = &derived.states {
        tx.prepare_cached(
            "INSERT INTO fleet_states (minute_ms, counts) VALUES (?1, ?2)
             ON CONFLICT (minute_ms) DO UPDATE SET counts = excluded.counts",
        )?
        .execute(params![minute, encode_states(counts)])?;
    }
    Ok(())
}

/// Records one minute's levels and alerts firing, with its `detail` (a
/// JSON object: alerts firing by code and level, notifications by outcome).
pub fn write_levels(conn: &Connection, sample: &LevelSample, detail: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO level_minutes (minute_ms, ok, warning, critical, alerts_firing, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (minute_ms) DO UPDATE SET ok = excluded.ok, warning = excluded.warning,
             critical = excluded.critical, alerts_firing = excluded.alerts_firing,
             detail = excluded.detail",
    )?
    .execute(params![
        sample.minute_ms,
        signed(sample.ok),
        signed(sample.warning),
        signed(sample.critical),
        signed(sample.alerts_firing),
        detail
    ])?;
    Ok(())
}

fn encode_states(counts: &[usize]) -> String {
    counts
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn decode_states(text: &str) -> [u64; SessionState::ALL.len()] {
    let mut out = [0; SessionState::ALL.len()];
    for (slot, n) in out.iter_mut().zip(text.split(',')) {
        *slot = n.parse().unwrap_or(0);
    }
    out
}

/// Forgets what is older than the retention: minute rows before `minutes`,
/// hour rows and state changes before `hours`. A session's state at
/// `hours` is kept as a change at that instant, so its availability after
/// the cut is unchanged (it is observed from there).
pub fn prune(tx: &Transaction<'_>, minutes: Timestamp, hours: Timestamp) -> rusqlite::Result<u64> {
    let (m, h) = (minutes.as_millis(), hours.as_millis());
    let mut dropped = 0;
    for table in ["fleet_minutes", "fleet_states", "level_minutes"] {
        dropped += tx.execute(&format!("DELETE FROM {table} WHERE minute_ms < ?1"), [m])?;
    }
    for table in ["fleet_hours", "session_hours"] {
        dropped += tx.execute(&format!("DELETE FROM {table} WHERE hour_ms < ?1"), [h])?;
    }
    // Each session's last phase before the cut, moved to the cut (unless
    // a change at the cut itself already says where it stands).
    tx.execute(
        "INSERT INTO state_changes (session, at_ms, phase)
         SELECT s.session, ?1, s.phase FROM state_changes s
         WHERE s.at_ms < ?1 AND s.rowid = (
             SELECT rowid FROM state_changes t WHERE t.session = s.session AND t.at_ms < ?1
             ORDER BY t.at_ms DESC, t.rowid DESC LIMIT 1)
         AND NOT EXISTS (SELECT 1 FROM state_changes u WHERE u.session = s.session AND u.at_ms = ?1)",
        [h],
    )?;
    dropped += tx.execute("DELETE FROM state_changes WHERE at_ms < ?1", [h])?;
    Ok(dropped as u64)
}

/// Reads over a read-only connection.
pub struct Reads<'c>(pub &'c Connection);

impl Reads<'_> {
    /// One session's timeline as far as it matters for `[from, to)`: its
    /// last change before `from`, and every change before `to`.
    pub fn timeline(
        &self,
        session: &SessionId,
        from: Timestamp,
        to: Timestamp,
    ) -> rusqlite::Result<Timeline> {
        let mut rows = Vec::new();
        let mut before = self.0.prepare_cached(
            "SELECT at_ms, phase FROM state_changes WHERE session = ?1 AND at_ms < ?2
             ORDER BY at_ms DESC, rowid DESC LIMIT 1",
        )?;
        let last: Option<(i64, i64)> = before
            .query_map(params![session.as_str(), from.as_millis()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .next()
            .transpose()?;
        rows.extend(last);
        let mut within = self.0.prepare_cached(
            "SELECT at_ms, phase FROM state_changes WHERE session = ?1 AND at_ms >= ?2 AND at_ms < ?3
             ORDER BY at_ms, rowid",
        )?;
        for row in within.query_map(
            params![session.as_str(), from.as_millis(), to.as_millis()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )? {
            rows.push(row?);
        }
        Ok(timeline_of(rows))
    }

    /// Every session's timeline for `[from, to)`, one pass over the table
    /// in (session, time) order.
    pub fn timelines(
        &self,
        from: Timestamp,
        to: Timestamp,
        mut each: impl FnMut(&str, Timeline),
    ) -> rusqlite::Result<()> {
        let mut stmt = self.0.prepare_cached(
            "SELECT session, at_ms, phase FROM state_changes INDEXED BY state_changes_by_session
             WHERE at_ms < ?1 ORDER BY session, at_ms, rowid",
        )?;
        let mut rows = stmt.query([to.as_millis()])?;
        let mut current: Option<String> = None;
        let mut kept: Vec<(i64, i64)> = Vec::new();
        let from = from.as_millis();
        while let Some(row) = rows.next()? {
            let session = row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
            if current.as_deref() != Some(session) {
                if let Some(done) = current.take() {
                    each(&done, timeline_of(kept.drain(..)));
                }
                current = Some(session.to_owned());
            }
            let (at, phase): (i64, i64) = (row.get(1)?, row.get(2)?);
            // Before the window only the last change matters.
            if at < from {
                kept.clear();
            }
            kept.push((at, phase));
        }
        if let Some(done) = current {
            each(&done, timeline_of(kept));
        }
        Ok(())
    }

    /// Fleet counts, sessions by state and levels for `[from, to)` in
    /// buckets of `step_ms` (minute rows below an hour, hour rows above).
    pub fn fleet(
        &self,
        from: Timestamp,
        to: Timestamp,
        step_ms: i64,
    ) -> rusqlite::Result<Vec<FleetPoint>> {
        let (f, t) = (from.as_millis(), to.as_millis());
        let mut points: Vec<FleetPoint> = (0..)
            .map(|i| f + i * step_ms)
            .take_while(|at| *at < t)
            .map(|at| FleetPoint {
                at_ms: at,
                ..FleetPoint::default()
            })
            .collect();
        let index = |at: i64| usize::try_from((at - f).div_euclid(step_ms)).ok();
        let (table, key) = if step_ms >= super::HOUR_MS {
            ("fleet_hours", "hour_ms")
        } else {
            ("fleet_minutes", "minute_ms")
        };
        let mut counts = self.0.prepare_cached(&format!(
            "SELECT {key}, events, messages_in, messages_out, acks_server, acks_delivered,
                 acks_read, sends_failed FROM {table}
             WHERE {key} >= ?1 AND {key} < ?2"
        ))?;
        let mut rows = counts.query(params![f, t])?;
        while let Some(row) = rows.next()? {
            let at: i64 = row.get(0)?;
            if let Some(p) = index(at).and_then(|i| points.get_mut(i)) {
                p.counts.add(&Counts {
                    events: unsigned(row.get(1)?),
                    messages_in: unsigned(row.get(2)?),
                    messages_out: unsigned(row.get(3)?),
                    acks_server: unsigned(row.get(4)?),
                    acks_delivered: unsigned(row.get(5)?),
                    acks_read: unsigned(row.get(6)?),
                    sends_failed: unsigned(row.get(7)?),
                });
            }
        }
        // Sessions by state: the last sample at or before each bucket's
        // end, carried forward (states change only with events).
        let mut states = self.0.prepare_cached(
            "SELECT minute_ms, counts FROM fleet_states WHERE minute_ms < ?2
             AND minute_ms >= (SELECT coalesce(max(minute_ms), 0) FROM fleet_states WHERE minute_ms < ?1)
             ORDER BY minute_ms",
        )?;
        let samples: Vec<(i64, String)> = states
            .query_map(params![f, t], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut next = 0;
        let mut last: Option<[u64; SessionState::ALL.len()]> = None;
        for p in &mut points {
            let end = p.at_ms + step_ms;
            while next < samples.len() && samples[next].0 < end {
                last = Some(decode_states(&samples[next].1));
                next += 1;
            }
            p.states = last;
        }
        let mut levels = self.0.prepare_cached(
            "SELECT minute_ms, ok, warning, critical, alerts_firing, detail FROM level_minutes
             WHERE minute_ms >= ?1 AND minute_ms < ?2 ORDER BY minute_ms",
        )?;
        let mut rows = levels.query(params![f, t])?;
        while let Some(row) = rows.next()? {
            let at: i64 = row.get(0)?;
            if let Some(p) = index(at).and_then(|i| points.get_mut(i)) {
                // The bucket's last sample stands for it.
                p.levels = Some(LevelSample {
                    minute_ms: at,
                    ok: unsigned(row.get(1)?),
                    warning: unsigned(row.get(2)?),
                    critical: unsigned(row.get(3)?),
                    alerts_firing: unsigned(row.get(4)?),
                });
                p.detail = Some(row.get(5)?);
            }
        }
        Ok(points)
    }

    /// When `session` was last retired, if it ever was (retention keeps a
    /// retirement older than its horizon at the horizon).
    pub fn retired_at(&self, session: &SessionId) -> rusqlite::Result<Option<Timestamp>> {
        self.0
            .prepare_cached(
                "SELECT MAX(at_ms) FROM state_changes WHERE session = ?1 AND phase = ?2",
            )?
            .query_row(
                params![session.as_str(), super::phase_code(Phase::Retired)],
                |r| r.get::<_, Option<i64>>(0),
            )
            .map(|at| at.map(Timestamp::from_millis))
    }

    /// One session's hour rows in `[from, to)`.
    pub fn session_hours(
        &self,
        session: &SessionId,
        from: Timestamp,
        to: Timestamp,
    ) -> rusqlite::Result<Vec<SessionHour>> {
        let mut stmt = self.0.prepare_cached(
            "SELECT hour_ms, messages_in, messages_out, heartbeats_missed, rtt_sum_ms, rtt_count,
                 reconnects, acks_delivered, sends_failed, delivery_ms_sum, delivery_count
                 FROM session_hours WHERE session = ?1 AND hour_ms >= ?2 AND hour_ms < ?3
             ORDER BY hour_ms",
        )?;
        stmt.query_map(
            params![session.as_str(), from.as_millis(), to.as_millis()],
            |r| {
                Ok(SessionHour {
                    hour_ms: r.get(0)?,
                    figures: HourFigures {
                        messages_in: unsigned(r.get(1)?),
                        messages_out: unsigned(r.get(2)?),
                        heartbeats_missed: unsigned(r.get(3)?),
                        rtt_sum_ms: unsigned(r.get(4)?),
                        rtt_count: unsigned(r.get(5)?),
                        reconnects: unsigned(r.get(6)?),
                        acks_delivered: unsigned(r.get(7)?),
                        sends_failed: unsigned(r.get(8)?),
                        delivery_ms_sum: unsigned(r.get(9)?),
                        delivery_count: unsigned(r.get(10)?),
                    },
                })
            },
        )?
        .collect()
    }
}
