//! Settings: defaults, then a TOML file, then the environment, checked once
//! at start so that nothing invalid reaches the running service.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use wapulse_core::{DurationMs, SessionId, Thresholds, ThresholdsConfig};

use crate::alerting::config::{AlertingSettings, RawAlerting, RawReceiver, RawRoute};
use crate::model::ModelOptions;
use crate::priority::ingest::Priority;
use crate::priority::reads::{self, ReadPriority};
use crate::probes::{self, ProbeSpec, RawProbe};
use crate::store::Durability;

use crate::secret::Secret;

/// The config file, as written. Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    bind: Option<String>,
    data_dir: Option<PathBuf>,
    default_session: Option<String>,
    log_level: Option<String>,
    log_format: Option<String>,
    ingest_token: Option<String>,
    metrics_token: Option<String>,
    read_token: Option<String>,
    admin_token: Option<String>,
    allowed_hosts: Option<Vec<String>>,
    max_future_skew: Option<DurationMs>,
    max_event_age: Option<DurationMs>,
    max_body_bytes: Option<usize>,
    max_batch_events: Option<usize>,
    max_connections: Option<usize>,
    max_sessions: Option<usize>,
    header_read_timeout: Option<DurationMs>,
    idle_timeout: Option<DurationMs>,
    dedup_capacity: Option<usize>,
    dedup_window: Option<DurationMs>,
    dedup_per_session: Option<usize>,
    durability: Option<String>,
    retention: Option<DurationMs>,
    history_minutes_retention: Option<DurationMs>,
    history_retention: Option<DurationMs>,
    snapshot_every_events: Option<u64>,
    snapshot_interval: Option<DurationMs>,
    max_store_bytes: Option<u64>,
    ingest_priority: Option<String>,
    read_priority: Option<String>,
    read_realtime_budget: Option<f64>,
    metrics_sessions: Option<String>,
    thresholds: Option<ThresholdsConfig>,
    probes: Option<Vec<RawProbe>>,
    alerting: Option<RawAlerting>,
    receivers: Option<Vec<RawReceiver>>,
    routes: Option<Vec<RawRoute>>,
    gateways: Option<crate::gateways::RawGateways>,
    sessions: Option<crate::retire::RawSessions>,
    ca_file: Option<PathBuf>,
    cluster: Option<crate::cluster::config::RawCluster>,
    tokens: Option<Vec<crate::tenancy::RawToken>>,
    status_pages: Option<crate::tenancy::pages::RawStatusPages>,
}

