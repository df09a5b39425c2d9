//! `[[receivers]]` tables: what each kind takes, checked.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use wapulse_core::DurationMs;

use crate::secret::Secret;

/// One `[[receivers]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReceiver {
    pub(super) name: String,
    kind: String,
    url: Option<StringOrList>,
    routing_key: Option<String>,
    secret: Option<String>,
    token: Option<String>,
    api_key: Option<String>,
    bot_token: Option<String>,
    chat_id: Option<ChatId>,
    thread_id: Option<i64>,
    session: Option<String>,
    instance: Option<String>,
    number: Option<String>,
    watch_session: Option<String>,
    fallback: Option<String>,
    title_template: Option<String>,
    text_template: Option<String>,
    template_file: Option<std::path::PathBuf>,
    smtp_host: Option<String>,
    smtp_port: Option<u16>,
    tls: Option<String>,
    username: Option<String>,
    password: Option<String>,
    from: Option<String>,
    to: Option<StringOrList>,
    timeout: Option<DurationMs>,
    interval: Option<DurationMs>,
    rate_per_second: Option<f64>,
}

/// A Telegram chat: a number (`-1001234567890`) or `@channelname`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ChatId {
    Number(i64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

/// What a receiver is, with what it needs.
#[derive(Clone, Debug)]
pub enum ReceiverKind {
    /// A Slack incoming webhook (the URL is the secret).
    Slack {
        /// The webhook URL.
        url: Secret,
    },
    /// PagerDuty Events API v2.
    PagerDuty {
        /// The integration's routing key.
        routing_key: Secret,
        /// The enqueue URL.
        url: String,
    },
    /// A generic JSON webhook, signed per Standard Webhooks when a secret
    /// is set.
    Webhook {
        /// Where to post.
        url: Secret,
        /// The signing secret (`whsec_…` base64, or raw text).
        secret: Option<Secret>,
    },
    /// A Discord webhook (the URL is the secret).
    Discord {
        /// The webhook URL.
        url: Secret,
    },
    /// An ntfy topic (self-hosted or public).
    Ntfy {
        /// The server and topic (`https://ntfy.sh/alerts`; on the public
        /// server the topic name is the secret).
        url: Secret,
        /// A bearer token for a protected topic.
        token: Option<Secret>,
    },
    /// A Telegram bot's `sendMessage`.
    Telegram {
        /// The API base (`https://api.telegram.org`).
        url: String,
        /// The bot's token (it goes in the request's path).
        bot_token: Secret,
        /// The chat: a number or `@channelname`, as JSON.
        chat_id: serde_json::Value,
        /// A forum topic of that chat.
        thread_id: Option<i64>,
    },
    /// WhatsApp through WAHA's `sendText`.
    Waha {
        /// WAHA's base URL.
        url: String,
        /// WAHA's API key (`X-Api-Key`).
        api_key: Secret,
        /// The WAHA session that sends.
        session: String,
        /// The chat (`<number>@c.us` or `<group>@g.us`).
        chat_id: String,
        /// The watched sending session and the fallback.
        sender: Sender,
    },
    /// WhatsApp through Evolution API's `sendText`.
    Evolution {
        /// Evolution's base URL.
        url: String,
        /// Evolution's API key (`apikey`).
        api_key: Secret,
        /// The instance that sends.
        instance: String,
        /// The number or group to send to.
        number: String,
        /// The watched sending session and the fallback.
        sender: Sender,
    },
    /// Email over SMTP.
    Email {
        /// The server, the sender and the recipients.
        smtp: Box<crate::alerting::receivers::email::Smtp>,
    },
    /// A Microsoft Teams Workflows webhook (the URL is the secret).
    Teams {
        /// The webhook URL.
        url: Secret,
    },
    /// A Google Chat incoming webhook (the URL holds its key and token).
    GoogleChat {
        /// The webhook URL.
        url: Secret,
    },
    /// Opsgenie's Alerts API.
    Opsgenie {
        /// The API base (`https://api.opsgenie.com`, or the EU one).
        url: String,
        /// The integration's API key.
        api_key: Secret,
    },
    /// Prometheus Alertmanager v2 (every URL gets every alert).
    Alertmanager {
        /// Base URLs (`http://am:9093`; may hold credentials).
        urls: Vec<Secret>,
        /// How often firing alerts are sent again.
        resend: Duration,
    },
    /// A dead-man's switch pinged while wapulse is healthy.
    Deadman {
        /// The ping URL.
        url: Secret,
        /// How often.
        interval: Duration,
    },
    /// Writes each notification to the log (the demo's receiver).
    Log,
}

/// A WhatsApp receiver's own session, watched, and who gets its messages
/// while that session is unhealthy.
#[derive(Clone, Debug)]
pub struct Sender {
    /// The wapulse session watched (the WAHA session or Evolution
    /// instance's id, or `watch_session`).
    pub watch: String,
    /// The receiver that gets the messages meanwhile (`fallback`).
    pub fallback: Option<String>,
}

impl ReceiverKind {
    /// A WhatsApp receiver's sender.
    pub fn sender(&self) -> Option<&Sender> {
        match self {
            ReceiverKind::Waha { sender, .. } | ReceiverKind::Evolution { sender, .. } => {
                Some(sender)
            }
            _ => None,
        }
    }

    /// The kind's name.
    pub fn name(&self) -> &'static str {
        match self {
            ReceiverKind::Slack { .. } => "slack",
            ReceiverKind::PagerDuty { .. } => "pagerduty",
            ReceiverKind::Webhook { .. } => "webhook",
            ReceiverKind::Discord { .. } => "discord",
            ReceiverKind::Ntfy { .. } => "ntfy",
            ReceiverKind::Telegram { .. } => "telegram",
            ReceiverKind::Teams { .. } => "teams",
            ReceiverKind::Email { .. } => "email",
            ReceiverKind::Waha { .. } => "waha",
            ReceiverKind::Evolution { .. } => "evolution",
            ReceiverKind::GoogleChat { .. } => "google_chat",
            ReceiverKind::Opsgenie { .. } => "opsgenie",
            ReceiverKind::Alertmanager { .. } => "alertmanager",
            ReceiverKind::Deadman { .. } => "deadman",
            ReceiverKind::Log => "log",
        }
    }
}

