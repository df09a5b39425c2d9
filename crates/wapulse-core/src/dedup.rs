//! Idempotency memory: which event ids each session has seen.
//!
//! A gateway retries a delivery it thinks failed, with the same ids
//! (Evolution API for up to ~20 minutes). Each session remembers the ids
//! of its events for [`DedupLimits::window`] of its own time (the newest
//! event instant it has seen, so a session that went quiet still knows
//! its last ids when a late retry comes), at most
//! [`DedupLimits::per_session`] of them (its oldest go first): one busy
//! session cannot push a quiet one's ids out, as a fleet-wide queue did.
//!
//! An id is kept as a 64-bit keyed hash (16 bytes a key with its instant);
//! the memory is at most `per_session` keys for each session that sends
//! ids, usually far less.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::delivery::message_key;
use crate::id::SessionId;
use crate::time::{DurationMs, Timestamp};

/// How long and how many ids a session remembers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DedupLimits {
    /// How long an id is remembered, in the session's event time.
    pub window: DurationMs,
    /// The most ids one session remembers (0: none, no deduplication).
    pub per_session: usize,
}

impl Default for DedupLimits {
    fn default() -> Self {
        Self {
            window: DurationMs::from_mins(30),
            per_session: 256,
        }
    }
}

/// One session's remembered ids: (instant remembered, key), oldest first,
/// and the newest event instant of the session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Keys {
    clock: i64,
    keys: VecDeque<(i64, u64)>,
}

impl Keys {
    fn horizon(&self, window: DurationMs) -> i64 {
        Timestamp::from_millis(self.clock).minus(window).as_millis()
    }

    fn contains(&self, key: u64, window: DurationMs) -> bool {
        let horizon = self.horizon(window);
        self.keys.iter().any(|&(at, k)| k == key && at > horizon)
    }
}

/// Every session's remembered ids (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dedup {
    #[serde(skip)]
    limits: DedupLimits,
    /// By session (ordered: a snapshot's bytes depend only on the state).
    sessions: BTreeMap<SessionId, Keys>,
}

impl Dedup {
    /// An empty memory with these limits.
    pub fn new(limits: DedupLimits) -> Self {
        Self {
            limits,
            sessions: BTreeMap::new(),
        }
    }

    /// Whether `session` remembers `id`.
    pub fn contains(&self, session: &SessionId, id: &str) -> bool {
        self.sessions
            .get(session)
            .is_some_and(|k| k.contains(message_key(id), self.limits.window))
    }

    /// Remembers `id` for `session`, seen in an event at `at`; false when
    /// it was remembered already.
    pub fn insert(&mut self, session: &SessionId, id: &str, at: Timestamp) -> bool {
        if self.limits.per_session == 0 {
            return true;
        }
        let key = message_key(id);
        let window = self.limits.window;
        let keys = self.sessions.entry(session.clone()).or_default();
        keys.clock = keys.clock.max(at.as_millis());
        let horizon = keys.horizon(window);
        while keys.keys.front().is_some_and(|&(t, _)| t <= horizon) {
            keys.keys.pop_front();
        }
        if keys.contains(key, window) {
            return false;
        }
        keys.keys.push_back((keys.clock, key));
        while keys.keys.len() > self.limits.per_session {
            keys.keys.pop_front();
        }
        true
    }

    /// Applies new limits (a session over the new count forgets its
    /// oldest ids).
    pub fn set_limits(&mut self, limits: DedupLimits) {
        self.limits = limits;
        self.sessions.retain(|_, k| {
            while k.keys.len() > limits.per_session {
                k.keys.pop_front();
            }
            !k.keys.is_empty()
        });
    }

    /// Ids remembered, over all sessions.
    pub fn len(&self) -> usize {
        self.sessions.values().map(|k| k.keys.len()).sum()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.sessions.values().all(|k| k.keys.is_empty())
    }

    /// Rebuilds the memory from the fleet-wide queue of keys
    /// (`"{session}\0{id}"`, oldest first) that snapshots of format 4 and
    /// before stored; each session's ids are dated at its last event.
    pub fn from_legacy(
        order: impl IntoIterator<Item = impl AsRef<str>>,
        last_event: impl Fn(&str) -> Option<Timestamp>,
        limits: DedupLimits,
    ) -> Self {
        let mut me = Self::new(limits);
        for key in order {
            let Some((session, id)) = key.as_ref().split_once('\u{0}') else {
                continue;
            };
            let (Ok(session), Some(at)) = (SessionId::parse(session), last_event(session)) else {
                continue;
            };
            me.insert(&session, id, at);
        }
        me
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(s: &str) -> SessionId {
        SessionId::parse(s).unwrap()
    }

    fn at(mins: i64) -> Timestamp {
        Timestamp::from_millis(1_770_000_000_000 + mins * 60_000)
    }

    #[test]
    fn a_quiet_session_remembers_its_ids_however_busy_the_others_are() {
        let mut d = Dedup::new(DedupLimits {
            window: DurationMs::from_mins(30),
            per_session: 4,
        });
        assert!(d.insert(&sid("quiet"), "m1", at(0)));
        // Another session sends far more ids than one session keeps.
        for i in 0..1000 {
            d.insert(&sid("busy"), &format!("x{i}"), at(i / 100));
        }
        assert!(d.contains(&sid("quiet"), "m1"), "kept: time, not traffic");
        assert!(
            !d.insert(&sid("quiet"), "m1", at(20)),
            "a retry 20 minutes late"
        );
        // The busy session keeps its newest ids only.
        assert!(d.contains(&sid("busy"), "x999"));
        assert!(!d.contains(&sid("busy"), "x0"));
        assert_eq!(d.len(), 1 + 4);
    }

    #[test]
    fn an_id_is_forgotten_once_the_session_s_time_passes_the_window() {
        let mut d = Dedup::new(DedupLimits {
            window: DurationMs::from_mins(30),
            per_session: 100,
        });
        assert!(d.insert(&sid("s"), "m1", at(0)));
        assert!(!d.insert(&sid("s"), "m1", at(29)));
        // The session's own later events move its time on.
        assert!(d.insert(&sid("s"), "m2", at(31)));
        assert!(!d.contains(&sid("s"), "m1"));
        assert!(
            d.insert(&sid("s"), "m1", at(31)),
            "an id reused after the window"
        );
        // An event dated earlier does not move the session's time back.
        assert!(!d.insert(&sid("s"), "m2", at(5)));
    }

    #[test]
    fn the_same_id_on_two_sessions_is_two_events_and_zero_keeps_nothing() {
        let mut d = Dedup::new(DedupLimits::default());
        assert!(d.insert(&sid("a"), "m", at(0)));
        assert!(d.insert(&sid("b"), "m", at(0)));
        let mut off = Dedup::new(DedupLimits {
            window: DurationMs::from_mins(30),
            per_session: 0,
        });
        assert!(off.insert(&sid("a"), "m", at(0)));
        assert!(off.insert(&sid("a"), "m", at(0)));
        assert!(off.is_empty());
    }

    #[test]
    fn a_legacy_fleet_wide_queue_becomes_each_session_s_ids() {
        let legacy = ["a\u{0}m1", "b\u{0}m2", "gone\u{0}m3", "malformed"];
        let d = Dedup::from_legacy(
            legacy,
            |s| (s != "gone").then_some(at(10)),
            DedupLimits::default(),
        );
        assert!(d.contains(&sid("a"), "m1"));
        assert!(d.contains(&sid("b"), "m2"));
        assert!(!d.contains(&sid("a"), "m2"));
        assert_eq!(d.len(), 2);
    }
}
