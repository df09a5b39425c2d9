//! The model restored, replayed and fed by the stream; the snapshot codec
//! across its formats.

use wapulse_core::Session;

use super::codec::{SNAPSHOT_FORMAT, decode_state, encode, validate};
use super::*;
use crate::store::Durability;
use wapulse_core::{Event, Fleet, Labels};

fn sid(id: &str) -> SessionId {
    SessionId::parse(id).unwrap()
}

/// The events behind `tests/data/snapshot-format-1.bin`, a snapshot
/// written by wapulse before labels existed.
fn format_1_events() -> Vec<Event> {
    include_str!("../../tests/data/snapshot-format-1.ndjson")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn fleet_of(events: &[Event]) -> Fleet {
    let mut fleet = Fleet::new(Thresholds::default());
    fleet.apply_all(events);
    fleet
}

fn restored(body: &[u8]) -> Fleet {
    Fleet::from_state(
        Thresholds::default(),
        decode_state(body).unwrap(),
        wapulse_core::DedupLimits::default(),
    )
}

/// The fleet as a format-2 snapshot held it (the byte 2, the state,
/// the labels section): everything but liveness.
fn format_2_body(fleet: &Fleet) -> Vec<u8> {
    let state = fleet.state_ref();
    let body = postcard::to_extend(&state.legacy(Vec::new()), vec![2]).unwrap();
    postcard::to_extend(&state.labels(), body).unwrap()
}

fn without_liveness(fleet: &Fleet) -> Fleet {
    restored(&format_2_body(fleet))
}

fn same_model(a: &Fleet, b: &Fleet) {
    let sessions = |f: &Fleet| -> Vec<Session> {
        let mut all: Vec<Session> = f.view().sessions().map(|s| Session::clone(s)).collect();
        all.sort_by(|x, y| x.id().cmp(y.id()));
        all
    };
    // Session's PartialEq covers labels; the state's JSON covers the
    // platform metrics. The idempotency memory is compared where a test
    // restores today's format (an old snapshot's ids are dated at their
    // session's last event, not when they were seen).
    assert_eq!(sessions(a), sessions(b));
    let state = |f: &Fleet| {
        let mut v = serde_json::to_value(f.to_state()).unwrap();
        v.as_object_mut().unwrap().remove("dedup");
        v
    };
    assert_eq!(state(a), state(b));
}

fn same_idempotency_memory(a: &Fleet, b: &Fleet) {
    let dedup = |f: &Fleet| serde_json::to_value(f.to_state()).unwrap()["dedup"].clone();
    assert_eq!(dedup(a), dedup(b));
}

fn cluster_options(dir: &std::path::Path) -> ModelOptions {
    ModelOptions {
        data_dir: dir.to_path_buf(),
        durability: Durability::Process,
        max_store_bytes: None,
        retention: DurationMs::from_hours(1),
        snapshot_every_events: 1000,
        snapshot_interval: DurationMs::from_mins(5),
        thresholds: Thresholds::default(),
        dedup: wapulse_core::DedupLimits::default(),
        default_session: sid("default"),
        priority: crate::priority::ingest::Priority::default(),
        stream: Some("WAPULSE".into()),
        history: crate::history::Retention::default(),
    }
}

#[test]
fn a_stream_message_is_applied_once_and_its_position_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let now = Timestamp::from_millis(1_700_000_000_000);
    let message = |seq: u64| {
        let e: Event = serde_json::from_value(serde_json::json!({
            "session": "a", "at": "2026-02-05T11:00:00Z", "type": "message",
            "direction": "inbound", "count": seq
        }))
        .unwrap();
        vec![e]
    };
    let model = Model::open(cluster_options(dir.path()), now).unwrap();
    // Cluster mode: no default session until the stream says when.
    assert!(model.snapshot().get("default").is_none());
    assert_eq!(model.position(), 0);
    let one = model.submit_message(1, message(1), now);
    let two = model.submit_message(2, message(2), now);
    assert_eq!(one.blocking_recv().unwrap().unwrap().accepted, 1);
    assert_eq!(two.blocking_recv().unwrap().unwrap().accepted, 1);
    // Delivered again (a consumer started over): answered, not applied.
    let again = model.submit_message(2, message(2), now);
    assert_eq!(again.blocking_recv().unwrap().unwrap().accepted, 0);
    // A message with no events (a silence) still moves the position.
    let empty = model.submit_message(3, Vec::new(), now);
    empty.blocking_recv().unwrap().unwrap();
    assert_eq!(model.position(), 3);
    let inbound = |m: &Model| m.snapshot().get("a").unwrap().traffic.inbound;
    assert_eq!(inbound(&model), 3);
    drop(model);
    let model = Model::open(cluster_options(dir.path()), now).unwrap();
    assert_eq!(model.position(), 3, "stored with the events it brought");
    assert_eq!(inbound(&model), 3);
    let stale = model.submit_message(1, message(1), now);
    assert_eq!(stale.blocking_recv().unwrap().unwrap().accepted, 0);
    assert_eq!(inbound(&model), 3);
}

