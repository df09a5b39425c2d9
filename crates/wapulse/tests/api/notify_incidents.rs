//! Fleet incidents: a mass failure is one page, not hundreds; a fleet
//! going deaf together; sessions joining and leaving a running incident;
//! an incident that never fires gives back what it held.

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn a_mass_failure_is_one_fleet_incident_not_three_hundred_pages() {
    let (hook, app) = incident_app("0s", r#"incident_by = ["region"]"#).await;
    let region = |i: usize| if i < 300 { "eu-1" } else { "us-1" };
    let mut up = Vec::new();
    for i in 0..340 {
        let id = format!("s{i:03}");
        up.push(labelled(&id, json!({"region": region(i)})));
        up.push(connected(&id));
    }
    app.ingest(Value::Array(up)).await;
    // All 300 of eu-1 fall over together, three attempts each
    // (RECONNECT_ATTEMPTS fires for every one of them).
    let eu = numbered("s", 300, 3);
    app.ingest(reconnecting_thrice(&eu)).await;
    let got = hook.wait_for("the incident", 1).await;
    let incident = &got[0].body;
    assert_eq!(
        incident["groupLabels"]["code"], "FLEET_INCIDENT",
        "{incident}"
    );
    let alert = &incident["firing"][0];
    assert_eq!(alert["affected"], 300);
    assert_eq!(alert["labels"]["region"], "eu-1");
    assert_eq!(alert["labels"]["trouble"], "not_connected");
    assert_eq!(alert["sessions"].as_array().unwrap().len(), 20, "capped");
    assert!(
        alert["summary"]
            .as_str()
            .unwrap()
            .starts_with("100 % of sessions in region=eu-1 (300 of 300) are not connected"),
        "{alert}"
    );
    // A marker from a session the incident does not cover: once it
    // arrives, everything queued before it has been sent.
    let got = after_corruption_marker(&hook, &app, "s300").await;
    let codes = |got: &[Received]| -> Vec<String> {
        got.iter()
            .map(|r| {
                format!(
                    "{}:{}",
                    r.body["status"].as_str().unwrap(),
                    r.body["groupLabels"]["code"].as_str().unwrap()
                )
            })
            .collect()
    };
    let said = codes(&got);
    assert_eq!(
        said.iter()
            .filter(|c| c.ends_with("FLEET_INCIDENT"))
            .count(),
        1,
        "one incident message: {said:?}"
    );
    assert!(
        !said.iter().any(|c| c.ends_with("RECONNECT_ATTEMPTS")),
        "no per-session pages: {said:?}"
    );
    let alerts = app.get_json("/alerts?code=RECONNECT_ATTEMPTS", 200).await;
    assert_eq!(alerts["total"], 300, "they still show");
    assert!(
        alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["folded"] == true)
    );
    let first = app.get_json("/alerts", 200).await;
    assert_eq!(first["alerts"][0]["code"], "FLEET_INCIDENT", "worst first");

    // They come back: the incident resolves, once; the folded alerts
    // resolve without a word.
    app.ingest(each(&eu, connected)).await;
    let got = hook
        .wait_until("the incident's resolve", WAIT, |r| {
            r.iter().any(|x| {
                x.body["status"] == "resolved" && x.body["groupLabels"]["code"] == "FLEET_INCIDENT"
            })
        })
        .await;
    let said = codes(&got);
    assert_eq!(
        said.iter()
            .filter(|c| c.ends_with("FLEET_INCIDENT"))
            .collect::<Vec<_>>(),
        ["firing:FLEET_INCIDENT", "resolved:FLEET_INCIDENT"],
        "{said:?}"
    );
    assert!(
        !said.iter().any(|c| c.ends_with("RECONNECT_ATTEMPTS")),
        "{said:?}"
    );
}

