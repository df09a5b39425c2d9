//! Badges (issue 31): `GET /badge/{session}/status.svg` and
//! `/badge/{session}/availability.svg?window=30d`, shields-style SVG for a
//! README or a status board. Cacheable for a minute; protected like every
//! other read.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use wapulse_core::{DurationMs, Level, evaluate};

use super::session::find;
use crate::app::Shared;
use crate::clock;
use crate::routes::ApiError;
use crate::tenancy::Caller;

const GREEN: &str = "#2e7d32";
const AMBER: &str = "#b26a00";
const RED: &str = "#c62828";
const GREY: &str = "#555";

/// Escapes text for SVG.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Width of text at 11 px Verdana, near enough for a badge.
fn width(text: &str) -> usize {
    text.chars().count() * 7 + 10
}

/// A two-part badge: `label` on grey, `message` on `colour`.
pub fn svg(label: &str, message: &str, colour: &str) -> String {
    let (lw, mw) = (width(label), width(message));
    let total = lw + mw;
    let (label, message) = (escape(label), escape(message));
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{total}\" height=\"20\" role=\"img\" \
         aria-label=\"{label}: {message}\"><title>{label}: {message}</title>\
         <rect width=\"{lw}\" height=\"20\" fill=\"{GREY}\"/>\
         <rect x=\"{lw}\" width=\"{mw}\" height=\"20\" fill=\"{colour}\"/>\
         <g fill=\"#fff\" text-anchor=\"middle\" font-family=\"Verdana,DejaVu Sans,sans-serif\" \
         font-size=\"11\"><text x=\"{lx}\" y=\"14\">{label}</text>\
         <text x=\"{mx}\" y=\"14\">{message}</text></g></svg>",
        lx = lw / 2,
        mx = lw + mw / 2,
    )
}

fn answer(body: String) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("image/svg+xml"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=60"),
            ),
        ],
        body,
    )
        .into_response()
}

/// `GET /badge/{session}/status.svg`: the session's state, coloured by
/// its level.
pub(super) async fn status(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let session = find(&state, &caller, &id)?;
    let a = evaluate(&session, &state.settings.thresholds, clock::now());
    let colour = match a.level {
        Level::Ok => GREEN,
        Level::Warning => AMBER,
        Level::Critical => RED,
    };
    Ok(answer(svg(
        "whatsapp",
        &session.state.as_str().replace('_', " "),
        colour,
    )))
}

/// `?window=` of an availability badge.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BadgeQuery {
    window: Option<String>,
}

type Queried = Result<Query<BadgeQuery>, axum::extract::rejection::QueryRejection>;

/// The badge's window: `?window=`, 30 days by default.
fn window(query: Queried) -> Result<DurationMs, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let window = q.window.as_deref().unwrap_or("30d");
    DurationMs::parse(window)
        .ok()
        .filter(|d| *d > DurationMs::ZERO && *d <= DurationMs::from_hours(400 * 24))
        .ok_or_else(|| ApiError::BadRequest {
            message: format!("window `{window}` must be a duration from 1s to 400d (24h, 7d, 30d)"),
            index: None,
            field: Some("window"),
        })
}

/// `GET /badge/{session}/availability.svg?window=30d`.
pub(super) async fn availability(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    query: Queried,
) -> Result<Response, ApiError> {
    let d = window(query)?;
    let id = super::session::parse_id(&id)?;
    let now = clock::now();
    let from = now.minus(d);
    let timeline = super::history::timeline_for(&state, &caller, &id, from, now).await?;
    Ok(availability_badge(d, timeline.over(from, now, now).share()))
}

/// `GET /badge/by/{label}/{value}/availability.svg?window=30d`: a label
/// value's availability (its sessions' connected over observed time;
/// "no data" when none was observed in the window).
pub(super) async fn label_availability(
    State(state): State<Shared>,
    caller: Caller,
    Path((label, value)): Path<(String, String)>,
    query: Queried,
) -> Result<Response, ApiError> {
    let d = window(query)?;
    wapulse_core::labels::check_name(&label).map_err(|e| ApiError::BadRequest {
        message: format!("label `{label}`: {e}"),
        index: None,
        field: Some("label"),
    })?;
    let now = clock::now();
    let snapshot = state.model.snapshot();
    let reader = state.model.history();
    let name = label.clone();
    let ranked = tokio::task::spawn_blocking(move || {
        let label_of = |id: &str| snapshot.get(id)?.labels.get(&name).map(str::to_owned);
        let admits = |id: &str| caller.sees_id(&snapshot, id);
        let seen = crate::history::Seen {
            admits: &admits,
            current_life: caller.current_life_only(),
        };
        crate::history::rank(
            reader.as_ref(),
            (now.minus(d), now, now),
            Some(&name),
            &label_of,
            seen,
            0.0,
            0,
        )
    })
    .await
    .map_err(|e| ApiError::Internal(format!("history read failed: {e}")))?
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    // A value no session was observed with reads "no data", like a
    // session without history: a badge in a README must always render.
    let share = ranked
        .groups
        .iter()
        .find(|(v, _, _)| *v == value)
        .and_then(|(_, a, _)| a.share());
    Ok(availability_badge(d, share))
}

fn availability_badge(d: DurationMs, share: Option<f64>) -> Response {
    let (message, colour) = match share {
        None => ("no data".to_owned(), GREY),
        Some(share) => (
            format!("{:.2}%", share * 100.0),
            if share >= 0.999 {
                GREEN
            } else if share >= 0.99 {
                AMBER
            } else {
                RED
            },
        ),
    };
    answer(svg(
        &format!("availability {}", d.formatted()),
        &message,
        colour,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_badge_escapes_what_it_shows_and_sizes_to_its_text() {
        let s = svg("a<b", "x & \"y\"", GREEN);
        assert!(s.contains("a&lt;b") && s.contains("x &amp; &quot;y&quot;"));
        assert!(!s.contains("a<b"));
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert!(s.contains(&format!("width=\"{}\"", width("a<b") + width("x & \"y\""))));
    }
}
