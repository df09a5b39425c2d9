//! Restrictions WhatsApp puts on an account: which, what they mean and
//! what is right for each.

use serde::{Deserialize, Serialize};

use super::ErrorCode;
use crate::time::Timestamp;

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
