//! Who may see the pages: with `READ_TOKEN` set, a request needs it as a
//! bearer token, or the session cookie `wapulse_token` that `/ui/login`
//! sets (HttpOnly, SameSite=Strict, `Secure` behind https, never in a URL);
//! without it, everyone.
//!
//! The cookie holds no token: it holds when the session ends and an
//! HMAC-SHA256 of that, keyed by `READ_TOKEN`. So a cookie lasts
//! [`SESSION`] at most, a stolen one says nothing of the token, and
//! changing the token ends every session.
//!
//! A named token (`[[tokens]]`) logs in too: its cookie names it and is
//! keyed by its secret's digest (a rotated secret ends its sessions), and
//! the pages then show its scope's sessions only. An unscoped visitor may
//! choose one label value to see the pages as (`/ui/view?as=tenant:acme`,
//! the `wapulse_view` cookie).

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::view::html;
use crate::app::Shared;
use crate::auth;
use crate::secret::Secret;
use crate::tenancy::{Caller, Grant};

const COOKIE: &str = "wapulse_token";

/// How long a dashboard login lasts.
const SESSION: wapulse_core::DurationMs = wapulse_core::DurationMs::from_hours(12);

/// What the session MAC covers, besides the expiry.
const SESSION_CONTEXT: &[u8] = b"wapulse dashboard session until ";

fn session_mac(token: &Secret, until_secs: i64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.expose().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(SESSION_CONTEXT);
    mac.update(until_secs.to_string().as_bytes());
    mac
}

/// The cookie value of a session that ends at `until`.
fn session_value(token: &Secret, until: wapulse_core::Timestamp) -> String {
    let secs = until.as_millis() / 1000;
    let tag = session_mac(token, secs).finalize().into_bytes();
    format!("{secs}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// Whether `value` is a session cookie made with `token` that has not
/// ended at `now` (the MAC compared in constant time).
fn session_valid(token: &Secret, value: &str, now: wapulse_core::Timestamp) -> bool {
    let Some((secs, tag)) = value.split_once('.') else {
        return false;
    };
    let (Ok(secs), Ok(tag)) = (secs.parse::<i64>(), URL_SAFE_NO_PAD.decode(tag)) else {
        return false;
    };
    secs.saturating_mul(1000) > now.as_millis()
        && session_mac(token, secs).verify_slice(&tag).is_ok()
}

/// The cookie value of a named token's session (`n~name~until~mac`), its
/// MAC keyed by the digest of the token's secret: a rotated secret ends
/// its logins.
fn named_value(name: &str, key: &[u8], until: wapulse_core::Timestamp) -> String {
    let secs = until.as_millis() / 1000;
    let tag = named_mac(name, key, secs).finalize().into_bytes();
    format!("n~{name}~{secs}~{}", URL_SAFE_NO_PAD.encode(tag))
}

fn named_mac(name: &str, key: &[u8], until_secs: i64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(SESSION_CONTEXT);
    mac.update(format!("{until_secs} for {name}").as_bytes());
    mac
}

/// The named token whose unexpired session `value` is.
fn named_session(state: &Shared, value: &str, now: wapulse_core::Timestamp) -> Option<Caller> {
    let mut parts = value.strip_prefix("n~")?.split('~');
    let (name, secs, tag) = (parts.next()?, parts.next()?, parts.next()?);
    let secs = secs.parse::<i64>().ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    let (key, named) = state.keyring.named(name)?;
    (secs.saturating_mul(1000) > now.as_millis()
        && named_mac(name, &key, secs).verify_slice(&tag).is_ok())
    .then(|| Caller::named(named))
}

/// Whether the visitor reached this wapulse over https (directly behind a
/// proxy that says so, or the configured `external_url`): the cookie is
/// then `Secure`.
fn over_https(state: &Shared, headers: &HeaderMap) -> bool {
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let external = state
        .settings
        .alerting
        .external_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    forwarded || external
}

/// Whether `presented` holds the token `setting` configures (the API's own
/// constant-time check; an unset token lets everyone in).
fn allowed(presented: &[Option<&str>], expected: Option<&Secret>, setting: &'static str) -> bool {
    auth::verify(presented, expected, false, setting).is_ok()
}

/// The `wapulse_token` cookie, if any.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix("wapulse_token="))
}

/// Who looks at the pages: a named token (as a bearer token, or the
/// cookie its login set), held to its scope; `READ_TOKEN` (or no token at
/// all), unscoped, seeing as the `wapulse_view` cookie asks (an operator's
/// "view as" a label value). Else the answer: a redirect to the login form
/// (a page) or a 401 (the live stream).
pub(super) fn viewer(
    state: &Shared,
    headers: &HeaderMap,
    next: &str,
) -> Result<Caller, Box<Response>> {
    let open = state.settings.read_token.is_none() && state.keyring.is_empty();
    if let Err(why) = auth::host_allowed(&state.settings, headers, open) {
        return Err(Box::new((StatusCode::FORBIDDEN, why.0).into_response()));
    }
    let now = crate::clock::now();
    let named = auth::bearer(headers)
        .and_then(|b| state.keyring.find(b))
        .map(Caller::named)
        .or_else(|| cookie(headers).and_then(|c| named_session(state, c, now)));
    let read_token = state.settings.read_token.as_ref();
    let session = |token: &Secret| cookie(headers).is_some_and(|c| session_valid(token, c, now));
    let single = (read_token.is_some() || state.keyring.is_empty())
        && allowed(&[auth::bearer(headers)], read_token, "READ_TOKEN");
    let caller = match named {
        Some(c) => c,
        None if single || read_token.is_some_and(session) => Caller::default(),
        None => {
            if next.starts_with("/ui/live") {
                return Err(Box::new(
                    (StatusCode::UNAUTHORIZED, "a token is required").into_response(),
                ));
            }
            let to = format!("/ui/login?next={}", urlencoding(next));
            return Err(Box::new(Redirect::to(&to).into_response()));
        }
    };
    if caller.scope().is_none()
        && let Some(scope) = view_as(headers)
    {
        return Ok(Caller::named(crate::tenancy::Named::viewing(scope)));
    }
    Ok(caller)
}

/// The `wapulse_view` cookie: `label:value`, the one label value an
/// operator chose to see the pages as.
fn view_as(headers: &HeaderMap) -> Option<wapulse_core::Scope> {
    let raw = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix("wapulse_view="))?;
    let text = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()?;
    let (name, value) = crate::routes::session::label_filter(&text).ok()?;
    Some(wapulse_core::Scope::Labels([(name, value)].into()))
}

