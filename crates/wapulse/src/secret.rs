//! Secrets: tokens, keys and URLs with credentials, kept out of every
//! `Debug` print and log line.
//!
//! A leaf: every settings section uses it, and it uses nothing of ours.

use std::fmt;

/// A secret (token, key, URL with credentials). Its `Debug` never shows the
/// value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for comparison only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Replaces the password of a URL with `***`; returns the display form and
/// the password, if any.
pub(crate) fn redact_url(text: &str) -> (String, Option<String>) {
    match reqwest::Url::parse(text) {
        Ok(mut url) => match url.password().map(str::to_owned) {
            Some(p) if !p.is_empty() => {
                let _ = url.set_password(Some("***"));
                (url.to_string(), Some(p))
            }
            _ => (url.to_string(), None),
        },
        Err(_) => (text.to_owned(), None),
    }
}
