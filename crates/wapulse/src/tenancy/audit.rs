//! The audit log: every admin action (a silence created or expired, a
//! session retired) and every named token seen from a new address, with
//! who (the token's name, `ADMIN_TOKEN`, `INGEST_TOKEN`, or `open` when no
//! token is configured) and when. Written to the store (table `audit`,
//! schema version 5, in `store::sqlite`'s migrations) before the action is
//! answered, so an acknowledged action's record survives a crash.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, params};
use serde::Serialize;
use wapulse_core::Timestamp;

use crate::store::sqlite::{classify, tune};
use crate::store::{Durability, StoreError};

/// Most addresses remembered per token: past it, new addresses are still
/// recorded, but only the first this many are kept in memory.
const MAX_ADDRESSES: usize = 1000;

/// One record.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Its sequence number (newest is highest).
    pub seq: i64,
    /// When.
    pub at: String,
    /// Who: the token's name.
    pub who: String,
    /// What: `silence.created`, `silence.expired`, `session.retired`,
    /// `token.new_address`.
    pub action: String,
    /// What it concerned (a silence id, a session, an address).
    pub target: String,
    /// More, as JSON (a silence's matchers and end, a retire's reason).
    pub detail: serde_json::Value,
}

struct Inner {
    conn: Connection,
    path: PathBuf,
    /// Addresses each token was seen from.
    seen: HashMap<String, HashSet<IpAddr>>,
}

/// The audit log (one connection to the store, under a mutex).
#[derive(Clone)]
pub struct AuditLog(Arc<Mutex<Inner>>);

impl AuditLog {
    /// Opens the store the journal lives in (its migrations have run) and
    /// reads back the addresses each token was seen from.
    pub fn open(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let fail = |e| classify(path, e);
        let conn = Connection::open(path).map_err(fail)?;
        tune(&conn, durability, None).map_err(fail)?;
        let mut seen: HashMap<String, HashSet<IpAddr>> = HashMap::new();
        {
            let mut stmt = conn
                .prepare("SELECT who, target FROM audit WHERE action = 'token.new_address'")
                .map_err(fail)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(fail)?;
            for row in rows {
                let (who, target) = row.map_err(fail)?;
                if let Ok(ip) = target.parse() {
                    seen.entry(who).or_default().insert(ip);
                }
            }
        }
        Ok(Self(Arc::new(Mutex::new(Inner {
            conn,
            path: path.to_owned(),
            seen,
        }))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records an action (on tokio's blocking pool).
    pub async fn record(
        &self,
        at: Timestamp,
        who: &str,
        action: &'static str,
        target: &str,
        detail: serde_json::Value,
    ) -> Result<(), StoreError> {
        let log = self.clone();
        let (who, target) = (who.to_owned(), target.to_owned());
        tokio::task::spawn_blocking(move || log.write(at, &who, action, &target, &detail))
            .await
            .expect("audit writes do not panic")
    }

    fn write(
        &self,
        at: Timestamp,
        who: &str,
        action: &str,
        target: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let inner = self.lock();
        inner
            .conn
            .prepare_cached(
                "INSERT INTO audit (at_ms, who, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    at.as_millis(),
                    who,
                    action,
                    target,
                    detail.to_string()
                ])
            })
            .map(|_| ())
            .map_err(|e| classify(&inner.path, e))
    }

    /// Whether `who` was not seen from `ip` before; remembers it. The
    /// caller then records `token.new_address`.
    pub fn first_time_from(&self, who: &str, ip: IpAddr) -> bool {
        let mut inner = self.lock();
        let seen = inner.seen.entry(who.to_owned()).or_default();
        if seen.contains(&ip) {
            return false;
        }
        if seen.len() < MAX_ADDRESSES {
            seen.insert(ip);
        }
        true
    }

    /// Records, newest first, `limit` from before `before` (a `seq`),
    /// only `who`'s when given.
    pub async fn read(
        &self,
        limit: usize,
        before: Option<i64>,
        who: Option<String>,
    ) -> Result<Vec<Entry>, StoreError> {
        let log = self.clone();
        tokio::task::spawn_blocking(move || {
            let inner = log.lock();
            let fail = |e| classify(&inner.path, e);
            let mut stmt = inner
                .conn
                .prepare_cached(
                    "SELECT seq, at_ms, who, action, target, detail FROM audit
                     WHERE seq < ?1 AND (?2 IS NULL OR who = ?2)
                     ORDER BY seq DESC LIMIT ?3",
                )
                .map_err(fail)?;
            let rows = stmt
                .query_map(
                    params![before.unwrap_or(i64::MAX), who, limit as i64],
                    |r| {
                        let detail: String = r.get(5)?;
                        Ok(Entry {
                            seq: r.get(0)?,
                            at: Timestamp::from_millis(r.get(1)?).to_rfc3339(),
                            who: r.get(2)?,
                            action: r.get(3)?,
                            target: r.get(4)?,
                            detail: serde_json::from_str(&detail)
                                .unwrap_or(serde_json::Value::Null),
                        })
                    },
                )
                .map_err(fail)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(fail)
        })
        .await
        .expect("audit reads do not panic")
    }
}
