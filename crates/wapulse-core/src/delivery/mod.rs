//! What a session's sends became: delivery acks, the outstanding window,
//! failures by code and account restrictions.
//!
//! A session gets a [`Delivery`] the first time it sends a message with
//! ids or receives an ack; a session that never sends costs one pointer.
//!
//! Here: `Delivery` and the following of messages; `code` (ack status,
//! error codes), `restriction`, `quality`, `minutes` (the failure window),
//! `latency` (ack timings, the fleet's histograms).
//!
//! # Following messages
//! A send with ids puts each id in the *followed* set with its send time,
//! stage `pending`. Acks move it forward (`server` → `delivered` → `read`,
//! `played` counting as read); an error ack makes it `failed` (no longer
//! pending). The counts are cumulative and a message is counted once per
//! stage, whatever arrives: a delivered ack for a pending message counts it
//! server-acked too, a late server ack after it changes nothing, a repeated
//! ack changes nothing. A read (or played) or failed message is done and
//! leaves the set.
//!
//! Ids are kept as a 64-bit SipHash (fixed keys: the same on every replica
//! and every release), so a followed message costs 24 bytes whatever the
//! gateway's id looks like.
//!
//! # Bounds
//! - At most [`MAX_FOLLOWED`] messages are followed. When a send finds the
//!   set full, the oldest message that is no longer pending is forgotten (a
//!   later ack for it is unknown); when every followed message is still
//!   pending, the new send is counted in `sent` and `untracked` but not
//!   followed: the oldest outstanding messages stay, so a stall is still
//!   judged at its bar.
//! - An ack for an id wapulse does not follow changes no count or latency.
//!   The most recent [`MAX_EARLY_ACKS`] of them are remembered for a while
//!   ([`EARLY_ACK_TTL`]): a send that arrives after its own ack (webhooks
//!   race) takes it then.
//! - Error acks by code: the newest [`MAX_RECENT_ERRORS`] within the
//!   failure window; sends and errors per minute over the window.
//!
//! # Restrictions
//! An error code that means WhatsApp restricted the account (see
//! [`RestrictionKind::from_code`]) marks the restriction, for a followed
//! message or not (codes are facts about the account). It lifts at its
//! expiry when known, or when a message sent after it is delivered.

mod code;
mod latency;
mod minutes;
mod quality;
mod restriction;

use std::collections::VecDeque;
use std::hash::Hasher;

use serde::{Deserialize, Serialize};

use crate::time::{DurationMs, Timestamp};
use crate::window::{Percentiles, RecentSamples};

pub use code::{AckStatus, ErrorCode};
pub use latency::{AckLatencies, AckTiming, LATENCY_BUCKETS_MS, LatencyHistogram};
use minutes::Minutes;
pub use quality::{Quality, QualityVerdict};
pub use restriction::{Restriction, RestrictionKind};

/// Most messages followed per session.
pub const MAX_FOLLOWED: usize = 1024;
/// Most acks for unknown ids remembered per session.
pub const MAX_EARLY_ACKS: usize = 32;
/// How long an ack for an unknown id waits for its send.
pub const EARLY_ACK_TTL: DurationMs = DurationMs::from_mins(10);
/// Most error acks kept for the by-code figures.
pub const MAX_RECENT_ERRORS: usize = 64;
/// Most distinct codes counted over a session's life (the metric's
/// `code` label).
pub const MAX_ERROR_CODES: usize = 16;
/// Longest error code (`463`, `131048`, `SMB_TOS_BLOCK`).
pub const MAX_CODE_LEN: usize = 24;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Stage {
    Pending,
    Server,
    Delivered,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Followed {
    key: u64,
    sent_at: Timestamp,
    stage: Stage,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct EarlyAck {
    key: u64,
    status: AckStatus,
    at: Timestamp,
    code: Option<ErrorCode>,
}

/// A session's delivery figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    sent: u64,
    server_acked: u64,
    delivered: u64,
    read: u64,
    failed: u64,
    untracked: u64,
    followed: VecDeque<Followed>,
    early: VecDeque<EarlyAck>,
    last_ack_at: Option<Timestamp>,
    to_server: RecentSamples,
    to_delivered: RecentSamples,
    minutes: Minutes,
    recent_errors: VecDeque<(Timestamp, ErrorCode)>,
    last_error_at: Option<Timestamp>,
    restriction: Option<Restriction>,
    errors_total: Vec<(ErrorCode, u64)>,
    quality: Option<Quality>,
}

/// The stall verdict's inputs: the outstanding messages sent since the
/// last ack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outstanding {
    /// How many.
    pub count: u32,
    /// The oldest one's send time.
    pub oldest: Timestamp,
}

