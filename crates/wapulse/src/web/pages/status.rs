//! `/status/{value}`: a tenant's status page for its own customers (the
//! sessions whose `[status_pages] by` label holds that value). Each session
//! operational, degraded or down since when, its 30-day availability, and
//! what is wrong in plain words; nothing internal (no alert text, error,
//! label or other tenant's count). Light, cacheable, without JavaScript.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use wapulse_core::{DurationMs, Level, Session, SessionState, Timestamp, evaluate};

use crate::app::Shared;
use crate::auth::{Access, Refusal};
use crate::clock;
use crate::tenancy::Caller;
use crate::web::view::html_cached;

/// How far back the availability looks.
const WINDOW_DAYS: u64 = 30;

/// One session as its tenant's customers see it.
pub struct StatusRow {
    pub id: String,
    /// `operational`, `degraded` or `down`.
    pub status: &'static str,
    /// When it came to be so (UTC, to the minute).
    pub since: String,
    /// Over the last 30 days, `99.95%`, or `no data`.
    pub availability: String,
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    name: String,
    overall: &'static str,
    rows: Vec<StatusRow>,
    incidents: Vec<String>,
    updated: String,
}

/// The status word of a session: its level, and its state for a session
/// that is fine but not connected (connecting, stopped on purpose).
fn status_of(s: &Session, level: Level) -> &'static str {
    match level {
        Level::Critical => "down",
        Level::Warning => "degraded",
        Level::Ok if s.state == SessionState::Connected => "operational",
        Level::Ok => "degraded",
    }
}

/// What is wrong, in words a customer understands (never the alert's own
/// text, which may quote a gateway's error).
fn plain_words(s: &Session, level: Level) -> Option<String> {
    let what = match s.state {
        SessionState::LoggedOut => "was logged out of WhatsApp and must be linked again",
        SessionState::QrRequired => "is waiting for its QR code to be scanned",
        SessionState::Disconnected | SessionState::Reconnecting => {
            "lost its connection and is reconnecting"
        }
        SessionState::CircuitOpen => "paused reconnecting after repeated failures",
        SessionState::Connecting => "is connecting",
        SessionState::Stopped => "was stopped on purpose",
        SessionState::Connected if level == Level::Critical => {
            "is connected but not sending or receiving messages as it should"
        }
        SessionState::Connected if level == Level::Warning => "is slower than usual",
        SessionState::Connected => return None,
    };
    Some(format!("{} {what}.", s.id()))
}

fn minute(t: Timestamp) -> String {
    let text = t.to_rfc3339();
    // 2026-12-07T10:05:31.123Z → 2026-12-07 10:05 UTC
    format!("{} {} UTC", &text[..10], &text[11..16])
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        "No status page here.",
    )
        .into_response()
}

/// `GET /status/{value}`.
pub(in crate::web) async fn status(
    State(st): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Path(value): Path<String>,
) -> Response {
    let Some(pages) = st.settings.status_pages.clone() else {
        return not_found();
    };
    // A public page is the same for everyone; else a read token, whose
    // scope (if any) must cover the sessions shown.
    let caller = if pages.public {
        Caller::default()
    } else {
        match Access::Read.admit(&st.settings, &st.keyring, &headers, &uri) {
            Ok(c) => c,
            Err(Refusal::Unauthorized(why)) => {
                let mut r = (StatusCode::UNAUTHORIZED, why.0).into_response();
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return r;
            }
            Err(Refusal::Forbidden(why)) => return (StatusCode::FORBIDDEN, why).into_response(),
        }
    };
    let snapshot = st.model.snapshot();
    let sessions: Vec<Arc<Session>> = snapshot
        .sessions_after(None)
        .filter(|s| s.labels.get(&pages.by) == Some(value.as_str()) && caller.sees(s))
        .cloned()
        .collect();
    if sessions.is_empty() {
        return not_found();
    }
    let now = clock::now();
    let t = &st.settings.thresholds;
    let from = now.minus(DurationMs::from_hours(WINDOW_DAYS * 24));
    let reader = st.model.history();
    let ids: Vec<_> = sessions.iter().map(|s| s.id().clone()).collect();
    // A tenant's page: each session's current life only (an id retired
    // and taken again says nothing of the life before).
    let shares = tokio::task::spawn_blocking(move || {
        ids.iter()
            .map(|id| {
                reader
                    .timeline(id, from, now)
                    .ok()
                    .and_then(|tl| tl.current_life().over(from, now, now).share())
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    let mut rows = Vec::with_capacity(sessions.len());
    let mut incidents = Vec::new();
    let mut worst = 0;
    for (i, s) in sessions.iter().enumerate() {
        let a = evaluate(s, t, now);
        let status = status_of(s, a.level);
        worst = worst.max(match status {
            "operational" => 0,
            "degraded" => 1,
            _ => 2,
        });
        // Since the state changed, or, for a connected session in
        // trouble, since its oldest condition began.
        let since = match a.alerts.iter().filter_map(|x| x.since).min() {
            Some(t) if s.state == SessionState::Connected && a.level != Level::Ok => t,
            _ => s.state_changed_at,
        };
        incidents.extend(plain_words(s, a.level));
        rows.push(StatusRow {
            id: s.id().to_string(),
            status,
            since: minute(since),
            availability: match shares.get(i).copied().flatten() {
                Some(share) => format!("{:.2}%", share * 100.0),
                None => "no data".into(),
            },
        });
    }
    let body = StatusPage {
        name: value,
        overall: ["operational", "degraded", "down"][worst],
        rows,
        incidents,
        updated: minute(now),
    }
    .render();
    let cache = if pages.public {
        "public, max-age=30"
    } else {
        "private, max-age=30"
    };
    html_cached(StatusCode::OK, body, cache)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_to_the_minute_in_utc() {
        let t = Timestamp::parse_rfc3339("2026-12-07T10:05:31.123Z").unwrap();
        assert_eq!(minute(t), "2026-12-07 10:05 UTC");
    }
}
