//! The silence forms: create and expire silences from `/ui/alerts` (with
//! the admin token), through the API's own silence handling.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::alerts::alerts_page;
use super::viewer;
use crate::app::Shared;
use crate::clock;
use crate::web::login;
use crate::web::view::html;

#[derive(Deserialize)]
pub(in crate::web) struct SilenceForm {
    name: String,
    value: String,
    #[serde(default)]
    regex: Option<String>,
    duration: String,
    created_by: String,
    comment: String,
    #[serde(default)]
    token: String,
}

pub(in crate::web) async fn create_silence(
    State(st): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Form(f): Form<SilenceForm>,
) -> Response {
    if let Some(r) = login::cross_site_refused(&headers) {
        return r;
    }
    let viewer = match viewer(&st, &headers, &uri) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let refuse = |st: Shared, status: StatusCode, why: String| {
        let viewer = viewer.clone();
        async move {
            html(
                status,
                alerts_page(&st, &viewer, Some(why), None).await.render(),
            )
        }
    };
    let Some(caller) = login::admin(&st, &f.token) else {
        return refuse(
            st,
            StatusCode::UNAUTHORIZED,
            "Wrong admin token (ADMIN_TOKEN, else INGEST_TOKEN, or an admin token of \
             [[tokens]])."
                .into(),
        )
        .await;
    };
    let duration = match wapulse_core::DurationMs::parse(&f.duration) {
        Ok(d) if d.as_millis() > 0 => d,
        _ => {
            return refuse(
                st,
                StatusCode::BAD_REQUEST,
                format!(
                    "Duration `{}` is not a duration like 2h or 30m.",
                    f.duration
                ),
            )
            .await;
        }
    };
    let now = clock::now();
    let n = crate::routes::alerts::NewSilence {
        id: None,
        matchers: Some(vec![crate::routes::alerts::RawMatcher {
            name: f.name.trim().to_owned(),
            value: f.value,
            is_regex: f.regex.is_some(),
        }]),
        starts_at: Some(now.to_rfc3339()),
        ends_at: Some(now.plus(duration).to_rfc3339()),
        created_by: Some(f.created_by),
        comment: Some(f.comment),
    };
    match crate::routes::alerts::save_silence(&st, &caller, n).await {
        Ok(_) => Redirect::to("/ui/alerts?saved=created").into_response(),
        Err(e) => {
            let status = e.status();
            refuse(st, status, e.message()).await
        }
    }
}

#[derive(Deserialize)]
pub(in crate::web) struct ExpireForm {
    #[serde(default)]
    token: String,
}

pub(in crate::web) async fn expire_silence(
    State(st): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    Form(f): Form<ExpireForm>,
) -> Response {
    if let Some(r) = login::cross_site_refused(&headers) {
        return r;
    }
    let viewer = match viewer(&st, &headers, &uri) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Some(caller) = login::admin(&st, &f.token) else {
        let page = alerts_page(
            &st,
            &viewer,
            Some("Wrong admin token (ADMIN_TOKEN, else INGEST_TOKEN).".into()),
            None,
        )
        .await;
        return html(StatusCode::UNAUTHORIZED, page.render());
    };
    match crate::routes::alerts::expire_silence(&st, &caller, &id).await {
        Ok(_) => Redirect::to("/ui/alerts?saved=expired").into_response(),
        Err(e) => {
            let status = e.status();
            let page = alerts_page(&st, &viewer, Some(e.message()), None).await;
            html(status, page.render())
        }
    }
}
