//! The four pages and the silence forms.

use std::time::Instant;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;
use wapulse_core::lifecycle::Phase;
use wapulse_core::{
    AlertCode, Event, EventKind, Level, Session, SessionState, Timestamp, evaluate,
};

use super::auth;
use super::timeline;
use super::view::{Badge, When, html, level, span, state as state_badge, when};
use crate::alerting::ActiveAlert;
use crate::clock;
use crate::routes::Shared;

/// The code of a fleet incident.
const FLEET_INCIDENT: &str = "FLEET_INCIDENT";

/// Rows on one page of sessions (the DOM never holds more).
const PAGE: usize = 50;
/// Alerts listed on the overview.
const OVERVIEW_ALERTS: usize = 10;
/// Rows per group on the alerts page (the rest: a link to the filter).
const ALERTS_PER_GROUP: usize = 100;
/// The timeline's window.
const TIMELINE_HOURS: u64 = 6;

/// The login redirect, when the request may not read.
fn guard(state: &Shared, headers: &HeaderMap, uri: &Uri) -> Option<Response> {
    let next = uri.path_and_query().map_or("/", |p| p.as_str());
    auth::refused(state, headers, next)
}

/// An alert as the pages list it.
pub struct AlertRow {
    pub session: String,
    pub href: Option<String>,
    pub code: String,
    pub level: Badge,
    pub phase: &'static str,
    pub since: When,
    pub summary: String,
    pub silenced: bool,
    pub folded: bool,
    pub flapping: bool,
}

fn alert_row(a: &ActiveAlert, now: Timestamp) -> AlertRow {
    AlertRow {
        href: (!a.session.is_empty()).then(|| session_href(&a.session)),
        session: a.session.clone(),
        code: a.code.clone(),
        level: level(a.level),
        phase: a.state.as_str(),
        since: when(a.since, now),
        summary: a.summary.clone(),
        silenced: a.silenced,
        folded: a.folded,
        flapping: a.flapping,
    }
}

fn session_href(id: &str) -> String {
    // Session ids are [A-Za-z0-9._:@-]: nothing to escape in a path.
    format!("/ui/sessions/{id}")
}

// ---------------------------------------------------------------- overview

pub struct GridCell {
    pub count: usize,
    pub href: String,
    pub level: Badge,
}

pub struct GridRow {
    pub state: Badge,
    pub href: String,
    pub total: usize,
    pub cells: Vec<GridCell>,
}

pub struct ProbeRow {
    pub name: String,
    pub kind: String,
    pub status: Badge,
    pub latency: String,
    pub checked: Option<When>,
    pub reason: String,
}

pub struct ReceiverRow {
    pub name: String,
    pub kind: String,
    pub status: Badge,
    pub pending: u64,
    pub delivered: u64,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    pub now: When,
    pub sessions: usize,
    pub levels: Vec<(Badge, usize, String)>,
    pub level_heads: Vec<Badge>,
    pub grid: Vec<GridRow>,
    pub alerts: Vec<AlertRow>,
    pub more_alerts: usize,
    pub firing: usize,
    pub pending: usize,
    pub silenced: usize,
    pub probes: Vec<ProbeRow>,
    pub store: Badge,
    pub store_detail: String,
    pub evaluated: Option<When>,
    pub receivers: Vec<ReceiverRow>,
    pub ingest_accepted: u64,
}

fn outcome_badge(ok: Option<bool>) -> Badge {
    match ok {
        Some(true) => Badge {
            class: "ok",
            icon: "●",
            text: "ok".into(),
        },
        Some(false) => Badge {
            class: "critical",
            icon: "✖",
            text: "failed".into(),
        },
        None => Badge {
            class: "muted",
            icon: "…",
            text: "pending".into(),
        },
    }
}

