//! The alert rules: a session and thresholds in, a level and alerts out.

use std::fmt;

use serde::{Deserialize, Serialize};

mod delivery;

use crate::delivery::{ErrorCode, RestrictionKind};
use crate::disconnect::{KNOWN_REASONS, KnownReason};
use crate::event::SessionState;
use crate::session::Session;
use crate::thresholds::Thresholds;
use crate::time::{DurationMs, Timestamp};

/// How bad things are.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Nothing to do.
    #[default]
    Ok,
    /// Degraded; look soon.
    Warning,
    /// Broken or about to be; act now.
    Critical,
}

impl Level {
    /// Every level, in order.
    pub const ALL: [Level; 3] = [Level::Ok, Level::Warning, Level::Critical];

    /// The wire name (`ok`, `warning`, `critical`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Critical => "critical",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == text)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which rule fired. The order of the variants is the order alerts of the
/// same level are listed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlertCode {
    /// The gateway's circuit breaker is open.
    CircuitBreakerOpen,
    /// The latest integrity check failed.
    SessionCorruption,
    /// WhatsApp restricted the account (463 reach-out timelock, rate
    /// limit, spam limit, policy or terms-of-service block).
    AccountRestricted,
    /// Not connected for too long.
    LongDisconnection,
    /// Reconnect attempts at the critical threshold.
    ExcessiveReconnects,
    /// No heartbeat for the critical heartbeat age.
    HeartbeatDead,
    /// Connected, but sent messages wait for WhatsApp's server ack: a
    /// mute session.
    DeliveryStalled,
    /// Error acks over a share of the sends in the window.
    DeliveryFailures,
    /// A business number was flagged for quality, or its messaging limit
    /// was lowered (Cloud API).
    NumberQuality,
    /// Reconnect attempts at the warning threshold.
    ReconnectAttempts,
    /// Connected, but no inbound message for longer than its own rate
    /// makes likely: a deaf session.
    InboundSilence,
    /// Repeated "connection replaced" closes: two clients run the session.
    SessionConflict,
    /// No heartbeat for the warning heartbeat age.
    HeartbeatStale,
    /// Credentials not persisted for too long.
    CredentialAge,
    /// Too many missed heartbeats in the window.
    MissedHeartbeats,
    /// Integrity check failures in the window.
    ValidationFailures,
    /// A reconnect took (or is taking) too long.
    SlowReconnect,
    /// The session lock is held too long.
    LockHeldTooLong,
    /// WhatsApp logged the device out.
    LoggedOut,
    /// The session waits for a QR scan.
    QrRequired,
}

impl AlertCode {
    /// Every code.
    pub const ALL: [AlertCode; 20] = [
        AlertCode::CircuitBreakerOpen,
        AlertCode::SessionCorruption,
        AlertCode::AccountRestricted,
        AlertCode::LongDisconnection,
        AlertCode::ExcessiveReconnects,
        AlertCode::HeartbeatDead,
        AlertCode::DeliveryStalled,
        AlertCode::DeliveryFailures,
        AlertCode::NumberQuality,
        AlertCode::ReconnectAttempts,
        AlertCode::InboundSilence,
        AlertCode::SessionConflict,
        AlertCode::HeartbeatStale,
        AlertCode::CredentialAge,
        AlertCode::MissedHeartbeats,
        AlertCode::ValidationFailures,
        AlertCode::SlowReconnect,
        AlertCode::LockHeldTooLong,
        AlertCode::LoggedOut,
        AlertCode::QrRequired,
    ];

