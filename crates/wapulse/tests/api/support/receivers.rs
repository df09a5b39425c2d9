//! Stand-ins for Slack, PagerDuty and webhook receivers: local HTTP
//! servers that check every payload against the documented shape (an
//! invalid one is answered 400, as the real service does, and recorded as
//! a violation) and answer with scripted faults: 5xx, 429 with
//! `Retry-After`, a hang past the client's timeout, a permanent 400.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

/// What the stand-in checks.
#[derive(Clone, Debug)]
pub enum Kind {
    /// Slack incoming webhook: `{text, blocks}`.
    Slack,
    /// PagerDuty Events API v2.
    PagerDuty,
    /// Standard Webhooks, signature verified with this secret.
    Webhook(Option<String>),
    /// Discord webhook: `{embeds}` within Discord's limits; answers 204.
    Discord,
    /// ntfy JSON publishing to the server's root, with this bearer token
    /// when one is required.
    Ntfy(Option<String>),
    /// Telegram `sendMessage` of the bot with this token, HTML parse mode.
    Telegram(String),
    /// A Teams Workflows webhook: an Adaptive Card 1.4; answers 202.
    Teams,
    /// A Google Chat incoming webhook: `text` and/or `cardsV2`.
    GoogleChat,
    /// Opsgenie's Alerts API with this key; answers 202.
    Opsgenie(String),
    /// WAHA's `sendText` with this API key; answers 201.
    Waha(String),
    /// Evolution API's `sendText` with this API key; answers 201.
    Evolution(String),
    /// Anything (a dead-man's switch ping).
    Any,
}

/// How to answer one request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// This status.
    Status(u16),
    /// 429 with `Retry-After: secs`.
    RateLimited(u64),
    /// 429 saying how long to wait only in its JSON body (Discord's
    /// `retry_after`, Telegram's `parameters.retry_after`; seconds).
    RateLimitedInBody(f64),
    /// No answer for this long (then 200).
    Hang(Duration),
}

