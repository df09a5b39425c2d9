//! Evolution API v2 webhooks: `POST /v1/webhooks/evolution` and the
//! per-event sub-paths it appends with "webhook by events"
//! (`/v1/webhooks/evolution/connection-update`, …).
//!
//! The envelope: `{event, instance, data, date_time, sender, server_url,
//! apikey}`. `date_time` is the server's local time labelled `Z` (right
//! only on a server running in UTC): read in the quarter-hour zone that
//! puts it just before its receipt ([`delivery_time`]), so a late retry
//! keeps its own instant. Evolution carries no delivery id: a retry is the same body, so
//! events are named by a hash of it (messages by their message id).
//!
//! | Evolution | wapulse |
//! |---|---|
//! | `connection.update` open | `connected` (+ `auth qr_scan` after a QR) |
//! | `connection.update` connecting | `connecting` (first) / `reconnecting` (after open) |
//! | `connection.update` close | `logged_out` with `statusReason` |
//! | `connection.update` refused | `qr_required` (QR attempts exhausted) |
//! | `qrcode.updated` | `qr_required` (`pairing_code` when it carries one) |
//! | `status.instance` closed | `logged_out` with `disconnectionReasonCode` |
//! | `logout.instance` | `logged_out` (nothing more when already logged out) |
//! | `remove.instance` | `retire` (the instance was deleted) |
//!
//! Evolution reconnects every other drop by itself and sends `close` only
//! for the codes it does not reconnect (401, 402, 403, 406, 408), after
//! which it deletes the instance's credentials: every `close` needs a new
//! pairing. A logout arrives as three concurrent webhooks (`status.instance`,
//! `logout.instance`, `connection.update` close): whichever order they
//! land in, the session ends `logged_out` with the close code.
//! | `messages.upsert` | `message` (direction from `key.fromMe`) |
//! | `send.message` | `message` outbound, its id in `ids` |
//! | `messages.update` (`fromMe`) | `ack`: ERROR `error` (code from `messageStubParameters`), SERVER_ACK `server`, DELIVERY_ACK `delivered`, READ `read`, PLAYED `played` |
//! | `wuid` | label `me` |

use serde_json::Value;
use wapulse_core::{AckStatus, AuthMethod, EventKind, SessionId, SessionState, Timestamp};

use super::{
    Batch, Mapped, Prior, Refused, body_digest, code_text, envelope, error_code, session_id, text,
};

/// The instant of a delivery from Evolution's `date_time`, which is the
/// server's local time written with a `Z` (right only on a server in UTC).
/// Time zones are whole quarter hours off UTC (at most 14 h): the zone is
/// the quarter-hour offset that puts the delivery between 10 minutes
/// before its receipt and 5 minutes after (a retry, clocks a little
/// apart), so a delivery keeps its own instant and a retry of an old
/// `open` that lands after a later `close` stays older than it. Never
/// ahead of the receipt; the receipt when there is no plausible
/// `date_time` (missing, unreadable, or no zone fits).
fn delivery_time(date_time: Option<&str>, received: Timestamp) -> Timestamp {
    const QUARTER: i64 = 15 * 60 * 1000;
    const BEFORE: i64 = 10 * 60 * 1000;
    const MAX_ZONE: i64 = 14 * 60 * 60 * 1000;
    let Some(local) = date_time.and_then(|t| Timestamp::parse_rfc3339(t).ok()) else {
        return received;
    };
    // local = utc + zone; the instant must fall in (received - BEFORE,
    // received + (QUARTER - BEFORE)]: the zone is the smallest quarter hour
    // at or above local - received - (QUARTER - BEFORE).
    let lowest = local.as_millis() - received.as_millis() - (QUARTER - BEFORE);
    let zone = lowest.div_euclid(QUARTER) * QUARTER
        + if lowest.rem_euclid(QUARTER) == 0 {
            0
        } else {
            QUARTER
        };
    if zone.abs() > MAX_ZONE {
        return received;
    }
    Timestamp::from_millis(local.as_millis() - zone).min(received)
}

/// Evolution names events `connection.update`, `CONNECTION_UPDATE` or, in
/// a sub-path, `connection-update`: all read as `connection.update`.
pub fn normalize(event: &str) -> String {
    event.to_ascii_lowercase().replace(['_', '-'], ".")
}

