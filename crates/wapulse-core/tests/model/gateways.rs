//! What gateways add to a session: named disconnect reasons,
//! SESSION_CONFLICT, keepalive expectations and INBOUND_SILENCE.

use proptest::prelude::*;
use wapulse_core::{
    AlertCode, Direction, DurationMs, Event, EventKind, Level, Session, SessionState, Thresholds,
    evaluate, next_change,
};

use crate::support::*;

fn close(secs: f64, s: SessionState, reason: &str) -> Event {
    ev(
        secs,
        EventKind::State {
            state: s,
            reason: Some(reason.into()),
        },
    )
}

fn inbound(secs: f64, count: u32) -> Event {
    ev(
        secs,
        EventKind::Message {
            direction: Direction::Inbound,
            count,
            ids: Box::default(),
        },
    )
}

fn alert_of(s: &Session, secs: f64, code: AlertCode) -> Option<wapulse_core::Alert> {
    judge(s, secs).alerts.into_iter().find(|a| a.code == code)
}

#[test]
fn the_last_disconnect_is_named_and_drives_the_logged_out_action() {
    let unlinked = fold(&[
        state(0.0, SessionState::Connected),
        close(10.0, SessionState::LoggedOut, "401"),
    ]);
    let last = unlinked.liveness.last_disconnect.as_ref().unwrap();
    assert_eq!(last.read().code, Some(401));
    assert_eq!(last.at, at(10.0));
    let banned = fold(&[
        state(0.0, SessionState::Connected),
        close(10.0, SessionState::LoggedOut, "forbidden"),
    ]);
    let a = alert_of(&unlinked, 11.0, AlertCode::LoggedOut).unwrap();
    let b = alert_of(&banned, 11.0, AlertCode::LoggedOut).unwrap();
    assert!(a.message().contains("401 logged out"), "{}", a.message());
    assert!(b.message().contains("403 forbidden"), "{}", b.message());
    assert!(a.action().starts_with("Re-pair"), "{}", a.action());
    assert!(b.action().contains("banned"), "{}", b.action());
    assert_ne!(a.action(), b.action());
    // A reason that names nothing keeps the seed's words.
    let plain = fold(&[
        state(0.0, SessionState::Connected),
        close(10.0, SessionState::LoggedOut, "user pressed logout"),
    ]);
    let p = alert_of(&plain, 11.0, AlertCode::LoggedOut).unwrap();
    assert_eq!(p.message(), "Session logged out by WhatsApp");
    // `connected` clears no history: the last disconnect stays shown.
    let back = fold(&[
        close(0.0, SessionState::Disconnected, "428"),
        state(5.0, SessionState::Connected),
    ]);
    assert_eq!(
        back.liveness.last_disconnect.as_ref().unwrap().read().code,
        Some(428)
    );
}

#[test]
fn a_long_disconnection_names_its_close_code() {
    let s = fold(&[
        state(0.0, SessionState::Connected),
        close(10.0, SessionState::Disconnected, "503"),
    ]);
    let a = alert_of(&s, 10.0 + 1800.0, AlertCode::LongDisconnection).unwrap();
    assert_eq!(
        a.message(),
        "Disconnected for 30m (last close: 503 service unavailable: WhatsApp's servers refused \
         the connection for now)"
    );
}

#[test]
fn a_conflict_close_said_twice_counts_once() {
    let events = vec![
        ev(0.0, EventKind::Keepalives { expected: false }),
        state(0.0, SessionState::Connected),
        close(60.0, SessionState::Disconnected, "440"),
        // The gateway says it again (a repeated webhook, a second close
        // handler): the same close.
        close(61.0, SessionState::Disconnected, "440"),
        close(62.0, SessionState::Disconnected, "440"),
    ];
    let s = fold(&events);
    assert_eq!(s.liveness.conflicts_total, 1);
    assert_eq!(alert_of(&s, 63.0, AlertCode::SessionConflict), None);
    // A new close after the session moved on is a new one.
    let mut again = events.clone();
    again.push(state(70.0, SessionState::Reconnecting));
    again.push(close(71.0, SessionState::Disconnected, "440"));
    assert_eq!(fold(&again).liveness.conflicts_total, 2);
}

