//! WAHA and Evolution API webhooks, with the recorded payloads in
//! `tests/data/gateways/`: every mapped event changes the session as the
//! README's table says; retries count once; bad tokens, signatures and
//! bodies get clear answers; unknown events are acknowledged and counted.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha512;
use wapulse_core::DurationMs;

use crate::support::*;

pub(crate) const WAHA: &str = "/v1/webhooks/waha";
pub(crate) const EVOLUTION: &str = "/v1/webhooks/evolution";

pub(crate) fn fixture(gateway: &str, name: &str) -> Value {
    let path = format!(
        "{}/tests/data/gateways/{gateway}/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// A WAHA fixture for `session`, stamped `secs_ago` seconds ago, with a
/// delivery id of its own (`tag`).
pub(crate) fn waha(name: &str, session: &str, secs_ago: u64, tag: &str) -> Value {
    let mut v = fixture("waha", name);
    v["session"] = json!(session);
    v["timestamp"] = json!(
        wapulse::clock::now()
            .minus(DurationMs::from_secs(secs_ago))
            .as_millis()
    );
    v["id"] = json!(format!("evt_{session}_{tag}"));
    v
}

/// An Evolution fixture for `instance`. Evolution stamps each delivery
/// with `date_time` (to the millisecond); a retry repeats it.
pub(crate) fn evolution(name: &str, instance: &str) -> Value {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut v = fixture("evolution", name);
    v["instance"] = json!(instance);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    v["date_time"] = json!(
        wapulse::clock::now()
            .plus(DurationMs::from_millis(n))
            .to_rfc3339()
    );
    v
}

pub(crate) async fn deliver(
    app: &TestApp,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = app.client.post(app.url(path)).body(body.to_string());
    req = req.header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let code = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        code,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}")),
    )
}

pub(crate) async fn ok(app: &TestApp, path: &str, body: &Value) -> Value {
    let (code, answer) = deliver(app, path, body, &[]).await;
    assert_eq!(code, 200, "{path} {body}: {answer}");
    answer
}

async fn observe(app: &TestApp, session: &str) -> Value {
    app.get_json(&format!("/sessions/{session}/observe"), 200)
        .await
}

pub(crate) async fn codes(app: &TestApp, session: &str) -> Vec<String> {
    let a = app
        .get_json(&format!("/sessions/{session}/alerts"), 200)
        .await;
    field_pairs(&a["alerts"], "code", "level")
}

