//! A business number's quality and messaging limit (the Cloud API's
//! `phone_number_quality_update`).

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

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
