//! `/ui/sessions/{id}`: everything of `observe`, the state timeline (from
//! the journal), alerts with their lifecycle, recent events, labels.

use std::time::Instant;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use wapulse_core::{Event, EventKind, SessionState, Timestamp, evaluate};

use super::{PAGE, TIMELINE_HOURS, display, session_href, viewer};
use crate::app::Shared;
use crate::clock;
use crate::web::timeline;
use crate::web::view::{Badge, Viewing, When, html, level, span, state as state_badge, when};

pub struct Section {
    pub name: String,
    pub rows: Vec<(String, String)>,
}

pub struct SessionAlert {
    /// Its lifecycle as the evaluator keeps it: pending, firing (with
    /// silenced / flapping), or not yet judged.
    pub phase: String,
    pub code: String,
    pub level: Badge,
    pub message: String,
    pub action: String,
    pub since: Option<When>,
}

pub struct BandView {
    pub x: String,
    pub w: String,
    pub class: &'static str,
    pub title: String,
}

/// The SVG rectangles of `bands` over `[from, to)` (1,000 units wide),
/// each titled with its state, how long and since when.
pub(super) fn band_views(
    bands: &[timeline::Band],
    from: Timestamp,
    to: Timestamp,
) -> Vec<BandView> {
    let window = to.since(from).as_millis().max(1) as f64;
    bands
        .iter()
        .map(|b| BandView {
            x: format!(
                "{:.2}",
                b.start.since(from).as_millis() as f64 / window * 1000.0
            ),
            w: format!(
                "{:.2}",
                b.end.since(b.start).as_millis() as f64 / window * 1000.0
            ),
            class: state_badge(b.state).class,
            title: format!(
                "{} for {} (from {})",
                b.state.as_str(),
                span(b.end.since(b.start).as_millis()),
                b.start.to_rfc3339()
            ),
        })
        .collect()
}

pub struct EventRow {
    pub seq: u64,
    pub at: When,
    pub kind: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "session.html")]
pub struct SessionPage {
    pub now: When,
    pub viewing: Option<Viewing>,
    pub id: String,
    pub state: Badge,
    pub level: Badge,
    pub since: When,
    pub alerts: Vec<SessionAlert>,
    pub labels: Vec<(String, String)>,
    pub disconnect: Option<Vec<(String, String)>>,
    pub bands: Vec<BandView>,
    pub timeline_from: When,
    pub totals: Vec<(Badge, String)>,
    pub sections: Vec<Section>,
    pub events: Vec<EventRow>,
    pub older_href: Option<String>,
    pub history_error: Option<String>,
    /// The week from the history (`None` when it could not be read).
    pub week: Option<super::history::Week>,
    pub week_error: Option<String>,
}

#[derive(Deserialize, Default)]
pub(in crate::web) struct SessionQuery {
    before: Option<u64>,
}

/// `observe`'s sections as rows of `key: value` (nested keys dotted).
fn sections(observe: &Value) -> Vec<Section> {
    fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(map) if map.is_empty() => out.push((prefix.to_owned(), "—".into())),
            Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flatten(&key, v, out);
                }
            }
            other => out.push((prefix.to_owned(), display(other))),
        }
    }
    let Value::Object(map) = observe else {
        return Vec::new();
    };
    map.iter()
        .filter(|(k, _)| !matches!(k.as_str(), "alerts" | "_meta"))
        .map(|(k, v)| {
            let mut rows = Vec::new();
            flatten("", v, &mut rows);
            Section {
                name: k.clone(),
                rows,
            }
        })
        .collect()
}

fn event_detail(e: &Event) -> (String, String) {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    let kind = v["type"].as_str().unwrap_or("event").to_owned();
    if let Value::Object(m) = &mut v {
        for k in ["session", "at", "type"] {
            m.remove(k);
        }
    }
    let detail = match &v {
        Value::Object(m) if m.is_empty() => String::new(),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", display(v)))
            .collect::<Vec<_>>()
            .join(" "),
        other => display(other),
    };
    (kind, detail)
}

