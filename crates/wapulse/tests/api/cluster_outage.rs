//! A NATS outage seen from one replica (a real nats-server stopped and
//! restarted): nothing pages for the outage itself, neither while it lasts
//! nor after NATS returns, and a session that died meanwhile still pages.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wapulse_core::{DurationMs, Timestamp};

use crate::support::*;

const WAIT: Duration = CLUSTER_WAIT;

fn beat(session: &str, id: &str) -> Value {
    json!({"session": session, "id": id, "type": "heartbeat"})
}

fn evaluated(health: &Value) -> Timestamp {
    Timestamp::parse_rfc3339(health["alerting"]["evaluatedAt"].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_outage_pages_nothing_for_itself_and_a_session_dead_meanwhile_still_pages() {
    let slack = FakeReceiver::start(Kind::Slack).await;
    let mut nats = Nats::start();
    let home = tempfile::tempdir().unwrap();
    let extra = format!(
        "[thresholds]\nheartbeat_interval = \"1m\"\nheartbeat_age_warning = \"3s\"\n\
         heartbeat_age_critical = \"5s\"\n[alerting]\nfor = \"0s\"\ngroup_wait = \"0s\"\n\
         [[receivers]]\nname = \"chat\"\nkind = \"slack\"\nurl = \"{}\"\n",
        slack.url("/services/T0/B0/X")
    );
    let r = Replica::start(&nats, home.path(), "r1", &extra);
    r.ready().await;
    // Two gateways: `alive`'s keeps beating through it all; `gone`'s dies
    // with the outage and never speaks again.
    let up = |s: &str| json!({"session": s, "id": format!("{s}-c"), "type": "state", "state": "connected"});
    let start = json!([
        up("alive"),
        up("gone"),
        beat("alive", "a0"),
        beat("gone", "g0")
    ]);
    assert_eq!(r.post("/v1/events", &start).await.unwrap().status(), 200);
    nats.stop();
    let deadline = Instant::now() + WAIT;
    while r.cluster().await["connected"] != false {
        assert!(Instant::now() < deadline, "the replica never noticed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let frozen = evaluated(&r.get("/api/health").await.1);
    // Refused (503), `alive`'s gateway keeps its heartbeats to send again,
    // with the instants they were made, as adapters do; until both
    // sessions are critical at the wall clock.
    let mut backlog = Vec::new();
    loop {
        let made = json!({"session": "alive", "id": format!("q{}", backlog.len()),
                          "type": "heartbeat", "at": wapulse::clock::now().to_rfc3339()});
        let refused = r.post("/v1/events", &json!([made])).await.unwrap().status();
        assert_eq!(refused, 503);
        backlog.push(made);
        let (_, health) = r.get("/sessions/alive/health").await;
        if health["status"] == "critical" {
            break;
        }
        assert!(Instant::now() < deadline + WAIT, "{health}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The replica cannot know what the stream holds meanwhile: its
    // evaluator judges at the last instant it was caught up, so nothing
    // fires and nobody is paged.
    let (_, alerts) = r.get("/alerts").await;
    assert_eq!(alerts["alerts"], json!([]), "{alerts}");
    let (_, health) = r.get("/api/health").await;
    // Frozen: the loop above took at least 5 s of wall clock (until
    // critical), and judging moved far less than that.
    assert!(
        evaluated(&health).since(frozen) < DurationMs::from_secs(3),
        "{frozen:?} → {health}"
    );
    assert!(
        slack.received().is_empty(),
        "nobody paged during the outage"
    );
    // The lag gauge is set by each evaluator pass, which a loaded machine
    // runs late: wait (bounded) for one to show 5 s of outage.
    let deadline = Instant::now() + WAIT;
    loop {
        let lag = judging_lag(&r).await;
        if lag >= 5.0 {
            break;
        }
        assert!(Instant::now() < deadline, "the lag shows the outage: {lag}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Back: the kept heartbeats first, then one every 300 ms made now.
    // Judging goes on from where it stopped, so `alive` is never silent;
    // `gone` is silent a whole critical age after the resume and pages.
    nats.restart();
    let deadline = Instant::now() + WAIT + WAIT;
    let mut n = 0;
    loop {
        if !backlog.is_empty() {
            let sent = r.post("/v1/events", &Value::Array(backlog.clone())).await;
            if sent.is_ok_and(|s| s.status() == 200) {
                backlog.clear();
            }
        }
        n += 1;
        let _ = r
            .post("/v1/events", &json!([beat("alive", &format!("a{n}"))]))
            .await;
        let pages = delivered(&slack.received());
        if pages.iter().any(|t| t.contains("HEARTBEAT_DEAD")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dead session never paged: {pages:#?}; {}",
            r.get("/api/health").await.1
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let pages = delivered(&slack.received());
    for page in &pages {
        assert!(page.contains("gone"), "only the dead session pages: {page}");
        assert!(
            !page.contains("alive"),
            "the outage paged for a live session: {page}"
        );
    }
    let (_, alerts) = r.get("/alerts").await;
    let paged: Vec<&str> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["session"].as_str().unwrap())
        .collect();
    assert_eq!(paged, ["gone"], "{alerts}");
    let (_, history) = r.get("/alerts/history?limit=1000").await;
    let entries = history["entries"].as_array().unwrap();
    assert!(!entries.is_empty(), "{history}");
    assert!(
        entries.iter().all(|e| e["session"] != "alive"),
        "alive never fired: {history}"
    );
    // And judging is back on the wall clock (its next pass, bounded).
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, health) = r.get("/api/health").await;
        assert_eq!(health["cluster"]["connected"], true);
        if wapulse::clock::now().since(evaluated(&health)) < DurationMs::from_secs(2) {
            break;
        }
        assert!(Instant::now() < deadline, "{health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(judging_lag(&r).await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_retries_late_after_the_outage_is_not_taken_for_dead() {
    let slack = FakeReceiver::start(Kind::Slack).await;
    let mut nats = Nats::start();
    let home = tempfile::tempdir().unwrap();
    let extra = format!(
        "[thresholds]\nheartbeat_interval = \"1m\"\nheartbeat_age_warning = \"15s\"\n\
         heartbeat_age_critical = \"90s\"\n[alerting]\nfor = \"0s\"\ngroup_wait = \"0s\"\n\
         [[receivers]]\nname = \"chat\"\nkind = \"slack\"\nurl = \"{}\"\n",
        slack.url("/services/T0/B0/X")
    );
    let r = Replica::start(&nats, home.path(), "r1", &extra);
    r.ready().await;
    let start = json!([{"session": "slow", "id": "c", "type": "state", "state": "connected"},
                       beat("slow", "b0")]);
    assert_eq!(r.post("/v1/events", &start).await.unwrap().status(), 200);
    // Six seconds without NATS.
    nats.stop();
    let cut = Instant::now();
    while cut.elapsed() < Duration::from_secs(6) {
        let refused = r
            .post("/v1/events", &json!([beat("slow", "x")]))
            .await
            .unwrap();
        assert_eq!(refused.status(), 503);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    nats.restart();
    let deadline = Instant::now() + WAIT;
    while r.cluster().await["connected"] != true {
        assert!(Instant::now() < deadline, "the replica never reconnected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The gateway's backoff brings it back 11 s later: 17 s after its last
    // beat at the wall clock, past the 15 s warning. Judged as of what the
    // replica could hear, it was silent 11 s (a fixed 10 s grace after the
    // reconnect took it for silent and paged).
    let back = Instant::now();
    let mut n = 0;
    while back.elapsed() < Duration::from_secs(11) {
        assert!(
            delivered(&slack.received()).is_empty(),
            "paged while the gateway was on its way back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + WAIT;
    loop {
        n += 1;
        let _ = r
            .post("/v1/events", &json!([beat("slow", &format!("b{n}"))]))
            .await;
        let (_, health) = r.get("/api/health").await;
        if wapulse::clock::now().since(evaluated(&health)) < DurationMs::from_secs(1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "judging never rejoined the wall clock: {health}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Judging is on the wall clock again, long before the 90 s bound: the
    // only working session was heard from. Nothing fired for it, then or
    // since.
    let (_, alerts) = r.get("/alerts").await;
    assert_eq!(alerts["alerts"], json!([]), "{alerts}");
    let (_, history) = r.get("/alerts/history?limit=1000").await;
    assert_eq!(history["entries"], json!([]), "{history}");
    assert!(delivered(&slack.received()).is_empty());
}

fn delivered(got: &[Received]) -> Vec<String> {
    got.iter()
        .filter(|r| r.answered == 200)
        .map(|r| r.body.to_string())
        .collect()
}

/// `wapulse_cluster_judging_lag_seconds` as `/metrics` shows it.
async fn judging_lag(r: &Replica) -> f64 {
    let text = r.text("/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix("wapulse_cluster_judging_lag_seconds "))
        .unwrap_or_else(|| panic!("no judging lag in {text}"))
        .parse()
        .unwrap()
}
