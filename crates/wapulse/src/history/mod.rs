//! Built-in history: what the fleet and each session did over time,
//! without Prometheus (issue 31).
//!
//! Everything here is derived from the log, in the writer's transaction:
//! each commit's events add to the history in the same SQLite transaction
//! as their journal records ([`Derived::of`], written by the store), so
//! history is exactly as durable as the events themselves, and every
//! cluster replica, applying the same log, writes the same rows.
//!
//! - **State changes** (`state_changes`): every change of a session's
//!   state, its first sighting (the assumed `connecting` of a session's
//!   earliest event) and its retirement, in event time. Availability is
//!   computed from these exact intervals
//!   ([`wapulse_core::availability`]), never from samples.
//! - **Fleet counts** (`fleet_minutes`, `fleet_hours`): events accepted and
//!   messages in and out, bucketed by event time.
//! - **Fleet states** (`fleet_states`): sessions by state as of the last
//!   commit of each minute (by receive time).
//! - **Session hours** (`session_hours`): one row per session and hour in
//!   which it passed messages, missed heartbeats, reported a round trip or
//!   started a reconnect; a steady session writes none.
//! - **Levels** (`level_minutes`): sessions by level and alerts firing,
//!   sampled once a minute from the evaluator.
//!
//! Reads ([`HistoryReader`]) run on blocking threads over the store's
//! read-only connection.

pub mod read;
pub mod recent;
pub mod sqlite;

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use wapulse_core::availability::{Availability, Phase, Timeline};
use wapulse_core::{
    AckStatus, Direction, DurationMs, Event, EventKind, FleetSnapshot, SessionId, SessionState,
    Timestamp,
};

pub use read::{FleetPoint, HistoryReader, LevelSample, SessionHour};

/// How long history is kept (`history_minutes_retention`,
/// `history_retention`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Minute rows (fleet counts, states, levels).
    pub minutes: DurationMs,
    /// Hour rows and state changes.
    pub hours: DurationMs,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            minutes: DurationMs::from_hours(14 * 24),
            hours: DurationMs::from_hours(400 * 24),
        }
    }
}

/// One minute, in milliseconds.
pub const MINUTE_MS: i64 = 60_000;
/// One hour, in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;

/// The stored code of a phase: a state's index, 100 for retired, 101 for
/// a sighting.
pub fn phase_code(phase: Phase) -> i64 {
    match phase {
        Phase::In(state) => state.index() as i64,
        Phase::Retired => 100,
        Phase::Seen => 101,
    }
}

/// The phase a stored code names (`None`: a code this version does not
/// know, skipped by readers).
pub fn phase_of(code: i64) -> Option<Phase> {
    match code {
        100 => return Some(Phase::Retired),
        101 => return Some(Phase::Seen),
        _ => {}
    }
    usize::try_from(code)
        .ok()
        .and_then(|i| SessionState::ALL.get(i).copied())
        .map(Phase::In)
}

/// The start of the bucket of `step_ms` holding `at`.
pub fn bucket(at: Timestamp, step_ms: i64) -> i64 {
    at.as_millis().div_euclid(step_ms) * step_ms
}

/// Counts of one fleet bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Events accepted.
    pub events: u64,
    /// Messages received.
    pub messages_in: u64,
    /// Messages sent.
    pub messages_out: u64,
    /// Sends WhatsApp's server took (one tick).
    pub acks_server: u64,
    /// Sends delivered to the recipient's device (two ticks).
    pub acks_delivered: u64,
    /// Sends read or played.
    pub acks_read: u64,
    /// Sends WhatsApp refused (an `error` ack).
    pub sends_failed: u64,
}

impl Counts {
    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &Counts) {
        self.events += other.events;
        self.messages_in += other.messages_in;
        self.messages_out += other.messages_out;
        self.acks_server += other.acks_server;
        self.acks_delivered += other.acks_delivered;
        self.acks_read += other.acks_read;
        self.sends_failed += other.sends_failed;
    }
}

