//! `[[probes]]` tables as written in the config file, checked into
//! [`ProbeSpec`]s at start so that a typo names its probe and field instead
//! of failing at 3 a.m.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rustls::pki_types::CertificateDer;
use serde::Deserialize;
use serde_json::Value;
use wapulse_core::DurationMs;

use crate::secret::{Hidden, redact_url};

/// One `[[probes]]` table, as written. Kind-specific fields are optional
/// here and required (or refused) by [`ProbeSpec::from_raw`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProbe {
    name: String,
    kind: String,
    group: Option<String>,
    readiness: Option<bool>,
    interval: Option<DurationMs>,
    timeout: Option<DurationMs>,
    url: Option<String>,
    migrations_table: Option<String>,
    key: Option<String>,
    max_age: Option<DurationMs>,
    expect_status: Option<ExpectStatusRaw>,
    expect_json: Option<serde_json::Map<String, Value>>,
    address: Option<String>,
    ca_file: Option<std::path::PathBuf>,
}

/// `expect_status = 200` or `expect_status = "2xx"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ExpectStatusRaw {
    Code(u16),
    Text(String),
}

/// Which HTTP statuses pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectStatus {
    /// Exactly this code.
    Code(u16),
    /// Any code of this class (2 for `2xx`).
    Class(u16),
}

impl ExpectStatus {
    /// Whether `code` passes.
    pub fn matches(self, code: u16) -> bool {
        match self {
            Self::Code(c) => c == code,
            Self::Class(c) => code / 100 == c,
        }
    }
}

impl fmt::Display for ExpectStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(c) => write!(f, "{c}"),
            Self::Class(c) => write!(f, "{c}xx"),
        }
    }
}

/// What a probe checks, with everything parsed.
#[derive(Clone)]
pub enum Target {
    /// Connect and `SELECT 1`; optionally a non-empty migrations table.
    Postgres {
        /// Connection settings (may hold a password).
        config: tokio_postgres::Config,
        /// A table (optionally `schema.table`) that must exist and have rows.
        migrations_table: Option<String>,
        /// The TLS configuration for `sslmode=require`.
        tls: Arc<rustls::ClientConfig>,
    },
    /// `PING`.
    Redis {
        /// The client (may hold a password).
        client: redis::Client,
    },
    /// `GET key`: a timestamp no older than `max_age`.
    RedisHeartbeat {
        /// The client (may hold a password).
        client: redis::Client,
        /// The heartbeat key, e.g. `worker:heartbeat`.
        key: String,
        /// Older than this is stale.
        max_age: Duration,
    },
    /// `GET url`: the status, and optionally fields of a JSON body.
    Http {
        /// Where.
        url: reqwest::Url,
        /// Which statuses pass.
        expect_status: ExpectStatus,
        /// Dotted field path = expected JSON value.
        expect_json: Vec<(String, Value)>,
        /// The TLS configuration for `https://`.
        tls: Arc<rustls::ClientConfig>,
    },
    /// A TCP connection.
    Tcp {
        /// `host:port`.
        address: String,
    },
}

/// A checked probe.
#[derive(Clone)]
pub struct ProbeSpec {
    /// Unique name: a readiness check and a label.
    pub name: String,
    /// Its kind, as configured (`postgres`, `redis`, …).
    pub kind: &'static str,
    /// The `/health/{group}` it belongs to.
    pub group: Option<String>,
    /// Whether `/readyz` depends on it.
    pub readiness: bool,
    /// Time between runs.
    pub interval: Duration,
    /// Longest one run may take.
    pub timeout: Duration,
    /// What it checks.
    pub target: Target,
    /// Where it points, with any password replaced by `***`: for logs and
    /// responses.
    pub display: String,
    /// Passwords and query values found in the target, scrubbed from every
    /// reason.
    pub(crate) secrets: Hidden,
}

impl fmt::Debug for ProbeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeSpec")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("group", &self.group)
            .field("readiness", &self.readiness)
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("target", &self.display)
            .finish()
    }
}

/// Names of checks that are not probes and may not be taken by one.
const RESERVED: &[&str] = &["model", "store"];

