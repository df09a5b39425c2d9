use serde_json::json;
use wapulse_core::availability::Phase;
use wapulse_core::{Event, Fleet, SessionState, Thresholds, Timestamp};

use super::*;

const M: i64 = MINUTE_MS;

fn at(ms: i64) -> String {
    Timestamp::from_millis(1_800_000_000_000 + ms).to_rfc3339()
}

fn t(ms: i64) -> Timestamp {
    Timestamp::from_millis(1_800_000_000_000 + ms)
}

fn event(v: serde_json::Value) -> Event {
    serde_json::from_value(v).unwrap()
}

fn state(session: &str, ms: i64, s: &str) -> Event {
    event(json!({"session": session, "at": at(ms), "type": "state", "state": s}))
}

fn beat(session: &str, ms: i64, rtt: u32) -> Event {
    event(json!({"session": session, "at": at(ms), "type": "heartbeat", "rtt_ms": rtt}))
}

const UP: Phase = Phase::In(SessionState::Connected);
const SEEN: Phase = Phase::Seen;

/// Derives `events` as one commit on `fleet`, then applies them.
fn commit(fleet: &mut Fleet, events: &[Event]) -> Derived {
    let d = Derived::of(fleet.view(), events);
    fleet.apply_all(events);
    d
}

fn changes(d: &Derived) -> Vec<(&str, Timestamp, Phase)> {
    d.changes
        .iter()
        .map(|(s, at, p)| (s.as_str(), *at, *p))
        .collect()
}

#[test]
fn a_session_is_seen_at_its_first_event_and_only_real_changes_are_kept() {
    let mut fleet = Fleet::new(Thresholds::default());
    let d = commit(
        &mut fleet,
        &[
            beat("a", 0, 40),
            state("a", M, "connected"),
            state("a", 2 * M, "connected"),
            beat("a", 3 * M, 60),
        ],
    );
    assert_eq!(
        changes(&d),
        vec![("a", t(0), SEEN), ("a", t(M), UP)],
        "the repeated `connected` changes nothing"
    );
    // The next commit knows the session from the fleet.
    let d = commit(&mut fleet, &[state("a", 4 * M, "connected")]);
    assert!(d.changes.is_empty());
    let d = commit(&mut fleet, &[state("a", 5 * M, "reconnecting")]);
    assert_eq!(
        changes(&d),
        vec![("a", t(5 * M), Phase::In(SessionState::Reconnecting))]
    );
}

#[test]
fn late_events_take_their_place_and_an_earlier_event_moves_the_first_sighting() {
    let mut fleet = Fleet::new(Thresholds::default());
    commit(&mut fleet, &[state("a", 10 * M, "connected")]);
    let d = commit(
        &mut fleet,
        &[state("a", 5 * M, "disconnected"), beat("a", 2 * M, 10)],
    );
    assert_eq!(
        changes(&d),
        vec![
            ("a", t(5 * M), SEEN),
            ("a", t(5 * M), Phase::In(SessionState::Disconnected)),
            ("a", t(2 * M), SEEN),
        ],
        "each event earlier than the first known is a sighting"
    );
    let tl = timeline_of(
        [(10 * M, 101i64), (10 * M, 1), (5 * M, 3), (2 * M, 101)]
            .map(|(ms, code)| (t(ms).as_millis(), code)),
    );
    let a = tl.over(t(0), t(20 * M), t(20 * M));
    assert_eq!(
        a.observed_ms,
        18 * M as u64,
        "observed from the earliest event"
    );
    assert_eq!(a.connected_ms, 10 * M as u64);
}

#[test]
fn a_retired_session_leaves_and_a_later_event_starts_it_afresh() {
    let mut fleet = Fleet::new(Thresholds::default());
    commit(&mut fleet, &[state("a", 0, "connected")]);
    let retire = event(json!({"session": "a", "at": at(M), "type": "retire"}));
    let d = commit(&mut fleet, &[retire, beat("a", 2 * M, 5)]);
    assert_eq!(
        changes(&d),
        vec![("a", t(M), Phase::Retired), ("a", t(2 * M), SEEN)]
    );
}

#[test]
fn a_session_created_ahead_of_its_events_is_seen_at_its_first_event() {
    let mut fleet = Fleet::new(Thresholds::default());
    let id = wapulse_core::SessionId::parse("default").unwrap();
    fleet.ensure_session(&id, t(0));
    let d = commit(&mut fleet, &[state("default", 3 * M, "connected")]);
    assert_eq!(
        changes(&d),
        vec![("default", t(3 * M), SEEN), ("default", t(3 * M), UP)]
    );
}

#[test]
fn counts_go_to_their_event_minutes_and_a_session_hour_only_when_something_happened() {
    let mut fleet = Fleet::new(Thresholds::default());
    let msg = |ms: i64, dir: &str, count: u32| {
        event(
            json!({"session": "a", "at": at(ms), "type": "message", "direction": dir, "count": count}),
        )
    };
    let d = commit(
        &mut fleet,
        &[
            msg(0, "inbound", 3),
            msg(M + 1, "outbound", 2),
            beat("a", M + 2, 30),
            beat("a", M + 3, 50),
            event(json!({"session": "b", "at": at(2 * M), "type": "heartbeat"})),
        ],
    );
    let minute = |ms: i64| bucket(t(ms), MINUTE_MS);
    assert_eq!(
        d.minutes[&minute(0)],
        Counts {
            events: 1,
            messages_in: 3,
            messages_out: 0,
            ..Default::default()
        }
    );
    assert_eq!(
        d.minutes[&minute(M)],
        Counts {
            events: 3,
            messages_in: 0,
            messages_out: 2,
            ..Default::default()
        }
    );
    let hour = bucket(t(0), HOUR_MS);
    let total: u64 = d.hours.values().map(|c| c.events).sum();
    assert_eq!(total, 5);
    let a = d.session_hours[&(wapulse_core::SessionId::parse("a").unwrap(), hour)];
    assert_eq!((a.messages_in, a.messages_out), (3, 2));
    assert_eq!((a.rtt_sum_ms, a.rtt_count), (80, 2));
    // A heartbeat without a round trip adds no row.
    assert!(!d.session_hours.keys().any(|(s, _)| s.as_str() == "b"));
}

