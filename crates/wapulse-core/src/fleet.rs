//! Many sessions, their rollups, and snapshots for readers.
//!
//! A [`Fleet`] has one writer. Readers take a [`FleetSnapshot`], which shares
//! the sessions through `Arc`s: taking one costs one reference count bump
//! per shard whatever the fleet's size, and the writer copies a session
//! (or one shard of the map) only when it changes something a snapshot still
//! holds. So readers never block the writer and never see half a batch.
//!
//! The map is split into [`SHARDS`] shards so that the first write after a
//! snapshot copies only the shards it touches (about 100 sessions each at
//! 100,000 sessions), not the whole index: with a snapshot published after
//! every ingest batch, that is the difference between tens of microseconds
//! and milliseconds per batch.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::alert::{Level, evaluate};
use crate::dedup::{Dedup, DedupLimits};
use crate::delivery::{AckLatencies, Delivery};
use crate::event::{
    Direction, Event, EventError, EventKind, MetricName, STATES, SessionState, label_error,
};
use crate::id::SessionId;
use crate::labels::Labels;
use crate::session::{Liveness, Session};
use crate::thresholds::Thresholds;
use crate::time::Timestamp;

/// The seed's platform counters, present (at zero) before any event so that
/// dashboards see them from the start.
pub const SEED_COUNTERS: [&str; 11] = [
    "whatsapp_inbound_messages",
    "whatsapp_outbound_messages",
    "whatsapp_errors",
    "calls_started",
    "calls_completed",
    "calls_rejected_max_concurrent",
    "calls_errors",
    "queue_jobs_enqueued",
    "queue_jobs_completed",
    "queue_jobs_failed",
    "queue_jobs_dead_letter",
];

/// The seed's platform gauges, present (at zero) from the start.
pub const SEED_GAUGES: [&str; 1] = ["calls_active"];

/// Platform counters and gauges, as `/metrics.json` reports them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlatformMetrics {
    /// Monotonic counters by name.
    pub counters: BTreeMap<MetricName, f64>,
    /// Gauges by name.
    pub gauges: BTreeMap<MetricName, f64>,
}

impl Default for PlatformMetrics {
    fn default() -> Self {
        let named = |names: &[&str]| {
            names
                .iter()
                .filter_map(|n| MetricName::parse(n))
                .map(|n| (n, 0.0))
                .collect()
        };
        Self {
            counters: named(&SEED_COUNTERS),
            gauges: named(&SEED_GAUGES),
        }
    }
}

impl PlatformMetrics {
    fn add(&mut self, name: &str, delta: f64) {
        match MetricName::parse(name) {
            Some(name) => *self.counters.entry(name).or_insert(0.0) += delta,
            None => debug_assert!(false, "built-in counter name {name} is valid"),
        }
    }
}

/// What became of one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// It changed the model.
    Applied,
    /// Its idempotency key was seen before: acknowledged and ignored.
    Duplicate,
}

/// Counts of a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Events applied.
    pub accepted: usize,
    /// Events ignored as repeats.
    pub duplicates: usize,
}

/// Fleet-wide counts at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rollup {
    /// Sessions known.
    pub sessions: usize,
    /// Sessions per state, indexed by [`SessionState::index`].
    pub by_state: [usize; STATES],
    /// Sessions per level, indexed `ok`, `warning`, `critical`.
    pub by_level: [usize; 3],
    /// Firing alerts over all sessions.
    pub alerts: usize,
}

impl Rollup {
    /// Sessions in `state`.
    pub fn in_state(&self, state: SessionState) -> usize {
        self.by_state[state.index()]
    }

    /// Sessions at `level`.
    pub fn at_level(&self, level: Level) -> usize {
        self.by_level[level as usize]
    }
}

/// How many shards the session index is split into.
pub const SHARDS: usize = 1024;

type Shard = Arc<HashMap<SessionId, Arc<Session>>>;

