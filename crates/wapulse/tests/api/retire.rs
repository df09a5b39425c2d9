//! Sessions retired on purpose: `DELETE /sessions/{id}`, Evolution's
//! `remove.instance`, `retire_after`; their alerts resolve once downstream,
//! said as retired (across kill -9 too), and they leave every view while
//! their journal stays.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::process::reqwest as raw;
use crate::support::*;

const ADMIN: &str = "adm-5c1d9e0f7a";

async fn delete(app: &TestApp, id: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = app.client.delete(app.url(&format!("/sessions/{id}")));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let r = request.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// The sessions `/sessions` lists.
async fn listed(app: &TestApp) -> Vec<String> {
    let page = app.get_json("/sessions?limit=1000", 200).await;
    page["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Fires LOGGED_OUT for `session` and waits for its firing on `hook`: a
/// marker after which anything said before it has arrived (one group's
/// messages leave in order).
async fn marker(app: &TestApp, hook: &FakeReceiver, session: &str) -> Vec<Received> {
    app.ingest(json!([logged_out(session)])).await;
    hook.wait_until("the marker's page", WAIT, |got| {
        got.iter()
            .any(|r| r.answered == 200 && r.body.to_string().contains(session))
    })
    .await
}

/// Webhook messages answered 200 that resolve `session`.
fn resolves_of<'a>(got: &'a [Received], session: &str) -> Vec<&'a Value> {
    got.iter()
        .filter(|r| r.answered == 200)
        .flat_map(|r| r.body["resolved"].as_array().into_iter().flatten())
        .filter(|a| a["session"] == session)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_session_leaves_every_view_and_its_alerts_resolve_once_as_retired() {
    let slack = FakeReceiver::start(Kind::Slack).await;
    let pd = FakeReceiver::start(Kind::PagerDuty).await;
    let hook = FakeReceiver::start(Kind::Webhook(None)).await;
    let loaded = alerting_from(&alerting_config(
        r#"for = "0s", group_wait = "0s", group_interval = "1s""#,
        &[
            receiver("chat", "slack", &slack.url("/services/T0/B0/X"), ""),
            receiver(
                "oncall",
                "pagerduty",
                &pd.url("/v2/enqueue"),
                r#"routing_key = "R0UT1NGKEY""#,
            ),
            webhook("hook", &hook.url("/")),
        ],
    ));
    let app = spawn_with(move |s| {
        s.alerting = loaded.alerting;
        s.admin_token = secret(ADMIN);
    })
    .await;
    app.ingest(json!([
        {"session": "s1", "type": "labels", "labels": {"tenant": "acme"}},
        logged_out("s1"),
        connected("s2"),
    ]))
    .await;
    slack.wait_for("slack firing", 1).await;
    pd.wait_for("pagerduty trigger", 1).await;
    hook.wait_for("webhook firing", 1).await;

    // Only the admin token retires; an unknown id is 404, a bad one 400,
    // the default session 409, each with a JSON error.
    assert_eq!(delete(&app, "s1", None).await.0, 401);
    assert_eq!(delete(&app, "s1", Some("wrong")).await.0, 401);
    let (code, body) = delete(&app, "nobody", Some(ADMIN)).await;
    assert_eq!(code, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("nobody"), "{body}");
    assert_eq!(delete(&app, "bad%20id", Some(ADMIN)).await.0, 400);
    let (code, body) = delete(&app, "default", Some(ADMIN)).await;
    assert_eq!(code, 409, "{body}");
    assert!(body.to_string().contains("default session"), "{body}");

    let (code, body) = delete(&app, "s1", Some(ADMIN)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["retired"], "s1");
    assert!(body["at"].is_string());
    assert_eq!(delete(&app, "s1", Some(ADMIN)).await.0, 404, "once gone");

    // Gone from every view: lists, one-session reads, counts, metrics,
    // alerts.
    assert_eq!(listed(&app).await, ["default", "s2"]);
    assert_eq!(app.get("/sessions/s1/health").await.status(), 404);
    assert_eq!(app.get("/sessions/s1/observe").await.status(), 404);
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(!metrics.contains("session=\"s1\""), "{metrics}");
    let states: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("wa_sessions{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(states, 2.0, "default and s2: {metrics}");
    let alerts = wait_alerts(&app, "", |a| !a["alerts"].to_string().contains("\"s1\"")).await;
    assert!(!alerts.to_string().contains("LOGGED_OUT"), "{alerts}");
    let health = app.get_json_any("/api/health").await;
    assert!(!health.to_string().contains("\"s1\""), "{health}");
    // The dashboard: the session list and the session's page.
    let (code, page) = app.get_text("/ui/sessions").await;
    assert_eq!(code, 200);
    assert!(page.contains("/ui/sessions/s2"), "s2 listed");
    assert!(!page.contains("/ui/sessions/s1"), "s1 gone from the page");
    assert_eq!(app.get("/ui/sessions/s1").await.status(), 404);

    // Its journal stays, ending with the retire.
    let journal = app.get_json("/sessions/s1/events", 200).await;
    assert_eq!(journal["retired"], true);
    assert_eq!(journal["events"][0]["type"], "retire");
    assert_eq!(journal["events"][1]["type"], "state");

    // Resolved downstream, said as retired, once per receiver.
    let got = hook
        .wait_until("the retired resolve", WAIT, |got| {
            !resolves_of(got, "s1").is_empty()
        })
        .await;
    let resolved = resolves_of(&got, "s1");
    assert_eq!(resolved[0]["retired"], true, "{:?}", resolved[0]);
    assert_eq!(resolved[0]["code"], "LOGGED_OUT");
    assert!(
        resolved[0]["summary"].as_str().unwrap().contains("retired"),
        "{:?}",
        resolved[0]
    );
    let s = slack.wait_for("slack resolved", 2).await;
    let text = s[1].body["text"].as_str().unwrap();
    assert!(
        text.contains("RESOLVED") && text.contains("retired"),
        "{text}"
    );
    let p = pd.wait_for("pagerduty resolve", 2).await;
    assert_eq!(p[1].body["event_action"], "resolve");
    assert_eq!(p[1].body["dedup_key"], p[0].body["dedup_key"]);
    // The history says why.
    let history = app.get_json("/alerts/history?limit=50", 200).await;
    assert!(
        history
            .to_string()
            .contains("\\\"reason\\\":\\\"retired\\\"")
            || history.to_string().contains("\"reason\":\"retired\""),
        "{history}"
    );

    // A marker through the same groups: nothing of s1 is said again.
    let got = marker(&app, &hook, "s3").await;
    assert_eq!(resolves_of(&got, "s1").len(), 1, "{got:#?}");
    let s = slack
        .wait_until("the marker on slack", WAIT, |got| {
            got.iter().any(|r| r.body.to_string().contains("s3"))
        })
        .await;
    let said_retired = s
        .iter()
        .filter(|r| r.body["text"].as_str().unwrap_or("").contains("retired"))
        .count();
    assert_eq!(said_retired, 1, "{s:#?}");
    for r in [&slack, &pd, &hook] {
        assert!(r.violations().is_empty(), "{:?}", r.violations());
    }

    // An event for the retired id starts it afresh: nothing of before.
    app.ingest(json!([connected("s1")])).await;
    let observe = app.get_json("/sessions/s1/observe", 200).await;
    assert_eq!(observe["session"]["state"], "connected", "{observe}");
    assert!(listed(&app).await.contains(&"s1".to_owned()));
    let alerts = app.get_json("/sessions/s1/alerts", 200).await;
    assert_eq!(alerts["alerts"], json!([]), "{alerts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retire_through_ingest_is_a_retire_and_never_adds_a_session() {
    let (hook, app) = hook_app(r#"for = "0s", group_wait = "0s", group_interval = "1s""#).await;
    app.ingest(json!([logged_out("s1")])).await;
    hook.wait_for("the page", 1).await;
    let (code, body) = app
        .post_events(json!([
            {"session": "s1", "type": "retire", "reason": "customer churned"},
            {"session": "ghost", "type": "retire"},
        ]))
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(listed(&app).await, ["default"], "a retire adds nothing");
    let journal = app.get_json("/sessions/s1/events", 200).await;
    assert_eq!(journal["events"][0]["reason"], "customer churned");
    let got = hook
        .wait_until("the retired resolve", WAIT, |got| {
            !resolves_of(got, "s1").is_empty()
        })
        .await;
    assert_eq!(resolves_of(&got, "s1")[0]["retired"], true);
    // The default session cannot be retired this way either: nothing of
    // the batch is applied.
    let (code, body) = app
        .post_events(json!([connected("s5"), {"type": "retire"}]))
        .await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["index"], 1, "{body}");
    assert_eq!(body["field"], "type", "{body}");
    assert_eq!(listed(&app).await, ["default"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_evolution_instance_is_retired_and_comes_back_afresh() {
    let (hook, app) = hook_app(r#"for = "0s", group_wait = "0s", group_interval = "1s""#).await;
    let delivery = |event: &str, data: Value| {
        json!({
            "event": event, "instance": "shop1", "data": data,
            "destination": "http://wapulse", "date_time": "2026-12-06T10:00:00.000Z",
            "sender": "5511999999999@s.whatsapp.net", "server_url": "http://evolution:8080",
            "apikey": "B6D711FCDE4D4FD5936544120E713976"
        })
    };
    let (code, body) = app
        .post_to(
            "/v1/webhooks/evolution",
            delivery(
                "connection.update",
                json!({"instance": "shop1", "state": "close", "statusReason": 401}),
            ),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    hook.wait_for("the logout page", 1).await;
    // Evolution sends `remove.instance` with `data: null`.
    let (code, body) = app
        .post_to(
            "/v1/webhooks/evolution",
            delivery("remove.instance", Value::Null),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["accepted"], 1, "{body}");
    assert!(!listed(&app).await.contains(&"shop1".to_owned()));
    let got = hook
        .wait_until("the retired resolve", WAIT, |got| {
            !resolves_of(got, "shop1").is_empty()
        })
        .await;
    assert_eq!(resolves_of(&got, "shop1")[0]["retired"], true);
    // A retry of the same delivery changes nothing.
    let (code, _) = app
        .post_to(
            "/v1/webhooks/evolution",
            delivery("remove.instance", Value::Null),
        )
        .await;
    assert_eq!(code, 200);
    assert!(!listed(&app).await.contains(&"shop1".to_owned()));
    // A new instance under the same name starts afresh.
    let (code, _) = app
        .post_to(
            "/v1/webhooks/evolution",
            delivery(
                "connection.update",
                json!({"instance": "shop1", "state": "open", "statusReason": 200}),
            ),
        )
        .await;
    assert_eq!(code, 200);
    let observe = app.get_json("/sessions/shop1/observe", 200).await;
    assert_eq!(observe["session"]["state"], "connected");
    assert_eq!(
        app.get_json("/sessions/shop1/alerts", 200).await["alerts"],
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retire_after_retires_idle_sessions_that_are_not_connected() {
    let app = spawn_with(|s| {
        s.sessions.retire_after = Some(wapulse_core::DurationMs::from_secs(2));
    })
    .await;
    let at = ago(10);
    app.ingest(json!([
        {"session": "idle", "type": "state", "state": "disconnected", "at": at},
        {"session": "stopped", "type": "state", "state": "stopped", "at": at},
        {"session": "up", "type": "state", "state": "connected", "at": at},
    ]))
    .await;
    let deadline = std::time::Instant::now() + WAIT;
    while listed(&app).await != ["default", "up"] {
        assert!(
            std::time::Instant::now() < deadline,
            "still listed: {:?}",
            listed(&app).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let journal = app.get_json("/sessions/idle/events", 200).await;
    assert_eq!(journal["events"][0]["type"], "retire");
    assert!(
        journal["events"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("retire_after"),
        "{journal}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retire_killed_before_its_resolve_was_sent_resolves_once_after_restart() {
    let hook = FakeReceiver::start(Kind::Webhook(None)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("wapulse.toml");
    std::fs::write(
        &config,
        format!(
            "admin_token = \"{ADMIN}\"\n[alerting]\nfor = \"0s\"\ngroup_wait = \"0s\"\n\
             group_interval = \"1s\"\n{}",
            webhook("hook", &hook.url("/"))
        ),
    )
    .unwrap();
    let (mut first, port) = serve_on(dir.path(), &config);
    let base = format!("http://127.0.0.1:{port}");
    let (code, body) = raw::send(
        &format!("{base}/v1/events"),
        "POST",
        Some(&json!([logged_out("s1")]).to_string()),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    hook.wait_for("the page", 1).await;
    // The receiver now refuses everything: the resolve cannot leave.
    hook.answer_with(Fault::Status(503));
    let response = reqwest::Client::new()
        .delete(format!("{base}/sessions/s1"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Killed at once: before or after the evaluator wrote the resolve,
    // never after it was delivered.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    assert_eq!(resolves_of(&hook.received(), "s1").len(), 0);

    hook.answer_with(Fault::Status(200));
    let (_second, port) = serve_on(dir.path(), &config);
    let got = hook
        .wait_until("the retired resolve after the restart", WAIT, |got| {
            !resolves_of(got, "s1").is_empty()
        })
        .await;
    assert_eq!(resolves_of(&got, "s1")[0]["retired"], true);
    // A marker through the same group: the resolve was said once.
    let (code, _) = raw::send(
        &format!("http://127.0.0.1:{port}/v1/events"),
        "POST",
        Some(&json!([logged_out("s9")]).to_string()),
    )
    .unwrap();
    assert_eq!(code, 200);
    let got = hook
        .wait_until("the marker", WAIT, |got| {
            got.iter()
                .any(|r| r.answered == 200 && r.body.to_string().contains("s9"))
        })
        .await;
    assert_eq!(resolves_of(&got, "s1").len(), 1, "{got:#?}");
    let (code, body) = raw::body(&format!("http://127.0.0.1:{port}/sessions")).unwrap();
    assert_eq!(code, 200);
    assert!(!body.contains("\"s1\""), "{body}");
    assert!(hook.violations().is_empty(), "{:?}", hook.violations());
}
