//! The delivery rules: DELIVERY_STALLED, DELIVERY_FAILURES,
//! ACCOUNT_RESTRICTED and NUMBER_QUALITY, and when they may change.

use super::{Alert, AlertCode, Level, tier};
use crate::delivery::{Delivery, QualityVerdict, RestrictionKind};
use crate::session::Session;
use crate::thresholds::Thresholds;
use crate::time::Timestamp;

/// Restriction kinds by the index ACCOUNT_RESTRICTED carries.
pub(super) const RESTRICTION_KINDS: [RestrictionKind; 8] = [
    RestrictionKind::ReachoutTimelock,
    RestrictionKind::RateLimit,
    RestrictionKind::SpamLimit,
    RestrictionKind::PolicyBlock,
    RestrictionKind::TosBlock,
    RestrictionKind::MessagingRestricted,
    RestrictionKind::Banned,
    RestrictionKind::Other,
];

/// Since when the stall rule measures the wait of `session`'s outstanding
/// messages, with how many wait; `None` when it does not judge (not
/// connected, fewer outstanding messages than the bar needs). A message
/// sent before the current connection waits from the connect.
fn stall(session: &Session, delivery: &Delivery, t: &Thresholds) -> Option<(Timestamp, u32)> {
    let connected_since = session.connected_since.filter(|_| session.is_connected())?;
    let out = delivery.outstanding()?;
    (out.count >= t.delivery_stall_min_messages)
        .then(|| (out.oldest.max(connected_since), out.count))
}

/// An alert of a delivery code, with no close code behind it.
fn alert(code: AlertCode, level: Level, value: u64, threshold: u64) -> Alert {
    Alert {
        code,
        level,
        value,
        threshold,
        since: None,
        context: 0,
        cause: None,
        codes: [None; 2],
        until: None,
    }
}

/// Adds the delivery alerts of `session` at `now` to `out`.
pub(super) fn judge(
    session: &Session,
    delivery: &Delivery,
    t: &Thresholds,
    now: Timestamp,
    out: &mut Vec<Alert>,
) {
    if let Some((since, count)) = stall(session, delivery, t) {
        let waited = now.since(since);
        if let Some((level, bar)) =
            tier(waited, t.delivery_stall_warning, t.delivery_stall_critical)
        {
            out.push(Alert {
                since: Some(since),
                context: u64::from(count),
                ..alert(
                    AlertCode::DeliveryStalled,
                    level,
                    waited.as_millis(),
                    bar.as_millis(),
                )
            });
        }
    }
    if let Some(r) = delivery.restriction(now) {
        let kind = RESTRICTION_KINDS.iter().position(|k| *k == r.kind);
        out.push(Alert {
            since: Some(r.since),
            context: kind.unwrap_or(0) as u64,
            codes: [Some(r.code), None],
            until: r.until,
            ..alert(AlertCode::AccountRestricted, Level::Critical, 1, 1)
        });
    }
    if let Some(q) = delivery.quality() {
        let level = match q.verdict() {
            QualityVerdict::Fine => None,
            QualityVerdict::Flagged => Some(Level::Warning),
            QualityVerdict::Lowered => Some(Level::Critical),
        };
        if let Some(level) = level {
            out.push(Alert {
                since: Some(q.at),
                ..alert(AlertCode::NumberQuality, level, q.limit().unwrap_or(0), 0)
            });
        }
    }
    let failures = delivery.failures(now, t.delivery_failure_window);
    if failures.errors >= u64::from(t.delivery_failure_min_errors)
        && let Some((level, bar)) = tier(
            failures.share(),
            t.delivery_failure_warning,
            t.delivery_failure_critical,
        )
    {
        let sends = failures.sends.max(failures.errors);
        let threshold =
            ((bar * sends as f64).ceil() as u64).max(u64::from(t.delivery_failure_min_errors));
        out.push(Alert {
            context: failures.sends,
            codes: failures.top,
            ..alert(
                AlertCode::DeliveryFailures,
                level,
                failures.errors,
                threshold,
            )
        });
    }
}

/// Offers `consider` the instants the delivery verdict changes with no
/// event: the stall bars, an error leaving the window, a restriction's end.
pub(super) fn deadlines(
    session: &Session,
    delivery: &Delivery,
    t: &Thresholds,
    now: Timestamp,
    consider: &mut impl FnMut(Timestamp),
) {
    if let Some((since, _)) = stall(session, delivery, t) {
        consider(since.plus(t.delivery_stall_warning));
        consider(since.plus(t.delivery_stall_critical));
    }
    if let Some(at) = delivery.next_failure_expiry(now, t.delivery_failure_window) {
        consider(at);
    }
    if let Some(until) = delivery.restriction(now).and_then(|r| r.until) {
        consider(until);
    }
}
