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
//! Every pass publishes its view, then writes what changed (lifecycle
//! states, groups, new outbox rows, history) in one transaction before
//! anything is sent; a pass whose write fails keeps its changes and
//! writes them with the next pass.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use wapulse_core::grouping::{Group, GroupTiming, MAX_ALERTS_PER_MESSAGE, NotifiedAlert, Status};
use wapulse_core::incident::{IncidentCheck, IncidentTracker, Trouble, Troubles, set_labels};
use wapulse_core::{
    AlertCode, AlertLife, FleetSnapshot, Level, Phase, Session, SessionId, Silence, Thresholds,
    Timestamp, Transition, evaluate, next_change,
};

use super::config::{AlertingSettings, ReceiverKind};
use super::outbox::Payload;
use super::routing::{group_of, label, routes_for};
use super::store::{AlertStore, PassWrite};
use super::{ActiveAlert, AlertMetrics, AlertsView};
use crate::clock;

/// The code of a fleet incident.
pub const FLEET_INCIDENT: &str = "FLEET_INCIDENT";

/// What the evaluator thread is told.
pub enum Msg {
    /// A committed batch touched these sessions.
    Changed(Vec<SessionId>),
    /// The silences changed: here they all are.
    Silences(Vec<Silence>),
    /// Stop after one last pass.
    Stop,
}

/// A lifecycle state as saved: the core's state, what the alert said when
/// it last held (so a resolve can still say what resolved), and the labels
/// it goes by (frozen while it fires).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Saved {
    life: AlertLife,
    summary: String,
    action: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    sessions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    affected: Option<u64>,
    /// Whether an Alertmanager was sent it firing (it is then resent until
    /// it resolves, even once folded or silenced: Alertmanager would end
    /// it by itself otherwise).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    told: bool,
}

#[derive(Default)]
struct Entry {
    evaluated: bool,
    level: Level,
    /// The session's state (`SessionState::index`) when it was judged, for
    /// the state × level grid.
    state: usize,
    alerts: usize,
    troubles: Option<Troubles>,
    lives: Vec<(AlertCode, Saved)>,
    due: Option<Timestamp>,
}

struct IncidentEntry {
    set: String,
    trouble: Trouble,
    saved: Saved,
    /// Every covered session (the saved list is capped).
    covered: Vec<String>,
    /// The tracker's version of `covered` (read again only when it moves).
    covered_version: u64,
}

impl IncidentEntry {
    /// Pending or firing: it folds the alerts it covers.
    fn folds(&self) -> bool {
        matches!(self.saved.life.phase, Phase::Pending | Phase::Firing)
    }
}

