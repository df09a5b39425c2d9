//! Email against a real SMTP server (aiosmtpd) with a certificate from a
//! test CA: STARTTLS and AUTH, one multipart message per group message,
//! threaded, labels escaped in its HTML; implicit TLS; a refused login is
//! a permanent error, not retried.

use serde_json::{Value, json};

use crate::support::*;

fn email_config(ca: &TestCa, port: u16, tls: &str, password: &str) -> String {
    format!(
        r#"
        ca_file = "{}"
        [alerting]
        group_wait = "0s"
        group_interval = "1s"
        external_url = "https://wapulse.example"
        [[receivers]]
        name = "mail"
        kind = "email"
        smtp_host = "127.0.0.1"
        smtp_port = {port}
        tls = "{tls}"
        username = "ops"
        password = "{password}"
        from = "wapulse <alerts@wa.example>"
        to = ["oncall@wa.example", "Ana <ana@wa.example>"]
        [[routes]]
        receiver = "mail"
        group_by = ["code", "team"]
        "#,
        ca.ca_file.display(),
    )
}

fn part<'a>(mail: &'a Value, kind: &str) -> &'a str {
    mail["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} part: {mail}"))["text"]
        .as_str()
        .unwrap()
}

#[tokio::test]
async fn a_group_is_mailed_over_starttls_with_auth_and_its_resolve_lands_in_its_thread() {
    let ca = TestCa::new();
    let smtp = SmtpServer::start(&ca, "starttls", "ops", "pw-S3CR3T");
    let app = spawn_alerting(&email_config(&ca, smtp.port, "starttls", "pw-S3CR3T")).await;
    app.ingest(json!([
        connected("s1"),
        labelled("s1", json!({"team": "<b>x</b> & co"})),
        logged_out("s1"),
    ]))
    .await;
    let got = smtp.wait_for("the firing mail", 1).await;
    let firing = &got[0];
    assert_eq!(firing["tls"], true, "sent after STARTTLS");
    assert_eq!(firing["authenticated"], true);
    assert_eq!(firing["mail_from"], "alerts@wa.example");
    assert_eq!(
        firing["rcpt_tos"],
        json!(["oncall@wa.example", "ana@wa.example"])
    );
    assert_eq!(firing["content_type"], "multipart/alternative");
    let headers = &firing["headers"];
    let subject = headers["Subject"].as_str().unwrap();
    assert!(
        subject.contains("FIRING") && subject.contains("LOGGED_OUT"),
        "{subject}"
    );
    let text = part(firing, "text/plain");
    assert!(text.contains("s1") && text.contains("logged out"), "{text}");
    assert!(
        text.contains("https://wapulse.example/ui/sessions/s1"),
        "{text}"
    );
    let html = part(firing, "text/html");
    assert!(
        html.contains("team=&lt;b&gt;x&lt;/b&gt; &amp; co") && !html.contains("<b>x</b>"),
        "the label shows as written: {html}"
    );
    assert!(
        html.contains(r#"<a href="https://wapulse.example/ui/sessions/s1">"#),
        "{html}"
    );
    let thread = headers["References"].as_str().unwrap().to_owned();
    assert_eq!(headers["In-Reply-To"], thread.as_str());
    assert!(
        thread.starts_with("<wapulse.") && thread.ends_with("@wa.example>"),
        "{thread}"
    );

    app.ingest(json!([connected("s1")])).await;
    let got = smtp.wait_for("the resolved mail", 2).await;
    let resolved = &got[1];
    assert!(
        resolved["headers"]["Subject"]
            .as_str()
            .unwrap()
            .contains("RESOLVED")
    );
    assert_eq!(
        resolved["headers"]["In-Reply-To"],
        thread.as_str(),
        "the resolve is in the firing's thread"
    );
    assert_eq!(resolved["headers"]["References"], thread.as_str());
    assert_ne!(
        resolved["headers"]["Message-ID"], headers["Message-ID"],
        "its own id"
    );
    assert!(part(resolved, "text/plain").contains("Resolved"));
}

#[tokio::test]
async fn implicit_tls_delivers_and_a_refused_login_is_given_up_without_retrying() {
    let ca = TestCa::new();
    let smtp = SmtpServer::start(&ca, "implicit", "ops", "right");
    let app = spawn_alerting(&email_config(&ca, smtp.port, "implicit", "right")).await;
    app.ingest(json!([connected("s1"), logged_out("s1")])).await;
    let got = smtp.wait_for("the mail over implicit TLS", 1).await;
    assert_eq!(got[0]["tls"], true);
    assert_eq!(got[0]["authenticated"], true);

    let wrong = spawn_alerting(&email_config(&ca, smtp.port, "implicit", "wrong-S3CR3T")).await;
    wrong
        .ingest(json!([connected("s2"), logged_out("s2")]))
        .await;
    let rows = wait_outbox(&wrong, "the refused login gives up", |rows| {
        rows.iter().any(|r| r.0 == "mail" && r.1 == "failed")
    })
    .await;
    assert_eq!(rows[0].2, 1, "a 535 is permanent: tried once: {rows:?}");
    let health = wrong.get_json("/api/health", 200).await;
    assert_eq!(health["receivers"]["mail"]["status"], "failing", "{health}");
    assert!(
        !health.to_string().contains("S3CR3T"),
        "the password never shows"
    );
    assert_eq!(smtp.received().len(), 1, "nothing more was delivered");
}