#[derive(Deserialize)]
pub(super) struct ViewQuery {
    #[serde(rename = "as")]
    as_: Option<String>,
    next: Option<String>,
}

/// `GET /ui/view?as=label:value`: the pages show that label value's
/// sessions only, until `GET /ui/view` (no `as`) ends it. A cookie, set
/// only for a request from this site.
pub(super) async fn view(headers: HeaderMap, Query(q): Query<ViewQuery>) -> Response {
    if let Some(refused) = cross_site_refused(&headers) {
        return refused;
    }
    let next = local(q.next.as_deref());
    let value = match q.as_.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        Some(pair) => match crate::routes::session::label_filter(pair) {
            Ok(_) => format!(
                "wapulse_view={}; Path=/; HttpOnly; SameSite=Strict",
                super::view::query_value(pair, false)
            ),
            Err(e) => return (StatusCode::BAD_REQUEST, e.message()).into_response(),
        },
        None => "wapulse_view=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0".to_owned(),
    };
    let mut response = Redirect::to(&next).into_response();
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// `None` for a form posted from this site; else the 403 that refuses a
/// form posted from another one (which would act with the visitor's cookie
/// or, with no token set, with nothing at all).
pub(super) fn cross_site_refused(headers: &HeaderMap) -> Option<Response> {
    auth::cross_site(headers).then(|| {
        (
            StatusCode::FORBIDDEN,
            "This form was posted from another site: refused.",
        )
            .into_response()
    })
}

/// Who changes silences with `token`: `ADMIN_TOKEN`, else `INGEST_TOKEN`,
/// when either is set (anyone otherwise, like the API), or an unscoped
/// named admin token (the dashboard is the operators'; a tenant's token
/// changes silences through the API). `None`: refused.
pub(super) fn admin(state: &Shared, token: &str) -> Option<Caller> {
    if let Some(named) = state.keyring.find(token) {
        // A scoped admin token's silences carry its scope.
        return (named.grant == Grant::Admin).then(|| Caller::named(named));
    }
    let s = &state.settings;
    let (expected, setting) = match (&s.admin_token, &s.ingest_token) {
        (Some(admin), _) => (Some(admin), "ADMIN_TOKEN"),
        (None, ingest) => (ingest.as_ref(), "INGEST_TOKEN"),
    };
    if expected.is_none() && !state.keyring.is_empty() {
        return None;
    }
    allowed(&[Some(token)], expected, "ADMIN_TOKEN").then(|| Caller {
        token: None,
        setting: expected.is_some().then_some(setting),
    })
}

