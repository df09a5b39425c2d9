//! Session events: the vocabulary gateways speak, parsed at the edge.
//!
//! The wire form ([`RawEvent`]) is loose on purpose so that every mistake can
//! be reported with the field it concerns; [`RawEvent::parse`] turns it into
//! an [`Event`] in which bad values cannot exist.
//!
//! - `vocabulary`: the words events use ([`SessionState`], [`AuthMethod`],
//!   [`Direction`], [`MetricName`]).
//! - here: the checked [`Event`] and what happened ([`EventKind`]).
//! - `wire`: the loose wire form ([`RawEvent`]), its parse and its errors;
//!   `loose`: the bounded loose values it is read into.

mod loose;
#[cfg(test)]
mod tests;
mod vocabulary;
mod wire;

use serde::{Deserialize, Serialize};

use crate::delivery::{AckStatus, ErrorCode};
use crate::id::SessionId;
use crate::labels::LabelChanges;
use crate::time::Timestamp;

pub use loose::{WireIds, WireLabels, WireValue};
pub use vocabulary::{AuthMethod, Direction, MetricName, STATES, SessionState};
pub use wire::{
    EventError, MAX_COUNTER_DELTA, MAX_IDS, MAX_LABEL_LEN, MAX_TEXT_LEN, ParseContext, RawEvent,
    label_error,
};

/// What happened to a session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The state machine moved.
    State {
        /// The new state.
        state: SessionState,
        /// Why, in the gateway's words.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Box<str>>,
    },
    /// A keepalive ping/pong was seen.
    Heartbeat {
        /// Its round-trip time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rtt_ms: Option<u32>,
    },
    /// A keepalive went unanswered (whatsmeow's `KeepAliveTimeout`): the
    /// keepalive is failing until the next heartbeat.
    HeartbeatFailed,
    /// Whether the session's source sends regular keepalives (it is
    /// expected to until told otherwise).
    Keepalives {
        /// `false` for a source that sends none (WAHA, Evolution webhooks).
        expected: bool,
    },
    /// Authentication completed.
    Auth {
        /// How.
        method: AuthMethod,
    },
    /// Credentials were persisted.
    CredentialsWritten {
        /// Where (file, database, S3).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        store: Option<Box<str>>,
    },
    /// A checksum / integrity check of the session data ran.
    Validation {
        /// Whether the data was intact.
        valid: bool,
        /// What the check found.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<Box<str>>,
    },
    /// The distributed session lock was taken.
    LockAcquired {
        /// Who holds it (a replica or worker id).
        held_by: Box<str>,
        /// What for.
        operation: Box<str>,
    },
    /// The distributed session lock was let go.
    LockReleased {
        /// Who held it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        held_by: Option<Box<str>>,
        /// What for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operation: Option<Box<str>>,
    },
    /// The gateway's reconnect circuit breaker changed.
    CircuitBreaker {
        /// Whether it is now open (not retrying).
        open: bool,
        /// Consecutive failures the gateway counted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        consecutive_failures: Option<u32>,
    },
    /// Messages passed.
    Message {
        /// Which way.
        direction: Direction,
        /// How many (default: the number of `ids`, else 1).
        count: u32,
        /// The gateway's ids of the messages sent (outbound only), so that
        /// their acks can be followed.
        #[serde(default, skip_serializing_if = "<[_]>::is_empty")]
        ids: Box<[Box<str>]>,
    },
    /// What happened to a sent message: WhatsApp's server took it, it was
    /// delivered, read or played, or it was refused.
    Ack {
        /// The gateway's id of the message.
        message: Box<str>,
        /// What happened.
        status: AckStatus,
        /// The error code of an error ack (`463`, `429`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<ErrorCode>,
        /// The gateway's words about it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<Box<str>>,
    },
    /// WhatsApp restricted the number (a ban, a messaging restriction),
    /// or lifted it (`lifted`), as the gateway reports it outside acks.
    Restriction {
        /// The gateway's code for it (`TOS_BLOCK`, `BIZ_INITIATED_BLOCK`).
        code: ErrorCode,
        /// When it ends, when known.
        #[serde(
            default,
            with = "crate::time::rfc3339_opt",
            skip_serializing_if = "Option::is_none"
        )]
        until: Option<Timestamp>,
        /// The restriction is over.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        lifted: bool,
    },
    /// A business number's quality or messaging limit changed (the Cloud
    /// API's `phone_number_quality_update`).
    Quality {
        /// What happened (`FLAGGED`, `UNFLAGGED`, `DOWNGRADE`, `UPGRADE`).
        event: Box<str>,
        /// The messaging limit tier now (`TIER_1K`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tier: Option<Box<str>>,
        /// The quality rating (`GREEN`, `YELLOW`, `RED`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rating: Option<Box<str>>,
    },
    /// A send/receive error.
    Error {
        /// What kind of error.
        kind: Box<str>,
        /// Its text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<Box<str>>,
    },
    /// A platform counter went up.
    Counter {
        /// The counter.
        name: MetricName,
        /// By how much (non-negative).
        delta: f64,
    },
    /// A platform gauge was set.
    Gauge {
        /// The gauge.
        name: MetricName,
        /// Its new value.
        value: f64,
    },
    /// Labels were set on (or, with `null`, removed from) the session.
    /// Applied in arrival order, whatever its `at`.
    Labels {
        /// What changes.
        labels: LabelChanges,
    },
    /// The session was deleted on purpose (`DELETE /sessions/{id}`, a
    /// gateway's delete signal, `retire_after`): it leaves the model, its
    /// alerts resolve as retired, and a later event starts it afresh.
    /// Applied in arrival order, whatever its `at`; a no-op for a session
    /// the model does not hold.
    Retire {
        /// Why, in the words of whoever retired it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Box<str>>,
    },
}

impl EventKind {
    /// The wire `type`.
    pub const fn type_name(&self) -> &'static str {
        match self {
            EventKind::State { .. } => "state",
            EventKind::Heartbeat { .. } => "heartbeat",
            EventKind::HeartbeatFailed => "heartbeat_failed",
            EventKind::Keepalives { .. } => "keepalives",
            EventKind::Auth { .. } => "auth",
            EventKind::CredentialsWritten { .. } => "credentials_written",
            EventKind::Validation { .. } => "validation",
            EventKind::LockAcquired { .. } => "lock_acquired",
            EventKind::LockReleased { .. } => "lock_released",
            EventKind::CircuitBreaker { .. } => "circuit_breaker",
            EventKind::Message { .. } => "message",
            EventKind::Ack { .. } => "ack",
            EventKind::Restriction { .. } => "restriction",
            EventKind::Quality { .. } => "quality",
            EventKind::Error { .. } => "error",
            EventKind::Counter { .. } => "counter",
            EventKind::Gauge { .. } => "gauge",
            EventKind::Labels { .. } => "labels",
            EventKind::Retire { .. } => "retire",
        }
    }
}

/// An accepted event: which session, when, an optional idempotency key, and
/// what happened. Its serde form is the wire form, so an exported journal can
/// be posted back to `/v1/events`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The session it concerns.
    pub session: SessionId,
    /// When it happened.
    #[serde(with = "crate::time::rfc3339")]
    pub at: Timestamp,
    /// The idempotency key, when the gateway gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Box<str>>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}
