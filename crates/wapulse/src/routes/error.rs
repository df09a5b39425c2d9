//! Errors every route can answer with: a status code and a JSON body that
//! names the problem.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the request is malformed; `index` and `field` locate the problem
    /// within a batch when known.
    BadRequest {
        /// What is wrong.
        message: String,
        /// The event's position in the batch.
        index: Option<usize>,
        /// The offending field.
        field: Option<&'static str>,
    },
    /// 409: the request is well formed but does not fit the current state
    /// (a session would hold more labels than it may); located like a 400.
    Conflict {
        /// What does not fit.
        message: String,
        /// The event's position in the batch.
        index: Option<usize>,
        /// The offending field.
        field: Option<&'static str>,
    },
    /// 401.
    Unauthorized(String),
    /// 403: the request came from where it may not (another site, a host
    /// name not allowed).
    Forbidden(String),
    /// 403: a scoped token's batch writes outside its scope; located like
    /// a 400 (the event, and `session` or `labels`).
    OutOfScope(wapulse_core::OutOfScope),
    /// 404.
    NotFound(String),
    /// 413.
    TooLarge(String),
    /// 415.
    UnsupportedMediaType(String),
    /// 503 with `Retry-After`: the store refused a write; nothing applied.
    Unavailable(String),
    /// 500: an unexpected failure on a read that touches the disk.
    Internal(String),
}

impl ApiError {
    /// The status it answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::OutOfScope(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What it says, for a person (the dashboard's forms).
    pub fn message(&self) -> String {
        match self {
            ApiError::BadRequest { message, .. } | ApiError::Conflict { message, .. } => {
                message.clone()
            }
            ApiError::OutOfScope(e) => format!("{e}; nothing was applied"),
            ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::TooLarge(m)
            | ApiError::UnsupportedMediaType(m)
            | ApiError::Unavailable(m)
            | ApiError::Internal(m) => m.clone(),
        }
    }

    /// A 400 without a location.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest {
            message: message.into(),
            index: None,
            field: None,
        }
    }

    /// A 400 naming the parameter or field at fault.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            message: message.into(),
            index: None,
            field: Some(field),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The status and message are `status()` and `message()`; a
        // located refusal also names the event and field.
        let status = self.status();
        let body = match self {
            ApiError::BadRequest {
                message,
                index,
                field,
            }
            | ApiError::Conflict {
                message,
                index,
                field,
            } => located(message, index, field),
            ApiError::OutOfScope(ref e) => {
                let field = match e {
                    wapulse_core::OutOfScope::Session { .. } => "session",
                    wapulse_core::OutOfScope::ScopeLabel { .. } => "labels",
                };
                located(self.message(), Some(e.index()), Some(field))
            }
            other => json!({ "error": other.message() }),
        };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// `{"error", "index"?, "field"?}`.
fn located(
    message: String,
    index: Option<usize>,
    field: Option<&'static str>,
) -> serde_json::Value {
    let mut body = json!({ "error": message });
    if let Some(i) = index {
        body["index"] = json!(i);
    }
    if let Some(f) = field {
        body["field"] = json!(f);
    }
    body
}

impl From<crate::app::Unavailable> for ApiError {
    fn from(e: crate::app::Unavailable) -> Self {
        ApiError::Unavailable(e.0)
    }
}

impl From<crate::app::NotTaken> for ApiError {
    fn from(e: crate::app::NotTaken) -> Self {
        match e {
            crate::app::NotTaken::Unavailable(e) => e.into(),
            crate::app::NotTaken::OverCapacity(message) => ApiError::Conflict {
                message,
                index: None,
                field: None,
            },
            crate::app::NotTaken::RetiresDefault(i) => ApiError::Conflict {
                message: format!(
                    "event {i} retires the default session, which /session/health answers for; \
                     it cannot be retired (set default_session to another id first); nothing \
                     was applied"
                ),
                index: Some(i),
                field: Some("type"),
            },
        }
    }
}