/// Everything the service needs, checked.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where to listen.
    pub bind: SocketAddr,
    /// Where the store lives.
    pub data_dir: PathBuf,
    /// The session `/session/…` addresses.
    pub default_session: SessionId,
    /// A `tracing` filter directive.
    pub log_filter: String,
    /// How log lines are written (`LOG_FORMAT`: text or json).
    pub log_format: crate::telemetry::LogFormat,
    /// Required on writes when set.
    pub ingest_token: Option<Secret>,
    /// Required on `/metrics.json`; without it that endpoint always says 401.
    pub metrics_token: Option<Secret>,
    /// Required on detailed reads when set.
    pub read_token: Option<Secret>,
    /// Required on silences when set (else `ingest_token`).
    pub admin_token: Option<Secret>,
    /// `[[tokens]]`: named tokens, each with an access level and maybe a
    /// tenant's scope. Any of them closes every route but the open ones.
    pub tokens: Vec<crate::tenancy::TokenSpec>,
    /// `[status_pages]`: `/status/{value}` per value of a label.
    pub status_pages: Option<crate::tenancy::pages::StatusPages>,
    /// Host names (besides the loopback ones) a request may be addressed
    /// to while reads are open (no `READ_TOKEN`): a page on another site
    /// that makes its own name resolve to wapulse (DNS rebinding) is
    /// refused. Empty on a non-loopback bind: no check.
    pub allowed_hosts: Vec<String>,
    /// How far in the future an event's `at` may be.
    pub max_future_skew: DurationMs,
    /// How far in the past an event's `at` may be.
    pub max_event_age: DurationMs,
    /// Largest ingest body, in bytes.
    pub max_body_bytes: usize,
    /// Most events in one ingest request.
    pub max_batch_events: usize,
    /// Most sessions the fleet holds; a batch that would add more is
    /// refused (409), naming it.
    pub max_sessions: usize,
    /// Most connections served at once (lowered to stay under the
    /// process's file limit); one more is answered 503.
    pub max_connections: usize,
    /// How long a request's head may take to arrive (and a keep-alive
    /// connection may sit idle between requests).
    pub header_read_timeout: DurationMs,
    /// How long a connection may go without a byte moving either way.
    pub idle_timeout: DurationMs,
    /// How long and how many event ids each session remembers.
    pub dedup: wapulse_core::DedupLimits,
    /// What an acknowledged commit survives.
    pub durability: Durability,
    /// How long the journal keeps events.
    pub retention: DurationMs,
    /// How long history is kept (minute rows; hour rows and state changes).
    pub history: crate::history::Retention,
    /// Snapshot after this many events.
    pub snapshot_every_events: u64,
    /// Snapshot at least this often while events arrive.
    pub snapshot_interval: DurationMs,
    /// A cap on the store's size; writes beyond it are refused (503).
    pub max_store_bytes: Option<u64>,
    /// CPU priority of ingest parsing and the writer, against reads.
    pub ingest_priority: Priority,
    /// CPU priority of the threads that answer requests.
    pub read_priority: ReadPriority,
    /// With `read_priority = "realtime"`: the share of the CPUs available
    /// that request workers may use at real-time priority, in (0, 1].
    pub read_realtime_budget: f64,
    /// Which sessions `/metrics` gives per-session series for.
    pub metrics_sessions: MetricsSessions,
    /// Alert thresholds.
    pub thresholds: Thresholds,
    /// Probes of the services around the sessions.
    pub probes: Vec<ProbeSpec>,
    /// Alert lifecycle, incidents, receivers and routes.
    pub alerting: AlertingSettings,
    /// Gateway webhooks (WAHA, Evolution API).
    pub gateways: crate::gateways::GatewaySettings,
    /// `[sessions]`: retiring idle sessions (`retire_after`).
    pub sessions: crate::retire::SessionSettings,
    /// `ca_file` / `WAPULSE_CA_FILE`: certificates trusted, besides the
    /// system's and Mozilla's, by every outgoing TLS connection.
    pub ca_file: Option<PathBuf>,
    /// `[cluster]`: replicas sharing a NATS JetStream stream (none:
    /// embedded mode).
    pub cluster: Option<crate::cluster::config::ClusterSettings>,
}

impl Settings {
    /// Defaults only, listening on `bind`: for tests and the demo.
    pub fn for_bind(bind: SocketAddr) -> Self {
        Self {
            bind,
            data_dir: PathBuf::from("./data"),
            default_session: SessionId::parse("default").expect("valid literal"),
            log_filter: "info".into(),
            log_format: crate::telemetry::LogFormat::Text,
            ingest_token: None,
            metrics_token: None,
            read_token: None,
            admin_token: None,
            tokens: Vec::new(),
            status_pages: None,
            allowed_hosts: Vec::new(),
            max_future_skew: DurationMs::from_mins(5),
            max_event_age: DurationMs::from_hours(30 * 24),
            max_body_bytes: 8 * 1024 * 1024,
            max_batch_events: 10_000,
            max_connections: 4096,
            max_sessions: 200_000,
            header_read_timeout: DurationMs::from_secs(30),
            idle_timeout: DurationMs::from_secs(60),
            dedup: wapulse_core::DedupLimits::default(),
            durability: Durability::Power,
            retention: DurationMs::from_hours(7 * 24),
            history: crate::history::Retention::default(),
            snapshot_every_events: 100_000,
            snapshot_interval: DurationMs::from_mins(5),
            max_store_bytes: None,
            ingest_priority: Priority::default(),
            read_priority: ReadPriority::default(),
            read_realtime_budget: reads::DEFAULT_BUDGET,
            metrics_sessions: MetricsSessions::All,
            thresholds: Thresholds::default(),
            probes: Vec::new(),
            alerting: AlertingSettings::default(),
            gateways: crate::gateways::GatewaySettings::default(),
            sessions: crate::retire::SessionSettings::default(),
            ca_file: None,
            cluster: None,
        }
    }

