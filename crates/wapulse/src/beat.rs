//! `wapulse beat`: writes a heartbeat key to Redis for a worker that has
//! none, so that a `redis_heartbeat` probe can watch it.
//!
//! The value is Unix seconds (what the seed's worker writes); the key has a
//! TTL (default three intervals) so that it disappears, and the probe fails,
//! when the beat stops.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::clock;
use crate::secret::redact_url;

/// What to write, where and how often.
#[derive(Clone, Debug)]
pub struct BeatOptions {
    /// `redis://[:password@]host:port/db`.
    pub redis_url: String,
    /// The key, e.g. `worker:heartbeat`.
    pub key: String,
    /// Time between writes.
    pub every: Duration,
    /// The key's TTL; default three intervals.
    pub ttl: Option<Duration>,
    /// Write once and exit (1 on failure).
    pub once: bool,
}

/// Writes the key now; returns the value written.
async fn beat_once(
    client: &redis::Client,
    key: &str,
    ttl: Duration,
    limit: Duration,
) -> Result<i64> {
    let now = clock::now().as_millis() / 1000;
    let write = async {
        let mut con = client.get_multiplexed_async_connection().await?;
        redis::cmd("SET")
            .arg(key)
            .arg(now)
            .arg("EX")
            .arg(ttl.as_secs().max(1))
            .query_async::<()>(&mut con)
            .await
    };
    match tokio::time::timeout(limit, write).await {
        Ok(Ok(())) => Ok(now),
        Ok(Err(e)) => bail!("writing {key}: {e}"),
        Err(_) => bail!(
            "writing {key}: no answer within {}",
            humantime::format_duration(limit)
        ),
    }
}

/// Beats until `shutdown` completes (or once, with `once`).
pub async fn run(opts: BeatOptions, shutdown: impl Future<Output = ()>) -> Result<()> {
    let (shown, _) = redact_url(&opts.redis_url);
    let client = redis::Client::open(opts.redis_url.as_str())
        .map_err(|e| anyhow::anyhow!("--redis: `{shown}` is not a Redis URL: {e}"))?;
    if opts.key.is_empty() {
        bail!("--key: must not be empty");
    }
    if opts.every < Duration::from_secs(1) {
        bail!("--every: at least 1s");
    }
    let ttl = opts.ttl.unwrap_or(opts.every * 3);
    if ttl <= opts.every {
        bail!("--ttl: must be longer than --every, or the key would vanish between beats");
    }
    let limit = opts.every.min(Duration::from_secs(5));
    if opts.once {
        let at = beat_once(&client, &opts.key, ttl, limit)
            .await
            .with_context(|| format!("redis {shown}"))?;
        eprintln!("wapulse beat: wrote {}={at} to {shown}", opts.key);
        return Ok(());
    }
    tracing::info!(
        redis = %shown,
        key = %opts.key,
        every = %humantime::format_duration(opts.every),
        ttl = %humantime::format_duration(ttl),
        "beating"
    );
    let mut ticks = tokio::time::interval(opts.every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            _ = ticks.tick() => {
                match beat_once(&client, &opts.key, ttl, limit).await {
                    Ok(at) => tracing::debug!(key = %opts.key, at, "heartbeat written"),
                    // Keep beating: Redis may come back before the TTL ends.
                    Err(e) => tracing::warn!(redis = %shown, error = %e, "heartbeat not written"),
                }
            }
        }
    }
}
