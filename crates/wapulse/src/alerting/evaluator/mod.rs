//! The evaluator: the thread that turns the session model into alerts with
//! a lifecycle, fleet incidents, and group messages in the outbox.
//!
//! It never walks the whole fleet on a tick. A session is evaluated when
//! the writer says it changed (a committed batch touched it) or when its
//! deadline comes: the earliest instant its verdict can change without an
//! event (`wapulse_core::next_change`) or its lifecycle must act (a
//! pending `for` or a `keep_firing_for` running out). Deadlines wait in a
//! min-heap; stale heap entries are skipped (each session remembers its
//! one current deadline). The fleet rollup (sessions per level, alerts)
//! and the incident counts are kept up to date by difference, so the
//! health endpoints read them instead of evaluating every session.
//!
//! An alert keeps the labels it fired with until it resolves: its resolve
//! goes to the group (and the Alertmanager identity) its firing went to,
//! even if the session's labels change in between.
//!
//! Every pass publishes its snapshot, then writes what changed (lifecycle
//! states, groups, new outbox rows, history) in one transaction before
//! anything is sent; a pass whose write fails keeps its changes and
//! writes them with the next pass.
//!
//! - here: the evaluator's state, loading it, and one pass.
//! - `schedule`: the run loop, when to wake, and the deadline heap.
//! - `sessions`: judging one session (its alerts' lifecycles, the rollup).
//! - `incidents`: fleet incidents and the alerts they fold.
//! - `dispatch`: routing alerts into groups and Alertmanager rows, and
//!   flushing due groups into the outbox.
//! - `persist`: the saved form of lifecycle states and the pass's write.
//! - `publish`: the [`AlertSnapshot`] and the firing gauges.
//! - `texts`: equal summaries and actions kept once.

mod dispatch;
mod incidents;
mod persist;
mod publish;
mod schedule;
mod sessions;
#[cfg(test)]
mod tests;
mod texts;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use wapulse_core::event::STATES;
use wapulse_core::grouping::{Group, GroupTiming, NotifiedAlert};
use wapulse_core::incident::{IncidentCheck, IncidentTracker, Trouble};
use wapulse_core::{AlertCode, FleetSnapshot, Level, SessionId, Silence, Thresholds, Timestamp};

use super::config::AlertingSettings;
use super::metrics::AlertMetrics;
use super::snapshot::AlertSnapshot;
use super::store::AlertStore;
use crate::clock;
use dispatch::GroupEntry;
use incidents::IncidentEntry;
use persist::{Saved, incident_key, parse_code, parse_trouble};
use schedule::Deadlines;
use sessions::Entry;
use texts::Texts;

/// The code of a fleet incident.
pub const FLEET_INCIDENT: &str = "FLEET_INCIDENT";

/// What the evaluator thread is told.
pub enum Msg {
    /// A committed batch touched these sessions; the model's event count
    /// once it was applied.
    Changed(Vec<SessionId>, u64),
    /// The silences changed: here they all are.
    Silences(Vec<Silence>),
    /// Stop after one last pass.
    Stop,
}

/// Where an alert's change goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Groups and Alertmanager.
    All,
    /// Groups only: a fresher text for an unchanged alert (an incident's
    /// count), which Alertmanager gets with its next resend anyway.
    Groups,
}

/// Most history entries held in memory while the store refuses writes.
const MAX_HISTORY_HELD: usize = 100_000;

/// Most sessions an incident keeps in its saved state.
const SAVED_SESSIONS: usize = 1000;

