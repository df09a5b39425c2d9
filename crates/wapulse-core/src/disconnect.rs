//! Gateway disconnect reasons, named for an operator.
//!
//! A `state` event's `reason` may carry the close code the gateway got from
//! WhatsApp (Baileys' `DisconnectReason`, whatsmeow's connect failures,
//! Evolution's `statusReason`), as a number or as text. [`DisconnectReason`]
//! names the ones we know and says what they mean and what to do; every
//! other reason is kept as the gateway's own words.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// A close code wapulse knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnownReason {
    /// The numeric code.
    pub code: u16,
    /// A short snake_case name (`connection_replaced`).
    pub name: &'static str,
    /// What happened, in an operator's words.
    pub explanation: &'static str,
    /// What to do about it.
    pub action: &'static str,
}

/// Every code wapulse names (Baileys 7 `DisconnectReason`, whatsmeow's
/// `ConnectFailureReason`, as Evolution and WAHA forward them).
pub const KNOWN_REASONS: [KnownReason; 14] = [
    KnownReason {
        code: 401,
        name: "logged_out",
        explanation: "logged out: the device was unlinked (from the phone's Linked devices, or by \
                      WhatsApp); its stored credentials are void",
        action: "Re-pair the device (QR code or pairing code) after deleting the old credentials",
    },
    KnownReason {
        code: 402,
        name: "temporarily_banned",
        explanation: "temporarily banned: WhatsApp suspended this number for a while (usually for \
                      bulk or unsolicited messages)",
        action: "Stop sending from this number until the ban expires; review what it sent; do not \
                 re-pair in a loop",
    },
    KnownReason {
        code: 403,
        name: "forbidden",
        explanation: "forbidden: WhatsApp refused this account (banned, or the main phone's \
                      account is gone)",
        action: "Check the number's status on the phone before re-pairing; re-pairing a banned \
                 number fails",
    },
    KnownReason {
        code: 405,
        name: "client_outdated",
        explanation: "client outdated: WhatsApp refuses the gateway's protocol version",
        action: "Upgrade the gateway's WhatsApp library (Baileys, whatsmeow) and restart it",
    },
    KnownReason {
        code: 406,
        name: "unknown_logout",
        explanation: "logged out for an unstated reason (often a ban)",
        action: "Check the number on the phone; re-pair only once WhatsApp accepts it",
    },
    KnownReason {
        code: 408,
        name: "connection_lost",
        explanation: "connection lost or timed out: keepalives went unanswered",
        action: "Check the gateway's network and event loop; the gateway should reconnect",
    },
    KnownReason {
        code: 409,
        name: "bad_user_agent",
        explanation: "bad user agent: WhatsApp rejected the client's identity",
        action: "Upgrade or reconfigure the gateway's client library",
    },
    KnownReason {
        code: 411,
        name: "multidevice_mismatch",
        explanation: "multi-device mismatch: the phone's account is not on multi-device",
        action: "Re-pair from an up-to-date phone with multi-device enabled",
    },
    KnownReason {
        code: 428,
        name: "connection_closed",
        explanation: "connection closed: the websocket closed (network, proxy or server side)",
        action: "Usually transient: the gateway should reconnect; check its network if it repeats",
    },
    KnownReason {
        code: 440,
        name: "connection_replaced",
        explanation: "connection replaced: another client opened this session; two gateway \
                      instances may be running it",
        action: "Make sure exactly one gateway instance runs this session (check deployments, \
                 replicas and the session lock)",
    },
    KnownReason {
        code: 500,
        name: "bad_session",
        explanation: "bad session: the stored session data could not be used",
        action: "Restore the session credentials from backup or re-pair the device",
    },
    KnownReason {
        code: 501,
        name: "experimental",
        explanation: "WhatsApp closed the connection for an experimental reason",
        action: "Usually transient: the gateway should reconnect",
    },
    KnownReason {
        code: 503,
        name: "service_unavailable",
        explanation: "service unavailable: WhatsApp's servers refused the connection for now",
        action: "Usually transient: the gateway should reconnect with backoff; check WhatsApp's status",
    },
    KnownReason {
        code: 515,
        name: "restart_required",
        explanation: "restart required: WhatsApp asked for a new connection (normal right after \
                      pairing)",
        action: "None if the gateway reconnects at once; investigate if it does not",
    },
];

