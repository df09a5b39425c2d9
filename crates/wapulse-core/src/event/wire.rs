//! The wire form of an event ([`RawEvent`]): loose on purpose, so that
//! [`RawEvent::parse`] can name exactly which field is wrong and why.

use serde::Deserialize;

use super::loose::{WireIds, WireLabels, WireValue, truncate_for_error};
use super::{AuthMethod, Direction, Event, EventKind, MetricName, SessionState};
use crate::delivery::{AckStatus, ErrorCode};
use crate::id::{SessionId, SessionIdError};
use crate::labels::{LabelChanges, LabelError};
use crate::time::{DurationMs, Timestamp};

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
    pub ids: Option<WireIds>,
    pub status: Option<WireValue>,
    pub code: Option<WireValue>,
    pub until: Option<WireValue>,
    pub lifted: Option<WireValue>,
    pub event: Option<WireValue>,
    pub tier: Option<WireValue>,
    pub rating: Option<WireValue>,
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
    /// How far in the past an `at` may be (an event dated 1970 would judge
    /// its session dead for decades at once).
    pub max_event_age: DurationMs,
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

/// Most one counter event may add: a counter stays finite (and exact to
/// far more than anyone counts) however many events come.
pub const MAX_COUNTER_DELTA: f64 = 1e15;

/// Most message ids one `message` event may carry.
pub const MAX_IDS: usize = 1000;

/// Longest free text kept from a gateway (reasons, details, messages).
pub const MAX_TEXT_LEN: usize = 1024;
/// Longest short label (lock holder, operation, store, error kind, id).
pub const MAX_LABEL_LEN: usize = 256;

const EVENT_TYPES: &str = "state, heartbeat, heartbeat_failed, keepalives, auth, \
credentials_written, validation, lock_acquired, lock_released, circuit_breaker, message, ack, \
restriction, quality, error, counter, gauge, labels, retire";

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

fn message_ids(value: Option<WireIds>) -> Result<Box<[Box<str>]>, EventError> {
    const WANTED: &str = "an array of the gateway's message ids (strings)";
    let items = match value {
        None => return Ok(Box::default()),
        Some(WireIds::Other(got)) => {
            return Err(EventError::new(
                "ids",
                format!("must be {WANTED}, got {got}"),
            ));
        }
        Some(WireIds::List(items)) => items,
    };
    if items.len() > MAX_IDS {
        return Err(EventError::new(
            "ids",
            format!("holds more than {MAX_IDS} ids; send them in several events"),
        ));
    }
    let mut ids = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        match item {
            WireValue::Text(t) if !t.is_empty() && t.chars().count() <= MAX_LABEL_LEN => {
                ids.push(t.into_boxed_str())
            }
            WireValue::Text(t) if t.is_empty() => {
                return Err(EventError::new("ids", format!("ids[{i}] is empty")));
            }
            WireValue::Text(t) => {
                return Err(EventError::new(
                    "ids",
                    format!(
                        "ids[{i}] is {} characters long; the limit is {MAX_LABEL_LEN}",
                        t.chars().count()
                    ),
                ));
            }
            other => {
                return Err(EventError::new(
                    "ids",
                    format!("ids[{i}] must be a string, got {}", other.describe()),
                ));
            }
        }
    }
    Ok(ids.into_boxed_slice())
}

