//! What one refused ingest or webhook request costs in memory, measured by
//! the allocator of this test process (its own binary: nothing else
//! allocates while it runs). A batch past `max_batch_events`, a field
//! holding a huge array, or a webhook body of more values than a delivery
//! holds is refused before the rest is read or built, so even 8 MB of tiny
//! values stays far below 64 MiB above the baseline (the hardening issue's
//! bound); read whole, the same bodies took hundreds of megabytes to
//! gigabytes.

use std::alloc::System;

use axum::http::{HeaderMap, HeaderValue, header};
use cap::Cap;
use wapulse::config::Settings;
use wapulse::routes::{ApiError, parse_body};
use wapulse_core::Timestamp;

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

const BOUND: usize = 64 * 1024 * 1024;

/// The peak allocation above the current one while `parse_body` reads
/// `body`, and its answer. `max_allocated` never goes down: a later case
/// can only be measured higher than it is, never lower, so the cases run
/// one after another in one test.
fn refused(content_type: &'static str, body: &[u8]) -> (usize, Result<usize, ApiError>) {
    let settings = Settings::for_bind("127.0.0.1:3001".parse().unwrap());
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let received = Timestamp::from_millis(1_770_000_000_000);
    let before = ALLOCATOR.allocated();
    let answer = parse_body(&settings, &headers, body, None, received).map(|e| e.len());
    let peak = ALLOCATOR.max_allocated().saturating_sub(before);
    eprintln!(
        "{content_type}, {} bytes: peak {peak} bytes above the baseline",
        body.len()
    );
    (peak, answer)
}

fn repeated(unit: &str, bytes: usize, open: &str, close: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(bytes + open.len() + close.len());
    body.extend_from_slice(open.as_bytes());
    while body.len() + unit.len() + close.len() <= bytes {
        body.extend_from_slice(unit.as_bytes());
    }
    body.extend_from_slice(close.as_bytes());
    body
}

#[test]
fn a_request_past_its_limits_is_refused_before_it_is_read_whole() {
    // 786 KB of `{},` in a JSON array (262,000 events).
    let mut array = repeated("{},", 786 * 1024, "[", "{}]");
    array.shrink_to_fit();
    let (peak, answer) = refused("application/json", &array);
    assert!(
        matches!(answer, Err(ApiError::TooLarge(ref m)) if m.contains("max_batch_events")),
        "{:?}",
        answer.err()
    );
    assert!(peak < BOUND, "a refused JSON array took {peak} bytes");
    drop(array);

    // 8 MB of `{}` lines as NDJSON (2.8 million events).
    let ndjson = repeated("{}\n", 8 * 1024 * 1024, "", "");
    let (peak, answer) = refused("application/x-ndjson", &ndjson);
    assert!(
        matches!(answer, Err(ApiError::TooLarge(ref m)) if m.contains("max_batch_events")),
        "{:?}",
        answer.err()
    );
    assert!(peak < BOUND, "a refused NDJSON body took {peak} bytes");
    drop(ndjson);

    // One event with 8 MB of zeros in its `state` field: read past, never
    // built.
    let body = repeated(
        "0,",
        8 * 1024 * 1024,
        r#"[{"type":"state","state":["#,
        r#"0]}]"#,
    );
    let (peak, answer) = refused("application/json", &body);
    assert!(
        matches!(answer, Err(ApiError::BadRequest { .. })),
        "{:?}",
        answer.err()
    );
    assert!(peak < BOUND, "one event's array field took {peak} bytes");

    // A gateway's webhook body of 8 MB of tiny values.
    let before = ALLOCATOR.allocated();
    let refusal = wapulse::gateways::envelope(&body, "a WAHA event envelope").unwrap_err();
    let peak = ALLOCATOR.max_allocated().saturating_sub(before);
    eprintln!(
        "webhook, {} bytes: peak {peak} bytes above the baseline",
        body.len()
    );
    assert!(
        refusal.problem.contains("JSON values"),
        "{}",
        refusal.problem
    );
    assert!(peak < BOUND, "a refused webhook body took {peak} bytes");
}