    /// The wire name (`HEARTBEAT_STALE`).
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertCode::CircuitBreakerOpen => "CIRCUIT_BREAKER_OPEN",
            AlertCode::SessionCorruption => "SESSION_CORRUPTION",
            AlertCode::AccountRestricted => "ACCOUNT_RESTRICTED",
            AlertCode::DeliveryStalled => "DELIVERY_STALLED",
            AlertCode::DeliveryFailures => "DELIVERY_FAILURES",
            AlertCode::NumberQuality => "NUMBER_QUALITY",
            AlertCode::LongDisconnection => "LONG_DISCONNECTION",
            AlertCode::ExcessiveReconnects => "EXCESSIVE_RECONNECTS",
            AlertCode::HeartbeatDead => "HEARTBEAT_DEAD",
            AlertCode::ReconnectAttempts => "RECONNECT_ATTEMPTS",
            AlertCode::InboundSilence => "INBOUND_SILENCE",
            AlertCode::SessionConflict => "SESSION_CONFLICT",
            AlertCode::HeartbeatStale => "HEARTBEAT_STALE",
            AlertCode::CredentialAge => "CREDENTIAL_AGE",
            AlertCode::MissedHeartbeats => "MISSED_HEARTBEATS",
            AlertCode::ValidationFailures => "VALIDATION_FAILURES",
            AlertCode::SlowReconnect => "SLOW_RECONNECT",
            AlertCode::LockHeldTooLong => "LOCK_HELD_TOO_LONG",
            AlertCode::LoggedOut => "LOGGED_OUT",
            AlertCode::QrRequired => "QR_REQUIRED",
        }
    }

    /// Whether `value` and `threshold` are durations in milliseconds (else
    /// they are counts).
    pub const fn measures_time(self) -> bool {
        matches!(
            self,
            AlertCode::LongDisconnection
                | AlertCode::HeartbeatDead
                | AlertCode::HeartbeatStale
                | AlertCode::CredentialAge
                | AlertCode::SlowReconnect
                | AlertCode::LockHeldTooLong
                | AlertCode::InboundSilence
                | AlertCode::DeliveryStalled
        )
    }
}

impl fmt::Display for AlertCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One firing rule.
///
/// `value` and `threshold` are milliseconds for time-based codes (see
/// [`AlertCode::measures_time`]) and counts otherwise; state-based codes
/// (LOGGED_OUT, QR_REQUIRED, CIRCUIT_BREAKER_OPEN, SESSION_CORRUPTION) carry
/// what is most useful to show. Messages are rendered on demand so that an
/// evaluation allocates nothing for a healthy session.
///
/// The delivery codes: DELIVERY_STALLED's value is the oldest outstanding
/// message's wait, its context how many wait; DELIVERY_FAILURES' value is
/// the error acks in the window, its threshold the errors that cross the
/// bar at the window's sends, its context the sends, `codes` the most
/// frequent codes; ACCOUNT_RESTRICTED carries the restriction's kind in
/// its context (see [`restriction_kind`](Alert::restriction_kind)), its
/// code in `codes` and its end in `until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alert {
    /// Which rule.
    pub code: AlertCode,
    /// How bad.
    pub level: Level,
    /// The observed value.
    pub value: u64,
    /// The threshold it crossed.
    pub threshold: u64,
    /// Since when the condition holds, where known.
    pub since: Option<Timestamp>,
    /// Context for the message (the reconnect limit, whether a slow
    /// reconnect is still running, a window, the usual inbound gap).
    pub context: u64,
    /// The close code of the session's last disconnect, when the gateway
    /// gave one: messages and actions name it (a 401 and a 403 logout
    /// need different actions).
    pub cause: Option<u16>,
    /// Error codes behind a delivery alert, the most frequent first.
    pub codes: [Option<ErrorCode>; 2],
    /// When the condition ends on its own, where known (a restriction's
    /// expiry).
    pub until: Option<Timestamp>,
}

impl Alert {
    /// The operator-facing message, like the seed's `No heartbeat for 65s`.
    pub fn message(&self) -> String {
        let d = |ms: u64| DurationMs::from_millis(ms).formatted();
        let base = self.bare_message();
        match (self.code, self.cause()) {
            (AlertCode::LoggedOut, Some(k)) => {
                format!(
                    "Session logged out by WhatsApp ({} {})",
                    k.code, k.explanation
                )
            }
            (
                AlertCode::LongDisconnection
                | AlertCode::ExcessiveReconnects
                | AlertCode::ReconnectAttempts
                | AlertCode::CircuitBreakerOpen,
                Some(k),
            ) => format!("{base} (last close: {} {})", k.code, k.explanation),
            (AlertCode::InboundSilence, _) => format!(
                "No inbound message for {}; this session usually receives one every {}",
                d(self.value),
                d(about(self.context))
            ),
            _ => base,
        }
    }

