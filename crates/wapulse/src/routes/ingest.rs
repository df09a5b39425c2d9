//! `POST /v1/events` and `POST /v1/sessions/{id}/events`.
//!
//! A batch is parsed and checked whole before anything is applied: one bad
//! event rejects the request with its index and field, and nothing of it
//! reaches the model. `labels` events are also checked against the labels
//! sessions hold now, so a batch that would take one past 16 labels is
//! refused naming the label that does not fit.

use std::cell::Cell;
use std::fmt;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use wapulse_core::{Event, ParseContext, RawEvent, SessionId, Timestamp};

use super::ApiError;
use crate::app::Shared;
use crate::clock;
use crate::tenancy::Caller;

/// The answer to an accepted batch.
#[derive(Debug, Serialize)]
pub struct IngestResponse {
    /// Events applied.
    pub accepted: usize,
    /// Events ignored because their `id` was seen before.
    pub duplicates: usize,
}

enum Format {
    Json,
    Ndjson,
}

/// The body's format, from its `Content-Type`, which is required: a
/// browser on another site can post a body without one (or as text/plain,
/// or as a form) without asking first, never as JSON.
fn format_of(headers: &HeaderMap) -> Result<Format, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .map(|ct| ct.to_str().unwrap_or("").to_ascii_lowercase())
        .unwrap_or_default();
    let essence = ct.split(';').next().unwrap_or("").trim();
    match essence {
        "" => Err(ApiError::UnsupportedMediaType(
            "a Content-Type is required: send application/json (an array or one event) or \
             application/x-ndjson (one event per line)"
                .into(),
        )),
        "application/json" => Ok(Format::Json),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => Ok(Format::Ndjson),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type `{other}` is not accepted: send application/json (an array or one \
             event) or application/x-ndjson (one event per line)"
        ))),
    }
}

fn bad_json(index: Option<usize>, e: &serde_json::Error) -> ApiError {
    ApiError::BadRequest {
        message: match index {
            Some(i) => format!("event {i} (line {}) is not valid JSON: {e}", i + 1),
            None => format!("body is not valid JSON: {e}"),
        },
        index,
        field: None,
    }
}

/// Splits the body into raw events, at most `max`: one more refuses the
/// batch (413) before the rest is read, so a request's memory is bounded by
/// `max_batch_events` events however many it holds.
fn raw_events(format: Format, body: &[u8], max: usize) -> Result<Vec<RawEvent>, ApiError> {
    let too_many = || {
        ApiError::TooLarge(format!(
            "more than {max} events in one request; the limit is {max} (max_batch_events)"
        ))
    };
    match format {
        Format::Json => {
            let stopped = Cell::new(None);
            let mut out = Vec::new();
            let mut de = serde_json::Deserializer::from_slice(body);
            let read = Batch {
                max,
                out: &mut out,
                stopped: &stopped,
            }
            .deserialize(&mut de)
            .and_then(|()| de.end());
            match (read, stopped.get()) {
                (Ok(()), _) => Ok(out),
                (Err(_), Some(Stop::TooMany)) => Err(too_many()),
                (Err(_), Some(Stop::NotObject(i))) => Err(ApiError::BadRequest {
                    message: format!("event {i} is not a JSON object"),
                    index: Some(i),
                    field: None,
                }),
                (Err(_), Some(Stop::NotBatch)) => Err(ApiError::bad_request(
                    "body must be a JSON array of events or one event object",
                )),
                (Err(e), None) if e.is_data() => Err(bad_json(Some(out.len()), &e)),
                (Err(e), None) => Err(bad_json(None, &e)),
            }
        }
        Format::Ndjson => {
            let lines = body
                .split(|b| *b == b'\n')
                .filter(|line| !line.iter().all(u8::is_ascii_whitespace));
            if lines.clone().count() > max {
                return Err(too_many());
            }
            lines
                .enumerate()
                .map(|(i, line)| serde_json::from_slice(line).map_err(|e| bad_json(Some(i), &e)))
                .collect()
        }
    }
}