fn shard_of(id: &str) -> usize {
    // DefaultHasher::new() has fixed keys: the same id always lands in the
    // same shard, in every process.
    let mut h = DefaultHasher::new();
    id.hash(&mut h);
    (h.finish() % SHARDS as u64) as usize
}

/// A starting [`FleetSnapshot::membership`] no other fleet of this process
/// has used: a fleet rebuilt from a snapshot never repeats the numbers of
/// the one it replaces.
fn fresh_membership() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1 << 40, std::sync::atomic::Ordering::Relaxed)
}

/// A consistent, immutable view of the fleet for readers.
#[derive(Clone, Debug)]
pub struct FleetSnapshot {
    shards: Vec<Shard>,
    /// Every id, sorted, for paging without sorting per request; ids added
    /// since the last merge wait in `pending`.
    order: Arc<Vec<SessionId>>,
    pending: Vec<SessionId>,
    /// Ids retired since the last merge, to leave the sorted order.
    retired: Vec<SessionId>,
    len: usize,
    by_state: [usize; STATES],
    platform: Arc<PlatformMetrics>,
    events: u64,
    /// Ack latencies since the process started (not in snapshots).
    ack_latencies: Arc<AckLatencies>,
    /// Changes whenever a session is added, retired or relabelled (not in
    /// snapshots): what a reader caches a label's members under.
    membership: u64,
}

impl Default for FleetSnapshot {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            order: Arc::default(),
            pending: Vec::new(),
            retired: Vec::new(),
            len: 0,
            by_state: [0; STATES],
            platform: Arc::default(),
            events: 0,
            ack_latencies: Arc::default(),
            membership: fresh_membership(),
        }
    }
}

impl FleetSnapshot {
    /// One session.
    pub fn get(&self, id: &str) -> Option<&Arc<Session>> {
        self.shards[shard_of(id)].get(id)
    }

    /// Every session, in no particular order.
    pub fn sessions(&self) -> impl Iterator<Item = &Arc<Session>> {
        self.shards.iter().flat_map(|s| s.values())
    }

    /// Every session id, sorted (byte order). Complete in every snapshot
    /// taken with [`Fleet::snapshot`]; kept up to date on write, so paging
    /// costs a binary search, not a sort.
    pub fn sorted_ids(&self) -> &[SessionId] {
        debug_assert!(
            self.pending.is_empty() && self.retired.is_empty(),
            "snapshots are settled"
        );
        &self.order
    }

