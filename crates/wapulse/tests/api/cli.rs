//! The `wapulse` binary: check plugin, the seed's health check script,
//! refusing bad settings, graceful shutdown, the demo.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::process::reqwest;
use crate::support::*;

fn run_check(url: &str) -> (i32, String) {
    let out = wapulse(&["check", url, "--timeout", "5s"])
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn check_plugin_exit_codes() {
    let app = spawn_app().await;
    let url = app.url("/session/health");
    let u = url.clone();
    let (code, line) = tokio::task::spawn_blocking(move || run_check(&u))
        .await
        .unwrap();
    assert_eq!(code, 0, "{line}");
    assert!(
        line.starts_with("WAPULSE OK - ") && line.contains(" | time="),
        "{line}"
    );
    app.ingest(json!([{"type": "state", "state": "qr_required"}]))
        .await;
    let u = url.clone();
    let (code, line) = tokio::task::spawn_blocking(move || run_check(&u))
        .await
        .unwrap();
    assert_eq!(code, 1, "{line}");
    app.ingest(json!([{"type": "state", "state": "logged_out"}]))
        .await;
    let u = url.clone();
    let (code, line) = tokio::task::spawn_blocking(move || run_check(&u))
        .await
        .unwrap();
    assert_eq!(code, 2, "{line}");
    assert!(line.starts_with("WAPULSE CRITICAL"), "{line}");
    let closed = format!("http://127.0.0.1:{}/session/health", free_port());
    let (code, line) = tokio::task::spawn_blocking(move || run_check(&closed))
        .await
        .unwrap();
    assert_eq!(code, 3, "{line}");
    assert!(line.starts_with("WAPULSE UNKNOWN"), "{line}");
}

/// The seed's "Health Check Script", verbatim but for the host.
const SEED_SCRIPT: &str = r#"#!/bin/bash
response=$(curl -s -w "%{http_code}" http://localhost:3001/session/health)
http_code="${response: -3}"
body="${response:0:${#response}-3}"

if [ "$http_code" -eq 503 ]; then
  echo "CRITICAL: WhatsApp session unhealthy"
  echo "$body" | jq .
  exit 2
elif [ "$http_code" -eq 200 ]; then
  status=$(echo "$body" | jq -r .status)
  if [ "$status" = "warning" ]; then
    echo "WARNING: WhatsApp session has warnings"
    exit 1
  fi
  echo "OK: WhatsApp session healthy"
  exit 0
fi
"#;

#[tokio::test]
async fn seed_health_check_script_runs_unchanged() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("health.sh");
    std::fs::write(
        &script,
        SEED_SCRIPT.replace("http://localhost:3001", &format!("http://{}", app.addr)),
    )
    .unwrap();
    let run = move || {
        let out = Command::new("bash").arg(&script).output().expect("bash");
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let r = run.clone();
    let (code, out) = tokio::task::spawn_blocking(r).await.unwrap();
    assert_eq!((code, out.trim()), (0, "OK: WhatsApp session healthy"));
    app.ingest(json!([{"type": "state", "state": "qr_required"}]))
        .await;
    let r = run.clone();
    let (code, out) = tokio::task::spawn_blocking(r).await.unwrap();
    assert_eq!(
        (code, out.trim()),
        (1, "WARNING: WhatsApp session has warnings")
    );
    app.ingest(json!([{"type": "state", "state": "logged_out"}]))
        .await;
    let (code, out) = tokio::task::spawn_blocking(run).await.unwrap();
    assert_eq!(code, 2, "{out}");
    assert!(
        out.starts_with("CRITICAL: WhatsApp session unhealthy"),
        "{out}"
    );
    assert!(
        out.contains("\"status\": \"critical\""),
        "jq pretty-printed the body: {out}"
    );
}

#[test]
fn refuses_to_start_on_bad_settings_naming_them() {
    type Env<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Env, &str); 5] = [
        (&[("WAPULSE_BIND", "0.0.0.0:0")], "INGEST_TOKEN"),
        (&[("LOG_FORMAT", "xml")], "LOG_FORMAT"),
        (&[("PORT", "eighty")], "PORT"),
        (&[("LOG_LEVEL", "SHOUTY")], "LOG_LEVEL"),
        (
            &[("WAPULSE_CONFIG", "/nonexistent/wapulse.toml")],
            "/nonexistent/wapulse.toml",
        ),
    ];
    for (env, needle) in cases {
        let mut cmd = wapulse(&["serve"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{env:?}: {stderr}");
        assert!(stderr.contains(needle), "{env:?}: {stderr}");
    }
}

#[test]
fn logs_are_one_json_object_per_line_when_asked_and_never_coloured_in_a_pipe() {
    let served = serve_with(&[("LOG_FORMAT", "json")]);
    let log = served.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "some log at start");
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: not JSON: {line}"));
        for key in ["timestamp", "level", "target", "message"] {
            assert!(v.get(key).is_some(), "{key} missing in {line}");
        }
    }
    // The start warnings carry their fields beside the message.
    assert!(
        lines.iter().any(|l| l.contains("\"bind\":\"127.0.0.1:")),
        "{log}"
    );
    drop(served);
    // Text into a pipe (or a file): no escape codes, whatever NO_COLOR says.
    let served = serve_with(&[]);
    let log = served.log();
    assert!(log.contains("WARN"), "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a pipe: {log:?}");
}

#[test]
fn config_check_validates_a_file() {
    let out =
        config_check("default_session = \"main\"\n[thresholds]\nheartbeat_age_warning = \"45s\"\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"main\""));
    let out = config_check("[thresholds]\nheartbeat_age_warning = \"10m\"\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("heartbeat_age_warning"));
}

#[test]
fn serve_shuts_down_gracefully_on_sigterm() {
    let mut served = serve_with(&[]);
    assert_eq!(terminate(&mut served.running.0), 0);
}

#[test]
fn demo_serves_a_troubled_fleet() {
    let port = free_port();
    let child = wapulse(&["demo", "--sessions", "20"])
        .env("PORT", port.to_string())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(&format!("{base}/healthz"));
    // The demo's first tick is applied before it serves its first answer
    // worth reading; poll /health until all 20 sessions are there.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = reqwest::body(&format!("{base}/health")).unwrap();
        if body.contains("\"sessions\":20") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "demo never reached 20 sessions: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Through the front door: the events were posted to the ingest API,
    // so its counter (the overview's ingest rate) moves.
    let (_, metrics) = reqwest::body(&format!("{base}/metrics")).unwrap();
    let accepted: f64 = metrics
        .lines()
        .find(|l| l.starts_with("wapulse_ingest_events_total{outcome=\"accepted\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no accepted ingest counter: {metrics}"));
    assert!(accepted > 20.0, "{accepted} events through ingest");
    // Trouble whose history is back-dated shows at once.
    let (_, alerts) = reqwest::body(&format!("{base}/sessions/demo-006/alerts")).unwrap();
    assert!(alerts.contains("LONG_DISCONNECTION"), "{alerts}");
    let (_, alerts) = reqwest::body(&format!("{base}/sessions/demo-010/alerts")).unwrap();
    assert!(alerts.contains("LOCK_HELD_TOO_LONG"), "{alerts}");
    // The whole loop with no service: the demo's console receiver prints
    // the grouped notification.
    let stdout = running.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let notified = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with("[notify console] 🔴 FIRING") => break line,
            Ok(_) => {}
            Err(_) => panic!("the demo printed no notification within 60 s"),
        }
    };
    assert!(notified.contains("session"), "{notified}");
    assert_eq!(terminate(&mut running.0), 0);
}