    /// The restriction an ACCOUNT_RESTRICTED alert names.
    pub fn restriction_kind(&self) -> Option<RestrictionKind> {
        if self.code != AlertCode::AccountRestricted {
            return None;
        }
        delivery::RESTRICTION_KINDS
            .get(self.context as usize)
            .copied()
    }

    /// The named close code behind this alert, if any.
    pub fn cause(&self) -> Option<&'static KnownReason> {
        let code = self.cause?;
        KNOWN_REASONS.iter().find(|k| k.code == code)
    }

    fn bare_message(&self) -> String {
        let d = |ms: u64| DurationMs::from_millis(ms).formatted();
        match self.code {
            AlertCode::CircuitBreakerOpen => format!(
                "Circuit breaker open after {} consecutive failures",
                self.value
            ),
            AlertCode::SessionCorruption => "Session data failed its integrity check".to_owned(),
            AlertCode::LongDisconnection => format!("Disconnected for {}", d(self.value)),
            AlertCode::ExcessiveReconnects | AlertCode::ReconnectAttempts => {
                format!("{} reconnect attempts (max {})", self.value, self.context)
            }
            AlertCode::HeartbeatDead | AlertCode::HeartbeatStale => {
                format!("No heartbeat for {}", d(self.value))
            }
            AlertCode::CredentialAge => {
                format!("Credentials last written {} ago", d(self.value))
            }
            AlertCode::MissedHeartbeats => format!(
                "{} missed heartbeats in the last {}",
                self.value,
                d(self.context)
            ),
            AlertCode::ValidationFailures => format!(
                "{} validation failure{} in the last {}",
                self.value,
                if self.value == 1 { "" } else { "s" },
                d(self.context)
            ),
            AlertCode::SlowReconnect => {
                if self.context == 1 {
                    format!("Reconnect in progress for {}", d(self.value))
                } else {
                    format!("Last reconnect took {}", d(self.value))
                }
            }
            AlertCode::LockHeldTooLong => format!("Session lock held for {}", d(self.value)),
            AlertCode::LoggedOut => "Session logged out by WhatsApp".to_owned(),
            AlertCode::QrRequired => "Session waiting for a QR scan".to_owned(),
            AlertCode::InboundSilence => format!("No inbound message for {}", d(self.value)),
            AlertCode::DeliveryStalled => format!(
                "{} sent message{} waiting for WhatsApp's server ack, the oldest for {} (since {})",
                self.context,
                if self.context == 1 { "" } else { "s" },
                d(self.value),
                self.since.map_or_else(|| "?".to_owned(), |t| t.to_string())
            ),
            AlertCode::DeliveryFailures => {
                let codes: Vec<&str> = self.codes.iter().flatten().map(|c| c.as_str()).collect();
                format!(
                    "{} of {} sends failed in the last window ({:.0} %){}",
                    self.value,
                    self.context.max(self.value),
                    self.value as f64 * 100.0 / self.context.max(self.value).max(1) as f64,
                    if codes.is_empty() {
                        String::new()
                    } else {
                        format!("; top codes: {}", codes.join(", "))
                    }
                )
            }
            AlertCode::NumberQuality => {
                if self.level == Level::Critical {
                    "Meta lowered this number's messaging limit (quality downgrade)".to_owned()
                } else {
                    "Meta flagged this number's quality: its messaging limit may be lowered"
                        .to_owned()
                }
            }
            AlertCode::AccountRestricted => {
                let code = self.codes[0].map_or_else(String::new, |c| format!(" (code {c})"));
                let until = self
                    .until
                    .map_or_else(String::new, |u| format!(" until {u}"));
                match self.restriction_kind() {
                    Some(kind) => format!(
                        "WhatsApp restricted this account{code}: {}{until}",
                        kind.explanation()
                    ),
                    None => format!("WhatsApp restricted this account{code}{until}"),
                }
            }
            AlertCode::SessionConflict => format!(
                "{} \"connection replaced\" closes in the last {}: another client keeps taking \
                 this session over",
                self.value,
                d(self.context)
            ),
        }
    }

    /// What the operator should do.
    pub fn action(&self) -> &'static str {
        if let Some(kind) = self.restriction_kind() {
            return kind.action();
        }
        if let (
            AlertCode::LoggedOut
            | AlertCode::LongDisconnection
            | AlertCode::ExcessiveReconnects
            | AlertCode::CircuitBreakerOpen,
            Some(k),
        ) = (self.code, self.cause())
        {
            return k.action;
        }
        match self.code {
            AlertCode::CircuitBreakerOpen => {
                "Reconnects are paused: check the gateway's network and logs, then reset the breaker"
            }
            AlertCode::SessionCorruption => {
                "Restore the session credentials from backup or re-pair the device"
            }
            AlertCode::LongDisconnection => {
                "Check the gateway process and its network; re-pair if the session is logged out"
            }
            AlertCode::ExcessiveReconnects => {
                "Reconnects are failing: check WhatsApp reachability and the session credentials"
            }
            AlertCode::HeartbeatDead => {
                "Connection is likely dead: force a reconnect of the session"
            }
            AlertCode::ReconnectAttempts => "Connection is unstable: watch for further attempts",
            AlertCode::HeartbeatStale => "Connection may be degraded",
            AlertCode::CredentialAge => {
                "Check that the gateway persists credentials (creds.update) to its store"
            }
            AlertCode::MissedHeartbeats => {
                "Keepalives are being lost: check network latency and event-loop stalls"
            }
            AlertCode::ValidationFailures => {
                "Inspect the session store for partial writes or concurrent writers"
            }
            AlertCode::SlowReconnect => "Reconnects are slow: check network and WhatsApp status",
            AlertCode::LockHeldTooLong => {
                "A holder may have died with the lock: check it, or release the lock"
            }
            AlertCode::LoggedOut => "Re-pair the device (QR code or pairing code)",
            AlertCode::QrRequired => "Scan the QR code or enter a pairing code to re-pair",
            AlertCode::InboundSilence => {
                "The session looks connected but hears nothing: send it a test message; \
                 restart its socket if it stays deaf"
            }
            AlertCode::SessionConflict => {
                "Make sure exactly one gateway instance runs this session (check deployments, \
                 replicas and the session lock)"
            }
            AlertCode::DeliveryStalled => {
                "The session looks connected but its sends are not taken: restart the session's \
                 socket; if it stalls again after the restart, re-pair the device"
            }
            AlertCode::DeliveryFailures => {
                "WhatsApp refuses this session's sends: look up the top codes, check the \
                 recipients and the content, and slow bulk sends down"
            }
            AlertCode::AccountRestricted => {
                "WhatsApp restricted this number: stop bulk sends from it; do not re-pair"
            }
            AlertCode::NumberQuality => {
                "Recipients block or report this number's messages: pause marketing sends, \
                 review templates and opt-ins in WhatsApp Manager (quality rating)"
            }
        }
    }
}

