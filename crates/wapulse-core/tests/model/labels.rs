//! Session labels: merged by `labels` events, `null` removes, at most 16,
//! checked per batch against the fleet, kept across a snapshot.

use wapulse_core::labels::LabelChanges;
use wapulse_core::{
    DurationMs, Event, EventKind, Fleet, FleetState, Labels, ParseContext, RawEvent, SessionState,
    Thresholds,
};

use crate::support::*;

fn changes(pairs: &[(&str, Option<&str>)]) -> LabelChanges {
    LabelChanges::try_from_changes(pairs.iter().copied()).unwrap()
}

fn labels_event(secs: f64, pairs: &[(&str, Option<&str>)]) -> Event {
    ev(
        secs,
        EventKind::Labels {
            labels: changes(pairs),
        },
    )
}

fn pairs(l: &Labels) -> Vec<(&str, &str)> {
    l.iter().collect()
}

fn numbered(n: usize, from: usize) -> Vec<(String, Option<&'static str>)> {
    (from..from + n)
        .map(|i| (format!("k{i:02}"), Some("v")))
        .collect()
}

fn event_setting(secs: f64, names: &[(String, Option<&str>)]) -> Event {
    let borrowed: Vec<(&str, Option<&str>)> = names.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    labels_event(secs, &borrowed)
}

#[test]
fn labels_merge_and_null_removes() {
    let s = fold(&[
        labels_event(0.0, &[("tenant", Some("acme")), ("region", Some("eu-1"))]),
        labels_event(1.0, &[("region", Some("eu-2")), ("tier", Some("gold"))]),
        labels_event(2.0, &[("tenant", None), ("absent", None)]),
    ]);
    assert_eq!(pairs(&s.labels), [("region", "eu-2"), ("tier", "gold")]);
    assert_eq!(s.labels.get("tenant"), None);
    assert_eq!(s.labels.len(), 2);
    assert_eq!(s.events, 3);
}

#[test]
fn labels_apply_in_arrival_order_whatever_their_time() {
    // The second event is older than the first, and still wins: labels are
    // configuration, the last one sent is the one meant.
    let s = fold(&[
        labels_event(100.0, &[("region", Some("eu-1"))]),
        labels_event(50.0, &[("region", Some("eu-2"))]),
    ]);
    assert_eq!(s.labels.get("region"), Some("eu-2"));
    assert_eq!(s.late_events, 0, "a labels event is never late");
    assert_eq!(s.last_event_at, at(100.0), "time never moves back");
}

#[test]
fn labels_change_no_other_figure() {
    let base = [state(0.0, SessionState::Connected), heartbeat(10.0)];
    let mut with_labels = base.to_vec();
    with_labels.push(labels_event(5.0, &[("tenant", Some("acme"))]));
    let (plain, labelled) = (fold(&base), fold(&with_labels));
    assert_eq!(fired(&plain, 20.0), fired(&labelled, 20.0));
    assert_eq!(labelled.state, plain.state);
    assert_eq!(labelled.heartbeat, plain.heartbeat);
}

#[test]
fn the_fold_keeps_at_most_sixteen_labels() {
    let s = fold(&[
        event_setting(0.0, &numbered(10, 0)),
        event_setting(1.0, &numbered(10, 10)),
    ]);
    assert_eq!(s.labels.len(), 16, "new names past the bound are dropped");
    assert_eq!(s.labels.get("k15"), Some("v"));
    assert_eq!(s.labels.get("k16"), None);
}

#[test]
fn a_labels_event_creates_its_session() {
    let mut fleet = Fleet::new(Thresholds::default());
    fleet.apply_all(&[labels_event(0.0, &[("tenant", Some("acme"))])]);
    let s = fleet.view().get("s1").expect("created");
    assert_eq!(s.state, SessionState::Connecting);
    assert_eq!(s.labels.get("tenant"), Some("acme"));
}

#[test]
fn a_batch_is_checked_against_the_labels_the_fleet_holds() {
    let mut fleet = Fleet::new(Thresholds::default());
    fleet.apply_all(&[event_setting(0.0, &numbered(14, 0))]);
    let snap = fleet.snapshot();
    // 14 + 2 fits; the next new name is the 17th, named with its event.
    let batch = [
        state(1.0, SessionState::Connected),
        event_setting(1.0, &numbered(2, 14)),
        labels_event(2.0, &[("k00", Some("updated"))]),
        labels_event(3.0, &[("zone", Some("z")), ("app", Some("a"))]),
    ];
    let (index, err) = snap.check_labels(&batch).unwrap_err();
    assert_eq!(index, 3);
    assert_eq!(err.field, "labels");
    assert!(err.problem.starts_with("labels.app: "), "{err}");
    assert!(err.problem.contains("18 labels"), "{err}");
    // Removing first makes room, in the same event or an earlier one.
    let room = [
        labels_event(1.0, &[("k00", None)]),
        labels_event(2.0, &[("k01", None), ("a", Some("1")), ("b", Some("2"))]),
        labels_event(3.0, &[("c", Some("3"))]),
    ];
    assert_eq!(snap.check_labels(&room), Ok(()));
    // Other sessions have their own 16.
    let mut elsewhere = event_setting(1.0, &numbered(16, 0));
    elsewhere.session = sid("other");
    assert_eq!(snap.check_labels(&[elsewhere]), Ok(()));
}