/// A checked receiver.
#[derive(Clone, Debug)]
pub struct ReceiverSpec {
    /// Its templates (`title_template`, `text_template`, `template_file`).
    pub templates: Option<std::sync::Arc<crate::alerting::templates::Templates>>,
    /// Its name (routes and metrics use it).
    pub name: String,
    /// What it is.
    pub kind: ReceiverKind,
    /// Each request's timeout.
    pub timeout: Duration,
    /// Most requests per second (the target's rate limit).
    pub rate_per_second: f64,
}

fn http_url(field: &str, text: &str) -> Result<()> {
    match reqwest::Url::parse(text) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(()),
        _ => {
            let (shown, _) = crate::secret::redact_url(text);
            bail!("{field}: `{shown}` is not an http(s) URL")
        }
    }
}

fn one_url(r: &RawReceiver) -> Result<String> {
    match &r.url {
        Some(StringOrList::One(u)) => {
            http_url("url", u).map_err(|_| anyhow::anyhow!("url: not an http(s) URL"))?;
            Ok(u.clone())
        }
        Some(StringOrList::Many(_)) => bail!("url: a {} receiver takes one URL", r.kind),
        None => bail!("url: required for a {} receiver", r.kind),
    }
}

pub(super) fn check_receiver(
    r: RawReceiver,
    settings: &super::AlertingSettings,
) -> Result<ReceiverSpec> {
    if r.name.is_empty()
        || !r
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        bail!("name: `{}` is not a name of letters, digits, _ - .", r.name);
    }
    let (kind, rate) = match r.kind.as_str() {
        "slack" => (
            ReceiverKind::Slack {
                url: Secret::new(one_url(&r)?),
            },
            1.0,
        ),
        "pagerduty" => {
            let routing_key = required(&r.routing_key, "routing_key", "a pagerduty")?;
            let url = url_or(&r, "https://events.pagerduty.com/v2/enqueue")?;
            (
                ReceiverKind::PagerDuty {
                    routing_key: Secret::new(routing_key),
                    url,
                },
                2.0,
            )
        }
        "webhook" => (
            ReceiverKind::Webhook {
                url: Secret::new(one_url(&r)?),
                secret: r.secret.clone().filter(|s| !s.is_empty()).map(Secret::new),
            },
            10.0,
        ),
        // Discord allows 5 requests per 2 s per webhook.
        "discord" => (
            ReceiverKind::Discord {
                url: Secret::new(one_url(&r)?),
            },
            2.0,
        ),
        "ntfy" => {
            let url = one_url(&r)?;
            if crate::alerting::receivers::ntfy::split_topic(&url).is_none() {
                let (shown, _) = crate::secret::redact_url(&url);
                bail!(
                    "url: `{shown}` names no topic (an ntfy URL is the server and the topic: https://ntfy.sh/<topic>)"
                );
            }
            (
                ReceiverKind::Ntfy {
                    url: Secret::new(url),
                    token: r.token.clone().filter(|t| !t.is_empty()).map(Secret::new),
                },
                2.0,
            )
        }
        // Telegram allows about one message a second per chat.
        "telegram" => {
            let bot_token = required(&r.bot_token, "bot_token", "a telegram")?;
            if !bot_token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'))
            {
                bail!("bot_token: not a bot token (digits, a colon, letters)");
            }
            let chat_id = match &r.chat_id {
                Some(ChatId::Number(n)) => serde_json::json!(n),
                Some(ChatId::Text(t)) if t.starts_with('@') && t.len() > 1 => serde_json::json!(t),
                Some(ChatId::Text(t)) => match t.parse::<i64>() {
                    Ok(n) => serde_json::json!(n),
                    Err(_) => bail!("chat_id: `{t}` is neither a chat number nor @channelname"),
                },
                None => bail!("chat_id: required for a telegram receiver"),
            };
            let url = url_or(&r, "https://api.telegram.org")?;
            (
                ReceiverKind::Telegram {
                    url,
                    bot_token: Secret::new(bot_token),
                    chat_id,
                    thread_id: r.thread_id,
                },
                1.0,
            )
        }
        // Teams: Workflows URLs live on several Microsoft domains; the host
        // is not checked.
        "teams" => (
            ReceiverKind::Teams {
                url: Secret::new(one_url(&r)?),
            },
            1.0,
        ),
        // Google Chat allows one message a second per space.
        "google_chat" => (
            ReceiverKind::GoogleChat {
                url: Secret::new(one_url(&r)?),
            },
            1.0,
        ),
        "opsgenie" => {
            let api_key = required(&r.api_key, "api_key", "an opsgenie")?;
            let url = url_or(&r, "https://api.opsgenie.com")?;
            (
                ReceiverKind::Opsgenie {
                    url,
                    api_key: Secret::new(api_key),
                },
                2.0,
            )
        }
        "alertmanager" => {
            let urls = match &r.url {
                Some(StringOrList::One(u)) => vec![u.clone()],
                Some(StringOrList::Many(us)) if !us.is_empty() => us.clone(),
                _ => bail!("url: required for an alertmanager receiver (one URL or a list)"),
            };
            for u in &urls {
                http_url("url", u)?;
            }
            let resend = r.interval.unwrap_or(DurationMs::from_mins(1));
            if resend < DurationMs::from_millis(100) {
                bail!("interval: at least 100ms");
            }
            (
                ReceiverKind::Alertmanager {
                    urls: urls
                        .into_iter()
                        .map(|u| Secret::new(u.trim_end_matches('/')))
                        .collect(),
                    resend: Duration::from_millis(resend.as_millis()),
                },
                50.0,
            )
        }
        "deadman" => {
            let interval = r.interval.unwrap_or(DurationMs::from_mins(1));
            if interval < DurationMs::from_millis(100) {
                bail!("interval: at least 100ms");
            }
            (
                ReceiverKind::Deadman {
                    url: Secret::new(one_url(&r)?),
                    interval: Duration::from_millis(interval.as_millis()),
                },
                10.0,
            )
        }
        "waha" => {
            let session = required(&r.session, "session", "a waha")?;
            let chat_id = match &r.chat_id {
                Some(ChatId::Number(n)) if *n > 0 => n.to_string(),
                Some(ChatId::Text(t))
                    if !t.trim().is_empty() && !t.contains(char::is_whitespace) =>
                {
                    t.clone()
                }
                Some(_) => {
                    bail!("chat_id: not a WhatsApp chat (a number, <number>@c.us or <group>@g.us)")
                }
                None => bail!("chat_id: required for a waha receiver"),
            };
            (
                ReceiverKind::Waha {
                    url: one_url(&r)?.trim_end_matches('/').to_owned(),
                    api_key: Secret::new(required(&r.api_key, "api_key", "a waha")?),
                    chat_id: crate::alerting::receivers::whatsapp::waha_chat(&chat_id),
                    sender: sender(&r, &session)?,
                    session,
                },
                WHATSAPP_RATE,
            )
        }
        "evolution" => {
            let instance = required(&r.instance, "instance", "an evolution")?;
            (
                ReceiverKind::Evolution {
                    url: one_url(&r)?.trim_end_matches('/').to_owned(),
                    api_key: Secret::new(required(&r.api_key, "api_key", "an evolution")?),
                    number: required(&r.number, "number", "an evolution")?,
                    sender: sender(&r, &instance)?,
                    instance,
                },
                WHATSAPP_RATE,
            )
        }
        "email" => (
            ReceiverKind::Email {
                smtp: Box::new(check_smtp(&r)?),
            },
            1.0,
        ),
        "log" => (ReceiverKind::Log, 1000.0),
        other => bail!(
            "kind: `{other}` is not one of slack, pagerduty, webhook, discord, ntfy, telegram, email, teams, google_chat, opsgenie, waha, evolution, alertmanager, deadman, log"
        ),
    };
    // Fields only some kinds take: which, and who says so.
    const WA: &[&str] = &["waha", "evolution"];
    let only: [(bool, &str, &[&str], &str); 19] = [
        (
            r.routing_key.is_some(),
            "routing_key",
            &["pagerduty"],
            "a pagerduty receiver",
        ),
        (
            r.secret.is_some(),
            "secret",
            &["webhook"],
            "a webhook receiver",
        ),
        (r.token.is_some(), "token", &["ntfy"], "an ntfy receiver"),
        (
            r.api_key.is_some(),
            "api_key",
            &["opsgenie", "waha", "evolution"],
            "opsgenie, waha and evolution receivers",
        ),
        (
            r.bot_token.is_some(),
            "bot_token",
            &["telegram"],
            "a telegram receiver",
        ),
        (
            r.thread_id.is_some(),
            "thread_id",
            &["telegram"],
            "a telegram receiver",
        ),
        (
            r.chat_id.is_some(),
            "chat_id",
            &["telegram", "waha"],
            "a telegram or waha receiver",
        ),
        (r.session.is_some(), "session", &["waha"], "a waha receiver"),
        (
            r.instance.is_some(),
            "instance",
            &["evolution"],
            "an evolution receiver",
        ),
        (
            r.number.is_some(),
            "number",
            &["evolution"],
            "an evolution receiver",
        ),
        (
            r.watch_session.is_some(),
            "watch_session",
            WA,
            "a waha or evolution receiver",
        ),
        (
            r.fallback.is_some(),
            "fallback",
            WA,
            "a waha or evolution receiver",
        ),
        (
            r.smtp_host.is_some(),
            "smtp_host",
            &["email"],
            "an email receiver",
        ),
        (
            r.smtp_port.is_some(),
            "smtp_port",
            &["email"],
            "an email receiver",
        ),
        (r.tls.is_some(), "tls", &["email"], "an email receiver"),
        (
            r.username.is_some(),
            "username",
            &["email"],
            "an email receiver",
        ),
        (
            r.password.is_some(),
            "password",
            &["email"],
            "an email receiver",
        ),
        (r.from.is_some(), "from", &["email"], "an email receiver"),
        (r.to.is_some(), "to", &["email"], "an email receiver"),
    ];
    for (set, field, kinds, who) in only {
        if set && !kinds.contains(&kind.name()) {
            let takes = if who.ends_with("receivers") {
                "take"
            } else {
                "takes"
            };
            bail!("{field}: only {who} {takes} one");
        }
    }
    let rate_per_second = r.rate_per_second.unwrap_or(rate);
    if !(0.001..=10_000.0).contains(&rate_per_second) {
        bail!("rate_per_second: {rate_per_second} is not between 0.001 and 10000");
    }
    if let Some(secret) = r.secret.as_deref()
        && let Some(b64) = secret.strip_prefix("whsec_")
        && base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).is_err()
    {
        bail!("secret: a whsec_ secret must be base64 after the prefix");
    }
    let templated =
        r.title_template.is_some() || r.text_template.is_some() || r.template_file.is_some();
    if templated && ["webhook", "alertmanager", "deadman"].contains(&kind.name()) {
        bail!(
            "title_template / text_template / template_file: a {} receiver sends no text to template",
            kind.name()
        );
    }
    let templates = if templated {
        let loaded = crate::alerting::templates::Templates::load(
            r.title_template.as_deref(),
            r.text_template.as_deref(),
            r.template_file.as_deref(),
            settings,
        )?;
        Some(std::sync::Arc::new(loaded))
    } else {
        None
    };
    Ok(ReceiverSpec {
        templates,
        name: r.name,
        kind,
        timeout: Duration::from_millis(r.timeout.unwrap_or(DurationMs::from_secs(10)).as_millis()),
        rate_per_second,
    })
}

