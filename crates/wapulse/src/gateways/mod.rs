//! Gateways that post straight to wapulse: their webhook payloads turned
//! into session events, so a WAHA or Evolution API user needs no glue code.
//!
//! `[gateways]` is checked in `config.rs`. Each gateway has its own file
//! (`waha.rs`, `evolution.rs`) with a pure
//! `map(envelope, prior, received)`: the payload and what wapulse knows of
//! the session before it (its state, labels, keepalive expectation) in,
//! session events out. The HTTP side (auth, signature, ingest) is in
//! `routes/webhooks.rs`.
//!
//! Rules every mapping keeps:
//! - A gateway retry of the same delivery maps to the same event ids (the
//!   envelope's id, else a hash of the body), so the model's idempotency
//!   memory applies it once.
//! - Sessions fed by these webhooks send no regular keepalives: the first
//!   delivery for a session says so (`keepalives {expected: false}`), so
//!   HEARTBEAT_STALE / DEAD never page for them; INBOUND_SILENCE and the
//!   state do.
//! - "Connecting" after connected is a reconnect.
//! - A send carries its message id (`ids`) and every ack of it names the
//!   same id, cut the same way; an ack's event id is the message and its
//!   status, so the same ack delivered twice counts once.

mod bounded;
pub mod config;
pub mod evolution;
pub mod waha;
pub mod whatsapp_cloud;

use serde_json::Value;
use sha2::{Digest, Sha256};
use wapulse_core::labels::LabelChanges;
use wapulse_core::{
    AckStatus, Direction, ErrorCode, Event, EventKind, FleetSnapshot, Labels, SessionId,
    SessionState, Timestamp,
};

pub use config::{GatewayEnv, GatewaySettings, RawGateways};

/// How far behind its receipt a delivery's own timestamp is believed: a
/// retry comes within minutes; a timestamp older than this is a clock gone
/// wrong, and the receipt time is taken instead (an event dated years back
/// would judge its session dead at once).
pub const DELIVERY_AGE: wapulse_core::DurationMs = wapulse_core::DurationMs::from_hours(24);

/// What wapulse knows about a session before a delivery.
#[derive(Clone, Debug, Default)]
pub struct Prior {
    /// Its state, when the session exists.
    pub state: Option<SessionState>,
    /// Whether its source already said it sends no keepalives.
    pub keepalives_off: bool,
    /// Its labels.
    pub labels: Labels,
    /// The reason given with its state.
    pub reason: Option<Box<str>>,
    /// Whether it was ever connected.
    pub was_connected: bool,
}

impl Prior {
    /// Reads the session from the model's snapshot.
    pub fn of(snapshot: &FleetSnapshot, id: &SessionId) -> Self {
        snapshot
            .get(id.as_str())
            .map_or_else(Self::default, |s| Self {
                state: s.state_seen.then_some(s.state),
                keepalives_off: s.liveness.keepalives_off,
                labels: s.labels.clone(),
                reason: s.state_reason.clone(),
                was_connected: s.init_successful,
            })
    }

    /// `connecting` for a session's first start, `reconnecting` when it
    /// starts again after it lost a connection (connected, reconnecting,
    /// or dropped with a close code). A start after a logout or a QR wait
    /// is a new pairing, not a reconnect.
    pub fn connecting(&self) -> SessionState {
        match self.state {
            Some(SessionState::Connected | SessionState::Reconnecting) => {
                SessionState::Reconnecting
            }
            Some(SessionState::Disconnected | SessionState::CircuitOpen) if self.was_connected => {
                SessionState::Reconnecting
            }
            _ => SessionState::Connecting,
        }
    }
}

/// Why a delivery was refused (a 400 naming the field).
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    /// The envelope field at fault.
    pub field: &'static str,
    /// What is wrong.
    pub problem: String,
}

impl Refused {
    fn new(field: &'static str, problem: impl Into<String>) -> Self {
        Self {
            field,
            problem: problem.into(),
        }
    }
}

/// What a delivery became.
#[derive(Debug, PartialEq)]
pub enum Mapped {
    /// These events, for this session.
    Events {
        /// The gateway's event name.
        event: String,
        /// The session.
        session: SessionId,
        /// What to apply.
        events: Vec<Event>,
    },
    /// A valid delivery that wapulse does not map (acknowledged, counted).
    Ignored {
        /// The gateway's event name.
        event: String,
    },
}

