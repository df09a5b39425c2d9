//! An ingest body, as `POST /v1/events` takes it (the first byte picks
//! JSON or NDJSON). Whatever arrives: no panic; an accepted batch
//! round-trips through its wire form, applies to a fleet, and judges,
//! including at the session's next deadline; the fleet's snapshot form
//! restores to the same verdicts.
#![no_main]

use std::sync::LazyLock;

use http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use wapulse::config::Settings;
use wapulse_core::fleet::Fleet;
use wapulse_core::{
    DedupLimits, DurationMs, ParseContext, RawEvent, SessionId, Thresholds, Timestamp, evaluate,
    next_change,
};

static SETTINGS: LazyLock<Settings> =
    LazyLock::new(|| Settings::for_bind("127.0.0.1:3001".parse().unwrap()));

fuzz_target!(|data: &[u8]| {
    let Some((&format, body)) = data.split_first() else {
        return;
    };
    let mut headers = HeaderMap::new();
    let content_type = if format & 1 == 0 {
        "application/json"
    } else {
        "application/x-ndjson"
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let received = Timestamp::from_millis(1_770_000_000_000);
    let Ok(events) = wapulse::routes::parse_body(&SETTINGS, &headers, body, None, received) else {
        return;
    };
    let default = SessionId::parse("default").unwrap();
    let ctx = ParseContext {
        default_session: &default,
        received_at: received,
        max_future_skew: DurationMs::from_mins(5),
        max_event_age: DurationMs::from_hours(30 * 24),
    };
    for event in &events {
        let wire = serde_json::to_string(event).expect("an event serializes");
        let raw: RawEvent = serde_json::from_str(&wire).expect("its wire form is JSON");
        assert_eq!(
            &raw.parse(&ctx).expect("its wire form parses"),
            event,
            "{wire}"
        );
    }
    let thresholds = Thresholds::default();
    let mut fleet = Fleet::new(thresholds.clone());
    if fleet.view().check_labels(&events).is_err() {
        return;
    }
    fleet.apply_all(&events);
    let later = received.plus(DurationMs::from_hours(3));
    let restored = Fleet::from_state(thresholds.clone(), fleet.to_state(), DedupLimits::default());
    for session in fleet.view().sessions() {
        for now in [received, later] {
            let verdict = evaluate(session, &thresholds, now);
            if let Some(next) = next_change(session, &thresholds, now) {
                assert!(next > now, "a deadline is ahead of now");
                evaluate(session, &thresholds, next);
            }
            let again = restored
                .view()
                .get(session.id().as_str())
                .expect("restored");
            assert_eq!(
                evaluate(again, &thresholds, now),
                verdict,
                "snapshot round trip"
            );
        }
    }
    let _ = fleet.view().rollup(&thresholds, later);
});
