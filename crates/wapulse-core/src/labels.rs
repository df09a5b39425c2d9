//! Session labels: a few operator-chosen `name = value` pairs per session
//! (`tenant`, `region`, …) that route notifications, filter lists and
//! appear once per session in `wa_session_info`.
//!
//! A session holds at most [`MAX_LABELS`] labels, kept sorted by name in a
//! boxed slice sized exactly to them: no heap growth beyond that bound,
//! however many `labels` events arrive. [`LabelChanges`] is what one
//! `labels` event carries: names to set and names to remove (`null`).
//!
//! Names are `[a-zA-Z_][a-zA-Z0-9_]*`, at most [`MAX_NAME_LEN`] characters,
//! so they are valid Prometheus label names; [`RESERVED`] names and names
//! starting with `__` are refused because alerts and metrics already carry
//! labels by those names. Values are any text of at most
//! [`MAX_VALUE_LEN`] characters.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Most labels one session holds.
pub const MAX_LABELS: usize = 16;
/// Longest label name, in characters.
pub const MAX_NAME_LEN: usize = 64;
/// Longest label value, in characters.
pub const MAX_VALUE_LEN: usize = 128;
/// Names refused because alerts and metrics carry labels by these names
/// (and every name starting with `__`, Prometheus' own).
pub const RESERVED: [&str; 5] = ["session", "alertname", "severity", "code", "level"];

/// Why a label (or a change to labels) is refused. Every variant names the
/// label concerned ([`LabelError::name`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// The name is not `[a-zA-Z_][a-zA-Z0-9_]*` of at most 64 characters.
    #[error(
        "`{name}` is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, at most {MAX_NAME_LEN} characters)"
    )]
    BadName {
        /// The name (shortened when long).
        name: String,
    },
    /// The name is reserved.
    #[error(
        "`{name}` is a reserved label name (session, alertname, severity, code, level and names \
         starting with __ are used by alerts and metrics)"
    )]
    Reserved {
        /// The name.
        name: String,
    },
    /// The value is longer than [`MAX_VALUE_LEN`].
    #[error("the value of `{name}` is {len} characters long; the limit is {MAX_VALUE_LEN}")]
    ValueTooLong {
        /// The label.
        name: String,
        /// The value's length in characters.
        len: usize,
    },
    /// The value is neither a string nor `null`.
    #[error("the value of `{name}` must be a string (or null to remove it), got {got}")]
    NotText {
        /// The label.
        name: String,
        /// What was sent instead.
        got: String,
    },
    /// The same name appears twice in one change.
    #[error("`{name}` appears more than once")]
    Duplicate {
        /// The label.
        name: String,
    },
    /// The session would hold more than [`MAX_LABELS`] labels.
    #[error(
        "setting `{name}` would give the session {count} labels; a session holds at most \
         {MAX_LABELS} (remove some with null)"
    )]
    TooMany {
        /// The first label that does not fit.
        name: String,
        /// How many labels the session would hold.
        count: usize,
    },
}

impl LabelError {
    /// The label the error is about.
    pub fn name(&self) -> &str {
        match self {
            LabelError::BadName { name }
            | LabelError::Reserved { name }
            | LabelError::ValueTooLong { name, .. }
            | LabelError::NotText { name, .. }
            | LabelError::Duplicate { name }
            | LabelError::TooMany { name, .. } => name,
        }
    }
}

fn shortened(text: &str) -> String {
    if text.chars().count() > MAX_NAME_LEN {
        let head: String = text.chars().take(MAX_NAME_LEN).collect();
        format!("{head}…")
    } else {
        text.to_owned()
    }
}

