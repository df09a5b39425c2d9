//! `GET /openapi.json`: an OpenAPI 3.1 description generated from the route
//! table, so every served route is described and nothing else is.

use serde_json::{Map, Value, json};

use crate::routes::{Access, table};

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in table() {
        let mut responses = Map::new();
        for (code, what) in r.responses {
            let content_type = if *code == 200 || *code == 503 {
                r.produces
            } else {
                "application/json"
            };
            responses.insert(
                code.to_string(),
                json!({ "description": what, "content": { content_type: {} } }),
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
                json!({
                    "name": name, "in": "path", "required": true,
                    "schema": { "type": "string", "pattern": "^[A-Za-z0-9._:@-]{1,128}$" }
                })
            })
            .collect();
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        match r.access {
            Access::Open => {}
            Access::Read => op["security"] = json!([{ "readToken": [] }, {}]),
            Access::Ingest | Access::Webhook => op["security"] = json!([{ "ingestToken": [] }, {}]),
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
        } else if let Some(name @ ("WahaWebhook" | "EvolutionWebhook")) = r.request {
            op["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{name}") } } }
            });
        } else if r.request == Some("Events") {
            op["requestBody"] = json!({
                "required": true,
                "content": {
                    "application/json": { "schema": { "oneOf": [
                        { "type": "array", "items": { "$ref": "#/components/schemas/Event" } },
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
            "id": { "type": "string", "description": "replace this silence" },
            "matchers": { "type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["name", "value"], "additionalProperties": false,
                "properties": {
                    "name": { "type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$" },
                    "value": { "type": "string" },
                    "isRegex": { "type": "boolean" }
                }
            } },
            "startsAt": { "type": "string", "format": "date-time" },
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
                "Event": {
                    "type": "object",
                    "required": ["type"],
                    "properties": {
                        "session": { "type": "string", "pattern": "^[A-Za-z0-9._:@-]{1,128}$" },
                        "type": { "enum": ["state", "heartbeat", "heartbeat_failed", "keepalives", "auth", "credentials_written", "validation",
                            "lock_acquired", "lock_released", "circuit_breaker", "message", "error", "counter", "gauge",
                            "labels"] },
                        "at": { "type": "string", "format": "date-time" },
                        "id": { "type": "string", "maxLength": 256 },
                        "state": { "enum": ["connecting", "connected", "reconnecting", "disconnected",
                            "qr_required", "logged_out", "circuit_open"] },
                        "reason": { "type": ["string", "integer"] },
                        "rtt_ms": { "type": "integer", "minimum": 0 },
                        "method": { "enum": ["qr_scan", "pairing_code", "session_restore", "passkey"] },
                        "store": { "type": "string" },
                        "valid": { "type": "boolean" },
                        "detail": { "type": "string" },
                        "held_by": { "type": "string" },
                        "operation": { "type": "string" },
                        "open": { "type": "boolean" },
                        "consecutive_failures": { "type": "integer", "minimum": 0 },
                        "direction": { "enum": ["inbound", "outbound"] },
                        "count": { "type": "integer", "minimum": 0 },
                        "kind": { "type": "string" },
                        "message": { "type": "string" },
                        "name": { "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" },
                        "delta": { "type": "number", "minimum": 0 },
                        "value": { "type": "number" },
                        "labels": {
                            "type": "object",
                            "description": "labels events: names to set (at most 16 per session) or remove (null)",
                            "propertyNames": { "pattern": "^[a-zA-Z_][a-zA-Z0-9_]{0,63}$" },
                            "additionalProperties": { "type": ["string", "null"], "maxLength": 128 }
                        }
                    }
                }
            }
        }
    });
    doc["components"]["schemas"]["Silence"] = silence;
    doc["components"]["schemas"]["Event"]["properties"]["expected"] = json!({
        "type": "boolean",
        "description": "keepalives events: whether the source sends regular keepalives"
    });
    doc["components"]["schemas"]["WahaWebhook"] = json!({
        "type": "object",
        "description": "WAHA's webhook envelope, as WAHA sends it",
        "required": ["event", "session"],
        "properties": {
            "id": { "type": "string" },
            "timestamp": { "type": "integer" },
            "session": { "type": "string" },
            "engine": { "type": "string" },
            "event": { "type": "string" },
            "payload": {},
            "me": { "type": ["object", "null"] }
        }
    });
    doc["components"]["schemas"]["EvolutionWebhook"] = json!({
        "type": "object",
        "description": "Evolution API v2's webhook envelope, as Evolution sends it",
        "required": ["instance"],
        "properties": {
            "event": { "type": "string" },
            "instance": { "type": "string" },
            "data": {},
            "date_time": { "type": "string" }
        }
    });
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
