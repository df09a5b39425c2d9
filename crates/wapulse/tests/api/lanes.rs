//! Connection lanes: a connection that starts with a POST is served by the
//! ingest runtime at the ingest priority; every other connection by the
//! main runtime. Both answer every route.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::process::reqwest as raw;
use crate::support::*;

/// `wapulse_http_connections_total{lane="…"}` in a Prometheus text page.
fn connections(metrics: &str, lane: &str) -> u64 {
    sample(
        metrics,
        &format!("wapulse_http_connections_total{{lane=\"{lane}\"}}"),
    )
}

#[tokio::test]
async fn a_posting_connection_takes_the_ingest_lane_and_still_answers_reads() {
    let app = spawn_app().await;
    // app.client's first request is a POST: its connection takes the
    // ingest lane...
    app.ingest(json!([{"session": "lane-a", "type": "state", "state": "connected"}]))
        .await;
    // ...and the same keep-alive connection goes on answering reads and
    // writes.
    let health = app.get_json("/sessions/lane-a/health", 200).await;
    assert_eq!(health["state"], "connected", "{health}");
    app.ingest(json!([{"session": "lane-a", "type": "heartbeat"}]))
        .await;

    // A reader's connection (a client of its own) starts with a GET: the
    // read lane.
    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(connections(&metrics, "ingest"), 1, "one posting connection");
    assert_eq!(connections(&metrics, "read"), 1, "one reading connection");
}

#[tokio::test]
async fn a_silent_connection_does_not_hold_up_shutdown() {
    let app = spawn_app().await;
    // Connected, accepted, never sends a byte: its lane is still unknown.
    let _silent = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    // Accepted in order: once a later connection is answered, the silent
    // one is waiting for its first bytes.
    app.get_json("/healthz", 200).await;
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("shutdown does not wait for a client that never spoke");
}

/// Paused time: the runtime jumps to the next timer whenever every task
/// waits, so the server's 30 s limit is reached at once, and the client's
/// own 120 s guard only if the server never closes.
#[tokio::test(start_paused = true)]
async fn a_connection_that_never_speaks_is_closed_after_30_s() {
    use tokio::io::AsyncReadExt;
    let app = spawn_app().await;
    let mut silent = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(120), silent.read(&mut buf))
        .await
        .expect("the server closes a connection that never speaks");
    assert_eq!(read.unwrap(), 0, "closed without an answer");
    let waited = started.elapsed();
    assert!(
        (Duration::from_secs(30)..Duration::from_secs(31)).contains(&waited),
        "closed after {waited:?} of (paused) time"
    );
    // A connection that speaks is answered as usual.
    app.get_json("/healthz", 200).await;
}

/// (comm, scheduling policy, nice) of every thread of `pid`.
fn threads(pid: u32) -> Vec<(String, i32, i32)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("stat")),
        ) else {
            continue; // the thread ended meanwhile
        };
        let (_, rest) = stat.rsplit_once(')').unwrap();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After the command, state is field 3: field N is fields[N - 3].
        out.push((
            comm.trim().to_owned(),
            fields[41 - 3].parse().unwrap(),
            fields[19 - 3].parse().unwrap(),
        ));
    }
    out
}

