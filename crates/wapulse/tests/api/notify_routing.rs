//! Where and how alerts are said: routes by label and level, a level
//! change, the group an alert fired in, flapping, and the `/alerts`
//! filters.

use serde_json::json;

use crate::support::*;

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
async fn a_level_change_resolves_the_old_level_where_only_it_was_routed() {
    // MISSED_HEARTBEATS critical (24 + 5 missed in a 15 s window), then
    // warning (5) when the bigger gap leaves the window 9 s from now, then
    // resolved. Critical goes to `oncall` only; `oncall` must hear it end
    // when it turns warning, not keep it firing. (The 9 s leave room for a
    // slow machine to judge the critical level before it passes.)
    let oncall = FakeReceiver::start(Kind::Webhook(None)).await;
    let chat = FakeReceiver::start(Kind::Webhook(None)).await;
    let app = spawn_alerting(&format!(
        r#"
        [thresholds]
        heartbeat_interval = "1s"
        missed_heartbeat_window = "15s"
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
        {"session": "s1", "type": "state", "state": "connected", "at": at(40.0)},
        {"session": "s1", "type": "heartbeat", "at": at(30.0)},
        {"session": "s1", "type": "heartbeat", "at": at(6.0)},
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
