//! Session labels end to end: the `labels` event, `observe`, the
//! `/sessions?label=` filter, `wa_session_info`, refusals naming the key
//! with nothing applied, and labels across restarts.

use serde_json::{Value, json};

use crate::support::*;

fn labels_of(observe: &Value) -> &Value {
    &observe["session"]["labels"]
}

fn ids(list: &Value) -> Vec<&str> {
    list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn labels_merge_into_observe_and_null_removes() {
    let app = spawn_app().await;
    // No labels yet: an empty object, next to the id.
    let o = app.get_json("/session/observe", 200).await;
    assert_eq!(labels_of(&o), &json!({}));
    let keys: Vec<&String> = o["session"].as_object().unwrap().keys().collect();
    assert!(keys.contains(&&"labels".to_owned()), "{keys:?}");

    app.ingest(json!([
        {"type": "labels", "labels": {"tenant": "acme", "region": "eu-1"}},
        {"session": "b", "type": "state", "state": "connected"},
        {"session": "b", "type": "labels", "labels": {"tier": "gold"}},
    ]))
    .await;
    let o = app.get_json("/session/observe", 200).await;
    assert_eq!(labels_of(&o), &json!({"tenant": "acme", "region": "eu-1"}));
    // A later event merges; null removes; removing an absent name is fine.
    app.ingest(json!([
        {"type": "labels", "labels": {"region": "eu-2", "tenant": null, "gone": null, "app": "bot"}},
    ]))
    .await;
    let o = app.get_json("/session/observe", 200).await;
    assert_eq!(labels_of(&o), &json!({"app": "bot", "region": "eu-2"}));
    // By id too, and through the session's own ingest path.
    let (code, _) = app
        .post_to(
            "/v1/sessions/b/events",
            json!({"type": "labels", "labels": {"zone": "z1"}}),
        )
        .await;
    assert_eq!(code, 200);
    let b = app.get_json("/sessions/b/observe", 200).await;
    assert_eq!(labels_of(&b), &json!({"tier": "gold", "zone": "z1"}));
    assert_eq!(b["session"]["state"], "connected", "labels change no state");
    assert_eq!(b["alerts"], json!([]));
}

#[tokio::test]
async fn sessions_filter_by_every_label_given() {
    let app = spawn_app().await;
    app.ingest(json!([
        {"session": "a", "type": "labels", "labels": {"region": "eu-1", "tenant": "acme"}},
        {"session": "b", "type": "labels", "labels": {"region": "eu-1", "tenant": "other"}},
        {"session": "c", "type": "labels", "labels": {"region": "us-1", "tenant": "acme"}},
        {"session": "d", "type": "labels", "labels": {"endpoint": "10.0.0.1:443"}},
        {"session": "a", "type": "state", "state": "connected"},
        {"session": "b", "type": "state", "state": "logged_out"},
    ]))
    .await;
    let eu = app.get_json("/sessions?label=region:eu-1", 200).await;
    assert_eq!(ids(&eu), ["a", "b"]);
    assert_eq!(eu["total"], 2);
    assert_eq!(
        eu["sessions"][0]["labels"],
        json!({"region": "eu-1", "tenant": "acme"}),
        "each row shows its labels"
    );
    let both = app
        .get_json("/sessions?label=region:eu-1&label=tenant:acme", 200)
        .await;
    assert_eq!(ids(&both), ["a"]);
    assert_eq!(both["total"], 1);
    // The value is everything after the first colon.
    let colon = app
        .get_json("/sessions?label=endpoint:10.0.0.1%3A443", 200)
        .await;
    assert_eq!(ids(&colon), ["d"]);
    // With the other filters, and paged.
    let critical = app
        .get_json("/sessions?label=region:eu-1&status=critical", 200)
        .await;
    assert_eq!(ids(&critical), ["b"]);
    assert_eq!(critical["total"], 1);
    let connected = app
        .get_json("/sessions?label=tenant:acme&state=connected", 200)
        .await;
    assert_eq!(ids(&connected), ["a"]);
    let first = app
        .get_json("/sessions?label=tenant:acme&limit=1", 200)
        .await;
    assert_eq!((ids(&first), first["total"].clone()), (vec!["a"], json!(2)));
    assert_eq!(first["nextAfter"], "a");
    let second = app
        .get_json("/sessions?label=tenant:acme&limit=1&after=a", 200)
        .await;
    assert_eq!(ids(&second), ["c"]);
    assert!(second["nextAfter"].is_null());
    let none = app.get_json("/sessions?label=region:mars", 200).await;
    assert_eq!(
        (none["total"].clone(), none["count"].clone()),
        (json!(0), json!(0))
    );
    // Sessions without labels list an empty object.
    let all = app.get_json("/sessions?limit=1000", 200).await;
    let default = all["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "default")
        .unwrap();
    assert_eq!(default["labels"], json!({}));

    for bad in [
        "label=region",
        "label=:eu-1",
        "label=re-gion:x",
        "label=session:a",
        "label=region:eu-1&label=__name__:x",
    ] {
        let e = app.get_json(&format!("/sessions?{bad}"), 400).await;
        assert_eq!(e["field"], "label", "{bad}: {e}");
        assert!(
            e["error"].as_str().unwrap().contains("label `"),
            "{bad}: {e}"
        );
    }
    for bad in ["status=ok&status=ok", "colour=red"] {
        let e = app.get_json(&format!("/sessions?{bad}"), 400).await;
        assert!(e["error"].is_string(), "{bad}: {e}");
    }
}

#[tokio::test]
async fn bad_labels_are_refused_naming_the_key_and_nothing_is_applied() {
    let app = spawn_app().await;
    let fifteen: serde_json::Map<String, Value> =
        (0..15).map(|i| (format!("k{i:02}"), json!("v"))).collect();
    app.ingest(json!([{"session": "full", "type": "labels", "labels": fifteen}]))
        .await;
    let before_events = app.events_applied().await;
    let before_full = app.get_json("/sessions/full/observe", 200).await;
    let seventeen: serde_json::Map<String, Value> =
        (0..17).map(|i| (format!("n{i:02}"), json!("v"))).collect();
    // Every batch starts with good events for a new session: none of them
    // may be applied when a later event is refused.
    let good = json!({"session": "fresh", "type": "state", "state": "connected"});
    let good_labels = json!({"session": "fresh", "type": "labels", "labels": {"tenant": "acme"}});
    let labels = |l: Value| json!({"session": "fresh", "type": "labels", "labels": l});
    // 400: the event is malformed; 409: it is well formed but the session
    // would hold more than 16 labels.
    let cases: Vec<(Value, usize, &str, u16)> = vec![
        (
            json!([good, good_labels, labels(json!({"session": "x"}))]),
            2,
            "labels.session",
            400,
        ),
        (
            json!([good, labels(json!({"severity": "x"}))]),
            1,
            "labels.severity",
            400,
        ),
        (
            json!([good, labels(json!({"__name__": "x"}))]),
            1,
            "labels.__name__",
            400,
        ),
        (
            json!([good, labels(json!({"ok": "1", "bad-name": "x"}))]),
            1,
            "labels.bad-name",
            400,
        ),
        (
            json!([good, labels(json!({"count": 3}))]),
            1,
            "labels.count",
            400,
        ),
        (
            json!([good, labels(json!({"note": "x".repeat(129)}))]),
            1,
            "labels.note",
            400,
        ),
        (
            json!([good, labels(json!("eu-1"))]),
            1,
            "must be an object",
            400,
        ),
        (
            json!([good, {"session": "fresh", "type": "labels"}]),
            1,
            "is required",
            400,
        ),
        (
            json!([good, labels(Value::Object(seventeen))]),
            1,
            "labels.n16",
            409,
        ),
        // Past 16 with what the session holds: 15 + 1 fits, the next does not.
        (
            json!([
                good,
                {"session": "full", "type": "labels", "labels": {"a": "1"}},
                {"session": "full", "type": "labels", "labels": {"k00": "updated"}},
                {"session": "full", "type": "labels", "labels": {"b": "1"}},
            ]),
            3,
            "labels.b",
            409,
        ),
    ];
    for (body, index, needle, status) in cases {
        let (code, e) = app.post_events(body.clone()).await;
        assert_eq!(code, status, "{body}: {e}");
        assert_eq!(e["index"], index, "{body}: {e}");
        assert_eq!(e["field"], "labels", "{body}: {e}");
        let message = e["error"].as_str().unwrap();
        assert!(message.contains(needle), "{body}: {e}");
        assert!(message.starts_with(&format!("event {index}: ")), "{e}");
    }
    // NDJSON is checked the same way.
    let r = app
        .post_raw(
            "application/x-ndjson",
            "{\"type\":\"heartbeat\"}\n{\"type\":\"labels\",\"labels\":{\"code\":\"1\"}}\n",
        )
        .await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(
        (e["index"].clone(), e["field"].clone()),
        (json!(1), json!("labels"))
    );
    assert!(e["error"].as_str().unwrap().contains("labels.code"), "{e}");

    // Nothing of any refused batch was applied.
    assert_eq!(app.events_applied().await, before_events);
    app.get_json("/sessions/fresh/observe", 404).await;
    let after_full = app.get_json("/sessions/full/observe", 200).await;
    assert_eq!(labels_of(&after_full), labels_of(&before_full));
    assert_eq!(
        after_full["session"]["events"],
        before_full["session"]["events"]
    );

    // Removing in the same event makes room: the operator's way out.
    app.ingest(json!([
        {"session": "full", "type": "labels", "labels": {"k00": null, "k01": null, "a": "1", "b": "1", "c": "1"}},
    ]))
    .await;
    let full = app.get_json("/sessions/full/observe", 200).await;
    assert_eq!(labels_of(&full).as_object().unwrap().len(), 16);
}

#[tokio::test]
async fn wa_session_info_carries_the_labels_escaped_and_nothing_else_does() {
    let app = spawn_app().await;
    app.ingest(json!([
        {"session": "a", "type": "labels", "labels": {"tenant": "acme", "note": "say \"hi\" \\ then\nnewline"}},
        {"session": "a", "type": "state", "state": "connected"},
    ]))
    .await;
    let (code, text) = app.get_text("/metrics").await;
    assert_eq!(code, 200);
    for line in [
        "# TYPE wa_session_info gauge",
        r#"wa_session_info{session="a",note="say \"hi\" \\ then\nnewline",tenant="acme"} 1"#,
        r#"wa_session_info{session="default"} 1"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in\n{text}"
        );
    }
    let info: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("wa_session_info{"))
        .collect();
    assert_eq!(info.len(), 2, "once per session: {info:?}");
    // Labels only on wa_session_info: never on the other per-session series.
    let carrying: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("tenant="))
        .filter(|l| !l.starts_with("wa_session_info{"))
        .collect();
    assert!(carrying.is_empty(), "{carrying:?}");
    assert!(text.contains(r#"wa_session_connected{session="a"} 1"#));
    promtool_check(&text);
    // The one-session exposition stays the seed's, unlabelled.
    let (_, one) = app.get_text("/sessions/a/metrics").await;
    assert!(!one.contains("wa_session_info"), "{one}");
}

/// Both sessions' labels and what the filter finds.
async fn observed(app: &TestApp) -> (Value, Value, Value) {
    (
        labels_of(&app.get_json("/sessions/a/observe", 200).await).clone(),
        labels_of(&app.get_json("/sessions/b/observe", 200).await).clone(),
        app.get_json("/sessions?label=tenant:acme", 200).await["total"].clone(),
    )
}

#[tokio::test]
async fn labels_survive_a_restart_from_the_snapshot_and_from_the_journal() {
    let app = spawn_app().await;
    app.ingest(json!([
        {"session": "a", "type": "labels", "labels": {"tenant": "acme", "region": "eu-1", "old": "x"}},
        {"session": "a", "type": "state", "state": "connected"},
        {"session": "b", "type": "labels", "labels": {"tenant": "beta"}},
    ]))
    .await;
    // Snapshot now, then a tail in the journal only: a restart needs both.
    app.state.model.maintain().await.unwrap();
    app.ingest(json!([
        {"session": "a", "type": "labels", "labels": {"old": null, "zone": "z\"1"}},
    ]))
    .await;
    let expected = (
        json!({"region": "eu-1", "tenant": "acme", "zone": "z\"1"}),
        json!({"tenant": "beta"}),
        json!(1),
    );
    assert_eq!(observed(&app).await, expected);

    // A clean stop writes a format-2 snapshot: restore from it.
    let data = app.stop().await;
    let app = spawn_in(data, |_| {}).await;
    assert_eq!(observed(&app).await, expected);

    // Without any snapshot: the journal alone gives the same labels.
    let data = app.stop().await;
    let db = data.path().join(DB_FILE_NAME);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let dropped = conn.execute("DELETE FROM snapshots", []).unwrap();
    assert!(dropped > 0);
    drop(conn);
    let app = spawn_in(data, |_| {}).await;
    assert_eq!(observed(&app).await, expected);

    // And the exported journal re-posts (null removals included) into an
    // identical model.
    let data = app.stop().await;
    let ndjson = export_journal(data.path());
    assert!(ndjson.contains(r#""old":null"#), "{ndjson}");
    let fresh = spawn_app().await;
    let r = fresh.post_raw("application/x-ndjson", ndjson).await;
    assert_eq!(r.status(), 200);
    assert_eq!(observed(&fresh).await, expected);
}
