//! Sent-marks: what the leader settled, so a new leader neither resends it
//! nor drops what the old one left pending.
//!
//! Every replica runs the evaluator and writes the same notifications into
//! its own outbox, each stamped with its own clock. Only the leader sends a
//! direct receiver's rows; a group's rows leave in order. After the leader
//! settled a row (delivered, or refused for good) it writes the group's
//! mark in the KV bucket `<stream>_sent` (key: a digest of receiver and
//! group): the row's creation time and a digest of what it said
//! ([`content_key`], leaving out times). Another replica settles its own
//! row of that group without sending it when the mark says the receiver
//! already shows exactly that (within half a `repeat_interval`: later, the
//! same content is a reminder), or when the row is not newer than the
//! leader's last one: created at most `window` (half the smallest
//! `group_interval`) after it, since a group's next message comes a whole
//! group interval later. Rows newer than the mark wait, and are sent by whoever
//! leads next.
//!
//! A waiting row that no mark covers within `stale_after` (the smallest
//! `repeat_interval`) is stale: a replica that does not send lets it
//! expire (settled unsent, `expired` in the history) instead of holding
//! its group back and sending it, long after, if it leads one day. The
//! leader never settled anything of that group since: either it never
//! wrote that message (the replicas' lifecycles differed, as after a
//! rebuild from empty), or it could not deliver for that long. A firing
//! message lost so is said again by the group's next reminder. A resolve
//! is kept waiting while the receiver still shows the group firing (the
//! mark's last message fired): sent if this replica leads, it is the one
//! message that clears it.
//!
//! [`content_key`]: wapulse_core::grouping::GroupMessage::content_key

use async_nats::jetstream::kv;
use axum::body::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wapulse_core::grouping::{GroupMessage, Status};
use wapulse_core::{DurationMs, Timestamp};

use crate::alerting::gate::PeerSays;

/// A group's mark as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// When the last settled row was created (ms, the leader's clock).
    pub created: i64,
    /// The digest of what it said.
    pub content: String,
    /// The replica that settled it.
    pub by: String,
    /// Whether it said the group resolved (marks written before this was
    /// kept read as firing).
    #[serde(default)]
    pub resolved: bool,
}

/// What marks need of a group message: its group's key and its content
/// digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowMark {
    /// The group's mark key.
    pub key: String,
    /// The digest of what the row says.
    pub content: String,
    /// Whether it says the group resolved.
    pub resolved: bool,
}

impl RowMark {
    /// The mark of `message`, sent to `receiver`.
    pub fn of(receiver: &str, message: &GroupMessage) -> Self {
        let digest = |parts: &[&str]| {
            let mut hash = Sha256::new();
            for p in parts {
                hash.update(p.as_bytes());
                hash.update([0]);
            }
            super::hex(&hash.finalize()[..20])
        };
        Self {
            key: digest(&[receiver, &message.group_key]),
            content: digest(&[&message.content_key()]),
            resolved: message.status == Status::Resolved,
        }
    }

    /// What the group's `mark` (if any) says of this row, created at
    /// `created`, at `now`: settled by it (see [`RowMark::settled_by`]),
    /// or open, and stale once it waited `stale_after` unless it is a
    /// resolve the receiver still needs.
    pub fn says(
        &self,
        mark: Option<&Mark>,
        created: Timestamp,
        now: Timestamp,
        w: &Windows,
    ) -> PeerSays {
        if mark.is_some_and(|m| self.settled_by(m, created, w.window, w.same)) {
            return PeerSays::Settled;
        }
        let needed = self.resolved && mark.is_some_and(|m| !m.resolved);
        PeerSays::Open {
            stale: now.since(created) >= w.stale_after && !needed,
        }
    }

    /// Whether `mark` settles this row, created at `created`: the same
    /// content within `same` of the mark's row (half the smallest
    /// `repeat_interval`: the same content again later is a reminder, to be
    /// sent), or any row not newer than `window` past it.
    pub fn settled_by(
        &self,
        mark: &Mark,
        created: Timestamp,
        window: DurationMs,
        same: DurationMs,
    ) -> bool {
        let ms = |d: DurationMs| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let at = created.as_millis();
        (mark.content == self.content && (at - mark.created).abs() < ms(same))
            || at <= mark.created.saturating_add(ms(window))
    }
}

/// How marks are read: see the module's rule.
#[derive(Clone, Copy, Debug)]
pub struct Windows {
    /// A row not newer than this past the mark's is settled by it (half
    /// the smallest `group_interval`).
    pub window: DurationMs,
    /// The same content within this of the mark's is settled by it (half
    /// the smallest `repeat_interval`).
    pub same: DurationMs,
    /// A row no mark covers for this long is stale (the smallest
    /// `repeat_interval`).
    pub stale_after: DurationMs,
}

