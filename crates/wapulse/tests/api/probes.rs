//! Probes against real servers: a Redis and a PostgreSQL of our own, an
//! HTTP service, TCP ports, and black holes that accept and never answer.
//!
//! Most tests set `interval = "1h"` and drive runs with `/warmup` (which
//! runs every probe once before answering), so nothing depends on timing;
//! the pause test uses the background schedule on purpose.

use std::time::{Duration, Instant};

use axum::Json;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use crate::support::process::reqwest as raw;
use crate::support::*;

async fn warm(app: &TestApp) -> Value {
    let w = app.get_json("/warmup", 200).await;
    assert_eq!(w["status"], "warm");
    app.get_json_any("/api/health").await
}

#[tokio::test]
async fn redis_probe_passes_fails_and_times_out() {
    let redis = RedisServer::start();
    let hole = BlackHole::start().await;
    let closed = free_port();
    let config = [
        probe(
            "cache",
            "redis",
            &format!("url = \"{}\"\nreadiness = true", redis.url()),
        ),
        probe(
            "cache-down",
            "redis",
            &format!("url = \"redis://127.0.0.1:{closed}/0\""),
        ),
        probe(
            "cache-hung",
            "redis",
            &format!(
                "url = \"redis://127.0.0.1:{}/0\"\ntimeout = \"300ms\"",
                hole.port
            ),
        ),
    ]
    .concat();
    let app = spawn_with_config(&config).await;
    let health = warm(&app).await;
    assert_eq!(health["status"], "degraded", "{health:#}");
    let p = &health["probes"];
    assert_eq!(p["cache"]["status"], "ok", "{p:#}");
    assert_eq!(p["cache"]["reason"], "PONG");
    assert_eq!(p["cache"]["kind"], "redis");
    assert!(p["cache"]["latencyMs"].as_f64().unwrap() > 0.0);
    assert!(p["cache"]["lastSuccess"].is_string());
    assert_eq!(p["cache"]["consecutiveFailures"], 0);
    assert_eq!(p["cache-down"]["status"], "failed");
    assert!(p["cache-down"]["lastSuccess"].is_null());
    assert!(p["cache-down"]["lastFailure"].is_string());
    // The background schedule also runs each probe once at start.
    let failures = p["cache-down"]["consecutiveFailures"].as_u64().unwrap();
    assert!(failures >= 1, "{p:#}");
    let reason = p["cache-down"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("connect") && reason.to_lowercase().contains("refused"),
        "{reason}"
    );
    assert_eq!(p["cache-hung"]["reason"], "timed out after 300ms");
    // Only `cache` gates readiness.
    let ready = app.get_json("/readyz", 200).await;
    assert_eq!(ready["checks"]["cache"], "ok");
    assert!(ready["checks"].get("cache-down").is_none());
    // A second failing run counts on.
    let health = warm(&app).await;
    let more = health["probes"]["cache-down"]["consecutiveFailures"]
        .as_u64()
        .unwrap();
    assert!(more > failures, "{more} after {failures}");
}

#[tokio::test]
async fn a_failing_readiness_probe_makes_readyz_and_api_health_fail() {
    let closed = free_port();
    let config = probe(
        "calls-sip",
        "tcp",
        &format!("address = \"127.0.0.1:{closed}\"\nreadiness = true"),
    );
    let app = spawn_with_config(&config).await;
    // Not yet run counts as not ready.
    let ready = app.get_json_any("/readyz").await;
    assert_eq!(ready["ready"], false, "{ready}");
    let health = warm(&app).await;
    assert_eq!(health["status"], "unhealthy");
    assert_eq!(app.get("/api/health").await.status(), 503);
    let ready = app.get_json("/readyz", 503).await;
    assert_eq!(ready["checks"]["calls-sip"], "failed");
    let (code, text) = app.get_text("/readyz?verbose").await;
    assert_eq!(code, 503);
    assert!(text.contains("[+]store ok"), "{text}");
    assert!(
        text.contains(&format!(
            "[-]calls-sip failed: connect to 127.0.0.1:{closed}"
        )),
        "{text}"
    );
    let (code, text) = app.get_text("/readyz?verbose&exclude=calls-sip").await;
    assert_eq!(code, 200, "{text}");
    assert!(text.contains("[+]calls-sip excluded: ok"), "{text}");
}

