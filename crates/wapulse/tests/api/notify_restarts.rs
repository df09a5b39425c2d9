//! Notifications across restarts: `kill -9` with pages pending, a
//! restart keeping each alert where it was, and the dead man's switch
//! pinged while wapulse is healthy.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::process::reqwest as raw;
use crate::support::*;

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
        // The two firings are the first rows; on a slow machine the
        // resolve of VALIDATION_FAILURES (5 s on) may already follow them.
        if ids.len() >= 2 {
            break ids[..2]
                .iter()
                .map(|id| format!("msg_wapulse_{id}"))
                .collect();
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
