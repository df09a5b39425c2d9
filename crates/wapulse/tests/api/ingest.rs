//! Event ingest: formats, idempotency, and every bad-input case with
//! nothing applied.

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn json_array_single_object_and_ndjson_are_accepted() {
    let app = spawn_app().await;
    let (code, a) = app
        .post_events(json!([{"type": "state", "state": "connected"}, {"type": "heartbeat"}]))
        .await;
    assert_eq!((code, a), (200, json!({"accepted": 2, "duplicates": 0})));
    let (code, a) = app
        .post_events(json!({"type": "heartbeat", "session": "one"}))
        .await;
    assert_eq!((code, a), (200, json!({"accepted": 1, "duplicates": 0})));
    let ndjson = "{\"type\":\"heartbeat\",\"session\":\"nd\"}\n\n{\"type\":\"message\",\"session\":\"nd\",\"direction\":\"inbound\",\"count\":3}\n";
    let r = app.post_raw("application/x-ndjson", ndjson).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"accepted": 2, "duplicates": 0})
    );
    let o = app.get_json("/sessions/nd/observe", 200).await;
    assert_eq!(o["messages"]["inbound"], 3);
    assert_eq!(o["heartbeat"]["count"], 1);
}

#[tokio::test]
async fn repeated_event_ids_are_acknowledged_and_ignored() {
    let app = spawn_app().await;
    let batch = json!([
        {"id": "e1", "type": "state", "state": "reconnecting"},
        {"id": "e2", "type": "state", "state": "reconnecting"},
        {"id": "e1", "type": "state", "state": "reconnecting"},
    ]);
    let (_, a) = app.post_events(batch.clone()).await;
    assert_eq!(a, json!({"accepted": 2, "duplicates": 1}));
    let (_, a) = app.post_events(batch).await;
    assert_eq!(a, json!({"accepted": 0, "duplicates": 3}));
    let o = app.get_json("/session/observe", 200).await;
    assert_eq!(o["reconnect"]["attempts"], 2);
}

#[tokio::test]
async fn session_path_sets_the_session_and_refuses_another() {
    let app = spawn_app().await;
    let (code, _) = app
        .post_to(
            "/v1/sessions/gw-1/events",
            json!([{"type": "state", "state": "connected"}]),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        app.get_json("/sessions/gw-1/health", 200).await["state"],
        "connected"
    );
    let (code, e) = app
        .post_to(
            "/v1/sessions/gw-1/events",
            json!([{"session": "gw-2", "type": "heartbeat"}]),
        )
        .await;
    assert_eq!(code, 400);
    assert_eq!(e["field"], "session");
    let (code, e) = app.post_to("/v1/sessions/bad%20id/events", json!([])).await;
    assert_eq!((code, e["field"].clone()), (400, json!("id")));
}

#[tokio::test]
async fn bad_input_is_rejected_whole_with_index_and_field() {
    let app = spawn_app().await;
    app.ingest(json!([{"type": "state", "state": "connected"}]))
        .await;
    let before_events = app.events_applied().await;
    let before = app.get_json("/session/observe", 200).await;
    let good = json!({"type": "state", "state": "reconnecting"});
    let cases: Vec<(Value, usize, &str, &str)> = vec![
        (json!([good, {"type": "teleport"}]), 1, "type", "teleport"),
        (json!([good, {"state": "connected"}]), 1, "type", "required"),
        (
            json!([good, good, {"type": "state", "state": "asleep"}]),
            2,
            "state",
            "asleep",
        ),
        (
            json!([{"type": "heartbeat", "session": "no spaces"}, good]),
            0,
            "session",
            "' '",
        ),
        (
            json!([good, {"type": "heartbeat", "at": in_future(600)}]),
            1,
            "at",
            "future",
        ),
        (
            json!([good, {"type": "heartbeat", "at": "yesterday"}]),
            1,
            "at",
            "yesterday",
        ),
        (
            json!([good, {"type": "validation", "valid": "yes"}]),
            1,
            "valid",
            "yes",
        ),
        (
            json!([good, {"type": "counter", "name": "x", "delta": -1}]),
            1,
            "delta",
            "-1",
        ),
    ];
    for (body, index, field, needle) in cases {
        let (code, e) = app.post_events(body.clone()).await;
        assert_eq!(code, 400, "{body}: {e}");
        assert_eq!(e["index"], index, "{body}: {e}");
        assert_eq!(e["field"], field, "{body}: {e}");
        assert!(e["error"].as_str().unwrap().contains(needle), "{body}: {e}");
    }
    // Not an array of objects, not JSON at all.
    for body in ["[1, 2]", "{\"type\":", "42"] {
        let r = app.post_raw("application/json", body).await;
        assert_eq!(r.status(), 400, "{body}");
        assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    }
    let r = app
        .post_raw(
            "application/x-ndjson",
            "{\"type\":\"heartbeat\"}\nnot json\n",
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["index"], 1);
    let r = app.post_raw("text/csv", "a,b").await;
    assert_eq!(r.status(), 415);

    // Nothing of any rejected batch was applied.
    assert_eq!(app.events_applied().await, before_events);
    let after = app.get_json("/session/observe", 200).await;
    assert_eq!(after["reconnect"], before["reconnect"]);
    assert_eq!(after["session"]["state"], "connected");
    assert_eq!(app.get_json("/sessions?limit=1000", 200).await["total"], 1);
}

