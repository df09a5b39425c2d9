//! Many tenants in one wapulse: a scoped token (`[[tokens]]` with `match`
//! or `sessions`) sees and changes only its own sessions on every route;
//! an out-of-scope id gets exactly an unknown id's answer; admin actions
//! land in the audit log; a rotated secret file takes effect without a
//! restart.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

const OPS: &str = "ops-admin-secret-00000001";
const ACME_READ: &str = "acme-read-secret-0000002";
const ACME_INGEST: &str = "acme-ingest-secret-00003";
const ACME_ADMIN: &str = "acme-admin-secret-000004";
const BOLT_LIST: &str = "bolt-list-secret-0000005";

const TOKENS: &str = r#"
[[tokens]]
name = "ops"
secret_env = "OPS"
access = "admin"

[[tokens]]
name = "acme-read"
secret_env = "ACME_READ"
access = "read"
match = { tenant = "acme" }

[[tokens]]
name = "acme-ingest"
secret_env = "ACME_INGEST"
access = "ingest"
match = { tenant = "acme" }

[[tokens]]
name = "acme-admin"
secret_env = "ACME_ADMIN"
access = "admin"
match = { tenant = "acme" }

[[tokens]]
name = "bolt-list"
secret_env = "BOLT_LIST"
access = "admin"
sessions = ["bolt-1"]
"#;

fn env(name: &str) -> Option<String> {
    Some(
        match name {
            "OPS" => OPS,
            "ACME_READ" => ACME_READ,
            "ACME_INGEST" => ACME_INGEST,
            "ACME_ADMIN" => ACME_ADMIN,
            "BOLT_LIST" => BOLT_LIST,
            _ => return None,
        }
        .to_owned(),
    )
}

async fn spawn_tenants(toml_text: &str) -> TestApp {
    let loaded = Settings::from_toml(toml_text, env).expect("tokens load");
    spawn_with(move |s| s.tokens = loaded.tokens).await
}

