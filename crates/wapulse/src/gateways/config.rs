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
    /// `[gateways.whatsapp_cloud]`.
    pub whatsapp_cloud: Option<RawWhatsappCloud>,
}

/// `[gateways.whatsapp_cloud]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWhatsappCloud {
    /// Prepended to the phone number id to make the session id.
    pub session_prefix: Option<String>,
    /// The Meta app's secret: every delivery must carry a valid
    /// `X-Hub-Signature-256`; also `WHATSAPP_CLOUD_APP_SECRET`.
    pub app_secret: Option<String>,
    /// The token Meta's subscription handshake must present; also
    /// `WHATSAPP_CLOUD_VERIFY_TOKEN`.
    pub verify_token: Option<String>,
    /// `[[gateways.whatsapp_cloud.numbers]]`: numbers known before any
    /// delivery names them.
    pub numbers: Option<Vec<RawCloudNumber>>,
}

/// One `[[gateways.whatsapp_cloud.numbers]]`: a phone number id with the
/// display number and WABA that quality and account updates name it by.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCloudNumber {
    /// Meta's phone number id (the session, after `session_prefix`).
    pub phone_number_id: String,
    /// The number as people dial it (`+1 555 000 1234`).
    pub display_number: Option<String>,
    /// The WhatsApp Business Account id.
    pub waba: Option<String>,
}

/// A Cloud API number known from the settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudNumber {
    /// Its session.
    pub session: SessionId,
    /// Its display number, digits only.
    pub display_digits: Option<String>,
    /// Its WABA id.
    pub waba: Option<String>,
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
    /// Cloud API session id prefix (before the phone number id).
    pub cloud_prefix: String,
    /// When set, every Cloud API delivery must carry a valid
    /// `X-Hub-Signature-256`, and no bearer token is asked for.
    pub cloud_app_secret: Option<Secret>,
    /// The subscription handshake's token; without it, the handshake is
    /// refused.
    pub cloud_verify_token: Option<Secret>,
    /// Cloud API numbers named in the settings, besides those learned from
    /// deliveries.
    pub cloud_numbers: Vec<CloudNumber>,
}

/// The gateway settings the environment may give.
#[derive(Debug, Default)]
pub struct GatewayEnv {
    /// `WAHA_HMAC_KEY`.
    pub waha_hmac_key: Option<String>,
    /// `WHATSAPP_CLOUD_APP_SECRET`.
    pub cloud_app_secret: Option<String>,
    /// `WHATSAPP_CLOUD_VERIFY_TOKEN`.
    pub cloud_verify_token: Option<String>,
}

impl GatewaySettings {
    /// Checks `[gateways]`; `env` supplies the secrets the environment
    /// gives (they win over the file).
    pub fn check(raw: Option<RawGateways>, env: GatewayEnv) -> anyhow::Result<Self> {
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
        let secret = |env: Option<String>, file: Option<String>| {
            env.filter(|k| !k.is_empty())
                .or(file.filter(|k| !k.is_empty()))
                .map(Secret::new)
        };
        let cloud = raw.whatsapp_cloud.unwrap_or_default();
        let cloud_prefix = prefix("whatsapp_cloud", cloud.session_prefix)?;
        let mut cloud_numbers = Vec::new();
        for (i, n) in cloud.numbers.unwrap_or_default().into_iter().enumerate() {
            let at = format!("gateways.whatsapp_cloud.numbers[{i}]");
            let session = SessionId::parse(&format!("{cloud_prefix}{}", n.phone_number_id))
                .map_err(|e| anyhow::anyhow!("{at}.phone_number_id: {e}"))?;
            let display_digits = match n.display_number {
                None => None,
                Some(d) => match crate::gateways::whatsapp_cloud::digits(&d) {
                    Some(digits) => Some(digits),
                    None => anyhow::bail!(
                        "{at}.display_number: `{d}` holds no digits (write the number as Meta \
                         shows it, e.g. +1 555 000 1234)"
                    ),
                },
            };
            cloud_numbers.push(CloudNumber {
                session,
                display_digits,
                waba: n.waba.filter(|w| !w.is_empty()),
            });
        }
        Ok(Self {
            cloud_numbers,
            token_header,
            waha_prefix: prefix("waha", waha.session_prefix)?,
            waha_hmac_key: secret(env.waha_hmac_key, waha.hmac_key),
            cloud_prefix,
            cloud_app_secret: secret(env.cloud_app_secret, cloud.app_secret),
            cloud_verify_token: secret(env.cloud_verify_token, cloud.verify_token),
            evolution_prefix: prefix(
                "evolution",
                raw.evolution.unwrap_or_default().session_prefix,
            )?,
        })
    }
}