/// What one session added to one hour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HourFigures {
    /// Messages received.
    pub messages_in: u64,
    /// Messages sent.
    pub messages_out: u64,
    /// Keepalives that went unanswered.
    pub heartbeats_missed: u64,
    /// Sum of the round trips reported, in milliseconds.
    pub rtt_sum_ms: u64,
    /// Round trips reported.
    pub rtt_count: u64,
    /// Reconnects started.
    pub reconnects: u64,
    /// Sends acknowledged as delivered.
    pub acks_delivered: u64,
    /// Sends WhatsApp refused.
    pub sends_failed: u64,
    /// Sum of the times from a send to its delivered ack (ms).
    pub delivery_ms_sum: u64,
    /// Sends whose delivery time was measured.
    pub delivery_count: u64,
}

impl HourFigures {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Adds `other` to these figures.
    pub fn add(&mut self, other: &HourFigures) {
        self.messages_in += other.messages_in;
        self.messages_out += other.messages_out;
        self.heartbeats_missed += other.heartbeats_missed;
        self.rtt_sum_ms += other.rtt_sum_ms;
        self.rtt_count += other.rtt_count;
        self.reconnects += other.reconnects;
        self.acks_delivered += other.acks_delivered;
        self.sends_failed += other.sends_failed;
        self.delivery_ms_sum += other.delivery_ms_sum;
        self.delivery_count += other.delivery_count;
    }

    /// The mean round trip reported, if any.
    pub fn mean_rtt_ms(&self) -> Option<u64> {
        (self.rtt_count > 0).then(|| self.rtt_sum_ms / self.rtt_count)
    }

    /// The mean time from a send to its delivered ack, if any was measured.
    pub fn mean_delivery_ms(&self) -> Option<u64> {
        (self.delivery_count > 0).then(|| self.delivery_ms_sum / self.delivery_count)
    }
}

/// What one commit adds to the history.
#[derive(Debug, Default)]
pub struct Derived {
    /// State changes, in log order.
    pub changes: Vec<(SessionId, Timestamp, Phase)>,
    /// Fleet counts by minute start.
    pub minutes: HashMap<i64, Counts>,
    /// Fleet counts by hour start.
    pub hours: HashMap<i64, Counts>,
    /// Session figures by (session, hour start).
    pub session_hours: HashMap<(SessionId, i64), HourFigures>,
    /// Sessions by state before this commit, filed under the minute of the
    /// previous commit.
    pub states: Option<(i64, [usize; SessionState::ALL.len()])>,
}

/// What the derivation knows of a session while it walks a commit.
#[derive(Clone, Copy)]
struct Known {
    exists: bool,
    first_seen: Timestamp,
    state: SessionState,
    state_seen: bool,
    changed_at: Timestamp,
}