#[derive(Clone, Debug)]
pub struct Received {
    /// When the request arrived.
    pub at: Instant,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
    pub answered: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

struct Inner {
    kind: Kind,
    script: Mutex<VecDeque<Fault>>,
    default: Mutex<Fault>,
    received: Mutex<Vec<Received>>,
    violations: Mutex<Vec<String>>,
}

pub struct FakeReceiver {
    pub addr: SocketAddr,
    scheme: &'static str,
    inner: Arc<Inner>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn check_slack(body: &Value) -> Result<(), String> {
    let text = body["text"].as_str().ok_or("text: missing")?;
    if text.is_empty() {
        return Err("text: empty".into());
    }
    let blocks = body["blocks"].as_array().ok_or("blocks: missing")?;
    if blocks.is_empty() || blocks.len() > 50 {
        return Err(format!("blocks: {} (1..=50)", blocks.len()));
    }
    for (i, b) in blocks.iter().enumerate() {
        let kind = b["type"]
            .as_str()
            .ok_or(format!("blocks[{i}].type missing"))?;
        match kind {
            "header" => {
                let t = &b["text"];
                if t["type"] != "plain_text" {
                    return Err(format!("blocks[{i}]: a header's text is plain_text"));
                }
                let n = t["text"].as_str().unwrap_or("").chars().count();
                if n == 0 || n > 150 {
                    return Err(format!("blocks[{i}]: header text of {n} chars (1..=150)"));
                }
            }
            "section" => {
                if let Some(t) = b["text"]["text"].as_str()
                    && t.chars().count() > 3000
                {
                    return Err(format!("blocks[{i}]: section text over 3000"));
                }
                if let Some(fields) = b["fields"].as_array() {
                    if fields.len() > 10 {
                        return Err(format!("blocks[{i}]: more than 10 fields"));
                    }
                    for f in fields {
                        if f["text"].as_str().unwrap_or("").chars().count() > 2000 {
                            return Err(format!("blocks[{i}]: a field over 2000"));
                        }
                    }
                }
                if b["text"].is_null() && b["fields"].is_null() {
                    return Err(format!("blocks[{i}]: a section needs text or fields"));
                }
            }
            "context" => {
                if b["elements"].as_array().is_none_or(|e| e.is_empty()) {
                    return Err(format!("blocks[{i}]: context without elements"));
                }
            }
            other => return Err(format!("blocks[{i}]: unexpected type {other}")),
        }
    }
    Ok(())
}

fn check_pagerduty(body: &Value) -> Result<(), String> {
    if body["routing_key"].as_str().is_none_or(str::is_empty) {
        return Err("routing_key: missing".into());
    }
    let action = body["event_action"]
        .as_str()
        .ok_or("event_action: missing")?;
    let dedup = body["dedup_key"].as_str();
    if dedup.is_some_and(|d| d.len() > 255) {
        return Err("dedup_key: over 255".into());
    }
    match action {
        "trigger" => {
            let p = &body["payload"];
            let summary = p["summary"].as_str().ok_or("payload.summary: missing")?;
            if summary.is_empty() || summary.chars().count() > 1024 {
                return Err("payload.summary: 1..=1024 chars".into());
            }
            if p["source"].as_str().is_none_or(str::is_empty) {
                return Err("payload.source: missing".into());
            }
            let sev = p["severity"].as_str().unwrap_or("");
            if !["critical", "error", "warning", "info"].contains(&sev) {
                return Err(format!("payload.severity: `{sev}`"));
            }
            if let Some(ts) = p["timestamp"].as_str() {
                wapulse_core::Timestamp::parse_rfc3339(ts).map_err(|e| e.to_string())?;
            }
        }
        "acknowledge" | "resolve" => {
            if dedup.is_none() {
                return Err(format!("{action} without dedup_key"));
            }
        }
        other => return Err(format!("event_action: `{other}`")),
    }
    Ok(())
}

/// Verifies a Standard Webhooks signature as a receiver must: the
/// timestamp within 5 minutes, the HMAC compared in constant time.
pub fn verify_webhook(headers: &HeaderMap, raw: &[u8], secret: &str) -> Result<(), String> {
    let get = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .ok_or(format!("{n}: missing"))
    };
    let id = get("webhook-id")?;
    let ts: i64 = get("webhook-timestamp")?
        .parse()
        .map_err(|_| "webhook-timestamp: not a number")?;
    let now = wapulse::clock::now().as_millis() / 1000;
    if (now - ts).abs() > 300 {
        return Err("webhook-timestamp: too old or in the future".into());
    }
    let key = match secret.strip_prefix("whsec_") {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| "secret: bad base64")?,
        None => secret.as_bytes().to_vec(),
    };
    let signatures = get("webhook-signature")?;
    for sig in signatures.split(' ') {
        let Some(b64) = sig.strip_prefix("v1,") else {
            continue;
        };
        let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(b64) else {
            continue;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{ts}.").as_bytes());
        mac.update(raw);
        if mac.verify_slice(&expected).is_ok() {
            return Ok(());
        }
    }
    Err("webhook-signature: no valid v1 signature".into())
}

fn check_webhook(
    headers: &HeaderMap,
    raw: &[u8],
    body: &Value,
    secret: &Option<String>,
) -> Result<(), String> {
    if headers.get("webhook-id").is_none() || headers.get("webhook-timestamp").is_none() {
        return Err("webhook-id / webhook-timestamp: missing".into());
    }
    if let Some(secret) = secret {
        verify_webhook(headers, raw, secret)?;
    }
    for field in ["version", "status", "groupKey"] {
        if !body[field].is_string() {
            return Err(format!("{field}: missing"));
        }
    }
    if !body["firing"].is_array() || !body["resolved"].is_array() {
        return Err("firing / resolved: missing".into());
    }
    Ok(())
}

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

/// Discord's documented limits: ≤ 10 embeds; a title ≤ 256, description
/// ≤ 4,096, ≤ 25 fields of name ≤ 256 and value ≤ 1,024 (neither empty),
/// footer ≤ 2,048, all of an embed's text ≤ 6,000; a colour within
/// 0..=0xFFFFFF; content ≤ 2,000.
fn check_discord(body: &Value) -> Result<(), String> {
    if chars(&body["content"]) > 2000 {
        return Err("content: over 2000".into());
    }
    let embeds = body["embeds"].as_array().ok_or("embeds: missing")?;
    if embeds.is_empty() || embeds.len() > 10 {
        return Err(format!("embeds: {} (1..=10)", embeds.len()));
    }
    for (i, e) in embeds.iter().enumerate() {
        let (title, description) = (chars(&e["title"]), chars(&e["description"]));
        if title > 256 || description > 4096 {
            return Err(format!(
                "embeds[{i}]: title {title} / description {description}"
            ));
        }
        if e["color"].as_u64().is_none_or(|c| c > 0xFF_FF_FF) {
            return Err(format!("embeds[{i}].color: not a colour"));
        }
        let mut total = title + description + chars(&e["footer"]["text"]);
        if chars(&e["footer"]["text"]) > 2048 {
            return Err(format!("embeds[{i}].footer: over 2048"));
        }
        let fields = e["fields"].as_array().map_or(&[][..], Vec::as_slice);
        if fields.len() > 25 {
            return Err(format!("embeds[{i}]: {} fields (≤ 25)", fields.len()));
        }
        for f in fields {
            let (name, value) = (chars(&f["name"]), chars(&f["value"]));
            if name == 0 || name > 256 || value == 0 || value > 1024 {
                return Err(format!(
                    "embeds[{i}]: a field of name {name} / value {value}"
                ));
            }
            total += name + value;
        }
        if total > 6000 {
            return Err(format!("embeds[{i}]: {total} characters (≤ 6000)"));
        }
    }
    Ok(())
}

/// ntfy's JSON publishing: posted to the server's root, `topic` a valid
/// name, `message` ≤ 4,096 bytes, `priority` 1..=5, `tags` strings, and
/// the bearer token when the topic is protected.
fn check_ntfy(
    uri: &Uri,
    headers: &HeaderMap,
    body: &Value,
    token: &Option<String>,
) -> Result<(), String> {
    if uri.path() != "/" {
        return Err(format!(
            "posted to {}: JSON goes to the server's root",
            uri.path()
        ));
    }
    if let Some(token) = token {
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if auth != Some(&format!("Bearer {token}")) {
            return Err("Authorization: not the topic's bearer token".into());
        }
    }
    let topic = body["topic"].as_str().ok_or("topic: missing")?;
    if topic.is_empty()
        || topic.len() > 64
        || !topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!("topic: `{topic}` is not a topic name"));
    }
    let message = body["message"].as_str().ok_or("message: missing")?;
    if message.len() > 4096 {
        return Err(format!("message: {} bytes (≤ 4096)", message.len()));
    }
    if body["priority"]
        .as_u64()
        .is_none_or(|p| !(1..=5).contains(&p))
    {
        return Err("priority: not 1..=5".into());
    }
    if !body["title"].is_string() {
        return Err("title: missing".into());
    }
    if !body["tags"]
        .as_array()
        .is_some_and(|t| t.iter().all(Value::is_string))
    {
        return Err("tags: not a list of strings".into());
    }
    Ok(())
}