/// Text names gateways use for the codes above (Baileys' enum keys,
/// whatsmeow's events, whatsapp-web.js states), compared without case,
/// `_`, `-` or spaces.
const ALIASES: [(&str, u16); 17] = [
    ("loggedout", 401),
    ("logout", 401),
    ("unpaired", 401),
    ("tempbanned", 402),
    ("temporaryban", 402),
    ("forbidden", 403),
    ("maindevicegone", 403),
    ("clientoutdated", 405),
    ("unknownlogout", 406),
    ("connectionlost", 408),
    ("timedout", 408),
    ("multidevicemismatch", 411),
    ("connectionclosed", 428),
    ("connectionreplaced", 440),
    ("streamreplaced", 440),
    ("badsession", 500),
    ("restartrequired", 515),
];

/// A gateway's disconnect reason, read: its code when it names one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DisconnectReason<'a> {
    /// The reason as the gateway gave it.
    pub text: &'a str,
    /// Its numeric code, when it is one (`"440"`, `440`) or names one
    /// (`connectionReplaced`, `StreamReplaced`, `CONFLICT`).
    pub code: Option<u16>,
}

impl<'a> DisconnectReason<'a> {
    /// Reads a reason: a number (`440`, `"440"`, `"440: replaced"`) or a
    /// known name.
    pub fn read(text: &'a str) -> Self {
        let trimmed = text.trim();
        let digits: &str = {
            let end = trimmed
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(trimmed.len());
            &trimmed[..end]
        };
        let code = if !digits.is_empty() && digits.len() <= 5 {
            digits.parse::<u16>().ok()
        } else {
            let folded: String = trimmed
                .chars()
                .filter(|c| !matches!(c, '_' | '-' | ' ' | '.'))
                .flat_map(char::to_lowercase)
                .collect();
            let folded = folded.strip_prefix("events").unwrap_or(&folded);
            match folded {
                // whatsapp-web.js's WAState for "opened elsewhere".
                "conflict" => Some(440),
                other => ALIASES.iter().find(|(a, _)| *a == other).map(|(_, c)| *c),
            }
        };
        Self { text, code }
    }

    /// What wapulse knows about the code, if anything.
    pub fn known(&self) -> Option<&'static KnownReason> {
        let code = self.code?;
        KNOWN_REASONS.iter().find(|k| k.code == code)
    }

    /// Whether it says another client took the session over (440).
    pub fn is_conflict(&self) -> bool {
        self.code == Some(440)
    }
}

/// The last reason a session was given for not being connected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastDisconnect {
    /// The gateway's reason, as given.
    pub reason: Box<str>,
    /// When.
    pub at: Timestamp,
}

impl LastDisconnect {
    /// The reason, read.
    pub fn read(&self) -> DisconnectReason<'_> {
        DisconnectReason::read(&self.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names_are_read() {
        for (text, code) in [
            ("440", Some(440)),
            (" 401 ", Some(401)),
            ("428: Connection Closed", Some(428)),
            ("connectionReplaced", Some(440)),
            ("events.StreamReplaced", Some(440)),
            ("CONFLICT", Some(440)),
            ("LOGOUT", Some(401)),
            ("restart_required", Some(515)),
            ("timed out", Some(408)),
            ("network flap", None),
            ("", None),
            ("9999999", None),
        ] {
            assert_eq!(DisconnectReason::read(text).code, code, "{text:?}");
        }
    }

    #[test]
    fn every_named_code_is_unique_and_every_alias_names_a_known_code() {
        for (i, k) in KNOWN_REASONS.iter().enumerate() {
            assert!(KNOWN_REASONS[i + 1..].iter().all(|o| o.code != k.code));
            assert!(!k.explanation.is_empty() && !k.action.is_empty());
        }
        for (alias, code) in ALIASES {
            assert!(KNOWN_REASONS.iter().any(|k| k.code == code), "{alias}");
        }
        assert_eq!(DisconnectReason::read("4321").known(), None);
        let replaced = DisconnectReason::read("440").known().unwrap();
        assert!(
            replaced
                .explanation
                .starts_with("connection replaced: another client opened this session")
        );
    }
}
