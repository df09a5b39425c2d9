//! The HTTP surface: one module per resource, one table of every route.
//!
//! [`table`] is the single list of routes: the router is built from it and
//! `/openapi.json` is generated from it, so the description cannot drift
//! from what is served.

pub(crate) mod alerts;
mod error;
mod exposition;
mod fast;
mod ingest;
mod platform;
pub(crate) mod session;
mod webhooks;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Query, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{MethodRouter, delete, get, post};
use subtle::ConstantTimeEq;
use wapulse_core::Timestamp;

use crate::config::{Secret, Settings};
use crate::model::Model;
use crate::probes::Probes;
use crate::telemetry::Telemetry;

pub use error::ApiError;
pub use fast::FastPath;
pub use ingest::parse_body;

/// Shared by every handler.
pub struct AppState {
    /// Checked settings.
    pub settings: Settings,
    /// The session model.
    pub model: Model,
    /// Our own metrics.
    pub telemetry: Telemetry,
    /// Probes of the services around the sessions.
    pub probes: Probes,
    /// The alert evaluator and the notifiers.
    pub alerting: crate::alerting::Alerting,
    /// Low-priority threads that parse ingest batches.
    pub parser: crate::priority::ingest::Pool,
    /// Process start, for uptime.
    pub started: Instant,
    /// Process start, as a timestamp.
    pub started_at: Timestamp,
    /// Cluster mode: this replica's membership (none: embedded mode).
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

impl AppState {
    /// Takes a checked batch. Embedded mode: the model commits and applies
    /// it. Cluster mode: it is published to the stream and applied by
    /// every replica as it comes back; 503 while the stream is unreachable.
    pub async fn accept(
        &self,
        events: Vec<wapulse_core::Event>,
        received: Timestamp,
    ) -> Result<wapulse_core::BatchOutcome, ApiError> {
        match &self.cluster {
            Some(cluster) => cluster
                .publish_events(events, received)
                .await
                .map_err(|e| ApiError::Unavailable(e.to_string())),
            None => self
                .model
                .ingest(events, received)
                .await
                .map_err(|e| ApiError::Unavailable(e.to_string())),
        }
    }

    /// Saves a silence (new, changed or expired): through the stream in
    /// cluster mode, so every replica holds the same silences.
    pub async fn save_silence(&self, silence: wapulse_core::Silence) -> Result<(), ApiError> {
        match &self.cluster {
            Some(cluster) => cluster
                .publish_silence(&silence)
                .await
                .map_err(|e| ApiError::Unavailable(format!("the silence was not saved: {e}"))),
            None => self
                .alerting
                .put_silence(silence)
                .await
                .map_err(|e| ApiError::Unavailable(format!("the silence was not saved: {e}"))),
        }
    }
}

/// The handle handlers receive.
pub type Shared = Arc<AppState>;

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone: liveness, readiness and health status for load balancers.
    Open,
    /// `READ_TOKEN` when one is configured.
    Read,
    /// `METRICS_TOKEN`, always (401 when none is configured).
    Metrics,
    /// `INGEST_TOKEN` when one is configured.
    Ingest,
    /// `ADMIN_TOKEN`, else `INGEST_TOKEN`, when one is configured.
    Admin,
    /// `INGEST_TOKEN` when one is configured, as a bearer token, as
    /// `?token=` (a gateway's webhook URL) or in `gateways.token_header`.
    Webhook,
}

/// One route: what the router serves and what `/openapi.json` describes.
pub struct Route {
    /// Path in axum syntax (`/sessions/{id}/health`).
    pub path: &'static str,
    /// HTTP method.
    pub method: Method,
    /// One line for the description.
    pub summary: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Status codes it answers with, and what each means.
    pub responses: &'static [(u16, &'static str)],
    /// The response content type.
    pub produces: &'static str,
    /// The request body's schema in `/openapi.json` (`Events`, `Silence`).
    pub request: Option<&'static str>,
    handler: MethodRouter<Shared>,
}

const JSON: &str = "application/json";
const PROM: &str = "text/plain; version=0.0.4";
const TEXT: &str = "text/plain";

fn route(
    path: &'static str,
    summary: &'static str,
    access: Access,
    responses: &'static [(u16, &'static str)],
    produces: &'static str,
    handler: MethodRouter<Shared>,
) -> Route {
    let method = if path.ends_with("/events") && path.starts_with("/v1") {
        Method::POST
    } else {
        Method::GET
    };
    Route {
        path,
        request: (method == Method::POST).then_some("Events"),
        method,
        summary,
        access,
        responses,
        produces,
        handler,
    }
}