/// Why reading a JSON body stopped before its end.
#[derive(Clone, Copy)]
enum Stop {
    /// One event more than the batch may hold.
    TooMany,
    /// Element `i` of the array is not an object.
    NotObject(usize),
    /// The body is neither an array nor an object.
    NotBatch,
}

/// A JSON body read in one pass: an array of event objects (or one
/// object), each straight into its `RawEvent`, stopping at `max + 1`.
struct Batch<'a> {
    max: usize,
    out: &'a mut Vec<RawEvent>,
    stopped: &'a Cell<Option<Stop>>,
}

impl<'de> DeserializeSeed<'de> for Batch<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Batch<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of events or one event object")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            let index = self.out.len();
            let element = EventObject {
                index,
                stopped: self.stopped,
            };
            let Some(raw) = seq.next_element_seed(element)? else {
                return Ok(());
            };
            if index == self.max {
                self.stopped.set(Some(Stop::TooMany));
                return Err(de::Error::custom("too many events"));
            }
            self.out.push(raw);
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        if self.max == 0 {
            self.stopped.set(Some(Stop::TooMany));
            return Err(de::Error::custom("too many events"));
        }
        self.out.push(RawEvent::deserialize(
            de::value::MapAccessDeserializer::new(map),
        )?);
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.not_a_batch()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.not_a_batch()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.not_a_batch()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.not_a_batch()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.not_a_batch()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.not_a_batch()
    }
}

impl Batch<'_> {
    fn not_a_batch<E: de::Error>(&self) -> Result<(), E> {
        self.stopped.set(Some(Stop::NotBatch));
        Err(E::custom("not a batch"))
    }
}

/// One element of the array: an object, read into its `RawEvent`.
struct EventObject<'a> {
    index: usize,
    stopped: &'a Cell<Option<Stop>>,
}