/// An email receiver's server, sender and recipients.
fn check_smtp(r: &RawReceiver) -> Result<crate::alerting::receivers::email::Smtp> {
    use crate::alerting::receivers::email::{Security, Smtp};
    use lettre::message::Mailbox;
    if r.url.is_some() {
        bail!("url: an email receiver takes smtp_host and smtp_port, not url");
    }
    let host = r
        .smtp_host
        .clone()
        .filter(|h| !h.trim().is_empty())
        .context("smtp_host: required for an email receiver")?;
    if host
        .chars()
        .any(|c| c.is_whitespace() || c == '/' || c == ':')
        && host.parse::<std::net::Ipv6Addr>().is_err()
    {
        bail!("smtp_host: `{host}` is not a host name or address");
    }
    let security = match r.tls.as_deref().unwrap_or("starttls") {
        "starttls" => Security::StartTls,
        "implicit" => Security::Implicit,
        "none" => Security::None,
        other => bail!("tls: `{other}` is not one of starttls, implicit, none"),
    };
    let port = r.smtp_port.unwrap_or(match security {
        Security::StartTls => 587,
        Security::Implicit => 465,
        Security::None => 25,
    });
    if port == 0 {
        bail!("smtp_port: 0 is not a port");
    }
    let username = r.username.clone().filter(|u| !u.is_empty());
    let password = r.password.clone().filter(|p| !p.is_empty());
    match (&username, &password) {
        (Some(_), None) => bail!("password: required with username"),
        (None, Some(_)) => bail!("username: required with password"),
        _ => {}
    }
    let local = matches!(host.as_str(), "localhost" | "127.0.0.1" | "::1");
    if password.is_some() && security == Security::None && !local {
        bail!(
            "password: would cross the network unencrypted with tls = \"none\"; use tls = \"starttls\" or \"implicit\""
        );
    }
    let from = match (&r.from, &username) {
        (Some(from), _) => from
            .parse::<Mailbox>()
            .map_err(|e| anyhow::anyhow!("from: `{from}` is not an email address ({e})"))?,
        (None, Some(user)) => user.parse::<Mailbox>().map_err(|_| {
            anyhow::anyhow!("from: required (the username `{user}` is not an email address)")
        })?,
        (None, None) => bail!("from: required (the sender's address)"),
    };
    let to = match &r.to {
        Some(StringOrList::One(one)) => vec![one.clone()],
        Some(StringOrList::Many(many)) => many.clone(),
        None => Vec::new(),
    };
    if to.is_empty() {
        bail!("to: required for an email receiver (one address or a list)");
    }
    let to = to
        .iter()
        .map(|t| {
            t.parse::<Mailbox>()
                .map_err(|e| anyhow::anyhow!("to: `{t}` is not an email address ({e})"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Smtp {
        host,
        port,
        security,
        username,
        password: password.map(Secret::new),
        from,
        to,
    })
}

/// One WhatsApp message every 5 s at most: a number that sends in bursts
/// risks being flagged as spam (messages are grouped already).
const WHATSAPP_RATE: f64 = 0.2;

/// A required text field (`kind` with its article: "an opsgenie").
fn required(value: &Option<String>, field: &str, kind: &str) -> Result<String> {
    value
        .clone()
        .filter(|v| !v.trim().is_empty())
        .with_context(|| format!("{field}: required for {kind} receiver"))
}

/// The receiver's one URL, else `default`; without a trailing slash.
fn url_or(r: &RawReceiver, default: &str) -> Result<String> {
    Ok(match &r.url {
        None => default.to_owned(),
        Some(_) => one_url(r)?.trim_end_matches('/').to_owned(),
    })
}

/// A WhatsApp receiver's watched session (its gateway session unless
/// `watch_session` names another) and fallback (checked against the other
/// receivers by the caller).
fn sender(r: &RawReceiver, own: &str) -> Result<Sender> {
    let watch = r.watch_session.clone().unwrap_or_else(|| own.to_owned());
    if wapulse_core::SessionId::parse(&watch).is_err() {
        bail!("watch_session: `{watch}` is not a session id");
    }
    let fallback = r.fallback.clone().filter(|f| !f.is_empty());
    if fallback.as_deref() == Some(r.name.as_str()) {
        bail!("fallback: a receiver cannot be its own fallback");
    }
    Ok(Sender { watch, fallback })
}
