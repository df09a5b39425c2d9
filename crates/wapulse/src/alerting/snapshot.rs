//! What the evaluator publishes after every pass ([`AlertSnapshot`]), read
//! lock-free by `/alerts`, the health endpoints, the dashboard and the
//! Alertmanager resend.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use super::active::{ActiveAlerts, AlertGroup, SessionLevels};
use wapulse_core::grouping::{NotifiedAlert, Status};
use wapulse_core::{AlertCode, Level, Phase, Timestamp};

/// One pending or firing alert (or fleet incident), as `/alerts` shows it.
/// It owns no text: the session id, summary and labels are shared with the
/// evaluator's state (an active alert costs its ~100 bytes here).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveAlert {
    /// The session (empty for a fleet incident).
    pub session: Arc<str>,
    /// The code.
    pub code: &'static str,
    /// How bad.
    pub level: Level,
    /// `pending` or `firing`.
    pub state: Phase,
    /// Since when the condition holds.
    #[serde(with = "wapulse_core::time::rfc3339")]
    pub since: Timestamp,
    /// When it fired.
    #[serde(with = "wapulse_core::time::rfc3339_opt")]
    pub fired_at: Option<Timestamp>,
    /// Whether it is flapping.
    pub flapping: bool,
    /// Whether a silence mutes it.
    pub silenced: bool,
    /// Whether a fleet incident covers it (said there, not on its own).
    pub folded: bool,
    /// What is wrong.
    pub summary: Arc<str>,
    /// The session's labels (an incident's set and trouble).
    pub labels: Arc<BTreeMap<String, String>>,
    /// For an incident: the sessions it covers (capped).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<String>,
    /// For an incident: how many sessions it covers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affected: Option<u64>,
    /// Whether an Alertmanager was told it fires (resent until resolved).
    #[serde(skip)]
    pub told: bool,
}

impl ActiveAlert {
    /// Its label `name` as matchers read it: `session` (none for a fleet
    /// incident), or one of the session's labels.
    pub fn label(&self, name: &str) -> Option<&str> {
        match name {
            "session" => Some(&*self.session).filter(|s| !s.is_empty()),
            other => self.labels.get(other).map(String::as_str),
        }
    }

    /// As routes and silences see it.
    pub fn as_notified(&self) -> NotifiedAlert {
        NotifiedAlert {
            session: self.session.to_string(),
            code: self.code.to_owned(),
            level: self.level,
            status: Status::Firing,
            starts_at: self.fired_at.unwrap_or(self.since),
            ends_at: None,
            summary: self.summary.clone(),
            action: "".into(),
            flapping: self.flapping,
            labels: self.labels.clone(),
            sessions: self.sessions.clone(),
            affected: self.affected,
            retired: false,
        }
    }
}

/// What the evaluator publishes after every pass; read lock-free.
#[derive(Clone, Debug, Default)]
pub struct AlertSnapshot {
    /// When the last pass ran (`None` before the first).
    pub evaluated_at: Option<Timestamp>,
    /// The model's event count (`FleetSnapshot::events`) whose changes the
    /// last pass judged: the indexes below are current for a model
    /// snapshot with this count (see [`AlertSnapshot::judged`]).
    pub judged_events: u64,
    /// Sessions per level (`ok`, `warning`, `critical`) as last judged.
    pub by_level: [usize; 3],
    /// Sessions per state (`SessionState::index`) and level, as last judged.
    pub by_state_level: [[usize; 3]; wapulse_core::event::STATES],
    /// Conditions holding over all sessions.
    pub alerts: usize,
    /// Conditions holding, by code (`AlertCode as usize`) and level, as
    /// last judged: `/metrics`' `wa_alerts` when it evaluates no session.
    pub by_code: [[usize; 3]; AlertCode::ALL.len()],
    /// Counts over `active`.
    pub counts: AlertCounts,
    /// Pending and firing alerts and incidents, worst first, indexed.
    pub active: Arc<ActiveAlerts>,
    /// The sessions at warning and at critical, as last judged.
    pub levels: Arc<SessionLevels>,
    /// Why the last write of alert state failed, if it did.
    pub store_error: Option<String>,
}

/// Counts of the active alerts, kept with the snapshot (reads never count).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct AlertCounts {
    /// Firing alerts and incidents.
    pub firing: usize,
    /// Pending alerts.
    pub pending: usize,
    /// Firing fleet incidents.
    pub incidents: usize,
    /// Silenced alerts.
    pub silenced: usize,
}

impl AlertSnapshot {
    /// Whether the last pass judged every change of `fleet`: then the
    /// active alerts and the level lists answer for it (up to the
    /// deadlines due since, which the evaluator judges as they come).
    pub fn judged(&self, fleet: &wapulse_core::FleetSnapshot) -> bool {
        self.evaluated_at.is_some() && self.judged_events == fleet.events()
    }

    /// Sessions judged (each counted at its level).
    pub fn sessions(&self) -> usize {
        self.by_level.iter().sum()
    }

    /// Whether the evaluator passed within `within` of `now` (it passes at
    /// least every second while it runs).
    pub fn is_fresh(&self, now: Timestamp, within: wapulse_core::DurationMs) -> bool {
        self.evaluated_at.is_some_and(|at| now.since(at) < within)
    }

    /// What the history samples of this judgement each minute besides the
    /// counts: `alerts` (firing by code and level) and `stateLevels`
    /// (sessions by state and level, the states that have any).
    pub fn history_detail(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        out.insert(
            "alerts".into(),
            crate::history::alerts_json(&self.firing_by_code()),
        );
        let grid = wapulse_core::SessionState::ALL
            .iter()
            .filter(|s| self.by_state_level[s.index()].iter().any(|n| *n > 0))
            .map(|s| {
                let [ok, warning, critical] = self.by_state_level[s.index()];
                (
                    s.as_str().to_owned(),
                    serde_json::json!({"ok": ok, "warning": warning, "critical": critical}),
                )
            })
            .collect();
        out.insert("stateLevels".into(), serde_json::Value::Object(grid));
        out
    }

    /// Firing session alerts no silence mutes, by code: (warning,
    /// critical), in code order.
    pub fn firing_by_code(&self) -> BTreeMap<&'static str, (u64, u64)> {
        let mut out: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
        for a in self.active.alerts(self.active.group(AlertGroup::Firing)) {
            let counts = out.entry(a.code).or_default();
            match a.level {
                Level::Warning => counts.0 += 1,
                Level::Critical => counts.1 += 1,
                Level::Ok => {}
            }
        }
        out
    }
}