#[tokio::test]
async fn oversized_body_and_batch_get_413() {
    let app = spawn_with(|s| {
        s.max_body_bytes = 4096;
        s.max_batch_events = 5;
    })
    .await;
    let big = Value::Array(vec![
        json!({"type": "state", "state": "connected", "reason": "x".repeat(1000)});
        8
    ]);
    let (code, e) = app.post_events(big).await;
    assert_eq!(code, 413, "{e}");
    assert!(e["error"].as_str().unwrap().contains("4096"), "{e}");
    let many = Value::Array(vec![json!({"type": "heartbeat"}); 6]);
    let (code, e) = app.post_events(many).await;
    assert_eq!(code, 413);
    assert!(
        e["error"].as_str().unwrap().contains("max_batch_events"),
        "{e}"
    );
    assert_eq!(app.events_applied().await, 0);
}

/// A browser on another site can post a body with no Content-Type (or as
/// text/plain, or a form) without asking first: ingest takes only JSON and
/// NDJSON, named.
#[tokio::test]
async fn a_body_without_a_content_type_is_refused() {
    let app = spawn_app().await;
    let body = r#"[{"session":"x","type":"state","state":"logged_out"}]"#;
    for path in ["/v1/events", "/v1/webhooks/waha", "/v1/webhooks/evolution"] {
        let r = app
            .client
            .post(app.url(path))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 415, "{path}");
        let e: serde_json::Value = r.json().await.unwrap();
        assert!(e["error"].as_str().unwrap().contains("Content-Type"), "{e}");
    }
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ] {
        let r = app.post_raw(ct, body).await;
        assert_eq!(r.status(), 415, "{ct}");
    }
    assert_eq!(app.events_applied().await, 0);
}

/// The review's finding: any client could invent sessions (3.4 KB each)
/// and platform metric names (each batch copies the map) without end. Past
/// `max_sessions`, or past 1,000 metric names, a batch is refused whole
/// (409 naming the cap); known sessions keep ingesting.
#[tokio::test]
async fn a_batch_past_max_sessions_or_the_metric_names_is_refused_whole() {
    // The default session and two more.
    let app = spawn_with(|s| s.max_sessions = 3).await;
    app.ingest(json!([
        {"session": "a", "type": "state", "state": "connected"},
        {"session": "b", "type": "state", "state": "connected"},
    ]))
    .await;
    let before = app.events_applied().await;
    let (code, e) = app
        .post_events(json!([
            {"session": "a", "type": "heartbeat"},
            {"session": "c", "type": "state", "state": "connected"},
        ]))
        .await;
    assert_eq!(code, 409, "{e}");
    assert!(e["error"].as_str().unwrap().contains("max_sessions"), "{e}");
    assert_eq!(app.events_applied().await, before, "nothing of it applied");
    assert_eq!(app.get_json("/sessions", 200).await["total"], 3);
    app.ingest(json!([{"session": "a", "type": "heartbeat"}]))
        .await;

    // The seed's own counters and gauges count too.
    let platform = app.state.model.snapshot();
    let known = platform.platform().counters.len() + platform.platform().gauges.len();
    let room = 1000 - known;
    let names: Vec<_> = (0..=room)
        .map(|i| json!({"session": "a", "type": "counter", "name": format!("c_{i}"), "delta": 1}))
        .collect();
    let (code, e) = app.post_events(json!(names)).await;
    assert_eq!(code, 409, "{e}");
    assert!(e["error"].as_str().unwrap().contains("1000"), "{e}");
    let (code, _) = app.post_events(json!(names[..room])).await;
    assert_eq!(code, 200);
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(
        metrics.contains("wapulse_ingest_events_total{outcome=\"rejected\"} 2"),
        "refusals are counted"
    );
}