/// Whether the silence forms need a token field.
pub(super) fn admin_needed(state: &Shared) -> bool {
    state.settings.admin_token.is_some()
        || state.settings.ingest_token.is_some()
        || !state.keyring.is_empty()
}

fn urlencoding(text: &str) -> String {
    super::view::query_value(text, true)
}

/// A path on this site to go back to (never another host): a `/` not
/// followed by `/` or `\\`, then printable ASCII only. Browsers drop tabs
/// and newlines from a `Location` and read `\\` as `/`, so `/\t/evil.example`
/// would leave the site; anything unusual goes to `/`.
fn local(next: Option<&str>) -> String {
    let safe = |n: &str| {
        n.starts_with('/')
            && !n[1..].starts_with(['/', '\\'])
            && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
    };
    match next {
        Some(n) if safe(n) => n.to_owned(),
        _ => "/".to_owned(),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    next: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct NextQuery {
    next: Option<String>,
}

pub(super) async fn form(Query(q): Query<NextQuery>) -> Response {
    html(
        StatusCode::OK,
        LoginPage {
            next: local(q.next.as_deref()),
            error: None,
        }
        .render(),
    )
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    token: String,
    next: Option<String>,
}

pub(super) async fn login(
    State(state): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if let Some(refused) = cross_site_refused(&headers) {
        return refused;
    }
    let next = local(f.next.as_deref());
    let secure = if over_https(&state, &headers) {
        "; Secure"
    } else {
        ""
    };
    let set = |response: &mut Response, value: String| {
        let cookie = format!(
            "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            SESSION.as_millis() / 1000
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(header::SET_COOKIE, v);
        }
    };
    // A named token: a session of its own, held to its scope.
    if let Some(named) = state.keyring.find(&f.token)
        && let Some((key, _)) = state.keyring.named(&named.name)
    {
        let mut response = Redirect::to(&next).into_response();
        let until = crate::clock::now().plus(SESSION);
        set(&mut response, named_value(&named.name, &key, until));
        return response;
    }
    if !allowed(
        &[Some(&f.token)],
        state.settings.read_token.as_ref(),
        "READ_TOKEN",
    ) {
        return html(
            StatusCode::UNAUTHORIZED,
            LoginPage {
                next,
                error: Some(
                    "That is not a token of this wapulse (READ_TOKEN or [[tokens]]).".into(),
                ),
            }
            .render(),
        );
    }
    let mut response = Redirect::to(&next).into_response();
    if let Some(token) = &state.settings.read_token {
        let until = crate::clock::now().plus(SESSION);
        set(&mut response, session_value(token, until));
    }
    response
}

pub(super) async fn logout(headers: HeaderMap) -> Response {
    if let Some(refused) = cross_site_refused(&headers) {
        return refused;
    }
    let mut response = Redirect::to("/ui/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("wapulse_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_cookie_holds_no_token_and_ends() {
        let token = Secret::new("r3ad-t0ken");
        let now = wapulse_core::Timestamp::from_millis(1_770_000_000_000);
        let until = now.plus(SESSION);
        let value = session_value(&token, until);
        assert!(!value.contains("r3ad"), "{value}");
        assert!(session_valid(&token, &value, now));
        assert!(!session_valid(&token, &value, until), "ended");
        assert!(
            !session_valid(&Secret::new("other"), &value, now),
            "another token"
        );
        // Its expiry cannot be moved without the token.
        let (_, tag) = value.split_once('.').unwrap();
        let later = (until.as_millis() / 1000 + 3600).to_string();
        assert!(!session_valid(&token, &format!("{later}.{tag}"), now));
        for junk in ["", "x", "1.", ".x", "99999999999.AAAA", "r3ad-t0ken"] {
            assert!(!session_valid(&token, junk, now), "{junk}");
        }
    }

    #[test]
    fn next_stays_on_this_site_and_cookies_are_found() {
        assert_eq!(local(Some("/ui/alerts?x=1")), "/ui/alerts?x=1");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "x",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/ /evil.example",
            "/\u{7f}/evil.example",
            "/\u{a0}/evil.example",
        ] {
            assert_eq!(local(Some(bad)), "/", "{bad}");
        }
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; wapulse_token=s3cret; b=2"),
        );
        assert_eq!(cookie(&h), Some("s3cret"));
        assert_eq!(
            urlencoding("/ui/sessions?state=connected&x=a b"),
            "/ui/sessions%3Fstate%3Dconnected%26x%3Da%20b"
        );
    }
}