/// A rate's usual gap, rounded as a person says it: whole minutes from a
/// minute on, whole seconds below.
fn about(ms: u64) -> u64 {
    let unit = if ms >= 60_000 { 60_000 } else { 1_000 };
    ((ms + unit / 2) / unit).max(1) * unit
}

/// The level a value reaches against its warning and critical
/// thresholds (inclusive), with the threshold it crossed.
fn tier<T: PartialOrd + Copy>(value: T, warning: T, critical: T) -> Option<(Level, T)> {
    if value >= critical {
        Some((Level::Critical, critical))
    } else if value >= warning {
        Some((Level::Warning, warning))
    } else {
        None
    }
}

/// The verdict on one session at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assessment {
    /// The highest level among the alerts (`ok` when none).
    pub level: Level,
    /// Firing alerts, the most severe first.
    pub alerts: Vec<Alert>,
}

/// Judges `session` against `t` at `now`. A session stopped on purpose
/// is judged on nothing: it pages nothing until it starts again.
pub fn evaluate(session: &Session, t: &Thresholds, now: Timestamp) -> Assessment {
    if session.state == SessionState::Stopped {
        return Assessment::default();
    }
    let mut alerts = Vec::new();
    let cause = session
        .liveness
        .last_disconnect
        .as_ref()
        .and_then(|d| d.read().code);
    let mut fire = |code, level, value: u64, threshold: u64, since, context| {
        alerts.push(Alert {
            code,
            level,
            value,
            threshold,
            since,
            context,
            cause,
            codes: [None; 2],
            until: None,
        })
    };
    let ms = |d: DurationMs| d.as_millis();

    if session.breaker.open {
        fire(
            AlertCode::CircuitBreakerOpen,
            Level::Critical,
            u64::from(session.breaker.consecutive_failures),
            u64::from(t.circuit_breaker_threshold),
            session.breaker.since,
            0,
        );
    }
    if !session.integrity.checksum_valid {
        fire(
            AlertCode::SessionCorruption,
            Level::Critical,
            1,
            1,
            session.integrity.corrupted_at,
            0,
        );
    }
    if let (false, Some(down)) = (session.is_connected(), session.down_since) {
        let down_for = now.since(down);
        if down_for >= t.disconnection_critical {
            fire(
                AlertCode::LongDisconnection,
                Level::Critical,
                ms(down_for),
                ms(t.disconnection_critical),
                Some(down),
                0,
            );
        }
    }
    let attempts = session.reconnect.attempts;
    let max = u64::from(t.max_reconnect_attempts);
    if attempts >= t.reconnect_attempts_critical {
        fire(
            AlertCode::ExcessiveReconnects,
            Level::Critical,
            u64::from(attempts),
            u64::from(t.reconnect_attempts_critical),
            session.reconnect.started_at,
            max,
        );
    } else if attempts >= t.reconnect_attempts_warning {
        fire(
            AlertCode::ReconnectAttempts,
            Level::Warning,
            u64::from(attempts),
            u64::from(t.reconnect_attempts_warning),
            session.reconnect.started_at,
            max,
        );
    }
    if session.is_connected()
        && let Some(since) = session.keepalive_reference()
    {
        let age = now.since(since);
        let since = Some(since);
        if age >= t.heartbeat_age_critical {
            fire(
                AlertCode::HeartbeatDead,
                Level::Critical,
                ms(age),
                ms(t.heartbeat_age_critical),
                since,
                0,
            );
        } else if age >= t.heartbeat_age_warning {
            fire(
                AlertCode::HeartbeatStale,
                Level::Warning,
                ms(age),
                ms(t.heartbeat_age_warning),
                since,
                0,
            );
        }
    }
    if let Some(written) = session.credentials_written_at {
        let age = now.since(written);
        let level = tier(age, t.credential_age_warning, t.credential_age_critical);
        if let Some((level, threshold)) = level {
            fire(
                AlertCode::CredentialAge,
                level,
                ms(age),
                ms(threshold),
                Some(written),
                0,
            );
        }
    }
    let missed = session.missed_heartbeats(t, now);
    let missed_level = tier(
        missed,
        t.missed_heartbeats_warning,
        t.missed_heartbeats_critical,
    );
    if let Some((level, threshold)) = missed_level {
        fire(
            AlertCode::MissedHeartbeats,
            level,
            u64::from(missed),
            u64::from(threshold),
            None,
            ms(t.missed_heartbeat_window),
        );
    }
    let failures = session.validation_failures(t, now);
    if failures >= t.validation_failures_warning {
        fire(
            AlertCode::ValidationFailures,
            Level::Warning,
            u64::from(failures),
            u64::from(t.validation_failures_warning),
            None,
            ms(t.validation_window),
        );
    }
    if let Some(slowest) = session.reconnect.slowest_current(now) {
        let level = tier(
            slowest,
            t.reconnect_latency_warning,
            t.reconnect_latency_critical,
        );
        if let Some((level, threshold)) = level {
            let running = session.reconnect.in_progress
                && session.reconnect.started_at.map(|s| now.since(s)) == Some(slowest);
            fire(
                AlertCode::SlowReconnect,
                level,
                ms(slowest),
                ms(threshold),
                if running {
                    session.reconnect.started_at
                } else {
                    None
                },
                u64::from(running),
            );
        }
    }
    if let Some(lock) = &session.lock {
        let held = now.since(lock.since);
        let level = tier(held, t.lock_held_warning, t.lock_held_critical);
        if let Some((level, threshold)) = level {
            fire(
                AlertCode::LockHeldTooLong,
                level,
                ms(held),
                ms(threshold),
                Some(lock.since),
                0,
            );
        }
    }
    let conflicts = session.liveness.conflicts(now, t.session_conflict_window);
    let conflict_level = tier(
        conflicts,
        t.session_conflict_warning,
        t.session_conflict_critical,
    );
    if let Some((level, threshold)) = conflict_level {
        fire(
            AlertCode::SessionConflict,
            level,
            u64::from(conflicts),
            u64::from(threshold),
            None,
            ms(t.session_conflict_window),
        );
    }
    if session.is_connected()
        && let Some(bar) = session.liveness.inbound.bar(t)
    {
        let silent = bar.silent_for(now);
        let level = tier(silent, bar.warning_after, bar.critical_after);
        if let Some((level, threshold)) = level {
            fire(
                AlertCode::InboundSilence,
                level,
                ms(silent),
                ms(threshold),
                bar.last_inbound,
                ms(bar.usual_gap),
            );
        }
    }
    match session.state {
        SessionState::LoggedOut => fire(
            AlertCode::LoggedOut,
            Level::Critical,
            1,
            1,
            Some(session.state_changed_at),
            0,
        ),
        SessionState::QrRequired => fire(
            AlertCode::QrRequired,
            Level::Warning,
            1,
            1,
            Some(session.state_changed_at),
            0,
        ),
        _ => {}
    }
    if let Some(delivery) = &session.delivery {
        delivery::judge(session, delivery, t, now, &mut alerts);
    }
    // Most severe first; within a level, in AlertCode order (stable sort).
    alerts.sort_by(|a, b| b.level.cmp(&a.level).then(a.code.cmp(&b.code)));
    let level = alerts.iter().map(|a| a.level).max().unwrap_or(Level::Ok);
    Assessment { level, alerts }
}

