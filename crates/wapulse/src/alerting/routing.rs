//! Which receivers an alert goes to, and in which group.
//!
//! An alert is read through its labels (see `wapulse_core::matcher`):
//! `alertname`/`code`, `severity`/`level`, `session`, and its own labels
//! (a session's labels, or an incident's set and trouble). Routes are tried
//! in order; the first that matches takes the alert, and later ones are
//! tried only when it says `continue`.

use std::collections::BTreeMap;

use wapulse_core::grouping::NotifiedAlert;
use wapulse_core::matcher::all_match;

use super::config::{AlertingSettings, RouteSpec};

/// Reads one label of an alert.
pub fn label<'a>(a: &'a NotifiedAlert, name: &str) -> Option<&'a str> {
    match name {
        "alertname" | "code" => Some(&a.code),
        "severity" | "level" => Some(a.level.as_str()),
        "session" => Some(&a.session),
        other => a.labels.get(other).map(String::as_str),
    }
}

/// The routes that take `a`, in order.
pub fn routes_for<'s>(s: &'s AlertingSettings, a: &NotifiedAlert) -> Vec<&'s RouteSpec> {
    let mut out = Vec::new();
    for r in &s.routes {
        if all_match(&r.matchers, |n| label(a, n)) {
            out.push(r);
            if !r.continue_ {
                break;
            }
        }
    }
    out
}

/// The group an alert joins on a route: its identity (stable across
/// restarts and route reordering: the receiver and the grouped values)
/// and the grouped labels.
pub fn group_of(
    s: &AlertingSettings,
    route: &RouteSpec,
    a: &NotifiedAlert,
) -> (String, BTreeMap<String, String>) {
    let mut labels = BTreeMap::new();
    let mut key = s.receivers[route.receiver].name.clone();
    key.push('/');
    for name in &route.group_by {
        let value = label(a, name).unwrap_or("");
        key.push_str(name);
        key.push('=');
        key.push_str(value);
        key.push(',');
        labels.insert(name.clone(), value.to_owned());
    }
    (key, labels)
}
