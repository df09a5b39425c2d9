//! Cluster mode's answer to alerting's [`Gate`]: the replica holding the
//! lease sends direct notifications, and a message the leader settled
//! (its sent-mark covers it) is settled by the others without sending.

use std::sync::Arc;

use wapulse_core::DurationMs;

use super::Cluster;
use super::marks::{self, RowMark};
use crate::alerting::gate::{Answer, Gate, Notice};

/// The lease and the sent-marks, as alerting's delivery asks them.
pub struct NotificationGate {
    cluster: Arc<Cluster>,
    /// A row not newer than this past the mark's is settled by it (half
    /// the smallest `group_interval`).
    window: DurationMs,
    /// The same content within this of the mark's is settled by it (half
    /// the smallest `repeat_interval`: later, it is a reminder).
    same: DurationMs,
}

impl NotificationGate {
    /// The gate of `cluster`, with alerting's mark windows.
    pub fn new(cluster: Arc<Cluster>, window: DurationMs, same: DurationMs) -> Self {
        Self {
            cluster,
            window,
            same,
        }
    }
}

impl Gate for NotificationGate {
    fn may_send(&self) -> bool {
        self.cluster.leading()
    }

    fn settled_by_peer<'a>(&'a self, notice: Notice<'a>) -> Answer<'a, Result<bool, String>> {
        Box::pin(async move {
            let Some(kv) = self.cluster.marks() else {
                return Err("the sent-marks are not open yet".into());
            };
            let mine = RowMark::of(notice.receiver, notice.message);
            let mark = marks::lookup(kv, &mine.key).await?;
            Ok(mark
                .is_some_and(|mark| mine.settled_by(&mark, notice.created, self.window, self.same)))
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
