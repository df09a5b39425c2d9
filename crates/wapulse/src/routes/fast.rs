//! The one request answered in front of the router.
//!
//! `GET /session/health` is what load balancers, uptime checkers and the
//! seed's clients poll, many times a second per gateway. Through the router
//! it cost about 3 µs of CPU more than the answer itself (routing, the
//! matched-path and body-limit extensions, the metrics layer's boxed
//! future; measured with perf, see docs/benchmarks.md). Here it is matched
//! by method and path, answered by the very function the routed handler
//! uses, and counted in the same request metrics; every other request
//! (including `HEAD /session/health`) goes to the router.

use std::sync::OnceLock;
use std::time::Instant;

use axum::http::{Method, Request, StatusCode};
use axum::response::Response;
use prometheus::{Histogram, IntCounter};

use super::session;
use crate::app::Shared;

/// The path served here (an open route: no token is ever needed).
pub const PATH: &str = "/session/health";

/// Answers `GET /session/health` without routing.
pub struct FastPath {
    state: Shared,
    duration: Histogram,
    /// `wapulse_http_requests_total` children for 200 and 503, created on
    /// first use (so /metrics shows no series for an answer never given).
    ok: OnceLock<IntCounter>,
    critical: OnceLock<IntCounter>,
    /// Whether any named token has a scope.
    scoped: bool,
}

impl FastPath {
    pub fn new(state: Shared) -> Self {
        let duration = state.telemetry.http_duration.with_label_values(&[PATH]);
        Self {
            scoped: state.keyring.has_scopes(),
            state,
            duration,
            ok: OnceLock::new(),
            critical: OnceLock::new(),
        }
    }

    /// The answer to `req` if it is `GET /session/health`, else `None`.
    pub fn answer<B>(&self, req: &Request<B>) -> Option<Response> {
        if req.method() != Method::GET || req.uri().path() != PATH {
            return None;
        }
        // A token presented while scoped tokens exist may be one: the
        // router finds out whose, and answers within its scope.
        if self.scoped
            && req
                .headers()
                .contains_key(axum::http::header::AUTHORIZATION)
        {
            return None;
        }
        let started = Instant::now();
        let response = session::health::health_default_response(&self.state, started);
        self.counter(response.status()).inc();
        self.duration.observe(started.elapsed().as_secs_f64());
        Some(response)
    }

    fn counter(&self, status: StatusCode) -> &IntCounter {
        let cell = match status {
            StatusCode::OK => &self.ok,
            _ => &self.critical, // the only other answer is 503
        };
        cell.get_or_init(|| {
            self.state
                .telemetry
                .http_requests
                .with_label_values(&[PATH, "GET", status.as_str()])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Access, table};
    use super::*;

    #[test]
    fn the_fast_path_serves_an_open_get_route_of_the_table() {
        // It checks no token: were /session/health ever to need one, the
        // fast path would have to check it too.
        let route = table()
            .into_iter()
            .find(|r| r.path == PATH)
            .expect("in the table");
        assert_eq!((route.method, route.access), (Method::GET, Access::Open));
    }
}
