//! Alert lifecycle, grouping, incidents, matchers and the evaluator's
//! deadlines: pure rules at their boundaries, and properties.

use std::collections::BTreeMap;

use proptest::prelude::*;
use wapulse_core::grouping::{Group, GroupTiming, NotifiedAlert, Status};
use wapulse_core::incident::{IncidentRules, IncidentTracker, Trouble, Troubles};
use wapulse_core::{
    AlertCode, AlertLife, DurationMs, EventKind, Level, LifeRules, Matcher, Phase, SessionState,
    Silence, Thresholds, Timestamp, Transition, evaluate, next_change,
};

use crate::support::*;

fn rules(for_secs: u64, keep_secs: u64) -> LifeRules {
    LifeRules {
        for_: DurationMs::from_secs(for_secs),
        keep_firing_for: DurationMs::from_secs(keep_secs),
        flap_window: DurationMs::from_hours(1),
        flap_threshold: 4,
        flap_quiet: DurationMs::from_mins(15),
    }
}

const W: Option<Level> = Some(Level::Warning);
const C: Option<Level> = Some(Level::Critical);

#[test]
fn a_condition_fires_only_once_it_held_for_its_for() {
    let r = rules(60, 0);
    let mut life = AlertLife::default();
    assert_eq!(life.step(W, at(0.0), &r), [Transition::Pending]);
    assert_eq!(life.deadline(&r), Some(at(60.0)));
    assert_eq!(life.step(W, at(59.999), &r), []);
    assert_eq!(life.phase, Phase::Pending);
    assert_eq!(life.step(W, at(60.0), &r), [Transition::Fired]);
    assert_eq!(life.phase, Phase::Firing);
    assert_eq!(life.fired_at, Some(at(60.0)));
    assert_eq!(life.active_since, Some(at(0.0)));
}

#[test]
fn a_pending_condition_that_goes_away_is_cancelled_silently() {
    let r = rules(60, 0);
    let mut life = AlertLife::default();
    life.step(W, at(0.0), &r);
    assert_eq!(life.step(None, at(30.0), &r), [Transition::Cancelled]);
    assert_eq!(life.phase, Phase::Inactive);
    assert_eq!(life.deadline(&r), None);
    // It starts over: the next appearance waits a full `for` again.
    assert_eq!(life.step(W, at(40.0), &r), [Transition::Pending]);
    assert_eq!(life.step(W, at(99.0), &r), []);
    assert_eq!(life.step(W, at(100.0), &r), [Transition::Fired]);
}

#[test]
fn for_zero_fires_at_once() {
    let mut life = AlertLife::default();
    assert_eq!(life.step(C, at(0.0), &rules(0, 0)), [Transition::Fired]);
}

#[test]
fn keep_firing_for_holds_a_resolve_and_a_return_cancels_it() {
    let r = rules(0, 120);
    let mut life = AlertLife::default();
    life.step(C, at(0.0), &r);
    assert_eq!(life.step(None, at(10.0), &r), []);
    assert_eq!(life.deadline(&r), Some(at(130.0)));
    // Back before the hold ran out: still the same firing alert.
    assert_eq!(life.step(C, at(100.0), &r), []);
    assert_eq!(life.deadline(&r), None);
    assert_eq!(life.step(None, at(200.0), &r), []);
    assert_eq!(life.step(None, at(319.999), &r), []);
    assert_eq!(life.step(None, at(320.0), &r), [Transition::Resolved]);
    assert_eq!(life.resolved_at, Some(at(320.0)));
}

#[test]
fn a_level_change_while_firing_is_one_transition() {
    let r = rules(0, 0);
    let mut life = AlertLife::default();
    life.step(W, at(0.0), &r);
    assert_eq!(
        life.step(C, at(5.0), &r),
        [Transition::LevelChanged {
            from: Level::Warning
        }]
    );
    assert_eq!(life.level, Level::Critical);
}

