//! Fleet rollups, platform counters and snapshots.

use wapulse_core::{
    Direction, Event, EventKind, Fleet, FleetState, Level, MetricName, SessionState, Thresholds,
};

use crate::support::*;

fn for_session(mut e: Event, id: &str) -> Event {
    e.session = sid(id);
    e
}

#[test]
fn rollup_counts_states_and_levels() {
    let mut fleet = Fleet::new(Thresholds::default());
    fleet.apply(&for_session(state(0.0, SessionState::Connected), "a"));
    fleet.apply(&for_session(heartbeat(1.0), "a"));
    fleet.apply(&for_session(state(0.0, SessionState::Connected), "b"));
    fleet.apply(&for_session(state(0.0, SessionState::LoggedOut), "c"));
    fleet.apply(&for_session(state(0.0, SessionState::QrRequired), "d"));
    let r = fleet.view().rollup(&Thresholds::default(), at(2.0));
    assert_eq!(r.sessions, 4);
    assert_eq!(r.in_state(SessionState::Connected), 2);
    assert_eq!(r.in_state(SessionState::LoggedOut), 1);
    assert_eq!(r.in_state(SessionState::Connecting), 0);
    assert_eq!(r.at_level(Level::Ok), 2);
    assert_eq!(r.at_level(Level::Warning), 1);
    assert_eq!(r.at_level(Level::Critical), 1);
    assert_eq!(r.alerts, 2);
}

#[test]
fn snapshot_is_isolated_from_later_writes() {
    let mut fleet = Fleet::new(Thresholds::default());
    fleet.apply(&state(0.0, SessionState::Connected));
    let before = fleet.snapshot();
    fleet.apply(&state(5.0, SessionState::Disconnected));
    fleet.apply(&for_session(heartbeat(5.0), "new"));
    assert_eq!(before.get("s1").unwrap().state, SessionState::Connected);
    assert_eq!(before.len(), 1);
    assert_eq!(
        fleet.view().get("s1").unwrap().state,
        SessionState::Disconnected
    );
    assert_eq!(fleet.view().len(), 2);
}

#[test]
fn platform_counters_follow_messages_errors_counters_and_gauges() {
    let mut fleet = Fleet::new(Thresholds::default());
    let name = |n: &str| MetricName::parse(n).unwrap();
    fleet.apply(&ev(
        0.0,
        EventKind::Message {
            direction: Direction::Inbound,
            count: 150,
            ids: Box::default(),
        },
    ));
    fleet.apply(&ev(
        0.0,
        EventKind::Message {
            direction: Direction::Outbound,
            count: 2,
            ids: Box::default(),
        },
    ));
    fleet.apply(&ev(
        0.0,
        EventKind::Error {
            kind: "send".into(),
            message: None,
        },
    ));
    fleet.apply(&ev(
        0.0,
        EventKind::Counter {
            name: name("calls_started"),
            delta: 25.0,
        },
    ));
    fleet.apply(&ev(
        0.0,
        EventKind::Gauge {
            name: name("calls_active"),
            value: 3.0,
        },
    ));
    let p = fleet.view().platform();
    assert_eq!(p.counters[&name("whatsapp_inbound_messages")], 150.0);
    assert_eq!(p.counters[&name("whatsapp_outbound_messages")], 2.0);
    assert_eq!(p.counters[&name("whatsapp_errors")], 1.0);
    assert_eq!(p.counters[&name("calls_started")], 25.0);
    assert_eq!(
        p.counters[&name("queue_jobs_dead_letter")],
        0.0,
        "seed names start at 0"
    );
    assert_eq!(p.gauges[&name("calls_active")], 3.0);
    let s = fleet.view().get("s1").unwrap();
    assert_eq!(
        (s.traffic.inbound, s.traffic.outbound, s.traffic.errors),
        (150, 2, 1)
    );
}