#[tokio::test]
async fn tcp_probe_passes_fails_and_times_out() {
    let listening = BlackHole::start().await;
    let closed = free_port();
    // A listener with a full accept queue: the kernel drops further SYNs,
    // so a connect hangs until the probe's timeout.
    let full = tokio::net::TcpSocket::new_v4().unwrap();
    full.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let full_addr = full.local_addr().unwrap();
    let full = full.listen(1).unwrap();
    let mut queued = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(full_addr),
        )
        .await
        {
            queued.push(s);
        }
    }
    let config = [
        probe(
            "sip",
            "tcp",
            &format!("address = \"127.0.0.1:{}\"", listening.port),
        ),
        probe(
            "sip-down",
            "tcp",
            &format!("address = \"127.0.0.1:{closed}\""),
        ),
        probe(
            "sip-hung",
            "tcp",
            &format!("address = \"{full_addr}\"\ntimeout = \"300ms\""),
        ),
    ]
    .concat();
    let app = spawn_with_config(&config).await;
    let p = warm(&app).await["probes"].clone();
    assert_eq!(p["sip"]["status"], "ok", "{p:#}");
    assert_eq!(p["sip-down"]["status"], "failed");
    assert!(
        p["sip-down"]["reason"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{p:#}"
    );
    assert_eq!(p["sip-hung"]["reason"], "timed out after 300ms", "{p:#}");
    drop(full);
}

#[tokio::test]
async fn postgres_probe_checks_select_and_migrations_and_never_shows_the_password() {
    let pg = PostgresServer::start();
    assert!(pg.dir().exists());
    let hole = BlackHole::start().await;
    let closed = free_port();
    let password = "pg-s3cret-pw";
    let config = [
        probe(
            "db",
            "postgres",
            &format!(
                "url = \"{}\"\nreadiness = true\ngroup = \"data\"",
                pg.url(Some(password))
            ),
        ),
        probe(
            "db-migrations",
            "postgres",
            &format!(
                "url = \"{}\"\nmigrations_table = \"public.schema_migrations\"\ngroup = \"data\"",
                pg.url(Some(password))
            ),
        ),
        probe(
            "db-down",
            "postgres",
            &format!("url = \"postgres://app:{password}@127.0.0.1:{closed}/app\""),
        ),
        probe(
            "db-hung",
            "postgres",
            &format!(
                "url = \"postgres://app:{password}@127.0.0.1:{}/app\"\ntimeout = \"300ms\"",
                hole.port
            ),
        ),
    ]
    .concat();
    let app = spawn_with_config(&config).await;
    let p = warm(&app).await["probes"].clone();
    assert_eq!(p["db"]["status"], "ok", "{p:#}");
    assert_eq!(p["db"]["reason"], "SELECT 1 ok");
    assert_eq!(p["db-migrations"]["status"], "failed");
    assert_eq!(
        p["db-migrations"]["reason"],
        "migrations table public.schema_migrations does not exist"
    );
    assert_eq!(p["db-down"]["status"], "failed");
    assert!(
        p["db-down"]["reason"].as_str().unwrap().contains("refused"),
        "{p:#}"
    );
    assert_eq!(p["db-hung"]["reason"], "timed out after 300ms");

    pg.execute("CREATE TABLE schema_migrations (version text)")
        .await;
    let p = warm(&app).await["probes"].clone();
    assert_eq!(
        p["db-migrations"]["reason"],
        "migrations table public.schema_migrations is empty: no migration applied"
    );
    let group = app.get_json("/health/data", 503).await;
    assert_eq!(group["status"], "failed");

    pg.execute("INSERT INTO schema_migrations VALUES ('001'), ('002')")
        .await;
    let p = warm(&app).await["probes"].clone();
    assert_eq!(p["db-migrations"]["status"], "ok");
    assert_eq!(p["db-migrations"]["reason"], "2 migrations applied");
    let group = app.get_json("/health/data", 200).await;
    assert_eq!(group["status"], "ok");
    assert_eq!(group["probes"].as_object().unwrap().len(), 2);

    // The password appears in no response.
    for path in [
        "/api/health",
        "/readyz?verbose",
        "/metrics",
        "/health/data",
        "/warmup",
    ] {
        let (_, text) = app.get_text(path).await;
        assert!(
            !text.contains(password),
            "{path} shows the password: {text}"
        );
    }
    let settings = format!("{:?}", app.state.settings);
    assert!(
        !settings.contains(password),
        "settings debug shows the password"
    );
}

#[tokio::test]
async fn heartbeat_probe_reads_every_timestamp_form_and_flags_stale_and_missing() {
    let redis = RedisServer::start();
    let config = probe(
        "worker",
        "redis_heartbeat",
        &format!(
            "url = \"{}\"\nkey = \"worker:heartbeat\"\nmax_age = \"90s\"\ngroup = \"workers\"\nreadiness = true",
            redis.url()
        ),
    );
    let app = spawn_with_config(&config).await;
    let mut con = redis.client();
    let mut set = |value: String| {
        redis::cmd("SET")
            .arg("worker:heartbeat")
            .arg(value)
            .query::<()>(&mut con)
            .unwrap();
    };

    let p = warm(&app).await["probes"]["worker"].clone();
    assert_eq!(p["status"], "failed");
    assert!(
        p["reason"]
            .as_str()
            .unwrap()
            .contains("worker:heartbeat is missing"),
        "{p}"
    );
    let group = app.get_json("/health/workers", 503).await;
    assert_eq!(group["probes"]["worker"]["status"], "failed");
    app.get_json("/readyz", 503).await;

    let now = wapulse::clock::now();
    let secs = now.as_millis() / 1000;
    for (form, value) in [
        ("unix seconds", secs.to_string()),
        ("fractional seconds", format!("{}.5", secs - 1)),
        ("unix milliseconds", now.as_millis().to_string()),
        (
            "RFC 3339",
            now.minus(wapulse_core::DurationMs::from_secs(5))
                .to_rfc3339(),
        ),
    ] {
        set(value.clone());
        let p = warm(&app).await["probes"]["worker"].clone();
        assert_eq!(p["status"], "ok", "{form} ({value}): {p}");
        assert!(
            p["reason"].as_str().unwrap().starts_with("heartbeat "),
            "{p}"
        );
    }
    app.get_json("/health/workers", 200).await;
    app.get_json("/readyz", 200).await;

    set((secs - 200).to_string());
    let p = warm(&app).await["probes"]["worker"].clone();
    assert_eq!(p["status"], "failed");
    let reason = p["reason"].as_str().unwrap();
    assert!(
        reason.contains("stale") && reason.contains("(max 1m 30s)"),
        "{reason}"
    );

    set("not-a-time".into());
    let p = warm(&app).await["probes"]["worker"].clone();
    assert!(
        p["reason"].as_str().unwrap().contains("not a timestamp"),
        "{p}"
    );

    let missing = app.get_json("/health/nope", 404).await;
    assert!(
        missing["error"].as_str().unwrap().contains("nope"),
        "{missing}"
    );
}

async fn fake_service() -> (u16, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new()
        .route(
            "/health",
            get(|| async {
                Json(json!({"status": "ok", "sessions": 3, "baileys": {"connected": true}}))
            }),
        )
        .route(
            "/down",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
        )
        .route(
            "/degraded",
            get(|| async { Json(json!({"status": "degraded"})) }),
        )
        .route("/text", get(|| async { "fine" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (port, task)
}

#[tokio::test]
async fn http_probe_checks_status_and_json_fields() {
    let (port, service) = fake_service().await;
    let hole = BlackHole::start().await;
    let base = format!("http://127.0.0.1:{port}");
    let config = [
        probe(
            "baileys",
            "http",
            &format!(
                "url = \"{base}/health\"\ngroup = \"whatsapp\"\nexpect_json = {{ status = \"ok\", \"baileys.connected\" = true }}"
            ),
        ),
        probe("calls", "http", &format!("url = \"{base}/down\"")),
        probe(
            "maintenance",
            "http",
            &format!("url = \"{base}/down\"\nexpect_status = 503"),
        ),
        probe(
            "agentkit",
            "http",
            &format!("url = \"{base}/degraded\"\nexpect_json = {{ status = \"ok\" }}"),
        ),
        probe(
            "plain",
            "http",
            &format!("url = \"{base}/text\"\nexpect_json = {{ status = \"ok\" }}"),
        ),
        probe(
            "hung",
            "http",
            &format!("url = \"http://127.0.0.1:{}/health\"\ntimeout = \"300ms\"", hole.port),
        ),
    ]
    .concat();
    let app = spawn_with_config(&config).await;
    let p = warm(&app).await["probes"].clone();
    assert_eq!(p["baileys"]["status"], "ok", "{p:#}");
    assert_eq!(p["baileys"]["reason"], "status 200, body as expected");
    assert_eq!(p["calls"]["reason"], "status 503, expected 2xx");
    assert_eq!(p["maintenance"]["status"], "ok");
    assert_eq!(
        p["agentkit"]["reason"],
        "field status is \"degraded\", expected \"ok\""
    );
    assert!(
        p["plain"]["reason"].as_str().unwrap().contains("not JSON"),
        "{p:#}"
    );
    assert_eq!(p["hung"]["reason"], "timed out after 300ms");

    // /health/whatsapp carries the sessions summary and the whatsapp group.
    let wa = app.get_json("/health/whatsapp", 200).await;
    assert_eq!(wa["status"], "ok", "{wa:#}");
    assert_eq!(wa["probes"]["baileys"]["status"], "ok");
    assert!(wa["probes"].get("calls").is_none());
    assert!(wa["sessions"]["total"].is_number());

    // When the Baileys service goes away, /health/whatsapp says so.
    service.abort();
    let _ = service.await;
    let p = warm(&app).await["probes"].clone();
    assert_eq!(p["baileys"]["status"], "failed", "{p:#}");
    let wa = app.get_json("/health/whatsapp", 200).await;
    assert_eq!(wa["status"], "critical", "{wa:#}");
}

#[tokio::test]
async fn probe_series_in_metrics_pass_promtool() {
    let redis = RedisServer::start();
    let closed = free_port();
    let config = [
        probe(
            "cache",
            "redis",
            &format!("url = \"{}\"\ngroup = \"data\"", redis.url()),
        ),
        probe("sip", "tcp", &format!("address = \"127.0.0.1:{closed}\"")),
    ]
    .concat();
    let app = spawn_with_config(&config).await;
    warm(&app).await;
    let (code, text) = app.get_text("/metrics").await;
    assert_eq!(code, 200);
    promtool_check(&text);
    assert!(
        text.contains("wapulse_probe_up{probe=\"cache\",kind=\"redis\",group=\"data\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("wapulse_probe_up{probe=\"sip\",kind=\"tcp\",group=\"\"} 0"),
        "{text}"
    );
    assert!(text.contains("wapulse_probe_duration_seconds{probe=\"cache\""));
    let last = text
        .lines()
        .find(|l| l.starts_with("wapulse_probe_last_success_timestamp_seconds{probe=\"cache\""))
        .expect("last success of cache");
    let secs: f64 = last.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        (secs - wapulse::clock::now().as_secs_f64()).abs() < 60.0,
        "{last}"
    );
    assert!(
        !text.contains("wapulse_probe_last_success_timestamp_seconds{probe=\"sip\""),
        "a probe that never passed has no last success"
    );
}

/// The scenario: Redis frozen with SIGSTOP. Readiness turns 503
/// within the probe timeout plus one interval, every endpoint keeps
/// answering fast meanwhile, and readiness comes back after SIGCONT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_fails_readiness_without_slowing_any_endpoint() {
    let redis = RedisServer::start();
    let config = format!(
        "[[probes]]\nname = \"cache\"\nkind = \"redis\"\nurl = \"{}\"\nreadiness = true\ninterval = \"200ms\"\ntimeout = \"3s\"\n",
        redis.url()
    );
    let app = spawn_with_config(&config).await;
    let until = |want: u16, limit: Duration| {
        let app = &app;
        async move {
            let started = Instant::now();
            let mut slowest = Duration::ZERO;
            loop {
                for path in ["/session/health", "/api/health", "/readyz"] {
                    let t = Instant::now();
                    let code = app.get(path).await.status().as_u16();
                    slowest = slowest.max(t.elapsed());
                    if path == "/readyz" && code == want {
                        return (started.elapsed(), slowest);
                    }
                }
                assert!(
                    started.elapsed() < limit,
                    "/readyz not {want} after {limit:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    until(200, Duration::from_secs(15)).await;
    redis.pause();
    let (took, slowest) = until(503, Duration::from_secs(15)).await;
    // Timeout 3 s + interval 200 ms, with generous slack for a loaded
    // machine; the point is that it turns, and that nobody waits for Redis:
    // an endpoint that waited would take the probe's 3 s, far above the
    // bound, which leaves room for a busy machine's scheduling.
    assert!(
        took < Duration::from_secs(8),
        "readiness took {took:?} to turn"
    );
    assert!(
        slowest < Duration::from_millis(1500),
        "an endpoint took {slowest:?}"
    );
    let reason = app.get_json_any("/api/health").await["probes"]["cache"]["reason"].clone();
    // The probe's timeout, or the Redis client's own connect timeout
    // (shorter than 3 s): timed out either way, not refused.
    assert!(
        reason.as_str().is_some_and(|r| r.contains("timed out")),
        "{reason}"
    );
    redis.resume();
    let (_, slowest) = until(200, Duration::from_secs(15)).await;
    assert!(
        slowest < Duration::from_millis(1500),
        "an endpoint took {slowest:?}"
    );
}

#[test]
fn beat_writes_a_heartbeat_key_the_probe_accepts() {
    let redis = RedisServer::start();
    let out = wapulse(&[
        "beat",
        "--redis",
        &redis.url(),
        "--key",
        "worker:heartbeat",
        "--every",
        "30s",
        "--once",
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut con = redis.client();
    let value: String = redis::cmd("GET")
        .arg("worker:heartbeat")
        .query(&mut con)
        .unwrap();
    let written: i64 = value.parse().expect("Unix seconds");
    let now = wapulse::clock::now().as_millis() / 1000;
    assert!((now - written).abs() <= 5, "{written} vs {now}");
    let ttl: i64 = redis::cmd("TTL")
        .arg("worker:heartbeat")
        .query(&mut con)
        .unwrap();
    assert!((1..=90).contains(&ttl), "TTL {ttl}: three intervals");

    // Running (not --once): it writes at once, then stops cleanly on SIGTERM.
    let _: () = redis::cmd("DEL").arg("beat:2").query(&mut con).unwrap();
    let mut child = wapulse(&[
        "beat",
        "--redis",
        &redis.url(),
        "--key",
        "beat:2",
        "--every",
        "1s",
    ])
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v: Option<String> = redis::cmd("GET").arg("beat:2").query(&mut con).unwrap();
        if v.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "beat wrote nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(terminate(&mut child), 0);
}

#[test]
fn beat_reports_a_failed_write_without_showing_the_password() {
    let closed = free_port();
    let out = wapulse(&[
        "beat",
        "--redis",
        &format!("redis://:hunter2@127.0.0.1:{closed}/0"),
        "--once",
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("worker:heartbeat") && err.contains("redis://:***@127.0.0.1"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    let out = wapulse(&["beat", "--redis", "mysql://x", "--once"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--redis"));
}

#[test]
fn config_check_names_a_bad_probe_and_field() {
    let out = config_check(
        "[[probes]]\nname = \"worker\"\nkind = \"redis_heartbeat\"\nurl = \"redis://127.0.0.1:6379\"\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("probes[0] (name \"worker\")") && err.contains("key: required"),
        "{err}"
    );
}

/// The review's finding: `?apikey=…` in an http probe's URL showed in the
/// open `/api/health` (the failure reason quoted the URL), in the logs and
/// in `config check`. Only the user-info password was hidden.
#[test]
fn a_query_string_secret_in_a_probe_url_never_shows() {
    let key = "qs-s3cret-k3y-4711";
    let closed = free_port();
    let toml = format!(
        "[[probes]]\nname = \"api\"\nkind = \"http\"\ngroup = \"deps\"\ntimeout = \"300ms\"\n\
         url = \"http://127.0.0.1:{closed}/health?apikey={key}&v=2\"\n"
    );
    let checked = config_check(&toml);
    assert!(checked.status.success());
    let printed = String::from_utf8_lossy(&checked.stdout);
    assert!(printed.contains("apikey=***"), "{printed}");
    assert!(
        !printed.contains(key),
        "config check shows the key: {printed}"
    );

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("wapulse.toml");
    std::fs::write(&config, &toml).unwrap();
    let mut served = serve_with(&[
        ("WAPULSE_CONFIG", config.to_str().unwrap()),
        ("LOG_LEVEL", "DEBUG"),
    ]);
    let base = format!("http://127.0.0.1:{}", served.port);
    // The probe runs (and fails: nothing listens) before the reads.
    let (_, warm) = raw::body(&format!("{base}/warmup")).expect("warmup answers");
    assert!(warm.contains("api"), "the probe failed: {warm}");
    for path in [
        "/api/health",
        "/readyz?verbose",
        "/health/deps",
        "/metrics",
        "/",
    ] {
        let (_, text) = raw::body(&format!("{base}{path}")).expect("an answer");
        assert!(!text.contains(key), "{path} shows the key: {text}");
    }
    let (_, health) = raw::body(&format!("{base}/api/health")).unwrap();
    assert!(
        health.contains("connect"),
        "the reason still says what failed: {health}"
    );
    terminate(&mut served.running.0);
    let log = served.log();
    assert!(log.contains("apikey=***"), "{log}");
    assert!(!log.contains(key), "the log shows the key: {log}");
}

/// The review's finding: `/warmup` needs no token and ran every probe per
/// call (50 calls: 150 connections to the database in 0.3 s). A burst of
/// calls now shares runs: what each reports is still from a run started
/// after it came, and the burst costs at most two runs per probe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_warmups_shares_probe_runs() {
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    let service = axum::Router::new().route(
        "/health",
        get(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                // Slow enough that the whole burst arrives while it runs.
                tokio::time::sleep(Duration::from_secs(1)).await;
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, service).await });
    let app = spawn_with_config(&probe(
        "api",
        "http",
        &format!("url = \"http://127.0.0.1:{port}/health\"\ntimeout = \"5s\""),
    ))
    .await;
    warm(&app).await;
    let before = hits.load(std::sync::atomic::Ordering::SeqCst);
    let burst: Vec<_> = (0..50)
        .map(|_| {
            let client = app.client.clone();
            let url = app.url("/warmup");
            tokio::spawn(async move { client.get(url).send().await.unwrap().status() })
        })
        .collect();
    for call in burst {
        assert_eq!(call.await.unwrap(), 200);
    }
    let runs = hits.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert!((1..=2).contains(&runs), "50 warmups made {runs} probe runs");
}
