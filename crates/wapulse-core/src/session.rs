//! One WhatsApp session, folded from its events.
//!
//! [`Session::apply`] is the only way a session changes. It is a plain
//! function of the session, the event and the thresholds: no clock, no I/O,
//! so replaying the same events gives the same session.
//!
//! Ordering: figures that describe "the latest" (state, heartbeat, lock,
//! breaker, integrity, auth, credentials) never move back for a late event.
//! Labels are the exception: `labels` events apply in arrival (journal)
//! order whatever their `at`, as an operator's configuration does: the
//! last one sent wins.

use serde::{Deserialize, Serialize};

use crate::delivery::{AckTiming, Delivery, Quality, RestrictionKind};
use crate::disconnect::{DisconnectReason, LastDisconnect};
use crate::event::{AuthMethod, Direction, Event, EventKind, SessionState};
use crate::id::SessionId;
use crate::inbound::InboundBaseline;
use crate::labels::Labels;
use crate::thresholds::Thresholds;
use crate::time::{DurationMs, Timestamp};
use crate::window::{Percentiles, RecentSamples, WindowCount};

/// The reconnect figures of a session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconnect {
    /// Attempts in the current (or last unfinished) reconnect; reset by
    /// `connected`.
    pub attempts: u32,
    /// Attempts over the session's life (`wa_reconnect_attempts_total`).
    pub total_attempts: u64,
    /// Whether a reconnect has started and not yet reached `connected`.
    pub in_progress: bool,
    /// When the reconnect in progress started.
    pub started_at: Option<Timestamp>,
    /// How long the last completed reconnect took.
    pub last_duration: Option<DurationMs>,
    /// Reconnects completed over the session's life.
    pub completed: u64,
    /// Durations of the most recent completed reconnects (ms).
    pub recent: RecentSamples,
}

impl Reconnect {
    /// Percentiles of the recent reconnect durations (ms).
    pub fn latency_percentiles(&self) -> Option<Percentiles> {
        self.recent.percentiles()
    }

    /// The longer of the last completed reconnect and the one in progress,
    /// which is what SLOW_RECONNECT judges.
    pub fn slowest_current(&self, now: Timestamp) -> Option<DurationMs> {
        let running = match (self.in_progress, self.started_at) {
            (true, Some(start)) => Some(now.since(start)),
            _ => None,
        };
        running.max(self.last_duration)
    }
}

/// The heartbeat figures of a session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The latest heartbeat seen (never moves backwards).
    pub last_at: Option<Timestamp>,
    /// Heartbeats seen.
    pub count: u64,
    /// Round-trip time of the latest heartbeat that reported one.
    pub last_rtt_ms: Option<u32>,
    /// Missed beats, by when the gap that revealed them closed.
    pub missed: WindowCount,
    /// Missed beats over the session's life.
    pub missed_total: u64,
}

/// The integrity (checksum) figures of a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Integrity {
    /// Whether the latest check passed (true until a check fails).
    pub checksum_valid: bool,
    /// When the latest check ran.
    pub last_check_at: Option<Timestamp>,
    /// Failed checks, by time.
    pub failures: WindowCount,
    /// Failed checks over the session's life.
    pub failures_total: u64,
    /// When the current corruption was first seen (cleared by a valid
    /// check).
    pub corrupted_at: Option<Timestamp>,
    /// The latest check's detail, when it gave one.
    pub last_detail: Option<Box<str>>,
}

impl Default for Integrity {
    fn default() -> Self {
        Self {
            checksum_valid: true,
            last_check_at: None,
            failures: WindowCount::default(),
            failures_total: 0,
            corrupted_at: None,
            last_detail: None,
        }
    }
}

/// The distributed session lock, while held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// Who holds it.
    pub held_by: Box<str>,
    /// What for.
    pub operation: Box<str>,
    /// Since when.
    pub since: Timestamp,
}

/// The gateway's reconnect circuit breaker.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breaker {
    /// Whether it is open (not retrying).
    pub open: bool,
    /// When it opened (while open).
    pub since: Option<Timestamp>,
    /// Consecutive failures, as the gateway last reported them.
    pub consecutive_failures: u32,
    /// When it last changed, for ordering late events.
    pub changed_at: Option<Timestamp>,
}

/// Message and error counts of a session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// Messages received.
    pub inbound: u64,
    /// Messages sent.
    pub outbound: u64,
    /// Send/receive errors.
    pub errors: u64,
}