#[test]
fn cluster_mode_refuses_a_journal_written_in_embedded_mode() {
    let dir = tempfile::tempdir().unwrap();
    let now = Timestamp::from_millis(1_700_000_000_000);
    let mut embedded = cluster_options(dir.path());
    embedded.stream = None;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let model = Model::open(embedded, now).unwrap();
        model.ingest(format_1_events(), now).await.unwrap();
        model.shutdown().await;
    });
    let Err(e) = Model::open(cluster_options(dir.path()), now) else {
        panic!("an embedded journal must not be taken for the stream's");
    };
    assert!(e.to_string().contains("embedded mode"), "{e}");
}

#[test]
fn a_format_1_snapshot_from_before_labels_still_restores() {
    let body = include_bytes!("../../tests/data/snapshot-format-1.bin");
    assert_eq!(body[0], 1);
    validate(body).unwrap();
    let fleet = restored(body);
    // Format 1 knew no liveness: the same events give the same model
    // but for it.
    same_model(&fleet, &without_liveness(&fleet_of(&format_1_events())));
    assert_eq!(fleet.view().len(), 2);
    assert!(fleet.view().sessions().all(|s| s.labels.is_empty()));
    // Its idempotency memory came back too.
    let mut again = format_1_events()[10].clone();
    assert_eq!(again.id.as_deref(), Some("k1"));
    again.at = again.at.plus(DurationMs::from_secs(1));
    assert!(fleet.is_duplicate(&again));
}