    /// What the model needs from these settings.
    pub fn model_options(&self) -> ModelOptions {
        ModelOptions {
            data_dir: self.data_dir.clone(),
            durability: self.durability,
            max_store_bytes: self.max_store_bytes,
            retention: self.retention,
            snapshot_every_events: self.snapshot_every_events,
            snapshot_interval: self.snapshot_interval,
            thresholds: self.thresholds.clone(),
            dedup: self.dedup,
            default_session: self.default_session.clone(),
            priority: self.ingest_priority,
            stream: self.cluster.as_ref().map(|c| c.stream.clone()),
            history: self.history,
        }
    }

    /// Loads settings: defaults, then the file (`--config`, else
    /// `WAPULSE_CONFIG`), then the environment, as read by `env`.
    pub fn load(config: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let path = config.map(Path::to_path_buf).or_else(|| {
            env("WAPULSE_CONFIG")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
        });
        let file = match &path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read config file {}", p.display()))?;
                toml::from_str::<FileSettings>(&text)
                    .with_context(|| format!("config file {} is invalid", p.display()))?
            }
            None => FileSettings::default(),
        };
        Self::resolve(file, env)
    }

    /// Settings from a config file's text and the environment as read by
    /// `env` (the fuzz target `config` drives it).
    pub fn from_toml(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let file = toml::from_str::<FileSettings>(text).context("config file is invalid")?;
        Self::resolve(file, env)
    }

    fn resolve(file: FileSettings, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut s = Self::for_bind(SocketAddr::from(([127, 0, 0, 1], 3001)));
        let nonempty = |name: &str| env(name).filter(|v| !v.is_empty());

        let bind_text = nonempty("WAPULSE_BIND").or(file.bind);
        if let Some(text) = bind_text {
            s.bind = text
                .parse()
                .with_context(|| format!("bind / WAPULSE_BIND: `{text}` is not an address like 127.0.0.1:3001 or [::1]:3001"))?;
        }
        if let Some(port) = nonempty("PORT") {
            let port: u16 = port
                .parse()
                .with_context(|| format!("PORT: `{port}` is not a port number (0-65535)"))?;
            s.bind.set_port(port);
        }
        if let Some(dir) = nonempty("WAPULSE_DATA_DIR")
            .map(PathBuf::from)
            .or(file.data_dir)
        {
            s.data_dir = dir;
        }
        if let Some(id) = nonempty("WAPULSE_DEFAULT_SESSION").or(file.default_session) {
            s.default_session = SessionId::parse(&id)
                .with_context(|| format!("default_session / WAPULSE_DEFAULT_SESSION: `{id}`"))?;
        }
        if let Some(level) = nonempty("LOG_LEVEL").or(file.log_level) {
            s.log_filter = log_filter(&level)?;
        }
        if let Some(format) = nonempty("LOG_FORMAT").or(file.log_format) {
            s.log_format = crate::telemetry::LogFormat::parse(&format)
                .map_err(|e| anyhow::anyhow!("LOG_FORMAT (or log_format): {e}"))?;
        }
        // A token of spaces is no token: refused, not taken for one.
        let token = |env_name: &str, from_file: Option<String>| -> Result<Option<Secret>> {
            match nonempty(env_name).or(from_file) {
                Some(t) if !t.is_empty() && t.trim().is_empty() => bail!(
                    "{env_name} (or {}): only blanks; set a real token or leave it unset",
                    env_name.to_ascii_lowercase()
                ),
                Some(t) if is_placeholder(&t) => bail!(
                    "{env_name} (or {}): a placeholder from an example file, not a token; set a \
                     real one (e.g. `openssl rand -hex 32`)",
                    env_name.to_ascii_lowercase()
                ),
                Some(t) if !t.is_empty() => Ok(Some(Secret::new(t))),
                _ => Ok(None),
            }
        };
        s.ingest_token = token("INGEST_TOKEN", file.ingest_token)?;
        s.metrics_token = token("METRICS_TOKEN", file.metrics_token)?;
        s.read_token = token("READ_TOKEN", file.read_token)?;
        s.admin_token = token("ADMIN_TOKEN", file.admin_token)?;
        s.tokens = crate::tenancy::tokens::check(
            file.tokens.unwrap_or_default(),
            &env,
            &[
                ("INGEST_TOKEN", s.ingest_token.as_ref()),
                ("METRICS_TOKEN", s.metrics_token.as_ref()),
                ("READ_TOKEN", s.read_token.as_ref()),
                ("ADMIN_TOKEN", s.admin_token.as_ref()),
            ],
        )?;
        let hosts = match nonempty("WAPULSE_ALLOWED_HOSTS") {
            Some(text) => text.split(',').map(|h| h.trim().to_owned()).collect(),
            None => file.allowed_hosts.unwrap_or_default(),
        };
        for host in hosts.into_iter().filter(|h| !h.is_empty()) {
            let name = host.trim_start_matches('[').trim_end_matches(']');
            let port = name.contains(':') && name.parse::<std::net::Ipv6Addr>().is_err();
            if port || name.contains(['/', ' ', '@']) {
                bail!(
                    "allowed_hosts / WAPULSE_ALLOWED_HOSTS: `{host}` is not a host name like \
                     wapulse.internal, 10.0.0.5 or ::1 (no scheme, no port)"
                );
            }
            s.allowed_hosts
                .push(name.trim_end_matches('.').to_ascii_lowercase());
        }
        if let Some(v) = file.max_future_skew {
            s.max_future_skew = v;
        }
        if let Some(v) = file.max_event_age {
            if v < DurationMs::from_hours(1) {
                bail!("max_event_age: must be at least 1h");
            }
            s.max_event_age = v;
        }
        if let Some(v) = file.max_body_bytes {
            if v < 1024 {
                bail!("max_body_bytes: {v} is too small (at least 1024)");
            }
            s.max_body_bytes = v;
        }
        if let Some(v) = file.max_batch_events {
            if v == 0 {
                bail!("max_batch_events: must be at least 1");
            }
            s.max_batch_events = v;
        }
        if let Some(v) = file.max_sessions {
            if v == 0 {
                bail!("max_sessions: must be at least 1");
            }
            s.max_sessions = v;
        }
        if let Some(v) = file.max_connections {
            if v == 0 {
                bail!("max_connections: must be at least 1");
            }
            s.max_connections = v;
        }
        if let Some(v) = file.header_read_timeout {
            if !(DurationMs::from_secs(1)..=DurationMs::from_mins(10)).contains(&v) {
                bail!("header_read_timeout: must be from 1s to 10m");
            }
            s.header_read_timeout = v;
        }
        if let Some(v) = file.idle_timeout {
            // The live dashboard's stream says something every 15 s.
            if v < DurationMs::from_secs(20) {
                bail!("idle_timeout: must be at least 20s");
            }
            s.idle_timeout = v;
        }
        if file.dedup_capacity.is_some() {
            bail!(
                "dedup_capacity: no longer a setting: each session now remembers its event ids \
                 for dedup_window (default 30m) up to dedup_per_session ids (default 256); \
                 remove it, or set those two"
            );
        }
        if let Some(v) = file.dedup_window {
            if v < DurationMs::from_mins(1) {
                bail!("dedup_window: must be at least 1m (Evolution API retries for ~20m)");
            }
            s.dedup.window = v;
        }
        if let Some(v) = file.dedup_per_session {
            if v > 100_000 {
                bail!("dedup_per_session: must be at most 100000 (16 bytes an id, per session)");
            }
            s.dedup.per_session = v;
        }
        if let Some(d) = nonempty("WAPULSE_DURABILITY").or(file.durability) {
            s.durability = Durability::parse(&d).with_context(|| {
                format!(
                    "durability / WAPULSE_DURABILITY: `{d}` is neither \"power\" nor \"process\""
                )
            })?;
        }
        if let Some(v) = file.retention {
            if v == DurationMs::ZERO {
                bail!("retention: must be greater than zero");
            }
            s.retention = v;
        }
        if let Some(v) = file.history_minutes_retention {
            if v < DurationMs::from_hours(1) {
                bail!("history_minutes_retention: must be at least 1h");
            }
            s.history.minutes = v;
        }
        if let Some(v) = file.history_retention {
            if v < DurationMs::from_hours(24) {
                bail!("history_retention: must be at least 1d");
            }
            s.history.hours = v;
        }
        if s.history.hours < s.history.minutes {
            bail!(
                "history_retention ({}) must be at least history_minutes_retention ({})",
                s.history.hours.formatted(),
                s.history.minutes.formatted()
            );
        }
        if let Some(v) = file.snapshot_every_events {
            if v == 0 {
                bail!("snapshot_every_events: must be at least 1");
            }
            s.snapshot_every_events = v;
        }
        if let Some(v) = file.snapshot_interval {
            if v < DurationMs::from_secs(1) {
                bail!("snapshot_interval: must be at least 1s");
            }
            s.snapshot_interval = v;
        }
        if let Some(v) = file.max_store_bytes {
            if v < 1024 * 1024 {
                bail!("max_store_bytes: {v} is too small (at least 1048576)");
            }
            s.max_store_bytes = Some(v);
        }
        if let Some(p) = nonempty("WAPULSE_INGEST_PRIORITY").or(file.ingest_priority) {
            s.ingest_priority = Priority::parse(&p).with_context(|| {
                format!(
                    "ingest_priority / WAPULSE_INGEST_PRIORITY: `{p}` is not \"normal\", \"low\" or \"idle\""
                )
            })?;
        }
        if let Some(p) = nonempty("WAPULSE_READ_PRIORITY").or(file.read_priority) {
            s.read_priority = ReadPriority::parse(&p).with_context(|| {
                format!(
                    "read_priority / WAPULSE_READ_PRIORITY: `{p}` is not \"normal\" or \"realtime\""
                )
            })?;
        }
        let budget = match nonempty("WAPULSE_READ_REALTIME_BUDGET") {
            Some(text) => Some(text.trim().parse::<f64>().with_context(|| {
                format!("WAPULSE_READ_REALTIME_BUDGET: `{text}` is not a number like 0.5")
            })?),
            None => file.read_realtime_budget,
        };
        if let Some(v) = budget {
            if !(v > 0.0 && v <= 1.0) {
                bail!(
                    "read_realtime_budget / WAPULSE_READ_REALTIME_BUDGET: {v} is not a share \
                     of the CPU above 0 and at most 1 (0.5 = half)"
                );
            }
            s.read_realtime_budget = v;
        }
        if let Some(m) = nonempty("WAPULSE_METRICS_SESSIONS").or(file.metrics_sessions) {
            s.metrics_sessions = MetricsSessions::parse(&m).with_context(|| {
                format!(
                    "metrics_sessions / WAPULSE_METRICS_SESSIONS: `{m}` is not \"all\", \
                     \"unhealthy\" or \"none\""
                )
            })?;
        }
        if let Some(t) = file.thresholds {
            s.thresholds = Thresholds::try_from(t).context("invalid [thresholds]")?;
        }
        s.ca_file = nonempty("WAPULSE_CA_FILE")
            .map(PathBuf::from)
            .or(file.ca_file);
        let extra_roots = match &s.ca_file {
            Some(path) => crate::tls::read_ca_file(path).context("ca_file / WAPULSE_CA_FILE")?,
            None => Vec::new(),
        };
        if let Some(raw) = file.probes {
            s.probes = probes::check_all(raw, &extra_roots)?;
        }
        s.alerting = AlertingSettings::check(
            file.alerting,
            file.receivers.unwrap_or_default(),
            file.routes.unwrap_or_default(),
        )?;
        s.alerting.extra_roots = extra_roots;
        s.gateways = crate::gateways::GatewaySettings::check(
            file.gateways,
            crate::gateways::GatewayEnv {
                waha_hmac_key: nonempty("WAHA_HMAC_KEY"),
                cloud_app_secret: nonempty("WHATSAPP_CLOUD_APP_SECRET"),
                cloud_verify_token: nonempty("WHATSAPP_CLOUD_VERIFY_TOKEN"),
            },
        )?;
        s.sessions =
            crate::retire::SessionSettings::check(file.sessions, nonempty("WAPULSE_RETIRE_AFTER"))?;
        s.cluster =
            crate::cluster::config::ClusterSettings::check(file.cluster, nonempty, s.retention)?;
        s.status_pages = crate::tenancy::pages::StatusPages::check(file.status_pages)?;
        let ingest_named = s
            .tokens
            .iter()
            .any(|t| t.grant >= crate::tenancy::Grant::Ingest);
        if !s.bind.ip().is_loopback() && s.ingest_token.is_none() && !ingest_named {
            bail!(
                "bind / WAPULSE_BIND: listening on {} (beyond loopback) requires INGEST_TOKEN \
                 (or an ingest token of [[tokens]]), or anyone who can reach the port could write events",
                s.bind
            );
        }
        Ok(s)
    }
}

