//! Card and incident receivers: Microsoft Teams (an Adaptive Card 1.4 by
//! level, hostile labels shown as written, a button to the session),
//! Google Chat (a card whose text cannot open a tag or mention anyone) and
//! Opsgenie (created under a stable alias, closed by it). The stand-ins
//! check every payload against the documented shape and limits.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

/// Every TextBlock text and fact value of a card, joined.
fn card_text(card: &Value) -> String {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        if let Some(t) = v["text"].as_str() {
            out.push(t.to_owned());
        }
        for f in v["facts"].as_array().map_or(&[][..], Vec::as_slice) {
            out.push(f["value"].as_str().unwrap_or_default().to_owned());
        }
        for key in ["body", "items"] {
            for item in v[key].as_array().map_or(&[][..], Vec::as_slice) {
                walk(item, out);
            }
        }
    }
    walk(card, &mut out);
    out.join("\n")
}

#[tokio::test]
async fn teams_gets_an_adaptive_card_by_level_with_labels_shown_as_written() {
    let teams = FakeReceiver::start(Kind::Teams).await;
    teams.script([Fault::RateLimited(2)]);
    let app = spawn_alerting(&alerting_config(
        r#"group_wait = "0s", group_interval = "1s", external_url = "https://wapulse.example""#,
        &[
            receiver(
                "ops",
                "teams",
                &teams.url("/workflows/abc/triggers/manual/paths/invoke?sig=s3cr3t"),
                "",
            ),
            "[[routes]]\nreceiver = \"ops\"\ngroup_by = [\"code\", \"team\"]\n".to_owned(),
        ],
    ))
    .await;
    // A label that is Markdown, a link and an Adaptive Card date function.
    let team = "**x** [a](http://evil) {{DATE(2017-02-14T06:08:39Z, SHORT)}}";
    app.ingest(json!([
        connected("s1"),
        labelled("s1", json!({"team": team})),
        logged_out("s1")
    ]))
    .await;
    let got = teams
        .wait_until("the card, after the 429", WAIT, |r| {
            r.iter().any(|x| x.answered == 202)
        })
        .await;
    assert_eq!(got[0].answered, 429);
    let waited = got[1].at.duration_since(got[0].at);
    assert!(
        waited >= Duration::from_millis(1900),
        "Retry-After: 2 was honoured (the backoff alone waits 0.5–1.5 s): {waited:?}"
    );
    let card = &got[1].body["attachments"][0]["content"];
    assert_eq!(card["version"], "1.4");
    assert_eq!(card["body"][0]["style"], "attention", "critical");
    let text = card_text(card);
    assert!(
        text.contains("FIRING") && text.contains("LOGGED\\_OUT"),
        "{text}"
    );
    assert!(
        text.contains(r"\*\*x\*\* \[a\]\(http\://evil\)"),
        "Markdown shown as written: {text}"
    );
    assert!(!text.contains("{{DATE"), "no date function left: {text}");
    assert_eq!(
        card["actions"][0]["url"],
        "https://wapulse.example/ui/sessions/s1"
    );
    assert_eq!(
        got[1].path, "/workflows/abc/triggers/manual/paths/invoke?sig=s3cr3t",
        "the Workflows URL as given"
    );

    app.ingest(json!([connected("s1")])).await;
    let got = teams
        .wait_until("the resolved card", WAIT, |r| {
            r.iter().filter(|x| x.answered == 202).count() == 2
        })
        .await;
    let resolved = &got.last().unwrap().body["attachments"][0]["content"];
    assert_eq!(resolved["body"][0]["style"], "good");
    assert!(card_text(resolved).contains("RESOLVED"));
    assert!(teams.violations().is_empty(), "{:?}", teams.violations());
}

