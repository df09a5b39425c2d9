//! The loose values a wire event is read into: any JSON value, a labels
//! object, an ids array. Each is read in one pass and bounded, so an
//! event's size never decides how much memory it takes; what is wrong is
//! kept for the error [`RawEvent::parse`](super::RawEvent::parse) names.

use std::fmt;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::wire::MAX_IDS;
use crate::labels::MAX_CHANGES;

/// A JSON value as a gateway sent it, before it is checked. Read in one
/// pass: an array or object is skipped, never held (its size must not
/// decide how much memory a request takes).
#[derive(Clone, Debug)]
pub enum WireValue {
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A number with a fraction (or too large for `i64`).
    Float(f64),
    /// A string.
    Text(String),
    /// An array or object.
    Composite(IgnoredAny),
}

impl<'de> Deserialize<'de> for WireValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Loose;
        impl<'de> serde::de::Visitor<'de> for Loose {
            type Value = WireValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<WireValue, E> {
                Ok(WireValue::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<WireValue, E> {
                Ok(WireValue::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<WireValue, E> {
                // Beyond i64, a number is a float (as JSON has it).
                Ok(i64::try_from(v).map_or(WireValue::Float(v as f64), WireValue::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<WireValue, E> {
                Ok(WireValue::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<WireValue, E> {
                Ok(WireValue::Text(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<WireValue, E> {
                Ok(WireValue::Text(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<WireValue, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(WireValue::Composite(IgnoredAny))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<WireValue, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(WireValue::Composite(IgnoredAny))
            }
        }
        deserializer.deserialize_any(Loose)
    }
}

/// The `labels` field as a gateway sent it, before it is checked.
#[derive(Clone, Debug)]
pub enum WireLabels {
    /// An object: its entries in order, repeats kept (`None`: `null`); at
    /// most one more than a labels event may carry (the rest is skipped
    /// unread: that one more is refused anyway).
    Object(Vec<(String, Option<WireValue>)>),
    /// Anything but an object, described for the error.
    Other(String),
}

impl<'de> Deserialize<'de> for WireLabels {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Loose;
        impl<'de> serde::de::Visitor<'de> for Loose {
            type Value = WireLabels;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<WireLabels, A::Error> {
                let mut entries = Vec::new();
                while entries.len() <= MAX_CHANGES {
                    match map.next_entry()? {
                        Some(entry) => entries.push(entry),
                        None => return Ok(WireLabels::Object(entries)),
                    }
                }
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(WireLabels::Object(entries))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<WireLabels, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(WireLabels::Other("an array".into()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<WireLabels, E> {
                Ok(WireLabels::Other(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<WireLabels, E> {
                Ok(WireLabels::Other(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<WireLabels, E> {
                Ok(WireLabels::Other(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<WireLabels, E> {
                Ok(WireLabels::Other(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<WireLabels, E> {
                Ok(WireLabels::Other(format!("\"{}\"", truncate_for_error(v))))
            }
            fn visit_unit<E>(self) -> Result<WireLabels, E> {
                Ok(WireLabels::Other("null".into()))
            }
        }
        deserializer.deserialize_any(Loose)
    }
}

/// The `ids` field as a gateway sent it, before it is checked.
#[derive(Clone, Debug)]
pub enum WireIds {
    /// An array: its items in order; at most one more than an event may
    /// carry (the rest is skipped unread: that one more is refused anyway).
    List(Vec<WireValue>),
    /// Anything but an array, described for the error.
    Other(String),
}

impl<'de> Deserialize<'de> for WireIds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Loose;
        impl<'de> serde::de::Visitor<'de> for Loose {
            type Value = WireIds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<WireIds, A::Error> {
                let mut items = Vec::new();
                while items.len() <= MAX_IDS {
                    match seq.next_element()? {
                        Some(item) => items.push(item),
                        None => return Ok(WireIds::List(items)),
                    }
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(WireIds::List(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<WireIds, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(WireIds::Other("an object".into()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<WireIds, E> {
                Ok(WireIds::Other(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<WireIds, E> {
                Ok(WireIds::Other(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<WireIds, E> {
                Ok(WireIds::Other(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<WireIds, E> {
                Ok(WireIds::Other(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<WireIds, E> {
                Ok(WireIds::Other(format!("\"{}\"", truncate_for_error(v))))
            }
            fn visit_unit<E>(self) -> Result<WireIds, E> {
                Ok(WireIds::Other("null".into()))
            }
        }
        deserializer.deserialize_any(Loose)
    }
}

impl WireValue {
    pub(super) fn describe(&self) -> String {
        match self {
            WireValue::Bool(b) => b.to_string(),
            WireValue::Int(i) => i.to_string(),
            WireValue::Float(f) => f.to_string(),
            WireValue::Text(t) => format!("\"{}\"", truncate_for_error(t)),
            WireValue::Composite(_) => "an array or object".to_owned(),
        }
    }
}

pub(super) fn truncate_for_error(text: &str) -> String {
    if text.chars().count() > 64 {
        let head: String = text.chars().take(64).collect();
        format!("{head}…")
    } else {
        text.to_owned()
    }
}