#[test]
fn state_round_trips_through_serde() {
    let mut fleet = Fleet::new(Thresholds::default());
    let mut with_id = heartbeat(3.0);
    with_id.id = Some("k1".into());
    for e in [
        state(0.0, SessionState::Connected),
        heartbeat(1.0),
        with_id.clone(),
        for_session(state(0.0, SessionState::Reconnecting), "b"),
    ] {
        fleet.apply(&e);
    }
    let json = serde_json::to_string(&fleet.to_state()).unwrap();
    let state: FleetState = serde_json::from_str(&json).unwrap();
    let mut back = Fleet::from_state(
        Thresholds::default(),
        state,
        wapulse_core::DedupLimits::default(),
    );
    assert_eq!(serde_json::to_string(&back.to_state()).unwrap(), json);
    assert_eq!(
        serde_json::to_string(&back.state_ref()).unwrap(),
        json,
        "borrowed form is the same"
    );
    assert_eq!(back.view().by_state(), fleet.view().by_state());
    assert!(back.is_duplicate(&with_id), "idempotency memory survives");
    assert_eq!(back.apply(&with_id), wapulse_core::Applied::Duplicate);
}

#[test]
fn ensure_session_creates_once_without_an_event() {
    let mut fleet = Fleet::new(Thresholds::default());
    fleet.ensure_session(&sid("default"), at(0.0));
    fleet.ensure_session(&sid("default"), at(50.0));
    let s = fleet.view().get("default").unwrap();
    assert_eq!(s.state, SessionState::Connecting);
    assert_eq!(s.first_seen, at(0.0));
    assert_eq!(s.events, 0);
    assert_eq!(fleet.view().by_state()[SessionState::Connecting.index()], 1);
    assert_eq!(fleet.view().events(), 0);
}

#[test]
fn many_sessions_spread_over_shards_and_are_all_found() {
    let mut fleet = Fleet::new(Thresholds::default());
    for i in 0..2_000 {
        fleet.apply(&for_session(heartbeat(1.0), &format!("s{i}")));
    }
    let snap = fleet.snapshot();
    assert_eq!(snap.len(), 2_000);
    assert_eq!(snap.sessions().count(), 2_000);
    assert!((0..2_000).all(|i| snap.get(&format!("s{i}")).is_some()));
}

#[test]
fn sorted_ids_stay_sorted_across_batches_single_applies_and_restores() {
    let mut fleet = Fleet::new(Thresholds::default());
    // One batch adding several sessions out of order.
    let batch: Vec<Event> = ["m", "b", "x", "a"]
        .iter()
        .map(|id| for_session(heartbeat(1.0), id))
        .collect();
    fleet.apply_all(&batch);
    // Single applies (as tests and tools do) before a snapshot.
    fleet.apply(&for_session(heartbeat(2.0), "c"));
    fleet.apply(&for_session(heartbeat(2.0), "b"));
    fleet.apply(&for_session(heartbeat(2.0), "z"));
    let snap = fleet.snapshot();
    let ids: Vec<&str> = snap.sorted_ids().iter().map(|s| s.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c", "m", "x", "z"]);
    let after: Vec<&str> = snap
        .sessions_after(Some("c"))
        .map(|s| s.id().as_str())
        .collect();
    assert_eq!(after, ["m", "x", "z"]);
    let after: Vec<&str> = snap
        .sessions_after(Some("bb"))
        .map(|s| s.id().as_str())
        .collect();
    assert_eq!(after, ["c", "m", "x", "z"], "a cursor need not be an id");
    // A restored fleet has the same order.
    let restored = Fleet::from_state(
        Thresholds::default(),
        fleet.to_state(),
        wapulse_core::DedupLimits::default(),
    );
    assert_eq!(restored.snapshot().sorted_ids(), snap.sorted_ids());
}

/// Found by the `events` fuzz target: a huge integral counter delta must
/// read back from its wire form as exactly the same number (serde_json's
/// `float_roundtrip`; without it, 2e70 came back as 1.9999999999999998e70).
#[test]
fn a_huge_counter_delta_survives_its_wire_form_exactly() {
    let body = format!(
        r#"{{"session": "default", "at": "2026-02-02T02:40:00Z", "type": "counter", "name": "calls_started", "delta": 2{}}}"#,
        "0".repeat(70)
    );
    let event: Event = serde_json::from_str(&body).unwrap();
    let wire = serde_json::to_string(&event).unwrap();
    let back: Event = serde_json::from_str(&wire).unwrap();
    assert_eq!(back, event, "{wire}");
}
