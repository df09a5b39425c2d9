//! One file per receiver kind: each turns a payload into a request; this
//! module sends it and sorts the answer into delivered, retry later, or
//! give up.

pub mod alertmanager;
pub mod discord;
pub mod email;
pub mod google_chat;
pub mod log;
pub mod ntfy;
pub mod opsgenie;
pub mod pagerduty;
pub mod slack;
pub mod teams;
pub mod telegram;
pub mod webhook;
pub mod whatsapp;

use std::time::Duration;

use reqwest::StatusCode;
use wapulse_core::grouping::{GroupMessage, Status};

use super::config::{AlertingSettings, ReceiverKind, ReceiverSpec};
use super::payload::Payload;
use super::store::OutboxRow;

/// How a send ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver took it.
    Delivered,
    /// Try again later (after `after` when the receiver said so).
    Retry {
        /// The receiver's `Retry-After`.
        after: Option<Duration>,
        /// What went wrong.
        reason: String,
    },
    /// The request is wrong; repeating it cannot help.
    Permanent(String),
    /// Not sent at all: a replica's stale copy of a message no peer
    /// settled (cluster mode), settled unsent; why.
    Expired(String),
}

/// Sorts an HTTP answer: 2xx delivered; 408, 429 and 5xx retried (with
/// `Retry-After` in seconds when given); any other status given up.
pub fn classify(status: StatusCode, retry_after: Option<&str>, body: &str) -> Outcome {
    let snippet: String = body.chars().take(200).collect();
    if status.is_success() {
        Outcome::Delivered
    } else if status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
    {
        Outcome::Retry {
            after: retry_after.and_then(parse_retry_after),
            reason: format!("HTTP {status}: {snippet}"),
        }
    } else {
        Outcome::Permanent(format!("HTTP {status}: {snippet}"))
    }
}

/// `Retry-After` as seconds or as an HTTP date (RFC 9110), capped at an
/// hour; nonsense is ignored (the backoff applies).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
            let now = jiff::Timestamp::now();
            Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(Duration::from_secs(3600)))
}

/// Sends a request and classifies the answer; network errors and timeouts
/// are retried. Error texts never carry the URL (it may hold a token).
pub async fn exchange(request: reqwest::RequestBuilder, timeout: Duration) -> Outcome {
    exchange_with(request, timeout, |_| None).await
}

/// [`exchange`], for a receiver whose 429 says in its body how long to
/// wait (`wait_in`; it wins over `Retry-After`).
pub async fn exchange_with(
    request: reqwest::RequestBuilder,
    timeout: Duration,
    wait_in: fn(&str) -> Option<Duration>,
) -> Outcome {
    match request.timeout(timeout).send().await {
        Ok(response) => {
            let status = response.status();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response.text().await.unwrap_or_default();
            let mut outcome = classify(status, retry_after.as_deref(), &body);
            if status == StatusCode::TOO_MANY_REQUESTS
                && let Outcome::Retry { after, .. } = &mut outcome
                && let Some(wait) = wait_in(&body)
            {
                *after = Some(wait);
            }
            outcome
        }
        Err(e) => Outcome::Retry {
            after: None,
            reason: if e.is_timeout() {
                format!("no answer within {}", humantime::format_duration(timeout))
            } else {
                let e = e.without_url();
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    text.push_str(": ");
                    text.push_str(&s.to_string());
                    source = s.source();
                }
                text
            },
        },
    }
}

/// What a message says: its title line and, from the receiver's
/// template, its text. A template's text is plain text: each receiver
/// escapes it for its markup like every other text, and it replaces the
/// receiver's own account of what fires (what, action, the sessions).
pub struct Wording {
    /// The title line (wapulse's, or the template's).
    pub title: String,
    /// The template's text, if it has one.
    pub text: Option<String>,
}

impl Wording {
    /// The wording of `message` for `spec`.
    pub fn of(spec: &ReceiverSpec, message: &GroupMessage, settings: &AlertingSettings) -> Self {
        let rendered = spec
            .templates
            .as_ref()
            .map(|t| t.render(message, settings))
            .unwrap_or_default();
        Self {
            title: rendered.title.unwrap_or_else(|| title(message)),
            text: rendered.text,
        }
    }

    /// Wapulse's own wording (no template).
    pub fn plain(message: &GroupMessage) -> Self {
        Self {
            title: title(message),
            text: None,
        }
    }
}

