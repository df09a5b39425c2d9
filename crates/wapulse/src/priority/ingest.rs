//! Work that must yield to reads.
//!
//! Parsing ingest batches and the writer thread (commit, apply, publish)
//! run at a lower CPU priority than the async workers that answer requests,
//! so that a gateway flooding `POST /v1/events` pushes `/session/health`
//! latency up as little as possible. How much lower is the
//! `ingest_priority` setting ([`Priority`]).
//!
//! The opposite knob, `read_priority` ([`super::reads`]), can put the
//! threads that answer requests at a real-time priority instead.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use thread_priority::{
    NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
    set_current_thread_priority, set_thread_priority_and_policy, thread_native_id,
};

/// The CPU priority of ingest work, relative to request handling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Priority {
    /// Same as requests.
    Normal,
    /// nice 10 (the default): under read overload ingest still gets about
    /// a tenth of a busy core, so it slows and never stops.
    #[default]
    Low,
    /// `SCHED_IDLE`: ingest runs only when nothing else on the machine
    /// wants the CPU. Best read latency; on a host kept busy by other
    /// processes ingest can stall (acknowledgements wait).
    Idle,
}

impl Priority {
    /// Parses `normal`, `low` or `idle`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "normal" => Some(Self::Normal),
            "low" => Some(Self::Low),
            "idle" => Some(Self::Idle),
            _ => None,
        }
    }
}

/// The `thread-priority` crossplatform value that maps to nice 10 on Linux.
const NICE_10: u8 = 22;

/// Sets the calling thread's CPU priority. Best effort: where the system
/// refuses, work runs at normal priority and a warning says so.
pub fn set_current_thread(priority: Priority) {
    let result = match priority {
        Priority::Normal => return,
        Priority::Low => match ThreadPriorityValue::try_from(NICE_10) {
            Ok(v) => set_current_thread_priority(ThreadPriority::Crossplatform(v)),
            Err(e) => {
                tracing::warn!(error = e, "invalid thread priority");
                return;
            }
        },
        Priority::Idle => set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        ),
    };
    if let Err(e) = result {
        tracing::warn!(error = ?e, ?priority, "cannot lower the priority of ingest work; it runs at normal priority");
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A few low-priority threads that run closures for async callers.
pub struct Pool {
    tx: Mutex<Option<Sender<Job>>>,
}

impl Pool {
    /// `threads` workers (at least one) at `priority`, named
    /// `wapulse-{name}-N`.
    pub fn new(name: &str, threads: usize, priority: Priority) -> Self {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..threads.max(1) {
            let rx: Arc<Mutex<Receiver<Job>>> = rx.clone();
            std::thread::Builder::new()
                .name(format!("wapulse-{name}-{n}"))
                .spawn(move || {
                    set_current_thread(priority);
                    loop {
                        // The lock is held only while waiting for one job.
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return, // the pool was dropped
                        }
                    }
                })
                .expect("cannot start a worker thread");
        }
        Self {
            tx: Mutex::new(Some(tx)),
        }
    }

    /// Runs `f` on a pool thread and waits for its result without blocking
    /// the async worker. `None` when the pool is gone or `f` panicked.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = reply.send(f());
        });
        let sent = match self.tx.lock() {
            Ok(tx) => tx.as_ref().is_some_and(|tx| tx.send(job).is_ok()),
            Err(_) => false,
        };
        if !sent {
            return None;
        }
        answer.await.ok()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Dropping the sender ends every worker once its queue is empty.
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Field `n` (1-based, as in proc(5)) of the calling thread's stat
    /// (also used by `reads`' tests).
    pub(crate) fn stat(n: usize) -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let (_, rest) = stat.rsplit_once(')').unwrap();
        // After the command, state is field 3: field N is item N - 3.
        rest.split_whitespace().nth(n - 3).unwrap().parse().unwrap()
    }

    /// (scheduling policy, nice) of the calling thread.
    fn sched() -> (i32, i32) {
        (stat(41), stat(19))
    }

    #[tokio::test]
    async fn runs_jobs_at_the_requested_priority() {
        let low = Pool::new("low", 2, Priority::Low);
        let (name, (policy, nice)) = low
            .run(|| (std::thread::current().name().map(str::to_owned), sched()))
            .await
            .expect("the job ran");
        assert!(name.unwrap().starts_with("wapulse-low-"));
        assert_eq!((policy, nice), (0, 10), "SCHED_OTHER at nice 10");
        let sum: u64 = low.run(|| (1..=10u64).sum()).await.unwrap();
        assert_eq!(sum, 55);

        let idle = Pool::new("idle", 1, Priority::Idle);
        let (policy, _) = idle.run(sched).await.unwrap();
        assert_eq!(policy, 5, "SCHED_IDLE");

        let normal = Pool::new("normal", 1, Priority::Normal);
        assert_eq!(normal.run(sched).await.unwrap(), sched());
    }

    #[test]
    fn parses_the_setting() {
        assert_eq!(Priority::parse("IDLE"), Some(Priority::Idle));
        assert_eq!(Priority::parse("low"), Some(Priority::Low));
        assert_eq!(Priority::parse("normal"), Some(Priority::Normal));
        assert_eq!(Priority::parse("high"), None);
    }
}