#[test]
fn stored_phase_codes_round_trip_and_unknown_ones_are_skipped() {
    for s in SessionState::ALL {
        assert_eq!(phase_of(phase_code(Phase::In(s))), Some(Phase::In(s)));
    }
    assert_eq!(phase_of(phase_code(Phase::Retired)), Some(Phase::Retired));
    assert_eq!(phase_of(42), None);
    let tl = timeline_of([(0, 1), (5, 42)]);
    assert_eq!(tl.changes().len(), 1);
}

#[test]
fn retention_forgets_old_rows_but_keeps_each_session_s_state_at_the_cut() {
    let mut conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch(sqlite::SCHEMA).unwrap();
    let mut fleet = Fleet::new(Thresholds::default());
    let day = 24 * 60 * M;
    let mut d = commit(
        &mut fleet,
        &[
            state("a", 0, "connected"),
            state("a", day, "disconnected"),
            state("a", 3 * day, "connected"),
            state("b", 0, "logged_out"),
        ],
    );
    d.states = Some((bucket(t(0), MINUTE_MS), [0; SessionState::ALL.len()]));
    let tx = conn.transaction().unwrap();
    sqlite::write(&tx, &d).unwrap();
    tx.commit().unwrap();
    let now = t(4 * day);
    let before = sqlite::Reads(&conn)
        .timeline(
            &wapulse_core::SessionId::parse("a").unwrap(),
            t(2 * day),
            now,
        )
        .unwrap()
        .over(t(2 * day), now, now);
    // Keep two days of everything.
    let tx = conn.transaction().unwrap();
    let dropped = sqlite::prune(&tx, t(2 * day), t(2 * day)).unwrap();
    tx.commit().unwrap();
    assert!(dropped > 0);
    let reads = sqlite::Reads(&conn);
    let a = reads
        .timeline(
            &wapulse_core::SessionId::parse("a").unwrap(),
            t(2 * day),
            now,
        )
        .unwrap();
    assert_eq!(
        a.over(t(2 * day), now, now),
        before,
        "unchanged after the cut"
    );
    assert_eq!(a.first_seen(), Some(t(2 * day)), "observed from the cut");
    let b = reads
        .timeline(&wapulse_core::SessionId::parse("b").unwrap(), t(0), now)
        .unwrap();
    assert_eq!(
        b.resolved().collect::<Vec<_>>(),
        vec![(t(2 * day), Phase::In(SessionState::LoggedOut))]
    );
    let minutes: Vec<i64> = conn
        .prepare("SELECT minute_ms FROM fleet_minutes UNION ALL SELECT minute_ms FROM fleet_states")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        minutes,
        vec![bucket(t(3 * day), MINUTE_MS)],
        "minute rows before the cut are gone, the one after kept"
    );
}

#[test]
fn a_delivered_ack_of_a_followed_send_is_timed_in_its_hour() {
    let mut fleet = Fleet::new(Thresholds::default());
    commit(
        &mut fleet,
        &[event(
            json!({"session": "a", "at": at(0), "type": "message", "direction": "outbound", "count": 2, "ids": ["m1", "m2"]}),
        )],
    );
    let ack = |ms: i64, id: &str, status: &str| {
        event(json!({"session": "a", "at": at(ms), "type": "ack", "message": id, "status": status}))
    };
    let d = commit(
        &mut fleet,
        &[
            ack(1_000, "m1", "server"),
            ack(3_000, "m1", "delivered"),
            ack(5_000, "m2", "delivered"),
            ack(6_000, "unknown", "delivered"),
        ],
    );
    let hour = d.session_hours[&(
        wapulse_core::SessionId::parse("a").unwrap(),
        bucket(t(0), HOUR_MS),
    )];
    assert_eq!((hour.delivery_ms_sum, hour.delivery_count), (8_000, 2));
    assert_eq!(hour.mean_delivery_ms(), Some(4_000));
    assert_eq!(hour.acks_delivered, 3, "the unknown one counts, untimed");
}

#[test]
fn acks_count_by_what_became_of_the_send() {
    let mut fleet = Fleet::new(Thresholds::default());
    let ack = |ms: i64, status: &str| {
        event(
            json!({"session": "a", "at": at(ms), "type": "ack", "message": "m", "status": status}),
        )
    };
    let d = commit(
        &mut fleet,
        &[
            ack(0, "server"),
            ack(1, "delivered"),
            ack(2, "read"),
            ack(3, "played"),
            ack(4, "error"),
        ],
    );
    let c = d.minutes[&bucket(t(0), MINUTE_MS)];
    assert_eq!(
        (c.acks_server, c.acks_delivered, c.acks_read, c.sends_failed),
        (1, 1, 2, 1)
    );
    let hour = d.session_hours[&(
        wapulse_core::SessionId::parse("a").unwrap(),
        bucket(t(0), HOUR_MS),
    )];
    assert_eq!((hour.acks_delivered, hour.sends_failed), (1, 1));
}