/// Maps one delivery; `path_event` is the sub-path's event, if any.
pub fn map(
    body: &[u8],
    path_event: Option<&str>,
    prefix: &str,
    prior: impl Fn(&SessionId) -> Prior,
    received: Timestamp,
) -> Result<Mapped, Refused> {
    let envelope = envelope(body, "an Evolution API webhook object")?;
    let event = match (text(&envelope, "event"), path_event) {
        (Some(e), _) => normalize(e),
        (None, Some(p)) => normalize(p),
        (None, None) => {
            return Err(Refused::new(
                "event",
                "is required (an Evolution event such as connection.update)",
            ));
        }
    };
    let name = text(&envelope, "instance")
        .ok_or_else(|| Refused::new("instance", "is required (the Evolution instance name)"))?;
    let session = session_id("instance", prefix, name)?;
    let prior = prior(&session);
    let data = envelope.get("data").unwrap_or(&Value::Null);
    let mut batch = Batch::new(
        session.clone(),
        delivery_time(text(&envelope, "date_time"), received),
        format!("evo:{}", body_digest(body)),
    );
    let mut me = None;
    if event == "remove.instance" {
        // The instance was deleted: its session is retired. Nothing else
        // goes with it (a first delivery's keepalives or labels would only
        // create the session to retire it).
        batch.push(EventKind::Retire {
            reason: Some("remove.instance".into()),
        });
        return Ok(batch.finish(event));
    }
    let mapped = match event.as_str() {
        "connection.update" => {
            me = text(data, "wuid");
            match text(data, "state") {
                Some("open") => {
                    if prior.state == Some(SessionState::QrRequired) {
                        let pairing = prior.reason.as_deref() == Some(PAIRING_CODE);
                        batch.push(EventKind::Auth {
                            method: if pairing {
                                AuthMethod::PairingCode
                            } else {
                                AuthMethod::QrScan
                            },
                        });
                    }
                    batch.state(SessionState::Connected, None);
                }
                Some("connecting") => batch.state(prior.connecting(), None),
                Some("close") => closed(&mut batch, code_text(data.get("statusReason"))),
                Some("refused") => batch.state(
                    SessionState::QrRequired,
                    Some("refused: QR code attempts exhausted".into()),
                ),
                _ => {
                    return Err(Refused::new(
                        "data.state",
                        "is required for connection.update (open, connecting, close, refused)",
                    ));
                }
            }
            true
        }
        "qrcode.updated" => {
            let pairing = data
                .pointer("/qrcode/pairingCode")
                .and_then(Value::as_str)
                .is_some_and(|c| !c.is_empty());
            let reason = if pairing {
                PAIRING_CODE
            } else {
                "qrcode.updated"
            };
            batch.state(SessionState::QrRequired, Some(reason.into()));
            true
        }
        "status.instance" if text(data, "status") == Some("closed") => {
            closed(&mut batch, code_text(data.get("disconnectionReasonCode")));
            true
        }
        "logout.instance" => {
            // The close that came with it carries the code: keep it.
            if prior.state != Some(SessionState::LoggedOut) {
                batch.state(SessionState::LoggedOut, Some("logout.instance".into()));
            }
            true
        }
        "messages.upsert" | "send.message" => {
            // One message object, or a list of them.
            let messages: Vec<&Value> = match data {
                Value::Array(items) => items.iter().collect(),
                Value::Object(_) => match data.get("messages") {
                    Some(Value::Array(items)) => items.iter().collect(),
                    _ => vec![data],
                },
                _ => Vec::new(),
            };
            for m in &messages {
                let key = m.get("key").unwrap_or(&Value::Null);
                let from_me = event == "send.message"
                    || key.get("fromMe").and_then(Value::as_bool) == Some(true);
                let id = text(key, "id");
                batch.message("evo-msg", from_me, id);
                if let (true, Some(id)) = (from_me, id) {
                    message_ack(&mut batch, id, m);
                }
            }
            !messages.is_empty()
        }
        "messages.update" => {
            // One update, or a list of them.
            let updates: Vec<&Value> = match data {
                Value::Array(items) => items.iter().collect(),
                Value::Object(_) => vec![data],
                _ => Vec::new(),
            };
            let mut any = false;
            for u in updates {
                let from_me = u.get("fromMe").and_then(Value::as_bool) == Some(true)
                    || u.pointer("/key/fromMe").and_then(Value::as_bool) == Some(true);
                let id = text(u, "keyId").or_else(|| u.get("key").and_then(|k| text(k, "id")));
                if let (true, Some(id)) = (from_me, id) {
                    any |= message_ack(&mut batch, id, u);
                }
            }
            any
        }
        _ => false,
    };
    if !mapped {
        return Ok(Mapped::Ignored { event });
    }
    batch.no_keepalives(&prior);
    batch.labels(&prior, &[("me", me)]);
    Ok(batch.finish(event))
}

