//! Core speed: applying events, evaluating a session, rolling up a fleet.
//! Results and targets are recorded in docs/benchmarks.md.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use wapulse_core::{
    AckStatus, Direction, Event, EventKind, Fleet, Session, SessionId, SessionState, Thresholds,
    Timestamp, evaluate,
};

const ORIGIN: i64 = 1_770_000_000_000;

fn event(session: &SessionId, ms: i64, kind: EventKind) -> Event {
    Event {
        session: session.clone(),
        at: Timestamp::from_millis(ORIGIN + ms),
        id: None,
        kind,
    }
}

/// A realistic mix: mostly heartbeats and messages, some state changes.
fn stream(sessions: &[SessionId], n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let s = &sessions[i % sessions.len()];
            let ms = (i / sessions.len()) as i64 * 30_000;
            let kind = match i % 20 {
                0 => EventKind::State {
                    state: SessionState::Reconnecting,
                    reason: None,
                },
                1 => EventKind::State {
                    state: SessionState::Connected,
                    reason: None,
                },
                2..=5 => EventKind::Message {
                    direction: Direction::Inbound,
                    count: 1,
                    ids: Box::default(),
                },
                _ => EventKind::Heartbeat { rtt_ms: Some(40) },
            };
            event(s, ms, kind)
        })
        .collect()
}

fn ids(n: usize) -> Vec<SessionId> {
    (0..n)
        .map(|i| SessionId::parse(&format!("tenant-{i}@s.whatsapp.net")).unwrap())
        .collect()
}

fn apply(c: &mut Criterion) {
    let t = Thresholds::default();
    let one = ids(1);
    let events = stream(&one, 10_000);
    let mut g = c.benchmark_group("apply");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("session_10k_events", |b| {
        b.iter_batched_ref(
            || Session::new(one[0].clone(), Timestamp::from_millis(ORIGIN)),
            |s| {
                for e in &events {
                    s.apply(e, &t);
                }
            },
            BatchSize::SmallInput,
        )
    });
    let many = ids(1_000);
    let fleet_events = stream(&many, 10_000);
    let mut warm = Fleet::new(t.clone());
    warm.apply_all(&fleet_events);
    g.bench_function("fleet_1k_sessions_10k_events", |b| {
        b.iter_batched_ref(
            || warm.clone(),
            |f| f.apply_all(&fleet_events),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn eval(c: &mut Criterion) {
    let t = Thresholds::default();
    let one = ids(1);
    let mut healthy = Session::new(one[0].clone(), Timestamp::from_millis(ORIGIN));
    for e in stream(&one, 1_000) {
        healthy.apply(&e, &t);
    }
    let now = healthy.last_event_at;
    let mut troubled = healthy.clone();
    for kind in [
        EventKind::State {
            state: SessionState::Reconnecting,
            reason: None,
        },
        EventKind::Validation {
            valid: false,
            detail: None,
        },
        EventKind::LockAcquired {
            held_by: "r1".into(),
            operation: "save".into(),
        },
    ] {
        troubled.apply(&event(&one[0], now.as_millis() - ORIGIN, kind), &t);
    }
    let later = now.plus(wapulse_core::DurationMs::from_mins(40));
    // A session with its whole outstanding window waiting (the stall scan
    // reads every followed message).
    let mut mute = healthy.clone();
    for chunk in 0..4 {
        let ids: Box<[Box<str>]> = (0..256)
            .map(|i| format!("3EB0{:016X}", chunk * 256 + i).into())
            .collect();
        mute.apply(
            &event(
                &one[0],
                now.as_millis() - ORIGIN,
                EventKind::Message {
                    direction: Direction::Outbound,
                    count: 256,
                    ids,
                },
            ),
            &t,
        );
    }
    let mut g = c.benchmark_group("evaluate");
    g.bench_function("session_with_1024_outstanding_sends", |b| {
        b.iter(|| evaluate(black_box(&mute), &t, later))
    });
    g.bench_function("healthy_session", |b| {
        b.iter(|| evaluate(black_box(&healthy), &t, now))
    });
    g.bench_function("session_with_5_alerts", |b| {
        b.iter(|| evaluate(black_box(&troubled), &t, later))
    });
    g.finish();
}

fn rollup(c: &mut Criterion) {
    let t = Thresholds::default();
    let many = ids(100_000);
    let mut fleet = Fleet::new(t.clone());
    fleet.apply_all(&stream(&many, 500_000));
    let snapshot = fleet.snapshot();
    let now = Timestamp::from_millis(ORIGIN + 200_000);
    let mut g = c.benchmark_group("rollup");
    g.sample_size(20);
    g.bench_function("fleet_100k_sessions", |b| {
        b.iter(|| snapshot.rollup(&t, now))
    });
    g.bench_function("snapshot_100k_sessions", |b| b.iter(|| fleet.snapshot()));
    // The same fleet, every session sending: 20 sends with ids, 17 acked.
    let mut sending = fleet.clone();
    let sends: Vec<Event> = many
        .iter()
        .flat_map(|id| {
            let ids: Box<[Box<str>]> = (0..20).map(|i| format!("m{i}").into()).collect();
            let acks = (0..17).map(move |i| {
                event(
                    id,
                    150_001,
                    EventKind::Ack {
                        message: format!("m{i}").into(),
                        status: AckStatus::Server,
                        code: None,
                        detail: None,
                    },
                )
            });
            std::iter::once(event(
                id,
                150_000,
                EventKind::Message {
                    direction: Direction::Outbound,
                    count: 20,
                    ids,
                },
            ))
            .chain(acks)
        })
        .collect();
    sending.apply_all(&sends);
    let sending_snapshot = sending.snapshot();
    g.bench_function("fleet_100k_sessions_sending", |b| {
        b.iter(|| sending_snapshot.rollup(&t, now))
    });
    // The cost a writer pays per ingest batch when it publishes a snapshot
    // after every batch: copy-on-write of the touched shards and sessions.
    let batch: Vec<Event> = (0..100)
        .map(|i| {
            event(
                &many[(i * 997) % many.len()],
                300_000,
                EventKind::Heartbeat { rtt_ms: None },
            )
        })
        .collect();
    g.bench_function("publish_then_apply_100_events_100k_sessions", |b| {
        b.iter(|| {
            let held = fleet.snapshot();
            fleet.apply_all(&batch);
            held
        })
    });
    // Retiring: one session (a DELETE), and a sweep's batch of 1,000, each
    // with a reader holding the snapshot before (the order is rebuilt once
    // per batch). Each iteration retires from a fresh copy.
    let retire = |id: &SessionId| event(id, 400_000, EventKind::Retire { reason: None });
    let one = [retire(&many[4242])];
    let thousand: Vec<Event> = many.iter().step_by(100).map(retire).collect();
    for (name, events) in [
        ("retire_1_of_100k_sessions", &one[..]),
        ("retire_1000_of_100k_sessions", &thousand[..]),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || (fleet.clone(), fleet.snapshot()),
                |(mut f, held)| {
                    f.apply_all(events);
                    (f, held)
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, apply, eval, rollup);
criterion_main!(benches);