/// Checks a label name: syntax, length, reserved names.
pub fn check_name(name: &str) -> Result<(), LabelError> {
    if !(crate::ident::is_identifier(name) && name.len() <= MAX_NAME_LEN) {
        return Err(LabelError::BadName {
            name: shortened(name),
        });
    }
    if name.starts_with("__") || RESERVED.contains(&name) {
        return Err(LabelError::Reserved {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Checks a label value's length.
pub fn check_value(name: &str, value: &str) -> Result<(), LabelError> {
    let len = value.chars().count();
    if len > MAX_VALUE_LEN {
        return Err(LabelError::ValueTooLong {
            name: name.to_owned(),
            len,
        });
    }
    Ok(())
}

/// A session's labels: at most [`MAX_LABELS`], sorted by name, each name
/// and value checked. Serializes as a map (`{"region":"eu-1"}` in JSON).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Labels(Box<[(Box<str>, Box<str>)]>);

impl Labels {
    /// Labels from `(name, value)` pairs, checked (names, values, no name
    /// twice, at most [`MAX_LABELS`]).
    pub fn try_from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, LabelError> {
        let changes = LabelChanges::try_from_changes(
            pairs.into_iter().map(|(name, value)| (name, Some(value))),
        )?;
        Labels::default().merged(&changes)
    }

    /// The value of `name`, if the session has that label.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(n, _)| (**n).cmp(name))
            .ok()
            .map(|i| &*self.0[i].1)
    }

    /// Every label, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (&**n, &**v))
    }

    /// How many labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no label.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The labels after `changes`, or the first label that would not fit:
    /// the result may hold at most [`MAX_LABELS`] (removals in the same
    /// change make room). New names are taken in name order, so the error
    /// names the first new name past the limit.
    pub fn merged(&self, changes: &LabelChanges) -> Result<Labels, LabelError> {
        let m = self.merge(changes);
        match m.refused.first() {
            Some(name) => Err(LabelError::TooMany {
                name: (*name).to_owned(),
                count: m.labels.len() + m.refused.len(),
            }),
            None => Ok(m.labels),
        }
    }

    /// Applies `changes`, keeping at most [`MAX_LABELS`]: names already
    /// present are always updated or removed; new names past the limit are
    /// dropped (in name order, so the result is deterministic). Returns how
    /// many were dropped. The service refuses such a change before it is
    /// accepted ([`Labels::merged`]); this bound holds whatever arrives.
    pub fn apply(&mut self, changes: &LabelChanges) -> usize {
        let m = self.merge(changes);
        *self = m.labels;
        m.refused.len()
    }

    fn merge<'c>(&self, changes: &'c LabelChanges) -> Merge<'c> {
        let mut out: Vec<(Box<str>, Box<str>)> = Vec::with_capacity(MAX_LABELS);
        for (n, v) in self.0.iter() {
            match changes.get(n) {
                None => out.push((n.clone(), v.clone())),
                Some(Some(value)) => out.push((n.clone(), value.into())),
                Some(None) => {}
            }
        }
        let mut refused = Vec::new();
        for (n, v) in changes.0.iter() {
            if let Some(v) = v
                && self.get(n).is_none()
            {
                if out.len() < MAX_LABELS {
                    out.push((n.clone(), v.clone()));
                } else {
                    refused.push(&**n);
                }
            }
        }
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Merge {
            labels: Labels(out.into_boxed_slice()),
            refused,
        }
    }
}

/// The outcome of a merge: the labels (bounded) and the new names, in name
/// order, that did not fit.
struct Merge<'c> {
    labels: Labels,
    refused: Vec<&'c str>,
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (n, v) in self.0.iter() {
            map.serialize_entry(&**n, &**v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let pairs: Vec<(Box<str>, Box<str>)> =
            deserializer.deserialize_map(PairsVisitor::new("a map of label names to strings"))?;
        Labels::try_from_pairs(pairs.iter().map(|(n, v)| (&**n, &**v))).map_err(de::Error::custom)
    }
}