/// What a session's gateway tells about its liveness beyond the seed's
/// figures: the last disconnect reason, connection-replaced closes, the
/// inbound baseline and whether keepalives are expected.
///
/// Kept apart from the session's serde form: snapshots store it in a
/// section of their own for the sessions that have any (format 3), so
/// format-1 and format-2 snapshots still decode.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Liveness {
    /// The last reason given for not being connected.
    pub last_disconnect: Option<LastDisconnect>,
    /// "Connection replaced" closes (440), by time; allocated at the
    /// first one only.
    pub conflicts: Option<Box<WindowCount>>,
    /// Connection-replaced closes over the session's life.
    pub conflicts_total: u64,
    /// The inbound message rate baseline.
    pub inbound: InboundBaseline,
    /// Whether the source said it sends no regular keepalives
    /// (`keepalives {expected: false}`, set by the WAHA and Evolution
    /// webhooks).
    pub keepalives_off: bool,
    /// When `keepalives` was last set, for ordering late events.
    pub keepalives_set_at: Option<Timestamp>,
    /// Since when the keepalive has been failing (`heartbeat_failed`
    /// with no heartbeat since).
    pub keepalive_failing_since: Option<Timestamp>,
}

impl Liveness {
    /// Whether it holds nothing worth storing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Connection-replaced closes within `window` before `now`.
    pub fn conflicts(&self, now: Timestamp, window: DurationMs) -> u32 {
        self.conflicts.as_ref().map_or(0, |w| w.count(now, window))
    }
}

/// Everything wapulse knows about one session, folded from its events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    id: SessionId,
    /// The first event's time.
    pub first_seen: Timestamp,
    /// The latest event time seen (never moves backwards).
    pub last_event_at: Timestamp,
    /// Events applied.
    pub events: u64,
    /// Events that arrived older than what they would have changed, kept
    /// for history without changing the current figures.
    pub late_events: u64,
    /// The current state.
    pub state: SessionState,
    /// When the current state was entered.
    pub state_changed_at: Timestamp,
    /// Whether a `state` event was ever applied. Until then the state is
    /// the assumed `connecting` of a session first seen (or created ahead
    /// of its gateway), and a state event of any time applies.
    pub state_seen: bool,
    /// The reason given with the current state.
    pub state_reason: Option<Box<str>>,
    /// When the current connection was established (while connected).
    pub connected_since: Option<Timestamp>,
    /// Since when the session has not been connected (while not connected):
    /// the moment it left `connected`, or its first event if it never was.
    pub down_since: Option<Timestamp>,
    /// Whether the session ever reached `connected`.
    pub init_successful: bool,
    /// How it last authenticated.
    pub auth_method: Option<AuthMethod>,
    /// When it last authenticated.
    pub auth_at: Option<Timestamp>,
    /// When credentials were last persisted.
    pub credentials_written_at: Option<Timestamp>,
    /// Where credentials were last persisted.
    pub credentials_store: Option<Box<str>>,
    /// Reconnect figures.
    pub reconnect: Reconnect,
    /// Heartbeat figures.
    pub heartbeat: Heartbeat,
    /// The lock, while held.
    pub lock: Option<Lock>,
    /// When the lock last changed hands, for ordering late events.
    pub lock_changed_at: Option<Timestamp>,
    /// Integrity figures.
    pub integrity: Integrity,
    /// Circuit breaker.
    pub breaker: Breaker,
    /// Message and error counts.
    pub traffic: Traffic,
    /// The session's labels (`labels` events, in arrival order).
    ///
    /// Not part of the session's serde form: snapshots on disk keep the
    /// session layout of format 1 and store labels in a section of their
    /// own (see `wapulse::model`), so format-1 snapshots still decode.
    #[serde(skip)]
    pub labels: Labels,
    /// Disconnect reasons, conflicts, inbound baseline, keepalive
    /// expectations. Not part of the serde form either (see [`Liveness`]).
    #[serde(skip)]
    pub liveness: Liveness,
    /// What its sends became; allocated at its first send with ids or its
    /// first ack. Not part of the serde form either (a snapshot section of
    /// its own, format 4).
    #[serde(skip)]
    pub delivery: Option<Box<Delivery>>,
}

