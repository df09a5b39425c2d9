//! Judging one session: its verdict, each alert's lifecycle step, the
//! notifications the steps call for, its next deadline, and its share of
//! the rollup (sessions per level, state and alert code) and of the
//! incident tracker, kept by difference.
//!
//! A session the evaluator holds alert states for but the model no longer
//! has was retired (sessions leave the model only by a `retire` event):
//! each of its alerts ends at once (`AlertLife::retire`), said as retired,
//! and its states are forgotten. The resolves go to the outbox in the
//! pass's one transaction; after a crash the first (full) pass finds the
//! saved states of absent sessions and does the same.

use std::collections::BTreeMap;
use std::sync::Arc;

use wapulse_core::grouping::{NotifiedAlert, Status};
use wapulse_core::incident::Troubles;
use wapulse_core::{
    AlertCode, FleetSnapshot, Level, Phase, Session, SessionId, Timestamp, Transition, evaluate,
    next_change,
};

use super::persist::Saved;
use super::{Evaluator, Scope};
use crate::alerting::repair::RepairUrl;

#[derive(Default)]
pub(super) struct Entry {
    pub(super) evaluated: bool,
    pub(super) level: Level,
    /// The session's state (`SessionState::index`) when it was judged, for
    /// the state × level grid.
    pub(super) state: usize,
    pub(super) alerts: usize,
    /// The codes of its conditions at warning and at critical, as bits
    /// (`1 << AlertCode as usize`): its share of the counts by code.
    pub(super) codes: [u32; 2],
    pub(super) troubles: Option<Troubles>,
    pub(super) lives: Vec<(AlertCode, Saved)>,
    pub(super) due: Option<Timestamp>,
}

