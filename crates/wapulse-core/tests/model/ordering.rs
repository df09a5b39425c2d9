//! Ordering rules: time never runs backwards in the figures, late state
//! events are history only, repeated event ids are ignored.

use wapulse_core::{Applied, Event, EventKind, Fleet, SessionState::*, Thresholds};

use crate::support::*;

#[test]
fn late_heartbeat_does_not_make_last_at_older() {
    let s = fold(&[state(0.0, Connected), heartbeat(100.0), heartbeat(50.0)]);
    assert_eq!(s.heartbeat.last_at, Some(at(100.0)));
    assert_eq!(s.heartbeat.count, 2, "it still counts as seen");
    assert_eq!(s.late_events, 1);
}

#[test]
fn late_state_event_is_kept_but_does_not_change_the_state() {
    let s = fold(&[
        state(0.0, Connected),
        state(100.0, Disconnected),
        state(50.0, Connected),
    ]);
    assert_eq!(s.state, Disconnected);
    assert_eq!(s.state_changed_at, at(100.0));
    assert_eq!(s.late_events, 1);
    assert_eq!(s.events, 3);
}

#[test]
fn state_event_at_the_same_instant_applies() {
    let s = fold(&[state(0.0, Connecting), state(0.0, Connected)]);
    assert_eq!(s.state, Connected);
}

#[test]
fn repeating_a_state_keeps_its_age() {
    let s = fold(&[state(0.0, Connected), state(100.0, Connected)]);
    assert_eq!(s.state_changed_at, at(0.0));
    assert_eq!(s.connected_since, Some(at(0.0)));
}

#[test]
fn late_lock_and_breaker_events_do_not_undo_newer_ones() {
    let s = fold(&[
        ev(
            100.0,
            EventKind::LockReleased {
                held_by: None,
                operation: None,
            },
        ),
        ev(
            50.0,
            EventKind::LockAcquired {
                held_by: "r1".into(),
                operation: "save".into(),
            },
        ),
        ev(
            100.0,
            EventKind::CircuitBreaker {
                open: false,
                consecutive_failures: None,
            },
        ),
        ev(
            60.0,
            EventKind::CircuitBreaker {
                open: true,
                consecutive_failures: Some(5),
            },
        ),
    ]);
    assert!(s.lock.is_none());
    assert!(!s.breaker.open);
}

#[test]
fn late_failed_validation_counts_but_does_not_flip_validity() {
    let s = fold(&[
        ev(
            100.0,
            EventKind::Validation {
                valid: true,
                detail: None,
            },
        ),
        ev(
            50.0,
            EventKind::Validation {
                valid: false,
                detail: None,
            },
        ),
    ]);
    assert!(s.integrity.checksum_valid);
    assert_eq!(s.integrity.failures_total, 1);
}

fn with_id(mut e: Event, id: &str) -> Event {
    e.id = Some(id.into());
    e
}

#[test]
fn repeated_event_id_is_ignored() {
    let mut fleet = Fleet::new(Thresholds::default());
    let first = with_id(state(0.0, Reconnecting), "e-1");
    assert_eq!(fleet.apply(&first), Applied::Applied);
    assert!(fleet.is_duplicate(&first));
    assert_eq!(fleet.apply(&first), Applied::Duplicate);
    let s = fleet.view().get("s1").unwrap();
    assert_eq!(s.reconnect.attempts, 1);
    assert_eq!(s.events, 1);
    // The same id on another session is another event.
    let mut other = first.clone();
    other.session = sid("s2");
    assert_eq!(fleet.apply(&other), Applied::Applied);
}

#[test]
fn idempotency_memory_is_bounded_per_session() {
    let mut fleet = Fleet::with_dedup(
        Thresholds::default(),
        wapulse_core::DedupLimits {
            per_session: 2,
            ..Default::default()
        },
    );
    for id in ["a", "b", "c"] {
        fleet.apply(&with_id(heartbeat(1.0), id));
    }
    assert_eq!(
        fleet.apply(&with_id(heartbeat(2.0), "c")),
        Applied::Duplicate
    );
    assert_eq!(
        fleet.apply(&with_id(heartbeat(2.0), "a")),
        Applied::Applied,
        "the session's oldest key was forgotten"
    );
}

#[test]
fn first_state_event_applies_whatever_its_time() {
    // A session first seen through a heartbeat (or created ahead of its
    // gateway) takes a back-dated state as its first real state.
    let s = fold(&[heartbeat(100.0), state(10.0, Connected)]);
    assert_eq!(s.state, Connected);
    assert_eq!(s.state_changed_at, at(10.0));
    assert_eq!(s.connected_since, Some(at(10.0)));
    assert_eq!(s.first_seen, at(10.0));
    assert_eq!(s.late_events, 0);
    let s = fold(&[heartbeat(100.0), state(10.0, Disconnected)]);
    assert_eq!(s.down_since, Some(at(10.0)));
}