impl Session {
    /// A session first seen at `at`: `connecting`, not yet connected.
    pub fn new(id: SessionId, at: Timestamp) -> Self {
        Self {
            id,
            first_seen: at,
            last_event_at: at,
            events: 0,
            late_events: 0,
            state: SessionState::Connecting,
            state_changed_at: at,
            state_seen: false,
            state_reason: None,
            connected_since: None,
            down_since: Some(at),
            init_successful: false,
            auth_method: None,
            auth_at: None,
            credentials_written_at: None,
            credentials_store: None,
            reconnect: Reconnect::default(),
            heartbeat: Heartbeat::default(),
            lock: None,
            lock_changed_at: None,
            integrity: Integrity::default(),
            breaker: Breaker::default(),
            traffic: Traffic::default(),
            labels: Labels::default(),
            liveness: Liveness::default(),
            delivery: None,
        }
    }

    /// The session's id.
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// Whether the session is connected.
    pub fn is_connected(&self) -> bool {
        self.state == SessionState::Connected
    }

    /// How long the session has been in its current state.
    pub fn state_age(&self, now: Timestamp) -> DurationMs {
        now.since(self.state_changed_at)
    }

    /// How long the current connection has been up (zero when not
    /// connected).
    pub fn uptime(&self, now: Timestamp) -> DurationMs {
        self.connected_since
            .map_or(DurationMs::ZERO, |since| now.since(since))
    }

    /// How long since the session last showed life on its connection: the
    /// latest heartbeat, or the moment it connected if that is later.
    /// `None` when it never connected nor sent a heartbeat.
    pub fn heartbeat_age(&self, now: Timestamp) -> Option<DurationMs> {
        let reference = self.heartbeat.last_at.max(self.connected_since)?;
        Some(now.since(reference))
    }

    /// Since when the heartbeat rules (HEARTBEAT_STALE, HEARTBEAT_DEAD)
    /// measure silence, or `None` when they do not judge this session:
    /// the latest heartbeat or connect for a session expected to send
    /// keepalives (the default); for a source that said it sends none,
    /// only a failing keepalive (`heartbeat_failed`) counts, from when it
    /// started failing.
    pub fn keepalive_reference(&self) -> Option<Timestamp> {
        if !self.liveness.keepalives_off {
            self.heartbeat.last_at.max(self.connected_since)
        } else {
            self.liveness.keepalive_failing_since
        }
    }

    /// Missed heartbeats within the configured window.
    pub fn missed_heartbeats(&self, t: &Thresholds, now: Timestamp) -> u32 {
        self.heartbeat.missed.count(now, t.missed_heartbeat_window)
    }

    /// Validation failures within the configured window.
    pub fn validation_failures(&self, t: &Thresholds, now: Timestamp) -> u32 {
        self.integrity.failures.count(now, t.validation_window)
    }