#[test]
fn session_conflict_fires_at_two_and_five_replaced_closes_in_ten_minutes() {
    // (No keepalives expected, so that only conflicts move the verdict.)
    let mut events = vec![
        ev(0.0, EventKind::Keepalives { expected: false }),
        state(0.0, SessionState::Connected),
    ];
    // One replaced close: nothing.
    events.push(close(60.0, SessionState::Disconnected, "440"));
    events.push(state(61.0, SessionState::Connected));
    let s = fold(&events);
    assert_eq!(alert_of(&s, 62.0, AlertCode::SessionConflict), None);
    // Two within ten minutes: warning.
    events.push(close(
        120.0,
        SessionState::Reconnecting,
        "connectionReplaced",
    ));
    events.push(state(121.0, SessionState::Connected));
    let s = fold(&events);
    let a = alert_of(&s, 122.0, AlertCode::SessionConflict).unwrap();
    assert_eq!((a.level, a.value, a.threshold), (Level::Warning, 2, 2));
    assert!(
        a.message()
            .starts_with("2 \"connection replaced\" closes in the last 10m"),
        "{}",
        a.message()
    );
    // Other close codes are no conflict.
    let mut others = events.clone();
    others.push(close(130.0, SessionState::Disconnected, "428"));
    assert_eq!(fold(&others).liveness.conflicts_total, 2);
    // Five: critical.
    for i in 0..3 {
        let t = 200.0 + f64::from(i) * 10.0;
        events.push(close(t, SessionState::Disconnected, "440"));
        events.push(state(t + 1.0, SessionState::Connected));
    }
    let s = fold(&events);
    let a = alert_of(&s, 231.0, AlertCode::SessionConflict).unwrap();
    assert_eq!((a.level, a.value), (Level::Critical, 5));
    // The window slides: the first close (at 60 s) leaves it at 660 s,
    // which is exactly when the verdict next changes.
    let t = Thresholds::default();
    assert_eq!(next_change(&s, &t, at(231.0)), Some(at(660.0)));
    assert_eq!(
        alert_of(&s, 659.9, AlertCode::SessionConflict)
            .unwrap()
            .value,
        5
    );
    assert_eq!(
        alert_of(&s, 660.0, AlertCode::SessionConflict)
            .unwrap()
            .level,
        Level::Warning
    );
    assert_eq!(
        alert_of(&s, 60.0 + 120.0 + 3600.0, AlertCode::SessionConflict),
        None
    );
}

#[test]
fn a_connected_session_that_never_sent_a_heartbeat_is_still_caught() {
    // The zombie catch of the seed: expected keepalives, none ever came.
    let s = fold(&[state(0.0, SessionState::Connected)]);
    assert_eq!(fired(&s, 59.0), Vec::<String>::new());
    assert_eq!(fired(&s, 60.0), ["HEARTBEAT_STALE:warning"]);
    assert_eq!(fired(&s, 300.0), ["HEARTBEAT_DEAD:critical"]);
}

#[test]
fn a_source_without_keepalives_never_pages_on_heartbeats() {
    let no_keepalives = ev(0.0, EventKind::Keepalives { expected: false });
    let s = fold(&[no_keepalives.clone(), state(0.0, SessionState::Connected)]);
    assert_eq!(fired(&s, 86_400.0), Vec::<String>::new());
    assert_eq!(next_change(&s, &Thresholds::default(), at(10.0)), None);
    // A stray heartbeat after a long gap counts no missed beats either.
    let s = fold(&[
        no_keepalives,
        state(0.0, SessionState::Connected),
        heartbeat(3600.0),
        heartbeat(7200.0),
    ]);
    assert_eq!(s.heartbeat.missed_total, 0);
    assert_eq!(fired(&s, 7300.0), Vec::<String>::new());
}

#[test]
fn a_session_that_sends_keepalives_still_pages_when_they_stop() {
    let s = fold(&[
        state(0.0, SessionState::Connected),
        heartbeat(30.0),
        heartbeat(60.0),
    ]);
    assert_eq!(fired(&s, 119.0), Vec::<String>::new());
    assert_eq!(fired(&s, 120.0), ["HEARTBEAT_STALE:warning"]);
    assert_eq!(fired(&s, 360.0), ["HEARTBEAT_DEAD:critical"]);
    // Telling wapulse later that keepalives are expected changes nothing.
    let mut again = s.clone();
    again.apply(
        &ev(70.0, EventKind::Keepalives { expected: true }),
        &Thresholds::default(),
    );
    assert_eq!(fired(&again, 360.0), ["HEARTBEAT_DEAD:critical"]);
}