/// The failure verdict's inputs, over the failure window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failures {
    /// Sends in the window.
    pub sends: u64,
    /// Error acks in the window.
    pub errors: u64,
    /// The most frequent codes among the recent errors, most first.
    pub top: [Option<ErrorCode>; 2],
}

impl Failures {
    /// Errors as a share of sends (errors when there were fewer sends in
    /// the window: acks for older sends), between 0 and 1.
    pub fn share(&self) -> f64 {
        if self.errors == 0 {
            0.0
        } else {
            self.errors as f64 / self.sends.max(self.errors) as f64
        }
    }
}

/// The stable key of a gateway message id.
pub fn message_key(id: &str) -> u64 {
    let mut h =
        siphasher::sip::SipHasher13::new_with_keys(0x7761_7075_6c73_6531, 0x6163_6b73_0000_0001);
    h.write(id.as_bytes());
    h.finish()
}

impl Delivery {
    /// Messages sent (with or without ids).
    pub fn sent(&self) -> u64 {
        self.sent
    }
    /// Messages WhatsApp's server took (delivered and read ones too).
    pub fn server_acked(&self) -> u64 {
        self.server_acked
    }
    /// Messages delivered (read ones too).
    pub fn delivered(&self) -> u64 {
        self.delivered
    }
    /// Messages read or played.
    pub fn read(&self) -> u64 {
        self.read
    }
    /// Messages the server refused (error acks of followed messages).
    pub fn failed(&self) -> u64 {
        self.failed
    }
    /// Sends that were not followed (no ids, or the followed set was full
    /// of pending messages).
    pub fn untracked(&self) -> u64 {
        self.untracked
    }
    /// Followed messages still waiting for the server.
    pub fn pending(&self) -> u64 {
        self.followed
            .iter()
            .filter(|f| f.stage == Stage::Pending)
            .count() as u64
    }
    /// The oldest pending message's send time.
    pub fn oldest_pending(&self) -> Option<Timestamp> {
        self.followed
            .iter()
            .filter(|f| f.stage == Stage::Pending)
            .map(|f| f.sent_at)
            .min()
    }
    /// Time from send to server ack (ms), over the recent acks.
    pub fn time_to_server(&self) -> Option<Percentiles> {
        self.to_server.percentiles()
    }
    /// Time from send to delivered (ms), over the recent acks.
    pub fn time_to_delivered(&self) -> Option<Percentiles> {
        self.to_delivered.percentiles()
    }
    /// The latest error ack.
    pub fn last_error_at(&self) -> Option<Timestamp> {
        self.last_error_at
    }
    /// The restriction in force at `now`, if any.
    pub fn restriction(&self, now: Timestamp) -> Option<&Restriction> {
        self.restriction
            .as_ref()
            .filter(|r| r.until.is_none_or(|until| now < until))
    }
    /// The latest server (or error) ack of any message.
    pub fn last_ack_at(&self) -> Option<Timestamp> {
        self.last_ack_at
    }

    /// Error acks by code within `window` before `now` (the newest
    /// [`MAX_RECENT_ERRORS`]), in code order.
    pub fn errors_by_code(&self, now: Timestamp, window: DurationMs) -> Vec<(ErrorCode, u32)> {
        let horizon = now.minus(window);
        let mut out: Vec<(ErrorCode, u32)> = Vec::new();
        for (at, code) in &self.recent_errors {
            if *at > horizon && *at <= now {
                match out.iter_mut().find(|(c, _)| c == code) {
                    Some((_, n)) => *n += 1,
                    None => out.push((*code, 1)),
                }
            }
        }
        out.sort();
        out
    }