async fn metric(app: &TestApp, line_start: &str) -> f64 {
    let (_, text) = app.get_text("/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(line_start))
        .unwrap_or_else(|| panic!("no {line_start} in /metrics"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_waha_session_lives_through_its_statuses_messages_and_a_replaced_connection() {
    let app = spawn_app().await;
    let s = "w1";
    ok(&app, WAHA, &waha("session.status.STARTING", s, 60, "a")).await;
    assert_eq!(observe(&app, s).await["session"]["state"], "connecting");
    ok(&app, WAHA, &waha("session.status.SCAN_QR_CODE", s, 59, "b")).await;
    assert_eq!(codes(&app, s).await, ["QR_REQUIRED:warning"]);
    let answer = ok(&app, WAHA, &waha("session.status.WORKING", s, 58, "c")).await;
    assert_eq!(answer["session"], s);
    let o = observe(&app, s).await;
    assert_eq!(o["session"]["state"], "connected");
    assert_eq!(o["auth"]["method"], "qr_scan");
    assert_eq!(o["session"]["labels"]["me"], "31612345678@c.us");
    assert_eq!(o["session"]["labels"]["engine"], "NOWEB");
    assert_eq!(o["heartbeat"]["expected"], false);
    // No keepalives from WAHA: nothing pages on heartbeats, ever.
    assert!(codes(&app, s).await.is_empty());

    // `message` and `message.any` carry the same inbound message: once.
    ok(&app, WAHA, &waha("message", s, 50, "d")).await;
    ok(&app, WAHA, &waha("message.any.inbound", s, 50, "e")).await;
    ok(&app, WAHA, &waha("message.any.outbound", s, 49, "f")).await;
    // WAHA retries a delivery with the same id: applied once (the send
    // and the server ack it already carries: two events, both repeats).
    let again = waha("message.any.outbound", s, 49, "f");
    let retry = ok(&app, WAHA, &again).await;
    assert_eq!(
        (retry["accepted"].as_u64(), retry["duplicates"].as_u64()),
        (Some(0), Some(2))
    );
    let o = observe(&app, s).await;
    assert_eq!(
        (
            o["messages"]["inbound"].as_u64(),
            o["messages"]["outbound"].as_u64()
        ),
        (Some(1), Some(1))
    );

    // Another client takes the session over (NOWEB close 440), WAHA
    // restarts it: a reconnect, and the reason is named.
    ok(
        &app,
        WAHA,
        &waha("engine.event.NOWEB.connection-close-440", s, 40, "g"),
    )
    .await;
    let o = observe(&app, s).await;
    let last = &o["session"]["lastDisconnect"];
    assert_eq!(last["code"], 440);
    assert_eq!(last["name"], "connection_replaced");
    assert!(
        last["explanation"]
            .as_str()
            .unwrap()
            .starts_with("connection replaced: another client opened this session; two gateway instances may be running it"),
        "{last}"
    );
    ok(&app, WAHA, &waha("session.status.STARTING", s, 39, "h")).await;
    assert_eq!(observe(&app, s).await["session"]["state"], "reconnecting");
    ok(&app, WAHA, &waha("session.status.WORKING", s, 38, "i")).await;
    let o = observe(&app, s).await;
    assert_eq!(o["reconnect"]["completed"], 1);
    assert_eq!(o["session"]["conflicts"]["recent"], 1);
    ok(
        &app,
        WAHA,
        &waha("engine.event.NOWEB.creds-update", s, 30, "j"),
    )
    .await;
    assert_eq!(observe(&app, s).await["auth"]["credentialStore"], "waha");

    // FAILED: logged out.
    ok(&app, WAHA, &waha("session.status.FAILED", s, 10, "k")).await;
    assert_eq!(codes(&app, s).await, ["LOGGED_OUT:critical"]);
    // An older release without id or timestamp still maps.
    let mut old = fixture("waha", "session.status.WORKING.old-release");
    old["session"] = json!("w-old");
    ok(&app, WAHA, &old).await;
    assert_eq!(
        observe(&app, "w-old").await["session"]["state"],
        "connected"
    );
}

#[tokio::test]
async fn gows_keepalive_timeouts_count_once_and_replaced_streams_conflict() {
    let app = spawn_app().await;
    let s = "g1";
    // Every delivery of this session comes from the GOWS engine.
    let waha = |name: &str, session: &str, ago: u64, tag: &str| {
        let mut v = waha(name, session, ago, tag);
        v["engine"] = json!("GOWS");
        v
    };
    ok(&app, WAHA, &waha("session.status.WORKING", s, 600, "a")).await;
    // The real sequence: whatsmeow reports each failed ping, WAHA moves
    // the session to STARTING at the first, then back to WORKING.
    ok(
        &app,
        WAHA,
        &waha("engine.event.GOWS.KeepAliveTimeout", s, 120, "b"),
    )
    .await;
    let o = observe(&app, s).await;
    assert!(o["heartbeat"]["failingSince"].is_string(), "{o}");
    ok(&app, WAHA, &waha("session.status.STARTING", s, 119, "c")).await;
    ok(
        &app,
        WAHA,
        &waha("engine.event.GOWS.KeepAliveTimeout", s, 95, "d"),
    )
    .await;
    ok(
        &app,
        WAHA,
        &waha("engine.event.GOWS.KeepAliveRestored", s, 100, "e"),
    )
    .await;
    ok(&app, WAHA, &waha("session.status.WORKING", s, 90, "f")).await;
    let o = observe(&app, s).await;
    assert_eq!(
        o["heartbeat"]["missedTotal"], 1,
        "one episode, one missed beat: {o}"
    );
    assert!(o["heartbeat"]["failingSince"].is_null());
    assert_eq!(o["reconnect"]["totalAttempts"], 1);
    assert_eq!(o["reconnect"]["completed"], 1);
    assert_eq!(o["session"]["labels"]["engine"], "GOWS");
    assert!(codes(&app, s).await.is_empty());
    // whatsmeow's Disconnected is WAHA's STARTING: not mapped twice.
    let (code, _) = deliver(
        &app,
        WAHA,
        &waha("engine.event.GOWS.Disconnected", s, 89, "g"),
        &[],
    )
    .await;
    assert_eq!(code, 202);

    for (i, ago) in [(0, 80), (1, 70)] {
        ok(
            &app,
            WAHA,
            &waha("engine.event.GOWS.StreamReplaced", s, ago, &format!("r{i}")),
        )
        .await;
        ok(
            &app,
            WAHA,
            &waha(
                "engine.event.GOWS.ConnectedEventData",
                s,
                ago - 1,
                &format!("c{i}"),
            ),
        )
        .await;
    }
    assert_eq!(observe(&app, s).await["session"]["state"], "connected");
    assert_eq!(codes(&app, s).await, ["SESSION_CONFLICT:warning"]);
    // LoggedOut (Reason 0 when not on connect reads as 401), then WAHA's
    // FAILED: the close code stays the reason.
    ok(&app, WAHA, &waha("engine.event.GOWS.LoggedOut", s, 10, "z")).await;
    ok(&app, WAHA, &waha("session.status.FAILED", s, 9, "y")).await;
    let o = observe(&app, s).await;
    assert_eq!(o["session"]["state"], "logged_out");
    assert_eq!(o["session"]["lastDisconnect"]["code"], 401);
    let alerts = app.get_json(&format!("/sessions/{s}/alerts"), 200).await;
    let logged_out = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["code"] == "LOGGED_OUT")
        .unwrap();
    assert!(
        logged_out["message"]
            .as_str()
            .unwrap()
            .contains("401 logged out"),
        "{logged_out}"
    );
}

#[tokio::test]
async fn the_noweb_periodic_restart_over_an_hour_pages_no_one() {
    let app = spawn_app().await;
    let s = "noweb";
    ok(
        &app,
        WAHA,
        &waha("session.status.WORKING", s, 3600, "start"),
    )
    .await;
    // WAHA NOWEB ends its socket itself about every 30 minutes.
    for (i, at) in [30 * 60, 20].into_iter().enumerate() {
        let tag = |t: &str| format!("{i}{t}");
        ok(
            &app,
            WAHA,
            &waha(
                "engine.event.NOWEB.connection-close-auto-restart",
                s,
                at,
                &tag("close"),
            ),
        )
        .await;
        ok(
            &app,
            WAHA,
            &waha("session.status.STARTING", s, at, &tag("starting")),
        )
        .await;
        ok(
            &app,
            WAHA,
            &waha("session.status.WORKING", s, at - 3, &tag("working")),
        )
        .await;
    }
    let o = observe(&app, s).await;
    assert_eq!(o["reconnect"]["completed"], 2);
    assert_eq!(o["session"]["state"], "connected");
    assert!(codes(&app, s).await.is_empty());
    // Nor does the alert pipeline hold anything for it, firing or pending,
    // once it has judged the last event (it judges on its own thread).
    let all = alerts_after_writes(&app).await;
    assert!(
        !all.to_string().contains("\"noweb\""),
        "the restart raised an alert: {all}"
    );
}

#[tokio::test]
async fn a_waha_session_stuck_in_working_with_no_inbound_messages_is_deaf() {
    let app = spawn_app().await;
    let s = "deaf";
    ok(
        &app,
        WAHA,
        &waha("session.status.WORKING", s, 4 * 3600, "w"),
    )
    .await;
    // A message a minute for four hours, then none for the last 15 minutes.
    for minute in (15..4 * 60).rev() {
        let mut m = waha("message", s, minute * 60, &format!("m{minute}"));
        m["payload"]["id"] = json!(format!("false_1@c.us_{minute}"));
        ok(&app, WAHA, &m).await;
    }
    // NOWEB's periodic restart in the middle of the silence hides nothing.
    ok(
        &app,
        WAHA,
        &waha(
            "engine.event.NOWEB.connection-close-auto-restart",
            s,
            600,
            "x",
        ),
    )
    .await;
    ok(&app, WAHA, &waha("session.status.STARTING", s, 600, "y")).await;
    ok(&app, WAHA, &waha("session.status.WORKING", s, 598, "z")).await;
    let o = observe(&app, s).await;
    assert_eq!(o["messages"]["inbound"], 225);
    assert_eq!(o["messages"]["inboundBaseline"]["judged"], true);
    assert_eq!(codes(&app, s).await, ["INBOUND_SILENCE:critical"]);
    let alerts = app.get_json(&format!("/sessions/{s}/alerts"), 200).await;
    let message = alerts["alerts"][0]["message"].as_str().unwrap();
    // 15 minutes of silence, less the two seconds the restart was down.
    assert!(
        (message.starts_with("No inbound message for 14m 5")
            || message.starts_with("No inbound message for 15m"))
            && message.ends_with("; this session usually receives one every 1m"),
        "{message}"
    );
}

#[tokio::test]
async fn waha_signatures_tokens_and_bad_bodies_get_clear_answers() {
    let app = spawn_with(|s| {
        s.ingest_token = secret("ingest-t");
        s.gateways.waha_hmac_key = secret("hmac-key");
    })
    .await;
    let body = waha("session.status.WORKING", "sig", 5, "a");
    let sign = |key: &str, text: &str| -> String {
        let mut mac = Hmac::<Sha512>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(text.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let good = sign("hmac-key", &body.to_string());
    let bearer = "Bearer ingest-t";
    // No token at all.
    let (code, e) = deliver(&app, WAHA, &body, &[("x-webhook-hmac", &good)]).await;
    assert_eq!(code, 401, "{e}");
    // Wrong token.
    let (code, _) = deliver(
        &app,
        &format!("{WAHA}?token=nope"),
        &body,
        &[("x-webhook-hmac", &good)],
    )
    .await;
    assert_eq!(code, 401);
    // Token, but no signature.
    let (code, e) = deliver(&app, WAHA, &body, &[("authorization", bearer)]).await;
    assert_eq!(code, 401);
    assert!(
        e["error"].as_str().unwrap().contains("X-Webhook-Hmac"),
        "{e}"
    );
    // A signature with the wrong key, or over another body.
    let bad = sign("other-key", &body.to_string());
    let (code, e) = deliver(
        &app,
        WAHA,
        &body,
        &[("authorization", bearer), ("x-webhook-hmac", &bad)],
    )
    .await;
    assert_eq!(code, 401);
    assert!(
        e["error"].as_str().unwrap().contains("does not match"),
        "{e}"
    );
    let (code, _) = deliver(
        &app,
        WAHA,
        &body,
        &[
            ("authorization", bearer),
            ("x-webhook-hmac", &good),
            ("x-webhook-hmac-algorithm", "sha256"),
        ],
    )
    .await;
    assert_eq!(code, 401);
    assert_eq!(
        app.get("/sessions/sig/observe").await.status(),
        404,
        "nothing applied"
    );
    // The token in the URL (WAHA's webhook URL) and a good signature.
    let (code, e) = deliver(
        &app,
        &format!("{WAHA}?token=ingest-t"),
        &body,
        &[
            ("x-webhook-hmac", &good.to_uppercase()),
            ("x-webhook-hmac-algorithm", "sha512"),
        ],
    )
    .await;
    assert_eq!(code, 200, "{e}");
    assert_eq!(observe(&app, "sig").await["session"]["state"], "connected");
}

#[tokio::test]
async fn malformed_deliveries_are_refused_and_unknown_events_acknowledged() {
    let app = spawn_app().await;
    let rejected = metric(
        &app,
        "wapulse_webhooks_total{gateway=\"waha\",outcome=\"rejected\"}",
    )
    .await;
    let r = app
        .client
        .post(app.url(WAHA))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["field"], "body");
    let (code, e) = deliver(&app, WAHA, &json!({"event": "session.status"}), &[]).await;
    assert_eq!((code, e["field"].as_str()), (400, Some("session")));
    let (code, e) = deliver(&app, WAHA, &json!([1, 2]), &[]).await;
    assert_eq!(code, 400, "{e}");
    let (code, e) = deliver(
        &app,
        WAHA,
        &json!({"event": "session.status", "session": "x", "payload": {"status": 3}}),
        &[],
    )
    .await;
    assert_eq!((code, e["field"].as_str()), (400, Some("payload.status")));
    let r = app
        .client
        .post(app.url(WAHA))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    assert_eq!(
        metric(
            &app,
            "wapulse_webhooks_total{gateway=\"waha\",outcome=\"rejected\"}"
        )
        .await,
        rejected + 5.0
    );
    // Unknown events: 202, nothing applied, counted.
    let mut unknown = waha("message.ack", "u", 1, "a");
    unknown["event"] = json!("message.reaction");
    let (code, e) = deliver(&app, WAHA, &unknown, &[]).await;
    assert_eq!(code, 202, "{e}");
    assert_eq!(e["event"], "message.reaction");
    let (code, _) = deliver(&app, EVOLUTION, &evolution("presence.update", "u2"), &[]).await;
    assert_eq!(code, 202);
    for s in ["u", "u2", "x"] {
        let path = format!("/sessions/{s}/observe");
        assert_eq!(app.get(&path).await.status(), 404, "{s}: nothing applied");
    }
    assert_eq!(
        metric(
            &app,
            "wapulse_webhooks_total{gateway=\"waha\",outcome=\"ignored\"}"
        )
        .await,
        1.0
    );
    assert_eq!(
        metric(
            &app,
            "wapulse_webhooks_total{gateway=\"evolution\",outcome=\"ignored\"}"
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn an_evolution_instance_maps_every_event_as_the_table_says() {
    let app = spawn_app().await;
    let s = "acme-1";
    ok(
        &app,
        EVOLUTION,
        &evolution("connection.update.connecting", s),
    )
    .await;
    assert_eq!(observe(&app, s).await["session"]["state"], "connecting");
    ok(&app, EVOLUTION, &evolution("qrcode.updated", s)).await;
    assert_eq!(observe(&app, s).await["session"]["state"], "qr_required");
    ok(&app, EVOLUTION, &evolution("connection.update.open", s)).await;
    let o = observe(&app, s).await;
    assert_eq!(o["session"]["state"], "connected");
    assert_eq!(o["auth"]["method"], "qr_scan");
    assert_eq!(o["session"]["labels"]["me"], "31612345678@s.whatsapp.net");
    assert_eq!(o["heartbeat"]["expected"], false);
    // `connecting` after `open`: a reconnect (Evolution sends no close
    // for ordinary drops).
    // The same delivery again: Evolution's retry (events keyed by a hash
    // of the body).
    let reconnecting = evolution("connection.update.connecting", s);
    ok(&app, EVOLUTION, &reconnecting).await;
    let (code, again) = deliver(&app, EVOLUTION, &reconnecting, &[]).await;
    assert_eq!((code, again["duplicates"].as_u64()), (200, Some(1)));
    let o = observe(&app, s).await;
    assert_eq!(o["session"]["state"], "reconnecting");
    assert_eq!(o["reconnect"]["attempts"], 1);
    ok(&app, EVOLUTION, &evolution("connection.update.open", s)).await;
    assert_eq!(observe(&app, s).await["reconnect"]["completed"], 1);

    // Messages: inbound, outbound (upper-case event name), sent; the same
    // message id delivered twice counts once.
    ok(&app, EVOLUTION, &evolution("messages.upsert", s)).await;
    ok(&app, EVOLUTION, &evolution("messages.upsert", s)).await;
    ok(&app, EVOLUTION, &evolution("messages.upsert.from-me", s)).await;
    ok(&app, EVOLUTION, &evolution("send.message", s)).await;
    let o = observe(&app, s).await;
    assert_eq!(
        (
            o["messages"]["inbound"].as_u64(),
            o["messages"]["outbound"].as_u64()
        ),
        (Some(1), Some(2))
    );

    ok(&app, EVOLUTION, &evolution("connection.update.refused", s)).await;
    assert_eq!(observe(&app, s).await["session"]["state"], "qr_required");
    // A pairing code this time.
    ok(
        &app,
        EVOLUTION,
        &evolution("qrcode.updated.pairing-code", s),
    )
    .await;
    ok(&app, EVOLUTION, &evolution("connection.update.open", s)).await;
    assert_eq!(observe(&app, s).await["auth"]["method"], "pairing_code");
    ok(&app, EVOLUTION, &evolution("status.instance", s)).await;
    let o = observe(&app, s).await;
    assert_eq!(o["session"]["state"], "logged_out");
    assert_eq!(o["session"]["lastDisconnect"]["code"], 401);
    ok(&app, EVOLUTION, &evolution("logout.instance", "fresh")).await;
    assert_eq!(
        observe(&app, "fresh").await["session"]["state"],
        "logged_out"
    );
    assert_eq!(codes(&app, s).await, ["LOGGED_OUT:critical"]);
}

#[tokio::test]
async fn evolution_logouts_name_401_and_403_with_different_actions_whatever_the_order() {
    let app = spawn_app().await;
    let mut actions = Vec::new();
    // Evolution sends a logout as three webhooks at once: any order ends
    // logged out with the close code.
    for (s, fixtures, code) in [
        (
            "e401",
            [
                "logout.instance",
                "connection.update.close-401",
                "status.instance",
            ],
            401,
        ),
        (
            "e403",
            [
                "status.instance.403",
                "logout.instance",
                "connection.update.close-403",
            ],
            403,
        ),
    ] {
        ok(&app, EVOLUTION, &evolution("connection.update.open", s)).await;
        for fixture in fixtures {
            ok(&app, EVOLUTION, &evolution(fixture, s)).await;
        }
        let o = observe(&app, s).await;
        assert_eq!(o["session"]["state"], "logged_out");
        assert_eq!(o["session"]["lastDisconnect"]["code"], code);
        let a = app.get_json(&format!("/sessions/{s}/alerts"), 200).await;
        let alert = &a["alerts"][0];
        assert_eq!(alert["code"], "LOGGED_OUT");
        actions.push((alert["message"].clone(), alert["action"].clone()));
    }
    assert!(
        actions[0].0.as_str().unwrap().contains("401"),
        "{actions:?}"
    );
    assert!(
        actions[1].0.as_str().unwrap().contains("403 forbidden"),
        "{actions:?}"
    );
    assert_ne!(actions[0].1, actions[1].1);
}

#[tokio::test]
async fn evolution_by_events_sub_paths_and_a_configured_token_header() {
    let app = spawn_with(|s| {
        s.ingest_token = secret("evo-t");
        s.gateways.token_header = Some(axum::http::HeaderName::from_static("x-wapulse-token"));
        s.gateways.evolution_prefix = "evo:".into();
    })
    .await;
    let mut body = evolution("connection.update.open", "sub");
    body.as_object_mut().unwrap().remove("event");
    let path = format!("{EVOLUTION}/connection-update");
    let (code, _) = deliver(&app, &path, &body, &[("x-wapulse-token", "wrong")]).await;
    assert_eq!(code, 401);
    let (code, e) = deliver(&app, &path, &body, &[("x-wapulse-token", "evo-t")]).await;
    assert_eq!(code, 200, "{e}");
    assert_eq!(e["session"], "evo:sub");
    assert_eq!(
        observe(&app, "evo:sub").await["session"]["state"],
        "connected"
    );
    let (code, _) = deliver(&app, &path, &body, &[("authorization", "Bearer evo-t")]).await;
    assert_eq!(code, 200);
    // `?token=` with "webhook by events": Evolution appends the event after
    // the query string.
    let full = evolution("connection.update.open", "sub");
    let (code, e) = deliver(
        &app,
        &format!("{EVOLUTION}?token=evo-t/connection-update"),
        &full,
        &[],
    )
    .await;
    assert_eq!(code, 200, "{e}");
    // A custom header that matches wins over an unrelated bearer token.
    let (code, _) = deliver(
        &app,
        &path,
        &body,
        &[
            ("authorization", "Bearer something-else"),
            ("x-wapulse-token", "evo-t"),
        ],
    )
    .await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn a_delivery_making_more_events_than_a_batch_may_hold_is_refused_whole() {
    let app = spawn_with(|s| s.max_batch_events = 10).await;
    let one = evolution("messages.upsert", "big")["data"].clone();
    let mut body = evolution("messages.upsert", "big");
    body["data"] = Value::Array(
        (0..11)
            .map(|i| {
                let mut m = one.clone();
                m["key"]["id"] = json!(format!("m{i}"));
                m
            })
            .collect(),
    );
    let (code, e) = deliver(&app, EVOLUTION, &body, &[]).await;
    assert_eq!(code, 413, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("max_batch_events"),
        "{e}"
    );
    assert_eq!(app.get("/sessions/big/observe").await.status(), 404);
}

#[tokio::test]
async fn noweb_logouts_passkeys_and_stops_map_as_the_table_says() {
    let app = spawn_app().await;
    // A NOWEB logout: the close with its code, then WAHA's FAILED, which
    // keeps the code as the reason.
    let s = "nw";
    ok(&app, WAHA, &waha("session.status.WORKING", s, 60, "a")).await;
    ok(
        &app,
        WAHA,
        &waha("engine.event.NOWEB.connection-open", s, 59, "b"),
    )
    .await;
    assert_eq!(observe(&app, s).await["session"]["state"], "connected");
    ok(
        &app,
        WAHA,
        &waha("engine.event.NOWEB.connection-close-401", s, 30, "c"),
    )
    .await;
    ok(&app, WAHA, &waha("session.status.FAILED", s, 29, "d")).await;
    let o = observe(&app, s).await;
    assert_eq!(o["session"]["state"], "logged_out");
    assert_eq!(o["session"]["lastDisconnect"]["code"], 401);
    assert_eq!(o["session"]["lastDisconnect"]["name"], "logged_out");
    // A passkey login.
    let p = "pk";
    ok(&app, WAHA, &waha("session.status.STARTING", p, 20, "a")).await;
    ok(
        &app,
        WAHA,
        &waha("session.status.PASSKEY_REQUIRED", p, 19, "b"),
    )
    .await;
    assert_eq!(codes(&app, p).await, ["QR_REQUIRED:warning"]);
    ok(&app, WAHA, &waha("session.status.WORKING", p, 18, "c")).await;
    assert_eq!(observe(&app, p).await["auth"]["method"], "passkey");
    // Stopped: on purpose, with WAHA's word as the reason.
    ok(&app, WAHA, &waha("session.status.STOPPED", p, 5, "d")).await;
    let o = observe(&app, p).await;
    assert_eq!(o["session"]["state"], "stopped");
    assert_eq!(o["session"]["stateReason"], "STOPPED");
}

#[tokio::test]
async fn a_session_stopped_on_purpose_pages_nothing_however_long_it_stays_stopped() {
    let app = spawn_app().await;
    let s = "parked";
    ok(&app, WAHA, &waha("session.status.WORKING", s, 3_600, "a")).await;
    ok(&app, WAHA, &waha("session.status.STOPPED", s, 2_400, "b")).await;
    // Forty minutes stopped: a disconnected session would be
    // LONG_DISCONNECTION by now.
    assert!(codes(&app, s).await.is_empty());
    let h = app.get_json_any(&format!("/sessions/{s}/health")).await;
    assert_eq!(
        (&h["status"], &h["state"]),
        (&json!("ok"), &json!("stopped"))
    );
    let list = app.get_json("/sessions?state=stopped", 200).await;
    assert_eq!(list["total"], 1, "{list}");
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(
        metrics.contains("wa_sessions{state=\"stopped\"} 1"),
        "{metrics}"
    );
    // Started again (a start, not a reconnect): judged again.
    ok(&app, WAHA, &waha("session.status.STARTING", s, 10, "c")).await;
    assert_eq!(observe(&app, s).await["session"]["state"], "connecting");
}
