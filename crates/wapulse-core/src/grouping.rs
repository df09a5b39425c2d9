//! Aggregation groups: many alerts, one message.
//!
//! Alerts routed to a receiver are grouped by the values of the route's
//! `group_by` labels, as Alertmanager does. A group waits `group_wait`
//! after its first alert (so that alerts failing together arrive
//! together), then sends at most every `group_interval` while its content
//! changes, and repeats an unchanged firing group every `repeat_interval`.
//! A resolved alert is said once (if its firing was said) and then leaves
//! the group; a resolved alert whose firing was never sent leaves silently.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::alert::Level;
use crate::time::{DurationMs, Timestamp};

/// Firing or resolved, as a notification says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Still a problem.
    Firing,
    /// Over.
    Resolved,
}

impl Status {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// One alert as notifications show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifiedAlert {
    /// The session (empty for a fleet incident).
    pub session: String,
    /// The alert code (`HEARTBEAT_DEAD`, `FLEET_INCIDENT`).
    pub code: String,
    /// How bad.
    pub level: Level,
    /// Firing or resolved.
    pub status: Status,
    /// When it fired.
    #[serde(with = "crate::time::rfc3339")]
    pub starts_at: Timestamp,
    /// When it resolved.
    #[serde(
        default,
        with = "crate::time::rfc3339_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub ends_at: Option<Timestamp>,
    /// What is wrong, in the operator's words (shared with the
    /// evaluator's state and its published view: one copy per text).
    pub summary: Arc<str>,
    /// What to do.
    pub action: Arc<str>,
    /// Whether it is flapping.
    #[serde(default)]
    pub flapping: bool,
    /// Its labels (the session's labels; an incident's label set), shared
    /// by the session's alerts and every view of them.
    #[serde(default)]
    pub labels: Arc<BTreeMap<String, String>>,
    /// For a fleet incident: the sessions it covers (capped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<String>,
    /// For a fleet incident: how many sessions it covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affected: Option<u64>,
    /// Resolved because its session was retired on purpose (deleted, or
    /// idle past `retire_after`), not because it recovered.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retired: bool,
}

/// Group timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupTiming {
    /// Wait after a group's first alert.
    pub group_wait: DurationMs,
    /// Least time between two messages of a changing group.
    pub group_interval: DurationMs,
    /// Time after which an unchanged firing group is said again.
    pub repeat_interval: DurationMs,
}

impl Default for GroupTiming {
    fn default() -> Self {
        Self {
            group_wait: DurationMs::from_secs(30),
            group_interval: DurationMs::from_mins(5),
            repeat_interval: DurationMs::from_hours(4),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    alert: NotifiedAlert,
    /// What the last message said of it (status, level, flapping).
    notified: Option<(Status, Level, bool)>,
    /// Whether the last message left it out because it was muted: once
    /// unmuted it must be said again (that message may even have resolved
    /// the whole group downstream).
    #[serde(default)]
    omitted: bool,
}

impl Entry {
    /// Whether the next message must say something new about it. A muted
    /// (silenced) firing alert says nothing; a resolve owed is always said.
    fn changed(&self, muted: bool) -> bool {
        let now = (self.alert.status, self.alert.level, self.alert.flapping);
        match self.notified {
            None => self.alert.status == Status::Firing && !muted,
            Some(_) if muted && self.alert.status == Status::Firing => false,
            Some(said) => said != now || (self.omitted && !muted),
        }
    }
}

/// Most alerts one message carries in each list; the totals say how many
/// there are (a message about 100,000 sessions stays a small request).
pub const MAX_ALERTS_PER_MESSAGE: usize = 500;

/// One message of a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupMessage {
    /// The group's identity (stable: receivers deduplicate on it).
    pub group_key: String,
    /// The `group_by` labels and their values.
    pub group_labels: BTreeMap<String, String>,
    /// `firing` while any alert fires.
    pub status: Status,
    /// Firing alerts, most severe first.
    pub firing: Vec<NotifiedAlert>,
    /// Alerts resolved since the last message.
    pub resolved: Vec<NotifiedAlert>,
    /// How many alerts fire (the list holds at most
    /// [`MAX_ALERTS_PER_MESSAGE`]).
    #[serde(default)]
    pub firing_total: usize,
    /// How many resolved.
    #[serde(default)]
    pub resolved_total: usize,
    /// Whether it only repeats the previous message.
    pub repeat: bool,
}

impl GroupMessage {
    /// What the message says, leaving out when: the group, its status,
    /// whether it repeats, the firing alerts (session, code, level) and the
    /// resolved ones (session, code), each sorted, and the totals. Replicas
    /// that judged the same events write messages with equal keys, though
    /// each stamped its own times; a message with the same key again comes
    /// at least two `group_interval`s later (another message between) or a
    /// `repeat_interval` later.
    pub fn content_key(&self) -> String {
        let mut firing: Vec<String> = self
            .firing
            .iter()
            .map(|a| format!("{}/{}/{:?}", a.session, a.code, a.level))
            .collect();
        firing.sort_unstable();
        let mut resolved: Vec<String> = self
            .resolved
            .iter()
            .map(|a| format!("{}/{}", a.session, a.code))
            .collect();
        resolved.sort_unstable();
        format!(
            "{}\n{:?}\n{}\n{}\n{}\n{}\n{}",
            self.group_key,
            self.status,
            self.repeat,
            self.firing_total,
            self.resolved_total,
            firing.join(","),
            resolved.join(",")
        )
    }

