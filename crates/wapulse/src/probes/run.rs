//! One run of one probe, per kind. Each returns a short note on success and
//! a short reason on failure; the caller bounds it with the timeout.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use wapulse_core::{DurationMs, Timestamp};

use super::spec::{ProbeSpec, Target};
use crate::clock;

/// An error and its causes, joined: `error connecting to server: Connection
/// refused (os error 111)`.
fn chain(e: &dyn StdError) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// Runs `spec` once: a short note on success, a short reason on failure.
pub(super) async fn probe(
    spec: &ProbeSpec,
    http: Option<&reqwest::Client>,
) -> Result<String, String> {
    match &spec.target {
        Target::Postgres {
            config,
            migrations_table,
            tls,
        } => postgres(config, migrations_table.as_deref(), tls).await,
        Target::Redis { client } => {
            let mut con = redis_connect(client).await?;
            let pong: String = redis::cmd("PING")
                .query_async(&mut con)
                .await
                .map_err(|e| format!("PING failed: {}", chain(&e)))?;
            if pong == "PONG" {
                Ok("PONG".into())
            } else {
                Err(format!("PING answered {pong:?}"))
            }
        }
        Target::RedisHeartbeat {
            client,
            key,
            max_age,
        } => {
            let mut con = redis_connect(client).await?;
            let value: Option<String> = redis::cmd("GET")
                .arg(key)
                .query_async(&mut con)
                .await
                .map_err(|e| format!("GET {key} failed: {}", chain(&e)))?;
            let Some(value) = value else {
                return Err(format!(
                    "key {key} is missing: the worker has not written a heartbeat"
                ));
            };
            heartbeat_verdict(key, &value, *max_age, clock::now())
        }
        Target::Http {
            url,
            expect_status,
            expect_json,
            ..
        } => {
            let client = http.expect("http probes have a client");
            // The URL may hold a secret (`?apikey=`): errors leave it out.
            let response = client
                .get(url.clone())
                .send()
                .await
                .map_err(|e| chain(&e.without_url()))?;
            let status = response.status().as_u16();
            if !expect_status.matches(status) {
                return Err(format!("status {status}, expected {expect_status}"));
            }
            if expect_json.is_empty() {
                return Ok(format!("status {status}"));
            }
            let body: Value = response.json().await.map_err(|e| {
                let e = e.without_url();
                format!("status {status} but the body is not JSON: {}", chain(&e))
            })?;
            for (path, want) in expect_json {
                let got = path.split('.').try_fold(&body, |v, part| v.get(part));
                match got {
                    Some(got) if got == want => {}
                    Some(got) => return Err(format!("field {path} is {got}, expected {want}")),
                    None => return Err(format!("field {path} is missing, expected {want}")),
                }
            }
            Ok(format!("status {status}, body as expected"))
        }
        Target::Tcp { address } => {
            tokio::net::TcpStream::connect(address.as_str())
                .await
                .map_err(|e| format!("connect to {address}: {e}"))?;
            Ok("connected".into())
        }
    }
}

async fn redis_connect(
    client: &redis::Client,
) -> Result<redis::aio::MultiplexedConnection, String> {
    client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| format!("connect: {}", chain(&e)))
}

async fn postgres(
    config: &tokio_postgres::Config,
    migrations_table: Option<&str>,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<String, String> {
    // TLS when the URL asks for it (`sslmode=require`), with the
    // certificate and the host name verified. `prefer` (tokio-postgres'
    // default) stays plain: opportunistic TLS would fail on a server's
    // self-signed certificate where plain text works.
    let driver = if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new((**tls).clone());
        let (client, connection) = config.connect(tls).await.map_err(|e| chain(&e))?;
        (
            client,
            tokio::spawn(async move {
                let _ = connection.await;
            }),
        )
    } else {
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| chain(&e))?;
        (
            client,
            tokio::spawn(async move {
                let _ = connection.await;
            }),
        )
    };
    let (client, driver) = driver;
    let result = async {
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| format!("SELECT 1 failed: {}", chain(&e)))?;
        let Some(table) = migrations_table else {
            return Ok("SELECT 1 ok".to_owned());
        };
        // The name was checked to be `table` or `schema.table` of
        // [A-Za-z0-9_]; quoting keeps it an identifier.
        let quoted: Vec<String> = table.split('.').map(|p| format!("\"{p}\"")).collect();
        let sql = format!("SELECT count(*) FROM {}", quoted.join("."));
        let row = client
            .query_one(sql.as_str(), &[])
            .await
            .map_err(|e| match e.as_db_error() {
                Some(db) if db.code() == &tokio_postgres::error::SqlState::UNDEFINED_TABLE => {
                    format!("migrations table {table} does not exist")
                }
                _ => format!("reading migrations table {table}: {}", chain(&e)),
            })?;
        let n: i64 = row.get(0);
        if n == 0 {
            Err(format!(
                "migrations table {table} is empty: no migration applied"
            ))
        } else {
            Ok(format!("{n} migrations applied"))
        }
    }
    .await;
    drop(client);
    driver.abort();
    result
}

