//! Probes of the services around the sessions (PostgreSQL, Redis, a
//! worker's heartbeat key, HTTP health endpoints, TCP ports).
//!
//! Each probe runs on its own schedule in a background task, bounded by its
//! timeout, and publishes its latest [`ProbeStatus`] through an `ArcSwap`.
//! Handlers only read those: a hung dependency costs a probe task its
//! timeout, never a request.

mod run;
mod spec;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde::Serialize;
use wapulse_core::Timestamp;

pub use spec::{ExpectStatus, ProbeSpec, Target};
pub(crate) use spec::{RawProbe, check_all};

use crate::clock;

/// Where a probe stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// Not run yet (counts as failing for readiness).
    Pending,
    /// The last run passed.
    Ok,
    /// The last run failed or timed out.
    Failed,
}

/// The latest result of one probe.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeStatus {
    /// Pending, ok or failed.
    pub status: Standing,
    /// How long the last run took, in milliseconds.
    pub latency_ms: Option<f64>,
    /// When the last run finished.
    #[serde(serialize_with = "opt_rfc3339")]
    pub checked_at: Option<Timestamp>,
    /// When a run last passed.
    #[serde(serialize_with = "opt_rfc3339")]
    pub last_success: Option<Timestamp>,
    /// When a run last failed.
    #[serde(serialize_with = "opt_rfc3339")]
    pub last_failure: Option<Timestamp>,
    /// Failed runs since the last pass.
    pub consecutive_failures: u32,
    /// Why it fails (or a short note when it passes), never with a password.
    pub reason: String,
}

fn opt_rfc3339<S: serde::Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_rfc3339()),
        None => s.serialize_none(),
    }
}

impl ProbeStatus {
    fn pending() -> Self {
        Self {
            status: Standing::Pending,
            latency_ms: None,
            checked_at: None,
            last_success: None,
            last_failure: None,
            consecutive_failures: 0,
            reason: "not checked yet".into(),
        }
    }

    /// Whether the last run passed.
    pub fn ok(&self) -> bool {
        self.status == Standing::Ok
    }

    fn after(&self, result: Result<String, String>, latency: Duration, at: Timestamp) -> Self {
        let latency_ms = Some(latency.as_secs_f64() * 1000.0);
        match result {
            Ok(note) => Self {
                status: Standing::Ok,
                latency_ms,
                checked_at: Some(at),
                last_success: Some(at),
                last_failure: self.last_failure,
                consecutive_failures: 0,
                reason: note,
            },
            Err(reason) => Self {
                status: Standing::Failed,
                latency_ms,
                checked_at: Some(at),
                last_success: self.last_success,
                last_failure: Some(at),
                consecutive_failures: self.consecutive_failures.saturating_add(1),
                reason,
            },
        }
    }
}

/// One configured probe and its latest result.
pub struct Probe {
    /// What it checks.
    pub spec: ProbeSpec,
    status: ArcSwap<ProbeStatus>,
    http: Option<reqwest::Client>,
    /// One run at a time; holds when the last run started. A `/warmup`
    /// waits for a run in flight, then runs afresh unless a run started
    /// after the request came: what it reports is never older than the
    /// request, and a burst of requests costs two runs, not one each.
    running: tokio::sync::Mutex<Option<Instant>>,
}

impl Probe {
    /// The latest result.
    pub fn status(&self) -> Arc<ProbeStatus> {
        self.status.load_full()
    }

    /// Runs the probe once, bounded by its timeout, and publishes the result.
    pub async fn run_once(&self) -> Arc<ProbeStatus> {
        let mut last_started = self.running.lock().await;
        self.run_locked(&mut last_started).await
    }

    /// The probe's result as of a run started after `asked`: the result of
    /// such a run if one already happened, else of a new one.
    pub async fn run_since(&self, asked: Instant) -> Arc<ProbeStatus> {
        let mut last_started = self.running.lock().await;
        if last_started.is_some_and(|started| started >= asked) {
            return self.status();
        }
        self.run_locked(&mut last_started).await
    }

