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

use crate::secret::Secret;

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
}

/// One `[[receivers]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReceiver {
    name: String,
    kind: String,
    url: Option<StringOrList>,
    routing_key: Option<String>,
    secret: Option<String>,
    timeout: Option<DurationMs>,
    interval: Option<DurationMs>,
    rate_per_second: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
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

/// What a receiver is, with what it needs.
#[derive(Clone, Debug)]
pub enum ReceiverKind {
    /// A Slack incoming webhook (the URL is the secret).
    Slack {
        /// The webhook URL.
        url: Secret,
    },
    /// PagerDuty Events API v2.
    PagerDuty {
        /// The integration's routing key.
        routing_key: Secret,
        /// The enqueue URL.
        url: String,
    },
    /// A generic JSON webhook, signed per Standard Webhooks when a secret
    /// is set.
    Webhook {
        /// Where to post.
        url: Secret,
        /// The signing secret (`whsec_…` base64, or raw text).
        secret: Option<Secret>,
    },
    /// Prometheus Alertmanager v2 (every URL gets every alert).
    Alertmanager {
        /// Base URLs (`http://am:9093`; may hold credentials).
        urls: Vec<Secret>,
        /// How often firing alerts are sent again.
        resend: Duration,
    },
    /// A dead-man's switch pinged while wapulse is healthy.
    Deadman {
        /// The ping URL.
        url: Secret,
        /// How often.
        interval: Duration,
    },
    /// Writes each notification to the log (the demo's receiver).
    Log,
}

impl ReceiverKind {
    /// The kind's name.
    pub fn name(&self) -> &'static str {
        match self {
            ReceiverKind::Slack { .. } => "slack",
            ReceiverKind::PagerDuty { .. } => "pagerduty",
            ReceiverKind::Webhook { .. } => "webhook",
            ReceiverKind::Alertmanager { .. } => "alertmanager",
            ReceiverKind::Deadman { .. } => "deadman",
            ReceiverKind::Log => "log",
        }
    }
}

/// A checked receiver.
#[derive(Clone, Debug)]
pub struct ReceiverSpec {
    /// Its name (routes and metrics use it).
    pub name: String,
    /// What it is.
    pub kind: ReceiverKind,
    /// Each request's timeout.
    pub timeout: Duration,
    /// Most requests per second (the target's rate limit).
    pub rate_per_second: f64,
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
        let smallest = self
            .routes
            .iter()
            .map(|r| of(&r.timing))
            .min()
            .unwrap_or_else(|| of(&GroupTiming::default()));
        DurationMs::from_millis(smallest.as_millis() / 2)
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
            let spec =
                check_receiver(r).with_context(|| format!("receivers[{i}] (name \"{name}\")"))?;
            if s.receivers.iter().any(|x| x.name == spec.name) {
                bail!("receivers[{i}]: the name \"{name}\" is used twice");
            }
            s.receivers.push(spec);
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

fn http_url(field: &str, text: &str) -> Result<()> {
    match reqwest::Url::parse(text) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(()),
        _ => {
            let (shown, _) = crate::secret::redact_url(text);
            bail!("{field}: `{shown}` is not an http(s) URL")
        }
    }
}

fn one_url(r: &RawReceiver) -> Result<String> {
    match &r.url {
        Some(StringOrList::One(u)) => {
            http_url("url", u).map_err(|_| anyhow::anyhow!("url: not an http(s) URL"))?;
            Ok(u.clone())
        }
        Some(StringOrList::Many(_)) => bail!("url: a {} receiver takes one URL", r.kind),
        None => bail!("url: required for a {} receiver", r.kind),
    }
}