/// Telegram's HTML mode: only the tags it knows (`a` with an `href`),
/// balanced; `&` only in `&lt;`, `&gt;`, `&amp;`, `&quot;`; 1–4,096
/// characters once parsed.
fn check_telegram_html(text: &str) -> Result<(), String> {
    let mut open: Vec<String> = Vec::new();
    let mut visible = 0;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            let end = rest.find('>').ok_or("text: a `<` opens no tag")?;
            let tag = &rest[1..end];
            if let Some(name) = tag.strip_prefix('/') {
                if open.pop().as_deref() != Some(name) {
                    return Err(format!("text: `</{name}>` closes nothing open"));
                }
            } else {
                let name = tag.split(' ').next().unwrap_or("");
                if !["b", "i", "pre", "code", "a"].contains(&name) {
                    return Err(format!("text: unsupported tag `<{tag}>`"));
                }
                if name == "a" && !tag.starts_with("a href=\"") {
                    return Err("text: a link without href".into());
                }
                open.push(name.to_owned());
            }
            rest = &rest[end + 1..];
        } else if c == '&' {
            let entity = ["&lt;", "&gt;", "&amp;", "&quot;"]
                .into_iter()
                .find(|e| rest.starts_with(e))
                .ok_or("text: a bare `&`")?;
            visible += 1;
            rest = &rest[entity.len()..];
        } else {
            visible += 1;
            rest = &rest[c.len_utf8()..];
        }
    }
    if !open.is_empty() {
        return Err(format!("text: unclosed {open:?}"));
    }
    if visible == 0 || visible > 4096 {
        return Err(format!("text: {visible} characters (1..=4096)"));
    }
    Ok(())
}

fn check_telegram(uri: &Uri, body: &Value, token: &str) -> Result<(), String> {
    if uri.path() != format!("/bot{token}/sendMessage") {
        return Err(format!(
            "posted to {}: not this bot's sendMessage",
            uri.path()
        ));
    }
    let chat = &body["chat_id"];
    if !(chat.is_i64() || chat.as_str().is_some_and(|c| c.starts_with('@'))) {
        return Err("chat_id: neither a number nor @channel".into());
    }
    if body["parse_mode"] != "HTML" {
        return Err("parse_mode: not HTML".into());
    }
    check_telegram_html(body["text"].as_str().ok_or("text: missing")?)
}