#[tokio::test]
async fn a_fleet_going_deaf_together_is_one_incident_of_that_code() {
    let (hook, app) = hook_app(r#"for = "0s", incident_for = "0s", group_wait = "0s""#).await;
    // 20 sessions connected 10 minutes ago and silent since: all of them
    // fire HEARTBEAT_DEAD now, together.
    let events: Vec<Value> = (0..20)
        .map(|i| json!({"session": format!("d{i:02}"), "type": "state", "state": "connected", "at": ago(600)}))
        .collect();
    app.ingest(Value::Array(events)).await;
    let got = hook.wait_for("the incident", 1).await;
    let alert = &got[0].body["firing"][0];
    assert_eq!(alert["code"], "FLEET_INCIDENT", "{}", got[0].body);
    assert_eq!(alert["labels"]["trouble"], "HEARTBEAT_DEAD");
    assert_eq!(alert["affected"], 20);
    assert!(
        alert["summary"]
            .as_str()
            .unwrap()
            .contains("fire HEARTBEAT_DEAD"),
        "{alert}"
    );
    let dead = app.get_json("/alerts?code=HEARTBEAT_DEAD", 200).await;
    assert_eq!(dead["total"], 20);
    assert!(
        dead["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["folded"] == true)
    );
    let got = after_marker(&hook, &app, json!([logged_out("marker")]), "LOGGED_OUT").await;
    assert!(
        got.iter()
            .all(|r| r.body["groupLabels"]["code"] != "HEARTBEAT_DEAD"),
        "no per-session page"
    );
}

#[tokio::test]
async fn sessions_joining_a_running_incident_are_folded_too() {
    let (hook, app) = incident_app("0s", "").await;
    let ids = [numbered("a", 1000, 4), numbered("b", 200, 3)].concat();
    app.ingest(each(&ids, connected)).await;
    // The first thousand make the incident; the next two hundred join it
    // (beyond the thousand sessions an incident keeps in its saved state).
    app.ingest(reconnecting_thrice(&ids[..1000])).await;
    hook.wait_for("the incident", 1).await;
    app.ingest(reconnecting_thrice(&ids[1000..])).await;
    let alerts = wait_alerts(&app, "session=b199&code=RECONNECT_ATTEMPTS", |v| {
        v["total"] == 1
    })
    .await;
    assert_eq!(alerts["alerts"][0]["folded"], true, "{alerts}");
    let got = after_corruption_marker(&hook, &app, "marker").await;
    assert!(
        got.iter()
            .all(|r| r.body["groupLabels"]["code"] != "RECONNECT_ATTEMPTS"),
        "{:#?}",
        got.iter()
            .map(|r| &r.body["groupLabels"])
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_session_leaving_a_running_incident_is_paged_for_what_still_fires() {
    let (hook, app) = incident_app("0s", "").await;
    let ids = numbered("s", 20, 2);
    connect_with_marker(&app, &ids).await;
    let mut down: Vec<Value> = ids.iter().map(|id| reconnecting(id)).collect();
    down.push(failed_validation("s00"));
    app.ingest(Value::Array(down)).await;
    let got = hook.wait_for("the incident", 1).await;
    assert_eq!(got[0].body["groupLabels"]["code"], "FLEET_INCIDENT");
    // Folded while s00 is down: a marker queued after it arrives, and the
    // corruption has not been said.
    let got = after_breaker_marker(&hook, &app).await;
    assert!(
        got.iter()
            .all(|x| x.body["groupLabels"]["code"] != "SESSION_CORRUPTION"),
        "folded while s00 is covered"
    );
    // s00 reconnects: no longer covered, and its corruption still fires.
    app.ingest(json!([connected("s00")])).await;
    let (_, page) = wait_group(&hook, "s00's own page", "SESSION_CORRUPTION").await;
    assert_eq!(page.body["firing"][0]["session"], "s00");
    let incident = app.get_json("/alerts?code=FLEET_INCIDENT", 200).await;
    assert_eq!(
        incident["alerts"][0]["affected"], 19,
        "the incident goes on without it"
    );
}

#[tokio::test]
async fn an_incident_that_never_fires_unfolds_what_it_held_back() {
    // incident_for far away: the incident stays pending, folding; then
    // most sessions come back, it is cancelled, and what still fires is
    // sent one by one, once.
    let (hook, app) = incident_app("4m", "").await;
    let ids = numbered("s", 20, 2);
    connect_with_marker(&app, &ids).await;
    app.ingest(reconnecting_thrice(&ids)).await;
    let folded = wait_alerts(&app, "code=RECONNECT_ATTEMPTS", |v| v["total"] == 20).await;
    assert!(
        folded["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["folded"] == true),
        "folded while the incident is pending: {folded}"
    );
    app.ingest(json!([breaker_open("marker")])).await;
    let got = hook.wait_for("the marker", 1).await;
    assert_eq!(got.len(), 1, "nothing but the marker while pending");
    // 15 come back: 5 still down is below the bound; the incident is
    // cancelled and the 5 are paged.
    app.ingest(each(&ids[5..], connected)).await;
    let (got, page) = wait_group(&hook, "the five", "RECONNECT_ATTEMPTS").await;
    let mut sessions = firing_sessions(&page);
    sessions.sort_unstable();
    assert_eq!(sessions, ["s00", "s01", "s02", "s03", "s04"]);
    assert!(
        got.iter()
            .all(|x| x.body["groupLabels"]["code"] != "FLEET_INCIDENT"),
        "the incident never fired"
    );
}
