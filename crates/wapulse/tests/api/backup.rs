//! `wapulse store backup` and `restore`: a backup taken while ingest runs
//! flat out is the store at one commit (nothing after it, nothing before it
//! missing), restores into an empty directory only, and a backup killed
//! half-way leaves the source sound.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::process::reqwest as raw;
use crate::support::*;

const BATCH: usize = 100;

fn post(port: u16, path: &str, body: &Value) -> (u16, String) {
    raw::send(
        &format!("http://127.0.0.1:{port}{path}"),
        "POST",
        Some(&body.to_string()),
    )
    .unwrap()
}

fn get(port: u16, path: &str) -> Value {
    let (code, body) = raw::body(&format!("http://127.0.0.1:{port}{path}")).unwrap();
    assert_eq!(code, 200, "{path}: {body}");
    // The tiny client reads chunked bodies raw: take the JSON inside.
    let start = body.find(['{', '[']).unwrap();
    let end = body.rfind(['}', ']']).unwrap();
    serde_json::from_str(&body[start..=end]).unwrap()
}

/// Batch `b` of the load: `BATCH` inbound messages with ids `b{b}-{i}`.
fn batch(b: usize) -> Value {
    let events: Vec<Value> = (0..BATCH)
        .map(|i| {
            json!({"session": "load", "id": format!("b{b}-{i}"), "type": "message",
                   "direction": "inbound", "count": 1})
        })
        .collect();
    Value::Array(events)
}