    /// Sessions in id order, starting after `after` (exclusive) when given.
    pub fn sessions_after<'a>(
        &'a self,
        after: Option<&str>,
    ) -> impl Iterator<Item = &'a Arc<Session>> + 'a {
        let ids = self.sorted_ids();
        let start = after.map_or(0, |a| ids.partition_point(|id| id.as_str() <= a));
        ids[start..].iter().filter_map(|id| self.get(id.as_str()))
    }

    /// Merges ids added since the last merge into the sorted order and
    /// takes out those retired: one O(n) pass per batch that adds or
    /// retires sessions, not one per session. An id retired and added
    /// again within the batch is listed once; one added and retired, not
    /// at all.
    fn settle(&mut self) {
        if self.pending.is_empty() && self.retired.is_empty() {
            return;
        }
        let mut fresh = std::mem::take(&mut self.pending);
        if !self.retired.is_empty() {
            // Found by binary search and cut out between slices: no hashing
            // of every id for a batch that retires one.
            let mut gone = std::mem::take(&mut self.retired);
            gone.sort_unstable();
            gone.dedup();
            let order = &self.order;
            let mut kept = Vec::with_capacity(order.len());
            let mut start = 0;
            for at in gone.iter().filter_map(|id| order.binary_search(id).ok()) {
                kept.extend_from_slice(&order[start..at]);
                start = at + 1;
            }
            kept.extend_from_slice(&order[start..]);
            self.order = Arc::new(kept);
            fresh.retain(|id| self.shards[shard_of(id.as_str())].contains_key(id.as_str()));
        }
        fresh.sort_unstable();
        fresh.dedup();
        let old = std::mem::take(&mut self.order);
        let mut merged = Vec::with_capacity(old.len() + fresh.len());
        let (mut a, mut b) = (old.iter().peekable(), fresh.into_iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => {
                    if *x <= y {
                        merged.push((*x).clone());
                        a.next();
                    } else {
                        merged.push(b.next().expect("peeked"));
                    }
                }
                (Some(_), None) => merged.extend(a.by_ref().cloned()),
                (None, Some(_)) => merged.extend(b.by_ref()),
                (None, None) => break,
            }
        }
        self.order = Arc::new(merged);
    }

    /// A number that changes whenever a session is added, retired or
    /// relabelled, and only then: sets of sessions chosen by id or label
    /// (a tenant's) computed from a snapshot hold for every later snapshot
    /// with the same number. Counted since the process started.
    pub fn membership(&self) -> u64 {
        self.membership
    }

    /// How many sessions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no session.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sessions per state, kept up to date on every write (no scan).
    pub fn by_state(&self) -> [usize; STATES] {
        self.by_state
    }

    /// Platform counters and gauges.
    pub fn platform(&self) -> &PlatformMetrics {
        &self.platform
    }

    /// Events applied over the fleet's life.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The fleet's ack latencies since this process started.
    pub fn ack_latencies(&self) -> &AckLatencies {
        &self.ack_latencies
    }

    /// Checks that the `labels` events of a batch, applied in order over
    /// this snapshot's labels, leave no session with more than
    /// [`crate::labels::MAX_LABELS`]; otherwise the index of the first
    /// event that would and an error naming the label that does not fit.
    /// (Two batches checked at once over the same snapshot may still go past
    /// the bound together; the fold then keeps the bound,
    /// [`Labels::apply`].)
    pub fn check_labels(&self, events: &[Event]) -> Result<(), (usize, EventError)> {
        let none = Labels::default();
        let mut merged: HashMap<&SessionId, Labels> = HashMap::new();
        for (i, event) in events.iter().enumerate() {
            let EventKind::Labels { labels } = &event.kind else {
                continue;
            };
            let current = match merged.get(&event.session) {
                Some(l) => l,
                None => self
                    .get(event.session.as_str())
                    .map_or(&none, |s| &s.labels),
            };
            let next = current.merged(labels).map_err(|e| (i, label_error(&e)))?;
            merged.insert(&event.session, next);
        }
        Ok(())
    }

    /// Evaluates every session at `now` and counts states, levels and
    /// alerts.
    pub fn rollup(&self, t: &Thresholds, now: Timestamp) -> Rollup {
        let mut rollup = Rollup {
            sessions: self.len,
            by_state: self.by_state,
            ..Rollup::default()
        };
        for session in self.sessions() {
            let a = evaluate(session, t, now);
            rollup.by_level[a.level as usize] += 1;
            rollup.alerts += a.alerts.len();
        }
        rollup
    }
}

impl FleetSnapshot {
    /// The session `id`, created (first seen at `at`) when missing, ready to
    /// be changed: copied first if a reader's snapshot still shares it.
    fn session_mut(&mut self, id: &SessionId, at: Timestamp) -> &mut Session {
        let shard = Arc::make_mut(&mut self.shards[shard_of(id.as_str())]);
        if !shard.contains_key(id.as_str()) {
            self.len += 1;
            self.membership += 1;
            self.pending.push(id.clone());
            self.by_state[SessionState::Connecting.index()] += 1;
            shard.insert(id.clone(), Arc::new(Session::new(id.clone(), at)));
        }
        let session = shard.get_mut(id.as_str()).expect("present: inserted above");
        Arc::make_mut(session)
    }

    /// Takes the session `id` out, if it is there.
    fn retire(&mut self, id: &SessionId) {
        let shard = &mut self.shards[shard_of(id.as_str())];
        if !shard.contains_key(id.as_str()) {
            return;
        }
        let Some(session) = Arc::make_mut(shard).remove(id.as_str()) else {
            return;
        };
        self.len -= 1;
        self.membership += 1;
        self.by_state[session.state.index()] -= 1;
        self.retired.push(id.clone());
    }
}

