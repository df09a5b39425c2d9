//! Who may call what: [`Access`] levels, and the tokens a request presents
//! checked in constant time. The API's router and the dashboard's pages
//! both ask here, so a token means the same on either.

use std::collections::HashMap;

use axum::extract::Query;
use axum::http::{HeaderMap, Uri, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Settings;
use crate::secret::Secret;
use crate::tenancy::{Caller, Grant, Keyring};

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
    /// The WhatsApp Cloud API webhook: with its app secret configured the
    /// handler checks Meta's signature (and nothing is asked here); else
    /// as `Webhook`, and closed (401) when no `INGEST_TOKEN` is set either.
    Signed,
}

/// Why a request was refused (answered with 401), for the caller.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unauthorized(pub String);

/// Why a request was refused: 401 (no or a wrong token) or 403 (a named
/// token whose access is below the route's).
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 401.
    Unauthorized(Unauthorized),
    /// 403, naming the token and what the route needs.
    Forbidden(String),
}

impl From<Unauthorized> for Refusal {
    fn from(e: Unauthorized) -> Self {
        Refusal::Unauthorized(e)
    }
}

impl Access {
    /// The least a named token needs to call a route of this level.
    fn grant_needed(self) -> Grant {
        match self {
            Access::Open | Access::Read | Access::Metrics => Grant::Read,
            Access::Ingest | Access::Webhook | Access::Signed => Grant::Ingest,
            Access::Admin => Grant::Admin,
        }
    }

