//! History figures for docs/benchmarks.md (issue 31), at 100,000 sessions:
//! 30-day availability of one session, every session ranked, the fleet's
//! 24 hours at 1-minute steps, what deriving and writing the history costs
//! per event, and how much the store grows per session per day.
//!
//! `cargo bench -p wapulse --bench history` (release build; ~2 minutes;
//! one SQLite file in a temporary directory). `--quick` shrinks the fleet
//! to 2,000 sessions (a smoke run; its numbers mean nothing).

use std::time::{Duration, Instant};

use wapulse::history::{Derived, HistoryReader, MINUTE_MS, rank};
use wapulse::store::sqlite::SqliteStore;
use wapulse::store::{Durability, Record, Store};
use wapulse_core::{
    Direction, Event, EventKind, Fleet, SessionId, SessionState, Thresholds, Timestamp,
};

const DAY: i64 = 86_400_000;

fn ev(id: &SessionId, at: Timestamp, kind: EventKind) -> Event {
    Event {
        session: id.clone(),
        at,
        id: None,
        kind,
    }
}

fn state(s: SessionState) -> EventKind {
    EventKind::State {
        state: s,
        reason: None,
    }
}

/// Median of `runs` timings of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sessions = if quick { 2_000 } else { 100_000 };
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path(), Durability::Process, None).unwrap();
    let reader = store.journal().unwrap();
    let mut fleet = Fleet::new(Thresholds::default());
    let now = Timestamp::from_millis(1_800_000_000_000);
    let start = now.as_millis() - 30 * DAY;
    let ids: Vec<SessionId> = (0..sessions)
        .map(|i| SessionId::parse(&format!("s{i:06}")).unwrap())
        .collect();
    let mut seq = 0u64;
    let mut commit = |fleet: &mut Fleet, store: &mut SqliteStore, events: &[Event]| {
        let derived = Derived::of(fleet.view(), events);
        let records: Vec<Record<'_>> = events
            .iter()
            .map(|e| {
                seq += 1;
                Record {
                    seq,
                    received: e.at,
                    event: e,
                }
            })
            .collect();
        let t = Instant::now();
        store.append(&records, &derived, None).unwrap();
        fleet.apply_all(events);
        t.elapsed()
    };
    // 30 days: every session connects at the start; each day one session
    // in ten reconnects once (a 2-minute outage).
    let t = Instant::now();
    for chunk in ids.chunks(5_000) {
        let events: Vec<Event> = chunk
            .iter()
            .map(|id| {
                ev(
                    id,
                    Timestamp::from_millis(start),
                    state(SessionState::Connected),
                )
            })
            .collect();
        commit(&mut fleet, &mut store, &events);
    }
    for day in 0..30 {
        let at = start + day * DAY + DAY / 2;
        let flappy: Vec<&SessionId> = ids
            .iter()
            .enumerate()
            .filter(|(i, _)| (*i as i64 + day) % 10 == 0)
            .map(|(_, id)| id)
            .collect();
        for chunk in flappy.chunks(5_000) {
            let mut events = Vec::new();
            for (k, id) in chunk.iter().enumerate() {
                let t0 = at + k as i64;
                events.push(ev(
                    id,
                    Timestamp::from_millis(t0),
                    state(SessionState::Reconnecting),
                ));
                events.push(ev(
                    id,
                    Timestamp::from_millis(t0 + 120_000),
                    state(SessionState::Connected),
                ));
            }
            commit(&mut fleet, &mut store, &events);
        }
    }
    eprintln!(
        "built 30 days of {sessions} sessions in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let before = size(dir.path());

    // An hour of steady traffic for the write cost and the growth: 10,000
    // sessions, each a heartbeat every 30 s with its round trip and a
    // message every 5 minutes, in batches of 1,000 events (one gateway
    // batch). The history alone is also written to a second file, to
    // measure its growth without the journal's.
    let steady = &ids[..ids.len().min(10_000)];
    let hour_start = now.as_millis() - 3_600_000;
    let alone_dir = tempfile::tempdir().unwrap();
    let mut alone = rusqlite::Connection::open(alone_dir.path().join("history.db")).unwrap();
    alone
        .execute_batch(wapulse::history::sqlite::SCHEMA)
        .unwrap();
    // Its CPU cost, not the disk's: no sync.
    alone
        .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")
        .unwrap();
    let mut history_write = Duration::ZERO;
    let alone_before = size(alone_dir.path());
    let mut derive = Duration::ZERO;
    let mut write = Duration::ZERO;
    let mut written = 0u64;
    let mut batch = Vec::with_capacity(1_000);
    for beat in 0..120i64 {
        for (i, id) in steady.iter().enumerate() {
            let at = Timestamp::from_millis(hour_start + beat * 30_000 + (i as i64 % 30_000));
            batch.push(ev(id, at, EventKind::Heartbeat { rtt_ms: Some(40) }));
            if beat % 10 == 0 {
                batch.push(ev(
                    id,
                    at,
                    EventKind::Message {
                        direction: Direction::Inbound,
                        count: 1,
                        ids: Box::new([]),
                    },
                ));
            }
            if batch.len() >= 1_000 {
                let t = Instant::now();
                let derived = Derived::of(fleet.view(), &batch);
                derive += t.elapsed();
                let t = Instant::now();
                let tx = alone.transaction().unwrap();
                wapulse::history::sqlite::write(&tx, &derived).unwrap();
                tx.commit().unwrap();
                history_write += t.elapsed();
                write += commit(&mut fleet, &mut store, &batch);
                written += batch.len() as u64;
                batch.clear();
            }
        }
    }
    let per_event_derive = derive.as_nanos() as f64 / written as f64;
    // 100,000 sessions at a heartbeat every 30 s and a message every 5 min.
    let rate = 100_000.0 / 30.0 * 1.1;
    eprintln!(
        "deriving the history: {per_event_derive:.0} ns an event; at {rate:.0} events/s \
         (100,000 sessions) {:.2} % of a core",
        per_event_derive * rate / 1e9 * 100.0
    );
    let per_event_write = history_write.as_nanos() as f64 / written as f64;
    eprintln!(
        "writing the history alone (its rows, its own transaction, no sync): {per_event_write:.0} ns \
         an event; deriving and writing at {rate:.0} events/s: {:.2} % of a core",
        (per_event_derive + per_event_write) * rate / 1e9 * 100.0
    );
    eprintln!(
        "journal + history append (one transaction a batch of 1,000): {:.0} ns an event ({written} \
         events)",
        write.as_nanos() as f64 / written as f64,
    );
    alone
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    let grown = size(alone_dir.path()).saturating_sub(alone_before);
    eprintln!(
        "history growth, a session passing messages and reporting round trips: {:.0} bytes an hour, \
         {:.0} bytes a day",
        grown as f64 / steady.len() as f64,
        grown as f64 / steady.len() as f64 * 24.0
    );

    // A full day of minute rows for the fleet read: counts, sessions by
    // state and levels in each of the last 1,440 minutes.
    for m in 0..1440i64 {
        let minute = now.as_millis() - DAY + m * MINUTE_MS;
        let mut derived = Derived::default();
        derived.minutes.insert(
            minute,
            wapulse::history::Counts {
                events: 3_667 * 60,
                messages_in: 300,
                messages_out: 200,
                ..Default::default()
            },
        );
        derived.states = Some((minute, fleet.view().by_state()));
        store.append(&[], &derived, None).unwrap();
        store
            .record_levels(
                &wapulse::history::LevelSample {
                minute_ms: minute,
                ok: 99_000,
                warning: 900,
                critical: 100,
                    alerts_firing: 120,
                },
                r#"{"alerts":{"LOGGED_OUT":{"warning":0,"critical":100}},"notifications":{"delivered":2,"failed":0}}"#,
            )
            .unwrap();
    }

    // Reads.
    let one = ids[sessions / 2].clone();
    let month = Timestamp::from_millis(now.as_millis() - 30 * DAY);
    let t1 = median(21, || {
        let tl = reader.timeline(&one, month, now).unwrap();
        std::hint::black_box(tl.over(month, now, now));
    });
    eprintln!(
        "30-day availability of one session: {:.3} ms",
        t1.as_secs_f64() * 1e3
    );
    let t2 = median(5, || {
        let r = rank(
            &reader,
            (month, now, now),
            None,
            &|_| None,
            wapulse::history::Seen {
                admits: &|_| true,
                current_life: false,
            },
            1.0,
            100,
        )
        .unwrap();
        std::hint::black_box(r);
    });
    eprintln!(
        "30-day availability of all {sessions} sessions, ranked: {:.0} ms",
        t2.as_secs_f64() * 1e3
    );
    let from = Timestamp::from_millis(now.as_millis() - DAY);
    let t3 = median(21, || {
        std::hint::black_box(reader.fleet(from, now, MINUTE_MS).unwrap());
    });
    eprintln!(
        "fleet 24 h at 1-minute steps: {:.3} ms",
        t3.as_secs_f64() * 1e3
    );

    // Growth: state changes only (a steady session writes no hour rows
    // without messages or round trips). Measured by the rows a steady
    // 30-day fleet holds: size of the file over sessions × days.
    eprintln!(
        "store: {:.1} MB for 30 days of {sessions} sessions (1 in 10 reconnects a day) = {:.0} \
         bytes a session a day, journal included",
        before as f64 / 1e6,
        before as f64 / sessions as f64 / 30.0
    );
}
