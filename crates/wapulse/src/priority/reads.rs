//! The CPU priority of the threads that answer requests (`read_priority`),
//! and the governor that keeps real-time reads from starving the rest.
//!
//! With `read_priority = "realtime"` the read lane's threads (the main
//! runtime's workers and blocking threads) run at `SCHED_RR` priority 1: a
//! woken read takes the CPU at once from ingest and from every ordinary
//! process. That is the only way found to keep read latency flat while
//! ingest saturates the same core (docs/benchmarks.md). Its danger is a
//! flood of reads: a real-time thread that never sleeps leaves ordinary
//! threads only the kernel's real-time throttling share (5 % by default).
//!
//! The [`Governor`] bounds that: a monitor thread measures, every
//! [`TICK`], the CPU time the read threads used over the last [`WINDOW`]
//! as a share of the CPUs wapulse may use. Above `read_realtime_budget`
//! the read threads go back to ordinary time sharing; once their share
//! stays below half the budget for [`CALM`], they return to real time.
//! Workers apply a change themselves, at their next request, park or
//! wake-up ([`checkpoint`]): changing another thread's ordinary priority
//! has no safe, portable call, and a worker that serves requests passes a
//! checkpoint at least once per request.
//!
//! Only the runtime's async workers take real time: they are the threads
//! that pass checkpoints (tokio calls the park hooks on workers only). The
//! runtime's blocking threads (the journal reads of `/sessions/{id}/events`)
//! pass none, so the governor could never demote them; they stay at
//! ordinary priority, and drop the real time they inherit from the worker
//! that spawned them ([`thread_started`]).

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use thread_priority::{
    NormalThreadSchedulePolicy, RealtimeThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue,
    ThreadSchedulePolicy, set_thread_priority_and_policy, thread_native_id, thread_schedule_policy,
};

/// How often the monitor measures.
pub const TICK: Duration = Duration::from_millis(50);
/// Over how long the read threads' CPU share is measured: long enough that
/// one slow request (a `/metrics` scrape of 100,000 sessions takes ~0.2 s)
/// does not demote them, short enough that a flood does within ~0.5 s.
pub const WINDOW: Duration = Duration::from_millis(500);
/// How long the share must stay below half the budget before the read
/// threads return to real time.
pub const CALM: Duration = Duration::from_millis(500);

/// The CPU priority of the threads that answer requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadPriority {
    /// Ordinary time sharing (the default).
    #[default]
    Normal,
    /// `SCHED_RR` at the lowest real-time priority (1), within the
    /// governor's budget. Needs `CAP_SYS_NICE` or an `RLIMIT_RTPRIO` of at
    /// least 1.
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

/// The default `read_realtime_budget`: half of the CPU time available.
pub const DEFAULT_BUDGET: f64 = 0.5;

/// The `thread-priority` crossplatform value that maps to nice 0 on Linux.
const NICE_0: u8 = 48;

/// Puts the calling thread at `SCHED_RR` priority 1; the error says why the
/// system refused and how to allow it.
pub fn set_realtime() -> Result<(), String> {
    set_thread_priority_and_policy(
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
    })
}

/// Puts the calling thread back at ordinary time sharing (`SCHED_OTHER`,
/// nice 0).
fn set_ordinary() -> Result<(), String> {
    let nice_0 = ThreadPriorityValue::try_from(NICE_0).map_err(|e| e.to_owned())?;
    set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Crossplatform(nice_0),
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other),
    )
    .map_err(|e| format!("cannot return a request worker to normal priority: {e:?}"))
}

/// What the monitor decided after one measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Back to ordinary time sharing: reads used more than the budget.
    Demote,
    /// Back to real time: reads stayed calm.
    Promote,
}

/// The governor's decision rule, apart from clocks and threads.
#[derive(Clone, Debug)]
pub struct Budget {
    limit: f64,
    calm_needed: u32,
    calm: u32,
    realtime: bool,
}

impl Budget {
    /// Real time while the share is at most `limit`; after a demotion,
    /// back once the share has stayed below `limit / 2` for `calm_needed`
    /// measurements in a row.
    pub fn new(limit: f64, calm_needed: u32) -> Self {
        Self {
            limit,
            calm_needed,
            calm: 0,
            realtime: true,
        }
    }

