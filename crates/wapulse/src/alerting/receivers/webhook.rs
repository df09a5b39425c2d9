//! Generic webhooks: the group message as JSON, signed per the Standard
//! Webhooks convention: `webhook-id` (the outbox row: the same on every
//! retry, so receivers can drop repeats), `webhook-timestamp` (Unix
//! seconds) and `webhook-signature` = `v1,` + base64 of HMAC-SHA256 over
//! `{id}.{timestamp}.{body}`. A secret written `whsec_<base64>` is that
//! key; any other text is used as the key's bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use wapulse_core::Timestamp;
use wapulse_core::grouping::GroupMessage;

use crate::alerting::store::OutboxRow;
use crate::secret::Secret;

/// The key bytes of a secret.
pub fn key_bytes(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(|b64| STANDARD.decode(b64).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// `v1,<base64 signature>` of `{id}.{timestamp}.{body}`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&key_bytes(secret)).expect("HMAC takes keys of any size");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The JSON body.
pub fn body(receiver: &str, message: &GroupMessage) -> serde_json::Value {
    serde_json::json!({
        "version": "1",
        "receiver": receiver,
        "status": message.status,
        "groupKey": message.group_key,
        "groupLabels": message.group_labels,
        "repeat": message.repeat,
        "firing": message.firing,
        "resolved": message.resolved,
        "firingTotal": message.firing_total,
        "resolvedTotal": message.resolved_total,
    })
}

/// The signed request.
pub fn request(
    builder: reqwest::RequestBuilder,
    receiver: &str,
    row: &OutboxRow,
    message: &GroupMessage,
    secret: Option<&Secret>,
    now: Timestamp,
) -> reqwest::RequestBuilder {
    let body = serde_json::to_vec(&body(receiver, message)).expect("JSON values serialize");
    let id = format!("msg_wapulse_{}", row.id);
    let timestamp = now.as_millis() / 1000;
    let mut builder = builder
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string());
    if let Some(secret) = secret {
        builder = builder.header(
            "webhook-signature",
            sign(secret.expose(), &id, timestamp, &body),
        );
    }
    builder.body(body)
}
