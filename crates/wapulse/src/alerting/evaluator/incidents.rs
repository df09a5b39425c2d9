//! Fleet incidents: many sessions in the same trouble become one alert,
//! which folds the alerts it covers (said there, not one by one) and
//! unfolds what still fires when it shrinks, is cancelled or resolves.

use std::collections::HashSet;

use wapulse_core::grouping::{NotifiedAlert, Status};
use wapulse_core::incident::{IncidentCheck, Trouble, set_labels};
use wapulse_core::{Level, Phase, SessionId, Timestamp};

use super::persist::{Saved, incident_code, incident_key};
use super::sessions::{notified, notify_status};
use super::{Evaluator, FLEET_INCIDENT, SAVED_SESSIONS, Scope};

pub(super) struct IncidentEntry {
    pub(super) set: String,
    pub(super) trouble: Trouble,
    pub(super) saved: Saved,
    /// Every covered session (the saved list is capped), as shared ids.
    pub(super) covered: Vec<SessionId>,
    /// The tracker's version of `covered` (read again only when it moves).
    pub(super) covered_version: u64,
}

impl IncidentEntry {
    /// Pending or firing: it folds the alerts it covers.
    pub(super) fn folds(&self) -> bool {
        matches!(self.saved.life.phase, Phase::Pending | Phase::Firing)
    }
}

impl Evaluator {
    pub(super) fn judge_incidents(
        &mut self,
        now: Timestamp,
        out: &mut Vec<(NotifiedAlert, Scope)>,
    ) {
        // Recounted when membership changed, else at most every second
        // (between, only sessions ageing out of the window differ, which
        // can delay the start of an incident by that second, never cause
        // one).
        let version = self.tracker.version();
        let stale = self
            .checks
            .as_ref()
            .is_none_or(|(v, at, _)| *v != version || now.since(*at).as_millis() >= 1000);
        if stale {
            let fresh = self.tracker.checks(now, &self.settings.incidents);
            self.checks = Some((version, now, fresh));
        }
        let checks = self
            .checks
            .as_ref()
            .map(|(_, _, c)| c.clone())
            .unwrap_or_default();
        let mut seen = HashSet::new();
        let mut refold = false;
        let mut unfold: Vec<SessionId> = Vec::new();
        for c in &checks {
            let key = incident_key(&c.set, c.trouble);
            seen.insert(key.clone());
            refold |= self.step_incident(
                key,
                c.set.clone(),
                c.trouble,
                Some(c),
                now,
                out,
                &mut unfold,
            );
        }
        let gone: Vec<(String, String, Trouble)> = self
            .incidents
            .iter()
            .filter(|(k, _)| !seen.contains(*k))
            .map(|(k, e)| (k.clone(), e.set.clone(), e.trouble))
            .collect();
        for (key, set, trouble) in gone {
            refold |= self.step_incident(key, set, trouble, None, now, out, &mut unfold);
        }
        if refold {
            self.refold();
        }
        // What a shrinking, cancelled or resolved incident no longer
        // covers and still fires is said now, one by one.
        unfold.sort_unstable();
        unfold.dedup();
        for id in unfold {
            let Some(e) = self.sessions.get(&id) else {
                continue;
            };
            for (code, saved) in &e.lives {
                if saved.life.phase == Phase::Firing {
                    let a = notified(id.as_str(), code.as_str(), saved, Status::Firing, now);
                    if !self.is_folded(&a) {
                        out.push((a, Scope::All));
                    }
                }
            }
        }
    }

