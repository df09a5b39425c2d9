//! `[alerting]`, `[[receivers]]` and `[[routes]]`: written loosely in
//! TOML, checked once into [`AlertingSettings`] where every receiver a
//! route names exists and every secret is wrapped.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use wapulse_core::grouping::GroupTiming;
use wapulse_core::incident::IncidentRules;
use wapulse_core::lifecycle::default_for;
use wapulse_core::{AlertCode, DurationMs, LifeRules, Matcher};

mod receiver;

use receiver::check_receiver;
pub use receiver::{RawReceiver, ReceiverKind, ReceiverSpec};

/// `[alerting]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerting {
    #[serde(rename = "for")]
    for_: Option<DurationMs>,
    for_code: Option<BTreeMap<String, DurationMs>>,
    keep_firing_for: Option<DurationMs>,
    group_by: Option<Vec<String>>,
    group_wait: Option<DurationMs>,
    group_interval: Option<DurationMs>,
    repeat_interval: Option<DurationMs>,
    flap_threshold: Option<u32>,
    flap_window: Option<DurationMs>,
    flap_quiet: Option<DurationMs>,
    incident_by: Option<Vec<String>>,
    incident_min_share: Option<f64>,
    incident_min_sessions: Option<usize>,
    incident_window: Option<DurationMs>,
    incident_for: Option<DurationMs>,
    max_listed_sessions: Option<usize>,
    outbox_retention: Option<DurationMs>,
    external_url: Option<String>,
    repair_url: Option<String>,
}

/// One `[[routes]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    receiver: String,
    #[serde(rename = "match", default)]
    match_: BTreeMap<String, String>,
    #[serde(default)]
    match_re: BTreeMap<String, String>,
    group_by: Option<Vec<String>>,
    group_wait: Option<DurationMs>,
    group_interval: Option<DurationMs>,
    repeat_interval: Option<DurationMs>,
    #[serde(rename = "continue", default)]
    continue_: bool,
}

/// A checked route.
#[derive(Clone, Debug)]
pub struct RouteSpec {
    /// Every one must match.
    pub matchers: Vec<Matcher>,
    /// Index into [`AlertingSettings::receivers`].
    pub receiver: usize,
    /// Labels whose values split alerts into groups.
    pub group_by: Vec<String>,
    /// Group timers.
    pub timing: GroupTiming,
    /// Whether later routes are tried after this one matched.
    pub continue_: bool,
}

/// Everything the evaluator and the notifiers need.
#[derive(Clone, Debug)]
pub struct AlertingSettings {
    /// Default `for` (codes that are facts default to 0).
    pub for_: DurationMs,
    /// `for` per code.
    pub for_code: HashMap<AlertCode, DurationMs>,
    /// Hysteresis before resolving.
    pub keep_firing_for: DurationMs,
    /// Flapping.
    pub flap_threshold: u32,
    /// Flapping window.
    pub flap_window: DurationMs,
    /// Quiet time before a flapping alert resolves.
    pub flap_quiet: DurationMs,
    /// Fleet incidents.
    pub incidents: IncidentRules,
    /// How long an incident's condition holds before it fires (while it
    /// waits, it already folds the alerts it covers).
    pub incident_for: DurationMs,
    /// Receivers.
    pub receivers: Vec<ReceiverSpec>,
    /// Certificates receivers trust besides the system's and Mozilla's
    /// (the top-level `ca_file`).
    pub extra_roots: crate::tls::ExtraRoots,
    /// Routes (one per receiver, grouped by code, when none is written).
    pub routes: Vec<RouteSpec>,
    /// Most sessions a message lists before "+N more".
    pub max_listed_sessions: usize,
    /// How long delivered notifications stay in the outbox.
    pub outbox_retention: DurationMs,
    /// wapulse's address as people reach it, for links in messages.
    pub external_url: Option<String>,
    /// `repair_url`: where a logged-out session is linked again, in its
    /// alerts' action.
    pub repair_url: Option<super::repair::RepairUrl>,
}

impl Default for AlertingSettings {
    fn default() -> Self {
        Self {
            for_: DurationMs::from_mins(1),
            for_code: HashMap::new(),
            keep_firing_for: DurationMs::ZERO,
            flap_threshold: 4,
            flap_window: DurationMs::from_hours(1),
            flap_quiet: DurationMs::from_mins(15),
            incidents: IncidentRules::default(),
            incident_for: DurationMs::from_secs(30),
            receivers: Vec::new(),
            extra_roots: Vec::new(),
            routes: Vec::new(),
            max_listed_sessions: 20,
            outbox_retention: DurationMs::from_hours(24 * 7),
            external_url: None,
            repair_url: None,
        }
    }
}

