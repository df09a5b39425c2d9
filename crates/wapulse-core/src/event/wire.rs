//! The wire form of an event ([`RawEvent`]): loose on purpose, so that
//! [`RawEvent::parse`] can name exactly which field is wrong and why.

use std::fmt;

use serde::Deserialize;

use super::{AuthMethod, Direction, Event, EventKind, MetricName, SessionState};
use crate::id::{SessionId, SessionIdError};
use crate::labels::{LabelChanges, LabelError};
use crate::time::{DurationMs, Timestamp};

/// A JSON value as a gateway sent it, before it is checked.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum WireValue {
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A number with a fraction (or too large for `i64`).
    Float(f64),
    /// A string.
    Text(String),
    /// An array or object.
    Composite(serde::de::IgnoredAny),
}

/// The `labels` field as a gateway sent it, before it is checked.
#[derive(Clone, Debug)]
pub enum WireLabels {
    /// An object: its entries in order, repeats kept (`None`: `null`).
    Object(Vec<(String, Option<WireValue>)>),
    /// Anything but an object, described for the error.
    Other(String),
}

impl<'de> Deserialize<'de> for WireLabels {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Loose;
        impl<'de> serde::de::Visitor<'de> for Loose {
            type Value = WireLabels;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<WireLabels, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(WireLabels::Object(entries))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<WireLabels, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(WireLabels::Other("an array".into()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<WireLabels, E> {
                Ok(WireLabels::Other(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<WireLabels, E> {
                Ok(WireLabels::Other(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<WireLabels, E> {
                Ok(WireLabels::Other(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<WireLabels, E> {
                Ok(WireLabels::Other(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<WireLabels, E> {
                Ok(WireLabels::Other(format!("\"{}\"", truncate_for_error(v))))
            }
            fn visit_unit<E>(self) -> Result<WireLabels, E> {
                Ok(WireLabels::Other("null".into()))
            }
        }
        deserializer.deserialize_any(Loose)
    }
}

impl WireValue {
    fn describe(&self) -> String {
        match self {
            WireValue::Bool(b) => b.to_string(),
            WireValue::Int(i) => i.to_string(),
            WireValue::Float(f) => f.to_string(),
            WireValue::Text(t) => format!("\"{}\"", truncate_for_error(t)),
            WireValue::Composite(_) => "an array or object".to_owned(),
        }
    }
}

/// An event as it arrives on the wire: every field optional and loosely
/// typed, so that [`RawEvent::parse`] can name exactly what is wrong.
/// Unknown fields are ignored (gateways may attach their own data).
#[derive(Clone, Debug, Default, Deserialize)]
#[allow(missing_docs)]
pub struct RawEvent {
    pub session: Option<WireValue>,
    #[serde(rename = "type")]
    pub kind: Option<WireValue>,
    pub at: Option<WireValue>,
    pub id: Option<WireValue>,
    pub state: Option<WireValue>,
    pub reason: Option<WireValue>,
    pub rtt_ms: Option<WireValue>,
    pub method: Option<WireValue>,
    pub store: Option<WireValue>,
    pub valid: Option<WireValue>,
    pub detail: Option<WireValue>,
    pub held_by: Option<WireValue>,
    pub operation: Option<WireValue>,
    pub open: Option<WireValue>,
    pub consecutive_failures: Option<WireValue>,
    pub direction: Option<WireValue>,
    pub count: Option<WireValue>,
    pub message: Option<WireValue>,
    pub name: Option<WireValue>,
    pub delta: Option<WireValue>,
    pub value: Option<WireValue>,
    #[serde(rename = "kind")]
    pub error_kind: Option<WireValue>,
    pub labels: Option<WireLabels>,
    pub expected: Option<WireValue>,
}

/// What [`RawEvent::parse`] needs to know about the receiving side.
#[derive(Clone, Debug)]
pub struct ParseContext<'a> {
    /// The session an event without `session` is for.
    pub default_session: &'a SessionId,
    /// When the event was received: its `at` when it has none, and the
    /// reference for the future-skew check.
    pub received_at: Timestamp,
    /// How far in the future an `at` may be (clock skew allowance).
    pub max_future_skew: DurationMs,
}

/// A problem with one field of one event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {problem}")]
pub struct EventError {
    /// The offending field (`type`, `state`, `at`, …).
    pub field: &'static str,
    /// What is wrong, naming the value.
    pub problem: String,
}

impl EventError {
    fn new(field: &'static str, problem: impl Into<String>) -> Self {
        Self {
            field,
            problem: problem.into(),
        }
    }
}

/// Longest free text kept from a gateway (reasons, details, messages).
pub const MAX_TEXT_LEN: usize = 1024;
/// Longest short label (lock holder, operation, store, error kind, id).
pub const MAX_LABEL_LEN: usize = 256;

const EVENT_TYPES: &str = "state, heartbeat, heartbeat_failed, keepalives, auth, \
credentials_written, validation, lock_acquired, lock_released, circuit_breaker, message, error, \
counter, gauge, labels";

fn truncate_for_error(text: &str) -> String {
    if text.chars().count() > 64 {
        let head: String = text.chars().take(64).collect();
        format!("{head}…")
    } else {
        text.to_owned()
    }
}

fn text(
    field: &'static str,
    value: Option<WireValue>,
    limit: usize,
) -> Result<Option<Box<str>>, EventError> {
    match value {
        None => Ok(None),
        Some(WireValue::Text(t)) => {
            let len = t.chars().count();
            if len > limit {
                Err(EventError::new(
                    field,
                    format!("is {len} characters long; the limit is {limit}"),
                ))
            } else {
                Ok(Some(t.into_boxed_str()))
            }
        }
        Some(other) => Err(EventError::new(
            field,
            format!("must be a string, got {}", other.describe()),
        )),
    }
}

fn required_text(
    field: &'static str,
    value: Option<WireValue>,
    limit: usize,
) -> Result<Box<str>, EventError> {
    text(field, value, limit)?.ok_or_else(|| EventError::new(field, "is required"))
}

fn boolean(field: &'static str, value: Option<WireValue>) -> Result<bool, EventError> {
    match value {
        Some(WireValue::Bool(b)) => Ok(b),
        None => Err(EventError::new(field, "is required (true or false)")),
        Some(other) => Err(EventError::new(
            field,
            format!("must be true or false, got {}", other.describe()),
        )),
    }
}

fn count(field: &'static str, value: Option<WireValue>) -> Result<Option<u32>, EventError> {
    match value {
        None => Ok(None),
        // `3.0` is the integer 3 in JSON (and in JSON Schema).
        Some(WireValue::Float(f))
            if f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&f) =>
        {
            Ok(Some(f as u32))
        }
        Some(WireValue::Int(i)) => u32::try_from(i).map(Some).map_err(|_| {
            EventError::new(field, format!("must be between 0 and 4294967295, got {i}"))
        }),
        Some(other) => Err(EventError::new(
            field,
            format!("must be a non-negative integer, got {}", other.describe()),
        )),
    }
}

fn number(field: &'static str, value: Option<WireValue>) -> Result<f64, EventError> {
    let n = match value {
        Some(WireValue::Int(i)) => i as f64,
        Some(WireValue::Float(f)) => f,
        None => return Err(EventError::new(field, "is required (a number)")),
        Some(other) => {
            return Err(EventError::new(
                field,
                format!("must be a number, got {}", other.describe()),
            ));
        }
    };
    if n.is_finite() {
        Ok(n)
    } else {
        Err(EventError::new(field, "must be a finite number"))
    }
}

fn metric_name(value: Option<WireValue>) -> Result<MetricName, EventError> {
    let name = required_text("name", value, 128)?;
    MetricName::parse(&name).ok_or_else(|| {
        EventError::new(
            "name",
            format!(
                "`{}` is not a metric name ([A-Za-z_][A-Za-z0-9_]*)",
                truncate_for_error(&name)
            ),
        )
    })
}

/// A refused label as an [`EventError`] on the field `labels`, naming the
/// key (`labels.tenant: …`).
pub fn label_error(e: &LabelError) -> EventError {
    EventError::new("labels", format!("labels.{}: {e}", e.name()))
}

fn label_changes(value: Option<WireLabels>) -> Result<LabelChanges, EventError> {
    const WANTED: &str = "an object of label names to strings (or null to remove one)";
    let entries = match value {
        None => return Err(EventError::new("labels", format!("is required ({WANTED})"))),
        Some(WireLabels::Other(got)) => {
            return Err(EventError::new(
                "labels",
                format!("must be {WANTED}, got {got}"),
            ));
        }
        Some(WireLabels::Object(entries)) => entries,
    };
    let mut changes = Vec::with_capacity(entries.len());
    for (name, value) in &entries {
        let value = match value {
            None => None,
            Some(WireValue::Text(t)) => Some(t.as_str()),
            Some(other) => {
                return Err(label_error(&LabelError::NotText {
                    name: truncate_for_error(name),
                    got: other.describe(),
                }));
            }
        };
        changes.push((name.as_str(), value));
    }
    LabelChanges::try_from_changes(changes).map_err(|e| label_error(&e))
}

impl RawEvent {
    /// Checks every field and builds the event, or names the first problem.
    pub fn parse(self, ctx: &ParseContext<'_>) -> Result<Event, EventError> {
        let session = match text("session", self.session, usize::MAX)? {
            None => ctx.default_session.clone(),
            Some(s) => SessionId::parse(&s).map_err(|e| {
                EventError::new(
                    "session",
                    match e {
                        SessionIdError::Empty => "must not be empty".to_owned(),
                        other => other.to_string(),
                    },
                )
            })?,
        };
        let at = match text("at", self.at, 64)? {
            None => ctx.received_at,
            Some(t) => {
                Timestamp::parse_rfc3339(&t).map_err(|e| EventError::new("at", e.to_string()))?
            }
        };
        if at > ctx.received_at.plus(ctx.max_future_skew) {
            return Err(EventError::new(
                "at",
                format!(
                    "{} is {} in the future; the allowed clock skew is {}",
                    at,
                    at.since(ctx.received_at).formatted(),
                    ctx.max_future_skew.formatted()
                ),
            ));
        }
        let id = text("id", self.id, MAX_LABEL_LEN)?;
        if id.as_deref() == Some("") {
            return Err(EventError::new("id", "must not be empty when given"));
        }
        let type_name = required_text("type", self.kind, 64).map_err(|e| {
            EventError::new("type", format!("{} (one of {EVENT_TYPES})", e.problem))
        })?;
        let kind = match &*type_name {
            "state" => {
                let raw = required_text("state", self.state, 64)?;
                let state = SessionState::parse(&raw).ok_or_else(|| {
                    EventError::new(
                        "state",
                        format!(
                            "\"{}\" is not a session state (one of connecting, connected, \
                             reconnecting, disconnected, qr_required, logged_out, circuit_open)",
                            truncate_for_error(&raw)
                        ),
                    )
                })?;
                // A gateway close code may come as a number (Baileys'
                // statusCode, Evolution's statusReason): kept as its text.
                let reason = match self.reason {
                    Some(WireValue::Int(code)) => Some(code.to_string().into_boxed_str()),
                    Some(WireValue::Float(code))
                        if code.fract() == 0.0 && (-9.2e18..9.2e18).contains(&code) =>
                    {
                        Some((code as i64).to_string().into_boxed_str())
                    }
                    other => text("reason", other, MAX_TEXT_LEN).map_err(|e| {
                        EventError::new(
                            "reason",
                            e.problem
                                .replace("a string", "a string or a close code number"),
                        )
                    })?,
                };
                EventKind::State { state, reason }
            }
            "heartbeat" => EventKind::Heartbeat {
                rtt_ms: count("rtt_ms", self.rtt_ms)?,
            },
            "heartbeat_failed" => EventKind::HeartbeatFailed,
            "keepalives" => EventKind::Keepalives {
                expected: boolean("expected", self.expected)?,
            },
            "auth" => {
                let raw = required_text("method", self.method, 64)?;
                let method = AuthMethod::parse(&raw).ok_or_else(|| {
                    EventError::new(
                        "method",
                        format!(
                            "\"{}\" is not an auth method (one of qr_scan, pairing_code, \
                             session_restore, passkey)",
                            truncate_for_error(&raw)
                        ),
                    )
                })?;
                EventKind::Auth { method }
            }
            "credentials_written" => EventKind::CredentialsWritten {
                store: text("store", self.store, MAX_LABEL_LEN)?,
            },
            "validation" => EventKind::Validation {
                valid: boolean("valid", self.valid)?,
                detail: text("detail", self.detail, MAX_TEXT_LEN)?,
            },
            "lock_acquired" => EventKind::LockAcquired {
                held_by: required_text("held_by", self.held_by, MAX_LABEL_LEN)?,
                operation: required_text("operation", self.operation, MAX_LABEL_LEN)?,
            },
            "lock_released" => EventKind::LockReleased {
                held_by: text("held_by", self.held_by, MAX_LABEL_LEN)?,
                operation: text("operation", self.operation, MAX_LABEL_LEN)?,
            },
            "circuit_breaker" => EventKind::CircuitBreaker {
                open: boolean("open", self.open)?,
                consecutive_failures: count("consecutive_failures", self.consecutive_failures)?,
            },
            "message" => {
                let raw = required_text("direction", self.direction, 64)?;
                let direction = match &*raw {
                    "inbound" => Direction::Inbound,
                    "outbound" => Direction::Outbound,
                    other => {
                        return Err(EventError::new(
                            "direction",
                            format!(
                                "\"{}\" is not a direction (inbound or outbound)",
                                truncate_for_error(other)
                            ),
                        ));
                    }
                };
                EventKind::Message {
                    direction,
                    count: count("count", self.count)?.unwrap_or(1),
                }
            }
            "error" => EventKind::Error {
                kind: required_text("kind", self.error_kind, MAX_LABEL_LEN)?,
                message: text("message", self.message, MAX_TEXT_LEN)?,
            },
            "counter" => {
                let name = metric_name(self.name)?;
                let delta = match self.delta {
                    None => 1.0,
                    some => number("delta", some)?,
                };
                if delta < 0.0 {
                    return Err(EventError::new(
                        "delta",
                        format!("counters only go up; got {delta} (use a gauge)"),
                    ));
                }
                EventKind::Counter { name, delta }
            }
            "gauge" => EventKind::Gauge {
                name: metric_name(self.name)?,
                value: number("value", self.value)?,
            },
            "labels" => EventKind::Labels {
                labels: label_changes(self.labels)?,
            },
            other => {
                return Err(EventError::new(
                    "type",
                    format!(
                        "\"{}\" is not an event type (one of {EVENT_TYPES})",
                        truncate_for_error(other)
                    ),
                ));
            }
        };
        Ok(Event {
            session,
            at,
            id,
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(default: &SessionId) -> ParseContext<'_> {
        ParseContext {
            default_session: default,
            received_at: Timestamp::parse_rfc3339("2026-02-05T12:00:00Z").unwrap(),
            max_future_skew: DurationMs::from_mins(5),
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
            serde_json::from_str(r#"{"type":"state","state":"disconnected","reason":440.0}"#)
                .unwrap();
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
                count: 1
            }
        );
    }
}