fn store_cmd(args: &[&str], data: &Path) -> std::process::Output {
    wapulse(args)
        .env("WAPULSE_DATA_DIR", data)
        .output()
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_full_ingest_restores_the_store_as_of_one_commit() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("wapulse.toml");
    std::fs::write(&config, "[alerting]\nfor = \"0s\"\n").unwrap();
    let (_source, port) = serve_on(home.path(), &config);
    let data = home.path().join("data");
    // Before: a firing alert, a silence, a session that takes the load.
    let (code, body) = post(
        port,
        "/v1/events",
        &json!([
            {"session": "fired", "type": "state", "state": "logged_out"},
            {"session": "load", "type": "keepalives", "expected": false},
            {"session": "load", "type": "state", "state": "connected"},
        ]),
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = post(
        port,
        "/v1/silences",
        &json!({"matchers": [{"name": "session", "value": "quiet"}],
                "endsAt": in_future(3600), "createdBy": "ops", "comment": "maintenance"}),
    );
    assert_eq!(code, 200, "{body}");
    let deadline = Instant::now() + WAIT;
    while !get(port, "/alerts").to_string().contains("LOGGED_OUT") {
        assert!(Instant::now() < deadline, "LOGGED_OUT never fired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Enough journal that a copy takes a while.
    for b in 0..40 {
        assert_eq!(post(port, "/v1/events", &batch(b)).0, 200);
    }

    // Ingest flat out, one batch after another, while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(40));
    let load = {
        let (stop, acked) = (stop.clone(), acked.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let b = acked.load(Ordering::Relaxed);
                assert_eq!(post(port, "/v1/events", &batch(b)).0, 200);
                acked.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    while acked.load(Ordering::Relaxed) < 60 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let file = home.path().join("wapulse-backup.db");
    let out = store_cmd(&["store", "backup", file.to_str().unwrap()], &data);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("journal:"), "{}", text(&out));
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    let sent = acked.load(Ordering::Relaxed);
    // A backup never overwrites.
    let again = store_cmd(&["store", "backup", file.to_str().unwrap()], &data);
    assert!(!again.status.success());
    assert!(text(&again).contains("already exists"), "{}", text(&again));

    // Restored only into an empty directory.
    let refused = wapulse(&[
        "store",
        "restore",
        file.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(!refused.status.success());
    assert!(text(&refused).contains("not empty"), "{}", text(&refused));
    let garbage = home.path().join("garbage.db");
    std::fs::write(&garbage, "not a database").unwrap();
    let target = tempfile::tempdir().unwrap();
    let restored = target.path().join("data");
    let bad = wapulse(&[
        "store",
        "restore",
        garbage.to_str().unwrap(),
        "--data-dir",
        restored.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(!bad.status.success());
    assert!(
        text(&bad).contains("not a wapulse backup"),
        "{}",
        text(&bad)
    );
    let out = wapulse(&[
        "store",
        "restore",
        file.to_str().unwrap(),
        "--data-dir",
        restored.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let check = store_cmd(&["store", "check"], &restored);
    assert!(check.status.success(), "{}", text(&check));

    // As of one commit: the load's batches are a prefix, each whole.
    let journal = export_journal(&restored);
    let mut batches: BTreeSet<usize> = BTreeSet::new();
    let mut messages = 0;
    for line in journal.lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        if let Some(id) = e["id"].as_str().and_then(|i| i.strip_prefix('b')) {
            batches.insert(id.split('-').next().unwrap().parse().unwrap());
            messages += 1;
        }
    }
    let taken = batches.len();
    assert_eq!(
        batches,
        (0..taken).collect(),
        "no batch missing before the instant"
    );
    assert_eq!(messages, taken * BATCH, "every batch whole");
    assert!(taken >= 60 && taken <= sent, "{taken} of {sent}");

    // The restored wapulse answers as the source did at that instant.
    let (_copy, copy_port) = serve_on(target.path(), &config);
    let observe = get(copy_port, "/sessions/load/observe");
    assert_eq!(
        observe["messages"]["inbound"],
        json!(taken * BATCH),
        "nothing after the backup's instant"
    );
    assert_eq!(
        timeless(get(copy_port, "/sessions/fired/observe")),
        timeless(get(port, "/sessions/fired/observe"))
    );
    let ids = |v: Value| -> Vec<Value> {
        v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].clone())
            .collect()
    };
    assert_eq!(
        ids(get(copy_port, "/sessions")),
        ids(get(port, "/sessions"))
    );
    // Alerts are the evaluator's: compare once the copy has judged once.
    let started = Instant::now();
    while !get(copy_port, "/alerts")["evaluatedAt"].is_string() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the restored copy never judged its fleet"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let alerts = |p: u16| {
        let v = get(p, "/alerts");
        let mut a: Vec<(Value, Value, Value)> = v["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| (x["session"].clone(), x["code"].clone(), x["state"].clone()))
            .collect();
        a.sort_by_key(|x| format!("{x:?}"));
        a
    };
    assert_eq!(alerts(copy_port), alerts(port));
    assert!(format!("{:?}", alerts(copy_port)).contains("LOGGED_OUT"));
    assert_eq!(
        timeless(get(copy_port, "/v1/silences")),
        timeless(get(port, "/v1/silences"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_killed_half_way_leaves_the_source_sound_and_no_backup() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("wapulse.toml");
    std::fs::write(&config, "").unwrap();
    let (_source, port) = serve_on(home.path(), &config);
    let data = home.path().join("data");
    for b in 0..200 {
        assert_eq!(post(port, "/v1/events", &batch(b)).0, 200);
    }
    let file = home.path().join("killed.db");
    let partial = home.path().join("killed.db.partial");
    let mut child = wapulse(&["store", "backup", file.to_str().unwrap()])
        .env("WAPULSE_DATA_DIR", &data)
        .spawn()
        .unwrap();
    // Killed once the copy is being written (or, on a fast disk, after it
    // finished: then it must be a sound backup).
    let deadline = Instant::now() + WAIT;
    while !partial.exists() && child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the backup never started");
        std::thread::yield_now();
    }
    child.kill().unwrap();
    let finished = child.wait().unwrap().success();
    println!("backup finished before the kill: {finished}");
    let check = store_cmd(&["store", "check"], &data);
    assert!(check.status.success(), "{}", text(&check));
    assert_eq!(
        post(port, "/v1/events", &batch(999)).0,
        200,
        "still ingesting"
    );
    if finished {
        let restored = tempfile::tempdir().unwrap();
        let out = wapulse(&[
            "store",
            "restore",
            file.to_str().unwrap(),
            "--data-dir",
            restored.path().join("d").to_str().unwrap(),
        ])
        .output()
        .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    } else {
        assert!(
            !file.exists(),
            "a killed backup leaves no file under its name"
        );
        // The next backup takes its place.
        let out = store_cmd(&["store", "backup", file.to_str().unwrap()], &data);
        assert!(out.status.success(), "{}", text(&out));
        assert!(!partial.exists());
    }
}