    /// Takes one measurement of the share of CPU the read threads used.
    pub fn observe(&mut self, share: f64) -> Option<Change> {
        if self.realtime {
            if share > self.limit {
                self.realtime = false;
                self.calm = 0;
                return Some(Change::Demote);
            }
        } else if share < self.limit / 2.0 {
            self.calm += 1;
            if self.calm >= self.calm_needed {
                self.realtime = true;
                return Some(Change::Promote);
            }
        } else {
            self.calm = 0;
        }
        None
    }
}

/// Keeps the read threads at real time within a CPU budget. One per
/// process (the read lane is the process's main runtime).
pub struct Governor {
    budget: f64,
    /// Even: the read threads should run at real time; odd: at ordinary
    /// priority. Bumped on every change.
    epoch: AtomicU64,
    /// The system refused real time (learnt by the first worker to try).
    refused: AtomicBool,
    /// The first worker's success at real time is logged.
    announced: AtomicBool,
    demotions: AtomicU64,
    /// Linux thread ids of the read lane's live workers (registered at
    /// their first checkpoint).
    threads: Mutex<Vec<u32>>,
}

static GOVERNOR: OnceLock<Arc<Governor>> = OnceLock::new();

/// In [`APPLIED`]: a read-lane thread that has applied no epoch yet (no
/// epoch reaches it).
const STARTED: u64 = u64::MAX;

