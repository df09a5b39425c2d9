//! What a session's sends became: delivery acks, the outstanding window,
//! failures by code and account restrictions.
//!
//! A session gets a [`Delivery`] the first time it sends a message with
//! ids or receives an ack; a session that never sends costs one pointer.
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

use std::collections::VecDeque;
use std::fmt;
use std::hash::Hasher;

use serde::{Deserialize, Serialize};

use crate::time::{DurationMs, Timestamp};
use crate::window::{Percentiles, RecentSamples};

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

/// What an ack says happened to a sent message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckStatus {
    /// WhatsApp's server took it (one tick).
    Server,
    /// It reached the recipient's device (two ticks).
    Delivered,
    /// The recipient read it.
    Read,
    /// The recipient played it (voice, video).
    Played,
    /// The server refused it.
    Error,
}

impl AckStatus {
    /// Every status, in order.
    pub const ALL: [AckStatus; 5] = [
        AckStatus::Server,
        AckStatus::Delivered,
        AckStatus::Read,
        AckStatus::Played,
        AckStatus::Error,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AckStatus::Server => "server",
            AckStatus::Delivered => "delivered",
            AckStatus::Read => "read",
            AckStatus::Played => "played",
            AckStatus::Error => "error",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// An error code from an error ack (`463`, `429`, `131048`): at most
/// [`MAX_CODE_LEN`] characters of `[A-Za-z0-9_.-]`, held inline.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ErrorCode {
    bytes: [u8; MAX_CODE_LEN],
    len: u8,
}

impl ErrorCode {
    /// The code an error ack without one is counted under.
    pub const UNKNOWN: ErrorCode = ErrorCode::fixed(b"unknown");
    /// The codes past [`MAX_ERROR_CODES`], in the life-long counts.
    pub const OTHER: ErrorCode = ErrorCode::fixed(b"other");

    const fn fixed(text: &[u8]) -> Self {
        let mut bytes = [0u8; MAX_CODE_LEN];
        let mut i = 0;
        while i < text.len() {
            bytes[i] = text[i];
            i += 1;
        }
        Self {
            bytes,
            len: text.len() as u8,
        }
    }

    /// Checks a code, or says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("must not be empty when given".into());
        }
        if text.len() > MAX_CODE_LEN {
            return Err(format!(
                "is {} characters long; an error code has at most {MAX_CODE_LEN}",
                text.chars().count()
            ));
        }
        if let Some(c) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            return Err(format!(
                "\"{text}\" holds {c:?}; an error code is letters, digits, `_`, `.` and `-`"
            ));
        }
        Ok(Self::fixed(text.as_bytes()))
    }

    /// The code's text.
    pub fn as_str(&self) -> &str {
        // Only ASCII was ever stored.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        ErrorCode::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Which restriction WhatsApp put on the account; each needs its own
/// response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestrictionKind {
    /// 463 (`NackCallerReachoutTimelocked`): the account may not start new
    /// chats for a while.
    ReachoutTimelock,
    /// 429 and the Cloud API's 130429 / 131056: sending faster than
    /// allowed.
    RateLimit,
    /// The Cloud API's 131048: too many messages were flagged as spam.
    SpamLimit,
    /// The Cloud API's 368: temporarily blocked for policy violations.
    PolicyBlock,
    /// whatsapp-web.js `TOS_BLOCK` / `SMB_TOS_BLOCK`: banned for breaking
    /// the terms of service.
    TosBlock,
    /// The Cloud API's messaging restrictions (`BIZ_INITIATED_BLOCK`,
    /// `CUSTOMER_INITIATED_BLOCK`, `ADD_NUMBER_BLOCK`), usually with an
    /// expiry.
    MessagingRestricted,
    /// The WhatsApp Business Account is disabled (`WABA_DISABLED`,
    /// `WABA_DISABLE_SCHEDULED`).
    Banned,
    /// A restriction a gateway reported under a code wapulse does not name.
    Other,
}