    /// Who may call a route of this level with these headers and this
    /// URI under `settings` and the named tokens of `keyring`: a named
    /// token presented wherever the level takes one (scoped or not), else
    /// the level's single token, as before named tokens existed. With
    /// named tokens configured, no level but `Open` is open.
    pub fn admit(
        self,
        settings: &Settings,
        keyring: &Keyring,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> Result<Caller, Refusal> {
        let s = settings;
        if self == Access::Open {
            return Ok(identify(keyring, headers));
        }
        if self == Access::Signed && s.gateways.cloud_app_secret.is_some() {
            return Ok(Caller::default());
        }
        let query = match self {
            Access::Webhook | Access::Signed | Access::Metrics => query_token(uri),
            _ => None,
        };
        let mut presented: Vec<Option<&str>> = vec![bearer(headers)];
        match self {
            Access::Webhook | Access::Signed => {
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
                presented.push(header);
                presented.push(
                    query
                        .as_deref()
                        .map(|t| t.split('/').next().unwrap_or_default()),
                );
            }
            Access::Metrics => presented.push(query.as_deref()),
            _ => {}
        }
        if !keyring.is_empty() {
            let named = presented.iter().flatten().find_map(|p| keyring.find(p));
            if let Some(named) = named {
                let needed = self.grant_needed();
                if named.grant < needed {
                    return Err(Refusal::Forbidden(format!(
                        "token `{}` has {} access; this endpoint needs {}",
                        named.name,
                        named.grant.as_str(),
                        needed.as_str()
                    )));
                }
                return Ok(Caller::named(named));
            }
        }
        // Named tokens close every level that has no single token of its own.
        let closed = !keyring.is_empty();
        let (expected, setting) = match self {
            Access::Read => (s.read_token.as_ref(), "READ_TOKEN"),
            Access::Ingest | Access::Webhook => (s.ingest_token.as_ref(), "INGEST_TOKEN"),
            Access::Admin => match &s.admin_token {
                Some(admin) => (Some(admin), "ADMIN_TOKEN"),
                None => (s.ingest_token.as_ref(), "INGEST_TOKEN"),
            },
            Access::Signed if s.ingest_token.is_none() && !closed => {
                return Err(Unauthorized(
                    "the WhatsApp Cloud API webhook needs its app secret ([gateways.whatsapp_cloud] \
                     app_secret or WHATSAPP_CLOUD_APP_SECRET) or INGEST_TOKEN: neither is set"
                        .into(),
                )
                .into());
            }
            Access::Signed => (s.ingest_token.as_ref(), "INGEST_TOKEN"),
            Access::Metrics => (s.metrics_token.as_ref(), "METRICS_TOKEN"),
            Access::Open => unreachable!("answered above"),
        };
        if expected.is_none() && closed {
            return Err(
                Unauthorized(if presented.iter().flatten().next().is_none() {
                    "missing token: send `Authorization: Bearer <token>` with a token of [[tokens]]"
                        .into()
                } else {
                    "wrong token".into()
                })
                .into(),
            );
        }
        verify(&presented, expected, self == Access::Metrics, setting)?;
        Ok(Caller {
            token: None,
            setting: expected.is_some().then_some(setting),
        })
    }
}

/// Who presents a named token as bearer on an open route (the route
/// answers anyone, but a scoped token's answer keeps to its scope).
pub fn identify(keyring: &Keyring, headers: &HeaderMap) -> Caller {
    bearer(headers)
        .and_then(|b| keyring.find(b))
        .map(Caller::named)
        .unwrap_or_default()
}

/// Why a request was refused (answered with 403): it came from where it
/// may not.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Forbidden(pub String);

impl Access {
    /// Whether a route of this access level needs no token under
    /// `settings` (its token unset): what a DNS-rebinding page could use.
    pub(crate) fn is_open(self, settings: &Settings) -> bool {
        // Named tokens close every level but `Open`.
        let unnamed = settings.tokens.is_empty();
        match self {
            Access::Open => true,
            Access::Read => unnamed && settings.read_token.is_none(),
            Access::Ingest | Access::Webhook => unnamed && settings.ingest_token.is_none(),
            Access::Admin => {
                unnamed && settings.admin_token.is_none() && settings.ingest_token.is_none()
            }
            Access::Metrics | Access::Signed => false,
        }
    }
}

/// A request to a route that needs no token (`open`) must be addressed to
/// a loopback name (`localhost`, `127.0.0.1`, `[::1]`) or one of
/// `allowed_hosts`: a page on another site that makes its own name resolve
/// to wapulse (DNS rebinding) sends its own name as `Host`, and is refused,
/// for reads and writes alike. A route that needs a token has nothing to
/// offer such a page (it has not the token). On a non-loopback bind without
/// `allowed_hosts` every name is taken (warned at start).
pub(crate) fn host_allowed(
    settings: &Settings,
    headers: &HeaderMap,
    open: bool,
) -> Result<(), Forbidden> {
    if !open || (!settings.bind.ip().is_loopback() && settings.allowed_hosts.is_empty()) {
        return Ok(());
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let name = host.map(host_name).unwrap_or_default();
    let known =
        name == "localhost" || is_loopback_ip(&name) || settings.allowed_hosts.contains(&name);
    if known {
        Ok(())
    } else {
        Err(Forbidden(format!(
            "requests addressed to `{name}` are refused while this route needs no token: add \
             the name to allowed_hosts (WAPULSE_ALLOWED_HOSTS), or set this route's token"
        )))
    }
}

/// The name of a `Host` header: no port, no brackets, lower case.
fn host_name(host: &str) -> String {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn is_loopback_ip(name: &str) -> bool {
    name.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Whether a browser says this request comes from another site: its
/// `Sec-Fetch-Site` is neither `same-origin` nor `none` (typed by the
/// user), or, from a browser without it, its `Origin` is not the host the
/// request is addressed to. A request with neither (curl, a gateway) is
/// not a browser's, and not cross-site.
pub(crate) fn cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.to_str(), Ok("same-origin" | "none"));
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let authority = origin.split_once("://").map(|(_, rest)| rest);
    match (authority, host) {
        (Some(authority), Some(host)) => !authority.eq_ignore_ascii_case(host),
        // `Origin: null` (a sandboxed frame, a file) or no Host.
        _ => true,
    }
}

fn query_token(uri: &Uri) -> Option<String> {
    Query::<HashMap<String, String>>::try_from_uri(uri)
        .ok()
        .and_then(|mut q| q.0.remove("token"))
}

/// The `Authorization: Bearer` token, if any (the scheme in any case, as
/// RFC 9110 has it).
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
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
    // Digests of equal length are compared, so the time taken says nothing
    // of the token's length either.
    let expected = Sha256::digest(expected.expose().as_bytes());
    if presented.any(|token| bool::from(Sha256::digest(token.as_bytes()).ct_eq(&expected))) {
        Ok(())
    } else {
        Err(Unauthorized("wrong token".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(auth: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static(auth));
        h
    }

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        for auth in ["Bearer t0k", "bearer t0k", "BEARER t0k", "bEaReR  t0k"] {
            assert_eq!(bearer(&with(auth)), Some("t0k"), "{auth}");
        }
        assert_eq!(bearer(&with("Basic dTpw")), None);
        assert_eq!(bearer(&with("Bearer")), None);
    }

    #[test]
    fn tokens_match_only_whole() {
        let expected = Secret::new("s3cret-token");
        let check = |t: &str| verify(&[Some(t)], Some(&expected), false, "X").is_ok();
        assert!(check("s3cret-token"));
        for wrong in ["s3cret-toke", "s3cret-token!", "", "S3CRET-TOKEN"] {
            assert!(!check(wrong), "{wrong}");
        }
        assert!(verify(&[None], None, false, "X").is_ok(), "unset: open");
        assert!(
            verify(&[None], None, true, "X").is_err(),
            "required: closed"
        );
    }
}
