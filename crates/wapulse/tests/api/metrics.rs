//! `/metrics.json` exactly as the seed; `/metrics` and `/session/metrics`
//! valid for Prometheus (checked by promtool).

use std::time::Duration;

use serde_json::json;

use crate::support::*;

async fn busy_fleet(app: &TestApp) {
    app.ingest(json!([
        {"type": "state", "state": "connected", "at": ago(40)},
        {"type": "heartbeat", "at": ago(20)},
        {"type": "message", "direction": "inbound", "count": 150},
        {"type": "message", "direction": "outbound", "count": 200},
        {"type": "error", "kind": "send"},
        {"type": "counter", "name": "calls_started", "delta": 25},
        {"type": "counter", "name": "queue_jobs_enqueued", "delta": 500},
        {"type": "gauge", "name": "calls_active", "value": 3},
        {"type": "gauge", "name": "queue_depth", "value": 2.5},
        {"session": "tenant:1@s.whatsapp.net", "type": "state", "state": "reconnecting"},
        {"session": "t2", "type": "state", "state": "logged_out"},
        {"session": "t2", "type": "validation", "valid": false},
    ]))
    .await;
}

#[tokio::test]
async fn metrics_json_matches_the_seed() {
    let app = spawn_with(|s| s.metrics_token = secret("m")).await;
    busy_fleet(&app).await;
    let by_header = app
        .client
        .get(app.url("/metrics.json"))
        .bearer_auth("m")
        .send()
        .await
        .unwrap();
    assert_eq!(by_header.status(), 200);
    let m: serde_json::Value = by_header.json().await.unwrap();
    let by_query = app.get_json("/metrics.json?token=m", 200).await;
    assert_eq!(m["counters"], by_query["counters"]);
    assert_eq!(
        app.get_json("/metrics.json?token=wrong", 401).await["error"],
        "wrong token"
    );

    assert!(m["uptime_seconds"].is_f64());
    assert!(m["timestamp"].as_f64().unwrap() > 1.7e9);
    let c = &m["counters"];
    assert_eq!(c["whatsapp_inbound_messages"], 150);
    assert_eq!(c["whatsapp_outbound_messages"], 200);
    assert_eq!(c["whatsapp_errors"], 1);
    assert_eq!(c["calls_started"], 25);
    assert_eq!(c["queue_jobs_enqueued"], 500);
    for seed_counter in [
        "calls_completed",
        "calls_rejected_max_concurrent",
        "calls_errors",
        "queue_jobs_completed",
        "queue_jobs_failed",
        "queue_jobs_dead_letter",
    ] {
        assert_eq!(c[seed_counter], 0, "{seed_counter} present from the start");
    }
    assert_eq!(m["gauges"]["calls_active"], 3);
    assert_eq!(m["gauges"]["queue_depth"], 2.5);
    let keys: Vec<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 4, "{keys:?}");
}

#[tokio::test]
async fn session_metrics_has_the_seed_series_and_passes_promtool() {
    let app = spawn_app().await;
    busy_fleet(&app).await;
    let r = app.get("/session/metrics").await;
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = r.text().await.unwrap();
    for line in [
        "# TYPE wa_session_state gauge",
        "wa_session_state{state=\"connected\"} 1",
        "wa_session_state{state=\"reconnecting\"} 0",
        "# TYPE wa_reconnect_attempts_total counter",
        "wa_reconnect_attempts_total 0",
        "# TYPE wa_heartbeat_age_seconds gauge",
        "# TYPE wa_circuit_breaker_open gauge",
        "wa_circuit_breaker_open 0",
        "wa_messages_total{direction=\"inbound\"} 150",
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
    let age: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("wa_heartbeat_age_seconds "))
        .unwrap()
        .parse()
        .unwrap();
    assert!((19.0..30.0).contains(&age), "{age}");
    promtool_check(&text);
}