fn session_labels(s: &Session) -> Arc<BTreeMap<String, String>> {
    Arc::new(
        s.labels
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

/// An alert (of a session, or a fleet incident with `session` empty) as
/// notifications show it.
pub(super) fn notified(
    session: &str,
    code: &str,
    saved: &Saved,
    status: Status,
    now: Timestamp,
) -> NotifiedAlert {
    NotifiedAlert {
        session: session.to_owned(),
        code: code.to_owned(),
        level: saved.life.level,
        status,
        starts_at: saved.life.fired_at.unwrap_or(now),
        ends_at: (status == Status::Resolved)
            .then_some(saved.life.resolved_at)
            .flatten(),
        summary: saved.summary.clone(),
        action: saved.action.clone(),
        flapping: saved.life.flapping,
        labels: saved.labels.clone(),
        sessions: saved.sessions.clone(),
        affected: saved.affected,
        retired: false,
    }
}

/// What a step's transitions mean for notifications.
pub(super) fn notify_status(transitions: &[Transition]) -> Option<Status> {
    let mut status = None;
    for t in transitions {
        match t {
            Transition::Fired | Transition::LevelChanged { .. } | Transition::FlappingStarted => {
                status = Some(Status::Firing)
            }
            Transition::Resolved => status = Some(Status::Resolved),
            Transition::Pending | Transition::Cancelled => {}
        }
    }
    status
}

impl Evaluator {
    /// Moves a session between the level lists (warning, critical) when
    /// its judged level changed.
    fn move_level(&mut self, id: &SessionId, was: Option<Level>, now: Option<Level>) {
        if was == now {
            return;
        }
        let list = |l: Level| usize::from(l == Level::Critical);
        if let Some(l) = was.filter(|l| *l != Level::Ok) {
            self.levels[list(l)].remove(id);
            self.levels_dirty = true;
        }
        if let Some(l) = now.filter(|l| *l != Level::Ok) {
            self.levels[list(l)].insert(id.clone());
            self.levels_dirty = true;
        }
    }

    /// Adds (or takes away) a session's codes to the counts by code.
    fn count_codes(&mut self, codes: [u32; 2], add: bool) {
        for (i, level) in [Level::Warning, Level::Critical].into_iter().enumerate() {
            let mut bits = codes[i];
            while bits != 0 {
                let code = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let n = &mut self.by_code[code][level as usize];
                if add {
                    *n += 1;
                } else {
                    *n -= 1;
                }
            }
        }
    }

    pub(super) fn evaluate_session(
        &mut self,
        snap: &FleetSnapshot,
        id: &SessionId,
        now: Timestamp,
        out: &mut Vec<(NotifiedAlert, Scope)>,
    ) {
        let mut entry = self.sessions.remove(id).unwrap_or_default();
        let session = snap.get(id.as_str());
        let verdict = session.map(|s| evaluate(s, &self.thresholds, now));
        // Built once, and only for a session with an alert to label.
        let mut labels: Option<Arc<BTreeMap<String, String>>> = None;
        // The level it was judged at (`None`: not judged yet).
        let was = entry.evaluated.then_some(entry.level);
        if entry.evaluated {
            self.by_level[entry.level as usize] -= 1;
            self.by_state_level[entry.state][entry.level as usize] -= 1;
            self.alerts -= entry.alerts;
            self.count_codes(entry.codes, false);
        }
        let mut deadline = session.and_then(|s| next_change(s, &self.thresholds, now));
        let mut lives = std::mem::take(&mut entry.lives);
        for code in AlertCode::ALL {
            let alert = verdict
                .as_ref()
                .and_then(|v| v.alerts.iter().find(|a| a.code == code));
            let pos = lives.iter().position(|(c, _)| *c == code);
            let idx = match (alert, pos) {
                (None, None) => continue,
                (_, Some(p)) => p,
                (Some(_), None) => {
                    // One slot at a time (a `Saved` is ~450 bytes; the
                    // default growth would keep room for four).
                    lives.reserve_exact(1);
                    lives.push((code, Saved::default()));
                    lives.len() - 1
                }
            };
            let rules = self.settings.rules(code);
            let saved = &mut lives[idx].1;
            let before = (saved.life.clone(), saved.labels.clone());
            if let Some(a) = alert {
                let summary = a.message();
                if *saved.summary != *summary {
                    saved.summary = self.texts.text(summary);
                }
                // With `repair_url`, a session to link again says where.
                let repair = self
                    .settings
                    .repair_url
                    .as_ref()
                    .filter(|_| RepairUrl::applies_to(code))
                    .zip(session)
                    .and_then(|(url, s)| url.render(id.as_str(), &session_labels(s)));
                let action = match repair {
                    Some(link) => format!("{} Re-pair it: {link}", a.action()),
                    None => a.action().to_owned(),
                };
                if *saved.action != *action {
                    saved.action = self.texts.text(action);
                }
            }
            if saved.life.phase != Phase::Firing {
                // Frozen once it fires: its resolve must find its group.
                saved.labels = labels
                    .get_or_insert_with(|| session.map(|s| session_labels(s)).unwrap_or_default())
                    .clone();
            }
            // A session gone from the model was retired on purpose: its
            // alerts end now, said as retired.
            let transitions = match session {
                Some(_) => saved.life.step(alert.map(|a| a.level), now, &rules),
                None => saved.life.retire(now),
            };
            if (&saved.life, &saved.labels) != (&before.0, &before.1) {
                self.dirty_lives
                    .insert((id.as_str().to_owned(), code.as_str().to_owned()));
                self.active_dirty = true;
            }
            for t in &transitions {
                let mut entry = serde_json::json!({
                    "session": id.as_str(),
                    "code": code.as_str(),
                    "transition": t.as_str(),
                    "level": saved.life.level,
                    "at": now.to_rfc3339(),
                });
                if session.is_none() {
                    entry["reason"] = "retired".into();
                }
                self.history.push(("transition", entry.to_string()));
                if let Transition::LevelChanged { from } = t {
                    // The old level ends everywhere it was said: a route or
                    // group by level (PagerDuty for critical only) must not
                    // keep it firing; where both levels share a group, the
                    // new firing that follows replaces it.
                    let mut old =
                        notified(id.as_str(), code.as_str(), saved, Status::Resolved, now);
                    old.level = *from;
                    old.ends_at = Some(now);
                    out.push((old, Scope::All));
                }
            }
            if transitions.contains(&Transition::Resolved) {
                saved.told = false;
            }
            if let Some(status) = notify_status(&transitions) {
                let mut n = notified(id.as_str(), code.as_str(), saved, status, now);
                if session.is_none() {
                    n.retired = true;
                    n.summary = format!("Session retired on purpose (was: {})", n.summary).into();
                    n.action =
                        "None: the session was deleted or retired; its alerts end here.".into();
                }
                out.push((n, Scope::All));
            }
            if let Some(d) = saved.life.deadline(&rules) {
                deadline = Some(deadline.map_or(d, |x| x.min(d)));
            }
        }
        lives.retain(|(code, saved)| {
            let keep = !saved.life.is_forgettable(now, &self.settings.rules(*code));
            if !keep {
                self.dirty_lives
                    .insert((id.as_str().to_owned(), code.as_str().to_owned()));
            }
            keep
        });
        entry.lives = lives;
        if entry.lives.is_empty() {
            self.with_lives.remove(id);
        } else {
            self.with_lives.insert(id.clone());
        }
        let Some(session) = session else {
            self.move_level(id, was, None);
            // Gone from the model: forget it once nothing is owed.
            if let Some(t) = entry.troubles.take() {
                self.tracker.update(id, Some(&t), None);
            }
            entry.evaluated = false;
            if !entry.lives.is_empty() {
                self.sessions.insert(id.clone(), entry);
            }
            return;
        };
        let verdict = verdict.unwrap_or_default();
        self.move_level(id, was, Some(verdict.level));
        entry.evaluated = true;
        entry.level = verdict.level;
        entry.alerts = verdict.alerts.len();
        entry.state = session.state.index();
        entry.codes = [0; 2];
        for a in &verdict.alerts {
            if a.level != Level::Ok {
                entry.codes[usize::from(a.level == Level::Critical)] |= 1 << (a.code as u32);
            }
        }
        self.count_codes(entry.codes, true);
        self.by_level[entry.level as usize] += 1;
        self.by_state_level[entry.state][entry.level as usize] += 1;
        self.alerts += entry.alerts;
        let set = self.settings.incidents.set_of(|n| session.labels.get(n));
        let firing = entry
            .lives
            .iter()
            .filter(|(_, s)| s.life.phase == Phase::Firing)
            .map(|(c, s)| (*c, s.life.fired_at.unwrap_or(now)));
        let troubles = Troubles::of(session, set, firing);
        if entry.troubles.as_ref() != Some(&troubles) {
            self.tracker
                .update(id, entry.troubles.as_ref(), Some(&troubles));
            entry.troubles = Some(troubles);
        }
        if entry.due != deadline {
            entry.due = deadline;
            if let Some(d) = deadline {
                self.deadlines.push(d, id.clone());
            }
        }
        self.sessions.insert(id.clone(), entry);
    }
}