/// Sends one outbox row to its receiver.
pub async fn send(
    spec: &ReceiverSpec,
    client: &reqwest::Client,
    row: &OutboxRow,
    payload: &Payload,
    settings: &AlertingSettings,
) -> Outcome {
    let mismatch = || {
        Outcome::Permanent(format!(
            "a {} receiver cannot send this notification (the configuration changed since it was queued)",
            spec.kind.name()
        ))
    };
    let message = match (&spec.kind, payload) {
        (ReceiverKind::Alertmanager { urls, resend }, Payload::Alerts { alerts, url }) => {
            let body = alertmanager::render(alerts, crate::clock::now(), *resend, settings);
            return match url {
                // The URL list changed since the row was written: send to
                // every one (they deduplicate).
                Some(i) if *i < urls.len() => {
                    alertmanager::post_all(client, &urls[*i..=*i], &body, spec.timeout).await
                }
                _ => alertmanager::post_all(client, urls, &body, spec.timeout).await,
            };
        }
        (_, Payload::Alerts { .. }) => return mismatch(),
        (_, Payload::Group { message }) => message,
    };
    let w = &Wording::of(spec, message, settings);
    match &spec.kind {
        ReceiverKind::Log => {
            log::print(&spec.name, w, message);
            Outcome::Delivered
        }
        ReceiverKind::Slack { url } => {
            let body = slack::render(w, message, settings);
            exchange(client.post(url.expose()).json(&body), spec.timeout).await
        }
        ReceiverKind::PagerDuty { routing_key, url } => {
            let body = pagerduty::render(w, message, routing_key.expose(), settings);
            exchange(client.post(url).json(&body), spec.timeout).await
        }
        ReceiverKind::Webhook { url, secret } => {
            let request = webhook::request(
                client.post(url.expose()),
                &spec.name,
                row,
                message,
                secret.as_ref(),
                crate::clock::now(),
            );
            exchange(request, spec.timeout).await
        }
        ReceiverKind::Discord { url } => {
            let body = discord::render(w, message, settings);
            let request = client.post(url.expose()).json(&body);
            exchange_with(request, spec.timeout, discord::retry_after_in).await
        }
        ReceiverKind::Ntfy { url, token } => {
            let Some((base, topic)) = ntfy::split_topic(url.expose()) else {
                return Outcome::Permanent("the ntfy URL names no topic".into());
            };
            let body = ntfy::render(&topic, w, message, settings);
            let mut request = client.post(base).json(&body);
            if let Some(token) = token {
                request = request.bearer_auth(token.expose());
            }
            exchange(request, spec.timeout).await
        }
        ReceiverKind::Telegram {
            url,
            bot_token,
            chat_id,
            thread_id,
        } => {
            let body = telegram::render(w, message, chat_id, *thread_id, settings);
            let endpoint = format!("{url}/bot{}/sendMessage", bot_token.expose());
            let request = client.post(endpoint).json(&body);
            exchange_with(request, spec.timeout, telegram::retry_after_in).await
        }
        ReceiverKind::Email { smtp } => match email::render(w, message, row.id, smtp, settings) {
            Ok(mail) => email::send(smtp, mail, spec.timeout, &settings.extra_roots).await,
            Err(e) => Outcome::Permanent(e),
        },
        ReceiverKind::Waha {
            url,
            api_key,
            session,
            chat_id,
            ..
        } => {
            let body = whatsapp::waha_body(session, chat_id, whatsapp::text(w, message, settings));
            let request = client
                .post(format!("{url}/api/sendText"))
                .header("x-api-key", api_key.expose())
                .json(&body);
            exchange(request, spec.timeout).await
        }
        ReceiverKind::Evolution {
            url,
            api_key,
            instance,
            number,
            ..
        } => {
            let body = whatsapp::evolution_body(number, whatsapp::text(w, message, settings));
            let request = client
                .post(format!("{url}/message/sendText/{}", path_segment(instance)))
                .header("apikey", api_key.expose())
                .json(&body);
            exchange(request, spec.timeout).await
        }
        ReceiverKind::Teams { url } => {
            let body = teams::render(w, message, settings);
            exchange(client.post(url.expose()).json(&body), spec.timeout).await
        }
        ReceiverKind::GoogleChat { url } => {
            let body = google_chat::render(w, message, settings);
            exchange(client.post(url.expose()).json(&body), spec.timeout).await
        }
        ReceiverKind::Opsgenie { url, api_key } => {
            let body = opsgenie::render(w, message, settings);
            let request = client
                .post(opsgenie::endpoint(url, message))
                .header(
                    reqwest::header::AUTHORIZATION,
                    format!("GenieKey {}", api_key.expose()),
                )
                .json(&body);
            exchange(request, spec.timeout).await
        }
        ReceiverKind::Alertmanager { .. } | ReceiverKind::Deadman { .. } => mismatch(),
    }
}

/// The alerts a message is about: its firing ones, or for a resolve its
/// resolved ones (the first leads: its summary and action are shown).
pub fn said(message: &GroupMessage) -> &[wapulse_core::grouping::NotifiedAlert] {
    if message.status == Status::Firing {
        &message.firing
    } else {
        &message.resolved
    }
}

/// The wait in seconds (a fraction allowed) a JSON body holds at
/// `pointer` (`/retry_after`), up to an hour; `None` when it holds none.
pub fn wait_in_json(body: &str, pointer: &str) -> Option<Duration> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.pointer(pointer).and_then(serde_json::Value::as_f64))
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(3600.0)))
}