#[test]
fn a_failing_keepalive_pages_even_without_regular_ones_until_restored() {
    // WAHA GOWS: whatsmeow reports only KeepAliveTimeout / Restored.
    let base = vec![
        ev(0.0, EventKind::Keepalives { expected: false }),
        state(0.0, SessionState::Connected),
        ev(3600.0, EventKind::HeartbeatFailed),
    ];
    let s = fold(&base);
    assert_eq!(s.heartbeat.missed_total, 1);
    assert_eq!(fired(&s, 3659.0), Vec::<String>::new());
    assert_eq!(fired(&s, 3660.0), ["HEARTBEAT_STALE:warning"]);
    assert_eq!(fired(&s, 3900.0), ["HEARTBEAT_DEAD:critical"]);
    // A second failure does not restart the clock, nor count again: one
    // missed beat per failing episode.
    let mut twice = base.clone();
    twice.push(ev(3630.0, EventKind::HeartbeatFailed));
    let s2 = fold(&twice);
    assert_eq!(fired(&s2, 3660.0), ["HEARTBEAT_STALE:warning"]);
    assert_eq!(s2.heartbeat.missed_total, 1);
    // WAHA moves the session to STARTING on a keepalive timeout: while it
    // reconnects nothing is judged, and the new connection starts clean.
    let mut reconnect = base.clone();
    reconnect.push(state(3605.0, SessionState::Reconnecting));
    reconnect.push(ev(3610.0, EventKind::HeartbeatFailed));
    reconnect.push(state(3620.0, SessionState::Connected));
    let s3 = fold(&reconnect);
    assert_eq!(s3.heartbeat.missed_total, 1);
    assert_eq!(fired(&s3, 90_000.0), Vec::<String>::new());
    // KeepAliveRestored: a heartbeat ends it.
    let mut restored = base;
    restored.push(heartbeat(3650.0));
    assert_eq!(fired(&fold(&restored), 90_000.0), Vec::<String>::new());
}

/// A session connected at 0 that receives one message every `every`
/// seconds until `until`.
fn steady(every: f64, until: f64) -> Vec<Event> {
    let mut events = vec![state(0.0, SessionState::Connected)];
    let mut t = every;
    while t <= until {
        events.push(inbound(t, 1));
        t += every;
    }
    events
}

#[test]
fn a_deaf_session_fires_in_the_operators_words_at_its_own_bar() {
    // A message every 3 minutes for 6 hours, then nothing.
    let s = fold(&steady(180.0, 6.0 * 3600.0));
    let last = 6.0 * 3600.0;
    let t = Thresholds::default();
    let bar = s.liveness.inbound.bar(&t).unwrap();
    assert_eq!(bar.last_inbound, Some(at(last)));
    assert_eq!(bar.silent_for(at(last + 60.0)), DurationMs::from_secs(60));
    let usual = bar.usual_gap.as_millis();
    assert!((170_000..=190_000).contains(&usual), "usual gap {usual} ms");
    // ln(1000) ≈ 6.9 usual gaps; ln(10^6) ≈ 13.8.
    let warn = bar.warning_after.as_millis() as f64 / 1000.0;
    let crit = bar.critical_after.as_millis() as f64 / 1000.0;
    assert!((6.8 * 170.0..6.95 * 190.0).contains(&warn), "{warn}");
    assert!((13.7 * 170.0..13.9 * 190.0).contains(&crit), "{crit}");
    // Just before the bar: quiet; at it: warning; then critical.
    assert_eq!(
        alert_of(&s, last + warn - 0.001, AlertCode::InboundSilence),
        None
    );
    let w = alert_of(&s, last + warn, AlertCode::InboundSilence).unwrap();
    assert_eq!(w.level, Level::Warning);
    assert_eq!(next_change(&s, &t, at(last + 1.0)), Some(at(last + warn)));
    let c = alert_of(&s, last + 42.0 * 60.0, AlertCode::InboundSilence).unwrap();
    assert_eq!(c.level, Level::Critical);
    assert_eq!(
        c.message(),
        "No inbound message for 42m; this session usually receives one every 3m"
    );
    assert_eq!(c.since, Some(at(last)));
    // Disconnected, it is no longer deaf (it is down, which other rules say).
    let mut down = s.clone();
    down.apply(&state(last + 60.0, SessionState::Disconnected), &t);
    assert_eq!(
        alert_of(&down, last + 3600.0, AlertCode::InboundSilence),
        None
    );
    // A reconnect does not restart the silence, and the hour down does not
    // count: 60 s silent before the drop, then connected again, the
    // warning comes `warn - 60 s` after the reconnect. (The minute it
    // stayed connected and silent lowered the rate a little.)
    let reconnect = last + 3660.0;
    down.apply(&state(reconnect, SessionState::Connected), &t);
    let again = down.liveness.inbound.bar(&t).unwrap();
    assert_eq!(again.silent_for(at(reconnect)), DurationMs::from_secs(60));
    assert!(again.warning_after > bar.warning_after);
    let warn_ms = again.warning_after.as_millis();
    assert!(warn_ms * 100 < bar.warning_after.as_millis() * 101);
    let fires_at = reconnect + (warn_ms as f64 / 1000.0) - 60.0;
    // (After the heartbeat deadlines of the new connection.)
    assert_eq!(
        next_change(&down, &t, at(reconnect + 400.0)),
        Some(at(fires_at))
    );
    assert_eq!(
        alert_of(&down, fires_at - 0.001, AlertCode::InboundSilence),
        None
    );
    let w = alert_of(&down, fires_at, AlertCode::InboundSilence).unwrap();
    assert_eq!((w.level, w.since), (Level::Warning, Some(at(last))));
}

