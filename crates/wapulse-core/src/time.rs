//! Instants and durations as the model sees them.
//!
//! The core never reads a clock: every instant is passed in by the caller as
//! a [`Timestamp`] (milliseconds since the Unix epoch, UTC). Millisecond
//! integers keep the model cheap to copy, trivially ordered, and exactly
//! reproducible when a journal is replayed.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant, in milliseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

/// Why a text could not be read as a timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not an RFC 3339 timestamp (like 2026-02-05T12:00:00.000Z)")]
pub struct TimestampError {
    /// The text that was rejected.
    pub value: String,
}

impl Timestamp {
    /// The instant `ms` milliseconds after the Unix epoch.
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Seconds since the Unix epoch, with millisecond precision.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// Parses an RFC 3339 timestamp (`2026-02-05T12:00:00.000Z`, any offset).
    pub fn parse_rfc3339(text: &str) -> Result<Self, TimestampError> {
        let parsed: jiff::Timestamp = text.parse().map_err(|_| TimestampError {
            value: text.to_owned(),
        })?;
        Ok(Self(parsed.as_millisecond()))
    }

    /// Formats as RFC 3339 in UTC with milliseconds, like the seed:
    /// `2026-02-05T12:00:00.000Z`.
    pub fn to_rfc3339(self) -> String {
        match jiff::Timestamp::from_millisecond(self.0) {
            Ok(ts) => format!("{ts:.3}"),
            // Outside jiff's range (±9999 years): show the raw number rather
            // than panic; such values are rejected at ingest anyway.
            Err(_) => format!("@{}ms", self.0),
        }
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> DurationMs {
        DurationMs(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    /// `self` moved forward by `d` (saturating).
    pub fn plus(self, d: DurationMs) -> Timestamp {
        Timestamp(self.0.saturating_add(d.0.min(i64::MAX as u64) as i64))
    }

    /// `self` moved back by `d` (saturating).
    pub fn minus(self, d: DurationMs) -> Timestamp {
        Timestamp(self.0.saturating_sub(d.0.min(i64::MAX as u64) as i64))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// A non-negative span of time in milliseconds.
///
/// In configuration it is written either as a humantime string (`"90s"`,
/// `"1h 30m"`, `"24h"`) or as an integer number of milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DurationMs(u64);

/// Why a text could not be read as a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a duration (like 30s, 5m, 24h or 1h 30m)")]
pub struct DurationError {
    /// The text that was rejected.
    pub value: String,
}

impl DurationMs {
    /// Zero.
    pub const ZERO: Self = Self(0);

    /// `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    /// `s` seconds.
    pub const fn from_secs(s: u64) -> Self {
        Self(s * 1000)
    }

    /// `m` minutes.
    pub const fn from_mins(m: u64) -> Self {
        Self(m * 60_000)
    }

    /// `h` hours.
    pub const fn from_hours(h: u64) -> Self {
        Self(h * 3_600_000)
    }

    /// Milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds (rounded down).
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// Seconds with millisecond precision.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// Parses a humantime duration such as `30s`, `5m`, `1h 30m`.
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let d = humantime::parse_duration(text.trim()).map_err(|_| DurationError {
            value: text.to_owned(),
        })?;
        Ok(Self(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
    }

    /// The operator-facing short form: the largest unit, plus the next one
    /// when it is non-zero (`1h`, `1h 1m`, `30s`, `1d 1h`). Units below the
    /// second are dropped except for spans under one second (`250ms`).
    pub fn formatted(self) -> String {
        const UNITS: [(u64, &str); 4] = [
            (86_400_000, "d"),
            (3_600_000, "h"),
            (60_000, "m"),
            (1_000, "s"),
        ];
        if self.0 < 1000 {
            return format!("{}ms", self.0);
        }
        let mut rest = self.0;
        for (i, (size, unit)) in UNITS.iter().enumerate() {
            if rest >= *size {
                let major = rest / size;
                rest %= size;
                let mut out = format!("{major}{unit}");
                if let Some((next_size, next_unit)) = UNITS.get(i + 1) {
                    let minor = rest / next_size;
                    if minor > 0 {
                        out.push_str(&format!(" {minor}{next_unit}"));
                    }
                }
                return out;
            }
        }
        unreachable!("spans of a second or more always match a unit")
    }
}

impl fmt::Display for DurationMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.formatted())
    }
}

impl Serialize for DurationMs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for DurationMs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !d.is_human_readable() {
            // Binary snapshots hold plain milliseconds.
            return u64::deserialize(d).map(Self);
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Millis(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Millis(ms) => Ok(Self(ms)),
            Raw::Text(t) => Self::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// Serde helpers writing a [`Timestamp`] as RFC 3339 text, for wire forms.
pub mod rfc3339 {
    use super::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `2026-02-05T12:00:00.000Z`.
    pub fn serialize<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&ts.to_rfc3339())
    }

    /// Reads any RFC 3339 timestamp.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        Timestamp::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde helpers for an optional [`Timestamp`] as RFC 3339 text.
pub mod rfc3339_opt {
    use super::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `2026-02-05T12:00:00.000Z`, or null.
    pub fn serialize<S: Serializer>(ts: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match ts {
            Some(ts) => s.serialize_str(&ts.to_rfc3339()),
            None => s.serialize_none(),
        }
    }

    /// Reads an RFC 3339 timestamp or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        let text = Option::<std::borrow::Cow<str>>::deserialize(d)?;
        text.map(|t| Timestamp::parse_rfc3339(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_seed() {
        let cases = [
            (3_600_000, "1h"),
            (3_660_000, "1h 1m"),
            (30_000, "30s"),
            (90_061_000, "1d 1h"),
            (3_605_000, "1h"),
            (65_000, "1m 5s"),
            (86_400_000, "1d"),
            (999, "999ms"),
            (0, "0ms"),
            (1_000, "1s"),
        ];
        for (ms, want) in cases {
            assert_eq!(DurationMs::from_millis(ms).formatted(), want, "{ms} ms");
        }
    }

    #[test]
    fn rfc3339_round_trips_with_milliseconds() {
        let ts = Timestamp::parse_rfc3339("2026-02-05T12:00:00.000Z").unwrap();
        assert_eq!(ts.to_rfc3339(), "2026-02-05T12:00:00.000Z");
        let offset = Timestamp::parse_rfc3339("2026-02-05T14:00:00.250+02:00").unwrap();
        assert_eq!(offset.to_rfc3339(), "2026-02-05T12:00:00.250Z");
    }

    #[test]
    fn bad_timestamp_names_the_value() {
        let err = Timestamp::parse_rfc3339("yesterday").unwrap_err();
        assert!(err.to_string().contains("`yesterday`"), "{err}");
    }

    #[test]
    fn durations_parse_from_text_or_millis() {
        assert_eq!(DurationMs::parse("90s").unwrap(), DurationMs::from_secs(90));
        assert_eq!(
            DurationMs::parse("1h 30m").unwrap(),
            DurationMs::from_mins(90)
        );
        assert!(DurationMs::parse("soon").is_err());
        let d: DurationMs = serde_json::from_str("1500").unwrap();
        assert_eq!(d, DurationMs::from_millis(1500));
        let d: DurationMs = serde_json::from_str("\"2m\"").unwrap();
        assert_eq!(d, DurationMs::from_secs(120));
    }

    #[test]
    fn since_never_goes_negative() {
        let a = Timestamp::from_millis(1_000);
        let b = Timestamp::from_millis(5_000);
        assert_eq!(b.since(a), DurationMs::from_secs(4));
        assert_eq!(a.since(b), DurationMs::ZERO);
    }
}