#[test]
fn flapping_is_said_once_and_holds_the_alert_until_quiet() {
    let r = rules(0, 0);
    let mut life = AlertLife::default();
    let mut said = Vec::new();
    // Bounce every minute: fire, clear, fire, clear…
    for i in 0..4 {
        said.extend(life.step(C, at(f64::from(i) * 60.0), &r));
        said.extend(life.step(None, at(f64::from(i) * 60.0 + 30.0), &r));
    }
    let fires = said.iter().filter(|t| **t == Transition::Fired).count();
    assert_eq!(fires, 4);
    assert_eq!(
        said.iter()
            .filter(|t| **t == Transition::FlappingStarted)
            .count(),
        1
    );
    // The fourth fire made it flapping: the clear after it does not resolve.
    assert!(life.flapping);
    assert_eq!(life.phase, Phase::Firing);
    // More bounces say nothing at all.
    assert_eq!(life.step(C, at(300.0), &r), []);
    assert_eq!(life.step(None, at(330.0), &r), []);
    // Quiet for 15 minutes: resolved, once.
    assert_eq!(life.step(None, at(330.0 + 899.0), &r), []);
    assert_eq!(
        life.step(None, at(330.0 + 900.0), &r),
        [Transition::Resolved]
    );
    assert!(!life.flapping);
}

#[test]
fn retiring_resolves_a_firing_alert_at_once_whatever_holds_it() {
    // Flapping (held firing until 15 minutes quiet): a retire does not wait.
    let r = rules(0, 0);
    let mut life = AlertLife::default();
    for i in 0..4 {
        life.step(C, at(f64::from(i) * 60.0), &r);
        life.step(None, at(f64::from(i) * 60.0 + 30.0), &r);
    }
    assert!(life.flapping && life.phase == Phase::Firing);
    assert_eq!(life.retire(at(400.0)), [Transition::Resolved]);
    assert_eq!(life.phase, Phase::Inactive);
    assert_eq!(life.resolved_at, Some(at(400.0)));
    assert!(!life.flapping);
    // Nothing is kept for flapping: the state may be forgotten now.
    assert!(life.is_forgettable(at(400.0), &r));
    assert_eq!(life.deadline(&r), None);
    // Once is all: a second retire says nothing.
    assert_eq!(life.retire(at(401.0)), []);

    // Held by keep_firing_for (an hour): a retire does not wait either.
    let r = rules(0, 3600);
    let mut held = AlertLife::default();
    held.step(C, at(0.0), &r);
    assert_eq!(held.step(None, at(10.0), &r), []);
    assert_eq!(held.phase, Phase::Firing);
    assert_eq!(held.retire(at(20.0)), [Transition::Resolved]);
    assert_eq!(held.phase, Phase::Inactive);

    // A pending alert is cancelled (nothing was sent, nothing is sent).
    let mut pending = AlertLife::default();
    pending.step(W, at(0.0), &rules(60, 0));
    assert_eq!(pending.retire(at(10.0)), [Transition::Cancelled]);
    assert_eq!(pending.phase, Phase::Inactive);
    assert_eq!(AlertLife::default().retire(at(0.0)), []);
}

#[test]
fn the_lifecycle_state_survives_a_serde_round_trip() {
    let r = rules(60, 30);
    let mut life = AlertLife::default();
    life.step(W, at(0.0), &r);
    life.step(W, at(61.0), &r);
    life.step(None, at(70.0), &r);
    let json = serde_json::to_string(&life).unwrap();
    let back: AlertLife = serde_json::from_str(&json).unwrap();
    assert_eq!(back, life);
}

fn level_sequence() -> impl Strategy<Value = Vec<(u32, Option<Level>)>> {
    let cond = prop_oneof![
        3 => Just(None),
        2 => Just(Some(Level::Warning)),
        2 => Just(Some(Level::Critical)),
    ];
    proptest::collection::vec((0u32..400, cond), 1..80)
}