impl AlertingSettings {
    /// The demo's alerting when the config names no receiver: every
    /// notification printed to standard output, on short timers, so a
    /// newcomer sees the loop (fire, group, notify, resolve) in minutes.
    pub fn demo() -> Self {
        let mut s = Self {
            for_: DurationMs::from_secs(5),
            ..Self::default()
        };
        s.receivers.push(ReceiverSpec {
            templates: None,
            name: "console".into(),
            kind: ReceiverKind::Log,
            timeout: Duration::from_secs(1),
            rate_per_second: 1000.0,
        });
        s.routes.push(RouteSpec {
            matchers: Vec::new(),
            receiver: 0,
            group_by: vec!["code".into()],
            timing: GroupTiming {
                group_wait: DurationMs::from_secs(2),
                group_interval: DurationMs::from_secs(30),
                repeat_interval: DurationMs::from_mins(10),
            },
            continue_: true,
        });
        s
    }

    /// Half the smallest of one timing over the routes (the default
    /// timing's without routes).
    fn half_smallest(&self, of: impl Fn(&GroupTiming) -> DurationMs) -> DurationMs {
        DurationMs::from_millis(self.smallest(of).as_millis() / 2)
    }

    /// The smallest of one timing over the routes.
    fn smallest(&self, of: impl Fn(&GroupTiming) -> DurationMs) -> DurationMs {
        self.routes
            .iter()
            .map(|r| of(&r.timing))
            .min()
            .unwrap_or_else(|| of(&GroupTiming::default()))
    }

    /// Half the smallest `group_interval`: how far apart two replicas'
    /// copies of one message may be created and still be taken for one
    /// (cluster sent-marks). A group's next message comes a whole group
    /// interval later.
    pub fn mark_window(&self) -> DurationMs {
        self.half_smallest(|t| t.group_interval)
    }

    /// Half the smallest `repeat_interval`: the same content of a group
    /// created later than this after the last one sent is a reminder
    /// (cluster sent-marks).
    pub fn reminder_window(&self) -> DurationMs {
        self.half_smallest(|t| t.repeat_interval)
    }

    /// The smallest `repeat_interval`: a replica's copy of a message that
    /// no peer settled for this long is stale (cluster sent-marks).
    pub fn stale_copy_after(&self) -> DurationMs {
        self.smallest(|t| t.repeat_interval)
    }

    /// The lifecycle rules of `code`.
    pub fn rules(&self, code: AlertCode) -> LifeRules {
        let default = if default_for(code) == DurationMs::ZERO {
            DurationMs::ZERO
        } else {
            self.for_
        };
        LifeRules {
            for_: self.for_code.get(&code).copied().unwrap_or(default),
            keep_firing_for: self.keep_firing_for,
            flap_window: self.flap_window,
            flap_threshold: self.flap_threshold,
            flap_quiet: self.flap_quiet,
        }
    }

    /// The lifecycle rules of a fleet incident.
    pub fn incident_rules(&self) -> LifeRules {
        LifeRules {
            for_: self.incident_for,
            ..self.rules(AlertCode::LoggedOut)
        }
    }

