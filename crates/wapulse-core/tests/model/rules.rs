//! One test per alert code at its boundaries (just below, at, above each
//! warning and critical threshold) and for each way it clears.

use wapulse_core::{EventKind, Level, SessionState::*};

use crate::support::*;

const H: f64 = 3600.0;

#[test]
fn healthy_connected_session_is_ok() {
    let s = fold(&[state(0.0, Connected), heartbeat(30.0)]);
    let a = judge(&s, 40.0);
    assert_eq!(a.level, Level::Ok);
    assert!(a.alerts.is_empty());
}

#[test]
fn heartbeat_stale_then_dead() {
    let s = fold(&[state(0.0, Connected), heartbeat(10.0)]);
    assert!(fired(&s, 69.999).is_empty());
    assert_eq!(fired(&s, 70.0), ["HEARTBEAT_STALE:warning"]);
    assert_eq!(fired(&s, 75.0), ["HEARTBEAT_STALE:warning"]);
    assert_eq!(
        judge(&s, 75.0).alerts[0].message(),
        "No heartbeat for 1m 5s"
    );
    assert_eq!(fired(&s, 309.999), ["HEARTBEAT_STALE:warning"]);
    assert_eq!(fired(&s, 310.0), ["HEARTBEAT_DEAD:critical"]);
    assert_eq!(fired(&s, 400.0), ["HEARTBEAT_DEAD:critical"]);
}

#[test]
fn heartbeat_age_counts_from_connecting_when_no_beat_came() {
    let s = fold(&[state(0.0, Connected)]);
    assert_eq!(fired(&s, 60.0), ["HEARTBEAT_STALE:warning"]);
    let s = fold(&[state(0.0, Connected), heartbeat(65.0)]);
    assert!(
        fired(&s, 66.0).is_empty(),
        "a beat clears it: {:?}",
        fired(&s, 66.0)
    );
}

#[test]
fn heartbeat_alerts_only_while_connected() {
    // A disconnected session has no keepalives; LONG_DISCONNECTION covers it.
    let s = fold(&[
        state(0.0, Connected),
        heartbeat(1.0),
        state(2.0, Disconnected),
    ]);
    assert!(fired(&s, 400.0).is_empty(), "{:?}", fired(&s, 400.0));
}

#[test]
fn reconnect_attempts_then_excessive_and_cleared_by_connected() {
    let mut events = vec![state(0.0, Connected)];
    let expect = [
        (1, vec![]),
        (2, vec![]),
        (3, vec!["RECONNECT_ATTEMPTS:warning"]),
        (4, vec!["RECONNECT_ATTEMPTS:warning"]),
        (6, vec!["RECONNECT_ATTEMPTS:warning"]),
        (7, vec!["EXCESSIVE_RECONNECTS:critical"]),
        (8, vec!["EXCESSIVE_RECONNECTS:critical"]),
    ];
    for (attempts, want) in expect {
        while events.len() <= attempts {
            events.push(state(events.len() as f64, Reconnecting));
        }
        let s = fold(&events);
        assert_eq!(s.reconnect.attempts as usize, attempts);
        assert_eq!(fired(&s, 10.0), want, "{attempts} attempts");
    }
    let s = fold(&events);
    assert_eq!(
        judge(&s, 10.0).alerts[0].message(),
        "8 reconnect attempts (max 10)"
    );
    events.push(state(12.0, Connected));
    let s = fold(&events);
    assert_eq!(s.reconnect.attempts, 0);
    assert_eq!(s.reconnect.total_attempts, 8);
    assert!(fired(&s, 13.0).is_empty());
}