/// Builds the events of one delivery, with ids derived from the delivery
/// so that a retry is recognised.
pub struct Batch {
    session: SessionId,
    at: Timestamp,
    id_base: String,
    events: Vec<Event>,
}

impl Batch {
    /// A batch for `session` at `at`; `id_base` names the delivery.
    pub fn new(session: SessionId, at: Timestamp, id_base: String) -> Self {
        Self {
            session,
            at,
            id_base,
            events: Vec::new(),
        }
    }

    /// Adds an event with the next derived id.
    pub fn push(&mut self, kind: EventKind) {
        let id = format!("{}:{}", self.id_base, self.events.len());
        self.push_with_id(kind, id);
    }

    /// Adds an event with an id of its own (a message id shared by two
    /// deliveries of the same message).
    pub fn push_with_id(&mut self, kind: EventKind, id: String) {
        let id = truncate(&id, wapulse_core::event::MAX_LABEL_LEN);
        self.events.push(Event {
            session: self.session.clone(),
            at: self.at,
            id: Some(id.into()),
            kind,
        });
    }

    /// A state change with an optional reason.
    pub fn state(&mut self, state: SessionState, reason: Option<String>) {
        self.push(EventKind::State {
            state,
            reason: reason.map(|r| truncate(&r, wapulse_core::event::MAX_TEXT_LEN).into()),
        });
    }

    /// One message, inbound unless `from_me`; keyed by the gateway's
    /// message id (`tag` names the gateway) when it has one, so the same
    /// message delivered twice (WAHA's `message` and `message.any`, a
    /// retry) counts once.
    pub fn message(&mut self, tag: &str, from_me: bool, message_id: Option<&str>) {
        let direction = if from_me {
            Direction::Outbound
        } else {
            Direction::Inbound
        };
        match message_id.filter(|id| !id.is_empty()) {
            Some(message) => {
                // A send carries its id, so that its acks can be followed.
                let ids: Box<[Box<str>]> = if from_me {
                    Box::new([message_key(message).into()])
                } else {
                    Box::default()
                };
                let kind = EventKind::Message {
                    direction,
                    count: 1,
                    ids,
                };
                let id = format!("{tag}:{}:{message}:{}", self.session, direction.as_str());
                self.push_with_id(kind, id)
            }
            None => self.push(EventKind::Message {
                direction,
                count: 1,
                ids: Box::default(),
            }),
        }
    }

    /// An ack for the sent message `message`, keyed by message and status
    /// so that a retried delivery (or the same ack in two events) counts
    /// once.
    pub fn ack(
        &mut self,
        tag: &str,
        message: &str,
        status: AckStatus,
        code: Option<ErrorCode>,
        detail: Option<&str>,
    ) {
        if message.is_empty() {
            return;
        }
        let kind = EventKind::Ack {
            message: message_key(message).into(),
            status,
            code,
            detail: detail.map(|d| truncate(d, wapulse_core::event::MAX_TEXT_LEN).into()),
        };
        let id = format!("{tag}:{}:ack:{message}:{}", self.session, status.as_str());
        self.push_with_id(kind, id);
    }

    /// The "no regular keepalives" declaration, once per session.
    pub fn no_keepalives(&mut self, prior: &Prior) {
        if !prior.keepalives_off {
            self.push(EventKind::Keepalives { expected: false });
        }
    }

    /// Labels that differ from what the session holds (values cut to 128
    /// characters; empty values skipped).
    pub fn labels(&mut self, prior: &Prior, wanted: &[(&str, Option<&str>)]) {
        let changes: Vec<(&str, Option<String>)> = wanted
            .iter()
            .filter_map(|(name, value)| {
                let value = value.filter(|v| !v.is_empty())?;
                let value = truncate(value, 128);
                (prior.labels.get(name) != Some(value.as_str())).then_some((*name, Some(value)))
            })
            .collect();
        if changes.is_empty() {
            return;
        }
        if let Ok(labels) =
            LabelChanges::try_from_changes(changes.iter().map(|(n, v)| (*n, v.as_deref())))
        {
            // A session already at 16 labels keeps what it has: the check
            // at ingest would refuse the whole delivery otherwise.
            if prior.labels.len() + changes.len() <= wapulse_core::labels::MAX_LABELS {
                self.push(EventKind::Labels { labels });
            }
        }
    }

