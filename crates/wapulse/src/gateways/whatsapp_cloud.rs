//! WhatsApp Cloud API (Meta's official API) webhooks:
//! `POST /v1/webhooks/whatsapp-cloud`.
//!
//! One envelope for every field: `{object, entry: [{id: <WABA id>,
//! changes: [{field, value}]}]}`; one delivery may name several numbers.
//! The session is the phone number id (with `[gateways.whatsapp_cloud]
//! session_prefix`). A Cloud API number has no socket: its first delivery
//! says it is connected and sends no keepalives, so only delivery health,
//! quality and inbound silence judge it.
//!
//! | field | wapulse |
//! |---|---|
//! | `messages` `statuses[]` sent | `message` outbound with its id, `ack server` |
//! | `messages` `statuses[]` delivered / read | `ack delivered` / `ack read` |
//! | `messages` `statuses[]` failed | `message` outbound with its id, `ack error` with `errors[0].code` (131048, 130429, …) |
//! | `messages` `messages[]` | `message` inbound (once per id) |
//! | `messages` `metadata` | labels `display_number`, `waba` (what later quality and account updates are matched by) |
//! | `phone_number_quality_update` | `quality` (event, `current_limit` as the tier) for the number whose label `display_number` matches |
//! | `account_update` ACCOUNT_RESTRICTION | `restriction` per `restriction_info` (`BIZ_INITIATED_BLOCK`, `CUSTOMER_INITIATED_BLOCK`, `ADD_NUMBER_BLOCK`) with its expiration |
//! | `account_update` ACCOUNT_DELETED | `retire` (the number, else every number of the WABA) |
//! | `account_update` DISABLED_UPDATE | `restriction WABA_DISABLED` (DISABLE), `WABA_DISABLE_SCHEDULED`; REINSTATE lifts it |
//!
//! An account update names the number by `phone_number` (its display
//! number) or only by the WABA (`entry.id`): every number learned under
//! that WABA. Numbers may also be named in the settings
//! (`[[gateways.whatsapp_cloud.numbers]]`), so that an update finds a
//! number whose deliveries have not said its display number yet. A part of a delivery wapulse cannot place (no usable phone
//! number id, an update for a number never seen) is skipped; a delivery
//! with nothing usable is acknowledged and ignored.

use serde_json::Value;
use wapulse_core::{AckStatus, EventKind, FleetSnapshot, SessionId, SessionState, Timestamp};

use super::config::CloudNumber;
use super::{Batch, Mapped, Prior, Refused, body_digest, envelope, error_code, session_id, text};

/// Label names a Cloud API number carries.
pub const DISPLAY_NUMBER: &str = "display_number";
/// The WhatsApp Business Account id label.
pub const WABA: &str = "waba";

/// A display number's digits (`+1 555-000-1234` → `15550001234`), so
/// that the same number written two ways matches; none when it has none.
pub fn digits(number: &str) -> Option<String> {
    let d: String = number.chars().filter(char::is_ascii_digit).collect();
    (!d.is_empty()).then_some(d)
}

/// The sessions a quality or account update names by `name`
/// ([`DISPLAY_NUMBER`] or [`WABA`]) = `value`: those whose label says so
/// (learned from deliveries; display numbers compared by their digits),
/// and those `[[gateways.whatsapp_cloud.numbers]]` names, when the model
/// has them.
pub fn sessions_named(
    snapshot: &FleetSnapshot,
    numbers: &[CloudNumber],
    name: &str,
    value: &str,
) -> Vec<SessionId> {
    let wanted = if name == DISPLAY_NUMBER {
        digits(value)
    } else {
        Some(value.to_owned())
    };
    let Some(wanted) = wanted else {
        return Vec::new();
    };
    let matches = |v: &str| {
        if name == DISPLAY_NUMBER {
            digits(v).as_deref() == Some(wanted.as_str())
        } else {
            v == wanted
        }
    };
    let mut found: Vec<SessionId> = snapshot
        .sessions()
        .filter(|s| s.labels.get(name).is_some_and(matches))
        .map(|s| s.id().clone())
        .collect();
    for n in numbers {
        let named = match name {
            DISPLAY_NUMBER => n.display_digits.as_deref() == Some(wanted.as_str()),
            WABA => n.waba.as_deref() == Some(wanted.as_str()),
            _ => false,
        };
        if named && snapshot.get(n.session.as_str()).is_some() && !found.contains(&n.session) {
            found.push(n.session.clone());
        }
    }
    found.sort();
    found
}

