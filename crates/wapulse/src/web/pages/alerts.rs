//! `/ui/alerts`: firing, pending, silenced, incidents, history, and the
//! silences with their forms.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::{ALERTS_PER_GROUP, AlertRow, alert_row, display, viewer};
use crate::alerting::AlertGroup as Kind;
use crate::app::Shared;
use crate::clock;
use crate::tenancy::Caller;
use crate::web::login;
use crate::web::view::{Badge, Viewing, When, html, when};

pub struct HistoryRowView {
    pub at: When,
    pub kind: String,
    pub detail: String,
}

pub struct SilenceRow {
    pub id: String,
    pub matchers: String,
    pub status: Badge,
    pub starts: When,
    pub ends: When,
    pub created_by: String,
    pub comment: String,
    pub active: bool,
}

#[derive(Template)]
#[template(path = "alerts.html")]
pub struct AlertsPage {
    pub now: When,
    pub viewing: Option<Viewing>,
    /// Fleet incidents, firing, pending, silenced.
    pub groups: Vec<AlertGroup>,
    pub history: Vec<HistoryRowView>,
    pub silences: Vec<SilenceRow>,
    pub token_needed: bool,
    pub error: Option<String>,
    pub notice: Option<String>,
}

/// A group of the alerts page: its first rows and how many there are.
pub struct AlertGroup {
    pub title: &'static str,
    pub rows: Vec<AlertRow>,
    pub total: usize,
}

pub(super) async fn alerts_page(
    st: &Shared,
    caller: &Caller,
    error: Option<String>,
    notice: Option<String>,
) -> AlertsPage {
    let now = clock::now();
    let judged = st.alerting.snapshot();
    let scoped = caller.scope().is_some();
    // A page stays small however many alerts fire: the first rows of each
    // group (worst first, from the evaluator's index); the sessions page
    // filters for the rest.
    let rows = |kind: Kind| -> (Vec<AlertRow>, usize) {
        let group = judged.active.group(kind);
        if scoped {
            // A tenant's: its sessions' alerts only (never an incident).
            let seen: Vec<_> = judged
                .active
                .alerts(group)
                .filter(|a| caller.sees_alert(a))
                .collect();
            let total = seen.len();
            let rows = seen
                .into_iter()
                .take(ALERTS_PER_GROUP)
                .map(|a| alert_row(a, now))
                .collect();
            return (rows, total);
        }
        let rows = judged
            .active
            .alerts(group)
            .take(ALERTS_PER_GROUP)
            .map(|a| alert_row(a, now))
            .collect();
        (rows, group.len())
    };
    let incidents = rows(Kind::Incidents);
    let firing = rows(Kind::Firing);
    let pending = rows(Kind::Pending);
    let silenced = rows(Kind::Silenced);
    let history = crate::routes::alerts::history_rows(st, caller, 50, None)
        .await
        .map(|(rows, _)| rows)
        .unwrap_or_default()
        .into_iter()
        .map(|h| {
            let body: Value = serde_json::from_str(&h.body).unwrap_or_default();
            let detail = match &body {
                Value::Object(m) => m
                    .iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "at" | "labels"))
                    .map(|(k, v)| format!("{k}={}", display(v)))
                    .collect::<Vec<_>>()
                    .join(" "),
                other => display(other),
            };
            HistoryRowView {
                at: when(h.at, now),
                kind: h.kind,
                detail,
            }
        })
        .collect();
    let mut silences: Vec<SilenceRow> = st
        .alerting
        .silences()
        .iter()
        .filter(|s| caller.sees_silence(s))
        .map(|s| {
            let (status, active) = if s.ends_at <= now {
                (
                    Badge {
                        class: "muted",
                        icon: "○",
                        text: "expired".into(),
                    },
                    false,
                )
            } else if s.starts_at > now {
                (
                    Badge {
                        class: "warning",
                        icon: "◔",
                        text: "pending".into(),
                    },
                    true,
                )
            } else {
                (
                    Badge {
                        class: "ok",
                        icon: "🔇",
                        text: "active".into(),
                    },
                    true,
                )
            };
            SilenceRow {
                id: s.id.clone(),
                matchers: s
                    .matchers
                    .iter()
                    .map(|m| {
                        format!(
                            "{}{}\"{}\"",
                            m.name,
                            if m.is_regex { "=~" } else { "=" },
                            m.value
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                status,
                starts: when(s.starts_at, now),
                ends: when(s.ends_at, now),
                created_by: s.created_by.clone(),
                comment: s.comment.clone(),
                active,
            }
        })
        .collect();
    silences.sort_by_key(|s| !s.active);
    AlertsPage {
        now: when(now, now),
        viewing: Viewing::of(caller),
        groups: [
            ("Fleet incidents", incidents),
            ("Firing", firing),
            ("Pending", pending),
            ("Silenced", silenced),
        ]
        .into_iter()
        .map(|(title, (rows, total))| AlertGroup { title, rows, total })
        .collect(),
        history,
        silences,
        token_needed: login::admin_needed(st),
        error,
        notice,
    }
}

#[derive(Deserialize, Default)]
pub(in crate::web) struct AlertsQuery {
    saved: Option<String>,
}

pub(in crate::web) async fn alerts(
    State(st): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    query: Result<Query<AlertsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let caller = match viewer(&st, &headers, &uri) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let notice = query
        .ok()
        .and_then(|Query(q)| q.saved)
        .map(|what| match what.as_str() {
            "expired" => "The silence was expired.".to_owned(),
            _ => "The silence was saved.".to_owned(),
        });
    html(
        StatusCode::OK,
        alerts_page(&st, &caller, None, notice).await.render(),
    )
}
