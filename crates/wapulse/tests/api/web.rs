//! The dashboard's pages, fragments and forms, checked against the model:
//! counts equal the API's, filters apply, hostile text renders as text,
//! the read token is asked for once and kept out of URLs, silences are
//! made and expired from the page. (Browser tests: web/browser.)

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn page(app: &TestApp, path: &str) -> (u16, String) {
    let r = app.get(path).await;
    let code = r.status().as_u16();
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    let body = r.text().await.unwrap();
    if code != 401 {
        assert!(ct.starts_with("text/html"), "{path}: {ct}");
    }
    (code, body)
}

/// The text of `<tag ... id="id">…</tag>` (first match), for counting rows.
fn rows_of(html: &str, table_id: &str) -> usize {
    let Some(start) = html.find(&format!("id=\"{table_id}\"")) else {
        return 0;
    };
    let rest = &html[start..];
    let end = rest.find("</table>").unwrap();
    rest[..end].matches("<tr>").count() - 1
}

/// The sum of the overview grid's cells (sessions judged by the
/// evaluator, by state and level).
fn grid_sum(html: &str) -> usize {
    html.split("aria-label=\"")
        .skip(1)
        .filter_map(|rest| {
            let label = &rest[..rest.find('"')?];
            label.rsplit(": ").next()?.parse::<usize>().ok()
        })
        .sum()
}

/// Polls until the evaluator (its own thread) has judged `n` sessions, as
/// the overview's grid shows, at most 10 s.
async fn judged(app: &TestApp, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, html) = page(app, "/").await;
        let sum = grid_sum(&html);
        if sum == n {
            return;
        }
        assert!(Instant::now() < deadline, "the grid holds {sum} of {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn fleet(app: &TestApp) {
    let mut events = vec![
        json!({"session": "ok-1", "type": "state", "state": "connected"}),
        json!({"session": "ok-1", "type": "heartbeat"}),
        json!({"session": "gone-1", "type": "state", "state": "connected", "at": ago(120)}),
        json!({"session": "gone-1", "type": "state", "state": "logged_out", "reason": 401}),
        json!({"session": "gone-2", "type": "state", "state": "logged_out", "reason": 403}),
        json!({"session": "qr-1", "type": "state", "state": "qr_required"}),
        json!({"session": "ok-1", "type": "labels", "labels": {"region": "eu-1", "note": "<script>window.__pwned=1</script>"}}),
    ];
    for i in 0..120 {
        events.push(
            json!({"session": format!("bulk-{i:03}"), "type": "state", "state": "connected"}),
        );
        events.push(json!({"session": format!("bulk-{i:03}"), "type": "heartbeat"}));
    }
    app.ingest(Value::Array(events)).await;
}

#[tokio::test]
async fn overview_counts_equal_the_api_and_every_cell_links_to_its_filter() {
    let app = spawn_app().await;
    fleet(&app).await;
    let total = app.get_json("/sessions", 200).await["total"]
        .as_u64()
        .unwrap();
    judged(&app, total as usize).await;
    let (code, html) = page(&app, "/").await;
    assert_eq!(code, 200);
    assert!(
        html.contains(&format!("data-live=\"sessions\">{total}<")),
        "{html}"
    );
    // The logged_out × critical cell: 2 sessions, linking to its filter,
    // and the filter lists exactly those.
    let cell = "href=\"/ui/sessions?state=logged_out&#38;status=critical\" aria-label=\"logged_out, critical: 2\"";
    assert!(html.contains(cell), "{html}");
    let (_, list) = page(&app, "/ui/sessions?state=logged_out&status=critical").await;
    assert_eq!(rows_of(&list, "sessions"), 2);
    assert!(list.contains(">gone-1<") && list.contains(">gone-2<"));
    assert!(list.contains("<strong id=\"total\">2</strong>"), "{list}");
    // Firing alerts come first, worst first, linking to their session.
    let alerts = html.find("Alerts and incidents").unwrap();
    let grid = html.find("Sessions by state and health").unwrap();
    assert!(alerts < grid);
    assert!(html[alerts..grid].contains("LOGGED_OUT"), "{html}");
    assert!(html[alerts..grid].contains("href=\"/ui/sessions/gone-1\""));
    // Every status shows an icon and a word, never color alone.
    assert!(html.contains("<span aria-hidden=\"true\">✖</span> critical"));
}

