//! Silences: a silenced alert or incident shows, sends nothing, and is
//! said once its silence ends; the silences API refuses what is wrong.

use serde_json::{Value, json};

use crate::support::*;

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
