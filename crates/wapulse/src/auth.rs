//! Who may call what: [`Access`] levels, and the tokens a request presents
//! checked in constant time. The API's router and the dashboard's pages
//! both ask here, so a token means the same on either.

use std::collections::HashMap;

use axum::extract::Query;
use axum::http::{HeaderMap, Uri, header};
use subtle::ConstantTimeEq;

use crate::config::Settings;
use crate::secret::Secret;

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

/// Why a request was refused (answered with 401), for the caller.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unauthorized(pub String);

impl Access {
    /// Whether a request with these headers and this URI may call a route
    /// of this access level under `settings`.
    pub fn admit(
        self,
        settings: &Settings,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> Result<(), Unauthorized> {
        let s = settings;
        let bearer = bearer(headers);
        match self {
            Access::Open => Ok(()),
            Access::Read => verify(&[bearer], s.read_token.as_ref(), false, "READ_TOKEN"),
            Access::Ingest => verify(&[bearer], s.ingest_token.as_ref(), false, "INGEST_TOKEN"),
            Access::Admin => match &s.admin_token {
                Some(admin) => verify(&[bearer], Some(admin), false, "ADMIN_TOKEN"),
                None => verify(&[bearer], s.ingest_token.as_ref(), false, "INGEST_TOKEN"),
            },
            Access::Webhook => {
                // Any of the places a gateway can put it: the bearer token,
                // the configured header, or `?token=` (Evolution's "webhook
                // by events" appends `/<event>` after the query, so the
                // token ends at a `/`).
                let header = s
                    .gateways
                    .token_header
                    .as_ref()
                    .and_then(|h| headers.get(h))
                    .and_then(|v| v.to_str().ok());
                let query = query_token(uri);
                let query = query
                    .as_deref()
                    .map(|t| t.split('/').next().unwrap_or_default());
                verify(
                    &[bearer, header, query],
                    s.ingest_token.as_ref(),
                    false,
                    "INGEST_TOKEN",
                )
            }
            Access::Metrics => {
                let query = query_token(uri);
                verify(
                    &[bearer, query.as_deref()],
                    s.metrics_token.as_ref(),
                    true,
                    "METRICS_TOKEN",
                )
            }
        }
    }
}

fn query_token(uri: &Uri) -> Option<String> {
    Query::<HashMap<String, String>>::try_from_uri(uri)
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

/// Verifies the tokens a request presents (bearer, `?token=`, a gateway's
/// header, the dashboard's cookie) in constant time: one must match. With
/// `required`, a missing configured token means every request is refused;
/// without, an unset token lets everyone in.
pub(crate) fn verify(
    presented: &[Option<&str>],
    expected: Option<&Secret>,
    required: bool,
    setting: &'static str,
) -> Result<(), Unauthorized> {
    let Some(expected) = expected else {
        return if required {
            Err(Unauthorized(format!(
                "{setting} is not configured on this server, so this endpoint is closed"
            )))
        } else {
            Ok(())
        };
    };
    let mut presented = presented.iter().flatten().peekable();
    if presented.peek().is_none() {
        return Err(Unauthorized(format!(
            "missing token: send `Authorization: Bearer <{setting}>`"
        )));
    }
    let expected = expected.expose().as_bytes();
    if presented.any(|token| bool::from(token.as_bytes().ct_eq(expected))) {
        Ok(())
    } else {
        Err(Unauthorized("wrong token".into()))
    }
}
