//! The dashboard's pages, one file each, and what they share.
//!
//! - `overview`: `/`, the fleet at a glance.
//! - `sessions`: `/ui/sessions`, filtered and paged.
//! - `session`: `/ui/sessions/{id}`, one session in full.
//! - `alerts`: `/ui/alerts`, alerts, incidents, history and silences.
//! - `silences`: the forms that create and expire silences.
//! - `history`: the overview's last day, a session's week, and
//!   `/ui/availability`.
//! - `status`: `/status/{value}`, a tenant's status page.

mod alerts;
mod history;
mod overview;
mod session;
mod sessions;
mod silences;
mod status;

use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use serde_json::Value;
use wapulse_core::Timestamp;

use super::login;
use super::view::{Badge, When, level, when};
use crate::alerting::ActiveAlert;
use crate::app::Shared;
use crate::tenancy::Caller;

pub(super) use alerts::alerts;
pub(super) use history::availability;
pub(super) use overview::overview;
pub(super) use session::session;
pub(super) use sessions::sessions;
pub(super) use silences::{create_silence, expire_silence};
pub(super) use status::status;

/// Rows on one page of sessions (the DOM never holds more).
pub(super) const PAGE: usize = 50;
/// Alerts listed on the overview.
pub(super) const OVERVIEW_ALERTS: usize = 10;
/// Rows per group on the alerts page (the rest: a link to the filter).
pub(super) const ALERTS_PER_GROUP: usize = 100;
/// The timeline's window.
pub(super) const TIMELINE_HOURS: u64 = 6;

/// Who looks (a tenant's pages keep to its sessions), or the login
/// redirect.
pub(super) fn viewer(
    state: &Shared,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Caller, Box<Response>> {
    let next = uri.path_and_query().map_or("/", |p| p.as_str());
    login::viewer(state, headers, next)
}

/// An alert as the pages list it.
pub struct AlertRow {
    pub session: String,
    pub href: Option<String>,
    pub code: String,
    pub level: Badge,
    pub phase: &'static str,
    pub since: When,
    pub summary: String,
    pub silenced: bool,
    pub folded: bool,
    pub flapping: bool,
}

pub(super) fn alert_row(a: &ActiveAlert, now: Timestamp) -> AlertRow {
    AlertRow {
        href: (!a.session.is_empty()).then(|| session_href(&a.session)),
        session: a.session.to_string(),
        code: a.code.to_owned(),
        level: level(a.level),
        phase: a.state.as_str(),
        since: when(a.since, now),
        summary: a.summary.to_string(),
        silenced: a.silenced,
        folded: a.folded,
        flapping: a.flapping,
    }
}

pub(super) fn session_href(id: &str) -> String {
    // Session ids are [A-Za-z0-9._:@-]: nothing to escape in a path.
    format!("/ui/sessions/{id}")
}

pub(super) fn display(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        other => other.to_string(),
    }
}
