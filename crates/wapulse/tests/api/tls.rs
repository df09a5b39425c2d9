//! TLS out of wapulse: `https://` probes, `postgres` probes with
//! `sslmode=require`, and receivers, against servers holding certificates
//! from a test CA (rcgen). Trust comes from `ca_file` (a probe's own, or
//! the top-level one); without it the certificate is refused.

use std::time::Duration;

use axum::Json;
use axum::routing::get;
use serde_json::json;

use crate::support::*;

/// An HTTPS service answering `/health` with `{"status":"ok"}`.
async fn https_service(ca: &TestCa, names: &[&str]) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TlsListener::bind(ca.server_config(names)).await;
    let port = axum::serve::Listener::local_addr(&listener).unwrap().port();
    let app = axum::Router::new().route("/health", get(|| async { Json(json!({"status": "ok"})) }));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (port, task)
}

async fn probes_of(app: &TestApp) -> serde_json::Value {
    assert_eq!(app.get_json("/warmup", 200).await["status"], "warm");
    app.get_json_any("/api/health").await["probes"].clone()
}

#[tokio::test]
async fn https_probes_trust_the_ca_file_and_refuse_an_unknown_issuer() {
    let ca = TestCa::new();
    let (port, _service) = https_service(&ca, &["localhost", "127.0.0.1"]).await;
    let ca_file = ca.ca_file.display().to_string();
    let config = [
        probe(
            "trusted",
            "http",
            &format!("url = \"https://localhost:{port}/health\"\nca_file = \"{ca_file}\"\nexpect_json = {{ status = \"ok\" }}"),
        ),
        probe(
            "by-address",
            "http",
            &format!("url = \"https://127.0.0.1:{port}/health\"\nca_file = \"{ca_file}\""),
        ),
        probe(
            "untrusted",
            "http",
            &format!("url = \"https://localhost:{port}/health\""),
        ),
        probe(
            "plain-to-tls",
            "http",
            &format!("url = \"http://localhost:{port}/health\"\ntimeout = \"2s\""),
        ),
    ]
    .concat();
    let app = spawn_with_config(&config).await;
    let p = probes_of(&app).await;
    assert_eq!(p["trusted"]["status"], "ok", "{p:#}");
    assert_eq!(p["trusted"]["reason"], "status 200, body as expected");
    assert_eq!(p["by-address"]["status"], "ok", "{p:#}");
    assert_eq!(p["untrusted"]["status"], "failed", "{p:#}");
    let reason = p["untrusted"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("certificate") && reason.contains("UnknownIssuer"),
        "{reason}"
    );
    assert_eq!(p["plain-to-tls"]["status"], "failed", "{p:#}");

    // The top-level ca_file is trusted by every probe.
    let global = format!(
        "ca_file = \"{ca_file}\"\n{}",
        probe(
            "via-global",
            "http",
            &format!("url = \"https://localhost:{port}/health\""),
        )
    );
    let app = spawn_with_config(&global).await;
    assert_eq!(probes_of(&app).await["via-global"]["status"], "ok");

    // A certificate for another name is refused even from a trusted CA.
    let (other, _other_service) = https_service(&ca, &["db.internal"]).await;
    let app = spawn_with_config(&probe(
        "wrong-name",
        "http",
        &format!("url = \"https://localhost:{other}/health\"\nca_file = \"{ca_file}\""),
    ))
    .await;
    let p = probes_of(&app).await;
    let reason = p["wrong-name"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("not valid for name \"localhost\""),
        "{reason}"
    );
}

#[tokio::test]
async fn postgres_probes_use_tls_with_sslmode_require_and_verify_the_server() {
    let ca = TestCa::new();
    let (cert, key) = ca.issue(&["localhost", "127.0.0.1"]);
    let pg = PostgresServer::start_with_tls(&cert, &key);
    let ca_file = ca.ca_file.display().to_string();
    let url = pg.url(None);
    // tokio-postgres reads sslmode from the URL.
    let config = [
        probe(
            "db-tls",
            "postgres",
            &format!("url = \"{url}?sslmode=require\"\nca_file = \"{ca_file}\""),
        ),
        probe(
            "db-tls-untrusted",
            "postgres",
            &format!("url = \"{url}?sslmode=require\""),
        ),
        probe(
            "db-plain",
            "postgres",
            &format!("url = \"{url}?sslmode=disable\""),
        ),
    ]
    .concat();
    let app = spawn_with_config(&config).await;
    let p = probes_of(&app).await;
    assert_eq!(p["db-tls"]["status"], "ok", "{p:#}");
    assert_eq!(p["db-tls"]["reason"], "SELECT 1 ok");
    assert_eq!(p["db-tls-untrusted"]["status"], "failed", "{p:#}");
    let reason = p["db-tls-untrusted"]["reason"].as_str().unwrap();
    assert!(reason.contains("UnknownIssuer"), "{reason}");
    // The server takes TLS only: the probe that passed used it, and one
    // without it is turned away.
    assert_eq!(p["db-plain"]["status"], "failed", "{p:#}");
    let reason = p["db-plain"]["reason"].as_str().unwrap();
    assert!(reason.contains("no encryption"), "{reason}");
}

#[tokio::test]
async fn a_bad_ca_file_is_refused_at_start_naming_the_setting() {
    let ca = TestCa::new();
    let junk = ca.path("junk.pem");
    std::fs::write(&junk, "-----BEGIN NOTHING-----\n").unwrap();
    for (config, needle) in [
        (
            format!("ca_file = \"{}\"\n", junk.display()),
            "ca_file / WAPULSE_CA_FILE",
        ),
        (
            probe(
                "x",
                "http",
                &format!(
                    "url = \"https://h/\"\nca_file = \"{}\"",
                    ca.path("missing.pem").display()
                ),
            ),
            "probes[0] (name \"x\"): ca_file: cannot read",
        ),
        (
            probe(
                "r",
                "redis",
                &format!(
                    "url = \"redis://h\"\nca_file = \"{}\"",
                    ca.ca_file.display()
                ),
            ),
            "ca_file: not a field of a `redis` probe",
        ),
    ] {
        let path = ca.path("wapulse.toml");
        std::fs::write(&path, &config).unwrap();
        let err = format!("{:#}", Settings::load(Some(&path), |_| None).unwrap_err());
        assert!(err.contains(needle), "{config}: {err}");
    }
}

#[tokio::test]
async fn receivers_deliver_over_https_trusting_the_top_level_ca_file() {
    let ca = TestCa::new();
    let slack = FakeReceiver::start_tls(Kind::Slack, ca.server_config(&["127.0.0.1"])).await;
    let app = spawn_alerting(&format!(
        r#"
        ca_file = "{}"
        [alerting]
        group_wait = "0s"
        [[receivers]]
        name = "chat"
        kind = "slack"
        url = "{}"
        "#,
        ca.ca_file.display(),
        slack.url("/services/T000/B000/XXXX"),
    ))
    .await;
    assert!(slack.url("/").starts_with("https://"));
    app.ingest(json!([
        {"session": "s1", "type": "state", "state": "connected"},
        {"session": "s1", "type": "state", "state": "logged_out", "reason": "401"},
    ]))
    .await;
    let got = slack
        .wait_until("slack over https", Duration::from_secs(20), |r| {
            !r.is_empty()
        })
        .await;
    assert!(
        got[0].body["text"].as_str().unwrap().contains("LOGGED_OUT"),
        "{:?}",
        got[0].body
    );
    assert!(slack.violations().is_empty(), "{:?}", slack.violations());
}