pub(in crate::web) async fn session(
    State(st): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    query: Result<Query<SessionQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let caller = match viewer(&st, &headers, &uri) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let started = Instant::now();
    let now = clock::now();
    // Another tenant's session is not found, like one never seen.
    let Some(s) = st
        .model
        .snapshot()
        .get(&id)
        .filter(|s| caller.sees(s))
        .cloned()
    else {
        let page = NotFoundPage {
            now: when(now, now),
            viewing: Viewing::of(&caller),
            what: format!("No session `{id}`."),
        };
        return html(StatusCode::NOT_FOUND, page.render());
    };
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let t = &st.settings.thresholds;
    let a = evaluate(&s, t, now);
    let judged = st.alerting.snapshot();
    let observe = serde_json::to_value(crate::routes::session::observe_view(&st, &s, started))
        .unwrap_or_default();
    let disconnect = observe["session"]["lastDisconnect"].as_object().map(|m| {
        let order = ["code", "name", "explanation", "action", "at"];
        let mut rows: Vec<(String, String)> =
            m.iter().map(|(k, v)| (k.clone(), display(v))).collect();
        rows.sort_by_key(|(k, _)| order.iter().position(|o| o == k).unwrap_or(order.len()));
        rows
    });
    // The journal: the page of events shown, and (newest 2,000) the state
    // changes of the timeline.
    let history = st.model.journal();
    let sid = s.id().clone();
    let (past, life) = (st.model.history(), caller.current_life_only());
    // On the first page the events shown are the newest of the timeline's:
    // one read serves both.
    let read = tokio::task::spawn_blocking(move || {
        let after = crate::routes::session::journal::life_after(
            past.as_ref(),
            history.as_ref(),
            &sid,
            life,
        )?;
        let recent = history.session_events(&sid, 2000, (after, None))?;
        let page = match q.before {
            None => recent.iter().take(PAGE).cloned().collect(),
            Some(before) => history.session_events(&sid, PAGE, (after, Some(before)))?,
        };
        Ok::<_, crate::store::StoreError>((page, recent))
    })
    .await;
    let (page_rows, recent, history_error) = match read {
        Ok(Ok((p, r))) => (p, r, None),
        Ok(Err(e)) => (Vec::new(), Vec::new(), Some(e.to_string())),
        Err(e) => (Vec::new(), Vec::new(), Some(e.to_string())),
    };
    let from = now.minus(wapulse_core::DurationMs::from_hours(TIMELINE_HOURS));
    let mut changes: Vec<(Timestamp, SessionState)> = recent
        .iter()
        .rev()
        .filter_map(|r| match r.event.kind {
            EventKind::State { state, .. } => Some((r.event.at, state)),
            _ => None,
        })
        .collect();
    changes.sort_by_key(|c| c.0);
    if changes.last().is_none_or(|c| c.0 < s.state_changed_at) {
        changes.push((s.state_changed_at, s.state));
    }
    let bands = timeline::bands(&changes, None, from, now);
    let band_views = band_views(&bands, from, now);
    let totals = timeline::time_in_state(&bands)
        .iter()
        .zip(SessionState::ALL)
        .filter(|(ms, _)| **ms > 0)
        .map(|(ms, s)| (state_badge(s), span(*ms)))
        .collect();
    let older_href = (page_rows.len() == PAGE)
        .then(|| {
            page_rows
                .last()
                .map(|r| format!("{}?before={}", session_href(&id), r.seq))
        })
        .flatten();
    let events = page_rows
        .iter()
        .map(|r| {
            let (kind, detail) = event_detail(&r.event);
            EventRow {
                seq: r.seq,
                at: when(r.event.at, now),
                kind,
                detail,
            }
        })
        .collect();
    let (week, week_error) =
        match super::history::session_week(&st, s.id(), now, caller.current_life_only()).await {
            Ok(w) => (Some(w), None),
            Err(e) => (None, Some(e)),
        };
    let page = SessionPage {
        now: when(now, now),
        viewing: Viewing::of(&caller),
        week,
        week_error,
        id: s.id().as_str().to_owned(),
        state: state_badge(s.state),
        level: level(a.level),
        since: when(s.state_changed_at, now),
        alerts: a
            .alerts
            .iter()
            .map(|x| SessionAlert {
                phase: judged.active.find(&id, x.code.as_str()).map_or_else(
                    || "not yet judged".to_owned(),
                    |v| {
                        let mut p = v.state.as_str().to_owned();
                        if let Some(t) = v.fired_at {
                            p.push_str(&format!(" since {}", when(t, now).relative));
                        }
                        for (flag, word) in [
                            (v.silenced, "silenced"),
                            (v.flapping, "flapping"),
                            (v.folded, "in an incident"),
                        ] {
                            if flag {
                                p.push_str(", ");
                                p.push_str(word);
                            }
                        }
                        p
                    },
                ),
                code: x.code.as_str().to_owned(),
                level: level(x.level),
                message: x.message(),
                action: x.action().to_owned(),
                since: x.since.map(|t| when(t, now)),
            })
            .collect(),
        labels: s
            .labels
            .iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect(),
        disconnect,
        bands: band_views,
        timeline_from: when(from, now),
        totals,
        sections: sections(&observe),
        events,
        older_href,
        history_error,
    };
    html(StatusCode::OK, page.render())
}

#[derive(Template)]
#[template(path = "notfound.html")]
pub struct NotFoundPage {
    pub now: When,
    pub viewing: Option<Viewing>,
    pub what: String,
}
