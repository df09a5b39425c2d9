//! The ProSaaS platform endpoints and the OpenAPI description.

use std::collections::BTreeSet;

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn liveness_readiness_and_health() {
    let app = spawn_app().await;
    assert_eq!(app.get_json("/healthz", 200).await, json!({"status": "ok"}));
    assert_eq!(app.get_text("/livez").await, (200, "ok".to_owned()));
    let r = app.get_json("/readyz", 200).await;
    assert_eq!(r["ready"], true);
    assert_eq!(r["checks"]["model"], "ok");
    let (code, text) = app.get_text("/readyz?verbose").await;
    assert_eq!(code, 200);
    assert_eq!(text, "[+]model ok\n[+]store ok\nreadyz check passed\n");
    let (_, text) = app.get_text("/readyz?verbose&exclude=model").await;
    assert_eq!(
        text,
        "[+]store ok\n[+]model excluded: ok\nreadyz check passed\n"
    );
    let h = app.get_json("/api/health", 200).await;
    assert_eq!(h["status"], "healthy");
    assert_eq!(h["checks"]["model"]["ok"], true);
    assert_eq!(h["checks"]["store"]["ok"], true);
    assert_eq!(r["checks"]["store"], "ok");
    app.ingest(json!([{"session": "x", "type": "state", "state": "connected"}]))
        .await;
    assert_eq!(
        app.get_json("/health", 200).await,
        json!({"status": "ok", "sessions": 2})
    );
}

#[tokio::test]
async fn whatsapp_health_summarises_sessions() {
    let app = spawn_app().await;
    app.ingest(json!([
        {"session": "a", "type": "state", "state": "connected"},
        {"session": "b", "type": "state", "state": "logged_out"},
    ]))
    .await;
    // Levels and alerts are the evaluator's: read once it has judged the batch.
    alerts_after_writes(&app).await;
    let w = app.get_json("/health/whatsapp", 200).await;
    assert_eq!(w["status"], "critical");
    assert_eq!(w["sessions"]["total"], 3);
    assert_eq!(w["sessions"]["connected"], 1);
    assert_eq!(w["sessions"]["byState"]["logged_out"], 1);
    assert_eq!(w["sessions"]["byLevel"]["critical"], 1);
}

#[tokio::test]
async fn version_and_warmup() {
    let app = spawn_app().await;
    let v = app.get_json("/version", 200).await;
    assert!(v["build"].is_u64());
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["commit"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(wapulse_core::Timestamp::parse_rfc3339(v["buildTime"].as_str().unwrap()).is_ok());
    assert_eq!(app.get_json("/warmup", 200).await["status"], "warm");
}

#[tokio::test]
async fn openapi_describes_exactly_the_served_routes() {
    let app = spawn_app().await;
    let doc = app.get_json("/openapi.json", 200).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let described: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = table()
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    assert_eq!(described, served);
    // And every described route is really routed (not the 404 fallback).
    for (method, path) in &described {
        let concrete = path.replace("{id}", "default");
        let r = app
            .client
            .request(method.parse().unwrap(), app.url(&concrete))
            .json(&json!([]))
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert!(
            code != 404 || !body.contains("no such endpoint"),
            "{method} {path} is described but not served"
        );
    }
}

/// A value the server accepts for a required event field.
fn sample(field: &str) -> serde_json::Value {
    match field {
        "state" => json!("connected"),
        "expected" | "valid" | "open" => json!(true),
        "method" => json!("qr_scan"),
        "held_by" | "operation" | "kind" => json!("w1"),
        "direction" => json!("inbound"),
        "name" => json!("calls_started"),
        "value" => json!(1.5),
        "labels" => json!({"tenant": "acme"}),
        "message" => json!("3EB0C431C2A1B5E8F0AA"),
        "status" => json!("server"),
        "code" => json!("TOS_BLOCK"),
        "event" => json!("FLAGGED"),
        other => panic!("no sample for required field `{other}`"),
    }
}

#[tokio::test]
async fn openapi_describes_each_event_type_as_the_server_checks_it() {
    let app = spawn_app().await;
    let doc = app.get_json("/openapi.json", 200).await;
    let schemas = &doc["components"]["schemas"];
    let mapping = schemas["Event"]["discriminator"]["mapping"]
        .as_object()
        .unwrap();
    assert_eq!(schemas["Event"]["discriminator"]["propertyName"], "type");
    assert_eq!(mapping.len(), 19, "one schema per event type");
    for (kind, reference) in mapping {
        let name = reference.as_str().unwrap().rsplit('/').next().unwrap();
        let schema = &schemas[name];
        assert_eq!(schema["properties"]["type"]["const"], *kind);
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert_eq!(required[0], "type");
        // The required fields, and nothing else, make a valid event.
        let mut event = json!({"session": format!("doc-{kind}"), "type": kind});
        for field in &required[1..] {
            event[*field] = sample(field);
        }
        let (code, answer) = app.post_events(json!([event.clone()])).await;
        assert_eq!(code, 200, "{kind}: {event} -> {answer}");
        // Without any one of them the event is refused, naming the field.
        for field in &required[1..] {
            let mut short = event.clone();
            short.as_object_mut().unwrap().remove(*field);
            let (code, answer) = app.post_events(json!([short])).await;
            assert_eq!(code, 400, "{kind} without {field}: {answer}");
            assert_eq!(answer["field"], *field, "{answer}");
        }
        // Every optional field may be null, and null is taken as absent.
        for (field, property) in schema["properties"].as_object().unwrap() {
            if required.contains(&field.as_str()) {
                continue;
            }
            let types = property["type"].as_array();
            assert!(
                types.is_some_and(|t| t.contains(&json!("null"))),
                "{kind}.{field} is optional and the server takes null: {property}"
            );
            let mut with_null = event.clone();
            with_null[field] = serde_json::Value::Null;
            let (code, answer) = app.post_events(json!([with_null])).await;
            // A null session is the default session, which cannot be
            // retired.
            let refused = kind == "retire" && field == "session";
            assert_eq!(
                code,
                if refused { 409 } else { 200 },
                "{kind}.{field} = null: {answer}"
            );
        }
    }
    // The two cases a contract tester found: `auth` needs its method, and
    // a null id is an absent id.
    let auth = &schemas["Event_auth"]["required"];
    assert_eq!(*auth, json!(["type", "method"]));
    let (code, e) = app.post_events(json!([{"type": "auth"}])).await;
    assert_eq!((code, e["field"].clone()), (400, json!("method")));
    assert!(
        schemas["Event_state"]["properties"]["id"]["type"]
            .as_array()
            .unwrap()
            .contains(&json!("null"))
    );
    // Refusals are described: 409 for labels that do not fit, an `Error`
    // body on every JSON refusal, the health answer's own body on its 503.
    let ingest = &doc["paths"]["/v1/events"]["post"]["responses"];
    for code in ["400", "401", "409", "413", "415", "503"] {
        assert_eq!(
            ingest[code]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Error",
            "{code}"
        );
    }
    let health = &doc["paths"]["/session/health"]["get"]["responses"]["503"];
    assert_eq!(health["content"]["application/json"]["schema"], json!({}));
}
