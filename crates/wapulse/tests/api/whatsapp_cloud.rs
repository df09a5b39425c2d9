//! WhatsApp Cloud API webhooks with Meta's documented payload shapes
//! (`tests/data/gateways/whatsapp-cloud/`): the signature is checked over
//! the exact bytes, the handshake answers only the verify token, statuses
//! become acks, a 131048 failure and an account restriction fire the right
//! alerts, a quality downgrade fires NUMBER_QUALITY, and a number with no
//! socket never pages heartbeats or disconnection.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::gateways::fixture;
use crate::support::*;

const CLOUD: &str = "/v1/webhooks/whatsapp-cloud";
const NUMBER: &str = "106540352242922";

fn cloud(name: &str) -> Value {
    fixture("whatsapp-cloud", name)
}

fn sign(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

async fn post(app: &TestApp, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = app
        .client
        .post(app.url(CLOUD))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

/// Posts a fixture signed with `secret`, expecting `status`.
async fn deliver(app: &TestApp, name: &str, status: u16) -> Value {
    let body = cloud(name).to_string();
    let (code, answer) = post(
        app,
        &body,
        &[("x-hub-signature-256", &sign("app-secret", &body))],
    )
    .await;
    assert_eq!(code, status, "{name}: {answer}");
    answer
}

async fn signed_app() -> TestApp {
    spawn_with(|s| {
        s.ingest_token = secret("ingest-t");
        s.gateways.cloud_app_secret = secret("app-secret");
        s.gateways.cloud_verify_token = secret("verify-me");
    })
    .await
}

async fn alert(app: &TestApp, code: &str) -> Option<Value> {
    app.session_alert(NUMBER, code).await
}

#[tokio::test]
async fn signatures_are_checked_over_the_exact_bytes_and_nothing_unsigned_is_applied() {
    let app = signed_app().await;
    let body = cloud("messages.inbound").to_string();
    // Missing, even with a valid bearer token.
    let (code, e) = post(&app, &body, &[("authorization", "Bearer ingest-t")]).await;
    assert_eq!(code, 401, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("X-Hub-Signature-256"),
        "{e}"
    );
    // Wrong secret; a signature of other bytes (a space added).
    for signature in [
        sign("other", &body),
        sign("app-secret", &format!("{body} ")),
    ] {
        let (code, e) = post(&app, &body, &[("x-hub-signature-256", &signature)]).await;
        assert_eq!(code, 401, "{e}");
        assert!(
            e["error"].as_str().unwrap().contains("does not match"),
            "{e}"
        );
    }
    let (code, e) = post(&app, &body, &[("x-hub-signature-256", "deadbeef")]).await;
    assert_eq!(code, 401, "{e}");
    assert_eq!(
        app.get(&format!("/sessions/{NUMBER}/observe"))
            .await
            .status(),
        404,
        "nothing applied"
    );
    // Signed: applied, no bearer token needed (Meta sends none).
    let answer = deliver(&app, "messages.inbound", 200).await;
    assert_eq!(answer["session"], NUMBER);
    let o = app
        .get_json(&format!("/sessions/{NUMBER}/observe"), 200)
        .await;
    assert_eq!(o["session"]["state"], "connected");
    assert_eq!(o["session"]["labels"]["display_number"], "15550783881");
    assert_eq!(o["session"]["labels"]["waba"], "102290129340398");
    assert_eq!(o["messages"]["inbound"], 1);
    assert_eq!(o["heartbeat"]["expected"], false);
    // Meta retries with the same body: applied once.
    let again = deliver(&app, "messages.inbound", 200).await;
    assert_eq!(again["accepted"], 0, "{again}");
}

#[tokio::test]
async fn the_handshake_answers_only_the_verify_token() {
    let app = signed_app().await;
    let url = |token: &str| {
        format!("{CLOUD}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444")
    };
    let r = app.get(&url("verify-me")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "1158201444");
    let r = app.get(&url("guess")).await;
    assert_eq!(r.status(), 403);
    let e: Value = r.json().await.unwrap();
    assert!(e["error"].as_str().unwrap().contains("verify token"), "{e}");
    let r = app
        .get(&format!(
            "{CLOUD}?hub.mode=unsubscribe&hub.verify_token=verify-me&hub.challenge=1"
        ))
        .await;
    assert_eq!(r.status(), 400);
    // Without a configured verify token there is no handshake.
    let open = spawn_with(|s| s.ingest_token = secret("ingest-t")).await;
    assert_eq!(open.get(&url("verify-me")).await.status(), 403);
}

#[tokio::test]
async fn without_a_secret_the_ingest_token_is_asked_and_with_neither_the_route_is_closed() {
    let app = spawn_with(|s| s.ingest_token = secret("ingest-t")).await;
    let body = cloud("messages.inbound").to_string();
    let (code, _) = post(&app, &body, &[]).await;
    assert_eq!(code, 401);
    let (code, e) = post(&app, &body, &[("authorization", "Bearer ingest-t")]).await;
    assert_eq!(code, 200, "{e}");
    let closed = spawn_app().await;
    let (code, e) = post(&closed, &body, &[]).await;
    assert_eq!(code, 401, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("neither is set"),
        "{e}"
    );
}

#[tokio::test]
async fn statuses_become_acks_and_a_spam_limit_failure_restricts_the_number() {
    let app = signed_app().await;
    for name in [
        "messages.status.sent",
        "messages.status.delivered",
        "messages.status.read",
        "messages.status.read",
    ] {
        deliver(&app, name, 200).await;
    }
    let d = app
        .get_json(&format!("/sessions/{NUMBER}/observe"), 200)
        .await["delivery"]
        .clone();
    assert_eq!(
        (
            &d["sent"],
            &d["serverAcked"],
            &d["delivered"],
            &d["read"],
            &d["pending"]
        ),
        (&json!(1), &json!(1), &json!(1), &json!(1), &json!(0)),
        "{d}"
    );
    deliver(&app, "messages.status.failed-131048", 200).await;
    let a = alert(&app, "ACCOUNT_RESTRICTED").await.expect("restricted");
    assert!(a["message"].as_str().unwrap().contains("131048"), "{a}");
    assert!(a["message"].as_str().unwrap().contains("spam limit"), "{a}");
    let d = app
        .get_json(&format!("/sessions/{NUMBER}/observe"), 200)
        .await["delivery"]
        .clone();
    assert_eq!(d["errorsByCode"], json!({"131048": 1}), "{d}");
    // No socket: nothing pages on heartbeats or disconnection, only
    // delivery.
    let codes: Vec<String> = app
        .get_json(&format!("/sessions/{NUMBER}/alerts"), 200)
        .await["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes, ["ACCOUNT_RESTRICTED"]);
}

#[tokio::test]
async fn quality_and_account_updates_land_on_the_numbers_learned_before() {
    let app = signed_app().await;
    // Before wapulse saw the number, an update for it has nowhere to go.
    let answer = deliver(&app, "phone_number_quality_update.downgrade", 202).await;
    assert_eq!(answer["ignored"], true, "{answer}");
    deliver(&app, "messages.inbound", 200).await;
    deliver(&app, "phone_number_quality_update.flagged", 200).await;
    let a = alert(&app, "NUMBER_QUALITY").await.expect("flagged");
    assert_eq!(a["level"], "warning");
    deliver(&app, "phone_number_quality_update.downgrade", 200).await;
    let a = alert(&app, "NUMBER_QUALITY").await.expect("downgraded");
    assert_eq!(a["level"], "critical");
    let q = app
        .get_json(&format!("/sessions/{NUMBER}/observe"), 200)
        .await["quality"]
        .clone();
    assert_eq!(
        (&q["event"], &q["tier"], &q["limit"]),
        (&json!("DOWNGRADE"), &json!("TIER_250"), &json!(250)),
        "{q}"
    );
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(
        metrics.contains(&format!("wa_messaging_limit{{session=\"{NUMBER}\"}} 250")),
        "{metrics}"
    );
    deliver(&app, "phone_number_quality_update.unflagged", 200).await;
    assert!(alert(&app, "NUMBER_QUALITY").await.is_none());
    // A restriction by display number, with its expiry.
    deliver(&app, "account_update.restriction", 200).await;
    let a = alert(&app, "ACCOUNT_RESTRICTED").await.expect("restricted");
    assert!(
        a["message"].as_str().unwrap().contains("until 2030-01-20"),
        "{a}"
    );
    let r = app
        .get_json(&format!("/sessions/{NUMBER}/observe"), 200)
        .await["delivery"]["restriction"]
        .clone();
    assert_eq!(
        (&r["kind"], &r["code"]),
        (
            &json!("messaging_restricted"),
            &json!("BIZ_INITIATED_BLOCK")
        ),
        "{r}"
    );
    // The account disabled (named only by its WABA), then reinstated.
    deliver(&app, "account_update.disabled", 200).await;
    let r = app
        .get_json(&format!("/sessions/{NUMBER}/observe"), 200)
        .await["delivery"]["restriction"]
        .clone();
    assert_eq!(r["kind"], "banned", "{r}");
    deliver(&app, "account_update.reinstated", 200).await;
    assert!(alert(&app, "ACCOUNT_RESTRICTED").await.is_none());
    // A violation alone is not mapped: acknowledged.
    deliver(&app, "account_update.violation", 202).await;
}

#[tokio::test]
async fn numbers_named_in_the_settings_take_updates_before_a_delivery_labels_them() {
    let loaded = Settings::from_toml(
        r#"
        [gateways.whatsapp_cloud]
        session_prefix = "pn-"
        [[gateways.whatsapp_cloud.numbers]]
        phone_number_id = "106540352242922"
        display_number = "+1 555-078-3881"
        waba = "102290129340398"
        "#,
        |_| None,
    )
    .unwrap();
    assert_eq!(
        Settings::from_toml(
            "[[gateways.whatsapp_cloud.numbers]]\nphone_number_id = \"1\"\ndisplay_number = \"n/a\"\n",
            |_| None,
        )
        .unwrap_err()
        .to_string(),
        "gateways.whatsapp_cloud.numbers[0].display_number: `n/a` holds no digits (write the \
         number as Meta shows it, e.g. +1 555 000 1234)"
    );
    let app = spawn_with(move |s| {
        s.ingest_token = secret("ingest-t");
        s.gateways = loaded.gateways;
    })
    .await;
    let with_token = |body: &str| {
        let body = body.to_owned();
        let app = &app;
        async move { post(app, &body, &[("authorization", "Bearer ingest-t")]).await }
    };
    // Not in the model yet: nothing to land on.
    let flagged = cloud("phone_number_quality_update.flagged").to_string();
    let (code, _) = with_token(&flagged).await;
    assert_eq!(code, 202);
    // The session exists (here through the ingest API, without labels):
    // the settings name it.
    let session = format!("pn-{NUMBER}");
    app.client
        .post(app.url("/v1/events"))
        .bearer_auth("ingest-t")
        .json(&json!([{"session": session, "type": "state", "state": "connected"}]))
        .send()
        .await
        .unwrap();
    let (code, answer) = with_token(&flagged).await;
    assert_eq!(code, 200, "{answer}");
    let alerts = app
        .get_json(&format!("/sessions/{session}/alerts"), 200)
        .await;
    assert!(alerts.to_string().contains("NUMBER_QUALITY"), "{alerts}");
    // Named only by the WABA: the disabled account lands too.
    let (code, _) = with_token(&cloud("account_update.disabled").to_string()).await;
    assert_eq!(code, 200);
    let r = app
        .get_json(&format!("/sessions/{session}/observe"), 200)
        .await["delivery"]["restriction"]
        .clone();
    assert_eq!(r["kind"], "banned", "{r}");
}

#[tokio::test]
async fn a_deleted_account_retires_its_number() {
    let app = signed_app().await;
    deliver(&app, "messages.inbound", 200).await;
    assert_eq!(
        app.get(&format!("/sessions/{NUMBER}/health"))
            .await
            .status(),
        200
    );
    deliver(&app, "account_update.deleted", 200).await;
    assert_eq!(
        app.get(&format!("/sessions/{NUMBER}/health"))
            .await
            .status(),
        404
    );
    let journal = app
        .get_json(&format!("/sessions/{NUMBER}/events"), 200)
        .await;
    assert_eq!(journal["events"][0]["type"], "retire", "{journal}");
}
