//! The seed's session API, field for field and type for type.

use serde_json::{Value, json};

use crate::support::*;

fn assert_type(v: &Value, path: &str, want: &str) {
    let got = match v.pointer(path) {
        None => panic!("missing {path} in {v}"),
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    };
    assert!(
        want.split('|').any(|w| w == got),
        "{path}: want {want}, got {got} in {v}"
    );
}

/// Connected an hour ago, a heartbeat every 30 s since, the last 5 s ago.
async fn healthy_default(app: &TestApp) {
    let mut events = vec![
        json!({"type": "state", "state": "connecting", "at": ago(3600)}),
        json!({"type": "auth", "method": "session_restore", "at": ago(3600)}),
        json!({"type": "state", "state": "connected", "at": ago(3600)}),
        json!({"type": "credentials_written", "at": ago(60)}),
    ];
    events.extend(
        (0..120).map(|i| json!({"type": "heartbeat", "at": ago(3575 - i * 30), "rtt_ms": 80})),
    );
    app.ingest(Value::Array(events)).await;
}

#[tokio::test]
async fn health_has_the_seed_fields_and_types() {
    let app = spawn_app().await;
    healthy_default(&app).await;
    let h = app.get_json("/session/health", 200).await;
    for (path, ty) in [
        ("/status", "string"),
        ("/state", "string"),
        ("/connected", "boolean"),
        ("/heartbeatOk", "boolean"),
        ("/alertCount", "number"),
        ("/uptime", "number"),
        ("/_responseTime", "string"),
    ] {
        assert_type(&h, path, ty);
    }
    assert_eq!(h["status"], "ok");
    assert_eq!(h["state"], "connected");
    assert_eq!(h["connected"], true);
    assert_eq!(h["heartbeatOk"], true);
    assert_eq!(h["alertCount"], 0);
    let uptime = h["uptime"].as_u64().unwrap();
    assert!((3_600_000..3_700_000).contains(&uptime), "{uptime}");
    let rt = h["_responseTime"].as_str().unwrap();
    let number = rt.strip_suffix("ms").expect("ends in ms");
    assert!(
        number.parse::<f64>().is_ok() && number.contains('.'),
        "{rt}"
    );
}

#[tokio::test]
async fn health_is_200_for_warning_and_503_for_critical() {
    let app = spawn_app().await;
    healthy_default(&app).await;
    app.ingest(json!([{"type": "state", "state": "qr_required"}]))
        .await;
    let h = app.get_json("/session/health", 200).await;
    assert_eq!(h["status"], "warning");
    assert_eq!(h["alertCount"], 1);
    app.ingest(json!([{"type": "state", "state": "logged_out"}]))
        .await;
    let h = app.get_json("/session/health", 503).await;
    assert_eq!(h["status"], "critical");
    assert_eq!(h["connected"], false);
}

