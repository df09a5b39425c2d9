//! The shapes the stand-ins check for Teams, Google Chat and Opsgenie
//! (`../shared/ALERTING.md`, "More receivers").

use axum::http::{HeaderMap, Uri, header};
use serde_json::Value;

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

/// A Teams Workflows webhook: a `message` whose one attachment is an
/// Adaptive Card 1.4 (Teams renders no later version from a webhook), its
/// TextBlocks and facts with text, its buttons `Action.OpenUrl` to an
/// http(s) URL, the whole under ~28 KB.
pub fn check_teams(body: &Value) -> Result<(), String> {
    if body["type"] != "message" {
        return Err("type: not `message`".into());
    }
    let attachments = body["attachments"]
        .as_array()
        .ok_or("attachments: missing")?;
    if attachments.len() != 1 {
        return Err(format!("attachments: {} (one card)", attachments.len()));
    }
    let a = &attachments[0];
    if a["contentType"] != "application/vnd.microsoft.card.adaptive" {
        return Err("contentType: not an Adaptive Card".into());
    }
    let card = &a["content"];
    if card["type"] != "AdaptiveCard" || card["version"] != "1.4" {
        return Err(format!(
            "content: {} {} (AdaptiveCard 1.4)",
            card["type"], card["version"]
        ));
    }
    let size = body.to_string().len();
    if size > 28_000 {
        return Err(format!("{size} bytes (≤ 28 KB)"));
    }
    fn walk(v: &Value) -> Result<(), String> {
        match v["type"].as_str() {
            Some("TextBlock") if chars(&v["text"]) == 0 => {
                return Err("a TextBlock without text".into());
            }
            Some("Container") => {
                let style = v["style"].as_str().unwrap_or("default");
                if ![
                    "default",
                    "emphasis",
                    "good",
                    "attention",
                    "warning",
                    "accent",
                ]
                .contains(&style)
                {
                    return Err(format!("Container style `{style}`"));
                }
            }
            Some("FactSet") => {
                for f in v["facts"].as_array().ok_or("FactSet without facts")? {
                    if !f["title"].is_string() || chars(&f["value"]) == 0 {
                        return Err(format!("a fact without title or value: {f}"));
                    }
                }
            }
            _ => {}
        }
        for items in ["body", "items"] {
            if let Some(list) = v[items].as_array() {
                for item in list {
                    walk(item)?;
                }
            }
        }
        Ok(())
    }
    walk(card)?;
    for action in card["actions"].as_array().map_or(&[][..], Vec::as_slice) {
        let url = action["url"].as_str().unwrap_or_default();
        if action["type"] != "Action.OpenUrl"
            || !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(format!(
                "an action that is not an http(s) OpenUrl: {action}"
            ));
        }
    }
    Ok(())
}

/// Card text reads only these tags.
const CHAT_TAGS: [&str; 6] = ["<b>", "</b>", "<br>", "</font>", "<font color=\"#", "<i>"];