/// An error code as a gateway may give it: a string, or a number (Baileys'
/// `"463"`, the Cloud API's 131048), kept as its text.
fn error_code_field(value: Option<WireValue>) -> Result<Option<ErrorCode>, EventError> {
    // A code may come as a number (Baileys' `"463"`, the Cloud
    // API's 131048): kept as its text.
    const MAX_NUMERIC_CODE: i64 = 999_999_999_999_999_999;
    let code = match value {
        None => None,
        Some(WireValue::Int(n)) if n.abs() <= MAX_NUMERIC_CODE => Some(n.to_string()),
        // `463.0` is the integer 463 in JSON.
        Some(WireValue::Float(f)) if f.fract() == 0.0 && f.abs() < 1e18 => {
            Some((f as i64).to_string())
        }
        Some(WireValue::Int(_) | WireValue::Float(_)) => {
            return Err(EventError::new(
                "code",
                format!("a numeric code has at most 18 digits (±{MAX_NUMERIC_CODE})"),
            ));
        }
        Some(WireValue::Text(t)) => Some(t),
        Some(other) => {
            return Err(EventError::new(
                "code",
                format!("must be a string or a number, got {}", other.describe()),
            ));
        }
    };
    let code = code
        .map(|c| ErrorCode::parse(&c).map_err(|p| EventError::new("code", p)))
        .transpose()?;
    Ok(code)
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
        if at < ctx.received_at.minus(ctx.max_event_age) {
            return Err(EventError::new(
                "at",
                format!(
                    "{} is {} in the past; events may be at most {} old (max_event_age)",
                    at,
                    ctx.received_at.since(at).formatted(),
                    ctx.max_event_age.formatted()
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
                             reconnecting, disconnected, qr_required, logged_out, circuit_open, stopped)",
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
                let ids = message_ids(self.ids)?;
                if !ids.is_empty() && direction == Direction::Inbound {
                    return Err(EventError::new(
                        "ids",
                        "is for outbound messages only (the ids of sends whose acks follow)",
                    ));
                }
                let count = match count("count", self.count)? {
                    None => u32::try_from(ids.len()).unwrap_or(u32::MAX).max(1),
                    Some(n) if (n as usize) < ids.len() => {
                        return Err(EventError::new(
                            "count",
                            format!("is {n}, fewer than the {} ids given", ids.len()),
                        ));
                    }
                    Some(n) => n,
                };
                EventKind::Message {
                    direction,
                    count,
                    ids,
                }
            }
            "ack" => {
                let message =
                    required_text("message", self.message, MAX_LABEL_LEN).map_err(|e| {
                        EventError::new(
                            "message",
                            format!("{} (the gateway's message id)", e.problem),
                        )
                    })?;
                if message.is_empty() {
                    return Err(EventError::new(
                        "message",
                        "must not be empty (the gateway's message id)",
                    ));
                }
                let raw = required_text("status", self.status, 64)?;
                let status = AckStatus::parse(&raw).ok_or_else(|| {
                    EventError::new(
                        "status",
                        format!(
                            "\"{}\" is not an ack status (one of server, delivered, read, played, error)",
                            truncate_for_error(&raw)
                        ),
                    )
                })?;
                let code = error_code_field(self.code)?;
                if code.is_some() && status != AckStatus::Error {
                    return Err(EventError::new(
                        "code",
                        format!("is for error acks only (status is {})", status.as_str()),
                    ));
                }
                EventKind::Ack {
                    message,
                    status,
                    code,
                    detail: text("detail", self.detail, MAX_TEXT_LEN)?,
                }
            }
            "restriction" => {
                let code = error_code_field(self.code)?.ok_or_else(|| {
                    EventError::new(
                        "code",
                        "is required (the restriction's code, e.g. TOS_BLOCK)",
                    )
                })?;
                let until = match text("until", self.until, 64)? {
                    None => None,
                    Some(t) => Some(
                        Timestamp::parse_rfc3339(&t)
                            .map_err(|e| EventError::new("until", e.to_string()))?,
                    ),
                };
                let lifted = match self.lifted {
                    None => false,
                    some => boolean("lifted", some)?,
                };
                EventKind::Restriction {
                    code,
                    until,
                    lifted,
                }
            }
            "quality" => EventKind::Quality {
                event: required_text("event", self.event, 64)?,
                tier: text("tier", self.tier, 64)?,
                rating: text("rating", self.rating, 64)?,
            },
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
                if delta > MAX_COUNTER_DELTA {
                    return Err(EventError::new(
                        "delta",
                        format!(
                            "{delta} is more than one event may add (at most {MAX_COUNTER_DELTA:e})"
                        ),
                    ));
                }
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
            "retire" => EventKind::Retire {
                reason: text("reason", self.reason, MAX_TEXT_LEN)?,
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
