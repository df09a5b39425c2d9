//! Memory per session: a counting allocator measures the heap that a fleet
//! of 100,000 sessions holds, plus the map's own storage. Prints one line
//! that docs/benchmarks.md records.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use wapulse_core::delivery::MAX_FOLLOWED;
use wapulse_core::{
    AckStatus, Direction, ErrorCode, Event, EventKind, Fleet, SessionId, SessionState, Thresholds,
    Timestamp,
};

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
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn main() {
    const N: usize = 100_000;
    let ids: Vec<SessionId> = (0..N)
        .map(|i| SessionId::parse(&format!("tenant-{i}@s.whatsapp.net")).unwrap())
        .collect();
    let events: Vec<Event> = ids
        .iter()
        .flat_map(|id| {
            let at = |ms: i64| Timestamp::from_millis(1_770_000_000_000 + ms);
            [
                Event {
                    session: id.clone(),
                    at: at(0),
                    id: None,
                    kind: EventKind::State {
                        state: SessionState::Connected,
                        reason: Some("open".into()),
                    },
                },
                Event {
                    session: id.clone(),
                    at: at(1_000),
                    id: None,
                    kind: EventKind::LockAcquired {
                        held_by: "replica-1".into(),
                        operation: "save-creds".into(),
                    },
                },
                Event {
                    session: id.clone(),
                    at: at(200_000),
                    id: None,
                    kind: EventKind::Heartbeat { rtt_ms: Some(40) },
                },
            ]
        })
        .collect();
    // Ids are shared by the fleet (Arc<str>), so they count once, here.
    let before = LIVE.load(Ordering::Relaxed);
    let mut fleet = Fleet::with_dedup(
        Thresholds::default(),
        wapulse_core::DedupLimits {
            per_session: 0,
            ..Default::default()
        },
    );
    fleet.apply_all(&events);
    let after = LIVE.load(Ordering::Relaxed);
    let per_session = (after - before) as f64 / N as f64;
    println!(
        "memory: {N} sessions hold {:.1} MiB on the heap = {per_session:.0} bytes per session \
         (size_of::<Session>() = {} bytes; excludes the shared id text)",
        (after - before) as f64 / (1024.0 * 1024.0),
        std::mem::size_of::<wapulse_core::Session>(),
    );
    assert_eq!(fleet.view().len(), N);
    drop(fleet);

    // Sessions that send: every one with a full outstanding window (the
    // bound of followed messages, none acked) and a few error codes.
    const SENDERS: usize = 1_000;
    let at = |ms: i64| Timestamp::from_millis(1_770_000_000_000 + ms);
    let mut events = Vec::new();
    for id in &ids[..SENDERS] {
        events.push(Event {
            session: id.clone(),
            at: at(0),
            id: None,
            kind: EventKind::State {
                state: SessionState::Connected,
                reason: None,
            },
        });
        for chunk in 0..(MAX_FOLLOWED / 256) {
            let ids: Box<[Box<str>]> = (0..256)
                .map(|i| format!("3EB0{:016X}", chunk * 256 + i).into())
                .collect();
            events.push(Event {
                session: id.clone(),
                at: at(1_000 + chunk as i64),
                id: None,
                kind: EventKind::Message {
                    direction: Direction::Outbound,
                    count: 256,
                    ids,
                },
            });
        }
        for code in ["463", "429", "479"] {
            events.push(Event {
                session: id.clone(),
                at: at(2_000),
                id: None,
                kind: EventKind::Ack {
                    message: "not-followed".into(),
                    status: AckStatus::Error,
                    code: ErrorCode::parse(code).ok(),
                    detail: None,
                },
            });
        }
    }
    let before = LIVE.load(Ordering::Relaxed);
    let mut fleet = Fleet::with_dedup(
        Thresholds::default(),
        wapulse_core::DedupLimits {
            per_session: 0,
            ..Default::default()
        },
    );
    fleet.apply_all(&events);
    let after = LIVE.load(Ordering::Relaxed);
    let pending: u64 = fleet
        .view()
        .sessions()
        .map(|s| s.delivery.as_deref().map_or(0, |d| d.pending()))
        .sum();
    assert_eq!(pending, (SENDERS * MAX_FOLLOWED) as u64);
    println!(
        "memory: {SENDERS} sending sessions, each with {MAX_FOLLOWED} messages outstanding, hold \
         {:.0} bytes per session ({} of them the delivery figures' own struct)",
        (after - before) as f64 / SENDERS as f64,
        std::mem::size_of::<wapulse_core::Delivery>(),
    );
}