#[tokio::test]
async fn google_chat_gets_a_card_whose_text_opens_no_tag_and_mentions_nobody() {
    let chat = FakeReceiver::start(Kind::GoogleChat).await;
    chat.script([Fault::Status(503)]);
    let app = spawn_alerting(&alerting_config(
        r#"group_wait = "0s", group_interval = "1s", external_url = "https://wapulse.example""#,
        &[
            receiver(
                "room",
                "google_chat",
                &chat.url("/v1/spaces/AAA/messages?key=k&token=t"),
                "",
            ),
            "[[routes]]\nreceiver = \"room\"\ngroup_by = [\"code\", \"team\"]\n".to_owned(),
        ],
    ))
    .await;
    let team = "<users/all> <a href=\"http://evil\">x</a> & co";
    app.ingest(json!([
        connected("s1"),
        connected("s2"),
        labelled("s1", json!({"team": team})),
        labelled("s2", json!({"team": team})),
        logged_out("s1"),
        logged_out("s2"),
    ]))
    .await;
    let got = chat
        .wait_until("the card, after the 503", WAIT, |r| {
            r.iter().any(|x| x.answered == 200)
        })
        .await;
    assert_eq!(got[0].answered, 503, "retried after a 5xx");
    let body = &got.last().unwrap().body;
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("FIRING") && text.contains("2 sessions"),
        "{text}"
    );
    assert!(
        !text.contains("users/all"),
        "the notice holds no label: {text}"
    );
    let card = &body["cardsV2"][0]["card"];
    assert!(
        card["header"]["title"]
            .as_str()
            .unwrap()
            .contains("LOGGED_OUT")
    );
    let all = card.to_string();
    assert!(all.contains("#E01E5A"), "critical is red: {all}");
    let firing = card["sections"][1]["widgets"][0]["textParagraph"]["text"]
        .as_str()
        .unwrap();
    assert!(firing.contains("s1") && firing.contains("s2"), "{firing}");
    let button = &card["sections"][2]["widgets"][0]["buttonList"]["buttons"][0];
    assert_eq!(
        button["onClick"]["openLink"]["url"],
        "https://wapulse.example/ui/sessions?code=LOGGED_OUT"
    );
    assert!(chat.violations().is_empty(), "{:?}", chat.violations());
}

#[tokio::test]
async fn opsgenie_creates_one_alert_under_an_alias_and_closes_it_by_that_alias() {
    let og = FakeReceiver::start(Kind::Opsgenie("og-key-1".into())).await;
    let app = spawn_alerting(&alerting_config(
        r#"group_wait = "0s", group_interval = "1s", external_url = "https://wapulse.example""#,
        &[receiver(
            "oncall",
            "opsgenie",
            &og.url(""),
            "api_key = \"og-key-1\"",
        )],
    ))
    .await;
    app.ingest(json!([connected("s1"), logged_out("s1")])).await;
    let got = og.wait_for("the create", 1).await;
    let create = &got[0].body;
    assert_eq!(got[0].answered, 202, "{:?}", og.violations());
    assert_eq!(got[0].path, "/v2/alerts");
    assert_eq!(create["priority"], "P1", "critical");
    assert_eq!(create["entity"], "s1");
    assert_eq!(create["source"], "wapulse");
    assert!(create["message"].as_str().unwrap().contains("LOGGED_OUT"));
    assert!(create["description"].as_str().unwrap().contains("s1"));
    assert_eq!(
        create["details"]["wapulse"],
        "https://wapulse.example/ui/sessions/s1"
    );
    let alias = create["alias"].as_str().unwrap().to_owned();

    app.ingest(json!([connected("s1")])).await;
    let got = og.wait_for("the close", 2).await;
    assert_eq!(got[1].answered, 202, "{:?}", og.violations());
    let close = &got[1].path;
    let encoded = close
        .strip_prefix("/v2/alerts/")
        .and_then(|p| p.strip_suffix("/close?identifierType=alias"))
        .unwrap_or_else(|| panic!("{close}"));
    let decoded = percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .unwrap();
    assert_eq!(decoded, alias, "closed by the alias it was created under");
    assert!(og.violations().is_empty(), "{:?}", og.violations());
}

#[tokio::test]
async fn a_wrong_opsgenie_key_is_a_permanent_error_not_retried() {
    let og = FakeReceiver::start(Kind::Opsgenie("the-right-key".into())).await;
    let app = spawn_alerting(&alerting_config(
        r#"group_wait = "0s", group_interval = "1s""#,
        &[receiver(
            "oncall",
            "opsgenie",
            &og.url(""),
            "api_key = \"a-wrong-key\"",
        )],
    ))
    .await;
    app.ingest(json!([connected("s1"), logged_out("s1")])).await;
    og.wait_for("the refused create", 1).await;
    let rows = wait_outbox(&app, "the create gives up", |rows| {
        rows.iter().any(|r| r.0 == "oncall" && r.1 == "failed")
    })
    .await;
    assert_eq!(rows[0].2, 1, "tried once: {rows:?}");
    let health = app.get_json("/api/health", 200).await;
    assert_eq!(
        health["receivers"]["oncall"]["status"], "failing",
        "{health}"
    );
    assert!(
        !health.to_string().contains("a-wrong-key"),
        "the key never shows: {health}"
    );
    assert_eq!(og.received().len(), 1, "a permanent error is not retried");
}