thread_local! {
    /// On a read-lane thread: the epoch it last applied ([`STARTED`]
    /// before its first checkpoint). `None` elsewhere.
    static APPLIED: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Applies a pending change of the governor on the calling thread, if it
/// is a read-lane thread: one thread-local read and one atomic load
/// otherwise. Called for every request, and when a worker parks or wakes
/// up (workers only: blocking threads never pass here).
#[inline]
pub fn checkpoint() {
    let Some(applied) = APPLIED.get() else {
        return;
    };
    if let Some(g) = GOVERNOR.get() {
        let epoch = g.epoch.load(Ordering::Acquire);
        if epoch != applied {
            g.apply(epoch);
        }
    }
}

/// An `on_thread_start` hook for the read lane's runtime: marks the
/// thread as a read-lane thread (a worker takes the governor's priority at
/// its first checkpoint), and drops real time inherited from a worker that
/// spawned it: a blocking thread passes no checkpoint, so the governor
/// could not demote it.
pub fn thread_started() {
    APPLIED.set(Some(STARTED));
    if matches!(
        thread_schedule_policy(),
        Ok(ThreadSchedulePolicy::Realtime(_))
    ) && let Err(e) = set_ordinary()
    {
        tracing::warn!("{e}");
    }
}

impl Governor {
    /// Installs the process's governor with `budget` (a share of the CPUs
    /// available, in (0, 1]) and starts its monitor thread. A second call
    /// returns the first governor.
    pub fn install(budget: f64) -> Arc<Self> {
        GOVERNOR
            .get_or_init(|| {
                let g = Arc::new(Self {
                    budget,
                    epoch: AtomicU64::new(0),
                    refused: AtomicBool::new(false),
                    announced: AtomicBool::new(false),
                    demotions: AtomicU64::new(0),
                    threads: Mutex::new(Vec::new()),
                });
                let monitor = g.clone();
                std::thread::Builder::new()
                    .name("wapulse-readgov".into())
                    .spawn(move || monitor.monitor())
                    .expect("cannot start the read governor thread");
                g
            })
            .clone()
    }

    /// The process's governor, when `read_priority = "realtime"`.
    pub fn current() -> Option<&'static Arc<Self>> {
        GOVERNOR.get()
    }

    /// Whether the read threads run at real time now.
    pub fn is_realtime(&self) -> bool {
        !self.refused.load(Ordering::Relaxed) && realtime_epoch(self.epoch.load(Ordering::Relaxed))
    }

    /// How many times the read threads were sent back to ordinary priority.
    pub fn demotions(&self) -> u64 {
        self.demotions.load(Ordering::Relaxed)
    }

    /// An `on_thread_stop` hook: forgets the thread.
    pub fn thread_stopped(&self) {
        APPLIED.set(None);
        if let Some(tid) = current_tid()
            && let Ok(mut threads) = self.threads.lock()
        {
            threads.retain(|t| *t != tid);
        }
    }

    /// Puts the calling worker at the priority of `epoch`. Its first call
    /// registers it with the monitor; the first outcome at real time is
    /// logged (a refusal leaves every worker at normal priority: a
    /// warning, not a failure).
    fn apply(&self, epoch: u64) {
        if APPLIED.replace(Some(epoch)) == Some(STARTED)
            && let Some(tid) = current_tid()
            && let Ok(mut threads) = self.threads.lock()
        {
            threads.push(tid);
        }
        if self.refused.load(Ordering::Relaxed) {
            return;
        }
        let realtime = realtime_epoch(epoch);
        let result = if realtime {
            set_realtime()
        } else {
            set_ordinary()
        };
        match (realtime, result) {
            (true, Ok(())) if !self.announced.swap(true, Ordering::Relaxed) => tracing::info!(
                budget = self.budget,
                "request workers run at SCHED_RR priority 1 (read_priority = \"realtime\") \
                 while they use at most {:.0} % of the CPU (read_realtime_budget)",
                self.budget * 100.0
            ),
            (true, Err(e)) if !self.refused.swap(true, Ordering::Relaxed) => {
                tracing::warn!("{e}; they run at normal priority");
            }
            (false, Err(e)) => tracing::warn!("{e}"),
            _ => {}
        }
    }

    /// The monitor thread: measures and decides every [`TICK`].
    fn monitor(self: Arc<Self>) {
        // Above the read threads, so that a flood cannot keep it from
        // running; where refused, the read threads are refused too.
        let _ = set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Crossplatform(ThreadPriorityValue::try_from(2u8).expect("in range")),
            ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::RoundRobin),
        );
        let cpus = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        let window = (WINDOW.as_millis() / TICK.as_millis()).max(1) as usize;
        let calm = (CALM.as_millis() / TICK.as_millis()).max(1) as u32;
        let mut rule = Budget::new(self.budget, calm);
        // (when, CPU nanoseconds per thread), oldest first.
        let mut samples: VecDeque<(Instant, HashMap<u32, u64>)> = VecDeque::new();
        loop {
            std::thread::sleep(TICK);
            if self.refused.load(Ordering::Relaxed) {
                return;
            }
            let tids = self.threads.lock().map(|t| t.clone()).unwrap_or_default();
            let now = Instant::now();
            let used: HashMap<u32, u64> = tids
                .into_iter()
                .filter_map(|tid| cpu_ns(tid).map(|ns| (tid, ns)))
                .collect();
            if let Some((then, before)) = samples.front() {
                let wall = now.duration_since(*then).as_nanos() as f64;
                let spent: u64 = used
                    .iter()
                    .map(|(tid, ns)| ns.saturating_sub(before.get(tid).copied().unwrap_or(*ns)))
                    .sum();
                let share = spent as f64 / (wall * cpus);
                if samples.len() >= window
                    && let Some(change) = rule.observe(share)
                {
                    self.change(change, share);
                }
            }
            samples.push_back((now, used));
            if samples.len() > window {
                samples.pop_front();
            }
        }
    }

    fn change(&self, change: Change, share: f64) {
        let percent = share * 100.0;
        match change {
            Change::Demote => {
                self.demotions.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    "request workers used {percent:.0} % of the CPU, over read_realtime_budget \
                     ({:.0} %): back to normal priority until they calm down",
                    self.budget * 100.0
                );
            }
            Change::Promote => tracing::info!(
                "request workers used {percent:.0} % of the CPU: back to real-time priority"
            ),
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }
}

/// Whether a governor epoch means real time (even) or ordinary (odd).
fn realtime_epoch(epoch: u64) -> bool {
    epoch.is_multiple_of(2)
}