/// All sessions, the platform metrics, and the idempotency memory: the
/// whole model. One writer applies events; readers take snapshots.
#[derive(Clone, Debug)]
pub struct Fleet {
    thresholds: Thresholds,
    current: FleetSnapshot,
    dedup: Dedup,
}

/// The serializable form of a [`Fleet`], for snapshots on disk.
#[derive(Serialize, Deserialize)]
pub struct FleetState {
    // `Arc<Session>` serializes exactly as `Session`; decoding straight
    // into `Arc`s means a restore never holds two copies of the fleet.
    sessions: Vec<Arc<Session>>,
    platform: PlatformMetrics,
    events: u64,
    dedup: Dedup,
}

/// A [`FleetState`] as snapshots of format 4 and before stored it: the
/// idempotency memory was one fleet-wide queue of `"{session}\0{id}"`.
#[derive(Deserialize)]
pub struct LegacyFleetState {
    sessions: Vec<Arc<Session>>,
    platform: PlatformMetrics,
    events: u64,
    dedup: LegacyDedup,
}

#[derive(Deserialize)]
struct LegacyDedup {
    #[allow(dead_code)]
    capacity: usize,
    order: VecDeque<Arc<str>>,
}

impl LegacyFleetState {
    /// Today's form: each session remembers the ids it had in the queue,
    /// dated at its last event.
    pub fn upgrade(self) -> FleetState {
        let last: HashMap<&str, Timestamp> = self
            .sessions
            .iter()
            .map(|s| (s.id().as_str(), s.last_event_at))
            .collect();
        let dedup = Dedup::from_legacy(
            &self.dedup.order,
            |s| last.get(s).copied(),
            DedupLimits::default(),
        );
        drop(last);
        FleetState {
            sessions: self.sessions,
            platform: self.platform,
            events: self.events,
            dedup,
        }
    }
}

/// A borrowed [`FleetState`]: serializes to exactly the same bytes without
/// copying a session, so a snapshot of a large fleet costs no extra memory.
#[derive(Serialize)]
pub struct FleetStateRef<'a> {
    sessions: Vec<&'a Session>,
    platform: &'a PlatformMetrics,
    events: u64,
    dedup: &'a Dedup,
}

/// A borrowed state in the form of snapshot formats 1 to 4 (see
/// [`LegacyFleetState`]), for tests of the readers of old snapshots.
#[derive(Serialize)]
pub struct LegacyFleetStateRef<'a> {
    sessions: &'a [&'a Session],
    platform: &'a PlatformMetrics,
    events: u64,
    dedup: (usize, Vec<String>),
}

impl<'a> FleetStateRef<'a> {
    /// This state as formats 1 to 4 held it, with `keys` (`"{session}\0{id}"`)
    /// as the fleet-wide idempotency queue.
    pub fn legacy(&'a self, keys: Vec<String>) -> LegacyFleetStateRef<'a> {
        LegacyFleetStateRef {
            sessions: &self.sessions,
            platform: self.platform,
            events: self.events,
            dedup: (keys.len(), keys),
        }
    }
}

impl FleetStateRef<'_> {
    /// The labels of every session that has some, in id order: what a
    /// snapshot stores beside the sessions (their serde form leaves labels
    /// out).
    pub fn labels(&self) -> Vec<(&SessionId, &Labels)> {
        self.sessions
            .iter()
            .filter(|s| !s.labels.is_empty())
            .map(|s| (s.id(), &s.labels))
            .collect()
    }

    /// The liveness of every session that has any, in id order (format
    /// 3's section: the session serde form leaves it out).
    pub fn liveness(&self) -> Vec<(&SessionId, &Liveness)> {
        self.sessions
            .iter()
            .filter(|s| !s.liveness.is_empty())
            .map(|s| (s.id(), &s.liveness))
            .collect()
    }