fn check_receiver(r: RawReceiver) -> Result<ReceiverSpec> {
    if r.name.is_empty()
        || !r
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        bail!("name: `{}` is not a name of letters, digits, _ - .", r.name);
    }
    let (kind, rate) = match r.kind.as_str() {
        "slack" => (
            ReceiverKind::Slack {
                url: Secret::new(one_url(&r)?),
            },
            1.0,
        ),
        "pagerduty" => {
            let routing_key = r
                .routing_key
                .clone()
                .filter(|k| !k.is_empty())
                .context("routing_key: required for a pagerduty receiver")?;
            let url = match &r.url {
                None => "https://events.pagerduty.com/v2/enqueue".to_owned(),
                Some(_) => one_url(&r)?,
            };
            (
                ReceiverKind::PagerDuty {
                    routing_key: Secret::new(routing_key),
                    url,
                },
                2.0,
            )
        }
        "webhook" => (
            ReceiverKind::Webhook {
                url: Secret::new(one_url(&r)?),
                secret: r.secret.clone().filter(|s| !s.is_empty()).map(Secret::new),
            },
            10.0,
        ),
        "alertmanager" => {
            let urls = match &r.url {
                Some(StringOrList::One(u)) => vec![u.clone()],
                Some(StringOrList::Many(us)) if !us.is_empty() => us.clone(),
                _ => bail!("url: required for an alertmanager receiver (one URL or a list)"),
            };
            for u in &urls {
                http_url("url", u)?;
            }
            let resend = r.interval.unwrap_or(DurationMs::from_mins(1));
            if resend < DurationMs::from_millis(100) {
                bail!("interval: at least 100ms");
            }
            (
                ReceiverKind::Alertmanager {
                    urls: urls
                        .into_iter()
                        .map(|u| Secret::new(u.trim_end_matches('/')))
                        .collect(),
                    resend: Duration::from_millis(resend.as_millis()),
                },
                50.0,
            )
        }
        "deadman" => {
            let interval = r.interval.unwrap_or(DurationMs::from_mins(1));
            if interval < DurationMs::from_millis(100) {
                bail!("interval: at least 100ms");
            }
            (
                ReceiverKind::Deadman {
                    url: Secret::new(one_url(&r)?),
                    interval: Duration::from_millis(interval.as_millis()),
                },
                10.0,
            )
        }
        "log" => (ReceiverKind::Log, 1000.0),
        other => bail!(
            "kind: `{other}` is not one of slack, pagerduty, webhook, alertmanager, deadman, log"
        ),
    };
    if r.routing_key.is_some() && !matches!(kind, ReceiverKind::PagerDuty { .. }) {
        bail!("routing_key: only a pagerduty receiver takes one");
    }
    if r.secret.is_some() && !matches!(kind, ReceiverKind::Webhook { .. }) {
        bail!("secret: only a webhook receiver takes one");
    }
    let rate_per_second = r.rate_per_second.unwrap_or(rate);
    if !(0.001..=10_000.0).contains(&rate_per_second) {
        bail!("rate_per_second: {rate_per_second} is not between 0.001 and 10000");
    }
    if let Some(secret) = r.secret.as_deref()
        && let Some(b64) = secret.strip_prefix("whsec_")
        && base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).is_err()
    {
        bail!("secret: a whsec_ secret must be base64 after the prefix");
    }
    Ok(ReceiverSpec {
        name: r.name,
        kind,
        timeout: Duration::from_millis(r.timeout.unwrap_or(DurationMs::from_secs(10)).as_millis()),
        rate_per_second,
    })
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
mod tests {
    use super::*;

    fn check(text: &str) -> Result<AlertingSettings> {
        from_toml(text)
    }

    #[test]
    fn without_routes_every_receiver_gets_every_alert_grouped_by_code() {
        let s = check(
            "[[receivers]]\nname = \"a\"\nkind = \"log\"\n[[receivers]]\nname = \"b\"\nkind = \"log\"\n",
        )
        .unwrap();
        assert_eq!(s.routes.len(), 2);
        assert!(
            s.routes
                .iter()
                .all(|r| r.matchers.is_empty() && r.continue_ && r.group_by == ["code"])
        );
        assert_eq!(s.routes[0].timing, GroupTiming::default());
    }

    #[test]
    fn facts_fire_at_once_and_for_code_overrides() {
        let s =
            check("[alerting]\nfor = \"2m\"\nfor_code = { HEARTBEAT_DEAD = \"0s\" }\n").unwrap();
        assert_eq!(s.rules(AlertCode::LoggedOut).for_, DurationMs::ZERO);
        assert_eq!(
            s.rules(AlertCode::HeartbeatStale).for_,
            DurationMs::from_mins(2)
        );
        assert_eq!(s.rules(AlertCode::HeartbeatDead).for_, DurationMs::ZERO);
    }

