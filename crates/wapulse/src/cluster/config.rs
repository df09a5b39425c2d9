//! `[cluster]`: scale-out on NATS JetStream, checked once at start.
//!
//! ```toml
//! [cluster]
//! nats_url = ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"]
//! stream = "WAPULSE"
//! subject_prefix = "wapulse"
//! replica_id = "wapulse-0"      # default: the host name
//! token = "…"                   # or user + password, or creds_file
//! ```
//!
//! Environment: `WAPULSE_NATS_URL` (comma-separated), `WAPULSE_REPLICA_ID`,
//! `WAPULSE_NATS_USER`, `WAPULSE_NATS_PASSWORD`, `WAPULSE_NATS_TOKEN`,
//! `WAPULSE_NATS_CREDS`. The section is off (embedded SQLite mode) unless a
//! URL is given.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use wapulse_core::DurationMs;

use crate::secret::Secret;

/// One URL or a list, as written.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Urls {
    /// `nats_url = "nats://…"`.
    One(String),
    /// `nats_url = ["nats://…", …]`.
    Many(Vec<String>),
}

/// `[cluster]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    nats_url: Option<Urls>,
    stream: Option<String>,
    subject_prefix: Option<String>,
    replica_id: Option<String>,
    user: Option<String>,
    password: Option<String>,
    token: Option<String>,
    creds_file: Option<PathBuf>,
    stream_replicas: Option<usize>,
    stream_max_age: Option<DurationMs>,
    max_lag_events: Option<u64>,
    lease_ttl: Option<DurationMs>,
    publish_timeout: Option<DurationMs>,
}

/// How a replica proves itself to NATS.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// No credentials.
    None,
    /// `user` and `password`.
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: Secret,
    },
    /// A token.
    Token(Secret),
    /// A `.creds` file (JWT and NKey seed).
    CredsFile(PathBuf),
}

/// `[cluster]`, checked. Its `Debug` shows the NATS URLs without their
/// passwords.
#[derive(Clone)]
pub struct ClusterSettings {
    /// NATS servers (any one will do; the client fails over).
    pub urls: Vec<String>,
    /// The JetStream stream (created if missing).
    pub stream: String,
    /// Subjects are `<prefix>.events`, `<prefix>.silences`.
    pub subject_prefix: String,
    /// This replica's name (leases, health).
    pub replica_id: String,
    /// How to authenticate.
    pub credentials: Credentials,
    /// The stream's replication factor inside the NATS cluster (1–5).
    pub stream_replicas: usize,
    /// How long the stream keeps a message (a replica may be away at most
    /// this long and still catch up from its own snapshot).
    pub stream_max_age: DurationMs,
    /// `/readyz` is not ready while the replica is further behind.
    pub max_lag_events: u64,
    /// A leader that has not renewed its lease for this long is replaced.
    pub lease_ttl: DurationMs,
    /// How long an ingest waits for JetStream's ack before answering 503.
    pub publish_timeout: DurationMs,
}

impl std::fmt::Debug for ClusterSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSettings")
            .field("urls", &self.shown_urls())
            .field("stream", &self.stream)
            .field("subject_prefix", &self.subject_prefix)
            .field("replica_id", &self.replica_id)
            .field("credentials", &self.credentials)
            .field("stream_replicas", &self.stream_replicas)
            .field("stream_max_age", &self.stream_max_age)
            .field("max_lag_events", &self.max_lag_events)
            .field("lease_ttl", &self.lease_ttl)
            .field("publish_timeout", &self.publish_timeout)
            .finish()
    }
}

impl ClusterSettings {
    /// The NATS URLs as they may be shown (passwords and query values
    /// hidden).
    pub fn shown_urls(&self) -> Vec<String> {
        self.urls.iter().map(|u| shown_url(u)).collect()
    }

    /// The subject events are published on.
    pub fn events_subject(&self) -> String {
        format!("{}.events", self.subject_prefix)
    }

    /// The subject silences are published on.
    pub fn silences_subject(&self) -> String {
        format!("{}.silences", self.subject_prefix)
    }

    /// The KV bucket of the leader lease.
    pub fn lease_bucket(&self) -> String {
        format!("{}_leader", self.stream)
    }

    /// The KV bucket of the outbox's sent-marks.
    pub fn marks_bucket(&self) -> String {
        format!("{}_sent", self.stream)
    }

