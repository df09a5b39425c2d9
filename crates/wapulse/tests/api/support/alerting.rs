//! Alerting set-ups for the notification scenarios: the config text for
//! `[alerting]` and `[[receivers]]`, an app sending to a stand-in receiver,
//! the events that fire and clear alerts, and bounded waits on what was
//! sent, on `/alerts` and on the outbox.

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

/// A `[[receivers]]` table: `name` of `kind` sending to `url`, then
/// `extra` (`key = value` lines, or nothing).
pub fn receiver(name: &str, kind: &str, url: &str, extra: &str) -> String {
    format!("[[receivers]]\nname = \"{name}\"\nkind = \"{kind}\"\nurl = \"{url}\"\n{extra}\n")
}

/// An unsigned webhook receiver `name` sending to `url`.
pub fn webhook(name: &str, url: &str) -> String {
    receiver(name, "webhook", url, "")
}

/// The `[alerting]` table with `settings`, then `receivers` (see
/// [`receiver`]). `settings` is one line, `key = value, …`: the table is
/// written inline (`alerting = { … }`, the same table to TOML).
pub fn alerting_config(settings: &str, receivers: &[String]) -> String {
    format!("alerting = {{ {settings} }}\n{}", receivers.concat())
}

/// [`alerting_config`] with one unsigned webhook receiver named `hook`
/// sending to `hook`.
pub fn hook_config(settings: &str, hook: &FakeReceiver) -> String {
    alerting_config(settings, &[webhook("hook", &hook.url("/"))])
}

/// A stand-in webhook receiver named `hook` (unsigned) and an app sending
/// to it, with these `[alerting]` settings (see [`alerting_config`]).
pub async fn hook_app(settings: &str) -> (FakeReceiver, TestApp) {
    let hook = FakeReceiver::start(Kind::Webhook(None)).await;
    let app = spawn_alerting(&hook_config(settings, &hook)).await;
    (hook, app)
}

/// [`hook_app`] where alerts fire at once (`for = "0s"`), an incident
/// after `incident_for`, and a group is sent at once and then at most every
/// second; `extra`: more `[alerting]` settings (`key = value, …`).
pub async fn incident_app(incident_for: &str, extra: &str) -> (FakeReceiver, TestApp) {
    let mut settings = format!(
        r#"for = "0s", incident_for = "{incident_for}", group_wait = "0s", group_interval = "1s""#
    );
    if !extra.is_empty() {
        settings = format!("{settings}, {extra}");
    }
    hook_app(&settings).await
}

impl FakeReceiver {
    /// Waits (for at most [`WAIT`]) until at least `n` requests arrived.
    pub async fn wait_for(&self, what: &str, n: usize) -> Vec<Received> {
        self.wait_until(what, WAIT, |r| r.len() >= n).await
    }
}