#[test]
fn credential_age_warning_then_critical() {
    let s = fold(&[
        state(0.0, Connected),
        ev(0.0, EventKind::CredentialsWritten { store: None }),
    ]);
    // Keep heartbeats out of the picture: judge a disconnected-free view by
    // looking only at CREDENTIAL_AGE.
    let credential = |secs: f64| {
        judge(&s, secs)
            .alerts
            .iter()
            .find(|a| a.code.as_str() == "CREDENTIAL_AGE")
            .map(|a| a.level)
    };
    assert_eq!(credential(24.0 * H - 0.001), None);
    assert_eq!(credential(24.0 * H), Some(Level::Warning));
    assert_eq!(credential(168.0 * H - 0.001), Some(Level::Warning));
    assert_eq!(credential(168.0 * H), Some(Level::Critical));
    assert_eq!(credential(200.0 * H), Some(Level::Critical));
}

#[test]
fn fresh_credentials_clear_credential_age() {
    let s = fold(&[
        ev(0.0, EventKind::CredentialsWritten { store: None }),
        ev(
            25.0 * H,
            EventKind::CredentialsWritten {
                store: Some("s3".into()),
            },
        ),
    ]);
    assert!(
        judge(&s, 25.0 * H + 1.0)
            .alerts
            .iter()
            .all(|a| a.code.as_str() != "CREDENTIAL_AGE")
    );
    assert_eq!(s.credentials_store.as_deref(), Some("s3"));
}

#[test]
fn slow_reconnect_in_progress_and_completed() {
    let s = fold(&[state(0.0, Connected), state(100.0, Reconnecting)]);
    let slow = |s: &wapulse_core::Session, secs: f64| {
        judge(s, secs)
            .alerts
            .into_iter()
            .find(|a| a.code.as_str() == "SLOW_RECONNECT")
    };
    assert!(slow(&s, 129.999).is_none());
    assert_eq!(slow(&s, 130.0).unwrap().level, Level::Warning);
    assert_eq!(
        slow(&s, 130.0).unwrap().message(),
        "Reconnect in progress for 30s"
    );
    assert_eq!(slow(&s, 219.999).unwrap().level, Level::Warning);
    assert_eq!(slow(&s, 220.0).unwrap().level, Level::Critical);

    // Completed in 45s: the last reconnect stays slow until a faster one.
    let s = fold(&[
        state(0.0, Connected),
        state(100.0, Reconnecting),
        state(145.0, Connected),
    ]);
    let a = slow(&s, 146.0).unwrap();
    assert_eq!(
        (a.level, a.message()),
        (Level::Warning, "Last reconnect took 45s".into())
    );
    let s = fold(&[
        state(0.0, Connected),
        state(100.0, Reconnecting),
        state(145.0, Connected),
        state(200.0, Reconnecting),
        state(205.0, Connected),
    ]);
    assert!(slow(&s, 206.0).is_none());
    assert_eq!(s.reconnect.last_duration.unwrap().as_secs(), 5);
}

#[test]
fn missed_heartbeats_warning_critical_and_window_expiry() {
    // Interval 30s: a gap of more than 45s counts floor(gap / 30s).
    let gap = |secs: f64| fold(&[state(0.0, Connected), heartbeat(0.0), heartbeat(secs)]);
    assert_eq!(
        gap(45.0).heartbeat.missed_total,
        0,
        "1.5 intervals is not a miss"
    );
    assert_eq!(gap(45.001).heartbeat.missed_total, 1);
    let missed = |s: &wapulse_core::Session, secs: f64| {
        judge(s, secs)
            .alerts
            .into_iter()
            .find(|a| a.code.as_str() == "MISSED_HEARTBEATS")
            .map(|a| a.level)
    };
    assert_eq!(missed(&gap(89.999), 90.0), None, "2 missed");
    assert_eq!(missed(&gap(90.0), 90.0), Some(Level::Warning), "3 missed");
    assert_eq!(missed(&gap(120.0), 120.0), Some(Level::Warning), "4 missed");
    assert_eq!(
        missed(&gap(299.999), 300.0),
        Some(Level::Warning),
        "9 missed"
    );
    assert_eq!(
        missed(&gap(300.0), 300.0),
        Some(Level::Critical),
        "10 missed"
    );
    let s = gap(90.0);
    assert_eq!(
        judge(&s, 90.0)
            .alerts
            .iter()
            .find(|a| a.code.as_str() == "MISSED_HEARTBEATS")
            .unwrap()
            .message(),
        "3 missed heartbeats in the last 1h"
    );
    // The window is one hour: the alert clears once the link is steady again.
    assert_eq!(missed(&s, 90.0 + H - 0.001), Some(Level::Warning));
    assert_eq!(missed(&s, 90.0 + H), None);
    assert_eq!(s.heartbeat.missed_total, 3, "the lifetime total stays");
}

