//! Session identifiers, parsed once at the edge.

use std::{fmt, sync::Arc};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest session id accepted, in characters.
pub const SESSION_ID_MAX_LEN: usize = 128;

/// A session's id: 1–128 characters of `[A-Za-z0-9._:@-]`.
///
/// The character set is safe in URL paths, Prometheus label values and log
/// lines without escaping surprises, and covers the ids gateways use (phone
/// numbers, JIDs like `5511999999999@s.whatsapp.net`, tenant:instance pairs).
/// Cloning is cheap: the text is shared.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(Arc<str>);

/// Why a text is not a session id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionIdError {
    /// The id was empty.
    #[error("session id is empty (1-128 characters of A-Z a-z 0-9 . _ : @ -)")]
    Empty,
    /// The id was longer than [`SESSION_ID_MAX_LEN`].
    #[error("session id is {len} characters long; the limit is 128")]
    TooLong {
        /// Its length in characters.
        len: usize,
    },
    /// The id held a character outside the allowed set.
    #[error("session id `{value}` contains {found:?}; allowed are A-Z a-z 0-9 . _ : @ -")]
    BadCharacter {
        /// The rejected id.
        value: String,
        /// The first character outside the set.
        found: char,
    },
}

impl SessionId {
    /// Parses `text` as a session id.
    pub fn parse(text: &str) -> Result<Self, SessionIdError> {
        if text.is_empty() {
            return Err(SessionIdError::Empty);
        }
        let len = text.chars().count();
        if len > SESSION_ID_MAX_LEN {
            return Err(SessionIdError::TooLong { len });
        }
        if let Some(found) = text.chars().find(|c| !is_id_char(*c)) {
            return Err(SessionIdError::BadCharacter {
                value: text.to_owned(),
                found,
            });
        }
        Ok(Self(Arc::from(text)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id's shared text (no copy: views that outlive a borrow keep it).
    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '-')
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({:?})", &*self.0)
    }
}

impl std::borrow::Borrow<str> for SessionId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for SessionId {
    type Err = SessionIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for SessionId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_gateway_ids() {
        for ok in [
            "default",
            "5511999999999@s.whatsapp.net",
            "tenant-1:inst_2",
            "a",
        ] {
            assert_eq!(SessionId::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_bad_ids_with_a_reason() {
        assert_eq!(SessionId::parse(""), Err(SessionIdError::Empty));
        assert_eq!(
            SessionId::parse(&"a".repeat(129)),
            Err(SessionIdError::TooLong { len: 129 })
        );
        assert!(SessionId::parse(&"a".repeat(128)).is_ok());
        let err = SessionId::parse("bad id").unwrap_err();
        assert!(err.to_string().contains("' '"), "{err}");
        assert!(SessionId::parse("a/b").is_err());
        assert!(SessionId::parse("é").is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_accepts_only_the_set(s in ".{0,200}") {
            match SessionId::parse(&s) {
                Ok(id) => {
                    prop_assert!(!s.is_empty() && s.len() <= 128);
                    prop_assert!(s.chars().all(is_id_char));
                    prop_assert_eq!(id.as_str(), s.as_str());
                }
                Err(_) => prop_assert!(s.is_empty() || s.chars().count() > 128 || !s.chars().all(is_id_char)),
            }
        }

        #[test]
        fn valid_ids_round_trip(s in "[A-Za-z0-9._:@-]{1,128}") {
            let id = SessionId::parse(&s).unwrap();
            prop_assert_eq!(id.as_str(), s.as_str());
        }
    }
}