    /// Checks `[cluster]` and the environment; `None` when no NATS URL is
    /// configured (embedded mode).
    pub fn check(
        raw: Option<RawCluster>,
        env: impl Fn(&str) -> Option<String>,
        retention: DurationMs,
    ) -> Result<Option<Self>> {
        let raw = raw.unwrap_or_default();
        let urls: Vec<String> = match env("WAPULSE_NATS_URL") {
            Some(text) => text
                .split(',')
                .map(|u| u.trim().to_owned())
                .filter(|u| !u.is_empty())
                .collect(),
            None => match raw.nats_url {
                Some(Urls::One(u)) => vec![u],
                Some(Urls::Many(list)) => list,
                None => Vec::new(),
            },
        };
        if urls.is_empty() {
            if raw.stream.is_some() || raw.replica_id.is_some() || raw.subject_prefix.is_some() {
                bail!("cluster.nats_url / WAPULSE_NATS_URL: required when [cluster] is set");
            }
            return Ok(None);
        }
        for url in &urls {
            check_url(url)?;
        }
        let stream = raw.stream.unwrap_or_else(|| "WAPULSE".into());
        if stream.is_empty()
            || stream.len() > 64
            || !stream
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            bail!("cluster.stream: `{stream}` is not a stream name (1-64 of A-Z a-z 0-9 _ -)");
        }
        let subject_prefix = raw.subject_prefix.unwrap_or_else(|| "wapulse".into());
        if subject_prefix.is_empty()
            || subject_prefix.split('.').any(|token| {
                token.is_empty()
                    || !token
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            })
        {
            bail!(
                "cluster.subject_prefix: `{subject_prefix}` is not a subject prefix \
                 (dot-separated tokens of A-Z a-z 0-9 _ -)"
            );
        }
        let replica_id = match env("WAPULSE_REPLICA_ID").or(raw.replica_id) {
            Some(id) => id,
            None => hostname().context(
                "cluster.replica_id / WAPULSE_REPLICA_ID: not set and the host name is unknown",
            )?,
        };
        if replica_id.is_empty()
            || replica_id.len() > 64
            || !replica_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            bail!(
                "cluster.replica_id / WAPULSE_REPLICA_ID: `{replica_id}` is not a replica name \
                 (1-64 of A-Z a-z 0-9 . _ -)"
            );
        }
        let user = env("WAPULSE_NATS_USER").or(raw.user);
        let password = env("WAPULSE_NATS_PASSWORD").or(raw.password);
        let token = env("WAPULSE_NATS_TOKEN").or(raw.token);
        let creds = env("WAPULSE_NATS_CREDS")
            .map(PathBuf::from)
            .or(raw.creds_file);
        let credentials = match (user, password, token, creds) {
            (None, None, None, None) => Credentials::None,
            (Some(user), Some(password), None, None) => Credentials::UserPassword {
                user,
                password: Secret::new(password),
            },
            (None, None, Some(token), None) => Credentials::Token(Secret::new(token)),
            (None, None, None, Some(path)) => {
                let meta = std::fs::metadata(&path).with_context(|| {
                    format!(
                        "cluster.creds_file / WAPULSE_NATS_CREDS: cannot read {}",
                        path.display()
                    )
                })?;
                if !meta.is_file() {
                    bail!(
                        "cluster.creds_file / WAPULSE_NATS_CREDS: {} is not a file",
                        path.display()
                    );
                }
                Credentials::CredsFile(path)
            }
            (Some(_), None, None, None) | (None, Some(_), None, None) => bail!(
                "cluster.user / cluster.password (WAPULSE_NATS_USER / WAPULSE_NATS_PASSWORD): \
                 both are needed"
            ),
            _ => bail!(
                "cluster: give one of user and password, token, or creds_file \
                 (WAPULSE_NATS_USER/_PASSWORD, WAPULSE_NATS_TOKEN, WAPULSE_NATS_CREDS), not several"
            ),
        };
        let stream_replicas = raw.stream_replicas.unwrap_or(1);
        if !(1..=5).contains(&stream_replicas) {
            bail!("cluster.stream_replicas: {stream_replicas} is not 1 to 5");
        }
        let stream_max_age = raw.stream_max_age.unwrap_or(retention);
        if stream_max_age < DurationMs::from_mins(1) {
            bail!("cluster.stream_max_age: must be at least 1m");
        }
        let max_lag_events = raw.max_lag_events.unwrap_or(1000);
        let lease_ttl = raw.lease_ttl.unwrap_or(DurationMs::from_secs(10));
        if lease_ttl < DurationMs::from_secs(1) || lease_ttl > DurationMs::from_mins(10) {
            bail!("cluster.lease_ttl: must be between 1s and 10m");
        }
        let publish_timeout = raw.publish_timeout.unwrap_or(DurationMs::from_secs(5));
        if publish_timeout < DurationMs::from_millis(100)
            || publish_timeout > DurationMs::from_mins(1)
        {
            bail!("cluster.publish_timeout: must be between 100ms and 1m");
        }
        Ok(Some(Self {
            urls,
            stream,
            subject_prefix,
            replica_id,
            credentials,
            stream_replicas,
            stream_max_age,
            max_lag_events,
            lease_ttl,
            publish_timeout,
        }))
    }
}

