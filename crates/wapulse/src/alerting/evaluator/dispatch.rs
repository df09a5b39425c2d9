//! From alerts to messages: each alert goes to the routes that take it
//! (into aggregation groups, or as rows for an Alertmanager), silences mute
//! it, and due groups are flushed into the outbox.

use wapulse_core::grouping::{Group, GroupTiming, MAX_ALERTS_PER_MESSAGE, NotifiedAlert, Status};
use wapulse_core::{SessionId, Timestamp};

use super::persist::parse_code;
use super::{Evaluator, Scope};
use crate::alerting::config::ReceiverKind;
use crate::alerting::payload::Payload;
use crate::alerting::routing::{group_of, label, routes_for};

pub(super) struct GroupEntry {
    pub(super) group: Group,
    pub(super) timing: GroupTiming,
}

impl Evaluator {
    pub(super) fn is_silenced(&self, a: &NotifiedAlert, now: Timestamp) -> bool {
        self.silences
            .iter()
            .any(|s| s.silences(now, |n| label(a, n)))
    }

    pub(super) fn route(&mut self, a: NotifiedAlert, scope: Scope, now: Timestamp) {
        let settings = self.settings.clone();
        for r in routes_for(&settings, &a) {
            let receiver = &settings.receivers[r.receiver];
            match &receiver.kind {
                ReceiverKind::Alertmanager { .. } => {
                    let sends = scope == Scope::All
                        && (a.status == Status::Resolved
                            || !(self.is_folded(&a) || self.is_silenced(&a, now)));
                    if sends {
                        if a.status == Status::Firing {
                            self.mark_told(&a);
                        }
                        self.alertmanager
                            .entry(receiver.name.clone())
                            .or_default()
                            .push(a.clone());
                    }
                }
                ReceiverKind::Deadman { .. } => {}
                _ => {
                    let (key, labels) = group_of(&settings, r, &a);
                    let id = (receiver.name.clone(), key.clone());
                    let entry = self.groups.entry(id.clone()).or_insert_with(|| GroupEntry {
                        group: Group::new(key, labels, now),
                        timing: r.timing,
                    });
                    if entry.group.update(a.clone()) {
                        self.dirty_groups.insert(id.clone());
                    }
                    if entry.group.is_empty() {
                        self.groups.remove(&id);
                        self.dirty_groups.insert(id);
                    }
                }
            }
        }
    }

    /// Notes that an Alertmanager is told this session alert fires.
    pub(super) fn mark_told(&mut self, a: &NotifiedAlert) {
        let (Ok(id), Some(code)) = (SessionId::parse(&a.session), parse_code(&a.code)) else {
            return;
        };
        if let Some(saved) = self
            .sessions
            .get_mut(&id)
            .and_then(|e| e.lives.iter_mut().find(|(c, _)| *c == code))
            .map(|(_, s)| s)
            && !saved.told
        {
            saved.told = true;
            self.dirty_lives.insert((a.session.clone(), a.code.clone()));
            self.active_dirty = true;
        }
    }

    /// Outbox rows for this pass's Alertmanager alerts: at most
    /// [`MAX_ALERTS_PER_MESSAGE`] each (the end of a large outage must not
    /// be one request too large to be taken).
    pub(super) fn queue_alertmanager(&mut self) {
        for (receiver, alerts) in std::mem::take(&mut self.alertmanager) {
            let urls = self
                .settings
                .receivers
                .iter()
                .find(|r| r.name == receiver)
                .map_or(1, |r| match &r.kind {
                    ReceiverKind::Alertmanager { urls, .. } => urls.len(),
                    _ => 1,
                });
            for url in 0..urls {
                for chunk in alerts.chunks(MAX_ALERTS_PER_MESSAGE) {
                    let payload = Payload::Alerts {
                        alerts: chunk.to_vec(),
                        url: Some(url),
                    };
                    // One ordered group per Alertmanager.
                    self.outbox
                        .push((receiver.clone(), format!("am{url}"), payload.to_json()));
                }
            }
        }
    }

    pub(super) fn flush_groups(&mut self, now: Timestamp) {
        let keys: Vec<(String, String)> = self.groups.keys().cloned().collect();
        for id in keys {
            let Some(mut entry) = self.groups.remove(&id) else {
                continue;
            };
            let mut dirty = entry.group.drop_unsaid(|a| self.is_folded(a));
            let muted = |a: &NotifiedAlert| self.is_silenced(a, now);
            if entry
                .group
                .next_flush(&entry.timing, muted)
                .is_some_and(|t| t <= now)
                && let Some(message) = entry.group.flush(now, muted)
            {
                self.history.push((
                    "notification",
                    serde_json::json!({
                        "receiver": id.0,
                        "groupKey": message.group_key,
                        "status": message.status,
                        "firing": message.firing_total,
                        "resolved": message.resolved_total,
                        "repeat": message.repeat,
                        "at": now.to_rfc3339(),
                        "outcome": "queued",
                    })
                    .to_string(),
                ));
                self.outbox.push((
                    id.0.clone(),
                    message.group_key.clone(),
                    Payload::Group { message }.to_json(),
                ));
                dirty = true;
            }
            if dirty || entry.group.is_empty() {
                self.dirty_groups.insert(id.clone());
            }
            if !entry.group.is_empty() {
                self.groups.insert(id, entry);
            }
        }
    }
}
