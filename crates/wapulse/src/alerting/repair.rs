//! `[alerting] repair_url`: a link, in messages about a session that must
//! be linked again (logged out, waiting for its QR code), to where the
//! tenant re-pairs it (a SaaS panel). A template of the session id and its
//! labels: `https://panel.example.com/{tenant}/sessions/{session}/pair`.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use wapulse_core::AlertCode;

use super::receivers::path_segment;

/// One piece of the template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// `{session}`.
    Session,
    /// `{name}`: the session's label `name`.
    Label(String),
}

/// A checked `repair_url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepairUrl(Vec<Piece>);

impl RepairUrl {
    /// Checks the template: an http(s) URL whose `{…}` name `session` or a
    /// label.
    pub fn parse(text: &str) -> Result<Self> {
        if !(text.starts_with("https://") || text.starts_with("http://")) {
            bail!("[alerting] repair_url: `{text}` is not an http(s) URL");
        }
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                bail!("[alerting] repair_url: a `{{` is never closed in `{text}`");
            };
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let name = &rest[open + 1..open + close];
            pieces.push(match name {
                "session" => Piece::Session,
                label => {
                    wapulse_core::labels::check_name(label).map_err(|e| {
                        anyhow::anyhow!(
                            "[alerting] repair_url: `{{{label}}}` is neither {{session}} nor a \
                             label name: {e}"
                        )
                    })?;
                    Piece::Label(label.to_owned())
                }
            });
            rest = &rest[open + close + 1..];
        }
        if rest.contains('}') {
            bail!("[alerting] repair_url: a `}}` is never opened in `{text}`");
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Self(pieces))
    }

    /// The link for `session` with `labels`, each value escaped as a path
    /// segment; `None` when a label the template names is missing.
    pub fn render(&self, session: &str, labels: &BTreeMap<String, String>) -> Option<String> {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Session => out.push_str(&path_segment(session)),
                Piece::Label(name) => out.push_str(&path_segment(labels.get(name)?)),
            }
        }
        Some(out)
    }

    /// Whether messages about `code` carry the link: the session must be
    /// linked again.
    pub fn applies_to(code: AlertCode) -> bool {
        matches!(code, AlertCode::LoggedOut | AlertCode::QrRequired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repair_url_fills_in_the_session_and_its_labels_escaped() {
        let url =
            RepairUrl::parse("https://panel.example/{tenant}/sessions/{session}/pair").unwrap();
        let labels = BTreeMap::from([("tenant".to_owned(), "acme co".to_owned())]);
        assert_eq!(
            url.render("5511:99@s", &labels).as_deref(),
            Some("https://panel.example/acme%20co/sessions/5511%3A99%40s/pair")
        );
        assert_eq!(
            url.render("s1", &BTreeMap::new()),
            None,
            "no tenant: no link"
        );
        for bad in [
            "ftp://x/{session}",
            "https://x/{session",
            "https://x/session}",
            "https://x/{two words}",
        ] {
            assert!(RepairUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(RepairUrl::applies_to(AlertCode::LoggedOut));
        assert!(!RepairUrl::applies_to(AlertCode::HeartbeatDead));
    }
}