/// A route whose method is not implied by its path.
fn route_as(
    method: Method,
    request: Option<&'static str>,
    path: &'static str,
    summary: &'static str,
    access: Access,
    responses: &'static [(u16, &'static str)],
    handler: MethodRouter<Shared>,
) -> Route {
    Route {
        path,
        method,
        summary,
        access,
        responses,
        produces: JSON,
        request,
        handler,
    }
}

const OK: (u16, &str) = (200, "OK");
const UNAUTHORIZED: (u16, &str) = (401, "missing or wrong token");
const NOT_FOUND: (u16, &str) = (404, "unknown session");
const BAD_ID: (u16, &str) = (400, "malformed session id");

const WEBHOOK: &[(u16, &str)] = &[
    (
        200,
        "mapped to session events and applied (or a retry already applied)",
    ),
    (
        202,
        "a valid delivery of an event wapulse does not map: ignored, counted",
    ),
    (400, "malformed delivery; nothing applied"),
    (
        401,
        "missing or wrong token, or a bad X-Webhook-Hmac signature",
    ),
    (413, "body too large"),
    (415, "unsupported content type"),
    (
        503,
        "the store refused the write; nothing applied (Retry-After)",
    ),
];

/// Every route wapulse serves.
pub fn table() -> Vec<Route> {
    use Access::*;
    let health: &[(u16, &str)] = &[(200, "ok or warning"), (503, "critical")];
    let health_id: &[(u16, &str)] = &[(200, "ok or warning"), (503, "critical"), BAD_ID, NOT_FOUND];
    let read: &[(u16, &str)] = &[OK, UNAUTHORIZED];
    let read_id: &[(u16, &str)] = &[OK, BAD_ID, UNAUTHORIZED, NOT_FOUND];
    let ingest: &[(u16, &str)] = &[
        OK,
        (400, "invalid event; nothing applied"),
        UNAUTHORIZED,
        (
            409,
            "a labels event would leave a session with more than 16 labels; nothing applied",
        ),
        (413, "body too large"),
        (415, "unsupported content type"),
        (
            503,
            "the store refused the write; nothing applied (Retry-After)",
        ),
    ];
    vec![
        route(
            "/session/health",
            "Default session health (seed)",
            Open,
            health,
            JSON,
            get(session::health_default),
        ),
        route(
            "/session/observe",
            "Default session full observability (seed)",
            Read,
            read,
            JSON,
            get(session::observe_default),
        ),
        route(
            "/session/alerts",
            "Default session active alerts (seed)",
            Read,
            read,
            JSON,
            get(session::alerts_default),
        ),
        route(
            "/session/metrics",
            "Default session Prometheus metrics (seed)",
            Read,
            read,
            PROM,
            get(exposition::session_default),
        ),
        route(
            "/session/thresholds",
            "Alert thresholds in force",
            Read,
            read,
            JSON,
            get(session::thresholds),
        ),
        route(
            "/api/whatsapp/session/health",
            "Seed proxy path for /session/health",
            Open,
            health,
            JSON,
            get(session::health_default),
        ),
        route(
            "/api/whatsapp/session/observe",
            "Seed proxy path for /session/observe",
            Read,
            read,
            JSON,
            get(session::observe_default),
        ),
        route(
            "/api/whatsapp/session/alerts",
            "Seed proxy path for /session/alerts",
            Read,
            read,
            JSON,
            get(session::alerts_default),
        ),
        route(
            "/sessions",
            "List sessions (filter by status, state and label=name:value, paginated)",
            Read,
            &[OK, (400, "bad filter"), UNAUTHORIZED],
            JSON,
            get(session::list),
        ),
        route(
            "/sessions/{id}/health",
            "One session's health",
            Open,
            health_id,
            JSON,
            get(session::health),
        ),
        route(
            "/sessions/{id}/observe",
            "One session's full observability",
            Read,
            read_id,
            JSON,
            get(session::observe),
        ),
        route(
            "/sessions/{id}/alerts",
            "One session's active alerts",
            Read,
            read_id,
            JSON,
            get(session::alerts),
        ),
        route(
            "/sessions/{id}/metrics",
            "One session's Prometheus metrics",
            Read,
            read_id,
            PROM,
            get(exposition::session),
        ),
        route(
            "/sessions/{id}/thresholds",
            "Alert thresholds for one session",
            Read,
            read_id,
            JSON,
            get(session::thresholds_for),
        ),
        route(
            "/sessions/{id}/events",
            "One session's journal, newest first (?limit=&before=)",
            Read,
            read_id,
            JSON,
            get(session::history),
        ),
        route(
            "/v1/events",
            "Ingest session events (JSON array or NDJSON)",
            Ingest,
            ingest,
            JSON,
            post(ingest::events),
        ),
        route(
            "/v1/sessions/{id}/events",
            "Ingest events for one session",
            Ingest,
            ingest,
            JSON,
            post(ingest::session_events),
        ),
        route(
            "/alerts",
            "Pending and firing alerts and fleet incidents, worst first (?level=&code=&state=&session=&label=name:value&limit=&offset=)",
            Read,
            &[OK, (400, "bad filter"), UNAUTHORIZED],
            JSON,
            get(alerts::list),
        ),
        route(
            "/alerts/history",
            "Alert transitions and notifications, newest first (?limit=&before=)",
            Read,
            &[OK, (400, "bad limit"), UNAUTHORIZED],
            JSON,
            get(alerts::history),
        ),
        route_as(
            Method::POST,
            Some("Silence"),
            "/v1/silences",
            "Create (or, with id, replace) a silence",
            Admin,
            &[
                OK,
                (400, "invalid silence"),
                UNAUTHORIZED,
                (404, "no silence with that id"),
                (413, "body too large"),
                (415, "unsupported content type"),
                (503, "the store refused the write (Retry-After)"),
            ],
            post(alerts::create),
        ),
        route_as(
            Method::GET,
            None,
            "/v1/silences",
            "Every silence, with its status (active, pending, expired)",
            Admin,
            &[OK, UNAUTHORIZED],
            get(alerts::list_silences),
        ),
        route_as(
            Method::DELETE,
            None,
            "/v1/silences/{id}",
            "Expire a silence now",
            Admin,
            &[
                OK,
                UNAUTHORIZED,
                (404, "no silence with that id"),
                (503, "the store refused the write (Retry-After)"),
            ],
            delete(alerts::expire),
        ),
        route_as(
            Method::POST,
            Some("WahaWebhook"),
            "/v1/webhooks/waha",
            "A WAHA webhook delivery, as WAHA sends it (point WAHA's webhook URL here)",
            Webhook,
            WEBHOOK,
            post(webhooks::waha),
        ),
        route_as(
            Method::POST,
            Some("EvolutionWebhook"),
            "/v1/webhooks/evolution",
            "An Evolution API webhook delivery, as Evolution sends it",
            Webhook,
            WEBHOOK,
            post(webhooks::evolution),
        ),
        route_as(
            Method::POST,
            Some("EvolutionWebhookByEvent"),
            "/v1/webhooks/evolution/{event}",
            "An Evolution API delivery with \"webhook by events\" on (the event in the path)",
            Webhook,
            WEBHOOK,
            post(webhooks::evolution_by_event),
        ),
        route(
            "/healthz",
            "Liveness",
            Open,
            &[OK],
            JSON,
            get(platform::healthz),
        ),
        route(
            "/livez",
            "Kubernetes liveness",
            Open,
            &[OK],
            TEXT,
            get(platform::livez),
        ),
        route(
            "/readyz",
            "Readiness (?verbose, ?exclude=name)",
            Open,
            &[OK, (503, "not ready")],
            JSON,
            get(platform::readyz),
        ),
        route(
            "/api/health",
            "Full health: store and checks",
            Open,
            &[OK, (503, "unhealthy")],
            JSON,
            get(platform::api_health),
        ),
        route(
            "/health",
            "Service health with session count",
            Open,
            &[OK],
            JSON,
            get(platform::health),
        ),
        route(
            "/health/whatsapp",
            "WhatsApp sessions summary and probes of group whatsapp",
            Open,
            &[OK],
            JSON,
            get(platform::health_whatsapp),
        ),
        route(
            "/health/{group}",
            "Probes of one group from the config (e.g. workers, calls)",
            Open,
            &[
                OK,
                (503, "a probe of the group fails"),
                (404, "unknown group"),
            ],
            JSON,
            get(platform::health_group),
        ),
        route(
            "/version",
            "Build information",
            Open,
            &[OK],
            JSON,
            get(platform::version),
        ),
        route(
            "/warmup",
            "Runs every probe once and primes caches",
            Open,
            &[OK],
            JSON,
            get(platform::warmup),
        ),
        route(
            "/metrics.json",
            "Platform counters and gauges (seed)",
            Metrics,
            &[OK, UNAUTHORIZED],
            JSON,
            get(platform::metrics_json),
        ),
        route(
            "/metrics",
            "Everything, for Prometheus",
            Read,
            read,
            PROM,
            get(exposition::all),
        ),
        route(
            "/openapi.json",
            "This description",
            Open,
            &[OK],
            JSON,
            get(platform::openapi),
        ),
    ]
}