pub(super) async fn overview(
    State(state): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Some(r) = guard(&state, &headers, &uri) {
        return r;
    }
    let now = clock::now();
    let snapshot = state.model.snapshot();
    let view = state.alerting.view();
    let levels = Level::ALL
        .iter()
        .rev()
        .map(|l| {
            (
                level(*l),
                view.by_level[*l as usize],
                format!("/ui/sessions?status={}", l.as_str()),
            )
        })
        .collect();
    // Worst first: the states with trouble before `connected`.
    let order = [
        SessionState::LoggedOut,
        SessionState::CircuitOpen,
        SessionState::Disconnected,
        SessionState::QrRequired,
        SessionState::Reconnecting,
        SessionState::Connecting,
        SessionState::Connected,
    ];
    let grid = order
        .iter()
        .map(|s| {
            let row = view.by_state_level[s.index()];
            GridRow {
                state: state_badge(*s),
                href: format!("/ui/sessions?state={}", s.as_str()),
                total: snapshot.by_state()[s.index()],
                cells: Level::ALL
                    .iter()
                    .rev()
                    .map(|l| GridCell {
                        count: row[*l as usize],
                        href: format!("/ui/sessions?state={}&status={}", s.as_str(), l.as_str()),
                        level: level(*l),
                    })
                    .collect(),
            }
        })
        .collect();
    // Incidents, then firing, then pending, each worst first as the view
    // is: one pass keeping the first few of each (no sort of the fleet's
    // alerts per request).
    let mut buckets: [Vec<&ActiveAlert>; 3] = Default::default();
    let mut listed = 0usize;
    for a in view.active.iter().filter(|a| !a.folded) {
        listed += 1;
        let b = if a.code == FLEET_INCIDENT {
            0
        } else if a.state == Phase::Firing {
            1
        } else {
            2
        };
        if buckets[b].len() < OVERVIEW_ALERTS {
            buckets[b].push(a);
        }
    }
    let more_alerts = listed.saturating_sub(OVERVIEW_ALERTS);
    let alerts = buckets
        .iter()
        .flatten()
        .take(OVERVIEW_ALERTS)
        .map(|a| alert_row(a, now))
        .collect();
    let probes = state
        .probes
        .iter()
        .map(|p| {
            let s = p.status();
            ProbeRow {
                name: p.spec.name.clone(),
                kind: p.spec.kind.to_owned(),
                status: outcome_badge(match s.status {
                    crate::probes::Outcome::Ok => Some(true),
                    crate::probes::Outcome::Failed => Some(false),
                    crate::probes::Outcome::Pending => None,
                }),
                latency: s.latency_ms.map_or("—".into(), |ms| format!("{ms:.1} ms")),
                checked: s.checked_at.map(|t| when(t, now)),
                reason: s.reason.clone(),
            }
        })
        .collect();
    let store = state.model.store_health();
    let receivers = state
        .alerting
        .receivers()
        .iter()
        .map(|(name, r)| ReceiverRow {
            name: name.clone(),
            kind: r.kind.to_owned(),
            status: match r.status {
                "ok" => outcome_badge(Some(true)),
                "retrying" => Badge {
                    class: "warning",
                    icon: "↻",
                    text: "retrying".into(),
                },
                other => Badge {
                    class: "critical",
                    icon: "✖",
                    text: other.into(),
                },
            },
            pending: r.pending,
            delivered: r.delivered,
            reason: r.reason.clone().unwrap_or_default(),
        })
        .collect();
    let page = OverviewPage {
        now: when(now, now),
        sessions: snapshot.len(),
        levels,
        level_heads: Level::ALL.iter().rev().map(|l| level(*l)).collect(),
        grid,
        alerts,
        more_alerts,
        firing: view.counts.firing,
        pending: view.counts.pending,
        silenced: view.counts.silenced,
        probes,
        store: outcome_badge(Some(store.reachable)),
        store_detail: store
            .error
            .clone()
            .unwrap_or_else(|| "writes succeed".into()),
        evaluated: view.evaluated_at.map(|t| when(t, now)),
        receivers,
        ingest_accepted: state
            .telemetry
            .ingest_events
            .with_label_values(&["accepted"])
            .get(),
    };
    html(StatusCode::OK, page.render())
}

// ---------------------------------------------------------------- sessions

#[derive(Default, Clone)]
pub struct Filters {
    pub status: String,
    pub state: String,
    pub code: String,
    pub label: String,
    pub q: String,
}

