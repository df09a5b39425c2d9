//! Alerting figures for docs/benchmarks.md: evaluator CPU with a steady
//! 100,000-session fleet, `/api/health` at 100,000 sessions, time from a
//! critical event to the receiver's request, and what 10,000 sessions
//! failing within a minute send.
//!
//! `cargo bench -p wapulse --bench alerting [-- --only steady|latency|mass]`
//! (release build; ~5 minutes;
//! everything on loopback, in one process: the service, a stand-in
//! webhook receiver, and the load). `--quick` shrinks every figure to
//! seconds (a smoke run; its numbers mean nothing).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use wapulse::config::Settings;
use wapulse::startup::Application;
use wapulse_core::{Event, EventKind, SessionId, SessionState, Timestamp};

/// Received requests: (arrival, body).
type Inbox = Arc<Mutex<Vec<(Instant, serde_json::Value)>>>;

async fn receiver() -> (String, Inbox) {
    let inbox: Inbox = Arc::default();
    let kept = inbox.clone();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let kept = kept.clone();
        async move {
            let v = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            kept.lock().unwrap().push((Instant::now(), v));
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, inbox)
}

/// CPU time (ns) of this process's threads named `name`.
fn thread_cpu_ns(name: &str) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            total += stat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total
}

fn ev(id: &SessionId, at: Timestamp, kind: EventKind) -> Event {
    Event {
        session: id.clone(),
        at,
        id: None,
        kind,
    }
}

fn st(s: SessionState) -> EventKind {
    EventKind::State {
        state: s,
        reason: None,
    }
}

async fn start(
    configure: impl FnOnce(&mut Settings),
) -> (wapulse::app::Shared, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::for_bind("127.0.0.1:0".parse().unwrap());
    settings.data_dir = dir.path().to_path_buf();
    settings.durability = wapulse::store::Durability::Process;
    settings.log_filter = "warn".into();
    configure(&mut settings);
    let app = Application::build(settings).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let state = app.state();
    tokio::spawn(app.run_until(std::future::pending()));
    (state, base, dir)
}