impl<'de> DeserializeSeed<'de> for EventObject<'_> {
    type Value = RawEvent;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawEvent, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EventObject<'_> {
    type Value = RawEvent;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawEvent, A::Error> {
        RawEvent::deserialize(de::value::MapAccessDeserializer::new(map))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<RawEvent, A::Error> {
        self.not_an_object()
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<RawEvent, E> {
        self.not_an_object()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<RawEvent, E> {
        self.not_an_object()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawEvent, E> {
        self.not_an_object()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<RawEvent, E> {
        self.not_an_object()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<RawEvent, E> {
        self.not_an_object()
    }
    fn visit_unit<E: de::Error>(self) -> Result<RawEvent, E> {
        self.not_an_object()
    }
}

impl EventObject<'_> {
    fn not_an_object<E: de::Error>(&self) -> Result<RawEvent, E> {
        self.stopped.set(Some(Stop::NotObject(self.index)));
        Err(E::custom("not an object"))
    }
}

async fn ingest(
    state: &Shared,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
    path_session: Option<SessionId>,
) -> Result<Json<IngestResponse>, ApiError> {
    let received = clock::now();
    // Parsing runs on the low-priority pool: a flood of events must not
    // delay the reads that share these async workers.
    let shared = state.clone();
    let result = state
        .parser
        .run(move || {
            let events = parse_batch(&shared, &headers, &body, path_session, received)?;
            in_scope(&shared, &caller, events)
        })
        .await
        .unwrap_or_else(|| Err(ApiError::Unavailable("the event parser stopped".into())));
    let telemetry = &state.telemetry.ingest_events;
    let events = match result {
        Ok(events) => events,
        Err(e) => {
            telemetry.with_label_values(&["rejected"]).inc();
            return Err(e);
        }
    };
    let outcome = match state.accept(events, received).await {
        Ok(outcome) => outcome,
        Err(
            e @ (crate::app::NotTaken::OverCapacity(_) | crate::app::NotTaken::RetiresDefault(_)),
        ) => {
            telemetry.with_label_values(&["rejected"]).inc();
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    telemetry
        .with_label_values(&["accepted"])
        .inc_by(outcome.accepted as u64);
    telemetry
        .with_label_values(&["duplicate"])
        .inc_by(outcome.duplicates as u64);
    Ok(Json(IngestResponse {
        accepted: outcome.accepted,
        duplicates: outcome.duplicates,
    }))
}

fn parse_batch(
    state: &Shared,
    headers: &HeaderMap,
    body: &[u8],
    path_session: Option<SessionId>,
    received: Timestamp,
) -> Result<Vec<Event>, ApiError> {
    let events = parse_body(&state.settings, headers, body, path_session, received)?;
    labels_fit(&state.model.snapshot(), &events)?;
    Ok(events)
}

/// 409 naming the event and label when a `labels` event would take a
/// session past its labels' bound.
fn labels_fit(snapshot: &wapulse_core::FleetSnapshot, events: &[Event]) -> Result<(), ApiError> {
    snapshot
        .check_labels(events)
        .map_err(|(i, e)| ApiError::Conflict {
            message: format!("event {i}: {e}"),
            index: Some(i),
            field: Some(e.field),
        })
}

/// A scoped caller's batch, checked against its scope (the whole batch
/// refused at the first event outside it), with the scope's labels given
/// to the sessions it creates; an unscoped caller's as it is.
pub(super) fn in_scope(
    state: &Shared,
    caller: &Caller,
    events: Vec<Event>,
) -> Result<Vec<Event>, ApiError> {
    let Some(scope) = caller.scope() else {
        return Ok(events);
    };
    let snapshot = state.model.snapshot();
    let events = scope
        .check_batch(events, &snapshot)
        .map_err(ApiError::OutOfScope)?;
    labels_fit(&snapshot, &events)?;
    Ok(events)
}

/// An ingest body (JSON array, one JSON event, or NDJSON, by its
/// `Content-Type`) checked whole into events, or the first problem: what
/// `POST /v1/events` does before it looks at the model (the labels bound).
/// `path_session`: the session of `/v1/sessions/{id}/events`. Pure; the
/// fuzz target `events` drives it.
pub fn parse_body(
    settings: &crate::config::Settings,
    headers: &HeaderMap,
    body: &[u8],
    path_session: Option<SessionId>,
    received: Timestamp,
) -> Result<Vec<Event>, ApiError> {
    let raws = raw_events(format_of(headers)?, body, settings.max_batch_events)?;
    let default_session = path_session.as_ref().unwrap_or(&settings.default_session);
    let ctx = ParseContext {
        default_session,
        received_at: received,
        max_future_skew: settings.max_future_skew,
        max_event_age: settings.max_event_age,
    };
    let events = raws
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let event = raw.parse(&ctx).map_err(|e| ApiError::BadRequest {
                message: format!("event {i}: {e}"),
                index: Some(i),
                field: Some(e.field),
            })?;
            if let Some(path) = &path_session
                && &event.session != path
            {
                return Err(ApiError::BadRequest {
                    message: format!(
                        "event {i}: field `session` is `{}` but the path is for `{path}`",
                        event.session
                    ),
                    index: Some(i),
                    field: Some("session"),
                });
            }
            Ok(event)
        })
        .collect::<Result<Vec<Event>, ApiError>>()?;
    Ok(events)
}

/// A POST body as axum hands it over.
pub(super) type Body = Result<Bytes, BytesRejection>;

/// The body, or a JSON 413 naming the limit.
pub(super) fn body_or_error(state: &Shared, body: Body) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!(
                "request body is larger than {} bytes (max_body_bytes)",
                state.settings.max_body_bytes
            ))
        } else {
            ApiError::bad_request(format!(
                "cannot read the request body: {}",
                rejection.body_text()
            ))
        }
    })
}

pub(super) async fn events(
    State(state): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestResponse>, ApiError> {
    let body = body_or_error(&state, body)?;
    ingest(&state, caller, headers, body, None).await
}

pub(super) async fn session_events(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestResponse>, ApiError> {
    let body = body_or_error(&state, body)?;
    let id = SessionId::parse(&id).map_err(|e| ApiError::BadRequest {
        message: e.to_string(),
        index: None,
        field: Some("id"),
    })?;
    ingest(&state, caller, headers, body, Some(id)).await
}