fn valid_word(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn duration(d: DurationMs) -> Duration {
    Duration::from_millis(d.as_millis())
}

impl ProbeSpec {
    /// Checks probe number `index` of the config file.
    /// `extra_roots`: the top-level `ca_file`'s certificates.
    pub(crate) fn from_raw(
        index: usize,
        raw: RawProbe,
        extra_roots: &[CertificateDer<'static>],
    ) -> Result<Self> {
        let at = format!("probes[{index}] (name \"{}\")", raw.name);
        Self::check(raw, extra_roots).with_context(|| at)
    }

    fn check(raw: RawProbe, extra_roots: &[CertificateDer<'static>]) -> Result<Self> {
        if !valid_word(&raw.name) {
            bail!("name: `{}` must be 1-64 of A-Z a-z 0-9 _ - .", raw.name);
        }
        if RESERVED.contains(&raw.name.as_str()) {
            bail!("name: `{}` is reserved for a built-in check", raw.name);
        }
        if let Some(g) = &raw.group
            && !valid_word(g)
        {
            bail!("group: `{g}` must be 1-64 of A-Z a-z 0-9 _ - .");
        }
        let interval = raw.interval.unwrap_or(DurationMs::from_secs(10));
        if interval < DurationMs::from_millis(100) {
            bail!("interval: {interval} is too short (at least 100ms)");
        }
        let timeout = raw.timeout.unwrap_or(DurationMs::from_secs(2));
        if timeout < DurationMs::from_millis(10) || timeout > DurationMs::from_mins(5) {
            bail!("timeout: {timeout} must be between 10ms and 5m");
        }
        let allowed: &[&str] = match raw.kind.as_str() {
            "postgres" => &["url", "migrations_table", "ca_file"],
            "redis" => &["url"],
            "redis_heartbeat" => &["url", "key", "max_age"],
            "http" => &["url", "expect_status", "expect_json", "ca_file"],
            "tcp" => &["address"],
            other => {
                bail!("kind: `{other}` is not one of postgres, redis, redis_heartbeat, http, tcp")
            }
        };
        let present = [
            ("url", raw.url.is_some()),
            ("migrations_table", raw.migrations_table.is_some()),
            ("key", raw.key.is_some()),
            ("max_age", raw.max_age.is_some()),
            ("expect_status", raw.expect_status.is_some()),
            ("expect_json", raw.expect_json.is_some()),
            ("address", raw.address.is_some()),
            ("ca_file", raw.ca_file.is_some()),
        ];
        for (field, set) in present {
            if set && !allowed.contains(&field) {
                bail!("{field}: not a field of a `{}` probe", raw.kind);
            }
        }
        let need = |v: Option<String>, field: &str| -> Result<String> {
            v.filter(|s| !s.is_empty())
                .with_context(|| format!("{field}: required for a `{}` probe", raw.kind))
        };
        // Trusted roots: Mozilla's, the system's, the top-level `ca_file`
        // and this probe's own.
        let tls = || -> Result<Arc<rustls::ClientConfig>> {
            let mut roots = extra_roots.to_vec();
            if let Some(path) = &raw.ca_file {
                roots.extend(crate::tls::read_ca_file(path).context("ca_file")?);
            }
            Ok(crate::tls::client_config(&roots))
        };
        let kind: &'static str;
        let (target, display, secrets) = match raw.kind.as_str() {
            "postgres" => {
                kind = "postgres";
                let url = need(raw.url, "url")?;
                let config: tokio_postgres::Config = url
                    .parse()
                    .map_err(|e| anyhow::anyhow!("url: not a PostgreSQL connection string: {e}"))?;
                if let Some(t) = &raw.migrations_table
                    && !t.split('.').all(|part| {
                        !part.is_empty()
                            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    })
                {
                    bail!("migrations_table: `{t}` must be `table` or `schema.table`");
                }
                let (display, mut secrets) = redact_url(&url);
                secrets.passwords.extend(
                    config
                        .get_password()
                        .map(|p| String::from_utf8_lossy(p).into_owned()),
                );
                let display = if config.get_password().is_some() && display == url {
                    // key=value form: show where it points, never the rest.
                    format!(
                        "postgres {:?} db {:?}",
                        config.get_hosts(),
                        config.get_dbname()
                    )
                } else {
                    display
                };
                (
                    Target::Postgres {
                        config,
                        migrations_table: raw.migrations_table,
                        tls: tls()?,
                    },
                    display,
                    secrets,
                )
            }
            "redis" | "redis_heartbeat" => {
                let url = need(raw.url, "url")?;
                let client = redis::Client::open(url.as_str())
                    .map_err(|e| anyhow::anyhow!("url: not a Redis URL: {e}"))?;
                let (display, secrets) = redact_url(&url);
                if raw.kind == "redis" {
                    kind = "redis";
                    (Target::Redis { client }, display, secrets)
                } else {
                    kind = "redis_heartbeat";
                    let key = need(raw.key, "key")?;
                    let max_age = raw.max_age.unwrap_or(DurationMs::from_secs(90));
                    if max_age == DurationMs::ZERO {
                        bail!("max_age: must be greater than zero");
                    }
                    (
                        Target::RedisHeartbeat {
                            client,
                            key,
                            max_age: duration(max_age),
                        },
                        display,
                        secrets,
                    )
                }
            }
            "http" => {
                kind = "http";
                let text = need(raw.url, "url")?;
                let url = reqwest::Url::parse(&text)
                    // Not shown: it may hold a secret where a password goes.
                    .map_err(|e| anyhow::anyhow!("url: not a URL ({e})"))?;
                if !matches!(url.scheme(), "http" | "https") {
                    bail!("url: `{}` must be http:// or https://", url.scheme());
                }
                let expect_status = match raw.expect_status {
                    None => ExpectStatus::Class(2),
                    Some(ExpectStatusRaw::Code(c)) if (100..=599).contains(&c) => {
                        ExpectStatus::Code(c)
                    }
                    Some(ExpectStatusRaw::Text(t))
                        if t.len() == 3
                            && t.ends_with("xx")
                            && matches!(t.as_bytes()[0], b'1'..=b'5') =>
                    {
                        ExpectStatus::Class(u16::from(t.as_bytes()[0] - b'0'))
                    }
                    Some(ExpectStatusRaw::Text(t)) => match t.parse::<u16>() {
                        Ok(c) if (100..=599).contains(&c) => ExpectStatus::Code(c),
                        _ => {
                            bail!("expect_status: `{t}` is neither a status code nor like \"2xx\"")
                        }
                    },
                    Some(ExpectStatusRaw::Code(c)) => {
                        bail!("expect_status: {c} is not an HTTP status (100-599)")
                    }
                };
                let expect_json = raw.expect_json.unwrap_or_default().into_iter().collect();
                let (display, secrets) = redact_url(&text);
                (
                    Target::Http {
                        url,
                        expect_status,
                        expect_json,
                        tls: tls()?,
                    },
                    display,
                    secrets,
                )
            }
            _ => {
                kind = "tcp";
                let address = need(raw.address, "address")?;
                match address.rsplit_once(':') {
                    Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
                    _ => bail!("address: `{address}` must be host:port"),
                }
                let display = address.clone();
                (Target::Tcp { address }, display, Hidden::default())
            }
        };
        Ok(Self {
            name: raw.name,
            kind,
            group: raw.group,
            readiness: raw.readiness.unwrap_or(false),
            interval: duration(interval),
            timeout: duration(timeout),
            target,
            display,
            secrets,
        })
    }
}

/// Checks every `[[probes]]` table; names must be unique.
pub(crate) fn check_all(
    raw: Vec<RawProbe>,
    extra_roots: &[CertificateDer<'static>],
) -> Result<Vec<ProbeSpec>> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, r) in raw.into_iter().enumerate() {
        let spec = ProbeSpec::from_raw(i, r, extra_roots)?;
        if !seen.insert(spec.name.clone()) {
            bail!("probes[{i}]: name `{}` is used twice", spec.name);
        }
        out.push(spec);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        probes: Vec<RawProbe>,
    }

    fn parse(text: &str) -> Result<Vec<ProbeSpec>> {
        check_all(toml::from_str::<File>(text)?.probes, &[])
    }

    #[test]
    fn every_kind_with_defaults() {
        let specs = parse(
            r#"
            [[probes]]
            name = "db"
            kind = "postgres"
            url = "postgres://app:s3cret@127.0.0.1:5432/app"
            migrations_table = "public.schema_migrations"
            readiness = true
            [[probes]]
            name = "cache"
            kind = "redis"
            url = "redis://127.0.0.1:6379/0"
            [[probes]]
            name = "worker"
            kind = "redis_heartbeat"
            url = "redis://:pw@127.0.0.1:6379/0"
            key = "worker:heartbeat"
            [[probes]]
            name = "baileys"
            kind = "http"
            group = "whatsapp"
            url = "http://127.0.0.1:3300/health"
            expect_json = { status = "ok" }
            [[probes]]
            name = "calls"
            kind = "tcp"
            address = "127.0.0.1:5060"
            interval = "1s"
            timeout = "500ms"
            "#,
        )
        .unwrap();
        assert_eq!(specs.len(), 5);
        assert_eq!(specs[0].kind, "postgres");
        assert!(specs[0].readiness);
        assert!(!specs[1].readiness, "readiness defaults to false");
        assert_eq!(specs[1].interval, Duration::from_secs(10));
        assert_eq!(specs[1].timeout, Duration::from_secs(2));
        assert!(
            matches!(specs[2].target, Target::RedisHeartbeat { max_age, .. } if max_age == Duration::from_secs(90))
        );
        assert!(
            matches!(&specs[3].target, Target::Http { expect_status: ExpectStatus::Class(2), expect_json, .. } if expect_json.len() == 1)
        );
        assert_eq!(specs[3].group.as_deref(), Some("whatsapp"));
        assert_eq!(specs[4].timeout, Duration::from_millis(500));
        // Passwords never show.
        assert!(!specs[0].display.contains("s3cret"), "{}", specs[0].display);
        assert!(!format!("{specs:?}").contains("s3cret"));
        assert!(!format!("{specs:?}").contains(":pw@"));
        assert!(specs[0].secrets.passwords.iter().any(|s| s == "s3cret"));
    }

    #[test]
    fn errors_name_the_probe_and_field() {
        let cases = [
            ("name = \"x\"\nkind = \"ftp\"", "kind"),
            ("name = \"x\"\nkind = \"redis\"", "url"),
            ("name = \"x\"\nkind = \"redis\"\nurl = \"mysql://h\"", "url"),
            (
                "name = \"x\"\nkind = \"redis_heartbeat\"\nurl = \"redis://h\"",
                "key",
            ),
            (
                "name = \"x\"\nkind = \"tcp\"\naddress = \"nohost\"",
                "address",
            ),
            (
                "name = \"x\"\nkind = \"tcp\"\naddress = \"h:1\"\nurl = \"http://h\"",
                "url: not a field",
            ),
            (
                "name = \"x\"\nkind = \"http\"\nurl = \"http://h\"\nexpect_status = \"9xx\"",
                "expect_status",
            ),
            (
                "name = \"x\"\nkind = \"http\"\nurl = \"ftp://h\"",
                "must be http:// or https://",
            ),
            (
                "name = \"x\"\nkind = \"postgres\"\nurl = \"postgres://h/d\"\nmigrations_table = \"a;drop\"",
                "migrations_table",
            ),
            (
                "name = \"store\"\nkind = \"tcp\"\naddress = \"h:1\"",
                "reserved",
            ),
            ("name = \"a b\"\nkind = \"tcp\"\naddress = \"h:1\"", "name"),
            (
                "name = \"x\"\nkind = \"tcp\"\naddress = \"h:1\"\ninterval = \"1ms\"",
                "interval",
            ),
            (
                "name = \"x\"\nkind = \"tcp\"\naddress = \"h:1\"\ntimeout = \"1h\"",
                "timeout",
            ),
        ];
        for (table, needle) in cases {
            let err = parse(&format!("[[probes]]\n{table}")).unwrap_err();
            let text = format!("{err:#}");
            assert!(text.contains(needle), "{needle}: {text}");
            assert!(text.contains("probes[0]"), "{text}");
        }
        let twice = "[[probes]]\nname = \"a\"\nkind = \"tcp\"\naddress = \"h:1\"\n";
        let err = parse(&format!("{twice}{twice}")).unwrap_err();
        assert!(format!("{err:#}").contains("used twice"));
    }

    #[test]
    fn expect_status_forms() {
        assert!(ExpectStatus::Class(2).matches(204));
        assert!(!ExpectStatus::Class(2).matches(301));
        assert!(ExpectStatus::Code(418).matches(418));
        let spec = parse(
            "[[probes]]\nname = \"x\"\nkind = \"http\"\nurl = \"http://h\"\nexpect_status = 503",
        )
        .unwrap();
        assert!(matches!(
            spec[0].target,
            Target::Http {
                expect_status: ExpectStatus::Code(503),
                ..
            }
        ));
    }
}