/// What one `labels` event changes: names to set to a value, and names to
/// remove (`None`, `null` on the wire). Sorted by name, no name twice, every
/// name and value checked, at most [`MAX_LABELS`] names set. Serializes as
/// a map (`{"region":"eu-1","old":null}` in JSON), which is the event's
/// wire form.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LabelChanges(Box<[Change]>);

/// A name and its new value (`None`: removed).
type Change = (Box<str>, Option<Box<str>>);

/// Most names one `labels` event may carry (sets and removals).
pub const MAX_CHANGES: usize = 2 * MAX_LABELS;

impl LabelChanges {
    /// Checks `(name, value or None to remove)` changes.
    pub fn try_from_changes<'a>(
        changes: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<Self, LabelError> {
        // How many labels the session may hold is checked against its
        // labels when the change is applied (`Labels::merged`): a change
        // setting 17 names is refused there, with the session's count.
        let mut out: Vec<Change> = Vec::new();
        for (name, value) in changes {
            check_name(name)?;
            if let Some(v) = value {
                check_value(name, v)?;
            }
            if out.len() == MAX_CHANGES {
                return Err(LabelError::TooMany {
                    name: name.to_owned(),
                    count: out.len() + 1,
                });
            }
            out.push((name.into(), value.map(Into::into)));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = out.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(LabelError::Duplicate {
                name: w[0].0.to_string(),
            });
        }
        Ok(Self(out.into_boxed_slice()))
    }

    /// The change to `name`: `Some(Some(value))` sets it, `Some(None)`
    /// removes it, `None` leaves it alone.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .binary_search_by(|(n, _)| (**n).cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_deref())
    }

    /// Every change, sorted by name (`None`: remove).
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.0.iter().map(|(n, v)| (&**n, v.as_deref()))
    }

    /// How many names the change concerns.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the change concerns no name.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for LabelChanges {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (n, v) in self.0.iter() {
            map.serialize_entry(&**n, &v.as_deref())?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for LabelChanges {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let pairs: Vec<Change> = deserializer
            .deserialize_map(PairsVisitor::new("a map of label names to strings or null"))?;
        LabelChanges::try_from_changes(pairs.iter().map(|(n, v)| (&**n, v.as_deref())))
            .map_err(de::Error::custom)
    }
}

/// Reads a map into pairs in order, keeping repeated keys (so they can be
/// refused by name) and refusing more than can ever be valid.
struct PairsVisitor<V> {
    what: &'static str,
    value: PhantomData<V>,
}

impl<V> PairsVisitor<V> {
    fn new(what: &'static str) -> Self {
        Self {
            what,
            value: PhantomData,
        }
    }
}