/// Maps one delivery. `prior` tells what wapulse knows of a session;
/// `labelled(name, value)` lists the sessions with that label.
pub fn map(
    body: &[u8],
    prefix: &str,
    prior: impl Fn(&SessionId) -> Prior,
    labelled: impl Fn(&str, &str) -> Vec<SessionId>,
    received: Timestamp,
) -> Result<Mapped, Refused> {
    let envelope = envelope(body, "a WhatsApp Cloud API webhook object")?;
    let digest = body_digest(body);
    let mut events = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut first: Option<SessionId> = None;
    let entries = envelope.get("entry").and_then(Value::as_array);
    for (e, entry) in entries.into_iter().flatten().enumerate() {
        let waba = text(entry, "id").filter(|w| !w.is_empty());
        let changes = entry.get("changes").and_then(Value::as_array);
        for (c, change) in changes.into_iter().flatten().enumerate() {
            let Some(field) = text(change, "field") else {
                continue;
            };
            let value = change.get("value").unwrap_or(&Value::Null);
            let id_base = format!("cloud:{digest}:{e}:{c}");
            let batches = match field {
                "messages" => messages(value, waba, prefix, &prior, &id_base, received)
                    .into_iter()
                    .collect(),
                "phone_number_quality_update" => quality(value, &labelled, &id_base, received),
                "account_update" => account(value, waba, &labelled, &id_base, received),
                _ => Vec::new(),
            };
            if !fields.iter().any(|f| f == field) {
                fields.push(field.to_owned());
            }
            for batch in batches {
                let Mapped::Events {
                    session, events: e, ..
                } = batch.finish(String::new())
                else {
                    continue;
                };
                first.get_or_insert(session);
                events.extend(e);
            }
        }
    }
    let event = if fields.is_empty() {
        "none".to_owned()
    } else {
        fields.join(",")
    };
    match first {
        Some(session) if !events.is_empty() => Ok(Mapped::Events {
            event,
            session,
            events,
        }),
        _ => Ok(Mapped::Ignored { event }),
    }
}

/// `messages`: the number's sends, acks and inbound messages.
fn messages(
    value: &Value,
    waba: Option<&str>,
    prefix: &str,
    prior: &impl Fn(&SessionId) -> Prior,
    id_base: &str,
    received: Timestamp,
) -> Option<Batch> {
    let metadata = value.get("metadata")?;
    let number = text(metadata, "phone_number_id")?;
    let session = session_id("metadata.phone_number_id", prefix, number).ok()?;
    let prior = prior(&session);
    let mut batch = Batch::new(session, received, id_base.to_owned());
    // No socket: it is there as long as Meta posts for it.
    if prior.state != Some(SessionState::Connected) {
        batch.state(SessionState::Connected, Some("cloud_api".into()));
    }
    batch.no_keepalives(&prior);
    batch.labels(
        &prior,
        &[
            (DISPLAY_NUMBER, text(metadata, "display_phone_number")),
            (WABA, waba),
        ],
    );
    for status in value
        .get("statuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(id) = text(status, "id").filter(|i| !i.is_empty()) else {
            continue;
        };
        match text(status, "status") {
            Some("sent") => {
                batch.message("cloud-msg", true, Some(id));
                batch.ack("cloud", id, AckStatus::Server, None, None);
            }
            Some("delivered") => batch.ack("cloud", id, AckStatus::Delivered, None, None),
            Some("read") => batch.ack("cloud", id, AckStatus::Read, None, None),
            Some("failed") => {
                let error = status
                    .get("errors")
                    .and_then(Value::as_array)
                    .and_then(|e| e.first());
                let code = error.and_then(|e| error_code(e.get("code")));
                let detail = error.and_then(|e| text(e, "title"));
                batch.message("cloud-msg", true, Some(id));
                batch.ack("cloud", id, AckStatus::Error, code, detail);
            }
            _ => {}
        }
    }
    for message in value
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        batch.message("cloud-msg", false, text(message, "id"));
    }
    Some(batch)
}