    /// Folds one event into the session. Events for other sessions and
    /// platform counters/gauges only advance the bookkeeping. Returns what
    /// an ack measured, when it counted.
    pub fn apply(&mut self, event: &Event, t: &Thresholds) -> Option<AckTiming> {
        let at = event.at;
        self.events += 1;
        self.last_event_at = self.last_event_at.max(at);
        match &event.kind {
            EventKind::State { state, reason } => self.apply_state(*state, reason, at, t),
            EventKind::Heartbeat { rtt_ms } => self.apply_heartbeat(*rtt_ms, at, t),
            EventKind::HeartbeatFailed => {
                // One missed beat per failing episode: whatsmeow reports
                // every failed ping until the keepalive is restored.
                if self.liveness.keepalive_failing_since.is_none()
                    && self.heartbeat.last_at.is_none_or(|last| at >= last)
                {
                    self.liveness.keepalive_failing_since = Some(at);
                    self.heartbeat
                        .missed
                        .record(at, 1, t.missed_heartbeat_window);
                    self.heartbeat.missed_total += 1;
                }
            }
            EventKind::Keepalives { expected } => {
                if self
                    .liveness
                    .keepalives_set_at
                    .is_none_or(|prev| at >= prev)
                {
                    self.liveness.keepalives_set_at = Some(at);
                    self.liveness.keepalives_off = !*expected;
                } else {
                    self.late_events += 1;
                }
            }
            EventKind::Auth { method } => {
                if self.auth_at.is_none_or(|prev| at >= prev) {
                    self.auth_at = Some(at);
                    self.auth_method = Some(*method);
                } else {
                    self.late_events += 1;
                }
            }
            EventKind::CredentialsWritten { store } => {
                if self.credentials_written_at.is_none_or(|prev| at >= prev) {
                    self.credentials_written_at = Some(at);
                    self.credentials_store = store.clone();
                } else {
                    self.late_events += 1;
                }
            }
            EventKind::Validation { valid, detail } => self.apply_validation(*valid, detail, at, t),
            EventKind::LockAcquired { held_by, operation } => {
                if self.lock_changed_at.is_none_or(|prev| at >= prev) {
                    self.lock_changed_at = Some(at);
                    self.lock = Some(Lock {
                        held_by: held_by.clone(),
                        operation: operation.clone(),
                        since: at,
                    });
                } else {
                    self.late_events += 1;
                }
            }
            EventKind::LockReleased { .. } => {
                if self.lock_changed_at.is_none_or(|prev| at >= prev) {
                    self.lock_changed_at = Some(at);
                    self.lock = None;
                } else {
                    self.late_events += 1;
                }
            }
            EventKind::CircuitBreaker {
                open,
                consecutive_failures,
            } => {
                if self.breaker.changed_at.is_none_or(|prev| at >= prev) {
                    self.set_breaker(*open, at);
                    if let Some(n) = consecutive_failures {
                        self.breaker.consecutive_failures = *n;
                    }
                } else {
                    self.late_events += 1;
                }
            }
            EventKind::Message {
                direction,
                count,
                ids,
            } => match direction {
                Direction::Inbound => {
                    self.traffic.inbound += u64::from(*count);
                    self.liveness
                        .inbound
                        .record(*count, at, t.inbound_baseline_window);
                }
                Direction::Outbound => {
                    let new = if ids.is_empty() && self.delivery.is_none() {
                        *count
                    } else {
                        self.delivery.get_or_insert_default().send(
                            ids,
                            *count,
                            at,
                            t.delivery_failure_window,
                        )
                    };
                    self.traffic.outbound += u64::from(new);
                }
            },
            EventKind::Ack {
                message,
                status,
                code,
                ..
            } => {
                return self.delivery.get_or_insert_default().ack(
                    message,
                    *status,
                    *code,
                    at,
                    t.delivery_failure_window,
                );
            }
            EventKind::Restriction {
                code,
                until,
                lifted,
            } => {
                let delivery = self.delivery.get_or_insert_default();
                if *lifted {
                    delivery.lift();
                } else {
                    delivery.restrict(
                        RestrictionKind::of_reported(code.as_str()),
                        *code,
                        at,
                        *until,
                    );
                }
            }
            EventKind::Quality {
                event,
                tier,
                rating,
            } => self
                .delivery
                .get_or_insert_default()
                .report_quality(Quality {
                    event: event.clone(),
                    tier: tier.clone(),
                    rating: rating.clone(),
                    at,
                }),
            EventKind::Error { .. } => self.traffic.errors += 1,
            // The fleet takes these: a retire removes the session.
            EventKind::Counter { .. } | EventKind::Gauge { .. } | EventKind::Retire { .. } => {}
            EventKind::Labels { labels } => {
                // Bounded whatever arrives; the service refuses a batch
                // that would go past the bound before it is accepted.
                self.labels.apply(labels);
            }
        }
        None
    }

    fn set_breaker(&mut self, open: bool, at: Timestamp) {
        if open && !self.breaker.open {
            self.breaker.since = Some(at);
        }
        if !open {
            self.breaker.since = None;
            self.breaker.consecutive_failures = 0;
        }
        self.breaker.open = open;
        self.breaker.changed_at = Some(at);
    }