impl<'de, V: Deserialize<'de>> Visitor<'de> for PairsVisitor<V> {
    type Value = Vec<(Box<str>, V)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = map.next_entry::<Box<str>, V>()? {
            if out.len() == MAX_CHANGES {
                return Err(de::Error::custom(format!(
                    "more than {MAX_CHANGES} labels in one map"
                )));
            }
            out.push((k, v));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(pairs: &[(&str, Option<&str>)]) -> LabelChanges {
        LabelChanges::try_from_changes(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn names_are_checked() {
        for good in ["tenant", "_x", "Region_2", &"a".repeat(64)] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in ["", "2x", "a-b", "é", "a b", &"a".repeat(65)] {
            assert!(
                matches!(check_name(bad), Err(LabelError::BadName { .. })),
                "{bad}"
            );
        }
        for reserved in [
            "session",
            "alertname",
            "severity",
            "code",
            "level",
            "__x",
            "__",
        ] {
            assert!(
                matches!(check_name(reserved), Err(LabelError::Reserved { .. })),
                "{reserved}"
            );
        }
        // Case matters: `Session` is not `session`.
        assert_eq!(check_name("Session"), Ok(()));
    }

    #[test]
    fn values_are_counted_in_characters() {
        assert_eq!(check_value("x", &"é".repeat(128)), Ok(()));
        assert_eq!(
            check_value("x", &"é".repeat(129)),
            Err(LabelError::ValueTooLong {
                name: "x".into(),
                len: 129
            })
        );
    }

    #[test]
    fn labels_stay_sorted_and_merge() {
        let l = Labels::try_from_pairs([("zone", "z"), ("app", "a")]).unwrap();
        assert_eq!(l.iter().collect::<Vec<_>>(), [("app", "a"), ("zone", "z")]);
        let l = l
            .merged(&changes(&[
                ("zone", None),
                ("mid", Some("m")),
                ("app", Some("b")),
            ]))
            .unwrap();
        assert_eq!(l.iter().collect::<Vec<_>>(), [("app", "b"), ("mid", "m")]);
        assert_eq!(l.get("mid"), Some("m"));
        assert_eq!(l.get("zone"), None);
    }

    #[test]
    fn the_bound_names_the_first_label_that_does_not_fit() {
        let names: Vec<String> = (0..16).map(|i| format!("k{i:02}")).collect();
        let full = Labels::try_from_pairs(names.iter().map(|n| (n.as_str(), "v"))).unwrap();
        assert_eq!(full.len(), 16);
        let err = full
            .merged(&changes(&[("b", Some("1")), ("a", Some("1"))]))
            .unwrap_err();
        assert_eq!(
            err,
            LabelError::TooMany {
                name: "a".into(),
                count: 18
            }
        );
        // Removing in the same change makes room; updating needs none.
        let ok = full
            .merged(&changes(&[
                ("k00", None),
                ("a", Some("1")),
                ("k01", Some("2")),
            ]))
            .unwrap();
        assert_eq!(ok.len(), 16);
        // The fold keeps the bound and drops the new names past it.
        let mut bounded = full.clone();
        let dropped = bounded.apply(&changes(&[
            ("k00", None),
            ("a", Some("1")),
            ("b", Some("1")),
            ("k01", Some("2")),
        ]));
        assert_eq!(dropped, 1);
        assert_eq!(bounded.len(), 16);
        assert_eq!(bounded.get("a"), Some("1"));
        assert_eq!(bounded.get("b"), None);
        assert_eq!(bounded.get("k01"), Some("2"));
        assert_eq!(bounded.get("k00"), None);
    }

    #[test]
    fn one_change_names_at_most_32_and_no_label_twice() {
        let names: Vec<String> = (0..33).map(|i| format!("k{i:02}")).collect();
        let err =
            LabelChanges::try_from_changes(names.iter().map(|n| (n.as_str(), None))).unwrap_err();
        assert_eq!(err.name(), "k32");
        // Setting 17 is a well-formed change that no session can take: the
        // merge refuses it, naming the first label past 16.
        let seventeen =
            LabelChanges::try_from_changes(names[..17].iter().map(|n| (n.as_str(), Some("v"))))
                .unwrap();
        let err = Labels::default().merged(&seventeen).unwrap_err();
        assert_eq!(err.name(), "k16");
        let err = LabelChanges::try_from_changes([("a", Some("1")), ("a", None)]).unwrap_err();
        assert_eq!(err, LabelError::Duplicate { name: "a".into() });
    }

    #[test]
    fn serde_forms() {
        let c = changes(&[("region", Some("eu-1")), ("old", None)]);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, r#"{"old":null,"region":"eu-1"}"#);
        assert_eq!(serde_json::from_str::<LabelChanges>(&json).unwrap(), c);
        let l = Labels::try_from_pairs([("region", "eu-1")]).unwrap();
        assert_eq!(serde_json::to_string(&l).unwrap(), r#"{"region":"eu-1"}"#);
        assert!(serde_json::from_str::<Labels>(r#"{"session":"x"}"#).is_err());
        assert!(serde_json::from_str::<Labels>(r#"{"a":null}"#).is_err());
        assert!(serde_json::from_str::<LabelChanges>(r#"{"a":1}"#).is_err());
    }
}