impl Derived {
    /// Derives what `events` (a commit's accepted events, in log order) add
    /// to the history, given the fleet `view` before them.
    pub fn of<'a>(view: &FleetSnapshot, events: impl IntoIterator<Item = &'a Event>) -> Self {
        let mut out = Derived::default();
        let mut known: HashMap<SessionId, Known> = HashMap::new();
        for event in events {
            // A delivered ack of a send the fleet follows: how long it took
            // (a send in this same commit is not known yet, and not timed).
            let delivery_ms = match &event.kind {
                EventKind::Ack {
                    message,
                    status: AckStatus::Delivered,
                    ..
                } => view
                    .get(event.session.as_str())
                    .and_then(|s| s.delivery.as_ref()?.sent_at(message))
                    .filter(|sent| *sent <= event.at)
                    .map(|sent| event.at.since(sent).as_millis()),
                _ => None,
            };
            out.count(event, delivery_ms);
            if matches!(
                event.kind,
                EventKind::Counter { .. } | EventKind::Gauge { .. }
            ) {
                // Platform figures: no session is created or changed.
                continue;
            }
            let k = match known.entry(event.session.clone()) {
                Entry::Occupied(o) => o.into_mut(),
                Entry::Vacant(v) => v.insert(match view.get(event.session.as_str()) {
                    // A session created ahead of its events (the default
                    // one) is first seen at its first event.
                    Some(s) if s.events > 0 => Known {
                        exists: true,
                        first_seen: s.first_seen,
                        state: s.state,
                        state_seen: s.state_seen,
                        changed_at: s.state_changed_at,
                    },
                    _ => Known {
                        exists: false,
                        first_seen: event.at,
                        state: SessionState::Connecting,
                        state_seen: false,
                        changed_at: event.at,
                    },
                }),
            };
            let session = &event.session;
            if let EventKind::Retire { .. } = event.kind {
                if k.exists {
                    out.changes
                        .push((session.clone(), event.at, Phase::Retired));
                    k.exists = false;
                }
                continue;
            }
            if !k.exists || event.at < k.first_seen {
                // Observed from its earliest event (in the assumed
                // `connecting` until a state says otherwise).
                out.changes.push((session.clone(), event.at, Phase::Seen));
                if !k.exists {
                    *k = Known {
                        exists: true,
                        first_seen: event.at,
                        state: SessionState::Connecting,
                        state_seen: false,
                        changed_at: event.at,
                    };
                }
                k.first_seen = k.first_seen.min(event.at);
            }
            if let EventKind::State { state, .. } = event.kind {
                let applies = !k.state_seen || event.at >= k.changed_at;
                if !applies {
                    // Late: it takes its place in the timeline.
                    out.changes
                        .push((session.clone(), event.at, Phase::In(state)));
                } else if !k.state_seen || state != k.state {
                    out.changes
                        .push((session.clone(), event.at, Phase::In(state)));
                    k.state = state;
                    k.changed_at = event.at;
                    k.state_seen = true;
                }
            }
        }
        out
    }

    fn count(&mut self, event: &Event, delivery_ms: Option<u64>) {
        let minute = bucket(event.at, MINUTE_MS);
        let hour = bucket(event.at, HOUR_MS);
        let mut c = Counts {
            events: 1,
            ..Counts::default()
        };
        match &event.kind {
            EventKind::Message {
                direction, count, ..
            } => match direction {
                Direction::Inbound => c.messages_in = u64::from(*count),
                Direction::Outbound => c.messages_out = u64::from(*count),
            },
            EventKind::Ack { status, .. } => match status {
                AckStatus::Server => c.acks_server = 1,
                AckStatus::Delivered => c.acks_delivered = 1,
                AckStatus::Read | AckStatus::Played => c.acks_read = 1,
                AckStatus::Error => c.sends_failed = 1,
            },
            _ => {}
        }
        self.minutes.entry(minute).or_default().add(&c);
        self.hours.entry(hour).or_default().add(&c);
        let mut figures = HourFigures {
            messages_in: c.messages_in,
            messages_out: c.messages_out,
            acks_delivered: c.acks_delivered,
            sends_failed: c.sends_failed,
            delivery_ms_sum: delivery_ms.unwrap_or(0),
            delivery_count: u64::from(delivery_ms.is_some()),
            ..HourFigures::default()
        };
        match event.kind {
            EventKind::HeartbeatFailed => figures.heartbeats_missed = 1,
            EventKind::Heartbeat { rtt_ms: Some(rtt) } => {
                figures.rtt_sum_ms = u64::from(rtt);
                figures.rtt_count = 1;
            }
            EventKind::State {
                state: SessionState::Reconnecting,
                ..
            } => figures.reconnects = 1,
            _ => {}
        }
        if figures.is_empty() {
            return;
        }
        self.session_hours
            .entry((event.session.clone(), hour))
            .or_default()
            .add(&figures);
    }

    /// Whether the commit adds nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
            && self.minutes.is_empty()
            && self.session_hours.is_empty()
            && self.states.is_none()
    }
}

/// Availability ranked: per label value, and the sessions below a target.
#[derive(Debug, Default)]
pub struct Ranked {
    /// Per label value (in value order): the sessions' total connected
    /// over total observed time, and how many sessions.
    pub groups: Vec<(String, Availability, usize)>,
    /// Sessions below the target, worst first (at most `limit`); with
    /// `by`, only those with the label.
    pub below: Vec<(String, f64)>,
    /// Sessions below the target, worst first (at most `limit`), labelled
    /// or not: the same pass serves a page that shows both.
    pub fleet_below: Vec<(String, f64)>,
}

