//! Chat receivers beyond Slack: Discord (an embed within Discord's
//! limits, nothing that pings or links, its 429's JSON wait honoured),
//! ntfy (JSON publishing, priority by level, the topic's bearer token)
//! and Telegram (escaped HTML in a forum thread, its 429 wait honoured).
//! The stand-ins check every payload against the documented shape.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn discord_gets_an_embed_by_level_that_pings_nobody_and_its_429_wait_is_honoured() {
    let discord = FakeReceiver::start(Kind::Discord).await;
    // Rate limited first, the wait said only in the JSON body.
    discord.script([Fault::RateLimitedInBody(2.5)]);
    let app = spawn_alerting(&alerting_config(
        r#"group_wait = "0s", group_interval = "1s", external_url = "https://wapulse.example""#,
        &[receiver(
            "chat",
            "discord",
            &discord.url("/api/webhooks/1/abc"),
            "",
        )],
    ))
    .await;
    // A session id Discord would read as a mention and as emphasis.
    app.ingest(json!([
        connected("ops@everyone_x_"),
        logged_out("ops@everyone_x_")
    ]))
    .await;
    let got = discord
        .wait_until("the firing embed, after the 429", WAIT, |r| {
            r.iter().any(|x| x.answered == 204)
        })
        .await;
    assert_eq!(got[0].answered, 429);
    let waited = got[1].at.duration_since(got[0].at);
    assert!(
        waited >= Duration::from_millis(2400),
        "the body's retry_after of 2.5 s was honoured (the backoff alone waits 0.5–1.5 s): {waited:?}"
    );
    let body = &got[1].body;
    assert_eq!(
        body["allowed_mentions"],
        json!({"parse": []}),
        "nobody pinged"
    );
    let embed = &body["embeds"][0];
    assert_eq!(embed["color"], 0xE0_1E_5A, "critical is red");
    assert!(
        embed["title"].as_str().unwrap().contains("FIRING"),
        "{embed}"
    );
    assert!(
        embed["title"].as_str().unwrap().contains("LOGGED_OUT"),
        "{embed}"
    );
    assert_eq!(
        embed["url"], "https://wapulse.example/ui/sessions/ops%40everyone_x_",
        "the one session's page"
    );
    let firing = embed["fields"][0]["value"].as_str().unwrap();
    assert!(
        firing.contains(r"ops\@everyone\_x\_"),
        "the id shows as written, no mention, no emphasis: {firing}"
    );

    app.ingest(json!([connected("ops@everyone_x_")])).await;
    let got = discord
        .wait_until("the resolved embed", WAIT, |r| {
            r.iter().filter(|x| x.answered == 204).count() == 2
        })
        .await;
    let resolved = &got.last().unwrap().body["embeds"][0];
    assert_eq!(resolved["color"], 0x2E_B6_7D, "resolved is green");
    assert!(resolved["title"].as_str().unwrap().contains("RESOLVED"));
    assert!(
        discord.violations().is_empty(),
        "{:?}",
        discord.violations()
    );
}

#[tokio::test]
async fn ntfy_gets_a_json_message_with_priority_by_level_and_the_topic_s_token() {
    let ntfy = FakeReceiver::start(Kind::Ntfy(Some("tk_abc".into()))).await;
    let app = spawn_alerting(&alerting_config(
        r#"group_wait = "0s", group_interval = "1s", external_url = "https://wapulse.example""#,
        &[receiver(
            "phone",
            "ntfy",
            &ntfy.url("/wa-alerts"),
            r#"token = "tk_abc""#,
        )],
    ))
    .await;
    app.ingest(json!([connected("s1"), logged_out("s1")])).await;
    let got = ntfy.wait_for("the firing message", 1).await;
    let firing = &got[0];
    assert_eq!(firing.answered, 200, "{:?}", ntfy.violations());
    assert_eq!(firing.body["topic"], "wa-alerts");
    assert_eq!(firing.body["priority"], 5, "critical is urgent");
    assert!(
        firing.body["tags"]
            .as_array()
            .unwrap()
            .contains(&json!("rotating_light"))
    );
    assert!(firing.body["title"].as_str().unwrap().contains("FIRING"));
    let text = firing.body["message"].as_str().unwrap();
    assert!(text.contains("s1") && text.contains("logged out"), "{text}");
    assert_eq!(
        firing.body["click"],
        "https://wapulse.example/ui/sessions/s1"
    );

    app.ingest(json!([connected("s1")])).await;
    let got = ntfy.wait_for("the resolved message", 2).await;
    assert_eq!(got[1].body["priority"], 3);
    assert!(got[1].body["title"].as_str().unwrap().contains("RESOLVED"));
    assert!(ntfy.violations().is_empty(), "{:?}", ntfy.violations());
}

#[tokio::test]
async fn telegram_gets_escaped_html_in_its_thread_and_its_429_wait_is_honoured() {
    let telegram = FakeReceiver::start(Kind::Telegram("123:ABC".into())).await;
    telegram.script([Fault::RateLimitedInBody(2.0)]);
    let app = spawn_alerting(&alerting_config(
        r#"group_wait = "0s", group_interval = "1s", external_url = "https://wapulse.example""#,
        &[
            receiver(
                "tg",
                "telegram",
                &telegram.url(""),
                "bot_token = \"123:ABC\"\nchat_id = -100123\nthread_id = 7",
            ),
            "[[routes]]\nreceiver = \"tg\"\ngroup_by = [\"code\", \"team\"]\n".to_owned(),
        ],
    ))
    .await;
    // A label that is HTML, grouped on, so it is in the title.
    app.ingest(json!([
        connected("s1"),
        labelled("s1", json!({"team": "<b>x</b> & co"})),
        logged_out("s1"),
    ]))
    .await;
    let got = telegram
        .wait_until("the message, after the 429", WAIT, |r| {
            r.iter().any(|x| x.answered == 200)
        })
        .await;
    assert_eq!(got[0].answered, 429, "{:?}", telegram.violations());
    let waited = got[1].at.duration_since(got[0].at);
    assert!(
        waited >= Duration::from_millis(1900),
        "parameters.retry_after of 2 s was honoured (the backoff alone waits 0.5–1.5 s): {waited:?}"
    );
    let body = &got[1].body;
    assert_eq!(body["chat_id"], -100123);
    assert_eq!(body["message_thread_id"], 7);
    let text = body["text"].as_str().unwrap();
    assert!(text.starts_with("<b>") && text.contains("FIRING"), "{text}");
    assert!(
        text.contains("team=&lt;b&gt;x&lt;/b&gt; &amp; co"),
        "the label shows as written: {text}"
    );
    assert!(
        text.contains(r#"<a href="https://wapulse.example/ui/sessions/s1">"#),
        "{text}"
    );
    assert!(
        telegram.violations().is_empty(),
        "{:?}",
        telegram.violations()
    );
}
