//! Work that must yield to reads.
//!
//! Parsing ingest batches and the writer thread (commit, apply, publish)
//! run at a lower CPU priority than the async workers that answer requests,
//! so that a gateway flooding `POST /v1/events` pushes `/session/health`
//! latency up as little as possible. How much lower is the
//! `ingest_priority` setting ([`Priority`]).
//!
//! The opposite knob, `read_priority` ([`ReadPriority`]), can put the
//! threads that answer requests at a real-time priority instead: the only
//! way found to keep read latency flat while ingest saturates the same
//! core (see docs/benchmarks.md).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use thread_priority::{
    NormalThreadSchedulePolicy, RealtimeThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue,
    ThreadSchedulePolicy, set_current_thread_priority, set_thread_priority_and_policy,
    thread_native_id,
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

/// The CPU priority of the threads that answer requests (the read lane:
/// the main runtime's workers and blocking threads).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadPriority {
    /// Ordinary time sharing (the default).
    #[default]
    Normal,
    /// `SCHED_RR` at the lowest real-time priority (1): a woken read worker
    /// takes the CPU at once from any ordinary thread, so reads stay as fast
    /// as on an idle machine while ingest saturates the core. Needs
    /// `CAP_SYS_NICE` or an `RLIMIT_RTPRIO` of at least 1. Under a flood of
    /// reads, ordinary threads (ingest, other processes) keep only what the
    /// kernel's real-time throttling leaves them (5 % of a core by default).
    Realtime,
}

impl ReadPriority {
    /// Parses `normal` or `realtime`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "normal" => Some(Self::Normal),
            "realtime" => Some(Self::Realtime),
            _ => None,
        }
    }
}

/// Puts the calling thread at `priority`; the error says why the system
/// refused and how to allow it.
pub fn set_read_thread(priority: ReadPriority) -> Result<(), String> {
    match priority {
        ReadPriority::Normal => Ok(()),
        ReadPriority::Realtime => set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Min,
            ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::RoundRobin),
        )
        .map_err(|e| {
            format!(
                "cannot run request workers at a real-time priority ({e:?}): it needs \
                 CAP_SYS_NICE or an RLIMIT_RTPRIO of at least 1 (systemd: LimitRTPRIO=1; \
                 docker: --cap-add SYS_NICE)"
            )
        }),
    }
}

/// An `on_thread_start` hook for the runtime that answers requests: puts
/// each of its threads at `priority`, logging the outcome once (a refusal
/// leaves the threads at normal priority and is a warning, not a failure).
pub fn read_thread_hook(priority: ReadPriority) -> impl Fn() + Send + Sync + 'static {
    let logged = AtomicBool::new(false);
    move || {
        let result = set_read_thread(priority);
        if priority == ReadPriority::Normal || logged.swap(true, Ordering::Relaxed) {
            return;
        }
        match result {
            Ok(()) => tracing::info!(
                "request workers run at SCHED_RR priority 1 (read_priority = \"realtime\")"
            ),
            Err(e) => tracing::warn!("{e}; they run at normal priority"),
        }
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
mod tests {
    use super::*;

    /// Field `n` (1-based, as in proc(5)) of the calling thread's stat.
    fn stat(n: usize) -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let (_, rest) = stat.rsplit_once(')').unwrap();
        // After the command, state is field 3: field N is item N - 3.
        rest.split_whitespace().nth(n - 3).unwrap().parse().unwrap()
    }

    /// (scheduling policy, nice) of the calling thread.
    fn sched() -> (i32, i32) {
        (stat(41), stat(19))
    }

    /// Whether this process may take a real-time policy: CAP_SYS_NICE in
    /// its effective set, or an RLIMIT_RTPRIO of at least 1.
    fn may_use_realtime() -> bool {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let caps = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
            .unwrap();
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
        let rtprio = limits
            .lines()
            .find(|l| l.starts_with("Max realtime priority"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        caps & (1 << 23) != 0 || rtprio >= 1
    }

    #[test]
    fn read_threads_take_a_realtime_priority_where_allowed() {
        let (result, policy, rt_priority) = std::thread::spawn(|| {
            let result = set_read_thread(ReadPriority::Realtime);
            (result, stat(41), stat(40))
        })
        .join()
        .unwrap();
        if may_use_realtime() {
            assert_eq!(result, Ok(()));
            assert_eq!((policy, rt_priority), (2, 1), "SCHED_RR at priority 1");
        } else {
            let e = result.unwrap_err();
            assert!(e.contains("CAP_SYS_NICE"), "{e}");
            assert_eq!(policy, 0, "the thread stays at SCHED_OTHER");
        }
        let normal = std::thread::spawn(|| {
            set_read_thread(ReadPriority::Normal).unwrap();
            sched()
        })
        .join()
        .unwrap();
        assert_eq!(normal, sched(), "normal leaves the thread as it was");
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
        assert_eq!(
            ReadPriority::parse(" Realtime"),
            Some(ReadPriority::Realtime)
        );
        assert_eq!(ReadPriority::parse("normal"), Some(ReadPriority::Normal));
        assert_eq!(ReadPriority::parse("idle"), None);
    }
}