impl RestrictionKind {
    /// The restriction an error code means, if it means one.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "463" => RestrictionKind::ReachoutTimelock,
            "429" | "130429" | "131056" => RestrictionKind::RateLimit,
            "131048" => RestrictionKind::SpamLimit,
            "368" => RestrictionKind::PolicyBlock,
            "TOS_BLOCK" | "SMB_TOS_BLOCK" => RestrictionKind::TosBlock,
            "BIZ_INITIATED_BLOCK" | "CUSTOMER_INITIATED_BLOCK" | "ADD_NUMBER_BLOCK" => {
                RestrictionKind::MessagingRestricted
            }
            "WABA_DISABLED" | "WABA_DISABLE_SCHEDULED" => RestrictionKind::Banned,
            _ => return None,
        })
    }

    /// The restriction a `restriction` event's code names (`Other` when
    /// wapulse does not know the code: the gateway said it is one).
    pub fn of_reported(code: &str) -> Self {
        Self::from_code(code).unwrap_or(RestrictionKind::Other)
    }

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            RestrictionKind::ReachoutTimelock => "reachout_timelock",
            RestrictionKind::RateLimit => "rate_limit",
            RestrictionKind::SpamLimit => "spam_limit",
            RestrictionKind::PolicyBlock => "policy_block",
            RestrictionKind::TosBlock => "tos_block",
            RestrictionKind::MessagingRestricted => "messaging_restricted",
            RestrictionKind::Banned => "banned",
            RestrictionKind::Other => "other",
        }
    }

    /// What it means, for a message.
    pub const fn explanation(self) -> &'static str {
        match self {
            RestrictionKind::ReachoutTimelock => {
                "reach-out timelock: WhatsApp does not let this number start new chats for a while"
            }
            RestrictionKind::RateLimit => {
                "rate limit: the number sends faster than WhatsApp allows"
            }
            RestrictionKind::SpamLimit => {
                "spam limit: too many of this number's messages were blocked or reported"
            }
            RestrictionKind::PolicyBlock => {
                "policy block: the number is temporarily blocked for policy violations"
            }
            RestrictionKind::TosBlock => {
                "banned: WhatsApp blocked the number for its terms of service"
            }
            RestrictionKind::MessagingRestricted => {
                "messaging restricted: Meta limits what this business number may send"
            }
            RestrictionKind::Banned => "disabled: Meta disabled the WhatsApp Business Account",
            RestrictionKind::Other => "restricted, as the gateway reports it",
        }
    }

    /// What the operator should do.
    pub const fn action(self) -> &'static str {
        match self {
            RestrictionKind::ReachoutTimelock => {
                "Stop bulk and first-contact sends from this number until the timelock lifts; keep \
                 answering existing chats. Do NOT re-pair or restart: it does not lift the \
                 restriction and risks a ban"
            }
            RestrictionKind::RateLimit => {
                "Slow down: lower this number's send rate and spread bulk sends out; the limit \
                 lifts on its own"
            }
            RestrictionKind::SpamLimit => {
                "Stop bulk sends from this number and review what it sends and to whom (opt-ins, \
                 templates); do not re-pair"
            }
            RestrictionKind::PolicyBlock => {
                "Stop sending from this number until the block ends and review the policy \
                 violation in WhatsApp Business Manager; do not re-pair"
            }
            RestrictionKind::TosBlock => {
                "The number is banned: stop all automation on it and appeal through WhatsApp \
                 support; re-pairing will not help"
            }
            RestrictionKind::MessagingRestricted => {
                "Stop the restricted kind of sends (business-initiated templates) until the \
                 restriction expires, and review the quality of what this number sends in \
                 WhatsApp Manager"
            }
            RestrictionKind::Banned => {
                "The business account is disabled: stop sending from it and request a review in \
                 WhatsApp Manager (Account quality)"
            }
            RestrictionKind::Other => {
                "Check the number's status with the gateway and in WhatsApp; stop bulk sends \
                 until it is clear"
            }
        }
    }
}

/// A restriction WhatsApp put on the account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restriction {
    /// Which.
    pub kind: RestrictionKind,
    /// The error code that said so.
    pub code: ErrorCode,
    /// When it was first seen.
    pub since: Timestamp,
    /// When it ends, when known.
    pub until: Option<Timestamp>,
}

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

/// Sends and error acks per minute over the failure window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Minutes {
    /// The minute (since the epoch) of the last bucket.
    last: i64,
    /// `(sends, errors)` per minute, the last bucket at the end.
    buckets: VecDeque<(u32, u32)>,
}

const MINUTE: i64 = 60_000;

impl Minutes {
    fn width(window: DurationMs) -> usize {
        (window.as_millis().div_ceil(MINUTE as u64)).clamp(1, 24 * 60) as usize
    }

    fn record(&mut self, at: Timestamp, sends: u32, errors: u32, window: DurationMs) {
        let width = Self::width(window);
        let minute = at.as_millis().div_euclid(MINUTE);
        if self.buckets.is_empty() {
            self.last = minute;
            self.buckets.push_back((0, 0));
        }
        if minute > self.last {
            let gap = (minute - self.last).min(width as i64) as usize;
            for _ in 0..gap {
                self.buckets.push_back((0, 0));
            }
            self.last = minute;
        }
        while self.buckets.len() > width {
            self.buckets.pop_front();
        }
        let back = (self.last - minute) as usize;
        if back >= self.buckets.len() {
            // Older than the window: nothing left to count it in.
            return;
        }
        let i = self.buckets.len() - 1 - back;
        let bucket = &mut self.buckets[i];
        bucket.0 = bucket.0.saturating_add(sends);
        bucket.1 = bucket.1.saturating_add(errors);
    }

