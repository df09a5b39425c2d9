//! `[gateways]`: the webhook token header, WAHA's HMAC key and the session
//! prefixes, checked.

use serde::Deserialize;
use wapulse_core::SessionId;

use crate::secret::Secret;

/// `[gateways]` as written in the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGateways {
    /// A header that may carry `INGEST_TOKEN` (for gateways that can only
    /// add custom headers, like Evolution API), besides `Authorization:
    /// Bearer` and `?token=`.
    pub token_header: Option<String>,
    /// `[gateways.waha]`.
    pub waha: Option<RawWaha>,
    /// `[gateways.evolution]`.
    pub evolution: Option<RawEvolution>,
}

/// `[gateways.waha]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWaha {
    /// Prepended to WAHA's session name to make the wapulse session id.
    pub session_prefix: Option<String>,
    /// WAHA's webhook HMAC key (`X-Webhook-Hmac`, SHA-512); also
    /// `WAHA_HMAC_KEY`.
    pub hmac_key: Option<String>,
}

/// `[gateways.evolution]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvolution {
    /// Prepended to Evolution's instance name to make the session id.
    pub session_prefix: Option<String>,
}

/// The gateway settings, checked.
#[derive(Clone, Debug, Default)]
pub struct GatewaySettings {
    /// Lower-cased header name that may carry the ingest token.
    pub token_header: Option<axum::http::HeaderName>,
    /// WAHA session id prefix.
    pub waha_prefix: String,
    /// When set, every WAHA delivery must carry a valid `X-Webhook-Hmac`.
    pub waha_hmac_key: Option<Secret>,
    /// Evolution instance id prefix.
    pub evolution_prefix: String,
}

impl GatewaySettings {
    /// Checks `[gateways]`; `env` supplies `WAHA_HMAC_KEY`.
    pub fn check(raw: Option<RawGateways>, env_hmac_key: Option<String>) -> anyhow::Result<Self> {
        let raw = raw.unwrap_or_default();
        let prefix = |field: &str, p: Option<String>| -> anyhow::Result<String> {
            let p = p.unwrap_or_default();
            if !p.is_empty() && SessionId::parse(&format!("{p}x")).is_err() {
                anyhow::bail!(
                    "gateways.{field}.session_prefix: `{p}` may only hold the characters of a \
                     session id ([A-Za-z0-9._:@-])"
                );
            }
            Ok(p)
        };
        let waha = raw.waha.unwrap_or_default();
        let token_header = match raw.token_header {
            None => None,
            Some(name) => Some(
                axum::http::HeaderName::try_from(name.to_ascii_lowercase()).map_err(|_| {
                    anyhow::anyhow!("gateways.token_header: `{name}` is not an HTTP header name")
                })?,
            ),
        };
        Ok(Self {
            token_header,
            waha_prefix: prefix("waha", waha.session_prefix)?,
            waha_hmac_key: env_hmac_key
                .filter(|k| !k.is_empty())
                .or(waha.hmac_key.filter(|k| !k.is_empty()))
                .map(Secret::new),
            evolution_prefix: prefix(
                "evolution",
                raw.evolution.unwrap_or_default().session_prefix,
            )?,
        })
    }
}