fn lifecycle_rules() -> impl Strategy<Value = LifeRules> {
    (0u64..3, 0u64..3, 0u32..5).prop_map(|(f, k, flap)| LifeRules {
        for_: DurationMs::from_secs(f * 60),
        keep_firing_for: DurationMs::from_secs(k * 60),
        flap_window: DurationMs::from_hours(1),
        flap_threshold: flap,
        flap_quiet: DurationMs::from_mins(10),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Never two fires for one alert without a resolve between them, and
    /// never a resolve that was not preceded by a fire.
    #[test]
    fn fires_and_resolves_strictly_alternate(seq in level_sequence(), r in lifecycle_rules()) {
        let mut life = AlertLife::default();
        let mut t = 0f64;
        let mut firing = false;
        for (gap, cond) in seq {
            t += f64::from(gap);
            for tr in life.step(cond, at(t), &r) {
                match tr {
                    Transition::Fired => { prop_assert!(!firing, "fired twice"); firing = true; }
                    Transition::Resolved => { prop_assert!(firing, "resolved unfired"); firing = false; }
                    _ => {}
                }
            }
            prop_assert_eq!(firing, life.phase == Phase::Firing);
        }
    }

    /// Stopping at any point, saving the state and continuing from the
    /// saved copy gives the same transitions and the same end state as
    /// never stopping.
    #[test]
    fn a_restart_at_any_point_continues_identically(
        seq in level_sequence(), r in lifecycle_rules(), cut in 0usize..80
    ) {
        let mut straight = AlertLife::default();
        let mut restarted = AlertLife::default();
        let mut t = 0f64;
        for (i, (gap, cond)) in seq.into_iter().enumerate() {
            t += f64::from(gap);
            if i == cut {
                let saved = serde_json::to_string(&restarted).unwrap();
                restarted = serde_json::from_str(&saved).unwrap();
            }
            prop_assert_eq!(straight.step(cond, at(t), &r), restarted.step(cond, at(t), &r));
        }
        prop_assert_eq!(straight, restarted);
    }
}

fn alert(session: &str, code: &str, status: Status) -> NotifiedAlert {
    NotifiedAlert {
        session: session.into(),
        code: code.into(),
        level: Level::Critical,
        status,
        starts_at: at(0.0),
        ends_at: None,
        summary: "s".into(),
        action: "a".into(),
        flapping: false,
        labels: Default::default(),
        sessions: Vec::new(),
        affected: None,
        retired: false,
    }
}

/// No alert is muted.
const LOUD: fn(&NotifiedAlert) -> bool = |_| false;

fn timing() -> GroupTiming {
    GroupTiming {
        group_wait: DurationMs::from_secs(30),
        group_interval: DurationMs::from_mins(5),
        repeat_interval: DurationMs::from_hours(4),
    }
}

#[test]
fn a_group_waits_then_says_all_its_alerts_in_one_message() {
    let t = timing();
    let mut g = Group::new("k".into(), BTreeMap::new(), at(0.0));
    g.update(alert("a", "HEARTBEAT_DEAD", Status::Firing));
    assert_eq!(g.next_flush(&t, LOUD), Some(at(30.0)));
    g.update(alert("b", "HEARTBEAT_DEAD", Status::Firing));
    assert_eq!(
        g.next_flush(&t, LOUD),
        Some(at(30.0)),
        "a second alert does not restart the wait"
    );
    let m = g.flush(at(30.0), LOUD).unwrap();
    assert_eq!(m.firing.len(), 2);
    assert_eq!(m.status, Status::Firing);
    assert!(!m.repeat);
    // Unchanged: the next message is the repeat.
    assert_eq!(g.next_flush(&t, LOUD), Some(at(30.0 + 4.0 * 3600.0)));
    let again = g.flush(at(30.0 + 4.0 * 3600.0), LOUD).unwrap();
    assert!(again.repeat);
}

#[test]
fn a_change_waits_for_the_group_interval_and_a_resolve_is_said_once() {
    let t = timing();
    let mut g = Group::new("k".into(), BTreeMap::new(), at(0.0));
    g.update(alert("a", "X", Status::Firing));
    g.update(alert("b", "X", Status::Firing));
    g.flush(at(30.0), LOUD).unwrap();
    g.update(alert("a", "X", Status::Resolved));
    assert_eq!(g.next_flush(&t, LOUD), Some(at(330.0)));
    let m = g.flush(at(330.0), LOUD).unwrap();
    assert_eq!(m.resolved.len(), 1);
    assert_eq!(m.resolved[0].session, "a");
    assert_eq!(m.firing.len(), 1);
    g.update(alert("b", "X", Status::Resolved));
    let last = g.flush(at(630.0), LOUD).unwrap();
    assert_eq!(last.status, Status::Resolved);
    assert!(g.is_empty());
    assert_eq!(g.next_flush(&t, LOUD), None);
}

#[test]
fn an_alert_resolved_before_it_was_said_leaves_without_a_word() {
    let t = timing();
    let mut g = Group::new("k".into(), BTreeMap::new(), at(0.0));
    g.update(alert("a", "X", Status::Firing));
    g.update(alert("a", "X", Status::Resolved));
    assert!(g.is_empty());
    assert_eq!(g.next_flush(&t, LOUD), None);
    assert_eq!(g.flush(at(30.0), LOUD), None);
}

#[test]
fn a_muted_alert_makes_no_message_joins_none_and_is_said_once_unmuted() {
    let t = timing();
    let mut g = Group::new("k".into(), BTreeMap::new(), at(0.0));
    let quiet = |a: &NotifiedAlert| a.session == "q";
    g.update(alert("q", "X", Status::Firing));
    assert_eq!(g.next_flush(&t, quiet), None, "nothing audible to say");
    g.update(alert("a", "X", Status::Firing));
    let m = g.flush(at(30.0), quiet).unwrap();
    assert_eq!(m.firing.len(), 1, "the muted one is left out");
    assert_eq!(m.firing[0].session, "a");
    // Once unmuted it is news: said at the next group interval.
    assert_eq!(g.next_flush(&t, LOUD), Some(at(330.0)));
    let m = g.flush(at(330.0), LOUD).unwrap();
    assert!(!m.repeat);
    assert_eq!(m.firing.len(), 2);
    // Muted again after it was said: the reminder leaves it out, and a
    // resolve owed is still said.
    let again = g.flush(at(330.0 + 4.0 * 3600.0), quiet).unwrap();
    assert_eq!(again.firing.len(), 1);
    g.update(alert("q", "X", Status::Resolved));
    assert!(g.next_flush(&t, quiet).is_some());
    let last = g.flush(at(99_999.0), quiet).unwrap();
    assert_eq!(last.resolved.len(), 1);
}

#[test]
fn a_group_resolved_while_its_last_alert_was_muted_says_it_again_when_unmuted() {
    let t = timing();
    let mut g = Group::new("k".into(), BTreeMap::new(), at(0.0));
    g.update(alert("a", "X", Status::Firing));
    g.update(alert("b", "X", Status::Firing));
    g.flush(at(30.0), LOUD).unwrap();
    // b is silenced, then a resolves: downstream the group is resolved.
    let quiet = |x: &NotifiedAlert| x.session == "b";
    g.update(alert("a", "X", Status::Resolved));
    let m = g.flush(at(330.0), quiet).unwrap();
    assert_eq!(m.status, Status::Resolved);
    assert_eq!(
        g.next_flush(&t, quiet),
        None,
        "nothing to say while b is muted"
    );
    // The silence lifts: b fires and must be said again.
    assert_eq!(g.next_flush(&t, LOUD), Some(at(630.0)));
    let m = g.flush(at(630.0), LOUD).unwrap();
    assert_eq!(m.status, Status::Firing);
    assert_eq!(m.firing[0].session, "b");
    assert!(!m.repeat);
}

#[test]
fn a_message_carries_at_most_500_alerts_and_the_totals() {
    let mut g = Group::new("k".into(), BTreeMap::new(), at(0.0));
    for i in 0..1200 {
        g.update(alert(&format!("s{i:04}"), "X", Status::Firing));
    }
    let m = g.flush(at(30.0), LOUD).unwrap();
    assert_eq!(
        m.firing.len(),
        wapulse_core::grouping::MAX_ALERTS_PER_MESSAGE
    );
    assert_eq!(m.firing_total, 1200);
}

#[test]
fn incidents_of_different_sets_are_different_alerts_in_one_group() {
    let mut g = Group::new("k".into(), BTreeMap::new(), at(0.0));
    for region in ["eu-1", "us-1"] {
        let mut a = alert("", "FLEET_INCIDENT", Status::Firing);
        std::sync::Arc::make_mut(&mut a.labels).insert("region".into(), region.into());
        g.update(a);
    }
    assert_eq!(g.len(), 2);
}

#[test]
fn folded_alerts_never_said_are_dropped_and_said_ones_kept() {
    let mut g = Group::new("k".into(), BTreeMap::new(), at(0.0));
    g.update(alert("a", "X", Status::Firing));
    g.flush(at(30.0), LOUD);
    g.update(alert("b", "X", Status::Firing));
    g.drop_unsaid(|_| true);
    assert_eq!(g.len(), 1, "a was said: its resolve is still owed");
}

fn troubled(set: &str, since: f64) -> Troubles {
    Troubles {
        set: set.into(),
        kinds: vec![(Trouble::NotConnected, at(since))],
    }
}

fn healthy(set: &str) -> Troubles {
    Troubles {
        set: set.into(),
        kinds: Vec::new(),
    }
}

#[test]
fn an_incident_needs_both_the_share_and_the_count_within_the_window() {
    let rules = IncidentRules::default();
    assert_eq!(rules.needed(10), 10);
    assert_eq!(rules.needed(100), 20);
    assert_eq!(rules.needed(1000), 200);
    let mut tr = IncidentTracker::new();
    for i in 0..100 {
        tr.update(&sid(&format!("s{i:03}")), None, Some(&healthy("")));
    }
    // 19 of 100 down: one short of 20 %.
    for i in 0..19 {
        let id = format!("s{i:03}");
        tr.update(&sid(&id), Some(&healthy("")), Some(&troubled("", 10.0)));
    }
    let check = &tr.checks(at(20.0), &rules)[0];
    assert_eq!((check.current, check.recent, check.total), (19, 19, 100));
    assert!(!check.holds(false, &rules));
    tr.update(&sid("s019"), Some(&healthy("")), Some(&troubled("", 15.0)));
    let check = &tr.checks(at(20.0), &rules)[0];
    assert!(check.holds(false, &rules));
    assert_eq!(check.percent(), 20);
    assert!(
        check
            .summary()
            .starts_with("20 % of sessions (20 of 100) are not connected")
    );
    // The same 20 spread over more than the window do not start one…
    let late = &tr.checks(at(10.0 + 300.0 + 1.0), &rules)[0];
    assert_eq!(late.recent, 1);
    assert!(!late.holds(false, &rules));
    // …but keep one that started going.
    assert!(late.holds(true, &rules));
}

#[test]
fn sets_are_counted_apart() {
    let rules = IncidentRules {
        by: vec!["region".into()],
        ..IncidentRules::default()
    };
    let mut labels = BTreeMap::new();
    labels.insert("region".to_owned(), "eu-1".to_owned());
    let set = rules.set_of(|n| labels.get(n).map(String::as_str));
    assert_eq!(set, "region=eu-1");
    // Values with the key's own separators read back exactly.
    let odd = IncidentRules {
        by: vec!["a".into(), "b".into()],
        ..IncidentRules::default()
    };
    let values: BTreeMap<&str, &str> = [("a", "x=1,y|2%"), ("b", "")].into();
    let key = odd.set_of(|n| values.get(n).copied());
    let back = wapulse_core::incident::set_labels(&key);
    assert_eq!(back.get("a").map(String::as_str), Some("x=1,y|2%"));
    assert_eq!(back.get("b").map(String::as_str), Some(""));
    let mut tr = IncidentTracker::new();
    for i in 0..10 {
        tr.update(
            &sid(&format!("eu{i}")),
            None,
            Some(&troubled("region=eu-1", 0.0)),
        );
        tr.update(&sid(&format!("us{i}")), None, Some(&healthy("region=us-1")));
    }
    let checks = tr.checks(at(1.0), &rules);
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].total, 10);
    assert!(checks[0].holds(false, &rules), "all 10 of eu-1");
    // Leaving removes a session from its set's counts.
    tr.update(
        &sid("eu0"),
        Some(&troubled("region=eu-1", 0.0)),
        Some(&healthy("region=eu-1")),
    );
    assert_eq!(tr.checks(at(1.0), &rules)[0].current, 9);
}