/// The earliest instant after `now` at which [`evaluate`] may give a
/// different answer for `session` although no event arrives: a heartbeat
/// age, a disconnection, a credential age, a reconnect or a lock crossing
/// its next threshold, or a windowed count losing a record. `None` when
/// only a new event can change the verdict.
///
/// The evaluator keeps a deadline queue of these instants, so an idle
/// fleet costs nothing between them.
pub fn next_change(session: &Session, t: &Thresholds, now: Timestamp) -> Option<Timestamp> {
    if session.state == SessionState::Stopped {
        return None;
    }
    let mut next: Option<Timestamp> = None;
    let mut consider = |at: Timestamp| {
        if at > now && next.is_none_or(|n| at < n) {
            next = Some(at);
        }
    };
    if let (false, Some(down)) = (session.is_connected(), session.down_since) {
        consider(down.plus(t.disconnection_critical));
    }
    if session.is_connected()
        && let Some(reference) = session.keepalive_reference()
    {
        consider(reference.plus(t.heartbeat_age_warning));
        consider(reference.plus(t.heartbeat_age_critical));
    }
    if session.is_connected()
        && let Some(bar) = session.liveness.inbound.bar(t)
    {
        consider(bar.reaches(bar.warning_after));
        consider(bar.reaches(bar.critical_after));
    }
    if let Some(conflicts) = &session.liveness.conflicts
        && let Some(at) = conflicts.next_expiry(now, t.session_conflict_window)
    {
        consider(at);
    }
    if let Some(written) = session.credentials_written_at {
        consider(written.plus(t.credential_age_warning));
        consider(written.plus(t.credential_age_critical));
    }
    if let Some(at) = session
        .heartbeat
        .missed
        .next_expiry(now, t.missed_heartbeat_window)
    {
        consider(at);
    }
    if let Some(at) = session
        .integrity
        .failures
        .next_expiry(now, t.validation_window)
    {
        consider(at);
    }
    if let (true, Some(start)) = (session.reconnect.in_progress, session.reconnect.started_at) {
        consider(start.plus(t.reconnect_latency_warning));
        consider(start.plus(t.reconnect_latency_critical));
    }
    if let Some(lock) = &session.lock {
        consider(lock.since.plus(t.lock_held_warning));
        consider(lock.since.plus(t.lock_held_critical));
    }
    if let Some(delivery) = &session.delivery {
        delivery::deadlines(session, delivery, t, now, &mut consider);
    }
    next
}
