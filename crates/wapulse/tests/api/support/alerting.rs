//! Alerting set-ups for the notification scenarios: an app with
//! `[alerting]` and `[[receivers]]` from TOML, a stand-in receiver to send
//! to, and bounded waits on what was sent, on `/alerts` and on the outbox.

use std::time::Duration;

use serde_json::{Value, json};

use super::app::{TestApp, spawn_with};
use super::receivers::{FakeReceiver, Kind, Received};
use super::service::Settings;

/// How long a notification scenario waits for anything.
pub const WAIT: Duration = Duration::from_secs(20);

/// Loads `[alerting]`, `[[receivers]]`, `[[routes]]` and `[thresholds]`
/// from TOML, as `wapulse serve --config` would.
pub fn alerting_from(toml_text: &str) -> Settings {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wapulse.toml");
    std::fs::write(&path, toml_text).unwrap();
    Settings::load(Some(&path), |_| None).expect("config loads")
}

pub async fn spawn_alerting(toml_text: &str) -> TestApp {
    let loaded = alerting_from(toml_text);
    spawn_with(move |s| {
        s.alerting = loaded.alerting;
        s.thresholds = loaded.thresholds;
    })
    .await
}

/// A stand-in webhook receiver named `hook` (unsigned) and an app sending
/// to it, with these `[alerting]` settings.
pub async fn hook_app(alerting: &str) -> (FakeReceiver, TestApp) {
    let hook = FakeReceiver::start(Kind::Webhook(None)).await;
    let app = spawn_alerting(&format!(
        "[alerting]\n{alerting}\n[[receivers]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n",
        hook.url("/")
    ))
    .await;
    (hook, app)
}

/// Polls `/alerts?{query}` (bounded) until `done` holds; returns the body.
pub async fn wait_alerts(app: &TestApp, query: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let v = app.get_json(&format!("/alerts?{query}"), 200).await;
        if done(&v) {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "/alerts?{query}: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Posts `marker` (an event that fires `code` in a group of its own) and
/// waits until its message arrives: the outbox sends in order, so by then
/// everything queued before it has been sent, and what has not arrived was
/// not sent.
pub async fn after_marker(
    hook: &FakeReceiver,
    app: &TestApp,
    marker: Value,
    code: &str,
) -> Vec<Received> {
    app.ingest(marker).await;
    hook.wait_until("the marker", WAIT, |r| {
        r.iter().any(|x| x.body["groupLabels"]["code"] == code)
    })
    .await
}

/// Each session goes `reconnecting` three times (RECONNECT_ATTEMPTS fires).
pub fn reconnecting_thrice(ids: &[String]) -> Value {
    Value::Array(
        ids.iter()
            .flat_map(|id| {
                std::iter::repeat_n(
                    json!({"session": id, "type": "state", "state": "reconnecting"}),
                    3,
                )
            })
            .collect(),
    )
}

pub fn logged_out(session: &str) -> Value {
    json!({"session": session, "type": "state", "state": "logged_out"})
}

pub fn connected(session: &str) -> Value {
    json!({"session": session, "type": "state", "state": "connected"})
}

/// The outbox rows of the app's store: (receiver, state, attempts, last
/// error), oldest first.
pub fn outbox(app: &TestApp) -> Vec<(String, String, i64, Option<String>)> {
    let conn = rusqlite::Connection::open_with_flags(
        app.data.path().join("wapulse.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = conn
        .prepare("SELECT receiver, state, attempts, last_error FROM outbox ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

pub async fn wait_outbox(
    app: &TestApp,
    what: &str,
    done: impl Fn(&[(String, String, i64, Option<String>)]) -> bool,
) -> Vec<(String, String, i64, Option<String>)> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let rows = outbox(app);
        if done(&rows) {
            return rows;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: outbox is {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