#[tokio::test]
async fn sessions_are_filtered_on_the_server_and_paged_by_key() {
    let app = spawn_app().await;
    fleet(&app).await;
    let total = app.get_json("/sessions", 200).await["total"]
        .as_u64()
        .unwrap();
    judged(&app, total as usize).await;
    // A page holds 50 rows; Next carries the filters and the last id.
    let (_, first) = page(&app, "/ui/sessions?q=bulk").await;
    assert_eq!(rows_of(&first, "sessions"), 50);
    assert!(first.contains("<strong id=\"total\">120</strong>"));
    let next = "/ui/sessions?q=bulk&#38;after=bulk-049";
    assert!(first.contains(next), "{first}");
    let (_, second) = page(&app, &next.replace("&#38;", "&")).await;
    assert_eq!(rows_of(&second, "sessions"), 50);
    assert!(second.contains(">bulk-050<") && !second.contains(">bulk-049<"));
    let (_, third) = page(&app, "/ui/sessions?q=bulk&after=bulk-099").await;
    assert_eq!(rows_of(&third, "sessions"), 20);
    assert!(!third.contains("rel=\"next\""));
    // Every filter: state, status, code, label, id.
    for (query, expected) in [
        ("state=qr_required", vec!["qr-1"]),
        ("status=critical", vec!["gone-1", "gone-2"]),
        ("code=LOGGED_OUT", vec!["gone-1", "gone-2"]),
        ("label=region:eu-1", vec!["ok-1"]),
        ("q=gone-2", vec!["gone-2"]),
    ] {
        let (code, html) = page(&app, &format!("/ui/sessions?{query}")).await;
        assert_eq!(code, 200, "{query}");
        assert_eq!(
            rows_of(&html, "sessions"),
            expected.len(),
            "{query}: {html}"
        );
        for id in expected {
            assert!(html.contains(&format!(">{id}<")), "{query}: {id}");
        }
    }
    // A bad filter is a 400 page naming it, with the form still there.
    let (code, html) = page(&app, "/ui/sessions?state=asleep").await;
    assert_eq!(code, 400);
    assert!(
        html.contains("state `asleep` is not a session state"),
        "{html}"
    );
    assert!(html.contains("<form class=\"filters\""));
    // A label filter is checked like the API's: a valid label name.
    let (code, html) = page(&app, "/ui/sessions?label=bad-name:x").await;
    assert_eq!(code, 400);
    assert!(html.contains("label `bad-name:x`"), "{html}");
}

#[tokio::test]
async fn hostile_labels_render_as_text() {
    let app = spawn_app().await;
    fleet(&app).await;
    for path in ["/ui/sessions?label=region:eu-1", "/ui/sessions/ok-1"] {
        let (_, html) = page(&app, path).await;
        assert!(!html.contains("<script>window.__pwned"), "{path}");
        assert!(
            html.contains("&lt;script&gt;window.__pwned=1&lt;/script&gt;")
                || html.contains("&#60;script&#62;window.__pwned=1&#60;/script&#62;"),
            "{path}: {html}"
        );
    }
}

#[tokio::test]
async fn a_session_page_shows_its_delivery_and_a_restriction_with_its_action() {
    let app = spawn_app().await;
    app.ingest(serde_json::json!([
        {"session": "sender", "type": "state", "state": "connected"},
        {"session": "sender", "type": "message", "direction": "outbound", "ids": ["a", "b", "c"]},
        {"session": "sender", "type": "ack", "message": "a", "status": "error", "code": "463"},
    ]))
    .await;
    let (code, html) = page(&app, "/ui/sessions/sender").await;
    assert_eq!(code, 200);
    assert!(html.contains("<h3>delivery</h3>"), "{html}");
    for row in [
        "<dt>pending</dt><dd>2</dd>",
        "<dt>failed</dt><dd>1</dd>",
        "<dt>restriction.kind</dt><dd>reachout_timelock</dd>",
        "<dt>errorsByCode.463</dt><dd>1</dd>",
    ] {
        assert!(html.contains(row), "{row} in {html}");
    }
    assert!(html.contains("ACCOUNT_RESTRICTED"), "{html}");
    assert!(html.contains("Do NOT re-pair"), "{html}");
}

