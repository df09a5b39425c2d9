//! The gate the outbox asks before it sends a direct notification (Slack,
//! PagerDuty, webhook): "may I send now? did a peer already settle this
//! message?". The dead-man's switch asks it too, before each ping
//! (`may_send`).
//!
//! Alerting owns this interface and knows nothing of who answers it (the
//! way Alertmanager's `notify` package owns its `Peer`): embedded mode has
//! no gate (always send); cluster mode's lease and sent-marks implement it,
//! and `startup` wires them in. Alertmanager receivers and the log are
//! never gated: Alertmanager deduplicates what every replica sends, and the
//! log is each replica's own.

use std::future::Future;
use std::pin::Pin;

use wapulse_core::Timestamp;
use wapulse_core::grouping::GroupMessage;

/// One group message in a receiver's outbox, as the gate sees it.
#[derive(Clone, Copy, Debug)]
pub struct Notice<'a> {
    /// The receiver it is for.
    pub receiver: &'a str,
    /// What it says.
    pub message: &'a GroupMessage,
    /// When this replica wrote it (its own clock).
    pub created: Timestamp,
}

/// What a gate knows of a message from its peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerSays {
    /// A peer settled it (delivered, or refused for good): settle it here
    /// without sending.
    Settled,
    /// No peer settled it. `stale`: and none settled anything of its group
    /// since it was written, for longer than the group takes to say it
    /// again (see the gate's rule); a replica that does not send lets it
    /// expire instead of holding its group back.
    Open {
        /// Past the time it may wait.
        stale: bool,
    },
}

/// A gate's answer, to be awaited.
pub type Answer<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Who may send direct notifications, and what peers already sent.
pub trait Gate: Send + Sync {
    /// Whether this replica may send direct notifications now (asked again
    /// right before each send: the answer may change at any moment).
    fn may_send(&self) -> bool;

    /// Whether a peer already settled this message (delivered or refused
    /// it for good), and if not, whether it is stale; `Err(why)` means this
    /// cannot be told now, and the message waits.
    fn settled_by_peer<'a>(&'a self, notice: Notice<'a>) -> Answer<'a, Result<PeerSays, String>>;

    /// This replica settled the message: tells the peers, so that a new
    /// sender neither repeats it nor drops what comes after it.
    fn settled<'a>(&'a self, notice: Notice<'a>) -> Answer<'a, ()>;
}