/// Labels, a named disconnect, conflicts, an inbound baseline and a
/// keepalive expectation over the format-1 events.
fn events_with_liveness() -> Vec<Event> {
    let mut events = format_1_events();
    let line = |json: serde_json::Value| -> Event { serde_json::from_value(json).unwrap() };
    events.push(line(serde_json::json!({
        "session": "a", "at": "2026-02-05T11:09:00Z", "type": "labels", "labels": {"tenant": "acme"}
    })));
    for (i, (state, reason)) in [
        ("disconnected", "440"),
        ("connected", ""),
        ("disconnected", "401"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut e = serde_json::json!({
            "session": "b", "at": format!("2026-02-05T11:1{i}:00Z"), "type": "state", "state": state
        });
        if !reason.is_empty() {
            e["reason"] = reason.into();
        }
        events.push(line(e));
    }
    events.push(line(serde_json::json!({
        "session": "a", "at": "2026-02-05T11:13:00Z", "type": "message", "direction": "inbound", "count": 3
    })));
    events.push(line(serde_json::json!({
        "session": "a", "at": "2026-02-05T11:14:00Z", "type": "keepalives", "expected": false
    })));
    // Delivery: sends with ids, their acks, a restriction.
    events.push(line(serde_json::json!({
        "session": "a", "at": "2026-02-05T11:15:00Z", "type": "message", "direction": "outbound",
        "count": 4, "ids": ["m1", "m2", "m3", "m4"]
    })));
    for (id, status, code) in [
        ("m1", "server", None),
        ("m2", "delivered", None),
        ("m3", "error", Some("463")),
    ] {
        let mut e = serde_json::json!({
            "session": "a", "at": "2026-02-05T11:15:02Z", "type": "ack", "message": id,
            "status": status
        });
        if let Some(code) = code {
            e["code"] = code.into();
        }
        events.push(line(e));
    }
    events
}

#[test]
fn format_5_keeps_labels_liveness_delivery_and_idempotency_exactly() {
    let fleet = fleet_of(&events_with_liveness());
    let b = fleet.view().get("b").unwrap();
    assert_eq!(b.liveness.conflicts_total, 1);
    assert_eq!(
        b.liveness.last_disconnect.as_ref().unwrap().read().code,
        Some(401)
    );
    let body = encode(&fleet).unwrap();
    assert_eq!(body[0], SNAPSHOT_FORMAT);
    assert_eq!(SNAPSHOT_FORMAT, 5);
    validate(&body).unwrap();
    let back = restored(&body);
    same_model(&back, &fleet);
    same_idempotency_memory(&back, &fleet);
    let a = back.view().get("a").unwrap();
    assert!(a.liveness.keepalives_off);
    assert!(a.liveness.inbound.weight() > 0.0);
    let d = a.delivery.as_deref().unwrap();
    assert_eq!(
        (
            d.sent(),
            d.server_acked(),
            d.delivered(),
            d.failed(),
            d.pending()
        ),
        (4, 2, 1, 1, 1)
    );
    assert!(
        d.restriction(Timestamp::from_millis(i64::MAX / 2))
            .is_some()
    );
    // Restored exactly: the same events on top give the same model.
    let mut more = back;
    let mut original = fleet;
    let tail = events_with_liveness()[12..].to_vec();
    more.apply_all(&tail);
    original.apply_all(&tail);
    same_model(&more, &original);
}

#[test]
fn a_format_3_snapshot_restores_with_no_delivery_figures() {
    let fleet = fleet_of(&events_with_liveness());
    let state = fleet.state_ref();
    let body = postcard::to_extend(&state.legacy(Vec::new()), vec![3]).unwrap();
    let body = postcard::to_extend(&state.labels(), body).unwrap();
    let body = postcard::to_extend(&state.liveness(), body).unwrap();
    validate(&body).unwrap();
    let back = restored(&body);
    assert!(back.view().sessions().all(|s| s.delivery.is_none()));
    let mut expected = Session::clone(fleet.view().get("a").unwrap());
    expected.delivery = None;
    assert_eq!(**back.view().get("a").unwrap(), expected);
}

#[test]
fn a_format_2_snapshot_restores_with_empty_liveness() {
    let fleet = fleet_of(&events_with_liveness());
    let body = format_2_body(&fleet);
    validate(&body).unwrap();
    let back = restored(&body);
    assert_eq!(
        back.view().get("a").unwrap().labels.get("tenant"),
        Some("acme")
    );
    assert!(back.view().sessions().all(|s| s.liveness.is_empty()));
    let mut expected = Session::clone(fleet.view().get("b").unwrap());
    expected.liveness = Default::default();
    assert_eq!(**back.view().get("b").unwrap(), expected);
}

#[test]
fn labels_are_kept_exactly() {
    let mut events = format_1_events();
    let labels = |session: &str, json: serde_json::Value| -> Event {
        serde_json::from_value(serde_json::json!({
            "session": session, "at": "2026-02-05T11:09:00Z", "type": "labels", "labels": json
        }))
        .unwrap()
    };
    events.push(labels(
        "a",
        serde_json::json!({"tenant": "acme", "note": "q\"uote\\ \n"}),
    ));
    events.push(labels("b", serde_json::json!({"region": "eu-1"})));
    events.push(labels(
        "b",
        serde_json::json!({"region": null, "zone": "z"}),
    ));
    let fleet = fleet_of(&events);
    let body = encode(&fleet).unwrap();
    assert_eq!(body[0], SNAPSHOT_FORMAT);
    validate(&body).unwrap();
    let back = restored(&body);
    same_model(&back, &fleet);
    let a = back.view().get("a").unwrap();
    assert_eq!(a.labels.get("note"), Some("q\"uote\\ \n"));
    let b = back.view().get("b").unwrap();
    assert_eq!(b.labels.iter().collect::<Vec<_>>(), [("zone", "z")]);
    // Without labels the section is an empty list, and still exact.
    let plain = fleet_of(&format_1_events());
    same_model(&restored(&encode(&plain).unwrap()), &plain);
}

#[test]
fn a_damaged_body_is_refused() {
    let fleet = fleet_of(&format_1_events());
    let body = encode(&fleet).unwrap();
    let mut longer = body.clone();
    longer.push(0);
    assert!(
        validate(&longer)
            .unwrap_err()
            .contains("after the last section")
    );
    assert!(validate(&body[..body.len() - 1]).is_err());
    // Labels for a session the snapshot does not hold.
    let mut ghost = postcard::to_stdvec(&fleet.state_ref().legacy(Vec::new())).unwrap();
    ghost.insert(0, 2);
    let stray = vec![(sid("ghost"), Labels::try_from_pairs([("a", "b")]).unwrap())];
    let ghost = postcard::to_extend(&stray, ghost).unwrap();
    assert!(validate(&ghost).unwrap_err().contains("ghost"));
    assert_eq!(validate(&[9]).unwrap_err(), "unknown snapshot format 9");
    assert_eq!(validate(&[]).unwrap_err(), "empty");
}

#[test]
fn a_format_4_snapshot_s_fleet_wide_idempotency_queue_becomes_each_session_s() {
    let fleet = fleet_of(&events_with_liveness());
    let state = fleet.state_ref();
    let keys = vec!["a\u{0}wamid.1".to_owned(), "b\u{0}wamid.2".to_owned()];
    let body = postcard::to_extend(&state.legacy(keys), vec![4]).unwrap();
    let body = postcard::to_extend(&state.labels(), body).unwrap();
    let body = postcard::to_extend(&state.liveness(), body).unwrap();
    let body = postcard::to_extend(&state.delivery(), body).unwrap();
    validate(&body).unwrap();
    let back = restored(&body);
    let retry = |session: &str, id: &str| -> Event {
        serde_json::from_value(serde_json::json!({
            "session": session, "at": "2026-02-05T11:30:00Z", "type": "heartbeat", "id": id
        }))
        .unwrap()
    };
    assert!(back.is_duplicate(&retry("a", "wamid.1")));
    assert!(back.is_duplicate(&retry("b", "wamid.2")));
    assert!(
        !back.is_duplicate(&retry("a", "wamid.2")),
        "keys stay per session"
    );
    // Written again, it is format 5 and keeps them.
    let again = restored(&encode(&back).unwrap());
    assert!(again.is_duplicate(&retry("a", "wamid.1")));
}