#[test]
fn missed_heartbeats_not_counted_across_a_disconnection() {
    let s = fold(&[
        state(0.0, Connected),
        heartbeat(0.0),
        state(10.0, Disconnected),
        state(600.0, Connected),
        heartbeat(620.0),
    ]);
    assert_eq!(s.heartbeat.missed_total, 0);
}

#[test]
fn validation_failure_corruption_and_recovery() {
    let base = [state(0.0, Connected), heartbeat(0.0)];
    let fail = ev(
        10.0,
        EventKind::Validation {
            valid: false,
            detail: Some("bad mac".into()),
        },
    );
    let s = fold(&[base[0].clone(), base[1].clone(), fail.clone()]);
    assert!(!s.integrity.checksum_valid);
    assert_eq!(
        fired(&s, 11.0),
        ["SESSION_CORRUPTION:critical", "VALIDATION_FAILURES:warning"]
    );
    // A valid check restores checksum validity; the failure stays in the
    // 24h window.
    let ok = ev(
        20.0,
        EventKind::Validation {
            valid: true,
            detail: None,
        },
    );
    let s = fold(&[base[0].clone(), heartbeat(0.0), fail, ok, heartbeat(21.0)]);
    assert!(s.integrity.checksum_valid);
    assert_eq!(fired(&s, 22.0), ["VALIDATION_FAILURES:warning"]);
    assert_eq!(
        judge(&s, 22.0).alerts[0].message(),
        "1 validation failure in the last 1d"
    );
    let v = |secs: f64| {
        judge(&s, secs)
            .alerts
            .iter()
            .any(|a| a.code.as_str() == "VALIDATION_FAILURES")
    };
    assert!(v(10.0 + 24.0 * H - 0.001));
    assert!(!v(10.0 + 24.0 * H), "window expired");
}

#[test]
fn circuit_breaker_opens_and_closes() {
    let open = ev(
        5.0,
        EventKind::CircuitBreaker {
            open: true,
            consecutive_failures: Some(3),
        },
    );
    let s = fold(&[state(0.0, Reconnecting), open.clone()]);
    let a = judge(&s, 6.0);
    assert_eq!(a.level, Level::Critical);
    assert_eq!(a.alerts[0].code.as_str(), "CIRCUIT_BREAKER_OPEN");
    assert_eq!(
        a.alerts[0].message(),
        "Circuit breaker open after 3 consecutive failures"
    );

    let close = ev(
        7.0,
        EventKind::CircuitBreaker {
            open: false,
            consecutive_failures: None,
        },
    );
    let s = fold(&[state(0.0, Reconnecting), open.clone(), close]);
    assert!(!s.breaker.open);
    assert!(fired(&s, 8.0).iter().all(|c| !c.starts_with("CIRCUIT")));

    let s = fold(&[state(0.0, Reconnecting), open, state(9.0, Connected)]);
    assert!(!s.breaker.open, "connected closes the breaker");
    assert_eq!(s.breaker.consecutive_failures, 0);
    assert_eq!(s.reconnect.attempts, 0);

    let s = fold(&[state(0.0, Connected), state(3.0, CircuitOpen)]);
    assert!(s.breaker.open, "the circuit_open state opens it");
    assert_eq!(fired(&s, 4.0), ["CIRCUIT_BREAKER_OPEN:critical"]);
}