/// Whether a token is an example's stand-in (`placeholder-…-change-me`):
/// guessable by anyone who read the example.
fn is_placeholder(token: &str) -> bool {
    let t = token.to_ascii_lowercase();
    [
        "placeholder",
        "change-me",
        "changeme",
        "replace-me",
        "your-token",
    ]
    .iter()
    .any(|p| t.contains(p))
}

/// Which sessions `/metrics` writes per-session series for (`wa_session_*`,
/// `wa_heartbeat_*`, … with a `session` label): the fleet rollups
/// (`wa_sessions`, `wa_sessions_by_level`, `wa_alerts`, …) are always
/// there. For Prometheus servers that cannot take a series per session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsSessions {
    /// Every session (the default).
    All,
    /// Only sessions at warning or critical, while they are.
    Unhealthy,
    /// None: fleet rollups only.
    None,
}

impl MetricsSessions {
    /// `all`, `unhealthy` or `none`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "all" => Some(Self::All),
            "unhealthy" => Some(Self::Unhealthy),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

/// Maps the seed's `LOG_LEVEL` names (DEBUG, INFO, WARNING, ERROR) to a
/// filter, and accepts `RUST_LOG` syntax (`info,wapulse=debug`) as well.
pub fn log_filter(level: &str) -> Result<String> {
    let mapped = match level.trim().to_ascii_uppercase().as_str() {
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARNING" | "WARN" => "warn",
        "ERROR" => "error",
        "TRACE" => "trace",
        "OFF" => "off",
        // A lone word that is no level would parse as a filter for a target
        // of that name and silence every log line: refuse it instead.
        word if !word.contains(['=', ',']) => {
            bail!(
                "LOG_LEVEL: `{level}` is not DEBUG, INFO, WARNING or ERROR (or a RUST_LOG filter such as info,wapulse=debug)"
            )
        }
        _ => {
            tracing_subscriber::EnvFilter::try_new(level).with_context(|| {
                format!(
                    "LOG_LEVEL: `{level}` is neither DEBUG, INFO, WARNING, ERROR nor a RUST_LOG filter"
                )
            })?;
            return Ok(level.to_owned());
        }
    };
    Ok(mapped.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(toml_text: &str, env: &[(&str, &str)]) -> Result<Settings> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_toml(toml_text, |k| env.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let s = load("", &[]).unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:3001");
        assert_eq!(s.default_session.as_str(), "default");
        assert_eq!(s.data_dir, PathBuf::from("./data"));
        assert!(s.ingest_token.is_none());
    }

    #[test]
    fn env_overrides_file_and_port_overrides_bind_port() {
        let s = load(
            "bind = \"127.0.0.1:4000\"\nlog_level = \"DEBUG\"",
            &[
                ("WAPULSE_BIND", "127.0.0.2:5000"),
                ("PORT", "6000"),
                ("LOG_LEVEL", "WARNING"),
            ],
        )
        .unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.2:6000");
        assert_eq!(s.log_filter, "warn");
    }

    #[test]
    fn the_realtime_budget_comes_from_file_or_env() {
        assert_eq!(load("", &[]).unwrap().read_realtime_budget, 0.5);
        let file = "read_priority = \"realtime\"\nread_realtime_budget = 0.25";
        let s = load(file, &[]).unwrap();
        assert_eq!(s.read_priority, ReadPriority::Realtime);
        assert_eq!(s.read_realtime_budget, 0.25);
        let s = load(file, &[("WAPULSE_READ_REALTIME_BUDGET", "1")]).unwrap();
        assert_eq!(s.read_realtime_budget, 1.0);
    }

    #[test]
    fn refuses_public_bind_without_ingest_token() {
        let err = load("", &[("WAPULSE_BIND", "0.0.0.0:3001")]).unwrap_err();
        assert!(format!("{err:#}").contains("INGEST_TOKEN"), "{err:#}");
        let ok = load(
            "",
            &[("WAPULSE_BIND", "0.0.0.0:3001"), ("INGEST_TOKEN", "t")],
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn invalid_settings_name_the_setting() {
        type Env<'a> = &'a [(&'a str, &'a str)];
        let cases: [(&str, Env, &str); 21] = [
            (
                "",
                &[("WAPULSE_INGEST_PRIORITY", "urgent")],
                "WAPULSE_INGEST_PRIORITY",
            ),
            (
                "",
                &[("WAPULSE_READ_PRIORITY", "high")],
                "WAPULSE_READ_PRIORITY",
            ),
            ("read_priority = \"fifo\"", &[], "read_priority"),
            ("dedup_capacity = 100000", &[], "dedup_per_session"),
            ("dedup_window = \"10s\"", &[], "dedup_window"),
            ("dedup_per_session = 1000000", &[], "dedup_per_session"),
            ("read_realtime_budget = 0.0", &[], "read_realtime_budget"),
            ("read_realtime_budget = 1.5", &[], "read_realtime_budget"),
            (
                "",
                &[("WAPULSE_READ_REALTIME_BUDGET", "half")],
                "WAPULSE_READ_REALTIME_BUDGET",
            ),
            (
                "",
                &[("WAPULSE_READ_REALTIME_BUDGET", "NaN")],
                "WAPULSE_READ_REALTIME_BUDGET",
            ),
            ("", &[("PORT", "http")], "PORT"),
            ("", &[("WAPULSE_BIND", "localhost")], "WAPULSE_BIND"),
            ("", &[("LOG_LEVEL", "LOUD")], "LOG_LEVEL"),
            (
                "",
                &[("WAPULSE_DEFAULT_SESSION", "a b")],
                "WAPULSE_DEFAULT_SESSION",
            ),
            (
                "[thresholds]\nheartbeat_age_warning = \"10m\"",
                &[],
                "heartbeat_age_warning",
            ),
            ("max_batch_events = 0", &[], "max_batch_events"),
            (
                "",
                &[("WAPULSE_DURABILITY", "eventually")],
                "WAPULSE_DURABILITY",
            ),
            ("retention = \"soon\"", &[], "retention"),
            ("history_retention = \"1h\"", &[], "history_retention"),
            (
                "history_minutes_retention = \"10m\"",
                &[],
                "history_minutes_retention",
            ),
            (
                "history_minutes_retention = \"30d\"\nhistory_retention = \"20d\"",
                &[],
                "must be at least history_minutes_retention",
            ),
        ];
        for (file, env, needle) in cases {
            let err = load(file, env).unwrap_err();
            assert!(format!("{err:#}").contains(needle), "{needle}: {err:#}");
        }
        assert!(
            toml::from_str::<FileSettings>("bnid = 1").is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn an_empty_wapulse_config_means_no_file() {
        let s = Settings::load(None, |k| (k == "WAPULSE_CONFIG").then(String::new)).unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:3001");
        let err = Settings::load(None, |k| {
            (k == "WAPULSE_CONFIG").then(|| "/nonexistent/wapulse.toml".to_owned())
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/wapulse.toml"));
    }

    #[test]
    fn placeholders_and_blanks_are_no_tokens() {
        for (name, value) in [
            ("INGEST_TOKEN", "placeholder-ingest-token-change-me"),
            ("READ_TOKEN", "CHANGEME"),
            ("ADMIN_TOKEN", "  "),
        ] {
            let err = load("", &[(name, value)]).unwrap_err();
            let err = format!("{err:#}");
            assert!(err.contains(name), "{err}");
            assert!(
                !err.contains(value.trim()) || value.trim().is_empty(),
                "{err}"
            );
        }
        assert!(load("", &[("INGEST_TOKEN", "9f2c1d0e8b7a")]).is_ok());
    }

    #[test]
    fn secrets_never_print() {
        let s = load("", &[("INGEST_TOKEN", "hunter2")]).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