    /// `(sends, errors)` within the window before `now` (to the minute).
    fn totals(&self, now: Timestamp, window: DurationMs) -> (u64, u64) {
        let width = Self::width(window) as i64;
        let minute = now.as_millis().div_euclid(MINUTE);
        let len = self.buckets.len() as i64;
        let mut totals = (0u64, 0u64);
        for (i, (s, e)) in self.buckets.iter().enumerate() {
            let bucket_minute = self.last - (len - 1 - i as i64);
            if bucket_minute > minute - width && bucket_minute <= minute {
                totals.0 += u64::from(*s);
                totals.1 += u64::from(*e);
            }
        }
        totals
    }

    /// When the oldest error still counted leaves the window.
    fn next_error_expiry(&self, now: Timestamp, window: DurationMs) -> Option<Timestamp> {
        let width = Self::width(window) as i64;
        let minute = now.as_millis().div_euclid(MINUTE);
        let len = self.buckets.len() as i64;
        self.buckets
            .iter()
            .enumerate()
            .filter(|(_, (_, e))| *e > 0)
            .map(|(i, _)| self.last - (len - 1 - i as i64))
            .find(|m| *m > minute - width)
            .map(|m| Timestamp::from_millis((m + width) * MINUTE))
    }
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

/// What a quality report says, from fine to worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum QualityVerdict {
    /// Nothing to do.
    Fine,
    /// Flagged (or rated red): the limit may be lowered.
    Flagged,
    /// The messaging limit was lowered.
    Lowered,
}

/// A business number's quality and messaging limit, as the Cloud API
/// last reported them (`phone_number_quality_update`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quality {
    /// What happened: `FLAGGED`, `UNFLAGGED`, `DOWNGRADE`, `UPGRADE`, …
    pub event: Box<str>,
    /// The messaging limit tier now (`TIER_1K`), when given.
    pub tier: Option<Box<str>>,
    /// The quality rating (`GREEN`, `YELLOW`, `RED`), when given.
    pub rating: Option<Box<str>>,
    /// When it was reported.
    pub at: Timestamp,
}

impl Quality {
    /// What it says: the messaging limit lowered, the number flagged (or
    /// rated red), or fine.
    pub fn verdict(&self) -> QualityVerdict {
        if self.event.eq_ignore_ascii_case("DOWNGRADE") {
            QualityVerdict::Lowered
        } else if self.event.eq_ignore_ascii_case("FLAGGED")
            || self
                .rating
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case("RED"))
        {
            QualityVerdict::Flagged
        } else {
            QualityVerdict::Fine
        }
    }

    /// The messaging limit in conversations a day (`TIER_1K` → 1,000);
    /// `None` when unknown or unlimited.
    pub fn limit(&self) -> Option<u64> {
        let tier = self.tier.as_deref()?.strip_prefix("TIER_")?;
        let (digits, scale) = match tier.strip_suffix('K') {
            Some(d) => (d, 1_000),
            None => (tier, 1),
        };
        digits.parse::<u64>().ok().map(|n| n * scale)
    }
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

/// What one ack measured: the wait for the server and for delivery, in ms,
/// where this ack was the one that said so.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AckTiming {
    /// Send to server ack.
    pub to_server: Option<u32>,
    /// Send to delivered.
    pub to_delivered: Option<u32>,
}

/// Buckets (ms) of the fleet-wide ack latency histogram.
pub const LATENCY_BUCKETS_MS: [u32; 14] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000,
    1_800_000, 3_600_000,
];

/// Ack latencies over the fleet, cumulative since the process started
/// (kept in memory only: a restart is a counter reset to Prometheus).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// Per bucket of [`LATENCY_BUCKETS_MS`] (not cumulative), then the
    /// overflow.
    pub counts: [u64; LATENCY_BUCKETS_MS.len() + 1],
    /// Sum of the observations (ms).
    pub sum_ms: u64,
}

impl LatencyHistogram {
    /// Adds one observation.
    pub fn observe(&mut self, ms: u32) {
        let i = LATENCY_BUCKETS_MS.partition_point(|b| *b < ms);
        self.counts[i] += 1;
        self.sum_ms += u64::from(ms);
    }

    /// Observations in all.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// The fleet's ack latency histograms: to server, to delivered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AckLatencies {
    /// Send to server ack.
    pub to_server: LatencyHistogram,
    /// Send to delivered.
    pub to_delivered: LatencyHistogram,
}

impl AckLatencies {
    /// Records what one ack measured.
    pub fn record(&mut self, timing: AckTiming) {
        if let Some(ms) = timing.to_server {
            self.to_server.observe(ms);
        }
        if let Some(ms) = timing.to_delivered {
            self.to_delivered.observe(ms);
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