#[tokio::test]
async fn observe_has_every_section_and_field_of_the_seed() {
    let app = spawn_app().await;
    healthy_default(&app).await;
    let o = app.get_json("/session/observe", 200).await;
    let fields = [
        ("/_meta/generatedAt", "string"),
        ("/_meta/responseTimeTarget", "string"),
        ("/_meta/version", "string"),
        ("/health/status", "string"),
        ("/health/alertCount", "number"),
        ("/health/uptime", "number"),
        ("/health/uptimeFormatted", "string"),
        ("/session/state", "string"),
        ("/session/stateChangedAt", "string"),
        ("/session/stateAge", "number"),
        ("/session/stateAgeFormatted", "string"),
        ("/session/initSuccessful", "boolean"),
        ("/session/authMethod", "string"),
        ("/reconnect/attempts", "number"),
        ("/reconnect/maxAttempts", "number"),
        ("/reconnect/attemptsRemaining", "number"),
        ("/reconnect/inProgress", "boolean"),
        ("/reconnect/latencyPercentiles/p50", "number|null"),
        ("/reconnect/latencyPercentiles/p90", "number|null"),
        ("/reconnect/latencyPercentiles/p99", "number|null"),
        ("/heartbeat/lastAt", "string"),
        ("/heartbeat/age", "number"),
        ("/heartbeat/ageFormatted", "string"),
        ("/heartbeat/count", "number"),
        ("/heartbeat/missed", "number"),
        ("/heartbeat/healthy", "boolean"),
        ("/auth/lastAuthAt", "string"),
        ("/auth/authAge", "number"),
        ("/auth/lastCredentialWriteAt", "string"),
        ("/auth/credentialAge", "number"),
        ("/auth/credentialFresh", "boolean"),
        ("/lock/held", "boolean"),
        ("/lock/heldBy", "null"),
        ("/lock/operation", "null"),
        ("/integrity/checksumValid", "boolean"),
        ("/integrity/validationFailures", "number"),
        ("/integrity/status", "string"),
        ("/circuitBreaker/open", "boolean"),
        ("/circuitBreaker/consecutiveFailures", "number"),
        ("/circuitBreaker/threshold", "number"),
        ("/alerts", "array"),
    ];
    for (path, ty) in fields {
        assert_type(&o, path, ty);
    }
    assert_eq!(o["_meta"]["responseTimeTarget"], "10ms");
    assert_eq!(o["_meta"]["version"], "1.0.0");
    assert!(o["_meta"]["generatedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(o["session"]["authMethod"], "session_restore");
    assert_eq!(o["session"]["stateAgeFormatted"], "1h");
    assert_eq!(o["health"]["uptimeFormatted"], "1h");
    assert_eq!(o["reconnect"]["maxAttempts"], 10);
    assert_eq!(o["reconnect"]["attemptsRemaining"], 10);
    // The heartbeat was 5 s old when sent; the answer formats its age as
    // it was when it was generated (a slow machine may add a second).
    let age = o["heartbeat"]["age"].as_u64().unwrap();
    assert!((5_000..15_000).contains(&age), "{age}");
    assert_eq!(
        o["heartbeat"]["ageFormatted"],
        wapulse_core::DurationMs::from_millis(age).formatted()
    );
    assert_eq!(o["auth"]["credentialFresh"], true);
    assert_eq!(o["integrity"]["status"], "healthy");
    assert_eq!(o["circuitBreaker"]["threshold"], 3);
    let changed = parse_ts(&o["session"]["stateChangedAt"]);
    let generated = parse_ts(&o["_meta"]["generatedAt"]);
    assert_eq!(
        generated.since(changed).as_millis() / 1000,
        o["session"]["stateAge"].as_u64().unwrap() / 1000
    );
}

#[tokio::test]
async fn observe_reports_null_for_unknown_times() {
    let app = spawn_app().await;
    let o = app.get_json("/session/observe", 200).await;
    for path in [
        "/heartbeat/lastAt",
        "/heartbeat/age",
        "/auth/lastAuthAt",
        "/auth/lastCredentialWriteAt",
        "/auth/credentialAge",
        "/session/authMethod",
        "/reconnect/latencyPercentiles/p50",
    ] {
        assert_type(&o, path, "null");
    }
}

#[tokio::test]
async fn observe_shows_reconnect_percentiles_lock_and_integrity() {
    let app = spawn_app().await;
    // One instant for every `at`, so the durations between them are exact
    // (separate `ago()` calls may straddle a millisecond).
    let t0 = wapulse::clock::now();
    let ago = |secs: u64| {
        t0.minus(wapulse_core::DurationMs::from_secs(secs))
            .to_rfc3339()
    };
    app.ingest(json!([
        {"type": "state", "state": "connected", "at": ago(60)},
        {"type": "state", "state": "reconnecting", "at": ago(50)},
        {"type": "state", "state": "connected", "at": ago(45)},
        {"type": "state", "state": "reconnecting", "at": ago(40)},
        {"type": "state", "state": "connected", "at": ago(28)},
        {"type": "heartbeat", "at": ago(12)},
        {"type": "lock_acquired", "held_by": "replica-1", "operation": "save-creds", "at": ago(10)},
        {"type": "validation", "valid": false, "detail": "bad mac", "at": ago(5)},
        {"type": "heartbeat"},
    ]))
    .await;
    let o = app.get_json("/session/observe", 200).await;
    assert_eq!(
        o["reconnect"]["latencyPercentiles"],
        json!({"p50": 5000, "p90": 12000, "p99": 12000})
    );
    assert_eq!(o["reconnect"]["lastDuration"], 12000);
    assert_eq!(o["reconnect"]["lastDurationFormatted"], "12s");
    assert_eq!(o["lock"]["held"], true);
    assert_eq!(o["lock"]["heldBy"], "replica-1");
    assert_eq!(o["lock"]["operation"], "save-creds");
    assert_eq!(o["integrity"]["checksumValid"], false);
    assert_eq!(o["integrity"]["validationFailures"], 1);
    assert_eq!(o["integrity"]["status"], "corrupted");
    assert_eq!(o["health"]["status"], "critical");
    let codes: Vec<&str> = o["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["SESSION_CORRUPTION", "VALIDATION_FAILURES"]);
}

#[tokio::test]
async fn alerts_endpoint_has_the_seed_shape() {
    let app = spawn_app().await;
    app.ingest(json!([
        {"type": "state", "state": "connected", "at": ago(120)},
        {"type": "heartbeat", "at": ago(65)},
    ]))
    .await;
    let a = app.get_json("/session/alerts", 200).await;
    assert_eq!(a["level"], "warning");
    assert_eq!(a["count"], 1);
    let alert = &a["alerts"][0];
    assert_eq!(alert["level"], "warning");
    assert_eq!(alert["code"], "HEARTBEAT_STALE");
    let message = alert["message"].as_str().unwrap();
    assert!(message.starts_with("No heartbeat for 1m"), "{message}");
    assert_eq!(alert["action"], "Connection may be degraded");
    assert_eq!(alert["threshold"], 60_000);
    assert!(a["checkedAt"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn thresholds_are_the_seed_defaults() {
    let app = spawn_app().await;
    let t = app.get_json("/session/thresholds", 200).await;
    assert_eq!(t["heartbeat_age_warning"], 60_000);
    assert_eq!(t["heartbeat_age_critical"], 300_000);
    assert_eq!(t["reconnect_attempts_warning"], 3);
    assert_eq!(t["reconnect_attempts_critical"], 7);
    assert_eq!(t["credential_age_warning"], 86_400_000);
    assert_eq!(t["credential_age_critical"], 604_800_000);
    assert_eq!(t["reconnect_latency_warning"], 30_000);
    assert_eq!(t["reconnect_latency_critical"], 120_000);
    assert_eq!(t["missed_heartbeats_warning"], 3);
    assert_eq!(t["missed_heartbeats_critical"], 10);
    assert_eq!(t["validation_failures_warning"], 1);
    assert_eq!(t["disconnection_critical"], 1_800_000);
}

#[tokio::test]
async fn per_session_routes_and_proxy_paths_answer_the_same() {
    let app = spawn_app().await;
    healthy_default(&app).await;
    app.ingest(json!([{"session": "tenant-7", "type": "state", "state": "qr_required"}]))
        .await;
    for (a, b) in [
        ("/session/health", "/api/whatsapp/session/health"),
        ("/session/health", "/sessions/default/health"),
        ("/session/alerts", "/api/whatsapp/session/alerts"),
        ("/session/alerts", "/sessions/default/alerts"),
    ] {
        let mut x = app.get_json(a, 200).await;
        let mut y = app.get_json(b, 200).await;
        for v in [&mut x, &mut y] {
            // Clocks move between the two requests; everything else must match.
            for clock in ["_responseTime", "checkedAt", "uptime"] {
                v.as_object_mut().unwrap().remove(clock);
            }
        }
        assert_eq!(x, y, "{a} vs {b}");
    }
    let o = app.get_json("/api/whatsapp/session/observe", 200).await;
    assert_eq!(o["session"]["id"], "default");
    let o = app.get_json("/sessions/tenant-7/observe", 200).await;
    assert_eq!(o["session"]["state"], "qr_required");
    let h = app.get_json("/sessions/tenant-7/health", 200).await;
    assert_eq!(h["status"], "warning");
    let t = app.get_json("/sessions/tenant-7/thresholds", 200).await;
    assert_eq!(t["heartbeat_age_warning"], 60_000);
    let (code, text) = app.get_text("/sessions/tenant-7/metrics").await;
    assert_eq!(code, 200);
    assert!(
        text.contains("wa_session_state{state=\"qr_required\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_session_is_404_and_bad_id_is_400() {
    let app = spawn_app().await;
    for suffix in ["health", "observe", "alerts", "metrics", "thresholds"] {
        let e = app
            .get_json(&format!("/sessions/nobody/{suffix}"), 404)
            .await;
        assert!(e["error"].as_str().unwrap().contains("nobody"), "{e}");
        let e = app
            .get_json(&format!("/sessions/bad%20id/{suffix}"), 400)
            .await;
        assert_eq!(e["field"], "id");
    }
    let e = app.get_json("/no/such/path", 404).await;
    assert!(e["error"].is_string());
}

#[tokio::test]
async fn sessions_list_filters_and_pages() {
    let app = spawn_app().await;
    let mut events = vec![];
    for i in 0..25 {
        let state = match i % 5 {
            0 => "logged_out",
            1 => "qr_required",
            _ => "connected",
        };
        events.push(json!({"session": format!("s{i:02}"), "type": "state", "state": state}));
    }
    app.ingest(Value::Array(events)).await;
    let all = app.get_json("/sessions?limit=1000", 200).await;
    assert_eq!(all["total"], 26, "25 + the default session");
    let critical = app.get_json("/sessions?status=critical", 200).await;
    assert_eq!(critical["total"], 5);
    assert!(
        critical["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "critical" && s["state"] == "logged_out")
    );
    let qr = app.get_json("/sessions?state=qr_required", 200).await;
    assert_eq!(qr["total"], 5);
    assert_eq!(qr["sessions"][0]["alertCount"], 1);
    let both = app
        .get_json("/sessions?state=connected&status=ok", 200)
        .await;
    assert_eq!(both["total"], 15);

    // Pages of 10 in id order, chained with `after`.
    let mut seen = vec![];
    let mut path = "/sessions?limit=10".to_owned();
    loop {
        let page = app.get_json(&path, 200).await;
        for s in page["sessions"].as_array().unwrap() {
            seen.push(s["id"].as_str().unwrap().to_owned());
        }
        match page["nextAfter"].as_str() {
            Some(after) => path = format!("/sessions?limit=10&after={after}"),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen.len(), 26);
    assert_eq!(seen, sorted);

    // Filtered pages chain too, and the last full page has no cursor.
    for filter in ["state=qr_required", "status=critical"] {
        let mut got = vec![];
        let mut path = format!("/sessions?limit=2&{filter}");
        loop {
            let page = app.get_json(&path, 200).await;
            assert_eq!(page["total"], 5, "{filter}");
            got.extend(page["sessions"].as_array().unwrap().iter().cloned());
            match page["nextAfter"].as_str() {
                Some(after) => path = format!("/sessions?limit=2&{filter}&after={after}"),
                None => break,
            }
        }
        assert_eq!(got.len(), 5, "{filter}");
        let exact = app
            .get_json(&format!("/sessions?limit=5&{filter}"), 200)
            .await;
        assert!(exact["nextAfter"].is_null(), "{filter}: {exact}");
    }

    for bad in [
        "status=bad",
        "state=asleep",
        "limit=0",
        "limit=abc",
        "limit=100000",
        "colour=red",
    ] {
        let e = app.get_json(&format!("/sessions?{bad}"), 400).await;
        assert!(e["error"].is_string(), "{bad}: {e}");
    }
}

/// `GET /session/health` is answered in front of the router (routes/fast.rs):
/// the answer must be the router's, and it must be counted the same way.
#[tokio::test]
async fn the_health_fast_path_answers_and_counts_as_the_router_does() {
    use http_body_util::BodyExt;
    use tower_service::Service;

    let app = spawn_app().await;
    healthy_default(&app).await;
    let mut router = api_router(app.state.clone());
    let t = &app.state.telemetry;
    let count = |status: &str| {
        t.http_requests
            .with_label_values(&["/session/health", "GET", status])
            .get()
    };
    let timed = || {
        t.http_duration
            .with_label_values(&["/session/health"])
            .get_sample_count()
    };
    // (body without the clock-dependent fields, uptime in ms)
    let split = |mut v: Value| {
        let o = v.as_object_mut().unwrap();
        o.remove("_responseTime").expect("_responseTime");
        let uptime = o.remove("uptime").and_then(|u| u.as_u64()).expect("uptime");
        (v, uptime)
    };
    for (status, event) in [(200u16, "connected"), (503, "logged_out")] {
        app.ingest(json!([{"type": "state", "state": event}])).await;
        // Over TCP: the fast path.
        let fast = app.get("/session/health").await;
        assert_eq!(fast.status().as_u16(), status);
        let fast_type = fast.headers()["content-type"].clone();
        let fast_body: Value = fast.json().await.unwrap();
        // Straight into the router.
        let request = axum::http::Request::get("/session/health")
            .body(axum::body::Body::empty())
            .unwrap();
        let routed = router.call(request).await.unwrap();
        assert_eq!(routed.status().as_u16(), status);
        assert_eq!(routed.headers()["content-type"], fast_type);
        let bytes = routed.into_body().collect().await.unwrap().to_bytes();
        let routed_body: Value = serde_json::from_slice(&bytes).unwrap();
        let ((fast, fast_up), (routed, routed_up)) = (split(fast_body), split(routed_body));
        assert_eq!(fast, routed);
        assert!(routed_up - fast_up < 60_000, "{fast_up} then {routed_up}");
    }
    // One of each answer from each path, every one counted and timed.
    assert_eq!((count("200"), count("503"), timed()), (2, 2, 4));
    // HEAD goes to the router, which answers it as a GET without a body.
    let head = app
        .client
        .head(app.url("/session/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status().as_u16(), 503);
    assert_eq!(head.bytes().await.unwrap().len(), 0);
}
