//! Notifications delivered: a signed webhook told once, then of the
//! resolve; Slack's and PagerDuty's documented payloads; retries through
//! faults and a refused connection; a receiver's rate; and what is owed to
//! a receiver no longer configured.

use std::time::Duration;

use serde_json::json;

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
        trigger["links"][0]["href"], "https://wapulse.example/ui/sessions?code=LOGGED_OUT",
        "30 sessions with one code: the dashboard's list of them"
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
async fn a_receiver_is_sent_no_faster_than_its_rate() {
    let hook = FakeReceiver::start(Kind::Webhook(None)).await;
    let app = spawn_alerting(&alerting_config(
        r#"for = "0s", group_wait = "0s""#,
        &[receiver(
            "hook",
            "webhook",
            &hook.url("/"),
            "rate_per_second = 2",
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
    // At most 2 a second: the limiter spaces departures 500 ms apart. The
    // stand-in stamps arrivals, and a send that arrives late shortens the
    // next gap by as much, so each gap is held to half the spacing and
    // the whole run to three spacings less one half (unlimited, all four
    // arrive within a few milliseconds).
    for pair in got.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap >= Duration::from_millis(250), "{gap:?}");
    }
    let span = got[3].at.duration_since(got[0].at);
    assert!(span >= Duration::from_millis(1250), "{span:?}");
}

/// A receiver answers; it does not send wapulse elsewhere. The review
/// found receivers followed up to ten redirects: now a 3xx is a refusal,
/// given up and said, and the place it points to is never asked.
#[tokio::test]
async fn a_receiver_that_redirects_is_not_followed() {
    let elsewhere = FakeReceiver::start(Kind::Webhook(None)).await;
    let target = elsewhere.url("/stolen");
    let redirecting = axum::Router::new().fallback(move || {
        let target = target.clone();
        async move {
            (
                axum::http::StatusCode::TEMPORARY_REDIRECT,
                [(axum::http::header::LOCATION, target)],
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, redirecting).await });
    let app = spawn_alerting(&alerting_config(
        r#"group_wait = "0s""#,
        &[webhook("hook", &url)],
    ))
    .await;
    app.ingest(json!([connected("r1"), logged_out("r1")])).await;
    let rows = wait_outbox(&app, "the message given up", |rows| {
        rows.iter().any(|r| r.1 == "failed")
    })
    .await;
    let failed = rows.iter().find(|r| r.1 == "failed").unwrap();
    assert!(
        failed.3.as_deref().is_some_and(|e| e.contains("307")),
        "{failed:?}"
    );
    assert!(elsewhere.received().is_empty(), "the redirect was followed");
}