impl Filters {
    fn query(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("status", &self.status),
            ("state", &self.state),
            ("code", &self.code),
            ("label", &self.label),
            ("q", &self.q),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", encode(v)));
            }
        }
        parts.join("&")
    }
}

fn encode(text: &str) -> String {
    super::view::query_value(text, false)
}

pub struct SessionRow {
    pub id: String,
    pub href: String,
    pub state: Badge,
    pub level: Badge,
    pub codes: Vec<String>,
    pub labels: Vec<(String, String)>,
    pub since: When,
}

#[derive(Template)]
#[template(path = "sessions.html")]
pub struct SessionsPage {
    pub now: When,
    pub f: Filters,
    pub states: Vec<&'static str>,
    pub levels: Vec<&'static str>,
    pub codes: Vec<&'static str>,
    pub rows: Vec<SessionRow>,
    pub total: usize,
    pub first_href: Option<String>,
    pub next_href: Option<String>,
    pub error: Option<String>,
}

#[derive(Deserialize, Default)]
pub(super) struct SessionsQuery {
    status: Option<String>,
    state: Option<String>,
    code: Option<String>,
    label: Option<String>,
    q: Option<String>,
    after: Option<String>,
}

pub(super) async fn sessions(
    State(st): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    query: Result<Query<SessionsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Some(r) = guard(&st, &headers, &uri) {
        return r;
    }
    let now = clock::now();
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let f = Filters {
        status: q.status.unwrap_or_default(),
        state: q.state.unwrap_or_default(),
        code: q.code.unwrap_or_default(),
        label: q.label.unwrap_or_default(),
        q: q.q.unwrap_or_default(),
    };
    let mut error = None;
    let mut bad = |what: String| error = Some(what);
    let want_level = match f.status.as_str() {
        "" => None,
        s => Level::parse(s).or_else(|| {
            bad(format!("status `{s}` is not one of ok, warning, critical"));
            None
        }),
    };
    let want_state = match f.state.as_str() {
        "" => None,
        s => SessionState::parse(s).or_else(|| {
            bad(format!("state `{s}` is not a session state"));
            None
        }),
    };
    let want_code = match f.code.as_str() {
        "" => None,
        c => AlertCode::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == c)
            .or_else(|| {
                bad(format!("code `{c}` is not an alert code"));
                None
            }),
    };
    let want_label = match f.label.as_str() {
        "" => None,
        // The API's own check (name:value, a valid label name).
        l => match crate::routes::session::label_filter(l) {
            Ok(pair) => Some(pair),
            Err(e) => {
                bad(e.message());
                None
            }
        },
    };
    let t = &st.settings.thresholds;
    let snapshot = st.model.snapshot();
    let view = st.alerting.view();
    let cheap = |s: &Session| {
        want_state.is_none_or(|w| s.state == w)
            && want_label
                .as_ref()
                .is_none_or(|(n, v)| s.labels.get(n) == Some(v.as_str()))
            && (f.q.is_empty() || s.id().as_str().contains(f.q.as_str()))
    };
    let judged = |s: &Session| {
        let a = evaluate(s, t, now);
        want_level.is_none_or(|w| a.level == w).then_some(a)
    };
    // By alert code: the sessions with that alert pending or firing, from
    // the evaluator's list, instead of judging the fleet; the page walks
    // the sessions in id order and keeps those in the set.
    let with_code: Option<std::collections::HashSet<&str>> = want_code.map(|c| {
        view.active
            .iter()
            .filter(|a| a.code == c.as_str() && !a.session.is_empty())
            .map(|a| a.session.as_str())
            .collect()
    });
    let candidates = snapshot.sessions_after(q.after.as_deref()).filter(|s| {
        with_code
            .as_ref()
            .is_none_or(|ids| ids.contains(s.id().as_str()))
    });
    let total = if error.is_some() {
        0
    } else if want_level.is_none() && want_code.is_none() {
        match (&want_label, f.q.is_empty(), want_state) {
            (None, true, None) => snapshot.len(),
            (None, true, Some(w)) => snapshot.by_state()[w.index()],
            _ => snapshot.sessions().filter(|s| cheap(s)).count(),
        }
    } else if want_code.is_none() && want_label.is_none() && f.q.is_empty() {
        // State and level: the evaluator's grid.
        let l = want_level.map_or(0, |l| l as usize);
        match want_state {
            Some(s) => view.by_state_level[s.index()][l],
            None => view.by_level[l],
        }
    } else if let Some(ids) = &with_code {
        if want_level.is_none() && want_state.is_none() && want_label.is_none() && f.q.is_empty() {
            ids.len()
        } else {
            // Judged only when a level is asked for too.
            ids.iter()
                .filter_map(|id| snapshot.get(id))
                .filter(|s| cheap(s) && (want_level.is_none() || judged(s).is_some()))
                .count()
        }
    } else {
        snapshot
            .sessions()
            .filter(|s| cheap(s) && judged(s).is_some())
            .count()
    };
    let mut rows = Vec::new();
    let mut more = false;
    if error.is_none() {
        for s in candidates {
            if !cheap(s) {
                continue;
            }
            let Some(a) = judged(s) else { continue };
            if rows.len() == PAGE {
                more = true;
                break;
            }
            rows.push(SessionRow {
                id: s.id().as_str().to_owned(),
                href: session_href(s.id().as_str()),
                state: state_badge(s.state),
                level: level(a.level),
                codes: a
                    .alerts
                    .iter()
                    .map(|x| x.code.as_str().to_owned())
                    .collect(),
                labels: s
                    .labels
                    .iter()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect(),
                since: when(s.state_changed_at, now),
            });
        }
    }
    let base = f.query();
    let join = |extra: String| {
        if base.is_empty() {
            format!("/ui/sessions?{extra}")
        } else {
            format!("/ui/sessions?{base}&{extra}")
        }
    };
    let next_href = more
        .then(|| {
            rows.last()
                .map(|r: &SessionRow| join(format!("after={}", encode(&r.id))))
        })
        .flatten();
    let first_href = q.after.is_some().then(|| {
        if base.is_empty() {
            "/ui/sessions".to_owned()
        } else {
            format!("/ui/sessions?{base}")
        }
    });
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = SessionsPage {
        now: when(now, now),
        f,
        states: SessionState::ALL.iter().map(|s| s.as_str()).collect(),
        levels: Level::ALL.iter().map(|l| l.as_str()).collect(),
        codes: AlertCode::ALL.iter().map(|c| c.as_str()).collect(),
        rows,
        total,
        first_href,
        next_href,
        error,
    };
    html(status, page.render())
}