    async fn run_locked(&self, last_started: &mut Option<Instant>) -> Arc<ProbeStatus> {
        let started = Instant::now();
        *last_started = Some(started);
        let result = match tokio::time::timeout(
            self.spec.timeout,
            run::probe(&self.spec, self.http.as_ref()),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(format!(
                "timed out after {}",
                humantime::format_duration(self.spec.timeout)
            )),
        };
        let result = result.map_err(|reason| self.spec.secrets.scrub(&reason));
        let latency = started.elapsed();
        let at = clock::now();
        if let Err(reason) = &result {
            tracing::debug!(probe = %self.spec.name, target = %self.spec.display, %reason, "probe failed");
        }
        let mut published = None;
        self.status.rcu(|old| {
            let next = Arc::new(old.after(result.clone(), latency, at));
            published = Some(next.clone());
            next
        });
        published.expect("rcu ran at least once")
    }
}

/// Every configured probe.
#[derive(Default)]
pub struct Probes {
    probes: Vec<Arc<Probe>>,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Probes {
    /// Probes for these specs, all pending; nothing runs until [`Probes::start`].
    pub fn new(specs: Vec<ProbeSpec>) -> Self {
        let probes = specs
            .into_iter()
            .map(|spec| {
                let http = match &spec.target {
                    // No client timeout: the probe's own timeout bounds
                    // the whole run and names itself in the reason.
                    Target::Http { tls, .. } => Some(crate::tls::http_client(
                        tls,
                        reqwest::Client::builder().redirect(reqwest::redirect::Policy::limited(3)),
                    )),
                    _ => None,
                };
                Arc::new(Probe {
                    spec,
                    status: ArcSwap::from_pointee(ProbeStatus::pending()),
                    http,
                    running: tokio::sync::Mutex::new(None),
                })
            })
            .collect();
        Self {
            probes,
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// Every probe, in config order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Probe>> {
        self.probes.iter()
    }

    /// The probes of `group`, in config order.
    pub fn in_group<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a Arc<Probe>> {
        self.probes
            .iter()
            .filter(move |p| p.spec.group.as_deref() == Some(group))
    }

    /// Starts one background task per probe: run, then wait its interval.
    /// The tasks end on [`Probes::stop`] or when `Probes` is dropped.
    pub fn start(&self) {
        let mut tasks = self.tasks.lock().expect("probe task list poisoned");
        for probe in &self.probes {
            let probe = probe.clone();
            let handle = tokio::spawn(async move {
                loop {
                    probe.run_once().await;
                    tokio::time::sleep(probe.spec.interval).await;
                }
            });
            tasks.push(handle.abort_handle());
        }
    }

    /// Runs every probe once, concurrently; returns when all are done (each
    /// within its timeout).
    pub async fn run_all(&self) {
        let asked = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for probe in &self.probes {
            let probe = probe.clone();
            set.spawn(async move {
                probe.run_since(asked).await;
            });
        }
        while set.join_next().await.is_some() {}
    }

    /// Stops the background tasks.
    pub fn stop(&self) {
        for t in self
            .tasks
            .lock()
            .expect("probe task list poisoned")
            .drain(..)
        {
            t.abort();
        }
    }
}

impl Drop for Probes {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_transitions_keep_history() {
        let t1 = Timestamp::from_millis(1_000);
        let t2 = Timestamp::from_millis(2_000);
        let t3 = Timestamp::from_millis(3_000);
        let s = ProbeStatus::pending();
        assert!(!s.ok());
        let s = s.after(Ok("fine".into()), Duration::from_millis(3), t1);
        assert!(s.ok());
        assert_eq!(s.last_success, Some(t1));
        let s = s.after(Err("down".into()), Duration::from_millis(3), t2);
        let s = s.after(Err("still down".into()), Duration::from_millis(3), t3);
        assert_eq!(s.status, Standing::Failed);
        assert_eq!(s.consecutive_failures, 2);
        assert_eq!(s.last_success, Some(t1), "a failure keeps the last success");
        assert_eq!(s.last_failure, Some(t3));
        assert_eq!(s.reason, "still down");
        let s = s.after(Ok("back".into()), Duration::from_millis(3), t3);
        assert_eq!(s.consecutive_failures, 0);
        assert_eq!(s.last_failure, Some(t3), "a pass keeps the last failure");
    }
}