/// Where the evaluator reads the time (cluster mode: the instant up to
/// which the replica knows the stream).
pub type JudgingClock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The evaluator's state, owned by its thread.
pub struct Evaluator {
    /// The instant each pass judges at.
    clock: JudgingClock,
    settings: Arc<AlertingSettings>,
    thresholds: Thresholds,
    store: Arc<Mutex<AlertStore>>,
    /// Reads the fleet the writer published last.
    fleet: Box<dyn Fn() -> Arc<FleetSnapshot> + Send>,
    /// Where each pass publishes its [`AlertSnapshot`].
    published: Arc<ArcSwap<AlertSnapshot>>,
    metrics: AlertMetrics,
    wake: Arc<tokio::sync::Notify>,
    sessions: HashMap<SessionId, Entry>,
    /// Sessions with a lifecycle state (pending, firing, or remembered for
    /// flapping): what `/alerts` lists.
    /// In id order: the published list is built in it.
    with_lives: BTreeSet<SessionId>,
    incidents: BTreeMap<String, IncidentEntry>,
    tracker: IncidentTracker,
    /// The last counts, with the tracker version and instant they were made.
    checks: Option<(u64, Timestamp, Vec<IncidentCheck>)>,
    folded: HashMap<SessionId, Vec<Trouble>>,
    deadlines: Deadlines,
    by_level: [usize; 3],
    /// Sessions per state and level, as last judged (the dashboard's grid).
    by_state_level: [[usize; 3]; STATES],
    /// Sessions per alert code and level, as last judged.
    by_code: [[usize; 3]; AlertCode::ALL.len()],
    alerts: usize,
    groups: HashMap<(String, String), GroupEntry>,
    silences: Vec<Silence>,
    dirty_lives: HashSet<(String, String)>,
    dirty_groups: HashSet<(String, String)>,
    /// Alerts for each Alertmanager receiver, one outbox row per pass.
    alertmanager: BTreeMap<String, Vec<NotifiedAlert>>,
    outbox: Vec<(String, String, String)>,
    history: Vec<(&'static str, String)>,
    active_dirty: bool,
    /// The sessions judged at warning and at critical, in id order.
    levels: [BTreeSet<SessionId>; 2],
    /// Whether they changed since they were published.
    levels_dirty: bool,
    /// The model's event count up to which every change was told.
    told_events: u64,
    /// The model's event count this pass judged every change of.
    judged_events: u64,
    last_pass: Timestamp,
    store_error: Option<String>,
    firing_series: HashSet<(String, Level)>,
    texts: Texts,
}

impl Evaluator {
    /// Loads the saved lifecycle states and groups. Groups and pending
    /// notifications of receivers no longer configured are given up (and
    /// said so in the log): nothing would ever send them.
    #[allow(clippy::too_many_arguments)]
    pub fn load(
        settings: Arc<AlertingSettings>,
        thresholds: Thresholds,
        store: Arc<Mutex<AlertStore>>,
        fleet: Box<dyn Fn() -> Arc<FleetSnapshot> + Send>,
        published: Arc<ArcSwap<AlertSnapshot>>,
        metrics: AlertMetrics,
        wake: Arc<tokio::sync::Notify>,
        silences: Vec<Silence>,
    ) -> Result<Self, crate::store::StoreError> {
        let mut me = Self {
            clock: Arc::new(clock::now),
            settings,
            thresholds,
            store,
            fleet,
            published,
            metrics,
            wake,
            sessions: HashMap::new(),
            with_lives: BTreeSet::new(),
            incidents: BTreeMap::new(),
            tracker: IncidentTracker::new(),
            checks: None,
            folded: HashMap::new(),
            deadlines: Deadlines::default(),
            by_level: [0; 3],
            by_state_level: [[0; 3]; STATES],
            by_code: [[0; 3]; AlertCode::ALL.len()],
            alerts: 0,
            groups: HashMap::new(),
            silences,
            dirty_lives: HashSet::new(),
            dirty_groups: HashSet::new(),
            alertmanager: BTreeMap::new(),
            outbox: Vec::new(),
            history: Vec::new(),
            active_dirty: true,
            levels: Default::default(),
            levels_dirty: true,
            told_events: 0,
            judged_events: 0,
            last_pass: Timestamp::from_millis(0),
            store_error: None,
            firing_series: HashSet::new(),
            texts: Texts::default(),
        };
        let store = me.store.clone();
        let mut store = store.lock().unwrap_or_else(|p| p.into_inner());
        for (session, code, body) in store.lives()? {
            let Ok(mut saved) = serde_json::from_str::<Saved>(&body) else {
                tracing::warn!(session, code, "unreadable alert state dropped");
                me.dirty_lives.insert((session, code));
                continue;
            };
            if session.is_empty() {
                let Some((set, trouble)) = code
                    .strip_prefix("FLEET_INCIDENT|")
                    .and_then(|rest| rest.rsplit_once('|'))
                    .and_then(|(set, t)| Some((set.to_owned(), parse_trouble(t)?)))
                else {
                    me.dirty_lives.insert((session, code));
                    continue;
                };
                me.incidents.insert(
                    incident_key(&set, trouble),
                    IncidentEntry {
                        covered: saved
                            .sessions
                            .iter()
                            .filter_map(|s| SessionId::parse(s).ok())
                            .collect(),
                        covered_version: 0,
                        set,
                        trouble,
                        saved,
                    },
                );
            } else if let (Ok(id), Some(code)) = (SessionId::parse(&session), parse_code(&code)) {
                saved.summary = me.texts.text(saved.summary);
                saved.action = me.texts.text(saved.action);
                me.with_lives.insert(id.clone());
                let lives = &mut me.sessions.entry(id).or_default().lives;
                lives.reserve_exact(1);
                lives.push((code, saved));
            }
        }
        let known: Vec<String> = me
            .settings
            .receivers
            .iter()
            .map(|r| r.name.clone())
            .collect();
        for (receiver, key, body) in store.groups()? {
            if !known.contains(&receiver) {
                tracing::warn!(
                    receiver,
                    group = key,
                    "the receiver is no longer configured: its alert group is dropped"
                );
                me.dirty_groups.insert((receiver, key));
                continue;
            }
            let Ok(group) = serde_json::from_str::<Group>(&body) else {
                tracing::warn!(receiver, key, "unreadable alert group dropped");
                me.dirty_groups.insert((receiver, key));
                continue;
            };
            let timing = me.timing_of(&receiver, &group);
            me.groups
                .insert((receiver, key), GroupEntry { group, timing });
        }
        let abandoned = store.abandon_unknown(&known, clock::now())?;
        if abandoned > 0 {
            tracing::warn!(
                abandoned,
                "pending notifications of receivers no longer configured were given up"
            );
        }
        drop(store);
        me.refold();
        Ok(me)
    }

