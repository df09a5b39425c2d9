//! Delivery from outside: recorded WAHA and Evolution payloads make a mute
//! session fire DELIVERY_STALLED and a 463 fire ACCOUNT_RESTRICTED; retries
//! count once; the ingest API takes sends with ids and acks, and refuses
//! bad ones naming the field; observe, /sessions and /metrics show it.

use serde_json::{Value, json};
use wapulse_core::DurationMs;

use crate::gateways::{EVOLUTION, WAHA, codes, deliver, evolution, ok, waha};
use crate::support::*;

/// A WAHA send (`message.any`, fromMe) of message `n`, `secs_ago`, with
/// WAHA's ack field as given (0: PENDING, 1: SERVER).
fn waha_send(session: &str, n: u32, secs_ago: u64, ack: i64) -> Value {
    let mut v = waha(
        "message.any.outbound",
        session,
        secs_ago,
        &format!("send{n}"),
    );
    v["payload"]["id"] = json!(format!("true_31687654321@c.us_3EB0{n:016}"));
    v["payload"]["ack"] = json!(ack);
    v
}

/// A WAHA `message.ack` of message `n`.
fn waha_ack(session: &str, n: u32, secs_ago: u64, ack: i64) -> Value {
    let mut v = waha("message.ack", session, secs_ago, &format!("ack{n}-{ack}"));
    v["payload"]["id"] = json!(format!("true_31687654321@c.us_3EB0{n:016}"));
    v["payload"]["ack"] = json!(ack);
    v
}

async fn delivery(app: &TestApp, session: &str) -> Value {
    app.get_json(&format!("/sessions/{session}/observe"), 200)
        .await["delivery"]
        .clone()
}

async fn alert(app: &TestApp, session: &str, code: &str) -> Option<Value> {
    app.session_alert(session, code).await
}

#[tokio::test]
async fn a_mute_waha_session_fires_delivery_stalled_critical_and_resolves_when_acks_resume() {
    let app = spawn_app().await;
    let s = "mute";
    ok(&app, WAHA, &waha("session.status.WORKING", s, 1_200, "up")).await;
    // Acked 15 minutes ago; then five sends, twelve minutes ago and on,
    // never acked (WAHA keeps them PENDING).
    ok(&app, WAHA, &waha_send(s, 0, 900, 0)).await;
    ok(&app, WAHA, &waha_ack(s, 0, 899, 1)).await;
    for n in 1..=5 {
        ok(&app, WAHA, &waha_send(s, n, 730 - u64::from(n) * 10, 0)).await;
    }
    let a = alert(&app, s, "DELIVERY_STALLED").await.expect("stalled");
    assert_eq!(a["level"], "critical", "{a}");
    assert!(
        a["message"]
            .as_str()
            .unwrap()
            .starts_with("5 sent messages waiting for WhatsApp's server ack"),
        "{a}"
    );
    assert!(a["action"].as_str().unwrap().contains("re-pair"), "{a}");
    assert_eq!(a["threshold"], 600_000);
    let d = delivery(&app, s).await;
    assert_eq!(
        (&d["sent"], &d["serverAcked"], &d["pending"], &d["failed"]),
        (&json!(6), &json!(1), &json!(5), &json!(0)),
        "{d}"
    );
    let oldest = d["oldestPendingAge"].as_u64().unwrap();
    assert!((720_000..730_000).contains(&oldest), "{d}");
    assert!(d["timeToServer"]["p50"].as_u64().is_some(), "{d}");
    assert_eq!(codes(&app, s).await, vec!["DELIVERY_STALLED:critical"]);
    // Found by its code.
    let list = app.get_json("/sessions?code=DELIVERY_STALLED", 200).await;
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["sessions"][0]["id"], s);
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(
        metrics.contains("wa_outbound_pending{session=\"mute\"} 5"),
        "{metrics}"
    );
    // Acks resume: a new send is taken by the server.
    ok(&app, WAHA, &waha_send(s, 6, 1, 0)).await;
    ok(&app, WAHA, &waha_ack(s, 6, 0, 1)).await;
    assert_eq!(alert(&app, s, "DELIVERY_STALLED").await, None);
    assert_eq!(
        app.get_json("/sessions?code=DELIVERY_STALLED", 200).await["total"],
        0
    );
}

