//! WAHA (devlikeapro/waha) webhooks: `POST /v1/webhooks/waha`.
//!
//! The envelope as WAHA sends it: `{id, timestamp, session, engine, event,
//! payload, me, …}` (older releases lack `id` and `timestamp`).
//!
//! | WAHA | wapulse |
//! |---|---|
//! | `session.status` STARTING | `connecting` (first) / `reconnecting` (after it was connected) |
//! | `session.status` WORKING | `connected` (+ `auth qr_scan` / `passkey` after a QR or passkey wait) |
//! | `session.status` SCAN_QR_CODE, PASSKEY_* | `qr_required` |
//! | `session.status` STOPPED | `stopped` (on purpose: pages nothing) |
//! | `session.status` FAILED | `logged_out` (nothing after a coded logout; `qr_required` after a QR wait) |
//! | `engine.event` `connection.update` close (NOWEB) | `disconnected` / `logged_out` with the close code |
//! | `engine.event` `creds.update` (NOWEB) | `credentials_written` |
//! | `engine.event` KeepAliveTimeout / KeepAliveRestored (GOWS) | `heartbeat_failed` / `heartbeat` |
//! | `engine.event` StreamReplaced / LoggedOut / `gows.ConnectedEventData` (GOWS) | `disconnected` 440 / `logged_out` / `connected` |
//! | `message`, `message.any` | `message` (direction from `fromMe`; one per message id; a send carries its id in `ids`, and its `ack` when it has one) |
//! | `message.ack` (`fromMe`) | `ack`: -1 `error` (code from `_data.messageStubParameters`), 1 `server`, 2 `delivered`, 3 `read`, 4 `played` |
//! | `me.id`, `engine` | labels `me`, `engine` |
//!
//! WAHA sends no webhook when a session is deleted (there is no such event
//! in its list): retire one with `DELETE /sessions/{id}`, or let
//! `retire_after` do it.

use serde_json::Value;
use wapulse_core::{AckStatus, AuthMethod, EventKind, SessionId, SessionState, Timestamp};

use super::{
    Batch, Mapped, Prior, Refused, body_digest, code_text, envelope, error_code, is_logout_code,
    session_id, text,
};

/// Maps one delivery. `delivery` is WAHA's `X-Webhook-Request-Id` (the
/// same on its retries), `prior` tells what wapulse knows of a session.
pub fn map(
    body: &[u8],
    delivery: Option<&str>,
    prefix: &str,
    prior: impl Fn(&SessionId) -> Prior,
    received: Timestamp,
) -> Result<Mapped, Refused> {
    let envelope = envelope(body, "a WAHA webhook object")?;
    let event = text(&envelope, "event")
        .ok_or_else(|| Refused::new("event", "is required (a WAHA event name)"))?
        .to_owned();
    let name = text(&envelope, "session")
        .ok_or_else(|| Refused::new("session", "is required (the WAHA session name)"))?;
    let session = session_id("session", prefix, name)?;
    // WAHA's own time when it gave one in milliseconds (never ahead of
    // ours, at most a day behind: older is a clock gone wrong); else now.
    let oldest = received.minus(super::DELIVERY_AGE).as_millis();
    let at = envelope
        .get("timestamp")
        .and_then(Value::as_i64)
        .filter(|ms| *ms >= oldest)
        .map_or(received, |ms| Timestamp::from_millis(ms).min(received));
    // The delivery's id names its events: the envelope's `id`, else the
    // request id WAHA repeats on retries (older releases), else the body.
    let id_base = match (text(&envelope, "id"), delivery) {
        (Some(id), _) if !id.is_empty() => format!("waha:{id}"),
        (_, Some(request)) if !request.is_empty() => format!("waha-req:{request}"),
        _ => format!("waha:{}", body_digest(body)),
    };
    let prior = prior(&session);
    let payload = envelope.get("payload").unwrap_or(&Value::Null);
    let mut batch = Batch::new(session.clone(), at, id_base);
    let mapped = match event.as_str() {
        "session.status" => session_status(&mut batch, &prior, payload)?,
        "engine.event" => engine_event(&mut batch, payload),
        "message" | "message.any" => {
            // `message` and `message.any` both carry an inbound message:
            // keyed by its id, it counts once. A send (`fromMe`) may come
            // with its ack already.
            let from_me = payload.get("fromMe").and_then(Value::as_bool) == Some(true);
            let id = text(payload, "id");
            batch.message("waha-msg", from_me, id);
            if let (true, Some(id)) = (from_me, id) {
                message_ack(&mut batch, id, payload);
            }
            true
        }
        "message.ack" => {
            let from_me = payload.get("fromMe").and_then(Value::as_bool) == Some(true);
            match (from_me, text(payload, "id")) {
                (true, Some(id)) => {
                    message_ack(&mut batch, id, payload);
                    true
                }
                // Acks of what others sent (read receipts we gave) are not
                // about this session's deliveries.
                _ => false,
            }
        }
        _ => false,
    };
    if !mapped {
        return Ok(Mapped::Ignored { event });
    }
    batch.no_keepalives(&prior);
    let me = envelope.get("me").and_then(|m| text(m, "id"));
    batch.labels(&prior, &[("me", me), ("engine", text(&envelope, "engine"))]);
    Ok(batch.finish(event))
}