    #[test]
    fn pagerduty_defaults_to_the_public_events_url_and_its_rate() {
        let s = check("[[receivers]]\nname = \"pd\"\nkind = \"pagerduty\"\nrouting_key = \"k\"\n")
            .unwrap();
        match &s.receivers[0].kind {
            ReceiverKind::PagerDuty { url, .. } => {
                assert_eq!(url, "https://events.pagerduty.com/v2/enqueue")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.receivers[0].rate_per_second, 2.0);
    }

    #[test]
    fn mistakes_name_the_table_and_the_field() {
        let cases = [
            (
                "[[receivers]]\nname = \"x\"\nkind = \"email\"\n",
                "receivers[0] (name \"x\")",
                "kind",
            ),
            (
                "[[receivers]]\nname = \"x\"\nkind = \"slack\"\n",
                "receivers[0]",
                "url: required",
            ),
            (
                "[[receivers]]\nname = \"x\"\nkind = \"pagerduty\"\n",
                "receivers[0]",
                "routing_key",
            ),
            (
                "[[receivers]]\nname = \"x\"\nkind = \"webhook\"\nurl = \"ftp://h/\"\n",
                "receivers[0]",
                "url",
            ),
            (
                "[[receivers]]\nname = \"x\"\nkind = \"slack\"\nurl = \"https://h/\"\nsecret = \"s\"\n",
                "receivers[0]",
                "secret",
            ),
            (
                "[[receivers]]\nname = \"x\"\nkind = \"log\"\n[[receivers]]\nname = \"x\"\nkind = \"log\"\n",
                "receivers[1]",
                "used twice",
            ),
            (
                "[[receivers]]\nname = \"x\"\nkind = \"log\"\n[[routes]]\nreceiver = \"y\"\n",
                "routes[0]",
                "\"y\"",
            ),
            (
                "[[receivers]]\nname = \"x\"\nkind = \"log\"\n[[routes]]\nreceiver = \"x\"\nmatch_re = { region = \"(\" }\n",
                "routes[0]",
                "regular expression",
            ),
            (
                "[[receivers]]\nname = \"x\"\nkind = \"log\"\n[[routes]]\nreceiver = \"x\"\ngroup_by = [\"a-b\"]\n",
                "routes[0].group_by",
                "a-b",
            ),
            (
                "[alerting]\nfor_code = { NOPE = \"1m\" }\n",
                "alerting.for_code",
                "NOPE",
            ),
            (
                "[alerting]\nincident_min_share = 1.5\n",
                "alerting.incident_min_share",
                "1.5",
            ),
            (
                "[alerting]\nincident_by = [\"bad label\"]\n",
                "alerting.incident_by",
                "bad label",
            ),
            (
                "[alerting]\nincident_for = \"10m\"\n",
                "alerting.incident_for",
                "incident_window",
            ),
        ];
        for (text, at, what) in cases {
            let err = format!("{:#}", check(text).unwrap_err());
            assert!(err.contains(at) && err.contains(what), "{text}\n=> {err}");
        }
    }

    #[test]
    fn secrets_never_print() {
        let s = check(
            "[[receivers]]\nname = \"chat\"\nkind = \"slack\"\nurl = \"https://hooks.slack.com/services/T0/B0/S3CR3TSLACK\"\n\
             [[receivers]]\nname = \"pd\"\nkind = \"pagerduty\"\nrouting_key = \"S3CR3TKEY\"\n\
             [[receivers]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"https://h/?token=S3CR3TTOKEN\"\nsecret = \"S3CR3TSIGN\"\n\
             [[receivers]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = [\"http://user:S3CR3TPASS@am:9093\"]\n",
        )
        .unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("S3CR3T"), "{shown}");
        // A bad URL's error does not show it either.
        let err = format!(
            "{:#}",
            check("[[receivers]]\nname = \"x\"\nkind = \"slack\"\nurl = \"not a url S3CR3T\"\n")
                .unwrap_err()
        );
        assert!(!err.contains("S3CR3T"), "{err}");
    }
}
