//! The words of the event vocabulary: a session's states, how it
//! authenticated, which way a message went, and platform metric names.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ident::is_identifier;

/// How many session states there are.
pub const STATES: usize = 8;

/// Where a session sits in its connection state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Opening the WhatsApp socket.
    Connecting,
    /// Open and authenticated.
    Connected,
    /// Lost the connection and trying again.
    Reconnecting,
    /// Closed, not currently trying.
    Disconnected,
    /// Needs a QR scan (or pairing code) before it can connect.
    QrRequired,
    /// WhatsApp logged the device out: needs re-pairing.
    LoggedOut,
    /// The gateway's reconnect circuit breaker stopped retrying.
    CircuitOpen,
    /// An operator stopped the session on purpose (WAHA STOPPED, an
    /// adapter's `stop()` when asked): it pages nothing. Last in the
    /// list, so that snapshots written before it decode unchanged.
    Stopped,
}

impl SessionState {
    /// Every state, in a stable order (used for rollups and metrics).
    pub const ALL: [SessionState; STATES] = [
        SessionState::Connecting,
        SessionState::Connected,
        SessionState::Reconnecting,
        SessionState::Disconnected,
        SessionState::QrRequired,
        SessionState::LoggedOut,
        SessionState::CircuitOpen,
        SessionState::Stopped,
    ];

    /// The wire name (`qr_required`).
    pub const fn as_str(self) -> &'static str {
        match self {
            SessionState::Connecting => "connecting",
            SessionState::Connected => "connected",
            SessionState::Reconnecting => "reconnecting",
            SessionState::Disconnected => "disconnected",
            SessionState::QrRequired => "qr_required",
            SessionState::LoggedOut => "logged_out",
            SessionState::CircuitOpen => "circuit_open",
            SessionState::Stopped => "stopped",
        }
    }

    /// Position in [`SessionState::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a session authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A QR code was scanned.
    QrScan,
    /// A pairing code was entered.
    PairingCode,
    /// Stored credentials were restored.
    SessionRestore,
    /// A passkey was confirmed (WAHA's PASSKEY_* flow).
    Passkey,
}

impl AuthMethod {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthMethod::QrScan => "qr_scan",
            AuthMethod::PairingCode => "pairing_code",
            AuthMethod::SessionRestore => "session_restore",
            AuthMethod::Passkey => "passkey",
        }
    }

    pub(super) fn parse(text: &str) -> Option<Self> {
        [
            Self::QrScan,
            Self::PairingCode,
            Self::SessionRestore,
            Self::Passkey,
        ]
        .into_iter()
        .find(|m| m.as_str() == text)
    }
}

/// Which way messages passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Received from WhatsApp.
    Inbound,
    /// Sent to WhatsApp.
    Outbound,
}

impl Direction {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// A platform counter or gauge name: `[A-Za-z_][A-Za-z0-9_]*`, at most 128
/// characters, so that it is a valid Prometheus metric name as well.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MetricName(Box<str>);

impl MetricName {
    /// Parses a metric name; `None` when it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        (is_identifier(text) && text.len() <= 128).then(|| Self(text.into()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