// ---------------------------------------------------------------- one session

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
}

#[derive(Deserialize, Default)]
pub(super) struct SessionQuery {
    before: Option<u64>,
}

fn display(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        other => other.to_string(),
    }
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

pub(super) async fn session(
    State(st): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    query: Result<Query<SessionQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Some(r) = guard(&st, &headers, &uri) {
        return r;
    }
    let started = Instant::now();
    let now = clock::now();
    let Some(s) = st.model.snapshot().get(&id).cloned() else {
        let page = NotFoundPage {
            now: when(now, now),
            what: format!("No session `{id}`."),
        };
        return html(StatusCode::NOT_FOUND, page.render());
    };
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let t = &st.settings.thresholds;
    let a = evaluate(&s, t, now);
    let view = st.alerting.view();
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
    let history = st.model.history();
    let sid = s.id().clone();
    // On the first page the events shown are the newest of the timeline's:
    // one read serves both.
    let read = tokio::task::spawn_blocking(move || {
        let recent = history.session_events(&sid, 2000, None)?;
        let page = match q.before {
            None => recent.iter().take(PAGE).cloned().collect(),
            Some(before) => history.session_events(&sid, PAGE, Some(before))?,
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
    let window = now.since(from).as_millis().max(1) as f64;
    let band_views = bands
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
        .collect();
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
    let page = SessionPage {
        now: when(now, now),
        id: s.id().as_str().to_owned(),
        state: state_badge(s.state),
        level: level(a.level),
        since: when(s.state_changed_at, now),
        alerts: a
            .alerts
            .iter()
            .map(|x| SessionAlert {
                phase: view
                    .active
                    .iter()
                    .find(|v| v.session == id && v.code == x.code.as_str())
                    .map_or_else(
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
    pub what: String,
}

// ---------------------------------------------------------------- alerts

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

async fn alerts_page(st: &Shared, error: Option<String>, notice: Option<String>) -> AlertsPage {
    let now = clock::now();
    let view = st.alerting.view();
    // A page stays small however many alerts fire: the first rows of each
    // group (worst first); the sessions page filters for the rest.
    let rows = |keep: &dyn Fn(&ActiveAlert) -> bool| -> (Vec<AlertRow>, usize) {
        let mut total = 0;
        let mut rows = Vec::new();
        for a in view.active.iter().filter(|a| keep(a)) {
            total += 1;
            if rows.len() < ALERTS_PER_GROUP {
                rows.push(alert_row(a, now));
            }
        }
        (rows, total)
    };
    let fleet = FLEET_INCIDENT;
    let incidents = rows(&|a| a.code == fleet);
    let firing = rows(&|a| a.code != fleet && a.state == Phase::Firing && !a.silenced);
    let pending = rows(&|a| a.code != fleet && a.state == Phase::Pending && !a.silenced);
    let silenced = rows(&|a| a.silenced);
    let history = st
        .alerting
        .history(50, None)
        .await
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
        token_needed: auth::admin_needed(st),
        error,
        notice,
    }
}

#[derive(Deserialize, Default)]
pub(super) struct AlertsQuery {
    saved: Option<String>,
}

pub(super) async fn alerts(
    State(st): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    query: Result<Query<AlertsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Some(r) = guard(&st, &headers, &uri) {
        return r;
    }
    let notice = query
        .ok()
        .and_then(|Query(q)| q.saved)
        .map(|what| match what.as_str() {
            "expired" => "The silence was expired.".to_owned(),
            _ => "The silence was saved.".to_owned(),
        });
    html(
        StatusCode::OK,
        alerts_page(&st, None, notice).await.render(),
    )
}

#[derive(Deserialize)]
pub(super) struct SilenceForm {
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

pub(super) async fn create_silence(
    State(st): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Form(f): Form<SilenceForm>,
) -> Response {
    if let Some(r) = guard(&st, &headers, &uri) {
        return r;
    }
    let refuse = |st: Shared, status: StatusCode, why: String| async move {
        html(status, alerts_page(&st, Some(why), None).await.render())
    };
    if !auth::admin(&st, &f.token) {
        return refuse(
            st,
            StatusCode::UNAUTHORIZED,
            "Wrong admin token (ADMIN_TOKEN, else INGEST_TOKEN).".into(),
        )
        .await;
    }
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
    match crate::routes::alerts::save_silence(&st, n).await {
        Ok(_) => Redirect::to("/ui/alerts?saved=created").into_response(),
        Err(e) => {
            let status = e.status();
            refuse(st, status, e.message()).await
        }
    }
}

#[derive(Deserialize)]
pub(super) struct ExpireForm {
    #[serde(default)]
    token: String,
}

pub(super) async fn expire_silence(
    State(st): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    Form(f): Form<ExpireForm>,
) -> Response {
    if let Some(r) = guard(&st, &headers, &uri) {
        return r;
    }
    if !auth::admin(&st, &f.token) {
        let page = alerts_page(
            &st,
            Some("Wrong admin token (ADMIN_TOKEN, else INGEST_TOKEN).".into()),
            None,
        )
        .await;
        return html(StatusCode::UNAUTHORIZED, page.render());
    }
    match crate::routes::alerts::expire_silence(&st, &id).await {
        Ok(_) => Redirect::to("/ui/alerts?saved=expired").into_response(),
        Err(e) => {
            let status = e.status();
            let page = alerts_page(&st, Some(e.message()), None).await;
            html(status, page.render())
        }
    }
}
