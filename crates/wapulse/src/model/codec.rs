//! The on-disk fleet snapshot: its body format and codec.
//!
//! Snapshot body format 4 (written today): one version byte (`4`), the
//! postcard encoding of [`wapulse_core::FleetState`], then the postcard
//! encoding of `Vec<(SessionId, Labels)>` (the labels of every session that
//! has some, in id order), then of `Vec<(SessionId, Liveness)>` (disconnect
//! reason, conflicts, inbound baseline, keepalive expectation; the sessions
//! that have any), then (format 4) of `Vec<(SessionId, Delivery)>` (the
//! delivery figures of the sessions that sent or were acked). The session
//! layout is format 1's (labels, liveness and delivery are not part of a
//! session's serde form), so formats 3, 2 (no liveness section) and 1 (the
//! state alone) still decode: what they lack starts empty.
//!
//! Format 5 (written today) is format 4 with each session's idempotency
//! memory (`wapulse_core::dedup`) in the state where formats 1 to 4 had one
//! fleet-wide queue of keys; those decode into it (each session's ids
//! dated at its last event).

use wapulse_core::{Delivery, Fleet, FleetState, Labels, LegacyFleetState, Liveness, SessionId};

use super::ModelOptions;
use crate::store::StoreError;

/// The snapshot body format written today (5: the state with each
/// session's idempotency memory, a labels section, a liveness section and
/// a delivery section). Formats 1 to 4 are read.
pub const SNAPSHOT_FORMAT: u8 = 5;

pub(super) fn decode_snapshot(body: &[u8], options: &ModelOptions) -> Result<Fleet, StoreError> {
    let state = decode_state(body).map_err(|e| StoreError::Corrupt {
        path: options.data_dir.display().to_string(),
        detail: format!("the newest snapshot does not decode: {e}"),
    })?;
    Ok(Fleet::from_state(
        options.thresholds.clone(),
        state,
        options.dedup,
    ))
}

/// Decodes a snapshot body of format 1 to 4, or says what is wrong.
pub(super) fn decode_state(body: &[u8]) -> Result<FleetState, String> {
    let (format, rest) = body.split_first().ok_or("empty")?;
    if !(1..=5).contains(format) {
        return Err(format!("unknown snapshot format {format}"));
    }
    let (mut state, mut rest): (FleetState, _) = if *format >= 5 {
        postcard::take_from_bytes(rest).map_err(|e| e.to_string())?
    } else {
        let (legacy, rest): (LegacyFleetState, _) =
            postcard::take_from_bytes(rest).map_err(|e| e.to_string())?;
        (legacy.upgrade(), rest)
    };
    if *format >= 2 {
        let (labels, after): (Vec<(SessionId, Labels)>, _) =
            postcard::take_from_bytes(rest).map_err(|e| format!("labels section: {e}"))?;
        state
            .restore_labels(labels)
            .map_err(|e| format!("labels section: labels for {e}"))?;
        rest = after;
    }
    if *format >= 3 {
        let (liveness, after): (Vec<(SessionId, Liveness)>, _) =
            postcard::take_from_bytes(rest).map_err(|e| format!("liveness section: {e}"))?;
        state
            .restore_liveness(liveness)
            .map_err(|e| format!("liveness section: liveness for {e}"))?;
        rest = after;
    }
    if *format >= 4 {
        let (delivery, after): (Vec<(SessionId, Delivery)>, _) =
            postcard::take_from_bytes(rest).map_err(|e| format!("delivery section: {e}"))?;
        state
            .restore_delivery(delivery)
            .map_err(|e| format!("delivery section: delivery for {e}"))?;
        rest = after;
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes after the last section", rest.len()));
    }
    Ok(state)
}

/// Validates that a snapshot body decodes (for `wapulse store check`).
pub fn validate(body: &[u8]) -> Result<(), String> {
    decode_state(body).map(|_| ())
}

/// Encodes a fleet as a snapshot body (format [`SNAPSHOT_FORMAT`]).
pub fn encode(fleet: &Fleet) -> Result<Vec<u8>, String> {
    let state = fleet.state_ref();
    let body = postcard::to_extend(&state, vec![SNAPSHOT_FORMAT]).map_err(|e| e.to_string())?;
    let body = postcard::to_extend(&state.labels(), body).map_err(|e| e.to_string())?;
    let body = postcard::to_extend(&state.liveness(), body).map_err(|e| e.to_string())?;
    postcard::to_extend(&state.delivery(), body).map_err(|e| e.to_string())
}
