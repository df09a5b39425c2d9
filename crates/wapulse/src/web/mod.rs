//! The dashboard: what an on-call engineer opens first.
//!
//! Pages are rendered on the server from askama templates
//! (`crates/wapulse/templates/`, checked at compile time) over the same
//! model snapshot and alert snapshot the API reads, so every page works without
//! JavaScript; `static/app.js` only adds liveness (Server-Sent Events from
//! `/ui/live`, at most one tick a second, swapping in the page's `<main>`
//! when something changed) and the `/` shortcut to the search box. No
//! third-party asset, no build step: `cargo build` needs no Node.
//!
//! - `/`: the fleet at a glance (state × level grid, firing alerts and
//!   incidents first, probes, wapulse's own health).
//! - `/ui/sessions`: server-side filters in the URL, keyset paging.
//! - `/ui/sessions/{id}`: everything of `observe`, the state timeline
//!   (SVG from the journal), alerts, recent events, labels.
//! - `/ui/alerts`: firing, pending, silenced, incidents, history, and
//!   silences created and expired from the page (with the admin token).
//!
//! With `READ_TOKEN` set the pages ask for it once (`/ui/login`) and keep
//! it in an HttpOnly, SameSite=Strict cookie; it never appears in a URL.

pub mod charts;
mod live;
mod login;
mod pages;
pub mod timeline;
mod view;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};

use crate::app::Shared;

/// The dashboard's routes (HTML, not part of the API's route table);
/// `startup` merges them with the API's.
pub fn router() -> Router<Shared> {
    Router::new()
        .route("/", get(pages::overview))
        .route("/ui/sessions", get(pages::sessions))
        .route("/ui/sessions/{id}", get(pages::session))
        .route("/ui/alerts", get(pages::alerts))
        .route("/ui/availability", get(pages::availability))
        .route("/ui/silences", post(pages::create_silence))
        .route("/ui/silences/{id}/expire", post(pages::expire_silence))
        .route("/status/{value}", get(pages::status))
        .route("/ui/login", get(login::form).post(login::login))
        .route("/ui/logout", post(login::logout))
        .route("/ui/view", get(login::view))
        .route("/ui/live", get(live::events))
        .route("/ui/static/app.css", get(css))
        .route("/ui/static/app.js", get(js))
        .layer(axum::middleware::map_response(hardened))
        // Pages compress well (a 13 KB overview is under 2 KB gzipped).
        // The SSE stream is left alone: compression would buffer its ticks.
        .layer(CompressionLayer::new().compress_when(
            DefaultPredicate::new().and(NotForContentType::new("text/event-stream")),
        ))
}

/// What every page tells the browser: run only this site's own script and
/// style (no inline code, so injected markup cannot run), never be framed
/// (no clickjacking of the silence forms), never guess a content type, send
/// no referrer elsewhere.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

async fn hardened(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

const CSS: &str = include_str!("static/app.css");
const JS: &str = include_str!("static/app.js");

fn asset(body: &'static str, content_type: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
}

async fn css() -> impl IntoResponse {
    asset(CSS, "text/css; charset=utf-8")
}

async fn js() -> impl IntoResponse {
    asset(JS, "text/javascript; charset=utf-8")
}
