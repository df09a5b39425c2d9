//! Built-in history (issue 31): a known day replayed, every figure checked
//! against values computed by hand; bad parameters named; CSV; badges; and
//! history kept across kill -9.

use std::process::Stdio;

use serde_json::{Value, json};
use wapulse_core::Timestamp;

use crate::support::*;

const H: i64 = 3_600_000;

/// The start of a day that ended at least a day ago, on the hour.
fn day_start() -> i64 {
    let now = wapulse::clock::now().as_millis();
    now.div_euclid(H) * H - 48 * H
}

fn at(ms: i64) -> String {
    Timestamp::from_millis(ms).to_rfc3339()
}

/// Three sessions over one day `d`:
/// - s1 (acme): connected from 0 h, disconnected 6–8 h: 22 h of 24;
/// - s2 (acme): first seen at 12 h connected, stopped 18–20 h (not
///   observed): 10 h of 10;
/// - s3 (beta): connected from 0 h, logged out at 12 h: 12 h of 24.
async fn known_day(app: &TestApp, d: i64) {
    let state = |s: &str, h: i64, st: &str| json!({"session": s, "at": at(d + h * H), "type": "state", "state": st});
    app.ingest(json!([
        {"session": "s1", "type": "labels", "labels": {"tenant": "acme"}},
        {"session": "s2", "type": "labels", "labels": {"tenant": "acme"}},
        {"session": "s3", "type": "labels", "labels": {"tenant": "beta"}},
    ]))
    .await;
    app.ingest(json!([
        state("s1", 0, "connected"),
        state("s3", 0, "connected"),
        state("s1", 6, "disconnected"),
        state("s1", 8, "connected"),
        state("s3", 12, "logged_out"),
        state("s2", 12, "connected"),
        state("s2", 18, "stopped"),
        state("s2", 20, "connected"),
        {"session": "s1", "at": at(d + 9 * H), "type": "message", "direction": "inbound", "count": 4},
        {"session": "s1", "at": at(d + 9 * H + 1000), "type": "message", "direction": "outbound", "ids": ["m1"]},
        {"session": "s1", "at": at(d + 9 * H + 2000), "type": "heartbeat", "rtt_ms": 100},
        {"session": "s1", "at": at(d + 9 * H + 3000), "type": "heartbeat", "rtt_ms": 300},
    ]))
    .await;
    // The ack in a later batch, as gateways send it: its send is known.
    app.ingest(json!([
        {"session": "s1", "at": at(d + 9 * H + 4000), "type": "ack", "message": "m1", "status": "delivered"},
    ]))
    .await;
}

fn close(a: &Value, b: f64) -> bool {
    (a.as_f64().unwrap() - b).abs() < 1e-9
}

