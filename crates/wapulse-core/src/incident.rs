//! Fleet incidents: many sessions in the same trouble together are one
//! problem, said once.
//!
//! Sessions are partitioned into **sets** by the values of the
//! `incident_by` labels (no labels: the whole fleet is one set). A session
//! is in trouble of a **kind**: not connected (it was connected once and
//! now is not), or, while connected, firing a given alert code. When, in a
//! set, the sessions that entered the same trouble within `window` reach
//! both `min_sessions` and `min_share` of the set, an incident starts; it
//! lasts while the sessions still in that trouble stay at that bound.
//! While it lasts, the per-session notifications it covers are folded into
//! it.
//!
//! [`IncidentTracker`] keeps the counts incrementally: the evaluator tells
//! it how a session's troubles changed, and [`IncidentTracker::checks`]
//! costs the number of troubled sessions, never the fleet's size.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::alert::AlertCode;
use crate::id::SessionId;
use crate::session::Session;
use crate::time::{DurationMs, Timestamp};

/// When many sessions make an incident.
#[derive(Clone, Debug, PartialEq)]
pub struct IncidentRules {
    /// The share of a set that must be in trouble (0.2 = 20 %).
    pub min_share: f64,
    /// The fewest sessions that make an incident.
    pub min_sessions: usize,
    /// How close together sessions must enter the trouble.
    pub window: DurationMs,
    /// The labels whose values partition the fleet into sets.
    pub by: Vec<String>,
}

impl Default for IncidentRules {
    fn default() -> Self {
        Self {
            min_share: 0.2,
            min_sessions: 10,
            window: DurationMs::from_mins(5),
            by: Vec::new(),
        }
    }
}

impl IncidentRules {
    /// How many troubled sessions a set of `total` needs for an incident.
    pub fn needed(&self, total: usize) -> usize {
        let share = (self.min_share * total as f64).ceil() as usize;
        share.max(self.min_sessions).max(1)
    }

    /// The set a session with these labels belongs to: `name=value` pairs
    /// of the `by` labels, comma-separated (empty for the whole fleet).
    /// `%`, `,`, `=` and `|` in values are percent-encoded, so
    /// [`set_labels`] reads every set back exactly.
    pub fn set_of<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> String {
        let mut key = String::new();
        for name in &self.by {
            if !key.is_empty() {
                key.push(',');
            }
            key.push_str(name);
            key.push('=');
            for c in label(name).unwrap_or("").chars() {
                match c {
                    '%' => key.push_str("%25"),
                    ',' => key.push_str("%2C"),
                    '=' => key.push_str("%3D"),
                    '|' => key.push_str("%7C"),
                    c => key.push(c),
                }
            }
        }
        key
    }
}

/// The labels of a set made by [`IncidentRules::set_of`].
pub fn set_labels(set: &str) -> BTreeMap<String, String> {
    set.split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            let value = v
                .replace("%7C", "|")
                .replace("%3D", "=")
                .replace("%2C", ",")
                .replace("%25", "%");
            (k.to_owned(), value)
        })
        .collect()
}

/// The kind of trouble sessions share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Trouble {
    /// Not connected although it was connected before.
    NotConnected,
    /// Connected, and firing this code.
    Code(AlertCode),
}

impl fmt::Display for Trouble {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trouble::NotConnected => f.write_str("not_connected"),
            Trouble::Code(c) => f.write_str(c.as_str()),
        }
    }
}

/// A session's troubles, as the tracker counts them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Troubles {
    /// The set it belongs to.
    pub set: String,
    /// Each trouble and since when.
    pub kinds: Vec<(Trouble, Timestamp)>,
}

impl Troubles {
    /// The troubles of `session` in `set`, given the codes it fires (with
    /// when each fired). A session that is down counts as not connected
    /// only (its codes follow from being down); a session that never
    /// connected (still starting) is in no trouble here.
    pub fn of(
        session: &Session,
        set: String,
        firing: impl IntoIterator<Item = (AlertCode, Timestamp)>,
    ) -> Self {
        let mut kinds = Vec::new();
        if !session.is_connected() && session.init_successful {
            kinds.push((
                Trouble::NotConnected,
                session.down_since.unwrap_or(session.state_changed_at),
            ));
        } else if session.is_connected() {
            kinds.extend(firing.into_iter().map(|(c, at)| (Trouble::Code(c), at)));
        }
        kinds.sort();
        Self { set, kinds }
    }
}

/// One (set, trouble) as it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncidentCheck {
    /// The set.
    pub set: String,
    /// The trouble.
    pub trouble: Trouble,
    /// Sessions in the set.
    pub total: usize,
    /// Sessions in the trouble now.
    pub current: usize,
    /// Of those, sessions that entered it within the window.
    pub recent: usize,
    /// Changes whenever a session joins or leaves this (set, trouble):
    /// [`IncidentTracker::sessions`] needs reading again only then.
    pub version: u64,
}

