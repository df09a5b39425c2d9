//! The journal's floor: the rows wapulse's writer appends for a batch of
//! 100 ingested events, written with bare rusqlite and nothing else (into a
//! store wapulse itself created, so the same table and index; WAL and
//! `synchronous = FULL`, as `durability = "power"` sets; one transaction
//! per batch of 100),
//! as fast as one thread can. `scripts/bench` runs it beside wapulse's
//! durable ingest and prints the ingest as a share of this floor.
//!
//!   cargo bench -p wapulse --bench journal_floor -- [DIR] [SECONDS]
//!
//! Prints one line: `rows/s transactions/s`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use wapulse::store::Durability;
use wapulse::store::sqlite::{FILE_NAME, SqliteStore};

const BATCH: usize = 100;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let dir = args
        .first()
        .map_or_else(|| scratch.path().to_path_buf(), PathBuf::from);
    let seconds: f64 = args.get(1).map_or(5.0, |s| s.parse().expect("SECONDS"));
    std::fs::create_dir_all(&dir).expect("the directory");
    let _ = std::fs::remove_file(dir.join(FILE_NAME));
    // wapulse's own schema (its migrations), then nothing of wapulse.
    drop(SqliteStore::open(&dir, Durability::Power, None).expect("a store"));
    let mut conn = Connection::open(dir.join(FILE_NAME)).expect("the database");
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    // The bodies scripts/bench posts (scripts/bench.d/bodies.py), as the
    // journal stores them: the event's wire JSON.
    let bodies: Vec<(String, String)> = (0..BATCH)
        .map(|i| {
            let session = format!("load-{}", (i * 7919) % 10_000);
            let body = if i % 4 == 0 {
                format!(
                    r#"{{"session":"{session}","at":"2026-12-06T20:00:00.000Z","type":"message","direction":"inbound","count":1}}"#
                )
            } else {
                format!(
                    r#"{{"session":"{session}","at":"2026-12-06T20:00:00.000Z","type":"heartbeat","rtt_ms":40}}"#
                )
            };
            (session, body)
        })
        .collect();
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let (mut seq, mut transactions) = (0i64, 0u64);
    while Instant::now() < until {
        let tx = conn.transaction().unwrap();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO journal (seq, session, at_ms, received_ms, format, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .unwrap();
            for (session, body) in &bodies {
                seq += 1;
                insert
                    .execute(params![
                        seq,
                        session,
                        1_765_000_000_000i64,
                        1_765_000_000_000i64,
                        1,
                        body
                    ])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
        transactions += 1;
    }
    let took = started.elapsed().as_secs_f64();
    println!("{:.0} {:.0}", seq as f64 / took, transactions as f64 / took);
}