/// WAHA's `ack` (ERROR -1, PENDING 0, SERVER 1, DEVICE 2, READ 3,
/// PLAYED 4) as an ack event; PENDING and unknown values say nothing. An
/// error's code, when the engine gave one, is in `_data` (NOWEB passes
/// Baileys' `messageStubParameters` through).
fn message_ack(batch: &mut Batch, id: &str, payload: &Value) {
    let status = match payload.get("ack").and_then(Value::as_i64) {
        Some(-1) => AckStatus::Error,
        Some(1) => AckStatus::Server,
        Some(2) => AckStatus::Delivered,
        Some(3) => AckStatus::Read,
        Some(4) => AckStatus::Played,
        _ => return,
    };
    let (code, detail) = if status == AckStatus::Error {
        let data = payload.get("_data").unwrap_or(&Value::Null);
        let params = ["/messageStubParameters", "/update/messageStubParameters"]
            .iter()
            .find_map(|p| data.pointer(p).and_then(Value::as_array));
        let code = params.and_then(|p| error_code(p.first()));
        let detail = params
            .and_then(|p| p.get(1))
            .and_then(Value::as_str)
            .or_else(|| text(payload, "ackName"));
        (code, detail)
    } else {
        (None, None)
    };
    batch.ack("waha", id, status, code, detail);
}

fn session_status(batch: &mut Batch, prior: &Prior, payload: &Value) -> Result<bool, Refused> {
    let status = text(payload, "status").ok_or_else(|| {
        Refused::new(
            "payload.status",
            "is required for session.status (STOPPED, STARTING, SCAN_QR_CODE, WORKING, FAILED)",
        )
    })?;
    match status {
        "STARTING" => batch.state(prior.connecting(), Some(status.into())),
        "WORKING" => {
            if prior.state == Some(SessionState::QrRequired) {
                let passkey = prior
                    .reason
                    .as_deref()
                    .is_some_and(|r| r.starts_with("PASSKEY"));
                batch.push(EventKind::Auth {
                    method: if passkey {
                        AuthMethod::Passkey
                    } else {
                        AuthMethod::QrScan
                    },
                });
            }
            batch.state(SessionState::Connected, None);
        }
        "SCAN_QR_CODE" | "PASSKEY_REQUIRED" | "PASSKEY_CONFIRMATION_REQUIRED" => {
            batch.state(SessionState::QrRequired, Some(status.into()))
        }
        // Stopped by an operator, on purpose: it pages nothing.
        "STOPPED" => batch.state(SessionState::Stopped, Some(status.into())),
        // FAILED follows a logout (whose close code, already applied, is
        // the better reason), ends a QR or passkey wait that timed out, or
        // says the session cannot start: a logout for the operator.
        "FAILED" => match prior.state {
            Some(SessionState::LoggedOut) => {}
            Some(SessionState::QrRequired) => {
                batch.state(SessionState::QrRequired, Some(status.into()))
            }
            _ => batch.state(SessionState::LoggedOut, Some(status.into())),
        },
        _ => return Ok(false),
    }
    Ok(true)
}