    /// The delivery figures of every session that has some, in id order
    /// (format 4's section).
    pub fn delivery(&self) -> Vec<(&SessionId, &Delivery)> {
        self.sessions
            .iter()
            .filter_map(|s| s.delivery.as_deref().map(|d| (s.id(), d)))
            .collect()
    }
}

impl FleetState {
    /// Gives the sessions back the labels [`FleetStateRef::labels`] listed;
    /// an error names a session the state does not hold.
    pub fn restore_labels(&mut self, labels: Vec<(SessionId, Labels)>) -> Result<(), String> {
        self.restore_section(labels, |s, l| s.labels = l)
    }

    /// Gives the sessions back the liveness [`FleetStateRef::liveness`]
    /// listed; an error names a session the state does not hold.
    pub fn restore_liveness(&mut self, liveness: Vec<(SessionId, Liveness)>) -> Result<(), String> {
        self.restore_section(liveness, |s, l| s.liveness = l)
    }

    /// Gives the sessions back the delivery figures
    /// [`FleetStateRef::delivery`] listed; an error names a session the
    /// state does not hold.
    pub fn restore_delivery(&mut self, delivery: Vec<(SessionId, Delivery)>) -> Result<(), String> {
        self.restore_section(delivery, |s, d| s.delivery = Some(Box::new(d)))
    }

    fn restore_section<T>(
        &mut self,
        items: Vec<(SessionId, T)>,
        set: impl Fn(&mut Session, T),
    ) -> Result<(), String> {
        if items.is_empty() {
            return Ok(());
        }
        let mut by_id: HashMap<SessionId, T> = items.into_iter().collect();
        for session in &mut self.sessions {
            if let Some(item) = by_id.remove(session.id()) {
                set(Arc::make_mut(session), item);
            }
        }
        match by_id.keys().next() {
            Some(id) => Err(format!("session `{id}`, which the snapshot does not hold")),
            None => Ok(()),
        }
    }
}

impl Fleet {
    /// An empty fleet judged by `thresholds`.
    pub fn new(thresholds: Thresholds) -> Self {
        Self::with_dedup(thresholds, DedupLimits::default())
    }

    /// An empty fleet whose sessions remember event ids within `limits`.
    pub fn with_dedup(thresholds: Thresholds, limits: DedupLimits) -> Self {
        Self {
            thresholds,
            current: FleetSnapshot::default(),
            dedup: Dedup::new(limits),
        }
    }

    /// The thresholds the fleet folds and judges with.
    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    /// A consistent view for readers; shares everything (ids added since
    /// the last batch are merged into the copy's order).
    pub fn snapshot(&self) -> FleetSnapshot {
        let mut snapshot = self.current.clone();
        snapshot.settle();
        snapshot
    }

    /// The current view, borrowed.
    pub fn view(&self) -> &FleetSnapshot {
        &self.current
    }

    /// Whether `event` would be ignored as a repeat.
    pub fn is_duplicate(&self, event: &Event) -> bool {
        event
            .id
            .as_deref()
            .is_some_and(|id| self.dedup.contains(&event.session, id))
    }

