//! `wapulse check [URL]`: a Nagios/Icinga plugin and Docker healthcheck.
//!
//! Exit codes follow the plugin convention: 0 OK, 1 WARNING, 2 CRITICAL,
//! 3 UNKNOWN. One status line, then ` | ` and perfdata.

use std::time::{Duration, Instant};

use serde_json::Value;

/// The plugin's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// 0.
    Ok,
    /// 1.
    Warning,
    /// 2.
    Critical,
    /// 3.
    Unknown,
}

impl Verdict {
    /// The process exit code.
    pub fn code(self) -> i32 {
        match self {
            Verdict::Ok => 0,
            Verdict::Warning => 1,
            Verdict::Critical => 2,
            Verdict::Unknown => 3,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::Warning => "WARNING",
            Verdict::Critical => "CRITICAL",
            Verdict::Unknown => "UNKNOWN",
        }
    }
}

/// The default URL: the default session's health on the default port.
pub const DEFAULT_URL: &str = "http://127.0.0.1:3001/session/health";

/// Judges an HTTP answer (status code and body) from a wapulse health
/// endpoint, or any endpoint with a `status` field.
pub fn judge(http_status: u16, body: &str, elapsed: Duration) -> (Verdict, String) {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let status = json
        .as_ref()
        .and_then(|j| j.get("status"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let verdict = match (http_status, status.as_deref()) {
        (_, Some("ok" | "healthy")) if http_status < 300 => Verdict::Ok,
        (_, Some("warning" | "degraded")) if http_status < 300 => Verdict::Warning,
        (503, _) | (_, Some("critical" | "unhealthy")) => Verdict::Critical,
        (200..=299, None) => Verdict::Ok,
        _ => Verdict::Unknown,
    };
    let field = |name: &str| json.as_ref().and_then(|j| j.get(name));
    let mut summary = match status {
        Some(s) => format!("status {s}"),
        None => format!("HTTP {http_status}"),
    };
    if let Some(state) = field("state").and_then(Value::as_str) {
        summary.push_str(&format!(", session {state}"));
    }
    let alerts = field("alertCount").and_then(Value::as_u64);
    if let Some(n) = alerts {
        summary.push_str(&format!(", {n} alert{}", if n == 1 { "" } else { "s" }));
    }
    if verdict == Verdict::Unknown {
        summary.push_str(&format!(" (unexpected HTTP {http_status})"));
    }
    let mut perf = format!("time={:.4}s", elapsed.as_secs_f64());
    if let Some(n) = alerts {
        perf.push_str(&format!(" alerts={n};1;1;0"));
    }
    if let Some(ms) = field("uptime").and_then(Value::as_u64) {
        perf.push_str(&format!(" uptime={}s", ms / 1000));
    }
    if let Some(n) = field("sessions").and_then(Value::as_u64) {
        perf.push_str(&format!(" sessions={n}"));
    }
    (
        verdict,
        format!("WAPULSE {} - {summary} | {perf}", verdict.label()),
    )
}

/// Fetches `url` and judges it; network failures are UNKNOWN.
pub async fn run(url: &str, timeout: Duration) -> (Verdict, String) {
    let client = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(c) => c,
        Err(e) => {
            return (
                Verdict::Unknown,
                format!("WAPULSE UNKNOWN - cannot build HTTP client: {e}"),
            );
        }
    };
    let started = Instant::now();
    let response = match client.get(url).send().await {
        Ok(r) => r,
        Err(e) => {
            let why = if e.is_timeout() {
                format!(
                    "no answer from {url} within {}",
                    humantime::format_duration(timeout)
                )
            } else {
                format!("cannot reach {url}: {e}")
            };
            return (Verdict::Unknown, format!("WAPULSE UNKNOWN - {why}"));
        }
    };
    let code = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    judge(code, &body, started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_statuses_to_exit_codes() {
        let d = Duration::from_millis(3);
        let cases = [
            (
                200,
                r#"{"status":"ok","state":"connected","alertCount":0,"uptime":3600000}"#,
                0,
            ),
            (200, r#"{"status":"warning","alertCount":1}"#, 1),
            (503, r#"{"status":"critical","alertCount":2}"#, 2),
            (200, r#"{"status":"healthy"}"#, 0),
            (200, r#"{"status":"degraded"}"#, 1),
            (503, r#"{"status":"unhealthy"}"#, 2),
            (503, "oops", 2),
            (404, r#"{"error":"no session"}"#, 3),
            (401, r#"{"error":"missing token"}"#, 3),
        ];
        for (code, body, want) in cases {
            assert_eq!(judge(code, body, d).0.code(), want, "{code} {body}");
        }
    }

    #[test]
    fn one_line_with_perfdata() {
        let (_, line) = judge(
            200,
            r#"{"status":"ok","state":"connected","alertCount":0,"uptime":3600000}"#,
            Duration::from_millis(2),
        );
        assert_eq!(
            line,
            "WAPULSE OK - status ok, session connected, 0 alerts | time=0.0020s alerts=0;1;1;0 uptime=3600s"
        );
        assert!(!line.contains('\n'));
    }
}