async fn wait_evaluated(state: &wapulse::app::Shared, sessions: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while state.alerting.snapshot().sessions() < sessions {
        assert!(Instant::now() < deadline, "evaluator never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// `n` sessions named `{prefix}000000…`, connected with a heartbeat now,
/// each judged once by the evaluator.
async fn connected_fleet(state: &wapulse::app::Shared, prefix: &str, n: usize) -> Vec<SessionId> {
    let ids: Vec<SessionId> = (0..n)
        .map(|i| SessionId::parse(&format!("{prefix}{i:06}")).unwrap())
        .collect();
    let now = wapulse::clock::now();
    for chunk in ids.chunks(10_000) {
        let events: Vec<Event> = chunk
            .iter()
            .flat_map(|id| {
                [
                    ev(id, now, st(SessionState::Connected)),
                    ev(id, now, EventKind::Heartbeat { rtt_ms: Some(40) }),
                ]
            })
            .collect();
        state.model.ingest(events, now).await.unwrap();
    }
    wait_evaluated(state, n).await;
    ids
}

/// Settings with the alerting of this TOML text.
fn alerting(toml: &str) -> wapulse::alerting::config::AlertingSettings {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.toml");
    std::fs::write(&path, toml).unwrap();
    Settings::load(Some(&path), |_| None).unwrap().alerting
}

async fn steady_fleet(n: usize, window: Duration) {
    let (state, base, _dir) = start(|_| {}).await;
    let ids = connected_fleet(&state, "s", n).await;

    // /api/health at n sessions.
    let client = reqwest::Client::new();
    let url = format!("{base}/api/health");
    let get = || async {
        client
            .get(&url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
    };
    for _ in 0..200 {
        get().await;
    }
    let mut times = Vec::new();
    for _ in 0..2000 {
        let t = Instant::now();
        get().await;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "/api/health at {n} sessions: p50 {:.3} ms, p99 {:.3} ms (HTTP round trip, keep-alive)",
        percentile(&times, 0.5),
        percentile(&times, 0.99)
    );

    // Quiet: nothing arrives, no deadline inside the window.
    let cpu0 = thread_cpu_ns("wapulse-alerts");
    let t0 = Instant::now();
    tokio::time::sleep(window.min(Duration::from_secs(10))).await;
    let quiet = (thread_cpu_ns("wapulse-alerts") - cpu0) as f64 / t0.elapsed().as_nanos() as f64;
    println!(
        "evaluator CPU, {n} sessions, no events: {:.3} % of one core",
        quiet * 100.0
    );

    // Steady: every session heartbeats every 30 s (n/30 events a second,
    // in batches every 100 ms), nothing wrong.
    let per_tick = (n / 300).max(1);
    let cpu0 = thread_cpu_ns("wapulse-alerts");
    let t0 = Instant::now();
    let mut next = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while t0.elapsed() < window {
        tick.tick().await;
        let now = wapulse::clock::now();
        let events: Vec<Event> = (0..per_tick)
            .map(|k| {
                let id = &ids[(next + k) % n];
                ev(id, now, EventKind::Heartbeat { rtt_ms: Some(40) })
            })
            .collect();
        next += per_tick;
        state.model.ingest(events, now).await.unwrap();
    }
    let cpu = (thread_cpu_ns("wapulse-alerts") - cpu0) as f64 / t0.elapsed().as_nanos() as f64;
    println!(
        "evaluator CPU, {n} sessions heartbeating every 30 s ({} events/s): {:.3} % of one core",
        per_tick * 10,
        cpu * 100.0
    );
}

async fn event_to_receiver(rounds: usize) {
    let (url, inbox) = receiver().await;
    let toml = format!(
        "[alerting]\ngroup_wait = \"0s\"\ngroup_by = [\"session\"]\n[[receivers]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{url}\"\nrate_per_second = 1000\n"
    );
    let loaded = alerting(&toml);
    let (_state, base, _d) = start(move |s| s.alerting = loaded).await;
    let client = reqwest::Client::new();
    let mut times = Vec::new();
    for i in 0..rounds {
        let before = inbox.lock().unwrap().len();
        let sent = Instant::now();
        let r = client
            .post(format!("{base}/v1/events"))
            .json(&json!([{"session": format!("r{i}"), "type": "state", "state": "logged_out"}]))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let deadline = Instant::now() + Duration::from_secs(10);
        let arrived = loop {
            if let Some((at, _)) = inbox.lock().unwrap().get(before) {
                break *at;
            }
            assert!(Instant::now() < deadline, "no notification");
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        times.push(arrived.duration_since(sent).as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "critical event → receiver request (for = 0, group_wait = 0), {rounds} rounds: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times.last().unwrap()
    );
}

async fn mass_failure(fleet: usize, failing: usize, over: Duration) {
    let (url, inbox) = receiver().await;
    let toml = format!("[[receivers]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{url}\"\n");
    let loaded = alerting(&toml);
    let (state, _base, _d) = start(move |s| s.alerting = loaded).await;
    let ids = connected_fleet(&state, "m", fleet).await;
    // `failing` sessions are logged out, evenly over `over` (default
    // timers: for 0 for LOGGED_OUT, group_wait 30 s, group_interval 5 m).
    let started = Instant::now();
    let steps = 60usize;
    for (k, chunk) in ids[..failing].chunks(failing.div_ceil(steps)).enumerate() {
        let at = started + over.mul_f64(k as f64 / steps as f64);
        tokio::time::sleep_until(at.into()).await;
        let now = wapulse::clock::now();
        let events: Vec<Event> = chunk
            .iter()
            .map(|id| ev(id, now, st(SessionState::LoggedOut)))
            .collect();
        state.model.ingest(events, now).await.unwrap();
    }
    // What was sent in that time, and until every timer (incident_for 1 m,
    // group_wait 30 s) has run out.
    let end = started + over;
    let after = end
        + Duration::from_secs(if over > Duration::from_secs(10) {
            100
        } else {
            5
        });
    tokio::time::sleep_until(after.into()).await;
    let summary = |until: Instant| {
        let mut what: BTreeMap<String, usize> = BTreeMap::new();
        let mut incident = None;
        for (at, body) in inbox.lock().unwrap().iter().filter(|(at, _)| *at <= until) {
            let code = body["groupLabels"]["code"]
                .as_str()
                .unwrap_or("?")
                .to_owned();
            if code == "FLEET_INCIDENT" && incident.is_none() {
                incident = Some((
                    at.duration_since(started),
                    body["firing"][0]["summary"].clone(),
                ));
            }
            *what
                .entry(format!("{}:{code}", body["status"].as_str().unwrap_or("?")))
                .or_insert(0) += 1;
        }
        (what, incident)
    };
    let (in_window, _) = summary(end);
    let (by_then, incident) = summary(after);
    println!(
        "{failing} of {fleet} sessions logged out within {over:?}: sent in that time {in_window:?}; \
         by {:?} {by_then:?}; the incident at {incident:?}",
        after.duration_since(started)
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        if quick {
            steady_fleet(2_000, Duration::from_secs(2)).await;
            event_to_receiver(5).await;
            mass_failure(2_000, 500, Duration::from_secs(3)).await;
        } else {
            // `--only steady|latency|mass` runs one part.
            let only = std::env::args()
                .skip_while(|a| a != "--only")
                .nth(1)
                .unwrap_or_default();
            if only.is_empty() || only == "steady" {
                steady_fleet(100_000, Duration::from_secs(30)).await;
            }
            if only.is_empty() || only == "latency" {
                event_to_receiver(200).await;
            }
            if only.is_empty() || only == "mass" {
                mass_failure(20_000, 10_000, Duration::from_secs(60)).await;
            }
        }
    });
}