async fn answer(
    State(inner): State<Arc<Inner>>,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let arrived = Instant::now();
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let checked = match &inner.kind {
        Kind::Any => Ok(()),
        _ if !json => Err("content-type is not application/json".to_owned()),
        Kind::Slack => check_slack(&body),
        Kind::PagerDuty => check_pagerduty(&body),
        Kind::Webhook(secret) => check_webhook(&headers, &raw, &body, secret),
        Kind::Discord => check_discord(&body),
        Kind::Ntfy(token) => check_ntfy(&uri, &headers, &body, token),
        Kind::Telegram(token) => check_telegram(&uri, &body, token),
        Kind::Teams => super::cards::check_teams(&body),
        Kind::GoogleChat => super::cards::check_google_chat(&body),
        Kind::Opsgenie(key) => super::cards::check_opsgenie(&uri, &headers, &body, key),
        Kind::Waha(key) => super::cards::check_waha(&uri, &headers, &body, key),
        Kind::Evolution(key) => super::cards::check_evolution(&uri, &headers, &body, key),
    };
    let fault = inner
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| inner.default.lock().unwrap().clone());
    let ok = match inner.kind {
        Kind::PagerDuty | Kind::Teams | Kind::Opsgenie(_) => 202,
        Kind::Waha(_) | Kind::Evolution(_) => 201,
        Kind::Discord => 204,
        _ => 200,
    };
    let mut wait_in_body = None;
    let (status, retry_after) = match (&checked, &fault) {
        (Err(v), _) => {
            inner.violations.lock().unwrap().push(v.clone());
            (400, None)
        }
        (Ok(()), Fault::Status(s)) => (*s, None),
        (Ok(()), Fault::RateLimited(secs)) => (429, Some(*secs)),
        (Ok(()), Fault::RateLimitedInBody(secs)) => {
            wait_in_body = Some(*secs);
            (429, None)
        }
        (Ok(()), Fault::Hang(d)) => {
            tokio::time::sleep(*d).await;
            (ok, None)
        }
    };
    let status = if status == 200 { ok } else { status };
    inner.received.lock().unwrap().push(Received {
        at: arrived,
        path: uri
            .path_and_query()
            .map_or(uri.path(), |p| p.as_str())
            .to_owned(),
        headers,
        body,
        answered: status,
    });
    let text = match (status, wait_in_body) {
        (_, Some(secs)) if matches!(inner.kind, Kind::Telegram(_)) => serde_json::json!({
            "ok": false, "error_code": 429,
            "description": format!("Too Many Requests: retry after {secs}"),
            "parameters": {"retry_after": secs}
        })
        .to_string(),
        (_, Some(secs)) => serde_json::json!({
            "message": "You are being rate limited.", "retry_after": secs, "global": false
        })
        .to_string(),
        (204, _) => String::new(),
        (200, _) if matches!(inner.kind, Kind::Telegram(_)) => {
            r#"{"ok": true, "result": {"message_id": 1}}"#.into()
        }
        (202, _) if matches!(inner.kind, Kind::Opsgenie(_)) => {
            r#"{"result": "Request will be processed", "took": 0.1, "requestId": "r-1"}"#.into()
        }
        (400, _) => "invalid_payload".into(),
        _ => "ok".into(),
    };
    let mut response = (StatusCode::from_u16(status).unwrap(), text).into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, secs.to_string().parse().unwrap());
    }
    response
}

impl FakeReceiver {
    pub async fn start(kind: Kind) -> Self {
        Self::start_on(0, kind).await
    }

    /// Listens on `port` (0: any free port).
    pub async fn start_on(port: u16, kind: Kind) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the stand-in receiver");
        let addr = listener.local_addr().unwrap();
        let (inner, app) = Self::stand_in(kind);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            scheme: "http",
            inner,
            server,
        }
    }

    /// The same stand-in over HTTPS, with a certificate from a test CA.
    pub async fn start_tls(kind: Kind, tls: Arc<tokio_rustls::rustls::ServerConfig>) -> Self {
        let listener = super::tls::TlsListener::bind(tls).await;
        let addr = axum::serve::Listener::local_addr(&listener).unwrap();
        let (inner, app) = Self::stand_in(kind);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            scheme: "https",
            inner,
            server,
        }
    }

    fn stand_in(kind: Kind) -> (Arc<Inner>, axum::Router) {
        let inner = Arc::new(Inner {
            kind,
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(Fault::Status(200)),
            received: Mutex::new(Vec::new()),
            violations: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(inner.clone());
        (inner, app)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.addr, path)
    }

    /// The next answers, in order; then the default.
    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.inner.script.lock().unwrap().extend(faults);
    }

    /// The answer once the script is spent.
    pub fn answer_with(&self, fault: Fault) {
        *self.inner.default.lock().unwrap() = fault;
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    pub fn violations(&self) -> Vec<String> {
        self.inner.violations.lock().unwrap().clone()
    }

    /// Waits (bounded) until `done` holds for what was received.
    pub async fn wait_until(
        &self,
        what: &str,
        within: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received();
            if done(&got) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {within:?}; received {:#?}; violations {:?}",
                got.iter()
                    .map(|r| (&r.answered, &r.body))
                    .collect::<Vec<_>>(),
                self.violations()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