/// The mark under `key`, if any.
pub async fn lookup(kv: &kv::Store, key: &str) -> Result<Option<Mark>, String> {
    match kv.get(key).await {
        Ok(Some(bytes)) => Ok(Some(serde_json::from_slice(&bytes).unwrap_or_default())),
        Ok(None) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Writes the group's mark after the leader settled `row`, created at
/// `created`.
pub async fn record(
    kv: &kv::Store,
    row: &RowMark,
    created: Timestamp,
    by: &str,
) -> Result<(), String> {
    let mark = Mark {
        created: created.as_millis(),
        content: row.content.clone(),
        by: by.to_owned(),
        resolved: row.resolved,
    };
    let body = serde_json::to_vec(&mark).expect("marks serialize");
    kv.put(&row.key, Bytes::from(body))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wapulse_core::grouping::NotifiedAlert;

    fn alert(session: &str, at: i64) -> NotifiedAlert {
        serde_json::from_value(serde_json::json!({
            "session": session, "code": "LOGGED_OUT", "level": "critical", "status": "firing",
            "startsAt": Timestamp::from_millis(at).to_rfc3339(), "summary": "s", "action": "a"
        }))
        .unwrap()
    }

    fn body(alerts: Vec<NotifiedAlert>, status: Status) -> GroupMessage {
        let n = alerts.len();
        GroupMessage {
            group_key: "slack/code=LOGGED_OUT".into(),
            group_labels: Default::default(),
            status,
            firing: alerts,
            resolved: Vec::new(),
            firing_total: n,
            resolved_total: 0,
            repeat: false,
        }
    }

    #[test]
    fn replicas_copies_of_a_message_read_alike_whatever_their_times() {
        let a = RowMark::of(
            "slack",
            &body(vec![alert("s1", 1_000), alert("s2", 1_000)], Status::Firing),
        );
        // Another replica judged a few milliseconds later, in another order.
        let b = RowMark::of(
            "slack",
            &body(vec![alert("s2", 1_007), alert("s1", 1_004)], Status::Firing),
        );
        assert_eq!(a, b);
        let c = RowMark::of("slack", &body(vec![alert("s1", 1_000)], Status::Firing));
        assert_eq!(a.key, c.key, "one group, one mark");
        assert_ne!(a.content, c.content);
        assert_ne!(
            a.key,
            RowMark::of("pager", &body(vec![alert("s1", 1)], Status::Firing)).key
        );
    }

    #[test]
    fn a_mark_settles_what_the_receiver_shows_and_what_is_not_newer() {
        let window = DurationMs::from_secs(30);
        let sent = RowMark::of("slack", &body(vec![alert("s1", 1)], Status::Firing));
        let other = RowMark::of(
            "slack",
            &body(vec![alert("s1", 1), alert("s2", 1)], Status::Firing),
        );
        let mark = Mark {
            created: 100_000,
            content: sent.content.clone(),
            by: "r1".into(),
            resolved: false,
        };
        let same = DurationMs::from_mins(5);
        // Its own copy, created a little earlier or later, or minutes later
        // (a replica that caught up late): the receiver shows exactly that.
        assert!(sent.settled_by(&mark, Timestamp::from_millis(99_000), window, same));
        assert!(sent.settled_by(&mark, Timestamp::from_millis(399_999), window, same));
        // The same content a repeat interval later is a reminder: sent.
        assert!(!sent.settled_by(&mark, Timestamp::from_millis(400_000), window, same));
        // Another message of the group, not newer than the mark: superseded.
        assert!(other.settled_by(&mark, Timestamp::from_millis(60_000), window, same));
        assert!(other.settled_by(&mark, Timestamp::from_millis(130_000), window, same));
        // Newer than anything the leader settled: still to send.
        assert!(!other.settled_by(&mark, Timestamp::from_millis(130_001), window, same));
    }

    #[test]
    fn a_row_no_mark_covers_goes_stale_after_a_repeat_interval_unless_it_resolves_a_firing_group() {
        let w = Windows {
            window: DurationMs::from_secs(15),
            same: DurationMs::from_mins(2),
            stale_after: DurationMs::from_mins(4),
        };
        let at = |s: i64| Timestamp::from_millis(s * 1000);
        let firing = RowMark::of("slack", &body(vec![alert("s1", 1)], Status::Firing));
        let resolve = RowMark::of("slack", &body(vec![alert("s1", 1)], Status::Resolved));
        assert!(resolve.resolved && !firing.resolved);
        let shows_firing = Mark {
            created: 0,
            content: firing.content.clone(),
            by: "r1".into(),
            resolved: false,
        };
        let shows_resolved = Mark {
            resolved: true,
            content: resolve.content.clone(),
            ..shows_firing.clone()
        };
        // Written at 100 s, newer than the mark: open, then stale 4 min on.
        let open = |stale| PeerSays::Open { stale };
        let mark = Some(&shows_resolved);
        assert_eq!(firing.says(mark, at(100), at(339), &w), open(false));
        assert_eq!(firing.says(mark, at(100), at(340), &w), open(true));
        assert_eq!(
            firing.says(None, at(100), at(340), &w),
            open(true),
            "no mark at all"
        );
        // A resolve while the receiver shows the group firing waits for
        // whoever leads next, however long.
        let mark = Some(&shows_firing);
        assert_eq!(resolve.says(mark, at(100), at(100_000), &w), open(false));
        assert_eq!(resolve.says(None, at(100), at(340), &w), open(true));
        // Covered by the mark: settled, whatever its age.
        let later = Mark {
            created: 100_000,
            ..shows_firing.clone()
        };
        assert_eq!(
            firing.says(Some(&later), at(100), at(100_000), &w),
            PeerSays::Settled
        );
        // An old mark without `resolved` reads as firing.
        let old: Mark = serde_json::from_str(r#"{"created":0,"content":"x","by":"r1"}"#).unwrap();
        assert!(!old.resolved);
    }
}
