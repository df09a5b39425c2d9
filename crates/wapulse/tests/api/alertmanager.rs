//! A real Alertmanager: wapulse's alerts arrive with the documented
//! labels, stay active while firing across resends, end on resolve, and
//! two wapulse processes sending the same alert make one alert.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_a_real_alertmanager_and_two_senders_make_one_alert() {
    let am = AlertmanagerServer::start();
    let config = format!(
        r#"
        [alerting]
        external_url = "https://wa.example"

        [[receivers]]
        name = "am"
        kind = "alertmanager"
        url = ["{}"]
        interval = "500ms"
        "#,
        am.url()
    );
    let one = spawn_alerting(&config).await;
    let two = spawn_alerting(&config).await;
    let events = json!([
        {"session": "s1", "type": "labels", "labels": {"region": "eu-1", "tenant": "acme"}},
        {"session": "s1", "type": "state", "state": "connected"},
        {"session": "s1", "type": "state", "state": "logged_out"},
    ]);
    one.ingest(events.clone()).await;
    two.ingest(events).await;

    let alerts = am
        .wait_active("LOGGED_OUT", "the alert arrives", |a| !a.is_empty())
        .await;
    assert_eq!(alerts.len(), 1, "two senders, one alert: {alerts:#?}");
    let a = &alerts[0];
    assert_eq!(
        a["labels"],
        json!({"alertname": "LOGGED_OUT", "session": "s1", "severity": "critical", "region": "eu-1", "tenant": "acme"}),
        "documented labels, nothing replica-specific"
    );
    assert!(
        a["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("logged out")
    );
    assert_eq!(
        a["generatorURL"], "https://wa.example/ui/sessions/s1",
        "links to the session's page in the dashboard"
    );
    let watchdog = am
        .wait_active("Watchdog", "the Watchdog", |a| !a.is_empty())
        .await;
    assert_eq!(watchdog.len(), 1, "one Watchdog from both: {watchdog:#?}");

    // Firing alerts are sent again every 500 ms with endsAt 2 s ahead:
    // watch it updated over more than 4 intervals, still active.
    let mut seen = std::collections::BTreeSet::new();
    let started = Instant::now();
    let resent = am
        .wait_active("LOGGED_OUT", "resent while firing", |a| {
            if let Some(u) = a.first().and_then(|x| x["updatedAt"].as_str()) {
                seen.insert(u.to_owned());
            }
            a.len() == 1 && seen.len() >= 6 && started.elapsed() > Duration::from_millis(2500)
        })
        .await;
    // Judged on the copy that was read (a second read could come after a
    // late resend let it lapse on a loaded machine).
    let at =
        |k: &str| wapulse_core::Timestamp::parse_rfc3339(resent[0][k].as_str().unwrap()).unwrap();
    assert!(
        at("endsAt") > at("updatedAt"),
        "endsAt is ahead while firing"
    );

    // Resolved explicitly: gone from the active alerts.
    let back = json!([{"session": "s1", "type": "state", "state": "connected"}]);
    one.ingest(back.clone()).await;
    two.ingest(back).await;
    am.wait_active("LOGGED_OUT", "the resolve", |a| a.is_empty())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolve_is_explicit_and_a_level_change_ends_the_old_severity() {
    let am = AlertmanagerServer::start();
    // Resent every minute: endsAt is 4 minutes ahead, so an alert gone
    // within seconds was resolved by wapulse, not expired by Alertmanager.
    let app = spawn_alerting(&format!(
        r#"
        [thresholds]
        reconnect_latency_warning = "1s"
        reconnect_latency_critical = "10s"
        [alerting]
        for = "0s"
        [[receivers]]
        name = "am"
        kind = "alertmanager"
        url = "{}"
        interval = "1m"
        "#,
        am.url()
    ))
    .await;
    app.ingest(json!([
        {"session": "s1", "type": "state", "state": "connected"},
        {"session": "s1", "type": "state", "state": "reconnecting"},
    ]))
    .await;
    // SLOW_RECONNECT: warning after 1 s, critical after 10 s (room for a
    // slow machine to judge and send the warning first).
    let warning = am
        .wait_active("SLOW_RECONNECT", "the warning", |a| {
            a.iter().any(|x| x["labels"]["severity"] == "warning")
        })
        .await;
    assert_eq!(warning.len(), 1);
    let critical = am
        .wait_active("SLOW_RECONNECT", "the critical, alone", |a| {
            a.len() == 1 && a[0]["labels"]["severity"] == "critical"
        })
        .await;
    assert_eq!(critical[0]["labels"]["session"], "s1");
    let started = Instant::now();
    // Connected, then a quick reconnect: the last reconnect is fast again.
    app.ingest(json!([
        {"session": "s1", "type": "state", "state": "connected"},
        {"session": "s1", "type": "state", "state": "reconnecting"},
        {"session": "s1", "type": "state", "state": "connected"},
    ]))
    .await;
    am.wait_active("SLOW_RECONNECT", "the explicit resolve", |a| a.is_empty())
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "gone long before its endsAt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_alertmanager_down_does_not_hold_back_the_other() {
    let am = AlertmanagerServer::start();
    let down = free_port();
    // Resent every minute: what arrives here came through the outbox.
    let app = spawn_alerting(&format!(
        r#"
        [[receivers]]
        name = "am"
        kind = "alertmanager"
        url = ["http://127.0.0.1:{down}", "{}"]
        interval = "1m"
        "#,
        am.url()
    ))
    .await;
    app.ingest(json!([{"session": "s1", "type": "state", "state": "logged_out"}]))
        .await;
    am.wait_active("LOGGED_OUT", "the alert at the live one", |a| a.len() == 1)
        .await;
    app.ingest(json!([{"session": "s1", "type": "state", "state": "connected"}]))
        .await;
    am.wait_active("LOGGED_OUT", "its resolve at the live one", |a| {
        a.is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retired_session_s_alert_ends_in_alertmanager() {
    let am = AlertmanagerServer::start();
    let app = spawn_alerting(&format!(
        "[alerting]\nfor = \"0s\"\n[[receivers]]\nname = \"am\"\nkind = \"alertmanager\"\n\
         url = [\"{}\"]\ninterval = \"500ms\"\n",
        am.url()
    ))
    .await;
    app.ingest(json!([
        {"session": "gone", "type": "state", "state": "logged_out"},
        {"session": "kept", "type": "state", "state": "logged_out"},
    ]))
    .await;
    am.wait_active("LOGGED_OUT", "both alerts arrive", |a| a.len() == 2)
        .await;
    let r = app
        .client
        .delete(app.url("/sessions/gone"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The retired session's alert ends; the other stays active across
    // resends.
    let left = am
        .wait_active("LOGGED_OUT", "the retired alert ends", |a| a.len() == 1)
        .await;
    assert_eq!(left[0]["labels"]["session"], "kept", "{left:#?}");
}
