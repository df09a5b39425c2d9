//! The route table: every API route wapulse serves, with what
//! `/openapi.json` says of it. The router (`routes::router`) and the
//! OpenAPI document (`crate::openapi`) are both built from it, so the
//! description cannot drift from what is served.

use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post};

use super::{about, alerts, audit, badge, health, history, ingest, metrics, session, webhooks};
use crate::app::Shared;
use crate::auth::Access;

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
    pub(super) handler: MethodRouter<Shared>,
}

const JSON: &str = "application/json";
const PROM: &str = "text/plain; version=0.0.4";
const TEXT: &str = "text/plain";
const SVG: &str = "image/svg+xml";

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
const FORBIDDEN_GRANT: (u16, &str) = (
    403,
    "a named token ([[tokens]]) whose access is below this route's",
);

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
        409,
        "the delivery would pass max_sessions or the 1,000 platform metric names, or retire \
         the default session; nothing applied",
    ),
    (
        401,
        "missing or wrong token, or a bad X-Webhook-Hmac signature",
    ),
    (
        403,
        "a read token of [[tokens]], or a scoped token's delivery for a session outside its \
         scope; nothing applied",
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
            "a labels event would leave a session with more than 16 labels, the batch would \
             pass max_sessions or the 1,000 platform metric names, or it retires the default \
             session; nothing applied",
        ),
        (413, "body too large"),
        (415, "unsupported content type"),
        (
            403,
            "a read token of [[tokens]], or a scoped token's event for a session outside its \
             scope (index, field); nothing applied",
        ),
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
            get(session::health::health_default),
        ),
        route(
            "/session/observe",
            "Default session full observability (seed)",
            Read,
            read,
            JSON,
            get(session::observe::observe_default),
        ),
        route(
            "/session/alerts",
            "Default session active alerts (seed)",
            Read,
            read,
            JSON,
            get(session::alerts::alerts_default),
        ),
        route(
            "/session/metrics",
            "Default session Prometheus metrics (seed)",
            Read,
            read,
            PROM,
            get(metrics::session_default),
        ),
        route(
            "/session/thresholds",
            "Alert thresholds in force",
            Read,
            read,
            JSON,
            get(session::alerts::thresholds),
        ),
        route(
            "/api/whatsapp/session/health",
            "Seed proxy path for /session/health",
            Open,
            health,
            JSON,
            get(session::health::health_default),
        ),
        route(
            "/api/whatsapp/session/observe",
            "Seed proxy path for /session/observe",
            Read,
            read,
            JSON,
            get(session::observe::observe_default),
        ),
        route(
            "/api/whatsapp/session/alerts",
            "Seed proxy path for /session/alerts",
            Read,
            read,
            JSON,
            get(session::alerts::alerts_default),
        ),
        route(
            "/sessions",
            "List sessions (filter by status, state, code (an alert code firing) and label=name:value, paginated)",
            Read,
            &[OK, (400, "bad filter"), UNAUTHORIZED],
            JSON,
            get(session::list::list),
        ),
        route(
            "/sessions/{id}/health",
            "One session's health",
            Open,
            health_id,
            JSON,
            get(session::health::health),
        ),
        route(
            "/sessions/{id}/observe",
            "One session's full observability",
            Read,
            read_id,
            JSON,
            get(session::observe::observe),
        ),
        route(
            "/sessions/{id}/alerts",
            "One session's active alerts",
            Read,
            read_id,
            JSON,
            get(session::alerts::alerts),
        ),
        route(
            "/sessions/{id}/metrics",
            "One session's Prometheus metrics",
            Read,
            read_id,
            PROM,
            get(metrics::session),
        ),
        route(
            "/sessions/{id}/thresholds",
            "Alert thresholds for one session",
            Read,
            read_id,
            JSON,
            get(session::alerts::thresholds_for),
        ),
        route_as(
            Method::DELETE,
            None,
            "/sessions/{id}",
            "Retire a session on purpose: its alerts resolve as retired, it leaves every list, \
             count and /metrics; its journal stays until retention; a later event starts it \
             afresh",
            Admin,
            &[
                (200, "retired: {retired, at}"),
                BAD_ID,
                UNAUTHORIZED,
                FORBIDDEN_GRANT,
                NOT_FOUND,
                (409, "the default session cannot be retired"),
                (503, "the store refused the write (Retry-After)"),
            ],
            delete(session::retire::retire),
        ),
        route(
            "/sessions/{id}/events",
            "One session's journal, newest first (?limit=&before=)",
            Read,
            read_id,
            JSON,
            get(session::journal::events),
        ),
        route(
            "/sessions/{id}/availability",
            "A session's availability: connected over observed time, from exact state intervals \
             (?window=30d, or from=&to=; CSV with Accept: text/csv)",
            Read,
            &[
                OK,
                (400, "malformed id, window, from or to"),
                UNAUTHORIZED,
                NOT_FOUND,
            ],
            JSON,
            get(history::session_availability),
        ),
        route(
            "/sessions/{id}/history",
            "A session's history per step: time in each state, messages, reconnects and outages, \
             missed heartbeats, round trip (?from=&to=&step=1h|1d; CSV with Accept: text/csv)",
            Read,
            &[
                OK,
                (400, "malformed id, from, to or step"),
                UNAUTHORIZED,
                NOT_FOUND,
            ],
            JSON,
            get(history::session_history),
        ),
        route(
            "/history/fleet",
            "The fleet per step: sessions by state and level, alerts firing, events and messages \
             (?from=&to=&step=1m|5m|1h|1d; CSV with Accept: text/csv)",
            Read,
            &[
                OK,
                (400, "malformed from, to or step"),
                UNAUTHORIZED,
                (
                    403,
                    "a scoped token: fleet history counts every tenant's sessions",
                ),
            ],
            JSON,
            get(history::fleet),
        ),
        route(
            "/availability",
            "Availability per label value and the sessions below a target, worst first \
             (?by=tenant&window=30d&below=0.99&limit=; CSV with Accept: text/csv)",
            Read,
            &[
                OK,
                (400, "malformed by, window, from, to, below or limit"),
                UNAUTHORIZED,
            ],
            JSON,
            get(history::fleet_availability),
        ),
        route(
            "/badge/{id}/status.svg",
            "A shields-style badge of the session's state, coloured by level",
            Read,
            read_id,
            SVG,
            get(badge::status),
        ),
        route(
            "/badge/{id}/availability.svg",
            "A shields-style badge of the session's availability (?window=30d)",
            Read,
            &[OK, (400, "malformed id or window"), UNAUTHORIZED, NOT_FOUND],
            SVG,
            get(badge::availability),
        ),
        route(
            "/badge/by/{label}/{value}/availability.svg",
            "A shields-style badge of a label value's availability (?window=30d)",
            Read,
            &[OK, (400, "malformed label or window"), UNAUTHORIZED],
            SVG,
            get(badge::label_availability),
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
            "/v1/audit",
            "The audit log: silences created and expired, sessions retired, named tokens seen \
             from a new address; newest first (?limit=&before=); a scoped admin token reads its own",
            Admin,
            &[
                OK,
                (400, "bad limit or before"),
                UNAUTHORIZED,
                FORBIDDEN_GRANT,
            ],
            JSON,
            get(audit::list),
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
                FORBIDDEN_GRANT,
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
            &[OK, UNAUTHORIZED, FORBIDDEN_GRANT],
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
                FORBIDDEN_GRANT,
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
        route_as(
            Method::POST,
            Some("WhatsappCloudWebhook"),
            "/v1/webhooks/whatsapp-cloud",
            "A WhatsApp Cloud API webhook delivery, as Meta sends it: signed with \
             X-Hub-Signature-256 when the app secret is set (then no bearer token), else \
             INGEST_TOKEN; with neither, 401",
            Signed,
            WEBHOOK,
            post(webhooks::whatsapp_cloud),
        ),
        route_as(
            Method::GET,
            None,
            "/v1/webhooks/whatsapp-cloud",
            "Meta's subscription handshake (hub.mode=subscribe, hub.verify_token, \
             hub.challenge): the challenge, as text, to the configured verify token only",
            Open,
            &[
                (200, "the challenge"),
                (400, "not a subscription handshake"),
                (403, "no verify token configured, or not this one"),
            ],
            get(webhooks::whatsapp_cloud_handshake),
        ),
        route(
            "/healthz",
            "Liveness",
            Open,
            &[OK],
            JSON,
            get(health::healthz),
        ),
        route(
            "/livez",
            "Kubernetes liveness",
            Open,
            &[OK],
            TEXT,
            get(health::livez),
        ),
        route(
            "/readyz",
            "Readiness (?verbose, ?exclude=name)",
            Open,
            &[OK, (503, "not ready")],
            JSON,
            get(health::readyz),
        ),
        route(
            "/api/health",
            "Full health: store and checks",
            Open,
            &[OK, (503, "unhealthy")],
            JSON,
            get(health::api_health),
        ),
        route(
            "/health",
            "Service health with session count",
            Open,
            &[OK],
            JSON,
            get(health::health),
        ),
        route(
            "/health/whatsapp",
            "WhatsApp sessions summary and probes of group whatsapp",
            Open,
            &[OK],
            JSON,
            get(health::health_whatsapp),
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
            get(health::health_group),
        ),
        route(
            "/version",
            "Build information",
            Open,
            &[OK],
            JSON,
            get(about::version),
        ),
        route(
            "/warmup",
            "Runs every probe once and primes caches",
            Open,
            &[OK],
            JSON,
            get(health::warmup),
        ),
        route(
            "/metrics.json",
            "Platform counters and gauges (seed)",
            Metrics,
            &[OK, UNAUTHORIZED],
            JSON,
            get(metrics::json),
        ),
        route(
            "/metrics",
            "Everything, for Prometheus",
            Read,
            read,
            PROM,
            get(metrics::all),
        ),
        route(
            "/openapi.json",
            "This description",
            Open,
            &[OK],
            JSON,
            get(about::openapi),
        ),
    ]
}
