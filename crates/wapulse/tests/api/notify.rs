//! Notifications end to end: events in, requests at stand-in Slack,
//! PagerDuty and webhook receivers out, through faults, restarts and a
//! mass failure.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::process::reqwest as raw;
use crate::support::*;

fn status_of(r: &Received) -> String {
    r.body["status"].as_str().unwrap_or("").to_owned()
}

#[tokio::test]
async fn a_critical_event_reaches_a_signed_webhook_once_and_its_resolve_follows() {
    let hook = FakeReceiver::start(Kind::Webhook(Some("whsec_c2VjcmV0LWtleS0xMjM=".into()))).await;
    let app = spawn_alerting(&alerting_config(
        r#"group_wait = "0s", group_interval = "1s""#,
        &[receiver(
            "hook",
            "webhook",
            &hook.url("/hooks/wapulse"),
            r#"secret = "whsec_c2VjcmV0LWtleS0xMjM=""#,
        )],
    ))
    .await;
    app.ingest(json!([
        connected("s1"),
        labelled("s1", json!({"region": "eu-1"})),
        logged_out("s1"),
    ]))
    .await;
    let got = hook.wait_for("the firing message", 1).await;
    let firing = &got[0];
    assert_eq!(firing.path, "/hooks/wapulse");
    assert_eq!(firing.answered, 200);
    assert_eq!(firing.body["status"], "firing");
    assert_eq!(firing.body["receiver"], "hook");
    assert_eq!(firing.body["groupLabels"], json!({"code": "LOGGED_OUT"}));
    let alert = &firing.body["firing"][0];
    assert_eq!(alert["session"], "s1");
    assert_eq!(alert["code"], "LOGGED_OUT");
    assert_eq!(alert["level"], "critical");
    assert_eq!(alert["labels"], json!({"region": "eu-1"}));
    assert!(alert["summary"].as_str().unwrap().contains("logged out"));
    assert!(firing.header("webhook-id").starts_with("msg_"));
    assert!(
        firing.header("webhook-signature").starts_with("v1,"),
        "signed"
    );

    app.ingest(json!([connected("s1")])).await;
    let got = hook.wait_for("the resolved message", 2).await;
    let resolved = &got[1];
    assert_eq!(resolved.body["status"], "resolved");
    assert_eq!(resolved.body["resolved"][0]["code"], "LOGGED_OUT");
    assert!(resolved.body["resolved"][0]["endsAt"].is_string());
    assert_ne!(
        resolved.header("webhook-id"),
        firing.header("webhook-id"),
        "two messages, two ids"
    );
    assert_eq!(
        got.iter().filter(|r| status_of(r) == "firing").count(),
        1,
        "paged once"
    );
    assert!(hook.violations().is_empty(), "{:?}", hook.violations());

    // The history says what happened, newest first.
    let h = app.get_json("/alerts/history?limit=50", 200).await;
    let transitions: Vec<&str> = h["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "transition" && e["code"] == "LOGGED_OUT")
        .map(|e| e["transition"].as_str().unwrap())
        .collect();
    assert_eq!(transitions, ["resolved", "fired"]);
}

#[test]
fn a_wrong_secret_or_a_replayed_timestamp_fails_verification() {
    // The stand-in's verifier is what proves the signature: check that it
    // refuses what it must.
    let body = br#"{"a":1}"#;
    let sig = sign_webhook("k", "msg_1", 1, body);
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("webhook-id", "msg_1".parse().unwrap());
    headers.insert("webhook-timestamp", "1".parse().unwrap());
    headers.insert("webhook-signature", sig.parse().unwrap());
    let err = verify_webhook(&headers, body, "k").unwrap_err();
    assert!(err.contains("too old"), "{err}");
    let now = wapulse::clock::now().as_millis() / 1000;
    let sig = sign_webhook("k", "msg_1", now, body);
    headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
    headers.insert("webhook-signature", sig.parse().unwrap());
    verify_webhook(&headers, body, "k").unwrap();
    assert!(verify_webhook(&headers, body, "other").is_err());
    assert!(verify_webhook(&headers, br#"{"a":2}"#, "k").is_err());
}

#[tokio::test]
async fn slack_and_pagerduty_get_their_documented_payloads() {
    let slack = FakeReceiver::start(Kind::Slack).await;
    let pd = FakeReceiver::start(Kind::PagerDuty).await;
    let app = spawn_alerting(&alerting_config(
        r#"group_wait = "0s", group_interval = "1s", external_url = "https://wapulse.example""#,
        &[
            receiver("chat", "slack", &slack.url("/services/T000/B000/XXXX"), ""),
            receiver(
                "oncall",
                "pagerduty",
                &pd.url("/v2/enqueue"),
                r#"routing_key = "R0UT1NGKEY""#,
            ),
        ],
    ))
    .await;
    let sessions = numbered("s", 30, 2);
    app.ingest(each(&sessions, logged_out)).await;
    let s = slack.wait_for("slack firing", 1).await;
    let text = s[0].body["text"].as_str().unwrap();
    assert!(text.contains("FIRING"), "{text}");
    assert!(text.contains("30 sessions"), "{text}");
    assert!(text.contains("LOGGED_OUT"), "{text}");
    let listed = s[0].body["blocks"].to_string();
    assert!(
        listed.contains("+10 more"),
        "20 listed, then +10 more: {listed}"
    );
    let p = pd.wait_for("pagerduty trigger", 1).await;
    let trigger = &p[0].body;
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["routing_key"], "R0UT1NGKEY");
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["source"], "wapulse");
    assert_eq!(
        trigger["links"][0]["href"],
        "https://wapulse.example/alerts"
    );
    let dedup = trigger["dedup_key"].as_str().unwrap().to_owned();

    app.ingest(each(&sessions, connected)).await;
    let p = pd.wait_for("pagerduty resolve", 2).await;
    assert_eq!(p[1].body["event_action"], "resolve");
    assert_eq!(p[1].body["dedup_key"], dedup.as_str(), "the same incident");
    let s = slack.wait_for("slack resolved", 2).await;
    assert!(s[1].body["text"].as_str().unwrap().contains("RESOLVED"));
    assert!(slack.violations().is_empty(), "{:?}", slack.violations());
    assert!(pd.violations().is_empty(), "{:?}", pd.violations());
}

#[tokio::test]
async fn faults_are_retried_with_the_same_id_and_a_permanent_error_stops() {
    let flaky = FakeReceiver::start(Kind::Webhook(None)).await;
    // 500, then 429 asking for 1 s, then a hang past the 300 ms timeout,
    // then fine.
    flaky.script([
        Fault::Status(500),
        Fault::RateLimited(1),
        Fault::Hang(Duration::from_secs(2)),
    ]);
    let broken = FakeReceiver::start(Kind::Webhook(None)).await;
    broken.answer_with(Fault::Status(400));
    let app = spawn_alerting(&alerting_config(
        r#"group_wait = "0s""#,
        &[
            receiver("flaky", "webhook", &flaky.url("/"), r#"timeout = "300ms""#),
            webhook("broken", &broken.url("/")),
        ],
    ))
    .await;
    app.ingest(json!([logged_out("s1")])).await;
    let got = flaky
        .wait_until(
            "delivery after three faults",
            Duration::from_secs(40),
            |r| r.iter().any(|x| x.answered == 200),
        )
        .await;
    let ids: Vec<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert!(got.len() >= 3, "{ids:?}");
    // The 429 asked for 1 s: the next attempt waited at least that.
    let limited = got.iter().position(|r| r.answered == 429).unwrap();
    let waited = got[limited + 1].at.duration_since(got[limited].at);
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After: 1 honoured: {waited:?}"
    );
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "every retry carries the same id: {ids:?}"
    );
    let rows = wait_outbox(&app, "the broken receiver gives up", |rows| {
        rows.iter().any(|r| r.0 == "broken" && r.1 == "failed")
            && rows.iter().any(|r| r.0 == "flaky" && r.1 == "delivered")
    })
    .await;
    let broken_row = rows.iter().find(|r| r.0 == "broken").unwrap();
    assert_eq!(broken_row.2, 1, "a permanent 400 is tried once: {rows:?}");
    assert!(broken_row.3.as_deref().unwrap().contains("400"));
    let flaky_row = rows.iter().find(|r| r.0 == "flaky").unwrap();
    assert!(flaky_row.2 >= 4, "three failures, then delivered: {rows:?}");
    assert_eq!(broken.received().len(), 1);

    let health = app.get_json("/api/health", 200).await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["receivers"]["broken"]["status"], "failing");
    assert!(
        health["receivers"]["broken"]["reason"]
            .as_str()
            .unwrap()
            .contains("HTTP 400"),
        "{health}"
    );
    assert_eq!(health["receivers"]["flaky"]["status"], "ok");
    let (_, metrics) = app.get_text("/metrics").await;
    for series in [
        r#"wapulse_notifications_total{kind="webhook",outcome="failed",receiver="broken"} 1"#,
        r#"wapulse_notifications_total{kind="webhook",outcome="delivered",receiver="flaky"} 1"#,
        r#"wa_alerts_firing{code="LOGGED_OUT",level="critical"} 1"#,
    ] {
        assert!(metrics.contains(series), "{series} in\n{metrics}");
    }
    assert!(metrics.contains("wapulse_evaluator_duration_seconds_count"));
    assert!(metrics.contains(r#"wapulse_outbox_pending{receiver="flaky"}"#));
}

#[tokio::test]
async fn a_refused_connection_is_retried_until_the_receiver_is_back() {
    let port = free_port();
    let app = spawn_alerting(&alerting_config(
        r#"group_wait = "0s""#,
        &[webhook("later", &format!("http://127.0.0.1:{port}/"))],
    ))
    .await;
    app.ingest(json!([logged_out("s1")])).await;
    let rows = wait_outbox(&app, "a failed attempt", |rows| {
        rows.first().is_some_and(|r| r.2 >= 1)
    })
    .await;
    assert_eq!(rows[0].1, "pending", "still owed: {rows:?}");
    let error = rows[0].3.clone().unwrap();
    assert!(
        !error.contains(&port.to_string()),
        "errors carry no URL: {error}"
    );
    let health = app.get_json("/api/health", 200).await;
    assert_eq!(
        health["receivers"]["later"]["status"], "retrying",
        "{health}"
    );
    assert_eq!(health["status"], "degraded");
    let hook = FakeReceiver::start_on(port, Kind::Webhook(None)).await;
    hook.wait_until("delivery once the receiver listens", WAIT, |r| r.len() == 1)
        .await;
    wait_outbox(&app, "delivered", |rows| rows[0].1 == "delivered").await;
    let health = app.get_json("/api/health", 200).await;
    assert_eq!(health["receivers"]["later"]["status"], "ok", "{health}");
}

#[tokio::test]
async fn what_is_owed_to_a_receiver_removed_from_the_config_is_given_up_at_start() {
    let hook = FakeReceiver::start(Kind::Webhook(None)).await;
    hook.answer_with(Fault::Status(503));
    let config = alerting_config(r#"group_wait = "0s""#, &[webhook("gone", &hook.url("/"))]);
    let app = spawn_alerting(&config).await;
    app.ingest(json!([logged_out("s1")])).await;
    wait_outbox(&app, "a refused attempt", |rows| {
        rows.first().is_some_and(|r| r.2 >= 1)
    })
    .await;
    let data = app.stop().await;
    // Restarted without that receiver: its row is given up, with the reason.
    let app = spawn_in(data, |_| {}).await;
    let rows = wait_outbox(&app, "given up", |rows| rows[0].1 == "failed").await;
    assert!(
        rows[0]
            .3
            .as_deref()
            .unwrap()
            .contains("no longer in the configuration"),
        "{rows:?}"
    );
}

#[tokio::test]
async fn a_mass_failure_is_one_fleet_incident_not_three_hundred_pages() {
    let (hook, app) = incident_app("0s", r#"incident_by = ["region"]"#).await;
    let region = |i: usize| if i < 300 { "eu-1" } else { "us-1" };
    let mut up = Vec::new();
    for i in 0..340 {
        let id = format!("s{i:03}");
        up.push(labelled(&id, json!({"region": region(i)})));
        up.push(connected(&id));
    }
    app.ingest(Value::Array(up)).await;
    // All 300 of eu-1 fall over together, three attempts each
    // (RECONNECT_ATTEMPTS fires for every one of them).
    let eu = numbered("s", 300, 3);
    app.ingest(reconnecting_thrice(&eu)).await;
    let got = hook.wait_for("the incident", 1).await;
    let incident = &got[0].body;
    assert_eq!(
        incident["groupLabels"]["code"], "FLEET_INCIDENT",
        "{incident}"
    );
    let alert = &incident["firing"][0];
    assert_eq!(alert["affected"], 300);
    assert_eq!(alert["labels"]["region"], "eu-1");
    assert_eq!(alert["labels"]["trouble"], "not_connected");
    assert_eq!(alert["sessions"].as_array().unwrap().len(), 20, "capped");
    assert!(
        alert["summary"]
            .as_str()
            .unwrap()
            .starts_with("100 % of sessions in region=eu-1 (300 of 300) are not connected"),
        "{alert}"
    );
    // A marker from a session the incident does not cover: once it
    // arrives, everything queued before it has been sent.
    let got = after_corruption_marker(&hook, &app, "s300").await;
    let codes = |got: &[Received]| -> Vec<String> {
        got.iter()
            .map(|r| {
                format!(
                    "{}:{}",
                    r.body["status"].as_str().unwrap(),
                    r.body["groupLabels"]["code"].as_str().unwrap()
                )
            })
            .collect()
    };
    let said = codes(&got);
    assert_eq!(
        said.iter()
            .filter(|c| c.ends_with("FLEET_INCIDENT"))
            .count(),
        1,
        "one incident message: {said:?}"
    );
    assert!(
        !said.iter().any(|c| c.ends_with("RECONNECT_ATTEMPTS")),
        "no per-session pages: {said:?}"
    );
    let alerts = app.get_json("/alerts?code=RECONNECT_ATTEMPTS", 200).await;
    assert_eq!(alerts["total"], 300, "they still show");
    assert!(
        alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["folded"] == true)
    );
    let first = app.get_json("/alerts", 200).await;
    assert_eq!(first["alerts"][0]["code"], "FLEET_INCIDENT", "worst first");

    // They come back: the incident resolves, once; the folded alerts
    // resolve without a word.
    app.ingest(each(&eu, connected)).await;
    let got = hook
        .wait_until("the incident's resolve", WAIT, |r| {
            r.iter().any(|x| {
                x.body["status"] == "resolved" && x.body["groupLabels"]["code"] == "FLEET_INCIDENT"
            })
        })
        .await;
    let said = codes(&got);
    assert_eq!(
        said.iter()
            .filter(|c| c.ends_with("FLEET_INCIDENT"))
            .collect::<Vec<_>>(),
        ["firing:FLEET_INCIDENT", "resolved:FLEET_INCIDENT"],
        "{said:?}"
    );
    assert!(
        !said.iter().any(|c| c.ends_with("RECONNECT_ATTEMPTS")),
        "{said:?}"
    );
}

#[tokio::test]
async fn routes_send_by_label_and_level_and_group_by_their_labels() {
    let eu = FakeReceiver::start(Kind::Webhook(None)).await;
    let rest = FakeReceiver::start(Kind::Webhook(None)).await;
    let app = spawn_alerting(&format!(
        r#"
        [alerting]
        for = "0s"
        group_wait = "0s"
        {}{}
        [[routes]]
        receiver = "eu"
        match = {{ level = "critical" }}
        match_re = {{ region = "eu-.*" }}
        group_by = ["region"]
        [[routes]]
        receiver = "rest"
        "#,
        webhook("eu", &eu.url("/")),
        webhook("rest", &rest.url("/"))
    ))
    .await;
    app.ingest(json!([
        labelled("a", json!({"region": "eu-1"})),
        labelled("b", json!({"region": "eu-1"})),
        labelled("c", json!({"region": "us-1"})),
        logged_out("a"),
        failed_validation("b"),
        logged_out("c"),
    ]))
    .await;
    let got = eu.wait_for("eu's group", 1).await;
    assert_eq!(got[0].body["groupLabels"], json!({"region": "eu-1"}));
    let mut eu_alerts = field_pairs(&got[0].body["firing"], "session", "code");
    eu_alerts.sort();
    assert_eq!(
        eu_alerts,
        ["a:LOGGED_OUT", "b:SESSION_CORRUPTION"],
        "critical alerts of eu-* sessions, one message for the region"
    );
    let seen = |r: &[Received]| -> Vec<String> {
        r.iter()
            .flat_map(|x| field_pairs(&x.body["firing"], "session", "code"))
            .collect()
    };
    let r = rest
        .wait_until("the rest", WAIT, |r| {
            let s = seen(r);
            s.contains(&"c:LOGGED_OUT".to_owned())
                && s.contains(&"b:VALIDATION_FAILURES".to_owned())
        })
        .await;
    let all = seen(&r);
    assert!(
        !all.iter()
            .any(|x| x.starts_with("a:") || x == "b:SESSION_CORRUPTION"),
        "what the first route took (it does not continue) is not sent again: {all:?}"
    );
}

#[tokio::test]
async fn a_silenced_alert_shows_sends_nothing_and_is_said_once_the_silence_ends() {
    let hook = FakeReceiver::start(Kind::Webhook(None)).await;
    let loaded = alerting_from(&hook_config(
        r#"group_wait = "0s", group_interval = "1s""#,
        &hook,
    ));
    let app = spawn_with(move |s| {
        s.alerting = loaded.alerting;
        s.ingest_token = secret("in");
        s.admin_token = secret("adm");
    })
    .await;
    let silence = json!({
        "matchers": [{"name": "session", "value": "quiet-.*", "isRegex": true}],
        "endsAt": in_future(3600),
        "createdBy": "ops",
        "comment": "maintenance",
    });
    let post = |token: &str, body: &Value| {
        app.client
            .post(app.url("/v1/silences"))
            .bearer_auth(token)
            .json(body)
            .send()
    };
    assert_eq!(
        post("in", &silence).await.unwrap().status(),
        401,
        "admin only when set"
    );
    let created: Value = post("adm", &silence).await.unwrap().json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    for (bad, field) in [
        (
            json!({"endsAt": in_future(60), "createdBy": "o", "comment": "c"}),
            "matchers",
        ),
        (
            json!({"matchers": [{"name": "session", "value": "(", "isRegex": true}], "endsAt": in_future(60), "createdBy": "o", "comment": "c"}),
            "matchers",
        ),
        (
            json!({"matchers": [{"name": "session", "value": "x"}], "endsAt": ago(60), "createdBy": "o", "comment": "c"}),
            "endsAt",
        ),
        (
            json!({"matchers": [{"name": "session", "value": "x"}], "endsAt": in_future(60), "comment": "c"}),
            "createdBy",
        ),
    ] {
        let r = post("adm", &bad).await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["field"], field, "{body}");
    }
    app.client
        .post(app.url("/v1/events"))
        .bearer_auth("in")
        .json(&json!([logged_out("quiet-1"), logged_out("loud-1")]))
        .send()
        .await
        .unwrap();
    let got = hook.wait_for("loud-1", 1).await;
    let sessions = firing_sessions(&got[0]);
    assert_eq!(sessions, ["loud-1"], "quiet-1 is silenced");
    let shown = app.get_json("/alerts?session=quiet-1", 200).await;
    assert_eq!(shown["alerts"][0]["silenced"], true, "{shown}");
    let listed = list_silences(&app, "adm").await;
    assert_eq!(listed["silences"][0]["status"], "active");
    assert_eq!(listed["silences"][0]["comment"], "maintenance");
    // Expire it: quiet-1 still fires, so it is said now.
    let r = expire_silence(&app, &id, Some("adm")).await;
    assert_eq!(r.status(), 200);
    let expired: Value = r.json().await.unwrap();
    assert_eq!(expired["status"], "expired");
    hook.wait_until("quiet-1 once unsilenced", WAIT, |r| {
        r.iter()
            .any(|x| x.body["firing"].to_string().contains("quiet-1"))
    })
    .await;
    let missing = expire_silence(&app, "nope", Some("adm")).await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn alerts_filter_by_level_code_state_and_label_and_bad_filters_are_named() {
    let app = spawn_alerting(
        r#"
        [alerting]
        for = "1h"
        for_code = { LOGGED_OUT = "0s" }
        "#,
    )
    .await;
    app.ingest(json!([
        labelled("a", json!({"tenant": "acme"})),
        logged_out("a"),
        {"session": "b", "type": "state", "state": "qr_required"},
    ]))
    .await;
    let all = wait_alerts(&app, "", |v| v["total"] == 2).await;
    assert_eq!(all["alerts"][0]["code"], "LOGGED_OUT", "critical first");
    assert_eq!(all["alerts"][0]["state"], "firing");
    assert_eq!(
        all["alerts"][1]["state"], "pending",
        "QR_REQUIRED waits its hour"
    );
    assert_eq!(app.get_json("/alerts?state=pending", 200).await["total"], 1);
    assert_eq!(
        app.get_json("/alerts?level=critical", 200).await["total"],
        1
    );
    assert_eq!(
        app.get_json("/alerts?code=QR_REQUIRED", 200).await["total"],
        1
    );
    let by_label = app.get_json("/alerts?label=tenant:acme", 200).await;
    assert_eq!(by_label["total"], 1);
    assert_eq!(by_label["alerts"][0]["session"], "a");
    for (query, field) in [
        ("level=ok", "level"),
        ("state=resolved", "state"),
        ("label=tenant", "label"),
    ] {
        let e = app.get_json(&format!("/alerts?{query}"), 400).await;
        assert_eq!(e["field"], field, "{query}: {e}");
    }
    // Paging: one at a time, worst first, with the next offset.
    let first = app.get_json("/alerts?limit=1", 200).await;
    assert_eq!(
        (first["total"].as_u64(), first["count"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(first["alerts"][0]["code"], "LOGGED_OUT");
    assert_eq!(first["nextOffset"], 1);
    let second = app.get_json("/alerts?limit=1&offset=1", 200).await;
    assert_eq!(second["alerts"][0]["code"], "QR_REQUIRED");
    assert!(second["nextOffset"].is_null());
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=9999", "limit"),
        ("offset=-1", "offset"),
    ] {
        let e = app.get_json(&format!("/alerts?{query}"), 400).await;
        assert_eq!(e["field"], field, "{query}: {e}");
    }
    let e = app.get_json("/alerts?colour=red", 400).await;
    assert!(e["error"].as_str().unwrap().contains("colour"), "{e}");
    let e = app.get_json("/alerts/history?limit=0", 400).await;
    assert_eq!(e["field"], "limit");
    // Paging: one entry per page, following `next`.
    let page = app.get_json("/alerts/history?limit=1", 200).await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);
    let next = page["next"].as_i64().unwrap();
    let older = app
        .get_json(&format!("/alerts/history?limit=1&before={next}"), 200)
        .await;
    assert!(older["entries"][0]["seq"].as_i64().unwrap() < next);
    // /api/health's rollup comes from the evaluator.
    let health = app.get_json("/api/health", 200).await;
    assert_eq!(health["sessions"]["byLevel"]["critical"], 1, "{health}");
    assert_eq!(health["alerting"]["firing"], 1);
    assert_eq!(health["alerting"]["pending"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_pages_pending_loses_none_and_resolves_what_cleared_while_down() {
    let hook = FakeReceiver::start(Kind::Webhook(None)).await;
    hook.answer_with(Fault::Status(503));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("wapulse.toml");
    std::fs::write(
        &config,
        format!(
            r#"
            [thresholds]
            validation_window = "6s"
            [alerting]
            for = "0s"
            group_wait = "0s"
            group_interval = "1s"
            {}
            "#,
            webhook("hook", &hook.url("/"))
        ),
    )
    .unwrap();
    let (mut first, port) = serve_on(dir.path(), &config);
    // A failed integrity check 1 s ago: SESSION_CORRUPTION (until a valid
    // check) and VALIDATION_FAILURES (for the 6 s window: it clears by
    // itself, while wapulse is down).
    let failed_at = wapulse::clock::now().minus(wapulse_core::DurationMs::from_secs(1));
    let events = json!([
        {"session": "s1", "type": "state", "state": "connected"},
        {"session": "s1", "type": "validation", "valid": false, "at": failed_at.to_rfc3339()},
    ])
    .to_string();
    let (code, body) = raw::send(
        &format!("http://127.0.0.1:{port}/v1/events"),
        "POST",
        Some(&events),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    // The first message tried and refused, both pending: owed.
    hook.wait_for("a refused attempt", 1).await;
    let db = dir.path().join("data").join("wapulse.db");
    let deadline = std::time::Instant::now() + WAIT;
    let owed: std::collections::BTreeSet<String> = loop {
        let conn =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        let ids: Vec<i64> = conn
            .prepare("SELECT id FROM outbox WHERE state = 'pending' ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        if ids.len() == 2 {
            break ids.iter().map(|id| format!("msg_wapulse_{id}")).collect();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pending rows: {ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    first.0.kill().unwrap();
    first.0.wait().unwrap();

    // Down past the validation window; the receiver recovers.
    let clears = failed_at.plus(wapulse_core::DurationMs::from_secs(6));
    while wapulse::clock::now() <= clears {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hook.answer_with(Fault::Status(200));
    let (_second, _) = serve_on(dir.path(), &config);

    let got = hook
        .wait_until("the owed pages and the resolve", WAIT, |r| {
            let delivered: std::collections::BTreeSet<&str> = r
                .iter()
                .filter(|x| x.answered == 200)
                .map(|x| x.header("webhook-id"))
                .collect();
            owed.iter().all(|id| delivered.contains(id.as_str()))
                && r.iter().any(|x| {
                    x.answered == 200
                        && x.body["status"] == "resolved"
                        && x.body["resolved"][0]["code"] == "VALIDATION_FAILURES"
                })
        })
        .await;
    for id in &owed {
        let delivered = got
            .iter()
            .filter(|r| r.answered == 200 && r.header("webhook-id") == id)
            .count();
        assert!(
            (1..=2).contains(&delivered),
            "{id}: delivered {delivered} times (at most one duplicate)"
        );
    }
    // In order: the resolve of VALIDATION_FAILURES came after its firing.
    let position = |pred: &dyn Fn(&Received) -> bool| {
        got.iter()
            .position(|r| r.answered == 200 && pred(r))
            .unwrap()
    };
    let fired = position(&|r| r.body["firing"].to_string().contains("VALIDATION_FAILURES"));
    let resolved = position(&|r| r.body["status"] == "resolved");
    assert!(fired < resolved, "firing first, then its resolve");
    assert!(hook.violations().is_empty(), "{:?}", hook.violations());
}

#[tokio::test]
async fn the_dead_mans_switch_is_pinged_while_wapulse_is_healthy() {
    let switch = FakeReceiver::start(Kind::Any).await;
    let _app = spawn_alerting(&receiver(
        "switch",
        "deadman",
        &switch.url("/ping/abc"),
        r#"interval = "200ms""#,
    ))
    .await;
    let got = switch.wait_for("three pings", 3).await;
    assert!(got.iter().all(|r| r.path == "/ping/abc"));
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

#[tokio::test]
async fn a_fleet_going_deaf_together_is_one_incident_of_that_code() {
    let (hook, app) = hook_app(r#"for = "0s", incident_for = "0s", group_wait = "0s""#).await;
    // 20 sessions connected 10 minutes ago and silent since: all of them
    // fire HEARTBEAT_DEAD now, together.
    let events: Vec<Value> = (0..20)
        .map(|i| json!({"session": format!("d{i:02}"), "type": "state", "state": "connected", "at": ago(600)}))
        .collect();
    app.ingest(Value::Array(events)).await;
    let got = hook.wait_for("the incident", 1).await;
    let alert = &got[0].body["firing"][0];
    assert_eq!(alert["code"], "FLEET_INCIDENT", "{}", got[0].body);
    assert_eq!(alert["labels"]["trouble"], "HEARTBEAT_DEAD");
    assert_eq!(alert["affected"], 20);
    assert!(
        alert["summary"]
            .as_str()
            .unwrap()
            .contains("fire HEARTBEAT_DEAD"),
        "{alert}"
    );
    let dead = app.get_json("/alerts?code=HEARTBEAT_DEAD", 200).await;
    assert_eq!(dead["total"], 20);
    assert!(
        dead["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["folded"] == true)
    );
    let got = after_marker(&hook, &app, json!([logged_out("marker")]), "LOGGED_OUT").await;
    assert!(
        got.iter()
            .all(|r| r.body["groupLabels"]["code"] != "HEARTBEAT_DEAD"),
        "no per-session page"
    );
}

#[tokio::test]
async fn a_restart_keeps_each_alert_where_it_was_and_pages_nothing_twice() {
    let hook = FakeReceiver::start(Kind::Webhook(None)).await;
    let config = hook_config(
        r#"for = "1h", group_wait = "0s", group_interval = "1s""#,
        &hook,
    );
    let app = spawn_alerting(&config).await;
    app.ingest(json!([
        logged_out("gone"),
        {"session": "waiting", "type": "state", "state": "qr_required"},
    ]))
    .await;
    hook.wait_until("LOGGED_OUT", WAIT, |r| r.len() == 1).await;
    let before = app.get_json("/alerts", 200).await;
    assert_eq!(before["total"], 2, "{before}");
    let data = app.stop().await;

    let loaded = alerting_from(&config);
    let app = spawn_in(data, move |s| s.alerting = loaded.alerting).await;
    let after = wait_alerts(&app, "", |v| v["evaluatedAt"].is_string()).await;
    let keep = |v: &Value| -> Vec<(Value, Value, Value, Value)> {
        v["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["session"].clone(),
                    a["state"].clone(),
                    a["since"].clone(),
                    a["firedAt"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(keep(&after), keep(&before), "same states, same instants");
    // A marker in a group of its own: once it arrives, anything the
    // restart queued has gone out.
    let got = after_breaker_marker(&hook, &app).await;
    let pages_for_gone = got
        .iter()
        .filter(|r| {
            r.body["firing"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["session"] == "gone")
                && r.body["repeat"] == false
        })
        .count();
    assert_eq!(pages_for_gone, 1, "not paged again by the restart");
    // The group came back too: the resolve goes where the firing went.
    app.ingest(json!([connected("gone")])).await;
    hook.wait_until("the resolve after the restart", WAIT, |r| {
        r.iter()
            .any(|x| x.body["status"] == "resolved" && x.body["resolved"][0]["session"] == "gone")
    })
    .await;
}

#[tokio::test]
async fn a_receiver_is_sent_no_faster_than_its_rate() {
    let hook = FakeReceiver::start(Kind::Webhook(None)).await;
    let app = spawn_alerting(&alerting_config(
        r#"for = "0s", group_wait = "0s""#,
        &[receiver(
            "hook",
            "webhook",
            &hook.url("/"),
            "rate_per_second = 4",
        )],
    ))
    .await;
    // Four codes, four groups, four messages at once.
    app.ingest(json!([
        logged_out("a"),
        failed_validation("b"),
        breaker_open("c"),
    ]))
    .await;
    let got = hook
        .wait_until("four messages", WAIT, |r| r.len() == 4)
        .await;
    // At most 4 a second: every gap is at least 250 ms (less a little for
    // the timer's granularity).
    for pair in got.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap >= Duration::from_millis(240), "{gap:?}");
    }
}

#[tokio::test]
async fn sessions_joining_a_running_incident_are_folded_too() {
    let (hook, app) = incident_app("0s", "").await;
    let ids = [numbered("a", 1000, 4), numbered("b", 200, 3)].concat();
    app.ingest(each(&ids, connected)).await;
    // The first thousand make the incident; the next two hundred join it
    // (beyond the thousand sessions an incident keeps in its saved state).
    app.ingest(reconnecting_thrice(&ids[..1000])).await;
    hook.wait_for("the incident", 1).await;
    app.ingest(reconnecting_thrice(&ids[1000..])).await;
    let alerts = wait_alerts(&app, "session=b199&code=RECONNECT_ATTEMPTS", |v| {
        v["total"] == 1
    })
    .await;
    assert_eq!(alerts["alerts"][0]["folded"], true, "{alerts}");
    let got = after_corruption_marker(&hook, &app, "marker").await;
    assert!(
        got.iter()
            .all(|r| r.body["groupLabels"]["code"] != "RECONNECT_ATTEMPTS"),
        "{:#?}",
        got.iter()
            .map(|r| &r.body["groupLabels"])
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn an_alert_resolves_in_the_group_it_fired_in_even_if_its_labels_changed() {
    let (hook, app) =
        hook_app(r#"group_wait = "0s", group_interval = "1s", group_by = ["team"]"#).await;
    app.ingest(json!([
        labelled("s1", json!({"team": "pay"})),
        logged_out("s1"),
    ]))
    .await;
    let got = hook.wait_for("firing", 1).await;
    assert_eq!(got[0].body["groupLabels"], json!({"team": "pay"}));
    app.ingest(json!([
        labelled("s1", json!({"team": "ops"})),
        connected("s1"),
    ]))
    .await;
    let got = hook.wait_for("resolved", 2).await;
    assert_eq!(got[1].body["status"], "resolved");
    assert_eq!(
        got[1].body["groupLabels"],
        json!({"team": "pay"}),
        "the group that was told it fires"
    );
    assert_eq!(got[1].body["resolved"][0]["labels"], json!({"team": "pay"}));
}

#[tokio::test]
async fn a_session_leaving_a_running_incident_is_paged_for_what_still_fires() {
    let (hook, app) = incident_app("0s", "").await;
    let ids = numbered("s", 20, 2);
    connect_with_marker(&app, &ids).await;
    let mut down: Vec<Value> = ids.iter().map(|id| reconnecting(id)).collect();
    down.push(failed_validation("s00"));
    app.ingest(Value::Array(down)).await;
    let got = hook.wait_for("the incident", 1).await;
    assert_eq!(got[0].body["groupLabels"]["code"], "FLEET_INCIDENT");
    // Folded while s00 is down: a marker queued after it arrives, and the
    // corruption has not been said.
    let got = after_breaker_marker(&hook, &app).await;
    assert!(
        got.iter()
            .all(|x| x.body["groupLabels"]["code"] != "SESSION_CORRUPTION"),
        "folded while s00 is covered"
    );
    // s00 reconnects: no longer covered, and its corruption still fires.
    app.ingest(json!([connected("s00")])).await;
    let (_, page) = wait_group(&hook, "s00's own page", "SESSION_CORRUPTION").await;
    assert_eq!(page.body["firing"][0]["session"], "s00");
    let incident = app.get_json("/alerts?code=FLEET_INCIDENT", 200).await;
    assert_eq!(
        incident["alerts"][0]["affected"], 19,
        "the incident goes on without it"
    );
}

#[tokio::test]
async fn a_silenced_incident_is_said_when_its_silence_ends() {
    let (hook, app) =
        hook_app(r#"incident_for = "0s", group_wait = "0s", group_interval = "1s""#).await;
    let (code, created) = app
        .post_to(
            "/v1/silences",
            json!({
                "matchers": [{"name": "alertname", "value": "FLEET_INCIDENT"}],
                "endsAt": in_future(3600), "createdBy": "ops", "comment": "planned carrier work",
            }),
        )
        .await;
    assert_eq!(code, 200, "{created}");
    let ids = numbered("s", 10, 1);
    connect_with_marker(&app, &ids).await;
    app.ingest(each(&ids, disconnected)).await;
    let a = wait_alerts(&app, "code=FLEET_INCIDENT", |v| v["total"] == 1).await;
    assert_eq!(a["alerts"][0]["silenced"], true, "{a}");
    // A marker in a group of its own, queued after the incident: once it
    // arrives, the incident would have too, had the silence not held it.
    let got = after_corruption_marker(&hook, &app, "marker").await;
    assert!(
        got.iter()
            .all(|r| r.body["groupLabels"]["code"] != "FLEET_INCIDENT"),
        "nothing of the incident while silenced"
    );
    let id = created["id"].as_str().unwrap();
    let r = expire_silence(&app, id, None).await;
    assert_eq!(r.status(), 200);
    hook.wait_until("the incident once unsilenced", WAIT, |r| {
        r.iter()
            .any(|x| x.body["groupLabels"]["code"] == "FLEET_INCIDENT")
    })
    .await;
}

#[tokio::test]
async fn an_incident_that_never_fires_unfolds_what_it_held_back() {
    // incident_for far away: the incident stays pending, folding; then
    // most sessions come back, it is cancelled, and what still fires is
    // sent one by one, once.
    let (hook, app) = incident_app("4m", "").await;
    let ids = numbered("s", 20, 2);
    connect_with_marker(&app, &ids).await;
    app.ingest(reconnecting_thrice(&ids)).await;
    let folded = wait_alerts(&app, "code=RECONNECT_ATTEMPTS", |v| v["total"] == 20).await;
    assert!(
        folded["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["folded"] == true),
        "folded while the incident is pending: {folded}"
    );
    app.ingest(json!([breaker_open("marker")])).await;
    let got = hook.wait_for("the marker", 1).await;
    assert_eq!(got.len(), 1, "nothing but the marker while pending");
    // 15 come back: 5 still down is below the bound; the incident is
    // cancelled and the 5 are paged.
    app.ingest(each(&ids[5..], connected)).await;
    let (got, page) = wait_group(&hook, "the five", "RECONNECT_ATTEMPTS").await;
    let mut sessions = firing_sessions(&page);
    sessions.sort_unstable();
    assert_eq!(sessions, ["s00", "s01", "s02", "s03", "s04"]);
    assert!(
        got.iter()
            .all(|x| x.body["groupLabels"]["code"] != "FLEET_INCIDENT"),
        "the incident never fired"
    );
}

#[tokio::test]
async fn a_level_change_resolves_the_old_level_where_only_it_was_routed() {
    // MISSED_HEARTBEATS critical (14 missed in a 5 s window), then warning
    // (3) when the bigger gap leaves the window, then resolved. Critical
    // goes to `oncall` only; `oncall` must hear it end when it turns
    // warning, not keep it firing.
    let oncall = FakeReceiver::start(Kind::Webhook(None)).await;
    let chat = FakeReceiver::start(Kind::Webhook(None)).await;
    let app = spawn_alerting(&format!(
        r#"
        [thresholds]
        heartbeat_interval = "1s"
        missed_heartbeat_window = "5s"
        [alerting]
        for = "0s"
        group_wait = "0s"
        group_interval = "1s"
        {}{}
        [[routes]]
        receiver = "oncall"
        match = {{ level = "critical" }}
        continue = true
        [[routes]]
        receiver = "chat"
        "#,
        webhook("oncall", &oncall.url("/")),
        webhook("chat", &chat.url("/"))
    ))
    .await;
    let now = wapulse::clock::now();
    let at = |secs: f64| {
        now.minus(wapulse_core::DurationMs::from_millis(
            (secs * 1000.0) as u64,
        ))
        .to_rfc3339()
    };
    app.ingest(json!([
        {"session": "s1", "type": "state", "state": "connected", "at": at(30.0)},
        {"session": "s1", "type": "heartbeat", "at": at(15.0)},
        {"session": "s1", "type": "heartbeat", "at": at(4.0)},
        {"session": "s1", "type": "heartbeat", "at": at(0.5)},
    ]))
    .await;
    let got = oncall.wait_for("critical at oncall", 1).await;
    assert_eq!(got[0].body["firing"][0]["code"], "MISSED_HEARTBEATS");
    assert_eq!(got[0].body["firing"][0]["level"], "critical");
    let got = oncall
        .wait_until("its end at oncall", WAIT, |r| {
            r.iter().any(|x| x.body["status"] == "resolved")
        })
        .await;
    let end = got.iter().find(|x| x.body["status"] == "resolved").unwrap();
    assert_eq!(end.body["resolved"][0]["level"], "critical");
    // chat heard it all: critical, then warning, then resolved.
    chat.wait_until("warning at chat", WAIT, |r| {
        r.iter().any(|x| {
            x.body["firing"]
                .as_array()
                .is_some_and(|f| f.iter().any(|a| a["level"] == "warning"))
        })
    })
    .await;
}

#[tokio::test]
async fn a_flapping_session_is_said_to_flap_once_then_pages_no_more() {
    let (hook, app) =
        hook_app(r#"group_wait = "0s", group_interval = "1s", flap_threshold = 3"#).await;
    // Each step waits until the evaluator has seen it, so every bounce is
    // its own transition.
    for round in 0..3 {
        app.ingest(json!([logged_out("s1")])).await;
        wait_alerts(&app, "session=s1", |v| v["total"] == 1).await;
        if round < 2 {
            app.ingest(json!([connected("s1")])).await;
            wait_alerts(&app, "session=s1", |v| v["total"] == 0).await;
        }
    }
    let shown = wait_alerts(&app, "session=s1", |v| v["alerts"][0]["flapping"] == true).await;
    assert_eq!(shown["alerts"][0]["state"], "firing");
    hook.wait_until("the flapping message", WAIT, |r| {
        r.iter().any(|x| x.body["firing"][0]["flapping"] == true)
    })
    .await;
    // More bounces: held firing, nothing more is said about s1.
    for _ in 0..3 {
        app.ingest(json!([connected("s1")])).await;
        app.ingest(json!([logged_out("s1")])).await;
    }
    let got = after_breaker_marker(&hook, &app).await;
    let about_s1: Vec<String> = got
        .iter()
        .filter(|x| x.body["groupLabels"]["code"] == "LOGGED_OUT")
        .map(|x| {
            format!(
                "{}{}",
                x.body["status"].as_str().unwrap(),
                if x.body["firing"][0]["flapping"] == true {
                    "+flapping"
                } else {
                    ""
                }
            )
        })
        .collect();
    // Bounces quicker than group_interval fold into the group's next
    // message; what matters: flapping is said once, and after it nothing
    // more about s1.
    let flapping_at = about_s1
        .iter()
        .position(|m| m == "firing+flapping")
        .expect("the flapping is said");
    assert_eq!(
        flapping_at + 1,
        about_s1.len(),
        "nothing after the flapping message: {about_s1:?}"
    );
    assert_eq!(about_s1[0], "firing", "{about_s1:?}");
    let still = app.get_json("/alerts?session=s1", 200).await;
    assert_eq!(still["alerts"][0]["state"], "firing", "held while flapping");
}