    /// The timing of the route a saved group came from (the defaults when
    /// the route is gone: its resolves are still owed).
    fn timing_of(&self, receiver: &str, group: &Group) -> GroupTiming {
        self.settings
            .routes
            .iter()
            .find(|r| {
                self.settings.receivers[r.receiver].name == receiver
                    && r.group_by.iter().all(|n| group.labels.contains_key(n))
            })
            .map_or_else(GroupTiming::default, |r| r.timing)
    }

    /// Judges at the instants `clock` gives instead of the wall clock.
    pub fn with_clock(mut self, clock: Option<JudgingClock>) -> Self {
        if let Some(clock) = clock {
            self.clock = clock;
        }
        self
    }

    /// One pass at `now` over the changed and the due sessions (every
    /// session when `full`).
    pub fn pass(&mut self, now: Timestamp, changed: Vec<SessionId>, full: bool) {
        let started = Instant::now();
        let snap = (self.fleet)();
        let mut ids: HashSet<SessionId> = changed.into_iter().collect();
        let sessions = &self.sessions;
        ids.extend(self.deadlines.take_due(now, |id, at| {
            sessions.get(id).is_some_and(|e| e.due == Some(at))
        }));
        // Every change told so far is judged by this pass (a full pass
        // judges every session of the snapshot it read).
        self.judged_events = if full {
            snap.events().max(self.told_events)
        } else {
            self.told_events
        };
        if full {
            ids.extend(snap.sessions().map(|s| s.id().clone()));
            // Saved states of sessions the model no longer has resolve.
            ids.extend(self.sessions.keys().cloned());
        }
        if self
            .silences
            .iter()
            .flat_map(|s| [s.starts_at, s.ends_at])
            .any(|t| t > self.last_pass && t <= now)
        {
            self.active_dirty = true;
        }
        let mut out = Vec::new();
        for id in &ids {
            self.evaluate_session(&snap, id, now, &mut out);
        }
        self.judge_incidents(now, &mut out);
        for (a, scope) in out {
            self.route(a, scope, now);
        }
        self.queue_alertmanager();
        self.flush_groups(now);
        if self.deadlines.len() > 2 * self.sessions.len() + 1024 {
            // Superseded deadlines pile up under steady heartbeats (each
            // moves a session's deadline): rebuild from the current ones.
            self.deadlines.rebuild(
                self.sessions
                    .iter()
                    .filter_map(|(id, e)| e.due.map(|d| (d, id.clone()))),
            );
        }
        // The snapshot first: what the delivery tasks send next is never
        // newer than what the Alertmanager resend reads.
        self.publish(now);
        self.persist(now);
        self.last_pass = now;
        self.metrics
            .evaluator_duration
            .observe(started.elapsed().as_secs_f64());
    }
}