/// `phone_number_quality_update`: the number by its display number.
fn quality(
    value: &Value,
    labelled: &impl Fn(&str, &str) -> Vec<SessionId>,
    id_base: &str,
    received: Timestamp,
) -> Vec<Batch> {
    let (Some(display), Some(event)) = (
        text(value, "display_phone_number"),
        text(value, "event").filter(|e| !e.is_empty()),
    ) else {
        return Vec::new();
    };
    let tier = text(value, "current_limit").map(|t| clip(t, 64));
    labelled(DISPLAY_NUMBER, display)
        .into_iter()
        .map(|session| {
            let mut batch = Batch::new(session, received, id_base.to_owned());
            batch.push(EventKind::Quality {
                event: clip(event, 64).into(),
                tier: tier.clone().map(Into::into),
                rating: None,
            });
            batch
        })
        .collect()
}

/// `account_update`: restrictions, a disabled account, its reinstatement.
fn account(
    value: &Value,
    waba: Option<&str>,
    labelled: &impl Fn(&str, &str) -> Vec<SessionId>,
    id_base: &str,
    received: Timestamp,
) -> Vec<Batch> {
    let mut restrictions: Vec<(&str, Option<Timestamp>, bool)> = Vec::new();
    let deleted = text(value, "event") == Some("ACCOUNT_DELETED");
    match text(value, "event") {
        Some("ACCOUNT_RESTRICTION") => {
            for r in value
                .get("restriction_info")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let code = match text(r, "restriction_type") {
                    Some("RESTRICTED_BIZ_INITIATED_MESSAGING") => "BIZ_INITIATED_BLOCK",
                    Some("RESTRICTED_CUSTOMER_INITIATED_MESSAGING") => "CUSTOMER_INITIATED_BLOCK",
                    Some("RESTRICTED_ADD_PHONE_NUMBER_ACTION") => "ADD_NUMBER_BLOCK",
                    _ => "ACCOUNT_RESTRICTION",
                };
                restrictions.push((code, expiration(r.get("expiration")), false));
            }
        }
        Some("DISABLED_UPDATE") => {
            match value
                .get("ban_info")
                .and_then(|b| text(b, "waba_ban_state"))
            {
                Some("DISABLE") => restrictions.push(("WABA_DISABLED", None, false)),
                Some("SCHEDULE_FOR_DISABLE") => {
                    restrictions.push(("WABA_DISABLE_SCHEDULED", None, false))
                }
                Some("REINSTATE") => restrictions.push(("WABA_DISABLED", None, true)),
                _ => {}
            }
        }
        _ => {}
    }
    if restrictions.is_empty() && !deleted {
        return Vec::new();
    }
    let sessions = match (text(value, "phone_number"), waba) {
        (Some(number), _) if !number.is_empty() => labelled(DISPLAY_NUMBER, number),
        (_, Some(waba)) => labelled(WABA, waba),
        _ => Vec::new(),
    };
    sessions
        .into_iter()
        .map(|session| {
            let mut batch = Batch::new(session, received, id_base.to_owned());
            if deleted {
                // The account is gone: its numbers are retired, not paged.
                batch.push(EventKind::Retire {
                    reason: Some("account_update ACCOUNT_DELETED".into()),
                });
            }
            for (code, until, lifted) in &restrictions {
                if let Ok(code) = wapulse_core::ErrorCode::parse(code) {
                    batch.push(EventKind::Restriction {
                        code,
                        until: *until,
                        lifted: *lifted,
                    });
                }
            }
            batch
        })
        .collect()
}

/// A restriction's expiration: RFC 3339 (Meta writes the offset without a
/// colon, `+0000`) or Unix seconds.
fn expiration(value: Option<&Value>) -> Option<Timestamp> {
    match value? {
        Value::Number(n) => n.as_i64().map(|s| Timestamp::from_millis(s * 1000)),
        Value::String(s) => Timestamp::parse_rfc3339(s).ok().or_else(|| {
            // `…+0000` → `…+00:00`
            let (head, tail) = s.split_at(s.len().checked_sub(2)?);
            Timestamp::parse_rfc3339(&format!("{head}:{tail}")).ok()
        }),
        _ => None,
    }
}

fn clip(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_expirations_read_with_or_without_the_offset_colon() {
        let want = Timestamp::parse_rfc3339("2030-01-20T19:31:16Z").unwrap();
        for v in [
            serde_json::json!("2030-01-20T19:31:16+0000"),
            serde_json::json!("2030-01-20T19:31:16+00:00"),
            serde_json::json!(1_895_167_876),
        ] {
            assert_eq!(expiration(Some(&v)), Some(want), "{v}");
        }
        assert_eq!(expiration(Some(&serde_json::json!("soon"))), None);
    }
}