    /// The outstanding messages the stall rule judges at `now`: pending,
    /// sent since the last ack of any message; `None` when there are none.
    pub fn outstanding(&self) -> Option<Outstanding> {
        let reference = self.last_ack_at;
        let mut count = 0u32;
        let mut oldest: Option<Timestamp> = None;
        for f in &self.followed {
            if f.stage == Stage::Pending && reference.is_none_or(|r| f.sent_at >= r) {
                count += 1;
                oldest = Some(oldest.map_or(f.sent_at, |o| o.min(f.sent_at)));
            }
        }
        oldest.map(|oldest| Outstanding { count, oldest })
    }

    /// Sends and errors within `window` before `now`, with the top codes.
    pub fn failures(&self, now: Timestamp, window: DurationMs) -> Failures {
        let (sends, errors) = self.minutes.totals(now, window);
        let mut by_code = self.errors_by_code(now, window);
        by_code.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Failures {
            sends,
            errors,
            top: [by_code.first().map(|c| c.0), by_code.get(1).map(|c| c.0)],
        }
    }

    /// When the failure figures next drop with no event.
    pub fn next_failure_expiry(&self, now: Timestamp, window: DurationMs) -> Option<Timestamp> {
        self.minutes.next_error_expiry(now, window)
    }

    /// `count` messages were sent at `at`, `ids` among them (`count` is at
    /// least `ids.len()`). Returns how many were new: an id already
    /// followed is the same message reported again.
    pub fn send(&mut self, ids: &[Box<str>], count: u32, at: Timestamp, window: DurationMs) -> u32 {
        let mut repeated = 0u32;
        for id in ids {
            let key = message_key(id);
            if self.followed.iter().rev().any(|f| f.key == key) {
                repeated += 1;
                continue;
            }
            self.follow(key, at, window);
        }
        let without_ids = count.saturating_sub(ids.len() as u32);
        self.untracked += u64::from(without_ids);
        let new = count.saturating_sub(repeated);
        self.sent += u64::from(new);
        self.minutes.record(at, new, 0, window);
        new
    }

    fn follow(&mut self, key: u64, at: Timestamp, window: DurationMs) {
        if self.followed.len() >= MAX_FOLLOWED {
            match self.followed.iter().position(|f| f.stage != Stage::Pending) {
                Some(i) => {
                    self.followed.remove(i);
                }
                None => {
                    self.untracked += 1;
                    return;
                }
            }
        }
        self.followed.push_back(Followed {
            key,
            sent_at: at,
            stage: Stage::Pending,
        });
        // Its ack may have come first.
        let horizon = at.minus(EARLY_ACK_TTL);
        let early: Vec<EarlyAck> = self
            .early
            .iter()
            .filter(|e| e.key == key && e.at >= horizon)
            .copied()
            .collect();
        if !early.is_empty() {
            self.early.retain(|e| e.key != key);
            let index = self.followed.len() - 1;
            for e in early {
                // A read or failed message is done: later acks are repeats.
                if self.followed.get(index).is_none_or(|f| f.key != key) {
                    break;
                }
                self.advance(index, e.status, e.at, e.code, window);
            }
        }
    }

    /// When message `id` was sent, while it is followed.
    pub fn sent_at(&self, id: &str) -> Option<Timestamp> {
        let key = message_key(id);
        self.followed
            .iter()
            .rev()
            .find(|f| f.key == key)
            .map(|f| f.sent_at)
    }

    /// An ack for message `id` at `at`. Returns what it measured when it
    /// changed a count (an unknown id, a repeat or a late ack does not).
    pub fn ack(
        &mut self,
        id: &str,
        status: AckStatus,
        code: Option<ErrorCode>,
        at: Timestamp,
        window: DurationMs,
    ) -> Option<AckTiming> {
        if status == AckStatus::Error
            && let Some(kind) = code.and_then(|c| RestrictionKind::from_code(c.as_str()))
        {
            self.restrict(kind, code.unwrap_or(ErrorCode::UNKNOWN), at, None);
        }
        let key = message_key(id);
        match self.followed.iter().rposition(|f| f.key == key) {
            Some(index) => self.advance(index, status, at, code, window),
            None => {
                if self.early.len() >= MAX_EARLY_ACKS {
                    self.early.pop_front();
                }
                self.early.push_back(EarlyAck {
                    key,
                    status,
                    at,
                    code,
                });
                None
            }
        }
    }

