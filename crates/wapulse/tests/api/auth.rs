//! Tokens on every protected route; open routes stay open.

use serde_json::json;

use crate::support::*;

fn concrete(path: &str) -> String {
    path.replace("{id}", "default")
        .replace("{label}", "tenant")
        .replace("{value}", "acme")
}

#[tokio::test]
async fn read_token_guards_every_read_route_and_leaves_health_open() {
    let app = spawn_with(|s| {
        s.read_token = secret("r3ad");
        s.metrics_token = secret("m3trics");
    })
    .await;
    for r in table().into_iter().filter(|r| r.method == "GET") {
        let path = concrete(r.path);
        let bare = app.get(&path).await.status().as_u16();
        let with = |token: &str| {
            app.client
                .get(app.url(&path))
                .header("authorization", format!("Bearer {token}"))
                .send()
        };
        match r.access {
            Access::Read => {
                assert_eq!(bare, 401, "{path} without token");
                assert_eq!(
                    with("wrong").await.unwrap().status(),
                    401,
                    "{path} wrong token"
                );
                assert_eq!(
                    with("r3ad").await.unwrap().status(),
                    200,
                    "{path} with READ_TOKEN"
                );
            }
            Access::Open => assert_ne!(bare, 401, "{path} must stay open"),
            Access::Metrics => {
                assert_eq!(bare, 401, "{path}");
                assert_eq!(
                    with("r3ad").await.unwrap().status(),
                    401,
                    "{path}: READ_TOKEN is not METRICS_TOKEN"
                );
                assert_eq!(with("m3trics").await.unwrap().status(), 200, "{path}");
            }
            Access::Ingest | Access::Webhook | Access::Signed => {
                unreachable!("ingest routes are POST")
            }
            // Neither ADMIN_TOKEN nor INGEST_TOKEN is set: open.
            Access::Admin => assert_eq!(bare, 200, "{path}: no admin or ingest token set"),
        }
    }
    let e = app.get_json("/session/observe", 401).await;
    assert!(e["error"].as_str().unwrap().contains("READ_TOKEN"), "{e}");
}

#[tokio::test]
async fn ingest_token_guards_writes() {
    let app = spawn_with(|s| s.ingest_token = secret("1ngest")).await;
    // Every webhook route refuses a missing or wrong token before it
    // reads the body, and takes the right one as a bearer or `?token=`.
    for r in table().into_iter().filter(|r| r.access == Access::Webhook) {
        let path = r.path.replace("{event}", "connection-update");
        let post = |path: String, token: Option<&str>| {
            let mut req = app.client.post(app.url(&path)).json(&json!({}));
            if let Some(t) = token {
                req = req.header("authorization", format!("Bearer {t}"));
            }
            req.send()
        };
        assert_eq!(
            post(path.clone(), None).await.unwrap().status(),
            401,
            "{path}"
        );
        assert_eq!(
            post(path.clone(), Some("nope")).await.unwrap().status(),
            401,
            "{path}"
        );
        // Authorized, the empty body is refused for what it is.
        assert_eq!(
            post(path.clone(), Some("1ngest")).await.unwrap().status(),
            400,
            "{path}"
        );
        let by_query = format!("{path}?token=1ngest");
        assert_eq!(post(by_query, None).await.unwrap().status(), 400, "{path}");
    }
    for r in table().into_iter().filter(|r| r.access == Access::Ingest) {
        let path = concrete(r.path);
        let post = |token: Option<&str>| {
            let mut req = app
                .client
                .post(app.url(&path))
                .json(&json!([{"type": "heartbeat"}]));
            if let Some(t) = token {
                req = req.header("authorization", format!("Bearer {t}"));
            }
            req.send()
        };
        assert_eq!(post(None).await.unwrap().status(), 401, "{path}");
        assert_eq!(post(Some("nope")).await.unwrap().status(), 401, "{path}");
        assert_eq!(post(Some("1ngest")).await.unwrap().status(), 200, "{path}");
    }
    let o = app.get_json("/session/observe", 200).await;
    assert_eq!(
        o["heartbeat"]["count"], 2,
        "only the authorised posts were applied"
    );
}

#[tokio::test]
async fn without_read_token_reads_are_open_and_metrics_json_is_closed() {
    let app = spawn_app().await;
    app.get_json("/session/observe", 200).await;
    let e = app.get_json("/metrics.json", 401).await;
    assert!(
        e["error"].as_str().unwrap().contains("METRICS_TOKEN"),
        "{e}"
    );
    let e = app.get_json("/metrics.json?token=anything", 401).await;
    assert!(e["error"].is_string());
}