#[test]
fn the_ingest_lane_the_writer_and_the_evaluator_run_at_the_ingest_priority() {
    for (setting, policy, nice) in [("idle", 5, 0), ("low", 0, 10)] {
        let mut served = serve_with(&[("WAPULSE_INGEST_PRIORITY", setting)]);
        let events = r#"[{"session":"p","type":"heartbeat"}]"#;
        let url = format!("http://127.0.0.1:{}/v1/events", served.port);
        let (code, body) = raw::send(&url, "POST", Some(events)).expect("an answer");
        assert_eq!(code, 200, "{body}");
        let pid = served.running.0.id();
        // Worker threads lower themselves as they start: wait (bounded)
        // until every ingest-lane thread has.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let all = threads(pid);
            // The ingest lane, the journal writer and the alert evaluator
            // (a pass over a whole failing fleet yields to reads).
            let lane: Vec<_> = all
                .iter()
                .filter(|t| {
                    ["wapulse-ingest", "wapulse-writer", "wapulse-alerts"].contains(&t.0.as_str())
                })
                .collect();
            let readers: Vec<_> = all.iter().filter(|t| t.0 == "tokio-rt-worker").collect();
            assert!(!readers.is_empty(), "read-lane workers exist: {all:?}");
            assert!(
                readers.iter().all(|t| (t.1, t.2) == (0, 0)),
                "read-lane workers keep the normal priority: {all:?}"
            );
            let named = |n: &str| lane.iter().any(|t| t.0 == n);
            if named("wapulse-ingest")
                && named("wapulse-writer")
                && named("wapulse-alerts")
                && lane.iter().all(|t| (t.1, t.2) == (policy, nice))
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{setting}: ingest-lane, writer or evaluator threads not at policy {policy}, nice {nice}: {all:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(terminate(&mut served.running.0), 0);
    }
}

const REFUSED: &str = "cannot run request workers at a real-time priority";

/// With `read_priority = "realtime"`: whether the system refused it. Waits
/// (bounded) until it is known: the refusal logged, or every read-lane
/// worker at `SCHED_RR` (each takes it at its first park or request).
fn realtime_refused(served: &Served) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if served.log().contains(REFUSED) {
            return true;
        }
        let all = threads(served.running.0.id());
        let readers: Vec<_> = all.iter().filter(|t| t.0 == "tokio-rt-worker").collect();
        if !readers.is_empty() && readers.iter().all(|t| t.1 == 2) {
            return false;
        }
        assert!(
            Instant::now() < deadline,
            "neither real time nor a refusal: {all:?}\n{}",
            served.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn read_workers_take_the_read_priority() {
    let mut served = serve_with(&[("WAPULSE_READ_PRIORITY", "realtime")]);
    let url = format!("http://127.0.0.1:{}/session/health", served.port);
    let (code, body) = raw::send(&url, "GET", None).expect("an answer");
    assert_eq!(code, 200, "{body}");
    let refused = realtime_refused(&served);
    let all = threads(served.running.0.id());
    let readers: Vec<_> = all.iter().filter(|t| t.0 == "tokio-rt-worker").collect();
    assert!(!readers.is_empty(), "read-lane workers exist: {all:?}");
    if !refused {
        // SCHED_RR for reads (and the governor that watches them) only:
        // ingest threads never get it.
        assert!(
            all.iter()
                .filter(|t| t.0.starts_with("wapulse-") && t.0 != "wapulse-readgov")
                .all(|t| t.1 != 2),
            "ingest threads stay out of real time: {all:?}"
        );
        assert!(!served.log().contains(REFUSED), "{}", served.log());
    } else {
        // Where the system refuses, the server still serves, at normal
        // priority, and says why.
        assert!(readers.iter().all(|t| t.1 == 0), "{all:?}");
        assert!(served.log().contains(REFUSED), "{}", served.log());
    }
    assert_eq!(terminate(&mut served.running.0), 0);
}

/// The value of the sample `name` (with its labels, if any) in a
/// Prometheus text page.
fn sample(metrics: &str, name: &str) -> u64 {
    let prefix = format!("{name} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} in:\n{metrics}"))
        .trim()
        .parse()
        .expect("a number")
}

/// Polls `what` every 100 ms until it holds, for at most 30 s.
fn eventually(why: &str, mut what: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match what() {
            Ok(()) => return,
            Err(state) if Instant::now() > deadline => panic!("{why}: {state}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

#[test]
fn a_refused_real_time_is_one_warning_and_reads_run_at_normal_priority() {
    // Real time out of reach: RLIMIT_RTPRIO 0 and, as root, no
    // CAP_SYS_NICE (dropped from the bounding set before exec).
    let mut wrapper = Vec::new();
    if nix_uid() == 0 {
        wrapper.extend(["setpriv", "--bounding-set", "-sys_nice", "--"]);
    }
    wrapper.extend(["prlimit", "--rtprio=0:0", "--"]);
    let mut served = serve_via(&wrapper, &[("WAPULSE_READ_PRIORITY", "realtime")]);
    let base = format!("http://127.0.0.1:{}", served.port);
    for _ in 0..20 {
        let (code, body) = raw::body(&format!("{base}/session/health")).expect("an answer");
        assert_eq!(code, 200, "{body}");
    }
    assert!(realtime_refused(&served), "{}", served.log());
    let all = threads(served.running.0.id());
    assert!(
        all.iter()
            .filter(|t| t.0 == "tokio-rt-worker")
            .all(|t| t.1 == 0),
        "{all:?}"
    );
    let page = raw::body(&format!("{base}/metrics")).expect("an answer").1;
    assert_eq!(sample(&page, "wapulse_read_realtime"), 0, "{page}");
    assert_eq!(served.log().matches(REFUSED).count(), 1, "{}", served.log());
    assert_eq!(terminate(&mut served.running.0), 0);
}

#[test]
fn realtime_reads_step_down_under_a_flood_and_come_back() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    // A tiny budget (5 % of the CPUs) that a handful of busy clients
    // exceed at once, and that an idle server is far below.
    let mut served = serve_with(&[
        ("WAPULSE_READ_PRIORITY", "realtime"),
        ("WAPULSE_READ_REALTIME_BUDGET", "0.05"),
    ]);
    let pid = served.running.0.id();
    let base = format!("http://127.0.0.1:{}", served.port);
    let metrics = || raw::body(&format!("{base}/metrics")).expect("an answer").1;
    let readers = || -> Vec<i32> {
        threads(pid)
            .into_iter()
            .filter(|t| t.0 == "tokio-rt-worker")
            .map(|t| t.1)
            .collect()
    };
    if realtime_refused(&served) {
        // Refused (no CAP_SYS_NICE): nothing to govern, and the metric
        // says so. The refusal itself is tested above.
        assert_eq!(sample(&metrics(), "wapulse_read_realtime"), 0);
        assert_eq!(terminate(&mut served.running.0), 0);
        return;
    }
    let page = metrics();
    assert_eq!(sample(&page, "wapulse_read_realtime"), 1, "{page}");
    assert_eq!(
        sample(&page, "wapulse_read_realtime_demotions_total"),
        0,
        "{page}"
    );

    // A read that runs on the blocking pool (history, from the journal)
    // leaves a blocking thread behind, spawned by a real-time worker: the
    // governor must govern it too.
    let events = r#"[{"session":"governed","type":"heartbeat"}]"#;
    let (code, body) =
        raw::send(&format!("{base}/v1/events"), "POST", Some(events)).expect("an answer");
    assert_eq!(code, 200, "{body}");
    let (code, body) = raw::body(&format!("{base}/sessions/governed/events")).expect("an answer");
    assert_eq!(code, 200, "{body}");

    // A flood of reads (bounded: stops when told, or after 60 s).
    let stop = Arc::new(AtomicBool::new(false));
    // Three readers of the snapshot, one of the journal (which keeps the
    // blocking thread busy).
    let flood: Vec<_> = ["/session/observe"; 3]
        .into_iter()
        .chain(["/sessions/governed/events"])
        .map(|path| {
            let (stop, url) = (stop.clone(), format!("{base}{path}"));
            std::thread::spawn(move || {
                let started = Instant::now();
                while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
                    let _ = raw::body(&url);
                }
            })
        })
        .collect();
    eventually(
        "the flood sends the read workers back to normal priority",
        || {
            let (page, policies) = (metrics(), readers());
            let demoted = sample(&page, "wapulse_read_realtime") == 0
                && sample(&page, "wapulse_read_realtime_demotions_total") >= 1
                && policies.iter().all(|p| *p == 0);
            if demoted {
                Ok(())
            } else {
                Err(format!("policies {policies:?}"))
            }
        },
    );
    stop.store(true, Ordering::Relaxed);
    for f in flood {
        f.join().unwrap();
    }

    // Calm again: back to real time. A worker applies it at its next
    // request, and the polling itself sends requests.
    eventually("calm returns the read workers to real time", || {
        let (page, policies) = (metrics(), readers());
        if sample(&page, "wapulse_read_realtime") == 1 && policies.contains(&2) {
            Ok(())
        } else {
            Err(format!("policies {policies:?}"))
        }
    });
    let log = served.log();
    assert!(log.contains("back to normal priority"), "{log}");
    assert!(log.contains("back to real-time priority"), "{log}");
    assert_eq!(terminate(&mut served.running.0), 0);
}
