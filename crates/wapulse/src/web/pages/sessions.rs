//! `/ui/sessions`: server-side filters in the URL, keyset paging.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde::Deserialize;
use wapulse_core::{AlertCode, Level, Session, SessionState, evaluate};

use super::{PAGE, session_href, viewer};
use crate::app::Shared;
use crate::clock;
use crate::web::view::{Badge, Viewing, When, html, level, state as state_badge, when};

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
    crate::web::view::query_value(text, false)
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
    pub viewing: Option<Viewing>,
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
pub(in crate::web) struct SessionsQuery {
    status: Option<String>,
    state: Option<String>,
    code: Option<String>,
    label: Option<String>,
    q: Option<String>,
    after: Option<String>,
}

pub(in crate::web) async fn sessions(
    State(st): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    query: Result<Query<SessionsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let caller = match viewer(&st, &headers, &uri) {
        Ok(c) => c,
        Err(r) => return *r,
    };
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
    let published = st.alerting.snapshot();
    // A tenant walks its own sessions (its members, in id order); its
    // code filter is judged per session, not read from the fleet's index.
    let members = caller.members(&snapshot);
    let cheap = |s: &Session| {
        caller.sees(s)
            && want_state.is_none_or(|w| s.state == w)
            && want_label
                .as_ref()
                .is_none_or(|(n, v)| s.labels.get(n) == Some(v.as_str()))
            && (f.q.is_empty() || s.id().as_str().contains(f.q.as_str()))
    };
    let judged = |s: &Session| {
        let a = evaluate(s, t, now);
        let coded =
            members.is_none() || want_code.is_none_or(|c| a.alerts.iter().any(|x| x.code == c));
        (coded && want_level.is_none_or(|w| a.level == w)).then_some(a)
    };
    // Candidates in id order, from the evaluator's indexes where a filter
    // has one (O(page) however large the fleet): by alert code, the
    // sessions with that alert pending or firing; by level (warning,
    // critical), the sessions it last judged at it; else the fleet.
    let active = &published.active;
    let after = q.after.as_deref();
    // The level lists only once the evaluator judged this snapshot.
    let by_level = want_level
        .filter(|_| published.judged(&snapshot))
        .and_then(|l| published.levels.at(l, after));
    let candidates: Box<dyn Iterator<Item = &std::sync::Arc<Session>>> =
        if let Some(ids) = members.as_deref() {
            let start = after.map_or(0, |a| ids.partition_point(|id| id.as_str() <= a));
            Box::new(
                ids[start..]
                    .iter()
                    .filter_map(|id| snapshot.get(id.as_str())),
            )
        } else if let Some(c) = want_code {
            let (alerts, _) = active.with_code_by_session(c.as_str(), after);
            Box::new(alerts.filter_map(|a| snapshot.get(&a.session)))
        } else if let Some((ids, _)) = by_level {
            Box::new(ids.iter().filter_map(|id| snapshot.get(id.as_str())))
        } else {
            Box::new(snapshot.sessions_after(after))
        };
    let only = |level: bool, code: bool| {
        want_level.is_some() == level
            && want_code.is_some() == code
            && want_label.is_none()
            && f.q.is_empty()
    };
    let total = if error.is_some() {
        0
    } else if let Some(ids) = members.as_deref() {
        ids.iter()
            .filter_map(|id| snapshot.get(id.as_str()))
            .filter(|s| cheap(s) && judged(s).is_some())
            .count()
    } else if want_level.is_none() && want_code.is_none() {
        match (&want_label, f.q.is_empty(), want_state) {
            (None, true, None) => snapshot.len(),
            (None, true, Some(w)) => snapshot.by_state()[w.index()],
            _ => snapshot.sessions().filter(|s| cheap(s)).count(),
        }
    } else if only(true, false) {
        // State and level: the evaluator's grid.
        let l = want_level.map_or(0, |l| l as usize);
        match want_state {
            Some(s) => published.by_state_level[s.index()][l],
            None => published.by_level[l],
        }
    } else if let Some(c) = want_code {
        let (alerts, all) = active.with_code_by_session(c.as_str(), None);
        if only(false, true) && want_state.is_none() {
            all
        } else {
            // Judged only when a level is asked for too.
            alerts
                .filter_map(|a| snapshot.get(&a.session))
                .filter(|s| cheap(s) && (want_level.is_none() || judged(s).is_some()))
                .count()
        }
    } else if let Some(l) = want_level
        .filter(|_| published.judged(&snapshot))
        .and_then(|l| published.levels.at(l, None))
    {
        l.0.iter()
            .filter_map(|id| snapshot.get(id.as_str()))
            .filter(|s| cheap(s) && judged(s).is_some())
            .count()
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
        viewing: Viewing::of(&caller),
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
