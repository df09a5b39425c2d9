//! WhatsApp itself as a receiver, through WAHA and Evolution API stand-ins:
//! the message goes from the configured session; while that session is
//! critical it goes to the fallback instead (said in `/api/health`), and
//! without a fallback it waits for the session to recover.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn waha_sends_from_its_session_and_a_critical_sender_falls_back() {
    let waha = FakeReceiver::start(Kind::Waha("waha-key".into())).await;
    let mail = FakeReceiver::start(Kind::Webhook(None)).await;
    let app = spawn_alerting(&alerting_config(
        r#"group_wait = "0s", group_interval = "1s", external_url = "https://wapulse.example""#,
        &[
            receiver(
                "wa",
                "waha",
                &waha.url(""),
                "api_key = \"waha-key\"\nsession = \"ops-bot\"\nchat_id = \"5511999990000\"\n\
                 fallback = \"mail\"\nrate_per_second = 50",
            ),
            webhook("mail", &mail.url("/")),
            "[[routes]]\nreceiver = \"wa\"\n".to_owned(),
        ],
    ))
    .await;
    app.ingest(json!([
        connected("ops-bot"),
        connected("s1"),
        logged_out("s1")
    ]))
    .await;
    let got = waha.wait_for("the WhatsApp message", 1).await;
    let body = &got[0].body;
    assert_eq!(got[0].answered, 201, "{:?}", waha.violations());
    assert_eq!(body["session"], "ops-bot");
    assert_eq!(
        body["chatId"], "5511999990000@c.us",
        "a number is a contact"
    );
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with("*FIRING*") && text.contains("s1"),
        "{text}"
    );
    assert!(
        text.contains("https://wapulse.example/ui/sessions/s1"),
        "{text}"
    );
    let health = app.get_json("/api/health", 200).await;
    assert_eq!(
        health["receivers"]["wa"]["sender"],
        json!({"session": "ops-bot", "healthy": true, "fallback": "mail", "viaFallback": 0}),
        "{health}"
    );

    // The sending session itself logs out: its own alert cannot go through
    // it, and goes to the fallback.
    app.ingest(json!([logged_out("ops-bot")])).await;
    let got = mail.wait_for("the fallback's message", 1).await;
    assert_eq!(
        firing_sessions(&got[0]),
        ["ops-bot", "s1"],
        "the group (by code) now with the sender's own alert, through the fallback"
    );
    assert_eq!(waha.received().len(), 1, "nothing more into the void");
    let health = app.get_json("/api/health", 200).await;
    let sender = &health["receivers"]["wa"]["sender"];
    assert_eq!(sender["healthy"], false, "{health}");
    assert_eq!(sender["viaFallback"], 1, "{health}");
    assert!(waha.violations().is_empty(), "{:?}", waha.violations());
}

#[tokio::test]
async fn evolution_without_a_fallback_keeps_the_message_until_its_instance_recovers() {
    let evo = FakeReceiver::start(Kind::Evolution("evo-key".into())).await;
    let app = spawn_alerting(&alerting_config(
        r#"group_wait = "0s", group_interval = "1s""#,
        &[receiver(
            "wa",
            "evolution",
            &evo.url(""),
            "api_key = \"evo-key\"\ninstance = \"ops bot\"\nnumber = \"5511999990000\"\n\
             watch_session = \"ops-bot\"\nrate_per_second = 50",
        )],
    ))
    .await;
    app.ingest(json!([connected("ops-bot"), logged_out("ops-bot")]))
        .await;
    let rows = wait_outbox(&app, "an attempt while the sender is critical", |rows| {
        rows.iter().any(|r| r.2 >= 1)
    })
    .await;
    assert_eq!(rows[0].1, "pending", "kept, not given up: {rows:?}");
    assert!(
        rows[0]
            .3
            .as_deref()
            .unwrap()
            .contains("ops-bot is critical"),
        "{rows:?}"
    );
    assert!(
        evo.received().is_empty(),
        "nothing sent through a dead session"
    );
    let health = app.get_json("/api/health", 200).await;
    assert_eq!(health["receivers"]["wa"]["status"], "retrying", "{health}");
    assert_eq!(health["receivers"]["wa"]["sender"]["healthy"], false);

    // It reconnects: what was kept goes out (the firing, then its resolve).
    app.ingest(json!([connected("ops-bot")])).await;
    let got = evo
        .wait_until("the kept message and its resolve", WAIT, |r| r.len() >= 2)
        .await;
    assert_eq!(
        got[0].path, "/message/sendText/ops%20bot",
        "the instance, escaped"
    );
    assert_eq!(got[0].body["number"], "5511999990000");
    assert!(
        got[0].body["text"]
            .as_str()
            .unwrap()
            .starts_with("*FIRING*")
    );
    assert!(
        got[1].body["text"]
            .as_str()
            .unwrap()
            .starts_with("*RESOLVED*")
    );
    assert!(evo.violations().is_empty(), "{:?}", evo.violations());
}
