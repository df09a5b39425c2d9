//! High availability as `deploy/kubernetes/cluster/` describes it: three
//! real nats-servers clustered with the ConfigMap's own `nats-server.conf`
//! (addresses rewritten to loopback) and three wapulse replicas with the
//! ConfigMap's own `wapulse.toml` (its stream of three copies): they agree,
//! and losing one NATS node loses nothing and stops no ingest. And as
//! `deploy/compose/ha.yml` describes it: two replicas with its
//! `wapulse.toml` behind a real HAProxy with its `haproxy.cfg`, which
//! keeps taking writes when a replica dies.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

/// The block under `key: |` in a manifest, unindented.
fn block(manifest: &str, key: &str) -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/kubernetes/cluster")
            .join(manifest),
    )
    .unwrap();
    let mut lines = text.lines().skip_while(|l| l.trim() != format!("{key}: |"));
    lines
        .next()
        .unwrap_or_else(|| panic!("{manifest} has no {key}"));
    let body: Vec<&str> = lines
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| l.strip_prefix("    ").unwrap_or(""))
        .collect();
    body.join("\n")
}

struct Node {
    child: Child,
    client: u16,
    http: u16,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ports(n: usize) -> Vec<u16> {
    let mut out: Vec<u16> = Vec::new();
    while out.len() < n {
        let p = free_port();
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// Three nodes from the ConfigMap's conf: names from POD_NAME (as the
/// StatefulSet sets it), listen/http/cluster ports and routes on loopback.
fn nats_cluster(home: &Path) -> Vec<Node> {
    let conf = block("nats-configmap.yaml", "nats-server.conf");
    let (clients, https, routes) = (ports(3), ports(3), ports(3));
    (0..3)
        .map(|i| {
            let mut c = conf
                .replace(
                    "listen: 0.0.0.0:4222",
                    &format!("listen: 127.0.0.1:{}", clients[i]),
                )
                .replace(
                    "http: 0.0.0.0:8222",
                    &format!("http: 127.0.0.1:{}", https[i]),
                )
                .replace(
                    "listen: 0.0.0.0:6222",
                    &format!("listen: 127.0.0.1:{}", routes[i]),
                )
                .replace(
                    "store_dir: /data/jetstream",
                    &format!(
                        "store_dir: \"{}\"",
                        home.join(format!("nats-{i}")).display()
                    ),
                );
            for (j, route) in routes.iter().enumerate() {
                c = c.replace(
                    &format!("nats://wapulse-nats-{j}.wapulse-nats:6222"),
                    &format!("nats://127.0.0.1:{route}"),
                );
            }
            assert!(
                !c.contains("wapulse-nats-0.") && !c.contains("0.0.0.0"),
                "{c}"
            );
            let path = home.join(format!("nats-{i}.conf"));
            std::fs::write(&path, c).unwrap();
            let log = std::fs::File::create(home.join(format!("nats-{i}.log"))).unwrap();
            let child = Command::new(nats_binary())
                .arg("--config")
                .arg(&path)
                .env("POD_NAME", format!("wapulse-nats-{i}"))
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .stdin(Stdio::null())
                .spawn()
                .expect("nats-server starts");
            Node {
                child,
                client: clients[i],
                http: https[i],
            }
        })
        .collect()
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, Value) {
    match client.get(url).send().await {
        Ok(r) => {
            let code = r.status().as_u16();
            (code, r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

/// `/sessions`, with what depends on the reading instant left out.
async fn sessions(r: &Replica) -> Value {
    let (_, mut v) = r.get("/sessions?limit=1000").await;
    for s in v["sessions"].as_array_mut().into_iter().flatten() {
        if let Some(o) = s.as_object_mut() {
            o.retain(|k, _| !(k.contains("Age") || k.ends_with("Formatted") || k == "age"));
        }
    }
    v["sessions"].clone()
}

/// Posts `session` connected to `url` until it is taken (200): NATS may
/// still be electing, or the balancer not yet know a replica is gone.
async fn connect_until_taken(client: &reqwest::Client, url: &str, session: &str) {
    let deadline = Instant::now() + CLUSTER_WAIT;
    loop {
        let r = client
            .post(url)
            .json(&json!([{"session": session, "id": session, "type": "state", "state": "connected"}]))
            .send()
            .await;
        if r.is_ok_and(|r| r.status() == 200) {
            return;
        }
        assert!(Instant::now() < deadline, "{session} never taken by {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn agree(replicas: &[&Replica], sessions_wanted: usize) -> Value {
    let deadline = Instant::now() + CLUSTER_WAIT;
    loop {
        let mut views = Vec::new();
        for r in replicas {
            views.push(sessions(r).await);
        }
        if views.windows(2).all(|w| w[0] == w[1])
            && views[0]
                .as_array()
                .is_some_and(|a| a.len() == sessions_wanted)
        {
            return views.remove(0);
        }
        assert!(Instant::now() < deadline, "replicas disagree: {views:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nats_nodes_and_three_replicas_as_the_manifests_describe() {
    let home = tempfile::tempdir().unwrap();
    let mut nodes = nats_cluster(home.path());
    let client = reqwest::Client::new();
    // Every node up with JetStream (the three must find each other first).
    let deadline = Instant::now() + CLUSTER_WAIT;
    for n in &nodes {
        loop {
            let url = format!("http://127.0.0.1:{}/healthz?js-enabled-only=true", n.http);
            if get(&client, &url).await.0 == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "nats node on {} never healthy",
                n.client
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let config = home.path().join("wapulse.toml");
    std::fs::write(&config, block("configmap.yaml", "wapulse.toml")).unwrap();
    let urls: Vec<String> = nodes
        .iter()
        .map(|n| format!("nats://127.0.0.1:{}", n.client))
        .collect();
    let urls = urls.join(",");
    let replicas: Vec<Replica> = ["wapulse-0", "wapulse-1", "wapulse-2"]
        .iter()
        .map(|id| {
            Replica::with_config(
                home.path(),
                id,
                &config,
                &[("WAPULSE_NATS_URL", &urls), ("WAPULSE_REPLICA_ID", id)],
            )
        })
        .collect();
    for r in &replicas {
        r.ready().await;
    }
    // The stream keeps three copies, as stream_replicas says.
    let (_, jsz) = get(
        &client,
        &format!(
            "http://127.0.0.1:{}/jsz?streams=true&config=true",
            nodes[1].http
        ),
    )
    .await;
    let streams: Vec<&Value> = jsz["account_details"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["stream_detail"].as_array().into_iter().flatten())
        .collect();
    let stream = streams
        .iter()
        .find(|s| s["name"] == "WAPULSE")
        .unwrap_or_else(|| panic!("no WAPULSE stream: {jsz}"));
    assert_eq!(stream["config"]["num_replicas"], 3, "{stream}");

    let all: Vec<&Replica> = replicas.iter().collect();
    let r = replicas[0]
        .post(
            "/v1/events",
            &json!([
                {"session": "s1", "id": "a1", "type": "state", "state": "logged_out"},
                {"session": "s2", "id": "a2", "type": "state", "state": "connected"},
            ]),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // default + s1 + s2 on every replica.
    agree(&all, 3).await;

    // One NATS node lost: the other two keep the stream's quorum; writes
    // through any replica still land everywhere.
    drop(nodes.remove(0));
    connect_until_taken(&client, &replicas[1].url("/v1/events"), "s3").await;
    let view = agree(&all, 4).await;
    assert!(view.to_string().contains("\"s3\""), "{view}");
}

/// `deploy/compose/ha/` file `name`.
fn compose_file(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/compose/ha")
            .join(name),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_behind_haproxy_as_the_compose_file_describes() {
    let home = tempfile::tempdir().unwrap();
    let nats = Nats::start();
    let config = home.path().join("wapulse.toml");
    std::fs::write(&config, compose_file("wapulse.toml")).unwrap();
    let mut replicas: Vec<Replica> = ["wapulse-1", "wapulse-2"]
        .iter()
        .map(|id| {
            Replica::with_config(
                home.path(),
                id,
                &config,
                &[
                    ("WAPULSE_NATS_URL", &nats.url()),
                    ("WAPULSE_REPLICA_ID", id),
                ],
            )
        })
        .collect();
    for r in &replicas {
        r.ready().await;
    }
    // The balancer: the compose file's haproxy.cfg, its front port and the
    // replicas' addresses on loopback.
    let front = free_port();
    let cfg = compose_file("haproxy.cfg")
        .replace("bind :3001", &format!("bind 127.0.0.1:{front}"))
        .replace("log stdout format raw local0", "")
        .replace("    log global\n", "")
        .replace("wapulse-1:3001", &format!("127.0.0.1:{}", replicas[0].port))
        .replace("wapulse-2:3001", &format!("127.0.0.1:{}", replicas[1].port));
    let cfg_path = home.path().join("haproxy.cfg");
    std::fs::write(&cfg_path, cfg).unwrap();
    let haproxy = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&cfg_path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(home.path().join("haproxy.log")).unwrap())
        .spawn()
        .expect("haproxy (Debian package haproxy; scripts/test installs it)");
    struct Killed(Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _haproxy = Killed(haproxy);
    let client = reqwest::Client::new();
    let through = format!("http://127.0.0.1:{front}");
    let front_door = format!("{through}/v1/events");
    connect_until_taken(&client, &front_door, "b1").await;
    let all: Vec<&Replica> = replicas.iter().collect();
    agree(&all, 2).await;
    // One replica lost: the balancer sends everything to the other.
    replicas[0].kill();
    connect_until_taken(&client, &front_door, "b2").await;
    let (code, body) = get(&client, &format!("{through}/sessions/b2/health")).await;
    assert_eq!(code, 200, "{body}");
    let left: Vec<&Replica> = replicas[1..].iter().collect();
    agree(&left, 3).await;
    // Back: it catches up from the stream and agrees again.
    replicas[0].spawn();
    replicas[0].ready().await;
    let all: Vec<&Replica> = replicas.iter().collect();
    agree(&all, 3).await;
}