fn engine_event(batch: &mut Batch, payload: &Value) -> bool {
    let Some(name) = text(payload, "event") else {
        return false;
    };
    let data = payload.get("data").unwrap_or(&Value::Null);
    match name.strip_prefix("events.").unwrap_or(name) {
        // NOWEB: Baileys' own events.
        "connection.update" => match text(data, "connection") {
            Some("close") => {
                let code = code_text(data.pointer("/lastDisconnect/error/output/statusCode"));
                let state = if code.as_deref().is_some_and(is_logout_code) {
                    SessionState::LoggedOut
                } else {
                    SessionState::Disconnected
                };
                batch.state(state, code);
            }
            Some("open") => batch.state(SessionState::Connected, None),
            _ => return false,
        },
        "creds.update" => batch.push(EventKind::CredentialsWritten {
            store: Some("waha".into()),
        }),
        // GOWS: whatsmeow's events.
        "KeepAliveTimeout" => batch.push(EventKind::HeartbeatFailed),
        "KeepAliveRestored" => batch.push(EventKind::Heartbeat { rtt_ms: None }),
        "StreamReplaced" => batch.state(SessionState::Disconnected, Some("440".into())),
        "LoggedOut" => batch.state(
            SessionState::LoggedOut,
            Some(
                code_text(data.get("Reason"))
                    .filter(|r| r != "0")
                    .unwrap_or_else(|| "401".into()),
            ),
        ),
        // WAHA itself moves the session to STARTING on a whatsmeow
        // Disconnected: its session.status says the reconnect, once.
        "gows.ConnectedEventData" | "Connected" => batch.state(SessionState::Connected, None),
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received() -> Timestamp {
        Timestamp::from_millis(1_770_000_000_000)
    }

    fn kinds(mapped: &Mapped) -> Vec<String> {
        match mapped {
            Mapped::Events { events, .. } => events
                .iter()
                .map(|e| serde_json::to_string(&e.kind).unwrap())
                .collect(),
            Mapped::Ignored { event } => vec![format!("ignored {event}")],
        }
    }

    fn map_json(json: Value, prior: Prior) -> Result<Mapped, Refused> {
        map(
            json.to_string().as_bytes(),
            None,
            "",
            |_| prior.clone(),
            received(),
        )
    }

    #[test]
    fn starting_is_a_reconnect_only_after_it_was_connected() {
        let body = serde_json::json!({"event": "session.status", "session": "s", "payload": {"status": "STARTING"}});
        let first = map_json(body.clone(), Prior::default()).unwrap();
        assert!(
            kinds(&first)[0].contains("\"connecting\""),
            "{:?}",
            kinds(&first)
        );
        let again = map_json(
            body,
            Prior {
                state: Some(SessionState::Connected),
                keepalives_off: true,
                ..Prior::default()
            },
        )
        .unwrap();
        assert_eq!(
            kinds(&again),
            [r#"{"type":"state","state":"reconnecting","reason":"STARTING"}"#]
        );
    }

    #[test]
    fn a_retry_maps_to_the_same_ids_and_a_bad_envelope_names_its_field() {
        let body = serde_json::json!({"id": "evt_1", "timestamp": 1_769_999_999_000i64, "event": "session.status", "session": "s", "payload": {"status": "WORKING"}});
        let a = map_json(body.clone(), Prior::default()).unwrap();
        let b = map_json(body, Prior::default()).unwrap();
        assert_eq!(a, b);
        let Mapped::Events { events, .. } = a else {
            panic!()
        };
        assert_eq!(events[0].id.as_deref(), Some("waha:evt_1:0"));
        assert_eq!(events[0].at, Timestamp::from_millis(1_769_999_999_000));
        for (json, field) in [
            (serde_json::json!({"session": "s"}), "event"),
            (serde_json::json!({"event": "session.status"}), "session"),
            (
                serde_json::json!({"event": "session.status", "session": "s", "payload": {}}),
                "payload.status",
            ),
            (
                serde_json::json!({"event": "message", "session": "a b"}),
                "session",
            ),
        ] {
            assert_eq!(map_json(json, Prior::default()).unwrap_err().field, field);
        }
        let err = map(b"{", None, "", |_| Prior::default(), received()).unwrap_err();
        assert_eq!(err.field, "body");
        // Without an envelope id, WAHA's request id names the delivery:
        // two identical bodies from two deliveries are both applied.
        let old = serde_json::json!({"event": "session.status", "session": "s", "payload": {"status": "WORKING"}});
        let ids = |request: &str| match map(
            old.to_string().as_bytes(),
            Some(request),
            "",
            |_| Prior::default(),
            received(),
        )
        .unwrap()
        {
            Mapped::Events { events, .. } => events[0].id.clone().unwrap(),
            Mapped::Ignored { .. } => panic!(),
        };
        assert_eq!(ids("r1"), ids("r1"));
        assert_ne!(ids("r1"), ids("r2"));
    }

    #[test]
    fn failed_keeps_a_coded_logout_and_ends_a_qr_wait_as_a_qr_wait() {
        let failed = serde_json::json!({"event": "session.status", "session": "s", "payload": {"status": "FAILED"}});
        let after = |state| {
            kinds(
                &map_json(
                    failed.clone(),
                    Prior {
                        state: Some(state),
                        keepalives_off: true,
                        ..Prior::default()
                    },
                )
                .unwrap(),
            )
        };
        assert!(after(SessionState::LoggedOut).is_empty());
        assert_eq!(
            after(SessionState::QrRequired),
            [r#"{"type":"state","state":"qr_required","reason":"FAILED"}"#]
        );
        assert_eq!(
            after(SessionState::Connected),
            [r#"{"type":"state","state":"logged_out","reason":"FAILED"}"#]
        );
    }
}
