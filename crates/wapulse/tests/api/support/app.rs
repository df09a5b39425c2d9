//! The app in-process on 127.0.0.1:0 ([`TestApp`]), requests to it, and
//! the times and config text the scenarios build their input from.

use std::net::SocketAddr;

use serde_json::Value;
use wapulse_core::{DurationMs, Timestamp};

use super::service::{Application, Secret, Settings, Shared};

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub state: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// The data directory; kept until the app is dropped.
    pub data: std::sync::Arc<tempfile::TempDir>,
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let data = std::sync::Arc::new(tempfile::tempdir().unwrap());
    spawn_in(data, configure).await
}

/// Starts an app on an existing data directory (a restart).
pub async fn spawn_in(
    data: std::sync::Arc<tempfile::TempDir>,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = Settings::for_bind("127.0.0.1:0".parse().unwrap());
    settings.data_dir = data.path().to_path_buf();
    configure(&mut settings);
    let app = Application::build(settings).await.expect("app builds");
    let addr = app.local_addr();
    let state = app.state();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        client: reqwest::Client::new(),
        state,
        stop: Some(stop),
        server: Some(server),
        data,
    }
}

pub fn secret(s: &str) -> Option<Secret> {
    Some(Secret::new(s))
}

/// An RFC 3339 time `secs` seconds ago.
pub fn ago(secs: u64) -> String {
    wapulse::clock::now()
        .minus(DurationMs::from_secs(secs))
        .to_rfc3339()
}

pub fn in_future(secs: u64) -> String {
    wapulse::clock::now()
        .plus(DurationMs::from_secs(secs))
        .to_rfc3339()
}

pub fn parse_ts(v: &Value) -> Timestamp {
    Timestamp::parse_rfc3339(v.as_str().expect("a timestamp string")).expect("RFC 3339")
}

impl TestApp {
    /// Stops the app the way SIGTERM does (final snapshot included) and
    /// waits until it is down; returns its data directory for a restart.
    pub async fn stop(mut self) -> std::sync::Arc<tempfile::TempDir> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        self.data.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// GET, expecting `status`, returning the JSON body.
    pub async fn get_json(&self, path: &str, status: u16) -> Value {
        let r = self.get(path).await;
        let code = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_eq!(code, status, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let r = self.get(path).await;
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// POSTs a JSON value to `/v1/events`, returning status and JSON body.
    pub async fn post_events(&self, body: Value) -> (u16, Value) {
        self.post_to("/v1/events", body).await
    }

    pub async fn post_to(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.post_response(path, &body).await;
        let code = r.status().as_u16();
        (code, r.json().await.expect("JSON answer"))
    }

    /// POSTs JSON to `path`, returning the whole response.
    pub async fn post_response(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// POSTs a raw body with this content type to `/v1/events`.
    pub async fn post_raw(&self, content_type: &str, body: impl Into<String>) -> reqwest::Response {
        self.client
            .post(self.url("/v1/events"))
            .header("content-type", content_type)
            .body(body.into())
            .send()
            .await
            .expect("request")
    }

    /// The active alert `code` of `session`, if it has one.
    pub async fn session_alert(&self, session: &str, code: &str) -> Option<Value> {
        let a = self
            .get_json(&format!("/sessions/{session}/alerts"), 200)
            .await;
        a["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["code"] == code)
            .cloned()
    }

    /// GET returning the JSON body whatever the status.
    pub async fn get_json_any(&self, path: &str) -> Value {
        self.get(path).await.json().await.expect("JSON body")
    }

    /// `wapulse_events_applied_total` from `/metrics`.
    pub async fn events_applied(&self) -> u64 {
        let (_, text) = self.get_text("/metrics").await;
        text.lines()
            .find_map(|l| l.strip_prefix("wapulse_events_applied_total "))
            .expect("events counter")
            .parse()
            .unwrap()
    }

    /// Posts events that must be accepted.
    pub async fn ingest(&self, body: Value) {
        let (code, answer) = self.post_events(body).await;
        assert_eq!(code, 200, "{answer}");
    }
}

/// Starts an app whose probes come from a config file with this text (the
/// real config path: TOML, then checks).
pub async fn spawn_with_config(toml_text: &str) -> TestApp {
    let data = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let path = data.path().join("wapulse.toml");
    std::fs::write(&path, toml_text).unwrap();
    let loaded = Settings::load(Some(&path), |_| None).expect("config loads");
    spawn_in(data, move |s| s.probes = loaded.probes).await
}

/// `first:second` of each object in `list` (a JSON array), such as
/// `session:code` of alerts.
pub fn field_pairs(list: &Value, first: &str, second: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|x| {
            format!(
                "{}:{}",
                x[first].as_str().unwrap(),
                x[second].as_str().unwrap()
            )
        })
        .collect()
}

/// A `[[probes]]` table: `name` of `kind`, checked hourly, with these
/// extra `key = value` lines.
pub fn probe(name: &str, kind: &str, fields: &str) -> String {
    format!("[[probes]]\nname = \"{name}\"\nkind = \"{kind}\"\ninterval = \"1h\"\n{fields}\n")
}
