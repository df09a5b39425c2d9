//! Gateway edge cases: an Evolution delivery keeps its own instant (its
//! `date_time` read in the server's zone), so a late retry of an old
//! `open` cannot bring a logged-out session back.

use serde_json::{Value, json};
use wapulse_core::DurationMs;

use crate::support::*;

/// `date_time` as an Evolution server in UTC+3 writes it: local time with
/// a `Z`, `secs` seconds ago.
fn local_utc_plus_3(secs: u64) -> String {
    wapulse::clock::now()
        .plus(DurationMs::from_hours(3))
        .minus(DurationMs::from_secs(secs))
        .to_rfc3339()
}

fn delivery(event: &str, data: Value, date_time: String) -> Value {
    json!({
        "event": event, "instance": "shop7", "data": data,
        "destination": "http://wapulse", "date_time": date_time,
        "sender": "5511999999999@s.whatsapp.net", "server_url": "http://evolution:8080",
        "apikey": "B6D711FCDE4D4FD5936544120E713976"
    })
}

#[tokio::test]
async fn a_late_evolution_retry_of_an_open_does_not_resurrect_a_logged_out_session() {
    let app = spawn_app().await;
    let open = |secs| {
        delivery(
            "connection.update",
            json!({"instance": "shop7", "state": "open", "statusReason": 200}),
            local_utc_plus_3(secs),
        )
    };
    let (code, body) = app.post_to("/v1/webhooks/evolution", open(120)).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = app
        .post_to(
            "/v1/webhooks/evolution",
            delivery(
                "connection.update",
                json!({"instance": "shop7", "state": "close", "statusReason": 401}),
                local_utc_plus_3(30),
            ),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    // An `open` sent 90 s ago whose first delivery failed, retried now:
    // older than the close, it changes nothing.
    let (code, body) = app.post_to("/v1/webhooks/evolution", open(90)).await;
    assert_eq!(code, 200, "{body}");
    let o = app.get_json("/sessions/shop7/observe", 200).await;
    assert_eq!(o["session"]["state"], "logged_out", "{o}");
    assert_eq!(o["session"]["lateEvents"], 1, "{o}");
    // Its instants are the server's, read in its zone: the close 30 s ago.
    let changed = parse_ts(&o["session"]["stateChangedAt"]);
    let ago = wapulse::clock::now().since(changed).as_millis();
    assert!((29_000..40_000).contains(&ago), "changed {ago} ms ago");
}