/// A Google Chat incoming webhook: `text` (≤ 4,096 characters, no mention
/// or link markup) and/or `cardsV2` (each with `cardId` and a `card` of
/// sections of widgets, their text using only the tags card text reads);
/// ≤ 32,000 bytes in all.
pub fn check_google_chat(body: &Value) -> Result<(), String> {
    let size = body.to_string().len();
    if size > 32_000 {
        return Err(format!("{size} bytes (≤ 32,000)"));
    }
    let text = body["text"].as_str();
    if text.is_none() && body["cardsV2"].is_null() {
        return Err("neither text nor cardsV2".into());
    }
    if let Some(t) = text
        && (t.chars().count() > 4096 || t.contains('<'))
    {
        return Err(format!("text: over 4,096 characters or markup: {t}"));
    }
    for c in body["cardsV2"].as_array().map_or(&[][..], Vec::as_slice) {
        if !c["cardId"].is_string() {
            return Err("cardsV2: a card without cardId".into());
        }
        let sections = c["card"]["sections"]
            .as_array()
            .ok_or("card: no sections")?;
        for s in sections {
            for w in s["widgets"].as_array().ok_or("a section without widgets")? {
                for text in [&w["textParagraph"]["text"], &w["decoratedText"]["text"]] {
                    let Some(t) = text.as_str() else { continue };
                    let mut rest = t;
                    while let Some(i) = rest.find('<') {
                        rest = &rest[i..];
                        if !CHAT_TAGS.iter().any(|tag| rest.starts_with(tag)) {
                            return Err(format!("card text opens a tag it should not: {t}"));
                        }
                        rest = &rest[1..];
                    }
                }
                if let Some(buttons) = w["buttonList"]["buttons"].as_array() {
                    for b in buttons {
                        let url = b["onClick"]["openLink"]["url"].as_str().unwrap_or_default();
                        if !url.starts_with("http") {
                            return Err(format!("a button without a link: {b}"));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Opsgenie's Alerts API: `Authorization: GenieKey <key>`; a create to
/// `/v2/alerts` with `message` (1–130), `alias` (≤ 512), `description`
/// (≤ 15,000), `priority` P1–P5, ≤ 20 `tags` of ≤ 50, `details` of
/// strings; a close to `/v2/alerts/<alias>/close?identifierType=alias`.
pub fn check_opsgenie(
    uri: &Uri,
    headers: &HeaderMap,
    body: &Value,
    key: &str,
) -> Result<(), String> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth != Some(&format!("GenieKey {key}")) {
        return Err("Authorization: not `GenieKey <the key>`".into());
    }
    let path = uri.path();
    if path == "/v2/alerts" {
        let message = chars(&body["message"]);
        if message == 0 || message > 130 {
            return Err(format!("message: {message} characters (1–130)"));
        }
        let alias = chars(&body["alias"]);
        if alias == 0 || alias > 512 {
            return Err(format!("alias: {alias} characters (1–512)"));
        }
        if chars(&body["description"]) > 15_000 {
            return Err("description: over 15,000".into());
        }
        if !["P1", "P2", "P3", "P4", "P5"].contains(&body["priority"].as_str().unwrap_or_default())
        {
            return Err(format!("priority: {}", body["priority"]));
        }
        let tags = body["tags"].as_array().map_or(&[][..], Vec::as_slice);
        if tags.len() > 20 || tags.iter().any(|t| chars(t) == 0 || chars(t) > 50) {
            return Err(format!("tags: {} (≤ 20 of ≤ 50)", tags.len()));
        }
        if let Some(details) = body["details"].as_object()
            && details.values().any(|v| !v.is_string())
        {
            return Err("details: values must be strings".into());
        }
        Ok(())
    } else if let Some(alias) = path
        .strip_prefix("/v2/alerts/")
        .and_then(|p| p.strip_suffix("/close"))
    {
        if uri.query() != Some("identifierType=alias") || alias.is_empty() || alias.contains('/') {
            return Err(format!(
                "close: {uri} (the alias as one segment, identifierType=alias)"
            ));
        }
        Ok(())
    } else {
        Err(format!("posted to {path}"))
    }
}

/// WAHA's `POST /api/sendText`: `X-Api-Key`, `session`, a `chatId` of a
/// contact (`…@c.us`) or group (`…@g.us`), a non-empty `text`.
pub fn check_waha(uri: &Uri, headers: &HeaderMap, body: &Value, key: &str) -> Result<(), String> {
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(key) {
        return Err("X-Api-Key: not the key".into());
    }
    if uri.path() != "/api/sendText" {
        return Err(format!("posted to {}", uri.path()));
    }
    let chat = body["chatId"].as_str().unwrap_or_default();
    if !(chat.ends_with("@c.us") || chat.ends_with("@g.us")) {
        return Err(format!("chatId: `{chat}`"));
    }
    if chars(&body["session"]) == 0 || chars(&body["text"]) == 0 {
        return Err("session and text: required".into());
    }
    Ok(())
}

/// Evolution API's `POST /message/sendText/{instance}`: `apikey`, a
/// `number`, a non-empty `text`.
pub fn check_evolution(
    uri: &Uri,
    headers: &HeaderMap,
    body: &Value,
    key: &str,
) -> Result<(), String> {
    if headers.get("apikey").and_then(|v| v.to_str().ok()) != Some(key) {
        return Err("apikey: not the key".into());
    }
    if !uri.path().starts_with("/message/sendText/") {
        return Err(format!("posted to {}", uri.path()));
    }
    if chars(&body["number"]) == 0 || chars(&body["text"]) == 0 {
        return Err("number and text: required".into());
    }
    Ok(())
}
