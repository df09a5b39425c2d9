//! Properties over arbitrary event sequences.

use proptest::prelude::*;
use wapulse_core::labels::LabelChanges;
use wapulse_core::{
    AckStatus, AuthMethod, Direction, DurationMs, ErrorCode, Event, EventKind, Fleet, Level,
    MetricName, SessionState, Thresholds, ThresholdsConfig, evaluate,
};

use crate::support::*;

/// A `labels` event over 20 names, so that sessions sometimes reach the
/// bound of 16 and the fold has to drop names.
fn label_changes() -> impl Strategy<Value = LabelChanges> {
    proptest::collection::btree_map(0u8..20, proptest::option::of(0u8..3), 0..8).prop_map(|m| {
        let owned: Vec<(String, Option<String>)> = m
            .into_iter()
            .map(|(k, v)| (format!("k{k}"), v.map(|v| format!("v{v}"))))
            .collect();
        LabelChanges::try_from_changes(owned.iter().map(|(k, v)| (k.as_str(), v.as_deref())))
            .unwrap()
    })
}

fn kind() -> impl Strategy<Value = EventKind> {
    let state = proptest::sample::select(SessionState::ALL.to_vec());
    prop_oneof![
        4 => (state, proptest::sample::select(vec![None, Some("440"), Some("401"), Some("428"), Some("flap")]))
            .prop_map(|(state, reason)| EventKind::State { state, reason: reason.map(Into::into) }),
        6 => proptest::option::of(0u32..500).prop_map(|rtt_ms| EventKind::Heartbeat { rtt_ms }),
        1 => Just(EventKind::HeartbeatFailed),
        1 => any::<bool>().prop_map(|expected| EventKind::Keepalives { expected }),
        1 => proptest::sample::select(vec![AuthMethod::QrScan, AuthMethod::PairingCode, AuthMethod::SessionRestore, AuthMethod::Passkey])
            .prop_map(|method| EventKind::Auth { method }),
        1 => Just(EventKind::CredentialsWritten { store: None }),
        1 => any::<bool>().prop_map(|valid| EventKind::Validation { valid, detail: None }),
        1 => Just(EventKind::LockAcquired { held_by: "r1".into(), operation: "op".into() }),
        1 => Just(EventKind::LockReleased { held_by: None, operation: None }),
        1 => (any::<bool>(), proptest::option::of(0u32..20))
            .prop_map(|(open, consecutive_failures)| EventKind::CircuitBreaker { open, consecutive_failures }),
        1 => (any::<bool>(), 0u32..10).prop_map(|(inbound, count)| EventKind::Message {
            direction: if inbound { Direction::Inbound } else { Direction::Outbound },
            count,
            ids: Box::default(),
        }),
        2 => proptest::collection::vec(0u8..12, 1..4).prop_map(|ids| EventKind::Message {
            direction: Direction::Outbound,
            count: ids.len() as u32,
            ids: ids.into_iter().map(|i| format!("m{i}").into()).collect(),
        }),
        2 => (0u8..14, proptest::sample::select(AckStatus::ALL.to_vec()), proptest::sample::select(vec![None, Some("463"), Some("429"), Some("479")]))
            .prop_map(|(id, status, code)| EventKind::Ack {
                message: format!("m{id}").into(),
                status,
                code: code.filter(|_| status == AckStatus::Error).map(|c| ErrorCode::parse(c).unwrap()),
                detail: None,
            }),
        1 => (proptest::sample::select(vec!["TOS_BLOCK", "BIZ_INITIATED_BLOCK", "NEW_ONE"]), proptest::option::of(0i64..100_000), any::<bool>())
            .prop_map(|(code, until, lifted)| EventKind::Restriction {
                code: ErrorCode::parse(code).unwrap(),
                until: until.map(|s| at(s as f64)),
                lifted,
            }),
        1 => Just(EventKind::Error { kind: "send".into(), message: None }),
        1 => (0.0f64..10.0).prop_map(|delta| EventKind::Counter { name: MetricName::parse("jobs").unwrap(), delta }),
        1 => (-5.0f64..5.0).prop_map(|value| EventKind::Gauge { name: MetricName::parse("active").unwrap(), value }),
        2 => label_changes().prop_map(|labels| EventKind::Labels { labels }),
        1 => Just(EventKind::Retire { reason: None }),
    ]
}