/// Whose sessions a read counts, and how much of each one's past.
#[derive(Clone, Copy)]
pub struct Seen<'a> {
    /// Whether it counts the session of this id.
    pub admits: &'a dyn Fn(&str) -> bool,
    /// Only each session's current life, after its last retirement (a
    /// tenant's reads: `Caller::current_life_only`).
    pub current_life: bool,
}

/// `session`'s timeline for `[from, to)`; with `current_life`, only what
/// followed its last retirement ([`Timeline::current_life`]).
pub fn timeline_of_life(
    reader: &dyn HistoryReader,
    session: &wapulse_core::SessionId,
    (from, to): (Timestamp, Timestamp),
    current_life: bool,
) -> Result<Timeline, read::ReadFailed> {
    let timeline = reader.timeline(session, from, to)?;
    Ok(if current_life {
        timeline.current_life()
    } else {
        timeline
    })
}

/// `session`'s hour rows in `[from, to)`; with `current_life`, only the
/// hours begun after its last retirement (the hour it fell in held the
/// life before as well).
pub fn hours_of(
    reader: &dyn HistoryReader,
    session: &wapulse_core::SessionId,
    (from, to): (Timestamp, Timestamp),
    current_life: bool,
) -> Result<Vec<SessionHour>, read::ReadFailed> {
    let mut hours = reader.session_hours(session, from, to)?;
    if current_life && let Some(cut) = reader.retired_at(session)? {
        hours.retain(|h| h.hour_ms > cut.as_millis());
    }
    Ok(hours)
}

/// Ranks every session's availability over `[from, to)`. With `by`, only
/// sessions whose label `by` has a value (`label_of`) count, grouped by it.
pub fn rank(
    reader: &dyn HistoryReader,
    window: (Timestamp, Timestamp, Timestamp),
    by: Option<&str>,
    label_of: &dyn Fn(&str) -> Option<String>,
    seen: Seen<'_>,
    below: f64,
    limit: usize,
) -> Result<Ranked, read::ReadFailed> {
    let (from, to, now) = window;
    let mut groups: std::collections::BTreeMap<String, (Availability, usize)> = Default::default();
    let mut under: Vec<(String, f64)> = Vec::new();
    let mut fleet_under: Vec<(String, f64)> = Vec::new();
    reader.timelines(from, to, &mut |session, timeline| {
        if !(seen.admits)(session) {
            return;
        }
        let timeline = if seen.current_life {
            timeline.current_life()
        } else {
            timeline
        };
        let a = timeline.over(from, to, now);
        if a.observed_ms == 0 {
            return;
        }
        if by.is_some()
            && let Some(share) = a.share()
            && share < below
        {
            fleet_under.push((session.to_owned(), share));
        }
        if by.is_some() {
            let Some(value) = label_of(session) else {
                return;
            };
            let g = groups.entry(value).or_default();
            g.0 = g.0.plus(a);
            g.1 += 1;
        }
        if let Some(share) = a.share()
            && share < below
        {
            under.push((session.to_owned(), share));
        }
    })?;
    let worst_first = |list: &mut Vec<(String, f64)>| {
        list.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        list.truncate(limit);
    };
    worst_first(&mut under);
    if by.is_none() {
        fleet_under = under.clone();
    }
    worst_first(&mut fleet_under);
    Ok(Ranked {
        groups: groups.into_iter().map(|(v, (a, n))| (v, a, n)).collect(),
        below: under,
        fleet_below: fleet_under,
    })
}

/// Alerts firing by code as the history keeps them:
/// `{"LOGGED_OUT": {"warning": 0, "critical": 3}}`.
pub fn alerts_json(by_code: &std::collections::BTreeMap<&str, (u64, u64)>) -> serde_json::Value {
    by_code
        .iter()
        .map(|(code, (w, c))| {
            (
                (*code).to_owned(),
                serde_json::json!({"warning": w, "critical": c}),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Builds a session's timeline from stored rows `(at_ms, phase code)`, in
/// (time, insertion) order.
pub fn timeline_of(rows: impl IntoIterator<Item = (i64, i64)>) -> Timeline {
    let mut timeline = Timeline::default();
    for (at, code) in rows {
        if let Some(phase) = phase_of(code) {
            timeline.add(Timestamp::from_millis(at), phase);
        }
    }
    timeline
}

#[cfg(test)]
mod tests;