#[test]
fn quiet_and_new_sessions_are_never_judged() {
    // One message an hour for two days: never enough weight.
    let quiet = fold(&steady(3600.0, 48.0 * 3600.0));
    assert_eq!(
        alert_of(&quiet, 30.0 * 86_400.0, AlertCode::InboundSilence),
        None
    );
    // Busy, but only for an hour: not enough history yet.
    let new = fold(&steady(10.0, 3600.0));
    assert_eq!(
        alert_of(&new, 3600.0 * 5.0, AlertCode::InboundSilence),
        None
    );
    // Never below the minimum gap, however busy the session.
    let busy = fold(&steady(1.0, 3.0 * 3600.0));
    let last = 3.0 * 3600.0;
    assert_eq!(
        alert_of(&busy, last + 599.0, AlertCode::InboundSilence),
        None
    );
    assert_eq!(
        alert_of(&busy, last + 600.0, AlertCode::InboundSilence).map(|a| a.level),
        Some(Level::Critical)
    );
}

#[test]
fn the_baseline_survives_a_disconnection_unchanged() {
    let t = Thresholds::default();
    let mut s = fold(&steady(180.0, 6.0 * 3600.0));
    let before = s.liveness.inbound.clone();
    s.apply(&state(6.0 * 3600.0, SessionState::Disconnected), &t);
    s.apply(&state(30.0 * 3600.0, SessionState::Connected), &t);
    assert_eq!(s.liveness.inbound.weight(), before.weight());
    assert_eq!(s.liveness.inbound.rate_per_hour(), before.rate_per_hour());
}

/// Gaps of a Poisson stream of `per_hour` messages an hour, from uniform
/// draws.
fn poisson_gaps(per_hour: f64, draws: &[u32]) -> impl Iterator<Item = f64> + '_ {
    draws.iter().map(move |&u| {
        let u = (f64::from(u) + 1.0) / (f64::from(u32::MAX) + 2.0);
        -u.ln() / per_hour * 3600.0
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Under its own steady Poisson stream, a session is rarely called
    /// deaf: at the 0.1 % bar, a few gaps in a thousand at most (the
    /// estimated rate wobbles), never a large share.
    #[test]
    fn a_steady_poisson_stream_fires_rarely(
        per_hour in 6.0f64..240.0,
        draws in proptest::collection::vec(any::<u32>(), 1500),
    ) {
        let t = Thresholds::default();
        let mut s = Session::new(sid("s1"), at(0.0));
        s.apply(&state(0.0, SessionState::Connected), &t);
        let mut now = 0.0;
        let (mut judged, mut fired) = (0u32, 0u32);
        for gap in poisson_gaps(per_hour, &draws) {
            let next = now + gap;
            // Whatever fired during the gap still fires at its end.
            let a = evaluate(&s, &t, at(next - 0.001));
            if s.liveness.inbound.bar(&t).is_some() {
                judged += 1;
            }
            if a.alerts.iter().any(|a| a.code == AlertCode::InboundSilence) {
                fired += 1;
            }
            s.apply(&inbound(next, 1), &t);
            now = next;
        }
        prop_assert!(fired * 50 <= judged + 250, "{} of {} gaps fired", fired, judged);
    }

    /// After a busy stream, a silence of the critical bar fires critical,
    /// and of the warning bar at least a warning.
    #[test]
    fn silence_after_a_busy_stream_fires(
        per_hour in 20.0f64..600.0,
        draws in proptest::collection::vec(any::<u32>(), 3000),
    ) {
        let t = Thresholds::default();
        let mut s = Session::new(sid("s1"), at(0.0));
        s.apply(&state(0.0, SessionState::Connected), &t);
        let mut now = 0.0;
        for gap in poisson_gaps(per_hour, &draws) {
            now += gap;
            s.apply(&inbound(now, 1), &t);
            if now > 4.0 * 3600.0 {
                break;
            }
        }
        let bar = s.liveness.inbound.bar(&t);
        prop_assume!(bar.is_some());
        let bar = bar.unwrap();
        let usual = bar.usual_gap.as_millis() as f64 / 1000.0;
        // The estimate is close to the true rate.
        prop_assert!((usual * per_hour / 3600.0 - 1.0).abs() < 0.5, "usual {} at {}/h", usual, per_hour);
        let level_after = |secs: f64| {
            evaluate(&s, &t, at(now + secs))
                .alerts
                .iter()
                .find(|a| a.code == AlertCode::InboundSilence)
                .map(|a| a.level)
        };
        prop_assert_eq!(level_after(bar.critical_after.as_millis() as f64 / 1000.0), Some(Level::Critical));
        prop_assert!(level_after(bar.warning_after.as_millis() as f64 / 1000.0).is_some());
    }
}