#[test]
fn a_session_that_never_connected_is_no_trouble_and_a_down_one_is() {
    let starting = fold(&[state(0.0, SessionState::Connecting)]);
    assert!(Troubles::of(&starting, String::new(), []).kinds.is_empty());
    let down = fold(&[
        state(0.0, SessionState::Connected),
        state(10.0, SessionState::Reconnecting),
    ]);
    let t = Troubles::of(
        &down,
        String::new(),
        [(AlertCode::ReconnectAttempts, at(11.0))],
    );
    assert_eq!(t.kinds, vec![(Trouble::NotConnected, at(10.0))]);
    let up = fold(&[state(0.0, SessionState::Connected)]);
    let t = Troubles::of(&up, String::new(), [(AlertCode::HeartbeatDead, at(400.0))]);
    assert_eq!(
        t.kinds,
        vec![(Trouble::Code(AlertCode::HeartbeatDead), at(400.0))]
    );
}

#[test]
fn matchers_read_exact_values_anchored_regexes_and_missing_labels_as_empty() {
    let labels: BTreeMap<&str, &str> = [("region", "eu-1"), ("code", "HEARTBEAT_DEAD")].into();
    let read = |n: &str| labels.get(n).copied();
    assert!(Matcher::new("region", "eu-1", false).unwrap().matches(read));
    assert!(!Matcher::new("region", "eu", false).unwrap().matches(read));
    assert!(Matcher::new("region", "eu-.*", true).unwrap().matches(read));
    assert!(
        !Matcher::new("region", "u-1", true).unwrap().matches(read),
        "anchored"
    );
    assert!(Matcher::new("tenant", "", false).unwrap().matches(read));
    assert!(
        Matcher::new("code", "HEARTBEAT_(DEAD|STALE)", true)
            .unwrap()
            .matches(read)
    );
    let err = Matcher::new("region", "(", true).unwrap_err();
    assert!(err.to_string().contains("`(`"), "{err}");
    assert!(Matcher::new("1bad", "x", false).is_err());
}

