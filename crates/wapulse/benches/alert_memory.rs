//! Bytes per active alert: a counting allocator measures the heap the
//! whole service (model, evaluator, published alert views, groups, outbox)
//! holds with a connected fleet, then again once every session of it is
//! logged out and its alert fires; the difference over the number of
//! alerts is what one active alert costs. Also prints the evaluator's
//! longest pass. Prints lines that docs/benchmarks.md records.
//!
//! `cargo bench -p wapulse --bench alert_memory` (100,000 sessions, about
//! a minute and a half); `-- --quick` runs 2,000 (a smoke run), `-- --sessions N` N.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use wapulse::config::Settings;
use wapulse::startup::Application;
use wapulse_core::{Event, EventKind, SessionId, SessionState};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Waits (bounded) until `done` holds, then until the live heap stops
/// moving (the passes after it have written what they owed).
async fn settle(done: impl Fn() -> bool) -> usize {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !done() {
        assert!(Instant::now() < deadline, "the evaluator never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut last = LIVE.load(Ordering::Relaxed);
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = LIVE.load(Ordering::Relaxed);
        if now.abs_diff(last) < 64 * 1024 {
            return now;
        }
        last = now;
    }
    last
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `--sessions N` measures another fleet size.
    let n: usize = match args.iter().position(|a| a == "--sessions") {
        Some(i) => args[i + 1].parse().expect("--sessions takes a number"),
        None if args.iter().any(|a| a == "--quick") => 2_000,
        None => 100_000,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::for_bind("127.0.0.1:0".parse().unwrap());
        settings.data_dir = dir.path().to_path_buf();
        settings.durability = wapulse::store::Durability::Process;
        settings.log_filter = "warn".into();
        // One receiver, so alerts are grouped and queued as in service.
        let toml = dir.path().join("w.toml");
        std::fs::write(
            &toml,
            "[[receivers]]\nname = \"log\"\nkind = \"log\"\n",
        )
        .unwrap();
        settings.alerting = Settings::load(Some(&toml), |_| None).unwrap().alerting;
        let app = Application::build(settings).await.unwrap();
        let state = app.state();
        tokio::spawn(app.run_until(std::future::pending()));

        let ids: Vec<SessionId> = (0..n)
            .map(|i| SessionId::parse(&format!("tenant-{i:06}@s.whatsapp.net")).unwrap())
            .collect();
        let send = |kind: fn() -> EventKind| {
            let state = state.clone();
            let ids = ids.clone();
            async move {
                for chunk in ids.chunks(10_000) {
                    let now = wapulse::clock::now();
                    let events: Vec<Event> = chunk
                        .iter()
                        .map(|id| Event {
                            session: id.clone(),
                            at: now,
                            id: None,
                            kind: kind(),
                        })
                        .collect();
                    state.model.ingest(events, now).await.unwrap();
                }
            }
        };
        send(|| EventKind::State {
            state: SessionState::Connected,
            reason: None,
        })
        .await;
        let healthy = settle(|| state.alerting.snapshot().sessions() >= n).await;
        let started = Instant::now();
        send(|| EventKind::State {
            state: SessionState::LoggedOut,
            reason: Some("401".into()),
        })
        .await;
        // Measured once the fleet incident fires (`incident_for`, 30 s):
        // the steady state of an outage, its alerts folded into it (before,
        // the groups still hold every alert, waiting for `group_wait`).
        let failing = settle(|| {
            let s = state.alerting.snapshot();
            s.counts.incidents >= 1
                && s.counts.firing - s.counts.incidents >= n
                && s.counts.pending == 0
        })
        .await;
        let judged = started.elapsed();
        let published = state.alerting.snapshot();
        let alerts = published.counts.firing - published.counts.incidents;
        let per_alert = failing.saturating_sub(healthy) as f64 / alerts as f64;
        println!(
            "heap with {n} connected sessions: {:.1} MiB; with all {alerts} logged out and firing: {:.1} MiB",
            healthy as f64 / 1048576.0,
            failing as f64 / 1048576.0,
        );
        println!(
            "bytes per active alert (whole service, heap): {per_alert:.0}; every alert firing {:.1} s after the logout",
            judged.as_secs_f64()
        );
        // Exit with everything still held: a heap profiler then lists what
        // the service holds in the outage as not freed.
        std::process::exit(0);
    });
}