impl IncidentCheck {
    /// Whether there is an incident: `recent` reaches the bound to start
    /// one; `current` to keep one that is `active`.
    pub fn holds(&self, active: bool, rules: &IncidentRules) -> bool {
        let needed = rules.needed(self.total);
        if active {
            self.current >= needed
        } else {
            self.recent >= needed
        }
    }

    /// The share of the set in trouble, in percent (rounded down).
    pub fn percent(&self) -> u64 {
        (self.current as u64 * 100)
            .checked_div(self.total as u64)
            .unwrap_or(0)
    }

    /// The operator's sentence: "38 % of sessions in region=eu-1 (114 of
    /// 300) are not connected: likely an upstream or network outage".
    pub fn summary(&self) -> String {
        let scope = if self.set.is_empty() {
            "sessions".to_owned()
        } else {
            let shown: Vec<String> = set_labels(&self.set)
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("sessions in {}", shown.join(", "))
        };
        match self.trouble {
            Trouble::NotConnected => format!(
                "{} % of {scope} ({} of {}) are not connected: likely an upstream or network outage",
                self.percent(),
                self.current,
                self.total
            ),
            Trouble::Code(code) => format!(
                "{} % of {scope} ({} of {}) fire {code}: likely a shared cause (gateway host, network, WhatsApp)",
                self.percent(),
                self.current,
                self.total
            ),
        }
    }
}

/// The sessions in one (set, trouble).
#[derive(Clone, Debug, Default)]
struct Troubled {
    /// Shared ids (no copy of the text per trouble).
    sessions: BTreeMap<SessionId, Timestamp>,
    /// How many sessions entered the trouble at each instant (for counting
    /// the recent ones without visiting every session).
    starts: BTreeMap<Timestamp, usize>,
    version: u64,
}

/// Counts sessions per set and troubled sessions per (set, trouble).
#[derive(Clone, Debug, Default)]
pub struct IncidentTracker {
    totals: HashMap<String, usize>,
    troubled: HashMap<(String, Trouble), Troubled>,
    /// Changes with every membership change anywhere.
    version: u64,
}

impl IncidentTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `session`'s troubles went from `before` to `after`
    /// (`None`: not tracked, e.g. before its first evaluation).
    pub fn update(
        &mut self,
        session: &SessionId,
        before: Option<&Troubles>,
        after: Option<&Troubles>,
    ) {
        self.version += 1;
        let version = self.version;
        if let Some(b) = before {
            if let Some(n) = self.totals.get_mut(&b.set) {
                *n -= 1;
                if *n == 0 {
                    self.totals.remove(&b.set);
                }
            }
            for (kind, _) in &b.kinds {
                let key = (b.set.clone(), *kind);
                if let Some(t) = self.troubled.get_mut(&key) {
                    if let Some(since) = t.sessions.remove(session)
                        && let Some(n) = t.starts.get_mut(&since)
                    {
                        *n -= 1;
                        if *n == 0 {
                            t.starts.remove(&since);
                        }
                    }
                    t.version = version;
                    if t.sessions.is_empty() {
                        self.troubled.remove(&key);
                    }
                }
            }
        }
        if let Some(a) = after {
            *self.totals.entry(a.set.clone()).or_insert(0) += 1;
            for (kind, since) in &a.kinds {
                let t = self.troubled.entry((a.set.clone(), *kind)).or_default();
                if let Some(old) = t.sessions.insert(session.clone(), *since)
                    && let Some(n) = t.starts.get_mut(&old)
                {
                    *n -= 1;
                    if *n == 0 {
                        t.starts.remove(&old);
                    }
                }
                *t.starts.entry(*since).or_insert(0) += 1;
                t.version = version;
            }
        }
    }

    /// Sessions in `set`.
    pub fn total(&self, set: &str) -> usize {
        self.totals.get(set).copied().unwrap_or(0)
    }

    /// Changes with every membership change: checks made at the same
    /// version differ only by sessions ageing out of the window.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Every (set, trouble) with a troubled session, as it stands at
    /// `now`. Costs the number of (set, trouble) pairs and of distinct
    /// entry instants within the window, never a copy of the sessions.
    pub fn checks(&self, now: Timestamp, rules: &IncidentRules) -> Vec<IncidentCheck> {
        let horizon = now.minus(rules.window);
        let mut out: Vec<IncidentCheck> = self
            .troubled
            .iter()
            .map(|((set, trouble), t)| IncidentCheck {
                set: set.clone(),
                trouble: *trouble,
                total: self.total(set),
                current: t.sessions.len(),
                recent: t.starts.range(horizon..).map(|(_, n)| n).sum(),
                version: t.version,
            })
            .collect();
        out.sort_by(|a, b| a.set.cmp(&b.set).then(a.trouble.cmp(&b.trouble)));
        out
    }

    /// The sessions in `trouble` in `set`, in id order.
    pub fn sessions(&self, set: &str, trouble: Trouble) -> Vec<SessionId> {
        self.troubled
            .get(&(set.to_owned(), trouble))
            .map(|t| t.sessions.keys().cloned().collect())
            .unwrap_or_default()
    }
}
