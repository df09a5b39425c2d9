//! The heart of wapulse: an event-sourced model of WhatsApp session health
//! and the alert rules that judge it.
//!
//! # Layout
//! - [`time`]: [`Timestamp`] and [`DurationMs`], and the `…Formatted` form.
//! - [`id`]: [`SessionId`], parsed at the edge.
//! - [`ident`]: the identifier rule of metric and label names.
//! - [`event`]: the events gateways send ([`RawEvent`] on the wire,
//!   [`Event`] once checked) and the states of a session.
//! - [`thresholds`]: the seed's alert thresholds, validated.
//! - [`window`]: bounded sliding-window counters and recent samples.
//! - [`labels`]: [`Labels`], a session's operator-chosen labels.
//! - [`session`]: [`Session`], folded from events by [`Session::apply`].
//! - [`delivery`]: [`Delivery`], what a session's sends became (acks,
//!   failures, restrictions).
//! - [`alert`]: [`evaluate`] turns a session into an [`Assessment`].
//! - [`lifecycle`]: [`AlertLife`], one alert's pending → firing → resolved.
//! - [`grouping`]: aggregation groups: many alerts, one message.
//! - [`incident`]: fleet incidents from many sessions in the same trouble.
//! - [`matcher`]: label matchers (routes, silences) and [`Silence`].
//! - [`scope`]: [`Scope`], the sessions a tenant's token covers.
//! - [`dedup`]: each session's memory of event ids (idempotency).
//! - [`fleet`]: [`Fleet`] of sessions with rollups and O(1) snapshots.
//!
//! # Invariants
//! This crate does no I/O, starts no thread, and never reads a clock: every
//! instant is passed in. Applying the same events to the same state gives
//! the same state, so replaying a journal reproduces the model exactly.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod alert;
pub mod availability;
pub mod dedup;
pub mod delivery;
pub mod disconnect;
pub mod event;
pub mod fleet;
pub mod grouping;
pub mod id;
pub mod ident;
pub mod inbound;
pub mod incident;
pub mod labels;
pub mod lifecycle;
pub mod matcher;
pub mod scope;
pub mod session;
pub mod thresholds;
pub mod time;
pub mod window;

pub use alert::{Alert, AlertCode, Assessment, Level, evaluate, next_change};
pub use dedup::DedupLimits;
pub use delivery::{AckStatus, Delivery, ErrorCode, Restriction, RestrictionKind};
pub use event::{
    AuthMethod, Direction, Event, EventError, EventKind, MetricName, ParseContext, RawEvent,
    SessionState,
};
pub use fleet::{
    Applied, BatchOutcome, Fleet, FleetSnapshot, FleetState, FleetStateRef, LegacyFleetState,
    LegacyFleetStateRef, PlatformMetrics, Rollup,
};
pub use id::{SessionId, SessionIdError};
pub use labels::Labels;
pub use lifecycle::{AlertLife, LifeRules, Phase, Transition};
pub use matcher::{Matcher, Silence};
pub use scope::{OutOfScope, Scope};
pub use session::{Liveness, Session};
pub use thresholds::{ThresholdError, Thresholds, ThresholdsConfig};
pub use time::{DurationMs, Timestamp};
