//! Label matchers and silences.
//!
//! An alert is seen through its labels: `alertname` and `code` (the code),
//! `severity` and `level` (the level), `session` (the session id, empty for
//! a fleet incident), and every label of the session. Routes and silences
//! select alerts with [`Matcher`]s, as Alertmanager does: an exact value or
//! a regular expression anchored at both ends; a label the alert lacks
//! reads as the empty string.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// Longest value or pattern a matcher takes, in characters.
pub const MAX_MATCHER_LEN: usize = 1024;

/// Most memory one compiled pattern may take (the regex engine's own
/// bound): a short pattern can still ask for a huge automaton.
const MAX_REGEX_BYTES: usize = 1 << 20;

/// Why a matcher could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    /// The value or pattern is longer than [`MAX_MATCHER_LEN`].
    #[error("the value is {0} characters long; at most {MAX_MATCHER_LEN}")]
    TooLong(usize),
    /// The label name is empty or not a label name.
    #[error("`{0}` is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)")]
    BadName(String),
    /// The regular expression does not compile.
    #[error("`{value}` is not a valid regular expression: {problem}")]
    BadRegex {
        /// The expression.
        value: String,
        /// What the regex engine said.
        problem: String,
    },
}

/// Selects alerts by one label.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "MatcherWire")]
pub struct Matcher {
    /// The label.
    pub name: String,
    /// The value, or the expression.
    pub value: String,
    /// Whether `value` is a regular expression.
    pub is_regex: bool,
    #[serde(skip)]
    regex: Option<regex::Regex>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MatcherWire {
    name: String,
    value: String,
    #[serde(default)]
    is_regex: bool,
}

impl TryFrom<MatcherWire> for Matcher {
    type Error = MatcherError;
    fn try_from(w: MatcherWire) -> Result<Self, MatcherError> {
        Matcher::new(w.name, w.value, w.is_regex)
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.value == other.value && self.is_regex == other.is_regex
    }
}

impl Matcher {
    /// Builds a matcher; a regex is anchored (`^(?:value)$`).
    pub fn new(
        name: impl Into<String>,
        value: impl Into<String>,
        is_regex: bool,
    ) -> Result<Self, MatcherError> {
        let (name, value) = (name.into(), value.into());
        if !crate::ident::is_identifier(&name) {
            return Err(MatcherError::BadName(name));
        }
        let length = value.chars().count();
        if length > MAX_MATCHER_LEN {
            return Err(MatcherError::TooLong(length));
        }
        let regex = if is_regex {
            let anchored = format!("^(?:{value})$");
            let built = regex::RegexBuilder::new(&anchored)
                .size_limit(MAX_REGEX_BYTES)
                .dfa_size_limit(MAX_REGEX_BYTES)
                .build();
            Some(built.map_err(|e| MatcherError::BadRegex {
                value: value.clone(),
                problem: e.to_string(),
            })?)
        } else {
            None
        };
        Ok(Self {
            name,
            value,
            is_regex,
            regex,
        })
    }

    /// Whether the alert whose labels `label` reads matches.
    pub fn matches<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        let actual = label(&self.name).unwrap_or("");
        match &self.regex {
            Some(re) => re.is_match(actual),
            None => actual == self.value,
        }
    }
}

/// Whether every matcher matches (an empty list matches everything).
pub fn all_match<'a>(matchers: &[Matcher], label: impl Fn(&str) -> Option<&'a str> + Copy) -> bool {
    matchers.iter().all(|m| m.matches(label))
}

/// A silence: alerts it matches while active still show (marked
/// silenced) but send nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    /// Its id.
    pub id: String,
    /// Every one must match.
    pub matchers: Vec<Matcher>,
    /// From when.
    #[serde(with = "crate::time::rfc3339")]
    pub starts_at: Timestamp,
    /// Until when (exclusive).
    #[serde(with = "crate::time::rfc3339")]
    pub ends_at: Timestamp,
    /// Who made it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// The scope of the scoped token that made it: it mutes only alerts
    /// of sessions in that scope, whatever its matchers say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<crate::scope::Scope>,
}

impl Silence {
    /// Whether it is in force at `now`.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    /// Whether it silences the alert whose labels `label` reads, at `now`.
    pub fn silences<'a>(
        &self,
        now: Timestamp,
        label: impl Fn(&str) -> Option<&'a str> + Copy,
    ) -> bool {
        self.is_active(now)
            && all_match(&self.matchers, label)
            && self.scope.as_ref().is_none_or(|s| s.admits_alert(label))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_or_pattern_has_a_size_bound() {
        let long = "a".repeat(MAX_MATCHER_LEN + 1);
        assert_eq!(
            Matcher::new("session", long.clone(), false).unwrap_err(),
            MatcherError::TooLong(MAX_MATCHER_LEN + 1)
        );
        assert!(Matcher::new("session", long, true).is_err());
        // Short, but an automaton of many megabytes: refused, not built.
        let huge = r"(\w{1,50}){1,50}";
        assert!(matches!(
            Matcher::new("session", huge, true),
            Err(MatcherError::BadRegex { .. })
        ));
        assert!(Matcher::new("session", "a".repeat(MAX_MATCHER_LEN), true).is_ok());
    }
}
