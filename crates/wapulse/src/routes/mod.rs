//! The HTTP API: one module per resource, one table of every route.
//!
//! - `table`: the route table ([`table()`]), the only list of API routes.
//! - here: the router built from it (auth, body limits, request metrics),
//!   composed with the dashboard's pages by `startup`.
//! - `fast`: `GET /session/health` in front of the router.
//! - `session/`: the seed's session JSON (health, observe, alerts, list,
//!   journal); `ingest`, `webhooks`: writes; `alerts`: alerts, history,
//!   silences; `audit`: the audit log; `health`: wapulse's own health and
//!   readiness; `metrics`:
//!   Prometheus text and `/metrics.json`; `about`: `/version`,
//!   `/openapi.json`; `error`: [`ApiError`].

mod about;
pub(crate) mod alerts;
mod audit;
mod badge;
mod error;
mod fast;
mod health;
mod history;
mod ingest;
mod metrics;
pub(crate) mod session;
mod table;
mod webhooks;

use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::Response;

use crate::app::Shared;
use crate::auth::{Access, Refusal};
use crate::tenancy::Caller;

pub use error::ApiError;
pub use fast::FastPath;
pub use ingest::parse_body;
pub use table::{Route, table};

/// The API alone: the router over [`table()`], with auth, request
/// metrics and body limits.
pub fn api_router(state: Shared) -> Router {
    router(state, Router::new())
}

/// The router over [`table()`], with auth and body limits, and `pages`
/// (the dashboard's routes, not in the table) merged in: one fallback and
/// one request-metrics layer over both.
pub fn router(state: Shared, pages: Router<Shared>) -> Router {
    let mut router = Router::new();
    for r in table() {
        let access = r.access;
        // Open routes need no check, and a layer per request costs (a boxed
        // clone of the inner service and a boxed future: measured ≈ 0.9 µs
        // of CPU per /session/health request). With scoped tokens they get
        // one that only finds out who asks (its answer keeps to its scope).
        let mut handler = match access {
            Access::Open if !state.keyring.has_scopes() => r.handler,
            Access::Open => r
                .handler
                .route_layer(middleware::from_fn_with_state(state.clone(), identify)),
            _ => r.handler.route_layer(middleware::from_fn_with_state(
                (state.clone(), access),
                authorize,
            )),
        };
        // Only writes read a body; the limit (an extension set per request)
        // is set where it is used.
        if r.method == Method::POST {
            handler = handler.layer(DefaultBodyLimit::max(state.settings.max_body_bytes));
        }
        router = router.route(r.path, handler);
    }
    router
        .merge(pages)
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            observe_request,
        ))
        .with_state(state)
}

async fn observe_request(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    // MatchedPath is an Arc<str>: cloning it allocates nothing.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = req.method().clone();
    let response = next.run(req).await;
    let t = &state.telemetry;
    t.http_requests
        .with_label_values(&[route, method.as_str(), response.status().as_str()])
        .inc();
    t.http_duration
        .with_label_values(&[route])
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn authorize(
    State((state, access)): State<(Shared, Access)>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    crate::auth::host_allowed(
        &state.settings,
        req.headers(),
        access.is_open(&state.settings),
    )
    .map_err(|refused| ApiError::Forbidden(refused.0))?;
    let caller = access
        .admit(&state.settings, &state.keyring, req.headers(), req.uri())
        .map_err(|refused| match refused {
            Refusal::Unauthorized(why) => ApiError::Unauthorized(why.0),
            Refusal::Forbidden(why) => ApiError::Forbidden(why),
        })?;
    Ok(enter(&state, caller, req, next).await)
}

/// An open route's layer while scoped tokens exist: it refuses nothing,
/// and finds out whose token (if any) asks, so that the answer keeps to its
/// scope.
async fn identify(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let caller = crate::auth::identify(&state.keyring, req.headers());
    enter(&state, caller, req, next).await
}

/// Runs the request as `caller` (an extension handlers read), recording a
/// named token's first request from an address in the audit log.
async fn enter(state: &Shared, caller: Caller, mut req: Request, next: Next) -> Response {
    if let Some(token) = &caller.token
        && let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>()
        && state.audit.first_time_from(&token.name, peer.ip())
    {
        let recorded = state
            .audit
            .record(
                crate::clock::now(),
                &token.name,
                "token.new_address",
                &peer.ip().to_string(),
                serde_json::json!({ "access": token.grant.as_str() }),
            )
            .await;
        if let Err(e) = recorded {
            tracing::error!(error = %e, token = %token.name, "cannot record a token's new address");
        }
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}