    fn apply_state(
        &mut self,
        new: SessionState,
        reason: &Option<Box<str>>,
        at: Timestamp,
        t: &Thresholds,
    ) {
        if let (false, Some(reason)) = (new == SessionState::Connected, reason) {
            // Counted whenever it happened (a late close is still a close),
            // but once per close: the same state with the same reason again
            // (a gateway repeating itself) is no new one.
            let repeat = self.state_seen
                && self.state == new
                && self.state_reason.as_deref() == Some(&**reason);
            if !repeat && DisconnectReason::read(reason).is_conflict() {
                self.liveness
                    .conflicts
                    .get_or_insert_with(Default::default)
                    .record(at, 1, t.session_conflict_window);
                self.liveness.conflicts_total += 1;
            }
        }
        if !self.state_seen {
            // The first real state: the assumed `connecting` was no state
            // change, so the session's history starts here.
            self.state_seen = true;
            self.state_changed_at = at;
            self.first_seen = self.first_seen.min(at);
            self.down_since = Some(at);
        } else if at < self.state_changed_at {
            // Kept in the journal for history; the current state is newer.
            self.late_events += 1;
            return;
        }
        let prev = self.state;
        match new {
            SessionState::Reconnecting => {
                if !self.reconnect.in_progress {
                    self.reconnect.in_progress = true;
                    self.reconnect.started_at = Some(at);
                    self.reconnect.attempts = 0;
                }
                self.reconnect.attempts = self.reconnect.attempts.saturating_add(1);
                self.reconnect.total_attempts += 1;
            }
            SessionState::Connected => {
                if self.reconnect.in_progress {
                    let took = self
                        .reconnect
                        .started_at
                        .map_or(DurationMs::ZERO, |start| at.since(start));
                    self.reconnect.last_duration = Some(took);
                    self.reconnect
                        .recent
                        .push(u32::try_from(took.as_millis()).unwrap_or(u32::MAX));
                    self.reconnect.completed += 1;
                }
                self.reconnect.in_progress = false;
                self.reconnect.started_at = None;
                self.reconnect.attempts = 0;
                self.breaker.consecutive_failures = 0;
                if self.breaker.open {
                    self.set_breaker(false, at);
                }
                self.init_successful = true;
                self.down_since = None;
                if prev != SessionState::Connected {
                    self.connected_since = Some(at);
                }
            }
            SessionState::CircuitOpen if !self.breaker.open => self.set_breaker(true, at),
            _ => {}
        }
        if new != SessionState::Connected && prev == SessionState::Connected {
            self.connected_since = None;
            self.down_since = Some(at);
        }
        if new != prev {
            self.state = new;
            self.state_changed_at = at;
        }
        self.state_reason = reason.clone();
        if let (false, Some(reason)) = (new == SessionState::Connected, reason) {
            self.liveness.last_disconnect = Some(LastDisconnect {
                reason: reason.clone(),
                at,
            });
        }
        if new == SessionState::Connected && prev != SessionState::Connected {
            // A new connection: whatever failed on the last one is over.
            self.liveness.keepalive_failing_since = None;
        }
        self.liveness.inbound.set_connected(
            new == SessionState::Connected,
            at,
            t.inbound_baseline_window,
        );
    }

    fn apply_heartbeat(&mut self, rtt_ms: Option<u32>, at: Timestamp, t: &Thresholds) {
        self.heartbeat.count += 1;
        if self.heartbeat.last_at.is_some_and(|last| at < last) {
            // A late heartbeat never makes `lastAt` older.
            self.late_events += 1;
            return;
        }
        if self
            .liveness
            .keepalive_failing_since
            .is_some_and(|since| at >= since)
        {
            self.liveness.keepalive_failing_since = None;
        }
        // Gaps are measured on the connection: from the previous heartbeat
        // or from the moment of connecting, whichever is later, so a long
        // disconnection is not counted as hundreds of missed beats. A
        // source that sends no regular keepalives has no gaps to count.
        if !self.liveness.keepalives_off
            && let Some(reference) = self.heartbeat.last_at.max(self.connected_since)
        {
            let gap = at.since(reference).as_millis();
            let interval = t.heartbeat_interval.as_millis();
            if gap.saturating_mul(2) > interval.saturating_mul(3) {
                let missed = u32::try_from(gap / interval).unwrap_or(u32::MAX);
                self.heartbeat
                    .missed
                    .record(at, missed, t.missed_heartbeat_window);
                self.heartbeat.missed_total += u64::from(missed);
            }
        }
        self.heartbeat.last_at = Some(at);
        if rtt_ms.is_some() {
            self.heartbeat.last_rtt_ms = rtt_ms;
        }
    }

    fn apply_validation(
        &mut self,
        valid: bool,
        detail: &Option<Box<str>>,
        at: Timestamp,
        t: &Thresholds,
    ) {
        if !valid {
            self.integrity.failures.record(at, 1, t.validation_window);
            self.integrity.failures_total += 1;
        }
        if self.integrity.last_check_at.is_some_and(|last| at < last) {
            self.late_events += 1;
            return;
        }
        self.integrity.last_check_at = Some(at);
        self.integrity.last_detail = detail.clone();
        if valid {
            self.integrity.checksum_valid = true;
            self.integrity.corrupted_at = None;
        } else {
            if self.integrity.checksum_valid {
                self.integrity.corrupted_at = Some(at);
            }
            self.integrity.checksum_valid = false;
        }
    }
}