    /// Checks the written tables.
    pub fn check(
        raw: Option<RawAlerting>,
        receivers: Vec<RawReceiver>,
        routes: Vec<RawRoute>,
    ) -> Result<Self> {
        let raw = raw.unwrap_or_default();
        let mut s = Self::default();
        if let Some(v) = raw.for_ {
            s.for_ = v;
        }
        for (code, d) in raw.for_code.unwrap_or_default() {
            let parsed = AlertCode::ALL
                .into_iter()
                .find(|c| c.as_str() == code)
                .with_context(|| format!("alerting.for_code: `{code}` is not an alert code"))?;
            s.for_code.insert(parsed, d);
        }
        if let Some(v) = raw.keep_firing_for {
            s.keep_firing_for = v;
        }
        if let Some(v) = raw.flap_threshold {
            s.flap_threshold = v;
        }
        if let Some(v) = raw.flap_window {
            s.flap_window = v;
        }
        if let Some(v) = raw.flap_quiet {
            s.flap_quiet = v;
        }
        if let Some(by) = raw.incident_by {
            for name in &by {
                label_name("alerting.incident_by", name)?;
            }
            s.incidents.by = by;
        }
        if let Some(v) = raw.incident_min_share {
            if !(v > 0.0 && v <= 1.0) {
                bail!("alerting.incident_min_share: {v} is not a share above 0 and at most 1");
            }
            s.incidents.min_share = v;
        }
        if let Some(v) = raw.incident_min_sessions {
            if v == 0 {
                bail!("alerting.incident_min_sessions: must be at least 1");
            }
            s.incidents.min_sessions = v;
        }
        if let Some(v) = raw.incident_window {
            s.incidents.window = v;
        }
        if let Some(v) = raw.incident_for {
            s.incident_for = v;
        }
        if s.incident_for >= s.incidents.window {
            bail!(
                "alerting.incident_for: {} must be shorter than incident_window ({}), \
                 or sessions entering together would age out before an incident fires",
                s.incident_for.formatted(),
                s.incidents.window.formatted()
            );
        }
        if let Some(v) = raw.max_listed_sessions {
            s.max_listed_sessions = v.max(1);
        }
        if let Some(v) = raw.outbox_retention {
            s.outbox_retention = v;
        }
        s.external_url = raw.external_url.map(|u| u.trim_end_matches('/').to_owned());
        s.repair_url = raw
            .repair_url
            .as_deref()
            .map(super::repair::RepairUrl::parse)
            .transpose()?;
        let default_timing = GroupTiming {
            group_wait: raw.group_wait.unwrap_or(GroupTiming::default().group_wait),
            group_interval: raw
                .group_interval
                .unwrap_or(GroupTiming::default().group_interval),
            repeat_interval: raw
                .repeat_interval
                .unwrap_or(GroupTiming::default().repeat_interval),
        };
        if default_timing.group_interval == DurationMs::ZERO
            || default_timing.repeat_interval == DurationMs::ZERO
        {
            bail!("alerting.group_interval / repeat_interval: must be greater than zero");
        }
        let default_group_by = raw.group_by.unwrap_or_else(|| vec!["code".to_owned()]);
        for (i, r) in receivers.into_iter().enumerate() {
            let name = r.name.clone();
            let spec = check_receiver(r, &s)
                .with_context(|| format!("receivers[{i}] (name \"{name}\")"))?;
            if s.receivers.iter().any(|x| x.name == spec.name) {
                bail!("receivers[{i}]: the name \"{name}\" is used twice");
            }
            s.receivers.push(spec);
        }
        for r in &s.receivers {
            let Some(fallback) = r.kind.sender().and_then(|s| s.fallback.as_deref()) else {
                continue;
            };
            let at = format!("receivers (name \"{}\"): fallback", r.name);
            let Some(other) = s.receivers.iter().find(|x| x.name == fallback) else {
                bail!("{at}: \"{fallback}\" is not among [[receivers]]");
            };
            if matches!(
                other.kind,
                ReceiverKind::Alertmanager { .. } | ReceiverKind::Deadman { .. }
            ) {
                bail!(
                    "{at}: \"{fallback}\" is of kind {}, which takes no messages",
                    other.kind.name()
                );
            }
        }
        if routes.is_empty() {
            for (i, _) in s.receivers.iter().enumerate() {
                s.routes.push(RouteSpec {
                    matchers: Vec::new(),
                    receiver: i,
                    group_by: default_group_by.clone(),
                    timing: default_timing,
                    continue_: true,
                });
            }
        }
        for (i, r) in routes.into_iter().enumerate() {
            let at = format!("routes[{i}]");
            let receiver = s
                .receivers
                .iter()
                .position(|x| x.name == r.receiver)
                .with_context(|| {
                    format!(
                        "{at}: receiver \"{}\" is not among [[receivers]]",
                        r.receiver
                    )
                })?;
            let mut matchers = Vec::new();
            for (name, value) in r.match_ {
                matchers.push(Matcher::new(name, value, false).with_context(|| at.clone())?);
            }
            for (name, value) in r.match_re {
                matchers.push(Matcher::new(name, value, true).with_context(|| at.clone())?);
            }
            let group_by = r.group_by.unwrap_or_else(|| default_group_by.clone());
            for name in &group_by {
                label_name(&format!("{at}.group_by"), name)?;
            }
            s.routes.push(RouteSpec {
                matchers,
                receiver,
                group_by,
                timing: GroupTiming {
                    group_wait: r.group_wait.unwrap_or(default_timing.group_wait),
                    group_interval: r.group_interval.unwrap_or(default_timing.group_interval),
                    repeat_interval: r.repeat_interval.unwrap_or(default_timing.repeat_interval),
                },
                continue_: r.continue_,
            });
        }
        Ok(s)
    }
}

fn label_name(at: &str, name: &str) -> Result<()> {
    if !wapulse_core::ident::is_identifier(name) {
        bail!("{at}: `{name}` is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)");
    }
    Ok(())
}

/// The `[alerting]`, `[[receivers]]` and `[[routes]]` of a config file's
/// text, checked (for tests of alerting on its own).
#[cfg(test)]
pub(crate) fn from_toml(text: &str) -> Result<AlertingSettings> {
    #[derive(Deserialize)]
    struct File {
        alerting: Option<RawAlerting>,
        #[serde(default)]
        receivers: Vec<RawReceiver>,
        #[serde(default)]
        routes: Vec<RawRoute>,
    }
    let f: File = toml::from_str(text)?;
    AlertingSettings::check(f.alerting, f.receivers, f.routes)
}

#[cfg(test)]
mod tests;
