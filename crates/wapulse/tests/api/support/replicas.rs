//! `wapulse serve` replicas in cluster mode as processes, and what the
//! cluster scenarios compare between them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::process::{free_port, wait_until_up};
use super::servers::Nats;

const BIN: &str = env!("CARGO_BIN_EXE_wapulse");
/// How long a cluster scenario waits for anything.
pub const CLUSTER_WAIT: Duration = Duration::from_secs(30);

/// One `wapulse serve` replica in cluster mode.
pub struct Replica {
    pub id: String,
    pub port: u16,
    pub data: PathBuf,
    pub config: PathBuf,
    pub child: Option<Child>,
    pub client: reqwest::Client,
    /// More environment for the process.
    pub env: Vec<(String, String)>,
}

impl Replica {
    /// Starts replica `id` with its data in `home/id` and these extra
    /// settings, and waits until it answers.
    pub fn start(nats: &Nats, home: &Path, id: &str, extra: &str) -> Self {
        let data = home.join(id);
        std::fs::create_dir_all(&data).unwrap();
        let config = home.join(format!("{id}.toml"));
        std::fs::write(
            &config,
            format!(
                "{extra}\n[cluster]\nnats_url = \"{}\"\nreplica_id = \"{id}\"\nlease_ttl = \"2s\"\n",
                nats.url()
            ),
        )
        .unwrap();
        let mut replica = Self {
            id: id.into(),
            port: free_port(),
            data,
            config,
            child: None,
            client: reqwest::Client::new(),
            env: Vec::new(),
        };
        replica.spawn();
        replica
    }

    /// Starts replica `id` with its data in `home/id`, the settings of
    /// `config` as they are and this environment, and waits until it
    /// answers.
    pub fn with_config(home: &Path, id: &str, config: &Path, env: &[(&str, &str)]) -> Self {
        let data = home.join(id);
        std::fs::create_dir_all(&data).unwrap();
        let mut replica = Self {
            id: id.into(),
            port: free_port(),
            data,
            config: config.to_owned(),
            child: None,
            client: reqwest::Client::new(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        replica.spawn();
        replica
    }

    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.join("output.log"))
            .unwrap();
        let child = Command::new(BIN)
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .env("WAPULSE_BIND", format!("127.0.0.1:{}", self.port))
            .env("WAPULSE_DATA_DIR", self.data.join("data"))
            .env("LOG_LEVEL", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("wapulse starts");
        self.child = Some(child);
        wait_until_up(&format!("http://127.0.0.1:{}/livez", self.port));
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.join("output.log")).unwrap_or_default()
    }

    /// SIGKILL: no snapshot, no lease release.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, config and data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn text(&self, path: &str) -> String {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        r.text().await.unwrap()
    }

    pub async fn post(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<reqwest::Response, reqwest::Error> {
        self.client
            .post(self.url(path))
            .timeout(Duration::from_secs(10))
            .json(body)
            .send()
            .await
    }

    pub async fn cluster(&self) -> Value {
        self.get("/api/health").await.1["cluster"].clone()
    }

    /// Waits until `/readyz` says ready.
    pub async fn ready(&self) {
        let deadline = Instant::now() + CLUSTER_WAIT;
        loop {
            let (code, body) = self.get("/readyz?verbose").await;
            if code == 200 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready: {body} {}",
                self.id,
                self.text("/readyz?verbose").await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until every replica applied the stream to its end.
pub async fn converged(replicas: &[&Replica]) -> u64 {
    let deadline = Instant::now() + CLUSTER_WAIT;
    loop {
        let mut positions = Vec::new();
        for r in replicas {
            let c = r.cluster().await;
            positions.push((
                c["position"].as_u64().unwrap_or(0),
                c["streamLastSeq"].as_u64().unwrap_or(u64::MAX),
            ));
        }
        let last = positions.iter().map(|p| p.1).max().unwrap();
        if positions.iter().all(|p| p.0 == last && p.1 == last) {
            return last;
        }
        assert!(
            Instant::now() < deadline,
            "replicas did not converge: {positions:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A read with what depends on the reading instant (ages, uptimes, the
/// response's meta) taken out, so replicas can be compared.
pub fn timeless(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.retain(|k, _| {
                    !(k == "meta"
                        || k == "generatedAt"
                        || k.starts_with("uptime")
                        || k.ends_with("Formatted")
                        || k.ends_with("Age")
                        || k.contains("AgeSeconds")
                        || k.ends_with("ForSeconds")
                        || k == "age"
                        || k == "silentFor"
                        || k == "responseTime"
                        || k == "_responseTime")
                });
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

/// `/metrics`' per-session series (`wa_…{session=…}`), the age gauges
/// left out.
pub fn session_series(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with("wa_") && l.contains("session=\""))
        .filter(|l| !l.contains("age_seconds") && !l.contains("_duration_seconds"))
        .map(str::to_owned)
        .collect()
}

/// `(session, code, state)` of every active alert.
pub async fn alert_states(r: &Replica) -> BTreeSet<(String, String, String)> {
    let (_, body) = r.get("/alerts?limit=1000").await;
    body["alerts"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|a| {
            (
                a["session"].as_str().unwrap_or("").to_owned(),
                a["code"].as_str().unwrap_or("").to_owned(),
                a["state"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

pub fn event(session: &str, id: &str, kind: &str) -> Value {
    match kind {
        "connected" | "disconnected" | "logged_out" | "reconnecting" => {
            json!({"session": session, "id": id, "type": "state", "state": kind, "reason": if kind == "disconnected" { json!(428) } else { Value::Null }})
        }
        "message" => {
            json!({"session": session, "id": id, "type": "message", "direction": "inbound", "count": 1})
        }
        "labels" => {
            json!({"session": session, "id": id, "type": "labels", "labels": {"tenant": format!("t-{}", session.len() % 3)}})
        }
        _ => json!({"session": session, "id": id, "type": "heartbeat"}),
    }
}

/// Inbound messages counted by `r` over `sessions`.
pub async fn messages_counted(r: &Replica, sessions: &[String]) -> u64 {
    let mut total = 0;
    for s in sessions {
        let (_, o) = r.get(&format!("/sessions/{s}/observe")).await;
        total += o["messages"]["inbound"].as_u64().unwrap_or(0);
    }
    total
}
