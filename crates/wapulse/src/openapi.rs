//! `GET /openapi.json`: an OpenAPI 3.1 description generated from the route
//! table, so every served route is described and nothing else is.

use serde_json::{Map, Value, json};

use wapulse_core::delivery::MAX_CODE_LEN;
use wapulse_core::event::{MAX_IDS, MAX_LABEL_LEN, MAX_TEXT_LEN};
use wapulse_core::labels::{MAX_CHANGES, MAX_NAME_LEN, MAX_VALUE_LEN, RESERVED};

use crate::auth::Access;
use crate::config::Settings;
use crate::routes::table;

/// A session id: what `SessionId::parse` accepts.
const SESSION_ID: &str = "^[A-Za-z0-9._:@-]{1,128}$";

/// The whole document, for the limits `settings` put in force.
pub fn document(settings: &Settings) -> Value {
    let mut paths = Map::new();
    for r in table() {
        let mut responses = Map::new();
        for (code, what) in r.responses {
            let content_type = if *code == 200 || *code == 503 {
                r.produces
            } else {
                "application/json"
            };
            // Every refusal is an `Error`; a health answer's 503 is the
            // health body itself (critical), described by its 200.
            let schema = if *code >= 400 && !(*code == 503 && r.access == Access::Open) {
                json!({ "$ref": "#/components/schemas/Error" })
            } else {
                json!({})
            };
            let content = if content_type == "application/json" {
                json!({ content_type: { "schema": schema } })
            } else {
                json!({ content_type: {} })
            };
            responses.insert(
                code.to_string(),
                json!({ "description": what, "content": content }),
            );
        }
        if r.access != Access::Open {
            responses.insert(
                "403".to_owned(),
                json!({
                    "description": "addressed to a host name not in allowed_hosts while reads are open",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
                }),
            );
        }
        let mut op = json!({
            "summary": r.summary,
            "operationId": operation_id(r.method.as_str(), r.path),
            "responses": responses,
        });
        let params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                // A session's id and a label name are checked; a silence
                // id, a label value or an Evolution event name is any text
                // (unknown: 404, "no data" or ignored).
                let schema = if name == "id"
                    && ["/sessions/", "/v1/sessions/", "/badge/"]
                        .iter()
                        .any(|p| r.path.starts_with(p))
                {
                    json!({ "type": "string", "pattern": SESSION_ID })
                } else if name == "label" {
                    json!({ "type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]{0,63}$" })
                } else {
                    json!({ "type": "string" })
                };
                json!({ "name": name, "in": "path", "required": true, "schema": schema })
            })
            .collect();
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        match r.access {
            Access::Open => {}
            Access::Read => op["security"] = json!([{ "readToken": [] }, {}]),
            Access::Ingest | Access::Webhook => op["security"] = json!([{ "ingestToken": [] }, {}]),
            // The signature in the body's header, or the ingest token.
            Access::Signed => op["security"] = json!([{ "ingestToken": [] }, {}]),
            Access::Admin => op["security"] = json!([{ "adminToken": [] }, {}]),
            Access::Metrics => {
                op["security"] = json!([{ "metricsToken": [] }, { "metricsQueryToken": [] }])
            }
        }
        if r.request == Some("Silence") {
            op["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Silence" } } }
            });
        } else if let Some(
            name @ ("WahaWebhook"
            | "EvolutionWebhook"
            | "EvolutionWebhookByEvent"
            | "WhatsappCloudWebhook"),
        ) = r.request
        {
            op["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{name}") } } }
            });
        } else if r.request == Some("Events") {
            op["requestBody"] = json!({
                "required": true,
                "content": {
                    "application/json": { "schema": { "oneOf": [
                        { "type": "array", "maxItems": settings.max_batch_events,
                          "items": { "$ref": "#/components/schemas/Event" } },
                        { "$ref": "#/components/schemas/Event" }
                    ] } },
                    "application/x-ndjson": { "schema": { "type": "string" } }
                }
            });
        }
        let entry = paths
            .entry(r.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[r.method.as_str().to_ascii_lowercase()] = op;
    }
    let silence = json!({
        "type": "object",
        "required": ["matchers", "endsAt", "createdBy", "comment"],
        "additionalProperties": false,
        "properties": {
            "id": { "type": ["string", "null"], "description": "replace this silence (absent or null: a new one)" },
            "matchers": { "type": "array", "minItems": 1, "maxItems": 16, "items": {
                "type": "object", "required": ["name", "value"], "additionalProperties": false,
                "properties": {
                    "name": { "type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$" },
                    "value": { "type": "string", "maxLength": wapulse_core::matcher::MAX_MATCHER_LEN },
                    "isRegex": { "type": "boolean" }
                }
            } },
            "startsAt": { "type": ["string", "null"], "format": "date-time", "description": "absent or null: now" },
            "endsAt": { "type": "string", "format": "date-time" },
            "createdBy": { "type": "string", "minLength": 1, "maxLength": 1024 },
            "comment": { "type": "string", "minLength": 1, "maxLength": 1024 }
        }
    });
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "wapulse",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Operator-grade observability for WhatsApp session fleets."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "readToken": { "type": "http", "scheme": "bearer", "description": "READ_TOKEN, when configured" },
                "ingestToken": { "type": "http", "scheme": "bearer", "description": "INGEST_TOKEN, when configured" },
                "adminToken": { "type": "http", "scheme": "bearer", "description": "ADMIN_TOKEN, else INGEST_TOKEN, when configured" },
                "metricsToken": { "type": "http", "scheme": "bearer", "description": "METRICS_TOKEN" },
                "metricsQueryToken": { "type": "apiKey", "in": "query", "name": "token", "description": "METRICS_TOKEN" }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "description": "Every 4xx and 5xx answer of a JSON route: what is wrong, and where",
                    "required": ["error"],
                    "properties": {
                        "error": { "type": "string" },
                        "field": { "type": "string", "description": "the field or parameter at fault" },
                        "index": { "type": "integer", "minimum": 0, "description": "the event's index in the batch" }
                    }
                }
            }
        }
    });
    doc["components"]["schemas"]["Silence"] = silence;
    let (event, per_type) = event_schemas(settings);
    doc["components"]["schemas"]["Event"] = event;
    for (name, schema) in per_type {
        doc["components"]["schemas"][name] = schema;
    }
    // The envelopes as the gateways send them. Only the fields a delivery
    // cannot do without are constrained; the others are read when they
    // have the expected type and ignored otherwise, like unknown events
    // (202), so any value is valid for them.
    doc["components"]["schemas"]["WahaWebhook"] = json!({
        "type": "object",
        "description": "WAHA's webhook envelope, as WAHA sends it",
        "required": ["event", "session"],
        "properties": {
            "event": { "type": "string", "description": "session.status, engine.event, message, message.any; others: 202, ignored" },
            "session": gateway_name(&settings.gateways.waha_prefix, "the WAHA session name"),
            "id": { "description": "the delivery's id (a string), which makes a retry a duplicate" },
            "timestamp": { "description": "WAHA's time in Unix milliseconds (an integer); else the receive time" },
            "engine": { "description": "WEBJS, NOWEB or GOWS (a string): the `engine` label" },
            "payload": { "description": "the event's data" },
            "me": { "description": "the account ({\"id\": …}): the `me` label" }
        }
    });
    let evolution = |required: &[&str], event: Value, what: &str| {
        json!({
            "type": "object",
            "description": what,
            "required": required,
            "properties": {
                "event": event,
                "instance": gateway_name(&settings.gateways.evolution_prefix, "the Evolution instance name"),
                "data": { "description": "the event's data" },
                "date_time": { "description": "Evolution's time (not used: wapulse stamps the receive time)" }
            }
        })
    };
    doc["components"]["schemas"]["EvolutionWebhook"] = evolution(
        &["event", "instance"],
        json!({ "type": "string", "description": "connection.update, qrcode.updated, messages.upsert, …; others: 202, ignored" }),
        "Evolution API v2's webhook envelope, as Evolution sends it",
    );
    doc["components"]["schemas"]["WhatsappCloudWebhook"] = json!({
        "type": "object",
        "description": "The WhatsApp Cloud API webhook envelope, as Meta sends it; parts wapulse \
            cannot place (no phone number id, an update for a number never seen) are skipped, and \
            a delivery with nothing usable is acknowledged (202)",
        "properties": {
            "object": { "description": "whatsapp_business_account" },
            "entry": { "description": "[{id: <WABA id>, changes: [{field: messages | \
                phone_number_quality_update | account_update, value}]}]" }
        }
    });
    doc["components"]["schemas"]["EvolutionWebhookByEvent"] = evolution(
        &["instance"],
        json!({ "description": "the event (a string); when not a string, the path's event is used" }),
        "Evolution API v2's envelope with \"webhook by events\" on: `event` may be left to the path",
    );
    doc
}

fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for part in path.split(['/', '.', '{', '}']).filter(|p| !p.is_empty()) {
        id.push('_');
        id.push_str(part);
    }
    id
}

/// A gateway's session name: with `prefix` before it, it must make a
/// session id.
fn gateway_name(prefix: &str, what: &str) -> Value {
    let room = 128 - prefix.chars().count().min(127);
    json!({
        "type": "string",
        "pattern": format!("^[A-Za-z0-9._:@-]{{1,{room}}}$"),
        "description": format!("{what}; the session id is `{prefix}` + this name"),
    })
}

/// `type` or `[type, "null"]`: the server takes `null` as an absent
/// optional field.
fn nullable(mut schema: Value) -> Value {
    let t = schema["type"].take();
    schema["type"] = match t {
        Value::Array(mut types) => {
            types.push(json!("null"));
            Value::Array(types)
        }
        one => json!([one, "null"]),
    };
    schema
}

fn text(max: usize) -> Value {
    json!({ "type": "string", "maxLength": max })
}

fn non_negative_u32() -> Value {
    json!({ "type": "integer", "minimum": 0, "maximum": u32::MAX })
}

/// `Event` and the schemas it picks from: one per `type`, each naming its own fields (required
/// ones non-null, optional ones nullable) next to the envelope's. Fields of
/// other types are not looked at, so they are not constrained: gateways may
/// attach their own data.
fn event_schemas(settings: &Settings) -> (Value, Map<String, Value>) {
    let skew = settings.max_future_skew.formatted();
    let age = settings.max_event_age.formatted();
    let envelope = json!({
        "session": nullable(json!({ "type": "string", "pattern": SESSION_ID,
            "description": "the session; absent or null: the default session" })),
        "at": nullable(json!({ "type": "string", "format": "date-time",
            "description": format!("when it happened (RFC 3339); absent or null: when received. \
                At most {skew} ahead of the server's clock (max_future_skew) and {age} behind it \
                (max_event_age), else 400") })),
        "id": nullable(json!({ "type": "string", "minLength": 1, "maxLength": MAX_LABEL_LEN,
            "description": "idempotency key: a repeated id is acknowledged and ignored" })),
    });
    let state = json!({ "enum": ["connecting", "connected", "reconnecting", "disconnected",
        "qr_required", "logged_out", "circuit_open", "stopped"] });
    let reason = json!({ "type": ["string", "integer", "null"], "maxLength": MAX_TEXT_LEN,
        "minimum": -9.2e18, "maximum": 9.2e18,
        "description": "why: text, or a gateway close code (440, \"440: conflict\", connectionReplaced)" });
    let metric_name =
        json!({ "type": "string", "maxLength": 128, "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" });
    let reserved: Vec<Value> = RESERVED.iter().map(|n| json!(n)).collect();
    let labels = json!({
        "type": "object",
        "description": format!("names to set, or to remove (null). A session holds at most {} \
            labels: a change past that is refused with 409",
            wapulse_core::labels::MAX_LABELS),
        "maxProperties": MAX_CHANGES,
        "propertyNames": {
            "pattern": format!("^[a-zA-Z_][a-zA-Z0-9_]{{0,{}}}$", MAX_NAME_LEN - 1),
            "not": { "anyOf": [ { "enum": reserved }, { "pattern": "^__" } ] }
        },
        "additionalProperties": { "type": ["string", "null"], "maxLength": MAX_VALUE_LEN }
    });
    // (type, its fields, the required ones)
    let types: Vec<(&str, Value, &[&str])> = vec![
        (
            "state",
            json!({ "state": state, "reason": reason }),
            &["state"],
        ),
        (
            "heartbeat",
            json!({ "rtt_ms": nullable(non_negative_u32()) }),
            &[],
        ),
        ("heartbeat_failed", json!({}), &[]),
        (
            "keepalives",
            json!({ "expected": { "type": "boolean",
            "description": "whether the source sends regular keepalives" } }),
            &["expected"],
        ),
        (
            "auth",
            json!({ "method": { "enum": ["qr_scan", "pairing_code", "session_restore", "passkey"] } }),
            &["method"],
        ),
        (
            "credentials_written",
            json!({ "store": nullable(text(MAX_LABEL_LEN)) }),
            &[],
        ),
        (
            "validation",
            json!({ "valid": { "type": "boolean" }, "detail": nullable(text(MAX_TEXT_LEN)) }),
            &["valid"],
        ),
        (
            "lock_acquired",
            json!({ "held_by": text(MAX_LABEL_LEN), "operation": text(MAX_LABEL_LEN) }),
            &["held_by", "operation"],
        ),
        (
            "lock_released",
            json!({ "held_by": nullable(text(MAX_LABEL_LEN)),
            "operation": nullable(text(MAX_LABEL_LEN)) }),
            &[],
        ),
        (
            "circuit_breaker",
            json!({ "open": { "type": "boolean" },
            "consecutive_failures": nullable(non_negative_u32()) }),
            &["open"],
        ),
        (
            "message",
            json!({ "direction": { "enum": ["inbound", "outbound"] },
            "count": nullable(json!({ "type": "integer", "minimum": 0, "maximum": u32::MAX,
                "description": "how many; default: the number of ids, else 1. At least the \
                    number of ids, else 400" })),
            "ids": nullable(json!({ "type": "array", "maxItems": MAX_IDS,
                "items": { "type": "string", "minLength": 1, "maxLength": MAX_LABEL_LEN },
                "description": "outbound only (else 400): the gateway's ids of the messages \
                    sent, so that their acks can be followed" })) }),
            &["direction"],
        ),
        (
            "ack",
            json!({ "message": { "type": "string", "minLength": 1, "maxLength": MAX_LABEL_LEN,
                "description": "the gateway's id of the sent message" },
            "status": { "enum": ["server", "delivered", "read", "played", "error"] },
            "code": nullable(json!({ "type": ["string", "integer"],
                "pattern": format!("^[A-Za-z0-9_.-]{{1,{MAX_CODE_LEN}}}$"),
                "minimum": -999_999_999_999_999_999i64, "maximum": 999_999_999_999_999_999i64,
                "description": "an error ack's code (463, 429, 131048); error acks only, else 400" })),
            "detail": nullable(text(MAX_TEXT_LEN)) }),
            &["message", "status"],
        ),
        (
            "restriction",
            json!({ "code": { "type": ["string", "integer"],
                "pattern": format!("^[A-Za-z0-9_.-]{{1,{MAX_CODE_LEN}}}$"),
                "minimum": -999_999_999_999_999_999i64, "maximum": 999_999_999_999_999_999i64,
                "description": "the restriction's code (TOS_BLOCK, BIZ_INITIATED_BLOCK, WABA_DISABLED, 463, …)" },
            "until": nullable(json!({ "type": "string", "format": "date-time",
                "description": "when it ends, when known (RFC 3339)" })),
            "lifted": nullable(json!({ "type": "boolean",
                "description": "true: the restriction is over" })) }),
            &["code"],
        ),
        (
            "quality",
            json!({ "event": { "type": "string", "maxLength": 64,
                "description": "FLAGGED, UNFLAGGED, DOWNGRADE, UPGRADE, … (the Cloud API's phone_number_quality_update)" },
            "tier": nullable(json!({ "type": "string", "maxLength": 64,
                "description": "the messaging limit tier now (TIER_1K)" })),
            "rating": nullable(json!({ "type": "string", "maxLength": 64,
                "description": "GREEN, YELLOW, RED" })) }),
            &["event"],
        ),
        (
            "error",
            json!({ "kind": text(MAX_LABEL_LEN), "message": nullable(text(MAX_TEXT_LEN)) }),
            &["kind"],
        ),
        (
            "counter",
            json!({ "name": metric_name.clone(),
            "delta": { "type": ["number", "null"], "minimum": 0,
                "maximum": wapulse_core::event::MAX_COUNTER_DELTA, "description": "default 1" } }),
            &["name"],
        ),
        (
            "gauge",
            json!({ "name": metric_name, "value": { "type": "number" } }),
            &["name", "value"],
        ),
        ("labels", json!({ "labels": labels }), &["labels"]),
        (
            "retire",
            json!({ "reason": nullable(json!({ "type": "string", "maxLength": MAX_TEXT_LEN,
                "description": "why the session was retired; a retire takes the session out \
                    of every view and resolves its alerts as retired (not the default session: \
                    409)" })) }),
            &[],
        ),
    ];
    let mut one_of = Vec::new();
    let mut mapping = Map::new();
    let mut schemas = Map::new();
    for (name, fields, required) in types {
        let mut properties = envelope.as_object().cloned().unwrap_or_default();
        properties.insert("type".into(), json!({ "const": name }));
        if let Value::Object(own) = fields {
            properties.extend(own);
        }
        let mut required: Vec<&str> = required.to_vec();
        required.insert(0, "type");
        let schema_name = format!("Event_{name}");
        let reference = format!("#/components/schemas/{schema_name}");
        schemas.insert(
            schema_name,
            json!({ "type": "object", "required": required, "properties": properties }),
        );
        mapping.insert(name.into(), json!(reference));
        one_of.push(json!({ "$ref": reference }));
    }
    let event = json!({
        "description": "A session event: its `type` says which fields it carries",
        "oneOf": one_of,
        "discriminator": { "propertyName": "type", "mapping": mapping },
    });
    (event, schemas)
}