/// Evolution's `status` (ERROR, PENDING, SERVER_ACK, DELIVERY_ACK, READ,
/// PLAYED; DELETED as a fallback) as an ack event; returns whether it was
/// one. An error's code, when Baileys gave one, is in
/// `messageStubParameters`.
fn message_ack(batch: &mut Batch, id: &str, update: &Value) -> bool {
    let status = match update.get("status").and_then(Value::as_str) {
        Some("ERROR") => AckStatus::Error,
        Some("SERVER_ACK") => AckStatus::Server,
        Some("DELIVERY_ACK") => AckStatus::Delivered,
        Some("READ") => AckStatus::Read,
        Some("PLAYED") => AckStatus::Played,
        _ => return false,
    };
    let params = update
        .get("messageStubParameters")
        .and_then(Value::as_array);
    let (code, detail) = match (status, params) {
        (AckStatus::Error, Some(p)) => (error_code(p.first()), p.get(1).and_then(Value::as_str)),
        _ => (None, None),
    };
    batch.ack("evo", id, status, code, detail);
    true
}

/// The reason a QR wait carries when Evolution offered a pairing code.
const PAIRING_CODE: &str = "pairing_code";

/// A `close`: Evolution sends one only when it will not reconnect and has
/// dropped the credentials.
fn closed(batch: &mut Batch, code: Option<String>) {
    batch.state(SessionState::LoggedOut, code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_time_is_read_in_the_server_s_quarter_hour_zone() {
        let received = Timestamp::parse_rfc3339("2026-12-06T20:00:00.000Z").unwrap();
        let at = |t: &str| delivery_time(Some(t), received).to_rfc3339();
        // A server in UTC, one in UTC+3 and one in UTC-3:30, each sent 40 s
        // before the receipt: the same instant.
        for local in [
            "2026-12-06T19:59:20.000Z",
            "2026-12-06T22:59:20.000Z",
            "2026-12-06T16:29:20.000Z",
        ] {
            assert_eq!(at(local), "2026-12-06T19:59:20.000Z", "{local}");
        }
        // A retry 9 minutes late keeps its instant; its clock 2 minutes
        // ahead of ours gives the receipt at most.
        assert_eq!(at("2026-12-06T22:51:00.000Z"), "2026-12-06T19:51:00.000Z");
        assert_eq!(at("2026-12-06T23:02:00.000Z"), "2026-12-06T20:00:00.000Z");
        // No plausible zone, or no date_time: the receipt.
        assert_eq!(at("2026-12-04T10:00:00.000Z"), "2026-12-06T20:00:00.000Z");
        assert_eq!(at("yesterday"), "2026-12-06T20:00:00.000Z");
        assert_eq!(delivery_time(None, received), received);
    }

    #[test]
    fn event_names_read_the_same_in_every_spelling() {
        for e in [
            "connection.update",
            "CONNECTION_UPDATE",
            "connection-update",
        ] {
            assert_eq!(normalize(e), "connection.update");
        }
    }

    #[test]
    fn connecting_after_open_is_a_reconnect_and_retries_keep_their_ids() {
        let body = serde_json::json!({"event": "connection.update", "instance": "i", "data": {"state": "connecting", "statusReason": 200}}).to_string();
        let received = Timestamp::from_millis(1_770_000_000_000);
        let connected = Prior {
            state: Some(SessionState::Connected),
            ..Prior::default()
        };
        let delivery = || {
            map(
                body.as_bytes(),
                None,
                "evo:",
                |_| connected.clone(),
                received,
            )
        };
        let a = delivery().unwrap();
        assert_eq!(
            a,
            delivery().unwrap(),
            "a retry maps to the same events and ids"
        );
        let Mapped::Events {
            session, events, ..
        } = a
        else {
            panic!()
        };
        assert_eq!(session.as_str(), "evo:i");
        assert_eq!(
            events[0].kind,
            EventKind::State {
                state: SessionState::Reconnecting,
                reason: None
            }
        );
        let err = map(
            b"{\"event\":\"connection.update\"}",
            None,
            "",
            |_| Prior::default(),
            received,
        )
        .unwrap_err();
        assert_eq!(err.field, "instance");
    }
}