/// Where a message links in the dashboard (with `external_url` set): the
/// session's page when it is about one session, the sessions with its code
/// when about one code, else the alerts page.
pub fn link(message: &GroupMessage, settings: &AlertingSettings) -> Option<String> {
    let base = settings.external_url.as_deref()?;
    let alerts = said(message);
    let mut sessions = alerts.iter().map(|a| a.session.as_str());
    let first = sessions.next().filter(|s| !s.is_empty());
    let one_session = first.filter(|s| sessions.all(|o| o == *s) && count_sessions(message) == 1);
    if let Some(id) = one_session {
        return Some(format!("{base}/ui/sessions/{}", path_segment(id)));
    }
    let mut codes = alerts.iter().map(|a| a.code.as_str());
    if let Some(code) = codes.next()
        && codes.all(|c| c == code)
    {
        return Some(format!("{base}/ui/sessions?code={}", path_segment(code)));
    }
    Some(format!("{base}/ui/alerts"))
}

/// The dashboard page of one session (Alertmanager's `generatorURL`).
pub fn session_link(settings: &AlertingSettings, session: &str) -> Option<String> {
    let base = settings.external_url.as_deref()?;
    Some(if session.is_empty() {
        format!("{base}/ui/alerts")
    } else {
        format!("{base}/ui/sessions/{}", path_segment(session))
    })
}

/// What [`path_segment`] escapes: all but RFC 3986's unreserved characters.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A session id or code made safe as one URL path segment or query value.
pub fn path_segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

/// Escapes `&`, `<` and `>`: all that Slack's mrkdwn, Telegram's HTML
/// mode, Google Chat's card text and an email's HTML read as markup there,
/// so a label cannot open a tag, a link or a mention.
pub fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Escapes what Markdown (Discord's, Teams' cards) reads as markup, with a
/// backslash, so that a label of `**x**` or `[a](http://b)` shows as
/// written and `@everyone` mentions nobody.
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '*'
                | '_'
                | '~'
                | '`'
                | '|'
                | '>'
                | '<'
                | '['
                | ']'
                | '('
                | ')'
                | '#'
                | '-'
                | '@'
                | ':'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// At most `max` characters, an ellipsis marking a cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// "37 sessions" / "1 session" / "2 incidents".
pub fn count_sessions(message: &GroupMessage) -> usize {
    let beyond = message.firing_total.saturating_sub(message.firing.len())
        + message
            .resolved_total
            .saturating_sub(message.resolved.len());
    let mut sessions: Vec<&str> = message
        .firing
        .iter()
        .chain(&message.resolved)
        .map(|a| a.session.as_str())
        .filter(|s| !s.is_empty())
        .collect();
    sessions.sort_unstable();
    sessions.dedup();
    sessions.len() + beyond
}

/// The one-line title of a message: "🔴 FIRING · 37 sessions ·
/// HEARTBEAT_DEAD · region=eu-1".
pub fn title(message: &GroupMessage) -> String {
    let mut title = headline(message);
    for (k, v) in &message.group_labels {
        if k != "code" && k != "alertname" && !v.is_empty() {
            title.push_str(&format!(" · {k}={v}"));
        }
    }
    title
}

/// The title without the group's labels: status, how many sessions, the
/// codes; nothing a label or a gateway wrote (Google Chat's notice).
pub fn headline(message: &GroupMessage) -> String {
    let mut parts = Vec::new();
    parts.push(match message.status {
        Status::Firing => "🔴 FIRING".to_owned(),
        Status::Resolved => "✅ RESOLVED".to_owned(),
    });
    let sessions = count_sessions(message);
    if sessions > 0 {
        parts.push(format!(
            "{sessions} session{}",
            if sessions == 1 { "" } else { "s" }
        ));
    }
    let mut codes: Vec<&str> = said(message).iter().map(|a| a.code.as_str()).collect();
    codes.sort_unstable();
    codes.dedup();
    if codes.len() <= 3 {
        parts.push(codes.join(", "));
    } else {
        parts.push(format!("{} codes", codes.len()));
    }
    parts.join(" · ")
}

/// The sessions of a list of alerts, capped at `max` with "+N more"
/// (`total`: how many there are, the list may hold fewer).
pub fn session_list(
    alerts: &[wapulse_core::grouping::NotifiedAlert],
    total: usize,
    max: usize,
) -> String {
    let mut lines: Vec<String> = alerts
        .iter()
        .take(max)
        .map(|a| {
            if a.session.is_empty() {
                format!("{}: {}", a.code, a.summary)
            } else {
                format!("{} · {}: {}", a.session, a.code, a.summary)
            }
        })
        .collect();
    let total = total.max(alerts.len());
    if total > max.min(alerts.len()) {
        lines.push(format!("+{} more", total - max.min(alerts.len())));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests;