struct GroupEntry {
    group: Group,
    timing: GroupTiming,
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

/// The evaluator's state, owned by its thread.
/// Where the evaluator reads the time (cluster mode: the instant up to
/// which the replica knows the stream; see `Cluster::judging_time`).
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

pub struct Evaluator {
    /// The instant each pass judges at.
    clock: Clock,
    settings: Arc<AlertingSettings>,
    thresholds: Thresholds,
    store: Arc<Mutex<AlertStore>>,
    snapshot: Box<dyn Fn() -> Arc<FleetSnapshot> + Send>,
    view: Arc<ArcSwap<AlertsView>>,
    metrics: AlertMetrics,
    wake: Arc<tokio::sync::Notify>,
    sessions: HashMap<SessionId, Entry>,
    /// Sessions with a lifecycle state (pending, firing, or remembered for
    /// flapping): what `/alerts` lists.
    with_lives: HashSet<SessionId>,
    incidents: BTreeMap<String, IncidentEntry>,
    tracker: IncidentTracker,
    /// The last counts, with the tracker version and instant they were made.
    checks: Option<(u64, Timestamp, Vec<IncidentCheck>)>,
    folded: HashMap<String, Vec<Trouble>>,
    queue: BinaryHeap<Reverse<(Timestamp, SessionId)>>,
    by_level: [usize; 3],
    /// Sessions per state and level, as last judged (the dashboard's grid).
    by_state_level: [[usize; 3]; 7],
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
    last_pass: Timestamp,
    store_error: Option<String>,
    firing_series: HashSet<(String, Level)>,
}

fn incident_key(set: &str, trouble: Trouble) -> String {
    format!("{set}|{trouble}")
}

/// The `code` column of an incident's saved state (its `session` is empty).
fn incident_code(set: &str, trouble: Trouble) -> String {
    format!("{FLEET_INCIDENT}|{}", incident_key(set, trouble))
}

fn session_labels(s: &Session) -> BTreeMap<String, String> {
    s.labels
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn parse_code(text: &str) -> Option<AlertCode> {
    AlertCode::ALL.into_iter().find(|c| c.as_str() == text)
}

fn parse_trouble(text: &str) -> Option<Trouble> {
    if text == "not_connected" {
        Some(Trouble::NotConnected)
    } else {
        parse_code(text).map(Trouble::Code)
    }
}

/// A session alert as notifications show it.
/// An alert (of a session, or a fleet incident with `session` empty) as
/// notifications show it.
fn notified(
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
    }
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
        snapshot: Box<dyn Fn() -> Arc<FleetSnapshot> + Send>,
        view: Arc<ArcSwap<AlertsView>>,
        metrics: AlertMetrics,
        wake: Arc<tokio::sync::Notify>,
        silences: Vec<Silence>,
    ) -> Result<Self, crate::store::StoreError> {
        let mut me = Self {
            clock: Arc::new(clock::now),
            settings,
            thresholds,
            store,
            snapshot,
            view,
            metrics,
            wake,
            sessions: HashMap::new(),
            with_lives: HashSet::new(),
            incidents: BTreeMap::new(),
            tracker: IncidentTracker::new(),
            checks: None,
            folded: HashMap::new(),
            queue: BinaryHeap::new(),
            by_level: [0; 3],
            by_state_level: [[0; 3]; 7],
            alerts: 0,
            groups: HashMap::new(),
            silences,
            dirty_lives: HashSet::new(),
            dirty_groups: HashSet::new(),
            alertmanager: BTreeMap::new(),
            outbox: Vec::new(),
            history: Vec::new(),
            active_dirty: true,
            last_pass: Timestamp::from_millis(0),
            store_error: None,
            firing_series: HashSet::new(),
        };
        let store = me.store.clone();
        let mut store = store.lock().unwrap_or_else(|p| p.into_inner());
        for (session, code, body) in store.lives()? {
            let Ok(saved) = serde_json::from_str::<Saved>(&body) else {
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
                        covered: saved.sessions.clone(),
                        covered_version: 0,
                        set,
                        trouble,
                        saved,
                    },
                );
            } else if let (Ok(id), Some(code)) = (SessionId::parse(&session), parse_code(&code)) {
                me.with_lives.insert(id.clone());
                me.sessions.entry(id).or_default().lives.push((code, saved));
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
    pub fn with_clock(mut self, clock: Option<Clock>) -> Self {
        if let Some(clock) = clock {
            self.clock = clock;
        }
        self
    }

    /// Runs until told to stop: the first pass judges every session.
    pub fn run(mut self, rx: Receiver<Msg>) {
        let mut full = true;
        loop {
            let now = (self.clock)();
            let mut changed: Vec<SessionId> = Vec::new();
            if !full {
                let wait = self
                    .next_wake(now)
                    .map_or(Duration::from_secs(1), |at| {
                        Duration::from_millis(at.since(now).as_millis())
                    })
                    .min(Duration::from_secs(1));
                match rx.recv_timeout(wait) {
                    Ok(msg) => {
                        if self.take(msg, &mut changed) {
                            self.pass((self.clock)(), changed, false);
                            return;
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                while let Ok(msg) = rx.try_recv() {
                    if self.take(msg, &mut changed) {
                        self.pass((self.clock)(), changed, false);
                        return;
                    }
                }
            }
            self.pass((self.clock)(), changed, full);
            full = false;
        }
    }

    /// Takes one message; true when it says stop.
    fn take(&mut self, msg: Msg, changed: &mut Vec<SessionId>) -> bool {
        match msg {
            Msg::Changed(ids) => changed.extend(ids),
            Msg::Silences(s) => {
                // Silenced alerts stay in their groups, muted: the next
                // pass sends what a lifted silence hid.
                self.silences = s;
                self.active_dirty = true;
            }
            Msg::Stop => return true,
        }
        false
    }

    fn next_wake(&self, now: Timestamp) -> Option<Timestamp> {
        let queued = self.queue.peek().map(|Reverse((t, _))| *t);
        let groups = self
            .groups
            .values()
            .filter_map(|g| g.group.next_flush(&g.timing, |a| self.is_silenced(a, now)))
            .min();
        let silences = self
            .silences
            .iter()
            .flat_map(|s| [s.starts_at, s.ends_at])
            .filter(|t| *t > self.last_pass)
            .min();
        [queued, groups, silences].into_iter().flatten().min()
    }

    /// One pass at `now` over the changed and the due sessions (every
    /// session when `full`).
    pub fn pass(&mut self, now: Timestamp, changed: Vec<SessionId>, full: bool) {
        let started = Instant::now();
        let snap = (self.snapshot)();
        let mut ids: HashSet<SessionId> = changed.into_iter().collect();
        while let Some(Reverse((at, _))) = self.queue.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, id))) = self.queue.pop() else {
                break;
            };
            if self.sessions.get(&id).is_some_and(|e| e.due == Some(at)) {
                ids.insert(id);
            }
        }
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
        if self.queue.len() > 2 * self.sessions.len() + 1024 {
            // Superseded deadlines pile up under steady heartbeats (each
            // moves a session's deadline): rebuild from the current ones.
            self.queue = self
                .sessions
                .iter()
                .filter_map(|(id, e)| e.due.map(|d| Reverse((d, id.clone()))))
                .collect();
        }
        // The view first: what the delivery tasks send next is never
        // newer than what the Alertmanager resend reads.
        self.publish(now);
        self.persist(now);
        self.last_pass = now;
        self.metrics
            .evaluator_duration
            .observe(started.elapsed().as_secs_f64());
    }

