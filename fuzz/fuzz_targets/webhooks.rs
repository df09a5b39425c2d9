//! A gateway's webhook delivery (the first byte picks WAHA or Evolution,
//! and for Evolution whether the event comes in the path). Whatever
//! arrives: no panic; a mapped delivery's events are valid events (they
//! round-trip through the wire form), all for the delivery's session,
//! with ids; and mapping the same delivery again (a retry) gives the same
//! events, so the retry is applied once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wapulse::gateways::{Mapped, Prior, evolution, waha};
use wapulse_core::{DurationMs, ParseContext, RawEvent, SessionId, Timestamp};

fn map(kind: u8, body: &[u8], received: Timestamp) -> Option<Mapped> {
    let prior = |_: &SessionId| Prior::default();
    match kind % 3 {
        0 => waha::map(body, None, "", prior, received).ok(),
        1 => evolution::map(body, None, "evo:", prior, received).ok(),
        _ => evolution::map(body, Some("connection-update"), "", prior, received).ok(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let received = Timestamp::from_millis(1_770_000_000_000);
    let Some(Mapped::Events { session, events, .. }) = map(kind, body, received) else {
        return;
    };
    let ctx = ParseContext {
        default_session: &session,
        received_at: received,
        max_future_skew: DurationMs::from_mins(5),
        max_event_age: DurationMs::from_hours(30 * 24),
    };
    for event in &events {
        assert_eq!(event.session, session);
        assert!(event.id.is_some(), "every mapped event has an id");
        let wire = serde_json::to_string(event).expect("an event serializes");
        let raw: RawEvent = serde_json::from_str(&wire).expect("its wire form is JSON");
        assert_eq!(&raw.parse(&ctx).expect("its wire form parses"), event, "{wire}");
    }
    let later = received.plus(DurationMs::from_secs(30));
    let Some(Mapped::Events { events: retry, .. }) = map(kind, body, later) else {
        panic!("a retry maps like the first delivery");
    };
    let ids = |e: &[wapulse_core::Event]| e.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&events), ids(&retry), "a retry maps to the same ids");
});