#[tokio::test]
async fn a_session_page_shows_its_timeline_alerts_and_events() {
    let app = spawn_app().await;
    fleet(&app).await;
    let (code, html) = page(&app, "/ui/sessions/gone-1").await;
    assert_eq!(code, 200);
    // Connected for two minutes, then logged out: two bands with titles.
    assert!(html.contains("<rect class=\"band ok\""), "{html}");
    assert!(html.contains("<rect class=\"band critical\""), "{html}");
    assert!(html.contains("<title>connected for 2m"), "{html}");
    assert!(html.contains("LOGGED_OUT"));
    // Its lifecycle as the evaluator keeps it (a fact: firing at once).
    let deadline = Instant::now() + Duration::from_secs(10);
    let html = loop {
        let (_, html) = page(&app, "/ui/sessions/gone-1").await;
        if html.contains("<td>firing since") {
            break html;
        }
        assert!(Instant::now() < deadline, "{html}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        html.contains("Re-pair the device"),
        "the close code's action: {html}"
    );
    assert_eq!(rows_of(&html, "events"), 2);
    assert!(html.contains("reason=401"));
    // Everything of observe, by section.
    for section in [
        "<h3>session</h3>",
        "<h3>heartbeat</h3>",
        "<h3>reconnect</h3>",
    ] {
        assert!(html.contains(section), "{section}");
    }
    let (code, html) = page(&app, "/ui/sessions/nobody").await;
    assert_eq!(code, 404);
    assert!(html.contains("No session `nobody`"));
}

#[tokio::test]
async fn with_a_read_token_the_pages_ask_for_it_once_and_keep_it_out_of_urls() {
    let app = spawn_with(|s| s.read_token = secret("r3ad")).await;
    let client = no_redirects();
    let r = client.get(app.url("/ui/alerts")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui/login?next=/ui/alerts");
    let r = client.get(app.url("/ui/live")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // A wrong token: the form again, 401, no cookie.
    let r = client
        .post(app.url("/ui/login"))
        .form(&[("token", "nope"), ("next", "/ui/alerts")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    // The right one: an HttpOnly, SameSite=Strict cookie, and back to the page.
    let r = client
        .post(app.url("/ui/login"))
        .form(&[("token", "r3ad"), ("next", "/ui/alerts")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui/alerts");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    let r = client
        .get(app.url("/ui/alerts"))
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A login never sends anyone to another site.
    let r = client
        .post(app.url("/ui/login"))
        .form(&[("token", "r3ad"), ("next", "//evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/");
}

/// The review's open redirect: `next=/%09/evil.example` became
/// `Location: /\t/evil.example`, which browsers read as another host.
#[tokio::test]
async fn a_login_with_tabs_or_control_characters_in_next_stays_on_the_site() {
    let app = spawn_with(|s| s.read_token = secret("r3ad")).await;
    let client = no_redirects();
    for next in [
        "/\t/evil.example",
        "/\n/evil.example",
        "/\\/evil.example",
        "/ /x",
    ] {
        let r = client
            .post(app.url("/ui/login"))
            .form(&[("token", "r3ad"), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], "/", "{next:?}");
    }
    // The same through the form's own link: the page carries `/` on.
    let (_, html) = page(&app, "/ui/login?next=/%09/evil.example").await;
    assert!(!html.contains("evil.example"), "{html}");
}

#[tokio::test]
async fn silences_are_created_and_expired_from_the_page_with_the_admin_token() {
    let app = spawn_with(|s| s.admin_token = secret("adm1n")).await;
    let client = no_redirects();
    let form = |token: &'static str, duration: &'static str| {
        vec![
            ("name", "session"),
            ("value", "gone-1"),
            ("duration", duration),
            ("created_by", "oncall"),
            ("comment", "re-pairing"),
            ("token", token),
        ]
    };
    let silences = || list_silences(&app, "adm1n");
    let r = client
        .post(app.url("/ui/silences"))
        .form(&form("wrong", "2h"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("Wrong admin token"));
    let r = client
        .post(app.url("/ui/silences"))
        .form(&form("adm1n", "soon"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("Duration `soon`"));
    assert_eq!(silences().await["silences"].as_array().unwrap().len(), 0);
    let r = client
        .post(app.url("/ui/silences"))
        .form(&form("adm1n", "2h"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui/alerts?saved=created");
    let list = silences().await;
    let s = &list["silences"][0];
    assert_eq!(s["status"], "active", "{list}");
    assert_eq!(s["matchers"][0]["value"], "gone-1");
    let id = s["id"].as_str().unwrap().to_owned();
    let (_, html) = page(&app, "/ui/alerts?saved=created").await;
    assert!(html.contains("The silence was saved."));
    assert!(
        html.contains(&format!("action=\"/ui/silences/{id}/expire\"")),
        "{html}"
    );
    assert!(
        html.contains("session=&#34;gone-1&#34;") || html.contains("session=&quot;gone-1&quot;"),
        "{html}"
    );
    let expire = |token: &'static str| {
        let id = id.clone();
        let client = client.clone();
        let url = app.url(&format!("/ui/silences/{id}/expire"));
        async move {
            client
                .post(url)
                .form(&[("token", token)])
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(expire("wrong").await.status(), 401);
    assert_eq!(silences().await["silences"][0]["status"], "active");
    let r = expire("adm1n").await;
    assert_eq!(r.status(), 303);
    assert_eq!(silences().await["silences"][0]["status"], "expired");
}

#[tokio::test]
async fn the_live_stream_ticks_with_the_counts_and_assets_are_served() {
    let app = spawn_app().await;
    fleet(&app).await;
    let total = app.get_json("/sessions", 200).await["total"]
        .as_u64()
        .unwrap();
    let mut r = app.get("/ui/live").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), r.chunk())
            .await
            .expect("a tick within a second or so")
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.starts_with("event: tick\ndata: "), "{text}");
    let data: Value =
        serde_json::from_str(text.lines().nth(1).unwrap().trim_start_matches("data: ")).unwrap();
    assert_eq!(data["sessions"], total);
    // The events accepted so far, from which pages show the ingest rate.
    assert_eq!(data["ingest"], 247, "{data}");
    assert!(data["version"].as_str().is_some_and(|v| !v.is_empty()));
    for (path, ct) in [
        ("/ui/static/app.css", "text/css"),
        ("/ui/static/app.js", "text/javascript"),
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(ct)
        );
    }
}

#[tokio::test]
async fn the_alerts_page_stays_small_however_many_alerts_fire() {
    let app = spawn_app().await;
    let events: Vec<Value> = (0..130)
        .map(|i| json!({"session": format!("out-{i:03}"), "type": "state", "state": "logged_out", "reason": 401}))
        .collect();
    app.ingest(Value::Array(events)).await;
    // LOGGED_OUT is a fact: it fires at the evaluator's next pass.
    let deadline = Instant::now() + Duration::from_secs(10);
    let html = loop {
        let (_, html) = page(&app, "/ui/alerts").await;
        if html.contains("Firing <small>(130)</small>") {
            break html;
        }
        assert!(Instant::now() < deadline, "{html}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(html.contains("Showing the first 100 of 130"), "{html}");
    assert_eq!(html.matches(">LOGGED_OUT</code>").count(), 100);
}

#[tokio::test]
async fn pages_are_compressed_and_the_live_stream_is_not() {
    let app = spawn_app().await;
    for (path, gzip) in [
        ("/", true),
        ("/ui/static/app.css", true),
        ("/ui/live", false),
    ] {
        let r = app
            .client
            .get(app.url(path))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(
            r.headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap().to_owned()),
            gzip.then(|| "gzip".to_owned()),
            "{path}"
        );
    }
}

/// The review's finding: with no token set (the loopback default), a form
/// on another site posted to `/ui/silences` created a year-long silence
/// muting every page. A browser says where a form comes from.
#[tokio::test]
async fn a_form_posted_from_another_site_is_refused_and_silences_nothing() {
    let app = spawn_app().await;
    let client = no_redirects();
    let form = [
        ("name", "code"),
        ("value", ".*"),
        ("regex", "on"),
        ("duration", "8760h"),
        ("created_by", "attacker"),
        ("comment", "mute everything"),
    ];
    for from in [
        vec![
            ("sec-fetch-site", "cross-site"),
            ("origin", "http://evil.example"),
        ],
        vec![
            ("sec-fetch-site", "same-site"),
            ("origin", "http://127.0.0.1:9999"),
        ],
        // A browser without Sec-Fetch-Site still sends its Origin.
        vec![("origin", "http://evil.example")],
        vec![("origin", "null")],
    ] {
        let mut req = client.post(app.url("/ui/silences")).form(&form);
        for (k, v) in &from {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 403, "{from:?}");
        let r = client
            .post(app.url("/ui/silences/s1/expire"))
            .header("origin", "http://evil.example")
            .form(&[("token", "")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
    }
    assert_eq!(
        list_silences(&app, "").await["silences"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // The same form from the dashboard itself still works.
    let r = client
        .post(app.url("/ui/silences"))
        .header("sec-fetch-site", "same-origin")
        .header("origin", format!("http://{}", app.addr))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        list_silences(&app, "").await["silences"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// DNS rebinding: a page on another site makes its own name resolve to
/// 127.0.0.1 and reads what the browser fetches. While reads are open, a
/// request addressed to another name is refused; the open health routes
/// stay open.
#[tokio::test]
async fn while_reads_are_open_a_request_addressed_to_another_name_is_refused() {
    let app = spawn_app().await;
    let port = app.addr.port();
    let get = |path: &'static str, host: String| {
        let client = app.client.clone();
        let url = app.url(path);
        async move {
            let r = client.get(url).header("host", host).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    for path in [
        "/sessions",
        "/session/observe",
        "/metrics",
        "/",
        "/ui/sessions",
    ] {
        let (code, body) = get(path, format!("evil.example:{port}")).await;
        assert_eq!(code, 403, "{path}: {body}");
        assert!(body.contains("allowed_hosts"), "{path}: {body}");
        let (code, _) = get(path, format!("localhost:{port}")).await;
        assert_eq!(code, 200, "{path} by a loopback name");
    }
    assert_eq!(
        get("/session/health", format!("evil.example:{port}"))
            .await
            .0,
        200
    );
    assert_eq!(get("/healthz", format!("evil.example:{port}")).await.0, 200);

    // A name the operator allows; and with READ_TOKEN, nothing to steal.
    let app = spawn_with(|s| s.allowed_hosts = vec!["wapulse.internal".into()]).await;
    let r = app
        .client
        .get(app.url("/sessions"))
        .header("host", "wapulse.internal")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let app = spawn_with(|s| s.read_token = secret("r3ad")).await;
    let r = app
        .client
        .get(app.url("/sessions"))
        .header("host", "evil.example")
        .bearer_auth("r3ad")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// The review's findings on the pages: no CSP, framing allowed, no
/// `nosniff`; the login cookie held the raw token, had no `Secure` behind
/// https and never ended.
#[tokio::test]
async fn pages_are_hardened_and_the_login_cookie_is_a_session_not_the_token() {
    let app = spawn_with(|s| s.read_token = secret("r3ad-t0ken")).await;
    let client = no_redirects();
    for path in ["/ui/login", "/"] {
        let r = client.get(app.url(path)).send().await.unwrap();
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
    }
    let login = |proto: &'static str| {
        client
            .post(app.url("/ui/login"))
            .header("x-forwarded-proto", proto)
            .form(&[("token", "r3ad-t0ken"), ("next", "/ui/alerts")])
            .send()
    };
    let r = login("http").await.unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        !cookie.contains("r3ad-t0ken"),
        "the token is not in the cookie: {cookie}"
    );
    assert!(cookie.contains("Max-Age=43200"), "{cookie}");
    assert!(!cookie.contains("Secure"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_owned();
    let page = |cookie: String| {
        client
            .get(app.url("/ui/alerts"))
            .header("cookie", cookie)
            .send()
    };
    assert_eq!(page(pair).await.unwrap().status(), 200);
    // The raw token as a cookie, as before, no longer opens the pages.
    assert_eq!(
        page("wapulse_token=r3ad-t0ken".into())
            .await
            .unwrap()
            .status(),
        303
    );
    let r = login("https").await.unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
}

/// Writes too: with only READ_TOKEN set, ingest and silences need no
/// token, and a DNS-rebinding page (same origin to the browser) could post
/// JSON to them. Addressed to another name, they are refused.
#[tokio::test]
async fn a_route_that_needs_no_token_refuses_another_name_for_writes_too() {
    let app = spawn_with(|s| s.read_token = secret("r3ad")).await;
    let silence = json!({
        "matchers": [{"name": "code", "value": ".*", "isRegex": true}],
        "endsAt": in_future(3600), "createdBy": "rebind", "comment": "mute"
    });
    for (path, body) in [
        ("/v1/silences", silence.clone()),
        ("/v1/events", json!([{"session": "x", "type": "heartbeat"}])),
    ] {
        let r = app
            .client
            .post(app.url(path))
            .header("host", "evil.example")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    assert_eq!(
        list_silences(&app, "").await["silences"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // By a loopback name, as before.
    let (code, _) = app.post_to("/v1/silences", silence).await;
    assert_eq!(code, 200);
}
