//! `POST /v1/webhooks/waha`, `POST /v1/webhooks/evolution[/{event}]` and
//! `GET`/`POST /v1/webhooks/whatsapp-cloud`:
//! gateway deliveries, checked, mapped (`crate::gateways`) and applied
//! like any batch of events.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;
use wapulse_core::Timestamp;

use super::ApiError;
use super::ingest::{Body, body_or_error};
use crate::app::Shared;
use crate::clock;
use crate::gateways::{self, Mapped, Prior, Refused};
use crate::tenancy::Caller;

#[derive(Clone, Copy)]
enum Gateway {
    Waha,
    Evolution,
    WhatsappCloud,
}

impl Gateway {
    fn name(self) -> &'static str {
        match self {
            Gateway::Waha => "waha",
            Gateway::Evolution => "evolution",
            Gateway::WhatsappCloud => "whatsapp_cloud",
        }
    }
}

/// `GET /v1/webhooks/whatsapp-cloud`: Meta's subscription handshake
/// (`hub.mode=subscribe`, `hub.verify_token`, `hub.challenge`): the
/// challenge echoed only to the configured verify token.
pub(super) async fn whatsapp_cloud_handshake(
    State(state): State<Shared>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let get = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let Some(expected) = &state.settings.gateways.cloud_verify_token else {
        return ApiError::Forbidden(
            "no verify token is configured ([gateways.whatsapp_cloud] verify_token or \
             WHATSAPP_CLOUD_VERIFY_TOKEN): the subscription handshake is refused"
                .into(),
        )
        .into_response();
    };
    if get("hub.mode") != Some("subscribe") {
        return ApiError::invalid("hub.mode", "must be `subscribe` (Meta's webhook handshake)")
            .into_response();
    }
    let Some(challenge) = get("hub.challenge") else {
        return ApiError::invalid("hub.challenge", "is required (Meta's webhook handshake)")
            .into_response();
    };
    let given = get("hub.verify_token").unwrap_or_default();
    if !bool::from(given.as_bytes().ct_eq(expected.expose().as_bytes())) {
        return ApiError::Forbidden(
            "hub.verify_token does not match the configured verify token".into(),
        )
        .into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        challenge.to_owned(),
    )
        .into_response()
}

/// `POST /v1/webhooks/whatsapp-cloud`: with `app_secret` set, the
/// signature is the authentication (Meta sends no bearer token) and is
/// required even when a bearer token is also given; without it, the ingest
/// token is, and with neither the route is closed.
pub(super) async fn whatsapp_cloud(
    State(state): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        // The route's access (`Signed`) let the request in: by the ingest
        // token, or here by the signature.
        let gateways = &state.settings.gateways;
        let body = checked_body(&state, &headers, body)?;
        if let Some(secret) = &gateways.cloud_app_secret {
            verify_cloud_signature(&headers, &body, secret.expose())?;
        }
        let received = clock::now();
        let snapshot = state.model.snapshot();
        let mapped = gateways::whatsapp_cloud::map(
            &body,
            &gateways.cloud_prefix,
            |id| Prior::of(&snapshot, id),
            |name, value| {
                gateways::whatsapp_cloud::sessions_named(
                    &snapshot,
                    &gateways.cloud_numbers,
                    name,
                    value,
                )
            },
            received,
        );
        Ok::<_, ApiError>((mapped, received))
    }
    .await;
    finish(&state, &caller, Gateway::WhatsappCloud, result).await
}

/// Whether `given` (hex, any case) is the HMAC of `body` under `key`,
/// compared in constant time: WAHA's and Meta's signatures alike.
fn hmac_hex_matches<M: Mac + KeyInit>(key: &str, body: &[u8], given: &str) -> bool {
    let mut mac = <M as KeyInit>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    bool::from(
        given
            .trim()
            .to_ascii_lowercase()
            .as_bytes()
            .ct_eq(expected.as_bytes()),
    )
}

/// Meta signs with `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the
/// raw body with the app secret>`.
fn verify_cloud_signature(headers: &HeaderMap, body: &[u8], secret: &str) -> Result<(), ApiError> {
    let Some(given) = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
    else {
        return Err(ApiError::Unauthorized(
            "missing X-Hub-Signature-256: the app secret is set, so every Cloud API delivery \
             must be signed by Meta"
                .into(),
        ));
    };
    let Some(hex) = given.trim().strip_prefix("sha256=") else {
        return Err(ApiError::Unauthorized(
            "X-Hub-Signature-256 must read `sha256=<hex>`".into(),
        ));
    };
    if hmac_hex_matches::<Hmac<Sha256>>(secret, body, hex) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized(
            "X-Hub-Signature-256 does not match the body: wrong app secret, or the body was \
             changed"
                .into(),
        ))
    }
}

pub(super) async fn waha(
    State(state): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let body = checked_body(&state, &headers, body)?;
        if let Some(key) = &state.settings.gateways.waha_hmac_key {
            verify_waha_signature(&headers, &body, key.expose())?;
        }
        let received = clock::now();
        let snapshot = state.model.snapshot();
        let request_id = headers
            .get("x-webhook-request-id")
            .and_then(|v| v.to_str().ok());
        let mapped = gateways::waha::map(
            &body,
            request_id,
            &state.settings.gateways.waha_prefix,
            |id| Prior::of(&snapshot, id),
            received,
        );
        Ok::<_, ApiError>((mapped, received))
    }
    .await;
    finish(&state, &caller, Gateway::Waha, result).await
}

pub(super) async fn evolution(
    State(state): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    evolution_delivery(state, caller, headers, body, None).await
}