#[tokio::test]
async fn fleet_metrics_label_sessions_roll_up_and_pass_promtool() {
    let app = spawn_app().await;
    busy_fleet(&app).await;
    app.get("/session/health").await;
    let (code, text) = app.get_text("/metrics").await;
    assert_eq!(code, 200);
    for line in [
        "wa_sessions{state=\"connected\"} 1",
        "wa_sessions{state=\"reconnecting\"} 1",
        "wa_sessions{state=\"logged_out\"} 1",
        "wa_sessions_by_level{level=\"critical\"} 1",
        "wa_session_state{session=\"tenant:1@s.whatsapp.net\",state=\"reconnecting\"} 1",
        "wa_session_connected{session=\"default\"} 1",
        "wa_alerts{code=\"LOGGED_OUT\",level=\"critical\"} 1",
        "wa_platform_total{name=\"calls_started\"} 25",
        "wa_platform_current{name=\"calls_active\"} 3",
        "wapulse_ingest_events_total{outcome=\"accepted\"} 12",
        "# TYPE wapulse_http_requests_total counter",
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
    promtool_check(&text);
}

#[tokio::test]
async fn fleet_metrics_carry_each_sessions_last_reconnect_duration() {
    // Fixed instants, older than max_event_age's default: taken here.
    let app = spawn_with(|s| {
        s.max_event_age = wapulse_core::DurationMs::from_hours(24 * 365 * 10);
    })
    .await;
    // A completed reconnect of 12 s (fixed instants: no clock in between),
    // and a session that never reconnected.
    app.ingest(json!([
        {"session": "r1", "type": "state", "state": "connected", "at": "2026-01-01T00:00:00Z"},
        {"session": "r1", "type": "state", "state": "reconnecting", "at": "2026-01-01T00:01:00Z"},
        {"session": "r1", "type": "state", "state": "connected", "at": "2026-01-01T00:01:12Z"},
        {"session": "r2", "type": "state", "state": "connected"},
    ]))
    .await;
    let (code, text) = app.get_text("/metrics").await;
    assert_eq!(code, 200);
    // Grafana's reconnect latency distribution buckets these; NaN before a
    // session's first completed reconnect (left out by `>= 0`).
    for line in [
        "# TYPE wa_reconnect_last_duration_seconds gauge",
        "wa_reconnect_last_duration_seconds{session=\"r1\"} 12",
        "wa_reconnect_last_duration_seconds{session=\"r2\"} NaN",
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
    promtool_check(&text);
}

#[tokio::test]
async fn alert_metrics_pass_promtool() {
    let app = spawn_alerting("[[receivers]]\nname = \"c\"\nkind = \"log\"\n").await;
    app.ingest(json!([logged_out("s1")])).await;
    let deadline = std::time::Instant::now() + WAIT;
    let text = loop {
        let (_, text) = app.get_text("/metrics").await;
        if text.contains("wa_alerts_firing{") {
            break text;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    promtool_check(&text);
}

/// The sessions `/metrics` gives a `session` label, and how many series
/// carry one.
async fn listed_sessions(app: &TestApp) -> (std::collections::BTreeSet<String>, usize, String) {
    let (code, text) = app.get_text("/metrics").await;
    assert_eq!(code, 200);
    let mut sessions = std::collections::BTreeSet::new();
    let mut series = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if let Some(rest) = line.split("session=\"").nth(1) {
            sessions.insert(rest.split('"').next().unwrap().to_owned());
            series += 1;
        }
    }
    (sessions, series, text)
}

#[tokio::test]
async fn metrics_sessions_chooses_every_session_the_unhealthy_ones_or_none() {
    let fleet = json!([
        {"session": "fine", "type": "state", "state": "connected"},
        {"session": "fine", "type": "heartbeat"},
        {"session": "gone", "type": "state", "state": "logged_out"},
    ]);
    let mut per_session = Vec::new();
    for (choice, want) in [
        (MetricsSessions::All, vec!["default", "fine", "gone"]),
        (MetricsSessions::Unhealthy, vec!["gone"]),
        (MetricsSessions::None, vec![]),
    ] {
        let app = spawn_with(move |s| s.metrics_sessions = choice).await;
        app.ingest(fleet.clone()).await;
        // With no per-session series the rollups are the evaluator's: they
        // follow its next pass.
        let deadline = std::time::Instant::now() + WAIT;
        let (sessions, series, text) = loop {
            let got = listed_sessions(&app).await;
            if got
                .2
                .contains("wa_alerts{code=\"LOGGED_OUT\",level=\"critical\"} 1")
            {
                break got;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{choice:?}: {}",
                got.2
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let want: std::collections::BTreeSet<String> =
            want.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(sessions, want, "{choice:?}");
        per_session.push((choice, series));
        // The fleet rollups stay whatever the choice.
        assert!(
            text.contains("wa_sessions{state=\"connected\"} 1"),
            "{choice:?}"
        );
        assert!(
            text.contains("wa_alerts{code=\"LOGGED_OUT\",level=\"critical\"} 1"),
            "{choice:?}: {text}"
        );
        promtool_check(&text);
        if choice == MetricsSessions::None {
            // The evaluator's counts follow a recovery too.
            app.ingest(json!([{"session": "gone", "type": "state", "state": "connected"}]))
                .await;
            let deadline = std::time::Instant::now() + WAIT;
            loop {
                let (_, _, text) = listed_sessions(&app).await;
                if !text.contains("wa_alerts{code=\"LOGGED_OUT\"")
                    && text.contains("wa_sessions_by_level{level=\"critical\"} 0")
                {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "{text}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    println!("series with a session label: {per_session:?}");
    let e = config_check("metrics_sessions = \"some\"\n");
    assert!(!e.status.success());
    assert!(
        String::from_utf8_lossy(&e.stderr).contains("metrics_sessions"),
        "{}",
        String::from_utf8_lossy(&e.stderr)
    );
}

/// A fleet's families are encoded in chunks and streamed while they are
/// built: every family still reads as one (one `# HELP`, one `# TYPE`, its
/// samples together), with every session once, across chunk edges.
#[tokio::test]
async fn a_fleet_larger_than_a_chunk_reads_as_one_family_each() {
    let app = spawn_app().await;
    let n = 1300;
    let events: Vec<serde_json::Value> = (0..n)
        .flat_map(|i| {
            let session = format!("s-{i:04}");
            [
                json!({"session": session, "type": "state", "state": "connected"}),
                json!({"session": session, "type": "labels", "labels": {"team": format!("t\"{i}\\")}}),
            ]
        })
        .collect();
    app.ingest(serde_json::Value::Array(events)).await;
    let (code, text) = app.get_text("/metrics").await;
    assert_eq!(code, 200);
    for family in [
        "wa_session_info",
        "wa_session_state",
        "wa_session_connected",
        "wa_heartbeat_age_seconds",
    ] {
        let header = |kind: &str| {
            text.lines()
                .filter(|l| l.starts_with(&format!("# {kind} {family} ")))
                .count()
        };
        assert_eq!((header("HELP"), header("TYPE")), (1, 1), "{family}");
        let lines: Vec<usize> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.starts_with(&format!("{family}{{")))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(
            lines.len(),
            n + 1,
            "{family}: every session and the default"
        );
        assert_eq!(
            lines.last().unwrap() - lines.first().unwrap(),
            n,
            "{family}: its samples together"
        );
    }
    let info: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("wa_session_info{"))
        .map(|l| l.split('"').nth(1).unwrap())
        .collect();
    assert_eq!(info.len(), n + 1, "each session once");
    assert!(
        text.contains(r#"wa_session_info{session="s-1299",team="t\"1299\\"} 1"#),
        "labels escaped by the encoder: {}",
        text.lines()
            .find(|l| l.contains("s-1299\""))
            .unwrap_or_default()
    );
    promtool_check(&text);
}