/// Waits until a message about group `code` arrives; returns all that
/// arrived and the first such message.
pub async fn wait_group(hook: &FakeReceiver, what: &str, code: &str) -> (Vec<Received>, Received) {
    let got = hook
        .wait_until(what, WAIT, |r| {
            r.iter().any(|x| x.body["groupLabels"]["code"] == code)
        })
        .await;
    let message = got
        .iter()
        .find(|x| x.body["groupLabels"]["code"] == code)
        .unwrap()
        .clone();
    (got, message)
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

/// Waits (bounded) until the evaluator has judged everything written before
/// the call, and returns `/alerts` as that judgement left it. A pass drains
/// the changes it was told of before it reads the clock, so the first pass
/// stamped after the call may have missed a change told just before it;
/// the pass after that one cannot have.
pub async fn alerts_after_writes(app: &TestApp) -> Value {
    let now = wapulse::clock::now();
    let stamped_after = |v: &Value, t: wapulse_core::Timestamp| {
        v["evaluatedAt"]
            .as_str()
            .and_then(|s| wapulse_core::Timestamp::parse_rfc3339(s).ok())
            .is_some_and(|at| at > t)
    };
    let first = wait_alerts(app, "", |v| stamped_after(v, now)).await;
    let first_at =
        wapulse_core::Timestamp::parse_rfc3339(first["evaluatedAt"].as_str().unwrap()).unwrap();
    wait_alerts(app, "", |v| stamped_after(v, first_at)).await
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

/// [`after_marker`] with session `marker` opening its circuit breaker.
pub async fn after_breaker_marker(hook: &FakeReceiver, app: &TestApp) -> Vec<Received> {
    after_marker(
        hook,
        app,
        json!([breaker_open("marker")]),
        "CIRCUIT_BREAKER_OPEN",
    )
    .await
}

/// [`after_marker`] with `session` failing its integrity check.
pub async fn after_corruption_marker(
    hook: &FakeReceiver,
    app: &TestApp,
    session: &str,
) -> Vec<Received> {
    after_marker(
        hook,
        app,
        json!([failed_validation(session)]),
        "SESSION_CORRUPTION",
    )
    .await
}

/// `n` session ids: `prefix`, then the number zero-padded to `width`.
pub fn numbered(prefix: &str, n: usize, width: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:0width$}")).collect()
}

/// `event` for each of `ids`, as one batch.
pub fn each(ids: &[String], event: fn(&str) -> Value) -> Value {
    Value::Array(ids.iter().map(|id| event(id)).collect())
}

/// Connects `ids` and a session named `marker` (for the markers above).
pub async fn connect_with_marker(app: &TestApp, ids: &[String]) {
    let mut up: Vec<Value> = ids.iter().map(|id| connected(id)).collect();
    up.push(connected("marker"));
    app.ingest(Value::Array(up)).await;
}

/// Each session goes `reconnecting` three times (RECONNECT_ATTEMPTS fires).
pub fn reconnecting_thrice(ids: &[String]) -> Value {
    Value::Array(
        ids.iter()
            .flat_map(|id| std::iter::repeat_n(reconnecting(id), 3))
            .collect(),
    )
}

pub fn logged_out(session: &str) -> Value {
    json!({"session": session, "type": "state", "state": "logged_out"})
}

pub fn connected(session: &str) -> Value {
    json!({"session": session, "type": "state", "state": "connected"})
}

pub fn disconnected(session: &str) -> Value {
    json!({"session": session, "type": "state", "state": "disconnected"})
}

pub fn reconnecting(session: &str) -> Value {
    json!({"session": session, "type": "state", "state": "reconnecting"})
}

/// A failed integrity check (SESSION_CORRUPTION, VALIDATION_FAILURES).
pub fn failed_validation(session: &str) -> Value {
    json!({"session": session, "type": "validation", "valid": false})
}

pub fn breaker_open(session: &str) -> Value {
    json!({"session": session, "type": "circuit_breaker", "open": true})
}

/// Sets `session`'s labels.
pub fn labelled(session: &str, labels: Value) -> Value {
    json!({"session": session, "type": "labels", "labels": labels})
}

/// The sessions of the alerts a message says fire.
pub fn firing_sessions(message: &Received) -> Vec<&str> {
    message.body["firing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["session"].as_str().unwrap())
        .collect()
}

/// `DELETE /v1/silences/{id}`, with `token` as the bearer token if given.
pub async fn expire_silence(app: &TestApp, id: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = app.client.delete(app.url(&format!("/v1/silences/{id}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// `GET /v1/silences` with this bearer token.
pub async fn list_silences(app: &TestApp, token: &str) -> Value {
    app.client
        .get(app.url("/v1/silences"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// An outbox row: receiver, state, attempts, last error.
pub type OutboxRow = (String, String, i64, Option<String>);

/// The outbox rows of the app's store, oldest first.
pub fn outbox(app: &TestApp) -> Vec<OutboxRow> {
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

/// Polls the outbox (bounded) until `done` holds; returns the rows.
pub async fn wait_outbox(
    app: &TestApp,
    what: &str,
    done: impl Fn(&[OutboxRow]) -> bool,
) -> Vec<OutboxRow> {
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
