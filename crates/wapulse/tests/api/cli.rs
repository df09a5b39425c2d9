//! The `wapulse` binary: check plugin, the seed's health check script,
//! refusing bad settings, graceful shutdown, the demo.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_wapulse");

/// The binary with a clean environment. Tests that start a server set
/// `WAPULSE_DATA_DIR` to a temporary directory they own.
pub fn wapulse(args: &[&str]) -> Command {
    wapulse_via(&[], args)
}

/// The same, run through `wrapper` (a command and its arguments, which
/// end where the binary's path goes: `setpriv … --`).
pub fn wapulse_via(wrapper: &[&str], args: &[&str]) -> Command {
    let mut c = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(BIN);
            c
        }
        None => Command::new(BIN),
    };
    c.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOG_LEVEL", "INFO");
    c
}

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
    let cases: [(Env, &str); 4] = [
        (&[("WAPULSE_BIND", "0.0.0.0:0")], "INGEST_TOKEN"),
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

/// Runs `wapulse config check` on a config file with this text.
/// `wapulse store export` of a data directory: its journal as NDJSON.
pub fn export_journal(data: &std::path::Path) -> String {
    let export = wapulse(&["store", "export"])
        .env("WAPULSE_DATA_DIR", data)
        .output()
        .unwrap();
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    String::from_utf8(export.stdout).unwrap()
}

pub fn config_check(toml_text: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wapulse.toml");
    std::fs::write(&path, toml_text).unwrap();
    wapulse(&["config", "check", "--config", path.to_str().unwrap()])
        .output()
        .unwrap()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Running(pub Child);

/// A `wapulse serve` started by [`serve_with`]; killed on drop.
pub struct Served {
    pub running: Running,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Served {
    /// What the server has written (its log, stdout and stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("output.log")).unwrap_or_default()
    }
}

/// Starts `wapulse serve` on a free port with a data directory of its own
/// and the extra `env`, and waits until it answers `/healthz`.
pub fn serve_with(env: &[(&str, &str)]) -> Served {
    serve_via(&[], env)
}

/// The same, run through `wrapper` (see [`wapulse_via`]).
pub fn serve_via(wrapper: &[&str], env: &[(&str, &str)]) -> Served {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("output.log")).unwrap();
    let mut cmd = wapulse_via(wrapper, &["serve"]);
    cmd.env("PORT", port.to_string())
        .env("WAPULSE_DATA_DIR", dir.path().join("data"))
        .stderr(log.try_clone().unwrap())
        .stdout(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let running = Running(cmd.spawn().unwrap());
    wait_until_up(&format!("http://127.0.0.1:{port}/healthz"));
    Served { running, port, dir }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// This process's user id.
pub fn nix_uid() -> u32 {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Polls `url` until it answers 200, for at most 20 s.
pub fn wait_until_up(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let client = reqwest::blocking_get_status;
    while Instant::now() < deadline {
        if client(url) == Some(200) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{url} did not come up");
}

pub mod reqwest {
    /// A tiny blocking GET over a std TcpStream (tests only), so the
    /// synchronous process tests need no async runtime.
    pub fn blocking_get_status(url: &str) -> Option<u16> {
        body(url).map(|(code, _)| code)
    }

    pub fn body(url: &str) -> Option<(u16, String)> {
        send(url, "GET", None)
    }

    /// One request with `Connection: close`; a `json` body is sent as
    /// `application/json`. Returns the status and the body.
    pub fn send(url: &str, method: &str, json: Option<&str>) -> Option<(u16, String)> {
        use std::io::{Read, Write};
        let rest = url.strip_prefix("http://")?;
        let (host, path) = rest.split_at(rest.find('/')?);
        let mut s = std::net::TcpStream::connect(host).ok()?;
        let content = json.map_or(String::new(), |b| {
            format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            )
        });
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{content}Connection: close\r\n\r\n{}",
            json.unwrap_or_default()
        )
        .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let code = text.split(' ').nth(1)?.parse().ok()?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Some((code, body))
    }
}

pub fn terminate(child: &mut Child) -> i32 {
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
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