pub(super) async fn evolution_by_event(
    State(state): State<Shared>,
    caller: Caller,
    Path(event): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    evolution_delivery(state, caller, headers, body, Some(event)).await
}

async fn evolution_delivery(
    state: Shared,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
    path_event: Option<String>,
) -> Response {
    let result = checked_body(&state, &headers, body).map(|body| {
        let received = clock::now();
        let snapshot = state.model.snapshot();
        let mapped = gateways::evolution::map(
            &body,
            path_event.as_deref(),
            &state.settings.gateways.evolution_prefix,
            |id| Prior::of(&snapshot, id),
            received,
        );
        (mapped, received)
    });
    finish(&state, &caller, Gateway::Evolution, result).await
}

/// The body, if it is one wapulse reads: within the size limit, sent as
/// JSON (required: a browser on another site cannot post JSON without
/// asking first).
fn checked_body(state: &Shared, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let body = body_or_error(state, body)?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .map(|ct| ct.to_str().unwrap_or("").to_ascii_lowercase())
        .unwrap_or_default();
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence != "application/json" {
        let sent = if essence.is_empty() {
            "no Content-Type".to_owned()
        } else {
            format!("Content-Type `{essence}`")
        };
        return Err(ApiError::UnsupportedMediaType(format!(
            "{sent} is not accepted: gateway webhooks are application/json"
        )));
    }
    Ok(body)
}

/// WAHA signs with `X-Webhook-Hmac`: the hex HMAC-SHA512 of the raw body.
fn verify_waha_signature(headers: &HeaderMap, body: &[u8], key: &str) -> Result<(), ApiError> {
    let Some(given) = headers.get("x-webhook-hmac").and_then(|v| v.to_str().ok()) else {
        return Err(ApiError::Unauthorized(
            "missing X-Webhook-Hmac: waha_hmac_key is set, so every WAHA delivery must be \
             signed (set the same key in WAHA's webhook hmac.key)"
                .into(),
        ));
    };
    if let Some(alg) = headers
        .get("x-webhook-hmac-algorithm")
        .and_then(|v| v.to_str().ok())
        && !alg.eq_ignore_ascii_case("sha512")
    {
        return Err(ApiError::Unauthorized(format!(
            "X-Webhook-Hmac-Algorithm `{alg}` is not supported (sha512)"
        )));
    }
    if hmac_hex_matches::<Hmac<Sha512>>(key, body, given) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized(
            "X-Webhook-Hmac does not match the body: wrong key, or the body was changed".into(),
        ))
    }
}

async fn finish(
    state: &Shared,
    caller: &Caller,
    gateway: Gateway,
    result: Result<(Result<Mapped, Refused>, Timestamp), ApiError>,
) -> Response {
    let count = |outcome: &str, n: u64| {
        state
            .telemetry
            .webhooks
            .with_label_values(&[gateway.name(), outcome])
            .inc_by(n);
    };
    let (mapped, received) = match result {
        Ok(ok) => ok,
        Err(e) => {
            count("rejected", 1);
            return e.into_response();
        }
    };
    let (event, session, events) = match mapped {
        Err(refused) => {
            count("rejected", 1);
            return ApiError::BadRequest {
                message: format!(
                    "{} webhook: `{}` {}",
                    gateway.name(),
                    refused.field,
                    refused.problem
                ),
                index: None,
                field: Some(refused.field),
            }
            .into_response();
        }
        Ok(Mapped::Ignored { event }) => {
            count("ignored", 1);
            return (
                StatusCode::ACCEPTED,
                Json(json!({
                    "ignored": true,
                    "event": event,
                    "message": format!("{} event `{event}` is not mapped to session events; acknowledged and ignored", gateway.name()),
                })),
            )
                .into_response();
        }
        Ok(Mapped::Events {
            event,
            session,
            events,
        }) => (event, session, events),
    };
    if events.len() > state.settings.max_batch_events {
        count("rejected", 1);
        return ApiError::TooLarge(format!(
            "{} webhook: one delivery made {} events; the limit is {} (max_batch_events)",
            gateway.name(),
            events.len(),
            state.settings.max_batch_events
        ))
        .into_response();
    }
    if let Err((_, e)) = state.model.snapshot().check_labels(&events) {
        count("rejected", 1);
        return ApiError::bad_request(format!("{} webhook: {e}", gateway.name())).into_response();
    }
    let events = match super::ingest::in_scope(state, caller, events) {
        Ok(events) => events,
        Err(e) => {
            count("rejected", 1);
            return e.into_response();
        }
    };
    let total = events.len();
    match state.accept(events, received).await {
        Ok(outcome) => {
            let t = &state.telemetry.ingest_events;
            t.with_label_values(&["accepted"])
                .inc_by(outcome.accepted as u64);
            t.with_label_values(&["duplicate"])
                .inc_by(outcome.duplicates as u64);
            count(
                if outcome.accepted == 0 && total > 0 {
                    "duplicate"
                } else {
                    "mapped"
                },
                1,
            );
            Json(json!({
                "session": session,
                "event": event,
                "accepted": outcome.accepted,
                "duplicates": outcome.duplicates,
            }))
            .into_response()
        }
        Err(
            e @ (crate::app::NotTaken::OverCapacity(_) | crate::app::NotTaken::RetiresDefault(_)),
        ) => {
            count("rejected", 1);
            ApiError::from(e).into_response()
        }
        Err(e) => {
            count("unavailable", 1);
            ApiError::from(e).into_response()
        }
    }
}
