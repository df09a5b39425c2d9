//! The words of an ack: its status and an error code.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::MAX_CODE_LEN;

/// What an ack says happened to a sent message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckStatus {
    /// WhatsApp's server took it (one tick).
    Server,
    /// It reached the recipient's device (two ticks).
    Delivered,
    /// The recipient read it.
    Read,
    /// The recipient played it (voice, video).
    Played,
    /// The server refused it.
    Error,
}

impl AckStatus {
    /// Every status, in order.
    pub const ALL: [AckStatus; 5] = [
        AckStatus::Server,
        AckStatus::Delivered,
        AckStatus::Read,
        AckStatus::Played,
        AckStatus::Error,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AckStatus::Server => "server",
            AckStatus::Delivered => "delivered",
            AckStatus::Read => "read",
            AckStatus::Played => "played",
            AckStatus::Error => "error",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// An error code from an error ack (`463`, `429`, `131048`): at most
/// [`MAX_CODE_LEN`] characters of `[A-Za-z0-9_.-]`, held inline.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ErrorCode {
    bytes: [u8; MAX_CODE_LEN],
    len: u8,
}

impl ErrorCode {
    /// The code an error ack without one is counted under.
    pub const UNKNOWN: ErrorCode = ErrorCode::fixed(b"unknown");
    /// The codes past [`MAX_ERROR_CODES`], in the life-long counts.
    pub const OTHER: ErrorCode = ErrorCode::fixed(b"other");

    const fn fixed(text: &[u8]) -> Self {
        let mut bytes = [0u8; MAX_CODE_LEN];
        let mut i = 0;
        while i < text.len() {
            bytes[i] = text[i];
            i += 1;
        }
        Self {
            bytes,
            len: text.len() as u8,
        }
    }

    /// Checks a code, or says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("must not be empty when given".into());
        }
        if text.len() > MAX_CODE_LEN {
            return Err(format!(
                "is {} characters long; an error code has at most {MAX_CODE_LEN}",
                text.chars().count()
            ));
        }
        if let Some(c) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            return Err(format!(
                "\"{text}\" holds {c:?}; an error code is letters, digits, `_`, `.` and `-`"
            ));
        }
        Ok(Self::fixed(text.as_bytes()))
    }

    /// The code's text.
    pub fn as_str(&self) -> &str {
        // Only ASCII was ever stored.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        ErrorCode::parse(&text).map_err(serde::de::Error::custom)
    }
}
