//! The saved form of each alert's lifecycle, and the pass's one write:
//! lifecycle states, groups, new outbox rows and history in one
//! transaction, kept in memory and retried with the next pass when the
//! store refuses it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use wapulse_core::incident::Trouble;
use wapulse_core::{AlertCode, AlertLife, SessionId, Timestamp};

use super::{Evaluator, FLEET_INCIDENT, MAX_HISTORY_HELD};
use crate::alerting::store::PassWrite;

/// A lifecycle state as saved: the core's state, what the alert said when
/// it last held (so a resolve can still say what resolved), and the labels
/// it goes by (frozen while it fires). Texts and labels are shared with the
/// published view and the groups (one copy of each; equal summaries are
/// one text, see `Evaluator::text`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Saved {
    pub(super) life: AlertLife,
    pub(super) summary: Arc<str>,
    pub(super) action: Arc<str>,
    #[serde(default, skip_serializing_if = "no_labels")]
    pub(super) labels: Arc<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) sessions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) affected: Option<u64>,
    /// Whether an Alertmanager was sent it firing (it is then resent until
    /// it resolves, even once folded or silenced: Alertmanager would end
    /// it by itself otherwise).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) told: bool,
}

fn no_labels(labels: &Arc<BTreeMap<String, String>>) -> bool {
    labels.is_empty()
}

pub(super) fn incident_key(set: &str, trouble: Trouble) -> String {
    format!("{set}|{trouble}")
}

/// The `code` column of an incident's saved state (its `session` is empty).
pub(super) fn incident_code(set: &str, trouble: Trouble) -> String {
    format!("{FLEET_INCIDENT}|{}", incident_key(set, trouble))
}

pub(super) fn parse_code(text: &str) -> Option<AlertCode> {
    AlertCode::ALL.into_iter().find(|c| c.as_str() == text)
}

pub(super) fn parse_trouble(text: &str) -> Option<Trouble> {
    if text == "not_connected" {
        Some(Trouble::NotConnected)
    } else {
        parse_code(text).map(Trouble::Code)
    }
}

impl Evaluator {
    pub(super) fn persist(&mut self, now: Timestamp) {
        if self.dirty_lives.is_empty()
            && self.dirty_groups.is_empty()
            && self.outbox.is_empty()
            && self.history.is_empty()
        {
            return;
        }
        let mut w = PassWrite::default();
        for (session, code) in &self.dirty_lives {
            let body = if session.is_empty() {
                let key = code.strip_prefix("FLEET_INCIDENT|").unwrap_or(code);
                self.incidents
                    .get(key)
                    .and_then(|e| serde_json::to_string(&e.saved).ok())
            } else {
                SessionId::parse(session).ok().and_then(|id| {
                    self.sessions.get(&id).and_then(|e| {
                        e.lives
                            .iter()
                            .find(|(c, _)| c.as_str() == code)
                            .and_then(|(_, s)| serde_json::to_string(s).ok())
                    })
                })
            };
            w.lives.push((session.clone(), code.clone(), body));
        }
        for id in &self.dirty_groups {
            let body = self
                .groups
                .get(id)
                .and_then(|g| serde_json::to_string(&g.group).ok());
            w.groups.push((id.0.clone(), id.1.clone(), body));
        }
        w.outbox = std::mem::take(&mut self.outbox);
        w.history = std::mem::take(&mut self.history);
        let result = self
            .store
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write(&w, now);
        match result {
            Ok(()) => {
                // Emptied, and no room kept for the next outage's 100,000.
                self.dirty_lives.clear();
                self.dirty_lives.shrink_to(1024);
                self.dirty_groups.clear();
                self.dirty_groups.shrink_to(1024);
                if self.store_error.take().is_some() {
                    tracing::info!("alert state written again");
                }
                if !w.outbox.is_empty() {
                    self.wake.notify_waiters();
                }
            }
            Err(e) => {
                if self.store_error.is_none() {
                    tracing::error!(error = %e, "alert state not written; kept and retried with the next pass");
                }
                self.store_error = Some(e.to_string());
                self.outbox = w.outbox;
                self.history = w.history;
                // History is a record: while the store refuses writes, keep
                // its newest entries only (notifications are never dropped).
                let excess = self.history.len().saturating_sub(MAX_HISTORY_HELD);
                if excess > 0 {
                    self.history.drain(..excess);
                    tracing::warn!(
                        dropped = excess,
                        "alert history not written while the store fails; oldest entries dropped"
                    );
                }
            }
        }
    }
}