#[tokio::test]
async fn a_known_day_gives_the_availability_computed_by_hand() {
    let app = spawn_app().await;
    let d = day_start();
    known_day(&app, d).await;
    // The labels were set (their events are stamped now): the day's
    // figures are read over [d, d + 24 h).
    let q = format!("from={}&to={}", at(d), at(d + 24 * H));
    let s1 = app
        .get_json(&format!("/sessions/s1/availability?{q}"), 200)
        .await;
    assert!(close(&s1["availability"], 22.0 / 24.0), "{s1}");
    assert_eq!(s1["connectedMs"], 22 * H);
    assert_eq!(s1["observedMs"], 24 * H);
    assert_eq!(s1["intervals"], 3);
    let s2 = app
        .get_json(&format!("/sessions/s2/availability?{q}"), 200)
        .await;
    assert_eq!(
        s2["observedMs"],
        10 * H,
        "stopped time is not observed: {s2}"
    );
    assert!(close(&s2["availability"], 1.0));
    let s3 = app
        .get_json(&format!("/sessions/s3/availability?{q}"), 200)
        .await;
    assert!(close(&s3["availability"], 0.5));

    let all = app
        .get_json(&format!("/availability?by=tenant&below=0.99&{q}"), 200)
        .await;
    let groups = all["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{all}");
    assert_eq!(groups[0]["value"], "acme");
    assert!(close(&groups[0]["availability"], 32.0 / 34.0), "{all}");
    assert_eq!(groups[0]["sessions"], 2);
    assert_eq!(groups[1]["value"], "beta");
    assert!(close(&groups[1]["availability"], 0.5));
    let below: Vec<&str> = all["below"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["session"].as_str().unwrap())
        .collect();
    assert_eq!(below, ["s3", "s1"], "worst first: {all}");

    // The session's day, hour by hour.
    let h = app
        .get_json(&format!("/sessions/s1/history?{q}&step=1h"), 200)
        .await;
    let points = h["points"].as_array().unwrap();
    assert_eq!(points.len(), 24);
    assert_eq!(points[6]["stateMs"]["disconnected"], H);
    assert_eq!(points[6]["stateMs"]["connected"], 0);
    assert_eq!(points[8]["stateMs"]["connected"], H);
    assert_eq!(
        points[8]["outages"][0]["ms"],
        2 * H,
        "the outage that ended at 8 h"
    );
    assert_eq!(points[9]["messagesIn"], 4);
    assert_eq!(points[9]["messagesOut"], 1);
    assert_eq!(points[9]["rttMs"], 200);
    assert_eq!(points[9]["acksDelivered"], 1);
    assert_eq!(
        points[9]["deliveryMs"], 3000,
        "sent at 9 h + 1 s, delivered 3 s later"
    );
    assert_eq!(points[10]["deliveryMs"], Value::Null);
    assert_eq!(points[10]["rttMs"], Value::Null);
    // The fleet's day: events by event time.
    let f = app
        .get_json(&format!("/history/fleet?{q}&step=1h"), 200)
        .await;
    let points = f["points"].as_array().unwrap();
    assert_eq!(points.len(), 24);
    assert_eq!(f["step"], "1h");
    assert_eq!(points[0]["eventsAccepted"], 2);
    assert_eq!(points[9]["messagesIn"], 4);
    assert_eq!(points[9]["eventsAccepted"], 5);
    assert_eq!(
        points[9]["delivery"],
        json!({"server": 0, "delivered": 1, "read": 0, "failed": 0})
    );
    assert_eq!(points[12]["eventsAccepted"], 2);
    let total: u64 = points
        .iter()
        .map(|p| p["eventsAccepted"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 13);
}

#[tokio::test]
async fn the_last_day_ends_with_the_step_now_running_and_live_states() {
    let app = spawn_app().await;
    app.ingest(json!([{"session": "live", "type": "state", "state": "connected"}]))
        .await;
    let before = wapulse::clock::now().as_millis();
    let f = app.get_json("/history/fleet?step=1h", 200).await;
    let points = f["points"].as_array().unwrap();
    // 24 h back from now, aligned to the hour: 25 buckets, the last one
    // the hour now running.
    assert_eq!(points.len(), 25, "{f}");
    let last = points.last().unwrap();
    assert!(
        last["sessions"]["connected"].as_u64().unwrap() >= 1,
        "{last}"
    );
    assert!(last["eventsAccepted"].as_u64().unwrap() >= 1);
    assert!(last["levels"]["ok"].is_u64(), "{last}");
    // The hour running during the read (an hour may turn while it runs).
    let now = wapulse::clock::now().as_millis();
    let last_at = Timestamp::parse_rfc3339(last["at"].as_str().unwrap())
        .unwrap()
        .as_millis();
    assert!(
        last_at <= now && before < last_at + H,
        "{last_at} {before} {now}"
    );

    // The step now running holds the alerts firing now, by code.
    app.ingest(
        json!([{"session": "gone", "type": "state", "state": "logged_out", "reason": "401"}]),
    )
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let last = loop {
        let f = app.get_json("/history/fleet?step=1h", 200).await;
        let last = f["points"].as_array().unwrap().last().unwrap().clone();
        if last["alertsByCode"]["LOGGED_OUT"]["critical"] == 1 {
            break last;
        }
        assert!(std::time::Instant::now() < deadline, "never fired: {last}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(last["alertsFiring"].as_u64().unwrap() >= 1, "{last}");
    assert_eq!(last["stateLevels"]["logged_out"]["critical"], 1, "{last}");
    assert!(last["delivery"].is_object(), "{last}");
}

#[tokio::test]
async fn bad_ranges_and_steps_are_400s_naming_the_parameter() {
    let app = spawn_app().await;
    app.ingest(json!([{"session": "s", "type": "state", "state": "connected"}]))
        .await;
    for (path, field) in [
        ("/history/fleet?step=2m", "step"),
        ("/history/fleet?from=yesterday", "from"),
        ("/history/fleet?to=2026-13-01T00:00:00Z", "to"),
        (
            "/history/fleet?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z",
            "from",
        ),
        (
            "/history/fleet?from=2000-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&step=1m",
            "step",
        ),
        ("/sessions/s/history?step=1m", "step"),
        ("/sessions/s/availability?window=forever", "window"),
        ("/sessions/s/availability?window=0s", "window"),
        (
            "/sessions/s/availability?window=1d&from=2026-12-01T00:00:00Z",
            "window",
        ),
        ("/availability?below=2", "below"),
        ("/availability?by=bad%20name", "by"),
        ("/badge/s/availability.svg?window=x", "window"),
    ] {
        let e = app.get_json(path, 400).await;
        assert_eq!(e["field"], field, "{path}: {e}");
    }
    app.get_json("/history/fleet?colour=blue", 400).await;
    app.get_json("/sessions/nobody/availability", 404).await;
    app.get_json("/sessions/nobody/history", 404).await;
}

#[tokio::test]
async fn csv_is_served_on_request_and_badges_are_svg() {
    let app = spawn_app().await;
    let d = day_start();
    known_day(&app, d).await;
    let q = format!("from={}&to={}", at(d), at(d + 24 * H));
    let r = app
        .client
        .get(app.url(&format!("/availability?by=tenant&{q}")))
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = r.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("kind,name,availability,sessions"));
    assert_eq!(lines.next(), Some("group,acme,0.9411764705882353,2"));
    assert_eq!(lines.next(), Some("group,beta,0.5,1"));
    let r = app
        .client
        .get(app.url(&format!("/history/fleet?{q}&step=1h")))
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert_eq!(text.lines().count(), 25, "a head and 24 rows");
    assert!(text.starts_with("at,connecting,connected,"));

    let r = app.get("/badge/s1/status.svg").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let svg = r.text().await.unwrap();
    assert!(svg.contains("<title>whatsapp: connected</title>"), "{svg}");
    let svg = app
        .get("/badge/s3/availability.svg?window=400d")
        .await
        .text()
        .await
        .unwrap();
    assert!(svg.contains("availability 400d"), "{svg}");
    assert!(svg.contains('%'), "{svg}");
    assert_eq!(app.get("/badge/nobody/status.svg").await.status(), 404);
    // A label value's badge: acme was up 32 h of 34 observed in the day;
    // over the last 400 days (up to now) it has been up since.
    let svg = app
        .get("/badge/by/tenant/acme/availability.svg?window=400d")
        .await
        .text()
        .await
        .unwrap();
    assert!(svg.contains("<title>availability 400d: "), "{svg}");
    let none = app.get("/badge/by/tenant/nobody/availability.svg").await;
    assert_eq!(none.status(), 200, "a badge always renders");
    assert!(none.text().await.unwrap().contains("no data"));
    assert_eq!(
        app.get("/badge/by/bad%20label/x/availability.svg")
            .await
            .status(),
        400
    );
}

/// State changes are written in the journal's transaction: an acknowledged
/// change survives kill -9. What can be lost is only the fleet's state
/// sample of the last commit, written with the next one or within a
/// second of quiet (the live snapshot stands for it in the step now
/// running).
#[tokio::test]
async fn history_survives_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let start = || {
        wapulse(&["serve"])
            .env("PORT", port.to_string())
            .env("WAPULSE_DATA_DIR", data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut server = Running(start());
    let up = format!("{base}/healthz");
    tokio::task::spawn_blocking(move || wait_until_up(&up))
        .await
        .unwrap();
    let d = day_start();
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/v1/events"))
        .json(&json!([
            {"session": "k", "at": at(d), "type": "state", "state": "connected"},
            {"session": "k", "at": at(d + 6 * H), "type": "state", "state": "disconnected"},
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    let mut server = Running(start());
    let up = format!("{base}/healthz");
    tokio::task::spawn_blocking(move || wait_until_up(&up))
        .await
        .unwrap();
    let a: Value = client
        .get(format!(
            "{base}/sessions/k/availability?from={}&to={}",
            at(d),
            at(d + 12 * H)
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(a["connectedMs"], 6 * H, "{a}");
    assert_eq!(a["observedMs"], 12 * H, "{a}");
    server.0.kill().unwrap();
    server.0.wait().unwrap();
}