async fn get_as(app: &TestApp, token: &str, path: &str) -> (u16, String) {
    let r = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn send_as(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: &Value,
) -> (u16, Value) {
    let r = app
        .client
        .request(method, app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post_as(app: &TestApp, token: &str, path: &str, body: &Value) -> (u16, Value) {
    send_as(app, token, reqwest::Method::POST, path, body).await
}

/// acme-1 and acme-2 (tenant acme, acme-2 logged out), bolt-1 (tenant
/// bolt, logged out), lone-1 (no tenant), written by the unscoped token.
async fn fleet(app: &TestApp) {
    let labels =
        |s: &str, t: &str| json!({"session": s, "type": "labels", "labels": {"tenant": t}});
    let state = |s: &str, st: &str| json!({"session": s, "type": "state", "state": st});
    let batch = json!([
        labels("acme-1", "acme"),
        labels("acme-2", "acme"),
        labels("bolt-1", "bolt"),
        state("acme-1", "connected"),
        state("acme-2", "connected"),
        state("bolt-1", "connected"),
        state("lone-1", "connected"),
        {"session": "acme-1", "type": "heartbeat"},
        {"session": "lone-1", "type": "heartbeat"},
        {"session": "acme-2", "type": "state", "state": "logged_out", "reason": 401},
        {"session": "bolt-1", "type": "state", "state": "logged_out", "reason": 401},
    ]);
    let (code, answer) = post_as(app, OPS, "/v1/events", &batch).await;
    assert_eq!(code, 200, "{answer}");
}

/// What no answer to an acme token may hold.
const OTHERS: [&str; 3] = ["bolt-1", "lone-1", "bolt"];

fn concrete(path: &str, id: &str) -> String {
    path.replace("{id}", id)
        .replace("{label}", "tenant")
        .replace("{value}", "bolt")
        .replace("{group}", "no-such-group")
}

#[tokio::test]
async fn a_scoped_token_sees_only_its_sessions_on_every_read_route() {
    let app = spawn_tenants(TOKENS).await;
    fleet(&app).await;
    for r in table().into_iter().filter(|r| r.method == "GET") {
        if r.path.contains("{id}") {
            // Another tenant's session answers exactly as one never seen.
            let (s_out, out) = get_as(&app, ACME_READ, &concrete(r.path, "bolt-1")).await;
            let (s_unknown, unknown) = get_as(&app, ACME_READ, &concrete(r.path, "zz-never")).await;
            assert_eq!(s_out, s_unknown, "{}: {out} / {unknown}", r.path);
            assert_eq!(out.replace("bolt-1", "zz-never"), unknown, "{}", r.path);
            let (s_own, own) = get_as(&app, ACME_READ, &concrete(r.path, "acme-1")).await;
            // (503: a health answer for a critical session.)
            assert!(s_own == 200 || s_own == 503, "{}: {s_own} {own}", r.path);
            for other in OTHERS {
                assert!(!own.contains(other), "{} mentions {other}: {own}", r.path);
            }
            continue;
        }
        let path = concrete(r.path, "");
        let (status, body) = get_as(&app, ACME_READ, &path).await;
        for other in OTHERS {
            assert!(!body.contains(other), "{path} mentions {other}: {body}");
        }
        match (r.access, r.path) {
            (Access::Admin, _) => assert_eq!(status, 403, "{path}: a read token: {body}"),
            (_, "/history/fleet") => assert_eq!(status, 403, "{path}: {body}"),
            // The Cloud API's handshake: no verify token is configured here.
            (_, "/v1/webhooks/whatsapp-cloud") => assert_eq!(status, 403, "{path}: {body}"),
            // Probe groups: none is configured here.
            (_, "/health/{group}") => assert_eq!(status, 404, "{path}: {body}"),
            // The thresholds are the config's, not a session's.
            (_, p) if p.ends_with("/thresholds") => assert_eq!(status, 200, "{path}: {body}"),
            // The default session is no acme session.
            (_, p) if p.starts_with("/session/") || p.starts_with("/api/whatsapp/session/") => {
                assert_eq!(status, 404, "{path}: {body}")
            }
            _ => assert!(status == 200 || status == 503, "{path}: {status} {body}"),
        }
    }
    // Lists and counts hold the tenant's sessions only.
    let (_, list) = get_as(&app, ACME_READ, "/sessions").await;
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["total"], 2, "{list}");
    // Its own alert shows once the evaluator (its own thread) has judged
    // the batch: a bounded wait, and never another tenant's meanwhile.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, alerts) = get_as(&app, ACME_READ, "/alerts").await;
        assert!(!alerts.contains("bolt-1"), "{alerts}");
        if alerts.contains("acme-2") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "acme-2's alert never shows: {alerts}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, metrics) = get_as(&app, ACME_READ, "/metrics").await;
    assert!(
        metrics.contains(r#"wa_session_connected{session="acme-1"} 1"#),
        "{metrics}"
    );
    assert!(
        !metrics.contains("wapulse_http_requests_total"),
        "no fleet series"
    );
    let (_, health) = get_as(&app, ACME_READ, "/api/health").await;
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["sessions"]["total"], 2, "{health}");
    // The same routes unscoped: every session.
    let (_, all) = get_as(&app, OPS, "/sessions").await;
    assert!(all.contains("bolt-1") && all.contains("lone-1"), "{all}");
    // A token scoped to a list: /session/* answers for its first session.
    let (code, own) = get_as(&app, BOLT_LIST, "/session/observe").await;
    assert_eq!(code, 200, "{own}");
    assert!(own.contains("bolt-1") && !own.contains("acme"), "{own}");
    // Named tokens close the routes that had no token of their own.
    assert_eq!(app.get("/sessions").await.status(), 401);
    assert_eq!(
        app.get("/session/health").await.status(),
        200,
        "open stays open"
    );
}

/// The first `tick` of `/ui/live` for this request.
async fn first_tick(app: &TestApp, token: &str) -> Value {
    let mut r = app
        .client
        .get(app.url("/ui/live"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut buf = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no tick: {buf}");
        let chunk = tokio::time::timeout(Duration::from_secs(5), r.chunk())
            .await
            .expect("a tick within 5 s")
            .unwrap()
            .expect("the stream goes on");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(data) = buf
            .split("event: tick\ndata: ")
            .nth(1)
            .and_then(|rest| rest.split('\n').next())
            .filter(|_| buf.ends_with("\n\n"))
        {
            return serde_json::from_str(data).unwrap();
        }
    }
}

#[tokio::test]
async fn a_tenants_dashboard_and_live_ticks_show_its_own_sessions_only() {
    let app = spawn_tenants(TOKENS).await;
    fleet(&app).await;
    for page in [
        "/",
        "/ui/sessions",
        "/ui/sessions?status=critical",
        "/ui/sessions?code=LOGGED_OUT",
        "/ui/alerts",
        "/ui/availability?by=tenant",
        "/ui/sessions/acme-1",
    ] {
        let (code, html) = get_as(&app, ACME_READ, page).await;
        assert_eq!(code, 200, "{page}: {html}");
        for other in OTHERS {
            assert!(!html.contains(other), "{page} mentions {other}");
        }
        assert!(html.contains("tenant=acme"), "{page} says whose it is");
    }
    let (_, overview) = get_as(&app, ACME_READ, "/").await;
    assert!(
        overview.contains(r#"data-live="sessions">2<"#),
        "{overview}"
    );
    assert!(
        !overview.contains("wapulse itself"),
        "no part of wapulse's own"
    );
    let (_, list) = get_as(&app, ACME_READ, "/ui/sessions?code=LOGGED_OUT").await;
    assert!(
        list.contains("acme-2") && !list.contains("acme-1"),
        "{list}"
    );
    // Another tenant's session page is a session never seen.
    let (code, other) = get_as(&app, ACME_READ, "/ui/sessions/bolt-1").await;
    let (_, never) = get_as(&app, ACME_READ, "/ui/sessions/zz-never").await;
    assert_eq!(code, 404);
    let strip = |t: &str| t.split("<main").nth(1).unwrap_or_default().to_owned();
    assert_eq!(strip(&other).replace("bolt-1", "zz-never"), strip(&never));
    // The live ticks count its sessions only.
    let tick = first_tick(&app, ACME_READ).await;
    assert_eq!(
        (tick["sessions"].clone(), tick["ingest"].clone()),
        (json!(2), json!(0)),
        "{tick}"
    );
    assert_eq!(
        first_tick(&app, OPS).await["sessions"],
        5,
        "the fleet and the default session"
    );

    // A login with the token: a cookie naming it, no secret in it.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = plain
        .post(app.url("/ui/login"))
        .form(&[("token", ACME_READ), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("wapulse_token=n~acme-read~") && !cookie.contains(ACME_READ));
    let pair = cookie.split(';').next().unwrap().to_owned();
    let page = plain
        .get(app.url("/ui/sessions"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("acme-1") && !html.contains("bolt-1"),
        "{html}"
    );

    // An operator views the pages as one tenant, and back.
    let r = plain
        .get(app.url("/ui/view?as=tenant:acme"))
        .bearer_auth(OPS)
        .send()
        .await
        .unwrap();
    let view = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let as_acme = plain
        .get(app.url("/"))
        .bearer_auth(OPS)
        .header("cookie", &view)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(as_acme.contains(r#"data-live="sessions">2<"#), "{as_acme}");
    assert!(as_acme.contains(r#"href="/ui/view""#), "it can be ended");
    // A bad choice is refused, naming it, and changes nothing.
    let bad = plain
        .get(app.url("/ui/view?as=no-colon"))
        .bearer_auth(OPS)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.headers().get("set-cookie").is_none());
    assert!(bad.text().await.unwrap().contains("label `no-colon`"));
    let (_, whole) = get_as(&app, OPS, "/").await;
    assert!(whole.contains(r#"data-live="sessions">5<"#), "{whole}");
}

#[tokio::test]
async fn a_scoped_token_writes_only_its_sessions_and_a_mixed_batch_is_refused_whole() {
    let app = spawn_tenants(TOKENS).await;
    fleet(&app).await;
    let before = app.state.model.snapshot().events();
    let beat = |s: &str| json!({"session": s, "type": "heartbeat"});
    let (code, e) = post_as(
        &app,
        ACME_INGEST,
        "/v1/events",
        &json!([beat("acme-1"), beat("bolt-1")]),
    )
    .await;
    assert_eq!(code, 403, "{e}");
    assert_eq!(
        (e["index"].clone(), e["field"].clone()),
        (json!(1), json!("session"))
    );
    assert!(e["error"].as_str().unwrap().contains("`bolt-1`"), "{e}");
    assert_eq!(
        app.state.model.snapshot().events(),
        before,
        "nothing of the batch applied"
    );
    // A session without the label is no tenant's.
    let (code, _) = post_as(&app, ACME_INGEST, "/v1/events", &json!([beat("lone-1")])).await;
    assert_eq!(code, 403);
    let total = |app: &TestApp| {
        let app_url = app.url("/sessions");
        let client = app.client.clone();
        async move {
            let r = client
                .get(app_url)
                .bearer_auth(ACME_READ)
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()["total"].clone()
        }
    };
    assert_eq!(total(&app).await, 2);
    // A new session is the tenant's from its first event.
    let (code, e) = post_as(&app, ACME_INGEST, "/v1/events", &json!([beat("acme-new")])).await;
    assert_eq!(code, 200, "{e}");
    let (_, o) = get_as(&app, ACME_READ, "/sessions/acme-new/observe").await;
    let o: Value = serde_json::from_str(&o).unwrap();
    assert_eq!(o["session"]["labels"]["tenant"], "acme", "{o}");
    // And in its tenant's list at once (the tenant's members are kept per
    // token, and a new session changes them).
    assert_eq!(total(&app).await, 3);
    // Moving a session out of the tenant is refused.
    let (code, e) = post_as(
        &app,
        ACME_INGEST,
        "/v1/events",
        &json!([{"session": "acme-1", "type": "labels", "labels": {"tenant": "bolt"}}]),
    )
    .await;
    assert_eq!((code, e["field"].clone()), (403, json!("labels")), "{e}");
    // The path form, and a gateway's webhook with the token in its URL.
    let (code, _) = post_as(
        &app,
        ACME_INGEST,
        "/v1/sessions/bolt-1/events",
        &json!([{"type": "heartbeat"}]),
    )
    .await;
    assert_eq!(code, 403);
    let waha = crate::gateways::waha("session.status.WORKING", "bolt-1", 5, "scoped");
    let r = app
        .client
        .post(app.url(&format!("/v1/webhooks/waha?token={ACME_INGEST}")))
        .json(&waha)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "{}", r.text().await.unwrap());
    // A read token writes nothing, and says why.
    let (code, e) = post_as(&app, ACME_READ, "/v1/events", &json!([beat("acme-1")])).await;
    assert_eq!(code, 403);
    assert!(e["error"].as_str().unwrap().contains("read access"), "{e}");
    // Another tenant's session cannot be retired either: it is unknown.
    let (code, _) = send_as(
        &app,
        ACME_ADMIN,
        reqwest::Method::DELETE,
        "/sessions/bolt-1",
        &json!({}),
    )
    .await;
    assert_eq!(code, 404);
    assert!(app.state.model.snapshot().get("bolt-1").is_some());
}

#[tokio::test]
async fn a_scoped_silence_mutes_only_its_tenant_and_every_admin_action_is_audited() {
    let app = spawn_tenants(TOKENS).await;
    fleet(&app).await;
    // A silence on a code alone, from acme's admin: acme's alert only.
    let silence = json!({
        "matchers": [{"name": "code", "value": "LOGGED_OUT"}],
        "endsAt": in_future(3600),
        "createdBy": "acme on-call",
        "comment": "re-pairing",
    });
    let (code, made) = post_as(&app, ACME_ADMIN, "/v1/silences", &silence).await;
    assert_eq!(code, 200, "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    let (acme, bolt) = loop {
        let (_, all) = get_as(&app, OPS, "/alerts?code=LOGGED_OUT").await;
        let all: Value = serde_json::from_str(&all).unwrap();
        let silenced = |s: &str| {
            all["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["session"] == s)
                .map(|a| a["silenced"].clone())
        };
        if let (Some(a), Some(b)) = (silenced("acme-2"), silenced("bolt-1"))
            && a == true
        {
            break (a, b);
        }
        assert!(Instant::now() < deadline, "acme-2 never silenced: {all}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((acme, bolt), (json!(true), json!(false)));
    // Its silences are its own: another scope neither sees nor ends them.
    let (_, listed) = get_as(&app, BOLT_LIST, "/v1/silences").await;
    assert!(!listed.contains(&id), "{listed}");
    let path = format!("/v1/silences/{id}");
    let (code, _) = send_as(&app, BOLT_LIST, reqwest::Method::DELETE, &path, &json!({})).await;
    assert_eq!(code, 404);
    let (code, _) = send_as(&app, ACME_ADMIN, reqwest::Method::DELETE, &path, &json!({})).await;
    assert_eq!(code, 200);
    let (code, _) = send_as(
        &app,
        OPS,
        reqwest::Method::DELETE,
        "/sessions/lone-1",
        &json!({}),
    )
    .await;
    assert_eq!(code, 200);
    // The audit log: who and when, newest first; a scoped admin reads its own.
    let (_, log) = get_as(&app, OPS, "/v1/audit").await;
    let log: Value = serde_json::from_str(&log).unwrap();
    let seen: Vec<String> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}:{}:{}",
                e["who"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["target"].as_str().unwrap()
            )
        })
        .collect();
    for want in [
        format!("acme-admin:silence.created:{id}"),
        format!("acme-admin:silence.expired:{id}"),
        "ops:session.retired:lone-1".to_owned(),
        "acme-admin:token.new_address:127.0.0.1".to_owned(),
    ] {
        assert!(seen.contains(&want), "{want} not in {seen:?}");
    }
    assert!(log["entries"][0]["at"].is_string());
    let (_, own) = get_as(&app, ACME_ADMIN, "/v1/audit").await;
    assert!(
        !own.contains("lone-1") && own.contains("silence.created"),
        "{own}"
    );
    // It survives a restart (the store, not memory).
    let data = app.stop().await;
    let loaded = Settings::from_toml(TOKENS, env).unwrap();
    let again = spawn_in(data, move |s| s.tokens = loaded.tokens).await;
    let (_, log) = get_as(&again, OPS, "/v1/audit").await;
    assert!(
        log.contains("ops") && log.contains("session.retired"),
        "{log}"
    );
}

#[tokio::test]
async fn a_rotated_secret_file_takes_over_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acme");
    std::fs::write(&file, "first-secret-of-acme\n").unwrap();
    let text = format!(
        "[[tokens]]\nname = \"acme\"\nsecret_file = \"{}\"\naccess = \"read\"\nmatch = {{ tenant = \"acme\" }}\n",
        file.display()
    );
    let app = spawn_tenants(&text).await;
    assert_eq!(
        get_as(&app, "first-secret-of-acme", "/sessions").await.0,
        200
    );
    std::fs::write(&file, "second-secret-of-acme\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while get_as(&app, "second-secret-of-acme", "/sessions").await.0 != 200 {
        assert!(Instant::now() < deadline, "the new secret was never taken");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        get_as(&app, "first-secret-of-acme", "/sessions").await.0,
        401,
        "the old secret is refused"
    );
}

#[tokio::test]
async fn no_answer_to_a_scoped_token_names_a_session_outside_its_scope() {
    // Random fleets and scopes (seeded: a failure replays): every read
    // route without an id, and every session's routes by id.
    let paths = [
        "/sessions",
        "/sessions?limit=3",
        "/alerts",
        "/alerts/history",
        "/metrics",
        "/metrics.json",
        "/availability?by=tenant",
        "/api/health",
        "/health",
        "/health/whatsapp",
    ];
    for seed in 1..=4u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let tenants = ["t0", "t1", "t2"];
        let ids: Vec<String> = (0..12).map(|i| format!("s{seed}x{i:02}q")).collect();
        let tenant_of: Vec<Option<&str>> = ids
            .iter()
            .map(|_| (rng.u8(..4) > 0).then(|| tenants[rng.usize(..3)]))
            .collect();
        let by_list = rng.bool();
        let scope_line = if by_list {
            let picked: Vec<String> = ids
                .iter()
                .filter(|_| rng.bool())
                .map(|s| format!("\"{s}\""))
                .collect();
            format!(
                "sessions = [{}]",
                if picked.is_empty() {
                    format!("\"{}\"", ids[0])
                } else {
                    picked.join(", ")
                }
            )
        } else {
            "match = { tenant = \"t1\" }".to_owned()
        };
        let text = format!(
            "{TOKENS}\n[[tokens]]\nname = \"probe\"\nsecret_env = \"ACME_READ\"\naccess = \"read\"\n{scope_line}\n"
        )
        .replace(
            "[[tokens]]\nname = \"acme-read\"\nsecret_env = \"ACME_READ\"\naccess = \"read\"\nmatch = { tenant = \"acme\" }\n",
            "",
        );
        let app = spawn_tenants(&text).await;
        let mut batch = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            if let Some(t) = tenant_of[i] {
                batch.push(json!({"session": id, "type": "labels", "labels": {"tenant": t}}));
            }
            batch.push(match rng.usize(..3) {
                0 => json!({"session": id, "type": "state", "state": "connected"}),
                1 => json!({"session": id, "type": "state", "state": "logged_out", "reason": 401}),
                _ => json!({"session": id, "type": "state", "state": "qr_required"}),
            });
        }
        let (code, e) = post_as(&app, OPS, "/v1/events", &Value::Array(batch)).await;
        assert_eq!(code, 200, "{e}");
        let listed = |i: usize| text.contains(&format!("\"{}\"", ids[i]));
        let in_scope = |i: usize| {
            if by_list {
                listed(i)
            } else {
                tenant_of[i] == Some("t1")
            }
        };
        let outside: Vec<&String> = ids
            .iter()
            .enumerate()
            .filter(|(i, _)| !in_scope(*i))
            .map(|(_, s)| s)
            .collect();
        let mut answers = Vec::new();
        for p in paths {
            answers.push((p.to_owned(), get_as(&app, ACME_READ, p).await));
        }
        for (i, id) in ids.iter().enumerate() {
            for p in [
                "observe",
                "alerts",
                "health",
                "history",
                "availability",
                "events",
            ] {
                let path = format!("/sessions/{id}/{p}");
                let (code, body) = get_as(&app, ACME_READ, &path).await;
                if !in_scope(i) {
                    assert_eq!(code, 404, "seed {seed}: {path}: {body}");
                }
                answers.push((path, (code, body)));
            }
        }
        for (path, (_, body)) in &answers {
            for id in &outside {
                if path.contains(id.as_str()) {
                    // Its own 404 names the id asked for, as for any unknown id.
                    continue;
                }
                assert!(
                    !body.contains(id.as_str()),
                    "seed {seed}: {path} names {id}: {body}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_status_page_shows_its_tenant_in_plain_words_and_nothing_else() {
    let app = spawn_with_status_pages().await;
    fleet(&app).await;
    // Not public: a token is needed, and a scope must cover the page.
    assert_eq!(app.get("/status/acme").await.status(), 401);
    let (code, page) = get_as(&app, ACME_READ, "/status/acme").await;
    assert_eq!(code, 200, "{page}");
    for want in [
        "acme-1",
        "acme-2",
        "operational",
        "down",
        "acme-2 was logged out of WhatsApp and must be linked again.",
        "Some connections down",
    ] {
        assert!(page.contains(want), "{want}: {page}");
    }
    // Nothing of another tenant, no label, no alert text, no script.
    for never in ["bolt", "lone-1", "tenant", "LOGGED_OUT", "401", "<script"] {
        assert!(!page.contains(never), "{never}: {page}");
    }
    assert_eq!(get_as(&app, BOLT_LIST, "/status/acme").await.0, 404);
    assert_eq!(
        get_as(&app, ACME_READ, "/status/bolt").await,
        get_as(&app, ACME_READ, "/status/nobody").await,
        "another tenant's page is no page"
    );
    assert_eq!(get_as(&app, OPS, "/status/bolt").await.0, 200);
    let r = app
        .client
        .get(app.url("/status/acme"))
        .bearer_auth(OPS)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "private, max-age=30");

    // Public: anyone, cacheable by anyone.
    let loaded = Settings::from_toml(
        &format!("{TOKENS}\n[status_pages]\nby = \"tenant\"\npublic = true\n"),
        env,
    )
    .unwrap();
    let open = spawn_with(move |s| {
        s.tokens = loaded.tokens;
        s.status_pages = loaded.status_pages;
    })
    .await;
    fleet(&open).await;
    let r = open.get("/status/acme").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "public, max-age=30");
    assert!(r.text().await.unwrap().contains("acme-1"));
}

#[tokio::test]
async fn a_tenants_alerts_reach_its_own_receiver_with_a_link_to_re_pair() {
    let acme_slack = FakeReceiver::start(Kind::Slack).await;
    let ops = FakeReceiver::start(Kind::Webhook(None)).await;
    let app = spawn_alerting(&format!(
        r#"
        [alerting]
        for = "0s"
        group_wait = "0s"
        repair_url = "https://panel.example/{{tenant}}/sessions/{{session}}/pair"
        {}{}
        [[routes]]
        receiver = "acme-slack"
        match = {{ tenant = "acme" }}
        [[routes]]
        receiver = "ops"
        "#,
        receiver(
            "acme-slack",
            "slack",
            &acme_slack.url("/services/T0/B0/X"),
            ""
        ),
        webhook("ops", &ops.url("/"))
    ))
    .await;
    app.ingest(json!([
        labelled("acme-1", json!({"tenant": "acme"})),
        labelled("bolt-1", json!({"tenant": "bolt"})),
        logged_out("acme-1"),
        logged_out("bolt-1"),
    ]))
    .await;
    // acme's Slack: acme's session only, with where to re-pair it.
    let got = acme_slack.wait_for("acme's message", 1).await;
    let said = got[0].body.to_string();
    assert!(said.contains("acme-1"), "{said}");
    assert!(
        said.contains("https://panel.example/acme/sessions/acme-1/pair"),
        "{said}"
    );
    assert!(!said.contains("bolt"), "{said}");
    // Everyone else's goes to the operators, with its own link.
    let got = ops.wait_for("the operators' message", 1).await;
    let firing = &got[0].body["firing"];
    assert_eq!(firing[0]["session"], "bolt-1", "{firing}");
    assert!(
        firing[0]["action"]
            .as_str()
            .unwrap()
            .ends_with("Re-pair it: https://panel.example/bolt/sessions/bolt-1/pair"),
        "{firing}"
    );
    // A bad template is refused at start, naming the key.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.toml");
    std::fs::write(&path, "[alerting]\nrepair_url = \"https://x/{no such}\"\n").unwrap();
    let err = Settings::load(Some(&path), |_| None).unwrap_err();
    assert!(format!("{err:#}").contains("repair_url"), "{err:#}");
}

#[tokio::test]
async fn a_tenants_mass_failure_reaches_its_receiver_as_its_own_incident() {
    // With incident_by = ["tenant"], a mass failure is one incident per
    // tenant, carrying its tenant label: the tenant's route takes it.
    let acme = FakeReceiver::start(Kind::Webhook(None)).await;
    let ops = FakeReceiver::start(Kind::Webhook(None)).await;
    let app = spawn_alerting(&format!(
        r#"
        [alerting]
        for = "0s"
        group_wait = "0s"
        incident_for = "0s"
        incident_by = ["tenant"]
        {}{}
        [[routes]]
        receiver = "acme"
        match = {{ tenant = "acme" }}
        [[routes]]
        receiver = "ops"
        "#,
        webhook("acme", &acme.url("/")),
        webhook("ops", &ops.url("/"))
    ))
    .await;
    let mut up = Vec::new();
    for i in 0..12 {
        for t in ["acme", "bolt"] {
            let id = format!("{t}-{i:02}");
            up.push(labelled(&id, json!({"tenant": t})));
            up.push(connected(&id));
        }
    }
    app.ingest(Value::Array(up)).await;
    let down: Vec<Value> = (0..12)
        .map(|i| logged_out(&format!("acme-{i:02}")))
        .collect();
    app.ingest(Value::Array(down)).await;
    let got = acme
        .wait_until("acme's incident", WAIT, |r| {
            r.iter()
                .any(|x| x.body["groupLabels"]["code"] == "FLEET_INCIDENT")
        })
        .await;
    let incident = got
        .iter()
        .find(|x| x.body["groupLabels"]["code"] == "FLEET_INCIDENT")
        .unwrap();
    assert_eq!(incident.body["firing"][0]["labels"]["tenant"], "acme");
    let all: String = got.iter().map(|x| x.body.to_string()).collect();
    assert!(!all.contains("bolt"), "{all}");
    // Its own incident shows to the tenant; another tenant's never does.
    let state = &app.state;
    let names = |scope: wapulse_core::Scope| -> Vec<String> {
        let caller = Caller::named(Named::viewing(scope));
        state
            .alerting
            .snapshot()
            .active
            .iter()
            .filter(|a| caller.sees_alert(a))
            .map(|a| format!("{}{}", a.code, a.session))
            .collect()
    };
    let tenant = |t: &str| wapulse_core::Scope::Labels([("tenant".into(), t.into())].into());
    assert!(names(tenant("acme")).contains(&"FLEET_INCIDENT".to_owned()));
    assert!(
        !names(tenant("bolt"))
            .iter()
            .any(|n| n.starts_with("FLEET_INCIDENT"))
    );
    let listed =
        wapulse_core::Scope::Sessions([wapulse_core::SessionId::parse("acme-00").unwrap()].into());
    assert!(
        !names(listed)
            .iter()
            .any(|n| n.starts_with("FLEET_INCIDENT"))
    );
}

/// The tokens, and status pages by tenant behind a read token.
async fn spawn_with_status_pages() -> TestApp {
    let text = format!("{TOKENS}\n[status_pages]\nby = \"tenant\"\n");
    let loaded = Settings::from_toml(&text, env).expect("config loads");
    spawn_with(move |s| {
        s.tokens = loaded.tokens;
        s.status_pages = loaded.status_pages;
    })
    .await
}

/// Waits (bounded) until `path`, read with `token`, satisfies `done`.
async fn until_as(app: &TestApp, token: &str, path: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = get_as(app, token, path).await;
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{path}: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A tenant that takes an id another tenant's retired session had sees
/// that session's new life only: not the old journal, states, hours,
/// availability or alert transitions, on the API or the dashboard. The
/// operator still sees the id's whole past.
#[tokio::test]
async fn a_retired_id_taken_by_another_tenant_shows_it_nothing_of_the_life_before() {
    let app = spawn_with_status_pages().await;
    let ago = |hours: u64| {
        wapulse::clock::now()
            .minus(wapulse_core::DurationMs::from_hours(hours))
            .to_rfc3339()
    };
    // bolt's shop-1: up three hours ago, logged out two hours ago, with
    // its traffic; then retired by the operator.
    let bolt = json!([
        {"session": "shop-1", "type": "labels", "labels": {"tenant": "bolt"}, "at": ago(3)},
        {"session": "shop-1", "type": "state", "state": "connected", "at": ago(3)},
        {"session": "shop-1", "type": "message", "direction": "inbound", "count": 40, "at": ago(3)},
        {"session": "shop-1", "type": "state", "state": "logged_out", "reason": "bolt-private-reason", "at": ago(2)},
    ]);
    let (code, answer) = post_as(&app, OPS, "/v1/events", &bolt).await;
    assert_eq!(code, 200, "{answer}");
    until_as(&app, OPS, "/alerts/history", |b| b.contains("shop-1")).await;
    let (code, answer) = send_as(
        &app,
        OPS,
        reqwest::Method::DELETE,
        "/sessions/shop-1",
        &Value::Null,
    )
    .await;
    assert_eq!(code, 200, "{answer}");
    until_as(&app, OPS, "/alerts/history", |b| b.contains("retired")).await;
    // acme's gateway takes the id: a new session, acme's (and shop-2,
    // logged out in the same batch: two of acme's transitions side by
    // side in the alert history).
    let acme = json!([
        {"session": "shop-1", "type": "state", "state": "connected"},
        {"session": "shop-1", "type": "state", "state": "logged_out", "reason": "acme-own-reason"},
        {"session": "shop-2", "type": "state", "state": "logged_out"},
    ]);
    let (code, answer) = post_as(&app, ACME_INGEST, "/v1/events", &acme).await;
    assert_eq!(code, 200, "{answer}");
    let past = ["bolt", "private", r#""type":"retire""#];
    let clean = |path: &str, body: &str| {
        for word in past {
            assert!(
                !body.contains(word),
                "{path} shows the life before ({word}): {body}"
            );
        }
    };

    // The journal: acme's events (its label, its two states), nothing
    // before.
    let (code, events) = get_as(&app, ACME_READ, "/sessions/shop-1/events").await;
    assert_eq!(code, 200, "{events}");
    clean("events", &events);
    let events: Value = serde_json::from_str(&events).unwrap();
    assert_eq!(events["count"], 3, "{events}");
    assert_eq!(events["events"][0]["reason"], "acme-own-reason");
    let (_, all) = get_as(&app, OPS, "/sessions/shop-1/events").await;
    assert!(
        all.contains("bolt-private-reason") && all.contains("acme-own-reason"),
        "{all}"
    );

    // Availability and history: observed from acme's first event.
    let observed = |body: &str| {
        let v: Value = serde_json::from_str(body).unwrap();
        v["observedMs"].as_u64().unwrap_or_else(|| panic!("{v}"))
    };
    let (_, mine) = get_as(&app, ACME_READ, "/sessions/shop-1/availability?window=24h").await;
    clean("availability", &mine);
    assert!(observed(&mine) < 600_000, "{mine}");
    let (_, whole) = get_as(&app, OPS, "/sessions/shop-1/availability?window=24h").await;
    assert!(observed(&whole) >= 3_600_000, "{whole}");
    // Ranked with its tenant: its own life (down since it began), not
    // bolt's hour up in three.
    let path = "/availability?by=tenant&window=24h&below=1";
    let (code, ranked) = get_as(&app, ACME_READ, path).await;
    assert_eq!(code, 200, "{ranked}");
    clean("availability by tenant", &ranked);
    let ranked: Value = serde_json::from_str(&ranked).unwrap();
    let shop = ranked["below"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["session"] == "shop-1")
        .cloned();
    assert!(
        shop.is_none_or(|b| b["availability"].as_f64().unwrap() < 0.01),
        "{ranked}"
    );
    let inbound = |body: &str| -> u64 {
        let v: Value = serde_json::from_str(body).unwrap();
        v["points"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|p| p["messagesIn"].as_u64().unwrap_or(0))
            .sum()
    };
    // (The hours are written off the ingest path: read once they are.)
    let path = "/sessions/shop-1/history?step=1h";
    let whole = until_as(&app, OPS, path, |b| inbound(b) == 40).await;
    let (code, mine) = get_as(&app, ACME_READ, path).await;
    assert_eq!(code, 200, "{mine}");
    assert_eq!(inbound(&mine), 0, "bolt's messages in acme's hours: {mine}");
    assert_eq!(inbound(&whole), 40);

    // Alert transitions: acme's own LOGGED_OUT, none of bolt's.
    let mine = until_as(&app, ACME_READ, "/alerts/history", |b| {
        b.contains("shop-1") && b.contains("shop-2")
    })
    .await;
    clean("alerts/history", &mine);
    let (_, whole) = get_as(&app, OPS, "/alerts/history").await;
    let of_shop = |body: &str| {
        let v: Value = serde_json::from_str(body).unwrap();
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e.to_string().contains("shop-1"))
            .count()
    };
    assert!(of_shop(&whole) > of_shop(&mine), "{whole} / {mine}");
    // Paged a row at a time, a tenant's history is the same rows, none
    // skipped (a page that ends mid-scan goes on from its last row).
    let seqs = |v: &Value| -> Vec<Value> {
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].clone())
            .collect()
    };
    let (_, all) = get_as(&app, ACME_READ, "/alerts/history?limit=1000").await;
    let want = seqs(&serde_json::from_str(&all).unwrap());
    assert!(want.len() >= 2, "{all}");
    let mut paged = Vec::new();
    let mut before = String::new();
    loop {
        let (_, page) = get_as(&app, ACME_READ, &format!("/alerts/history?limit=1{before}")).await;
        let page: Value = serde_json::from_str(&page).unwrap();
        paged.extend(seqs(&page));
        match page["next"].as_i64() {
            Some(n) => before = format!("&before={n}"),
            None => break,
        }
        assert!(paged.len() <= want.len(), "{paged:?} / {want:?}");
    }
    assert_eq!(paged, want);

    // The dashboard's session page and availability ranking.
    let (code, page) = get_as(&app, ACME_READ, "/ui/sessions/shop-1").await;
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("acme-own-reason"), "{page}");
    clean("/ui/sessions/shop-1", &page);
    let (_, page) = get_as(&app, OPS, "/ui/sessions/shop-1").await;
    assert!(
        page.contains("bolt-private-reason"),
        "the operator sees it all"
    );
    // Availability shown anywhere for acme (whose sessions have been down
    // all their lives): never about a third, bolt's hour up in three, which
    // the operator's whole-past page does show (a little under a third as
    // acme's down time since adds to it).
    let bolts = |page: &str| {
        percents(page)
            .into_iter()
            .any(|p| (30.0..34.0).contains(&p))
    };
    assert!(bolts(&page), "{page}");
    for path in [
        "/ui/sessions/shop-1",
        "/ui/availability?window=24h",
        "/status/acme",
        "/badge/by/tenant/acme/availability.svg?window=24h",
    ] {
        let (code, page) = get_as(&app, ACME_READ, path).await;
        assert_eq!(code, 200, "{path}: {page}");
        assert!(!percents(&page).is_empty(), "{path}: {page}");
        assert!(!bolts(&page), "{path} counts bolt's life: {page}");
    }
}

/// Every percentage a page shows (`12.5 %` or `12.5%`).
fn percents(page: &str) -> Vec<f64> {
    page.match_indices('%')
        .filter_map(|(i, _)| {
            let before = page[..i].trim_end();
            let start = before
                .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
                .map_or(0, |j| j + 1);
            before[start..].parse().ok()
        })
        .collect()
}