    /// The highest level among the firing alerts (`ok` when all resolved).
    pub fn level(&self) -> Level {
        self.firing
            .iter()
            .map(|a| a.level)
            .max()
            .unwrap_or(Level::Ok)
    }
}

/// An aggregation group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// Its identity.
    pub key: String,
    /// The `group_by` labels and their values.
    pub labels: BTreeMap<String, String>,
    alerts: BTreeMap<String, Entry>,
    first_at: Timestamp,
    last_flush: Option<Timestamp>,
}

impl Group {
    /// An empty group born at `now`.
    pub fn new(key: String, labels: BTreeMap<String, String>, now: Timestamp) -> Self {
        Self {
            key,
            labels,
            alerts: BTreeMap::new(),
            first_at: now,
            last_flush: None,
        }
    }

    /// An alert's identity in the group: its session, code and labels
    /// (an incident has no session: its labels, set and trouble, tell it
    /// apart; a session alert keeps the labels it fired with until it
    /// resolves, so every update of it lands on the same entry).
    fn alert_key(a: &NotifiedAlert) -> String {
        let mut key = format!("{}\u{0}{}", a.session, a.code);
        for (k, v) in a.labels.iter() {
            key.push('\u{0}');
            key.push_str(k);
            key.push('=');
            key.push_str(v);
        }
        key
    }

    /// Adds or updates an alert; true when the group changed. A resolved
    /// alert whose firing was never said leaves at once.
    pub fn update(&mut self, alert: NotifiedAlert) -> bool {
        let key = Self::alert_key(&alert);
        match self.alerts.get_mut(&key) {
            Some(entry) => {
                if alert.status == Status::Resolved && entry.notified.is_none() {
                    self.alerts.remove(&key);
                    true
                } else if entry.alert != alert {
                    entry.alert = alert;
                    true
                } else {
                    false
                }
            }
            None if alert.status == Status::Firing => {
                self.alerts.insert(
                    key,
                    Entry {
                        alert,
                        notified: None,
                        omitted: false,
                    },
                );
                true
            }
            None => false,
        }
    }

    /// Drops firing alerts never said that `folded` selects (they are now
    /// covered by a fleet incident); true when any was dropped.
    pub fn drop_unsaid(&mut self, folded: impl Fn(&NotifiedAlert) -> bool) -> bool {
        let before = self.alerts.len();
        self.alerts
            .retain(|_, e| e.notified.is_some() || !folded(&e.alert));
        self.alerts.len() != before
    }

    /// Whether the group holds nothing (it can be forgotten).
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }

    /// Alerts held.
    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    /// The firing alerts, for the Alertmanager sender and for display.
    pub fn firing(&self) -> impl Iterator<Item = &NotifiedAlert> {
        self.alerts
            .values()
            .map(|e| &e.alert)
            .filter(|a| a.status == Status::Firing)
    }

    /// When the group should next send, if ever; `muted` selects alerts
    /// a silence mutes (they neither make nor join a message).
    pub fn next_flush(
        &self,
        timing: &GroupTiming,
        muted: impl Fn(&NotifiedAlert) -> bool,
    ) -> Option<Timestamp> {
        if self.alerts.is_empty() {
            return None;
        }
        let changed = self.alerts.values().any(|e| e.changed(muted(&e.alert)));
        let audible = self
            .alerts
            .values()
            .any(|e| e.alert.status == Status::Firing && !muted(&e.alert));
        match self.last_flush {
            None if changed => Some(self.first_at.plus(timing.group_wait)),
            None => None,
            Some(last) if changed => Some(last.plus(timing.group_interval)),
            Some(last) if audible => Some(last.plus(timing.repeat_interval)),
            Some(_) => None,
        }
    }

    /// Builds the message due at `now` and marks it said, or `None` when
    /// there is nothing to say. Resolved alerts leave the group; muted
    /// firing alerts are left out (and stay as they were said).
    pub fn flush(
        &mut self,
        now: Timestamp,
        muted: impl Fn(&NotifiedAlert) -> bool,
    ) -> Option<GroupMessage> {
        let changed = self.alerts.values().any(|e| e.changed(muted(&e.alert)));
        let mut firing: Vec<NotifiedAlert> = Vec::new();
        let mut resolved: Vec<NotifiedAlert> = Vec::new();
        for e in self.alerts.values() {
            match e.alert.status {
                Status::Firing if !muted(&e.alert) => firing.push(e.alert.clone()),
                Status::Firing => {}
                Status::Resolved if e.notified.is_some_and(|n| n.0 == Status::Firing) => {
                    resolved.push(e.alert.clone())
                }
                Status::Resolved => {}
            }
        }
        self.alerts.retain(|_, e| e.alert.status == Status::Firing);
        if firing.is_empty() && resolved.is_empty() {
            return None;
        }
        for e in self.alerts.values_mut() {
            if muted(&e.alert) {
                e.omitted = true;
            } else {
                e.notified = Some((e.alert.status, e.alert.level, e.alert.flapping));
                e.omitted = false;
            }
        }
        self.last_flush = Some(now);
        firing.sort_by(|a, b| {
            b.level
                .cmp(&a.level)
                .then_with(|| a.code.cmp(&b.code))
                .then_with(|| a.session.cmp(&b.session))
        });
        resolved.sort_by(|a, b| a.code.cmp(&b.code).then_with(|| a.session.cmp(&b.session)));
        let (firing_total, resolved_total) = (firing.len(), resolved.len());
        firing.truncate(MAX_ALERTS_PER_MESSAGE);
        resolved.truncate(MAX_ALERTS_PER_MESSAGE);
        Some(GroupMessage {
            group_key: self.key.clone(),
            group_labels: self.labels.clone(),
            status: if firing.is_empty() {
                Status::Resolved
            } else {
                Status::Firing
            },
            firing,
            resolved,
            firing_total,
            resolved_total,
            repeat: !changed,
        })
    }
}