    /// The events, for `session`.
    pub fn finish(self, event: String) -> Mapped {
        Mapped::Events {
            event,
            session: self.session,
            events: self.events,
        }
    }
}

/// A gateway's message id as events carry it (at most
/// [`MAX_LABEL_LEN`](wapulse_core::event::MAX_LABEL_LEN) characters: a send
/// and its acks cut the same way).
fn message_key(id: &str) -> String {
    truncate(id, wapulse_core::event::MAX_LABEL_LEN)
}

/// An error code as a gateway gave it (a string or a number), when it is
/// one wapulse can hold.
pub fn error_code(value: Option<&Value>) -> Option<ErrorCode> {
    let text = match value? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    ErrorCode::parse(&text).ok()
}

fn truncate(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

/// A short stable name for a body: the first 16 hex digits of its
/// SHA-256, for deliveries that carry no id of their own.
pub fn body_digest(body: &[u8]) -> String {
    Sha256::digest(body)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A string field of a JSON object.
pub fn text<'a>(value: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(serde_json::Value::as_str)
}

/// The body as a JSON object, or a refusal naming `body`; `what` names
/// the gateway's envelope for the message.
pub fn envelope(body: &[u8], what: &str) -> Result<serde_json::Value, Refused> {
    let value = bounded::parse(body, bounded::MAX_NODES).map_err(|e| match e {
        bounded::Unread::Invalid(e) => Refused::new("body", format!("is not valid JSON: {e}")),
        bounded::Unread::TooLarge(max) => Refused::new(
            "body",
            format!("holds more than {max} JSON values; a gateway's delivery holds far fewer"),
        ),
    })?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(Refused::new("body", format!("must be {what}")))
    }
}

/// The session id `prefix + name`, or a refusal naming `field`.
pub fn session_id(field: &'static str, prefix: &str, name: &str) -> Result<SessionId, Refused> {
    if name.is_empty() {
        return Err(Refused::new(field, "is required"));
    }
    SessionId::parse(&format!("{prefix}{name}")).map_err(|e| {
        Refused::new(
            field,
            format!("`{}` does not make a session id: {e}", truncate(name, 64)),
        )
    })
}

/// A close code as text, from a JSON number or string.
pub fn code_text(value: Option<&serde_json::Value>) -> Option<String> {
    match value? {
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// Close codes after which the device must be paired again (Evolution
/// sends a `close` webhook only for these).
pub fn is_logout_code(code: &str) -> bool {
    matches!(
        wapulse_core::disconnect::DisconnectReason::read(code).code,
        Some(401 | 402 | 403 | 406 | 411)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_check_prefixes_headers_and_prefer_the_env_key() {
        let raw: RawGateways = toml::from_str(
            "token_header = \"X-Api-Key\"\n[waha]\nsession_prefix = \"waha:\"\nhmac_key = \"file\"\n",
        )
        .unwrap();
        let s = GatewaySettings::check(
            Some(raw),
            GatewayEnv {
                waha_hmac_key: Some("env".into()),
                ..GatewayEnv::default()
            },
        )
        .unwrap();
        assert_eq!(s.waha_prefix, "waha:");
        assert_eq!(s.waha_hmac_key.unwrap().expose(), "env");
        assert_eq!(s.token_header.unwrap().as_str(), "x-api-key");
        let bad: RawGateways = toml::from_str("[evolution]\nsession_prefix = \"a b\"\n").unwrap();
        let err = GatewaySettings::check(Some(bad), GatewayEnv::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("gateways.evolution.session_prefix"), "{err}");
        let bad: RawGateways = toml::from_str("token_header = \"bad header\"\n").unwrap();
        let err = GatewaySettings::check(Some(bad), GatewayEnv::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("gateways.token_header"), "{err}");
    }

    #[test]
    fn logout_codes_are_the_ones_needing_a_new_pairing() {
        for code in ["401", "402", "403", "406", "411", "loggedOut"] {
            assert!(is_logout_code(code), "{code}");
        }
        for code in ["408", "428", "440", "500", "515", "whatever"] {
            assert!(!is_logout_code(code), "{code}");
        }
    }
}