fn check_url(url: &str) -> Result<()> {
    let rest = ["nats://", "tls://", "ws://", "wss://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme))
        .or_else(|| (!url.contains("://")).then_some(url));
    match rest {
        Some(hostport) if !hostport.is_empty() && !hostport.contains(['/', ' ']) => Ok(()),
        _ => bail!(
            "cluster.nats_url / WAPULSE_NATS_URL: `{}` is not a NATS URL like nats://host:4222",
            shown_url(url)
        ),
    }
}

/// A NATS URL as it may be shown: its password and query hidden (a URL
/// written without a scheme is read as `nats://`).
pub(crate) fn shown_url(url: &str) -> String {
    if url.contains("://") {
        crate::secret::redact_url(url).0
    } else {
        crate::secret::redact_url(&format!("nats://{url}")).0
    }
}

fn hostname() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn check(toml_text: &str, env: &[(&str, &str)]) -> Result<Option<ClusterSettings>> {
        let env: HashMap<&str, &str> = env.iter().copied().collect();
        let raw: Option<RawCluster> = if toml_text.is_empty() {
            None
        } else {
            Some(toml::from_str(toml_text).context("toml")?)
        };
        ClusterSettings::check(
            raw,
            |k| env.get(k).map(|v| v.to_string()),
            DurationMs::from_hours(24),
        )
    }

    #[test]
    fn off_without_a_url_and_defaults_with_one() {
        assert!(check("", &[]).unwrap().is_none());
        let c = check(
            "nats_url = \"nats://127.0.0.1:4222\"\nreplica_id = \"a\"",
            &[],
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.urls, ["nats://127.0.0.1:4222"]);
        assert_eq!(c.stream, "WAPULSE");
        assert_eq!(c.events_subject(), "wapulse.events");
        assert_eq!(c.lease_bucket(), "WAPULSE_leader");
        assert_eq!(c.stream_max_age, DurationMs::from_hours(24));
        assert!(matches!(c.credentials, Credentials::None));
        let c = check(
            "",
            &[
                ("WAPULSE_NATS_URL", "nats://a:1, nats://b:2"),
                ("WAPULSE_REPLICA_ID", "r-1"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.urls, ["nats://a:1", "nats://b:2"]);
        assert_eq!(c.replica_id, "r-1");
    }

    #[test]
    fn bad_settings_name_the_setting() {
        let url = "nats_url = \"nats://h:4222\"\nreplica_id = \"a\"\n";
        let cases = [
            ("stream = \"WAPULSE\"", "cluster.nats_url"),
            ("nats_url = \"http://x/y\"", "cluster.nats_url"),
            (&format!("{url}stream = \"a.b\""), "cluster.stream"),
            (&format!("{url}subject_prefix = \"a..b\""), "subject_prefix"),
            (
                "nats_url = \"nats://h:4222\"\nreplica_id = \"a b\"",
                "replica_id",
            ),
            (&format!("{url}user = \"u\""), "both are needed"),
            (&format!("{url}token = \"t\"\nuser = \"u\""), "not several"),
            (
                &format!("{url}creds_file = \"/nonexistent.creds\""),
                "creds_file",
            ),
            (&format!("{url}stream_replicas = 7"), "stream_replicas"),
            (&format!("{url}lease_ttl = \"100ms\""), "lease_ttl"),
        ];
        for (text, needle) in cases {
            let err = check(text, &[]).unwrap_err();
            assert!(format!("{err:#}").contains(needle), "{needle}: {err:#}");
        }
    }

    #[test]
    fn credentials_never_print() {
        let c = check(
            "nats_url = \"nats://h:4222\"\nreplica_id = \"a\"\nuser = \"u\"\npassword = \"hunter2\"",
            &[],
        )
        .unwrap()
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        // A password in the URL itself is hidden too.
        let c = check(
            "nats_url = \"nats://u:inurl-pw@h:4222\"\nreplica_id = \"a\"",
            &[],
        )
        .unwrap()
        .unwrap();
        assert!(!format!("{c:?}").contains("inurl-pw"), "{c:?}");
        assert_eq!(c.urls, ["nats://u:inurl-pw@h:4222"], "kept for connecting");
        // Written without a scheme, the same.
        assert_eq!(shown_url("u:bare-pw@h:4222"), "nats://u:***@h:4222");
        let c = check(
            "",
            &[
                ("WAPULSE_NATS_URL", "nats://h:4222"),
                ("WAPULSE_REPLICA_ID", "a"),
                ("WAPULSE_NATS_TOKEN", "s3cret"),
            ],
        )
        .unwrap()
        .unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