#[test]
fn long_disconnection_counts_from_leaving_connected() {
    let s = fold(&[
        state(0.0, Connected),
        state(100.0, Reconnecting),
        state(200.0, Disconnected),
        state(300.0, Connecting),
    ]);
    let long = |secs: f64| {
        judge(&s, secs)
            .alerts
            .into_iter()
            .find(|a| a.code.as_str() == "LONG_DISCONNECTION")
    };
    assert!(long(100.0 + 1800.0 - 0.001).is_none());
    let a = long(100.0 + 1800.0).unwrap();
    assert_eq!(
        (a.level, a.message()),
        (Level::Critical, "Disconnected for 30m".into())
    );
    assert!(long(5000.0).is_some());
    let s = fold(&[
        state(0.0, Connected),
        state(100.0, Disconnected),
        state(2000.0, Connected),
        heartbeat(2001.0),
    ]);
    assert!(
        fired(&s, 2002.0).iter().all(|c| !c.starts_with("LONG")),
        "connected clears it"
    );
}

#[test]
fn lock_held_too_long() {
    let acquire = ev(
        0.0,
        EventKind::LockAcquired {
            held_by: "replica-2".into(),
            operation: "reconnect".into(),
        },
    );
    let s = fold(std::slice::from_ref(&acquire));
    let lock = |s: &wapulse_core::Session, secs: f64| {
        judge(s, secs)
            .alerts
            .into_iter()
            .find(|a| a.code.as_str() == "LOCK_HELD_TOO_LONG")
            .map(|a| a.level)
    };
    assert_eq!(lock(&s, 299.999), None);
    assert_eq!(lock(&s, 300.0), Some(Level::Warning));
    assert_eq!(lock(&s, 1799.999), Some(Level::Warning));
    assert_eq!(lock(&s, 1800.0), Some(Level::Critical));
    let release = ev(
        10.0,
        EventKind::LockReleased {
            held_by: None,
            operation: None,
        },
    );
    let s = fold(&[acquire, release]);
    assert!(s.lock.is_none());
    assert_eq!(lock(&s, 2000.0), None);
}

#[test]
fn logged_out_and_qr_required() {
    let s = fold(&[state(0.0, Connected), state(10.0, LoggedOut)]);
    assert_eq!(fired(&s, 11.0), ["LOGGED_OUT:critical"]);
    let s = fold(&[state(0.0, Connected), state(10.0, QrRequired)]);
    assert_eq!(fired(&s, 11.0), ["QR_REQUIRED:warning"]);
    let s = fold(&[state(0.0, QrRequired), state(10.0, Connected)]);
    assert!(fired(&s, 11.0).is_empty());
    assert!(s.init_successful);
}

#[test]
fn alerts_are_most_severe_first_and_level_is_their_max() {
    let s = fold(&[
        state(0.0, Connected),
        state(10.0, QrRequired),
        ev(
            10.0,
            EventKind::Validation {
                valid: false,
                detail: None,
            },
        ),
    ]);
    let a = judge(&s, 12.0);
    assert_eq!(a.level, Level::Critical);
    let levels: Vec<Level> = a.alerts.iter().map(|a| a.level).collect();
    let mut sorted = levels.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(levels, sorted);
    assert_eq!(a.alerts[0].code.as_str(), "SESSION_CORRUPTION");
}

#[test]
fn every_alert_has_an_action_and_a_message() {
    for code in wapulse_core::AlertCode::ALL {
        let alert = wapulse_core::Alert {
            code,
            level: Level::Warning,
            value: 65_000,
            threshold: 60_000,
            since: None,
            context: 10,
            cause: None,
            codes: [wapulse_core::ErrorCode::parse("463").ok(), None],
            until: None,
        };
        assert!(!alert.message().is_empty());
        assert!(!alert.action().is_empty());
        for cause in [401, 403, 440, 499] {
            let with = wapulse_core::Alert {
                cause: Some(cause),
                ..alert
            };
            assert!(!with.message().is_empty() && !with.action().is_empty());
        }
    }
}