/// The calling thread's Linux thread id, from `/proc/thread-self`
/// (`PID/task/TID`).
fn current_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// CPU time a thread of this process has used, in nanoseconds: the first
/// field of its `schedstat`, or (kernels without it) user + system time
/// from its `stat`, in the fixed 100 Hz ticks of /proc.
fn cpu_ns(tid: u32) -> Option<u64> {
    if let Ok(text) = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")) {
        return text.split_whitespace().next()?.parse().ok();
    }
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(14 - 3);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) * 10_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::priority::ingest::tests::stat;

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
    fn a_thread_goes_to_real_time_and_back_where_allowed() {
        let (result, realtime, back) = std::thread::spawn(|| {
            let result = set_realtime();
            let realtime = (stat(41), stat(40));
            let back = result.as_ref().ok().map(|()| {
                set_ordinary().unwrap();
                (stat(41), stat(19))
            });
            (result, realtime, back)
        })
        .join()
        .unwrap();
        if may_use_realtime() {
            assert_eq!(result, Ok(()));
            assert_eq!(realtime, (2, 1), "SCHED_RR at priority 1");
            assert_eq!(back, Some((0, 0)), "SCHED_OTHER at nice 0");
        } else {
            let e = result.unwrap_err();
            assert!(e.contains("CAP_SYS_NICE"), "{e}");
            assert_eq!(realtime.0, 0, "the thread stays at SCHED_OTHER");
        }
    }

    #[test]
    fn a_thread_started_by_a_real_time_worker_drops_real_time() {
        let (parent, child) = std::thread::spawn(|| {
            let parent = set_realtime().map(|()| stat(41));
            let child = std::thread::spawn(|| {
                let inherited = stat(41);
                thread_started();
                (inherited, stat(41), APPLIED.get())
            })
            .join()
            .unwrap();
            (parent, child)
        })
        .join()
        .unwrap();
        if may_use_realtime() {
            assert_eq!(parent, Ok(2), "the spawner runs at SCHED_RR");
            assert_eq!(child, (2, 0, Some(STARTED)), "inherited, then dropped");
        } else {
            assert!(parent.is_err());
            assert_eq!(child, (0, 0, Some(STARTED)));
        }
    }

    #[test]
    fn the_budget_demotes_above_the_limit_and_promotes_after_calm() {
        let mut b = Budget::new(0.5, 3);
        assert_eq!(b.observe(0.1), None);
        assert_eq!(b.observe(0.5), None, "at the limit is within it");
        assert_eq!(b.observe(0.51), Some(Change::Demote));
        assert_eq!(b.observe(0.9), None, "already demoted");
        assert_eq!(b.observe(0.2), None);
        assert_eq!(b.observe(0.2), None);
        assert_eq!(b.observe(0.3), None, "not calm: above half the limit");
        assert_eq!(b.observe(0.2), None);
        assert_eq!(b.observe(0.2), None);
        assert_eq!(b.observe(0.2), Some(Change::Promote), "three calm in a row");
        assert_eq!(b.observe(0.2), None);
        assert_eq!(b.observe(0.6), Some(Change::Demote));
    }

    #[test]
    fn measures_its_own_threads() {
        let tid = current_tid().expect("a thread id");
        let before = cpu_ns(tid).expect("CPU time of this thread");
        // Work until the count moves (bounded: it moves within one 10 ms
        // tick even where only /proc/…/stat is available).
        let start = Instant::now();
        let mut after = before;
        while after == before && start.elapsed() < Duration::from_secs(5) {
            let mut x = 0u64;
            for i in 0..100_000u64 {
                x = std::hint::black_box(x.wrapping_add(i));
            }
            after = cpu_ns(tid).unwrap();
        }
        assert!(after > before, "{before} -> {after}");
        assert_ne!(Some(tid), std::thread::spawn(current_tid).join().unwrap());
    }

    #[test]
    fn parses_the_setting() {
        assert_eq!(
            ReadPriority::parse(" Realtime"),
            Some(ReadPriority::Realtime)
        );
        assert_eq!(ReadPriority::parse("normal"), Some(ReadPriority::Normal));
        assert_eq!(ReadPriority::parse("idle"), None);
    }
}
