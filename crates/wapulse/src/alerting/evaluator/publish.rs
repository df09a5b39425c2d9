//! What a pass publishes: the [`AlertSnapshot`] (rollup, active list and
//! its counts) and the `wa_alerts_firing` gauges.
//!
//! [`AlertSnapshot`]: crate::alerting::AlertSnapshot

use std::collections::HashMap;
use std::sync::Arc;

use wapulse_core::grouping::Status;
use wapulse_core::{Level, Phase, Timestamp};

use super::sessions::notified;
use super::{Evaluator, FLEET_INCIDENT};
use crate::alerting::active::{ActiveAlerts, SessionLevels};
use crate::alerting::snapshot::{ActiveAlert, AlertCounts, AlertSnapshot};

impl Evaluator {
    pub(super) fn publish(&mut self, now: Timestamp) {
        let previous = self.published.load_full();
        // Counted (and the firing gauges set) only when the list changed;
        // most passes reuse the previous list and its counts.
        let (active, counts) = if self.active_dirty || previous.evaluated_at.is_none() {
            self.active_dirty = false;
            let active = Arc::new(ActiveAlerts::new(self.active(now)));
            (active.clone(), self.count(&active))
        } else {
            (previous.active.clone(), previous.counts)
        };
        let levels = if self.levels_dirty || previous.evaluated_at.is_none() {
            self.levels_dirty = false;
            let [warning, critical] = &self.levels;
            Arc::new(SessionLevels::new(
                warning.iter().cloned().collect(),
                critical.iter().cloned().collect(),
            ))
        } else {
            previous.levels.clone()
        };
        self.published.store(Arc::new(AlertSnapshot {
            evaluated_at: Some(now),
            judged_events: self.judged_events,
            by_level: self.by_level,
            by_state_level: self.by_state_level,
            alerts: self.alerts,
            by_code: self.by_code,
            counts,
            active,
            levels,
            store_error: self.store_error.clone(),
        }));
    }

    /// Counts the active list and sets `wa_alerts_firing` from it.
    pub(super) fn count(&mut self, active: &[ActiveAlert]) -> AlertCounts {
        let mut firing: HashMap<(String, Level), i64> = HashMap::new();
        let mut counts = AlertCounts::default();
        for a in active {
            match a.state {
                Phase::Firing => {
                    counts.firing += 1;
                    *firing.entry((a.code.to_owned(), a.level)).or_insert(0) += 1;
                }
                Phase::Pending => counts.pending += 1,
                Phase::Inactive => {}
            }
            counts.incidents += usize::from(a.code == FLEET_INCIDENT);
            counts.silenced += usize::from(a.silenced);
        }
        for key in self.firing_series.iter() {
            if !firing.contains_key(key) {
                self.metrics
                    .alerts_firing
                    .with_label_values(&[key.0.as_str(), key.1.as_str()])
                    .set(0);
            }
        }
        for ((code, level), n) in &firing {
            self.metrics
                .alerts_firing
                .with_label_values(&[code.as_str(), level.as_str()])
                .set(*n);
        }
        self.firing_series.extend(firing.into_keys());
        counts
    }

    pub(super) fn active(&self, now: Timestamp) -> Vec<ActiveAlert> {
        let is_active = |p: Phase| matches!(p, Phase::Pending | Phase::Firing);
        // Sized exactly (it is held until the next change: with 100,000
        // alerts, doubling growth would keep room for another ~60,000).
        let size = self
            .with_lives
            .iter()
            .filter_map(|id| self.sessions.get(id))
            .flat_map(|e| &e.lives)
            .filter(|(_, s)| is_active(s.life.phase))
            .count()
            + self.incidents.len();
        let mut out = Vec::with_capacity(size);
        // In (session, code) order, incidents (no session) first:
        // `ActiveAlerts::new` sorts it worst first and indexes it.
        for e in self.incidents.values() {
            if e.saved.life.phase == Phase::Firing {
                let mut a = ActiveAlert {
                    session: "".into(),
                    code: FLEET_INCIDENT,
                    level: Level::Critical,
                    state: Phase::Firing,
                    since: e.saved.life.active_since.unwrap_or(now),
                    fired_at: e.saved.life.fired_at,
                    flapping: e.saved.life.flapping,
                    silenced: false,
                    folded: false,
                    summary: e.saved.summary.clone(),
                    labels: e.saved.labels.clone(),
                    sessions: e
                        .saved
                        .sessions
                        .iter()
                        .take(self.settings.max_listed_sessions)
                        .cloned()
                        .collect(),
                    affected: e.saved.affected,
                    told: false,
                };
                a.silenced = self.is_silenced(&a.as_notified(), now);
                out.push(a);
            }
        }
        let mut lives = Vec::new();
        for id in &self.with_lives {
            let Some(e) = self.sessions.get(id) else {
                continue;
            };
            lives.clear();
            lives.extend(e.lives.iter().filter(|(_, s)| is_active(s.life.phase)));
            lives.sort_unstable_by_key(|(code, _)| code.as_str());
            for (code, saved) in &lives {
                // No text is built per alert unless a silence must match.
                let silenced = !self.silences.is_empty() && {
                    let n = notified(id.as_str(), code.as_str(), saved, Status::Firing, now);
                    self.is_silenced(&n, now)
                };
                out.push(ActiveAlert {
                    session: id.shared(),
                    code: code.as_str(),
                    level: saved.life.level,
                    state: saved.life.phase,
                    since: saved.life.active_since.unwrap_or(now),
                    fired_at: saved
                        .life
                        .fired_at
                        .filter(|_| saved.life.phase == Phase::Firing),
                    flapping: saved.life.flapping,
                    silenced,
                    folded: self.folds(id.as_str(), code.as_str()),
                    summary: saved.summary.clone(),
                    labels: saved.labels.clone(),
                    sessions: Vec::new(),
                    affected: None,
                    told: saved.told,
                });
            }
        }
        out
    }
}