#[test]
fn a_silence_applies_between_its_start_and_end_only() {
    let s = Silence {
        id: "x".into(),
        matchers: vec![Matcher::new("session", "s1", false).unwrap()],
        starts_at: at(100.0),
        ends_at: at(200.0),
        created_by: "me".into(),
        comment: "maintenance".into(),
        scope: None,
    };
    let read = |n: &str| (n == "session").then_some("s1");
    assert!(!s.silences(at(99.999), read));
    assert!(s.silences(at(100.0), read));
    assert!(s.silences(at(199.999), read));
    assert!(!s.silences(at(200.0), read));
    let other = |n: &str| (n == "session").then_some("s2");
    assert!(!s.silences(at(150.0), other));
}

#[test]
fn next_change_is_when_the_heartbeat_age_crosses_each_threshold() {
    let t = Thresholds::default();
    let s = fold(&[state(0.0, SessionState::Connected), heartbeat(10.0)]);
    assert_eq!(next_change(&s, &t, at(20.0)), Some(at(70.0)));
    assert_eq!(next_change(&s, &t, at(70.0)), Some(at(310.0)));
    assert_eq!(next_change(&s, &t, at(310.0)), None);
    // And the verdict does change exactly there.
    assert!(evaluate(&s, &t, at(69.999)).alerts.is_empty());
    assert_eq!(
        evaluate(&s, &t, at(70.0)).alerts[0].code,
        AlertCode::HeartbeatStale
    );
}

