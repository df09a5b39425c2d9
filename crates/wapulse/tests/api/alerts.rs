//! Every alert code reached through ingest, with back-dated `at` times.

use serde_json::{Value, json};

use crate::support::*;

async fn codes_for(app: &TestApp, session: &str, events: Value) -> Vec<(String, String)> {
    let (code, answer) = app
        .post_to(&format!("/v1/sessions/{session}/events"), events)
        .await;
    assert_eq!(code, 200, "{answer}");
    let a = app
        .get_json(&format!("/sessions/{session}/alerts"), 200)
        .await;
    a["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["code"].as_str().unwrap().to_owned(),
                x["level"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn each_alert_code_through_ingest() {
    let app = spawn_app().await;
    let connected = |secs: u64| json!({"type": "state", "state": "connected", "at": ago(secs)});
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "breaker",
            json!([connected(60), {"type": "heartbeat"}, {"type": "circuit_breaker", "open": true, "consecutive_failures": 5}]),
            "CIRCUIT_BREAKER_OPEN",
            "critical",
        ),
        (
            "corrupt",
            json!([connected(60), {"type": "heartbeat"}, {"type": "validation", "valid": false}]),
            "SESSION_CORRUPTION",
            "critical",
        ),
        (
            "corrupt2",
            json!([connected(60), {"type": "heartbeat"}, {"type": "validation", "valid": false}]),
            "VALIDATION_FAILURES",
            "warning",
        ),
        (
            "down",
            json!([connected(4000), {"type": "state", "state": "disconnected", "at": ago(1900)}]),
            "LONG_DISCONNECTION",
            "critical",
        ),
        (
            "storm",
            json!(
                (0..7)
                    .map(|i| json!({"type": "state", "state": "reconnecting", "at": ago(20 - i)}))
                    .collect::<Vec<_>>()
            ),
            "EXCESSIVE_RECONNECTS",
            "critical",
        ),
        (
            "flappy",
            json!(
                (0..3)
                    .map(|i| json!({"type": "state", "state": "reconnecting", "at": ago(20 - i)}))
                    .collect::<Vec<_>>()
            ),
            "RECONNECT_ATTEMPTS",
            "warning",
        ),
        (
            "dead",
            json!([connected(600), {"type": "heartbeat", "at": ago(360)}]),
            "HEARTBEAT_DEAD",
            "critical",
        ),
        (
            "stale",
            json!([connected(120), {"type": "heartbeat", "at": ago(70)}]),
            "HEARTBEAT_STALE",
            "warning",
        ),
        (
            "creds",
            json!([connected(60), {"type": "heartbeat"}, {"type": "credentials_written", "at": ago(25 * 3600)}]),
            "CREDENTIAL_AGE",
            "warning",
        ),
        (
            "oldcreds",
            json!([connected(60), {"type": "heartbeat"}, {"type": "credentials_written", "at": ago(170 * 3600)}]),
            "CREDENTIAL_AGE",
            "critical",
        ),
        (
            "missed",
            json!([connected(1200), {"type": "heartbeat", "at": ago(1200)}, {"type": "heartbeat", "at": ago(900)}, {"type": "heartbeat"}]),
            "MISSED_HEARTBEATS",
            "critical",
        ),
        (
            "slow",
            json!([connected(100), {"type": "state", "state": "reconnecting", "at": ago(45)}]),
            "SLOW_RECONNECT",
            "warning",
        ),
        (
            "locked",
            json!([connected(60), {"type": "heartbeat"}, {"type": "lock_acquired", "held_by": "replica-9", "operation": "reconnect", "at": ago(400)}]),
            "LOCK_HELD_TOO_LONG",
            "warning",
        ),
        (
            "gone",
            json!([connected(60), {"type": "state", "state": "logged_out"}]),
            "LOGGED_OUT",
            "critical",
        ),
        (
            "pair",
            json!([{"type": "state", "state": "qr_required"}]),
            "QR_REQUIRED",
            "warning",
        ),
        (
            "twice",
            json!([
                connected(300),
                {"type": "state", "state": "disconnected", "reason": 440, "at": ago(200)},
                {"type": "state", "state": "connected", "at": ago(199)},
                {"type": "state", "state": "disconnected", "reason": "440", "at": ago(100)},
                {"type": "state", "state": "connected", "at": ago(99)},
                {"type": "heartbeat"}
            ]),
            "SESSION_CONFLICT",
            "warning",
        ),
        (
            "deaf",
            {
                // A message a minute for four hours, none for the last 15
                // minutes, keepalives fine.
                let mut events = vec![connected(4 * 3600)];
                events.extend((15..4 * 60).rev().map(
                    |m| json!({"type": "message", "direction": "inbound", "at": ago(m * 60)}),
                ));
                events.push(json!({"type": "heartbeat"}));
                Value::Array(events)
            },
            "INBOUND_SILENCE",
            "critical",
        ),
        (
            "mute",
            json!([connected(900), {"type": "heartbeat"},
                {"type": "message", "direction": "outbound", "ids": ["a", "b", "c"], "at": ago(700)}]),
            "DELIVERY_STALLED",
            "critical",
        ),
        (
            "refused",
            {
                let ids: Vec<String> = (0..10).map(|i| format!("f{i}")).collect();
                let mut events = vec![
                    connected(600),
                    json!({"type": "heartbeat"}),
                    json!({"type": "message", "direction": "outbound", "ids": ids, "at": ago(300)}),
                ];
                events.extend((0..5).map(|i| {
                    json!({"type": "ack", "message": format!("f{i}"), "status": "error", "code": "479", "at": ago(290)})
                }));
                Value::Array(events)
            },
            "DELIVERY_FAILURES",
            "critical",
        ),
        (
            "timelocked",
            json!([connected(60), {"type": "heartbeat"},
                {"type": "ack", "message": "x", "status": "error", "code": 463}]),
            "ACCOUNT_RESTRICTED",
            "critical",
        ),
        (
            "lowered",
            json!([connected(60), {"type": "heartbeat"},
                {"type": "quality", "event": "DOWNGRADE", "tier": "TIER_250"}]),
            "NUMBER_QUALITY",
            "critical",
        ),
    ];
    let mut covered = std::collections::BTreeSet::new();
    for (session, events, code, level) in cases {
        let fired = codes_for(&app, session, events).await;
        assert!(
            fired.contains(&(code.to_owned(), level.to_owned())),
            "{session}: wanted {code}:{level}, got {fired:?}"
        );
        covered.insert(code);
    }
    assert_eq!(covered.len(), wapulse_core::AlertCode::ALL.len());
}

#[tokio::test]
async fn reconnecting_then_connected_clears_reconnect_alerts() {
    let app = spawn_app().await;
    let storm: Vec<Value> = (0..8)
        .map(|i| json!({"type": "state", "state": "reconnecting", "at": ago(10 - i)}))
        .collect();
    let fired = codes_for(&app, "s", Value::Array(storm)).await;
    assert!(fired.iter().any(|(c, _)| c == "EXCESSIVE_RECONNECTS"));
    let fired = codes_for(
        &app,
        "s",
        json!([{"type": "state", "state": "connected"}, {"type": "heartbeat"}]),
    )
    .await;
    assert!(fired.is_empty(), "{fired:?}");
    let o = app.get_json("/sessions/s/observe", 200).await;
    assert_eq!(o["reconnect"]["attempts"], 0);
    assert_eq!(o["reconnect"]["inProgress"], false);
}

/// The review's finding: silences had no bound (one 2.4 KB pattern took
/// 0.84 s of CPU and 160 MB). At most 16 matchers, each value or pattern at
/// most 1 KiB, a pattern whose automaton would be huge refused: each a 400
/// naming the limit, nothing saved.
#[tokio::test]
async fn a_silence_is_bounded_and_a_refusal_names_the_limit() {
    let app = spawn_app().await;
    let app = &app;
    let post = |matchers: serde_json::Value| {
        let body = json!({
            "matchers": matchers, "endsAt": in_future(3600),
            "createdBy": "t", "comment": "bounds"
        });
        async move { app.post_to("/v1/silences", body).await }
    };
    let many: Vec<_> = (0..17)
        .map(|i| json!({"name": "session", "value": format!("s{i}")}))
        .collect();
    let (code, e) = post(json!(many)).await;
    assert_eq!(code, 400, "{e}");
    assert!(e["error"].as_str().unwrap().contains("at most 16"), "{e}");
    let (code, e) = post(json!([{"name": "session", "value": "a".repeat(1025)}])).await;
    assert_eq!(code, 400, "{e}");
    assert!(e["error"].as_str().unwrap().contains("1024"), "{e}");
    let (code, e) =
        post(json!([{"name": "code", "value": "(\\w{1,50}){1,50}", "isRegex": true}])).await;
    assert_eq!(code, 400, "{e}");
    let (code, e) = post(json!([{"name": "code", "value": "HEARTBEAT_.*", "isRegex": true}])).await;
    assert_eq!(code, 200, "{e}");
    let listed = app.get_json("/v1/silences", 200).await;
    assert_eq!(listed["silences"].as_array().unwrap().len(), 1);
}
