//! `/`: the fleet at a glance (state × level grid, firing alerts and
//! incidents first, probes, receivers, wapulse's own health).

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use wapulse_core::{Level, SessionState};

use super::{AlertRow, OVERVIEW_ALERTS, alert_row, guard};
use crate::alerting::{ActiveAlert, AlertGroup};
use crate::app::Shared;
use crate::clock;
use crate::web::charts::Chart;
use crate::web::view::{Badge, When, html, level, state as state_badge, when};

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
    /// Sessions by state and alerts firing over the last 24 hours.
    pub day: Option<(Chart, Chart)>,
    pub day_error: Option<String>,
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

pub(in crate::web) async fn overview(
    State(state): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Some(r) = guard(&state, &headers, &uri) {
        return r;
    }
    let now = clock::now();
    let snapshot = state.model.snapshot();
    let judged = state.alerting.snapshot();
    let levels = Level::ALL
        .iter()
        .rev()
        .map(|l| {
            (
                level(*l),
                judged.by_level[*l as usize],
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
            let row = judged.by_state_level[s.index()];
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
    // Incidents, then firing, then pending that no incident covers, each
    // worst first: the first few of each from the evaluator's indexes.
    let active = &judged.active;
    let buckets: Vec<Vec<&ActiveAlert>> = [
        AlertGroup::Incidents,
        AlertGroup::FiringUncovered,
        AlertGroup::PendingUncovered,
    ]
    .iter()
    .map(|g| {
        active
            .alerts(active.group(*g))
            .take(OVERVIEW_ALERTS)
            .collect()
    })
    .collect();
    let listed = [
        AlertGroup::Incidents,
        AlertGroup::FiringUncovered,
        AlertGroup::PendingUncovered,
    ]
    .iter()
    .map(|g| active.group(*g).len())
    .sum::<usize>();
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
                    crate::probes::Standing::Ok => Some(true),
                    crate::probes::Standing::Failed => Some(false),
                    crate::probes::Standing::Pending => None,
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
    let (day, day_error) = match super::history::fleet_day(&state, now).await {
        Ok(charts) => (Some(charts), None),
        Err(e) => (None, Some(e)),
    };
    let page = OverviewPage {
        now: when(now, now),
        day,
        day_error,
        sessions: snapshot.len(),
        levels,
        level_heads: Level::ALL.iter().rev().map(|l| level(*l)).collect(),
        grid,
        alerts,
        more_alerts,
        firing: judged.counts.firing,
        pending: judged.counts.pending,
        silenced: judged.counts.silenced,
        probes,
        store: outcome_badge(Some(store.reachable)),
        store_detail: store
            .error
            .clone()
            .unwrap_or_else(|| "writes succeed".into()),
        evaluated: judged.evaluated_at.map(|t| when(t, now)),
        receivers,
        ingest_accepted: state
            .telemetry
            .ingest_events
            .with_label_values(&["accepted"])
            .get(),
    };
    html(StatusCode::OK, page.render())
}
