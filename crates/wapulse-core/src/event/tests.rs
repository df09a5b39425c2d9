//! The wire form parsed: every type, every error naming its field.

use super::*;
use crate::delivery::{AckStatus, ErrorCode};
use crate::id::SessionId;
use crate::time::{DurationMs, Timestamp};

fn ctx(default: &SessionId) -> ParseContext<'_> {
    ParseContext {
        default_session: default,
        received_at: Timestamp::parse_rfc3339("2026-02-05T12:00:00Z").unwrap(),
        max_future_skew: DurationMs::from_mins(5),
        max_event_age: DurationMs::from_hours(30 * 24),
    }
}

fn parse(json: &str) -> Result<Event, EventError> {
    let default = SessionId::parse("default").unwrap();
    let raw: RawEvent = serde_json::from_str(json).expect("json");
    raw.parse(&ctx(&default))
}

#[test]
fn an_integral_number_is_an_integer() {
    let default = SessionId::parse("default").unwrap();
    let raw: RawEvent = serde_json::from_str(r#"{"type":"heartbeat","rtt_ms":42.0}"#).unwrap();
    assert_eq!(
        raw.parse(&ctx(&default)).unwrap().kind,
        EventKind::Heartbeat { rtt_ms: Some(42) }
    );
    let raw: RawEvent =
        serde_json::from_str(r#"{"type":"state","state":"disconnected","reason":440.0}"#).unwrap();
    assert!(matches!(
        raw.parse(&ctx(&default)).unwrap().kind,
        EventKind::State { reason: Some(r), .. } if &*r == "440"
    ));
    for bad in [
        r#"{"type":"heartbeat","rtt_ms":42.5}"#,
        r#"{"type":"heartbeat","rtt_ms":-1.0}"#,
        r#"{"type":"heartbeat","rtt_ms":4294967296.0}"#,
        r#"{"type":"state","state":"disconnected","reason":440.5}"#,
    ] {
        let raw: RawEvent = serde_json::from_str(bad).unwrap();
        assert!(raw.parse(&ctx(&default)).is_err(), "{bad}");
    }
}

#[test]
fn parses_every_type() {
    let cases = [
        r#"{"type":"state","state":"connected","reason":"open"}"#,
        r#"{"type":"heartbeat","rtt_ms":42}"#,
        r#"{"type":"heartbeat_failed"}"#,
        r#"{"type":"keepalives","expected":false}"#,
        r#"{"type":"auth","method":"passkey"}"#,
        r#"{"type":"state","state":"disconnected","reason":440}"#,
        r#"{"type":"auth","method":"pairing_code"}"#,
        r#"{"type":"credentials_written","store":"s3"}"#,
        r#"{"type":"validation","valid":false,"detail":"bad mac"}"#,
        r#"{"type":"lock_acquired","held_by":"replica-1","operation":"reconnect"}"#,
        r#"{"type":"lock_released","held_by":"replica-1"}"#,
        r#"{"type":"circuit_breaker","open":true,"consecutive_failures":4}"#,
        r#"{"type":"message","direction":"outbound","count":3}"#,
        r#"{"type":"error","kind":"send","message":"timeout"}"#,
        r#"{"type":"counter","name":"calls_started","delta":2}"#,
        r#"{"type":"gauge","name":"calls_active","value":3.5}"#,
        r#"{"type":"labels","labels":{"tenant":"acme","old":null}}"#,
    ];
    for json in cases {
        let ev = parse(json).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(ev.session.as_str(), "default");
        assert_eq!(
            ev.at,
            ctx(&ev.session).received_at,
            "receive time when no `at`"
        );
    }
}

#[test]
fn event_round_trips_through_its_wire_form() {
    let ev = parse(
        r#"{"session":"s1","id":"e-1","at":"2026-02-05T11:00:00.500Z","type":"lock_acquired","held_by":"r1","operation":"save"}"#,
    )
    .unwrap();
    let wire = serde_json::to_string(&ev).unwrap();
    let raw: RawEvent = serde_json::from_str(&wire).unwrap();
    let default = SessionId::parse("default").unwrap();
    assert_eq!(raw.parse(&ctx(&default)).unwrap(), ev);
}

#[test]
fn errors_name_the_field_and_value() {
    let cases = [
        (r#"{"state":"connected"}"#, "type", "is required"),
        (r#"{"type":"teleport"}"#, "type", "\"teleport\""),
        (
            r#"{"type":"state","state":"asleep"}"#,
            "state",
            "\"asleep\"",
        ),
        (r#"{"type":"state"}"#, "state", "is required"),
        (r#"{"type":"heartbeat","session":"a b"}"#, "session", "' '"),
        (r#"{"type":"heartbeat","session":""}"#, "session", "empty"),
        (r#"{"type":"heartbeat","at":"noon"}"#, "at", "`noon`"),
        (
            r#"{"type":"heartbeat","at":"2026-02-05T12:05:01Z"}"#,
            "at",
            "in the future",
        ),
        (r#"{"type":"heartbeat","rtt_ms":-1}"#, "rtt_ms", "-1"),
        (
            r#"{"type":"heartbeat","rtt_ms":"fast"}"#,
            "rtt_ms",
            "\"fast\"",
        ),
        (r#"{"type":"validation","valid":"yes"}"#, "valid", "\"yes\""),
        (r#"{"type":"auth","method":"magic"}"#, "method", "\"magic\""),
        (
            r#"{"type":"message","direction":"sideways"}"#,
            "direction",
            "\"sideways\"",
        ),
        (
            r#"{"type":"lock_acquired","held_by":"r1"}"#,
            "operation",
            "is required",
        ),
        (
            r#"{"type":"counter","name":"bad name"}"#,
            "name",
            "`bad name`",
        ),
        (r#"{"type":"counter","name":"x","delta":-2}"#, "delta", "-2"),
        (r#"{"type":"gauge","name":"x"}"#, "value", "is required"),
        (r#"{"type":"error"}"#, "kind", "is required"),
        (
            r#"{"type":"state","state":{"a":1}}"#,
            "state",
            "array or object",
        ),
        (r#"{"type":"labels"}"#, "labels", "is required"),
        (
            r#"{"type":"labels","labels":null}"#,
            "labels",
            "is required",
        ),
        (r#"{"type":"labels","labels":"eu"}"#, "labels", "got \"eu\""),
        (r#"{"type":"labels","labels":["a"]}"#, "labels", "an array"),
        (
            r#"{"type":"labels","labels":{"ok":"1","a-b":"x"}}"#,
            "labels",
            "labels.a-b: `a-b` is not a label name",
        ),
        (
            r#"{"type":"labels","labels":{"severity":"x"}}"#,
            "labels",
            "labels.severity: `severity` is a reserved",
        ),
        (
            r#"{"type":"labels","labels":{"__name__":"x"}}"#,
            "labels",
            "labels.__name__",
        ),
        (
            r#"{"type":"labels","labels":{"n":1}}"#,
            "labels",
            "labels.n: the value of `n` must be a string",
        ),
        (
            r#"{"type":"labels","labels":{"n":{"x":"y"}}}"#,
            "labels",
            "labels.n",
        ),
        (
            r#"{"type":"labels","labels":{"a":"1","a":null}}"#,
            "labels",
            "labels.a: `a` appears more than once",
        ),
    ];
    for (json, field, needle) in cases {
        let err = parse(json).expect_err(json);
        assert_eq!(err.field, field, "{json}: {err}");
        assert!(err.to_string().contains(needle), "{json}: {err}");
    }
}

#[test]
fn at_within_the_skew_is_accepted() {
    assert!(parse(r#"{"type":"heartbeat","at":"2026-02-05T12:05:00Z"}"#).is_ok());
}

#[test]
fn overlong_text_is_rejected() {
    let json = format!(
        r#"{{"type":"state","state":"connected","reason":"{}"}}"#,
        "x".repeat(1025)
    );
    let err = parse(&json).unwrap_err();
    assert_eq!(err.field, "reason");
}

#[test]
fn labels_events_keep_their_wire_form() {
    let ev = parse(
        r#"{"session":"s1","at":"2026-02-05T11:00:00Z","type":"labels","labels":{"tenant":"acme","old":null}}"#,
    )
    .unwrap();
    let wire = serde_json::to_value(&ev).unwrap();
    assert_eq!(
        wire,
        serde_json::json!({"session":"s1","at":"2026-02-05T11:00:00.000Z","type":"labels",
            "labels":{"old":null,"tenant":"acme"}})
    );
    // Replayed from the journal (serde) and re-posted (parse) alike.
    assert_eq!(serde_json::from_value::<Event>(wire.clone()).unwrap(), ev);
    let raw: RawEvent = serde_json::from_value(wire).unwrap();
    let default = SessionId::parse("default").unwrap();
    assert_eq!(raw.parse(&ctx(&default)).unwrap(), ev);
}

#[test]
fn overlong_and_too_many_labels_name_the_key() {
    let json = format!(
        r#"{{"type":"labels","labels":{{"note":"{}"}}}}"#,
        "x".repeat(129)
    );
    let err = parse(&json).unwrap_err();
    assert_eq!(err.field, "labels");
    assert!(err.problem.starts_with("labels.note: "), "{err}");
    // More names than one change may carry (sets and removals); how
    // many a session may hold is checked against its labels at ingest.
    let many: Vec<String> = (0..33).map(|i| format!(r#""k{i:02}":null"#)).collect();
    let err = parse(&format!(
        r#"{{"type":"labels","labels":{{{}}}}}"#,
        many.join(",")
    ))
    .unwrap_err();
    assert!(err.problem.starts_with("labels.k32: "), "{err}");
}

#[test]
fn a_labels_field_on_other_events_is_ignored() {
    // Gateways may attach data of their own; only `labels` events read it.
    let ev = parse(r#"{"type":"heartbeat","labels":[1,2]}"#).unwrap();
    assert_eq!(ev.kind, EventKind::Heartbeat { rtt_ms: None });
}

#[test]
fn message_count_defaults_to_one() {
    let ev = parse(r#"{"type":"message","direction":"inbound"}"#).unwrap();
    assert_eq!(
        ev.kind,
        EventKind::Message {
            direction: Direction::Inbound,
            count: 1,
            ids: Box::default(),
        }
    );
}

#[test]
fn an_at_older_than_max_event_age_is_refused_naming_it() {
    let e = parse(r#"{"type":"heartbeat","at":"1970-01-01T00:00:00Z"}"#).unwrap_err();
    assert_eq!(e.field, "at");
    assert!(e.problem.contains("max_event_age"), "{}", e.problem);
    // Within the age: taken.
    parse(r#"{"type":"heartbeat","at":"2026-01-10T12:00:00Z"}"#).unwrap();
}

#[test]
fn a_counter_delta_past_the_bound_is_refused_so_counters_stay_finite() {
    let e = parse(r#"{"type":"counter","name":"calls","delta":1e308}"#).unwrap_err();
    assert_eq!(e.field, "delta");
    parse(r#"{"type":"counter","name":"calls","delta":1e15}"#).unwrap();
}

#[test]
fn an_outbound_message_carries_its_ids_and_count_defaults_to_them() {
    let ev = parse(r#"{"type":"message","direction":"outbound","ids":["a","b"]}"#).unwrap();
    let EventKind::Message { count, ids, .. } = ev.kind else {
        panic!("a message");
    };
    assert_eq!(count, 2);
    assert_eq!(&*ids, &["a".into(), "b".into()] as &[Box<str>]);
    // More messages than ids: the rest were sent without one.
    let ev = parse(r#"{"type":"message","direction":"outbound","count":5,"ids":["a"]}"#).unwrap();
    assert!(matches!(ev.kind, EventKind::Message { count: 5, .. }));
}

#[test]
fn message_ids_are_checked() {
    for (json, field, says) in [
        (
            r#"{"type":"message","direction":"inbound","ids":["a"]}"#,
            "ids",
            "outbound messages only",
        ),
        (
            r#"{"type":"message","direction":"outbound","count":1,"ids":["a","b"]}"#,
            "count",
            "fewer than the 2 ids",
        ),
        (
            r#"{"type":"message","direction":"outbound","ids":"a"}"#,
            "ids",
            "must be an array",
        ),
        (
            r#"{"type":"message","direction":"outbound","ids":["a", 7]}"#,
            "ids",
            "ids[1] must be a string",
        ),
        (
            r#"{"type":"message","direction":"outbound","ids":[""]}"#,
            "ids",
            "ids[0] is empty",
        ),
    ] {
        let e = parse(json).unwrap_err();
        assert_eq!(e.field, field, "{json}: {e}");
        assert!(e.problem.contains(says), "{json}: {e}");
    }
    let many: Vec<String> = (0..=MAX_IDS).map(|i| format!("\"m{i}\"")).collect();
    let json = format!(
        r#"{{"type":"message","direction":"outbound","ids":[{}]}}"#,
        many.join(",")
    );
    let e = parse(&json).unwrap_err();
    assert!(e.problem.contains("more than 1000 ids"), "{e}");
}

#[test]
fn an_ack_names_its_message_status_and_code() {
    let ev = parse(r#"{"type":"ack","message":"3EB0","status":"error","code":463,"detail":"x"}"#)
        .unwrap();
    assert_eq!(
        ev.kind,
        EventKind::Ack {
            message: "3EB0".into(),
            status: AckStatus::Error,
            code: Some(ErrorCode::parse("463").unwrap()),
            detail: Some("x".into()),
        }
    );
    // The journal's form is the wire form.
    let back: Event = serde_json::from_str(&serde_json::to_string(&ev).unwrap()).unwrap();
    assert_eq!(back, ev);
    for (json, field, says) in [
        (
            r#"{"type":"ack","status":"server"}"#,
            "message",
            "is required",
        ),
        (
            r#"{"type":"ack","message":"a","status":"sent"}"#,
            "status",
            "not an ack status",
        ),
        (r#"{"type":"ack","message":"a"}"#, "status", "is required"),
        (
            r#"{"type":"ack","message":"a","status":"server","code":"463"}"#,
            "code",
            "error acks only",
        ),
        (
            r#"{"type":"ack","message":"a","status":"error","code":"4 63"}"#,
            "code",
            "letters, digits",
        ),
        (
            r#"{"type":"ack","message":"a","status":"error","code":"x0123456789012345678901234"}"#,
            "code",
            "at most 24",
        ),
    ] {
        let e = parse(json).unwrap_err();
        assert_eq!(e.field, field, "{json}: {e}");
        assert!(e.problem.contains(says), "{json}: {e}");
    }
}

#[test]
fn a_numeric_code_is_kept_as_its_text_within_18_digits() {
    let ev = parse(r#"{"type":"ack","message":"a","status":"error","code":131048.0}"#).unwrap();
    assert!(matches!(ev.kind, EventKind::Ack { code: Some(c), .. } if c.as_str() == "131048"));
    let e = parse(r#"{"type":"ack","message":"a","status":"error","code":1000000000000000000}"#)
        .unwrap_err();
    assert_eq!(e.field, "code", "{e}");
}