    fn evaluate_session(
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
        let mut labels: Option<BTreeMap<String, String>> = None;
        if entry.evaluated {
            self.by_level[entry.level as usize] -= 1;
            self.by_state_level[entry.state][entry.level as usize] -= 1;
            self.alerts -= entry.alerts;
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
                    lives.push((code, Saved::default()));
                    lives.len() - 1
                }
            };
            let rules = self.settings.rules(code);
            let saved = &mut lives[idx].1;
            let before = (saved.life.clone(), saved.labels.clone());
            if let Some(a) = alert {
                saved.summary = a.message();
                saved.action = a.action().to_owned();
            }
            if saved.life.phase != Phase::Firing {
                // Frozen once it fires: its resolve must find its group.
                saved.labels = labels
                    .get_or_insert_with(|| session.map(|s| session_labels(s)).unwrap_or_default())
                    .clone();
            }
            let transitions = saved.life.step(alert.map(|a| a.level), now, &rules);
            if (&saved.life, &saved.labels) != (&before.0, &before.1) {
                self.dirty_lives
                    .insert((id.as_str().to_owned(), code.as_str().to_owned()));
                self.active_dirty = true;
            }
            for t in &transitions {
                self.history.push((
                    "transition",
                    serde_json::json!({
                        "session": id.as_str(),
                        "code": code.as_str(),
                        "transition": t.as_str(),
                        "level": saved.life.level,
                        "at": now.to_rfc3339(),
                    })
                    .to_string(),
                ));
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
                out.push((
                    notified(id.as_str(), code.as_str(), saved, status, now),
                    Scope::All,
                ));
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
            // Gone from the model: forget it once nothing is owed.
            if let Some(t) = entry.troubles.take() {
                self.tracker.update(id.as_str(), Some(&t), None);
            }
            entry.evaluated = false;
            if !entry.lives.is_empty() {
                self.sessions.insert(id.clone(), entry);
            }
            return;
        };
        let verdict = verdict.unwrap_or_default();
        entry.evaluated = true;
        entry.level = verdict.level;
        entry.alerts = verdict.alerts.len();
        entry.state = session.state.index();
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
                .update(id.as_str(), entry.troubles.as_ref(), Some(&troubles));
            entry.troubles = Some(troubles);
        }
        if entry.due != deadline {
            entry.due = deadline;
            if let Some(d) = deadline {
                self.queue.push(Reverse((d, id.clone())));
            }
        }
        self.sessions.insert(id.clone(), entry);
    }

    fn judge_incidents(&mut self, now: Timestamp, out: &mut Vec<(NotifiedAlert, Scope)>) {
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
        let mut unfold: Vec<String> = Vec::new();
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
        for s in unfold {
            let Ok(id) = SessionId::parse(&s) else {
                continue;
            };
            let Some(e) = self.sessions.get(&id) else {
                continue;
            };
            for (code, saved) in &e.lives {
                if saved.life.phase == Phase::Firing {
                    let a = notified(&s, code.as_str(), saved, Status::Firing, now);
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
    fn step_incident(
        &mut self,
        key: String,
        set: String,
        trouble: Trouble,
        check: Option<&IncidentCheck>,
        now: Timestamp,
        out: &mut Vec<(NotifiedAlert, Scope)>,
        unfold: &mut Vec<String>,
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
        let mut left: Vec<String> = Vec::new();
        let mut list_changed = false;
        if let (true, Some(c)) = (holds, check) {
            entry.saved.summary = c.summary();
            entry.saved.action = match trouble {
                Trouble::NotConnected => {
                    "Check what these sessions share: the gateway hosts, their network, \
                     WhatsApp's status; per-session alerts are folded into this one"
                        .to_owned()
                }
                Trouble::Code(_) => {
                    "Look for the shared cause before handling sessions one by one; \
                     per-session alerts are folded into this one"
                        .to_owned()
                }
            };
            let mut labels = set_labels(&set);
            labels.insert("trouble".to_owned(), trouble.to_string());
            entry.saved.labels = labels;
            entry.saved.affected = Some(c.current as u64);
            // Read again only when membership moved; compared in full: the
            // saved list is capped, and a session beyond the cap joining
            // must still be folded.
            if entry.covered_version != c.version {
                entry.covered_version = c.version;
                let sessions = self.tracker.sessions(&set, trouble);
                if entry.covered != sessions {
                    let now_covered: HashSet<&String> = sessions.iter().collect();
                    left = entry
                        .covered
                        .iter()
                        .filter(|s| !now_covered.contains(s))
                        .cloned()
                        .collect();
                    entry.saved.sessions = sessions.iter().take(SAVED_SESSIONS).cloned().collect();
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
    fn refold(&mut self) {
        self.folded.clear();
        for e in self.incidents.values() {
            if e.folds() {
                let list = if e.covered.is_empty() {
                    &e.saved.sessions
                } else {
                    &e.covered
                };
                for s in list {
                    self.folded.entry(s.clone()).or_default().push(e.trouble);
                }
            }
        }
        self.active_dirty = true;
    }

    fn is_folded(&self, a: &NotifiedAlert) -> bool {
        a.code != FLEET_INCIDENT
            && self.folded.get(&a.session).is_some_and(|ts| {
                ts.iter().any(|t| match t {
                    Trouble::NotConnected => true,
                    Trouble::Code(c) => c.as_str() == a.code,
                })
            })
    }

    fn is_silenced(&self, a: &NotifiedAlert, now: Timestamp) -> bool {
        self.silences
            .iter()
            .any(|s| s.silences(now, |n| label(a, n)))
    }

    fn route(&mut self, a: NotifiedAlert, scope: Scope, now: Timestamp) {
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
    fn mark_told(&mut self, a: &NotifiedAlert) {
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
    fn queue_alertmanager(&mut self) {
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

    fn flush_groups(&mut self, now: Timestamp) {
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

    fn persist(&mut self, now: Timestamp) {
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
                self.dirty_lives.clear();
                self.dirty_groups.clear();
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

    fn publish(&mut self, now: Timestamp) {
        let previous = self.view.load_full();
        // Counted (and the firing gauges set) only when the list changed;
        // most passes reuse the previous list and its counts.
        let (active, counts) = if self.active_dirty || previous.evaluated_at.is_none() {
            self.active_dirty = false;
            let active = Arc::new(self.active(now));
            (active.clone(), self.count(&active))
        } else {
            (previous.active.clone(), previous.counts)
        };
        self.view.store(Arc::new(AlertsView {
            evaluated_at: Some(now),
            by_level: self.by_level,
            by_state_level: self.by_state_level,
            alerts: self.alerts,
            counts,
            active,
            store_error: self.store_error.clone(),
        }));
    }

    /// Counts the active list and sets `wa_alerts_firing` from it.
    fn count(&mut self, active: &[ActiveAlert]) -> super::AlertCounts {
        let mut firing: HashMap<(String, Level), i64> = HashMap::new();
        let mut counts = super::AlertCounts::default();
        for a in active {
            match a.state {
                Phase::Firing => {
                    counts.firing += 1;
                    *firing.entry((a.code.clone(), a.level)).or_insert(0) += 1;
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

    fn active(&self, now: Timestamp) -> Vec<ActiveAlert> {
        let mut out = Vec::new();
        for id in &self.with_lives {
            let Some(e) = self.sessions.get(id) else {
                continue;
            };
            for (code, saved) in &e.lives {
                if matches!(saved.life.phase, Phase::Pending | Phase::Firing) {
                    let n = notified(id.as_str(), code.as_str(), saved, Status::Firing, now);
                    out.push(ActiveAlert {
                        session: id.as_str().to_owned(),
                        code: code.as_str().to_owned(),
                        level: saved.life.level,
                        state: saved.life.phase,
                        since: saved.life.active_since.unwrap_or(now),
                        fired_at: saved
                            .life
                            .fired_at
                            .filter(|_| saved.life.phase == Phase::Firing),
                        flapping: saved.life.flapping,
                        silenced: self.is_silenced(&n, now),
                        folded: self.is_folded(&n),
                        summary: saved.summary.clone(),
                        labels: saved.labels.clone(),
                        sessions: Vec::new(),
                        affected: None,
                        told: saved.told,
                    });
                }
            }
        }
        for e in self.incidents.values() {
            if e.saved.life.phase == Phase::Firing {
                let mut a = ActiveAlert {
                    session: String::new(),
                    code: FLEET_INCIDENT.to_owned(),
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
        // Worst first: incidents, then level, firing before pending, oldest.
        out.sort_by(|a, b| {
            (b.code == FLEET_INCIDENT)
                .cmp(&(a.code == FLEET_INCIDENT))
                .then(b.level.cmp(&a.level))
                .then((b.state == Phase::Firing).cmp(&(a.state == Phase::Firing)))
                .then(a.since.cmp(&b.since))
                .then(a.session.cmp(&b.session))
                .then(a.code.cmp(&b.code))
        });
        out
    }
}

/// What a step's transitions mean for notifications.
fn notify_status(transitions: &[Transition]) -> Option<Status> {
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
