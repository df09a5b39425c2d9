//! `[status_pages]`: a status page per label value (`/status/{value}`),
//! for a tenant's own customers.

use anyhow::{Result, bail};
use serde::Deserialize;

/// `[status_pages]`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStatusPages {
    by: Option<String>,
    public: Option<bool>,
}

/// `[status_pages]`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusPages {
    /// The label whose values are the pages' slugs (`tenant`).
    pub by: String,
    /// Whether anyone may read them; else a read token (an unscoped one,
    /// or one whose scope covers the page's sessions).
    pub public: bool,
}

impl StatusPages {
    /// Checks the section; `None` when absent.
    pub fn check(raw: Option<RawStatusPages>) -> Result<Option<Self>> {
        let Some(raw) = raw else {
            return Ok(None);
        };
        let Some(by) = raw.by else {
            bail!(
                "[status_pages]: `by` is required: the label whose values name the pages (by = \"tenant\")"
            );
        };
        wapulse_core::labels::check_name(&by)
            .map_err(|e| anyhow::anyhow!("[status_pages] by: {e}"))?;
        Ok(Some(Self {
            by,
            public: raw.public.unwrap_or(false),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_is_required_and_a_label_name() {
        let raw = |by: Option<&str>| RawStatusPages {
            by: by.map(str::to_owned),
            public: Some(true),
        };
        assert_eq!(
            StatusPages::check(Some(raw(Some("tenant")))).unwrap(),
            Some(StatusPages {
                by: "tenant".into(),
                public: true
            })
        );
        assert!(StatusPages::check(None).unwrap().is_none());
        let e = StatusPages::check(Some(raw(None))).unwrap_err().to_string();
        assert!(e.contains("`by` is required"), "{e}");
        let e = StatusPages::check(Some(raw(Some("a b"))))
            .unwrap_err()
            .to_string();
        assert!(e.contains("[status_pages] by"), "{e}");
    }
}