#[tokio::test]
async fn a_waha_ack_delivered_twice_counts_once() {
    let app = spawn_app().await;
    let s = "twice";
    ok(&app, WAHA, &waha("session.status.WORKING", s, 60, "up")).await;
    ok(&app, WAHA, &waha_send(s, 1, 30, 0)).await;
    let ack = waha_ack(s, 1, 29, 2);
    ok(&app, WAHA, &ack).await;
    ok(&app, WAHA, &ack).await;
    // The same ack in a new envelope (WAHA's `message.any` repeating it).
    ok(&app, WAHA, &waha_ack(s, 1, 28, 2)).await;
    let d = delivery(&app, s).await;
    assert_eq!(
        (
            &d["sent"],
            &d["serverAcked"],
            &d["delivered"],
            &d["pending"]
        ),
        (&json!(1), &json!(1), &json!(1), &json!(0)),
        "{d}"
    );
    assert!(
        d["timeToDelivered"]["p99"].as_u64().unwrap() >= 1_000,
        "{d}"
    );
}

#[tokio::test]
async fn a_waha_error_ack_with_463_is_a_reachout_timelock() {
    let app = spawn_app().await;
    let s = "timelock";
    ok(&app, WAHA, &waha("session.status.WORKING", s, 60, "up")).await;
    let mut send = waha_send(s, 0, 30, 0);
    send["payload"]["id"] = json!("true_31687654321@c.us_3EB0C431C2A1B5E8F0AA");
    ok(&app, WAHA, &send).await;
    let mut nack = waha("message.ack.error-463", s, 20, "nack");
    nack["session"] = json!(s);
    ok(&app, WAHA, &nack).await;
    let a = alert(&app, s, "ACCOUNT_RESTRICTED")
        .await
        .expect("restricted");
    assert_eq!(a["level"], "critical");
    assert!(a["message"].as_str().unwrap().contains("463"), "{a}");
    assert!(
        a["action"].as_str().unwrap().contains("Do NOT re-pair"),
        "{a}"
    );
    let d = delivery(&app, s).await;
    assert_eq!(d["failed"], 1, "{d}");
    assert_eq!(d["errorsByCode"], json!({"463": 1}), "{d}");
    assert_eq!(d["restriction"]["kind"], "reachout_timelock", "{d}");
    assert_eq!(d["restriction"]["code"], "463", "{d}");
    assert!(d["lastErrorAt"].is_string(), "{d}");
}

#[tokio::test]
async fn evolution_acks_count_once_and_a_restriction_lifts_when_a_later_send_is_delivered() {
    let app = spawn_app().await;
    let s = "evo-acks";
    ok(&app, EVOLUTION, &evolution("connection.update.open", s)).await;
    ok(&app, EVOLUTION, &evolution("send.message", s)).await;
    // Evolution retries a delivery with the same body.
    let nack = evolution("messages.update.error-463", s);
    ok(&app, EVOLUTION, &nack).await;
    ok(&app, EVOLUTION, &nack).await;
    let d = delivery(&app, s).await;
    assert_eq!((&d["sent"], &d["failed"]), (&json!(1), &json!(1)), "{d}");
    let a = alert(&app, s, "ACCOUNT_RESTRICTED")
        .await
        .expect("restricted");
    assert!(
        a["action"].as_str().unwrap().contains("Do NOT re-pair"),
        "{a}"
    );
    // A later send, delivered: the restriction is over.
    let mut later = evolution("send.message", s);
    later["data"]["key"]["id"] = json!("3EB00000000000000004");
    ok(&app, EVOLUTION, &later).await;
    let mut delivered = evolution("messages.update", s);
    delivered["data"]["keyId"] = json!("3EB00000000000000004");
    ok(&app, EVOLUTION, &delivered).await;
    ok(&app, EVOLUTION, &delivered).await;
    let d = delivery(&app, s).await;
    assert_eq!(
        (
            &d["sent"],
            &d["serverAcked"],
            &d["delivered"],
            &d["restriction"]
        ),
        (&json!(2), &json!(1), &json!(1), &Value::Null),
        "{d}"
    );
    assert_eq!(alert(&app, s, "ACCOUNT_RESTRICTED").await, None);
    // An update of someone else's message is not this session's delivery.
    let mut theirs = evolution("messages.update", s);
    theirs["data"]["fromMe"] = json!(false);
    let (code, _) = deliver(&app, EVOLUTION, &theirs, &[]).await;
    assert_eq!(code, 202);
}

