//! `/`: the fleet at a glance (state × level grid, firing alerts and
//! incidents first, probes, receivers, wapulse's own health).

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use wapulse_core::{Level, SessionState};

use super::{AlertRow, OVERVIEW_ALERTS, alert_row, viewer};
use crate::alerting::{ActiveAlert, AlertGroup};
use crate::app::Shared;
use crate::clock;
use crate::tenancy::Caller;
use crate::web::charts::Chart;
use crate::web::view::{Badge, Viewing, When, html, level, state as state_badge, when};

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
    pub viewing: Option<Viewing>,
    /// A tenant's view: no probe, receiver, fleet history or ingest count
    /// (they speak for the whole fleet).
    pub scoped: bool,
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
    let caller = match viewer(&state, &headers, &uri) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    if caller.scope().is_some() {
        return tenant_overview(&state, &caller).await;
    }
    let now = clock::now();
    let snapshot = state.model.snapshot();
    let judged = state.alerting.snapshot();
    let levels = level_cards(&judged.by_level);
    let grid = grid(&judged.by_state_level, &snapshot.by_state());
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
        viewing: None,
        scoped: false,
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

/// The cards of sessions per level, worst first.
fn level_cards(by_level: &[usize; 3]) -> Vec<(Badge, usize, String)> {
    Level::ALL
        .iter()
        .rev()
        .map(|l| {
            (
                level(*l),
                by_level[*l as usize],
                format!("/ui/sessions?status={}", l.as_str()),
            )
        })
        .collect()
}

/// The state × level grid, worst state first.
fn grid(
    by_state_level: &[[usize; 3]; wapulse_core::event::STATES],
    by_state: &[usize; wapulse_core::event::STATES],
) -> Vec<GridRow> {
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
    order
        .iter()
        .map(|s| {
            let row = by_state_level[s.index()];
            GridRow {
                state: state_badge(*s),
                href: format!("/ui/sessions?state={}", s.as_str()),
                total: by_state[s.index()],
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
        .collect()
}

/// `/` for a tenant (a scoped login, or an operator's "view as"): its
/// sessions' cards, grid and alerts, judged now; nothing of the rest of
/// the fleet or of wapulse's own parts.
async fn tenant_overview(state: &Shared, caller: &Caller) -> Response {
    let now = clock::now();
    let counts = crate::web::live::tenant_counts(state, caller);
    let (rollup, counted) = (&counts.rollup, &counts.alerts);
    let judged = state.alerting.snapshot();
    let mut firing: Vec<&ActiveAlert> = Vec::new();
    let mut pending: Vec<&ActiveAlert> = Vec::new();
    for a in judged.active.iter().filter(|a| caller.sees_alert(a)) {
        match a.state {
            wapulse_core::Phase::Firing => firing.push(a),
            _ => pending.push(a),
        }
    }
    let listed = firing.len() + pending.len();
    let alerts = firing
        .into_iter()
        .chain(pending)
        .take(OVERVIEW_ALERTS)
        .map(|a| alert_row(a, now))
        .collect();
    let page = OverviewPage {
        now: when(now, now),
        viewing: Viewing::of(caller),
        scoped: true,
        day: None,
        day_error: None,
        sessions: rollup.sessions,
        levels: level_cards(&rollup.by_level),
        level_heads: Level::ALL.iter().rev().map(|l| level(*l)).collect(),
        grid: grid(&counts.by_state_level, &rollup.by_state),
        alerts,
        more_alerts: listed.saturating_sub(OVERVIEW_ALERTS),
        firing: counted.firing,
        pending: counted.pending,
        silenced: counted.silenced,
        probes: Vec::new(),
        store: outcome_badge(None),
        store_detail: String::new(),
        evaluated: judged.evaluated_at.map(|t| when(t, now)),
        receivers: Vec::new(),
        ingest_accepted: 0,
    };
    html(StatusCode::OK, page.render())
}
