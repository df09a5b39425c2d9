//! How things look to a person: statuses with an icon and a word (never
//! color alone), relative times with the absolute time on hover.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use wapulse_core::{Level, SessionState, Timestamp};

/// Whose sessions the pages show, when not the whole fleet's: a tenant's
/// login, or an operator's "view as" (which it may end).
pub struct Viewing {
    pub text: String,
    pub clearable: bool,
}

impl Viewing {
    pub fn of(caller: &crate::tenancy::Caller) -> Option<Self> {
        let token = caller.token.as_ref()?;
        let scope = token.scope.as_ref()?;
        Some(Self {
            text: scope.describe(),
            clearable: token.view_as,
        })
    }
}

/// A rendered page, or a plain 500 naming the template error.
pub(super) fn html(status: StatusCode, page: askama::Result<String>) -> Response {
    html_cached(status, page, "no-store")
}

/// [`html`] with its `Cache-Control`.
pub(super) fn html_cached(
    status: StatusCode,
    page: askama::Result<String>,
    cache: &'static str,
) -> Response {
    match page {
        Ok(body) => (
            status,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            ],
            body,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the page could not be rendered: {e}"),
        )
            .into_response(),
    }
}

/// `text` for a URL's query value: everything but RFC 3986's unreserved
/// characters percent-encoded (`/` kept when `keep_slash`, for paths).
pub fn query_value(text: &str, keep_slash: bool) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const VALUE: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    const PATH: &AsciiSet = &VALUE.remove(b'/');
    utf8_percent_encode(text, if keep_slash { PATH } else { VALUE }).to_string()
}

/// A status as the pages show it: CSS class, icon and word.
#[derive(Clone, Debug)]
pub struct Badge {
    /// `ok`, `warning`, `critical`, `muted`: the color.
    pub class: &'static str,
    /// A shape that differs per status (read without color).
    pub icon: &'static str,
    /// The word.
    pub text: String,
}

/// The badge of a health level.
pub fn level(l: Level) -> Badge {
    let (class, icon) = match l {
        Level::Ok => ("ok", "●"),
        Level::Warning => ("warning", "▲"),
        Level::Critical => ("critical", "✖"),
    };
    Badge {
        class,
        icon,
        text: l.as_str().to_owned(),
    }
}

/// The badge of a session state.
pub fn state(s: SessionState) -> Badge {
    let (class, icon) = match s {
        SessionState::Connected => ("ok", "●"),
        SessionState::Connecting | SessionState::Reconnecting => ("warning", "↻"),
        SessionState::QrRequired => ("warning", "▣"),
        SessionState::Disconnected => ("critical", "○"),
        SessionState::LoggedOut => ("critical", "⏏"),
        SessionState::CircuitOpen => ("critical", "⊘"),
        // Stopped on purpose: nothing to fix.
        SessionState::Stopped => ("muted", "■"),
    };
    Badge {
        class,
        icon,
        text: s.as_str().to_owned(),
    }
}

/// A moment: `3m ago` (or `in 2m`), with the RFC 3339 form for `title`
/// and `datetime`.
#[derive(Clone, Debug)]
pub struct When {
    /// Relative to the page's time.
    pub relative: String,
    /// RFC 3339.
    pub absolute: String,
}

/// `t` seen from `now`.
pub fn when(t: Timestamp, now: Timestamp) -> When {
    let relative = if t <= now {
        let d = now.since(t);
        if d.as_millis() < 1000 {
            "just now".to_owned()
        } else {
            format!("{} ago", d.formatted())
        }
    } else {
        format!("in {}", t.since(now).formatted())
    };
    When {
        relative,
        absolute: t.to_rfc3339(),
    }
}

/// A duration in the short form (`1h 5m`).
pub fn span(ms: u64) -> String {
    wapulse_core::DurationMs::from_millis(ms).formatted()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_an_icon_and_a_word() {
        for l in Level::ALL {
            let b = level(l);
            assert!(!b.icon.is_empty() && b.text == l.as_str());
        }
        let icons: std::collections::HashSet<&str> =
            SessionState::ALL.iter().map(|s| state(*s).icon).collect();
        assert!(icons.len() >= 5, "states are told apart without color");
        let now = Timestamp::from_millis(10_000_000);
        assert_eq!(
            when(now.minus(wapulse_core::DurationMs::from_secs(180)), now).relative,
            "3m ago"
        );
        assert_eq!(when(now, now).relative, "just now");
        assert_eq!(
            when(now.plus(wapulse_core::DurationMs::from_secs(60)), now).relative,
            "in 1m"
        );
    }
}
