//! The wapulse service: HTTP API, ingest, metrics, and the operator CLI.
//!
//! # Layout
//! - [`config`]: typed [`config::Settings`] from defaults, TOML, environment.
//! - [`startup`]: [`startup::Application`] binds and serves.
//! - [`serve`]: the accept loop; ingest connections on a low-priority lane.
//! - [`model`]: the writer thread (group commit, snapshots) and the
//!   lock-free published snapshot.
//! - [`priority`]: CPU priority: ingest threads and connections that
//!   yield to reads, real-time request workers within a CPU budget.
//! - [`gateways`]: WAHA and Evolution API webhooks mapped to session
//!   events.
//! - [`store`]: the journal and snapshots on disk (SQLite), and history.
//! - `routes`: one module per resource, and the table of every route.
//! - [`alerting`]: the alert evaluator (lifecycle, incidents, groups),
//!   the durable outbox and one notifier per receiver kind.
//! - [`probes`]: background probes of PostgreSQL, Redis, heartbeat keys,
//!   HTTP and TCP, read from cache by readiness and health.
//! - [`openapi`]: `/openapi.json`, generated from the route table.
//! - [`telemetry`]: our own metrics and logging.
//! - [`demo`]: a simulated fleet with realistic trouble.
//! - [`beat`]: `wapulse beat`, a heartbeat key for workers that have none.
//! - [`check`]: the Nagios/Icinga plugin and Docker healthcheck.
//!
//! **Architecture invariant:** request handlers read the published
//! snapshot only; they never wait on a lock held by a writer, on disk, or
//! on the network. The exceptions are ingest, which waits for its commit,
//! `/v1/silences` writes, which wait for theirs, and `/sessions/{id}/events`
//! and `/alerts/history`, which read the store off the async workers.
#![forbid(unsafe_code)]

pub mod alerting;
pub mod beat;
pub mod build;
pub mod check;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod gateways;
pub mod model;
pub mod openapi;
pub mod priority;
pub mod probes;
pub mod routes;
pub mod serve;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod web;
