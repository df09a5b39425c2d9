//! Prometheus Alertmanager v2: `POST /api/v2/alerts` to every configured
//! Alertmanager. Firing alerts carry an `endsAt` four resend intervals
//! ahead and are sent again every interval (else Alertmanager resolves
//! them by itself); a resolve is sent explicitly with `endsAt` at the
//! resolve. Labels are the same from every wapulse replica (`alertname`,
//! `session`, `severity`, the session's labels; nothing replica-specific),
//! so Alertmanager sees one alert however many replicas send it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use wapulse_core::grouping::{NotifiedAlert, Status};
use wapulse_core::{DurationMs, Timestamp};

use super::{Outcome, exchange};
use crate::alerting::config::AlertingSettings;

/// The labels Alertmanager identifies an alert by.
pub fn labels(a: &NotifiedAlert) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = (*a.labels).clone();
    labels.insert("alertname".into(), a.code.clone());
    labels.insert("severity".into(), a.level.as_str().into());
    if !a.session.is_empty() {
        labels.insert("session".into(), a.session.clone());
    }
    labels
}

/// One alert in Alertmanager's form, as of `now`.
pub fn alert(
    a: &NotifiedAlert,
    now: Timestamp,
    resend: Duration,
    settings: &AlertingSettings,
) -> Value {
    let ends = match (a.status, a.ends_at) {
        (Status::Resolved, Some(end)) => end,
        (Status::Resolved, None) => now,
        (Status::Firing, _) => now.plus(DurationMs::from_millis(4 * resend.as_millis() as u64)),
    };
    let mut annotations = json!({"summary": a.summary, "action": a.action});
    if !a.sessions.is_empty() {
        annotations["sessions"] = json!(a.sessions.join(", "));
    }
    if let Some(n) = a.affected {
        annotations["affected"] = json!(n.to_string());
    }
    if a.retired {
        annotations["retired"] = json!("true");
    }
    json!({
        "labels": labels(a),
        "annotations": annotations,
        "startsAt": a.starts_at.to_rfc3339(),
        "endsAt": ends.to_rfc3339(),
        "generatorURL": super::session_link(settings, &a.session).unwrap_or_default(),
    })
}

/// The always-firing `Watchdog`: if it stops arriving, wapulse (or the
/// path to Alertmanager) is down.
pub fn watchdog(started: Timestamp, now: Timestamp, resend: Duration) -> Value {
    json!({
        "labels": {"alertname": "Watchdog", "severity": "none"},
        "annotations": {"summary": "wapulse is alive: this alert always fires. Route it to a dead-man's switch."},
        "startsAt": started.to_rfc3339(),
        "endsAt": now.plus(DurationMs::from_millis(4 * resend.as_millis() as u64)).to_rfc3339(),
    })
}

/// The request body for `alerts` as of `now`.
pub fn render(
    alerts: &[NotifiedAlert],
    now: Timestamp,
    resend: Duration,
    settings: &AlertingSettings,
) -> Value {
    Value::Array(
        alerts
            .iter()
            .map(|a| alert(a, now, resend, settings))
            .collect(),
    )
}

/// `{base}/api/v2/alerts`, keeping the base's path prefix and query
/// (an Alertmanager behind a proxy at `https://h/am?x=1`).
pub fn endpoint(base: &str) -> String {
    match reqwest::Url::parse(base) {
        Ok(mut url) => {
            if let Ok(mut path) = url.path_segments_mut() {
                path.pop_if_empty().extend(["api", "v2", "alerts"]);
            }
            url.to_string()
        }
        Err(_) => format!("{base}/api/v2/alerts"),
    }
}

/// Posts to every Alertmanager: delivered only when every one took it
/// (they deduplicate, so a retry that repeats it to one that had it is
/// harmless).
pub async fn post_all(
    client: &reqwest::Client,
    urls: &[crate::secret::Secret],
    body: &Value,
    timeout: Duration,
) -> Outcome {
    let mut worst = Outcome::Delivered;
    for url in urls {
        let outcome = exchange(client.post(endpoint(url.expose())).json(body), timeout).await;
        match (&worst, outcome) {
            (_, Outcome::Delivered) => {}
            (Outcome::Permanent(_), _) => {}
            (_, other) => worst = other,
        }
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::endpoint;

    #[test]
    fn the_endpoint_keeps_the_base_path_and_query() {
        assert_eq!(endpoint("http://am:9093"), "http://am:9093/api/v2/alerts");
        assert_eq!(endpoint("http://am:9093/"), "http://am:9093/api/v2/alerts");
        assert_eq!(
            endpoint("https://h/am/?token=x"),
            "https://h/am/api/v2/alerts?token=x"
        );
    }
}