    /// Steps one incident; true when the sessions it folds changed. The
    /// sessions it stops covering are added to `unfold`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn step_incident(
        &mut self,
        key: String,
        set: String,
        trouble: Trouble,
        check: Option<&IncidentCheck>,
        now: Timestamp,
        out: &mut Vec<(NotifiedAlert, Scope)>,
        unfold: &mut Vec<SessionId>,
    ) -> bool {
        let rules = self.settings.incident_rules();
        let incident_rules = &self.settings.incidents;
        let max_listed = self.settings.max_listed_sessions;
        let existed = self.incidents.contains_key(&key);
        let entry = self
            .incidents
            .entry(key.clone())
            .or_insert_with(|| IncidentEntry {
                set: set.clone(),
                trouble,
                saved: Saved::default(),
                covered: Vec::new(),
                covered_version: 0,
            });
        // Pending or firing: kept while the sessions still in trouble reach
        // the bound (sessions entering slowly may age out of the window
        // while `incident_for` runs; they are still in trouble).
        let active = entry.saved.life.phase != Phase::Inactive;
        let holds = check.is_some_and(|c| c.holds(active, incident_rules));
        let before = entry.saved.clone();
        let folded_before = entry.folds();
        let mut left: Vec<SessionId> = Vec::new();
        let mut list_changed = false;
        if let (true, Some(c)) = (holds, check) {
            entry.saved.summary = c.summary().into();
            entry.saved.action = match trouble {
                Trouble::NotConnected => {
                    "Check what these sessions share: the gateway hosts, their network, \
                     WhatsApp's status; per-session alerts are folded into this one"
                        .into()
                }
                Trouble::Code(_) => {
                    "Look for the shared cause before handling sessions one by one; \
                     per-session alerts are folded into this one"
                        .into()
                }
            };
            let mut labels = set_labels(&set);
            labels.insert("trouble".to_owned(), trouble.to_string());
            entry.saved.labels = labels.into();
            entry.saved.affected = Some(c.current as u64);
            // Read again only when membership moved; compared in full: the
            // saved list is capped, and a session beyond the cap joining
            // must still be folded.
            if entry.covered_version != c.version {
                entry.covered_version = c.version;
                let sessions = self.tracker.sessions(&set, trouble);
                if entry.covered != sessions {
                    let now_covered: HashSet<&SessionId> = sessions.iter().collect();
                    left = entry
                        .covered
                        .iter()
                        .filter(|s| !now_covered.contains(s))
                        .cloned()
                        .collect();
                    entry.saved.sessions = sessions
                        .iter()
                        .take(SAVED_SESSIONS)
                        .map(|s| s.as_str().to_owned())
                        .collect();
                    entry.covered = sessions;
                    list_changed = true;
                }
            }
        }
        let transitions = entry
            .saved
            .life
            .step(holds.then_some(Level::Critical), now, &rules);
        let firing = entry.saved.life.phase == Phase::Firing;
        let folds = entry.folds();
        if before != entry.saved {
            self.dirty_lives
                .insert((String::new(), incident_code(&set, trouble)));
            self.active_dirty = true;
        }
        for t in &transitions {
            self.history.push((
                "transition",
                serde_json::json!({
                    "session": "",
                    "code": FLEET_INCIDENT,
                    "incident": key,
                    "transition": t.as_str(),
                    "level": "critical",
                    "at": now.to_rfc3339(),
                })
                .to_string(),
            ));
        }
        let incident = |status: Status, entry: &IncidentEntry| {
            let mut a = notified("", FLEET_INCIDENT, &entry.saved, status, now);
            a.sessions.truncate(max_listed);
            a
        };
        if let Some(status) = notify_status(&transitions) {
            out.push((incident(status, entry), Scope::All));
        } else if firing && before.affected != entry.saved.affected {
            out.push((incident(Status::Firing, entry), Scope::Groups));
        }
        if folded_before && !folds {
            // Cancelled or resolved: everything it covered is on its own.
            unfold.extend(std::mem::take(&mut entry.covered));
        } else if folds {
            unfold.extend(left);
        }
        if !folds && !firing && entry.saved.life.is_forgettable(now, &rules) {
            self.incidents.remove(&key);
            let row = (String::new(), incident_code(&set, trouble));
            if existed {
                self.dirty_lives.insert(row);
            } else {
                // Made and dropped in this step: nothing was ever saved.
                self.dirty_lives.remove(&row);
            }
        } else if !folds {
            entry.covered.clear();
            entry.covered_version = 0;
        }
        folded_before != folds || (folds && list_changed)
    }

    /// Rebuilds which sessions' alerts are folded into a pending or firing
    /// incident.
    pub(super) fn refold(&mut self) {
        self.folded.clear();
        for e in self.incidents.values() {
            if e.folds() {
                if e.covered.is_empty() {
                    // Loaded from the store: the saved (capped) list.
                    for s in &e.saved.sessions {
                        if let Ok(id) = SessionId::parse(s) {
                            self.folded.entry(id).or_default().push(e.trouble);
                        }
                    }
                } else {
                    for id in &e.covered {
                        self.folded.entry(id.clone()).or_default().push(e.trouble);
                    }
                }
            }
        }
        self.active_dirty = true;
    }

    pub(super) fn is_folded(&self, a: &NotifiedAlert) -> bool {
        self.folds(&a.session, &a.code)
    }

    /// Whether a firing incident covers this session's alert.
    pub(super) fn folds(&self, session: &str, code: &str) -> bool {
        code != FLEET_INCIDENT
            && self.folded.get(session).is_some_and(|ts| {
                ts.iter().any(|t| match t {
                    Trouble::NotConnected => true,
                    Trouble::Code(c) => c.as_str() == code,
                })
            })
    }
}