#[tokio::test]
async fn the_ingest_api_takes_sends_with_ids_and_acks_and_names_bad_fields() {
    let app = spawn_app().await;
    let now = wapulse::clock::now();
    let ago = |s: u64| now.minus(DurationMs::from_secs(s)).to_rfc3339();
    app.ingest(json!([
        {"session": "api", "type": "state", "state": "connected", "at": ago(60)},
        {"session": "api", "type": "message", "direction": "outbound", "ids": ["a", "b", "c"], "at": ago(50)},
        {"session": "api", "type": "ack", "message": "a", "status": "server", "at": ago(49)},
        {"session": "api", "type": "ack", "message": "b", "status": "delivered", "at": ago(40)},
        {"session": "api", "type": "ack", "message": "b", "status": "read", "at": ago(30)},
        {"session": "api", "type": "ack", "message": "c", "status": "error", "code": 429, "detail": "rate-overlimit", "at": ago(45)},
        {"session": "api", "type": "ack", "message": "never-sent", "status": "delivered", "at": ago(44)},
    ]))
    .await;
    let d = delivery(&app, "api").await;
    assert_eq!(
        d,
        json!({
            "sent": 3, "serverAcked": 2, "delivered": 1, "read": 1, "failed": 1, "pending": 0,
            "untracked": 0, "oldestPendingAge": null,
            "timeToServer": {"p50": 1000, "p90": 1000, "p99": 1000},
            "timeToDelivered": {"p50": 10000, "p90": 10000, "p99": 10000},
            "errorsByCode": {"429": 1}, "window": 900000,
            "lastErrorAt": ago(45),
            "restriction": {
                "kind": "rate_limit", "code": "429", "since": ago(45), "until": null,
                "explanation": d["restriction"]["explanation"],
                "action": d["restriction"]["action"],
            },
        })
    );
    assert!(
        d["restriction"]["action"]
            .as_str()
            .unwrap()
            .starts_with("Slow down"),
        "{d}"
    );
    // A session that never sent says so with zeros and nulls.
    app.ingest(json!([{"session": "quiet", "type": "heartbeat"}]))
        .await;
    let q = delivery(&app, "quiet").await;
    assert_eq!((&q["sent"], &q["restriction"]), (&json!(0), &Value::Null));
    // Bad input: 400 naming the event and the field; nothing applied.
    for (event, field) in [
        (json!({"type": "ack", "status": "server"}), "message"),
        (
            json!({"type": "ack", "message": "a", "status": "sent"}),
            "status",
        ),
        (
            json!({"type": "ack", "message": "a", "status": "server", "code": "463"}),
            "code",
        ),
        (
            json!({"type": "message", "direction": "inbound", "ids": ["x"]}),
            "ids",
        ),
        (
            json!({"type": "message", "direction": "outbound", "count": 1, "ids": ["x", "y"]}),
            "count",
        ),
    ] {
        let (code, e) = app
            .post_events(json!([{"session": "api", "type": "heartbeat"}, event]))
            .await;
        assert_eq!(code, 400, "{event}: {e}");
        assert_eq!(e["field"], field, "{event}: {e}");
        assert_eq!(e["index"], 1, "{event}: {e}");
    }
    assert_eq!(delivery(&app, "api").await["sent"], 3, "nothing applied");
    // Filters and thresholds.
    let (code, e) = app.get_text("/sessions?code=NOT_A_CODE").await;
    assert_eq!(code, 400, "{e}");
    assert!(e.contains("DELIVERY_STALLED"), "{e}");
    let t = app.get_json("/session/thresholds", 200).await;
    assert_eq!(t["delivery_stall_warning"], 120_000, "{t}");
    assert_eq!(t["delivery_stall_min_messages"], 3, "{t}");
    assert_eq!(t["delivery_failure_warning"], 0.05, "{t}");
    // Metrics: counts, errors by code, the fleet's latency histogram.
    let (_, metrics) = app.get_text("/metrics").await;
    for line in [
        "wa_outbound_messages_total{session=\"api\"} 3",
        "wa_outbound_acks_total{session=\"api\",status=\"read\"} 1",
        "wa_delivery_errors_total{session=\"api\",code=\"429\"} 1",
        "wa_delivery_ack_latency_seconds_bucket{ack=\"server\",le=\"1\"} 1",
        "wa_delivery_ack_latency_seconds_count{ack=\"delivered\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} not in:\n{metrics}");
    }
    let (_, one) = app.get_text("/sessions/api/metrics").await;
    assert!(
        one.contains("wa_delivery_latency_seconds{ack=\"delivered\",quantile=\"0.99\"} 10"),
        "{one}"
    );
}