#[test]
fn next_change_covers_disconnection_windows_reconnects_and_locks() {
    let t = Thresholds::default();
    let down = fold(&[
        state(0.0, SessionState::Connected),
        state(100.0, SessionState::Disconnected),
    ]);
    assert_eq!(next_change(&down, &t, at(100.0)), Some(at(100.0 + 1800.0)));
    let reconnecting = fold(&[
        state(0.0, SessionState::Connected),
        state(100.0, SessionState::Reconnecting),
    ]);
    assert_eq!(next_change(&reconnecting, &t, at(100.0)), Some(at(130.0)));
    let locked = fold(&[ev(
        0.0,
        EventKind::LockAcquired {
            held_by: "w".into(),
            operation: "op".into(),
        },
    )]);
    assert_eq!(next_change(&locked, &t, at(0.0)), Some(at(300.0)));
    let invalid = fold(&[ev(
        0.0,
        EventKind::Validation {
            valid: false,
            detail: None,
        },
    )]);
    // Never connected: LONG_DISCONNECTION after 30 min; then the failure
    // leaves the 24 h window.
    assert_eq!(next_change(&invalid, &t, at(10.0)), Some(at(1800.0)));
    assert_eq!(next_change(&invalid, &t, at(1800.0)), Some(at(86_400.0)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Between `now` and `next_change`, the verdict does not change: an
    /// evaluator that sleeps until the deadline misses nothing.
    #[test]
    fn the_verdict_holds_until_next_change(
        gaps in proptest::collection::vec((0u32..200, 0usize..4), 1..30),
        probe in 0u32..4000,
    ) {
        let t = Thresholds::default();
        let mut events = Vec::new();
        let mut now = 0f64;
        for (gap, k) in gaps {
            now += f64::from(gap);
            let e = match k {
                0 => state(now, SessionState::Connected),
                1 => state(now, SessionState::Reconnecting),
                2 => heartbeat(now),
                _ => ev(now, EventKind::Validation { valid: false, detail: None }),
            };
            events.push(e);
        }
        let s = fold(&events);
        let start = at(now);
        let until = next_change(&s, &t, start);
        let later = at(now + f64::from(probe));
        if until.is_none_or(|u| later < u) {
            let a = evaluate(&s, &t, start);
            let b = evaluate(&s, &t, later);
            let codes = |x: &wapulse_core::Assessment| x.alerts.iter().map(|a| (a.code, a.level)).collect::<Vec<_>>();
            prop_assert_eq!(codes(&a), codes(&b));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Kept by difference, the tracker's counts always equal counting the
    /// sessions' current troubles from scratch; its version moves with
    /// every membership change.
    #[test]
    fn incident_counts_kept_by_difference_equal_a_recount(
        moves in proptest::collection::vec((0usize..12, 0usize..3, 0usize..3, 0u32..600), 1..120),
        now in 0u32..900,
    ) {
        let rules = IncidentRules::default();
        let sets = ["", "region=eu-1", "region=us-1"];
        let mut tracker = IncidentTracker::new();
        let mut current: BTreeMap<String, Troubles> = BTreeMap::new();
        for (session, set, kind, since) in moves {
            let id = format!("s{session}");
            let after = Troubles {
                set: sets[set].to_owned(),
                kinds: match kind {
                    0 => vec![],
                    1 => vec![(Trouble::NotConnected, at(f64::from(since)))],
                    _ => vec![(Trouble::Code(AlertCode::HeartbeatDead), at(f64::from(since)))],
                },
            };
            let version = tracker.version();
            tracker.update(&sid(&id), current.get(&id), Some(&after));
            prop_assert!(tracker.version() > version);
            current.insert(id, after);
        }
        let checks = tracker.checks(at(f64::from(now)), &rules);
        let horizon = at(f64::from(now)).minus(rules.window);
        for c in &checks {
            let members: Vec<(&String, Timestamp)> = current
                .iter()
                .filter(|(_, t)| t.set == c.set)
                .flat_map(|(id, t)| t.kinds.iter().filter(|k| k.0 == c.trouble).map(move |k| (id, k.1)))
                .collect();
            prop_assert_eq!(c.current, members.len());
            prop_assert_eq!(c.recent, members.iter().filter(|m| m.1 >= horizon).count());
            prop_assert_eq!(c.total, current.values().filter(|t| t.set == c.set).count());
            let listed: Vec<String> = tracker
                .sessions(&c.set, c.trouble)
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect();
            let expected: Vec<String> = members.iter().map(|m| m.0.clone()).collect();
            prop_assert_eq!(listed, expected);
        }
        let troubled_pairs: std::collections::BTreeSet<(String, Trouble)> = current
            .values()
            .flat_map(|t| t.kinds.iter().map(move |k| (t.set.clone(), k.0)))
            .collect();
        prop_assert_eq!(checks.len(), troubled_pairs.len());
    }
}

fn sid(id: &str) -> wapulse_core::SessionId {
    wapulse_core::SessionId::parse(id).unwrap()
}

#[test]
fn a_scoped_silence_mutes_nothing_outside_its_scope() {
    let acme = wapulse_core::Scope::Labels([("tenant".to_owned(), "acme".to_owned())].into());
    let s = Silence {
        id: "s".into(),
        matchers: vec![Matcher::new("code", "HEARTBEAT_DEAD", false).unwrap()],
        starts_at: at(100.0),
        ends_at: at(200.0),
        created_by: "acme-admin".into(),
        comment: "maintenance".into(),
        scope: Some(acme),
    };
    let alert = |tenant: &'static str| {
        move |n: &str| match n {
            "code" => Some("HEARTBEAT_DEAD"),
            "tenant" => Some(tenant),
            _ => None,
        }
    };
    assert!(s.silences(at(150.0), alert("acme")));
    assert!(!s.silences(at(150.0), alert("bolt")));
    let unscoped = Silence { scope: None, ..s };
    assert!(unscoped.silences(at(150.0), alert("bolt")));
}
