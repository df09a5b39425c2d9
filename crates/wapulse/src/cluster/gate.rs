//! Cluster mode's answer to alerting's [`Gate`]: the replica holding the
//! lease sends direct notifications, and a message the leader settled
//! (its sent-mark covers it) is settled by the others without sending.

use std::sync::Arc;

use wapulse_core::DurationMs;

use super::Cluster;
use super::marks::{self, RowMark, Windows};
use crate::alerting::gate::{Answer, Gate, Notice, PeerSays};

/// The lease and the sent-marks, as alerting's delivery asks them.
pub struct NotificationGate {
    cluster: Arc<Cluster>,
    windows: Windows,
}

impl NotificationGate {
    /// The gate of `cluster`, with alerting's mark windows: `window` (half
    /// the smallest `group_interval`), `same` (half the smallest
    /// `repeat_interval`) and `stale_after` (the smallest
    /// `repeat_interval`).
    pub fn new(
        cluster: Arc<Cluster>,
        window: DurationMs,
        same: DurationMs,
        stale_after: DurationMs,
    ) -> Self {
        Self {
            cluster,
            windows: Windows {
                window,
                same,
                stale_after,
            },
        }
    }
}

impl Gate for NotificationGate {
    fn may_send(&self) -> bool {
        self.cluster.leading()
    }

    fn settled_by_peer<'a>(&'a self, notice: Notice<'a>) -> Answer<'a, Result<PeerSays, String>> {
        Box::pin(async move {
            let Some(kv) = self.cluster.marks() else {
                return Err("the sent-marks are not open yet".into());
            };
            let mine = RowMark::of(notice.receiver, notice.message);
            let mark = marks::lookup(kv, &mine.key).await?;
            let now = crate::clock::now();
            Ok(mine.says(mark.as_ref(), notice.created, now, &self.windows))
        })
    }

    fn settled<'a>(&'a self, notice: Notice<'a>) -> Answer<'a, ()> {
        Box::pin(async move {
            let Some(kv) = self.cluster.marks() else {
                return;
            };
            let mine = RowMark::of(notice.receiver, notice.message);
            let by = &self.cluster.settings().replica_id;
            if let Err(e) = marks::record(kv, &mine, notice.created, by).await {
                tracing::warn!(receiver = %notice.receiver, error = %e, "sent-mark not written: a new leader may send this notification again");
            }
        })
    }
}