    /// Applies one event, unless its idempotency key was seen before.
    pub fn apply(&mut self, event: &Event) -> Applied {
        if let Some(id) = event.id.as_deref()
            && !self.dedup.insert(&event.session, id, event.at)
        {
            return Applied::Duplicate;
        }
        let current = &mut self.current;
        current.events += 1;
        match &event.kind {
            EventKind::Message {
                direction, count, ..
            } => {
                let name = match direction {
                    Direction::Inbound => "whatsapp_inbound_messages",
                    Direction::Outbound => "whatsapp_outbound_messages",
                };
                Arc::make_mut(&mut current.platform).add(name, f64::from(*count));
            }
            EventKind::Error { .. } => {
                Arc::make_mut(&mut current.platform).add("whatsapp_errors", 1.0);
            }
            EventKind::Counter { name, delta } => {
                *Arc::make_mut(&mut current.platform)
                    .counters
                    .entry(name.clone())
                    .or_insert(0.0) += delta;
                return Applied::Applied;
            }
            EventKind::Gauge { name, value } => {
                Arc::make_mut(&mut current.platform)
                    .gauges
                    .insert(name.clone(), *value);
                return Applied::Applied;
            }
            EventKind::Retire { .. } => {
                current.retire(&event.session);
                return Applied::Applied;
            }
            EventKind::Labels { .. } => current.membership += 1,
            _ => {}
        }
        let (before, after, timing) = {
            let session = current.session_mut(&event.session, event.at);
            let before = session.state;
            let timing = session.apply(event, &self.thresholds);
            (before, session.state, timing)
        };
        if let Some(timing) = timing {
            Arc::make_mut(&mut current.ack_latencies).record(timing);
        }
        if before != after {
            current.by_state[before.index()] -= 1;
            current.by_state[after.index()] += 1;
        }
        Applied::Applied
    }

    /// Makes sure `id` exists, first seen at `at` (as `connecting`), without
    /// applying an event. For a session that must be answered for before
    /// its gateway has said anything (the configured default session).
    pub fn ensure_session(&mut self, id: &SessionId, at: Timestamp) {
        if self.current.get(id.as_str()).is_none() {
            self.current.session_mut(id, at);
            self.current.settle();
        }
    }

    /// Applies events in order; the same as applying them one by one.
    pub fn apply_all<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) -> BatchOutcome {
        let mut out = BatchOutcome::default();
        for e in events {
            match self.apply(e) {
                Applied::Applied => out.accepted += 1,
                Applied::Duplicate => out.duplicates += 1,
            }
        }
        self.current.settle();
        out
    }

    /// The state, borrowed, for writing a snapshot (sessions in id order,
    /// so equal fleets serialize to equal bytes).
    pub fn state_ref(&self) -> FleetStateRef<'_> {
        let mut sessions: Vec<&Session> = self.current.sessions().map(|s| s.as_ref()).collect();
        sessions.sort_by(|a, b| a.id().cmp(b.id()));
        FleetStateRef {
            sessions,
            platform: &self.current.platform,
            events: self.current.events,
            dedup: &self.dedup,
        }
    }

    /// The serializable state, for snapshots.
    pub fn to_state(&self) -> FleetState {
        let mut sessions: Vec<Arc<Session>> = self.current.sessions().cloned().collect();
        sessions.sort_by(|a, b| a.id().cmp(b.id()));
        FleetState {
            sessions,
            platform: PlatformMetrics::clone(&self.current.platform),
            events: self.current.events,
            dedup: self.dedup.clone(),
        }
    }

    /// Rebuilds a fleet from a snapshot's state, its sessions remembering
    /// event ids within `limits` from now on.
    pub fn from_state(thresholds: Thresholds, state: FleetState, limits: DedupLimits) -> Self {
        let mut shards: Vec<HashMap<SessionId, Arc<Session>>> =
            (0..SHARDS).map(|_| HashMap::new()).collect();
        let mut by_state = [0usize; STATES];
        let len = state.sessions.len();
        let mut order: Vec<SessionId> = state.sessions.iter().map(|s| s.id().clone()).collect();
        order.sort_unstable();
        for s in state.sessions {
            by_state[s.state.index()] += 1;
            shards[shard_of(s.id().as_str())].insert(s.id().clone(), s);
        }
        let mut dedup = state.dedup;
        dedup.set_limits(limits);
        Self {
            thresholds,
            current: FleetSnapshot {
                shards: shards.into_iter().map(Arc::new).collect(),
                order: Arc::new(order),
                pending: Vec::new(),
                retired: Vec::new(),
                len,
                by_state,
                platform: Arc::new(state.platform),
                events: state.events,
                ack_latencies: Arc::default(),
                membership: fresh_membership(),
            },
            dedup,
        }
    }
}
