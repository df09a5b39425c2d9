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

/// What [`redact_url`] hid: to scrub from any text that might quote the
/// URL (an error message).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Hidden {
    /// Passwords, as written and decoded: scrubbed whatever their length.
    pub passwords: Vec<String>,
    /// Query values, as written and decoded: scrubbed from 4 characters
    /// (shorter ones, like `1`, are no secrets, and replacing them would
    /// garble the text).
    pub values: Vec<String>,
}

impl Hidden {
    /// `text` with every hidden secret replaced by `***`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let passwords = self.passwords.iter().filter(|p| !p.is_empty());
        let values = self.values.iter().filter(|v| v.len() >= 4);
        passwords
            .chain(values)
            .fold(text.to_owned(), |text, s| text.replace(s.as_str(), "***"))
    }
}

/// A URL as it may be shown: the password and every query value replaced
/// by `***` (`?apikey=***`), the fragment dropped; and what was hidden.
/// Not a URL: shown as it is.
pub(crate) fn redact_url(text: &str) -> (String, Hidden) {
    let Ok(mut url) = reqwest::Url::parse(text) else {
        return (text.to_owned(), Hidden::default());
    };
    let mut hidden = Hidden::default();
    let both = |written: &str| {
        // Form decoding: `+` is a space, then `%XX` escapes.
        let spaced = written.replace('+', " ");
        let decoded = percent_encoding::percent_decode_str(&spaced)
            .decode_utf8_lossy()
            .into_owned();
        if decoded == written {
            vec![decoded]
        } else {
            vec![written.to_owned(), decoded]
        }
    };
    if let Some(password) = url.password().filter(|p| !p.is_empty()).map(str::to_owned) {
        hidden.passwords.extend(both(&password));
        let _ = url.set_password(Some("***"));
    } else if !url.username().is_empty() {
        // A user name with no password is a token (`https://TOKEN@host`).
        let user = url.username().to_owned();
        hidden.passwords.extend(both(&user));
        let _ = url.set_username("***");
    }
    if let Some(query) = url.query().map(str::to_owned) {
        let shown: Vec<String> = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| match pair.split_once('=') {
                Some((key, value)) if !value.is_empty() => {
                    hidden.values.extend(both(value));
                    format!("{key}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        url.set_query(Some(&shown.join("&")));
    }
    url.set_fragment(None);
    (url.to_string(), hidden)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_query_values_never_show() {
        let (shown, hidden) =
            redact_url("https://u:p%40ss@api.example/health?apikey=k3y%2B1&verbose&x=1#frag");
        assert_eq!(
            shown,
            "https://u:***@api.example/health?apikey=***&verbose&x=***"
        );
        assert_eq!(hidden.passwords, ["p%40ss", "p@ss"]);
        assert_eq!(hidden.values, ["k3y%2B1", "k3y+1", "1"]);
        let quoted =
            "error sending request for url (https://u:p%40ss@api.example/?apikey=k3y%2B1&x=1)";
        assert_eq!(
            hidden.scrub(quoted),
            "error sending request for url (https://u:***@api.example/?apikey=***&x=1)"
        );
        let password = Hidden {
            passwords: vec!["hunter2".into()],
            values: Vec::new(),
        };
        assert_eq!(
            password.scrub("auth failed for app:hunter2@db"),
            "auth failed for app:***@db"
        );
        assert_eq!(
            redact_url("not a url"),
            ("not a url".to_owned(), Hidden::default())
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379/0").0,
            "redis://127.0.0.1:6379/0"
        );
        let (shown, hidden) = redact_url("https://t0ken-as-user@hooks.example/x");
        assert_eq!(shown, "https://***@hooks.example/x");
        assert_eq!(hidden.passwords, ["t0ken-as-user"]);
    }
}