#[test]
fn labels_come_back_from_a_snapshot_state() {
    let mut fleet = Fleet::new(Thresholds::default());
    let mut other = labels_event(0.0, &[("tenant", Some("b"))]);
    other.session = sid("b");
    fleet.apply_all(&[
        labels_event(0.0, &[("tenant", Some("a")), ("region", Some("eu-1"))]),
        other,
        state(1.0, SessionState::Connected),
    ]);
    let mut unlabelled = heartbeat(2.0);
    unlabelled.session = sid("c");
    fleet.apply(&unlabelled);
    let state_ref = fleet.state_ref();
    let listed: Vec<(String, Labels)> = state_ref
        .labels()
        .into_iter()
        .map(|(id, l)| (id.to_string(), l.clone()))
        .collect();
    assert_eq!(
        listed.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        ["b", "s1"],
        "only sessions with labels, in id order"
    );
    // The session's serde form leaves labels out ...
    let json = serde_json::to_string(&fleet.to_state()).unwrap();
    let mut decoded: FleetState = serde_json::from_str(&json).unwrap();
    let bare = Fleet::from_state(
        Thresholds::default(),
        serde_json::from_str(&json).unwrap(),
        wapulse_core::DedupLimits::default(),
    );
    assert!(bare.view().get("s1").unwrap().labels.is_empty());
    // ... and the listed section gives them back.
    decoded
        .restore_labels(listed.iter().map(|(id, l)| (sid(id), l.clone())).collect())
        .unwrap();
    // (The liveness section likewise; it has a test of its own.)
    decoded
        .restore_liveness(
            state_ref
                .liveness()
                .into_iter()
                .map(|(id, l)| (id.clone(), l.clone()))
                .collect(),
        )
        .unwrap();
    let restored = Fleet::from_state(
        Thresholds::default(),
        decoded,
        wapulse_core::DedupLimits::default(),
    );
    for id in ["s1", "b", "c"] {
        assert_eq!(
            restored.view().get(id).unwrap().as_ref(),
            fleet.view().get(id).unwrap().as_ref(),
            "{id}"
        );
    }
    // Labels for a session the state does not hold: corrupt, said so.
    let mut decoded: FleetState = serde_json::from_str(&json).unwrap();
    let err = decoded
        .restore_labels(vec![(sid("ghost"), listed[0].1.clone())])
        .unwrap_err();
    assert!(err.contains("ghost"), "{err}");
}

#[test]
fn parse_errors_name_the_key() {
    let default = sid("default");
    let ctx = ParseContext {
        default_session: &default,
        received_at: at(0.0),
        max_future_skew: DurationMs::from_mins(5),
        max_event_age: DurationMs::from_hours(30 * 24),
    };
    let parse = |labels: serde_json::Value| {
        let raw: RawEvent =
            serde_json::from_value(serde_json::json!({"type": "labels", "labels": labels}))
                .unwrap();
        raw.parse(&ctx)
    };
    for (labels, key) in [
        (
            serde_json::json!({"region": "eu", "session": "x"}),
            "session",
        ),
        (serde_json::json!({"alertname": "x"}), "alertname"),
        (serde_json::json!({"code": "x"}), "code"),
        (serde_json::json!({"level": "x"}), "level"),
        (serde_json::json!({"__meta": "x"}), "__meta"),
        (serde_json::json!({"9lives": "x"}), "9lives"),
        (serde_json::json!({"ok": "x", "bad": true}), "bad"),
        (serde_json::json!({"long": "x".repeat(129)}), "long"),
    ] {
        let err = parse(labels.clone()).unwrap_err();
        assert_eq!(err.field, "labels", "{labels}");
        assert!(
            err.problem.starts_with(&format!("labels.{key}: ")),
            "{labels}: {err}"
        );
    }
    let ok = parse(serde_json::json!({"region": "eu-1", "old": null})).unwrap();
    assert_eq!(
        ok.kind,
        EventKind::Labels {
            labels: changes(&[("region", Some("eu-1")), ("old", None)])
        }
    );
    assert!(
        parse(serde_json::json!({"Session": "x"})).is_ok(),
        "case matters"
    );
}
