//! What scoping costs (issue 30), at 100,000 sessions in 1,000 tenants of
//! 100: a tenant's `/sessions` page and `/metrics` against the unscoped
//! ones, and the first scoped read after the fleet's membership changed
//! (when the tenant's members are found again).
//!
//! `cargo bench -p wapulse --bench tenancy` (release build; ~1 minute; in
//! one process on loopback: the service and the requests). `--quick`
//! shrinks the fleet to 2,000 sessions in 20 tenants (a smoke run; its
//! numbers mean nothing).

use std::time::{Duration, Instant};

use wapulse::config::Settings;
use wapulse::startup::Application;
use wapulse_core::labels::LabelChanges;
use wapulse_core::{Event, EventKind, SessionId, SessionState};

const OPS: &str = "ops-bench-secret-000000001";
const TENANT: &str = "tenant-bench-secret-00002";

fn ev(id: &SessionId, kind: EventKind) -> Event {
    Event {
        session: id.clone(),
        at: wapulse::clock::now(),
        id: None,
        kind,
    }
}

fn tenant_label(t: usize) -> EventKind {
    EventKind::Labels {
        labels: LabelChanges::try_from_changes([("tenant", Some(format!("t{t:04}").as_str()))])
            .unwrap(),
    }
}

fn median(mut ms: Vec<f64>) -> f64 {
    ms.sort_by(f64::total_cmp);
    ms[ms.len() / 2]
}

async fn time(client: &reqwest::Client, url: &str, token: &str, n: usize) -> (f64, usize) {
    let get = || async {
        let r = client.get(url).bearer_auth(token).send().await.unwrap();
        assert!(r.status().is_success(), "{url}: {}", r.status());
        r.bytes().await.unwrap().len()
    };
    for _ in 0..n.min(20) {
        get().await;
    }
    let mut times = Vec::with_capacity(n);
    let mut bytes = 0;
    for _ in 0..n {
        let t = Instant::now();
        bytes = get().await;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    (median(times), bytes)
}

async fn run(sessions: usize, tenants: usize, rounds: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::for_bind("127.0.0.1:0".parse().unwrap());
    settings.data_dir = dir.path().to_path_buf();
    settings.durability = wapulse::store::Durability::Process;
    settings.log_filter = "warn".into();
    let tokens = format!(
        "[[tokens]]\nname = \"ops\"\nsecret_env = \"OPS\"\naccess = \"read\"\n\
         [[tokens]]\nname = \"t0421\"\nsecret_env = \"TENANT\"\naccess = \"read\"\n\
         match = {{ tenant = \"t{:04}\" }}\n",
        421 % tenants
    );
    settings.tokens = Settings::from_toml(&tokens, |v| match v {
        "OPS" => Some(OPS.into()),
        "TENANT" => Some(TENANT.into()),
        _ => None,
    })
    .unwrap()
    .tokens;
    let app = Application::build(settings).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let state = app.state();
    tokio::spawn(app.run_until(std::future::pending()));

    let ids: Vec<SessionId> = (0..sessions)
        .map(|i| SessionId::parse(&format!("s{i:06}")).unwrap())
        .collect();
    for (c, chunk) in ids.chunks(10_000).enumerate() {
        let events: Vec<Event> = chunk
            .iter()
            .enumerate()
            .flat_map(|(k, id)| {
                [
                    ev(id, tenant_label((c * 10_000 + k) % tenants)),
                    ev(
                        id,
                        EventKind::State {
                            state: SessionState::Connected,
                            reason: None,
                        },
                    ),
                    ev(id, EventKind::Heartbeat { rtt_ms: Some(40) }),
                ]
            })
            .collect();
        state
            .model
            .ingest(events, wapulse::clock::now())
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while state.alerting.snapshot().sessions() < sessions {
        assert!(Instant::now() < deadline, "evaluator never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let client = reqwest::Client::new();
    let per = sessions / tenants;
    println!("{sessions} sessions in {tenants} tenants of {per}; medians over {rounds} requests:");
    let page = format!("{base}/sessions?limit=100");
    let (unscoped, _) = time(&client, &page, OPS, rounds).await;
    let (scoped, _) = time(&client, &page, TENANT, rounds).await;
    let filtered = format!(
        "{base}/sessions?limit=100&label=tenant:t{:04}",
        421 % tenants
    );
    let (by_label, _) = time(&client, &filtered, OPS, rounds).await;
    println!(
        "GET /sessions?limit=100: unscoped {unscoped:.3} ms, the tenant's own page {scoped:.3} ms \
         ({:.2} x), unscoped with label=tenant:… {by_label:.3} ms",
        scoped / unscoped
    );
    let metrics = format!("{base}/metrics");
    let (fleet, fleet_bytes) = time(&client, &metrics, OPS, 5).await;
    let (own, own_bytes) = time(&client, &metrics, TENANT, rounds).await;
    println!(
        "GET /metrics: unscoped {fleet:.1} ms ({fleet_bytes} bytes), the tenant's {own:.3} ms \
         ({own_bytes} bytes, {:.4} x)",
        own / fleet
    );
    // The first scoped read after a session is added: the tenant's
    // members are found again (one walk over the fleet).
    let mut first = Vec::new();
    for i in 0..rounds.min(20) {
        let id = SessionId::parse(&format!("new{i:04}")).unwrap();
        state
            .model
            .ingest(
                vec![ev(&id, EventKind::Heartbeat { rtt_ms: None })],
                wapulse::clock::now(),
            )
            .await
            .unwrap();
        let t = Instant::now();
        let r = client.get(&page).bearer_auth(TENANT).send().await.unwrap();
        r.bytes().await.unwrap();
        first.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "the tenant's page, first read after a session joined the fleet: {:.3} ms",
        median(first)
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
            run(2_000, 20, 20).await;
        } else {
            run(100_000, 1_000, 300).await;
        }
    });
}