    /// The number's quality, when reported.
    pub fn quality(&self) -> Option<&Quality> {
        self.quality.as_ref()
    }

    /// Records a quality report; an older one than held changes nothing.
    pub fn report_quality(&mut self, quality: Quality) {
        if self.quality.as_ref().is_none_or(|q| quality.at >= q.at) {
            self.quality = Some(quality);
        }
    }

    /// Lifts the restriction in force (a gateway said it is over).
    pub fn lift(&mut self) {
        self.restriction = None;
    }

    /// Marks a restriction (an error code, or a gateway's own report).
    pub fn restrict(
        &mut self,
        kind: RestrictionKind,
        code: ErrorCode,
        at: Timestamp,
        until: Option<Timestamp>,
    ) {
        match &mut self.restriction {
            Some(r) if r.kind == kind && r.until.is_none_or(|u| at < u) => {
                r.code = code;
                r.since = r.since.min(at);
                r.until = until.or(r.until).max(until);
            }
            other => {
                *other = Some(Restriction {
                    kind,
                    code,
                    since: at,
                    until,
                })
            }
        }
    }

    /// Moves followed message `index` forward; returns what it measured
    /// when a count changed.
    fn advance(
        &mut self,
        index: usize,
        status: AckStatus,
        at: Timestamp,
        code: Option<ErrorCode>,
        window: DurationMs,
    ) -> Option<AckTiming> {
        let Followed { sent_at, stage, .. } = self.followed[index];
        let took = u32::try_from(at.since(sent_at).as_millis()).unwrap_or(u32::MAX);
        let mut timing = AckTiming::default();
        self.last_ack_at = self.last_ack_at.max(Some(at));
        match status {
            AckStatus::Server => {
                if stage != Stage::Pending {
                    return None;
                }
                self.server_acked += 1;
                self.to_server.push(took);
                timing.to_server = Some(took);
                self.followed[index].stage = Stage::Server;
            }
            AckStatus::Delivered => {
                if stage == Stage::Delivered {
                    return None;
                }
                if stage == Stage::Pending {
                    self.server_acked += 1;
                }
                self.delivered += 1;
                self.to_delivered.push(took);
                timing.to_delivered = Some(took);
                self.followed[index].stage = Stage::Delivered;
                self.lift_after(sent_at);
            }
            AckStatus::Read | AckStatus::Played => {
                if stage == Stage::Pending {
                    self.server_acked += 1;
                }
                if stage != Stage::Delivered {
                    self.delivered += 1;
                }
                self.read += 1;
                self.followed.remove(index);
                self.lift_after(sent_at);
            }
            AckStatus::Error => {
                self.failed += 1;
                self.followed.remove(index);
                let code = code.unwrap_or(ErrorCode::UNKNOWN);
                self.last_error_at = self.last_error_at.max(Some(at));
                self.minutes.record(at, 0, 1, window);
                if self.recent_errors.len() >= MAX_RECENT_ERRORS {
                    self.recent_errors.pop_front();
                }
                self.recent_errors.push_back((at, code));
                let horizon = self.last_error_at.unwrap_or(at).minus(window);
                self.recent_errors.retain(|(t, _)| *t > horizon);
                // Past the bound, new codes are counted as `other`.
                let code = if self.errors_total.iter().any(|(c, _)| *c == code)
                    || self.errors_total.len() < MAX_ERROR_CODES - 1
                {
                    code
                } else {
                    ErrorCode::OTHER
                };
                match self.errors_total.iter_mut().find(|(c, _)| *c == code) {
                    Some((_, n)) => *n += 1,
                    None => self.errors_total.push((code, 1)),
                }
            }
        }
        Some(timing)
    }

    /// Error acks over the session's life, by code (at most
    /// [`MAX_ERROR_CODES`] entries: past that, new codes count as `other`).
    pub fn errors_total(&self) -> &[(ErrorCode, u64)] {
        &self.errors_total
    }

    /// A message sent after the restriction began was delivered: it lifted.
    fn lift_after(&mut self, sent_at: Timestamp) {
        if self.restriction.is_some_and(|r| sent_at >= r.since) {
            self.restriction = None;
        }
    }
}