/// Events over a few sessions, mostly moving forward in time but sometimes
/// late, sometimes repeating an idempotency key.
fn events() -> impl Strategy<Value = Vec<Event>> {
    proptest::collection::vec(
        (
            0usize..3,
            -600i64..3_600,
            kind(),
            proptest::option::of(0u8..8),
        ),
        0..120,
    )
    .prop_map(|raw| {
        let mut clock = 0i64;
        raw.into_iter()
            .map(|(session, step, kind, id)| {
                clock += step;
                Event {
                    session: sid(["a", "b", "c"][session]),
                    at: at(clock as f64),
                    id: id.map(|i| format!("k{i}").into()),
                    kind,
                }
            })
            .collect()
    })
}

/// The whole state, labels, liveness and delivery included (the
/// session's serde form leaves them out; snapshots store them beside it).
fn state_json(fleet: &Fleet) -> String {
    let state = fleet.state_ref();
    serde_json::to_string(&(
        fleet.to_state(),
        state.labels(),
        state.liveness(),
        state.delivery(),
    ))
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_sequence_folds_and_evaluates_without_panic(events in events(), probe in -1000i64..100_000) {
        let t = Thresholds::default();
        let mut fleet = Fleet::new(t.clone());
        fleet.apply_all(&events);
        let now = at(probe as f64);
        for s in fleet.view().sessions() {
            prop_assert!(s.labels.len() <= 16);
            let a = evaluate(s, &t, now);
            for alert in &a.alerts {
                prop_assert!(!alert.message().is_empty());
            }
        }
        let r = fleet.view().rollup(&t, now);
        prop_assert_eq!(r.by_level.iter().sum::<usize>(), r.sessions);
        prop_assert_eq!(r.by_state.iter().sum::<usize>(), r.sessions);
    }

    #[test]
    fn one_batch_or_split_gives_the_same_state(events in events(), split in any::<prop::sample::Index>()) {
        let at_split = split.index(events.len() + 1);
        let mut whole = Fleet::new(Thresholds::default());
        whole.apply_all(&events);
        let mut parts = Fleet::new(Thresholds::default());
        parts.apply_all(&events[..at_split]);
        let snapshot_between = parts.snapshot();
        parts.apply_all(&events[at_split..]);
        prop_assert_eq!(state_json(&whole), state_json(&parts));
        // Sessions only come, unless one is retired.
        let retires = events[at_split..].iter().any(|e| matches!(e.kind, EventKind::Retire { .. }));
        prop_assert!(retires || snapshot_between.len() <= parts.view().len());
        // The sorted index holds exactly the sessions, in order.
        let snap = parts.snapshot();
        let mut ids: Vec<_> = snap.sessions().map(|s| s.id().clone()).collect();
        ids.sort();
        prop_assert_eq!(snap.sorted_ids(), &ids[..]);
    }

    #[test]
    fn a_retired_session_leaves_every_view_and_a_later_event_starts_it_afresh(
        events in events(),
        cut in any::<prop::sample::Index>(),
    ) {
        let i = cut.index(events.len() + 1);
        let retire = Event {
            session: sid("a"),
            at: at(0.0),
            id: None,
            kind: EventKind::Retire { reason: Some("gone".into()) },
        };
        // Keys seen before the retire still count as repeats after it, so
        // a's later events go without keys: what they make must not depend
        // on anything before the retire.
        let later: Vec<Event> = events[i..]
            .iter()
            .filter(|e| e.session.as_str() == "a")
            .map(|e| Event { id: None, ..e.clone() })
            .filter(|e| !matches!(e.kind, EventKind::Retire { .. }))
            .collect();
        let mut fleet = Fleet::new(Thresholds::default());
        fleet.apply_all(&events[..i]);
        fleet.apply_all([&retire]);
        let after_retire = fleet.snapshot();
        prop_assert!(after_retire.get("a").is_none());
        prop_assert!(!after_retire.sorted_ids().iter().any(|id| id.as_str() == "a"));
        prop_assert_eq!(after_retire.by_state().iter().sum::<usize>(), after_retire.len());
        prop_assert_eq!(after_retire.sorted_ids().len(), after_retire.len());
        fleet.apply_all(&later);
        let mut fresh = Fleet::new(Thresholds::default());
        fresh.apply_all(&later);
        let one = |f: &Fleet| {
            f.view().get("a").map(|s| {
                serde_json::to_string(&(s.as_ref(), &s.labels, &s.liveness, &s.delivery)).unwrap()
            })
        };
        prop_assert_eq!(one(&fleet), one(&fresh));
        let snap = fleet.snapshot();
        let mut ids: Vec<_> = snap.sessions().map(|s| s.id().clone()).collect();
        ids.sort();
        prop_assert_eq!(snap.sorted_ids(), &ids[..]);
        prop_assert_eq!(snap.by_state().iter().sum::<usize>(), snap.len());
    }

    #[test]
    fn level_is_the_maximum_of_the_alert_levels(events in events(), probe in 0i64..200_000) {
        let t = Thresholds::default();
        let mut fleet = Fleet::new(t.clone());
        fleet.apply_all(&events);
        for s in fleet.view().sessions() {
            let a = evaluate(s, &t, at(probe as f64));
            let max = a.alerts.iter().map(|x| x.level).max().unwrap_or(Level::Ok);
            prop_assert_eq!(a.level, max);
        }
    }

    #[test]
    fn raising_a_threshold_never_raises_the_level(
        events in events(),
        probe in 0i64..200_000,
        field in 0usize..16,
        factor in 1u64..20,
    ) {
        let base = ThresholdsConfig::default();
        let mut raised = base.clone();
        let up = |d: &mut DurationMs| *d = DurationMs::from_millis(d.as_millis() * factor);
        let upn = |n: &mut u32| *n *= factor as u32;
        match field {
            0 => up(&mut raised.heartbeat_age_warning),
            1 => up(&mut raised.heartbeat_age_critical),
            2 => upn(&mut raised.reconnect_attempts_warning),
            3 => upn(&mut raised.reconnect_attempts_critical),
            4 => up(&mut raised.credential_age_warning),
            5 => up(&mut raised.credential_age_critical),
            6 => up(&mut raised.reconnect_latency_warning),
            7 => up(&mut raised.reconnect_latency_critical),
            8 => upn(&mut raised.missed_heartbeats_warning),
            9 => upn(&mut raised.missed_heartbeats_critical),
            10 => upn(&mut raised.validation_failures_warning),
            11 => up(&mut raised.disconnection_critical),
            12 => { up(&mut raised.lock_held_warning); up(&mut raised.lock_held_critical); }
            13 => { upn(&mut raised.session_conflict_warning); upn(&mut raised.session_conflict_critical); }
            14 => up(&mut raised.inbound_silence_min_gap),
            _ => {
                raised.inbound_silence_warning_chance /= factor as f64;
                raised.inbound_silence_critical_chance /= factor as f64;
            }
        }
        let Ok(raised) = Thresholds::try_from(raised) else {
            // A warning raised past its critical is not a valid setting.
            return Ok(());
        };
        let base = Thresholds::try_from(base).unwrap();
        let mut a = Fleet::new(base.clone());
        a.apply_all(&events);
        let mut b = Fleet::new(raised.clone());
        b.apply_all(&events);
        let now = at(probe as f64);
        for s in a.view().sessions() {
            let other = b.view().get(s.id().as_str()).unwrap();
            let before = evaluate(s, &base, now).level;
            let after = evaluate(other, &raised, now).level;
            prop_assert!(after <= before, "{:?} -> {:?}", before, after);
        }
    }
}