/// The router over [`table`], with auth, request metrics and body limits.
pub fn router(state: Shared) -> Router {
    let mut router = Router::new();
    for r in table() {
        let access = r.access;
        // Open routes need no check, and a layer per request costs (a boxed
        // clone of the inner service and a boxed future: measured ≈ 0.9 µs
        // of CPU per /session/health request).
        let mut handler = if access == Access::Open {
            r.handler
        } else {
            r.handler.route_layer(middleware::from_fn_with_state(
                (state.clone(), access),
                authorize,
            ))
        };
        // Only writes read a body; the limit (an extension set per request)
        // is set where it is used.
        if r.method == Method::POST {
            handler = handler.layer(DefaultBodyLimit::max(state.settings.max_body_bytes));
        }
        router = router.route(r.path, handler);
    }
    router
        .merge(crate::web::routes())
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
    let s = &state.settings;
    let headers = req.headers();
    let bearer = bearer(headers);
    match access {
        Access::Open => {}
        Access::Read => check(&[bearer], s.read_token.as_ref(), false, "READ_TOKEN")?,
        Access::Ingest => check(&[bearer], s.ingest_token.as_ref(), false, "INGEST_TOKEN")?,
        Access::Admin => match &s.admin_token {
            Some(admin) => check(&[bearer], Some(admin), false, "ADMIN_TOKEN")?,
            None => check(&[bearer], s.ingest_token.as_ref(), false, "INGEST_TOKEN")?,
        },
        Access::Webhook => {
            // Any of the places a gateway can put it: the bearer token,
            // the configured header, or `?token=` (Evolution's "webhook by
            // events" appends `/<event>` after the query, so the token
            // ends at a `/`).
            let header = s
                .gateways
                .token_header
                .as_ref()
                .and_then(|h| headers.get(h))
                .and_then(|v| v.to_str().ok());
            let query = query_token(&req);
            let query = query
                .as_deref()
                .map(|t| t.split('/').next().unwrap_or_default());
            check(
                &[bearer, header, query],
                s.ingest_token.as_ref(),
                false,
                "INGEST_TOKEN",
            )?
        }
        Access::Metrics => {
            let query = query_token(&req);
            check(
                &[bearer, query.as_deref()],
                s.metrics_token.as_ref(),
                true,
                "METRICS_TOKEN",
            )?
        }
    }
    Ok(next.run(req).await)
}

fn query_token(req: &Request) -> Option<String> {
    Query::<HashMap<String, String>>::try_from_uri(req.uri())
        .ok()
        .and_then(|mut q| q.0.remove("token"))
}

/// The `Authorization: Bearer` token, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Checks the tokens a request presents (bearer, `?token=`, a gateway's
/// header) in constant time: one must match. With `required`, a missing
/// configured token means every request is refused.
pub(crate) fn check(
    presented: &[Option<&str>],
    expected: Option<&Secret>,
    required: bool,
    setting: &'static str,
) -> Result<(), ApiError> {
    let Some(expected) = expected else {
        return if required {
            Err(ApiError::Unauthorized(format!(
                "{setting} is not configured on this server, so this endpoint is closed"
            )))
        } else {
            Ok(())
        };
    };
    let mut presented = presented.iter().flatten().peekable();
    if presented.peek().is_none() {
        return Err(ApiError::Unauthorized(format!(
            "missing token: send `Authorization: Bearer <{setting}>`"
        )));
    }
    let expected = expected.expose().as_bytes();
    if presented.any(|token| bool::from(token.as_bytes().ct_eq(expected))) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized("wrong token".into()))
    }
}