/// Reads a heartbeat value: Unix seconds (integer or fractional), Unix
/// milliseconds (13 digits and up), or RFC 3339.
pub(crate) fn parse_heartbeat(value: &str) -> Option<Timestamp> {
    let text = value.trim().trim_matches('"');
    if let Ok(n) = text.parse::<f64>() {
        if !n.is_finite() || n <= 0.0 {
            return None;
        }
        // 1e11 seconds is the year 5138; anything larger is milliseconds.
        let ms = if n >= 1e11 { n } else { n * 1000.0 };
        return (ms < 9.0e15).then(|| Timestamp::from_millis(ms as i64));
    }
    Timestamp::parse_rfc3339(text).ok()
}

/// Fresh, stale, or unreadable.
pub(crate) fn heartbeat_verdict(
    key: &str,
    value: &str,
    max_age: Duration,
    now: Timestamp,
) -> Result<String, String> {
    let Some(at) = parse_heartbeat(value) else {
        return Err(format!(
            "key {key} holds {value:?}, not a timestamp (Unix seconds or milliseconds, or RFC 3339)"
        ));
    };
    let max = DurationMs::from_millis(max_age.as_millis() as u64);
    if at > now.plus(max) {
        return Err(format!(
            "key {key} is {} in the future: check the worker's clock",
            at.since(now).formatted()
        ));
    }
    let age = now.since(at);
    if age > max {
        Err(format!(
            "heartbeat {key} is stale: {} old (max {})",
            age.formatted(),
            max.formatted()
        ))
    } else {
        Ok(format!("heartbeat {} old", age.formatted()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_formats() {
        let at = Timestamp::from_millis(1_764_000_000_000);
        assert_eq!(parse_heartbeat("1764000000"), Some(at));
        assert_eq!(
            parse_heartbeat("1764000000.250"),
            Some(at.plus(DurationMs::from_millis(250)))
        );
        assert_eq!(parse_heartbeat("1764000000000"), Some(at));
        assert_eq!(parse_heartbeat("2025-11-24T16:00:00Z"), Some(at));
        assert_eq!(parse_heartbeat("\"1764000000\""), Some(at));
        assert_eq!(parse_heartbeat("yesterday"), None);
        assert_eq!(parse_heartbeat("-5"), None);
        assert_eq!(parse_heartbeat("NaN"), None);
    }

    #[test]
    fn heartbeat_age_against_max() {
        let now = Timestamp::from_millis(1_764_000_100_000);
        let max = Duration::from_secs(90);
        let ok = heartbeat_verdict("k", "1764000030", max, now).unwrap();
        assert_eq!(ok, "heartbeat 1m 10s old");
        assert!(
            heartbeat_verdict("k", "1764000010", max, now).is_ok(),
            "exactly 90s is fresh"
        );
        let stale = heartbeat_verdict("k", "1764000009", max, now).unwrap_err();
        assert!(stale.contains("stale: 1m 31s old (max 1m 30s)"), "{stale}");
        let bad = heartbeat_verdict("k", "soon", max, now).unwrap_err();
        assert!(bad.contains("not a timestamp"), "{bad}");
        let future = heartbeat_verdict("k", "1764001000", max, now).unwrap_err();
        assert!(future.contains("future"), "{future}");
    }

    #[test]
    fn error_chains_join_causes() {
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let outer = std::io::Error::other(inner);
        assert_eq!(chain(&outer), "refused");
    }
}
