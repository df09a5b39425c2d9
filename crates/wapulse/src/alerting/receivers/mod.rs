//! One file per receiver kind: each turns a payload into a request; this
//! module sends it and sorts the answer into delivered, retry later, or
//! give up.

pub mod alertmanager;
pub mod log;
pub mod pagerduty;
pub mod slack;
pub mod webhook;

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
    match request.timeout(timeout).send().await {
        Ok(response) => {
            let status = response.status();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response.text().await.unwrap_or_default();
            classify(status, retry_after.as_deref(), &body)
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

/// Sends one outbox row to its receiver.
pub async fn send(
    spec: &ReceiverSpec,
    client: &reqwest::Client,
    row: &OutboxRow,
    payload: &Payload,
    settings: &AlertingSettings,
) -> Outcome {
    match (&spec.kind, payload) {
        (ReceiverKind::Log, Payload::Group { message }) => {
            log::print(&spec.name, message);
            Outcome::Delivered
        }
        (ReceiverKind::Slack { url }, Payload::Group { message }) => {
            let body = slack::render(message, settings);
            exchange(client.post(url.expose()).json(&body), spec.timeout).await
        }
        (ReceiverKind::PagerDuty { routing_key, url }, Payload::Group { message }) => {
            let body = pagerduty::render(message, routing_key.expose(), settings);
            exchange(client.post(url).json(&body), spec.timeout).await
        }
        (ReceiverKind::Webhook { url, secret }, Payload::Group { message }) => {
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
        (ReceiverKind::Alertmanager { urls, resend }, Payload::Alerts { alerts, url }) => {
            let body = alertmanager::render(alerts, crate::clock::now(), *resend, settings);
            match url {
                // The URL list changed since the row was written: send to
                // every one (they deduplicate).
                Some(i) if *i < urls.len() => {
                    alertmanager::post_all(client, &urls[*i..=*i], &body, spec.timeout).await
                }
                _ => alertmanager::post_all(client, urls, &body, spec.timeout).await,
            }
        }
        (kind, _) => Outcome::Permanent(format!(
            "a {} receiver cannot send this notification (the configuration changed since it was queued)",
            kind.name()
        )),
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
    let mut parts = Vec::new();
    parts.push(match message.status {
        Status::Firing => "🔴 FIRING".to_owned(),
        Status::Resolved => "✅ RESOLVED".to_owned(),
    });
    let alerts = if message.status == Status::Firing {
        &message.firing
    } else {
        &message.resolved
    };
    let sessions = count_sessions(message);
    if sessions > 0 {
        parts.push(format!(
            "{sessions} session{}",
            if sessions == 1 { "" } else { "s" }
        ));
    }
    let mut codes: Vec<&str> = alerts.iter().map(|a| a.code.as_str()).collect();
    codes.sort_unstable();
    codes.dedup();
    if codes.len() <= 3 {
        parts.push(codes.join(", "));
    } else {
        parts.push(format!("{} codes", codes.len()));
    }
    for (k, v) in &message.group_labels {
        if k != "code" && k != "alertname" && !v.is_empty() {
            parts.push(format!("{k}={v}"));
        }
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
mod tests {
    use std::collections::BTreeMap;

    use wapulse_core::grouping::NotifiedAlert;
    use wapulse_core::{Level, Timestamp};

    use super::*;

    #[test]
    fn answers_sort_into_delivered_retry_and_give_up() {
        let s = |c| StatusCode::from_u16(c).unwrap();
        assert_eq!(classify(s(200), None, ""), Outcome::Delivered);
        assert_eq!(classify(s(202), None, ""), Outcome::Delivered);
        for code in [408, 429, 500, 502, 503] {
            assert!(
                matches!(classify(s(code), None, ""), Outcome::Retry { .. }),
                "{code}"
            );
        }
        match classify(s(429), Some("7"), "slow down") {
            Outcome::Retry { after, reason } => {
                assert_eq!(after, Some(Duration::from_secs(7)));
                assert!(reason.contains("429") && reason.contains("slow down"));
            }
            other => panic!("{other:?}"),
        }
        for code in [400, 401, 403, 404, 410] {
            assert!(
                matches!(classify(s(code), None, ""), Outcome::Permanent(_)),
                "{code}"
            );
        }
    }

    #[test]
    fn backoff_grows_with_jitter_and_honours_retry_after() {
        use crate::alerting::outbox::backoff;
        for attempts in 0..12u32 {
            let d = backoff(attempts, None);
            let base = Duration::from_secs(1u64 << attempts.min(9)).min(Duration::from_secs(300));
            assert!(
                d >= base.mul_f64(0.5) && d < base.mul_f64(1.5),
                "{attempts}: {d:?}"
            );
        }
        assert_eq!(
            backoff(0, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        assert_eq!(
            backoff(0, Some(Duration::from_secs(99_999))),
            Duration::from_secs(3600)
        );
    }

    fn message(group_labels: BTreeMap<String, String>, n: usize) -> GroupMessage {
        let alert = |i: usize| NotifiedAlert {
            session: format!("session-{i:05}"),
            code: "HEARTBEAT_DEAD".into(),
            level: Level::Critical,
            status: Status::Firing,
            starts_at: Timestamp::from_millis(1_770_000_000_000),
            ends_at: None,
            summary: "No heartbeat for 5m".into(),
            action: "Force a reconnect".into(),
            flapping: false,
            labels: Default::default(),
            sessions: Vec::new(),
            affected: None,
            retired: false,
        };
        GroupMessage {
            group_key: "k".repeat(400),
            group_labels,
            status: Status::Firing,
            firing: (0..n).map(alert).collect(),
            resolved: Vec::new(),
            firing_total: n,
            resolved_total: 0,
            repeat: false,
        }
    }

    #[test]
    fn slack_stays_within_its_limits_for_a_huge_group() {
        let labels: BTreeMap<String, String> = [("region".to_owned(), "r".repeat(500))]
            .into_iter()
            .collect();
        let body = slack::render(&message(labels, 5000), &AlertingSettings::default());
        let blocks = body["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50);
        assert!(blocks[0]["text"]["text"].as_str().unwrap().chars().count() <= 150);
        for b in blocks {
            if let Some(t) = b["text"]["text"].as_str() {
                assert!(t.chars().count() <= 3000);
            }
        }
        let listed = body.to_string();
        assert!(listed.contains("+4980 more"), "capped at 20 sessions");
        assert!(body["text"].as_str().unwrap().contains("5000 sessions"));
    }

    #[test]
    fn slack_markup_in_labels_and_summaries_is_escaped() {
        let labels: BTreeMap<String, String> = [(
            "team".to_owned(),
            "<!channel> & <https://evil|click>".to_owned(),
        )]
        .into_iter()
        .collect();
        let mut m = message(labels, 1);
        m.firing[0].summary = "<!here>".into();
        let body = slack::render(&m, &AlertingSettings::default());
        let text = body["text"].as_str().unwrap();
        assert!(
            !text.contains("<!channel>") && !text.contains("<!here>"),
            "{text}"
        );
        assert!(
            text.contains("&lt;!channel&gt; &amp; &lt;https://evil|click&gt;"),
            "{text}"
        );
        for b in body["blocks"].as_array().unwrap().iter().skip(1) {
            let t = b.to_string();
            assert!(!t.contains("<!here>") && !t.contains("<!channel>"), "{t}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates_and_ignores_nonsense() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999"),
            None,
            "not a u64: not a date either"
        );
        assert_eq!(
            parse_retry_after("86400"),
            Some(Duration::from_secs(3600)),
            "capped"
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(
            parse_retry_after("1e20"),
            None,
            "no float parsing, no overflow"
        );
        let past = parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(past, Some(Duration::ZERO), "a date in the past: now");
        let ahead = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(120);
        let text = jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&ahead)
            .unwrap();
        let wait = parse_retry_after(&text).unwrap();
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
    }

    #[test]
    fn pagerduty_keys_stay_stable_and_short() {
        let m = message(BTreeMap::new(), 1);
        let body = pagerduty::render(&m, "rk", &AlertingSettings::default());
        let key = body["dedup_key"].as_str().unwrap();
        assert!(key.len() <= 255);
        assert_eq!(
            key,
            pagerduty::dedup_key(&m.group_key),
            "the same for every message of a group"
        );
        assert_eq!(pagerduty::dedup_key("a/b"), "wapulse/a/b");
        assert!(body["payload"]["summary"].as_str().unwrap().chars().count() <= 1024);
    }
}
